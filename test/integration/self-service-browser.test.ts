import { decryptSecretInput, secretInputKey } from '../../src/model/secret-input';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, Page, chromium } from 'playwright-core';
import type { App } from '../../src/app';
import { userInputsOf } from '../../src/catalog/definition';
import { WebhookReceiver } from '../../src/dev/webhook-receiver';
import { samplePortMessage } from '../../src/sample';
import { ApiClient, apiEnv } from '../helpers/api';
import { ConsolePages, count, launchOptions, text, visible } from '../helpers/browser';
import { tempDir } from '../helpers/cleanup';
import { TestKafka, TestTopics, eventually, startApp, testConfig, testTopics } from '../helpers/kafka';

const SECRET = 'self-service-signing-secret-long-enough-to-key-secret-inputs';

/** A catalog whose first action's form has every input kind the page builds. */
const catalog = (hook: string) => [
  {
    identifier: 'scaffold_service',
    title: 'Scaffold a service',
    description: 'Creates a repository from the template.',
    icon: 'Git',
    trigger: 'CREATE',
    userInputs: {
      properties: {
        name: { type: 'string', title: 'Service name', pattern: '^[a-z][a-z0-9-]*$' },
        language: { type: 'string', title: 'Language', enum: ['TypeScript', 'Go'], default: 'TypeScript' },
        description: { type: 'string', title: 'Description', format: 'multi-line' },
        replicas: { type: 'integer', title: 'Replicas', minimum: 1, maximum: 10, default: 2 },
        private: { type: 'boolean', title: 'Private repository' },
        regions: { type: 'array', title: 'Regions', items: { type: 'string', enum: ['eu', 'us', 'ap'] } },
        owners: { type: 'array', title: 'Owners', items: { type: 'string' } },
        settings: { type: 'object', title: 'Extra settings' },
        launchAt: { type: 'string', title: 'Launch at', format: 'date-time' },
        contact: { type: 'string', title: 'On-call email', format: 'email' },
        runbook: { type: 'string', title: 'Runbook', format: 'url' },
        token: { type: 'string', title: 'Registry token', encryption: 'aes256-gcm' },
      },
      required: ['name', 'regions', 'contact'],
      order: ['name', 'contact', 'language'],
    },
    // The backend takes a moment: the run page shows it in progress, then SUCCESS, live.
    invocationMethod: { type: 'WEBHOOK', url: `${hook}?delay=1500`, synchronized: true },
  },
  {
    identifier: 'restart_service',
    title: 'Restart a service',
    trigger: 'DAY-2',
    userInputs: { properties: { reason: { type: 'string', title: 'Reason', maxLength: 40 } }, required: ['reason'] },
    invocationMethod: { type: 'WEBHOOK', url: hook, synchronized: true },
  },
  { identifier: 'admins_only', title: 'Rotate the org key', trigger: 'CREATE', permissions: { execute: { roles: ['admin'] } }, invocationMethod: { type: 'KAFKA' } },
  { identifier: 'globex_only', title: 'Globex thing', trigger: 'CREATE', orgs: ['org_globex'], invocationMethod: { type: 'KAFKA' } },
];

type Sent = { payload: { properties: Record<string, unknown>; censoredProperties: string[] }; trigger: { origin: string; by: { userId: string } }; context: { entity: string | null } };

/**
 * The self-service page in Debian's Chromium against a router on the real
 * broker: a form with every input kind, checked in the page and then by
 * the server, the run walking to SUCCESS live, permissions, Run again,
 * keyboard-only use at phone width, and re-sending from the dead-letter page.
 */
