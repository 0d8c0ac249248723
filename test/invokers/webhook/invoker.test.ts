import { createServer, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RETRY_DEFAULTS } from '../../../src/config/fragments';
import { WebhookReceiver } from '../../../src/dev/webhook-receiver';
import { ErrorCodes } from '../../../src/errors';
import { verifyPortSignature } from '../../../src/invokers/sign';
import { webhookConfigSchema } from '../../../src/invokers/webhook/config';
import { WebhookInvoker } from '../../../src/invokers/webhook/invoker';
import type { JsonObject } from '../../../src/model/json';
import { runOf, testContext } from '../../helpers/invoke';

const SECRET = 'webhook-secret';
const retry = { ...RETRY_DEFAULTS, maxAttempts: 3, initialDelayMs: 10, maxDelayMs: 20 };

function invoker(overrides: Record<string, unknown> = {}) {
  return new WebhookInvoker({
    config: webhookConfigSchema.parse({ allowedHosts: '127.0.0.1', timeoutMs: 2_000, retry, ...overrides }),
    secretFor: () => SECRET,
  });
}

describe('WebhookInvoker', () => {
  const receiver = new WebhookReceiver(SECRET);
  beforeAll(() => receiver.start());
  afterAll(() => receiver.close());
  const last = () => receiver.received[receiver.received.length - 1]!;

  it('POSTs Port’s run message, signed over the exact bytes, with run-id and idempotency headers', async () => {
    const run = await runOf({ type: 'WEBHOOK', url: `${receiver.url}/deploy` });
    const { ctx } = testContext();
    const outcome = await invoker().invoke(run, ctx);
    expect(outcome).toMatchObject({ status: 'delivered', log: expect.stringContaining('HTTP 200') });
    const got = last();
    expect(got.signatureOk).toBe(true);
    expect(got.request.method).toBe('POST');
    const h = got.request.headers;
    expect(verifyPortSignature(SECRET, got.request.body, h['x-port-timestamp'] as string, h['x-port-signature'] as string)).toEqual({ ok: true });
    expect(h['x-run-id']).toBe('r_test');
    expect(h['idempotency-key']).toBe('r_test');
    expect(h['content-type']).toBe('application/json');
    const body = JSON.parse(got.request.body) as JsonObject;
    expect(body).toMatchObject({ action: 'deploy_service', resourceType: 'run', status: 'TRIGGERED', context: { runId: 'r_test' } });
  });

  it('uses the method, custom headers and custom body of the invocation method', async () => {
    const run = await runOf({ type: 'WEBHOOK', url: `${receiver.url}/x`, method: 'put', headers: { 'X-Team': 'payments' }, body: { service: 'payments', n: 1 } });
    await invoker().invoke(run, testContext().ctx);
    expect(last().request.method).toBe('PUT');
    expect(last().request.headers['x-team']).toBe('payments');
    expect(JSON.parse(last().request.body)).toEqual({ service: 'payments', n: 1 });
    expect(last().signatureOk).toBe(true);
  });

  it('sends GET and DELETE as well', async () => {
    for (const method of ['GET', 'DELETE']) {
      const outcome = await invoker().invoke(await runOf({ type: 'WEBHOOK', url: `${receiver.url}/m`, method }), testContext().ctx);
      expect(outcome.status).toBe('delivered');
      expect(last().request.method).toBe(method);
    }
  });

  it('synchronized: 2xx ends SUCCESS with the response summarised', async () => {
    const outcome = await invoker().invoke(await runOf({ type: 'WEBHOOK', url: `${receiver.url}/s`, synchronized: true }), testContext().ctx);
    expect(outcome.status).toBe('succeeded');
    expect(outcome.summary).toContain('HTTP 200');
    expect(outcome.summary).toContain('"runId":"r_test"');
  });

  it('synchronized: a 4xx ends FAILURE at once, naming the status and the response', async () => {
    const outcome = await invoker().invoke(await runOf({ type: 'WEBHOOK', url: `${receiver.url}/s?status=404`, synchronized: true }), testContext().ctx);
    expect(outcome).toMatchObject({ status: 'failed', code: ErrorCodes.BACKEND_REJECTED, statusLabel: 'HTTP 404' });
    if (outcome.status === 'failed') expect(outcome.summary).toMatch(/HTTP 404: \{"ok":false/);
  });

  it('async: a call still failing after its retries ends FAILURE (never stuck IN_PROGRESS)', async () => {
    const outcome = await invoker().invoke(await runOf({ type: 'WEBHOOK', url: `${receiver.url}/a?status=502` }), testContext().ctx);
    expect(outcome).toMatchObject({ status: 'failed', code: ErrorCodes.BACKEND_UNAVAILABLE, attempt: 3 });
    if (outcome.status === 'failed') expect(outcome.summary).toContain('after 3 attempts');
  });

  it('waits as long as Retry-After asks', async () => {
    receiver.failNext(/^\/ra$/, { status: 429, headers: { 'retry-after': '1' } });
    const t0 = Date.now();
    const outcome = await invoker().invoke(await runOf({ type: 'WEBHOOK', url: `${receiver.url}/ra` }), testContext().ctx);
    expect(outcome.status).toBe('delivered');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
  });

  it('refuses loopback, private and metadata targets unless allowed, without calling', async () => {
    const before = receiver.requests.length;
    const strict = new WebhookInvoker({ config: webhookConfigSchema.parse({ retry }), secretFor: () => undefined });
    for (const url of [`${receiver.url}/no`, receiver.url.replace('127.0.0.1', 'localhost') + '/no', 'http://169.254.169.254/latest/meta-data', 'http://[::1]:1/x',
      // The receiver's own address in IPv6 forms that carry it (mapped, compatible, translated, NAT64, 6to4).
      ...['::ffff:127.0.0.1', '::127.0.0.1', '::ffff:0:7f00:1', '64:ff9b::7f00:1', '2002:7f00:1::1'].map((a) => receiver.url.replace('127.0.0.1', `[${a}]`) + '/no')]) {
      const outcome = await strict.invoke(await runOf({ type: 'WEBHOOK', url }), testContext().ctx);
      expect(outcome).toMatchObject({ status: 'failed', code: ErrorCodes.TARGET_FORBIDDEN });
      if (outcome.status === 'failed') expect(outcome.summary).toContain('WEBHOOK_ALLOWED_HOSTS');
    }
    expect(receiver.requests.length).toBe(before);
  });

  describe('redirects', () => {
    let redirector: Server;
    let url = '';
    beforeAll(async () => {
      redirector = createServer((req, res) => {
        const to = req.url === '/to-meta' ? 'http://169.254.169.254/latest' : `${receiver.url}/landed`;
        res.writeHead(307, { location: to }).end();
      });
      await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
      url = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}`;
    });
    afterAll(() => new Promise<void>((r) => redirector.close(() => r())));

    it('follows a redirect within the origin with every header and the signature', async () => {
      receiver.failNext(/^\/moved$/, { status: 307, headers: { location: '/landed-here' } });
      const headers = { Authorization: 'Bearer team-token', 'X-Api-Key': 'k-123', 'X-Team': 'platform' };
      const outcome = await invoker().invoke(await runOf({ type: 'WEBHOOK', url: `${receiver.url}/moved`, headers }), testContext().ctx);
      expect(outcome.status).toBe('delivered');
      expect(last().request.path).toBe('/landed-here');
      expect(last().signatureOk).toBe(true);
      expect(last().request.headers).toMatchObject({ authorization: 'Bearer team-token', 'x-api-key': 'k-123', 'x-team': 'platform' });
    });

    /** A server on another port (another origin) answering every request with `status` to the receiver. */
    async function redirectingElsewhere(status: number): Promise<{ from: string; close: () => Promise<void> }> {
      const back = createServer((_req, res) => void res.writeHead(status, { location: `${receiver.url}/landed-elsewhere` }).end());
      await new Promise<void>((r) => back.listen(0, '127.0.0.1', r));
      return { from: `http://127.0.0.1:${(back.address() as AddressInfo).port}/start`, close: () => new Promise<void>((r) => back.close(() => r())) };
    }
    const credentials = { Authorization: 'Bearer team-token', 'X-Api-Key': 'k-123', 'Private-Token': 'glpat-1', Cookie: 'sid=1' };

    it.each([307, 308, 301, 302])('a %s to another origin that keeps the body is not followed: nothing reaches the other origin', async (status) => {
      const back = await redirectingElsewhere(status);
      try {
        const seen = receiver.received.length;
        // PUT keeps its body on every one of these; so does POST on 307 and 308.
        for (const method of status >= 307 ? ['POST', 'PUT'] : ['PUT']) {
          const outcome = await invoker().invoke(await runOf({ type: 'WEBHOOK', url: back.from, method, headers: credentials }), testContext().ctx);
          expect(outcome).toMatchObject({ status: 'failed', code: ErrorCodes.BACKEND_REJECTED });
          expect(outcome.summary).toContain(`HTTP ${status} redirect to another origin (${new URL(receiver.url).origin}) not followed`);
        }
        // The body is Port's run message, whose invocation method carries the header values: it must not go.
        expect(receiver.received.length).toBe(seen);
      } finally {
        await back.close();
      }
    });

    it.each([303, 301, 302])('a %s to another origin that drops the body carries no custom header and no signature', async (status) => {
      const back = await redirectingElsewhere(status);
      try {
        const seen = receiver.received.length;
        const outcome = await invoker().invoke(await runOf({ type: 'WEBHOOK', url: back.from, method: status === 303 ? 'PUT' : 'POST', headers: credentials }), testContext().ctx);
        // This receiver checks signatures: the unsigned call is refused (401), and the run fails.
        expect(outcome).toMatchObject({ status: 'failed', statusLabel: 'HTTP 401' });
        expect(receiver.received.length).toBe(seen + 1);
        const got = last().request;
        expect(got.path).toBe('/landed-elsewhere');
        expect(got.method).toBe('GET');
        expect(got.body).toBe('');
        for (const name of ['authorization', 'x-api-key', 'private-token', 'cookie', 'x-port-signature', 'x-port-timestamp']) expect({ name, value: got.headers[name] }).toEqual({ name, value: undefined });
        // The run is still named, so the receiver can deduplicate.
        expect(got.headers['x-run-id']).toBeDefined();
      } finally {
        await back.close();
      }
    });

    it('refuses a redirect to a forbidden address', async () => {
      const outcome = await invoker().invoke(await runOf({ type: 'WEBHOOK', url: `${url}/to-meta` }), testContext().ctx);
      expect(outcome).toMatchObject({ status: 'failed', code: ErrorCodes.TARGET_FORBIDDEN });
    });
  });

  it('keeps an answer nested past the JSON depth limit as text, and one within it as JSON', async () => {
    for (const depth of [65, 5_000]) {
      const deep = `${'['.repeat(depth)}${']'.repeat(depth)}`;
      receiver.failNext(/^\/deep$/, { status: 200, body: deep });
      const outcome = await invoker().invoke(await runOf({ type: 'WEBHOOK', url: `${receiver.url}/deep`, synchronized: true }), testContext().ctx);
      expect(outcome.status).toBe('succeeded');
      expect(outcome.response).toBe(JSON.stringify(deep));
    }
    const within = `${'['.repeat(60)}${']'.repeat(60)}`;
    receiver.failNext(/^\/within$/, { status: 200, body: `  ${within}\n` });
    const kept = await invoker().invoke(await runOf({ type: 'WEBHOOK', url: `${receiver.url}/within`, synchronized: true }), testContext().ctx);
    expect(kept.response).toBe(within);
  });

  it('caps the response it keeps', async () => {
    receiver.failNext(/^\/big$/, { status: 200, body: 'x'.repeat(100_000) });
    const outcome = await invoker({ maxResponseBytes: 1_000 }).invoke(await runOf({ type: 'WEBHOOK', url: `${receiver.url}/big`, synchronized: true }), testContext().ctx);
    expect(outcome.status).toBe('succeeded');
    expect(outcome.summary).toContain('(truncated)');
    expect(outcome.summary!.length).toBeLessThan(1_300);
  });

  it.each([
    [{ type: 'WEBHOOK' }, 'has no url'],
    [{ type: 'WEBHOOK', url: 'not a url' }, 'not a valid URL'],
    [{ type: 'WEBHOOK', url: 'ftp://x.test/' }, 'must be http(s)'],
    [{ type: 'WEBHOOK', url: 'https://x.test/', method: 'TRACE' }, 'is not one of'],
  ])('fails an unusable invocation method %j', async (method, message) => {
    const outcome = await invoker().invoke(await runOf(method), testContext().ctx);
    expect(outcome).toMatchObject({ status: 'failed', code: ErrorCodes.INVOCATION_INVALID });
    expect(outcome.summary).toContain(message);
  });
});
