import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Browser, Page, chromium } from 'playwright-core';
import { samplePortMessage } from '../../src/sample';
import { apiEnv } from '../helpers/api';
import { ConsolePages, launchOptions, text, visible } from '../helpers/browser';
import { tempDir } from '../helpers/cleanup';
import { TestKafka, TestTopics, eventually, testTopics, topicEnv } from '../helpers/kafka';
import { RouterProcess, TestProvider, TestUser } from '../helpers/oidc';

const CLIENT_SECRET = 'oidc-client-secret-0123456789';
const USERS: Record<string, TestUser> = {
  alice: { email: 'alice@acme.test', name: 'Alice Adams', groups: ['team-acme'] },
  bob: { email: 'bob@acme.test', name: 'Bob Brown', groups: ['team-acme'] },
  root: { email: 'root@platform.test', name: 'Root Admin', groups: ['platform-admins'] },
  eve: { email: 'eve@contractor.test', name: 'Eve', groups: ['contractors'] },
};
const ACCESS = {
  'platform-admins': { orgId: '*', roles: ['admin'] },
  'team-acme': { orgId: 'org_acme', roles: ['member'] },
};

/**
 * People sign in through a real OpenID provider (node-oidc-provider, in a
 * process of its own) with Chromium, to a router process: the mapping of
 * groups to orgs, refusals, identity on runs and approvals, sign-out at the
 * provider, and a group removed at the provider taking effect at refresh.
 */
