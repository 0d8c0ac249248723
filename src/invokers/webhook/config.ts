import { z } from 'zod';
import { RETRY_DEFAULTS, csv, positiveInt, retryEnv, retrySchema } from '../../config/fragments';

export const WEBHOOK_DEFAULTS = {
  timeoutMs: 30_000,
  connectTimeoutMs: 5_000,
  maxResponseBytes: 64 * 1024,
  maxRedirects: 3,
  retry: RETRY_DEFAULTS,
};

export const webhookConfigSchema = z.strictObject({
  /** Total time of one attempt: connect, send, and read the response. */
  timeoutMs: positiveInt.default(WEBHOOK_DEFAULTS.timeoutMs),
  connectTimeoutMs: positiveInt.default(WEBHOOK_DEFAULTS.connectTimeoutMs),
  /** Bytes of a response body kept; the rest is read and dropped. */
  maxResponseBytes: positiveInt.default(WEBHOOK_DEFAULTS.maxResponseBytes),
  maxRedirects: z.coerce.number().int().nonnegative().default(WEBHOOK_DEFAULTS.maxRedirects),
  /** Hosts and CIDRs that may be called although loopback/private/link-local. */
  allowedHosts: csv.default([]),
  retry: retrySchema.default(WEBHOOK_DEFAULTS.retry),
});
export type WebhookConfig = z.infer<typeof webhookConfigSchema>;

export const webhookEnv = {
  timeoutMs: 'WEBHOOK_TIMEOUT_MS',
  connectTimeoutMs: 'WEBHOOK_CONNECT_TIMEOUT_MS',
  maxResponseBytes: 'WEBHOOK_MAX_RESPONSE_BYTES',
  maxRedirects: 'WEBHOOK_MAX_REDIRECTS',
  allowedHosts: 'WEBHOOK_ALLOWED_HOSTS',
  retry: retryEnv('WEBHOOK'),
};
