/** One evaluation asked of the jq thread. */
export interface JqRequest {
  id: number;
  expression: string;
  input: unknown;
  /** Expose the process environment as `env` / `$ENV` (Port's binding hides it unless asked). */
  enableEnv: boolean;
  maxOutputChars: number;
}

/** Its answer: the value, or why not. */
export type JqResponse =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; kind: 'compile' | 'runtime' | 'too-large'; message: string };
