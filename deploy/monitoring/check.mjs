// Checks what promtool cannot: the dashboard's structure, every alert's
// labels, annotations and runbook section, and that every alert has a firing
// and a quiet unit test. Run by deploy/check-monitoring.sh, which runs
// promtool itself; PROMTOOL (a path) lets this script parse the dashboard's
// queries with it too. Prints the action_router_* metric names used, and
// exits 1 listing every problem. No dependencies: the YAML files are read
// line by line, which holds for the layout they have (one `- alert:` per rule,
// `key: value` lines below it).

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DASHBOARD_FILE, RULES_FILE, baseNames, dashboardExpressions, metricNamesUsed, ruleExpressions } from './metric-names.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const TESTS_DIR = join(here, 'tests');
const RUNBOOK_FILE = join(root, 'docs/runbook.md');
const RUNBOOK_URL = 'https://github.com/action-router/action-router/blob/main/docs/runbook.md#';
const SEVERITIES = new Set(['critical', 'warning', 'info']);

const problems = [];
const problem = (where, what) => problems.push(`${where}: ${what}`);

/** GitHub's anchor for a heading: lowercase, punctuation removed, spaces to hyphens; repeats get -1, -2... */
export function githubAnchors(markdown) {
  const seen = new Map();
  const anchors = [];
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const m = !fenced && /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const slug = m[1]
      .replace(/`/g, '')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.push(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/** The alerts of the rule file, each with the `key: value` lines of its block. */
function alertsOf(text) {
  const alerts = [];
  let current = null;
  for (const line of text.split('\n')) {
    const start = /^\s*-\s+(alert|record):\s*(\S+)/.exec(line);
    if (start) {
      current = start[1] === 'alert' ? { name: start[2], fields: new Map() } : null;
      if (current) alerts.push(current);
      continue;
    }
    const field = current && /^\s+([a-z_]+):\s*(.*)$/.exec(line);
    if (field) current.fields.set(field[1], field[2].trim().replace(/^(['"])(.*)\1$/, '$2'));
  }
  return alerts;
}

function checkRules(anchors) {
  const text = readFileSync(RULES_FILE, 'utf8');
  const alerts = alertsOf(text);
  if (alerts.length === 0) problem(RULES_FILE, 'no alerts found');
  const names = new Set();
  for (const { name, fields } of alerts) {
    if (names.has(name)) problem(name, 'alert name used twice');
    names.add(name);
    if (!SEVERITIES.has(fields.get('severity'))) problem(name, `severity label missing or not one of ${[...SEVERITIES].join(', ')}`);
    for (const key of ['summary', 'description']) if (!fields.get(key)) problem(name, `annotation ${key} missing`);
    const url = fields.get('runbook_url') ?? '';
    if (!url.startsWith(RUNBOOK_URL)) problem(name, `runbook_url must start with ${RUNBOOK_URL}`);
    else if (!anchors.includes(url.slice(RUNBOOK_URL.length))) problem(name, `runbook_url anchor #${url.slice(RUNBOOK_URL.length)} is no heading of docs/runbook.md`);
  }
  return [...names];
}

/** For each alert name, how many test cases expect it firing and how many quiet. */
function testCases() {
  const cases = new Map();
  const files = readdirSync(TESTS_DIR).filter((f) => /\.ya?ml$/.test(f));
  let total = 0;
  let named = 0;
  for (const file of files) {
    const lines = readFileSync(join(TESTS_DIR, file), 'utf8').split('\n');
    named += lines.filter((l) => /^\s*-\s+name:/.test(l)).length;
    for (let i = 0; i < lines.length; i++) {
      const m = /^\s*alertname:\s*(\S+)/.exec(lines[i]);
      if (!m) continue;
      // exp_alerts follows alertname within the same list item.
      let kind = null;
      for (let j = i + 1; j < lines.length && j < i + 4; j++) {
        if (/^\s*exp_alerts:\s*\[\s*\]\s*$/.test(lines[j])) kind = 'quiet';
        else if (/^\s*exp_alerts:\s*$/.test(lines[j]) && /^\s*-\s+exp_labels:/.test(lines[j + 1] ?? '')) kind = 'firing';
        if (kind) break;
      }
      if (!kind) continue;
      total++;
      const c = cases.get(m[1]) ?? { firing: 0, quiet: 0 };
      c[kind]++;
      cases.set(m[1], c);
    }
  }
  return { cases, total, named, files: files.length };
}

