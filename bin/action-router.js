#!/usr/bin/env node
'use strict';
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
