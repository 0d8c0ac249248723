import type { KafkaMessage, Producer } from 'kafkajs';
import type { ActionCatalog } from '../catalog/catalog';
import { ApprovalRequirement, approvalOf } from '../catalog/definition';
import type { Principal } from '../access/principal';
import { isOrgAdmin } from '../access/principal';
import { ErrorCodes, RejectedEventError, RouterError, describeError } from '../errors';
import type { Invoker } from '../invokers/invoker';
import type { Logger } from '../log';
import type { FrozenRun } from '../model/run';
import type { StatusFields } from '../status/publisher';
import { runInfo } from '../status/run-info';
import type { RunRow } from '../store/run-store';
import type { RunStoreService } from '../store/service';
import { ParkedCipher } from './cipher';
import { ApprovalNotifier } from './notifier';
import { ROUTER, approval } from './steps';

import { RELEASE_HEADER, Release, RunGate } from '../router/stages/gate';

/** An approved run not routed this long after the decision is nudged again (the first nudge was lost). */
export const STALLED_RELEASE_MS = 15_000;

/** How long a release waits for the store to show the decision it follows. */
const RELEASE_WAIT_MS = 10_000;


export interface ApprovalsDeps {
  runs: RunStoreService;
  catalog: ActionCatalog;
  /** The client ids of an org that hold any of these roles (the API's clients). */
  withRoles: (orgId: string, roles: readonly string[]) => string[];
  secret: string;
  /** APPROVAL_TIMEOUT, or null for none. */
  timeoutMs: number | null;
  producer: Producer;
  triggerTopic: string;
  /** The WEBHOOK invoker, for approval notifications (signing, the address guard, retries). */
  notifier: Invoker | undefined;
  logger: Logger;
}

/** Why a decision or a cancel was not taken; the API maps each to Port's envelope. */
export type Refusal =
  | 'not-required'
  | 'not-waiting'
  | 'forbidden'
  | 'already-decided'
  /** The run changed between the read and the write. */
  | 'changed'
  /** Written, but the store has not applied it in time. */
  | 'not-applied';

/** What a decision or a cancel came to. */
export type Decided = { run: RunRow } | { refused: Refusal; message: string };

const refuse = (refused: Refusal, message: string): Decided => ({ refused, message });

/**
 * Manual approval. The router parks a run whose action requires approval
 * (WAITING_FOR_APPROVAL, its event sealed in the update); approvers decide
 * through the API, each decision an update on the status topic; the
 * decision that completes the approval sends a nudge to the run's trigger
 * partition, and the router that owns it releases the run (an update the
 * store applies once, in topic order) and routes it through the normal
 * path. Only the store's record counts: a nudge for a run the store does
 * not show approved changes nothing.
 */
export class Approvals implements RunGate {
  readonly cipher: ParkedCipher;
  private readonly logger: Logger;
  /** The sweep under way, if any. */
  private sweeping: Promise<void> | null = null;
  private readonly notifier: ApprovalNotifier;

  constructor(private readonly deps: ApprovalsDeps) {
    this.cipher = new ParkedCipher(deps.secret);
    this.logger = deps.logger.child({ component: 'approvals' });
    this.notifier = new ApprovalNotifier(deps.runs, deps.notifier);
  }

  requirement(run: FrozenRun): ApprovalRequirement | null {
    const def = this.deps.catalog.get(run.action);
    return def ? approvalOf(def) : null;
  }

  holds(run: FrozenRun): boolean {
    return this.requirement(run) !== null;
  }

  /**
   * Who may decide on a run of `orgId`: the listed clients, the org's
   * clients holding a listed role, and the listed people (emails). People
   * holding a listed role may decide too, but cannot be listed in advance.
   */
  approversFor(requirement: ApprovalRequirement, orgId: string): string[] {
    return [...new Set([...requirement.clients, ...this.deps.withRoles(orgId, requirement.roles), ...requirement.users])];
  }

  /**
   * Parks a run: WAITING_FOR_APPROVAL with what it is, who may decide, and
   * its sealed event; then tells the approvers (best effort, in the
   * background: a notification that fails is a log line on the run).
   */
  async park(run: FrozenRun, message: KafkaMessage, partition: number, log: Logger): Promise<void> {
    const requirement = this.requirement(run)!;
    const approvers = this.approversFor(requirement, run.orgId);
    const parked = this.cipher.seal(run.runId, { key: message.key ?? null, value: message.value ?? Buffer.alloc(0) });
    const written = await this.deps.runs.write(
      { id: run.runId, orgId: run.orgId, action: run.action, invocationType: run.invocationMethod.type },
      ROUTER,
      {
        status: 'IN_PROGRESS',
        statusDetail: 'WAITING_FOR_APPROVAL',
        source: 'ROUTER',
        statusLabel: 'waiting for approval',
        log: `Waiting for approval (${requirement.type === 'ALL' ? 'all of' : 'any of'} ${approvers.length ? approvers.join(', ') : 'the org admins'})`,
        run: runInfo(run, partition),
        approval: approval('REQUESTED', { type: requirement.type, approvers, parked }),
      },
    );
    // A replay of the trigger event (the run exists already) is not parked twice nor announced again.
    // ('timeout': the update is on the topic, the store has not applied it yet: it is parked.)
    if (written.applied !== 'timeout' && written.applied.result !== 'applied') {
      log.info({ runId: run.runId }, 'trigger event of a run already parked or decided: nothing to do');
      return;
    }
    log.info({ runId: run.runId, approvers, type: requirement.type }, 'run waits for approval');
    if (requirement.notifyUrl) this.notifier.send(run, requirement, approvers, log);
  }

