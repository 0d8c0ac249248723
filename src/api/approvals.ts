import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Approvals, Decided } from '../approvals/approvals';
import type { RunRow } from '../store/run-store';
import { principalOf } from './auth';
import { ApiError, invalid, parse } from './errors';
import { visibleRun } from './runs';
import { runView } from '../store/run-view';
import type { RunsService } from './service';

export const decisionBody = z.strictObject({
  status: z.enum(['APPROVE', 'DECLINE']),
  description: z.string().max(1024).optional(),
});
export const cancelBody = z.strictObject({ description: z.string().max(1024).optional() });

/** Approvals of this service, or 422: no action here requires approval, so no run can wait. */
export function approvalsOf(runs: RunsService): Approvals {
  if (!runs.approvals) throw invalid('no action of this router requires approval (ACTIONS_PATH)');
  return runs.approvals;
}

/** A decision or a cancel as the API answers it: the run, or Port's envelope saying why not. */
export function decidedRun(decided: Decided): RunRow {
  if ('run' in decided) return decided.run;
  switch (decided.refused) {
    case 'forbidden':
      throw new ApiError(403, 'forbidden', decided.message);
    case 'not-applied':
      throw new ApiError(503, 'unavailable', decided.message);
    default:
      throw invalid(decided.message);
  }
}

/** Who may decide on a run, and what each decided. */
export function approversView(runs: RunsService, id: string) {
  const row = runs.store.getRun(id)!;
  const listed = JSON.parse(row.approvers ?? '[]') as string[];
  const decisions = runs.store.approvals(id);
  const byClient = new Map(decisions.map((d) => [d.clientId, d]));
  const view = (clientId: string) => {
    const d = byClient.get(clientId);
    return { clientId, state: d ? d.decision : 'PENDING', description: d?.description ?? null, decidedAt: d ? new Date(d.at).toISOString() : null };
  };
  // An org admin who decided without being listed shows too.
  const extra = decisions.filter((d) => !listed.includes(d.clientId)).map((d) => view(d.clientId));
  return { type: row.approvalType, state: row.approvalState, approvers: [...listed.map(view), ...extra] };
}

/**
 * Port's approval route, and ours beside it: the approvers of a run, and
 * cancelling a waiting run.
 */
export function approvalRoutes(app: FastifyInstance, runs: RunsService): void {
  app.patch<{ Params: { id: string } }>('/v1/actions/runs/:id/approval', async (request, reply) => {
    const principal = await principalOf(runs, request);
    const body = parse(decisionBody, request.body);
    const row = await visibleRun(runs, principal, request.params.id);
    const decided = decidedRun(await approvalsOf(runs).decide(principal, row, body.status, body.description ?? null));
    return reply.code(201).send({ ok: true, run: runView(decided, { actionTitle: (a) => runs.catalog?.get(a)?.title ?? null }) });
  });

  app.get<{ Params: { id: string } }>('/v1/actions/runs/:id/approvers', async (request) => {
    const principal = await principalOf(runs, request);
    const row = await visibleRun(runs, principal, request.params.id);
    if (!row.approvalType) throw invalid(`run ${row.id} does not require approval`);
    return { ok: true, ...approversView(runs, row.id) };
  });

  app.post<{ Params: { id: string } }>('/v1/actions/runs/:id/cancel', async (request) => {
    const principal = await principalOf(runs, request);
    const body = parse(cancelBody, request.body ?? {});
    const row = await visibleRun(runs, principal, request.params.id);
    const cancelled = decidedRun(await approvalsOf(runs).cancel(principal, row, body.description ?? null));
    return { ok: true, run: runView(cancelled, { actionTitle: (a) => runs.catalog?.get(a)?.title ?? null }) };
  });
}
