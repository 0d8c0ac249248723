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
