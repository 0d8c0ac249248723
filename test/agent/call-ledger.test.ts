import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KafkaMessage } from 'kafkajs';
import Database from 'better-sqlite3';
import { AgentCallLedger, AgentCallLedgerOptions } from '../../src/agent/call-ledger';
import { ConfigError } from '../../src/errors';
import { silentLogger } from '../../src/log';
import { RouterMetrics } from '../../src/metrics/metrics';
import type { FrozenRun } from '../../src/model/run';
import type { MessageContext } from '../../src/router/stages/context';
import { OnceStage } from '../../src/router/stages/once';

const HOUR = 3_600_000;
const run = (runId: string, orgId = 'org_a') => ({ runId, orgId, invocationMethod: { type: 'WEBHOOK' } }) as unknown as FrozenRun;

function ctx(): MessageContext {
  return { received: {} as KafkaMessage, source: { topic: 't', partition: 0 }, signal: new AbortController().signal, log: silentLogger() };
}

async function metricValue(metric: RouterMetrics['skipped'] | RouterMetrics['inDoubt']): Promise<number> {
  return (await metric.get()).values.reduce((n, v) => n + v.value, 0);
}

describe("the agent's call ledger", () => {
  let dir: string;
  const opened: AgentCallLedger[] = [];
  const ledger = (over: Partial<AgentCallLedgerOptions> = {}) => {
    const l = new AgentCallLedger({ path: join(dir, 'calls.db'), variable: 'DATA_DIR', retentionMs: 24 * HOUR, logger: silentLogger(), ...over });
    opened.push(l);
    return l;
  };
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'agent-ledger-'))));
  afterEach(() => {
    for (const l of opened.splice(0)) l.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a call recorded STARTED, the file opened again as after kill -9: in doubt, called again at once', async () => {
    const first = ledger({ now: () => 1_000 });
    first.started(run('r_1'));
    // Not closed, as a killed process would not: the record is in the file, not in the process.
    const second = ledger();
    expect(second.record('r_1')).toEqual({ orgId: 'org_a', endedAt: null, approvalState: null, callStartedAt: 1_000, callEndedAt: null });
    expect(second.record('r_unknown')).toBeUndefined();
    const metrics = new RouterMetrics();
    const t0 = Date.now();
    expect(await new OnceStage(second, metrics).apply(ctx(), run('r_1'), false)).toEqual({ inDoubt: true, startedAt: 1_000 });
    // No other process writes the file: nothing is waited for.
    expect(Date.now() - t0).toBeLessThan(100);
    expect(await metricValue(metrics.inDoubt)).toBe(1);
  });

  test('a call recorded ENDED is skipped after a restart; an unknown run, or another org’s record, is called as new', async () => {
    const first = ledger();
    first.started(run('r_1'));
    first.ended(run('r_1'), 'succeeded');
    first.started(run('r_2', 'org_b'));
    first.close();
    const second = ledger();
    const metrics = new RouterMetrics();
    const once = new OnceStage(second, metrics);
    expect(await once.apply(ctx(), run('r_1'), false)).toBeNull();
    expect((await metrics.skipped.get()).values).toEqual([expect.objectContaining({ labels: { reason: 'already_invoked' }, value: 1 })]);
    expect(await once.apply(ctx(), run('r_new'), false)).toEqual({ inDoubt: false });
    expect(await once.apply(ctx(), run('r_2', 'org_a'), false)).toEqual({ inDoubt: false });
  });

  test('a call made again after doubt starts its record over', () => {
    let now = 1_000;
    const l = ledger({ now: () => now });
    l.started(run('r_1'));
    now = 5_000;
    l.started(run('r_1'));
    expect(l.record('r_1')).toMatchObject({ callStartedAt: 5_000, callEndedAt: null });
    now = 6_000;
    l.ended(run('r_1'), 'failed');
    expect(l.record('r_1')).toMatchObject({ callStartedAt: 5_000, callEndedAt: 6_000 });
    const db = new Database(join(dir, 'calls.db'), { readonly: true });
    expect(db.prepare('SELECT outcome FROM calls WHERE run_id = ?').get('r_1')).toEqual({ outcome: 'failed' });
    db.close();
  });

  test('answers at once: always current, and no update of a run is awaited', async () => {
    const l = ledger();
    expect(l.doubtMs).toBe(0);
    await l.current();
    const t0 = Date.now();
    await l.awaitRun();
    expect(Date.now() - t0).toBeLessThan(50);
  });

  test('prunes calls started longer than the retention before the latest one, at open and on its timer', async () => {
    let now = 0;
    const l = ledger({ now: () => now, retentionMs: 10 * HOUR, pruneEveryMs: 20 });
    l.started(run('r_old'));
    l.ended(run('r_old'), 'succeeded');
    now = 5 * HOUR;
    l.started(run('r_mid'));
    expect(l.prune()).toBe(0);
    now = 11 * HOUR;
    l.started(run('r_new'));
    // Pruned by the timer, without being asked.
    await new Promise((r) => setTimeout(r, 80));
    expect(l.record('r_old')).toBeUndefined();
    expect(l.record('r_mid')).toBeDefined();
    expect(l.record('r_new')).toBeDefined();
    l.close();
    // Opened a long time after (the agent was stopped for weeks): the calls made before the stop are kept.
    const later = ledger({ now: () => 1_000 * HOUR, retentionMs: 10 * HOUR });
    expect(later.record('r_mid')).toBeDefined();
    expect(later.record('r_new')).toBeDefined();
    // At open, what is past the retention before the latest call is pruned.
    later.close();
    const db = new Database(join(dir, 'calls.db'));
    db.prepare('INSERT INTO calls (run_id, org_id, started_at) VALUES (?, ?, ?)').run('r_latest', 'org_a', 100 * HOUR);
    db.close();
    const reopened = ledger({ retentionMs: 10 * HOUR });
    expect(reopened.record('r_mid')).toBeUndefined();
    expect(reopened.record('r_latest')).toBeDefined();
  });

  test('a place that cannot be written stops the start, naming the variable that put it there', () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory');
    const refused = (over: Partial<AgentCallLedgerOptions>) => {
      try {
        ledger(over);
      } catch (err) {
        return err;
      }
      throw new Error('expected the ledger not to open');
    };
    const underFile = refused({ path: join(file, 'calls.db'), variable: 'AGENT_LEDGER_PATH' });
    expect(underFile).toBeInstanceOf(ConfigError);
    expect(underFile).toMatchObject({ variable: 'AGENT_LEDGER_PATH' });
    expect((underFile as Error).message).toMatch(/^AGENT_LEDGER_PATH: the agent's call ledger .*a-file\/calls\.db cannot be opened for writing \((EEXIST|ENOTDIR): .*\): mount a writable volume there, or set AGENT_LEDGER_PATH$/);
    // A folder where the file should be, and a file that is not a database.
    expect(refused({ path: dir, variable: 'DATA_DIR' })).toMatchObject({ variable: 'DATA_DIR', message: expect.stringMatching(/^DATA_DIR: the agent's call ledger/) });
    expect(refused({ path: file })).toMatchObject({ variable: 'DATA_DIR', message: expect.stringMatching(/SQLITE_NOTADB/) });
  });

  test("a file holding another program's tables (the run store's, say) is refused, not changed", () => {
    const path = join(dir, 'runs.db');
    const db = new Database(path);
    db.exec('CREATE TABLE runs (id TEXT)');
    db.close();
    expect(() => ledger({ path })).toThrow(/another program's tables \(runs\)/);
  });

  test('a write that fails is thrown, and readiness says why', () => {
    const l = ledger();
    expect(l.problem()).toBeNull();
    l.close();
    expect(() => l.started(run('r_1'))).toThrow();
    expect(l.problem()).toMatch(/the agent's call ledger .* cannot be written/);
  });
});
