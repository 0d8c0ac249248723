import { isIP } from 'node:net';
import { portMessageJson, toPortMessage } from '../../codec/port-message';
import { BackendError, ErrorCodes, RouterError } from '../../errors';
import { type JsonObject, jsonTooDeep } from '../../model/json';
import type { FrozenRun } from '../../model/run';
import { AddressGuard } from '../http/address-guard';
import { HttpResponse, excerpt, httpRequest, statusError } from '../../net/http-client';
import type { InvocationContext, InvocationOutcome, Invoker } from '../invoker';
import { AbortedError, withRetry } from '../../net/retry';
import { signatureHeaders } from '../sign';
import type { WebhookConfig } from './config';

const METHODS = new Set(['POST', 'PUT', 'PATCH', 'GET', 'DELETE']);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export interface WebhookInvokerDeps {
  config: WebhookConfig;
  secretFor(orgId: string): string | undefined;
}

interface Target {
  url: string;
  method: string;
  synchronized: boolean;
  headers: Record<string, string>;
  /** What goes to another origin after a redirect (never with a body): no custom header (any may be a credential), no signature. */
  plainHeaders: Record<string, string>;
  body: string | undefined;
}

/**
 * WEBHOOK runs: a signed HTTP call (PORT-REFERENCE.md, WEBHOOK).
 * Asynchronous: a 2xx means accepted, the run stays IN_PROGRESS.
 * Synchronized: the response decides SUCCESS or FAILURE.
 * A call that fails after its retries ends the run FAILURE, never stuck.
 */
export class WebhookInvoker implements Invoker {
  readonly type = 'WEBHOOK' as const;
  announce(): 'if-slow' {
    return 'if-slow';
  }
  private readonly guard: AddressGuard;

  constructor(private readonly deps: WebhookInvokerDeps) {
    this.guard = new AddressGuard(deps.config.allowedHosts);
  }

  describe(run: FrozenRun): string {
    const { url, method } = run.invocationMethod;
    return `${typeof method === 'string' ? method.toUpperCase() : 'POST'} ${typeof url === 'string' ? url : '(no url)'}`;
  }

  async invoke(run: FrozenRun, ctx: InvocationContext): Promise<InvocationOutcome> {
    const target = this.target(run);
    if (target instanceof RouterError) return { status: 'failed', code: target.code, summary: target.message };
    const what = `Webhook ${target.method} ${target.url}`;
    const { config } = this.deps;
    let response: HttpResponse;
    let attempts: number;
    try {
      const result = await withRetry(
        config.retry,
        ctx.signal,
        (n, deadline) => this.attempt(target, run, n, deadline, ctx.signal),
        (err, n, wait) => ctx.logger.warn({ attempt: n, waitMs: wait, error: err.message }, 'webhook attempt failed; retrying'),
      );
      response = result.value;
      attempts = result.attempts;
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      const e = err as RouterError;
      const n = Number(e.details.attempts ?? 1);
      const tries = n > 1 ? ` after ${n} attempts` : '';
      return { status: 'failed', code: e.code, summary: `${what} failed${tries}: ${e.message}`, attempt: n, statusLabel: labelFor(e) };
    }
    const body = response.body ? ` — response: ${excerpt(response.body, 1_000)}${response.truncated ? ' (truncated)' : ''}` : '';
    if (target.synchronized) {
      return {
        status: 'succeeded',
        summary: `${what} answered HTTP ${response.status}${body}`,
        attempt: attempts,
        statusLabel: `HTTP ${response.status}`,
        response: responseJson(response),
      };
    }
    return { status: 'delivered', log: `${what} delivered: HTTP ${response.status}`, attempt: attempts };
  }

