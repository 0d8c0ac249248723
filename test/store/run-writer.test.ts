import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type Database from 'better-sqlite3';
import type { RunStatusUpdate } from '../../src/model/status';
import { RunWriter, WriterEntry } from '../../src/store/run-writer';
import { openWritable } from '../../src/store/schema';

/** The writer on a real SQLite file: a batch folded per run equals the same updates applied one by one. */
describe('RunWriter', () => {
  const dir = mkdtempSync(join(tmpdir(), 'run-writer-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const open = (): Database.Database => openWritable(join(dir, `store-${n++}.db`), 'status', { cacheMb: 8, mmapMb: 0 }).db;

  const base = (runId: string, at: number): RunStatusUpdate => ({
    runId, orgId: 'org_a', action: 'deploy', status: 'IN_PROGRESS', statusLabel: null, summary: null, links: [], externalRunId: null,
    log: null, invocationType: 'WEBHOOK', source: 'BACKEND', attempt: 1, at, run: null, claim: null, approval: null,
  });

  const updateArb = fc.record({
    run: fc.constantFrom('r_a', 'r_b', 'r_c'),
    kind: fc.constantFrom('first', 'label', 'log', 'end', 'claim', 'ack', 'request', 'approve', 'decline', 'release', 'external'),
    who: fc.constantFrom('x', 'y'),
    text: fc.string({ maxLength: 8 }),
  });

  type Spec = { run: string; kind: string; who: string; text: string };

  function toEntries(specs: Spec[]): WriterEntry[] {
    const next = new Map<number, bigint>();
    return specs.map((s, i) => {
      const u = base(s.run, 1_000 + i * 10);
      switch (s.kind) {
        case 'first':
          Object.assign(u, { source: 'ROUTER', run: { blueprint: 'svc', entityIdentifier: `e-${s.text}`, entity: '{}', properties: '{}', userId: s.who, userEmail: null, origin: 'UI', actionTrigger: 'DAY-2', invocation: '{}', createdAt: 900, triggerPartition: 0, agentPayload: '{}' } });
          break;
        case 'label':
          Object.assign(u, { statusLabel: s.text, links: s.text ? [`https://x/${s.text}`] : [] });
          break;
        case 'log':
          u.log = `line ${s.text}`;
          break;
        case 'end':
          Object.assign(u, { status: s.who === 'x' ? 'SUCCESS' : 'FAILURE', log: 'end' });
          break;
        case 'claim':
          u.claim = { by: s.who, until: 1_000 + i * 10 + 25, acked: false };
          break;
        case 'ack':
          u.claim = { by: s.who, until: 0, acked: true };
          break;
        case 'request':
          Object.assign(u, { source: 'ROUTER', statusDetail: 'WAITING_FOR_APPROVAL', approval: { event: 'REQUESTED', by: null, description: null, type: 'ALL', approvers: ['x', 'y'], parked: 'sealed' } });
          break;
        case 'approve':
        case 'decline':
          Object.assign(u, {
            status: s.kind === 'decline' ? 'FAILURE' : 'IN_PROGRESS',
            statusDetail: s.kind === 'decline' ? 'DECLINED' : null,
            approval: { event: s.kind === 'decline' ? 'DECLINED' : 'APPROVED', by: s.who, description: s.text, type: null, approvers: [], parked: null },
          });
          break;
        case 'release':
          Object.assign(u, { source: 'ROUTER', approval: { event: 'RELEASED', by: null, description: `0:${i}`, type: null, approvers: [], parked: null } });
          break;
        case 'external':
          u.externalRunId = `ext-${s.text}`;
          break;
      }
      const partition = s.run === 'r_b' ? 1 : 0;
      const offset = next.get(partition) ?? 0n;
      next.set(partition, offset + 1n);
      return { partition, offset, update: u };
    });
  }

  function contents(db: Database.Database) {
    return {
      runs: db.prepare('SELECT * FROM runs ORDER BY id').all().map((r) => ({ ...(r as object), key: undefined })),
      details: db.prepare('SELECT d.*, r.id AS rid FROM run_details d JOIN runs r USING (key) ORDER BY rid').all().map((r) => ({ ...(r as object), key: undefined })),
      logs: db.prepare('SELECT l.id, r.id AS rid, l.message, l.created_by, l.created_at FROM run_logs l JOIN runs r ON r.key = l.run_key ORDER BY l.id').all(),
      timeline: db.prepare('SELECT r.id AS rid, partition, offset, applied, u.status, source, actor FROM run_updates u JOIN runs r ON r.key = u.run_key ORDER BY partition, CAST(offset AS INTEGER)').all(),
      approvals: db.prepare('SELECT r.id AS rid, client_id, decision FROM run_approvals a JOIN runs r ON r.key = a.run_key ORDER BY rid, client_id').all(),
      search: db.prepare("SELECT rowid FROM runs_search WHERE runs_search MATCH '\"ext\"' ORDER BY rowid").all().length,
      offsets: db.prepare('SELECT * FROM offsets ORDER BY partition').all(),
    };
  }

  test('one transaction per batch gives what one transaction per update gives', () => {
    fc.assert(
      fc.property(fc.array(updateArb, { minLength: 1, maxLength: 40 }), fc.integer({ min: 1, max: 7 }), (specs, chunk) => {
        const entries = toEntries(specs);
        const one = open();
        const batched = open();
        try {
          const w1 = new RunWriter(one);
          for (const e of entries) w1.apply([e]);
          const w2 = new RunWriter(batched);
          for (let i = 0; i < entries.length; i += chunk) w2.apply(entries.slice(i, i + chunk));
          expect(contents(batched)).toEqual(contents(one));
        } finally {
          one.close();
          batched.close();
        }
      }),
      { numRuns: 60 },
    );
  });

  test('records already applied are passed over: a replay changes nothing', () => {
    const db = open();
    const writer = new RunWriter(db);
    const entries = toEntries([
      { run: 'r_a', kind: 'first', who: 'x', text: 'a' },
      { run: 'r_a', kind: 'log', who: 'x', text: '1' },
      { run: 'r_b', kind: 'first', who: 'y', text: 'b' },
    ]);
    const first = writer.apply(entries);
    expect(first.results.map((r) => r.result)).toEqual(['applied', 'applied', 'applied']);
    const before = contents(db);
    const again = writer.apply(entries);
    expect(again.results).toEqual([]);
    expect(contents(db)).toEqual(before);
    db.close();
  });

  test('an update for another org\'s run, and records that cannot apply, are skipped and the partition moves on', () => {
    const db = open();
    const writer = new RunWriter(db);
    const own = base('r_x', 1);
    const foreign = { ...base('r_x', 2), orgId: 'org_other', statusLabel: 'hijack' };
    const later = { ...base('r_x', 3), statusLabel: 'fine' };
    const outcome = writer.apply([
      { partition: 0, offset: 0n, update: own },
      { partition: 0, offset: 1n, update: foreign },
      { partition: 0, offset: 2n, update: null, problem: { result: 'invalid', reason: 'source is missing' } },
      { partition: 0, offset: 3n, update: null, problem: { result: 'undecodable', reason: 'not JSON' } },
      { partition: 0, offset: 4n, update: later },
    ]);
    expect(outcome.results.map((r) => r.result)).toEqual(['applied', 'invalid', 'invalid', 'undecodable', 'applied']);
    expect(outcome.results[1]!.reason).toBe('run r_x belongs to another org');
    expect(writer.offsets().get(0)).toBe(5n);
    expect(db.prepare('SELECT org_id AS orgId, status_label AS label FROM runs').get()).toEqual({ orgId: 'org_a', label: 'fine' });
    db.close();
  });
});
