import type { FoldedRun } from '../../src/store/folded-run';
import { fold } from '../../src/store/rules';
import type { RunStatusUpdate } from '../../src/model/status';

/** The store's acceptance rules, folded in memory without SQLite. */
function update(over: Partial<RunStatusUpdate> = {}): RunStatusUpdate {
  return {
    runId: 'r_1', orgId: 'org_a', action: 'deploy', status: 'IN_PROGRESS', statusLabel: null, summary: null, links: [],
    externalRunId: null, log: null, invocationType: 'WEBHOOK', source: 'ROUTER', attempt: 1, at: 1_000, run: null, claim: null, approval: null,
    ...over,
  };
}

function foldAll(updates: RunStatusUpdate[]): { run: FoldedRun | null; applied: boolean[] } {
  let run: FoldedRun | null = null;
  const applied: boolean[] = [];
  for (const u of updates) {
    const r = fold(run, u);
    run = r.run;
    applied.push(r.applied);
  }
  return { run, applied };
}

const requested = (approvers: string[], type: 'ANY' | 'ALL' = 'ANY') =>
  update({ statusDetail: 'WAITING_FOR_APPROVAL', approval: { event: 'REQUESTED', by: null, description: null, type, approvers, parked: 'sealed' } });
const decide = (event: 'APPROVED' | 'DECLINED', by: string, at: number, type: 'ADMIN' | null = null) =>
  update({ source: 'BACKEND', at, status: event === 'DECLINED' ? 'FAILURE' : 'IN_PROGRESS', statusDetail: event === 'DECLINED' ? 'DECLINED' : null, approval: { event, by, description: `${event} by ${by}`, type, approvers: [], parked: null } });

