import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { App } from '../../src/app';
import { actionRunSchema } from '../../src/codec/avro';
import { runToRecord } from '../../src/codec/port-message';
import { decodeTrigger } from '../../src/codec/decode';
import { FakeSchemaRegistry } from '../../src/dev/fake-registry';
import type { RunStatusUpdate } from '../../src/model/status';
import { samplePortMessage } from '../../src/sample';
import { TestKafka, json, startApp, testConfig, testTopics } from '../helpers/kafka';

describe('schema-registry mode', () => {
  const k = new TestKafka();
  const registry = new FakeSchemaRegistry();
  let app: App;
  const topics = testTopics();
  beforeAll(async () => {
    await registry.start();
    app = await startApp(testConfig(topics, { SCHEMA_REGISTRY_URL: registry.url }));
  });
  afterAll(async () => {
    await app.stop();
    await registry.close();
    await k.close();
  });

  it('decodes Confluent-framed Avro triggers and writes framed Avro status updates', async () => {
    const client = new SchemaRegistry({ host: registry.url });
    const { id } = await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(actionRunSchema) }, { subject: `${topics.trigger}-value` });
    const decoded = await decodeTrigger(Buffer.from(JSON.stringify(samplePortMessage({ runId: 'r_avro', orgId: 'org_avro' }))));
    if (!decoded.ok) throw new Error(decoded.error.message);
    const framed = await client.encode(id, runToRecord(decoded.run));
    expect(framed[0]).toBe(0);
    await k.produce(topics.trigger, [
      { key: 'r_avro', value: framed },
      // JSON is still accepted in registry mode.
      { key: 'r_json', value: JSON.stringify(samplePortMessage({ runId: 'r_json', orgId: 'org_avro' })) },
      // A framed message whose schema id the registry does not know.
      { key: 'r_unknown_id', value: Buffer.from([0, 0, 0, 3, 231, 1, 2, 3]) },
    ]);

    const routed = await k.collect(topics.orgTemplate.replace('{orgId}', 'org_avro'), (ms) => ms.length >= 2);
    expect(routed.map((m) => m.key!.toString()).sort()).toEqual(['r_avro', 'r_json']);
    expect(json(routed.find((m) => m.key!.toString() === 'r_avro')!)).toMatchObject({ context: { runId: 'r_avro' }, resourceType: 'run' });

    const statuses = await k.collect(topics.status, (ms) => ms.length >= 2);
    for (const m of statuses) {
      expect(m.value![0]).toBe(0);
      const update = (await client.decode(m.value!)) as RunStatusUpdate;
      expect(update).toMatchObject({ status: 'IN_PROGRESS', invocationType: 'KAFKA', orgId: 'org_avro' });
    }
    // TopicNameStrategy subject, registered with an explicit compatibility level.
    expect(registry.stored.map((s) => s.subject)).toContain(`${topics.status}-value`);
    expect(registry.compatibility.get(`${topics.status}-value`)).toBe('BACKWARD');

    const [dead] = await k.collect(topics.dlq, (ms) => ms.length >= 1);
    expect(dead!.headers!['x-dlq-reason']!.toString()).toBe('DECODE_FAILED');
  });
});
