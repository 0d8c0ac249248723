import { isIP } from 'node:net';
import { z } from 'zod';

/** Shared config pieces reused by every component that needs them. */

export const positiveInt = z.coerce.number().int().positive();
export const nonNegativeInt = z.coerce.number().int().nonnegative();

/** `true`/`false` (also 1/0, yes/no) from an environment string. */
export const envBoolean = z
  .union([z.boolean(), z.string()])
  .transform((v, ctx) => {
    if (typeof v === 'boolean') return v;
    const s = v.trim().toLowerCase();
    if (['true', '1', 'yes', 'on'].includes(s)) return true;
    if (['false', '0', 'no', 'off', ''].includes(s)) return false;
    ctx.addIssue({ code: 'custom', message: `expected true or false, got "${v}"` });
    return z.NEVER;
  });

export const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL')
  .transform((u) => u.replace(/\/+$/, ''));

/** Comma-separated list; blanks dropped. */
export const csv = z
  .string()
  .transform((s) => s.split(',').map((p) => p.trim()).filter(Boolean));

/** Host names (or IP literals), each with an optional port: `console.example.com`, `127.0.0.1:8080`, `[::1]:8080`. */
const HOST_ENTRY = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*|\[[0-9a-f:.]+\])(?::\d{1,5})?$/;
export const hostList = csv
  .transform((hosts) => hosts.map((h) => h.toLowerCase()))
  .refine((hosts) => hosts.every((h) => HOST_ENTRY.test(h)), 'must be comma-separated host names or IP literals, each with an optional :port (no scheme, path or wildcard)');

/**
 * Retry and backoff policy shared by every invoker: exponential backoff with
 * full jitter, bounded by attempts and by an overall deadline.
 */
export type RetryConfig = {
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  deadlineMs: number;
};

export const RETRY_DEFAULTS: RetryConfig = {
  maxAttempts: 5,
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  deadlineMs: 120_000,
};

export const retrySchema = z.strictObject({
  maxAttempts: positiveInt.default(RETRY_DEFAULTS.maxAttempts),
  initialDelayMs: positiveInt.default(RETRY_DEFAULTS.initialDelayMs),
  maxDelayMs: positiveInt.default(RETRY_DEFAULTS.maxDelayMs),
  deadlineMs: positiveInt.default(RETRY_DEFAULTS.deadlineMs),
});

/** The env variables of a retry fragment under `prefix` (e.g. WEBHOOK). */
export function retryEnv(prefix: string): Record<keyof RetryConfig, string> {
  return {
    maxAttempts: `${prefix}_MAX_ATTEMPTS`,
    initialDelayMs: `${prefix}_RETRY_INITIAL_MS`,
    maxDelayMs: `${prefix}_RETRY_MAX_MS`,
    deadlineMs: `${prefix}_DEADLINE_MS`,
  };
}

/** Fastify's named ranges for trusted proxies. */
const PROXY_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/**
 * Which proxies' X-Forwarded-For to believe (Fastify's trustProxy): `false`
 * (none, the default), `true` (any: only when nothing else can reach the
 * port), a hop count, or addresses, CIDRs and named ranges, comma-separated.
 */
export const trustProxy = z.string().transform((text, ctx): boolean | number | string[] => {
  const t = text.trim().toLowerCase();
  if (t === 'false' || t === '') return false;
  if (t === 'true') return true;
  if (/^\d+$/.test(t)) return Number(t);
  const entries = t.split(',').map((e) => e.trim()).filter(Boolean);
  for (const entry of entries) {
    if (PROXY_RANGES.has(entry)) continue;
    const [address, prefix, ...rest] = entry.split('/');
    const family = isIP(address ?? '');
    const max = family === 6 ? 128 : 32;
    const prefixOk = prefix === undefined || (/^\d+$/.test(prefix) && Number(prefix) <= max);
    if (family === 0 || !prefixOk || rest.length > 0) {
      ctx.addIssue({ code: 'custom', message: `"${entry}" is no address, CIDR or range (loopback, linklocal, uniquelocal); expected true, false, a hop count or a comma-separated list` });
      return z.NEVER;
    }
  }
  return entries;
});
