import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { CLIENTS, ClientId } from './api';

/** Debian's Chromium for playwright-core (scripts/chromium.cjs finds it). */
export const { launchOptions } = require('../../scripts/chromium.cjs') as { launchOptions: () => Record<string, unknown> };

/** How long the page may take to show a change (the live feed, not a reload). */
export const LIVE_MS = 10_000;

/** Waits until `locator` is visible. */
export async function visible(locator: Locator, timeout = LIVE_MS): Promise<void> {
  await locator.first().waitFor({ state: 'visible', timeout });
}

/** Waits until `locator`'s text is (or, with `contains`, includes) `expected`. */
export async function text(locator: Locator, expected: string, contains = false, timeout = LIVE_MS): Promise<void> {
  const deadline = Date.now() + timeout;
  let last: string | null = null;
  while (Date.now() < deadline) {
    last = (await locator.count()) > 0 ? await locator.first().textContent() : null;
    if (last !== null && (contains ? last.includes(expected) : last === expected)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`expected text ${contains ? 'containing ' : ''}"${expected}", last saw ${JSON.stringify(last)}`);
}

/** Waits until `locator` matches `n` elements. */
export async function count(locator: Locator, n: number, timeout = LIVE_MS): Promise<void> {
  const deadline = Date.now() + timeout;
  let last = -1;
  while (Date.now() < deadline) {
    last = await locator.count();
    if (last === n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`expected ${n} elements, saw ${last}`);
}

/**
 * Signed-in pages of one browser, each in its own context. Every script
 * error and Content-Security-Policy violation lands in `errors` (a test
 * expects it empty).
 */
export class ConsolePages {
  readonly errors: string[] = [];
  private readonly contexts: BrowserContext[] = [];

  constructor(
    private readonly browser: Browser,
    private readonly base: () => string,
  ) {}

  /** A fresh context's page, its errors watched. */
  async page(label: string, viewport = { width: 1280, height: 800 }): Promise<Page> {
    const context = await this.browser.newContext({ viewport });
    this.contexts.push(context);
    const page = await context.newPage();
    page.on('pageerror', (e) => this.errors.push(`${label}: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4(01|03|04|22)/.test(m.text())) this.errors.push(`${label}: ${m.text()}`);
    });
    return page;
  }

  /** Signs `client` in through the sign-in page and lands on the runs list. */
  async signedIn(client: ClientId, viewport?: { width: number; height: number }): Promise<Page> {
    const page = await this.page(client, viewport);
    await page.goto(`${this.base()}/`);
    await page.waitForURL(/\/login\?next=%2F$/);
    await page.getByLabel('Client id').fill(client);
    await page.getByLabel('Client secret').fill(CLIENTS[client].secret);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${this.base()}/`);
    await page.waitForSelector('#runs[aria-busy="false"]');
    return page;
  }
}
