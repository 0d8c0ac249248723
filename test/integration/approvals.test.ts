import { tempDir } from '../helpers/cleanup';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Browser, chromium } from 'playwright-core';
import type { App } from '../../src/app';
import { RELEASE_HEADER } from '../../src/router/stages/gate';
import { verifyPortSignature } from '../../src/invokers/sign';
import { newRunId, samplePortMessage } from '../../src/sample';
import { ApiClient } from '../helpers/api';
import { TestKafka, TestTopics, eventually, startApp, testConfig, testTopics, topicEnv } from '../helpers/kafka';
import { runsCli, spawnRouter, stopped } from '../helpers/processes';

const { launchOptions } = require('../../scripts/chromium.cjs') as { launchOptions: () => Parameters<typeof chromium.launch>[0] };

const CLIENTS = {
  'acme-ci': { secret: 'acme-ci-secret-0123456789abcdef', orgId: 'org_acme', roles: ['member'] },
  'acme-lead': { secret: 'acme-lead-secret-0123456789abcd', orgId: 'org_acme', roles: ['lead'] },
  'acme-sec': { secret: 'acme-sec-secret-0123456789abcde', orgId: 'org_acme', roles: ['security'] },
  'acme-oncall': { secret: 'acme-oncall-secret-0123456789ab', orgId: 'org_acme', roles: ['approver'] },
  'acme-admin': { secret: 'acme-admin-secret-0123456789abc', orgId: 'org_acme', roles: ['admin'] },
  'globex-admin': { secret: 'globex-admin-secret-0123456789', orgId: 'org_globex', roles: ['admin'] },
  'dev@example.com': { secret: 'requester-secret-0123456789abcd', orgId: 'org_acme', roles: [] },
};
type Client = keyof typeof CLIENTS;
const SIGNING_SECRET = 'approval-test-signing-secret';

