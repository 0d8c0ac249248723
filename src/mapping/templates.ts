import { ErrorCodes, RejectedEventError } from '../errors';
import { deepFreeze, type Json, type JsonObject } from '../model/json';
import type { ActionRun, FrozenRun } from '../model/run';
import { type JqEvaluator, JqError } from './jq';

/*
 * Payload templates: values of the invocation method that hold jq in
 * `{{ }}`, evaluated over the action's context before the run is invoked,
 * as Port builds an action's payload ("Define the payload",
 * https://docs.port.io/actions-and-automations/create-self-service-experiences/setup-the-backend).
 * A string that is one `{{ expr }}` takes the expression's value, of any
 * JSON type; a string mixing text and `{{ }}` gets each value as text
 * (strings as they are, anything else as JSON).
 */

/** The fields of each invocation type that may hold templates. */
export const TEMPLATE_FIELDS: Readonly<Record<string, readonly string[]>> = {
  WEBHOOK: ['body', 'headers'],
  GITHUB: ['workflowInputs'],
  GITLAB: ['pipelineVariables'],
};

const PART = /\{\{([\s\S]*?)\}\}/g;
const WHOLE = /^\s*\{\{([\s\S]*?)\}\}\s*$/;

/** Every template string inside a value, with its place. */
function templatesIn(value: unknown, place: string, out: { place: string; text: string }[]): void {
  if (typeof value === 'string') {
    if (value.includes('{{')) out.push({ place, text: value });
  } else if (Array.isArray(value)) value.forEach((v, i) => templatesIn(v, `${place}[${i}]`, out));
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) templatesIn(v, `${place}.${k}`, out);
}

/** The string is one `{{ expr }}` and nothing else: it takes the value's own type. */
function isWhole(text: string): boolean {
  return WHOLE.test(text) && (text.match(PART) ?? []).length === 1;
}

/** The expressions of a template string, in order. */
function expressionsOf(text: string): string[] {
  return [...text.matchAll(PART)].map((m) => m[1]!);
}

function render(text: string, values: unknown[]): Json {
  if (isWhole(text)) return (values[0] ?? null) as Json;
  let i = 0;
  return text.replace(PART, () => {
    const v = values[i++];
    return typeof v === 'string' ? v : JSON.stringify(v ?? null);
  });
}

/** The context templates read: `.inputs`, `.entity`, `.trigger`, `.run`, `.action`. */
export function templateContext(run: FrozenRun): JsonObject {
  return {
    inputs: run.properties,
    entity: run.entity ?? (run.entityIdentifier ? { identifier: run.entityIdentifier } : null),
    trigger: { by: { orgId: run.orgId, userId: run.userId, user: run.user }, origin: run.origin, at: run.triggeredAt, operation: run.actionTrigger },
    run: { id: run.runId },
    action: { identifier: run.action, blueprint: run.blueprint },
  };
}

export class PayloadTemplates {
  constructor(private readonly jq: JqEvaluator) {}

  close(): Promise<void> {
    return this.jq.close();
  }

  /** The run's template strings (none for most runs: a cheap look, no jq). */
  private found(run: FrozenRun): { field: string; place: string; text: string }[] {
    const out: { field: string; place: string; text: string }[] = [];
    for (const field of TEMPLATE_FIELDS[run.invocationMethod.type] ?? []) {
      const value = run.invocationMethod[field];
      if (value === undefined || value === null) continue;
      const here: { place: string; text: string }[] = [];
      templatesIn(value, field, here);
      for (const h of here) out.push({ field, ...h });
    }
    return out;
  }

  /**
   * Compiles every template of an invocation method: a JQ_COMPILE error
   * naming `where` and the field when one does not compile.
   */
  async check(method: JsonObject & { type: string }, where: string): Promise<void> {
    const probe = { invocationMethod: { ...method, type: method.type.toUpperCase() } } as unknown as FrozenRun;
    for (const t of this.found(probe)) for (const e of expressionsOf(t.text)) await this.jq.check(e, `${where}, ${t.place}`);
  }

  /**
   * The run with its templates evaluated (the same run when it has none).
   * One that fails or runs past its budget rejects the run TEMPLATE_FAILED,
   * naming the field and never the values.
   */
  async render(run: FrozenRun): Promise<FrozenRun> {
    const found = this.found(run);
    if (found.length === 0) return run;
    const expressions = found.flatMap((t) => expressionsOf(t.text));
    let outcomes;
    try {
      outcomes = await this.jq.evaluateAll(expressions, templateContext(run));
    } catch (err) {
      if (err instanceof JqError) throw new RejectedEventError(ErrorCodes.TEMPLATE_FAILED, `invocation method templates ran past their budget (${err.message})`);
      throw err;
    }
    const rendered = new Map<string, Json>();
    let next = 0;
    for (const t of found) {
      const count = expressionsOf(t.text).length;
      const mine = outcomes.slice(next, next + count);
      next += count;
      const failed = mine.find((o) => !o.ok);
      if (failed && !failed.ok) {
        const why = failed.error.code === ErrorCodes.JQ_COMPILE ? 'does not compile' : failed.error.code === ErrorCodes.JQ_OUTPUT_TOO_LARGE ? 'made too much output' : 'failed (a jq error)';
        throw new RejectedEventError(ErrorCodes.TEMPLATE_FAILED, `the template at invocationMethod.${t.place} ${why}`);
      }
      rendered.set(t.place, render(t.text, mine.map((o) => (o.ok ? o.value : null))));
    }
    const method: JsonObject = { ...run.invocationMethod };
    for (const field of TEMPLATE_FIELDS[run.invocationMethod.type] ?? []) {
      if (method[field] !== undefined) method[field] = replaced(method[field]!, field, rendered);
    }
    const lossless = run.lossless ? { ...run.lossless } : undefined;
    if (lossless) delete lossless.invocationMethod;
    const out: ActionRun = { ...run, invocationMethod: method as ActionRun['invocationMethod'], ...(lossless ? { lossless } : {}) };
    return deepFreeze(out);
  }
}

function replaced(value: Json, place: string, rendered: Map<string, Json>): Json {
  if (rendered.has(place)) return rendered.get(place)!;
  if (Array.isArray(value)) return value.map((v, i) => replaced(v, `${place}[${i}]`, rendered));
  if (value !== null && typeof value === 'object') {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) out[k] = replaced(v, `${place}.${k}`, rendered);
    return out;
  }
  return value;
}