describe('self-service page (browser)', () => {
  const kafka = new TestKafka();
  const webhook = new WebhookReceiver(SECRET);
  let topics: TestTopics;
  let app: App;
  let api: ApiClient;
  let browser: Browser;
  let pages: ConsolePages;
  const sent = (runId: string) => JSON.parse(webhook.received.find((r) => r.runId === runId)!.request.body) as Sent;

  beforeAll(async () => {
    await webhook.start();
    topics = testTopics();
    const file = join(tempDir('self-service-'), 'actions.json');
    writeFileSync(file, JSON.stringify(catalog(`${webhook.url}/hook`)));
    app = await startApp(testConfig(topics, apiEnv({ ACTIONS_PATH: file, SIGNING_SECRET: SECRET, WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' })));
    api = await ApiClient.start(app);
    browser = await chromium.launch(launchOptions());
    pages = new ConsolePages(browser, () => api.base);
  });
  afterAll(async () => {
    await browser?.close();
    await api.close();
    await app.stop();
    await kafka.close();
    await webhook.close();
  });
  afterEach(() => expect(pages.errors).toEqual([]));

  /** A field by its label's text: the title, and for a required input " * (required)" (the star hidden from screen readers). */
  const field = (page: Page, label: string) => page.getByLabel(new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}( \\* \\(required\\))?$`));
  const errorOf = (page: Page, name: string) => page.locator(`[data-field="${name}"] .field-error`);

  async function openForm(page: Page, title: string): Promise<void> {
    await page.getByRole('link', { name: 'Self-service' }).click();
    await page.waitForSelector('#actions[aria-busy="false"]');
    await page.getByRole('link', { name: title }).click();
    await page.waitForSelector('#action[aria-busy="false"]');
  }

  test('a form of every input kind: checked in the page first, then by the server; submitted, the run walks to SUCCESS live', async () => {
    const page = await pages.signedIn('acme-ci');
    await openForm(page, 'Scaffold a service');
    // Port's order first, then the rest as written; defaults filled in.
    const labels = await page.locator('.form-field > label, .form-field.check > label').allTextContents();
    expect(labels.slice(0, 3)).toEqual(['Service name * (required)', 'On-call email * (required)', 'Language']);
    expect(await field(page, 'Replicas').inputValue()).toBe('2');
    expect(await field(page, 'Registry token').getAttribute('type')).toBe('password');

    // The page's own checks, per field, before anything is sent.
    await field(page, 'Service name').fill('Not Valid');
    await field(page, 'On-call email').fill('nobody');
    await field(page, 'Replicas').fill('40');
    await page.locator('[data-field="settings"] textarea').fill('[1, 2]');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await text(errorOf(page, 'name'), 'Must match ^[a-z][a-z0-9-]*$.');
    await text(errorOf(page, 'contact'), 'Enter an email address.');
    await text(errorOf(page, 'replicas'), 'At most 10.');
    await text(errorOf(page, 'regions'), 'Required.');
    await text(errorOf(page, 'settings'), 'Enter a JSON object.');
    expect(await page.evaluate('document.activeElement && document.activeElement.id')).toBe(await field(page, 'Service name').getAttribute('id'));
    expect(await field(page, 'Service name').getAttribute('aria-invalid')).toBe('true');
    await text(page.locator('.form-errors'), '5 fields need attention.', true);

    // Every kind filled in.
    await field(page, 'Service name').fill('svc-payments');
    await field(page, 'On-call email').fill('oncall@acme.test');
    await field(page, 'Language').selectOption({ label: 'Go' });
    await field(page, 'Description').fill('Line one\nline two');
    await field(page, 'Replicas').fill('3');
    await field(page, 'Private repository').check();
    await field(page, 'Regions').selectOption([{ label: 'eu' }, { label: 'ap' }]);
    await page.getByRole('button', { name: 'Add item' }).click();
    await page.getByLabel('Owners, item 1').fill('dana');
    await page.getByRole('button', { name: 'Add item' }).click();
    await page.getByLabel('Owners, item 2').fill('lee');
    await page.locator('[data-field="settings"] textarea').fill('{"tier": 1, "tags": ["a"]}');
    await field(page, 'Launch at').fill('2027-01-15T09:30:00');
    await field(page, 'Runbook').fill('https://runbooks.acme.test/payments');
    await field(page, 'Registry token').fill('tok-very-secret');

    // The server knows more than the page (the catalog changed under it): its answer lands on the field.
    const name = userInputsOf(app.runs!.catalog!.get('scaffold_service')!).properties.name!;
    name.maxLength = 5;
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await text(errorOf(page, 'name'), 'must have at most 5 characters');
    await text(page.getByRole('status').last(), 'Refused:', true);
    delete name.maxLength;

    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.waitForURL(/\/runs\/r_/);
    const runId = decodeURIComponent(page.url().split('/runs/')[1]!);
    // The run page shows it, and it reaches SUCCESS without a reload.
    await text(page.locator('.run-head .chip'), 'in progress');
    await page.evaluate('window.stayed = true');
    await text(page.locator('.run-head .chip'), 'success');
    expect(await page.evaluate('window.stayed')).toBe(true);
    const body = sent(runId);
    expect(body.payload.properties).toEqual({
      name: 'svc-payments', contact: 'oncall@acme.test', language: 'Go', description: 'Line one\nline two', replicas: 3, private: true,
      regions: ['eu', 'ap'], owners: ['dana', 'lee'], settings: { tier: 1, tags: ['a'] }, launchAt: new Date('2027-01-15T09:30:00').toISOString(),
      runbook: 'https://runbooks.acme.test/payments', token: expect.any(String),
    });
    // The secret reaches the backend encrypted (Port's format, the org's secret as key), and opens to what was typed.
    expect(decryptSecretInput(body.payload.properties.token as string, secretInputKey(SECRET)!)).toBe('tok-very-secret');
    expect(body.payload.censoredProperties).toEqual(['token']);
    expect(body.trigger).toMatchObject({ origin: 'UI', by: { userId: 'acme-ci' } });
    // The secret never reaches the store.
    expect(app.runs!.store.getRun(runId)!.properties).not.toContain('tok-very-secret');
    await text(page.locator('pre.json').filter({ hasText: 'svc-payments' }), '"token": "********"', true);

    // Run again: the same inputs, the secret typed anew; the new run says which it repeats.
    await page.getByRole('link', { name: 'Run again' }).click();
    await page.waitForSelector('#action[aria-busy="false"]');
    expect(await field(page, 'Service name').inputValue()).toBe('svc-payments');
    expect(await field(page, 'Regions').evaluate((s) => [...(s as unknown as { selectedOptions: { textContent: string }[] }).selectedOptions].map((o) => o.textContent))).toEqual(['eu', 'ap']);
    expect(await page.getByLabel('Owners, item 2').inputValue()).toBe('lee');
    expect(await field(page, 'Registry token').inputValue()).toBe('');
    await field(page, 'Registry token').fill('tok-new');
    await page.getByRole('button', { name: 'Run again' }).click();
    await page.waitForURL((url) => url.pathname.startsWith('/runs/') && !url.pathname.endsWith(runId));
    const again = decodeURIComponent(page.url().split('/runs/')[1]!);
    await text(page.locator('.run-head dd a').filter({ hasText: runId }), runId);
    await text(page.locator('.run-head .chip'), 'success');
    const repeated = sent(again).payload.properties;
    expect(repeated).toMatchObject({ name: 'svc-payments', regions: ['eu', 'ap'] });
    expect(decryptSecretInput(repeated.token as string, secretInputKey(SECRET)!)).toBe('tok-new');
    expect(app.runs!.store.getRun(again)!.repeats).toBe(runId);
    expect(app.runs!.store.logs(again, 5, 0).map((l) => l.message)[0]).toContain(`from the console, running ${runId} again`);
  });

  test('the page lists only what the user may run: no other org’s action, none without permission', async () => {
    const member = await pages.signedIn('acme-ci');
    await member.goto(`${api.base}/actions`);
    await member.waitForSelector('#actions[aria-busy="false"]');
    expect(await member.locator('.action-card h2').allTextContents()).toEqual(['Scaffold a service', 'Restart a service']);
    await member.goto(`${api.base}/actions/admins_only`);
    await text(member.getByRole('alert'), 'No such action, or not one you may run.');
    const admin = await pages.signedIn('acme-admin');
    await admin.goto(`${api.base}/actions`);
    await admin.waitForSelector('#actions[aria-busy="false"]');
    expect(await admin.locator('.action-card h2').allTextContents()).toEqual(['Scaffold a service', 'Restart a service', 'Rotate the org key']);
    // Trigger types as Port names them.
    expect(await admin.locator('.action-card .op').allTextContents()).toEqual(['create', 'day-2', 'create']);
    // An operator runs nothing.
    const operator = await pages.signedIn('operator');
    await operator.goto(`${api.base}/actions`);
    await text(operator.locator('#actions .empty'), 'No actions you may run.', true);
  });

  test('keyboard only, at phone width: a DAY-2 action with its entity, and nothing wider than the screen', async () => {
    const page = await pages.signedIn('acme-ci', { width: 390, height: 844 });
    await page.goto(`${api.base}/actions`);
    await page.waitForSelector('#actions[aria-busy="false"]');
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    // Tab to the action's link and open it with Enter.
    for (let i = 0; i < 20 && !(await page.evaluate('document.activeElement && document.activeElement.textContent') === 'Restart a service'); i++) await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.waitForSelector('#action[aria-busy="false"]');
    expect(await page.evaluate('document.documentElement.scrollWidth <= window.innerWidth')).toBe(true);
    // Submit empty with the keyboard: the first field in error takes the focus.
    const entity = field(page, 'Entity');
    await entity.focus();
    await page.keyboard.press('Enter');
    await text(errorOf(page, 'entity'), 'Required.');
    expect(await entity.evaluate((e) => e.matches(':focus'))).toBe(true);
    await page.keyboard.type('payments');
    await page.keyboard.press('Tab');
    await page.keyboard.type('rolling restart');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/runs\/r_/);
    const runId = decodeURIComponent(page.url().split('/runs/')[1]!);
    await text(page.locator('.run-head .chip'), 'success');
    expect(sent(runId)).toMatchObject({ payload: { properties: { reason: 'rolling restart' } }, context: { entity: 'payments' } });
    // Touch targets at phone width.
    await page.goto(`${api.base}/actions/restart_service`);
    await page.waitForSelector('#action[aria-busy="false"]');
    const height = await page.getByRole('button', { name: 'Run', exact: true }).evaluate((b) => b.getBoundingClientRect().height);
    expect(height).toBeGreaterThanOrEqual(44);
  });

  test('an org admin re-sends a dead letter from the page once the catalog allows it; the row says what became of it', async () => {
    const runId = 'r_browserresend1';
    const event = samplePortMessage({ runId, orgId: 'org_acme', action: 'restart_service', properties: { reason: 'x'.repeat(60) }, invocationMethod: { type: 'KAFKA' } });
    await kafka.produce(topics.trigger, [{ key: runId, value: JSON.stringify(event) }]);
    await eventually(() => app.runs!.store.getRun(runId)?.status === 'FAILURE', 'dead-lettered INPUT_INVALID');
    const page = await pages.signedIn('acme-admin');
    await page.goto(`${api.base}/dead-letters?reason=INPUT_INVALID`);
    const row = page.locator('#letters tbody tr', { hasText: runId });
    await visible(row);
    await visible(page.getByRole('button', { name: 'Re-send all INPUT_INVALID letters' }));
    // The catalog is fixed (a longer reason is allowed now), then the letter re-sent from its row.
    const reason = userInputsOf(app.runs!.catalog!.get('restart_service')!).properties.reason!;
    reason.maxLength = 100;
    try {
      await row.getByRole('button', { name: /^Re-send dead letter/ }).click();
      await text(page.locator('#live-status'), 'Re-send: 1 resent');
      await eventually(() => app.runs!.store.getRun(runId)?.status === 'SUCCESS', 'the re-sent run ends SUCCESS');
      await page.reload();
      await text(page.locator('#letters tbody tr', { hasText: runId }).locator('.resent'), 're-sent; run success');
      await count(page.locator('#letters tbody tr', { hasText: runId }).getByRole('button', { name: /^Re-send dead letter/ }), 0);
    } finally {
      reason.maxLength = 40;
    }
    // A member has no re-send buttons.
    const member = await pages.signedIn('acme-ci');
    await member.goto(`${api.base}/dead-letters`);
    await visible(member.locator('#letters tbody tr', { hasText: runId }));
    await count(member.getByRole('button', { name: /^Re-send/ }), 0);
  });
});
