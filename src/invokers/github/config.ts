import { z } from 'zod';
import { RETRY_DEFAULTS, httpUrl, positiveInt, retryEnv, retrySchema } from '../../config/fragments';

export const GITHUB_DEFAULTS = {
  apiUrl: 'https://api.github.com',
  pollIntervalMs: 5_000,
  pollTimeoutMs: 6 * 60 * 60 * 1000,
  findRunTimeoutMs: 120_000,
  timeoutMs: 30_000,
  retry: RETRY_DEFAULTS,
};

export const githubConfigSchema = z
  .strictObject({
    apiUrl: httpUrl.default(GITHUB_DEFAULTS.apiUrl),
    token: z.string().min(1).optional(),
    appId: z.string().min(1).optional(),
    appPrivateKey: z.string().min(1).optional(),
    /** Installation to use with a GitHub App; found from the repo when unset. */
    appInstallationId: z.string().min(1).optional(),
    /** First wait between polls of a workflow run; grows with backoff. */
    pollIntervalMs: positiveInt.default(GITHUB_DEFAULTS.pollIntervalMs),
    /** A run still unfinished after this long ends FAILURE. */
    pollTimeoutMs: positiveInt.default(GITHUB_DEFAULTS.pollTimeoutMs),
    /** How long to look for the workflow run a dispatch created. */
    findRunTimeoutMs: positiveInt.default(GITHUB_DEFAULTS.findRunTimeoutMs),
    timeoutMs: positiveInt.default(GITHUB_DEFAULTS.timeoutMs),
    retry: retrySchema.default(GITHUB_DEFAULTS.retry),
  })
  .refine((c) => !c.appId === !c.appPrivateKey, {
    message: 'GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY go together',
    path: ['appId'],
  });
export type GithubConfig = z.infer<typeof githubConfigSchema>;

export const githubEnv = {
  apiUrl: 'GITHUB_API_URL',
  token: 'GITHUB_TOKEN',
  appId: 'GITHUB_APP_ID',
  appPrivateKey: 'GITHUB_APP_PRIVATE_KEY',
  appInstallationId: 'GITHUB_APP_INSTALLATION_ID',
  pollIntervalMs: 'GITHUB_POLL_INTERVAL_MS',
  pollTimeoutMs: 'GITHUB_POLL_TIMEOUT_MS',
  findRunTimeoutMs: 'GITHUB_FIND_RUN_TIMEOUT_MS',
  timeoutMs: 'GITHUB_TIMEOUT_MS',
  retry: retryEnv('GITHUB'),
};
