// npm run bench: the benchmark suite. Starts what it needs (the local
// broker via scripts/with-kafka.mjs, routers as child processes, local HTTP
// receivers), prints a table and writes .bench/latest.json. Figures are
// ratios against baselines measured in the same run: these machines are
// shared and noisy, absolute numbers move from run to run.
//
// Sizes can be lowered for a quick look: BENCH_SCALE=0.1 npm run bench
// One scenario or a few: BENCH_ONLY=kafka-routing,latency npm run bench
import '../scripts/quiet-warnings.mjs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import kafkajs from 'kafkajs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { samplePortMessage } = require('../dist/sample.js');
const { Kafka, logLevel, Partitioners } = kafkajs;
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BROKERS = process.env.KAFKA_BROKERS;
if (!BROKERS) throw new Error('KAFKA_BROKERS is not set (run through npm run bench)');
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const n = (x) => Math.max(100, Math.round(x * SCALE));
const PARTITIONS = 4;

const kafka = new Kafka({ brokers: BROKERS.split(','), clientId: 'bench', logLevel: logLevel.NOTHING });
const admin = kafka.admin();
await admin.connect();
const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
await producer.connect();

const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);
const id = () => randomBytes(4).toString('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Creates the topics and waits for their leaders; a broker just started may not know a new topic's partitions yet: asked again. */
async function createTopics(...topics) {
  for (let attempt = 1; ; attempt++) {
    try {
      await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: PARTITIONS })), waitForLeaders: true });
      return;
    } catch (err) {
      if (attempt >= 5 || !err.retriable) throw err;
      await sleep(500 * attempt);
    }
  }
}

async function messagesIn(topic) {
  const offsets = await admin.fetchTopicOffsets(topic).catch(() => []);
  return offsets.reduce((sum, p) => sum + Number(p.high) - Number(p.low), 0);
}

/** About 1 KB of Port run message. */
function runMessage(runId, method, extra = {}) {
  const msg = samplePortMessage({ runId, orgId: 'org_bench', invocationMethod: method, properties: { version: '1.4.2', environment: 'staging', notes: 'x'.repeat(420), ...extra } });
  return JSON.stringify(msg);
}

