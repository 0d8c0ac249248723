import { RunInfo, RunStatusUpdate, isTerminal } from '../model/status';
import type { Decision, FoldResult, FoldedRun, RunDetails, RunState } from './folded-run';

/**
 * The store's acceptance rules as pure functions: what one status update
 * does to a run, given the run as it stands. The writer folds a batch's
 * updates of each run through `fold` in topic order, in memory, and writes
 * each run once. Nothing here touches SQLite.
 */

/** The finer status (WAITING_FOR_APPROVAL, DECLINED) is what the store shows. */
export function shownStatus(u: RunStatusUpdate): string {
  return u.statusDetail ?? u.status;
}

export function actorOf(u: RunStatusUpdate): string | null {
  return u.actor ?? (u.source === 'ROUTER' ? 'action-router' : null);
}

function emptyDetails(): RunDetails {
  return { entity: null, properties: null, actionTrigger: null, invocation: null, agentPayload: null, response: null, parked: null };
}

/** A run created by its first update. */
function created(u: RunStatusUpdate, info: RunInfo | null): FoldedRun {
  const actor = actorOf(u);
  const status = shownStatus(u);
  const state: RunState = {
    id: u.runId,
    orgId: u.orgId,
    action: u.action,
    status,
    statusLabel: u.statusLabel,
    summary: u.summary,
    links: JSON.stringify(u.links ?? []),
    externalRunId: u.externalRunId,
    invocationType: u.invocationType,
    blueprint: info?.blueprint ?? null,
    entityIdentifier: info?.entityIdentifier ?? null,
    userId: info?.userId ?? null,
    userEmail: info?.userEmail ?? null,
    origin: info?.origin ?? null,
    triggerPartition: info?.triggerPartition ?? null,
    hasAgentPayload: info?.agentPayload ? 1 : 0,
    claimBy: null,
    claimUntil: null,
    claimAcked: 0,
    approvalType: null,
    approvers: null,
    approvalState: null,
    approvalBy: null,
    approvalDescription: null,
    approvalDecidedAt: null,
    releasedAt: null,
    releasedNudge: null,
    repeats: info?.repeats ?? null,
    resentFrom: u.resentFrom ?? null,
    callStartedAt: u.call === 'STARTED' ? u.at : null,
    callEndedAt: u.call === 'ENDED' ? u.at : null,
    createdBy: info?.userEmail ?? info?.userId ?? actor,
    updatedBy: actor,
    createdAt: info?.createdAt ?? u.at,
    updatedAt: u.at,
    endedAt: isTerminal(status) ? u.at : null,
  };
  const details: RunDetails = {
    ...emptyDetails(),
    entity: info?.entity ?? null,
    properties: info?.properties ?? null,
    actionTrigger: info?.actionTrigger ?? null,
    invocation: info?.invocation ?? null,
    agentPayload: info?.agentPayload ?? null,
    response: u.response ?? null,
  };
  return { state, details, decisions: [], newDecisions: [], isNew: true, dirty: { state: true, details: true, search: true } };
}

/** The status fields of an update laid over the run (the old UPDATE's COALESCE rules). */
function update(r: FoldedRun, u: RunStatusUpdate, endedAt: number | null): void {
  const s = r.state;
  s.status = shownStatus(u);
  s.orgId ??= u.orgId;
  s.action ??= u.action;
  s.statusLabel = u.statusLabel ?? s.statusLabel;
  s.summary = u.summary ?? s.summary;
  const links = JSON.stringify(u.links ?? []);
  if (links !== '[]') s.links = links;
  if (u.externalRunId !== null && u.externalRunId !== undefined && u.externalRunId !== s.externalRunId) {
    s.externalRunId = u.externalRunId;
    r.dirty.search = true;
  }
  s.invocationType ??= u.invocationType;
  if (u.response !== null && u.response !== undefined) {
    r.details.response = u.response;
    r.dirty.details = true;
  }
  s.updatedBy = actorOf(u);
  s.updatedAt = u.at;
  s.endedAt = endedAt;
  // The first record of each phase counts: a call recorded ended stays ended.
  if (u.call === 'STARTED') s.callStartedAt ??= u.at;
  if (u.call === 'ENDED') s.callEndedAt ??= u.at;
  if (endedAt !== null && r.details.parked !== null) {
    // The sealed event of a waiting run is kept no longer than the wait.
    r.details.parked = null;
    r.dirty.details = true;
  }
  r.dirty.state = true;
}

