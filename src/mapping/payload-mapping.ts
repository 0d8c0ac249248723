import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError, ErrorCodes, RouterError } from '../errors';
import { type JqEvaluator, JqError } from './jq';

/*
 * Port's execution agent's "control the payload" file
 * (CONTROL_THE_PAYLOAD_CONFIG_PATH), read with the agent's rules
 * (port-labs/port-agent, app/invokers/webhook_invoker.py and
 * app/core/config.py): a list of mappings; the first whose `enabled` is
 * true, or a jq expression giving exactly true, decides the request.
 * Every string in a field is a jq expression over the run message; objects
 * and lists are walked and their strings evaluated; other values are
 * literals. Where this differs from the agent (an expression that fails
 * ends the run FAILURE here, where the agent sends null) the README says so.
 */

/** pydantic 1 reads these strings as booleans in `enabled: bool | str` (case-insensitive). */
const PYDANTIC_TRUE = new Set(['1', 'on', 't', 'true', 'y', 'yes']);
const PYDANTIC_FALSE = new Set(['0', 'off', 'f', 'false', 'n', 'no']);

/** pydantic 1's `str` takes numbers too, as their text (an expression then). */
const text = z.union([z.string(), z.number().transform(String)]);
const textMap = z.record(z.string(), text);

const mappingSchema = z.looseObject({
  enabled: z.union([z.boolean(), z.string()]).default(true),
  method: text.nullish(),
  url: text.nullish(),
  body: z.union([z.record(z.string(), z.unknown()), z.string()]).nullish(),
  headers: z.union([textMap, z.string()]).nullish(),
  query: z.union([textMap, z.string()]).nullish(),
  report: z
    .looseObject({ status: text.nullish(), link: text.nullish(), summary: text.nullish(), externalRunId: text.nullish() })
    .nullish(),
  fieldsToDecryptPaths: z.array(z.string()).default([]),
});

export const REQUEST_FIELDS = ['method', 'url', 'body', 'headers', 'query'] as const;
export const REPORT_FIELDS = ['status', 'link', 'summary', 'externalRunId'] as const;
export type RequestField = (typeof REQUEST_FIELDS)[number];
export type ReportField = (typeof REPORT_FIELDS)[number];

/** One mapping of the file, as read. */
export interface PayloadMapping {
  /** Its place in the file, from 0 (what errors name). */
  index: number;
  enabled: boolean | string;
  request: Partial<Record<RequestField, unknown>>;
  report: Partial<Record<ReportField, string>> | null;
  fieldsToDecryptPaths: string[];
}

/** Our own statement of the agent's default file (the same rules, checked against the agent by hand). */
export const DEFAULT_MAPPINGS: unknown[] = [
  {
    enabled: '.payload.action.invocationMethod.type == "GITLAB"',
    url: '(env.GITLAB_URL // "https://gitlab.com/") as $base | .payload.action.invocationMethod as $m | ($m.groupName + "/" + $m.projectName | @uri) as $project | $base + "api/v4/projects/" + $project + "/trigger/pipeline"',
    body: {
      ref: '.payload.properties.ref // .payload.action.invocationMethod.defaultRef // "main"',
      token: '.payload.action.invocationMethod as $m | env[($m.groupName | gsub("/"; "_")) + "_" + $m.projectName]',
      variables: '.payload.action.invocationMethod.omitUserInputs as $omit | .payload.properties | to_entries | map({(.key): (.value | tostring)}) | add | if $omit then {} else . end',
      port_payload: 'if .payload.action.invocationMethod.omitPayload then {} else . end',
    },
    report: { link: '.response.json.web_url', externalRunId: '.response.json.id | tostring' },
  },
  {
    enabled: true,
    url: '.payload.action.invocationMethod.url // .changelogDestination.url',
    method: '.payload.action.invocationMethod.method // "POST"',
    fieldsToDecryptPaths: [],
  },
];