async function produceBacklog(topic, count, make) {
  const t0 = Date.now();
  const BATCH = 1000;
  let inFlight = [];
  for (let i = 0; i < count; i += BATCH) {
    const messages = [];
    for (let j = i; j < Math.min(count, i + BATCH); j++) {
      const { key, value } = make(j);
      messages.push({ key, value });
    }
    inFlight.push(producer.send({ topic, messages, acks: -1 }));
    if (inFlight.length >= 4) {
      await Promise.all(inFlight);
      inFlight = [];
    }
  }
  await Promise.all(inFlight);
  log(`produced ${count} messages to ${topic} in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
}

async function waitFor(what, check, timeoutMs, progress) {
  const t0 = Date.now();
  let lastPrint = 0;
  while (Date.now() - t0 < timeoutMs) {
    if (await check()) return Date.now();
    if (progress && Date.now() - lastPrint > 5000) {
      lastPrint = Date.now();
      log(`  ${what}: ${await progress()}`);
    }
    await sleep(50);
  }
  throw new Error(`timed out: ${what}`);
}

function spawnNode(args, env = {}) {
  const child = spawn(process.execPath, args, { env: { ...process.env, KAFKA_BROKERS: BROKERS, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  child.exited = new Promise((r) => child.on('exit', r));
  return child;
}

function routerEnv(topics, extra = {}) {
  return {
    TRIGGER_TOPIC: topics.trigger,
    STATUS_TOPIC: topics.status,
    DLQ_TOPIC: topics.dlq,
    ORG_TOPIC_TEMPLATE: topics.org,
    ROUTER_GROUP_ID: topics.group,
    ORG_TOPIC_PARTITIONS: String(PARTITIONS),
    TOPICS_PARTITIONS: String(PARTITIONS),
    LOG_LEVEL: 'warn',
    HTTP_PORT: '0',
    WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    RUNS_DB_PATH: join(tmpdir(), `bench-runs-${topics.status}.db`),
    ...extra,
  };
}

// BENCH_PROFILE=DIR: each router writes a CPU profile (node --cpu-prof) into DIR when it stops.
const PROFILE = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${resolve(process.env.BENCH_PROFILE)}`] : [];

function spawnRouter(topics, extra) {
  return spawnNode([...PROFILE, join(ROOT, 'bin', 'action-router.js'), 'start'], routerEnv(topics, extra));
}

async function stop(child) {
  child.kill('SIGTERM');
  await child.exited;
}

function topicsFor(name) {
  const s = `bench-${name}-${id()}`;
  return { trigger: `${s}.triggers`, status: `${s}.status`, dlq: `${s}.dlq`, org: `${s}.{orgId}.runs`, group: `${s}-g` };
}

/** A webhook receiver answering after `delayMs`; counts distinct runs, records latency. */
async function receiver(delayMs) {
  const seen = new Set();
  const latencies = [];
  const sentAt = new Map();
  const server = http.createServer((req, res) => {
    const runId = req.headers['x-run-id'];
    req.resume();
    req.on('end', () => {
      if (runId) {
        seen.add(runId);
        const t = sentAt.get(runId);
        if (t !== undefined) latencies.push(Date.now() - t);
      }
      const reply = () => res.writeHead(202, { 'content-type': 'application/json' }).end('{"ok":true}');
      if (delayMs) setTimeout(reply, delayMs);
      else reply();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, seen, latencies, sentAt, close: () => new Promise((r) => server.close(r)) };
}

/** A router's first status update of a stored run, with its run info (about 700 bytes). */
const statusUpdate = (i) => ({
  runId: `r_a${i}`, orgId: 'org_bench', action: 'deploy_service', status: 'IN_PROGRESS', statusLabel: null, summary: null, links: [],
  externalRunId: null, log: 'Routed to Kafka topic org_bench.runs', invocationType: 'KAFKA', source: 'ROUTER', attempt: 1, at: Date.now(),
  run: { blueprint: 'service', entityIdentifier: 'payments', entity: '{"identifier":"payments","title":"Payments"}', properties: '{"version":"1.4.2"}',
    userId: 'u1', userEmail: 'dev@example.com', origin: 'UI', actionTrigger: 'DAY-2', invocation: '{"type":"KAFKA"}', createdAt: Date.now(), triggerPartition: 0, agentPayload: null },
});

const results = [];
function record(name, value, unit, baseline) {
  const row = { name, value: Number(value.toFixed(2)), unit };
  if (baseline !== undefined) {
    row.baseline = Number(baseline.toFixed(2));
    row.ratio = Number((value / baseline).toFixed(3));
  }
  results.push(row);
  log(`${name}: ${row.value} ${unit}${row.ratio !== undefined ? ` (ratio ${row.ratio} to ${row.baseline})` : ''}`);
}

// 1 + 2. Passthrough baseline and KAFKA routing, on the same backlog.
async function kafkaRouting() {
  const N = n(100_000);
  const source = `bench-src-${id()}`;
  await createTopics(source);
  await produceBacklog(source, N, (i) => ({ key: `r_b${i}`, value: runMessage(`r_b${i}`, { type: 'KAFKA' }) }));

  const out = `bench-pass-out-${id()}`;
  await createTopics(out);
  log(`passthrough: ${N} messages`);
  const pass = spawnNode([join(ROOT, 'bench', 'passthrough.mjs'), BROKERS, source, out, `bench-pass-${id()}`]);
  const p0 = Date.now();
  const p1 = await waitFor('passthrough', async () => (await messagesIn(out)) >= N, 600_000, async () => `${await messagesIn(out)}/${N}`);
  await stop(pass);
  const passRate = N / ((p1 - p0) / 1000);
  record('passthrough', passRate, 'msg/s');

  const topics = topicsFor('route');
  topics.trigger = source;
  const routeRate = async (label, t, extra) => {
    const org = t.org.replace('{orgId}', 'org_bench');
    log(`${label}: ${N} runs`);
    const router = spawnRouter(t, extra);
    const r0 = Date.now();
    const done = async () => (await messagesIn(org)) >= N && (await messagesIn(t.status)) >= N;
    const r1 = await waitFor(label, done, 600_000, async () => `${await messagesIn(org)}/${N} routed`);
    await stop(router);
    return N / ((r1 - r0) / 1000);
  };
  const routed = await routeRate('kafka-routing', topics);
  record('kafka-routing', routed, 'runs/s', passRate);
  // The same at least once (ROUTER_NO_REPEAT=false: the store is not read before each call): what the check
  // costs, in pairs of alternating order (one pair moved by a tenth from run to run); the medians compared.
  const checked = [routed];
  const loose = [];
  for (let pair = 0; pair < 2; pair++) {
    const t = topicsFor(`route-loose-${pair}`);
    t.trigger = source;
    loose.push(await routeRate('kafka-routing-at-least-once', t, { ROUTER_NO_REPEAT: 'false' }));
    if (pair === 0) continue;
    const c = topicsFor(`route-again-${pair}`);
    c.trigger = source;
    checked.push(await routeRate('kafka-routing', c));
  }
  log(`kafka-routing: with the check ${checked.map(Math.round).join(', ')}; at least once ${loose.map(Math.round).join(', ')} runs/s`);
  record('kafka-routing-at-least-once', median(loose), 'runs/s', passRate);
  record('kafka-routing-no-repeat-cost', median(checked), 'runs/s', median(loose));

  // The same without the run store in the router process (RUNS_STORE=false,
  // the store served by a separate `action-router api`): what the store costs.
  const bare = topicsFor('route-bare');
  bare.trigger = source;
  record('kafka-routing-no-store', await routeRate('kafka-routing-no-store', bare, { RUNS_STORE: 'false' }), 'runs/s', passRate);
}

// 3. Slow webhooks: the router against a one-at-a-time-per-partition consumer.
async function webhookSlow() {
  const LATENCY = 50;
  const rx = await receiver(LATENCY);
  const seqN = n(800);
  const seqTopic = `bench-seq-${id()}`;
  await createTopics(seqTopic);
  await produceBacklog(seqTopic, seqN, (i) => ({ key: `r_s${i}`, value: runMessage(`r_s${i}`, { type: 'WEBHOOK', url: rx.url }) }));
  log(`sequential baseline: ${seqN} webhook runs, ${LATENCY} ms each, ${PARTITIONS} partitions`);
  const seq = spawnNode([join(ROOT, 'bench', 'sequential.mjs'), BROKERS, seqTopic, `bench-seq-${id()}`, rx.url]);
  const s0 = Date.now();
  const s1 = await waitFor('sequential', () => rx.seen.size >= seqN, 600_000, () => `${rx.seen.size}/${seqN}`);
  await stop(seq);
  const seqRate = seqN / ((s1 - s0) / 1000);
  record('webhook-sequential', seqRate, 'runs/s');

  const N = n(20_000);
  const webhookRate = async (label, extra) => {
    rx.seen.clear();
    const topics = topicsFor(label);
    await createTopics(topics.trigger);
    await produceBacklog(topics.trigger, N, (i) => ({ key: `r_w${i}`, value: runMessage(`r_w${i}`, { type: 'WEBHOOK', url: rx.url }) }));
    log(`${label}: ${N} webhook runs`);
    const router = spawnRouter(topics, extra);
    const w0 = Date.now();
    const w1 = await waitFor(label, () => rx.seen.size >= N, 600_000, () => `${rx.seen.size}/${N}`);
    await stop(router);
    return N / ((w1 - w0) / 1000);
  };
  const slowRate = await webhookRate('webhook-slow');
  record('webhook-slow', slowRate, 'runs/s', seqRate);
  // At least once (ROUTER_NO_REPEAT=false: no STARTED record before each call, no store read): what the check
  // costs, in pairs of alternating order, the medians compared.
  const checked = [slowRate];
  const loose = [await webhookRate('webhook-slow-at-least-once', { ROUTER_NO_REPEAT: 'false' })];
  loose.push(await webhookRate('webhook-slow-at-least-once', { ROUTER_NO_REPEAT: 'false' }));
  checked.push(await webhookRate('webhook-slow'));
  log(`webhook-slow: with the check ${checked.map(Math.round).join(', ')}; at least once ${loose.map(Math.round).join(', ')} runs/s`);
  record('webhook-slow-at-least-once', median(loose), 'runs/s', seqRate);
  record('webhook-slow-no-repeat-cost', median(checked), 'runs/s', median(loose));
  const bound = Math.min(2048, PARTITIONS * 512); // the default in-flight bounds
  record('webhook-ideal', bound / (LATENCY / 1000), 'runs/s');
  await rx.close();
}

// 4. Latency from produce to webhook receipt at a steady rate.
const RATE = 1000;

/**
 * Sends RATE runs/s to the trigger topic, first WARM_SECONDS unmeasured (JIT,
 * the webhook connection pool growing to the rate), then `seconds`
 * measured, and waits for each at the receiver.
 */
const WARM_SECONDS = 2;
async function steadyRate(topics, rx, seconds, prefix) {
  const warm = RATE * WARM_SECONDS;
  const total = warm + RATE * seconds;
  const tick = 10;
  const perTick = (RATE * tick) / 1000;
  const t0 = Date.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((Date.now() - t0) / 1000) * RATE) + perTick);
    const messages = [];
    for (; sent < due; sent++) {
      const runId = sent < warm ? `${prefix}warm${sent}` : `${prefix}${sent}`;
      messages.push({ key: runId, value: runMessage(runId, { type: 'WEBHOOK', url: rx.url }) });
    }
    const now = Date.now();
    for (const m of messages) if (!m.key.startsWith(`${prefix}warm`)) rx.sentAt.set(m.key, now);
    if (messages.length) await producer.send({ topic: topics.trigger, messages, acks: 1 });
    await sleep(tick);
  }
  await waitFor('latency drain', () => rx.latencies.length >= total - warm, 120_000);
  const sorted = rx.latencies.slice().sort((a, b) => a - b);
  const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
  return { p50: pct(50), p99: pct(99), max: sorted[sorted.length - 1] };
}

async function warmUp(topics, rx) {
  await producer.send({ topic: topics.trigger, messages: [{ key: 'r_warm', value: runMessage('r_warm', { type: 'WEBHOOK', url: rx.url }) }] });
  await waitFor('warm-up', () => rx.seen.has('r_warm'), 60_000);
  rx.latencies.length = 0;
}

const latencySeconds = () => Math.max(3, Math.round(15 * SCALE));
let quietP99;

async function latency() {
  const rx = await receiver(0);
  const measure = async (label, prefix, extra) => {
    const topics = topicsFor(label);
    await createTopics(topics.trigger);
    const router = spawnRouter(topics, extra);
    // Warm up: the router joins its group and creates its topics.
    await warmUp(topics, rx);
    log(`${label}: ${RATE} runs/s for ${latencySeconds()}s`);
    const l = await steadyRate(topics, rx, latencySeconds(), prefix);
    await stop(router);
    rx.latencies.length = 0;
    return l;
  };
  const l = await measure('latency', 'r_l');
  quietP99 = l.p99;
  record('latency-p50', l.p50, 'ms');
  record('latency-p99', l.p99, 'ms');
  record('latency-max', l.max, 'ms');
  // At least once (ROUTER_NO_REPEAT=false): the p99 the no-repeat check is held against, in alternating
  // order (whichever ran second had a tail in early sittings), the medians compared.
  const loose = [await measure('latency-at-least-once', 'r_la', { ROUTER_NO_REPEAT: 'false' })];
  loose.push(await measure('latency-at-least-once', 'r_lb', { ROUTER_NO_REPEAT: 'false' }));
  const checked = [l, await measure('latency', 'r_lc')];
  log(`latency p50/p99: with the check ${checked.map((x) => `${x.p50}/${x.p99}`).join(', ')}; at least once ${loose.map((x) => `${x.p50}/${x.p99}`).join(', ')} ms`);
  record('latency-at-least-once-p50', median(loose.map((x) => x.p50)), 'ms');
  record('latency-at-least-once-p99', median(loose.map((x) => x.p99)), 'ms');
  record('latency-no-repeat-p99', median(checked.map((x) => x.p99)), 'ms', median(loose.map((x) => x.p99)));
  await rx.close();
}

// 4b. The same rate while 20 signed-in clients loop on the heaviest list
// queries (deep pages, free-text search, filtered totals) over 100,000
// stored runs: the p99 against the quiet run's.
async function latencyUnderQueries() {
  const STORED = n(100_000);
  const CLIENTS = 20;
  const rx = await receiver(0);
  const topics = topicsFor('latency-q');
  await createTopics(topics.trigger, topics.status);
  await produceBacklog(topics.status, STORED, (i) => ({ key: `r_a${i}`, value: JSON.stringify({ ...statusUpdate(i), run: { ...statusUpdate(i).run, entityIdentifier: `svc-${i % 997}` } }) }));
  const server = await startServing(topics, 'start');
  await applyRate(server, STORED);
  await warmUp(topics, rx);
  const headers = await server.headers();
  const heavy = [
    '/v1/actions/runs?offset=9000&limit=1000',
    '/v1/actions/runs?q=svc-1&limit=1000',
    '/v1/actions/runs?q=r_a&limit=1000&offset=5000',
    '/v1/actions/runs?status=IN_PROGRESS&q=_a&limit=1000&offset=9000',
  ];
  let stopQueries = false;
  let queries = 0;
  let refused = 0;
  const clients = Array.from({ length: CLIENTS }, async (_, c) => {
    for (let k = c; !stopQueries; k++) {
      const res = await fetch(server.base + heavy[k % heavy.length], { headers });
      await res.arrayBuffer();
      queries++;
      if (!res.ok) refused++;
    }
  });
  log(`latency-under-queries: ${RATE} runs/s for ${latencySeconds()}s, ${CLIENTS} clients on ${STORED} stored runs`);
  const q0 = Date.now();
  const l = await steadyRate(topics, rx, latencySeconds(), 'r_q');
  const qs = queries / ((Date.now() - q0) / 1000);
  stopQueries = true;
  await Promise.all(clients);
  await stop(server.child);
  record('latency-under-queries-p50', l.p50, 'ms');
  record('latency-under-queries-p99', l.p99, 'ms', quietP99);
  record('latency-under-queries-max', l.max, 'ms');
  record('heavy-queries', qs, 'req/s');
  if (refused) log(`latency-under-queries: ${refused} of ${queries} queries refused (over their time budget)`);
  await rx.close();
}

// 5. Peak RSS of the router draining a backlog: as it runs anywhere, then as
// the image and the chart run it (a 512 MiB memory limit, the image's heap
// flag), with the drain rates of the two compared.
// The image's NODE_OPTIONS, as the Dockerfile sets them; BENCH_NODE_OPTIONS tries others.
const IMAGE_NODE_OPTIONS = process.env.BENCH_NODE_OPTIONS ?? /NODE_OPTIONS="?([^"\\\n]+?)"?\s*\\?\n/.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))[1].trim();
// The chart's default limit; BENCH_ROUTER_LIMIT_MB tries another.
const ROUTER_LIMIT_MB = Number(process.env.BENCH_ROUTER_LIMIT_MB ?? 512);
const AGENT_LIMIT_MB = 256;