  /** Approval notifications under way. */
  get notificationsInFlight(): number {
    return this.notifier.inFlight;
  }

  /** Ends the notifications under way and waits for them, and for a sweep under way. */
  async stop(): Promise<void> {
    await Promise.allSettled([this.notifier.stop(), this.sweeping]);
  }

  /**
   * The trigger event of an approved run, once this router's release of it
   * is the one the store applied; null when the nudge changes nothing (not
   * approved, declined, cancelled, or released by another nudge). `nudge`
   * is the nudge's position (`partition:offset`): the release records it,
   * so that the same nudge delivered again (its router stopped before the
   * outcome was committed) routes the run again, and any other nudge does not.
   */
  async release(runId: string, nudge: string, log: Logger): Promise<Release> {
    const { runs } = this.deps;
    let row = runs.store.getRun(runId);
    const deadline = Date.now() + RELEASE_WAIT_MS;
    // The nudge can overtake the decision on the way to this router's store.
    while ((!row || row.approvalState === 'WAITING') && Date.now() < deadline) {
      await runs.writer.awaitRun(runId, deadline - Date.now());
      row = runs.store.getRun(runId);
    }
    if (!row || (row.approvalState !== 'APPROVED' && row.approvalState !== 'RELEASED')) {
      log.warn({ runId, state: row?.approvalState ?? 'unknown run' }, 'release nudge for a run the store does not show approved: ignored');
      return null;
    }
    if (row.approvalState === 'APPROVED') {
      const written = await runs.write(row, ROUTER, {
        status: 'IN_PROGRESS',
        source: 'ROUTER',
        statusLabel: 'approved',
        log: `Approved${row.approvalBy ? ` by ${row.approvalBy}` : ''}: routing the run`,
        approval: approval('RELEASED', { description: nudge }),
      });
      if (written.applied === 'timeout') throw new RouterError(ErrorCodes.BACKEND_UNAVAILABLE, 'the release is not applied to the store yet', { retriable: true });
      row = written.run;
      if (written.applied.result !== 'applied') {
        log.info({ runId, state: row.approvalState }, 'another release (or a cancel) came first: this one is not routed');
        return null;
      }
    } else if (row.releasedNudge !== nudge || row.endedAt !== null) {
      // Released by another nudge (a duplicate, or one still being routed), or finished.
      return null;
    }
    if (!row.parked) return { reject: new RejectedEventError(ErrorCodes.APPROVAL_INVALID, 'the approved run holds no parked event') };
    try {
      return { event: this.cipher.open(runId, row.parked) };
    } catch (err) {
      return { reject: new RejectedEventError(ErrorCodes.APPROVAL_INVALID, `the parked event does not open (was APPROVAL_SECRET changed?): ${describeError(err)}`) };
    }
  }

  /** What the store knows of a run (for a dead letter of its nudge). */
  known(runId: string): { runId: string; orgId: string | null; action: string | null } {
    const row = this.deps.runs.store.getRun(runId);
    return { runId, orgId: row?.orgId ?? null, action: row?.action ?? null };
  }

  /** Asks the run's trigger partition to release it (any router that owns it acts). */
  async nudge(row: RunRow): Promise<void> {
    await this.deps.producer.send({
      topic: this.deps.triggerTopic,
      messages: [
        {
          key: row.id,
          value: JSON.stringify({ release: row.id }),
          headers: { [RELEASE_HEADER]: row.id },
          ...(row.triggerPartition !== null ? { partition: row.triggerPartition } : {}),
        },
      ],
    });
  }

  /** May `principal` decide on `row`? A listed approver, or an admin of its org (or of every org). */
  /** How `principal` may decide on `row`: as an approver, as an org admin, or not at all. */
  deciderKind(principal: Principal, row: RunRow): 'approver' | 'admin' | null {
    const approvers = JSON.parse(row.approvers ?? '[]') as string[];
    if (principal.person) {
      // A person decides as a listed email, or as a holder of a listed role in the run's org; never as a client id.
      const def = row.action ? this.deps.catalog.get(row.action) : undefined;
      const requirement = def ? approvalOf(def) : null;
      const email = principal.person.email?.toLowerCase();
      if (email && requirement?.users.some((u) => u.toLowerCase() === email)) return 'approver';
      if (principal.orgId === row.orgId && requirement?.roles.some((r) => principal.roles.includes(r))) return 'approver';
    } else if (approvers.includes(principal.clientId)) {
      return 'approver';
    }
    return isOrgAdmin(principal, row.orgId) ? 'admin' : null;
  }

