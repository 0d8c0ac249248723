import type { JqRequest, JqResult } from './jq-protocol';

/*
 * The jq process: Port's own binding (@port-labs/jq-node-bindings, jq built
 * from source, compiled programs cached by the binding) evaluates one
 * request at a time. A process of its own, so that an expression that
 * never ends can be stopped by killing it; not a worker thread, because
 * the binding (a NAN addon) loads once per process and a second thread
 * cannot load it again ("Module did not self-register").
 */

const jq = require('@port-labs/jq-node-bindings') as {
  exec(input: unknown, filter: string, options: { enableEnv?: boolean; throwOnError?: boolean }): unknown;
  JqExecCompileError: new (...args: unknown[]) => Error;
};

function evaluate(r: JqRequest, expression: string): JqResult {
  try {
    const value = jq.exec(r.input, expression, { enableEnv: r.enableEnv, throwOnError: true }) ?? null;
    const size = JSON.stringify(value)?.length ?? 0;
    return size > r.maxOutputChars ? { ok: false, kind: 'too-large', message: `the output is ${size} characters, over ${r.maxOutputChars}` } : { ok: true, value };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, kind: err instanceof jq.JqExecCompileError ? 'compile' : 'runtime', message: message.slice(0, 500) };
  }
}

process.on('message', (r: JqRequest) => {
  process.send!({ id: r.id, results: r.expressions.map((e) => evaluate(r, e)) });
});

// The router that started it is gone: so is this process.
process.on('disconnect', () => process.exit(0));
