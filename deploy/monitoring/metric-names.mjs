// The action_router_* metric names the alert rules and the Grafana dashboard
// use, so that a test can scrape a running router and check that each one is
// exported. No dependencies: the rule file is read line by line (only its
// `expr:` values, inline or block scalars) and the dashboard as JSON (every
// `expr` of a target and every variable query).
//
// Names are base names, as a scrape's `# TYPE` lines give them: a histogram's
// `_bucket`, `_sum` and `_count` series are folded into the histogram's name.
// A name is a histogram when it is listed in HISTOGRAMS or used with
// `_bucket`; `_sum`/`_count` of anything else (a counter `x_total` never ends
// so) are kept as written.
//
// Usage: `node deploy/monitoring/metric-names.mjs` prints one name a line;
// `import { metricNamesUsed } from './metric-names.mjs'` returns them sorted.

import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** The rule file and the dashboard, as the chart ships them. */
export const RULES_FILE = resolve(here, '../helm/action-router/files/prometheus-rules.yaml');
export const DASHBOARD_FILE = resolve(here, '../helm/action-router/files/grafana-dashboard.json');

/** The histograms the process exports (src/metrics/metrics.ts, src/store/metrics.ts, prom-client's defaults). */
export const HISTOGRAMS = Object.freeze([
  'action_router_invocation_duration_seconds',
  'action_router_store_transaction_seconds',
  'action_router_nodejs_gc_duration_seconds',
]);

const NAME = /\baction_router_[a-zA-Z0-9_]*[a-zA-Z0-9]/g;
const SUFFIXES = ['_bucket', '_sum', '_count'];

/** The PromQL expressions of a Prometheus rule file (`expr: ...` or `expr: |` and its indented block). */
export function ruleExpressions(text) {
  const lines = text.split('\n');
  const exprs = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^(\s*)(?:-\s+)?expr:\s*(.*)$/.exec(lines[i]);
    if (!m) continue;
    const indent = m[1].length;
    const value = m[2].trim();
    if (!/^[|>][-+]?$/.test(value)) {
      exprs.push(value.replace(/^(['"])(.*)\1$/, '$2'));
      continue;
    }
    const block = [];
    for (i++; i < lines.length; i++) {
      const line = lines[i];
      if (line.trim() !== '' && line.length - line.trimStart().length <= indent) break;
      block.push(line);
    }
    i--;
    exprs.push(block.join('\n'));
  }
  // PromQL comments (#) may name metrics that are not queried.
  return exprs.map((e) => e.replace(/#.*$/gm, ''));
}

/** The PromQL expressions of a Grafana dashboard: panels' (and rows' nested panels') targets, and query variables. */
export function dashboardExpressions(dashboard) {
  const exprs = [];
  const visit = (panels) => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) if (typeof target.expr === 'string') exprs.push(target.expr);
      visit(panel.panels);
    }
  };
  visit(dashboard.panels);
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== 'query') continue;
    const q = typeof variable.query === 'string' ? variable.query : variable.query?.query;
    if (typeof q === 'string') exprs.push(q);
  }
  return exprs;
}

/** Base names of the action_router_* metrics in these expressions. */
export function baseNames(exprs, histograms = HISTOGRAMS) {
  const used = new Set(exprs.flatMap((e) => e.match(NAME) ?? []));
  const isHistogram = new Set(histograms);
  for (const name of used) if (name.endsWith('_bucket')) isHistogram.add(name.slice(0, -'_bucket'.length));
  const names = new Set();
  for (const name of used) {
    const suffix = SUFFIXES.find((s) => name.endsWith(s));
    const base = suffix ? name.slice(0, -suffix.length) : name;
    names.add(suffix && isHistogram.has(base) ? base : name);
  }
  return [...names].sort();
}

/** The base names of the action_router_* metrics the rules and the dashboard use, sorted. */
export function metricNamesUsed({ rulesFile = RULES_FILE, dashboardFile = DASHBOARD_FILE } = {}) {
  const rules = ruleExpressions(readFileSync(rulesFile, 'utf8'));
  const dashboard = dashboardExpressions(JSON.parse(readFileSync(dashboardFile, 'utf8')));
  return baseNames([...rules, ...dashboard]);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const name of metricNamesUsed()) console.log(name);
}
