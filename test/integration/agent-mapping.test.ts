import { spawn } from 'node:child_process';
import { createServer, IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '../../src/app';
import { agentParts } from '../../src/agent/agent';
import { FakeGithub } from '../../src/dev/fake-github';
import { FakeGitlab } from '../../src/dev/fake-gitlab';
import { verifyPortSignature } from '../../src/invokers/sign';
import type { RunStatusUpdate } from '../../src/model/status';
import { samplePortMessage } from '../../src/sample';
import { TestKafka, TestTopics, brokers, json, startApp, testConfig, testTopics } from '../helpers/kafka';
import { stopped } from '../helpers/processes';

const CLI = join(__dirname, '..', '..', 'bin', 'action-router.js');

/** Longer than 32 bytes: it keys the org's secret inputs too. */
const SECRET = 'agent-mapping-org-secret-0123456789abcdef';
const ORG = 'org_mapped';

interface Captured {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  raw: string;
  body: unknown;
}

/** A backend that records every request and answers by path (JSON, text, or 202). */
class CaptureServer {
  readonly requests: Captured[] = [];
  private server: Server | null = null;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const u = new URL(req.url!, 'http://x');
        let body: unknown;
        try {
          body = raw ? JSON.parse(raw) : null;
        } catch {
          body = raw;
        }
        this.requests.push({ method: req.method!, path: u.pathname, query: u.searchParams, headers: req.headers, raw, body });
        if (u.pathname.endsWith('/json')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ state: 'SUCCESS', url: 'https://ci.test/builds/1', id: 42 }));
        if (u.pathname.endsWith('/text')) return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
        if (u.pathname.endsWith('/fallback')) return void res.writeHead(202).end();
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    await new Promise((r) => this.server?.close(r));
  }

  forRun(runId: string): Captured | undefined {
    return this.requests.find((r) => r.raw.includes(runId) || r.headers['x-run'] === runId);
  }
}

/**
 * `action-router agent` with Port's payload mapping file, on the real
 * broker: the router hands agent runs to the org topic, the agent maps
 * each one to a request and reports what the mapping says.
 */
