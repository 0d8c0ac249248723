#!/usr/bin/env node
/*
 * The chart cannot drift from the code (issue 31, item 3). Renders the chart
 * with each values file and checks, against the compiled code (dist/):
 *
 *  (a) every variable a workload's environment holds (env[].name, and the
 *      keys of every ConfigMap or Secret it takes with envFrom) is one the
 *      code reads;
 *  (b) every variable the code requires can be set through values: what
 *      loadConfig names as missing, found by probing it (an empty
 *      environment, then each variable set in turn, following what it asks
 *      for next), what the agent's command names, and KAFKA_BROKERS;
 *  (c) secrets the code reads from a file reach it as <NAME>_FILE, and no
 *      secret's value stands in a ConfigMap;
 *  (d) the schema offers every variable the code maps, and nothing else;
 *  (e) the defaults the chart repeats (KEDA's group and topic) are the code's;
 *  (f) each rendered workload's environment is accepted by loadConfig.
 *
 * Usage: node deploy/chart-env-check.mjs [values files…]
 *   (default: deploy/ci-values/*.yaml). Needs dist/ (npm run build), and
 *   helm and a Python with PyYAML where deploy/install-tools.sh puts them
 *   (ACTION_ROUTER_TOOLS, or HELM and PYTHON). Exits 1 on any problem.
 */
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CHART = join(ROOT, 'deploy/helm/action-router');
const TOOLS = process.env.ACTION_ROUTER_TOOLS ?? join(homedir(), '.cache/action-router-tools');
const HELM = process.env.HELM ?? join(TOOLS, 'bin/helm');
const PYTHON = process.env.PYTHON ?? join(TOOLS, 'venv/bin/python');
const TMP = mkdtempSync(join(tmpdir(), 'chart-env-check-'));
process.on('exit', () => rmSync(TMP, { recursive: true, force: true }));

const require = createRequire(import.meta.url);
const { ENV_MAP, DEFAULTS, loadConfig } = require(join(ROOT, 'dist/config/config.js'));
const { SECRET_VARIABLES, GITLAB_TOKEN_PREFIX } = require(join(ROOT, 'dist/config/env.js'));
const { PORT_AGENT_ALIASES } = require(join(ROOT, 'dist/config/port-agent-env.js'));

const problems = [];
const problem = (text) => problems.push(text);
const say = (text) => process.stdout.write(`chart-env-check: ${text}\n`);

// ---- What the code reads -------------------------------------------------

function leaves(map) {
  return Object.values(map).flatMap((v) => (typeof v === 'string' ? [v] : leaves(v)));
}

