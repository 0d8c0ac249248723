import type { LiveOptions } from '../console/live';
import type { AddressInfo } from 'node:net';
import Fastify, { FastifyBaseLogger, FastifyInstance, FastifyReply, LogController } from 'fastify';
import { agentRoutes } from '../api/agent';
import { approvalRoutes } from '../api/approvals';
import { authRoutes } from '../api/auth';
import { ApiError, errorHandler, notFound } from '../api/errors';
import { runRoutes } from '../api/runs';
import { executeRoutes } from '../api/execute';
import type { RunsService } from '../api/service';
import { consoleRoutes } from '../console/routes';
import { CONTENT_SECURITY_POLICY } from '../console/pages';
import fastifyCookie from '@fastify/cookie';
import fastifyHelmet from '@fastify/helmet';
import type { SessionOptions } from '../console/session';
import type { Registry } from 'prom-client';
import type { Logger } from '../log';
import { TOO_DEEP, jsonTooDeep } from '../model/json';
import type { RouterMetrics } from '../metrics/metrics';

export interface HealthSource {
  readonly ready: boolean;
  /** What is not ready, one line each (readyz prints them). */
  readiness?(): { ready: boolean; reasons: string[] };
  readonly metrics: RouterMetrics;
  /** The run store and runs API, when enabled. */
  readonly runs?: RunsService;
  /** Polling agents' claim duration (AGENT_CLAIM_SECONDS). */
  readonly claimSeconds?: number;
  /** The runs console's settings; unset: no console. */
  readonly console?: SessionOptions & { live?: Partial<LiveOptions> };
  /** TRUST_PROXY: whose X-Forwarded-For names the client. */
  readonly trustProxy?: boolean | number | string[];
  /** CONSOLE_ALLOWED_HOSTS: the Host names answered as (empty or unset: any). */
  readonly allowedHosts?: readonly string[];
}

/** Paths that answer whatever Host a request names: probes and scrapes address the pod, not a name. */
const ANY_HOST = new Set(['/healthz', '/readyz', '/metrics']);

/**
 * True when `host` (a Host header, or X-Forwarded-Host under TRUST_PROXY)
 * is one of `allowed`: an entry without a port takes any port.
 */
export function hostAllowed(host: string, allowed: readonly string[]): boolean {
  const h = host.toLowerCase();
  const bare = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.split(':')[0]!;
  return allowed.some((a) => a === h || a === bare);
}

/** A gauge's value summed over its labels, or null when it has none yet. */
async function gaugeSum(registry: Registry, name: string): Promise<number | null> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return null;
  const { values } = await metric.get();
  return values.length ? values.reduce((sum, v) => sum + v.value, 0) : null;
}

/**
 * TRUST_PROXY as Fastify takes it. A hop count trusts the nearest `n`
 * hops whoever they are (as Express does; Fastify itself now trusts none
 * for a number), so it is only for a port nothing but the proxies reaches.
 */
function proxyTrust(setting: boolean | number | string[]): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof setting !== 'number') return setting;
  return (_address, hop) => hop < setting;
}

/** Port's limit on a request body. */
export const BODY_LIMIT = 1024 * 1024;

/**
 * The one HTTP server: `/healthz` (the process answers), `/readyz` (the
 * consumer is in its group and the producer connected), `/metrics`
 * (Prometheus), and Port's runs API under `/v1` when the store is enabled.
 */
