import { z } from 'zod';
import { RETRY_DEFAULTS, httpUrl, positiveInt, retryEnv, retrySchema } from '../../config/fragments';

export const GITLAB_DEFAULTS = {
  url: 'https://gitlab.com',
  pollIntervalMs: 5_000,
  pollTimeoutMs: 6 * 60 * 60 * 1000,
  timeoutMs: 30_000,
  retry: RETRY_DEFAULTS,
};

export const gitlabConfigSchema = z.strictObject({
  url: httpUrl.default(GITLAB_DEFAULTS.url),
  /** `{ "<group>/<project>": "<trigger token>" }`, read from GITLAB_TRIGGER_TOKENS_FILE. */
  triggerTokens: z.record(z.string(), z.string()).default({}),
  /** Also looked up, by `<group>_<project>`: env GITLAB_TRIGGER_TOKEN_<group>_<project> (and bare, opted into). */
  envTokens: z.record(z.string(), z.string()).default({}),
  /** With it, the router follows the pipeline to SUCCESS/FAILURE. */
  apiToken: z.string().min(1).optional(),
  pollIntervalMs: positiveInt.default(GITLAB_DEFAULTS.pollIntervalMs),
  pollTimeoutMs: positiveInt.default(GITLAB_DEFAULTS.pollTimeoutMs),
  timeoutMs: positiveInt.default(GITLAB_DEFAULTS.timeoutMs),
  retry: retrySchema.default(GITLAB_DEFAULTS.retry),
});
export type GitlabConfig = z.infer<typeof gitlabConfigSchema>;

export const gitlabEnv = {
  url: 'GITLAB_URL',
  triggerTokens: 'GITLAB_TRIGGER_TOKENS_FILE',
  apiToken: 'GITLAB_API_TOKEN',
  pollIntervalMs: 'GITLAB_POLL_INTERVAL_MS',
  pollTimeoutMs: 'GITLAB_POLL_TIMEOUT_MS',
  timeoutMs: 'GITLAB_TIMEOUT_MS',
  retry: retryEnv('GITLAB'),
};
