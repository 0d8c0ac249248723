import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ALL_ORGS, Principal } from '../access/principal';
import type { ActionCatalog } from '../catalog/catalog';
import { inputProblems } from '../catalog/catalog';
import { ActionDefinition, operationOf, secretInputsOf, userInputsOf } from '../catalog/definition';
import type { JsonObject } from '../model/json';
import { encryptSecretInput } from '../model/secret-input';
import type { RunInfo } from '../model/status';
import { newRunId } from '../sample';
import type { RunRow } from '../store/run-store';
import { runView } from '../store/run-view';
import { principalOf } from './auth';
import { ApiError, notFound, parse } from './errors';
import type { RunsService } from './service';

/** Port's body for executing an action: the user inputs, and the entity for a DAY-2 or DELETE action. */
export const executeBody = z.looseObject({
  properties: z.record(z.string(), z.unknown()).default({}),
  entity: z.string().min(1).max(1024).nullable().optional(),
});

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** What `principal` may do with an action: run it, not see it (`orgs`), or see it and be refused (`permissions.execute`). */
export function accessTo(def: ActionDefinition, principal: Principal): 'ok' | 'hidden' | 'forbidden' {
  if (def.orgs && !def.orgs.includes(principal.orgId)) return 'hidden';
  // An operator sees every org but runs actions in none.
  if (principal.orgId === ALL_ORGS) return 'forbidden';
  const rule = def.permissions?.execute;
  if (!rule) return 'ok';
  const allowed = rule.clients.includes(principal.clientId) || principal.roles.some((r) => rule.roles.includes(r));
  return allowed ? 'ok' : 'forbidden';
}

