import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { Principal, canSee } from '../access/principal';
import { ApiError, notFound, parse } from '../api/errors';
import { accessTo, executableActions, executeAction, executeBody } from '../api/execute';
import type { RunsService } from '../api/service';
import { RUN_ID_PATTERN } from '../model/run';
import { actionPage, actionsPage } from './pages';
import { assertSameOrigin } from './session';
import { actionCard, actionForm } from './views';

/** What the console's routes share with this file: who asks, and how a page is answered. */
export interface ConsoleHelpers {
  apiPrincipal(request: FastifyRequest): Promise<Principal>;
  pagePrincipal(request: FastifyRequest, reply: FastifyReply): Promise<Principal | null>;
  html(reply: FastifyReply, body: string, status?: number): FastifyReply;
}

/** The console's execute body: Port's, and the run "Run again" repeats. */
const consoleExecuteBody = executeBody.extend({ repeats: z.string().regex(RUN_ID_PATTERN).optional() });

/**
 * The self-service page: the actions a principal may run (`orgs` and
 * `permissions.execute` of the catalog, as the execute route decides),
 * a form per action built in the page from its `userInputs`, and the
 * run it starts, with origin UI. An action the principal may not run is
 * not shown at all: its form answers 404 like an unknown one.
 */
export function selfServiceRoutes(app: FastifyInstance, runs: RunsService, helpers: ConsoleHelpers): void {
  const { apiPrincipal, pagePrincipal, html } = helpers;

  /** The action if `principal` may run it; 404 otherwise (unknown, not offered, not permitted). */
  function runnable(principal: Principal, id: string) {
    const def = runs.catalog?.get(id);
    if (!def || accessTo(def, principal) !== 'ok') throw notFound(`action ${id}`);
    return def;
  }

  app.get('/actions', async (request, reply) => {
    const principal = await pagePrincipal(request, reply);
    return principal ? html(reply, actionsPage(principal)) : reply;
  });
  app.get<{ Params: { id: string }; Querystring: { again?: string } }>('/actions/:id', async (request, reply) => {
    const principal = await pagePrincipal(request, reply);
    if (!principal) return reply;
    const again = typeof request.query.again === 'string' && RUN_ID_PATTERN.test(request.query.again) ? request.query.again : null;
    return html(reply, actionPage(principal, request.params.id, again));
  });

  app.get('/console/api/actions', async (request) => {
    const principal = await apiPrincipal(request);
    return { ok: true, actions: executableActions(runs.catalog, principal).map(actionCard) };
  });

  app.get<{ Params: { id: string } }>('/console/api/actions/:id', async (request) => {
    const principal = await apiPrincipal(request);
    return { ok: true, action: actionForm(runnable(principal, request.params.id)) };
  });

  /** The form's submission: same-origin JSON only, as every other write of the console. */
  app.post<{ Params: { id: string } }>('/console/api/actions/:id/runs', async (request, reply) => {
    const principal = await apiPrincipal(request);
    assertSameOrigin(request);
    const def = runnable(principal, request.params.id);
    const body = parse(consoleExecuteBody, request.body ?? {});
    if (body.repeats !== undefined) {
      const earlier = runs.store.getRun(body.repeats);
      if (!earlier || !canSee(principal, earlier.orgId) || earlier.action !== def.identifier) {
        throw new ApiError(422, 'invalid_request', `repeats: no run ${body.repeats} of ${def.identifier} that you can see`, {}, { details: [{ field: 'repeats', message: 'not a run of this action that you can see' }] });
      }
    }
    const { run } = await executeAction(runs, principal, def, { properties: body.properties, entity: body.entity ?? null }, { origin: 'UI', repeats: body.repeats ?? null });
    return reply.code(202).send({ ok: true, run: { id: run.id, status: run.status } });
  });
}
