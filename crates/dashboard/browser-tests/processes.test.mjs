// Kill and restart from the page, on `converge up`'s separate processes: what the page does
// that no in-process system can. Run with ./run.sh (it builds converge and names the binary
// in CONVERGE_BIN).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  requireTools, startSystem, launchBrowser, watchedPage, waitFor, figure, slide,
} from './lib.mjs';

// A gentle load (of 1000 on the slider's quadratic scale: about 10 orders/s), enough to see
// orders acknowledged while Stats is down, little for six debug-build processes and a
// browser on two cores.
const SLIDER_POSITION = 45;
// How long Stats stays down, long enough for a few snapshots to show it so.
const DOWN_MS = 3_000;

let system;
let browser;
let watched;

before(async () => {
  requireTools();
  // `converge up` makes its own dashboard token; the printed link carries it.
  system = await startSystem({ command: 'up', mode: 'queue' });
  browser = await launchBrowser();
  watched = await watchedPage(browser.context);
});

after(async () => {
  if (watched) await watched.page.close();
  if (browser) await browser.close();
  await system?.stop();
});

const panel = '#system-0';
const state = (page, service) =>
  page.locator(`${panel} table.services tr[data-service=${service}] [data-field=state] .pill`).textContent();
const operate = (page, service) => page.locator(`${panel} table.operate tr[data-service=${service}]`);
const status = (page) => page.locator(`${panel} [data-field=operate-status]`).textContent();

test('Stats killed from the page stays down while orders are still acknowledged, and comes back on restart', async () => {
  const { page } = watched;
  await page.goto(system.link);
  await waitFor('the page to be live', async () =>
    (await page.locator(`${panel} [data-field=connection]`).textContent()) === 'live');
  await waitFor('controls unlocked', async () => (await page.locator('#auth').textContent()) === 'controls unlocked');
  await waitFor('Stats running', async () => (await state(page, 'stats')) === 'running');
  // Under the supervisor, kill and restart are on, and no note says why not.
  const kill = operate(page, 'stats').locator('[data-action=kill]');
  const restart = operate(page, 'stats').locator('[data-action=restart]');
  await waitFor('kill enabled', async () => !(await kill.isDisabled()));
  assert.equal(await page.locator(`${panel} [data-field=kill-note]`).textContent(), '');

  const rate = await slide(page, SLIDER_POSITION);
  assert.ok(rate > 0, `the slider offers ${rate} orders/s`);
  await kill.click();
  await waitFor('the kill confirmed', async () => /stats's processes killed/.test(await status(page)));
  await waitFor('Stats shown unreachable', async () => (await state(page, 'stats')) === 'unreachable', 15_000);
  // Queue mode: the acknowledgement does not wait for Stats.
  await waitFor('orders acknowledged while Stats is down', async () =>
    (await figure(page, `${panel} [data-metric=acked-per-s] .value`)) > 0, 30_000);
  // Nothing brings it back but the restart button.
  await new Promise((resolve) => setTimeout(resolve, DOWN_MS));
  assert.equal(await state(page, 'stats'), 'unreachable');
  assert.equal(await kill.isDisabled(), true);
  assert.equal(await restart.isDisabled(), false);

  await restart.click();
  await waitFor('the restart confirmed', async () => /stats's processes restarted/.test(await status(page)), 45_000);
  await waitFor('Stats running again', async () => (await state(page, 'stats')) === 'running', 15_000);
  await waitFor('Stats applying orders again', async () =>
    (await figure(page, `${panel} tr[data-service=stats] [data-field=applied-per-s]`)) > 0, 30_000);
  assert.equal(await slide(page, 0), 0);
  assert.deepEqual(watched.problems, []);
});