/** The actions `principal` may run, in the catalog's order (the self-service page). */
export function executableActions(catalog: ActionCatalog | undefined, principal: Principal): ActionDefinition[] {
  return catalog ? catalog.all().filter((def) => accessTo(def, principal) === 'ok') : [];
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

type Origin = 'API' | 'UI';

/** Port's run message for an execution (what Port itself would publish). */
function runMessage(def: ActionDefinition, runId: string, principal: Principal, inputs: JsonObject, entity: string | null, origin: Origin): JsonObject {
  const blueprint = typeof def.blueprint === 'string' ? def.blueprint : null;
  const secret = secretInputsOf(def).filter((name) => name in inputs);
  return {
    action: def.identifier,
    resourceType: 'run',
    status: 'TRIGGERED',
    trigger: { by: triggeredBy(principal), origin, at: new Date().toISOString() },
    context: { entity, blueprint, runId },
    payload: {
      entity: entity === null ? null : { identifier: entity, ...(blueprint ? { blueprint } : {}) },
      action: { invocationMethod: def.invocationMethod as JsonObject, trigger: operationOf(def) },
      properties: inputs,
      censoredProperties: secret,
    },
  };
}

/**
 * Port's `trigger.by`: a client by its id; a person (OIDC) by their
 * subject, with their email and name as Port's `user` object.
 */
function triggeredBy(principal: Principal): JsonObject {
  const person = principal.person;
  if (!person) return { orgId: principal.orgId, userId: principal.clientId, user: null };
  const [firstName, ...rest] = (person.name ?? '').split(' ');
  return { orgId: principal.orgId, userId: person.subject, user: { email: person.email, firstName: firstName || null, lastName: rest.join(' ') || null } };
}

/** What the run's first update says of it before the router's own: where it came from. */
function firstInfo(principal: Principal, origin: Origin, repeats: string | null): RunInfo {
  return {
    blueprint: null,
    entityIdentifier: null,
    entity: null,
    properties: null,
    userId: principal.person?.subject ?? principal.clientId,
    userEmail: principal.person?.email ?? null,
    origin,
    actionTrigger: null,
    invocation: null,
    createdAt: Date.now(),
    triggerPartition: null,
    agentPayload: null,
    repeats,
  };
}

export interface ExecuteRequest {
  properties: Record<string, unknown>;
  entity: string | null;
}

export interface ExecuteOptions {
  /** API (Port's execute route) or UI (the self-service page). */
  origin: Origin;
  /** Same key, same run: a retried request returns the run it made. */
  idempotencyKey?: string;
  /** "Run again": the run this one repeats. */
  repeats?: string | null;
}

/**
 * Runs an action for `principal`: the inputs are checked with the
 * catalog's own rules (422 naming each field), the run's first update goes
 * on the status topic and is applied before this returns (a GET right
 * after finds it), then its trigger event goes on TRIGGER_TOPIC for the
 * router to route like any other. Nothing is written when a check fails.
 */
export async function executeAction(
  runs: RunsService,
  principal: Principal,
  def: ActionDefinition,
  request: ExecuteRequest,
  options: ExecuteOptions,
): Promise<{ run: RunRow; created: boolean }> {
  const access = accessTo(def, principal);
  if (access === 'hidden') throw notFound(`action ${def.identifier}`);
  if (principal.orgId === ALL_ORGS) throw new ApiError(403, 'forbidden', "an operator sees every org but runs actions in none: execute as one of the org's clients");
  if (access === 'forbidden') throw new ApiError(403, 'forbidden', `${principal.clientId} may not execute ${def.identifier} (permissions.execute)`);
  const { inputs, problems } = inputProblems(def, request.properties as JsonObject, secretInputsOf(def));
  // Port's rule: an input the action does not declare is refused, not passed on.
  const declared = userInputsOf(def).properties;
  for (const name of Object.keys(request.properties)) if (!(name in declared)) problems.push({ field: name, message: 'not an input of this action' });
  const operation = operationOf(def);
  const entity = request.entity;
  const takesEntity = operation === 'DAY-2' || operation === 'DELETE';
  if (takesEntity && entity === null) problems.push({ field: 'entity', message: `required for a ${operation} action` });
  if (!takesEntity && entity !== null) problems.push({ field: 'entity', message: `a ${operation ?? 'CREATE'} action takes no entity` });
  if (problems.length) {
    const message = problems.map((p) => `${p.field}: ${p.message}`).join('; ');
    throw new ApiError(422, 'invalid_request', `user inputs of "${def.identifier}" are invalid: ${message}`, {}, { details: problems });
  }
  // Secret inputs never reach Kafka in clear: encrypted here, as Port encrypts them before they leave it.
  const secrets = secretInputsOf(def).filter((name) => typeof inputs[name] === 'string');
  const key = secrets.length > 0 ? runs.secretKeyFor(principal.orgId) : null;
  if (secrets.length > 0 && !key) {
    const details = secrets.map((field) => ({ field, message: 'cannot be encrypted: the org has no secret of 32 bytes or more on this router' }));
    throw new ApiError(422, 'invalid_request', `secret inputs of "${def.identifier}" cannot be encrypted: the org has no secret of 32 bytes or more`, {}, { details });
  }
  const sealed: JsonObject = { ...inputs };
  for (const name of secrets) sealed[name] = encryptSecretInput(inputs[name] as string, key!);
  const runId = runIdFor(principal, def.identifier, options.idempotencyKey);
  // What was asked, recorded on the run's first log line: a replayed key must ask the same.
  const asked = createHash('sha256').update(JSON.stringify({ properties: request.properties, entity })).digest('base64url').slice(0, 16);
  const known = runs.store.getRun(runId);
  if (known) {
    if (known.orgId !== principal.orgId) throw new ApiError(409, 'conflict', 'the Idempotency-Key names a run of another org');
    const first = runs.store.logs(runId, 1, 0)[0]?.message ?? '';
    if (!first.endsWith(`(request ${asked})`)) throw new ApiError(422, 'idempotency_key_reused', 'the Idempotency-Key was used for another request (other inputs or entity); nothing was written');
    return { run: known, created: false };
  }
  const ref = { id: runId, orgId: principal.orgId, action: def.identifier, invocationType: String(def.invocationMethod.type).toUpperCase() };
  const where = options.origin === 'UI' ? 'from the console' : 'through the API';
  const again = options.repeats ? `, running ${options.repeats} again` : '';
  const { run } = await runs.writeApplied(ref, principal.clientId, {
    status: 'IN_PROGRESS',
    source: 'ROUTER',
    statusLabel: 'triggered',
    log: `Triggered by ${principal.clientId} ${where}${again} (request ${asked})`,
    run: firstInfo(principal, options.origin, options.repeats ?? null),
  });
  try {
    const value = await runs.encodeTrigger(runMessage(def, runId, principal, sealed, entity, options.origin));
    await runs.producer.send({ topic: runs.triggerTopic, messages: [{ key: runId, value }] });
  } catch (err) {
    await runs.write(ref, principal.clientId, { status: 'FAILURE', source: 'ROUTER', statusLabel: 'not triggered', summary: 'The trigger event could not be written; run the action again' }).catch(() => undefined);
    throw err;
  }
  return { run, created: true };
}

/** The Idempotency-Key header, checked: 1 to 255 visible ASCII characters. */
export function idempotencyKeyOf(header: string | string[] | undefined): string | undefined {
  if (header !== undefined && (typeof header !== 'string' || !IDEMPOTENCY_KEY.test(header))) {
    throw new ApiError(422, 'invalid_request', 'Idempotency-Key: 1 to 255 visible ASCII characters');
  }
  return header;
}

/** Port's execute route: `POST /v1/actions/{action_identifier}/runs`. */
export function executeRoutes(app: FastifyInstance, runs: RunsService): void {
  app.post<{ Params: { action: string } }>('/v1/actions/:action/runs', async (request, reply) => {
    const principal = await principalOf(runs, request);
    const def = runs.catalog?.get(request.params.action);
    if (!def || accessTo(def, principal) === 'hidden') throw notFound(`action ${request.params.action}`);
    const body = parse(executeBody, request.body ?? {});
    const idempotencyKey = idempotencyKeyOf(request.headers['idempotency-key']);
    const { run } = await executeAction(runs, principal, def, { properties: body.properties, entity: body.entity ?? null }, { origin: 'API', idempotencyKey });
    const options = { actionTitle: (a: string) => runs.catalog?.get(a)?.title ?? null };
    return reply.code(202).send({ ok: true, run: runView(run, options) });
  });
}
