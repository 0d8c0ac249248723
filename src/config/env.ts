import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors';
import { envBoolean } from './fragments';

/*
 * Reading the environment: secrets from files, JSON files named by a
 * variable, nested variable maps, and the variable a config path comes from.
 * config.ts turns what this reads into the configuration.
 */

/** Which environment variable feeds each config field. */
export type EnvMap = { [key: string]: string | EnvMap };

/** Secrets that may also come from a file: `<NAME>_FILE` holds the path (Kubernetes and Docker secrets). */
export const SECRET_VARIABLES = [
  'KAFKA_SASL_PASSWORD',
  'KAFKA_SSL_KEY_PASSWORD',
  'KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET',
  'SCHEMA_REGISTRY_PASSWORD',
  'API_TOKEN_SECRET',
  'SIGNING_SECRET',
  'GITHUB_TOKEN',
  'GITLAB_API_TOKEN',
  'APPROVAL_SECRET',
  'OIDC_CLIENT_SECRET',
];

/** The environment with each `<SECRET>_FILE` read into `<SECRET>` (one trailing newline dropped). */
export function withSecretFiles(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env };
  for (const name of SECRET_VARIABLES) {
    const file = env[`${name}_FILE`];
    if (!file) continue;
    if (env[name]) throw new ConfigError(`${name}_FILE`, `set ${name} or ${name}_FILE, not both`);
    try {
      out[name] = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError(`${name}_FILE`, `cannot read ${file}: ${(err as Error).message}`);
    }
    if (!out[name]) throw new ConfigError(`${name}_FILE`, `${file} is empty`);
  }
  return out;
}

/** Variables whose value names a JSON file to read in its place. */
const JSON_FILE_VARIABLES = new Set(['ORG_SECRETS_FILE', 'GITLAB_TRIGGER_TOKENS_FILE']);

const OPTIONAL_SECTIONS = new Set(['sasl', 'oauthbearer']);

export function collect(map: EnvMap, env: NodeJS.ProcessEnv): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, source] of Object.entries(map)) {
    if (typeof source === 'string') {
      const raw = env[source];
      if (raw === undefined || raw === '') continue;
      out[key] = JSON_FILE_VARIABLES.has(source) ? readJsonFile(source, raw) : raw;
    } else {
      const nested = collect(source, env);
      // Optional sections exist only when something in them is set.
      if (Object.keys(nested).length > 0 || !OPTIONAL_SECTIONS.has(key)) out[key] = nested;
    }
  }
  return out;
}

function readJsonFile(variable: string, path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(variable, `cannot read ${path}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ConfigError(variable, `${path} is not valid JSON: ${(err as Error).message}`);
  }
}

export function variableFor(map: EnvMap, path: readonly PropertyKey[]): string {
  let node: string | EnvMap = map;
  for (const key of path) {
    if (typeof node === 'string') break;
    const next: string | EnvMap | undefined = node[String(key)];
    if (next === undefined) break;
    node = next;
  }
  return typeof node === 'string' ? node : path.map(String).join('.') || 'configuration';
}

/** Env names of the form `<group>_<project>`: candidates for GitLab trigger tokens. */
/** Where a project's trigger token may come from in the environment: `GITLAB_TRIGGER_TOKEN_<group>_<project>`. */
export const GITLAB_TOKEN_PREFIX = 'GITLAB_TRIGGER_TOKEN_';

/**
 * Trigger tokens from the environment, by `<group>_<project>`: only
 * variables under GITLAB_TOKEN_PREFIX, so an event naming a group and a
 * project cannot have another variable's value sent as its token. Port's
 * agent's bare `<group>_<project>` names are read only with
 * GITLAB_UNPREFIXED_TOKEN_ENV=true.
 */
export function gitlabEnvTokens(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  const bare = envBoolean.safeParse(env.GITLAB_UNPREFIXED_TOKEN_ENV ?? 'false');
  if (!bare.success) throw new ConfigError('GITLAB_UNPREFIXED_TOKEN_ENV', `expected true or false, got "${env.GITLAB_UNPREFIXED_TOKEN_ENV}"`);
  if (bare.data) for (const [k, v] of Object.entries(env)) if (v && k.includes('_') && /[a-z]/.test(k)) out[k] = v;
  for (const [k, v] of Object.entries(env)) if (v && k.startsWith(GITLAB_TOKEN_PREFIX) && k.length > GITLAB_TOKEN_PREFIX.length) out[k.slice(GITLAB_TOKEN_PREFIX.length)] = v;
  return out;
}

/**
 * What payload mappings see as `env`: the process environment, as Port's
 * agent exposes it, without the credentials this process holds for itself
 * (every SECRET_VARIABLES name, and Port's PORT_CLIENT_SECRET). The GitLab
 * trigger tokens Port's default mapping reads (`<group>_<project>`) and
 * GITLAB_URL stay visible.
 */
export function mappingEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const hidden = new Set([...SECRET_VARIABLES, 'PORT_CLIENT_SECRET']);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined && !hidden.has(name)) out[name] = value;
  return out;
}
