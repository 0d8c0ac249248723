import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LIMITS } from '../store/queries';
import { ALL_ORGS, Principal, canSee, isOrgAdmin, orgScope } from '../access/principal';
import { bearerPrincipal, failedSignIn } from '../api/auth';
import { ApiError, notFound, parse, unauthorized } from '../api/errors';
import type { RunsService } from '../api/service';
import { RUN_ID_PATTERN } from '../model/run';
import type { RunRow } from '../store/run-store';
import type { DeadLetterRow } from '../store/dead-letters';
import { MAX_RESEND, mayResend, resendLetters } from '../api/resend';
import { approvalsOf, approversView, cancelBody, decidedRun, decisionBody } from '../api/approvals';
import { LiveFeed, LiveOptions } from './live';
import { selfServiceRoutes } from './self-service';
import { accessTo } from '../api/execute';
import { deadLettersPage, loginPage, runPage, runsPage, signedInPage, signedOutPage } from './pages';
import { PERSON_COOKIE, SignInRefused } from './oidc/people';
import { Sessions, SessionOptions, assertSameOrigin } from './session';
import { consoleLogView, deadLetterDetail, deadLetterSummary, runDetail, runSummary, updateView } from './views';

/** The browser code and styles, served by this server (no CDN). */
const ASSETS_DIR = join(__dirname, '..', '..', 'console');
const ASSETS: Record<string, string> = { 'console.js': 'text/javascript; charset=utf-8', 'console.css': 'text/css; charset=utf-8' };

/** The run page shows this many of a run's last logs and updates; the rest stream in as they come. */
const DETAIL_LOGS = 500;
const DETAIL_UPDATES = 2_000;
const OVERVIEW_MINUTES = 15;

const loginBody = z.object({
  clientId: z.string().min(1).max(256),
  clientSecret: z.string().min(1).max(4096),
  next: z.string().max(2048).optional(),
});

