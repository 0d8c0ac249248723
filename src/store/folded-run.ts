/*
 * A run as the store's rules see it: its state row, its details, its
 * approval decisions, and what a fold changed. rules.ts decides; this is
 * only the shape.
 */

/** A run's fields that updates change (the `runs` row), in camelCase. */
export interface RunState {
  id: string;
  orgId: string | null;
  action: string | null;
  status: string;
  statusLabel: string | null;
  summary: string | null;
  links: string;
  externalRunId: string | null;
  invocationType: string | null;
  blueprint: string | null;
  entityIdentifier: string | null;
  userId: string | null;
  userEmail: string | null;
  origin: string | null;
  triggerPartition: number | null;
  hasAgentPayload: number;
  claimBy: string | null;
  claimUntil: number | null;
  claimAcked: number;
  /** ANY or ALL when the run needed approval. */
  approvalType: string | null;
  /** JSON array of the client ids that may decide. */
  approvers: string | null;
  /** WAITING, APPROVED (complete, not routed yet), RELEASED, DECLINED, CANCELLED, TIMED_OUT. */
  approvalState: string | null;
  approvalBy: string | null;
  approvalDescription: string | null;
  approvalDecidedAt: number | null;
  releasedAt: number | null;
  /** The nudge (`partition:offset`) whose release was applied. */
  releasedNudge: string | null;
  /** The run this one runs again. */
  repeats: string | null;
  /** The dead letter (`partition/offset`) last re-sent for this run. */
  resentFrom: string | null;
  /** When the router recorded that it was about to call the backend (its STARTED update). */
  callStartedAt: number | null;
  /** When the outcome of the call was recorded (the router's ENDED update): the run is not called again. */
  callEndedAt: number | null;
  createdBy: string | null;
  updatedBy: string | null;
  createdAt: number;
  updatedAt: number;
  endedAt: number | null;
}

/** What is written once or rarely (the `run_details` row). */
export interface RunDetails {
  entity: string | null;
  properties: string | null;
  actionTrigger: string | null;
  invocation: string | null;
  agentPayload: string | null;
  response: string | null;
  /** The encrypted trigger event of a waiting run (routers read it on release). */
  parked: string | null;
}

/** One approver's decision. */
export interface Decision {
  clientId: string;
  decision: 'APPROVED' | 'DECLINED';
  description: string | null;
  at: number;
}

/** A run as the fold sees it: its row, its details, the decisions taken on it. */
export interface FoldedRun {
  state: RunState;
  details: RunDetails;
  decisions: Decision[];
  /** What changed since it was read (the writer writes only that). */
  dirty: { state: boolean; details: boolean; search: boolean };
  /** Decisions added by this batch. */
  newDecisions: Decision[];
  /** True when the run is not in the store yet (inserted by this batch). */
  isNew: boolean;
}

/** What applying one update did. */
export interface FoldResult {
  /** The run after the update (null: the update created nothing). */
  run: FoldedRun | null;
  applied: boolean;
  /** The log line to keep (applied updates with a log). */
  log: string | null;
  actor: string | null;
  /** The status the timeline shows. */
  status: string;
}
