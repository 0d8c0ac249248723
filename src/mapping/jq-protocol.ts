/** Evaluations asked of the jq process: several expressions over one input, in one message. */
export interface JqRequest {
  id: number;
  expressions: string[];
  input: unknown;
  /** Expose the process environment as `env` / `$ENV` (Port's binding hides it unless asked). */
  enableEnv: boolean;
  maxOutputChars: number;
}

/** One expression's result: the value, or why not. */
export type JqResult = { ok: true; value: unknown } | { ok: false; kind: 'compile' | 'runtime' | 'too-large'; message: string };

/** The answer: one result per expression, in order. */
export interface JqResponse {
  id: number;
  results: JqResult[];
}