/** A local receiver: the backend of the approved runs and the approvers' notification endpoint. */
class Receiver {
  readonly calls: { path: string; runId: string | undefined; body: string; headers: http.IncomingHttpHeaders }[] = [];
  private server!: http.Server;
  url = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d)).on('end', () => {
        this.calls.push({ path: req.url ?? '', runId: req.headers['x-run-id'] as string | undefined, body, headers: req.headers });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  deliveries(runId: string): number {
    return this.calls.filter((c) => c.path === '/deploy' && c.runId === runId).length;
  }

  async close(): Promise<void> {
    await new Promise((r) => this.server.close(r));
  }
}

function catalog(receiver: Receiver): string {
  const dir = tempDir('approval-actions-');
  const file = join(dir, 'actions.json');
  writeFileSync(
    file,
    JSON.stringify([
      {
        identifier: 'deploy_prod',
        title: 'Deploy to production',
        requiredApproval: true,
        approvers: { clients: ['acme-lead'], roles: ['approver'] },
        approvalNotification: { type: 'webhook', url: `${receiver.url}/approvals` },
        invocationMethod: { type: 'WEBHOOK', url: `${receiver.url}/deploy`, synchronized: true },
      },
      {
        identifier: 'rotate_secret',
        requiredApproval: { type: 'ALL' },
        approvers: { clients: ['acme-lead', 'acme-sec'] },
        invocationMethod: { type: 'WEBHOOK', url: `${receiver.url}/deploy`, synchronized: true },
      },
      { identifier: 'deploy_service', invocationMethod: { type: 'KAFKA' } },
    ]),
  );
  return file;
}

/**
 * Manual approval on the real broker: runs of actions that require it wait
 * (WAITING_FOR_APPROVAL) and reach their backend once, only after approval;
 * ANY and ALL, decline, cancel, timeout, racing decisions and routers, a
 * kill -9 between approval and invocation, forged approvals, the
 * notification, and an approval from the console in a browser.
 */
describe('approvals', () => {
  const kafka = new TestKafka();
  const receiver = new Receiver();
  let topics: TestTopics;
  let env: Record<string, string>;
  let app: App;
  let api: ApiClient;
  /** Every trigger and nudge on `t`'s trigger topic handled by its router: deliveries counted after it are final. */
  const settled = (t: TestTopics = topics) => eventually(() => kafka.committedAll(t.group, t.trigger), 'every trigger and nudge handled', 30_000);

  beforeAll(async () => {
    await receiver.start();
    const dir = tempDir('approval-clients-');
    writeFileSync(join(dir, 'clients.json'), JSON.stringify(CLIENTS));
    topics = testTopics();
    env = {
      ACTIONS_PATH: catalog(receiver),
      API_CLIENTS_FILE: join(dir, 'clients.json'),
      API_TOKEN_SECRET: 'approval-test-token-secret-0123456789',
      APPROVAL_SECRET: 'approval-test-parking-secret-0123456789',
      SIGNING_SECRET,
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
    };
    app = await startApp(testConfig(topics, env));
    api = await ApiClient.start(app);
  });
  afterAll(async () => {
    await api.close();
    await app.stop();
    await kafka.close();
    await receiver.close();
  });

  async function as(client: Client, method: string, path: string, body?: unknown) {
    const token = await api.call('POST', '/v1/auth/access_token', { body: { clientId: client, clientSecret: CLIENTS[client].secret } });
    return api.call(method, path, { token: token.body.accessToken as string, body });
  }

  async function trigger(action: string, extra: Record<string, unknown> = {}, headers?: Record<string, string>, topicsOf = topics): Promise<string> {
    const runId = newRunId();
    const msg = { ...samplePortMessage({ runId, orgId: 'org_acme', action }), ...extra };
    await kafka.produce(topicsOf.trigger, [{ key: runId, value: JSON.stringify(msg), headers }]);
    return runId;
  }

  async function waiting(runId: string, on: App = app): Promise<void> {
    await eventually(() => on.runs!.store.getRun(runId)?.status === 'WAITING_FOR_APPROVAL', `run ${runId} waiting for approval`);
  }

  const status = (runId: string, on: App = app) => on.runs!.store.getRun(runId)?.status;

  test('ANY: the run waits, approvers are notified (signed), a listed role approves, the backend is called once', async () => {
    const runId = await trigger('deploy_prod');
    await waiting(runId);
    expect(receiver.deliveries(runId)).toBe(0);
    const view = await as('acme-ci', 'GET', `/v1/actions/runs/${runId}`);
    expect(view.body.run).toMatchObject({ status: 'WAITING_FOR_APPROVAL', requiredApproval: true, approval: null, endedAt: null });

    await eventually(() => receiver.calls.some((c) => c.path === '/approvals' && c.runId === runId), 'the approval notification');
    const note = receiver.calls.find((c) => c.path === '/approvals' && c.runId === runId)!;
    expect(verifyPortSignature(SIGNING_SECRET, note.body, note.headers['x-port-timestamp'] as string, note.headers['x-port-signature'] as string).ok).toBe(true);
    expect(JSON.parse(note.body)).toMatchObject({ type: 'APPROVAL_REQUESTED', runId, orgId: 'org_acme', action: 'deploy_prod', approvalType: 'ANY', approvers: ['acme-lead', 'acme-oncall'], requestedBy: 'dev@example.com' });

    const approvers = await as('acme-ci', 'GET', `/v1/actions/runs/${runId}/approvers`);
    expect(approvers.body).toMatchObject({ ok: true, type: 'ANY', state: 'WAITING', approvers: [{ clientId: 'acme-lead', state: 'PENDING' }, { clientId: 'acme-oncall', state: 'PENDING' }] });
    // A member who is no approver: 403; another org's admin: 404 (it cannot see the run).
    expect((await as('acme-ci', 'PATCH', `/v1/actions/runs/${runId}/approval`, { status: 'APPROVE' })).status).toBe(403);
    expect((await as('globex-admin', 'PATCH', `/v1/actions/runs/${runId}/approval`, { status: 'APPROVE' })).status).toBe(404);
    expect((await as('acme-oncall', 'PATCH', `/v1/actions/runs/${runId}/approval`, { status: 'MAYBE' })).status).toBe(422);

    const approved = await as('acme-oncall', 'PATCH', `/v1/actions/runs/${runId}/approval`, { status: 'APPROVE', description: 'go' });
    expect(approved.status).toBe(201);
    expect(approved.body.run).toMatchObject({ id: runId, approval: { userId: 'acme-oncall', state: 'APPROVED', description: 'go' } });
    await eventually(() => status(runId) === 'SUCCESS', 'the approved run routed and done');
    expect(receiver.deliveries(runId)).toBe(1);
    // The synchronized webhook's answer is the run's response, as Port keeps it.
    expect((await as('acme-ci', 'GET', `/v1/actions/runs/${runId}`)).body.run).toMatchObject({ status: 'SUCCESS', response: { ok: true } });
    // Deciding again, or on a finished run: 422, nothing changes.
    const late = await as('acme-lead', 'PATCH', `/v1/actions/runs/${runId}/approval`, { status: 'DECLINE' });
    expect(late.status).toBe(422);
    expect(late.body).toMatchObject({ ok: false, error: 'invalid_request' });
    expect(status(runId)).toBe('SUCCESS');
    const timeline = app.runs!.store.updates(runId).filter((u) => u.applied === 1).map((u) => u.status);
    expect(timeline.slice(0, 2)).toEqual(['WAITING_FOR_APPROVAL', 'WAITING_FOR_APPROVAL']);
    expect(timeline[timeline.length - 1]).toBe('SUCCESS');
  });

  test('ALL: every listed approver must approve; one client decides once', async () => {
    const runId = await trigger('rotate_secret');
    await waiting(runId);
    expect((await as('acme-lead', 'PATCH', `/v1/actions/runs/${runId}/approval`, { status: 'APPROVE' })).status).toBe(201);
    const again = await as('acme-lead', 'PATCH', `/v1/actions/runs/${runId}/approval`, { status: 'APPROVE' });
    expect(again.status).toBe(422);
    expect(String(again.body.message)).toContain('already decided');
    await settled();
    expect(status(runId)).toBe('WAITING_FOR_APPROVAL');
    expect(receiver.deliveries(runId)).toBe(0);
    const approvers = await as('acme-ci', 'GET', `/v1/actions/runs/${runId}/approvers`);
    expect(approvers.body.approvers).toEqual([
      expect.objectContaining({ clientId: 'acme-lead', state: 'APPROVED' }),
      expect.objectContaining({ clientId: 'acme-sec', state: 'PENDING' }),
    ]);
    expect((await as('acme-sec', 'PATCH', `/v1/actions/runs/${runId}/approval`, { status: 'APPROVE' })).status).toBe(201);
    await eventually(() => status(runId) === 'SUCCESS', 'routed after the last approval');
    expect(receiver.deliveries(runId)).toBe(1);
  });

  test('one decline ends the run DECLINED; it never reaches the backend', async () => {
    const runId = await trigger('rotate_secret');
    await waiting(runId);
    const declined = await as('acme-sec', 'PATCH', `/v1/actions/runs/${runId}/approval`, { status: 'DECLINE', description: 'not during the freeze' });
    expect(declined.status).toBe(201);
    expect(declined.body.run).toMatchObject({ status: 'DECLINED', summary: 'Declined by acme-sec: not during the freeze', approval: { userId: 'acme-sec', state: 'DECLINED' } });
    expect((declined.body.run as { endedAt: string | null }).endedAt).not.toBeNull();
    expect((await as('acme-lead', 'PATCH', `/v1/actions/runs/${runId}/approval`, { status: 'APPROVE' })).status).toBe(422);
    // A backend cannot revive it either.
    expect((await as('acme-ci', 'PATCH', `/v1/actions/runs/${runId}`, { status: 'SUCCESS' })).status).toBe(422);
    await settled();
    expect(receiver.deliveries(runId)).toBe(0);
  });

  test('the requester or an org admin cancels a waiting run; others may not', async () => {
    const runId = await trigger('deploy_prod');
    await waiting(runId);
    expect((await as('acme-ci', 'POST', `/v1/actions/runs/${runId}/cancel`, {})).status).toBe(403);
    // A backend may not report on a run that waits.
    expect((await as('acme-ci', 'POST', `/v1/actions/runs/${runId}/logs`, { message: 'hi' })).status).toBe(422);
    const cancelled = await as('dev@example.com', 'POST', `/v1/actions/runs/${runId}/cancel`, { description: 'wrong version' });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.run).toMatchObject({ status: 'FAILURE', statusLabel: 'cancelled', summary: 'Cancelled by dev@example.com: wrong version' });
    expect((await as('acme-lead', 'PATCH', `/v1/actions/runs/${runId}/approval`, { status: 'APPROVE' })).status).toBe(422);
    expect((await as('acme-admin', 'POST', `/v1/actions/runs/${runId}/cancel`, {})).status).toBe(422);
    const other = await trigger('deploy_prod');
    await waiting(other);
    expect((await as('acme-admin', 'POST', `/v1/actions/runs/${other}/cancel`, {})).status).toBe(200);
    await settled();
    expect(receiver.deliveries(runId) + receiver.deliveries(other)).toBe(0);
  });

  test('an org admin may always decide, alone even under ALL', async () => {
    const runId = await trigger('rotate_secret');
    await waiting(runId);
    expect((await as('acme-admin', 'PATCH', `/v1/actions/runs/${runId}/approval`, { status: 'APPROVE' })).status).toBe(201);
    await eventually(() => status(runId) === 'SUCCESS', 'routed on the admin approval');
    expect(receiver.deliveries(runId)).toBe(1);
  });

  test('approval claimed by the event, or a forged release nudge, counts for nothing', async () => {
    const runId = await trigger('deploy_prod', { approved: true, approval: { state: 'APPROVED' }, requiredApproval: false }, { 'x-approved': 'true' });
    await waiting(runId);
    // A nudge for a run nobody approved, on the run's own partition where a real one goes: the router finds no
    // approval in its store and routes nothing.
    const partition = app.runs!.store.getRun(runId)!.triggerPartition!;
    await kafka.produce(topics.trigger, [{ key: runId, value: JSON.stringify({ release: runId }), headers: { [RELEASE_HEADER]: runId }, partition }]);
    const declinedId = await trigger('deploy_prod');
    await waiting(declinedId);
    await as('acme-lead', 'PATCH', `/v1/actions/runs/${declinedId}/approval`, { status: 'DECLINE' });
    await kafka.produce(topics.trigger, [{ key: declinedId, value: '{}', headers: { [RELEASE_HEADER]: declinedId } }]);
    // Both nudges handled (a nudge waits up to 10 s for a decision before it is ignored): their offsets are committed.
    await eventually(() => kafka.committedAll(topics.group, topics.trigger), 'both forged nudges handled', 30_000);
    expect(status(runId)).toBe('WAITING_FOR_APPROVAL');
    expect(receiver.deliveries(runId)).toBe(0);
    expect(receiver.deliveries(declinedId)).toBe(0);
    // Approved for real, it is routed once, forged nudge or not.
    expect((await as('acme-lead', 'PATCH', `/v1/actions/runs/${runId}/approval`, { status: 'APPROVE' })).status).toBe(201);
    await eventually(() => status(runId) === 'SUCCESS', 'routed after the real approval');
    expect(receiver.deliveries(runId)).toBe(1);
  }, 40_000);

  test('two approvals at once, nudges repeated, and two routers: each run is invoked exactly once', async () => {
    const second = await startApp(testConfig(topics, env));
    try {
      const ids = await Promise.all(Array.from({ length: 8 }, () => trigger('deploy_prod')));
      for (const id of ids) await waiting(id);
      await Promise.all(
        ids.map(async (id) => {
          const [a, b] = await Promise.all([
            as('acme-lead', 'PATCH', `/v1/actions/runs/${id}/approval`, { status: 'APPROVE' }),
            as('acme-oncall', 'PATCH', `/v1/actions/runs/${id}/approval`, { status: 'APPROVE' }),
          ]);
          // Both may pass the check; the topic's order takes one decision, and the other is refused.
          expect([a.status, b.status].sort()).toEqual([201, 422]);
          const row = app.runs!.store.getRun(id)!;
          await kafka.produce(topics.trigger, [1, 2, 3].map(() => ({ key: id, value: '{}', headers: { [RELEASE_HEADER]: id }, partition: row.triggerPartition! })));
        }),
      );
      for (const id of ids) await eventually(() => status(id) === 'SUCCESS', `run ${id} done`);
      await settled();
      expect(ids.map((id) => receiver.deliveries(id))).toEqual(ids.map(() => 1));
    } finally {
      await second.stop();
    }
  }, 60_000);

  test('APPROVAL_TIMEOUT: a run nobody decides ends FAILURE', async () => {
    const own = testTopics();
    const timed = await startApp(testConfig(own, { ...env, APPROVAL_TIMEOUT: '2s' }));
    try {
      const runId = await trigger('deploy_prod', {}, undefined, own);
      await waiting(runId, timed);
      await eventually(() => status(runId, timed) === 'FAILURE', 'timed out', 15_000);
      expect(timed.runs!.store.getRun(runId)).toMatchObject({ statusLabel: 'approval timed out', approvalState: 'TIMED_OUT' });
      expect(receiver.deliveries(runId)).toBe(0);
    } finally {
      await timed.stop();
    }
  });

  test('sweeps never overlap: two at once write each timeout once', async () => {
    const own = testTopics();
    // An hour: the app's own sweeps expire nothing; the two below look from two hours on.
    const timed = await startApp(testConfig(own, { ...env, APPROVAL_TIMEOUT: '1h' }));
    try {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(await trigger('deploy_prod', {}, undefined, own));
      for (const id of ids) await waiting(id, timed);
      const later = Date.now() + 2 * 3600_000;
      const partitions = timed.router.ownedPartitions();
      // What two interval ticks do when the first sweep's writes outlast the interval.
      await Promise.all([timed.approvals!.sweep(partitions, later), timed.approvals!.sweep(partitions, later)]);
      for (const id of ids) expect(status(id, timed)).toBe('FAILURE');
      const admin = kafka.kafka.admin();
      await admin.connect();
      const total = (await admin.fetchTopicOffsets(own.status)).reduce((n, p) => n + Number(p.high), 0);
      await admin.disconnect();
      const updates = (await kafka.collect(own.status, (ms) => ms.length >= total)).map((m) => JSON.parse(m.value!.toString()) as { runId: string; approval?: { event: string } | null });
      for (const id of ids) expect([id, updates.filter((u) => u.runId === id && u.approval?.event === 'TIMED_OUT').length]).toEqual([id, 1]);
    } finally {
      await timed.stop();
    }
  });

  test('kill -9 of the router between approval and invocation: the run is invoked once', async () => {
    const own = testTopics();
    // A short session: the restarted router gets the partitions without waiting 30 s for the killed one's to lapse.
    const routerEnv = { ...topicEnv(own), ...env, ROUTER_COMMIT_INTERVAL_MS: '100', ROUTER_SESSION_TIMEOUT_MS: '6000' };
    let router = spawnRouter(routerEnv, 'approvals-1');
    // The API on its own (no routing): decisions and nudges do not need a router up.
    const apiOnly = await startApp(testConfig(own, env), { routing: false });
    const apiOnlyClient = await ApiClient.start(apiOnly);
    try {
      const runId = await trigger('deploy_prod', {}, undefined, own);
      await waiting(runId, apiOnly);
      router.kill('SIGKILL');
      await stopped(router);
      const token = await apiOnlyClient.call('POST', '/v1/auth/access_token', { body: { clientId: 'acme-lead', clientSecret: CLIENTS['acme-lead'].secret } });
      const approved = await apiOnlyClient.call('PATCH', `/v1/actions/runs/${runId}/approval`, { token: token.body.accessToken as string, body: { status: 'APPROVE' } });
      expect(approved.status).toBe(201);
      // No router runs: the nudge waits on the topic.
      expect(receiver.deliveries(runId)).toBe(0);
      router = spawnRouter(routerEnv, 'approvals-2');
      await eventually(() => status(runId, apiOnly) === 'SUCCESS', 'routed by the restarted router', 40_000);
      await settled(own);
      expect(receiver.deliveries(runId)).toBe(1);
    } finally {
      router.kill('SIGTERM');
      await stopped(router);
      await apiOnlyClient.close();
      await apiOnly.stop();
    }
  }, 90_000);

  test('CLI: an approval refused (not an approver), a decline taken; the console refuses a decision from another site', async () => {
    const runId = await trigger('deploy_prod');
    await waiting(runId);
    const cli = (client: Client, ...args: string[]) => runsCli(api.base, client, CLIENTS[client].secret, ...args);
    const refused = await cli('acme-ci', 'approve', runId);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('403: acme-ci is not an approver');
    // A session cookie sent from another site's page: refused before anything is read.
    const login = await fetch(`${api.base}/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ clientId: 'acme-lead', clientSecret: CLIENTS['acme-lead'].secret }).toString(),
    });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const forged = await fetch(`${api.base}/console/api/runs/${runId}/approval`, {
      method: 'POST',
      headers: { cookie, origin: 'https://evil.example', 'content-type': 'application/json' },
      body: JSON.stringify({ status: 'APPROVE' }),
    });
    expect(forged.status).toBe(403);
    const asForm = await fetch(`${api.base}/console/api/runs/${runId}/approval`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'status=APPROVE',
    });
    expect(asForm.status).toBe(415);
    expect(status(runId)).toBe('WAITING_FOR_APPROVAL');
    const declined = await cli('acme-lead', 'decline', runId, '--description', 'not today');
    expect(declined.code).toBe(0);
    expect(declined.out).toMatch(new RegExp(`DECLINED +${runId} +deploy_prod \\(org_acme\\) +declined`));
    expect(status(runId)).toBe('DECLINED');
  });

  describe('in the console', () => {
    let browser: Browser;
    beforeAll(async () => {
      browser = await chromium.launch(launchOptions());
    });
    afterAll(async () => {
      await browser?.close();
    });

    test('an approver sees the waiting run highlighted, approves it, and watches it reach SUCCESS', async () => {
      const runId = await trigger('deploy_prod');
      await waiting(runId);
      const page = await (await browser.newContext()).newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${api.base}/login?next=${encodeURIComponent(`/runs/${runId}`)}`);
      await page.getByLabel('Client id').fill('acme-lead');
      await page.getByLabel('Client secret').fill(CLIENTS['acme-lead'].secret);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(`${api.base}/runs/${runId}`);
      await page.locator('section.approval.state-waiting').waitFor();
      expect(await page.locator('.run-head .chip').textContent()).toBe('waiting for approval');
      await page.getByLabel('Description').fill('ship it');
      await page.getByRole('button', { name: 'Approve' }).click();
      // Polled from here: the console's Content-Security-Policy forbids evaluating strings in the page.
      await eventually(async () => (await page.locator('.run-head .chip').textContent()) === 'success', 'SUCCESS on screen', 15_000);
      expect(await page.locator('section.approval').textContent()).toContain('“ship it”');
      expect(await page.locator('section[aria-labelledby="h-response"] pre').textContent()).toBe('{\n  "ok": true\n}');
      expect(receiver.deliveries(runId)).toBe(1);
      // The list shows waiting runs highlighted.
      const waitingId = await trigger('deploy_prod');
      await waiting(waitingId);
      await page.goto(`${api.base}/?status=WAITING_FOR_APPROVAL`);
      await page.locator(`#runs tbody tr[data-id="${waitingId}"][data-status="WAITING_FOR_APPROVAL"]`).waitFor();
      // The overview counts the org's waiting runs and links to them.
      const stat = page.locator('#overview a.stat.wait');
      await stat.waitFor();
      expect(await stat.getAttribute('href')).toBe('/?status=WAITING_FOR_APPROVAL');
      const shown = Number(await stat.locator('.v').textContent());
      expect(shown).toBe((await app.runs!.queries.listRuns({ orgId: 'org_acme', statuses: ['WAITING_FOR_APPROVAL'] }, { limit: 1000 })).rows.length);
      expect(errors).toEqual([]);
    });
  });
});

