import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, RejectedEventError } from '../errors';
import { Json, JsonObject, deepFreeze } from '../model/json';
import { JsonMap } from '../model/lossless-json';
import { ActionRun, FrozenRun, InvocationMethod } from '../model/run';
import { decryptSecretInput, encryptSecretInput } from '../model/secret-input';
import { ActionDefinition, UserInput, actionDefinitionSchema, operationOf, secretInputsOf, userInputsOf } from './definition';

/** The key an org's secret inputs are encrypted under (model/secret-input.ts), or null when it has none. */
export type SecretKeyFor = (orgId: string) => Buffer | null;

/** Action definitions by identifier. */
export class ActionCatalog {
  private readonly byId: Map<string, ActionDefinition>;

  constructor(definitions: ActionDefinition[]) {
    this.byId = new Map(definitions.map((d) => [d.identifier, d]));
  }

  get size(): number {
    return this.byId.size;
  }

  /** Every definition, in the catalog's order. */
  all(): ActionDefinition[] {
    return [...this.byId.values()];
  }

  get(identifier: string): ActionDefinition | undefined {
    return this.byId.get(identifier);
  }

  /** Each action's title, by identifier (what a run's view shows). */
  titles(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [id, d] of this.byId) if (d.title) out[id] = d.title;
    return out;
  }

  /** The identifiers of the actions that require approval. */
  approvalActions(): string[] {
    return [...this.byId.values()].filter((d) => d.requiredApproval).map((d) => d.identifier);
  }

  /**
   * Applies the action's definition to a run: its invocationMethod replaces
   * the event's (the catalog is authoritative), defaults fill missing inputs,
   * and the inputs are checked. Secret inputs leave encrypted (`keyFor`):
   * a value already encrypted under the org's key (Port's, or the execute
   * route's) is checked as its plaintext and kept as it came; a plain one is
   * checked, then encrypted. Returns a new frozen run.
   */
  apply(run: FrozenRun, keyFor: SecretKeyFor = () => null): FrozenRun | RejectedEventError {
    const def = this.byId.get(run.action);
    if (!def) {
      return new RejectedEventError(ErrorCodes.UNKNOWN_ACTION, `action "${run.action}" is not defined in the action catalog`);
    }
    const secrets = secretInputsOf(def).filter((name) => run.properties[name] !== undefined && run.properties[name] !== null);
    const censored = [...new Set([...run.censoredProperties, ...secrets])];
    let given: Readonly<JsonObject> = run.properties;
    const sealed = new Map<string, string>();
    if (secrets.length > 0) {
      const key = keyFor(run.orgId);
      if (!key) {
        return new RejectedEventError(ErrorCodes.SECRET_KEY_MISSING, `secret input${secrets.length > 1 ? 's' : ''} ${secrets.join(', ')} cannot be encrypted: org ${run.orgId} has no secret of 32 bytes or more (ORG_SECRETS_FILE or SIGNING_SECRET)`);
      }
      const plain: JsonObject = { ...run.properties };
      for (const name of secrets) {
        const value = run.properties[name];
        if (typeof value !== 'string') return new RejectedEventError(ErrorCodes.INPUT_INVALID, `user inputs of "${def.identifier}" are invalid: ${name}: a secret input must be a string`);
        const opened = decryptSecretInput(value, key);
        sealed.set(name, opened === null ? encryptSecretInput(value, key) : value);
        if (opened !== null) plain[name] = opened;
      }
      given = plain;
    }
    const checked = checkInputs(def, given, censored);
    if (checked instanceof RejectedEventError) return checked;
    for (const [name, value] of sealed) checked[name] = value;
    const { type, agent, ...settings } = def.invocationMethod;
    const invocationMethod: InvocationMethod = { ...(settings as JsonObject), type: type.toUpperCase(), agent: agent ?? false };
    // The producer's values stay as written; defaults join them. The
    // catalog's invocation method replaces the event's. Present, `lossless`
    // also makes messages Python's form (a default may be any number).
    const written = run.lossless?.properties;
    let properties = written;
    if (written instanceof JsonMap) {
      properties = new JsonMap();
      for (const [k, v] of written.entries) properties.entries.set(k, sealed.get(k) ?? v);
      for (const [k, v] of Object.entries(checked)) if (!written.entries.has(k)) properties.entries.set(k, v);
    }
    const next: ActionRun = {
      ...run,
      actionTrigger: run.actionTrigger ?? operationOf(def),
      invocationMethod,
      properties: checked,
      censoredProperties: censored,
      lossless: { entity: run.lossless?.entity, user: run.lossless?.user, ...(properties ? { properties } : {}) },
    };
    return deepFreeze(next);
  }
}

/** One input's problem: the input's name and the rule it breaks. */
export interface InputProblem {
  field: string;
  message: string;
}

/**
 * Checks inputs against `userInputs` (required, types, enums) and applies
 * defaults: the inputs with defaults, and each problem by input. A problem
 * shows the value only for inputs that are not censored, and cut short.
 */
export function inputProblems(def: ActionDefinition, given: Readonly<JsonObject>, censored: readonly string[] = []): { inputs: JsonObject; problems: InputProblem[] } {
  const spec = userInputsOf(def);
  const inputs: JsonObject = { ...given };
  const problems: InputProblem[] = [];
  for (const [name, input] of Object.entries(spec.properties)) {
    if (inputs[name] === undefined && input.default !== undefined) inputs[name] = input.default as Json;
    const value = inputs[name];
    if (value === undefined || value === null) continue;
    const problem = checkValue(input, value, censored.includes(name));
    if (problem) problems.push({ field: name, message: problem });
  }
  for (const name of spec.required) {
    if (inputs[name] === undefined || inputs[name] === null || inputs[name] === '') problems.push({ field: name, message: 'required' });
  }
  return { inputs, problems };
}