/** A mapping's expression failed: what the run's FAILURE summary says (the place, never the values). */
export class MappingError extends RouterError {
  constructor(
    readonly where: string,
    problem: JqError | string,
  ) {
    // A jq runtime error's text may quote the values it failed on: only its kind is said.
    const why =
      typeof problem === 'string'
        ? problem
        : problem.code === ErrorCodes.JQ_TIMEOUT
          ? `ran past its budget (${problem.message})`
          : problem.code === ErrorCodes.JQ_OUTPUT_TOO_LARGE
            ? `made too much output (${problem.message})`
            : 'failed (a jq error)';
    super(ErrorCodes.MAPPING_FAILED, `payload mapping: ${where} ${why}`);
    this.name = 'MappingError';
  }
}

/** One jq string inside a field's value, and where it sits. */
interface Leaf {
  path: (string | number)[];
  expression: string;
}

/**
 * The mapping file, parsed and compiled: `find` picks a run's mapping,
 * `evaluate` computes a group of its fields over an input. Expressions of
 * one group go to jq as one batch.
 */
export class PayloadMappings {
  private constructor(
    readonly mappings: readonly PayloadMapping[],
    /** Where they came from, for messages: the file, or "the default mapping". */
    readonly source: string,
    private readonly jq: JqEvaluator,
  ) {}

