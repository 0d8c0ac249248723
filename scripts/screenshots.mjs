// Regenerates the console screenshots under docs/: runs the demo (which
// leaves the console running), signs in with the credentials it prints,
// and photographs the runs list, a run page and the dead-letter page, then
// (as the demo's org admin) the self-service page and an action's form.
//   npm run screenshots      (KAFKA_BROKERS unset: the local broker)
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import chromiumHelper from './chromium.cjs';

const { launchOptions } = chromiumHelper;

const root = new URL('..', import.meta.url).pathname;
const out = join(root, 'docs');
mkdirSync(out, { recursive: true });

const demo = spawn(process.execPath, [join(root, 'bin/action-router.js'), 'demo'], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
let text = '';
const ready = new Promise((resolve, reject) => {
  demo.stdout.on('data', (d) => {
    text += d;
    process.stdout.write(d);
    const m = /Runs console: (\S+)\n\s+sign in as (\S+) \/ (\S+).*\n\s+or as (\S+) \/ (\S+)/.exec(text);
    if (m) resolve({ url: m[1], clientId: m[2], secret: m[3], devId: m[4], devSecret: m[5] });
  });
  demo.on('exit', (code) => reject(new Error(`the demo exited (${code}) before the console was up`)));
});

const { url, clientId, secret, devId, devSecret } = await ready;
const browser = await chromium.launch(launchOptions());
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 720 }, deviceScaleFactor: 1 });
  await page.goto(url);
  await page.fill('#clientId', clientId);
  await page.fill('#clientSecret', secret);
  await page.click('button[type=submit]');
  await page.waitForSelector('#runs tbody tr[data-id]');
  await page.waitForSelector('#overview .stat');
  await page.screenshot({ path: join(out, 'console-runs.png') });
  const github = page.locator('#runs tbody tr', { hasText: 'GITHUB' }).first();
  await github.locator('a').first().click();
  await page.waitForSelector('table.timeline tbody tr');
  await page.screenshot({ path: join(out, 'console-run.png'), fullPage: true });
  await page.goto(new URL('/dead-letters', url).href);
  await page.waitForSelector('#letters tbody tr[data-seq]');
  await page.click('#letters tbody tr[data-seq] button');
  await page.waitForSelector('pre.payload');
  await page.screenshot({ path: join(out, 'console-dead-letters.png') });
  const dev = await browser.newPage({ viewport: { width: 1280, height: 720 }, deviceScaleFactor: 1 });
  await dev.goto(new URL('/actions', url).href);
  await dev.fill('#clientId', devId);
  await dev.fill('#clientSecret', devSecret);
  await dev.click('button[type=submit]');
  await dev.waitForSelector('#actions[aria-busy="false"] .action-card');
  await dev.screenshot({ path: join(out, 'console-self-service.png') });
  await dev.click('text=Scaffold a service');
  await dev.waitForSelector('#action[aria-busy="false"] form');
  await dev.fill('#in-0', 'Payments API');
  await dev.click('button.primary');
  await dev.waitForSelector('.form-field.invalid');
  await dev.screenshot({ path: join(out, 'console-form.png'), fullPage: true });
  console.log(`\nscreenshots written to ${out}`);
} finally {
  await browser.close();
  demo.kill('SIGINT');
}
