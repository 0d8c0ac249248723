import { existsSync } from 'node:fs';
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import type { App } from '../../src/app';
import { actionRunSchema, statusUpdateSchema } from '../../src/codec/avro';
import { runToRecord } from '../../src/codec/port-message';
import { decodeTrigger } from '../../src/codec/decode';
import type { RunStatusUpdate } from '../../src/model/status';
import { samplePortMessage } from '../../src/sample';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient, apiEnv } from '../helpers/api';
import { tempDir } from '../helpers/cleanup';
import { TestKafka, TestTopics, eventually, json, startApp, testConfig, testTopics } from '../helpers/kafka';
import { APICURIO, RegistryProxy, TestRegistry, startRegistry } from '../helpers/registry';

/**
 * Registry mode against a real Confluent-compatible registry (Apicurio
 * 3.0.9 from ../shared/tools/apicurio; the local fake where that is missing).
 */
/** A counter's total over its labels. */
const total = async (counter: { get(): Promise<{ values: { value: number }[] }> }) => (await counter.get()).values.reduce((n, v) => n + v.value, 0);

/** The status schema without some of its fields (earlier versions were the current one less the fields added since). */
function statusSchemaWithout(names: string[]): object {
  const current = statusUpdateSchema as { fields: { name: string }[] };
  return { ...current, fields: current.fields.filter((f) => !names.includes(f.name)) };
}

/** The first RunStatusUpdate version: the current one less every field added since. */
const firstStatusSchema = () => statusSchemaWithout(['actor', 'response', 'run', 'claim', 'statusDetail', 'approval', 'resentFrom']);

/**
 * Refusals (409 on an incompatible schema, a subject level that refuses the router's schema) and freezing the
 * registry's process need the real registry; the local fake only serves and stores schemas. Without
 * ../shared/tools/apicurio those tests are skipped, and say so.
 */
const REAL_REGISTRY = existsSync(APICURIO);
const onlyReal = REAL_REGISTRY ? it : it.skip;
if (!REAL_REGISTRY) process.stdout.write(`[registry] SKIPPING 4 tests that need a real registry: ${APICURIO} not found\n`);

