import { KafkaJSGroupCoordinatorNotFound } from 'kafkajs';
import { groupFailure } from '../src/doctor';

// kafkajs's own errors, as its admin client makes them from the broker's error codes.
const { createErrorFromCode } = require('kafkajs/src/protocol/error') as { createErrorFromCode: (code: number) => Error & { type: string } };
const protocolError = (type: string, code: number) => {
  const err = createErrorFromCode(code);
  expect(err.type).toBe(type);
  return err;
};

describe('groupFailure (the start check of the consumer group)', () => {
  // Issue 18, defect 10: on a new cluster the first coordinator lookup creates __consumer_offsets, and an agent
  // started beside a router failed its start check at once ("Failed to find group coordinator", exit 1).
  it('no coordinator yet is waited for, like an unreachable broker', () => {
    for (const err of [
      new (KafkaJSGroupCoordinatorNotFound as unknown as new (message: string) => Error)('Failed to find group coordinator'),
      protocolError('GROUP_COORDINATOR_NOT_AVAILABLE', 15),
      protocolError('GROUP_LOAD_IN_PROGRESS', 14),
      protocolError('NOT_COORDINATOR_FOR_GROUP', 16),
    ]) {
      expect(groupFailure('g-agent', err)).toMatchObject({ status: 'fail', what: 'group g-agent', transient: true });
    }
  });

  it('a refusal fails at once, naming what to grant', () => {
    const refused = groupFailure('g', protocolError('GROUP_AUTHORIZATION_FAILED', 30));
    expect(refused.transient).toBeFalsy();
    expect(refused.detail).toContain('ROUTER_GROUP_ID');
    expect(groupFailure('g', new Error('something else')).transient).toBeFalsy();
  });
});
