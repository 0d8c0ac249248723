import type { JqRequest, JqResponse } from './jq-protocol';

/*
 * The jq process: Port's own binding (@port-labs/jq-node-bindings, jq built
 * from source, compiled programs cached by the binding) evaluates one
 * expression at a time. A process of its own, so that an expression that
 * never ends can be stopped by killing it; not a worker thread, because
 * the binding (a NAN addon) loads once per process and a second thread
 * cannot load it again ("Module did not self-register").
 */

const jq = require('@port-labs/jq-node-bindings') as {
  exec(input: unknown, filter: string, options: { enableEnv?: boolean; throwOnError?: boolean }): unknown;
  JqExecCompileError: new (...args: unknown[]) => Error;
};

process.on('message', (r: JqRequest) => {
  let answer: JqResponse;
  try {
    const value = jq.exec(r.input, r.expression, { enableEnv: r.enableEnv, throwOnError: true }) ?? null;
    const size = JSON.stringify(value)?.length ?? 0;
    answer = size > r.maxOutputChars ? { id: r.id, ok: false, kind: 'too-large', message: `the output is ${size} characters, over ${r.maxOutputChars}` } : { id: r.id, ok: true, value };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    answer = { id: r.id, ok: false, kind: err instanceof jq.JqExecCompileError ? 'compile' : 'runtime', message: message.slice(0, 500) };
  }
  process.send!(answer);
});

// The router that started it is gone: so is this process.
process.on('disconnect', () => process.exit(0));
