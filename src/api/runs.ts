import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { isTerminal } from '../model/status';
import type { StatusFields } from '../status/publisher';
import type { RunRow } from '../store/run-store';
import { logIdAt } from '../store/run-store';
import { LIMITS, decodeCursor } from '../store/queries';
import { principalOf } from './auth';
import { ALL_ORGS, Principal, canSee } from '../access/principal';
import { ApiError, invalid, notFound, parse } from './errors';
import { logView, runView } from '../store/run-view';
import { RUN_ID_PATTERN } from '../model/run';
import type { RunsService } from './service';

/** How long a write for a run the store does not know yet waits for it to appear. */
export const UNKNOWN_RUN_WAIT_MS = 3_000;
/** At most this many requests wait for unknown runs at once; more get 404 at once. */
const MAX_RUN_WAITERS = 1_000;
/** A backend's response is kept up to this size (JSON text). */
export const MAX_RESPONSE_CHARS = 256 * 1024;

const terminal = z.enum(['SUCCESS', 'FAILURE']);
const text = (max: number) => z.string().max(max);

const patchBody = z.strictObject({
  status: terminal.optional(),
  statusLabel: text(256).optional(),
  link: z.union([text(2048), z.array(text(2048)).max(50)]).optional(),
  summary: text(4096).optional(),
  externalRunId: text(256).optional(),
  /** Deprecated legacy form: accepted and ignored. */
  message: z.record(z.string(), z.unknown()).optional(),
});

const logBody = z.strictObject({
  message: text(64 * 1024),
  terminationStatus: terminal.optional(),
  statusLabel: text(256).optional(),
});

const responseBody = z.strictObject({ response: z.unknown() });

const many = z.union([z.string(), z.array(z.string())]).transform((v) => (Array.isArray(v) ? v : [v]));
const bool = z.enum(['true', 'false']).transform((v) => v === 'true');
const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/** Port's filters, then ours (status, invocation type, org for operators, free text, paging). */
const listQuery = z.looseObject({
  entity: z.string().optional(),
  blueprint: z.string().optional(),
  active: bool.optional(),
  user_email: z.string().optional(),
  user_id: z.string().optional(),
  external_run_id: z.string().optional(),
  action: z.string().optional(),
  source: many.optional(),
  limit: int(1, 1000).default(100),
  offset: int(0, LIMITS.maxOffset).default(0),
  /** The `next` of the previous page: pages past LIMITS.maxOffset go by cursor. */
  cursor: z.string().max(64).optional(),
  exclude: many.optional(),
  version: z.string().optional(),
  status: many.optional(),
  invocation_type: many.optional(),
  org: z.string().optional(),
  q: z.string().max(256).optional(),
});

const viewQuery = z.looseObject({ version: z.string().optional(), exclude: many.optional() });

const logsQuery = z.looseObject({ limit: int(1, 50).default(50), offset: int(0, 10_000_000).default(0) });

/** The run `id` as `principal` may see it, or 404 (unknown, another org's, or a malformed id). */
export async function visibleRun(runs: RunsService, principal: Principal, id: string, waitIfUnknown = false): Promise<RunRow> {
  if (!RUN_ID_PATTERN.test(id)) throw notFound();
  let run = runs.store.getRun(id);
  const visible = (r: RunRow | undefined): r is RunRow => r !== undefined && canSee(principal, r.orgId);
  // A backend may report before the router's first update of the run is
  // applied (a webhook receiver that calls back at once): wait briefly.
  // Another org's run waits just as long before its 404, so the timing
  // does not tell that the run exists.
  if (!visible(run) && waitIfUnknown && runs.writer.runWaitCount < MAX_RUN_WAITERS) {
    const until = Date.now() + UNKNOWN_RUN_WAIT_MS;
    await runs.writer.awaitRun(id, UNKNOWN_RUN_WAIT_MS);
    run = runs.store.getRun(id);
    if (!visible(run)) await new Promise((r) => setTimeout(r, Math.max(0, until - Date.now())));
  }
  if (!visible(run)) throw notFound();
  return run;
}

/** A run that waits for approval takes only decisions (PATCH …/approval), nothing from backends. */
function assertNotWaiting(run: RunRow): void {
  if (run.approvalState === 'WAITING' || run.approvalState === 'APPROVED') {
    throw invalid(`run ${run.id} waits for approval: it has not reached a backend yet`);
  }
}

function ended(run: RunRow): ApiError {
  return invalid(`run ${run.id} ended ${run.status}; a finished run cannot change`);
}

function viewOptions(runs: RunsService, query: { version?: string; exclude?: string[] }) {
  return {
    v1: query.version === 'v1',
    exclude: query.exclude,
    actionTitle: (id: string) => runs.catalog?.get(id)?.title ?? null,
  };
}