export function buildHttpApp(source: HealthSource, logger: Logger): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger.child({ component: 'http' }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // Port's clients send run ids in paths; a long URL is an attack, not a run.
    routerOptions: { maxParamLength: 1024 },
    // Errors met before routing (a URL too long, a bad path) in Port's envelope too.
    frameworkErrors: (err, _request, reply) => {
      const status = err.statusCode ?? 400;
      void (reply as FastifyReply)
        .code(status)
        .send({ ok: false, error: status === 414 ? 'uri_too_long' : 'bad_request', message: err.message });
    },
    requestTimeout: 60_000,
    trustProxy: proxyTrust(source.trustProxy ?? false),
    return503OnClosing: true,
  });
  app.setErrorHandler(errorHandler);
  const allowed = source.allowedHosts ?? [];
  if (allowed.length > 0) {
    // A DNS-rebinding page reaches this server under its own name: refused before any route (sign-in included) sees it.
    app.addHook('onRequest', async (request, reply) => {
      if (ANY_HOST.has(request.url.split('?')[0]!) || hostAllowed(request.host, allowed)) return;
      return reply.code(421).send({ ok: false, error: 'misdirected_request', message: 'this server does not answer for that host name (CONSOLE_ALLOWED_HOSTS)' });
    });
  }
  // Bodies are JSON (the console's forms add their own parser): a text/plain body is 415, not a string a route might take.
  app.removeContentTypeParser('text/plain');
  // JSON nested past MAX_JSON_DEPTH is refused (422) before it is parsed; the rest goes to Fastify's own parser (prototype keys refused).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = String(body);
    if (jsonTooDeep(text)) {
      done(new ApiError(422, 'json_too_deep', `the body is ${TOO_DEEP}`), undefined);
      return;
    }
    parseJson(request, text, done);
  });
  app.setNotFoundHandler((_request, reply) => {
    void reply.code(404).send({ ok: false, error: 'not_found', message: notFound('route').message });
  });
  // Security headers on every answer (helmet): the console's Content-Security-Policy (no inline script or style,
  // nothing from elsewhere), no framing, same-origin referrers, nosniff. HSTS belongs to the TLS terminator in front.
  void app.register(fastifyHelmet, {
    global: true,
    contentSecurityPolicy: { useDefaults: false, directives: CONTENT_SECURITY_POLICY },
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'same-origin' },
    hsts: false,
  });
  void app.register(fastifyCookie);
  app.addHook('onSend', async (_request, reply) => {
    if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-store');
  });
  app.get('/healthz', async (_request, reply) => reply.type('text/plain').send('ok\n'));
  app.get('/readyz', async (_request, reply) => {
    const state = source.readiness?.() ?? { ready: source.ready, reasons: [] };
    if (state.ready) return reply.type('text/plain').send('ready\n');
    return reply.code(503).type('text/plain').send(`not ready\n${state.reasons.map((r) => `${r}\n`).join('')}`);
  });
  app.get('/metrics', async (_request, reply) => {
    const text = await source.metrics.registry.metrics();
    return reply.type(source.metrics.registry.contentType).send(text);
  });
  if (source.runs) {
    authRoutes(app, source.runs);
    runRoutes(app, source.runs);
    executeRoutes(app, source.runs);
    agentRoutes(app, source.runs, source.claimSeconds ?? 60);
    approvalRoutes(app, source.runs);
    if (source.console) {
      const registry = source.metrics.registry;
      consoleRoutes(app, source.runs, {
        ...source.console,
        lag: async () => ({
          router: await gaugeSum(registry, 'action_router_consumer_lag'),
          store: await gaugeSum(registry, 'action_router_store_lag'),
        }),
      });
    }
  }
  return app;
}

/**
 * Builds the server and listens on `port` (0: any free port). Close it with
 * the instance's `close()`, never its Node server's: that runs the onClose
 * hooks (the live feed ends its streams and timers before the store closes).
 */
export async function startHttpServer(port: number, source: HealthSource, logger: Logger): Promise<FastifyInstance> {
  const app = buildHttpApp(source, logger);
  await app.listen({ port, host: '::' }).catch(() => app.listen({ port, host: '0.0.0.0' }));
  const address = app.server.address() as AddressInfo;
  const paths = `/healthz /readyz /metrics${source.runs ? ' /v1' : ''}${source.runs && source.console ? ' and the console at /' : ''}`;
  logger.info({ port: address.port, api: Boolean(source.runs), console: Boolean(source.runs && source.console) }, `http server listening (${paths})`);
  return app;
}
