import type { InvocationType } from './run';

export type RunStatus = 'IN_PROGRESS' | 'SUCCESS' | 'FAILURE';
export type StatusSource = 'ROUTER' | 'BACKEND';

/**
 * What a run is, carried by its first update (schemas/run-status-update.avsc,
 * RunInfo). Free-form values travel as JSON text.
 */
export interface RunInfo {
  blueprint: string | null;
  entityIdentifier: string | null;
  entity: string | null;
  properties: string | null;
  userId: string | null;
  userEmail: string | null;
  origin: string | null;
  actionTrigger: string | null;
  invocation: string | null;
  createdAt: number | null;
  triggerPartition: number | null;
  agentPayload: string | null;
}

/** A polling agent's claim on a run; the first valid one in topic order wins. */
export interface RunClaim {
  by: string;
  until: number;
  acked: boolean;
}

/** One update on the status topic (schemas/run-status-update.avsc). */
export interface RunStatusUpdate {
  runId: string;
  orgId: string | null;
  action: string | null;
  status: RunStatus;
  statusLabel: string | null;
  summary: string | null;
  links: string[];
  externalRunId: string | null;
  log: string | null;
  invocationType: InvocationType | string | null;
  source: StatusSource;
  attempt: number;
  at: number;
  /** Added with the run store; absent in updates written before it. */
  actor?: string | null;
  response?: string | null;
  run?: RunInfo | null;
  claim?: RunClaim | null;
}

export function isTerminal(status: RunStatus | string): boolean {
  return status === 'SUCCESS' || status === 'FAILURE';
}
