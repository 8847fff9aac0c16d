// A real browser for the web UI tests: Debian's Chromium, headless, driven
// by playwright-core (which downloads nothing: it is told where the browser
// is). The browser is closed by the test's cleanup; every page's script
// errors and console errors are collected so that a test can show them.

import * as fs from 'node:fs';
import { chromium, type Browser, type BrowserContext, type BrowserContextOptions, type Page } from 'playwright-core';
import type { Cleanup } from './wait.js';

/** Debian's chromium (its wrapper script); CONCH_CHROMIUM names another. */
export const CHROMIUM = process.env.CONCH_CHROMIUM ?? '/usr/bin/chromium';

export function haveChromium(): boolean {
  try {
    fs.accessSync(CHROMIUM, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Launch headless Chromium; closed (with every page) when `cleanup` runs. */
export async function launchBrowser(cleanup: Cleanup): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // the tests run as root, where Chromium's sandbox cannot start
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-extensions'],
    timeout: 60_000,
  });
  cleanup.add(() => browser.close());
  return browser;
}

/** What went wrong in a page's scripts (uncaught errors, console.error, failed loads). */
export interface PageProblems {
  errors: string[];
}

/** A page in a fresh context (its own cookies), its problems recorded. */
export async function openPage(browser: Browser, opts: BrowserContextOptions = {}): Promise<{ context: BrowserContext; page: Page; problems: PageProblems }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...opts });
  const page = await context.newPage();
  const problems: PageProblems = { errors: [] };
  page.on('pageerror', (e) => problems.errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.errors.push(`console.error: ${m.text()} (${m.location().url})`);
  });
  page.on('requestfailed', (r) => {
    // a socket or stream the test closed on purpose is not a problem of the page
    const failure = r.failure()?.errorText ?? '';
    if (!/ERR_ABORTED/.test(failure)) problems.errors.push(`request failed: ${r.url()} ${failure}`);
  });
  return { context, page, problems };
}