/** `env.NAME` and `env['NAME']` reads anywhere in dist/ (AWS_REGION, GITHUB_APP_PRIVATE_KEY_FILE…). */
function scanDist(dir, found = new Set()) {
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) scanDist(path, found);
    else if (entry.endsWith('.js')) {
      const text = readFileSync(path, 'utf8');
      for (const m of text.matchAll(/\benv(?:\.([A-Z][A-Z0-9_]+)\b|\[['"`]([A-Z][A-Z0-9_]+)['"`]\])/g)) found.add(m[1] ?? m[2]);
    }
  }
  return found;
}

const MAPPED = leaves(ENV_MAP);
/** Secrets the code reads from a file as <NAME>_FILE: SECRET_VARIABLES, and the GitHub App's key (loadConfig reads it). */
const FILE_SECRETS = [...SECRET_VARIABLES, 'GITHUB_APP_PRIVATE_KEY'];
const CODE_VARS = new Set([
  ...MAPPED,
  ...SECRET_VARIABLES.map((v) => `${v}_FILE`),
  ...PORT_AGENT_ALIASES.map((a) => a.port),
  ...scanDist(join(ROOT, 'dist')),
  'NODE_OPTIONS', // read by node itself: the heap
]);
const PREFIXES = [GITLAB_TOKEN_PREFIX];
const isRead = (name) => CODE_VARS.has(name) || PREFIXES.some((p) => name.startsWith(p) && name.length > p.length);

// ---- Rendering -----------------------------------------------------------

function yamlDocs(text) {
  const r = spawnSync(PYTHON, ['-c', 'import sys, json, yaml; json.dump([d for d in yaml.safe_load_all(sys.stdin) if d], sys.stdout)'], { input: text, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`cannot read helm's output as YAML: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function render(args) {
  const r = spawnSync(HELM, ['template', 'ci', CHART, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return r.status === 0 ? { ok: true, docs: yamlDocs(r.stdout) } : { ok: false, error: r.stderr.trim() };
}

/** Each container of each workload, with its environment: name -> {value} | {secret, key} | {from}. */
function workloads(docs) {
  const configMaps = new Map(docs.filter((d) => d.kind === 'ConfigMap').map((d) => [d.metadata.name, d.data ?? {}]));
  const secrets = new Map(
    docs.filter((d) => d.kind === 'Secret').map((d) => [d.metadata.name, Object.fromEntries(Object.entries(d.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]))]),
  );
  const out = [];
  for (const d of docs.filter((x) => ['Deployment', 'StatefulSet'].includes(x.kind))) {
    const spec = d.spec.template.spec;
    for (const c of spec.containers) {
      const env = new Map();
      for (const from of c.envFrom ?? []) {
        const ref = from.configMapRef ?? from.secretRef;
        const data = from.configMapRef ? configMaps.get(ref.name) : secrets.get(ref.name);
        if (!data) {
          problem(`${d.metadata.name}: envFrom names ${from.configMapRef ? 'ConfigMap' : 'Secret'} ${ref.name}, which the chart does not render`);
          continue;
        }
        for (const [k, v] of Object.entries(data)) env.set(k, from.configMapRef ? { value: v, from: `ConfigMap ${ref.name}` } : { secret: ref.name, key: k });
      }
      for (const e of c.env ?? []) env.set(e.name, e.valueFrom?.secretKeyRef ? { secret: e.valueFrom.secretKeyRef.name, key: e.valueFrom.secretKeyRef.key } : { value: e.value ?? '' });
      out.push({ name: d.metadata.name, role: c.args?.[0], spec, container: c, env, configMaps, secrets });
    }
  }
  return out;
}

// ---- (b) What the code requires, found by probing loadConfig -----------

const placeholderFiles = (() => {
  const json = join(TMP, 'placeholder.json');
  const text = join(TMP, 'placeholder.txt');
  writeFileSync(json, '{}\n');
  writeFileSync(text, 'placeholder-value-of-at-least-32-characters\n');
  return { json, text };
})();
const CANDIDATES = ['placeholder', '1', 'https://example.com', 'example.com:9092', '{orgId}.runs', placeholderFiles.json, placeholderFiles.text];

function tryConfig(env) {
  try {
    loadConfig(env);
    return null;
  } catch (err) {
    if (err && typeof err.variable === 'string') return err;
    throw err;
  }
}

/** The values worth probing for a variable: an enum's options, both booleans, else the first placeholder it accepts. */
function probeValues(name) {
  const err = tryConfig({ [name]: 'not a valid value!' });
  const options = err?.variable === name ? [...err.message.matchAll(/"([^"]+)"/g)].map((m) => m[1]).filter((v) => v !== 'not a valid value!') : [];
  if (err?.variable === name && /expected one of/.test(err.message) && options.length) return options;
  if (err?.variable === name && /expected true or false/.test(err.message)) return ['true', 'false'];
  const accepted = CANDIDATES.find((v) => tryConfig({ [name]: v })?.variable !== name);
  return accepted === undefined ? [] : [accepted];
}

/** From `env`, give each variable loadConfig asks for a placeholder until it accepts: what it asked for. */
function follow(env) {
  const needed = [];
  for (let i = 0; i < 20; i++) {
    const err = tryConfig(env);
    if (!err || err.variable in env) break;
    needed.push(err.variable);
    env[err.variable] = CANDIDATES.find((v) => tryConfig({ ...env, [err.variable]: v })?.variable !== err.variable) ?? 'placeholder';
  }
  return needed;
}

function requirements() {
  const required = new Map(); // variable -> why
  for (const v of follow({})) required.set(v, 'always');
  // Port's aliases are left out: the chart offers our names only.
  for (const name of MAPPED) {
    for (const value of probeValues(name)) {
      for (const v of follow({ [name]: value })) if (!required.has(v)) required.set(v, `with ${name}=${value}`);
    }
  }
  // The agent's command needs its org; ask the command itself which variables name it.
  const agent = spawnSync(process.execPath, [join(ROOT, 'bin/action-router.js'), 'agent'], { env: { PATH: process.env.PATH, KAFKA_BROKERS: '127.0.0.1:9' }, encoding: 'utf8', timeout: 20_000 });
  const orgVars = [...new Set([...(agent.stderr ?? '').matchAll(/\b[A-Z][A-Z0-9_]{3,}\b/g)].map((m) => m[0]).filter((v) => CODE_VARS.has(v)))];
  if (agent.status !== 2 || orgVars.length === 0) problem(`'action-router agent' without an org should exit 2 naming its variable; got ${agent.status}: ${agent.stderr}`);
  return { required, agentOneOf: orgVars };
}

/** How a variable can be set through values (null: no way found). */
function routeFor(name, renders) {
  for (const [args, route] of [
    [['--set-string', `config.${name}=placeholder`], `config.${name}`],
    [['--set-string', `secrets.values.${name}=placeholder`], `secrets.values.${name}`],
  ]) {
    const r = render(['-f', join(ROOT, 'deploy/ci-values/minimal.yaml'), ...args]);
    if (r.ok && workloads(r.docs).every((w) => w.env.has(name) || w.env.has(`${name}_FILE`))) return route;
  }
  for (const [file, ws] of renders) if (ws.length && ws.every((w) => w.env.has(name))) return `set by the chart (${basename(file)})`;
  return null;
}

// ---- (f) The rendered environment, as the process would read it --------

function processEnv(w) {
  const env = {};
  const substituted = new Set();
  const dir = mkdtempSync(join(TMP, 'pod-'));
  const filesCm = [...w.configMaps.entries()].find(([n]) => n.endsWith('-files'))?.[1] ?? {};
  for (const [name, e] of w.env) {
    if (e.secret) env[name] = w.secrets.get(e.secret)?.[e.key] ?? 'placeholder';
    else env[name] = e.value;
  }
  for (const [name, value] of Object.entries(env)) {
    if (!value.startsWith('/') || name === 'RUNS_DB_PATH' || name === 'DATA_DIR') continue;
    const m = /^\/etc\/action-router\/(secrets|agent-secrets|files|catalog)(?:\/(.+))?$/.exec(value);
    const local = join(dir, name);
    if (!m) {
      delete env[name]; // a path into extraVolumes: not known here
      continue;
    }
    if (m[1] === 'catalog') {
      mkdirSync(local);
      if (filesCm['actions.json']) writeFileSync(join(local, 'actions.json'), filesCm['actions.json']);
    } else if (m[1] === 'files') writeFileSync(local, filesCm[m[2]] ?? '');
    else {
      const source = w.spec.volumes.find((v) => v.name === m[1])?.secret?.secretName;
      const content = w.secrets.get(source)?.[m[2]];
      if (content === undefined) substituted.add(name.replace(/_FILE$/, '')).add(name);
      writeFileSync(local, content ?? (/_FILE$/.test(name) && !FILE_SECRETS.includes(name.replace(/_FILE$/, '')) ? '{}' : 'placeholder-value-of-at-least-32-characters'));
    }
    env[name] = local;
  }
  return { env, substituted };
}

// ---- The checks ----------------------------------------------------------

const files = process.argv.slice(2).length ? process.argv.slice(2) : readdirSync(join(ROOT, 'deploy/ci-values')).filter((f) => f.endsWith('.yaml')).sort().map((f) => join(ROOT, 'deploy/ci-values', f));
const renders = [];
for (const file of files) {
  const r = render(['-f', file]);
  if (!r.ok) {
    problem(`${basename(file)}: helm template failed: ${r.error}`);
    continue;
  }
  renders.push([file, workloads(r.docs)]);
}

let names = 0;
for (const [file, ws] of renders) {
  for (const w of ws) {
    for (const [name, e] of w.env) {
      names++;
      if (!isRead(name)) problem(`(a) ${basename(file)}: ${w.name} sets ${name}, which the code does not read`);
      if (FILE_SECRETS.includes(name) && e.value !== undefined) problem(`(c) ${basename(file)}: ${w.name} has the secret ${name} in ${e.from ?? 'its env'}: secrets belong in a Secret, as ${name}_FILE`);
    }
    if (!w.env.has('KAFKA_BROKERS')) problem(`(b) ${basename(file)}: ${w.name} has no KAFKA_BROKERS (without it the process starts a local broker, which the image cannot)`);
    const { env, substituted } = processEnv(w);
    const err = tryConfig(env);
    if (err && !substituted.has(err.variable)) problem(`(f) ${basename(file)}: ${w.name}: loadConfig refuses the rendered environment: ${err.message}`);
  }
}
say(`(a) ${names} variables in ${renders.reduce((n, [, ws]) => n + ws.length, 0)} containers of ${renders.length} renders, checked against ${CODE_VARS.size} variables the code reads (and ${PREFIXES.join(', ')}*)`);

const { required, agentOneOf } = requirements();
for (const [name, why] of required) {
  const route = routeFor(name, renders);
  if (!route) problem(`(b) the code requires ${name} (${why}), and no value sets it`);
  else say(`(b) required ${why}: ${name}, through ${route}`);
}
const agentRenders = renders.flatMap(([, ws]) => ws).filter((w) => w.role === 'agent');
if (agentRenders.length === 0) problem('(b) no values file renders an agent: cannot check that its org can be set');
for (const w of agentRenders) if (!agentOneOf.some((v) => w.env.has(v))) problem(`(b) ${w.name}: 'action-router agent' needs one of ${agentOneOf.join(', ')}, and none is set`);
say(`(b) the agent needs one of ${agentOneOf.join(', ')}: set by agents[].orgId in ${agentRenders.length} agent(s)`);

// (c) Every file-capable secret given in secrets.values reaches the process as <NAME>_FILE.
const allSecrets = join(TMP, 'all-secrets.json');
writeFileSync(allSecrets, JSON.stringify({ secrets: { values: Object.fromEntries(FILE_SECRETS.map((v) => [v, 'placeholder-value-of-at-least-32-characters'])) } }));
const secretRender = render(['-f', join(ROOT, 'deploy/ci-values/minimal.yaml'), '-f', allSecrets]);
if (!secretRender.ok) problem(`(c) secrets.values with every file-capable secret: helm template failed: ${secretRender.error}`);
else for (const w of workloads(secretRender.docs)) for (const v of FILE_SECRETS) if (!w.env.has(`${v}_FILE`) || w.env.has(v)) problem(`(c) secrets.values.${v} does not reach ${w.name} as ${v}_FILE`);
say(`(c) ${FILE_SECRETS.length} secrets the code reads from files reach it as <NAME>_FILE`);

// (d) The schema offers what the code maps, and names nothing the code does not read.
const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
const configProps = Object.keys(schema.definitions.envConfig.properties);
const secretProps = Object.keys(schema.definitions.secrets.properties.values.properties);
for (const name of [...configProps, ...secretProps]) if (!isRead(name)) problem(`(d) values.schema.json offers ${name}, which the code does not read`);
const chartSet = new Set(renders.flatMap(([, ws]) => ws.flatMap((w) => [...w.env.keys()])));
for (const name of MAPPED) {
  if (!configProps.includes(name) && !secretProps.includes(name) && !chartSet.has(name)) problem(`(d) the code reads ${name} (ENV_MAP), and the chart offers no way to set it`);
}
say(`(d) values.schema.json: ${configProps.length} variables in config, ${secretProps.length} in secrets; every one of the ${MAPPED.length} in ENV_MAP can be set`);

// (e) KEDA's trigger repeats the code's default group and topic.
const keda = render(['-f', join(ROOT, 'deploy/ci-values/minimal.yaml'), '--set', 'router.keda.enabled=true']);
const trigger = keda.ok ? keda.docs.find((d) => d.kind === 'ScaledObject')?.spec.triggers[0].metadata : undefined;
if (!trigger) problem(`(e) no ScaledObject rendered with router.keda.enabled: ${keda.error ?? ''}`);
else {
  if (trigger.consumerGroup !== DEFAULTS.groupId) problem(`(e) KEDA's consumerGroup default ${trigger.consumerGroup} is not the code's ROUTER_GROUP_ID default ${DEFAULTS.groupId}`);
  if (trigger.topic !== DEFAULTS.triggerTopic) problem(`(e) KEDA's topic default ${trigger.topic} is not the code's TRIGGER_TOPIC default ${DEFAULTS.triggerTopic}`);
  say(`(e) KEDA's defaults are the code's: group ${trigger.consumerGroup}, topic ${trigger.topic}`);
}

for (const p of problems) process.stderr.write(`chart-env-check: FAIL ${p}\n`);
say(problems.length ? `${problems.length} problem(s)` : 'the chart and the code agree');
process.exit(problems.length ? 1 : 0);
