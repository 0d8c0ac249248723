import { normalized, updateProblem, UPDATE_LIMITS } from '../../src/store/valid-update';

const valid = { runId: 'r_1', orgId: 'org_a', action: 'deploy', status: 'IN_PROGRESS', links: [], source: 'ROUTER', attempt: 1, at: 1 };

describe('updateProblem', () => {
  test('a minimal update is accepted and reads absent nullable fields as null', () => {
    expect(updateProblem(valid)).toBeNull();
    expect(normalized(valid)).toMatchObject({ statusLabel: null, summary: null, log: null, run: null, claim: null, approval: null });
  });

  test.each([
    ['not a record', [1, 2]],
    ['runId is missing', { ...valid, runId: undefined }],
    ['runId is empty', { ...valid, runId: '' }],
    ['runId is a number, not a string', { ...valid, runId: 7 }],
    ['source is missing', { ...valid, source: undefined }],
    ['status is not one of IN_PROGRESS, SUCCESS, FAILURE', { ...valid, status: 'DONE' }],
    ['statusDetail is not one of WAITING_FOR_APPROVAL, DECLINED', { ...valid, statusDetail: 'PAUSED' }],
    ['at is not an integer', { ...valid, at: '2024-01-01' }],
    ['links is not an array', { ...valid, links: 'https://x' }],
    ['links has an entry that is a number, not a string', { ...valid, links: [3] }],
    [`statusLabel is ${UPDATE_LIMITS.shortText + 1} characters, over ${UPDATE_LIMITS.shortText}`, { ...valid, statusLabel: 'x'.repeat(UPDATE_LIMITS.shortText + 1) }],
    ['run is not a record', { ...valid, run: 'summary' }],
    ['run triggerPartition is not an integer', { ...valid, run: { triggerPartition: 'one' } }],
    ['claim by is missing', { ...valid, claim: { until: 1, acked: false } }],
    ['claim acked is not a boolean', { ...valid, claim: { by: 'a', until: 1, acked: 'yes' } }],
    ['approval event is not one of REQUESTED, APPROVED, DECLINED, CANCELLED, TIMED_OUT, RELEASED, NOTED', { ...valid, approval: { event: 'MAYBE' } }],
  ])('%s', (reason, value) => {
    expect(updateProblem(value)).toBe(reason);
  });
});
