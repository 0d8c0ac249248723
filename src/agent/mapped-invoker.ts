import https from 'node:https';
import { isIP } from 'node:net';
import { portMessageJson, toPortMessage } from '../codec/port-message';
import { BackendError, ErrorCodes, RouterError } from '../errors';
import { AddressGuard } from '../invokers/http/address-guard';
import type { InvocationContext, InvocationOutcome, Invoker } from '../invokers/invoker';
import { signatureHeaders } from '../invokers/sign';
import { MappingError, PayloadMapping, PayloadMappings, REPORT_FIELDS, ReportField } from '../mapping/payload-mapping';
import { JsonMap, member, parseLossless, pythonAsciiJson, toPlain } from '../model/lossless-json';
import type { FrozenRun } from '../model/run';
import { decryptSecretInput, secretInputKey } from '../model/secret-input';
import { HttpResponse, excerpt, httpRequest } from '../net/http-client';
import { AbortedError } from '../net/retry';

export interface MappedInvokerDeps {
  mappings: PayloadMappings;
  /** The message's text as the agent received it (agent/intake.ts), when it still has it. */
  messageOf(run: FrozenRun): string | undefined;
  secretFor(orgId: string): string | undefined;
  timeoutMs: number;
  connectTimeoutMs: number;
  maxResponseBytes: number;
  /** WEBHOOK_ALLOWED_HOSTS: private addresses the agent may call. */
  allowedHosts: readonly string[];
  /** WEBHOOK_VERIFY_SSL=false: accept any TLS certificate (Port's agent's switch). */
  verifyTls: boolean;
  /** DETAILED_LOGGING: a failed call's summary carries the response's text (Port's agent's default). */
  detailedLogging: boolean;
}

/** What the agent's request is, after the mapping. */
interface MappedRequest {
  method: unknown;
  url: unknown;
  body: unknown;
  headers: unknown;
  query: unknown;
}

const INSECURE_TLS = new https.Agent({ keepAlive: true, rejectUnauthorized: false });

/**
 * `action-router agent`'s backend for agent runs (WEBHOOK and GITLAB): the
 * request is what Port's execution agent would send for the same message
 * and mapping file, and the run's result is what it would report.
 * - The message loses `invocationMethod.agent` and its signature headers
 *   (all its headers for GITLAB), as the agent's own handling does.
 * - `fieldsToDecryptPaths` are decrypted with the org's secret.
 * - The request starts from the invocation method's method and url, the
 *   whole message as body, no headers and no query; the mapping's fields
 *   replace those. The body is signed (X-Port-Timestamp, X-Port-Signature)
 *   over Python's compact, ASCII-escaped JSON, and sent as Python's
 *   `requests` sends it (its default separators).
 * - The result is SUCCESS for a synchronized run answered below 400, left
 *   IN_PROGRESS for an asynchronous one, FAILURE otherwise; `report`
 *   fields, evaluated over {body, request, response}, replace those.
 * Unlike the agent, an expression that fails ends the run FAILURE naming
 * the mapping and the field, and so does a run no mapping is enabled for.
 */
export class MappedInvoker implements Invoker {
  readonly type = 'WEBHOOK' as const;
  private readonly guard: AddressGuard;

  constructor(private readonly deps: MappedInvokerDeps) {
    this.guard = new AddressGuard(deps.allowedHosts);
  }

  announce(): 'if-slow' {
    return 'if-slow';
  }

  describe(run: FrozenRun): string {
    return `${run.invocationMethod.type} through the payload mapping (${this.deps.mappings.source})`;
  }

  async invoke(run: FrozenRun, ctx: InvocationContext): Promise<InvocationOutcome> {
    try {
      return await this.perform(run, ctx);
    } catch (err) {
      if (err instanceof AbortedError) throw err;
      if (err instanceof RouterError) return { status: 'failed', code: err.code, summary: err.message, statusLabel: err.code };
      throw err;
    }
  }