/**
 * A memory cgroup (v1 or v2) of `limitMb`, to run a process in as a
 * container limit would; null where this machine has none to write.
 */
function memoryCgroup(limitMb) {
  const name = `action-router-bench-${id()}`;
  for (const [root, file] of [['/sys/fs/cgroup/memory', 'memory.limit_in_bytes'], ['/sys/fs/cgroup', 'memory.max']]) {
    const dir = join(root, name);
    try {
      if (!existsSync(join(root, file === 'memory.max' ? 'cgroup.controllers' : 'memory.limit_in_bytes'))) continue;
      mkdirSync(dir);
      writeFileSync(join(dir, file), String(limitMb * 1024 * 1024));
      return {
        dir,
        /** The anonymous memory charged to it now, in bytes: the processes' own pages, each counted once (no page cache, no shared library pages twice). */
        anon: () => {
          const stat = readFileSync(join(dir, 'memory.stat'), 'utf8');
          return Number((file === 'memory.max' ? /^anon (\d+)/m : /^total_rss (\d+)/m).exec(stat)?.[1] ?? 0);
        },
        /** What the limit saw: its peak (page cache included), the anonymous and file pages at the end, and how often it was hit. */
        usage: () => {
          const read = (f) => {
            try {
              return readFileSync(join(dir, f), 'utf8');
            } catch {
              return '';
            }
          };
          const stat = Object.fromEntries(read('memory.stat').split('\n').filter(Boolean).map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
          const mib = (b) => Math.round((b ?? 0) / 1048576);
          return file === 'memory.max'
            ? `peak ${mib(Number(read('memory.peak')))} MiB, anon ${mib(stat.anon)} MiB, file ${mib(stat.file)} MiB, ${read('memory.events').match(/max (\d+)/)?.[1] ?? '?'} times at the limit`
            : `peak ${mib(Number(read('memory.max_usage_in_bytes')))} MiB, rss ${mib(stat.total_rss)} MiB, cache ${mib(stat.total_cache)} MiB, ${Number(read('memory.failcnt'))} times at the limit`;
        },
        remove: () => {
          try {
            rmdirSync(dir);
          } catch {
            /* still has a process: left for the system */
          }
        },
      };
    } catch {
      /* not writable here: try the other hierarchy */
    }
  }
  return null;
}

/** Spawns `node args` inside a cgroup (the shell moves itself in, then execs node: one pid). */
function spawnNodeIn(cgroup, args, env) {
  const child = spawn('sh', ['-c', 'echo $$ > "$0/cgroup.procs" && exec "$@"', cgroup.dir, process.execPath, ...args], {
    env: { ...process.env, KAFKA_BROKERS: BROKERS, ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  child.exited = new Promise((r) => child.on('exit', r));
  return child;
}

/**
 * Samples memory every 100 ms; returns a stop function giving the peak in
 * MiB (the unit the bench has always called MB). In a cgroup, its
 * anonymous memory: what the processes in it own, each page once (their
 * summed RSS counts the pages an agent shares with its jq process twice);
 * the page cache, which the kernel reclaims at the limit, is logged apart.
 * Elsewhere the summed RSS of `pids()`.
 */
function memorySampler(pids, cgroup) {
  let peak = 0;
  const sample = () => {
    if (cgroup) {
      peak = Math.max(peak, cgroup.anon() / 1024);
      return;
    }
    let kb = 0;
    for (const pid of pids()) {
      try {
        kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
      } catch {
        /* exited */
      }
    }
    peak = Math.max(peak, kb);
  };
  const timer = setInterval(sample, 100);
  return () => {
    sample();
    clearInterval(timer);
    return peak / 1024;
  };
}

/** The router draining N KAFKA runs; its peak RSS (MB) and drain rate (runs/s). */
async function drainRouter(label, N, cgroup) {
  const topics = topicsFor(label);
  await createTopics(topics.trigger);
  await produceBacklog(topics.trigger, N, (i) => ({ key: `r_m${i}`, value: runMessage(`r_m${i}`, { type: 'KAFKA' }) }));
  log(`${label}: draining ${N} runs${cgroup ? ` in a ${ROUTER_LIMIT_MB} MiB cgroup, NODE_OPTIONS=${IMAGE_NODE_OPTIONS}` : ''}`);
  const args = [join(ROOT, 'bin', 'action-router.js'), 'start'];
  const router = cgroup ? spawnNodeIn(cgroup, args, routerEnv(topics, { NODE_OPTIONS: IMAGE_NODE_OPTIONS })) : spawnRouter(topics);
  let died = null;
  void router.exited.then((code) => (died = code));
  const peak = memorySampler(() => [router.pid], cgroup);
  const orgTopic = topics.org.replace('{orgId}', 'org_bench');
  const t0 = Date.now();
  const t1 = await waitFor(`${label} drain`, async () => {
    if (died !== null) throw new Error(`${label}: the router exited (${died}) before draining: over its memory limit?`);
    return (await messagesIn(orgTopic)) >= N;
  }, 900_000, async () => `${await messagesIn(orgTopic)}/${N}`);
  const mb = peak();
  if (cgroup) log(`${label}: the cgroup: ${cgroup.usage()}`);
  await stop(router);
  return { mb, rate: N / ((t1 - t0) / 1000) };
}

/** The median of `xs`. */
const median = (xs) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  return Number.isInteger(mid) ? (sorted[mid - 1] + sorted[mid]) / 2 : sorted[Math.floor(mid)];
};

/**
 * Drains with and without the limit in interleaved rounds (the order
 * alternating, so a drift of the broker favours neither): a single pair on
 * two shared cores moved the ratio by a third from run to run.
 */
async function peakRss() {
  const N = n(200_000);
  const rounds = Number(process.env.BENCH_RSS_ROUNDS ?? 3);
  const cgroup = memoryCgroup(ROUTER_LIMIT_MB);
  if (!cgroup) log('peak-rss-limited: skipped (no memory cgroup can be made here)');
  const free = [];
  const limited = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 === 0 ? [null, cgroup] : [cgroup, null];
      for (const where of order) {
        if (where === null) free.push(await drainRouter(`rss-${round}`, N, null));
        else if (where) limited.push(await drainRouter(`rss-limited-${round}`, N, where));
      }
    }
  } finally {
    cgroup?.remove();
  }
  const freeRate = median(free.map((d) => d.rate));
  log(`peak-rss: drain rates without the limit ${free.map((d) => Math.round(d.rate)).join(', ')}${limited.length ? `; with it ${limited.map((d) => Math.round(d.rate)).join(', ')}` : ''} runs/s`);
  record('peak-rss', Math.max(...free.map((d) => d.mb)), 'MB');
  record('peak-rss-drain', freeRate, 'runs/s');
  if (limited.length === 0) return;
  record('peak-rss-limited', Math.max(...limited.map((d) => d.mb)), 'MB', ROUTER_LIMIT_MB);
  record('peak-rss-limited-drain', median(limited.map((d) => d.rate)), 'runs/s', freeRate);
}

// 5b. The agent draining a backlog as Port's agent chart runs it (256 MiB limit), with the image's heap flag.
async function agentRss() {
  const N = n(20_000);
  const cgroup = memoryCgroup(AGENT_LIMIT_MB);
  if (!cgroup) {
    log('agent-rss-limited: skipped (no memory cgroup can be made here)');
    return;
  }
  let count = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      count++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  try {
    const topics = topicsFor('agent-rss');
    const orgTopic = topics.org.replace('{orgId}', 'org_bench');
    await createTopics(orgTopic, topics.status);
    await produceBacklog(orgTopic, N, (i) => ({ key: `r_g${i}`, value: runMessage(`r_g${i}`, { type: 'WEBHOOK', agent: true, url, synchronized: true }) }));
    log(`agent-rss-limited: ${N} agent runs in a ${AGENT_LIMIT_MB} MiB cgroup (the default mapping: jq in a child process, counted too)`);
    const agent = spawnNodeIn(cgroup, [join(ROOT, 'bin', 'action-router.js'), 'agent', '--org', 'org_bench'], routerEnv(topics, { NODE_OPTIONS: IMAGE_NODE_OPTIONS }));
    let died = null;
    void agent.exited.then((code) => (died = code));
    const peak = memorySampler(() => [], cgroup);
    const a0 = Date.now();
    const a1 = await waitFor('agent-rss-limited', () => {
      if (died !== null) throw new Error(`agent-rss-limited: the agent exited (${died}) before draining: over its memory limit?`);
      return count >= N;
    }, 900_000, () => `${count}/${N}`);
    const mb = peak();
    log(`agent-rss-limited: the cgroup: ${cgroup.usage()}`);
    await stop(agent);
    record('agent-rss-limited', mb, 'MB', AGENT_LIMIT_MB);
    record('agent-rss-limited-drain', N / ((a1 - a0) / 1000), 'runs/s');
  } finally {
    cgroup.remove();
    await new Promise((r) => server.close(r));
  }
}

/** A raw consume of `topic` from its start (no decoding, nothing written), in messages/s. */
async function rawConsume(topic, N) {
  const consumer = kafka.consumer({ groupId: `bench-raw-${id()}`, maxWaitTimeInMs: 100, maxBytesPerPartition: 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  let read = 0;
  const c0 = Date.now();
  await consumer.run({ autoCommit: false, eachBatch: async ({ batch }) => void (read += batch.messages.length) });
  const c1 = await waitFor('raw consume', () => read >= N, 600_000);
  await consumer.disconnect();
  return N / ((c1 - c0) / 1000);
}

async function freePort() {
  return new Promise((r) => {
    const s = http.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => r(port));
    });
  });
}

