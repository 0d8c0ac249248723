import { ChildProcess, fork } from 'node:child_process';
import { ErrorCodes, RouterError } from '../errors';
import { threadScript } from '../threads';
import type { JqRequest, JqResponse, JqResult } from './jq-protocol';

/** What one evaluation may take: time, and the size of its output as JSON. */
export interface JqBudget {
  timeoutMs: number;
  maxOutputChars: number;
}

export const JQ_DEFAULT_BUDGET: JqBudget = { timeoutMs: 1_000, maxOutputChars: 1024 * 1024 };

/** Why an expression gave no value: it does not compile, it failed, it ran too long, or it made too much. */
export class JqError extends RouterError {
  constructor(code: typeof ErrorCodes.JQ_COMPILE | typeof ErrorCodes.JQ_FAILED | typeof ErrorCodes.JQ_TIMEOUT | typeof ErrorCodes.JQ_OUTPUT_TOO_LARGE, message: string) {
    super(code, message);
    this.name = 'JqError';
  }
}

/** One expression's outcome in a batch: its value, or its error. */
export type JqOutcome = { ok: true; value: unknown } | { ok: false; error: JqError };

interface Pending {
  request: JqRequest;
  resolve: (value: JqOutcome[]) => void;
  reject: (err: JqError) => void;
}

/**
 * jq for mappings and templates, with a budget per evaluation. One child
 * process (jq-process.ts) evaluates one expression at a time, in order; an
 * evaluation past its time kills the process (jq cannot be interrupted
 * otherwise) and the next one starts a new process, so a hostile
 * expression costs its budget and no more. Values cross by structured
 * clone (`serialization: 'advanced'`). A mapping's fields go as one batch
 * over one input (one round trip, about 0.25 ms, rather than one each).
 */
export class JqEvaluator {
  private worker: ChildProcess | null = null;
  private readonly queue: Pending[] = [];
  private current: { pending: Pending; timer: NodeJS.Timeout } | null = null;
  private nextId = 1;
  private closed = false;

  /**
   * `env`: the variables expressions see as `env` and `$ENV`, exactly these
   * (the jq process gets no other environment, so the router's secrets stay
   * out); null: `env` is `{}`, as in Port's binding by default.
   */
  constructor(
    private readonly budget: JqBudget = JQ_DEFAULT_BUDGET,
    private readonly env: Readonly<Record<string, string>> | null = null,
  ) {}

  /** The value of `expression` over `input` (jq's first output; null for none). */
  async evaluate(expression: string, input: unknown): Promise<unknown> {
    const [outcome] = await this.evaluateAll([expression], input);
    if (!outcome!.ok) throw outcome!.error;
    return outcome!.value;
  }

  /**
   * Each expression over the same input, in one request: an outcome per
   * expression, in order. The batch's time budget is the budget times the
   * number of expressions; past it the whole batch fails JQ_TIMEOUT (the
   * caller may ask again one by one to learn which expression it was).
   */
  evaluateAll(expressions: readonly string[], input: unknown): Promise<JqOutcome[]> {
    if (this.closed) return Promise.reject(new JqError(ErrorCodes.JQ_FAILED, 'the jq evaluator is closed'));
    if (expressions.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      const request: JqRequest = { id: this.nextId++, expressions: [...expressions], input, enableEnv: this.env !== null, maxOutputChars: this.budget.maxOutputChars };
      this.queue.push({ request, resolve, reject });
      this.pump();
    });
  }

  /**
   * Throws a JQ_COMPILE error naming `where` when `expression` does not
   * compile: what a mapping or a template is checked with at start. A
   * runtime error over `null` (the expression needs its input) is no
   * compile error, and neither is running out of time.
   */
  async check(expression: string, where: string): Promise<void> {
    try {
      await this.evaluate(expression, null);
    } catch (err) {
      if (err instanceof JqError && err.code === ErrorCodes.JQ_COMPILE) throw new JqError(ErrorCodes.JQ_COMPILE, `${where}: ${err.message}`);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new JqError(ErrorCodes.JQ_FAILED, 'the jq evaluator closed'));
    if (this.current) {
      clearTimeout(this.current.timer);
      this.current.pending.reject(new JqError(ErrorCodes.JQ_FAILED, 'the jq evaluator closed'));
      this.current = null;
    }
    const worker = this.worker;
    this.worker = null;
    worker?.kill('SIGKILL');
  }

  private thread(): ChildProcess {
    if (this.worker) return this.worker;
    const worker = fork(threadScript(__dirname, 'jq-process', 'the jq process'), [], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'], env: { ...(this.env ?? {}) } });
    worker.on('message', (answer: JqResponse) => this.answered(answer));
    worker.on('error', (err) => this.lost(worker, `the jq process failed: ${err.message}`));
    worker.on('exit', (code, signal) => this.lost(worker, `the jq process exited (${signal ?? code})`));
    this.worker = worker;
    return worker;
  }

  private pump(): void {
    if (this.current || this.closed) return;
    const pending = this.queue.shift();
    if (!pending) return;
    const worker = this.thread();
    const budget = this.budget.timeoutMs * pending.request.expressions.length;
    const timer = setTimeout(() => {
      // jq cannot be interrupted in place: the thread ends, and the next evaluation gets a new one.
      this.worker = null;
      this.current = null;
      worker.kill('SIGKILL');
      pending.reject(new JqError(ErrorCodes.JQ_TIMEOUT, `ran past its ${budget} ms budget`));
      this.pump();
    }, budget);
    this.current = { pending, timer };
    worker.send(pending.request);
  }

  private answered(answer: JqResponse): void {
    const current = this.current;
    if (!current || current.pending.request.id !== answer.id) return;
    clearTimeout(current.timer);
    this.current = null;
    current.pending.resolve(answer.results.map(outcomeOf));
    this.pump();
  }

  /** The process ended without being asked to: the evaluation under way fails, the next gets a new process. */
  private lost(worker: ChildProcess, why: string): void {
    if (this.worker !== worker) return;
    this.worker = null;
    const current = this.current;
    this.current = null;
    if (current) {
      clearTimeout(current.timer);
      current.pending.reject(new JqError(ErrorCodes.JQ_FAILED, why));
    }
    this.pump();
  }
}

function outcomeOf(result: JqResult): JqOutcome {
  if (result.ok) return { ok: true, value: result.value };
  const code = result.kind === 'compile' ? ErrorCodes.JQ_COMPILE : result.kind === 'too-large' ? ErrorCodes.JQ_OUTPUT_TOO_LARGE : ErrorCodes.JQ_FAILED;
  return { ok: false, error: new JqError(code, result.message) };
}
