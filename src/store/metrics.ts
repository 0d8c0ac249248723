import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** The run store's metrics (the writer thread reports, the routing thread counts). */
export class StoreMetrics {
  readonly applied: Counter<'result'>;
  readonly lag: Gauge<'partition'>;
  readonly up: Gauge;
  readonly restarts: Counter;
  readonly fetched: Counter;
  readonly transaction: Histogram;
  constructor(registry: Registry) {
    this.applied = new Counter({
      name: 'action_router_store_updates_total',
      help: 'Status updates read by the run store, by result (applied; ignored: after the run ended, a claim that lost; undecodable; invalid: cannot apply, skipped)',
      labelNames: ['result'],
      registers: [registry],
    });
    this.lag = new Gauge({
      name: 'action_router_store_lag',
      help: 'Status updates on the topic not yet applied to the run store, by partition',
      labelNames: ['partition'],
      registers: [registry],
    });
    this.up = new Gauge({ name: 'action_router_store_writer_up', help: '1 while the run store writer thread runs and applies, 0 while it fails or restarts', registers: [registry] });
    this.restarts = new Counter({ name: 'action_router_store_writer_restarts_total', help: 'Times the run store writer thread was started again after it ended', registers: [registry] });
    this.fetched = new Counter({ name: 'action_router_store_records_fetched_total', help: 'Records the run store fetched from the status topic (re-reads included)', registers: [registry] });
    this.transaction = new Histogram({
      name: 'action_router_store_transaction_seconds',
      help: 'How long one run store transaction took',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    });
  }
}
