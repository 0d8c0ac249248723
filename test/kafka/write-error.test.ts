import { KafkaJSNumberOfRetriesExceeded } from 'kafkajs';
import { ErrorCodes, RouterError } from '../../src/errors';
import { classifyWriteError, isRecordLevel } from '../../src/kafka/write-error';

// The broker's answers as kafkajs makes them from its error codes.
const { createErrorFromCode } = require('kafkajs/src/protocol/error') as { createErrorFromCode: (code: number) => Error & { type: string } };
const broker = (code: number) => createErrorFromCode(code);

describe('classifyWriteError', () => {
  it('a record too large, or refused for what it is or where it goes, never succeeds: not retriable, split from a shared request', () => {
    const cases: [number, string, string][] = [
      [10, 'MESSAGE_TOO_LARGE', ErrorCodes.OUTPUT_TOO_LARGE],
      [18, 'RECORD_LIST_TOO_LARGE', ErrorCodes.OUTPUT_TOO_LARGE],
      [87, 'INVALID_RECORD', ErrorCodes.OUTPUT_REJECTED],
      [29, 'TOPIC_AUTHORIZATION_FAILED', ErrorCodes.OUTPUT_REJECTED],
    ];
    for (const [code, type, expected] of cases) {
      const err = broker(code);
      expect(err.type).toBe(type);
      const classified = classifyWriteError(err, 'writing r_1');
      expect([classified.code, classified.retriable]).toEqual([expected, false]);
      expect(classified.message).toBe(`writing r_1: ${expected === ErrorCodes.OUTPUT_TOO_LARGE ? 'the broker refused the record as too large' : 'the broker refused the write'} (${type})`);
      expect(isRecordLevel(err)).toBe(true);
    }
  });

  it('finds the broker’s answer under kafkajs’s retry wrapper', () => {
    const wrapped = new KafkaJSNumberOfRetriesExceeded(broker(10), { retryCount: 5, retryTime: 1000 });
    expect(classifyWriteError(wrapped, 'w').code).toBe(ErrorCodes.OUTPUT_TOO_LARGE);
    expect(isRecordLevel(wrapped)).toBe(true);
  });

  it('everything else is waited out: a leader moving, a connection lost, an unknown error', () => {
    for (const err of [broker(6), new Error('Connection error: ECONNREFUSED'), 'a string']) {
      const classified = classifyWriteError(err, 'w');
      expect([classified.code, classified.retriable]).toEqual([ErrorCodes.BACKEND_UNAVAILABLE, true]);
      expect(isRecordLevel(err)).toBe(false);
    }
  });

  it('keeps the verdict of a RouterError (the registry codec’s)', () => {
    const refused = new RouterError(ErrorCodes.SCHEMA_INVALID, 'the registry refused it');
    expect(classifyWriteError(refused, 'w')).toBe(refused);
  });
});
