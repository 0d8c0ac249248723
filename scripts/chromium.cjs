// Finds a Chromium for the browser tests, the bench and the screenshots:
// CHROMIUM_PATH, else Debian's package (`apt-get install chromium`). Nothing
// is downloaded: playwright-core drives the browser that is installed.
'use strict';
const { accessSync, constants } = require('node:fs');
const { delimiter, join } = require('node:path');

const NAMES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

function findChromium(env = process.env) {
  if (env.CHROMIUM_PATH) return env.CHROMIUM_PATH;
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    for (const name of NAMES) {
      const path = join(dir, name);
      try {
        accessSync(path, constants.X_OK);
        return path;
      } catch {
        // not here
      }
    }
  }
  return null;
}

/** Launch options for playwright-core's chromium.launch(). */
function launchOptions(env = process.env) {
  const executablePath = findChromium(env);
  if (!executablePath) {
    throw new Error('no Chromium found: set CHROMIUM_PATH or install it (apt-get install chromium)');
  }
  // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
  return { executablePath, headless: true, args: ['--no-sandbox', '--disable-dev-shm-usage'] };
}

module.exports = { findChromium, launchOptions };
