import { ParseArgsConfig, parseArgs as parseArgsStrict } from 'node:util';
import { ErrorCodes, RouterError, describeError } from './errors';

export type Args = { _: string[]; [flag: string]: string | boolean | string[] | undefined };

type Options = NonNullable<ParseArgsConfig['options']>;
const text = { type: 'string' } as const;
const on = { type: 'boolean' } as const;
const RUNS_OPTIONS: Options = {
  json: on, url: text, 'client-id': text, 'client-secret': text, status: text, action: text, org: text, type: text,
  q: text, limit: text, offset: text, active: on, follow: on, description: text, props: text, entity: text, wait: on,
};

/** The options each command takes; any other is refused. */
const COMMAND_OPTIONS: Record<string, Options> = {
  start: {},
  api: {},
  agent: { org: text },
  trigger: { type: text, org: text, action: text, 'run-id': text, url: text, method: text, sync: on, agent: on, props: text, invocation: text, file: text, count: text },
  tail: { 'from-now': on, 'run-id': text },
  runs: RUNS_OPTIONS,
  'dead-letters': { json: on, url: text, 'client-id': text, 'client-secret': text, reason: text },
  doctor: { org: text },
  demo: { exit: on },
  help: {},
};

/**
 * The command line, strictly: the command first, then only its own options
 * (node:util parseArgs). An unknown option, or one missing its value, is a
 * CliError naming it.
 */
export function parseArgs(argv: string[]): Args {
  const command = argv[0];
  if (command === undefined || command === '--help' || command === '-h') return { _: ['help'] };
  const options = COMMAND_OPTIONS[command];
  // An unknown command: main says so, with the usage.
  if (!options) return { _: [command] };
  try {
    const { values, positionals } = parseArgsStrict({ args: argv, options, strict: true, allowPositionals: true });
    return { _: positionals, ...values };
  } catch (err) {
    throw new RouterError(ErrorCodes.USAGE, `${describeError(err).replace(/\. To specify a positional argument starting with a '-'.*$/, '')} (action-router ${command}; see action-router help)`);
  }
}