/** `inputProblems` as the router takes it: the inputs with defaults, or the rejection naming every problem. */
export function checkInputs(def: ActionDefinition, given: Readonly<JsonObject>, censored: readonly string[] = []): JsonObject | RejectedEventError {
  const { inputs, problems } = inputProblems(def, given, censored);
  if (problems.length) {
    return new RejectedEventError(ErrorCodes.INPUT_INVALID, `user inputs of "${def.identifier}" are invalid: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
  }
  return inputs;
}

/** A value as an error text shows it: at most 120 characters of its JSON. */
function shown(value: Json): string {
  const text = JSON.stringify(value);
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

function checkValue(input: UserInput, value: Json, hidden: boolean): string | null {
  const typeOk: Record<UserInput['type'], boolean> = {
    string: typeof value === 'string',
    number: typeof value === 'number' && Number.isFinite(value),
    integer: Number.isInteger(value),
    boolean: typeof value === 'boolean',
    object: typeof value === 'object' && value !== null && !Array.isArray(value),
    array: Array.isArray(value),
  };
  if (!typeOk[input.type]) return `expected ${input.type}, got ${Array.isArray(value) ? 'array' : typeof value}`;
  if (input.enum && !input.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    return `${hidden ? 'the (censored) value' : shown(value)} is not one of ${JSON.stringify(input.enum)}`;
  }
  const bound = boundProblem(input, value, hidden);
  if (bound) return bound;
  if (input.type === 'array' && Array.isArray(value) && input.items?.enum) {
    const allowed = input.items.enum.map((e) => JSON.stringify(e));
    const bad = value.filter((v) => !allowed.includes(JSON.stringify(v)));
    if (bad.length) return `${hidden ? `${bad.length} (censored) item${bad.length === 1 ? '' : 's'}` : `items ${shown(bad)}`} ${bad.length === 1 && hidden ? 'is' : 'are'} not in ${JSON.stringify(input.items.enum)}`;
  }
  return null;
}

/** Plain checks for Port's string formats: what a form can say before sending. */
const FORMATS: Record<string, (v: string) => boolean> = {
  email: (v) => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v),
  url: (v) => {
    try {
      return ['http:', 'https:'].includes(new URL(v).protocol);
    } catch {
      return false;
    }
  },
  'date-time': (v) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(v) && Number.isFinite(Date.parse(v)),
};

/** Compiled `pattern`s, one per input definition. */
const patterns = new WeakMap<UserInput, RegExp>();

/** Bounds (minimum, maximum, lengths, items), `format` and `pattern`: the rules a form checks too. */
function boundProblem(input: UserInput, value: Json, hidden: boolean): string | null {
  if (typeof value === 'number') {
    if (input.minimum !== undefined && value < input.minimum) return `must be at least ${input.minimum}`;
    if (input.maximum !== undefined && value > input.maximum) return `must be at most ${input.maximum}`;
  }
  if (typeof value === 'string') {
    const length = [...value].length;
    if (input.minLength !== undefined && length < input.minLength) return `must have at least ${input.minLength} characters`;
    if (input.maxLength !== undefined && length > input.maxLength) return `must have at most ${input.maxLength} characters`;
    const format = input.format ? FORMATS[input.format] : undefined;
    if (format && !format(value)) return `${hidden ? 'the (censored) value' : shown(value)} is not a valid ${input.format}`;
    if (input.pattern !== undefined) {
      let re = patterns.get(input);
      if (!re) patterns.set(input, (re = new RegExp(input.pattern, 'u')));
      if (!re.test(value)) return `${hidden ? 'the (censored) value' : shown(value)} does not match ${input.pattern}`;
    }
  }
  if (Array.isArray(value)) {
    const items = (n: number) => `${n} item${n === 1 ? '' : 's'}`;
    if (input.minItems !== undefined && value.length < input.minItems) return `must have at least ${items(input.minItems)}`;
    if (input.maxItems !== undefined && value.length > input.maxItems) return `must have at most ${items(input.maxItems)}`;
  }
  return null;
}

/**
 * Loads definitions from a JSON file (one definition or an array) or from
 * every `.json` file of a folder. Throws with the file and field on error.
 */
export function loadCatalog(path: string): ActionCatalog {
  const files = statSync(path).isDirectory()
    ? readdirSync(path).filter((f) => f.endsWith('.json')).sort().map((f) => join(path, f))
    : [path];
  const definitions: ActionDefinition[] = [];
  for (const file of files) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new Error(`${file}: not valid JSON (${(err as Error).message})`, { cause: err });
    }
    const items = Array.isArray(parsed) ? parsed : [parsed];
    items.forEach((item, i) => {
      const result = actionDefinitionSchema.safeParse(item);
      if (!result.success) {
        const issue = result.error.issues[0];
        const where = [Array.isArray(parsed) ? `[${i}]` : '', ...(issue?.path ?? []).map(String)].filter(Boolean).join('.');
        throw new Error(`${file}: invalid action definition at ${where || '(root)'}: ${issue?.message}`);
      }
      definitions.push(result.data);
    });
  }
  return new ActionCatalog(definitions);
}