  /** Reads the invocation method; an error value when it cannot be called. */
  private target(run: FrozenRun): Target | RouterError {
    const m = run.invocationMethod;
    const invalid = (msg: string) => new BackendError(ErrorCodes.INVOCATION_INVALID, msg);
    if (typeof m.url !== 'string' || m.url === '') return invalid('WEBHOOK invocation method has no url');
    let url: URL;
    try {
      url = new URL(m.url);
    } catch {
      return invalid(`WEBHOOK url "${m.url}" is not a valid URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return invalid(`WEBHOOK url must be http(s), got ${url.protocol}`);
    const method = typeof m.method === 'string' ? m.method.toUpperCase() : 'POST';
    if (!METHODS.has(method)) return invalid(`WEBHOOK method "${String(m.method)}" is not one of ${[...METHODS].join(', ')}`);
    const custom: Record<string, string> = {};
    if (m.headers && typeof m.headers === 'object' && !Array.isArray(m.headers)) {
      for (const [k, v] of Object.entries(m.headers as JsonObject)) custom[k] = typeof v === 'string' ? v : JSON.stringify(v);
    }
    const customBody = m.body !== undefined && m.body !== null;
    const body = method === 'GET' ? undefined : customBody ? JSON.stringify(m.body) : portMessageJson(toPortMessage(run), run);
    const ids = { 'X-Run-Id': run.runId, 'Idempotency-Key': run.runId };
    const plainHeaders: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'action-router', ...ids };
    const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'action-router', ...custom, ...ids };
    const secret = this.deps.secretFor(run.orgId);
    if (secret) Object.assign(headers, signatureHeaders(secret, body ?? ''));
    return { url: url.href, method, synchronized: m.synchronized === true, headers, plainHeaders, body };
  }

  /** One attempt, following redirects (each target checked again). */
  private async attempt(target: Target, run: FrozenRun, _n: number, deadline: number, signal: AbortSignal): Promise<HttpResponse> {
    const { config } = this.deps;
    let url = target.url;
    let method = target.method;
    let body = target.body;
    const origin = new URL(target.url).origin;
    // Once a redirect leaves the webhook's origin, its custom headers and the signature stay behind (as fetch drops Authorization).
    let crossed = false;
    let redirectedBy = 0;
    for (let hop = 0; ; hop++) {
      const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
      if (isIP(host)) {
        const refusal = this.guard.refusal(host, host);
        if (refusal) throw new BackendError(ErrorCodes.TARGET_FORBIDDEN, refusal);
      }
      // A body never leaves the webhook's origin: Port's run message carries the invocation method,
      // its headers' values included (credentials), and a custom body may carry what templates put there.
      if (crossed && body !== undefined) {
        throw new BackendError(
          ErrorCodes.BACKEND_REJECTED,
          `HTTP ${redirectedBy} redirect to another origin (${new URL(url).origin}) not followed: the request body would go with it; point the action at the final URL`,
        );
      }
      const headers = { ...(crossed ? target.plainHeaders : target.headers) };
      if (body === undefined) delete headers['content-type'];
      if (body !== target.body && !crossed) {
        // A 303 turned the call into a GET: the signature no longer matches a body.
        const secret = this.deps.secretFor(run.orgId);
        if (secret) Object.assign(headers, signatureHeaders(secret, body ?? ''));
      }
      const response = await httpRequest({
        method,
        url,
        headers,
        body,
        timeoutMs: Math.max(1, Math.min(config.timeoutMs, deadline - Date.now())),
        connectTimeoutMs: config.connectTimeoutMs,
        maxResponseBytes: config.maxResponseBytes,
        signal,
        lookup: this.guard.lookupFor(host),
      });
      const location = response.headers.location;
      if (REDIRECTS.has(response.status) && location) {
        if (hop >= config.maxRedirects) throw new BackendError(ErrorCodes.BACKEND_REJECTED, `too many redirects (last: ${location})`);
        url = new URL(location, url).href;
        if (new URL(url).origin !== origin) crossed = true;
        if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
        }
        redirectedBy = response.status;
        continue;
      }
      const error = statusError(response, `${target.method} ${target.url}`);
      if (error) throw error;
      return response;
    }
  }

  async close(): Promise<void> {}
}

/** A response body as JSON text: the JSON it is, else the text as a JSON string (cut responses are kept as text). */
function responseJson(response: HttpResponse): string | undefined {
  if (!response.body) return undefined;
  // Nested past the limit: kept as text, as an answer that is not JSON.
  if (!response.truncated && !jsonTooDeep(response.body)) {
    try {
      return JSON.stringify(JSON.parse(response.body));
    } catch {
      // not JSON: kept as text
    }
  }
  return JSON.stringify(response.body);
}

function labelFor(err: RouterError): string {
  const status = err.details.status;
  if (typeof status === 'number') return `HTTP ${status}`;
  return err.code;
}