describe('schema-registry mode', () => {
  const k = new TestKafka();
  let registry: TestRegistry;
  let client: SchemaRegistry;
  const apps: App[] = [];
  beforeAll(async () => {
    registry = await startRegistry();
    client = new SchemaRegistry({ host: registry.url });
  }, 600_000);
  afterAll(async () => {
    await registry.stop();
    await k.close();
  });
  afterEach(async () => {
    while (apps.length) await apps.pop()!.stop();
  });

  async function start(topics: TestTopics, env: Record<string, string> = {}): Promise<App> {
    const app = await startApp(testConfig(topics, { SCHEMA_REGISTRY_URL: registry.url, SCHEMA_REGISTRY_TIMEOUT_MS: '1000', ...env }));
    apps.push(app);
    return app;
  }

  /** A framed Avro trigger of `runId` under the trigger subject's schema `id`. */
  async function framed(id: number, runId: string, orgId = 'org_avro'): Promise<Buffer> {
    const decoded = await decodeTrigger(Buffer.from(JSON.stringify(samplePortMessage({ runId, orgId }))));
    if (!decoded.ok) throw new Error(decoded.error.message);
    return client.encode(id, runToRecord(decoded.run));
  }

  async function registerTrigger(topics: TestTopics, schema: object = actionRunSchema as object): Promise<number> {
    return (await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(schema) }, { subject: `${topics.trigger}-value` })).id;
  }

  const statuses = async (topics: TestTopics, n: number): Promise<RunStatusUpdate[]> => {
    const messages = await k.collect(topics.status, (ms) => ms.length >= n);
    return Promise.all(messages.map(async (m) => (m.value![0] === 0 ? ((await client.decode(m.value!)) as RunStatusUpdate) : json<RunStatusUpdate>(m))));
  };

  it('routes framed Avro triggers, writes framed Avro status updates; the trigger schema registers', async () => {
    const topics = testTopics();
    const app = await start(topics);
    // Producers register the trigger schema first (it has no "{}" defaults any more).
    const id = await registerTrigger(topics);
    await k.produce(topics.trigger, [
      { key: 'r_avro', value: await framed(id, 'r_avro') },
      { key: 'r_json', value: JSON.stringify(samplePortMessage({ runId: 'r_json', orgId: 'org_avro' })) },
    ]);
    const routed = await k.collect(topics.orgTemplate.replace('{orgId}', 'org_avro'), (ms) => ms.length >= 2);
    expect(routed.map((m) => m.key!.toString()).sort()).toEqual(['r_avro', 'r_json']);
    const updates = await statuses(topics, 2);
    expect(updates.map((u) => [u.runId, u.status])).toEqual(expect.arrayContaining([['r_avro', 'IN_PROGRESS'], ['r_json', 'IN_PROGRESS']]));
    const raw = await k.collect(topics.status, (ms) => ms.length >= 1);
    expect(raw[0]!.value![0]).toBe(0);
    // The router's store reads the Avro status topic too.
    await eventually(() => app.runs!.store.getRun('r_avro')?.blueprint === 'service', 'the store applied the Avro update');
  });

  it('an action executed through the API is written as framed Avro under the trigger subject, and routed', async () => {
    const topics = testTopics();
    const dir = tempDir('registry-execute-');
    writeFileSync(join(dir, 'actions.json'), JSON.stringify([{ identifier: 'create_repo', trigger: 'CREATE', userInputs: { properties: { name: { type: 'string' } } }, invocationMethod: { type: 'KAFKA' } }]));
    const app = await start(topics, apiEnv({ ACTIONS_PATH: join(dir, 'actions.json') }));
    await registerTrigger(topics);
    const api = await ApiClient.start(app);
    try {
      const res = await api.as('acme-ci', 'POST', '/v1/actions/create_repo/runs', { properties: { name: 'svc-avro' } });
      expect(res.status).toBe(202);
      const id = (res.body.run as { id: string }).id;
      const [trigger] = await k.collect(topics.trigger, (ms) => ms.length >= 1);
      expect(trigger!.value![0]).toBe(0);
      expect(await client.decode(trigger!.value!)).toMatchObject({ runId: id, orgId: 'org_acme', action: 'create_repo', origin: 'API', properties: '{"name":"svc-avro"}' });
      const routed = await k.collect(topics.orgTemplate.replace('{orgId}', 'org_acme'), (ms) => ms.some((m) => m.key?.toString() === id));
      expect(routed.map((m) => m.key!.toString())).toContain(id);
    } finally {
      await api.close();
    }
  });

  it('an existing status subject keeps its level; the router registers its version there', async () => {
    const topics = testTopics();
    const subject = `${topics.status}-value`;
    // The first RunStatusUpdate version, registered by someone else.
    const first = firstStatusSchema();
    await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(first) }, { subject, compatibility: 'NONE' as never }).catch(async () =>
      client.register({ type: SchemaType.AVRO, schema: JSON.stringify(first) }, { subject }),
    );
    await start(topics);
    await k.produce(topics.trigger, [{ key: 'r_pre', value: JSON.stringify(samplePortMessage({ runId: 'r_pre' })) }]);
    const [u] = await statuses(topics, 1);
    expect(u).toMatchObject({ runId: 'r_pre', status: 'IN_PROGRESS' });
  });

  it('a registry that refuses connections is waited for: 0 lost, 0 dead-lettered', async () => {
    const topics = testTopics();
    const proxy = new RegistryProxy(registry.url);
    await proxy.up();
    const app = await start(topics, { SCHEMA_REGISTRY_URL: proxy.url });
    const id = await registerTrigger(topics);
    await proxy.down();
    const N = 20;
    await k.produce(topics.trigger, await Promise.all(Array.from({ length: N }, async (_, i) => ({ key: `r_down_${i}`, value: await framed(id, `r_down_${i}`) }))));
    // The router cannot decode while the registry is unreachable: every trigger taken in, none routed or dead-lettered.
    await eventually(async () => (await total(app.metrics.received)) >= N && (await total(app.metrics.intakeRetries)) >= 1, 'every trigger taken in, decoding retried');
    expect((await app.metrics.deadLettered.get()).values.reduce((n, v) => n + v.value, 0)).toBe(0);
    expect(app.runs!.store.getRun('r_down_0')).toBeUndefined();
    await proxy.up();
    const routed = await k.collect(topics.orgTemplate.replace('{orgId}', 'org_avro'), (ms) => ms.length >= N, 60_000);
    expect(new Set(routed.map((m) => m.key!.toString())).size).toBe(N);
    await eventually(() => k.committedAll(topics.group, topics.trigger), 'every outcome acknowledged');
    expect(await k.messageCount(topics.dlq)).toBe(0);
    await proxy.down();
  }, 120_000);

  onlyReal('a frozen registry (SIGSTOP) times out and is waited for; SIGCONT and every run is routed', async () => {
    const topics = testTopics();
    const app = await start(topics);
    const id = await registerTrigger(topics);
    process.kill(registry.pid!, 'SIGSTOP');
    try {
      await k.produce(topics.trigger, [{ key: 'r_frozen', value: await framed(id, 'r_frozen') }]);
      // Its decode timed out against the frozen registry (SCHEMA_REGISTRY_TIMEOUT_MS=1000) and is tried again.
      await eventually(async () => (await total(app.metrics.intakeRetries)) >= 1, 'a decode timed out and is retried');
      expect(app.runs!.store.getRun('r_frozen')).toBeUndefined();
    } finally {
      process.kill(registry.pid!, 'SIGCONT');
    }
    const routed = await k.collect(topics.orgTemplate.replace('{orgId}', 'org_avro'), (ms) => ms.length >= 1, 60_000);
    expect(routed.map((m) => m.key!.toString())).toEqual(['r_frozen']);
    await eventually(() => k.committedAll(topics.group, topics.trigger), 'every outcome acknowledged');
    expect(await k.messageCount(topics.dlq)).toBe(0);
  }, 120_000);

  it('undecodable framed Avro (unknown id, trailing bytes) is dead-lettered at once, with FAILURE for the key', async () => {
    const topics = testTopics();
    await start(topics);
    const id = await registerTrigger(topics);
    const good = await framed(id, 'r_trailing');
    await k.produce(topics.trigger, [
      { key: 'r_unknown_id', value: Buffer.from([0, 0, 0x0f, 0x42, 0x3f, 1, 2, 3]) },
      { key: 'r_trailing', value: Buffer.concat([good, Buffer.from([7, 7, 7])]) },
      { key: 'r_after', value: JSON.stringify(samplePortMessage({ runId: 'r_after', orgId: 'org_avro' })) },
    ]);
    const dead = await k.collect(topics.dlq, (ms) => ms.length >= 2, 30_000);
    expect(dead.map((m) => [m.key!.toString(), m.headers!['x-dlq-reason']!.toString()]).sort()).toEqual([
      ['r_trailing', 'DECODE_FAILED'],
      ['r_unknown_id', 'DECODE_FAILED'],
    ]);
    const updates = await statuses(topics, 3);
    const failures = updates.filter((u) => u.status === 'FAILURE').map((u) => u.runId).sort();
    expect(failures).toEqual(['r_trailing', 'r_unknown_id']);
    // Nothing blocks the partition: the run after them is routed.
    expect(updates.some((u) => u.runId === 'r_after')).toBe(true);
  });

  it('schema evolution: a newer compatible writer schema is decoded', async () => {
    const topics = testTopics();
    await start(topics);
    await registerTrigger(topics);
    const evolved = { ...(actionRunSchema as object), fields: [...(actionRunSchema as { fields: object[] }).fields, { name: 'priority', type: ['null', 'string'], default: null }] };
    const id2 = await registerTrigger(topics, evolved);
    const decoded = await decodeTrigger(Buffer.from(JSON.stringify(samplePortMessage({ runId: 'r_v2', orgId: 'org_avro' }))));
    if (!decoded.ok) throw new Error(decoded.error.message);
    const value = await client.encode(id2, { ...runToRecord(decoded.run), priority: 'high' });
    await k.produce(topics.trigger, [{ key: 'r_v2', value }]);
    const routed = await k.collect(topics.orgTemplate.replace('{orgId}', 'org_avro'), (ms) => ms.length >= 1);
    expect(json(routed[0]!)).toMatchObject({ context: { runId: 'r_v2' } });
  });

  it('SCHEMA_REGISTRY_AUTO_REGISTER=false: uses the pre-registered subject, refuses to start without one', async () => {
    const missing = testTopics();
    await expect(start(missing, { SCHEMA_REGISTRY_AUTO_REGISTER: 'false' })).rejects.toThrow(/SCHEMA_REGISTRY_URL: .*subject .*-value/);
    const topics = testTopics();
    const subject = `${topics.status}-value`;
    await client.register({ type: SchemaType.AVRO, schema: JSON.stringify(statusUpdateSchema) }, { subject });
    const before = await (await fetch(`${registry.url}/subjects/${subject}/versions`)).json();
    await start(topics, { SCHEMA_REGISTRY_AUTO_REGISTER: 'false' });
    await k.produce(topics.trigger, [{ key: 'r_noreg', value: JSON.stringify(samplePortMessage({ runId: 'r_noreg' })) }]);
    const [u] = await statuses(topics, 1);
    expect(u).toMatchObject({ runId: 'r_noreg', status: 'IN_PROGRESS' });
    expect(await (await fetch(`${registry.url}/subjects/${subject}/versions`)).json()).toEqual(before);
  });

  onlyReal("the status schema's approval fields are compatible both ways with every earlier version (FULL_TRANSITIVE); new enum symbols would not be", async () => {
    const subject = `compat-${testTopics().status}-value`;
    const current = statusUpdateSchema as object;
    const first = firstStatusSchema();
    const store = statusSchemaWithout(['statusDetail', 'approval']);
    const put = (body: object) => fetch(`${registry.url}/config/${subject}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const register = async (schema: object) =>
      fetch(`${registry.url}/subjects/${subject}/versions`, { method: 'POST', headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' }, body: JSON.stringify({ schema: JSON.stringify(schema) }) });
    expect((await register(first)).status).toBe(200);
    expect((await put({ compatibility: 'FULL_TRANSITIVE' })).status).toBe(200);
    expect((await register(store)).status).toBe(200);
    expect((await register(current)).status).toBe(200);
    // Adding the statuses as enum symbols instead: a reader of an earlier schema could not read them.
    const withSymbols = JSON.parse(JSON.stringify(store)) as { fields: { name: string; type: { symbols?: string[] } }[] };
    withSymbols.fields.find((f) => f.name === 'status')!.type.symbols!.push('WAITING_FOR_APPROVAL', 'DECLINED');
    expect((await register(withSymbols)).status).toBe(409);
    // And a reader on the first schema reads a DECLINED update as what it knows: FAILURE.
    const avro = (await import('avsc')).default;
    const writer = avro.Type.forSchema(current as never, { wrapUnions: false });
    const reader = avro.Type.forSchema(first as never, { wrapUnions: false });
    const update = { runId: 'r_declined1', orgId: 'o', action: 'a', status: 'FAILURE', statusLabel: 'declined', summary: null, links: [], externalRunId: null, log: null, invocationType: null, source: 'BACKEND', attempt: 1, at: Date.now(), actor: 'lead', response: null, run: null, claim: null, statusDetail: 'DECLINED', approval: { event: 'DECLINED', by: 'lead', description: null, type: null, approvers: [], parked: null } };
    const read = reader.fromBuffer(writer.toBuffer(update), reader.createResolver(writer)) as { status: string; statusLabel: string };
    expect(read).toMatchObject({ status: 'FAILURE', statusLabel: 'declined' });
  });

  onlyReal('a status schema the registry refuses is a configuration error at start', async () => {
    const topics = testTopics();
    const subject = `${topics.status}-value`;
    // A subject whose owners set FULL and registered an unrelated record.
    await client.register(
      { type: SchemaType.AVRO, schema: JSON.stringify({ type: 'record', name: 'Other', fields: [{ name: 'x', type: 'int' }] }) },
      { subject, compatibility: 'FULL' as never },
    ).catch(() => undefined);
    await fetch(`${registry.url}/config/${subject}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ compatibility: 'FULL' }) });
    await expect(start(topics)).rejects.toThrow(/SCHEMA_REGISTRY_URL: schema registry: subject/);
  });

  it('status writes that wait for the registry turn readiness false, then true', async () => {
    const topics = testTopics();
    const proxy = new RegistryProxy(registry.url);
    await proxy.up();
    await proxy.down();
    // Started with the registry unreachable: the status subject is not registered yet.
    const app = await start(topics, { SCHEMA_REGISTRY_URL: proxy.url });
    await k.produce(topics.trigger, [{ key: 'r_ready', value: JSON.stringify(samplePortMessage({ runId: 'r_ready' })) }]);
    await eventually(() => !app.ready, 'readiness false while status writes fail', 20_000);
    await proxy.up();
    await eventually(() => app.ready, 'readiness back', 30_000);
    const [u] = await statuses(topics, 1);
    expect(u).toMatchObject({ runId: 'r_ready' });
    await proxy.down();
  }, 90_000);

  onlyReal('status updates the registry refuses: each run is dead-lettered STATUS_REJECTED, the partition moves on', async () => {
    const topics = testTopics();
    const proxy = new RegistryProxy(registry.url);
    await proxy.up();
    await proxy.down();
    // Started while the registry is away: the status subject is registered lazily...
    const app = await start(topics, { SCHEMA_REGISTRY_URL: proxy.url, TOPICS_PARTITIONS: '1' });
    // ...and meanwhile its owners made it refuse what the router writes.
    const subject = `${topics.status}-value`;
    await client.register({ type: SchemaType.AVRO, schema: JSON.stringify({ type: 'record', name: 'Other', fields: [{ name: 'x', type: 'int' }] }) }, { subject });
    await fetch(`${registry.url}/config/${subject}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ compatibility: 'FULL' }) });
    await k.produce(topics.trigger, ['r_ref_1', 'r_ref_2', 'r_ref_3'].map((runId) => ({ key: runId, value: JSON.stringify(samplePortMessage({ runId })) })));
    await proxy.up();
    const dead = await k.collect(topics.dlq, (ms) => ms.length >= 3, 60_000);
    expect(dead.map((m) => [m.key!.toString(), m.headers!['x-dlq-reason']!.toString()]).sort()).toEqual([
      ['r_ref_1', 'STATUS_REJECTED'],
      ['r_ref_2', 'STATUS_REJECTED'],
      ['r_ref_3', 'STATUS_REJECTED'],
    ]);
    expect((await app.metrics.statusDropped.get()).values.reduce((n, v) => n + v.value, 0)).toBeGreaterThanOrEqual(3);
    const admin = k.kafka.admin();
    await admin.connect();
    try {
      await eventually(async () => {
        const [end] = await admin.fetchTopicOffsets(topics.trigger);
        const [committed] = await admin.fetchOffsets({ groupId: topics.group, topics: [topics.trigger] });
        return committed!.partitions[0]!.offset === end!.high;
      }, 'the committed offset reaches the end', 30_000);
    } finally {
      await admin.disconnect();
      await proxy.down();
    }
  }, 120_000);
});