const BENCH_SECRET = 'bench-secret-0123456789abcdef';

/**
 * `action-router <command>` (api or start) on `topics` with one API client
 * of org_bench, its HTTP server up: its base URL, a reader of the store's
 * applied counter and a way to sign in.
 */
async function startServing(topics, command, extra = {}) {
  const port = await freePort();
  const clientsFile = join(tmpdir(), `bench-clients-${id()}.json`);
  writeFileSync(clientsFile, JSON.stringify({ bench: { secret: BENCH_SECRET, orgId: 'org_bench', roles: [] } }));
  const base = `http://127.0.0.1:${port}`;
  const child = spawnNode([...PROFILE, join(ROOT, 'bin', 'action-router.js'), command], routerEnv(topics, { HTTP_PORT: String(port), API_CLIENTS_FILE: clientsFile, ...extra }));
  const applied = async () => {
    try {
      const text = await (await fetch(`${base}/metrics`)).text();
      return Number(/action_router_store_updates_total\{result="applied"\} (\d+)/.exec(text)?.[1] ?? 0);
    } catch {
      return 0;
    }
  };
  const headers = async () => {
    const res = await fetch(`${base}/v1/auth/access_token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ clientId: 'bench', clientSecret: BENCH_SECRET }) });
    return { 'content-type': 'application/json', authorization: `Bearer ${(await res.json()).accessToken}` };
  };
  await waitFor(`${command} up`, async () => (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)), 60_000);
  return { child, base, applied, headers };
}

/** Updates/s of the store applying N updates, from its first apply (the consumer's group join is not the store's work). */
async function applyRate(server, N) {
  const a0 = await waitFor('store first apply', async () => (await server.applied()) > 0, 60_000);
  const a1 = await waitFor('store apply', async () => (await server.applied()) >= N, 1_800_000, async () => `${await server.applied()}/${N} applied`);
  return N / ((a1 - a0) / 1000);
}

// 6. The runs API on a backlog of stored runs: the store's apply rate against
// a raw consume of the same topic, then PATCH+log requests against the
// rate of single acknowledged produces at the same concurrency (the floor
// of one write, since every API write is one).
async function runsApi() {
  const N = n(100_000);
  const topics = topicsFor('api');
  await createTopics(topics.status);
  await produceBacklog(topics.status, N, (i) => ({ key: `r_a${i}`, value: JSON.stringify(statusUpdate(i)) }));
  const rawRate = await rawConsume(topics.status, N);
  record('status-raw-consume', rawRate, 'msg/s');

  const server = await startServing(topics, 'api');
  const { base } = server;
  record('store-apply', await applyRate(server, N), 'updates/s', rawRate);

  const CONCURRENCY = 32;
  const SECONDS = Math.max(3, Math.round(10 * SCALE));
  const headers = await server.headers();
  const latencies = [];
  let failed = 0;
  const deadline = Date.now() + SECONDS * 1000;
  const t0 = Date.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, async (_, w) => {
    for (let k = 0; Date.now() < deadline; k++) {
      const runId = `r_a${(w * 1000 + k) % N}`;
      for (const [method, path, body] of [
        ['POST', `/v1/actions/runs/${runId}/logs`, { message: `step ${k}` }],
        ['PATCH', `/v1/actions/runs/${runId}?runId=${runId}`, { statusLabel: `step ${k}`, link: ['https://ci.example/1'] }],
      ]) {
        const s = performance.now();
        const res = await fetch(base + path, { method, headers, body: JSON.stringify(body) });
        await res.arrayBuffer();
        if (!res.ok) failed++;
        latencies.push(performance.now() - s);
      }
    }
  }));
  const elapsed = (Date.now() - t0) / 1000;
  // The same server's read path at the same concurrency: the HTTP ceiling here.
  let reads = 0;
  const g0 = Date.now();
  const gDeadline = g0 + SECONDS * 1000;
  await Promise.all(Array.from({ length: CONCURRENCY }, async (_, w) => {
    for (let k = 0; Date.now() < gDeadline; k++) {
      const res = await fetch(`${base}/v1/actions/runs/r_a${(w * 1000 + k) % N}`, { headers });
      await res.arrayBuffer();
      reads++;
    }
  }));
  const readRate = reads / ((Date.now() - g0) / 1000);
  await stop(server.child);

  // Baseline: single-message acknowledged produces at the same concurrency.
  let produced = 0;
  const b0 = Date.now();
  const bDeadline = b0 + SECONDS * 1000;
  await Promise.all(Array.from({ length: CONCURRENCY }, async (_, w) => {
    while (Date.now() < bDeadline) {
      await producer.send({ topic: topics.status, acks: -1, messages: [{ key: `r_a${w}`, value: JSON.stringify(statusUpdate(w)) }] });
      produced++;
    }
  }));
  const produceRate = produced / ((Date.now() - b0) / 1000);
  record('single-produce', produceRate, 'msg/s');
  record('runs-api-get', readRate, 'req/s');
  record('runs-api', latencies.length / elapsed, 'req/s', readRate);
  const sorted = latencies.sort((a, b) => a - b);
  record('runs-api-p99', sorted[Math.floor(0.99 * (sorted.length - 1))], 'ms');
  if (failed) log(`runs-api: ${failed} requests failed`);
}

// 6b. An empty store rebuilding a long status topic (a new instance, or a
// deleted file), against a raw consume of the same topic.
async function storeRebuild() {
  const N = n(1_000_000);
  const topics = topicsFor('rebuild');
  await createTopics(topics.status);
  // 100,000 runs, ten updates each: the first with run info, then progress with a log line.
  const RUNS = Math.max(10, Math.round(N / 10));
  await produceBacklog(topics.status, N, (j) => {
    const i = j % RUNS;
    const u = j < RUNS ? statusUpdate(i) : { ...statusUpdate(i), run: undefined, statusLabel: `step ${Math.floor(j / RUNS)}`, log: `step ${Math.floor(j / RUNS)} done` };
    return { key: `r_a${i}`, value: JSON.stringify(u) };
  });
  const rawRate = await rawConsume(topics.status, N);
  record('store-rebuild-raw-consume', rawRate, 'msg/s');
  const server = await startServing(topics, 'api');
  record('store-rebuild', await applyRate(server, N), 'updates/s', rawRate);
  await stop(server.child);
}

// 7. The console with 10,000 runs in the store, in Debian's Chromium:
// time to the first row on screen against the sign-in page's render (the
// browser's own floor) in the same browser, and how long a change takes
// from the topic to the screen against how long it takes to be readable
// through the API (the store's own delay).
async function consolePage() {
  const { chromium } = require('playwright-core');
  const { launchOptions } = require('../scripts/chromium.cjs');
  const N = 10_000;
  const topics = topicsFor('console');
  await createTopics(topics.status);
  const orgs = ['org_a', 'org_b', 'org_c'];
  const statuses = ['IN_PROGRESS', 'SUCCESS', 'FAILURE', 'SUCCESS'];
  const update = (i, status, at = Date.now() - (N - i) * 1000) => ({
    runId: `r_c${i}`, orgId: orgs[i % 3], action: `action_${i % 7}`, status, statusLabel: status === 'IN_PROGRESS' ? null : `done ${i}`,
    summary: null, links: [], externalRunId: null, log: null, invocationType: ['KAFKA', 'WEBHOOK', 'GITHUB', 'GITLAB'][i % 4], source: 'ROUTER', attempt: 1, at,
    run: { blueprint: 'service', entityIdentifier: `svc-${i % 50}`, entity: null, properties: '{}', userId: null, userEmail: 'dev@example.com',
      origin: 'UI', actionTrigger: 'DAY-2', invocation: '{}', createdAt: at, triggerPartition: 0, agentPayload: null },
  });
  await produceBacklog(topics.status, N, (i) => ({ key: `r_c${i}`, value: JSON.stringify(update(i, statuses[i % 4])) }));
  const port = await new Promise((r) => {
    const s = http.createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = s.address();
      s.close(() => r(free));
    });
  });
  const clientsFile = join(tmpdir(), `bench-clients-${id()}.json`);
  const secret = 'bench-secret-0123456789abcdef';
  writeFileSync(clientsFile, JSON.stringify({ ops: { secret, orgId: '*', roles: ['admin'] } }));
  const base = `http://127.0.0.1:${port}`;
  const api = spawnNode([join(ROOT, 'bin', 'action-router.js'), 'api'], routerEnv(topics, { HTTP_PORT: String(port), API_CLIENTS_FILE: clientsFile }));
  const token = async () => (await (await fetch(`${base}/v1/auth/access_token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ clientId: 'ops', clientSecret: secret }) })).json()).accessToken;
  await waitFor('api up', async () => (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)), 60_000);
  const bearer = await token();
  const total = async () => (await (await fetch(`${base}/console/api/runs?limit=1`, { headers: { authorization: `Bearer ${bearer}` } })).json()).total ?? 0;
  await waitFor('store holds the runs', async () => (await total()) >= N, 300_000);

  const browser = await chromium.launch(launchOptions());
  try {
    await measureConsole(browser, base, secret, bearer, N, topics, update);
  } finally {
    await browser.close();
    await stop(api);
  }
}

async function measureConsole(browser, base, secret, bearer, N, topics, update) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const loginTimes = [];
  for (let k = 0; k < 5; k++) {
    const t = performance.now();
    await page.goto(`${base}/login`);
    await page.waitForSelector('#clientId', { state: 'visible' });
    loginTimes.push(performance.now() - t);
  }
  await page.fill('#clientId', 'ops');
  await page.fill('#clientSecret', secret);
  await page.click('button[type=submit]');
  await page.waitForSelector('#runs tbody tr[data-id]');
  const renderTimes = [];
  for (let k = 0; k < 5; k++) {
    const t = performance.now();
    await page.goto(`${base}/`);
    await page.waitForSelector('#runs tbody tr[data-id]', { state: 'visible' });
    renderTimes.push(performance.now() - t);
  }
  record('console-login-render', median(loginTimes), 'ms');
  record('console-first-render-10k', median(renderTimes), 'ms', median(loginTimes));

  // Live: the newest run changes; time until the screen shows it, and until the API does.
  const liveTimes = [];
  const apiTimes = [];
  for (let k = 0; k < 10; k++) {
    // The newest run still in progress (every fourth run is).
    const i = N - 4;
    const label = `live ${k} ${id()}`;
    const value = JSON.stringify({ ...update(i, 'IN_PROGRESS'), statusLabel: label, at: Date.now(), run: null });
    const t = performance.now();
    const onScreen = page.waitForFunction(
      ([runId, text]) => globalThis.document.querySelector(`#runs tbody tr[data-id="${runId}"] td.c-label`)?.textContent === text,
      [`r_c${i}`, label],
      { polling: 'raf', timeout: 30_000 },
    );
    const inApi = (async () => {
      for (;;) {
        const run = (await (await fetch(`${base}/console/api/runs/r_c${i}`, { headers: { authorization: `Bearer ${bearer}` } })).json()).run;
        if (run?.statusLabel === label) return performance.now() - t;
        await sleep(5);
      }
    })();
    await producer.send({ topic: topics.status, acks: -1, messages: [{ key: `r_c${i}`, value }] });
    await onScreen;
    liveTimes.push(performance.now() - t);
    apiTimes.push(await inApi);
    await sleep(200);
  }
  record('console-store-visible', median(apiTimes), 'ms');
  record('console-live-update', median(liveTimes), 'ms', median(apiTimes));
}

// 8. Approvals: how long from an approver's decision to the backend's call,
// against how long from a trigger to the backend's call for a run that
// needs no approval (same router, same receiver, same run).
async function approvalsLatency() {
  const N = Math.max(50, Math.round(200 * SCALE));
  const rx = await receiver(0);
  const topics = topicsFor('approvals');
  await createTopics(topics.trigger);
  const dir = join(tmpdir(), `bench-approvals-${id()}`);
  mkdirSync(dir, { recursive: true });
  const secret = 'bench-approver-secret-0123456789';
  writeFileSync(join(dir, 'clients.json'), JSON.stringify({ lead: { secret, orgId: 'org_bench', roles: ['lead'] } }));
  writeFileSync(
    join(dir, 'actions.json'),
    JSON.stringify([
      { identifier: 'deploy_prod', requiredApproval: true, approvers: { roles: ['lead'] }, invocationMethod: { type: 'WEBHOOK', url: rx.url } },
      { identifier: 'deploy_dev', invocationMethod: { type: 'WEBHOOK', url: rx.url } },
    ]),
  );
  const port = await new Promise((r) => {
    const s = http.createServer().listen(0, '127.0.0.1', () => {
      const { port: free } = s.address();
      s.close(() => r(free));
    });
  });
  const base = `http://127.0.0.1:${port}`;
  const router = spawnRouter(topics, {
    HTTP_PORT: String(port),
    ACTIONS_PATH: join(dir, 'actions.json'),
    API_CLIENTS_FILE: join(dir, 'clients.json'),
    APPROVAL_SECRET: 'bench-approval-parking-secret-0123456789',
  });
  try {
    const message = (runId, action) => JSON.stringify(samplePortMessage({ runId, orgId: 'org_bench', action }));
    await producer.send({ topic: topics.trigger, messages: [{ key: 'r_warm', value: message('r_warm', 'deploy_dev') }] });
    await waitFor('warm-up', () => rx.seen.has('r_warm'), 60_000);
    // Baseline: runs without approval, one every 20 ms.
    for (let i = 0; i < N; i++) {
      const runId = `r_d${i}`;
      rx.sentAt.set(runId, Date.now());
      await producer.send({ topic: topics.trigger, acks: 1, messages: [{ key: runId, value: message(runId, 'deploy_dev') }] });
      await sleep(20);
    }
    await waitFor('baseline runs', () => rx.latencies.length >= N, 120_000);
    const baseline = rx.latencies.splice(0).sort((a, b) => a - b);
    // Approval runs: parked first, then approved one every 20 ms.
    await producer.send({ topic: topics.trigger, messages: Array.from({ length: N }, (_, i) => ({ key: `r_p${i}`, value: message(`r_p${i}`, 'deploy_prod') })) });
    const token = (await (await fetch(`${base}/v1/auth/access_token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ clientId: 'lead', clientSecret: secret }) })).json()).accessToken;
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const waitingCount = async () => (await (await fetch(`${base}/v1/actions/runs?status=WAITING_FOR_APPROVAL&limit=1000`, { headers })).json()).runs?.length ?? 0;
    await waitFor('runs parked', async () => (await waitingCount()) >= N, 120_000);
    const decisions = [];
    for (let i = 0; i < N; i++) {
      const runId = `r_p${i}`;
      const t = Date.now();
      rx.sentAt.set(runId, t);
      const res = await fetch(`${base}/v1/actions/runs/${runId}/approval`, { method: 'PATCH', headers, body: JSON.stringify({ status: 'APPROVE' }) });
      await res.arrayBuffer();
      if (res.status !== 201) throw new Error(`approval of ${runId}: HTTP ${res.status}`);
      decisions.push(Date.now() - t);
      await sleep(20);
    }
    await waitFor('approved runs', () => rx.latencies.length >= N, 120_000);
    await sleep(1_000);
    const approved = rx.latencies.splice(0).sort((a, b) => a - b);
    // Each approved run reaches the backend once: N calls, from N runs.
    const reached = [...Array(N).keys()].filter((i) => rx.seen.has(`r_p${i}`)).length;
    if (reached !== N || approved.length !== N) throw new Error(`approved runs: ${reached} of ${N} reached the backend, in ${approved.length} calls`);
    const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
    decisions.sort((a, b) => a - b);
    record('trigger-to-backend-p50', pct(baseline, 50), 'ms');
    record('approval-to-backend-p50', pct(approved, 50), 'ms', pct(baseline, 50));
    record('approval-to-backend-p99', pct(approved, 99), 'ms', pct(baseline, 99));
    record('approval-api-p50', pct(decisions, 50), 'ms');
  } finally {
    await stop(router);
    await rx.close();
  }
}

// 10. The agent (`action-router agent`) with a typical payload mapping file
// (a body of five fields, two headers, a report of three), against the same
// runs with no file (the agent's built-in default mapping).
async function agentMapped() {
  const N = n(5_000);
  let count = 0;
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      count++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"id": 7, "url": "https://ci.test/7"}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}`;
  const mapping = join(tmpdir(), `bench-mapping-${id()}.json`);
  writeFileSync(
    mapping,
    JSON.stringify([
      {
        enabled: '.payload.action.invocationMethod.type == "WEBHOOK"',
        url: '.payload.action.invocationMethod.url + "/deploy"',
        method: '"POST"',
        body: { service: '.context.entity', version: '.payload.properties.version', environment: '.payload.properties.environment', runId: '.context.runId', requestedBy: '.trigger.by.user.email' },
        headers: { 'X-Run-Id': '.context.runId', 'X-Environment': '.payload.properties.environment' },
        report: { status: 'if .response.statusCode < 300 then "SUCCESS" else "FAILURE" end', link: '.response.json.url', externalRunId: '.response.json.id | tostring' },
      },
    ]),
  );
  const rates = {};
  for (const [name, extra] of [['agent-default', {}], ['agent-mapped', { CONTROL_THE_PAYLOAD_CONFIG_PATH: mapping }]]) {
    const topics = topicsFor(name);
    const orgTopic = topics.org.replace('{orgId}', 'org_bench');
    await createTopics(orgTopic, topics.status);
    await produceBacklog(orgTopic, N, (i) => ({ key: `r_a${i}`, value: runMessage(`r_a${i}`, { type: 'WEBHOOK', agent: true, url, synchronized: true }) }));
    count = 0;
    log(`${name}: ${N} agent runs`);
    const agent = spawnNode([...PROFILE, join(ROOT, 'bin', 'action-router.js'), 'agent', '--org', 'org_bench'], routerEnv(topics, extra));
    const a0 = Date.now();
    const a1 = await waitFor(name, () => count >= N, 600_000, () => `${count}/${N}`);
    await stop(agent);
    rates[name] = N / ((a1 - a0) / 1000);
  }
  record('agent-default', rates['agent-default'], 'runs/s');
  record('agent-mapped', rates['agent-mapped'], 'runs/s', rates['agent-default']);
  await new Promise((r) => server.close(r));
}

// 12. Recovery: the runs called again after a kill -9 mid-stream, with the
// store (no run invoked twice) and without it (at-least-once). One slow run
// at the head of each partition holds that partition's commit back while the
// runs behind it are answered; the router is killed while the slow ones are
// held, then started again. Those under way at the kill are called again in
// both modes; without the store, so is everything behind them.
async function recovery() {
  // Under the in-flight bound per partition (512): all of them are answered while the slow ones are held.
  const N = Math.min(n(1_600), PARTITIONS * 400);
  const HOLD_MS = 8_000;
  const repeats = {};
  for (const store of [false, true]) {
    const label = store ? 'recovery' : 'recovery-no-store';
    const calls = new Map();
    const server = http.createServer((req, res) => {
      const runId = String(req.headers['x-run-id']);
      req.resume();
      req.on('end', () => {
        calls.set(runId, (calls.get(runId) ?? 0) + 1);
        setTimeout(() => res.writeHead(202, { 'content-type': 'application/json' }).end('{"ok":true}'), req.url.endsWith('/slow') ? HOLD_MS : 2);
      });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${server.address().port}`;
    const topics = topicsFor(label);
    await createTopics(topics.trigger);
    const slow = Array.from({ length: PARTITIONS }, (_, p) => `r_rs${p}`);
    const quick = Array.from({ length: N }, (_, i) => `r_rq${i}`);
    await producer.send({ topic: topics.trigger, acks: -1, messages: slow.map((id, p) => ({ partition: p, key: id, value: runMessage(id, { type: 'WEBHOOK', url: `${url}/slow` }) })) });
    for (let i = 0; i < N; i += 1_000) {
      const messages = quick.slice(i, i + 1_000).map((id, j) => ({ partition: (i + j) % PARTITIONS, key: id, value: runMessage(id, { type: 'WEBHOOK', url: `${url}/quick` }) }));
      await producer.send({ topic: topics.trigger, acks: -1, messages });
    }
    // A short grace: a call in doubt is waited for that long (plus 5 s) before it is called again.
    const env = { ROUTER_SHUTDOWN_GRACE_MS: '2000', ...(store ? {} : { RUNS_STORE: 'false' }) };
    log(`${label}: ${N} quick webhook runs behind ${PARTITIONS} held ${HOLD_MS} ms, kill -9 once the quick ones are answered`);
    const first = spawnRouter(topics, env);
    await waitFor(`${label} before the kill`, () => quick.every((id) => calls.has(id)) && slow.every((id) => calls.has(id)), 300_000, () => `${quick.filter((id) => calls.has(id)).length}/${N}`);
    // The last quick answers are 2 ms behind their calls: a second more and every one is recorded by the router.
    await new Promise((r) => setTimeout(r, 1_000));
    const before = new Map(calls);
    first.kill('SIGKILL');
    await first.exited;
    const second = spawnRouter(topics, env);
    // Done when the group has committed every trigger: each run was handled again or skipped.
    const ends = await admin.fetchTopicOffsets(topics.trigger);
    const done = async () => {
      const [committed] = await admin.fetchOffsets({ groupId: topics.group, topics: [topics.trigger] });
      return ends.every((e) => committed.partitions.find((c) => c.partition === e.partition)?.offset === e.high);
    };
    await waitFor(`${label} after the restart`, done, 300_000, () => `slow called again: ${slow.filter((id) => calls.get(id) > 1).length}/${PARTITIONS}`);
    await stop(second);
    await new Promise((r) => server.close(r));
    const again = [...calls].filter(([id, count]) => count > (before.get(id) ?? 0) && before.has(id));
    const answeredAgain = again.filter(([id]) => !slow.includes(id)).length;
    repeats[label] = again.length;
    log(`${label}: ${again.length} runs called again after the kill (${answeredAgain} of them answered before it, ${again.length - answeredAgain} under way at it)`);
  }
  record('recovery-no-store', repeats['recovery-no-store'], 'runs called again');
  record('recovery', repeats.recovery, 'runs called again', repeats['recovery-no-store']);
}

const only = process.env.BENCH_ONLY?.split(',');
for (const [name, fn] of [['kafka-routing', kafkaRouting], ['webhook-slow', webhookSlow], ['latency', latency], ['latency-under-queries', latencyUnderQueries], ['peak-rss', peakRss], ['agent-rss', agentRss], ['runs-api', runsApi], ['store-rebuild', storeRebuild], ['console', consolePage], ['approvals', approvalsLatency], ['agent-mapped', agentMapped], ['recovery', recovery]]) {
  if (!only || only.includes(name)) await fn();
}

await producer.disconnect();
await admin.disconnect();

const table = [
  ['scenario', 'value', 'unit', 'baseline', 'ratio'],
  ...results.map((r) => [r.name, String(r.value), r.unit, r.baseline === undefined ? '' : String(r.baseline), r.ratio === undefined ? '' : String(r.ratio)]),
];
const widths = table[0].map((_, c) => Math.max(...table.map((row) => row[c].length)));
for (const row of table) process.stdout.write(`${row.map((cell, c) => cell.padEnd(widths[c])).join('  ')}\n`);
mkdirSync(join(ROOT, '.bench'), { recursive: true });
writeFileSync(join(ROOT, '.bench', 'latest.json'), `${JSON.stringify({ scenarios: results, scale: SCALE, at: new Date().toISOString() }, null, 2)}\n`);
log('wrote .bench/latest.json');
