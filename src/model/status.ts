import type { InvocationType } from './run';

/** The status on the wire: every reader of the first schema knows these three. */
export type RunStatus = 'IN_PROGRESS' | 'SUCCESS' | 'FAILURE';
/**
 * Finer statuses, carried in `statusDetail` beside a wire status that
 * readers of the first schema understand: WAITING_FOR_APPROVAL (status
 * IN_PROGRESS: not finished) and DECLINED (status FAILURE: finished, not run).
 */
export type StatusDetail = 'WAITING_FOR_APPROVAL' | 'DECLINED';
/** A run's status as the store, the API and the console show it. */
export type ShownStatus = RunStatus | StatusDetail;
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
  /** Added with "Run again": the run this one repeats. */
  repeats?: string | null;
}

/** A polling agent's claim on a run; the first valid one in topic order wins. */
export interface RunClaim {
  by: string;
  until: number;
  acked: boolean;
}

/** What an approval event is (schemas/run-status-update.avsc, RunApproval). */
export type ApprovalEvent = 'REQUESTED' | 'APPROVED' | 'DECLINED' | 'CANCELLED' | 'TIMED_OUT' | 'RELEASED' | 'NOTED';

/**
 * One step of a run's approval. REQUESTED (the router parks the run) names
 * who may decide and holds the event, encrypted; APPROVED and DECLINED are
 * decisions; CANCELLED and TIMED_OUT end a waiting run; RELEASED is the
 * router taking an approved run to its backend; NOTED adds a log line to a
 * waiting run (the notification's outcome). The store applies each only
 * in the state it belongs to, in topic order, so that every instance agrees
 * on which release counts.
 */
export interface RunApproval {
  event: ApprovalEvent;
  by: string | null;
  description: string | null;
  /** REQUESTED: ANY (one approval) or ALL (every approver); APPROVED: ADMIN when an org admin decided for everyone. */
  type: 'ANY' | 'ALL' | 'ADMIN' | null;
  /** REQUESTED: the client ids that may decide. */
  approvers: string[];
  /** REQUESTED: the trigger event, AES-256-GCM under APPROVAL_SECRET (base64). */
  parked: string | null;
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
  /** Added with approvals. */
  statusDetail?: StatusDetail | null;
  approval?: RunApproval | null;
  /** Added with dead-letter re-sending: the letter (`partition/offset`) whose re-sending reopens the run. */
  resentFrom?: string | null;
  /**
   * Added with "no run invoked twice": STARTED, the router is about to call
   * the run's backend (written and acknowledged before the call); ENDED, this
   * update records the call's outcome. Null on every other update.
   */
  call?: CallPhase | null;
}

/** Where a run's call to its backend stands, as the router records it. */
export type CallPhase = 'STARTED' | 'ENDED';

/** What the run store records of a run's call: what the router reads before it calls (stage "once"). */
export interface CallRecord {
  orgId: string | null;
  endedAt: number | null;
  approvalState: string | null;
  callStartedAt: number | null;
  callEndedAt: number | null;
}

export function isTerminal(status: ShownStatus | string): boolean {
  return status === 'SUCCESS' || status === 'FAILURE' || status === 'DECLINED';
}
