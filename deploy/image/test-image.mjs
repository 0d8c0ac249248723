#!/usr/bin/env node
/*
 * Runs the built image as a cluster would, against a real broker
 * (KAFKA_BROKERS; `node scripts/with-kafka.mjs` starts the local one):
 *
 *   node deploy/image/test-image.mjs IMAGE
 *
 * Each check prints a line; the last line is "N passed, N failed" and the
 * exit code is 1 when any failed. Containers run the only way these
 * machines run them: runc, cgroupfs, host network, explicit ulimits.
 */
import '../../scripts/quiet-warnings.mjs';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { freePort } from '../../scripts/kafka.mjs';

const require = createRequire(import.meta.url);
const { Kafka, logLevel } = require('kafkajs');
const { samplePortMessage } = require('../../dist/sample.js');

const image = process.argv[2];
const brokers = process.env.KAFKA_BROKERS;
if (!image || !brokers) {
  process.stderr.write('usage: KAFKA_BROKERS=host:port node deploy/image/test-image.mjs IMAGE\n');
  process.exit(2);
}
const PODMAN = ['--runtime', 'runc', '--cgroup-manager', 'cgroupfs'];
// No health-check timer: podman would ask systemd for one (there is none here); the check is run by hand below.
const RUN = ['run', '--network', 'host', '--no-healthcheck', '--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=4096:4096'];
const results = [];
const cleanups = [];