function checkDashboard(promtool) {
  let dashboard;
  try {
    dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8'));
  } catch (err) {
    problem(DASHBOARD_FILE, `not JSON: ${err.message}`);
    return;
  }
  if (!(dashboard.schemaVersion >= 39)) problem('dashboard', `schemaVersion ${dashboard.schemaVersion} < 39`);
  const vars = dashboard.templating?.list ?? [];
  const ds = vars.find((v) => v.name === 'datasource');
  if (!ds || ds.type !== 'datasource' || ds.query !== 'prometheus') problem('dashboard', 'no `datasource` variable of type datasource querying prometheus');
  for (const v of vars) if (v.type === 'query' && v.datasource?.uid !== '${datasource}') problem(`variable ${v.name}`, 'does not query the ${datasource} variable');
  const ids = new Set();
  const visit = (panels) => {
    for (const p of panels ?? []) {
      const where = `panel ${p.id} "${p.title}"`;
      if (typeof p.id !== 'number') problem(where, 'no numeric id');
      else if (ids.has(p.id)) problem(where, 'id used twice');
      ids.add(p.id);
      if (!p.gridPos) problem(where, 'no gridPos');
      if (p.type === 'row') {
        visit(p.panels);
        continue;
      }
      if (p.datasource?.uid !== '${datasource}') problem(where, 'datasource is not ${datasource}');
      if (!Array.isArray(p.targets) || p.targets.length === 0) problem(where, 'no targets');
      const refs = new Set();
      for (const t of p.targets ?? []) {
        if (!t.expr) problem(where, `target ${t.refId} has no expr`);
        if (refs.has(t.refId)) problem(where, `refId ${t.refId} used twice`);
        refs.add(t.refId);
        if (t.datasource && t.datasource.uid !== '${datasource}') problem(where, `target ${t.refId} has another datasource`);
      }
    }
  };
  visit(dashboard.panels);
  if (promtool) parseDashboardQueries(promtool, dashboardExpressions(dashboard));
}

/** Has promtool parse every dashboard query, as recording rules with Grafana's interval variables filled in. */
function parseDashboardQueries(promtool, exprs) {
  const dir = mkdtempSync(join(tmpdir(), 'dashboard-queries-'));
  try {
    const file = join(dir, 'queries.yaml');
    const rules = exprs
      // A variable's label_values(SELECTOR, label) is Grafana's: its selector is the PromQL.
      .map((e) => /^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$/s.exec(e)?.[1] ?? e)
      .filter((e) => !/^\s*label_values\(/.test(e))
      .map((e, i) => {
        const promql = e.replace(/\$__rate_interval|\$__interval/g, '5m').replace(/\$__range/g, '6h');
        return `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(promql)}`;
      })
      .join('\n');
    writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${rules}\n`);
    execFileSync(promtool, ['check', 'rules', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    problem('dashboard queries', `promtool cannot parse them:\n${err.stdout ?? ''}${err.stderr ?? err.message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Metric names the code declares (name: 'action_router_...'), and prom-client's default ones by prefix. */
function declaredInSource() {
  const names = new Set();
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) for (const m of readFileSync(path, 'utf8').matchAll(/name:\s*'(action_router_[a-z0-9_]+)'/g)) names.add(m[1]);
    }
  };
  try {
    walk(join(root, 'src'));
  } catch {
    return null;
  }
  return names;
}

const anchors = (() => {
  try {
    return githubAnchors(readFileSync(RUNBOOK_FILE, 'utf8'));
  } catch {
    problem(RUNBOOK_FILE, 'missing');
    return [];
  }
})();
const alerts = checkRules(anchors);
const { cases, total, named, files } = testCases();
for (const name of alerts) {
  const c = cases.get(name) ?? { firing: 0, quiet: 0 };
  if (c.firing === 0) problem(name, 'no unit test expects it firing');
  if (c.quiet === 0) problem(name, 'no unit test expects it quiet (exp_alerts: [])');
}
for (const name of cases.keys()) if (!alerts.includes(name)) problem(name, 'tested but not in the rule file');
checkDashboard(process.env.PROMTOOL);

const used = metricNamesUsed();
console.log(`${alerts.length} alerts; ${named} test cases in ${files} files, with ${total} alert checks (${[...cases.values()].reduce((n, c) => n + c.firing, 0)} firing, ${[...cases.values()].reduce((n, c) => n + c.quiet, 0)} quiet)`);
console.log(`action_router_* metrics used by the rules (${baseNames(ruleExpressions(readFileSync(RULES_FILE, 'utf8'))).length}) and the dashboard, ${used.length} in all:`);
for (const name of used) console.log(`  ${name}`);
const declared = declaredInSource();
if (declared) {
  const defaults = /^action_router_(process|nodejs)_/;
  const undeclared = used.filter((n) => !defaults.test(n) && !declared.has(n));
  if (undeclared.length > 0) console.log(`warning: not declared in src/ (yet?): ${undeclared.join(', ')}`);
}
if (problems.length > 0) {
  console.error(`\n${problems.length} problem(s):`);
  for (const p of problems) console.error(`  ${p}`);
  process.exit(1);
}
