// Regenerates the console screenshots under docs/: runs the demo (which
// leaves the console running), signs in with the credentials it prints,
// and photographs the runs list, a run page and the dead-letter page.
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
    const m = /Runs console: (\S+)\n\s+sign in as (\S+) \/ (\S+)/.exec(text);
    if (m) resolve({ url: m[1], clientId: m[2], secret: m[3] });
  });
  demo.on('exit', (code) => reject(new Error(`the demo exited (${code}) before the console was up`)));
});

const { url, clientId, secret } = await ready;
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
  console.log(`\nscreenshots written to ${out}`);
} finally {
  await browser.close();
  demo.kill('SIGINT');
}