const listQuery = z.looseObject({
  status: z.enum(['IN_PROGRESS', 'SUCCESS', 'FAILURE', 'WAITING_FOR_APPROVAL', 'DECLINED', '']).optional(),
  action: z.string().max(256).optional(),
  org: z.string().max(256).optional(),
  type: z.string().max(32).optional(),
  active: z.enum(['true', 'false', '']).optional(),
  q: z.string().max(256).optional(),
  offset: z.coerce.number().int().min(0).max(LIMITS.maxOffset).default(0),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
const changesQuery = z.looseObject({
  updates: z.coerce.number().int().min(0).default(0),
  logs: z.coerce.number().int().min(0).default(0),
});
const resendBody = z
  .strictObject({
    seq: z.number().int().min(1).optional(),
    /** `partition/offset` on the dead-letter topic, as the console and the CLI name a letter. */
    letter: z.string().regex(/^\d{1,9}\/\d{1,19}$/).optional(),
    reason: z.string().min(1).max(64).optional(),
  })
  .refine((b) => [b.seq, b.letter, b.reason].filter((v) => v !== undefined).length === 1, 'give one of seq, letter and reason');
const lettersQuery = z.looseObject({
  reason: z.string().max(64).optional(),
  before: z.coerce.number().int().min(1).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

/** A place to go back to after signing in: a path of this site, nothing else. */
/**
 * Where sign-in goes back to: a path of this site, percent-encoded as a
 * URL writes it (a Location header takes ASCII only), else `/`. Control
 * characters are refused before parsing: the URL parser drops tabs and
 * newlines, which would turn `/\t/evil.example` into `//evil.example`.
 */
function safeNext(next: string | undefined): string {
  if (!next || !/^\/(?![/\\])/.test(next) || next.includes('\\') || [...next].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) return '/';
  let url: URL;
  try {
    url = new URL(next, 'http://console.invalid');
  } catch {
    return '/';
  }
  const path = `${url.pathname}${url.search}${url.hash}`;
  return url.origin === 'http://console.invalid' && /^\/(?![/\\])/.test(path) ? path : '/';
}

const blank = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);

export interface ConsoleOptions extends SessionOptions {
  /** The overview's consumer lag: the router's and the store's, summed over partitions. */
  lag?: () => Promise<{ router: number | null; store: number | null }>;
  /** The live feed's stream limits (CONSOLE_LIVE_MAX_*). */
  live?: Partial<LiveOptions>;
}

/**
 * The runs console: pages at `/`, `/runs/:id` and `/dead-letters`, their
 * JSON under `/console/api`, and the live feed at `/console/events`.
 * Everything but the sign-in page needs a session (or, for the JSON and
 * the feed, an API Bearer token: the CLI's `runs watch`).
 */
export function consoleRoutes(app: FastifyInstance, runs: RunsService, options: ConsoleOptions): LiveFeed {
  const sessions = new Sessions(runs, options);
  const choices = { provider: options.provider ?? null, clientSignIn: options.clientSignIn ?? true };
  // A person's session renewed at its groups check goes back with the answer.
  app.addHook('onSend', async (request, reply, payload) => {
    const renewed = sessions.renewedCookie(request);
    if (renewed) void reply.setCookie(PERSON_COOKIE, renewed.cookie, renewed.people.cookieOptions(request, renewed.people.maxSeconds()));
    return payload;
  });
  const live = new LiveFeed(runs, options.live);
  const assets = new Map(Object.keys(ASSETS).map((name) => [name, readFileSync(join(ASSETS_DIR, name))]));
  // preClose: the streams are open requests, which would keep the server from closing.
  app.addHook('preClose', async () => live.close());

  /** An API Bearer token when the request has one (the CLI), else the session. */
  async function principalOf(request: FastifyRequest): Promise<Principal | null> {
    const bearer = await bearerPrincipal(runs, request);
    return bearer === undefined ? sessions.principal(request) : bearer;
  }
  async function apiPrincipal(request: FastifyRequest): Promise<Principal> {
    const principal = await principalOf(request);
    if (!principal) throw unauthorized('sign in, or send a Bearer token');
    return principal;
  }
  function html(reply: FastifyReply, body: string, status = 200): FastifyReply {
    return reply
      .code(status)
      .type('text/html; charset=utf-8')
      .send(body);
  }
  /** A page: its principal, or a redirect to the sign-in page (null). */
  async function pagePrincipal(request: FastifyRequest, reply: FastifyReply): Promise<Principal | null> {
    const principal = await sessions.principal(request);
    if (!principal) void reply.redirect(`/login?next=${encodeURIComponent(request.url)}`, 303);
    return principal;
  }

  for (const [name, type] of Object.entries(ASSETS)) {
    app.get(`/assets/${name}`, async (_request, reply) => reply.type(type).header('cache-control', 'no-cache').send(assets.get(name)));
  }

  app.register(async (forms) => {
    // The sign-in form posts urlencoded; only here (the API keeps refusing it).
    forms.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });

    forms.get<{ Querystring: { next?: string } }>('/login', async (request, reply) => html(reply, loginPage(null, safeNext(request.query.next), choices)));

    /** People: off to the provider, and back (OpenID Connect, authorization code with PKCE). */
    forms.get<{ Querystring: { next?: string } }>('/login/oidc', async (request, reply) => {
      const people = options.people?.();
      if (!people) return html(reply, loginPage('Sign-in through the identity provider is not available yet; try again in a moment.', '/', choices), 503);
      return reply.redirect(await people.begin(request, reply, safeNext(request.query.next)), 303);
    });
    forms.get('/login/oidc/callback', async (request, reply) => {
      const people = options.people?.();
      if (!people) return html(reply, loginPage('Sign-in through the identity provider is not available yet; try again in a moment.', '/', choices), 503);
      try {
        const next = await people.finish(request, reply);
        return html(reply, signedInPage(safeNext(next)));
      } catch (err) {
        if (!(err instanceof SignInRefused)) throw err;
        runs.logger.warn({ code: err.code, ip: request.ip }, 'console sign-in refused (OpenID Connect)');
        return html(reply, loginPage(err.message, '/', choices), err.status);
      }
    });

    forms.post('/login', async (request, reply) => {
      assertSameOrigin(request);
      if (!choices.clientSignIn) return html(reply, loginPage('Client sign-in is turned off here (CONSOLE_CLIENT_SIGNIN=false).', '/', choices), 403);
      const body = loginBody.safeParse(request.body ?? {});
      const next = safeNext(body.success ? body.data.next : undefined);
      // As the token route: the secret first, so a right one always signs in.
      const principal = body.success ? runs.clients.authenticate(body.data.clientId, body.data.clientSecret) : null;
      if (!principal) {
        const verdict = await failedSignIn(runs, 'console', request.ip, body.success ? body.data.clientId : '');
        if (verdict.status === 429) {
          void reply.header('retry-after', String(Math.ceil(verdict.retryAfterMs / 1000)));
          return html(reply, loginPage('Too many failed sign-ins; try again in a minute.', next, choices), 429);
        }
        return html(reply, loginPage('Those credentials were not accepted.', next, choices), 401);
      }
      await sessions.open(request, reply, principal);
      runs.logger.info({ clientId: principal.clientId, ip: request.ip }, 'console sign-in');
      return reply.redirect(next, 303);
    });

    forms.post('/logout', async (request, reply) => {
      assertSameOrigin(request);
      const atProvider = await sessions.close(request, reply);
      return atProvider ? html(reply, signedOutPage(atProvider, choices.provider ?? 'the identity provider')) : reply.redirect('/login', 303);
    });
  });

  selfServiceRoutes(app, runs, { apiPrincipal, pagePrincipal, html });

  app.get('/', async (request, reply) => {
    const principal = await pagePrincipal(request, reply);
    return principal ? html(reply, runsPage(principal)) : reply;
  });
  app.get<{ Params: { id: string } }>('/runs/:id', async (request, reply) => {
    const principal = await pagePrincipal(request, reply);
    return principal ? html(reply, runPage(principal, request.params.id)) : reply;
  });
  app.get('/dead-letters', async (request, reply) => {
    const principal = await pagePrincipal(request, reply);
    return principal ? html(reply, deadLettersPage(principal)) : reply;
  });

  app.get('/console/api/me', async (request) => {
    const p = await apiPrincipal(request);
    return { ok: true, clientId: p.clientId, orgId: p.orgId, roles: p.roles, admin: p.orgId === ALL_ORGS, person: p.person ?? null };
  });

  app.get('/console/api/runs', async (request) => {
    const principal = await apiPrincipal(request);
    const q = parse(listQuery, request.query);
    const filter = {
      orgId: principal.orgId === ALL_ORGS ? blank(q.org) : principal.orgId,
      statuses: q.status ? [q.status] : undefined,
      action: blank(q.action),
      invocationTypes: blank(q.type) ? [q.type!] : undefined,
      active: q.active === 'true' || undefined,
      text: blank(q.q),
    };
    const [page, count] = await Promise.all([runs.queries.listRuns(filter, { limit: q.limit, offset: q.offset }), runs.queries.countRuns(filter)]);
    return { ok: true, runs: page.rows.map(runSummary), total: count.total, totalCapped: count.capped, offset: q.offset, limit: q.limit };
  });

  function visible(principal: Principal, id: string) {
    const run = RUN_ID_PATTERN.test(id) ? runs.store.getRun(id) : undefined;
    if (!run || !canSee(principal, run.orgId)) throw notFound();
    return run;
  }

  /** A run's approval as this principal sees it: who decided, and what it may do. */
  function approvalFor(principal: Principal, run: RunRow) {
    if (!run.approvalType) return null;
    const view = approversView(runs, run.id);
    const waiting = run.approvalState === 'WAITING';
    const admin = isOrgAdmin(principal, run.orgId);
    const mayDecide = approvalsOf(runs).deciderKind(principal, run) !== null;
    const decided = view.approvers.some((a) => a.clientId === principal.clientId && a.state !== 'PENDING');
    const requester = [run.createdBy, run.userId, run.userEmail].includes(principal.clientId);
    return {
      ...view,
      canDecide: waiting && mayDecide && !decided,
      canCancel: (waiting || run.approvalState === 'APPROVED') && (admin || requester),
    };
  }

  app.get<{ Params: { id: string } }>('/console/api/runs/:id', async (request) => {
    const principal = await apiPrincipal(request);
    const run = visible(principal, request.params.id);
    const updates = runs.store.updatesAfter(run.id, 0, DETAIL_UPDATES).map(updateView);
    const logs = runs.store.logsAfter(run.id, null, DETAIL_LOGS).map(consoleLogView);
    const def = run.action ? runs.catalog?.get(run.action) : undefined;
    const again = def !== undefined && accessTo(def, principal) === 'ok';
    return { ok: true, run: runDetail(run), updates, logs, approval: approvalFor(principal, run), again };
  });

  /** A decision from the console: same-origin JSON only (a form from another site cannot send it). */
  app.post<{ Params: { id: string } }>('/console/api/runs/:id/approval', async (request) => {
    const principal = await apiPrincipal(request);
    assertSameOrigin(request);
    const body = parse(decisionBody, request.body);
    const run = visible(principal, request.params.id);
    const decided = decidedRun(await approvalsOf(runs).decide(principal, run, body.status, body.description ?? null));
    return { ok: true, run: runDetail(decided), approval: approvalFor(principal, decided) };
  });

  app.post<{ Params: { id: string } }>('/console/api/runs/:id/cancel', async (request) => {
    const principal = await apiPrincipal(request);
    assertSameOrigin(request);
    const body = parse(cancelBody, request.body ?? {});
    const run = visible(principal, request.params.id);
    const cancelled = decidedRun(await approvalsOf(runs).cancel(principal, run, body.description ?? null));
    return { ok: true, run: runDetail(cancelled), approval: approvalFor(principal, cancelled) };
  });

  /** What changed on a run since the page last looked (after a live event named it). */
  app.get<{ Params: { id: string } }>('/console/api/runs/:id/changes', async (request) => {
    const principal = await apiPrincipal(request);
    const q = parse(changesQuery, request.query);
    const run = visible(principal, request.params.id);
    return {
      ok: true,
      run: runDetail(run),
      updates: runs.store.updatesAfter(run.id, q.updates, DETAIL_UPDATES).map(updateView),
      logs: runs.store.logsAfter(run.id, q.logs, DETAIL_LOGS).map(consoleLogView),
      approval: approvalFor(principal, run),
    };
  });

  const letterOrg = (principal: Principal) => (orgScope(principal));
  const runVisible = (principal: Principal, runId: string | null) => {
    const run = runId ? runs.store.getRun(runId) : undefined;
    return Boolean(run && canSee(principal, run.orgId));
  };

  /** What became of a re-sent letter: its run as it stands, when the run was last reopened from this letter. */
  function letterView(principal: Principal, d: DeadLetterRow) {
    const visibleRun = runVisible(principal, d.runId);
    const run = visibleRun && d.runId ? runs.store.getRun(d.runId) : undefined;
    const resent = run && run.resentFrom === `${d.partition}/${d.offset}` ? { runStatus: run.status, statusLabel: run.statusLabel, at: run.updatedAt } : null;
    return { visibleRun, resent, canResend: mayResend(principal, d) };
  }

  app.get('/console/api/dead-letters', async (request) => {
    const principal = await apiPrincipal(request);
    const q = parse(lettersQuery, request.query);
    const orgId = letterOrg(principal);
    const [letters, reasons] = await Promise.all([
      runs.queries.deadLetters({ orgId, reason: blank(q.reason), before: q.before, limit: q.limit }),
      runs.queries.deadLetterReasons(orgId),
    ]);
    const canResendAll = principal.orgId === ALL_ORGS || isOrgAdmin(principal, principal.orgId);
    return { ok: true, letters: letters.map((d) => deadLetterSummary(d, letterView(principal, d))), reasons, canResendAll };
  });

  app.get<{ Params: { seq: string } }>('/console/api/dead-letters/:seq', async (request) => {
    const principal = await apiPrincipal(request);
    const seq = Number(request.params.seq);
    const letter = Number.isSafeInteger(seq) && seq > 0 ? runs.deadLetters.get(seq) : undefined;
    if (!letter || !canSee(principal, letter.orgId)) throw notFound('dead letter');
    return { ok: true, letter: deadLetterDetail(letter, letterView(principal, letter)) };
  });

  /**
   * Re-sends one letter (`seq`) or every letter of a reason in the caller's
   * scope (`reason`, the newest MAX_RESEND): an operator any, an org admin
   * its own org's. Same-origin JSON, or a Bearer token (the CLI).
   */
  app.post('/console/api/dead-letters/resend', async (request) => {
    const principal = await apiPrincipal(request);
    assertSameOrigin(request);
    const body = parse(resendBody, request.body ?? {});
    let letters: DeadLetterRow[];
    if (body.seq !== undefined || body.letter !== undefined) {
      const [partition, offset] = (body.letter ?? '').split('/');
      const letter = body.seq !== undefined ? runs.deadLetters.get(body.seq) : runs.deadLetters.at(Number(partition), offset!);
      if (!letter || !canSee(principal, letter.orgId)) throw notFound('dead letter');
      if (!mayResend(principal, letter)) throw new ApiError(403, 'forbidden', "only an operator, or an admin of the letter's org, re-sends dead letters");
      letters = [letter];
    } else {
      if (!(principal.orgId === ALL_ORGS || isOrgAdmin(principal, principal.orgId))) throw new ApiError(403, 'forbidden', 'only an operator, or an org admin, re-sends dead letters');
      letters = await runs.queries.deadLetters({ orgId: letterOrg(principal), reason: body.reason, limit: MAX_RESEND });
    }
    const results = await resendLetters(runs, principal, letters);
    const counts: Record<string, number> = {};
    for (const r of results) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
    return { ok: true, counts, results };
  });

  app.get('/console/api/overview', async (request) => {
    const principal = await apiPrincipal(request);
    const now = Date.now();
    const view = await runs.queries.overview(orgScope(principal), now, OVERVIEW_MINUTES);
    const lag = (await options.lag?.()) ?? { router: null, store: null };
    return { ok: true, at: now, minutes: OVERVIEW_MINUTES, ...view, lag };
  });

  app.get('/console/events', async (request, reply) => {
    const principal = await apiPrincipal(request);
    // A stream ends with its session or token: the feed closes it then (the page signs in again).
    const until = principal.expiresAt ?? Date.now() + options.seconds * 1000;
    if (live.full(principal)) throw new ApiError(503, 'unavailable', 'too many live streams open; try again later');
    reply.hijack();
    live.open(reply.raw, principal, until);
  });

  return live;
}