// Issue 18, defect 9: a notification ran on a signal nothing ever aborted, so a slow approvers' endpoint kept it
// (and its retries, and its write to the store) going past the router's stop.
describe('approval notifications at shutdown', () => {
  const kafka = new TestKafka();
  const topics = testTopics();
  /** An approvers' endpoint that never answers, noting each request and when its caller gave up on it. */
  const held: { closed: boolean }[] = [];
  const hanging = http.createServer((req) => {
    const call = { closed: false };
    held.push(call);
    req.socket.on('close', () => (call.closed = true));
  });
  afterAll(async () => {
    hanging.closeAllConnections();
    await new Promise((r) => hanging.close(r));
    await kafka.deleteTopics(topics);
    await kafka.close();
  });

  it('a notification under way ends when the router stops, and stop waits for it', async () => {
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(hanging.address() as AddressInfo).port}/approvals`;
    const dir = tempDir('approval-notify-');
    writeFileSync(
      join(dir, 'actions.json'),
      JSON.stringify([{ identifier: 'deploy_prod', requiredApproval: true, approvalNotification: { type: 'webhook', url }, invocationMethod: { type: 'WEBHOOK', url } }]),
    );
    const app = await startApp(
      testConfig(topics, { ACTIONS_PATH: join(dir, 'actions.json'), APPROVAL_SECRET: 'approval-test-parking-secret-0123456789', WEBHOOK_ALLOWED_HOSTS: '127.0.0.1', WEBHOOK_TIMEOUT_MS: '60000' }),
    );
    try {
      await kafka.produce(topics.trigger, [{ key: 'r_notify', value: JSON.stringify(samplePortMessage({ runId: 'r_notify', action: 'deploy_prod' })) }]);
      await eventually(() => held.length === 1, 'the approvers’ endpoint is called');
      expect(app.approvals!.notificationsInFlight).toBe(1);
    } finally {
      await app.stop();
    }
    expect(app.approvals!.notificationsInFlight).toBe(0);
    await eventually(() => held[0]!.closed, 'the notification’s request is given up', 5_000);
  });
});
