import { Counter, Gauge, Histogram, Registry } from 'prom-client';

const OPEN_STATUSES = ['IN_PROGRESS', 'WAITING_FOR_APPROVAL'] as const;

/** The run store's metrics (the writer thread reports, the routing thread counts). */
export class StoreMetrics {
  readonly applied: Counter<'result'>;
  readonly lag: Gauge<'partition'>;
  readonly up: Gauge;
  readonly restarts: Counter;
  readonly fetched: Counter;
  readonly transaction: Histogram;
  readonly openRuns: Gauge<'status'>;
  readonly oldestOpen: Gauge<'status'>;
  /** The store's open runs at scrape time; set once the store can be read. */
  openRunsSource: (() => { status: string; count: number; oldestCreatedAt: number }[]) | null = null;
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
    // Both gauges are read from the store when scraped: every instance with a store reports the same fleet-wide
    // numbers (aggregate with max, not sum). One query serves both.
    let open: Map<string, { count: number; oldestCreatedAt: number }> | null = null;
    const read = (): Map<string, { count: number; oldestCreatedAt: number }> => {
      if (open) return open;
      open = new Map();
      try {
        for (const row of this.openRunsSource?.() ?? []) open.set(row.status, row);
      } catch {
        // The file being replaced or rebuilt: report none this scrape.
      }
      queueMicrotask(() => (open = null));
      return open;
    };
    this.openRuns = new Gauge({
      name: 'action_router_store_open_runs',
      help: 'Runs in the store not ended, by status (IN_PROGRESS, WAITING_FOR_APPROVAL); the same on every instance',
      labelNames: ['status'],
      registers: [registry],
      collect: () => {
        const rows = read();
        for (const status of OPEN_STATUSES) this.openRuns.set({ status }, rows.get(status)?.count ?? 0);
      },
    });
    this.oldestOpen = new Gauge({
      name: 'action_router_store_oldest_open_run_age_seconds',
      help: 'Age of the oldest run not ended, by status (0 when there is none)',
      labelNames: ['status'],
      registers: [registry],
      collect: () => {
        const rows = read();
        const now = Date.now();
        for (const status of OPEN_STATUSES) {
          const oldest = rows.get(status)?.oldestCreatedAt;
          this.oldestOpen.set({ status }, oldest === undefined ? 0 : Math.max(0, (now - oldest) / 1000));
        }
      },
    });
  }
}