/** Port's runs routes: read, report (PATCH), logs, response. */
export function runRoutes(app: FastifyInstance, runs: RunsService): void {
  const auth = (request: FastifyRequest) => principalOf(runs, request);
  const versionOf = (request: FastifyRequest) => parse(viewQuery, request.query);

  app.get('/v1/actions/runs', async (request, reply) => {
    const principal = await auth(request);
    const q = parse(listQuery, request.query);
    const admin = principal.orgId === ALL_ORGS;
    const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    if (cursor === null) throw invalid('cursor: not a cursor this API gave');
    const body = await runs.queries.listRunsJson({
      orgId: admin ? q.org : principal.orgId,
      entity: q.entity,
      blueprint: q.blueprint,
      active: q.active,
      userEmail: q.user_email,
      userId: q.user_id,
      externalRunId: q.external_run_id,
      action: q.action,
      sources: q.source,
      statuses: q.status,
      invocationTypes: q.invocation_type,
      text: q.q,
    }, { limit: q.limit, offset: cursor ? 0 : q.offset, ...(cursor ? { cursor } : {}) }, { v1: q.version === 'v1', exclude: q.exclude });
    return reply.type('application/json; charset=utf-8').send(body);
  });

  app.get<{ Params: { id: string } }>('/v1/actions/runs/:id', async (request) => {
    const principal = await auth(request);
    const run = await visibleRun(runs, principal, request.params.id);
    return { ok: true, run: runView(run, viewOptions(runs, versionOf(request))) };
  });

  app.patch<{ Params: { id: string } }>('/v1/actions/runs/:id', async (request) => {
    const principal = await auth(request);
    const body = parse(patchBody, request.body);
    const run = await visibleRun(runs, principal, request.params.id, true);
    const fields: StatusFields = {
      status: body.status ?? 'IN_PROGRESS',
      statusLabel: body.statusLabel,
      summary: body.summary,
      externalRunId: body.externalRunId,
      links: body.link === undefined ? undefined : Array.isArray(body.link) ? body.link : [body.link],
    };
    const changes = body.status ?? body.statusLabel ?? body.summary ?? body.externalRunId ?? body.link;
    if (changes === undefined) return { ok: true, run: runView(run, viewOptions(runs, versionOf(request))) };
    if (isTerminal(run.status)) throw ended(run);
    assertNotWaiting(run);
    const written = await runs.writeApplied(run, principal.clientId, fields);
    if (written.applied.result === 'ignored') throw ended(written.run);
    return { ok: true, run: runView(written.run, viewOptions(runs, versionOf(request))) };
  });

  app.post<{ Params: { id: string } }>('/v1/actions/runs/:id/logs', async (request, reply) => {
    const principal = await auth(request);
    const body = parse(logBody, request.body);
    const run = await visibleRun(runs, principal, request.params.id, true);
    if (isTerminal(run.status)) throw ended(run);
    assertNotWaiting(run);
    const written = await runs.writeApplied(run, principal.clientId, {
      status: body.terminationStatus ?? 'IN_PROGRESS',
      statusLabel: body.statusLabel,
      log: body.message,
    });
    if (written.applied.result === 'ignored') throw ended(written.run);
    const log = runs.store.log(logIdAt(written.applied.partition, written.applied.offset));
    if (!log) throw new ApiError(500, 'internal_error', 'the log was applied but cannot be read');
    return reply.code(201).send({ ok: true, runLog: logView(log) });
  });

  app.get<{ Params: { id: string } }>('/v1/actions/runs/:id/logs', async (request) => {
    const principal = await auth(request);
    const q = parse(logsQuery, request.query);
    const run = await visibleRun(runs, principal, request.params.id);
    return { ok: true, runLogs: runs.store.logs(run.id, q.limit, q.offset).map(logView) };
  });

  app.patch<{ Params: { id: string } }>('/v1/actions/runs/:id/response', async (request) => {
    const principal = await auth(request);
    const body = parse(responseBody, request.body);
    const run = await visibleRun(runs, principal, request.params.id, true);
    if (isTerminal(run.status)) throw ended(run);
    assertNotWaiting(run);
    const response = JSON.stringify(body.response ?? null);
    if (response.length > MAX_RESPONSE_CHARS) throw new ApiError(413, 'payload_too_large', `response is over ${MAX_RESPONSE_CHARS} characters`);
    const written = await runs.writeApplied(run, principal.clientId, { status: 'IN_PROGRESS', response });
    if (written.applied.result === 'ignored') throw ended(written.run);
    return { ok: true, run: runView(written.run, viewOptions(runs, versionOf(request))) };
  });
}