  /** APPROVE or DECLINE by an allowed approver: the decision is an update; the last approval sends the nudge. */
  async decide(principal: Principal, row: RunRow, decision: 'APPROVE' | 'DECLINE', description: string | null): Promise<Decided> {
    if (!row.approvalState) return refuse('not-required', `run ${row.id} does not require approval`);
    if (row.approvalState !== 'WAITING') return refuse('not-waiting', `run ${row.id} is not waiting for approval (${row.approvalState.toLowerCase().replace('_', ' ')})`);
    const kind = this.deciderKind(principal, row);
    if (!kind) return refuse('forbidden', `${principal.clientId} is not an approver of run ${row.id}`);
    if (this.deps.runs.store.approvals(row.id).some((d) => d.clientId === principal.clientId)) {
      return refuse('already-decided', `${principal.clientId} already decided on run ${row.id}`);
    }
    const by = principal.clientId;
    const said = description ? `: ${description}` : '';
    const fields: StatusFields =
      decision === 'APPROVE'
        ? {
            status: 'IN_PROGRESS',
            statusDetail: 'WAITING_FOR_APPROVAL',
            log: `Approved by ${by}${said}`,
            approval: approval('APPROVED', { by, description, type: kind === 'admin' ? 'ADMIN' : null }),
          }
        : {
            status: 'FAILURE',
            statusDetail: 'DECLINED',
            statusLabel: 'declined',
            summary: `Declined by ${by}${said}`,
            approval: approval('DECLINED', { by, description }),
          };
    const written = await this.deps.runs.write(row, by, fields);
    if (written.applied === 'timeout') return refuse('not-applied', 'the decision is written but not applied yet; read the run again');
    if (written.applied.result !== 'applied') return refuse('changed', `run ${row.id} changed meanwhile (${written.run.status}): the decision was not taken`);
    if (written.run.approvalState === 'APPROVED') await this.nudge(written.run);
    return { run: written.run };
  }

  /** The requester or an org admin ends a waiting (or approved, not yet routed) run: FAILURE, "cancelled". */
  async cancel(principal: Principal, row: RunRow, description: string | null): Promise<Decided> {
    if (row.approvalState !== 'WAITING' && row.approvalState !== 'APPROVED') {
      return refuse('not-waiting', `run ${row.id} is not waiting for approval: only a waiting run can be cancelled`);
    }
    const admin = isOrgAdmin(principal, row.orgId);
    const requester = principal.clientId === row.createdBy || principal.clientId === row.userId || principal.clientId === row.userEmail;
    if (!admin && !requester) return refuse('forbidden', `only the run's requester or an org admin may cancel run ${row.id}`);
    const written = await this.deps.runs.write(row, principal.clientId, {
      status: 'FAILURE',
      statusLabel: 'cancelled',
      summary: `Cancelled by ${principal.clientId}${description ? `: ${description}` : ''}`,
      approval: approval('CANCELLED', { by: principal.clientId, description }),
    });
    if (written.applied === 'timeout') return refuse('not-applied', 'the cancel is written but not applied yet; read the run again');
    if (written.applied.result !== 'applied') return refuse('changed', `run ${row.id} changed meanwhile (${written.run.status}): it was not cancelled`);
    return { run: written.run };
  }

  /**
   * The owner's sweep over its trigger partitions: waiting runs past
   * APPROVAL_TIMEOUT end FAILURE; approved runs whose nudge was lost (the
   * deciding process stopped between the decision and the nudge) are
   * nudged again.
   */
  sweep(partitions: readonly number[], now = Date.now()): Promise<void> {
    // One at a time: a sweep's writes wait on the store (up to RUNS_APPLY_TIMEOUT_SECONDS), longer than the
    // interval, and a second sweep would read the same runs as waiting and write their timeouts and nudges again.
    if (this.sweeping) return this.sweeping;
    this.sweeping = this.sweepOnce(partitions, now).finally(() => {
      this.sweeping = null;
    });
    return this.sweeping;
  }

  private async sweepOnce(partitions: readonly number[], now: number): Promise<void> {
    const { runs, timeoutMs } = this.deps;
    const { expired, stalled } = runs.store.approvalSweep(partitions, timeoutMs === null ? 0 : now - timeoutMs, now - STALLED_RELEASE_MS);
    for (const row of expired) {
      await runs
        .write(row, ROUTER, {
          status: 'FAILURE',
          source: 'ROUTER',
          statusLabel: 'approval timed out',
          summary: `No decision within APPROVAL_TIMEOUT (${Math.round(timeoutMs! / 1000)} s)`,
          approval: approval('TIMED_OUT'),
        })
        .catch((err) => this.logger.warn({ runId: row.id, err: describeError(err) }, 'approval timeout not written; the next sweep tries again'));
    }
    for (const row of stalled) {
      this.logger.info({ runId: row.id }, 'approved run not routed yet: nudging its partition again');
      await this.nudge(row).catch((err) => this.logger.warn({ runId: row.id, err: describeError(err) }, 'nudge failed; the next sweep tries again'));
    }
  }
}
