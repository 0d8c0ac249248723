import { z } from 'zod';

/** One user input of an action (Port's `userInputs.properties.<name>`). */
export const userInputSchema = z.looseObject({
  type: z.enum(['string', 'number', 'integer', 'boolean', 'object', 'array']),
  title: z.string().optional(),
  description: z.string().optional(),
  default: z.unknown().optional(),
  enum: z.array(z.unknown()).optional(),
  format: z.string().optional(),
  items: z.looseObject({ type: z.string().optional(), enum: z.array(z.unknown()).optional() }).optional(),
  /** JSON Schema's bounds, as Port's userInputs take them. */
  minimum: z.number().optional(),
  maximum: z.number().optional(),
  minLength: z.number().int().min(0).optional(),
  maxLength: z.number().int().min(0).optional(),
  minItems: z.number().int().min(0).optional(),
  maxItems: z.number().int().min(0).optional(),
  pattern: z
    .string()
    .max(1024)
    .refine((p) => {
      try {
        new RegExp(p, 'u');
        return true;
      } catch {
        return false;
      }
    }, 'not a valid regular expression')
    .optional(),
  /**
   * Port's secret input: encrypted before the run leaves the router
   * (model/secret-input.ts), censored wherever a run is shown, a password
   * field in the console. Port's one algorithm, on string inputs.
   */
  encryption: z.literal('aes256-gcm', { error: 'the only encryption is "aes256-gcm"' }).optional(),
}).refine((i) => i.encryption === undefined || i.type === 'string', { message: 'only a string input can be encrypted', path: ['encryption'] });

export const userInputsSchema = z.looseObject({
  properties: z.record(z.string(), userInputSchema).default({}),
  required: z.array(z.string()).default([]),
  /** The order a form shows the inputs in (Port's `order`); the rest follow in the catalog's order. */
  order: z.array(z.string()).optional(),
});

export const invocationMethodSchema = z.looseObject({
  type: z.string().min(1),
  agent: z.boolean().optional(),
});

/**
 * An action definition in Port's action JSON structure. Port's newer form
 * nests `userInputs` and the operation in a `trigger` object; both forms load.
 */
export const actionDefinitionSchema = z.looseObject({
  identifier: z.string().min(1),
  title: z.string().optional(),
  description: z.string().optional(),
  /** Port's icon name; the self-service page shows its first letters when it has no picture for it. */
  icon: z.string().max(64).optional(),
  trigger: z
    .union([
      z.enum(['CREATE', 'DAY-2', 'DELETE']),
      z.looseObject({ operation: z.string().optional(), userInputs: userInputsSchema.optional() }),
    ])
    .optional(),
  userInputs: userInputsSchema.optional(),
  invocationMethod: invocationMethodSchema,
  /** Port's manual approval: `true` (one approval) or `{ "type": "ANY" | "ALL" }`. */
  requiredApproval: z.union([z.boolean(), z.looseObject({ type: z.enum(['ANY', 'ALL']) })]).optional(),
  /**
   * Who may decide: API clients by id, people by email (signed in through
   * OIDC), and the run's org's clients and people holding a role. An org's
   * admin may always decide.
   */
  approvers: z
    .strictObject({
      clients: z.array(z.string().min(1)).default([]),
      roles: z.array(z.string().min(1)).default([]),
      users: z.array(z.string().min(3).max(320).includes('@', { message: 'an email address' })).default([]),
    })
    .optional(),
  /** Where approvers are told a run waits: a signed webhook, through the same guard as WEBHOOK runs. */
  approvalNotification: z.strictObject({ type: z.literal('webhook'), url: z.string().url() }).optional(),
  /** The orgs the action is offered to (POST /v1/actions/{id}/runs); unset: every org. */
  orgs: z.array(z.string().min(1)).optional(),
  /** Who may execute it through the API, within an org: listed clients, and clients holding a listed role. Unset: every client of the org. */
  permissions: z
    .looseObject({ execute: z.strictObject({ roles: z.array(z.string().min(1)).default([]), clients: z.array(z.string().min(1)).default([]) }).optional() })
    .optional(),
});

/** What an action's approval needs, or null when it needs none. */
export interface ApprovalRequirement {
  type: 'ANY' | 'ALL';
  clients: string[];
  roles: string[];
  /** People, by email. */
  users: string[];
  notifyUrl: string | null;
}

export function approvalOf(def: ActionDefinition): ApprovalRequirement | null {
  const r = def.requiredApproval;
  if (!r) return null;
  return {
    type: r === true ? 'ANY' : r.type,
    clients: def.approvers?.clients ?? [],
    roles: def.approvers?.roles ?? [],
    users: def.approvers?.users ?? [],
    notifyUrl: def.approvalNotification?.url ?? null,
  };
}

export type UserInput = z.infer<typeof userInputSchema>;
export type UserInputs = z.infer<typeof userInputsSchema>;
export type ActionDefinition = z.infer<typeof actionDefinitionSchema>;

export function userInputsOf(def: ActionDefinition): UserInputs {
  if (def.userInputs) return def.userInputs;
  if (typeof def.trigger === 'object' && def.trigger.userInputs) return def.trigger.userInputs;
  return { properties: {}, required: [] };
}

/** The inputs that are secret (Port's `encryption`): censored on every run page and in the store. */
export function secretInputsOf(def: ActionDefinition): string[] {
  return Object.entries(userInputsOf(def).properties)
    .filter(([, input]) => input.encryption !== undefined)
    .map(([name]) => name);
}

export function operationOf(def: ActionDefinition): string | null {
  if (typeof def.trigger === 'string') return def.trigger;
  return def.trigger?.operation ?? null;
}
