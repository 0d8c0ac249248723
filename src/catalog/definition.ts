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
});

export const userInputsSchema = z.looseObject({
  properties: z.record(z.string(), userInputSchema).default({}),
  required: z.array(z.string()).default([]),
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
  trigger: z
    .union([
      z.enum(['CREATE', 'DAY-2', 'DELETE']),
      z.looseObject({ operation: z.string().optional(), userInputs: userInputsSchema.optional() }),
    ])
    .optional(),
  userInputs: userInputsSchema.optional(),
  invocationMethod: invocationMethodSchema,
});

export type UserInput = z.infer<typeof userInputSchema>;
export type UserInputs = z.infer<typeof userInputsSchema>;
export type ActionDefinition = z.infer<typeof actionDefinitionSchema>;

export function userInputsOf(def: ActionDefinition): UserInputs {
  if (def.userInputs) return def.userInputs;
  if (typeof def.trigger === 'object' && def.trigger.userInputs) return def.trigger.userInputs;
  return { properties: {}, required: [] };
}

export function operationOf(def: ActionDefinition): string | null {
  if (typeof def.trigger === 'string') return def.trigger;
  return def.trigger?.operation ?? null;
}
