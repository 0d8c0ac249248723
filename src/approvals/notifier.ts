import type { ApprovalRequirement } from '../catalog/definition';
import { describeError } from '../errors';
import type { Invoker } from '../invokers/invoker';
import type { Logger } from '../log';
import type { FrozenRun } from '../model/run';
import type { RunStoreService } from '../store/service';
import { ROUTER, approval } from './steps';

/** How long an approval notification may take, retries included. */
const NOTIFY_TIMEOUT_MS = 60_000;

/**
 * Tells the approvers a run waits (approvalNotification): a signed POST
 * through the WEBHOOK invoker (the address guard, timeouts, retries), in
 * the background, bounded to a minute and ended by stop(). Its outcome is a
 * log line on the run; a notification that fails never fails the run.
 */
export class ApprovalNotifier {
  /** Aborted by stop(): notifications under way end. */
  private readonly closing = new AbortController();
  private readonly sending = new Set<Promise<void>>();

  constructor(
    private readonly runs: RunStoreService,
    private readonly webhook: Invoker | undefined,
  ) {}

  get inFlight(): number {
    return this.sending.size;
  }

  send(run: FrozenRun, requirement: ApprovalRequirement, approvers: string[], log: Logger): void {
    const sent: Promise<void> = this.notify(run, requirement, approvers, log).finally(() => this.sending.delete(sent));
    this.sending.add(sent);
  }

  async stop(): Promise<void> {
    this.closing.abort();
    await Promise.allSettled([...this.sending]);
  }

  private async notify(run: FrozenRun, requirement: ApprovalRequirement, approvers: string[], log: Logger): Promise<void> {
    const notifier = this.webhook;
    if (!notifier) return;
    const body = {
      type: 'APPROVAL_REQUESTED',
      runId: run.runId,
      orgId: run.orgId,
      action: run.action,
      approvalType: requirement.type,
      approvers,
      requestedBy: (run.user && typeof run.user.email === 'string' ? run.user.email : null) ?? run.userId,
      entity: run.entityIdentifier,
      triggeredAt: run.triggeredAt,
    };
    const target = { ...run, invocationMethod: { type: 'WEBHOOK', agent: false, url: requirement.notifyUrl!, method: 'POST', synchronized: true, body } } as FrozenRun;
    // Bounded, and ended by stop(): a notification never outlives the process's store.
    const signal = AbortSignal.any([this.closing.signal, AbortSignal.timeout(NOTIFY_TIMEOUT_MS)]);
    const ctx = { signal, logger: log, report: async () => undefined, follow: () => undefined };
    let line: string;
    try {
      const outcome = await notifier.invoke(target, ctx);
      line = outcome.status === 'failed' ? `Approval notification failed: ${outcome.summary}` : `Approvers notified: POST ${requirement.notifyUrl} (${outcome.statusLabel ?? 'delivered'})`;
    } catch (err) {
      line = `Approval notification failed: ${describeError(err)}`;
    }
    if (line.startsWith('Approval notification failed')) log.warn({ runId: run.runId }, line);
    if (this.closing.signal.aborted) return;
    await this.runs
      .write({ id: run.runId, orgId: run.orgId, action: run.action, invocationType: run.invocationMethod.type }, ROUTER, {
        status: 'IN_PROGRESS',
        statusDetail: 'WAITING_FOR_APPROVAL',
        source: 'ROUTER',
        log: line,
        // A note on a waiting run is an approval step of its own: it adds the log line, nothing else.
        approval: approval('NOTED'),
      })
      .catch(() => undefined);
  }
}
