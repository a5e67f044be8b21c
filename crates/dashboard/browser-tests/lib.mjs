// Helpers of the browser tests: real `converge serve` processes on free ports, and Debian's
// chromium driven by playwright-core. Nothing here downloads anything.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CONVERGE = process.env.CONVERGE_BIN;
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// How long a fresh `converge serve` may take to print its dashboard link: it opens five
// SQLite files and runs their migrations, slow on a busy two-core machine in a debug build.
const START_TIMEOUT_MS = 60_000;
// How long a system may take to stop after SIGTERM before it is killed; a graceful
// shutdown finishes requests in flight and must not wait for a page still watching.
const STOP_TIMEOUT_MS = 15_000;

// The flags Debian's chromium needs in a container without a display or a GPU, and those
// that keep it from calling home (updates, sync, field trials): a test must not need the
// network.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function requireTools() {
  if (!CONVERGE || !existsSync(CONVERGE)) {
    throw new Error(`CONVERGE_BIN must name a built converge binary (got ${CONVERGE}); run ./run.sh`);
  }
  if (!existsSync(CHROMIUM)) {
    // Under CI a missing browser fails the run: it never skips.
    throw new Error(`no browser at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM)`);
  }
}

// Starts `converge serve` (or `converge up`: `command: 'up'`, the services as separate
// processes under a supervisor) on a free port with a fresh data directory; resolves once it
// has printed its dashboard link. `extra` are more flags (`--stats-delay-ms 150`).
export async function startSystem({ mode, token, command = 'serve', extra = [] }) {
  const dataDir = mkdtempSync(join(tmpdir(), 'converge-dashboard-test-'));
  const args = [command, '--mode', mode, '--listen', '127.0.0.1:0', '--data-dir', dataDir, ...extra];
  if (command === 'up') args.push('--run-dir', join(dataDir, 'run'));
  const child = spawn(CONVERGE, args, {
    env: { ...process.env, ...(token ? { CONVERGE_DASHBOARD_TOKEN: token } : {}), RUST_LOG: process.env.RUST_LOG || 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const link = await new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`converge ${command} printed no link within ${START_TIMEOUT_MS} ms:\n${stderr}`)), START_TIMEOUT_MS);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const match = stdout.match(/^dashboard: (\S+)$/m);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`converge ${command} exited (${code}) before printing its link:\n${stderr}`));
    });
  });
  const url = new URL(link);
  return {
    mode,
    link,
    dataDir,
    base: url.origin,
    token: new URLSearchParams(url.hash.slice(1)).get('token'),
    stderr: () => stderr,
    // Resolves with how long the system took to stop after SIGTERM.
    async stop() {
      const started = Date.now();
      if (child.exitCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dataDir, { recursive: true, force: true });
      return Date.now() - started;
    },
  };
}

// How long a write behind a service's back waits for the service's own writer: SQLite lets
// one writer in at a time, and a service under load holds the lock for a batch at a time.
const SQLITE_BUSY_TIMEOUT_S = 10;

// Runs SQL statements in one transaction on a service's own SQLite file, behind its back,
// as a buggy producer or an operator's fix would (Python's sqlite3: nothing to install).
// `statements` is a list of [sql, params].
export function sqlite(dbPath, statements) {
  const script = `
import json, sqlite3, sys
job = json.load(sys.stdin)
db = sqlite3.connect(job["db"], timeout=${SQLITE_BUSY_TIMEOUT_S})
with db:
    for sql, params in job["statements"]:
        db.execute(sql, params)
db.close()
`;
  const run = spawnSync('python3', ['-c', script], {
    input: JSON.stringify({ db: dbPath, statements }),
    encoding: 'utf8',
  });
  if (run.error) throw run.error;
  if (run.status !== 0) throw new Error(`python3 sqlite3 on ${dbPath} failed: ${run.stderr}`);
}

// A JSON request to a system's public API; resolves to [status, body].
export async function api(base, method, path, body) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return [response.status, text ? JSON.parse(text) : null];
}

// Debian's chromium, headless, with a fresh profile; resolves to a browser context.
export async function launchBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'converge-dashboard-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1600, height: 1100 },
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

// A page that records every console error, uncaught exception and request that left
// loopback, so that a test can assert there were none.
export async function watchedPage(context) {
  const page = await context.newPage();
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.protocol !== 'data:' && url.hostname !== '127.0.0.1') {
      problems.push(`request off this machine: ${request.url()}`);
    }
  });
  return { page, problems };
}

// Polls `probe` until it returns a truthy value; fails with `what` and the last value.
export async function waitFor(what, probe, timeoutMs = 30_000, everyMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

// The raw value behind a figure on the page (its data-value), or null when it shows none.
export async function figure(page, selector) {
  const raw = await page.locator(selector).first().getAttribute('data-value');
  return raw === null || raw === '' ? null : Number(raw);
}

// Moves the page's load slider to `position` (0 to 1000), as a user would; resolves to the
// rate the page then shows it offers.
export async function slide(page, position) {
  await page.locator('#rate-slider').fill(String(position));
  return Number(await page.locator('#rate-input').inputValue());
}
