import { Browser, Page, chromium } from 'playwright-core';
import type { App } from '../../src/app';
import { newRunId, samplePortMessage } from '../../src/sample';
import { ApiClient, ClientId, apiEnv } from '../helpers/api';
import { ConsolePages, count, launchOptions, text, visible } from '../helpers/browser';
import { TestKafka, TestTopics, eventually, startApp, testConfig, testTopics } from '../helpers/kafka';

/**
 * The console in a real browser (Debian's Chromium, driven by
 * playwright-core) against a router on the real broker: sign-in, org
 * isolation, runs appearing and changing live, a log line tailing on the
 * run page, filters, the dead-letter page, and nothing a run carries
 * turning into markup.
 */
describe('runs console (browser)', () => {
  let topics: TestTopics;
  let app: App;
  let api: ApiClient;
  let browser: Browser;
  const kafka = new TestKafka();
  let pages: ConsolePages;

  beforeAll(async () => {
    topics = testTopics();
    app = await startApp(testConfig(topics, apiEnv()));
    api = await ApiClient.start(app);
    browser = await chromium.launch(launchOptions());
    pages = new ConsolePages(browser, () => api.base);
  });
  afterAll(async () => {
    await browser?.close();
    await api.close();
    await app.stop();
    await kafka.close();
  });
  afterEach(() => {
    // No script error and no Content-Security-Policy violation on any page.
    expect(pages.errors).toEqual([]);
  });

  async function trigger(orgId: string, extra: { title?: string; runId?: string } = {}): Promise<string> {
    const runId = extra.runId ?? newRunId();
    const msg = samplePortMessage({ runId, orgId, invocationMethod: { type: 'KAFKA' } });
    if (extra.title) (msg.payload as { entity: { title: string } }).entity.title = extra.title;
    await kafka.produce(topics.trigger, [{ key: runId, value: JSON.stringify(msg) }]);
    return runId;
  }

  async function stored(runId: string): Promise<void> {
    await eventually(() => app.runs!.store.getRun(runId) !== undefined, `run ${runId} in the store`);
  }

  const signedIn = (client: ClientId, viewport?: { width: number; height: number }) => pages.signedIn(client, viewport);

  const row = (page: Page, runId: string) => page.locator(`#runs tbody tr[data-id="${runId}"]`);

  test('the console needs a sign-in; wrong credentials are refused on the page', async () => {
    const page = await pages.page('anonymous');
    const context = page.context();
    await page.goto(`${api.base}/dead-letters`);
    expect(page.url()).toBe(`${api.base}/login?next=%2Fdead-letters`);
    await page.getByLabel('Client id').fill('acme-ci');
    await page.getByLabel('Client secret').fill('not the secret');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await text(page.getByRole('alert'), 'Those credentials were not accepted.');
    const cookies = await context.cookies();
    expect(cookies).toEqual([]);
  });

  test("a signed-in org's client sees its runs and no other org's; the operator sees both", async () => {
    const mine = await trigger('org_acme');
    const theirs = await trigger('org_globex');
    await stored(mine);
    await stored(theirs);
    const acme = await signedIn('acme-ci');
    await visible(row(acme, mine));
    expect(await row(acme, theirs).count()).toBe(0);
    const orgs = await acme.locator('#runs tbody td.c-org').allTextContents();
    expect(new Set(orgs)).toEqual(new Set(['org_acme']));
    // The cookie is out of the script's reach.
    expect(await acme.evaluate('document.cookie')).toBe('');
    const ops = await signedIn('operator');
    await visible(row(ops, mine));
    await visible(row(ops, theirs));
  });

  test('a run produced to the trigger topic appears live and walks IN_PROGRESS → SUCCESS on screen', async () => {
    const page = await signedIn('acme-ci');
    await page.evaluate('window.stayed = true');
    const runId = await trigger('org_acme');
    await text(row(page, runId).locator('.chip'), 'in progress');
    const token = await api.token('acme-ci');
    expect((await api.call('PATCH', `/v1/actions/runs/${runId}`, { token, body: { status: 'SUCCESS', statusLabel: 'Deployed 1.4.2' } })).status).toBe(200);
    await text(row(page, runId).locator('.chip'), 'success');
    await text(row(page, runId).locator('td.c-label'), 'Deployed 1.4.2');
    // Live, not reloaded.
    expect(await page.evaluate('window.stayed')).toBe(true);
    await text(page.locator('#live-status'), 'new run', true);
  });

  test("a backend's log line appears on the run page while it is open", async () => {
    const runId = await trigger('org_acme');
    await stored(runId);
    const page = await signedIn('acme-ci');
    await row(page, runId).getByRole('link').click();
    await page.waitForURL(`${api.base}/runs/${runId}`);
    await text(page.locator('ol.logs li').first(), 'Routed to Kafka topic', true);
    await text(page.getByRole('heading', { level: 1 }), runId, true);
    const token = await api.token('acme-ci');
    const line = `step 2 of 3: migrating ${newRunId()}`;
    expect((await api.call('POST', `/v1/actions/runs/${runId}/logs`, { token, body: { message: line } })).status).toBe(201);
    await visible(page.locator('ol.logs li', { hasText: line }));
    await text(page.locator('ol.logs li', { hasText: line }).locator('.by'), 'acme-ci');
    expect((await api.call('PATCH', `/v1/actions/runs/${runId}`, { token, body: { status: 'FAILURE', summary: 'migration failed' } })).status).toBe(200);
    await text(page.locator('.run-head .chip'), 'failure');
    await count(page.locator('table.timeline tbody tr'), 3);
    await text(page.locator('table.timeline tbody tr').last(), 'backend acme-ci', true);
  });

  test('filters narrow the list and are kept in the address', async () => {
    const done = await trigger('org_acme');
    const open = await trigger('org_acme');
    await stored(done);
    await stored(open);
    const token = await api.token('acme-ci');
    await api.call('PATCH', `/v1/actions/runs/${done}`, { token, body: { status: 'SUCCESS' } });
    await eventually(() => app.runs!.store.getRun(done)!.status === 'SUCCESS', 'run ended');
    const page = await signedIn('acme-ci');
    await page.getByLabel('Status').selectOption('SUCCESS');
    await count(row(page, open), 0);
    await visible(row(page, done));
    expect(page.url()).toContain('status=SUCCESS');
    await page.getByLabel('Status').selectOption('');
    await page.getByLabel('Search').fill(open.slice(2, 10));
    await visible(row(page, open));
    await count(page.locator('#runs tbody tr'), 1);
    await page.getByLabel('Search').fill('');
    await page.getByLabel('Active only').check();
    await visible(row(page, open));
    await count(row(page, done), 0);
  });

  test('the dead-letter page shows a poison message with its reason, as text and as hex', async () => {
    const page = await signedIn('operator');
    await page.getByRole('link', { name: 'Dead letters' }).click();
    await page.waitForURL(`${api.base}/dead-letters`);
    const marker = `poison-${newRunId()}`;
    await kafka.produce(topics.trigger, [{ key: marker, value: `{"not": "closed ${marker}"` }]);
    const letter = page.locator('#letters tbody tr', { hasText: 'DECODE_FAILED' }).first();
    await visible(letter);
    await text(page.locator('#reasons'), 'DECODE_FAILED', true);
    await letter.locator('td.c-error button').click();
    await text(page.locator('pre.payload'), `{"not": "closed ${marker}"`);
    await page.getByRole('button', { name: 'Hex' }).click();
    await text(page.locator('pre.payload'), '00000000  7b 22 6e 6f 74 22 3a 20', true);
    await text(page.locator('dl.headers'), 'x-dlq-source-topic', true);
  });

  test('what a run carries is shown as text, never as markup', async () => {
    const runId = await trigger('org_acme', { title: '<img src=x onerror="window.pwned=1">' });
    await stored(runId);
    const page = await signedIn('acme-ci');
    await text(row(page, runId).locator('td.c-entity'), '<img src=x onerror="window.pwned=1">');
    await row(page, runId).getByRole('link').click();
    await text(page.locator('dl.meta'), '<img src=x', true);
    expect(await page.evaluate('window.pwned')).toBeUndefined();
    expect(await page.locator('img').count()).toBe(0);
  });

  test('a response of megabytes is shown cut, with a note, and the rest of the page still renders', async () => {
    const runId = await trigger('org_acme');
    await stored(runId);
    // 60 levels (within the depth limit) around 400,000 numbers: about 1 MB of JSON, 50 MB pretty-printed in full.
    const response = `${'['.repeat(60)}${new Array(400_000).fill(7).join(',')}${']'.repeat(60)}`;
    const update = { runId, orgId: 'org_acme', action: 'deploy_service', status: 'IN_PROGRESS', statusLabel: 'answered', summary: null, links: [], externalRunId: null, log: null, invocationType: 'KAFKA', source: 'BACKEND', attempt: 1, at: Date.now(), response };
    await kafka.produce(topics.status, [{ key: runId, value: JSON.stringify(update) }]);
    await eventually(() => app.runs!.store.getRun(runId)?.statusLabel === 'answered', 'the response in the store');
    const page = await signedIn('acme-ci');
    await page.goto(`${api.base}/runs/${runId}`);
    await visible(page.locator('#run[aria-busy="false"]'));
    const shown = page.locator('section[aria-labelledby="h-response"] pre.json');
    const length = await shown.evaluate((e) => e.textContent!.length);
    expect(length).toBe(100_000);
    expect(await shown.evaluate((e) => e.textContent!.startsWith('[\n  [\n    ['))).toBe(true);
    await text(page.locator('p.cut'), 'Cut at 100,000 characters', true);
    // The sections after it are there too.
    await visible(page.locator('section[aria-labelledby="h-properties"] pre.json'));
  });

  test('labelled controls, keyboard navigation, and a phone-sized screen', async () => {
    const runId = await trigger('org_acme');
    await stored(runId);
    const page = await signedIn('acme-ci', { width: 390, height: 844 });
    const unlabelled = await page.evaluate(
      "[...document.querySelectorAll('input:not([type=hidden]), select')].filter((e) => e.labels.length === 0).map((e) => e.id)",
    );
    expect(unlabelled).toEqual([]);
    // Nothing wider than the screen but the table, which scrolls in its own box.
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
    // Keyboard only: focus the run's link and follow it.
    await row(page, runId).getByRole('link').focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(`${api.base}/runs/${runId}`);
    await visible(page.locator('#run[aria-busy="false"]'));
  });
});
