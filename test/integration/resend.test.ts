import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KafkaMessage } from 'kafkajs';
import type { App } from '../../src/app';
import { WebhookReceiver } from '../../src/dev/webhook-receiver';
import { samplePortMessage } from '../../src/sample';
import { ApiClient, CLIENTS, ClientId, apiEnv } from '../helpers/api';
import { tempDir } from '../helpers/cleanup';
import { clientCli } from '../helpers/processes';
import { TestKafka, TestTopics, eventually, startApp, testConfig, testTopics } from '../helpers/kafka';

const SECRET = 'resend-signing-secret';
const notify = (hook: string) => ({
  identifier: 'notify_team',
  trigger: 'CREATE',
  userInputs: { properties: { message: { type: 'string', maxLength: 20 } }, required: ['message'] },
  invocationMethod: { type: 'WEBHOOK', url: hook, synchronized: true },
});

/** Re-sending dead letters: once, with their original bytes, after the catalog was fixed; who may; what the view shows. */
describe('re-sending dead letters', () => {
  const k = new TestKafka();
  const webhook = new WebhookReceiver(SECRET);
  let topics: TestTopics;
  let app: App;
  let api: ApiClient;
  let catalog: string;
  const env = () => apiEnv({ ACTIONS_PATH: catalog, SIGNING_SECRET: SECRET, WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' });
  const event = (runId: string, action: string, message: string) =>
    JSON.stringify(samplePortMessage({ runId, orgId: 'org_acme', action, trigger: 'CREATE', properties: { message }, invocationMethod: { type: 'WEBHOOK', url: 'http://ignored.invalid' } }));
  const resend = async (client: ClientId, body: unknown) => api.call('POST', '/console/api/dead-letters/resend', { token: await api.token(client), body });
  const letterOf = (runId: string) => app.runs!.deadLetters.list({ limit: 100 }).filter((d) => d.runId === runId);

  beforeAll(async () => {
    await webhook.start();
    topics = testTopics();
    catalog = join(tempDir('resend-catalog-'), 'actions.json');
    // The first catalog lacks late_action: its runs are dead-lettered UNKNOWN_ACTION.
    writeFileSync(catalog, JSON.stringify([notify(`${webhook.url}/hook`)]));
    app = await startApp(testConfig(topics, env()));
    api = await ApiClient.start(app);
  });
  afterAll(async () => {
    await api.close();
    await app.stop();
    await k.close();
    await webhook.close();
  });

  it('after the catalog is fixed, an org admin re-sends a letter once: its run reopens, is routed with the original bytes, and ends SUCCESS', async () => {
    const original = event('r_late0001', 'late_action', 'hello');
    await k.produce(topics.trigger, [{ key: 'r_late0001', value: original, headers: { 'x-producer': 'portal' } }]);
    await eventually(() => app.runs!.store.getRun('r_late0001')?.status === 'FAILURE' && letterOf('r_late0001').length === 1, 'dead-lettered and FAILURE');
    expect(letterOf('r_late0001')[0]!.reason).toBe('UNKNOWN_ACTION');

    // Fix the catalog and restart (the same topics and group; a new store rebuilds from the topics).
    writeFileSync(catalog, JSON.stringify([notify(`${webhook.url}/hook`), { ...notify(`${webhook.url}/hook`), identifier: 'late_action' }]));
    await api.close();
    await app.stop();
    app = await startApp(testConfig(topics, env()));
    api = await ApiClient.start(app);
    await eventually(() => letterOf('r_late0001').length === 1 && app.runs!.store.getRun('r_late0001')?.status === 'FAILURE', 'the store rebuilt');
    const letter = letterOf('r_late0001')[0]!;
    const id = `${letter.partition}/${letter.offset}`;

    // Who may: not a member, not another org (it does not see the letter), an admin of the letter's org.
    expect((await resend('acme-ci', { letter: id })).status).toBe(403);
    expect((await resend('globex-ci', { letter: id })).status).toBe(404);
    expect((await resend('acme-admin', { seq: letter.seq, letter: id })).status).toBe(422);
    const res = await resend('acme-admin', { letter: id });
    expect(res.status).toBe(200);
    expect(res.body.results).toEqual([expect.objectContaining({ letter: id, runId: 'r_late0001', outcome: 'resent' })]);

    await eventually(() => app.runs!.store.getRun('r_late0001')?.status === 'SUCCESS', 'the reopened run ends SUCCESS');
    expect(webhook.received.filter((r) => r.runId === 'r_late0001')).toHaveLength(1);
    const logs = app.runs!.store.logs('r_late0001', 50, 0).map((l) => l.message);
    expect(logs).toContainEqual(`Re-sent from dead letter ${id} (UNKNOWN_ACTION) by acme-admin`);
    const view = await api.call('GET', '/v1/actions/runs/r_late0001', { token: await api.token('acme-admin') });
    expect(view.body.run).toMatchObject({ status: 'SUCCESS', resentFrom: id });

    // The re-sent event is the original bytes, with the original headers and where it came from.
    const resent = (await k.collect(topics.trigger, (ms) => ms.filter((m) => m.key?.toString() === 'r_late0001').length >= 2)).filter((m) => m.key?.toString() === 'r_late0001');
    expect(resent[1]!.value!.equals(Buffer.from(original))).toBe(true);
    expect(resent[1]!.headers!['x-producer']!.toString()).toBe('portal');
    expect(resent[1]!.headers!['x-action-router-resent-from']!.toString()).toBe(`${topics.dlq}/${id}`);
    expect(Object.keys(resent[1]!.headers!).some((h) => h.startsWith('x-dlq-'))).toBe(false);

    // Again: the run did not end FAILURE, so nothing is sent.
    const again = await resend('operator', { letter: id });
    expect(again.body.results).toEqual([expect.objectContaining({ outcome: 'not-reopened' })]);
    // The letter's view says what became of it.
    const shown = await api.call('GET', `/console/api/dead-letters/${letter.seq}`, { token: await api.token('acme-admin') });
    expect(shown.body.letter).toMatchObject({ resent: { runStatus: 'SUCCESS' }, canResend: true });
    await eventually(() => k.committedAll(topics.group, topics.trigger), 'everything routed');
    const all = await k.collect(topics.trigger, (ms) => ms.length >= 2);
    expect(all.filter((m: KafkaMessage) => m.key?.toString() === 'r_late0001')).toHaveLength(2);
  });

  it('all letters of a reason: one run is re-sent once (its newest letter), a letter dead-lettered again names where it came from, and the CLI re-sends one', async () => {
    const tooLong = 'x'.repeat(30);
    await k.produce(topics.trigger, [
      { key: 'r_bulk0001', value: event('r_bulk0001', 'notify_team', tooLong) },
      { key: 'r_bulk0001', value: event('r_bulk0001', 'notify_team', `${tooLong}!`) },
      { key: 'r_bulk0002', value: event('r_bulk0002', 'notify_team', tooLong) },
    ]);
    await eventually(() => letterOf('r_bulk0001').length === 2 && letterOf('r_bulk0002').length === 1, 'three letters');
    // Not an admin: refused for a whole reason.
    expect((await resend('acme-ci', { reason: 'INPUT_INVALID' })).status).toBe(403);
    const res = await resend('operator', { reason: 'INPUT_INVALID' });
    const outcomes = (res.body.results as { runId: string; outcome: string }[]).map((r) => `${r.runId}:${r.outcome}`).sort();
    expect(outcomes).toEqual(['r_bulk0001:duplicate', 'r_bulk0001:resent', 'r_bulk0002:resent']);
    // Still invalid: dead-lettered again, each new letter naming the one it came from.
    await eventually(() => letterOf('r_bulk0001').length === 3 && letterOf('r_bulk0002').length === 2, 'dead-lettered again');
    const newest = letterOf('r_bulk0002')[0]!;
    const first = letterOf('r_bulk0002')[1]!;
    const list = await api.call('GET', '/console/api/dead-letters?reason=INPUT_INVALID', { token: await api.token('acme-admin') });
    const shown = (list.body.letters as { seq: number; resentFrom: string | null }[]).find((d) => d.seq === newest.seq)!;
    expect(shown.resentFrom).toBe(`${topics.dlq}/${first.partition}/${first.offset}`);
    await eventually(() => app.runs!.store.getRun('r_bulk0002')?.status === 'FAILURE', 'FAILURE again');

    const cli = await clientCli(api.base, 'operator', CLIENTS.operator.secret, 'dead-letters', 'resend', `${newest.partition}/${newest.offset}`, '--json');
    expect([cli.code, cli.err]).toEqual([0, '']);
    expect(JSON.parse(cli.out)).toEqual([expect.objectContaining({ runId: 'r_bulk0002', outcome: 'resent' })]);
    const usage = await clientCli(api.base, 'operator', CLIENTS.operator.secret, 'dead-letters', 'resend', 'seven');
    expect([usage.code, usage.err]).toEqual([1, expect.stringContaining('PARTITION/OFFSET')]);
  });
});
