import { decodeTrigger } from '../../src/codec/decode';
import { actionRunType } from '../../src/codec/avro';
import { runToRecord, toPortMessage } from '../../src/codec/port-message';
import { samplePortMessage } from '../../src/sample';

describe('Port run message', () => {
  it('round-trips: what a backend receives is what Port would publish, key order included', async () => {
    const original = samplePortMessage({ runId: 'r_rt', invocationMethod: { type: 'KAFKA' } });
    const r = await decodeTrigger(Buffer.from(JSON.stringify(original)));
    if (!r.ok) throw new Error(r.error.message);
    expect(JSON.stringify(toPortMessage(r.run))).toBe(JSON.stringify(original));
  });

  it('keeps a CREATE run’s null entity', async () => {
    const original = samplePortMessage({ runId: 'r_c', trigger: 'CREATE' });
    const r = await decodeTrigger(Buffer.from(JSON.stringify(original)));
    if (!r.ok) throw new Error(r.error.message);
    expect(r.run.entity).toBeNull();
    expect(JSON.stringify(toPortMessage(r.run))).toBe(JSON.stringify(original));
  });

  it('maps a run to a valid Avro record and back through binary Avro', async () => {
    const r = await decodeTrigger(Buffer.from(JSON.stringify(samplePortMessage({ runId: 'r_avro' }))));
    if (!r.ok) throw new Error(r.error.message);
    const record = runToRecord(r.run);
    expect(actionRunType.isValid(record)).toBe(true);
    const back = actionRunType.fromBuffer(actionRunType.toBuffer(record));
    expect(JSON.parse(back.properties)).toEqual(r.run.properties);
    expect(back.runId).toBe('r_avro');
  });
});
