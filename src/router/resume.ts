import { describeError } from '../errors';
import type { InvocationContext } from '../invokers/invoker';
import type { InvokerRegistry } from '../invokers/index';
import { lazyChild, Logger } from '../log';
import { FrozenRun, isInvocationType } from '../model/run';
import type { Followers } from './followers';
import type { StatusReporter } from './stages/report';

/** A run to follow again after a restart or a rebalance. */
export interface ResumableRun {
  run: FrozenRun;
  externalRunId: string;
  startedAt: number;
  partition: number;
}

export interface ResumerDeps {
  /**
   * Unfinished runs that were being followed (GitHub workflow runs, GitLab
   * pipelines) and came from these trigger partitions; from the run store,
   * once it caught up with the status topic.
   */
  followable: (partitions: number[]) => Promise<ResumableRun[]>;
  invokers: InvokerRegistry;
  followers: Followers;
  reporter: StatusReporter;
  logger: Logger;
}

/**
 * Resuming follow-ups: when a router gets trigger partitions, it follows
 * again the unfinished runs that came from them (the old owner stopped
 * following them when it lost the partitions, or stopped).
 */
export class Resumer {
  constructor(private readonly deps: ResumerDeps) {}

  /** Follows again the runs of `partitions` that `owns` still says are ours. */
  async resume(partitions: number[], owns: (partition: number) => boolean, stopping: () => boolean): Promise<void> {
    const { followable, invokers, followers, logger } = this.deps;
    if (partitions.length === 0) return;
    let runs: ResumableRun[];
    try {
      runs = await followable(partitions);
    } catch (err) {
      logger.warn({ err: describeError(err) }, 'cannot list the runs to follow again');
      return;
    }
    for (const r of runs) {
      const { run } = r;
      if (stopping() || followers.has(run.runId) || !owns(r.partition)) continue;
      const invoker = isInvocationType(run.invocationMethod.type) ? invokers.get(run.invocationMethod.type) : undefined;
      const resume = invoker?.resume?.bind(invoker);
      if (!invoker || !resume) continue;
      const log = lazyChild(logger, { runId: run.runId, orgId: run.orgId, invoker: invoker.type });
      log.info({ externalRunId: r.externalRunId }, 'following again a run left unfinished');
      // Updates of a run followed again add to what it is: they do not describe it again.
      const updates = this.deps.reporter.forRun(run, { partition: r.partition, agentPayload: null, log, describe: false });
      followers.start(
        (signal) => {
          const ctx: InvocationContext = { signal, logger: log, report: (fields) => updates.report(fields, signal), follow: () => undefined };
          return resume(run, { externalRunId: r.externalRunId, startedAt: r.startedAt }, ctx, signal);
        },
        log,
        run.runId,
        r.partition,
      );
    }
  }
}
