import http, { IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { BackendError, ErrorCodes, describeError } from '../errors';
import { isJsonObject, jsonTooDeep, type JsonObject } from '../model/json';
import { AbortedError } from './retry';

/**
 * Connections are kept alive and reused: a TLS or TCP handshake per call
 * costs more CPU than the call itself at thousands of runs a second.
 * (A kept socket was vetted by the address guard when it was opened.)
 */
const AGENTS = {
  'http:': new http.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 64, timeout: 60_000 }),
  'https:': new https.Agent({ keepAlive: true, maxSockets: 512, maxFreeSockets: 64, timeout: 60_000 }),
};

export interface HttpRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Total time of the attempt: connect, send, and read the response. */
  timeoutMs: number;
  connectTimeoutMs?: number;
  maxResponseBytes: number;
  signal: AbortSignal;
  /** DNS lookup to use; the webhook invoker passes one that vets addresses. */
  lookup?: LookupFunction;
  /** An agent of the caller's (a private CA); default: the shared keep-alive agents. */
  agent?: http.Agent;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body, cut at maxResponseBytes. */
  body: string;
  truncated: boolean;
}

/**
 * One HTTP exchange with hard limits. Network failures and timeouts throw a
 * retriable BackendError; any HTTP status is returned, for the caller to
 * classify. An aborted signal throws AbortedError.
 */
export function httpRequest(req: HttpRequest): Promise<HttpResponse> {
  return new Promise((resolve, reject) => {
    if (req.signal.aborted) return reject(new AbortedError());
    const url = new URL(req.url);
    const lib = url.protocol === 'https:' ? https : http;
    let settled = false;
    const finish = (err: Error | null, res?: HttpResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(total);
      clearTimeout(connectTimer);
      req.signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve(res!);
    };
    const headers = { ...req.headers };
    // A declared length, not chunked encoding: some servers refuse chunked
    // bodies on DELETE (Node's own parser among them).
    if (req.body !== undefined) headers['content-length'] = String(Buffer.byteLength(req.body));
    const request = lib.request(url, {
      method: req.method,
      headers,
      lookup: req.lookup,
      // Redirects are the caller's decision (each target is checked again).
      agent: req.agent ?? AGENTS[url.protocol as 'http:' | 'https:'],
    });
    const onAbort = () => {
      request.destroy();
      finish(new AbortedError());
    };
    req.signal.addEventListener('abort', onAbort, { once: true });
    const total = setTimeout(() => {
      request.destroy();
      finish(new BackendError(ErrorCodes.TIMEOUT, `no complete response within ${req.timeoutMs} ms`, { retriable: true }));
    }, req.timeoutMs);
    let connectTimer: NodeJS.Timeout | undefined;
    request.on('socket', (socket) => {
      if (!req.connectTimeoutMs || !socket.connecting) return;
      connectTimer = setTimeout(() => {
        request.destroy();
        finish(new BackendError(ErrorCodes.TIMEOUT, `connect timed out after ${req.connectTimeoutMs} ms`, { retriable: true }));
      }, req.connectTimeoutMs);
      socket.once('connect', () => clearTimeout(connectTimer));
    });
    request.on('error', (err) => {
      if (err instanceof BackendError) return finish(err);
      finish(new BackendError(ErrorCodes.BACKEND_UNAVAILABLE, `request failed: ${describeError(err)}`, { retriable: true, cause: err }));
    });
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let truncated = false;
      res.on('data', (chunk: Buffer) => {
        if (size >= req.maxResponseBytes) {
          truncated = true;
          return;
        }
        const room = req.maxResponseBytes - size;
        if (chunk.length > room) truncated = true;
        chunks.push(chunk.subarray(0, room));
        size += Math.min(room, chunk.length);
        // Past the cap, stop reading: the rest is not worth the bandwidth.
        if (truncated) {
          res.destroy();
          finish(null, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), truncated });
        }
      });
      res.on('end', () => finish(null, { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), truncated }));
      res.on('error', (err) => finish(new BackendError(ErrorCodes.BACKEND_UNAVAILABLE, `response failed: ${describeError(err)}`, { retriable: true })));
    });
    if (req.body !== undefined) request.write(req.body);
    request.end();
  });
}

/** `Retry-After` (seconds or an HTTP date) in milliseconds, capped. */
export function retryAfterMs(value: string | string[] | undefined, now = Date.now(), capMs = 5 * 60_000): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Math.min(capMs, Math.round(Number(v) * 1000));
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.min(capMs, Math.max(0, at - now));
}

/** A short, single-line excerpt of a response body for summaries. */
export function excerpt(body: string, max = 300): string {
  const flat = body.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max)}…`;
}

/**
 * Classifies an HTTP status at the adapter boundary: null for 2xx; 408,
 * 429 and 5xx are retriable (with the server's Retry-After); other codes
 * are final.
 */
export function statusError(res: HttpResponse, what: string): BackendError | null {
  if (res.status >= 200 && res.status < 300) return null;
  const retriable = res.status === 408 || res.status === 429 || res.status >= 500;
  const body = excerpt(res.body);
  const code = res.status === 401 || res.status === 403 ? ErrorCodes.AUTH_FAILED : retriable ? ErrorCodes.BACKEND_UNAVAILABLE : ErrorCodes.BACKEND_REJECTED;
  return new BackendError(code, `${what} answered HTTP ${res.status}${body ? `: ${body}` : ''}`, {
    retriable,
    details: { status: res.status, retryAfterMs: retryAfterMs(res.headers['retry-after']) },
  });
}

/**
 * A successful answer's body as a JSON object, or null when it is none (not
 * JSON, nested past the limit, or not an object). Read after the call, never
 * inside its retry: an answer that cannot be read is no reason to call again.
 */
export function bodyObject(body: string): JsonObject | null {
  if (!body || jsonTooDeep(body)) return null;
  try {
    const v: unknown = JSON.parse(body);
    return isJsonObject(v) ? v : null;
  } catch {
    return null;
  }
}