describe('the agent’s payload mapping, through the broker', () => {
  const k = new TestKafka();
  const backend = new CaptureServer();
  const gitlab = new FakeGitlab({ triggerTokens: { 'acme/api': 'trig' }, apiToken: 'gl', stepMs: 100 });
  const github = new FakeGithub({ token: 'gh', stepMs: 100 });
  const dir = mkdtempSync(join(tmpdir(), 'agent-mapping-'));
  let topics: TestTopics;
  const apps: App[] = [];
  beforeAll(() => Promise.all([backend.start(), gitlab.start(), github.start()]));
  afterAll(async () => {
    await Promise.all([backend.close(), gitlab.close(), github.close()]);
    await k.close();
  });
  beforeEach(() => (topics = testTopics()));
  afterEach(async () => {
    while (apps.length) await apps.pop()!.stop();
  });

  const routerEnv = (extra: Record<string, string> = {}) => ({ SIGNING_SECRET: SECRET, WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', WEBHOOK_RETRY_INITIAL_MS: '20', ...extra });

  /** A router, and an agent of ORG reading the org topic with `agentEnv`. */
  const startBoth = async (agentEnv: Record<string, string>, routerExtra: Record<string, string> = {}) => {
    apps.push(await startApp(testConfig(topics, routerEnv(routerExtra))));
    await k.createTopic(topics.orgTemplate.replace('{orgId}', ORG), 2);
    const config = testConfig({ ...topics, group: `${topics.group}-a` }, { ...routerEnv(), ...agentEnv });
    const parts = await agentParts(config, ORG, agentEnv);
    apps.push(await startApp(config, { mode: 'agent', orgId: ORG, intake: () => parts.intake, agentInvoker: parts.invoker }));
  };

  const updatesUntil = async (done: (us: RunStatusUpdate[]) => boolean) =>
    (await k.collect(topics.status, (ms) => done(ms.map((m) => json<RunStatusUpdate>(m))), 30_000)).map((m) => json<RunStatusUpdate>(m));
  const last = (us: RunStatusUpdate[], runId: string) => us.filter((u) => u.runId === runId).at(-1)!;
  const ended = (us: RunStatusUpdate[], runId: string) => us.some((u) => u.runId === runId && u.status !== 'IN_PROGRESS');

  it('sends and reports what each mapping says: enabled as a bool and as jq, method, url, body, headers and query as objects and as one expression, report from JSON and from text', async () => {
    const mappingFile = join(dir, 'features.json');
    writeFileSync(
      mappingFile,
      JSON.stringify([
        {
          enabled: '.payload.properties.kind == "json"',
          method: '"PUT"',
          url: '.payload.action.invocationMethod.url + "/json"',
          body: { run: '.context.runId', kind: '.payload.properties.kind', literal: 5, flag: true, nested: { org: '.trigger.by.orgId', none: {} }, list: ['.payload.properties.kind', 1] },
          headers: { 'X-Run': '.context.runId', 'X-Static': '"s"' },
          query: { q: '.payload.properties.kind', n: '2' },
          report: { status: '.response.json.state', link: '.response.json.url', summary: '"done: " + .response.json.state', externalRunId: '.response.json.id | tostring' },
        },
        {
          enabled: '.payload.properties.kind == "text"',
          url: '.payload.action.invocationMethod.url + "/text"',
          body: '{only: .context.runId}',
          headers: '{"X-One": "expr", "X-Run": .context.runId}',
          query: '{mode: "t"}',
          report: { status: 'if .response.text == "ok" then "SUCCESS" else "FAILURE" end', summary: '"text " + .response.text + " " + (.response.statusCode | tostring) + " via " + .request.method + " for " + .body.context.runId' },
        },
        { enabled: false, url: '"http://127.0.0.1:9/never"' },
        { enabled: '.payload.properties.kind == "bad"', url: '.payload.action.invocationMethod.url', body: { x: '.payload.properties.kind | error' } },
        { enabled: true, url: '.payload.action.invocationMethod.url + "/fallback"' },
      ]),
    );
    await startBoth({ CONTROL_THE_PAYLOAD_CONFIG_PATH: mappingFile });
    const run = (runId: string, kind: string, synchronized = true) =>
      samplePortMessage({ runId, orgId: ORG, invocationMethod: { type: 'WEBHOOK', agent: true, url: backend.url, synchronized }, properties: { kind } });
    const runs = [run('r_map_json', 'json'), run('r_map_text', 'text'), run('r_map_bad', 'bad'), run('r_map_other', 'other', false)];
    await k.produce(topics.trigger, runs.map((r) => ({ key: String((r.context as { runId: string }).runId), value: JSON.stringify(r) })));
    const updates = await updatesUntil(
      (us) => ['r_map_json', 'r_map_text', 'r_map_bad'].every((id) => ended(us, id)) && us.some((u) => u.runId === 'r_map_other' && u.log?.includes('HTTP 202')),
    );

    const j = backend.forRun('r_map_json')!;
    expect([j.method, j.path, j.query.get('q'), j.query.get('n')]).toEqual(['PUT', '/json', 'json', '2']);
    expect(j.body).toEqual({ run: 'r_map_json', kind: 'json', literal: 5, flag: true, nested: { org: ORG }, list: ['json', 1] });
    expect([j.headers['x-run'], j.headers['x-static'], j.headers['content-type']]).toEqual(['r_map_json', 's', 'application/json']);
    // Sent as Python's requests sends it, signed over Python's compact form, as Port's agent does.
    expect(j.raw).toContain('"run": "r_map_json", "kind": "json"');
    const ts = String(j.headers['x-port-timestamp']);
    expect(verifyPortSignature(SECRET, j.raw, ts, String(j.headers['x-port-signature'])).ok).toBe(false);
    expect(verifyPortSignature(SECRET, j.raw, ts, String(j.headers['x-port-signature']), { compactBody: true }).ok).toBe(true);
    expect(last(updates, 'r_map_json')).toMatchObject({ status: 'SUCCESS', summary: 'done: SUCCESS', links: ['https://ci.test/builds/1'], externalRunId: '42' });

    const t = backend.forRun('r_map_text')!;
    expect([t.method, t.path, t.query.get('mode'), t.headers['x-one']]).toEqual(['POST', '/text', 't', 'expr']);
    expect(t.body).toEqual({ only: 'r_map_text' });
    expect(last(updates, 'r_map_text')).toMatchObject({ status: 'SUCCESS', summary: 'text ok 200 via POST for r_map_text' });

    // A failing expression ends its run, naming the mapping and field; the runs after it go on.
    expect(last(updates, 'r_map_bad')).toMatchObject({ status: 'FAILURE', summary: 'payload mapping: mapping 3, body.x failed (a jq error)' });
    expect(backend.forRun('r_map_bad')).toBeUndefined();

    // The fallback (enabled: true) keeps the agent's defaults: the whole message as body, without
    // `agent` and the signature headers; an asynchronous run answered 202 stays in progress.
    const o = backend.forRun('r_map_other')!;
    expect([o.method, o.path]).toEqual(['POST', '/fallback']);
    const body = o.body as { headers?: Record<string, string>; context: { runId: string }; payload: { action: { invocationMethod: Record<string, unknown> } } };
    expect(body.context.runId).toBe('r_map_other');
    expect(body.payload.action.invocationMethod).toEqual({ type: 'WEBHOOK', url: backend.url, synchronized: false });
    expect(body.headers ?? {}).toEqual({});
    expect(updates.filter((u) => u.runId === 'r_map_other').every((u) => u.status === 'IN_PROGRESS')).toBe(true);
    // No run was called twice (nothing else reached the backend), and the disabled mapping never was.
    expect(backend.requests.filter((r) => r.path === '/never')).toHaveLength(0);
  });

  it('the default mapping: GitLab’s trigger with the token from env and the pipeline link reported; a webhook gets the message', async () => {
    await startBoth({ GITLAB_URL: `${gitlab.url}/`, acme_api: 'trig' });
    const gl = samplePortMessage({ runId: 'r_def_gl', orgId: ORG, invocationMethod: { type: 'GITLAB', agent: true, groupName: 'acme', projectName: 'api', defaultRef: 'develop' }, properties: { version: '2.0', replicas: 3 } });
    const wh = samplePortMessage({ runId: 'r_def_wh', orgId: ORG, invocationMethod: { type: 'WEBHOOK', agent: true, url: `${backend.url}/plain`, synchronized: true } });
    await k.produce(topics.trigger, [{ key: 'r_def_gl', value: JSON.stringify(gl) }, { key: 'r_def_wh', value: JSON.stringify(wh) }]);
    const updates = await updatesUntil((us) => ended(us, 'r_def_wh') && us.some((u) => u.runId === 'r_def_gl' && (u.links?.length ?? 0) > 0));
    // Port's default mapping sends the message beside the variables (port_payload), not as one of them.
    const pipeline = gitlab.pipelines.find((p) => p.ref === 'develop')!;
    expect(pipeline).toBeDefined();
    expect(pipeline.variables.port_payload).toBeUndefined();
    expect(pipeline.variables).toMatchObject({ version: '2.0', replicas: '3' });
    const glUpdate = last(updates, 'r_def_gl');
    expect(glUpdate).toMatchObject({ status: 'IN_PROGRESS', links: [pipeline.web_url], externalRunId: String(pipeline.id) });
    const plain = backend.requests.find((r) => r.path === '/plain')!;
    expect((plain.body as { context: { runId: string } }).context.runId).toBe('r_def_wh');
    expect(last(updates, 'r_def_wh')).toMatchObject({ status: 'SUCCESS' });
  });

  it('secret inputs: encrypted by the router, never in clear on Kafka, decrypted by the agent for the backend only', async () => {
    const catalog = join(dir, 'actions-secret.json');
    writeFileSync(
      catalog,
      JSON.stringify([
        {
          identifier: 'rotate',
          trigger: { operation: 'DAY-2', userInputs: { properties: { token: { type: 'string', encryption: 'aes256-gcm', minLength: 8 }, note: { type: 'string' } }, required: ['token'] } },
          invocationMethod: { type: 'WEBHOOK', agent: true, url: backend.url, synchronized: true },
        },
      ]),
    );
    const mappingFile = join(dir, 'secret.json');
    writeFileSync(mappingFile, JSON.stringify([{ enabled: true, url: '.payload.action.invocationMethod.url + "/secret"', body: { token: '.payload.properties.token', note: '.payload.properties.note' }, fieldsToDecryptPaths: ['payload.properties.token'] }]));
    await startBoth({ CONTROL_THE_PAYLOAD_CONFIG_PATH: mappingFile }, { ACTIONS_PATH: catalog });
    const plaintext = 'hunter2-plaintext-secret';
    const msg = (runId: string, token: string) => samplePortMessage({ runId, orgId: ORG, action: 'rotate', properties: { token, note: 'n' } });
    await k.produce(topics.trigger, [{ key: 'r_sec_ok', value: JSON.stringify(msg('r_sec_ok', plaintext)) }, { key: 'r_sec_short', value: JSON.stringify(msg('r_sec_short', 'short')) }]);
    const updates = await updatesUntil((us) => ended(us, 'r_sec_ok') && ended(us, 'r_sec_short'));
    expect(last(updates, 'r_sec_ok')).toMatchObject({ status: 'SUCCESS' });
    const call = backend.requests.find((r) => r.path === '/secret')!;
    expect(call.body).toEqual({ token: plaintext, note: 'n' });
    // The rules of a secret input are checked on its plaintext, and the refusal does not show it.
    const short = last(updates, 'r_sec_short');
    expect(short).toMatchObject({ status: 'FAILURE' });
    expect(JSON.stringify(short)).not.toContain('"short"');
    // On the org topic the value is Port's ciphertext; nowhere on Kafka is it in clear.
    const orgMessages = await k.collect(topics.orgTemplate.replace('{orgId}', ORG), (ms) => ms.length >= 1);
    const orgRun = JSON.parse(orgMessages[0]!.value!.toString()) as { payload: { properties: { token: string }; censoredProperties: string[] } };
    expect(orgRun.payload.properties.token).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(orgRun.payload.properties.token, 'base64').length).toBe(16 + plaintext.length + 16);
    expect(orgRun.payload.censoredProperties).toContain('token');
    const everything = [...orgMessages, ...(await k.collect(topics.status, () => true, 2_000)), ...(await k.collect(topics.dlq, () => true, 2_000))];
    for (const m of everything) expect(m.value?.toString() ?? '').not.toContain(plaintext);
  });

  it('a secret that does not decrypt ends the run FAILURE without showing it', async () => {
    const mappingFile = join(dir, 'secret-bad.json');
    writeFileSync(mappingFile, JSON.stringify([{ enabled: true, url: '.payload.action.invocationMethod.url', fieldsToDecryptPaths: ['payload.properties.token'] }]));
    await startBoth({ CONTROL_THE_PAYLOAD_CONFIG_PATH: mappingFile });
    await k.produce(topics.trigger, [{ key: 'r_undecryptable', value: JSON.stringify(samplePortMessage({ runId: 'r_undecryptable', orgId: ORG, invocationMethod: { type: 'WEBHOOK', agent: true, url: `${backend.url}/x` }, properties: { token: 'not-a-ciphertext-value' } })) }]);
    const updates = await updatesUntil((us) => ended(us, 'r_undecryptable'));
    const failure = last(updates, 'r_undecryptable');
    expect(failure).toMatchObject({ status: 'FAILURE', statusLabel: 'SECRET_UNREADABLE' });
    expect(failure.summary).toContain('fieldsToDecryptPaths "payload.properties.token" cannot be decrypted');
    expect(JSON.stringify(failure)).not.toContain('not-a-ciphertext-value');
  });

  it('templates in the router: webhook body and headers, GitHub workflowInputs and GitLab pipelineVariables', async () => {
    apps.push(
      await startApp(
        testConfig(
          topics,
          routerEnv({ GITHUB_API_URL: github.url, GITHUB_TOKEN: 'gh', GITHUB_POLL_INTERVAL_MS: '50', GITLAB_URL: gitlab.url, GITLAB_TRIGGER_TOKEN_acme_api: 'trig', GITLAB_API_TOKEN: 'gl', GITLAB_POLL_INTERVAL_MS: '50' }),
        ),
      ),
    );
    const properties = { version: '3.1', replicas: 2 };
    const runs = [
      samplePortMessage({ runId: 'r_tpl_wh', properties, invocationMethod: { type: 'WEBHOOK', url: `${backend.url}/tpl`, synchronized: true, body: { v: '{{ .inputs.version }}', n: '{{ .inputs.replicas }}', who: 'by {{ .trigger.by.user.email }}', run: '{{ .run.id }}' }, headers: { 'X-Run': '{{ .run.id }}' } } }),
      samplePortMessage({ runId: 'r_tpl_gh', properties, invocationMethod: { type: 'GITHUB', org: 'acme', repo: 'api', workflow: 'ci.yml', workflowInputs: { version: '{{ .inputs.version }}', entity: '{{ .entity.identifier }}' } } }),
      samplePortMessage({ runId: 'r_tpl_gl', properties, invocationMethod: { type: 'GITLAB', groupName: 'acme', projectName: 'api', pipelineVariables: { ACTION: '{{ .action.identifier }}' } } }),
      samplePortMessage({ runId: 'r_tpl_bad', properties, invocationMethod: { type: 'WEBHOOK', url: `${backend.url}/tpl-bad`, body: { x: '{{ .inputs.version | error }}' } } }),
    ];
    await k.produce(topics.trigger, runs.map((r) => ({ value: JSON.stringify(r) })));
    const updates = await updatesUntil((us) => ['r_tpl_wh', 'r_tpl_gh', 'r_tpl_gl', 'r_tpl_bad'].every((id) => ended(us, id)));
    const wh = backend.requests.find((r) => r.path === '/tpl')!;
    expect(wh.body).toEqual({ v: '3.1', n: 2, who: 'by dev@example.com', run: 'r_tpl_wh' });
    expect(wh.headers['x-run']).toBe('r_tpl_wh');
    const gh = github.runs.find((r) => String(r.inputs.port_context ?? '').includes('r_tpl_gh'))!;
    expect(gh.inputs).toMatchObject({ version: '3.1', entity: 'payments' });
    const gl = gitlab.pipelines.find((p) => p.variables.port_payload?.includes('r_tpl_gl'))!;
    expect(gl.variables.ACTION).toBe('deploy_service');
    expect(last(updates, 'r_tpl_bad')).toMatchObject({ status: 'FAILURE', statusLabel: 'TEMPLATE_FAILED' });
    expect(backend.requests.some((r) => r.path === '/tpl-bad')).toBe(false);
  });

  it('starts from Port’s agent’s own environment (a drop-in), and a mapping file that is not JSON stops the start naming it', async () => {
    apps.push(await startApp(testConfig(topics, routerEnv())));
    const orgTopic = topics.orgTemplate.replace('{orgId}', ORG);
    await k.createTopic(orgTopic, 2);
    const mappingFile = join(dir, 'drop-in.json');
    writeFileSync(mappingFile, JSON.stringify([{ enabled: true, url: '.payload.action.invocationMethod.url + "/json"', headers: { 'X-Run': '.context.runId' } }]));
    // Only Port's agent's variables, plus where updates go (Port's agent reports over HTTP; ours on the status topic).
    const portEnv = {
      PATH: process.env.PATH!,
      PORT_ORG_ID: ORG,
      PORT_CLIENT_ID: 'agent-client',
      PORT_CLIENT_SECRET: SECRET,
      STREAMER_NAME: 'KAFKA',
      USING_LOCAL_PORT_INSTANCE: 'true',
      KAFKA_CONSUMER_BOOTSTRAP_SERVERS: brokers(),
      KAFKA_CONSUMER_GROUP_ID: `${topics.group}-port-agent`,
      KAFKA_RUNS_TOPIC: orgTopic,
      WEBHOOK_INVOKER_TIMEOUT: '5',
      CONTROL_THE_PAYLOAD_CONFIG_PATH: mappingFile,
      LOG_LEVEL: 'WARNING',
      STATUS_TOPIC: topics.status,
      DLQ_TOPIC: topics.dlq,
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      HTTP_PORT: '0',
      // The agent's call ledger: this test's own (the default, .data/ in the working directory, outlives the test).
      DATA_DIR: dir,
    };
    const agent = spawn(process.execPath, [CLI, 'agent'], { env: portEnv, stdio: 'ignore' });
    try {
      const run = samplePortMessage({ runId: 'r_drop_in', orgId: ORG, invocationMethod: { type: 'WEBHOOK', agent: true, url: backend.url, synchronized: true } });
      await k.produce(topics.trigger, [{ key: 'r_drop_in', value: JSON.stringify(run) }]);
      const updates = await updatesUntil((us) => ended(us, 'r_drop_in'));
      expect(last(updates, 'r_drop_in')).toMatchObject({ status: 'SUCCESS' });
      const call = backend.requests.find((r) => r.headers['x-run'] === 'r_drop_in')!;
      expect(verifyPortSignature(SECRET, call.raw, String(call.headers['x-port-timestamp']), String(call.headers['x-port-signature']), { compactBody: true }).ok).toBe(true);
    } finally {
      agent.kill('SIGTERM');
      await stopped(agent);
    }

    const broken = join(dir, 'broken.json');
    writeFileSync(broken, '[{"enabled": true,');
    const failing = spawn(process.execPath, [CLI, 'agent'], { env: { ...portEnv, CONTROL_THE_PAYLOAD_CONFIG_PATH: broken }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    failing.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    // Exit code 2, as for any configuration error.
    expect(await stopped(failing)).toBe(2);
    expect(err).toContain(`CONTROL_THE_PAYLOAD_CONFIG_PATH: ${broken} is not valid JSON`);
  });
});
