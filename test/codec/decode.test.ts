import { decodeTrigger } from '../../src/codec/decode';
import { ErrorCodes } from '../../src/errors';
import { samplePortMessage } from '../../src/sample';

const bytes = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

describe('decodeTrigger', () => {
  it('reads Port run-message JSON into a frozen run', async () => {
    const msg = samplePortMessage({ runId: 'r_1', orgId: 'org_1', invocationMethod: { type: 'WEBHOOK', url: 'https://x.test/h', agent: true } });
    const result = await decodeTrigger(bytes(msg));
    if (!result.ok) throw new Error(result.error.message);
    expect(result.encoding).toBe('port-json');
    expect(result.run).toMatchObject({
      runId: 'r_1',
      orgId: 'org_1',
      action: 'deploy_service',
      actionTrigger: 'DAY-2',
      origin: 'UI',
      userId: 'auth0|u42',
      entityIdentifier: 'payments',
      blueprint: 'service',
      properties: { version: '1.4.2', environment: 'staging' },
      invocationMethod: { type: 'WEBHOOK', url: 'https://x.test/h', agent: true },
    });
    expect(Object.isFrozen(result.run)).toBe(true);
    expect(Object.isFrozen(result.run.properties)).toBe(true);
  });

  it('reads the router’s own ActionRun JSON form, with JSON text or objects', async () => {
    const base = {
      runId: 'r_2',
      orgId: 'org_2',
      action: 'scale',
      triggeredAt: '2026-03-01T10:00:00.000Z',
      invocationMethod: { type: 'kafka' },
    };
    const asText = await decodeTrigger(bytes({ ...base, properties: '{"replicas":3}' }));
    const asObject = await decodeTrigger(bytes({ ...base, properties: { replicas: 3 } }));
    for (const r of [asText, asObject]) {
      if (!r.ok) throw new Error(r.error.message);
      expect(r.encoding).toBe('action-run-json');
      expect(r.run.properties).toEqual({ replicas: 3 });
      expect(r.run.invocationMethod.type).toBe('KAFKA');
    }
  });

  it.each([
    ['empty bytes', Buffer.alloc(0), ErrorCodes.DECODE_FAILED],
    ['not JSON', Buffer.from('hello, world'), ErrorCodes.DECODE_FAILED],
    ['a JSON array', bytes([1, 2]), ErrorCodes.DECODE_FAILED],
    ['framed Avro without a registry', Buffer.from([0, 0, 0, 0, 7, 2, 4]), ErrorCodes.REGISTRY_NOT_CONFIGURED],
  ])('rejects %s', async (_name, value, code) => {
    const r = await decodeTrigger(value);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.code).toBe(code);
  });

  it('names the missing run id and org id with Port’s field paths', async () => {
    const noRun = samplePortMessage();
    delete (noRun.context as Record<string, unknown>).runId;
    const r1 = await decodeTrigger(bytes(noRun));
    expect(r1.ok).toBe(false);
    if (!r1.ok) {
      expect(r1.error.code).toBe(ErrorCodes.MISSING_RUN_ID);
      expect(r1.error.message).toContain('context.runId');
    }
    const noOrg = samplePortMessage({ runId: 'r_3' });
    delete ((noOrg.trigger as Record<string, Record<string, unknown>>).by as Record<string, unknown>).orgId;
    const r2 = await decodeTrigger(bytes(noOrg));
    expect(r2.ok).toBe(false);
    if (!r2.ok) {
      expect(r2.error.code).toBe(ErrorCodes.MISSING_ORG_ID);
      expect(r2.identity.runId).toBe('r_3');
    }
  });

  it('reports schema violations with the field path, keeping what identity it can', async () => {
    const msg = samplePortMessage({ runId: 'r_4', invocationMethod: { type: 42 } as never });
    const r = await decodeTrigger(bytes(msg));
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.error.code).toBe(ErrorCodes.SCHEMA_INVALID);
    expect(r.error.message).toContain('payload.action.invocationMethod.type');
    expect(r.identity).toEqual({ runId: 'r_4', orgId: 'org_demo', action: 'deploy_service' });
  });

  it('rejects free-form fields that are not JSON objects', async () => {
    const msg = samplePortMessage({ runId: 'r_5' });
    (msg.payload as Record<string, unknown>).properties = 'a string';
    const r = await decodeTrigger(bytes(msg));
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe(ErrorCodes.SCHEMA_INVALID);
      expect(r.error.message).toContain('payload.properties');
    }
  });

  it('rejects a missing trigger time', async () => {
    const msg = samplePortMessage({ runId: 'r_6' });
    delete (msg.trigger as Record<string, unknown>).at;
    const r = await decodeTrigger(bytes(msg));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error.message).toContain('trigger.at');
  });
});
