import { JsonLike, JsonMap, pythonJson } from '../model/lossless-json';
import type { JsonObject } from '../model/json';
import type { FrozenRun } from '../model/run';
import type { RunInfo } from '../model/status';

/** What replaces a censored input's value wherever a run is shown. */
export const CENSORED = '********';

/**
 * A free-form field larger than this is not carried in the status update
 * (the store shows a note instead): the topic's messages stay well under
 * the broker's 1 MiB default.
 */
export const MAX_INFO_JSON = 128 * 1024;

function capJson(value: JsonLike | null, what: string): string | null {
  if (value === null) return null;
  // Lossless parts need Python's writer; plain values JSON.stringify writes faster.
  const text = value instanceof JsonMap ? pythonJson(value) : JSON.stringify(value);
  if (text.length <= MAX_INFO_JSON) return text;
  return JSON.stringify({ _omitted: `${what} were ${text.length} characters, over the ${MAX_INFO_JSON} kept in the run store` });
}

/** User inputs with the censored ones masked: secrets never reach the status topic. */
export function censor(properties: JsonObject | JsonMap, censored: readonly string[]): JsonObject | JsonMap {
  if (censored.length === 0) return properties;
  if (properties instanceof JsonMap) {
    const out = new JsonMap();
    for (const [k, v] of properties.entries) out.entries.set(k, censored.includes(k) ? CENSORED : v);
    return out;
  }
  const out: JsonObject = { ...properties };
  for (const key of censored) if (key in out) out[key] = CENSORED;
  return out;
}

/**
 * The invocation method without what may hold secrets: header values are
 * masked and a custom body is dropped; the rest (url, repo, workflow,
 * project...) is what a person needs to see where the run went.
 */
export function redactInvocation(method: JsonObject): JsonObject {
  const out: JsonObject = { ...method };
  const headers = method.headers;
  if (headers && typeof headers === 'object' && !Array.isArray(headers)) {
    out.headers = Object.fromEntries(Object.keys(headers).map((k) => [k, '[redacted]']));
  }
  if ('body' in out) out.body = '[redacted]';
  return out;
}

/** True when a run holds what a run page masks: censored inputs, invocation headers or a custom body. */
export function carriesSecrets(run: Pick<FrozenRun, 'censoredProperties' | 'invocationMethod'>): boolean {
  const headers = run.invocationMethod.headers;
  const hasHeaders = headers !== null && typeof headers === 'object' && Object.keys(headers).length > 0;
  return run.censoredProperties.length > 0 || hasHeaders || 'body' in run.invocationMethod;
}

/** The RunInfo a run's first update carries. */
export function runInfo(run: FrozenRun, triggerPartition: number | null, agentPayload: string | null = null): RunInfo {
  const email = run.user && typeof run.user.email === 'string' ? run.user.email : null;
  const lossless = run.lossless?.properties;
  const created = Date.parse(run.triggeredAt);
  return {
    blueprint: run.blueprint,
    entityIdentifier: run.entityIdentifier,
    entity: capJson(run.entity === null ? null : (run.lossless?.entity ?? run.entity), 'entity properties'),
    properties: capJson(censor(lossless instanceof JsonMap ? lossless : run.properties, run.censoredProperties), 'user inputs'),
    userId: run.userId,
    userEmail: email,
    origin: run.origin,
    actionTrigger: run.actionTrigger,
    invocation: JSON.stringify(redactInvocation(run.invocationMethod)),
    createdAt: Number.isFinite(created) ? created : null,
    triggerPartition,
    agentPayload,
  };
}