/** What the run is fills in even after it ended: a backend can report the end before the router's first update is on the topic. */
function fillInfo(r: FoldedRun, u: RunStatusUpdate, info: RunInfo): void {
  const s = r.state;
  const d = r.details;
  s.blueprint = info.blueprint ?? s.blueprint;
  if (info.entityIdentifier !== null && info.entityIdentifier !== s.entityIdentifier) {
    s.entityIdentifier = info.entityIdentifier;
    r.dirty.search = true;
  }
  s.userId = info.userId ?? s.userId;
  s.userEmail = info.userEmail ?? s.userEmail;
  s.origin = info.origin ?? s.origin;
  s.repeats = info.repeats ?? s.repeats;
  s.triggerPartition = info.triggerPartition ?? s.triggerPartition;
  s.createdAt = info.createdAt ?? s.createdAt;
  s.createdBy ??= info.userEmail ?? info.userId;
  s.orgId ??= u.orgId;
  s.action ??= u.action;
  d.entity = info.entity ?? d.entity;
  d.properties = info.properties ?? d.properties;
  d.actionTrigger = info.actionTrigger ?? d.actionTrigger;
  d.invocation = info.invocation ?? d.invocation;
  d.agentPayload = info.agentPayload ?? d.agentPayload;
  if (d.agentPayload) s.hasAgentPayload = 1;
  r.dirty.state = true;
  r.dirty.details = true;
}

/**
 * One approval step, applied only in the state it belongs to: decisions
 * while the run waits, one per approver; cancel and timeout until the run
 * is released; the release once, after approval. Topic order decides
 * every race, the same way in every instance.
 */
function approval(r: FoldedRun, u: RunStatusUpdate): boolean {
  const a = u.approval!;
  const s = r.state;
  const state = s.approvalState;
  const ended = isTerminal(shownStatus(u)) ? u.at : null;
  switch (a.event) {
    case 'REQUESTED': {
      // A run created before any router took it (executed through the API: its first update is the API's)
      // is parked once; a replayed trigger event finds it parked, or routed, and changes nothing.
      if (state !== null || s.endedAt !== null || s.triggerPartition !== null) return false;
      update(r, u, null);
      s.approvalType = a.type ?? 'ANY';
      s.approvers = JSON.stringify(a.approvers ?? []);
      s.approvalState = 'WAITING';
      r.details.parked = a.parked;
      r.dirty.details = true;
      return true;
    }
    case 'APPROVED':
    case 'DECLINED': {
      if (state !== 'WAITING' || !a.by) return false;
      if (r.decisions.some((d) => d.clientId === a.by)) return false;
      const decision: Decision = { clientId: a.by, decision: a.event, description: a.description, at: u.at };
      r.decisions.push(decision);
      r.newDecisions.push(decision);
      s.approvalBy = a.by;
      s.approvalDescription = a.description;
      s.approvalDecidedAt = u.at;
      if (a.event === 'DECLINED') {
        update(r, u, ended);
        s.approvalState = 'DECLINED';
        clearParked(r);
        return true;
      }
      const approvers = parseList(s.approvers);
      const approved = new Set(r.decisions.filter((d) => d.decision === 'APPROVED').map((d) => d.clientId));
      // ANY: one approval; ALL: every listed approver; an org admin's approval (type ADMIN) decides alone.
      const complete = a.type === 'ADMIN' || s.approvalType !== 'ALL' || approvers.every((c) => approved.has(c));
      update(r, u, null);
      if (complete) s.approvalState = 'APPROVED';
      return true;
    }
    case 'CANCELLED':
    case 'TIMED_OUT':
      if (state !== 'WAITING' && state !== 'APPROVED') return false;
      update(r, u, ended);
      if (a.event === 'CANCELLED' && a.by) {
        s.approvalBy = a.by;
        s.approvalDescription = a.description;
        s.approvalDecidedAt = u.at;
      }
      s.approvalState = a.event;
      clearParked(r);
      return true;
    case 'NOTED':
      return state === 'WAITING' || state === 'APPROVED';
    case 'RELEASED':
      if (state !== 'APPROVED') return false;
      update(r, u, ended);
      s.approvalState = 'RELEASED';
      s.releasedAt = u.at;
      s.releasedNudge = a.description;
      return true;
    default:
      return false;
  }
}