  private async perform(run: FrozenRun, ctx: InvocationContext): Promise<InvocationOutcome> {
    const { mappings } = this.deps;
    const message = this.messageFor(run);
    // What jq sees (plain values); the body sent by default keeps the message's numbers as Python read them.
    let plain = toPlain(message) as Record<string, unknown>;
    const mapping = await mappings.find(plain);
    if (!mapping) {
      throw new RouterError(ErrorCodes.NO_MAPPING, `no mapping of ${mappings.source} is enabled for this run (Port's agent would skip it and leave it in progress)`);
    }
    if (this.decrypt(run, message, mapping)) plain = toPlain(message) as Record<string, unknown>;
    const method = invocationMethodOf(plain);
    const defaults: MappedRequest = {
      method: typeof method.method === 'string' ? method.method : 'POST',
      url: typeof method.url === 'string' ? method.url : '',
      body: message,
      headers: {},
      query: {},
    };
    const request = { ...defaults, ...(await mappings.evaluate(mapping, mapping.request, plain)) } as MappedRequest;
    const call = this.checked(request, mapping);
    const secret = this.deps.secretFor(run.orgId);
    const headers: Record<string, string> = { ...call.headers };
    if (secret) Object.assign(headers, signatureHeaders(secret, pythonAsciiJson(request.body as never, true)));
    // The request as `report` expressions see it: with the signature, as the agent's request object has it.
    const requestSeen = { method: request.method, url: request.url, body: request.body === message ? plain : request.body, headers, query: request.query };
    const what = `${call.method} ${call.url}`;
    const response = await this.send(call, headers, ctx.signal);
    const ok = response.status < 400;
    const synchronized = method.synchronized === true;
    const answer = response.body;
    let json: unknown = null;
    try {
      json = answer ? JSON.parse(answer) : null;
    } catch {
      // not JSON: `.response.json` is null, as in the agent
    }
    let status: unknown = ok ? (synchronized ? 'SUCCESS' : null) : 'FAILURE';
    let summary: unknown = ok ? null : `Failed to invoke the webhook with status code: ${response.status}.${this.deps.detailedLogging && answer ? ` Response: ${excerpt(answer, 1_000)}` : ''}`;
    let link: unknown = null;
    let externalRunId: unknown = null;
    if (mapping.report) {
      const context = { body: plain, request: requestSeen, response: { statusCode: response.status, headers: response.headers, text: answer, json } };
      const reported = await mappings.evaluate<ReportField>(mapping, mapping.report, context, 'report.');
      for (const field of REPORT_FIELDS) {
        if (!(field in reported)) continue;
        const value = reported[field];
        if (field === 'status') status = value;
        else if (field === 'summary') summary = value;
        else if (field === 'link') link = value;
        else externalRunId = value;
      }
    }
    const fields = {
      summary: textOf(summary, mapping, 'report.summary'),
      links: linksOf(link, mapping),
      externalRunId: textOf(externalRunId, mapping, 'report.externalRunId'),
      attempt: 1,
      statusLabel: `HTTP ${response.status}`,
      ...(synchronized && answer ? { response: JSON.stringify(json ?? answer) } : {}),
    };
    const log = ok ? `${what} answered HTTP ${response.status} (mapping ${mapping.index})` : `${what} failed with HTTP ${response.status} (mapping ${mapping.index})`;
    if (status === 'SUCCESS') return { status: 'succeeded', log, ...fields, summary: fields.summary ?? `${what} answered HTTP ${response.status}` };
    if (status === 'FAILURE') {
      const code = ok ? ErrorCodes.BACKEND_REJECTED : response.status === 401 || response.status === 403 ? ErrorCodes.AUTH_FAILED : ErrorCodes.BACKEND_REJECTED;
      return { status: 'failed', code, log, ...fields, summary: fields.summary ?? `${what} failed with HTTP ${response.status}` };
    }
    if (status !== null && status !== undefined) throw new MappingError(`mapping ${mapping.index}, report.status`, `gave ${JSON.stringify(status).slice(0, 40)}, not "SUCCESS" or "FAILURE"`);
    return { status: 'delivered', log, ...fields };
  }

  /** The run message as the agent handles it: read anew, without `agent` and without the signature headers. */
  private messageFor(run: FrozenRun): JsonMap {
    const message = parseLossless(this.deps.messageOf(run) ?? portMessageJson(toPortMessage(run), run));
    if (!(message instanceof JsonMap)) throw new RouterError(ErrorCodes.SCHEMA_INVALID, 'the run message is not a JSON object');
    const method = member(member(member(message, 'payload'), 'action'), 'invocationMethod');
    if (method instanceof JsonMap) method.entries.delete('agent');
    const headers = member(message, 'headers');
    if (headers instanceof JsonMap) {
      if (method instanceof JsonMap && method.entries.get('type') === 'GITLAB') message.entries.delete('headers');
      else for (const name of ['X-Port-Signature', 'X-Port-Timestamp']) headers.entries.delete(name);
    }
    return message;
  }

  /**
   * `fieldsToDecryptPaths` (dotted paths; a number indexes a list): each
   * present value decrypted in place. True when one was.
   */
  private decrypt(run: FrozenRun, message: JsonMap, mapping: PayloadMapping): boolean {
    if (mapping.fieldsToDecryptPaths.length === 0) return false;
    const secret = this.deps.secretFor(run.orgId);
    const key = secret === undefined ? null : secretInputKey(secret);
    let changed = false;
    for (const path of mapping.fieldsToDecryptPaths) {
      const parts = path.split('.');
      const holder = parts.slice(0, -1).reduce<unknown>((at, p) => childOf(at, p), message);
      const last = parts[parts.length - 1]!;
      const value = childOf(holder, last);
      if (value === undefined || value === null) continue;
      const opened = key && typeof value === 'string' ? decryptSecretInput(value, key) : null;
      if (opened === null) {
        const why = !key ? 'the org has no secret of 32 bytes or more (PORT_CLIENT_SECRET / SIGNING_SECRET)' : "it is not encrypted under the org's secret";
        throw new RouterError(ErrorCodes.SECRET_UNREADABLE, `mapping ${mapping.index}: fieldsToDecryptPaths "${path}" cannot be decrypted: ${why}`);
      }
      if (Array.isArray(holder)) holder[Number(last)] = opened;
      else (holder as JsonMap).entries.set(last, opened);
      changed = true;
    }
    return changed;
  }

