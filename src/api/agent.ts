import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Json } from '../model/json';
import { principalOf } from './auth';
import { ALL_ORGS } from '../access/principal';
import { parse } from './errors';
import { visibleRun } from './runs';
import type { RunsService } from './service';

const claimBody = z.strictObject({
  installationId: z.string().max(256).optional(),
  limit: z.number().int().min(1).max(100).default(10),
  invocationMethod: z.string().optional(),
});
const ackBody = z.strictObject({ runIds: z.array(z.string().max(128)).max(100) });

/**
 * Port's agent in polling mode (STREAMER_NAME=POLLING): it claims pending
 * agent runs over HTTP, acknowledges each, then reports as any backend.
 * A claim is an update on the status topic: the first valid claim in topic
 * order wins, so a run goes to one agent even with several instances.
 */
export function agentRoutes(app: FastifyInstance, runs: RunsService, claimSeconds: number): void {
  app.post('/v1/actions/runs/claim-pending', async (request) => {
    const principal = await principalOf(runs, request);
    const body = parse(claimBody, request.body);
    if (principal.orgId === ALL_ORGS || (body.invocationMethod && body.invocationMethod !== 'WEBHOOK')) return { ok: true, runs: [] };
    const now = Date.now();
    const health = runs.writer.health();
    // A claim the store cannot apply in time is handed to nobody: it cannot be known to have won.
    if (!health.ok) return { ok: true, runs: [] };
    const candidates = runs.store.claimable(principal.orgId, now, body.limit);
    const outcomes = await Promise.all(
      candidates.map(async (run) => {
        const written = await runs
          .write(run, principal.clientId, { status: 'IN_PROGRESS', claim: { by: principal.clientId, until: now + claimSeconds * 1000, acked: false } })
          .catch(() => null);
        const won = written !== null && written.applied !== 'timeout' && written.applied.result === 'applied';
        return won && run.agentPayload ? { id: run.id, payload: JSON.parse(run.agentPayload) as Json } : null;
      }),
    );
    return { ok: true, runs: outcomes.filter((c): c is { id: string; payload: Json } => c !== null) };
  });

  app.patch('/v1/actions/runs/ack', async (request) => {
    const principal = await principalOf(runs, request);
    const body = parse(ackBody, request.body);
    let ackedCount = 0;
    for (const id of new Set(body.runIds)) {
      const run = await visibleRun(runs, principal, id).catch(() => null);
      if (!run || run.claimBy !== principal.clientId || run.endedAt !== null) continue;
      const written = await runs.writeApplied(run, principal.clientId, {
        status: 'IN_PROGRESS',
        claim: { by: principal.clientId, until: run.claimUntil ?? Date.now(), acked: true },
      });
      if (written.applied.result === 'applied') ackedCount++;
    }
    return { ok: true, ackedCount };
  });

  // Called by Port's agent as well; nothing to do here but answer.
  app.post('/v1/workflows/runs/claim-pending', async (request) => {
    await principalOf(runs, request);
    return { ok: true, nodeRuns: [] };
  });
  app.patch('/v1/organization', async (request) => {
    await principalOf(runs, request);
    return { ok: true };
  });
}
