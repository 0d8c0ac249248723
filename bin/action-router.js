#!/usr/bin/env node
'use strict';
// kafkajs (unmaintained) arms its request queue's timer with a negative delay
// whenever nothing is throttled; Node clamps it to 1 ms, as it always did, but
// Node 24 also prints a TimeoutNegativeWarning each time, hundreds a minute.
// That one warning is dropped; every other is printed as Node prints it.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (warning.name === 'TimeoutNegativeWarning') return;
  process.stderr.write(`(node:${process.pid}) ${warning.name}: ${warning.message}\n`);
});
// The CLI runs from the compiled output; `npm run build` makes it.
try {
  require('../dist/cli.js').main(process.argv.slice(2));
} catch (err) {
  if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes('dist/cli.js')) {
    process.stderr.write('action-router is not built yet: run `npm run build` first.\n');
    process.exit(1);
  }
  throw err;
}