function clearParked(r: FoldedRun): void {
  if (r.details.parked === null) return;
  r.details.parked = null;
  r.dirty.details = true;
}

function parseList(text: string | null): string[] {
  try {
    const v: unknown = JSON.parse(text ?? '[]');
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * A re-sent dead letter reopens its run: only a run that ended FAILURE,
 * of the update's org, that never waited for approval (a re-sent event
 * goes through the gate again as a new run would). Topic order decides
 * between two re-sendings of one run: the second finds it open, and its
 * event is not sent.
 */
function reopen(r: FoldedRun, u: RunStatusUpdate): boolean {
  const s = r.state;
  if (s.endedAt === null || s.status !== 'FAILURE' || s.orgId !== u.orgId || s.approvalState !== null) return false;
  update(r, u, null);
  s.summary = u.summary;
  s.resentFrom = u.resentFrom ?? null;
  // The re-sent event is called as a new one would be.
  s.callStartedAt = null;
  s.callEndedAt = null;
  return true;
}

/**
 * A claim holds when the run is free (never claimed, or an unacknowledged
 * claim that lapsed by the time of this update); an acknowledgement holds
 * for the claim's own holder. Topic order decides between racing agents.
 */
function claim(r: FoldedRun, u: RunStatusUpdate): boolean {
  const c = u.claim!;
  const s = r.state;
  if (c.acked) {
    if (s.claimBy !== c.by) return false;
    s.claimAcked = 1;
    r.dirty.state = true;
    return true;
  }
  const free = s.claimBy === null || (s.claimAcked === 0 && (s.claimUntil ?? 0) < u.at);
  if (!free) return false;
  s.claimBy = c.by;
  s.claimUntil = c.until;
  s.claimAcked = 0;
  r.dirty.state = true;
  return true;
}

/**
 * Applies one update to `run` (null: not in the store) and says what it
 * did. `run` is changed in place; the result's `run` is the run afterwards.
 */
export function fold(run: FoldedRun | null, u: RunStatusUpdate): FoldResult {
  const actor = actorOf(u);
  const status = shownStatus(u);
  const info = u.run ?? null;
  let applied: boolean;
  let after = run;
  if (!run) {
    // A decision for a run the store does not know decides nothing.
    applied = !u.approval || u.approval.event === 'REQUESTED';
    if (applied) {
      after = created(u, info);
      if (u.approval) {
        after.state.approvalType = u.approval.type ?? 'ANY';
        after.state.approvers = JSON.stringify(u.approval.approvers ?? []);
        after.state.approvalState = 'WAITING';
        after.details.parked = u.approval.parked;
      }
    }
  } else if (u.approval) {
    applied = approval(run, u);
  } else if (u.resentFrom) {
    applied = reopen(run, u);
  } else {
    // While a run waits for approval, only approval steps change it.
    const s = run.state;
    applied = s.endedAt === null && s.approvalState !== 'WAITING' && s.approvalState !== 'APPROVED';
    if (applied) update(run, u, isTerminal(status) ? u.at : null);
  }
  if (info && run) fillInfo(run, u, info);
  // A claim on a run the store did not know holds nothing.
  if (u.claim) applied = applied && run !== null && claim(run, u);
  return { run: after, applied, log: applied && u.log ? u.log : null, actor, status };
}

/** A run read from the store, ready to fold into. */
export function loaded(state: RunState, details: RunDetails, decisions: Decision[]): FoldedRun {
  return { state, details, decisions, newDecisions: [], isNew: false, dirty: { state: false, details: false, search: false } };
}
