import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { isInvocationType } from '../model/run';

/** An invocation type as a metric label: one of the known types, `unknown` when there is none, `other` for anything an event made up. */
export function invocationLabel(type: string | null | undefined): string {
  if (type === null || type === undefined) return 'unknown';
  return isInvocationType(type) ? type : 'other';
}

/**
 * The router's Prometheus metrics, on a registry of its own (so several
 * routers in one process, as in tests, do not collide).
 */
export class RouterMetrics {
  readonly registry = new Registry();
  readonly received = new Counter({ name: 'action_router_runs_received_total', help: 'Trigger messages consumed', registers: [this.registry] });
  readonly intakeRetries = new Counter({
    name: 'action_router_intake_retries_total',
    help: 'Trigger decodes that failed for a reason that may pass (the schema registry away or slow) and are tried again',
    registers: [this.registry],
  });
  readonly routed = new Counter({
    name: 'action_router_runs_routed_total',
    help: 'Runs handed to an invoker, by invocation type',
    labelNames: ['invocation'],
    registers: [this.registry],
  });
  readonly deadLettered = new Counter({
    name: 'action_router_runs_dead_lettered_total',
    help: 'Messages written to the dead-letter topic, by reason',
    labelNames: ['invocation', 'reason'],
    registers: [this.registry],
  });
  readonly statusDropped = new Counter({
    name: 'action_router_status_updates_dropped_total',
    help: 'Status updates that could never be written (the schema registry refused them), by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly deadLettersDropped = new Counter({
    name: 'action_router_dead_letters_dropped_total',
    help: 'Dead letters the broker refused even trimmed (the message is logged and committed), by reason',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly skipped = new Counter({
    name: 'action_router_runs_skipped_total',
    help:
      'Messages deliberately not handled, by reason: already_ended, already_invoked, approval (a trigger delivered again for a run already handled), not_this_mode (agent mode: runs not flagged agent), not_for_intake, nothing_to_release',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly inDoubt = new Counter({
    name: 'action_router_runs_in_doubt_total',
    help: 'Runs called again because a call was recorded STARTED with no outcome (a crash mid-call), by invocation type',
    labelNames: ['invocation'],
    registers: [this.registry],
  });
  readonly storeWait = new Gauge({
    name: 'action_router_store_wait_seconds',
    help: 'How long runs of newly assigned partitions have been waiting for the run store to apply the status topic (0: not waiting)',
    registers: [this.registry],
  });
  readonly outcomes = new Counter({
    name: 'action_router_invocation_outcomes_total',
    help: 'Invocation outcomes, by invocation type and outcome',
    labelNames: ['invocation', 'outcome'],
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'action_router_invocation_duration_seconds',
    help: 'Time from the start of an invocation to its outcome',
    labelNames: ['invocation'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: 'action_router_retries_total',
    help: 'Retried calls and writes, by invocation type',
    labelNames: ['invocation'],
    registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: 'action_router_in_flight',
    help: 'Runs in flight, by partition',
    labelNames: ['topic', 'partition'],
    registers: [this.registry],
  });
  readonly committed = new Gauge({
    name: 'action_router_committed_offset',
    help: 'Last committed offset, by partition',
    labelNames: ['topic', 'partition'],
    registers: [this.registry],
  });
  readonly lag = new Gauge({
    name: 'action_router_consumer_lag',
    help: 'High watermark minus the last fetched offset, by partition',
    labelNames: ['topic', 'partition'],
    registers: [this.registry],
  });
  readonly authFailures = new Counter({
    name: 'action_router_auth_failures_total',
    help: 'Credentials refused: by Kafka (SASL, authorization), the schema registry (401/403) or a backend (AUTH_FAILED), by target and invocation type (none when not a backend)',
    labelNames: ['target', 'invocation'],
    registers: [this.registry],
  });
  /** What readiness says at scrape time; set by whoever decides readiness (the App). */
  readinessSource: (() => boolean) | null = null;
  readonly ready: Gauge = new Gauge({
    name: 'action_router_ready',
    help: '1 while /readyz answers 200, 0 otherwise',
    registers: [this.registry],
    collect: (): void => this.ready.set(this.readinessSource?.() ? 1 : 0),
  });

  /** A credential refused by Kafka, the schema registry or a backend. */
  authFailed(target: 'kafka' | 'registry' | 'backend', invocation?: string): void {
    this.authFailures.inc({ target, invocation: target === 'backend' ? invocationLabel(invocation) : 'none' });
  }

  constructor(defaults = false) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'action_router_' });
  }
}
