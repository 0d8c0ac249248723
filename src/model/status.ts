import type { InvocationType } from './run';

export type RunStatus = 'IN_PROGRESS' | 'SUCCESS' | 'FAILURE';
export type StatusSource = 'ROUTER' | 'BACKEND';

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
}

export function isTerminal(status: RunStatus): boolean {
  return status === 'SUCCESS' || status === 'FAILURE';
}
