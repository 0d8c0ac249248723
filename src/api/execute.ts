import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ALL_ORGS, Principal } from '../access/principal';
import { inputProblems } from '../catalog/catalog';
import { ActionDefinition, operationOf, userInputsOf } from '../catalog/definition';
import type { JsonObject } from '../model/json';
import { newRunId } from '../sample';
import { runView } from '../store/run-view';
import { principalOf } from './auth';
import { ApiError, notFound, parse } from './errors';
import type { RunsService } from './service';

/** Port's body for executing an action: the user inputs, and the entity for a DAY-2 or DELETE action. */
const executeBody = z.looseObject({
  properties: z.record(z.string(), z.unknown()).default({}),
  entity: z.string().min(1).max(1024).nullable().optional(),
});

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** Is `principal` offered `def` (its `orgs`), and may it execute it (`permissions.execute`)? */
function access(def: ActionDefinition, principal: Principal): 'ok' | 'hidden' | 'forbidden' {
  if (def.orgs && !def.orgs.includes(principal.orgId)) return 'hidden';
  const rule = def.permissions?.execute;
  if (!rule) return 'ok';
  const allowed = rule.clients.includes(principal.clientId) || principal.roles.some((r) => rule.roles.includes(r));
  return allowed ? 'ok' : 'forbidden';
}

/**
 * The run id of a request: random, or (with an Idempotency-Key) the same
 * for the same client, action and key, so a retried request finds its run
 * on every instance without any shared state but the store.
 */
function runIdFor(principal: Principal, action: string, key: string | undefined): string {
  if (!key) return newRunId();
  const digest = createHash('sha256').update(`${principal.orgId}\0${principal.clientId}\0${action}\0${key}`).digest('base64url');
  return `r_${digest.slice(0, 16)}`;
}

/** Port's run message for an execution through the API (what Port itself would publish). */
function runMessage(def: ActionDefinition, runId: string, principal: Principal, inputs: JsonObject, entity: string | null): JsonObject {
  const blueprint = typeof def.blueprint === 'string' ? def.blueprint : null;
  return {
    action: def.identifier,
    resourceType: 'run',
    status: 'TRIGGERED',
    trigger: { by: { orgId: principal.orgId, userId: principal.clientId, user: null }, origin: 'API', at: new Date().toISOString() },
    context: { entity, blueprint, runId },
    payload: {
      entity: entity === null ? null : { identifier: entity, ...(blueprint ? { blueprint } : {}) },
      action: { invocationMethod: def.invocationMethod as JsonObject, trigger: operationOf(def) },
      properties: inputs,
      censoredProperties: [],
    },
  };
}

/**
 * Port's execute route: `POST /v1/actions/{action_identifier}/runs`. The
 * inputs are checked with the catalog's own rules (422 naming each field),
 * the run's first update goes on the status topic and is applied before
 * the answer (a GET right after the 202 finds it), then its trigger event
 * goes on TRIGGER_TOPIC for the router to route like any other.
 */
export function executeRoutes(app: FastifyInstance, runs: RunsService): void {
  app.post<{ Params: { action: string } }>('/v1/actions/:action/runs', async (request, reply) => {
    const principal = await principalOf(runs, request);
    const def = runs.catalog?.get(request.params.action);
    if (!def || access(def, principal) === 'hidden') throw notFound(`action ${request.params.action}`);
    if (principal.orgId === ALL_ORGS) throw new ApiError(403, 'forbidden', "an operator sees every org but runs actions in none: execute as one of the org's clients");
    if (access(def, principal) === 'forbidden') throw new ApiError(403, 'forbidden', `${principal.clientId} may not execute ${def.identifier} (permissions.execute)`);
    const body = parse(executeBody, request.body ?? {});
    const key = request.headers['idempotency-key'];
    if (key !== undefined && (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key))) {
      throw new ApiError(422, 'invalid_request', 'Idempotency-Key: 1 to 255 visible ASCII characters');
    }
    const { inputs, problems } = inputProblems(def, body.properties as JsonObject);
    // Port's rule: an input the action does not declare is refused, not passed on.
    const declared = userInputsOf(def).properties;
    for (const name of Object.keys(body.properties)) if (!(name in declared)) problems.push({ field: name, message: 'not an input of this action' });
    const operation = operationOf(def);
    const entity = body.entity ?? null;
    const takesEntity = operation === 'DAY-2' || operation === 'DELETE';
    if (takesEntity && entity === null) problems.push({ field: 'entity', message: `required for a ${operation} action` });
    if (!takesEntity && entity !== null) problems.push({ field: 'entity', message: `a ${operation ?? 'CREATE'} action takes no entity` });
    if (problems.length) {
      const message = problems.map((p) => `${p.field}: ${p.message}`).join('; ');
      throw new ApiError(422, 'invalid_request', `user inputs of "${def.identifier}" are invalid: ${message}`, {}, { details: problems });
    }
    const runId = runIdFor(principal, def.identifier, key);
    // What was asked, recorded on the run's first log line: a replayed key must ask the same.
    const asked = createHash('sha256').update(JSON.stringify({ properties: body.properties, entity })).digest('base64url').slice(0, 16);
    const options = { actionTitle: (a: string) => runs.catalog?.get(a)?.title ?? null };
    const known = runs.store.getRun(runId);
    if (known) {
      if (known.orgId !== principal.orgId) throw new ApiError(409, 'conflict', 'the Idempotency-Key names a run of another org');
      const first = runs.store.logs(runId, 1, 0)[0]?.message ?? '';
      if (!first.endsWith(`(request ${asked})`)) throw new ApiError(422, 'idempotency_key_reused', 'the Idempotency-Key was used for another request (other inputs or entity); nothing was written');
      return reply.code(202).send({ ok: true, run: runView(known, options) });
    }
    const ref = { id: runId, orgId: principal.orgId, action: def.identifier, invocationType: String(def.invocationMethod.type).toUpperCase() };
    const { run } = await runs.writeApplied(ref, principal.clientId, { status: 'IN_PROGRESS', source: 'ROUTER', statusLabel: 'triggered', log: `Triggered by ${principal.clientId} through the API (request ${asked})` });
    try {
      await runs.producer.send({ topic: runs.triggerTopic, messages: [{ key: runId, value: JSON.stringify(runMessage(def, runId, principal, inputs, entity)) }] });
    } catch (err) {
      await runs.write(ref, principal.clientId, { status: 'FAILURE', source: 'ROUTER', statusLabel: 'not triggered', summary: 'The trigger event could not be written; run the action again' }).catch(() => undefined);
      throw err;
    }
    return reply.code(202).send({ ok: true, run: runView(run, options) });
  });
}