  /** The request as it can be sent, or a MappingError naming the field that cannot be. */
  private checked(request: MappedRequest, mapping: PayloadMapping): { method: string; url: string; headers: Record<string, string>; body: string; query: string } {
    const bad = (field: string, why: string) => new MappingError(`mapping ${mapping.index}, ${field}`, why);
    if (typeof request.method !== 'string' || request.method === '') throw bad('method', 'did not give a method');
    if (typeof request.url !== 'string') throw bad('url', 'did not give a url');
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      throw bad('url', 'did not give an absolute http(s) url');
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad('url', `gave a ${url.protocol} url, not http(s)`);
    const headers: Record<string, string> = {};
    if (request.headers !== null && (typeof request.headers !== 'object' || Array.isArray(request.headers))) throw bad('headers', 'did not give an object');
    for (const [name, value] of Object.entries((request.headers ?? {}) as Record<string, unknown>)) {
      if (typeof value !== 'string') throw bad(`headers.${name}`, 'did not give a string');
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(value)) throw bad(`headers.${name}`, 'is not a valid header');
      headers[name] = value;
    }
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
    if (!Object.keys(headers).some((h) => h.toLowerCase() === 'user-agent')) headers['User-Agent'] = 'action-router-agent';
    if (request.query !== null && (typeof request.query !== 'object' || Array.isArray(request.query))) throw bad('query', 'did not give an object');
    const search = new URLSearchParams(url.search);
    for (const [name, value] of Object.entries((request.query ?? {}) as Record<string, unknown>)) {
      for (const item of Array.isArray(value) ? value : [value]) {
        if (item === null || item === undefined) continue;
        if (typeof item === 'object') throw bad(`query.${name}`, 'gave an object, not a value');
        search.append(name, typeof item === 'boolean' ? (item ? 'True' : 'False') : String(item));
      }
    }
    url.search = search.toString();
    // Python's requests sends `json=None` as no body at all.
    const body = request.body === null ? '' : pythonAsciiJson(request.body as never, false);
    if (request.body === null) delete headers['Content-Type'];
    return { method: request.method.toUpperCase(), url: url.href, headers, body, query: url.search };
  }

  private async send(call: { method: string; url: string; body: string }, headers: Record<string, string>, signal: AbortSignal): Promise<HttpResponse> {
    const host = new URL(call.url).hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) {
      const refusal = this.guard.refusal(host, host);
      if (refusal) throw new BackendError(ErrorCodes.TARGET_FORBIDDEN, refusal);
    }
    const d = this.deps;
    return httpRequest({
      method: call.method,
      url: call.url,
      headers,
      body: call.body === '' ? undefined : call.body,
      timeoutMs: d.timeoutMs,
      connectTimeoutMs: d.connectTimeoutMs,
      maxResponseBytes: d.maxResponseBytes,
      signal,
      lookup: this.guard.lookupFor(host),
      ...(d.verifyTls || !call.url.startsWith('https:') ? {} : { agent: INSECURE_TLS }),
    });
  }

  async close(): Promise<void> {
    await this.deps.mappings.close();
  }
}

function invocationMethodOf(message: Record<string, unknown>): Record<string, unknown> {
  const method = member(member(member(message, 'payload'), 'action'), 'invocationMethod');
  return method !== null && typeof method === 'object' && !Array.isArray(method) ? (method as Record<string, unknown>) : {};
}

function childOf(value: unknown, key: string): unknown {
  if (Array.isArray(value)) return /^\d+$/.test(key) ? value[Number(key)] : undefined;
  return member(value, key);
}

/** A report text: strings as they are, numbers and booleans as their text; anything else names the field. */
function textOf(value: unknown, mapping: PayloadMapping, field: string): string | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new MappingError(`mapping ${mapping.index}, ${field}`, 'did not give a string');
}

function linksOf(value: unknown, mapping: PayloadMapping): string[] | undefined {
  if (value === null || value === undefined) return undefined;
  const list = Array.isArray(value) ? value : [value];
  if (!list.every((l) => typeof l === 'string')) throw new MappingError(`mapping ${mapping.index}, report.link`, 'did not give a string or a list of strings');
  return list as string[];
}
