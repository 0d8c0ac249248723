import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebhookReceiver } from '../../src/dev/webhook-receiver';
import { tempDir } from '../helpers/cleanup';
import { TestKafka, TestTopics, testTopics, topicEnv } from '../helpers/kafka';
import { RunStatuses, crashAndRestart, expectNoRepeat, headOfLine, recordCalls } from '../helpers/no-repeat';
import { spawnAgent } from '../helpers/processes';

const ORG = 'org_agent_once';
const PARTITIONS = 4;
/** How long the backend holds the one slow run of each partition: the kill comes while they are held. */
const HOLD_MS = 10_000;

/**
 * No run invoked twice, in agent mode: `action-router agent` keeps the
 * router's rule for its own calls, in its call ledger (a file in DATA_DIR).
 * The scenario of no-repeat.test.ts on the org topic: one slow run at the
 * head of each partition holds back its commit while hundreds behind it
 * finish; the agent is killed (SIGKILL) while the slow ones are held, then
 * started again with the same data directory. Only the runs whose call was
 * under way at the kill may be called again.
 */
describe('no run invoked twice by an agent', () => {
  const k = new TestKafka();
  // The org topic's messages are not signed here (no SIGNING_SECRET): the agent checks nothing and signs nothing.
  const receiver = new WebhookReceiver();
  let topics: TestTopics;
  let orgTopic: string;
  let statuses: RunStatuses;
  beforeAll(() => receiver.start());
  afterAll(async () => {
    await receiver.close();
    await k.close();
  });
  beforeEach(async () => {
    topics = testTopics();
    orgTopic = topics.orgTemplate.replace('{orgId}', ORG);
    await k.createTopic(orgTopic, PARTITIONS);
    await k.createTopic(topics.status, PARTITIONS);
    statuses = await RunStatuses.follow(k, topics.status);
  });

  /** Both agents' environment: one data directory (the ledger outlives the kill), a mapping that sends the run id as Idempotency-Key. */
  function env(): Record<string, string> {
    const dir = tempDir('agent-no-repeat-');
    const mapping = join(dir, 'mapping.json');
    // Port's agent sends no idempotency header by default; a mapping adds one (README, Delivery guarantees).
    writeFileSync(mapping, JSON.stringify([{ enabled: true, headers: { 'Idempotency-Key': '.context.runId' } }]));
    return {
      ...topicEnv(topics),
      TOPICS_PARTITIONS: String(PARTITIONS),
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      WEBHOOK_TIMEOUT_MS: String(HOLD_MS * 2),
      CONTROL_THE_PAYLOAD_CONFIG_PATH: mapping,
      DATA_DIR: join(dir, 'data'),
      ROUTER_COMMIT_INTERVAL_MS: '50',
      ROUTER_SESSION_TIMEOUT_MS: '6000',
      ROUTER_SHUTDOWN_GRACE_MS: '2000',
    };
  }

  it('WEBHOOK: after kill -9, no run answered before the kill is called again; repeats are the calls under way, with the same Idempotency-Key', async () => {
    const path = `/agent-once-${topics.group}`;
    const calls = recordCalls(receiver, path);
    const N = 400;
    const { messages, slowIds, quickIds } = headOfLine(
      { partitions: PARTITIONS, orgId: ORG },
      (p) => [`r_${topics.group}_slow${p}`, { type: 'WEBHOOK', agent: true, url: `${receiver.url}${path}?delay=${HOLD_MS}`, synchronized: true }],
      (i) => [`r_${topics.group}_${i}`, { type: 'WEBHOOK', agent: true, url: `${receiver.url}${path}?delay=5`, synchronized: true }],
      N,
    );
    await k.produce(orgTopic, messages);
    const agentEnv = env();
    // Killed once the quick runs were answered and ended while the slow ones are held.
    const killAt = await crashAndRestart(
      (name) => spawnAgent(ORG, agentEnv, name),
      'agent-once',
      () => statuses.ended(quickIds) && slowIds.every((id) => calls.has(id)),
      1_500,
      () => statuses.ended([...quickIds, ...slowIds]),
    );
    const all = [...quickIds, ...slowIds];
    // Every run called; none answered over a second before the kill called again; repeats only the calls under way, with their first key.
    const { answeredEarly, repeated } = expectNoRepeat(calls, { slowIds, quickIds }, killAt, HOLD_MS);
    statuses.expectOneEnd(all);
    for (const id of all) expect({ id, status: statuses.terminal(id)[0]?.status }).toEqual({ id, status: 'SUCCESS' });
    // The ledger is the agent's own: the status topic carries no `call` records from it (the wire is unchanged).
    expect(all.flatMap((id) => statuses.get(id) ?? []).filter((u) => u.call)).toEqual([]);
    process.stdout.write(`agent no-repeat WEBHOOK: ${all.length} runs, ${answeredEarly.length} answered over a second before the kill, ${repeated.length} called again (under way at the kill)\n`);
  }, 180_000);
});