describe('people sign in with OpenID Connect (browser)', () => {
  const kafka = new TestKafka();
  let topics: TestTopics;
  let provider: TestProvider;
  let router: RouterProcess;
  let browser: Browser;
  let pages: ConsolePages;

  beforeAll(async () => {
    topics = testTopics();
    const { port, base } = await RouterProcess.port();
    provider = await TestProvider.start(base, USERS, CLIENT_SECRET);
    const dir = tempDir('oidc-browser-');
    writeFileSync(join(dir, 'access.json'), JSON.stringify(ACCESS));
    writeFileSync(
      join(dir, 'actions.json'),
      JSON.stringify([
        { identifier: 'notify', title: 'Notify the team', trigger: 'CREATE', userInputs: { properties: { message: { type: 'string', title: 'Message' } }, required: ['message'] }, invocationMethod: { type: 'KAFKA' } },
        { identifier: 'deploy', title: 'Deploy', trigger: 'CREATE', requiredApproval: true, approvers: { users: ['bob@acme.test'] }, invocationMethod: { type: 'KAFKA' } },
      ]),
    );
    router = await RouterProcess.start(
      port,
      {
        ...topicEnv(topics),
        ...apiEnv(),
        ACTIONS_PATH: join(dir, 'actions.json'),
        APPROVAL_SECRET: 'oidc-browser-approval-secret-0123456789',
        PUBLIC_URL: base,
        OIDC_ISSUER_URL: provider.issuer,
        OIDC_CLIENT_ID: 'action-router',
        OIDC_CLIENT_SECRET: CLIENT_SECRET,
        OIDC_SCOPES: 'openid email profile groups offline_access',
        OIDC_ACCESS_FILE: join(dir, 'access.json'),
        OIDC_PROVIDER_NAME: 'Test IdP',
        OIDC_REFRESH_SECONDS: '2',
        LOG_LEVEL: 'info',
      },
      'oidc-browser',
    );
    browser = await chromium.launch(launchOptions());
    pages = new ConsolePages(browser, () => router.base);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await router?.stop();
    await provider?.stop();
    await kafka.close();
  });
  // The provider's development pages load a resource from the internet, which this machine does not reach.
  afterEach(() => expect(pages.errors.filter((e) => !e.includes('net::ERR_NAME_NOT_RESOLVED'))).toEqual([]));

  /** Signs `login` in at the provider's own page; resolves on the page the console lands on (`refused`: the callback's own page). */
  async function personSignIn(login: string, refused = false): Promise<Page> {
    const page = await pages.page(login);
    await page.goto(`${router.base}/`);
    await page.waitForURL(/\/login\?next=/);
    await page.getByRole('link', { name: 'Sign in with Test IdP' }).click();
    await page.waitForURL((url) => url.href.startsWith(provider.issuer));
    await page.locator('input[name="login"]').fill(login);
    await page.locator('input[name="password"]').fill('any password');
    await page.locator('button[type="submit"]').click();
    // Signed in: the callback's page moves on to the console; refused: it stays, saying why.
    if (refused) await page.waitForURL((url) => url.href.startsWith(`${router.base}/login/oidc/callback`));
    else await page.waitForURL((url) => url.href.startsWith(router.base) && !url.pathname.startsWith('/login'));
    await page.waitForLoadState('load');
    return page;
  }

  async function trigger(orgId: string, runId: string): Promise<void> {
    await kafka.produce(topics.trigger, [{ key: runId, value: JSON.stringify(samplePortMessage({ runId, orgId, action: 'notify', trigger: 'CREATE', properties: { message: 'hi' } })) }]);
  }

  test('a mapped person sees their org’s runs only; a platform admin sees every org', async () => {
    await trigger('org_acme', 'r_oidcacme1');
    await trigger('org_globex', 'r_oidcglobex1');
    const alice = await personSignIn('alice');
    await alice.waitForSelector('#runs[aria-busy="false"]');
    await visible(alice.locator('#runs tbody tr[data-id="r_oidcacme1"]'));
    expect(await alice.locator('#runs tbody tr[data-id="r_oidcglobex1"]').count()).toBe(0);
    await text(alice.locator('header.top .who'), 'alice@acme.test', true);
    // The session cookie is out of the script's reach.
    expect(await alice.evaluate('document.cookie')).toBe('');
    const root = await personSignIn('root');
    await root.waitForSelector('#runs[aria-busy="false"]');
    await visible(root.locator('#runs tbody tr[data-id="r_oidcacme1"]'));
    await visible(root.locator('#runs tbody tr[data-id="r_oidcglobex1"]'));
  });

  test('a person none of whose groups is mapped is refused with a page that says why, and gets no session', async () => {
    const eve = await personSignIn('eve', true);
    await text(eve.getByRole('alert'), 'none of your groups (contractors) is in OIDC_ACCESS_FILE', true);
    const cookies = await eve.context().cookies();
    expect(cookies.filter((c) => c.name === 'ar_person' && c.value !== '')).toEqual([]);
    const me = await eve.evaluate(`fetch('/console/api/me').then((r) => r.status)`);
    expect(me).toBe(401);
  });

  test('a run from the self-service page records the person; an approval records the approver', async () => {
    const alice = await personSignIn('alice');
    await alice.goto(`${router.base}/actions/notify`);
    await alice.waitForSelector('#action[aria-busy="false"]');
    await alice.getByLabel(/^Message/).fill('from a person');
    await alice.getByRole('button', { name: 'Run', exact: true }).click();
    await alice.waitForURL(/\/runs\/r_/);
    const runId = decodeURIComponent(alice.url().split('/runs/')[1]!);
    await text(alice.locator('.run-head dl'), 'alice@acme.test', true);
    const sent = (await kafka.collect(topics.trigger, (ms) => ms.some((m) => m.key?.toString() === runId))).find((m) => m.key?.toString() === runId)!;
    expect(JSON.parse(sent.value!.toString())).toMatchObject({ trigger: { origin: 'UI', by: { orgId: 'org_acme', userId: 'alice', user: { email: 'alice@acme.test', firstName: 'Alice', lastName: 'Adams' } } } });

    // Alice asks for a deploy; Bob, listed by email, approves it.
    await alice.goto(`${router.base}/actions/deploy`);
    await alice.waitForSelector('#action[aria-busy="false"]');
    await alice.getByRole('button', { name: 'Run', exact: true }).click();
    await alice.waitForURL(/\/runs\/r_/);
    const deployId = decodeURIComponent(alice.url().split('/runs/')[1]!);
    await text(alice.locator('.run-head .chip'), 'waiting for approval');
    // Alice is not an approver.
    expect(await alice.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    const bob = await personSignIn('bob');
    await bob.goto(`${router.base}/runs/${deployId}`);
    await bob.getByRole('button', { name: 'Approve' }).click();
    await text(bob.locator('ol.logs'), 'Approved by bob@acme.test', true);
    await text(bob.locator('section.approval'), 'bob@acme.test', true);
  });

  test('signing out ends the session here and at the provider', async () => {
    const alice = await personSignIn('alice');
    await alice.waitForSelector('#runs[aria-busy="false"]');
    const session = (await alice.context().cookies()).find((c) => c.name === 'ar_person')!;
    await alice.getByRole('button', { name: 'Sign out' }).click();
    // RP-initiated logout: the provider asks, then sends the browser back to the sign-in page.
    await alice.waitForURL((url) => url.href.startsWith(provider.issuer));
    await alice.locator('button[autofocus], button[type="submit"]').first().click();
    await alice.waitForURL(`${router.base}/login`);
    // The old cookie, sent again, opens nothing.
    const replay = await fetch(`${router.base}/console/api/me`, { headers: { cookie: `ar_person=${session.value}` } });
    expect(replay.status).toBe(401);
    // And the provider's session is gone too: signing in asks for the login again.
    await alice.goto(`${router.base}/login/oidc?next=%2F`);
    await alice.waitForURL((url) => url.href.startsWith(provider.issuer));
    await visible(alice.locator('input[name="login"]'));
  });

  test('a group removed at the provider takes effect at the next refresh', async () => {
    const alice = await personSignIn('alice');
    await alice.waitForSelector('#runs[aria-busy="false"]');
    expect(await alice.evaluate(`fetch('/console/api/me').then((r) => r.status)`)).toBe(200);
    provider.setUsers({ ...USERS, alice: { ...USERS.alice, groups: ['former-staff'] } });
    try {
      await eventually(async () => (await alice.evaluate(`fetch('/console/api/me').then((r) => r.status)`)) === 401, 'the session ends at its groups check', 15_000);
      await alice.reload();
      await alice.waitForURL(/\/login\?next=/);
    } finally {
      provider.setUsers(USERS);
    }
  });
});