describe('fold', () => {
  test('the first update creates the run; later ones lay their fields over it', () => {
    const { run, applied } = foldAll([
      update({ run: { blueprint: 'svc', entityIdentifier: 'payments', entity: '{}', properties: '{"v":1}', userId: 'u1', userEmail: 'dev@x', origin: 'UI', actionTrigger: 'DAY-2', invocation: '{}', createdAt: 900, triggerPartition: 2, agentPayload: null } }),
      update({ source: 'BACKEND', actor: 'ci', statusLabel: 'Building', links: ['https://ci/1'], at: 1_100 }),
      update({ source: 'BACKEND', actor: 'ci', summary: 'done', externalRunId: '42', at: 1_200 }),
      update({ source: 'BACKEND', actor: 'ci', status: 'SUCCESS', at: 1_300 }),
    ]);
    expect(applied).toEqual([true, true, true, true]);
    expect(run!.state).toMatchObject({
      status: 'SUCCESS', statusLabel: 'Building', summary: 'done', links: '["https://ci/1"]', externalRunId: '42',
      createdAt: 900, createdBy: 'dev@x', updatedBy: 'ci', endedAt: 1_300, triggerPartition: 2, entityIdentifier: 'payments',
    });
    expect(run!.details.properties).toBe('{"v":1}');
  });

  test('nothing changes a run that ended, but what the run is still fills in', () => {
    const { run, applied } = foldAll([
      update({ source: 'BACKEND', status: 'FAILURE', at: 500 }),
      update({ statusLabel: 'late', at: 600, run: { blueprint: 'svc', entityIdentifier: 'e1', entity: null, properties: null, userId: null, userEmail: null, origin: 'API', actionTrigger: null, invocation: null, createdAt: 400, triggerPartition: 1, agentPayload: null } }),
    ]);
    expect(applied).toEqual([true, false]);
    expect(run!.state).toMatchObject({ status: 'FAILURE', statusLabel: null, endedAt: 500, blueprint: 'svc', entityIdentifier: 'e1', createdAt: 400 });
  });

  test('a decision for a run the store does not know creates nothing', () => {
    const r = fold(null, decide('APPROVED', 'lead', 10));
    expect(r).toMatchObject({ run: null, applied: false });
  });

  test('ANY: one approval completes it; a second decision of the same approver is refused', () => {
    const { run, applied } = foldAll([requested(['a', 'b']), decide('APPROVED', 'a', 2_000), decide('DECLINED', 'a', 2_100)]);
    expect(applied).toEqual([true, true, false]);
    expect(run!.state.approvalState).toBe('APPROVED');
    expect(run!.details.parked).toBe('sealed');
  });

  test('ALL waits for every approver unless an admin decides', () => {
    const all = foldAll([requested(['a', 'b'], 'ALL'), decide('APPROVED', 'a', 2_000)]);
    expect(all.run!.state.approvalState).toBe('WAITING');
    const done = foldAll([requested(['a', 'b'], 'ALL'), decide('APPROVED', 'a', 2_000), decide('APPROVED', 'b', 2_100)]);
    expect(done.run!.state.approvalState).toBe('APPROVED');
    const admin = foldAll([requested(['a', 'b'], 'ALL'), decide('APPROVED', 'boss', 2_000, 'ADMIN')]);
    expect(admin.run!.state.approvalState).toBe('APPROVED');
  });

  test('a decline ends the run and drops the sealed event; nothing after it applies', () => {
    const { run, applied } = foldAll([requested(['a']), decide('DECLINED', 'a', 2_000), update({ source: 'BACKEND', status: 'SUCCESS', at: 3_000 })]);
    expect(applied).toEqual([true, true, false]);
    expect(run!.state).toMatchObject({ status: 'DECLINED', approvalState: 'DECLINED', endedAt: 2_000 });
    expect(run!.details.parked).toBeNull();
  });

  test('while a run waits, backend updates are refused; the release applies once, after approval', () => {
    const release = (at: number, nudge: string) => update({ at, approval: { event: 'RELEASED', by: null, description: nudge, type: null, approvers: [], parked: null } });
    const { run, applied } = foldAll([
      requested(['a']),
      update({ source: 'BACKEND', statusLabel: 'sneaky', at: 1_500 }),
      release(1_600, '0:1'),
      decide('APPROVED', 'a', 2_000),
      release(2_100, '0:7'),
      release(2_200, '0:8'),
    ]);
    expect(applied).toEqual([true, false, false, true, true, false]);
    expect(run!.state).toMatchObject({ approvalState: 'RELEASED', releasedNudge: '0:7', statusLabel: null });
  });

  test('claims: the first free claim wins, a lapsed unacknowledged one can be taken, an ack holds only for its holder', () => {
    const claim = (by: string, at: number, until: number, acked = false) => update({ source: 'BACKEND', at, claim: { by, until, acked } });
    const { run, applied } = foldAll([
      update({ run: { blueprint: null, entityIdentifier: null, entity: null, properties: null, userId: null, userEmail: null, origin: null, actionTrigger: null, invocation: null, createdAt: null, triggerPartition: 0, agentPayload: '{}' } }),
      claim('agent-1', 1_100, 5_000),
      claim('agent-2', 1_200, 5_000),
      claim('agent-2', 6_000, 9_000),
      claim('agent-1', 6_100, 9_000, true),
      claim('agent-2', 6_200, 9_000, true),
    ]);
    expect(applied).toEqual([true, true, false, true, false, true]);
    expect(run!.state).toMatchObject({ claimBy: 'agent-2', claimAcked: 1, claimUntil: 9_000, hasAgentPayload: 1 });
  });

  test('a claim on a run the store does not know holds nothing', () => {
    const r = fold(null, update({ source: 'BACKEND', claim: { by: 'agent', until: 9, acked: false } }));
    expect(r.applied).toBe(false);
  });

  test('logs are kept only for applied updates', () => {
    expect(fold(null, update({ log: 'routed' })).log).toBe('routed');
    const ended = fold(null, update({ status: 'SUCCESS' })).run;
    expect(fold(ended, update({ log: 'late', at: 2_000 })).log).toBeNull();
  });

  test('a re-sent dead letter reopens only a FAILURE run of its own org that never waited for approval', () => {
    const failed = () => foldAll([update(), update({ status: 'FAILURE', statusLabel: 'UNKNOWN_ACTION', summary: 'rejected', at: 1_100 })]).run;
    const reopen = (over: Partial<RunStatusUpdate> = {}) => update({ statusLabel: 're-sent', resentFrom: '0/7', log: 'Re-sent', at: 1_200, ...over });
    const reopened = fold(failed(), reopen());
    expect(reopened.applied).toBe(true);
    expect(reopened.run!.state).toMatchObject({ status: 'IN_PROGRESS', endedAt: null, summary: null, statusLabel: 're-sent', resentFrom: '0/7' });
    // Open again: a second re-sending (another request, another instance) finds it open and is refused.
    expect(fold(reopened.run, reopen({ at: 1_300 })).applied).toBe(false);
    // Another org's letter, a run that succeeded, a run that waited for approval: refused.
    expect(fold(failed(), reopen({ orgId: 'org_b' })).applied).toBe(false);
    expect(fold(foldAll([update(), update({ status: 'SUCCESS', at: 1_100 })]).run, reopen()).applied).toBe(false);
    const declined = foldAll([requested(['a']), decide('DECLINED', 'a', 1_100)]).run;
    expect(fold(declined, reopen()).applied).toBe(false);
    // The router's updates of the re-sent event then apply.
    expect(fold(reopened.run, update({ status: 'SUCCESS', at: 1_400 })).applied).toBe(true);
  });

  test('a run the API created is parked by the router’s request; one a router already took is not', () => {
    const info = (triggerPartition: number | null) => ({ blueprint: null, entityIdentifier: null, entity: null, properties: null, userId: 'acme-ci', userEmail: null, origin: 'API', actionTrigger: null, invocation: null, createdAt: 900, triggerPartition, agentPayload: null });
    const executed = fold(null, update({ statusLabel: 'triggered', run: info(null) })).run;
    const parked = fold(executed, { ...requested(['bob']), run: info(3), at: 1_100 });
    expect(parked.applied).toBe(true);
    expect(parked.run!.state).toMatchObject({ approvalState: 'WAITING', status: 'WAITING_FOR_APPROVAL', approvers: '["bob"]', triggerPartition: 3 });
    expect(parked.run!.details.parked).toBe('sealed');
    // The same trigger event delivered again: already parked.
    expect(fold(parked.run, { ...requested(['bob']), at: 1_200 }).applied).toBe(false);
    // A run a router routed (its trigger partition is known) is never parked afterwards.
    const routed = fold(null, update({ run: info(1) })).run;
    expect(fold(routed, { ...requested(['bob']), at: 1_100 }).applied).toBe(false);
  });

  test('a call is recorded STARTED, then ENDED; the first of each counts, and a re-sent dead letter clears both', () => {
    const { run, applied } = foldAll([
      update({ call: 'STARTED', at: 1_000 }),
      update({ call: 'STARTED', at: 1_050 }),
      update({ call: 'ENDED', at: 1_100, log: 'Webhook delivered' }),
      update({ call: 'ENDED', at: 1_150 }),
    ]);
    expect(applied).toEqual([true, true, true, true]);
    expect(run!.state).toMatchObject({ callStartedAt: 1_000, callEndedAt: 1_100, endedAt: null });
    // A run the router dead-lettered (FAILURE), then re-sent: called again as a new run would be.
    const failed = foldAll([update({ call: 'STARTED', at: 1_000 }), update({ status: 'FAILURE', call: 'ENDED', at: 1_100 }), update({ resentFrom: '0/7', at: 1_200 })]);
    expect(failed.applied).toEqual([true, true, true]);
    expect(failed.run!.state).toMatchObject({ endedAt: null, callStartedAt: null, callEndedAt: null, resentFrom: '0/7' });
  });

  test('an outcome recorded after the run ended (its backend reported first) changes nothing: the run stays ended', () => {
    const { run, applied } = foldAll([
      update({ call: 'STARTED', at: 1_000 }),
      update({ source: 'BACKEND', status: 'SUCCESS', at: 1_050 }),
      update({ call: 'ENDED', log: 'delivered', at: 1_100 }),
    ]);
    expect(applied).toEqual([true, true, false]);
    expect(run!.state).toMatchObject({ status: 'SUCCESS', endedAt: 1_050, callStartedAt: 1_000, callEndedAt: null });
  });

  test('the first update of a run may be its call record (a WEBHOOK run announced by its STARTED)', () => {
    const { run } = foldAll([update({ call: 'STARTED', at: 500 })]);
    expect(run!.state).toMatchObject({ callStartedAt: 500, callEndedAt: null });
    const ended = foldAll([update({ call: 'ENDED', at: 600 })]);
    expect(ended.run!.state).toMatchObject({ callStartedAt: null, callEndedAt: 600 });
  });
});
