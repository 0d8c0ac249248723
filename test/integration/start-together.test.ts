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
  let broker: DedicatedBroker;
  const children: ChildProcess[] = [];
  beforeAll(() => {
    broker = startDedicatedBroker();
  }, 120_000);
  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await Promise.all(children.map((c) => stopped(c)));
    stopDedicatedBroker(broker);
  });

  it('all three become ready, and none exits', async () => {
    const dir = tempDir('start-together-');
    const common = {
      PATH: process.env.PATH ?? '',
      KAFKA_BROKERS: broker.brokers,
      LOG_LEVEL: 'info',
      KAFKA_START_TIMEOUT_MS: '60000',
      TOPICS_PARTITIONS: '3',
      SIGNING_SECRET: 'start-together-signing-secret-0123456789',
    };
    const roles: [string, string[], Record<string, string>][] = [
      ['router', ['start'], { RUNS_DB_PATH: join(dir, 'router.db') }],
      ['api', ['api'], { RUNS_DB_PATH: join(dir, 'api.db') }],
      ['agent', ['agent'], { AGENT_ORG_ID: 'org_together' }],
    ];
    const ports: number[] = [];
    for (const [name, args, env] of roles) {
      const port = await freePort();
      ports.push(port);
      const out = openSync(join(dir, `${name}.log`), 'a');
      children.push(spawn(process.execPath, [CLI, ...args], { env: { ...common, ...env, HTTP_PORT: String(port) }, stdio: ['ignore', out, out] }));
    }
    const exits = children.map((c, i) => stopped(c).then((code) => `${roles[i]![0]} exited ${code}: ${readFileSync(join(dir, `${roles[i]![0]}.log`), 'utf8').slice(-2000)}`));
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
    for (const c of children) expect(c.exitCode).toBeNull();
  }, 150_000);
});