  /**
   * Reads `path` (or the default mapping when undefined) and compiles every
   * expression: a file that is not JSON, not a list of mappings, or holds an
   * expression that does not compile throws a ConfigError naming the
   * variable, the mapping and the field.
   */
  static async load(path: string | undefined, jq: JqEvaluator, variable = 'CONTROL_THE_PAYLOAD_CONFIG_PATH'): Promise<PayloadMappings> {
    let raw: unknown = DEFAULT_MAPPINGS;
    if (path !== undefined) {
      let textOf: string;
      try {
        textOf = readFileSync(path, 'utf8');
      } catch (err) {
        throw new ConfigError(variable, `cannot read ${path}: ${(err as Error).message}`);
      }
      try {
        raw = JSON.parse(textOf);
      } catch (err) {
        throw new ConfigError(variable, `${path} is not valid JSON (${(err as Error).message})`);
      }
    }
    const source = path ?? 'the default mapping';
    if (!Array.isArray(raw)) throw new ConfigError(variable, `${source}: expected a list of mappings`);
    const mappings = raw.map((item, index) => {
      const parsed = mappingSchema.safeParse(item);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new ConfigError(variable, `${source}: mapping ${index}, ${issue.path.join('.') || 'the mapping'}: ${issue.message}`);
      }
      const m = parsed.data;
      let enabled = m.enabled;
      if (typeof enabled === 'string' && PYDANTIC_TRUE.has(enabled.toLowerCase())) enabled = true;
      else if (typeof enabled === 'string' && PYDANTIC_FALSE.has(enabled.toLowerCase())) enabled = false;
      const request: Partial<Record<RequestField, unknown>> = {};
      for (const field of REQUEST_FIELDS) if (m[field] !== undefined && m[field] !== null) request[field] = m[field];
      let report: Partial<Record<ReportField, string>> | null = null;
      if (m.report) {
        report = {};
        for (const field of REPORT_FIELDS) if (typeof m.report[field] === 'string') report[field] = m.report[field];
      }
      return { index, enabled, request, report, fieldsToDecryptPaths: m.fieldsToDecryptPaths };
    });
    const all = new PayloadMappings(mappings, source, jq);
    for (const m of mappings) {
      const checks: [string, string][] = [];
      if (typeof m.enabled === 'string') checks.push(['enabled', m.enabled]);
      for (const [field, value] of Object.entries(m.request)) for (const leaf of leaves(value)) checks.push([placeOf(field, leaf.path), leaf.expression]);
      for (const [field, value] of Object.entries(m.report ?? {})) checks.push([`report.${field}`, value]);
      for (const [where, expression] of checks) {
        try {
          await jq.check(expression, `${source}: mapping ${m.index}, ${where}`);
        } catch (err) {
          throw new ConfigError(variable, (err as Error).message);
        }
      }
    }
    return all;
  }

  /**
   * The first mapping enabled for `message`, or null when none is. An
   * `enabled` expression that fails (reached before any enabled mapping)
   * is a MappingError, not a silent "no".
   */
  async find(message: unknown): Promise<PayloadMapping | null> {
    const expressions = this.mappings.map((m) => (typeof m.enabled === 'string' ? m.enabled : 'false'));
    const outcomes = await this.batch(expressions, message, (i) => `mapping ${i}, enabled`);
    for (const m of this.mappings) {
      if (m.enabled === true) return m;
      if (typeof m.enabled !== 'string') continue;
      const outcome = outcomes[m.index]!;
      if (!outcome.ok) throw new MappingError(`mapping ${m.index}, enabled`, outcome.error);
      if (outcome.value === true) return m;
    }
    return null;
  }

  /**
   * The given fields of `fields` (a mapping's request or report) evaluated
   * over `input`: every string in them is jq; objects lose members that
   * end up empty objects, as the agent's flatten/unflatten drops them.
   * Throws a MappingError naming the mapping and the field that failed.
   */
  async evaluate<F extends string>(mapping: PayloadMapping, fields: Partial<Record<F, unknown>>, input: unknown, prefix = ''): Promise<Partial<Record<F, unknown>>> {
    const all: { field: F; leaf: Leaf }[] = [];
    for (const [field, value] of Object.entries(fields) as [F, unknown][]) for (const leaf of leaves(value)) all.push({ field, leaf });
    const outcomes = await this.batch(
      all.map((a) => a.leaf.expression),
      input,
      (i) => `mapping ${mapping.index}, ${prefix}${placeOf(all[i]!.field, all[i]!.leaf.path)}`,
    );
    const out: Partial<Record<F, unknown>> = {};
    let next = 0;
    for (const [field, value] of Object.entries(fields) as [F, unknown][]) {
      out[field] = rebuild(value, () => {
        const i = next++;
        const outcome = outcomes[i]!;
        if (!outcome.ok) throw new MappingError(`mapping ${mapping.index}, ${prefix}${placeOf(field, all[i]!.leaf.path)}`, outcome.error);
        return outcome.value;
      });
    }
    return out;
  }

  /** Ends the jq process. */
  close(): Promise<void> {
    return this.jq.close();
  }

  /** A batch; past its budget, asked again one by one so that the slow expression is the one named. */
  private async batch(expressions: string[], input: unknown, where: (i: number) => string) {
    try {
      return await this.jq.evaluateAll(expressions, input);
    } catch (err) {
      if (!(err instanceof JqError)) throw err;
      for (let i = 0; i < expressions.length; i++) {
        const [one] = await this.jq.evaluateAll([expressions[i]!], input).catch((e: JqError) => [{ ok: false as const, error: e }]);
        if (!one!.ok) throw new MappingError(where(i), one!.error);
      }
      throw new MappingError(where(0), err);
    }
  }
}

/** Every jq string inside a field's value, depth first, in the order `rebuild` visits them. */
function leaves(value: unknown, path: (string | number)[] = []): Leaf[] {
  if (typeof value === 'string') return [{ path, expression: value }];
  if (Array.isArray(value)) return value.flatMap((v, i) => leaves(v, [...path, i]));
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => leaves(v, [...path, k]));
  return [];
}

/** The value with each string replaced by `next()`; a member that is (or becomes) an empty object is dropped. */
function rebuild(value: unknown, next: () => unknown): unknown {
  if (typeof value === 'string') return next();
  if (Array.isArray(value)) return value.map((v) => rebuild(v, next));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const built = rebuild(v, next);
      const emptyObject = v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(built as object).length === 0;
      if (!emptyObject) out[k] = built;
    }
    return out;
  }
  return value;
}

function placeOf(field: string, path: (string | number)[]): string {
  return [field, ...path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`))].join('').replace(/\.\[/g, '[');
}