function podman(args, options = {}) {
  const r = spawnSync('podman', [...PODMAN, ...args], { encoding: 'utf8', timeout: options.timeoutMs ?? 120_000 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

async function check(name, fn) {
  const started = Date.now();
  try {
    const detail = await fn();
    results.push(true);
    process.stdout.write(`ok   ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)${detail ? `: ${detail}` : ''}\n`);
  } catch (err) {
    results.push(false);
    process.stdout.write(`FAIL ${name}: ${err.message}\n`);
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

async function waitFor(what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A data directory the image's user (10001) owns, like a volume with fsGroup. */
function dataDir(mode = 0o700) {
  const dir = mkdtempSync(join(tmpdir(), 'ar-image-data-'));
  spawnSync('chown', ['10001:10001', dir]);
  chmodSync(dir, mode);
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const suffix = randomBytes(4).toString('hex');
const topics = {
  TRIGGER_TOPIC: `image-${suffix}.triggers`,
  STATUS_TOPIC: `image-${suffix}.status`,
  DLQ_TOPIC: `image-${suffix}.dlq`,
  ORG_TOPIC_TEMPLATE: `image-${suffix}.{orgId}.runs`,
};
const envArgs = (env) => Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);

try {
  await check('the image runs as a non-root numeric user and declares /data', () => {
    const r = podman(['image', 'inspect', '--format', '{{.Config.User}}|{{json .Config.Volumes}}|{{.Size}}', image]);
    assert(r.code === 0, r.stderr);
    const [user, volumes, size] = r.stdout.trim().split('|');
    assert(user === '10001:10001', `user is "${user}"`);
    assert(volumes.includes('/data'), `volumes ${volumes}`);
    return `user ${user}, size ${(Number(size) / 1e6).toFixed(0)} MB`;
  });

  await check('the runtime stage has no compiler and no npm', () => {
    const r = podman([...RUN, '--rm', '--entrypoint', '/bin/sh', image, '-c', 'for c in cc gcc g++ make npm; do command -v $c; done; true']);
    assert(r.code === 0, r.stderr);
    assert(r.stdout.trim() === '', `found: ${r.stdout.trim().replace(/\n/g, ', ')}`);
  });

  await check('native modules load in the runtime stage (SQLite, jq)', () => {
    const js = "const D=require('better-sqlite3');new D(':memory:');const jq=require('@port-labs/jq-node-bindings');process.stdout.write(String(jq.exec({a:41},'.a+1')))";
    const r = podman([...RUN, '--rm', '--read-only', '--workdir', '/app', '--entrypoint', 'node', image, '-e', js]);
    assert(r.code === 0 && r.stdout === '42', `exit ${r.code}: ${r.stdout} ${r.stderr.slice(0, 400)}`);
  });

  await check('the heap follows the memory limit (512 MiB: half for the old space, plus the young generation)', () => {
    const r = podman([...RUN, '--rm', '--memory', '512m', '--entrypoint', 'node', image, '-p', "require('v8').getHeapStatistics().heap_size_limit"]);
    assert(r.code === 0, r.stderr.slice(0, 400));
    const mib = Number(r.stdout.trim()) / 2 ** 20;
    // V8's limit counts the old space (50% of 512 MiB) and the young generation (three 16 MiB semi-spaces' worth).
    const expected = 512 / 2 + 3 * 16;
    assert(Math.abs(mib - expected) <= 16, `heap limit ${mib.toFixed(0)} MiB under a 512 MiB limit (expected about ${expected})`);
    return `heap limit ${mib.toFixed(0)} MiB (old space 256 + young generation 48)`;
  });

  await check('no KAFKA_BROKERS: exit 2 naming it, no stack trace', () => {
    const r = podman([...RUN, '--rm', '--read-only', '--tmpfs', '/tmp', '-v', `${dataDir()}:/data`, image, 'start']);
    assert(r.code === 2, `exit ${r.code}: ${r.stderr}`);
    assert(/KAFKA_BROKERS/.test(r.stderr), r.stderr);
    assert(!/^\s+at /m.test(r.stderr), `a stack trace: ${r.stderr}`);
    return r.stderr.trim();
  });

  await check('a bad setting: exit 2 naming the variable', () => {
    const r = podman([...RUN, '--rm', '--read-only', '-e', `KAFKA_BROKERS=${brokers}`, '-e', 'ROUTER_MAX_IN_FLIGHT=lots', image, 'start']);
    assert(r.code === 2 && /ROUTER_MAX_IN_FLIGHT/.test(r.stderr) && !/^\s+at /m.test(r.stderr), `exit ${r.code}: ${r.stderr}`);
    return r.stderr.trim();
  });

  await check('no writable data directory: said at start, exit 2', () => {
    const r = podman([...RUN, '--rm', '--read-only', '--tmpfs', '/tmp', '-v', `${dataDir(0o500)}:/data:ro`, ...envArgs({ KAFKA_BROKERS: brokers, ...topics }), image, 'start']);
    assert(r.code === 2 && /DATA_DIR/.test(r.stderr) && /not writable/.test(r.stderr), `exit ${r.code}: ${r.stderr}`);
    return r.stderr.trim();
  });

  const port = await freePort();
  const name = `action-router-test-${suffix}`;
  cleanups.push(() => podman(['rm', '-f', '-t', '0', name]));
  const kafka = new Kafka({ clientId: 'image-test', brokers: brokers.split(','), logLevel: logLevel.NOTHING });

  await check('read-only, non-root, on the broker: it becomes ready and routes a run', async () => {
    const r = podman([...RUN.filter((a) => a !== '--no-healthcheck'), '-d', '--name', name, '--read-only', '--tmpfs', '/tmp', '--user', '10001:10001', '-v', `${dataDir()}:/data`,
      ...envArgs({ KAFKA_BROKERS: brokers, HTTP_PORT: String(port), ...topics }), image, 'start']);
    assert(r.code === 0, r.stderr);
    await waitFor('/readyz', async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).ok, 120_000);
    const runId = `r_image_${suffix}`;
    const orgTopic = topics.ORG_TOPIC_TEMPLATE.replace('{orgId}', 'org_image');
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    await producer.send({ topic: topics.TRIGGER_TOPIC, messages: [{ key: runId, value: JSON.stringify(samplePortMessage({ runId, orgId: 'org_image' })) }] });
    await producer.disconnect();
    const consumer = kafka.consumer({ groupId: `image-test-${suffix}` });
    let routed = false;
    let reported = false;
    await consumer.connect();
    await waitFor(`the org topic ${orgTopic}`, async () => (await kafka.admin().listTopics()).includes(orgTopic), 60_000);
    await consumer.subscribe({ topics: [topics.STATUS_TOPIC, orgTopic], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, message }) => {
        const text = message.value?.toString() ?? '';
        if (topic === orgTopic && text.includes(runId)) routed = true;
        if (topic === topics.STATUS_TOPIC && text.includes(runId) && text.includes('IN_PROGRESS')) reported = true;
      },
    });
    await waitFor('the run on the org topic and IN_PROGRESS on the status topic', async () => routed && reported, 60_000);
    await consumer.disconnect();
    // The run store (SQLite in /data, on a read-only root) applies the status topic: the run is open, then the backend ends it.
    const openRuns = async () => Number(/^action_router_store_open_runs\{status="IN_PROGRESS"\} (\d+)$/m.exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())?.[1] ?? -1);
    await waitFor('the store to hold the open run', async () => (await openRuns()) === 1, 30_000);
    const backend = kafka.producer();
    await backend.connect();
    const update = { runId, orgId: 'org_image', action: 'deploy_service', status: 'SUCCESS', statusLabel: null, summary: 'deployed', links: [], externalRunId: null, log: null, invocationType: 'KAFKA', source: 'BACKEND', attempt: 1, at: Date.now() };
    await backend.send({ topic: topics.STATUS_TOPIC, messages: [{ key: runId, value: JSON.stringify(update) }] });
    await backend.disconnect();
    await waitFor('the store to apply the backend\'s SUCCESS', async () => (await openRuns()) === 0, 30_000);
    return `run ${runId} routed to ${orgTopic}; the store in /data applied its IN_PROGRESS and the backend's SUCCESS`;
  });

  await check('the image health check passes when ready', () => {
    const r = podman(['healthcheck', 'run', name]);
    assert(r.code === 0, `exit ${r.code}: ${r.stdout} ${r.stderr}`);
  });

  await check('/metrics answers with the router and process series', async () => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    for (const m of ['action_router_ready 1', 'action_router_runs_routed_total', 'action_router_process_resident_memory_bytes']) assert(text.includes(m), `missing ${m}`);
  });

  await check('SIGTERM: exit 0 within 10 s', async () => {
    const started = Date.now();
    const kill = podman(['kill', '--signal', 'TERM', name]);
    assert(kill.code === 0, kill.stderr);
    const waited = await new Promise((resolve) => {
      const p = spawn('podman', [...PODMAN, 'wait', name]);
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.on('exit', () => resolve(out.trim()));
    });
    const seconds = (Date.now() - started) / 1000;
    const logs = podman(['logs', '--tail', '5', name]);
    assert(waited === '0', `exit code ${waited}; last logs: ${logs.stdout}${logs.stderr}`);
    assert(seconds < 10, `took ${seconds.toFixed(1)} s`);
    return `exit 0 after ${seconds.toFixed(1)} s`;
  });
} finally {
  for (const c of cleanups.reverse()) {
    try {
      c();
    } catch {
      // best effort
    }
  }
}
const passed = results.filter(Boolean).length;
process.stdout.write(`image: ${passed} passed, ${results.length - passed} failed\n`);
process.exit(passed === results.length ? 0 : 1);
