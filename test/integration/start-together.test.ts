import { ChildProcess, spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tempDir } from '../helpers/cleanup';
import { eventually } from '../helpers/kafka';
import { DedicatedBroker, freePort, startDedicatedBroker, stopDedicatedBroker, stopped } from '../helpers/processes';

const CLI = resolve(__dirname, '..', '..', 'bin', 'action-router.js');

/**
 * A new install in a cluster: every role's pod starts at the same moment, on
 * a broker that has none of the topics yet (nor its offsets topic). Each
 * must create what is missing or wait for the instance creating it, and
 * become ready; none may exit on the race.
 */
describe('a router, an api and an agent started at the same instant on a new broker', () => {
  const children: ChildProcess[] = [];
  const brokers: DedicatedBroker[] = [];
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map((c) => stopped(c)));
    for (const b of brokers) stopDedicatedBroker(b);
  });

  /** One new install: the three roles at once on topics nobody made yet; resolves when all are ready, rejects with the log of one that exited. */
  async function startTogether(round: number): Promise<void> {
    const broker = startDedicatedBroker();
    brokers.push(broker);
    const dir = tempDir('start-together-');
    const prefix = `together-${round}-${Date.now()}`;
    const common = {
      PATH: process.env.PATH ?? '',
      KAFKA_BROKERS: broker.brokers,
      LOG_LEVEL: 'info',
      KAFKA_START_TIMEOUT_MS: '60000',
      TOPICS_PARTITIONS: '3',
      TRIGGER_TOPIC: `${prefix}.triggers`,
      STATUS_TOPIC: `${prefix}.status`,
      DLQ_TOPIC: `${prefix}.dlq`,
      ORG_TOPIC_TEMPLATE: `${prefix}.{orgId}.runs`,
      ROUTER_GROUP_ID: `${prefix}-g`,
      SIGNING_SECRET: 'start-together-signing-secret-0123456789',
    };
    const roles: [string, string[], Record<string, string>][] = [
      ['router', ['start'], { RUNS_DB_PATH: join(dir, 'router.db') }],
      ['api', ['api'], { RUNS_DB_PATH: join(dir, 'api.db') }],
      ['agent', ['agent'], { AGENT_ORG_ID: 'org_together', DATA_DIR: dir }],
    ];
    const ports: number[] = [];
    const started: ChildProcess[] = [];
    for (const [name, args, env] of roles) {
      const port = await freePort();
      ports.push(port);
      const out = openSync(join(dir, `${name}.log`), 'a');
      started.push(spawn(process.execPath, [CLI, ...args], { env: { ...common, ...env, HTTP_PORT: String(port) }, stdio: ['ignore', out, out] }));
    }
    children.push(...started);
    const exits = started.map((c, i) => stopped(c).then((code) => `round ${round}: ${roles[i]![0]} exited ${code}: ${readFileSync(join(dir, `${roles[i]![0]}.log`), 'utf8').slice(-2000)}`));
    const ready = Promise.all(
      ports.map((port, i) =>
        eventually(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.ok === true, `${roles[i]![0]} ready`, 90_000),
      ),
    );
    // Whichever comes first: all ready, or one process gone (its log tail is the failure).
    const exited = Promise.race(exits).then((why) => {
      throw new Error(why);
    });
    await Promise.race([ready, exited]);
    for (const c of started) expect(c.exitCode).toBeNull();
    for (const c of started) c.kill('SIGTERM');
    await Promise.all(started.map((c) => stopped(c)));
    stopDedicatedBroker(brokers.pop()!);
  }

  // The race is one of timing, in a new broker's first seconds: two new
  // installs, each on a broker of its own. Without the wait it was lost
  // rarely here (an api exited 1 in about one install of twenty), so this
  // checks the scenario end to end more than it hunts the race.
  it('all three become ready and none exits, in each of two new installs', async () => {
    for (let round = 1; round <= 2; round++) await startTogether(round);
  }, 240_000);
});
