#!/usr/bin/env node
// Runs a command with KAFKA_BROKERS set. When it is unset, the local broker
// is started first (or reused) and, if this script started it, stopped after.
import { spawn } from 'node:child_process';
import { ensureBroker, stopSharedBroker } from './kafka.mjs';

const args = process.argv.slice(2);
if (args.length === 0) {
  process.stderr.write('usage: node scripts/with-kafka.mjs COMMAND [ARGS...]\n');
  process.exit(2);
}
let started = false;
const env = { ...process.env };
if (!env.KAFKA_BROKERS) {
  const broker = await ensureBroker();
  started = broker.started;
  env.KAFKA_BROKERS = broker.brokers;
  process.stderr.write(`[kafka] KAFKA_BROKERS=${broker.brokers}${started ? '' : ' (already running)'}\n`);
}
const child = spawn(args[0], args.slice(1), { stdio: 'inherit', env, shell: process.platform === 'win32' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
const code = await new Promise((res) => child.on('exit', (c, s) => res(c ?? (s ? 1 : 0))));
if (started) await stopSharedBroker();
process.exit(code);
