// The dashboard in a real browser, against real systems: what a user relies on.
//
// Two identical queue-mode systems run side by side; they share one dashboard token
// (CONVERGE_DASHBOARD_TOKEN), so the first system's page drives both. Everything the tests
// change — a processing delay, a paused consumer, a dead letter's fate — is changed from the
// page, on the first system; the second is the control group.
// Run with ./run.sh (it builds converge and names the binary in CONVERGE_BIN).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  requireTools, startSystem, launchBrowser, watchedPage, waitFor, figure, slide, sqlite, api,
} from './lib.mjs';

// The Stats delay the test sets from the page (per batch of events). Two identical
// debug-build systems on a busy two-core machine were seen to differ by up to ~150 ms in
// Stats lag p50 at this load; half a second keeps the difference the test asserts well clear
// of that noise.
const STATS_DELAY_MS = 500;
// Where the test puts the load slider (of 1000): about 40 orders/s to each system on its
// quadratic scale, enough for every window to fill within seconds, little enough for two
// debug-build systems and a browser on two cores.
const SLIDER_POSITION = 89;
// The page's apply-lag window (snapshot.rs LAG_WINDOW) plus a second: after this long under
// load, the window holds only orders placed under it.
const LAG_WINDOW_FILLED_MS = 6_000;
// Readings of the Stats lag taken a second apart; their medians are compared, so that one
// unlucky snapshot decides nothing.
const LAG_READINGS = 5;
// Readings of a paused consumer's backlog, a second apart, while orders flow (about 40 a
// second, each at least one event). A snapshot may repeat the last answer when a read
// overruns its budget on the busy machine, so readings must never fall and, over the
// whole span, grow by at least a second's worth of orders at the lowest rate the slider
// test accepts.
const BACKLOG_READINGS = 5;
const BACKLOG_GROWTH_MIN = 30;
// A drained backlog: what a running consumer has in hand at this load, with room for a
// snapshot taken between an order and its event being applied.
const DRAINED_BACKLOG_MAX = 10;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const token = randomBytes(16).toString('hex');
let first;
let second;
let browser;
let watched;

before(async () => {
  requireTools();
  [first, second] = await Promise.all([
    startSystem({ mode: 'queue', token }),
    startSystem({ mode: 'queue', token }),
  ]);
  browser = await launchBrowser();
  watched = await watchedPage(browser.context);
});

after(async () => {
  if (watched) await watched.page.close();
  if (browser) await browser.close();
  await Promise.all([first?.stop(), second?.stop()]);
});

// Locators of the first system's card.
const card = (page, panel = '#system-0') => ({
  row: (service) => page.locator(`${panel} table.services tr[data-service=${service}]`),
  operate: (service) => page.locator(`${panel} table.operate tr[data-service=${service}]`),
  state: (service) => page.locator(`${panel} table.services tr[data-service=${service}] [data-field=state] .pill`),
  figure: (service, field) => figure(page, `${panel} table.services tr[data-service=${service}] [data-field=${field}]`),
  // A service's dead letters on the page (rows are `data-dead="service/id"`), or the one of
  // a given event.
  letters: (service, eventId) => page.locator(`${panel} table.dead-letters tbody tr[data-dead^="${service}/"]${eventId ? `[data-event="${eventId}"]` : ''}`),
  deadStatus: () => page.locator(`${panel} [data-field=dead-status]`),
});

test('the page loads from the printed link, live, with its controls unlocked', async () => {
  const { page } = watched;
  const compare = `${first.base}/dashboard?compare=${encodeURIComponent(second.base)}#token=${token}`;
  assert.ok(first.link.startsWith(`${first.base}/dashboard#token=`), first.link);
  await page.goto(compare);
  for (const panel of ['#system-0', '#system-1']) {
    await waitFor(`${panel} to be live`, async () =>
      (await page.locator(`${panel} [data-field=connection]`).textContent()) === 'live');
    await waitFor(`${panel} to show its mode`, async () =>
      (await page.locator(`${panel} [data-field=label]`).textContent()) === 'queue');
  }
  assert.equal(await page.locator('#system-1 [data-field=url]').textContent(), second.base);
  await waitFor('the token to be accepted by both systems', async () =>
    (await page.locator('#auth').textContent()) === 'controls unlocked');
  assert.equal(await page.locator('#rate-slider').isDisabled(), false);
  const c = card(page);
  // Every service has a row, running, and says for how long.
  for (const service of ['account', 'order', 'payment', 'loyalty', 'stats']) {
    assert.equal(await c.state(service).textContent(), 'running');
    assert.match(await c.row(service).locator('.since').textContent(), /^ for \d+/);
  }
  // The delays in force, read from the services themselves.
  await waitFor('the delays in force', async () =>
    (await figure(page, '#system-0 table.operate tr[data-service=stats] [data-field=delay-now]')) === 0);
  assert.equal(await c.operate('stats').locator('[data-field=delay-input]').isDisabled(), false);
  assert.equal(await c.operate('stats').locator('[data-action=pause]').isDisabled(), false);
  // Account consumes nothing: nothing to pause, and the page says why.
  const accountPause = c.operate('account').locator('[data-action=pause]');
  assert.equal(await accountPause.isDisabled(), true);
  assert.match(await accountPause.getAttribute('title'), /consumes no feed/);
  // The second system's card acts on the second system, through the first one's server.
  const other = card(page, '#system-1').operate('account');
  await other.locator('[data-field=delay-input]').fill('0');
  await other.locator('[data-action=set-delay]').click();
  await waitFor("the second system's answer", async () =>
    (await page.locator('#system-1 [data-field=operate-status]').textContent()) === "account's processing delay set to 0 ms");
  // Under `converge serve`, kill and restart are drawn, disabled, with the reason on the page.
  assert.equal(await c.operate('stats').locator('[data-action=kill]').isDisabled(), true);
  assert.match(await page.locator('#system-0 [data-field=kill-note]').textContent(), /needs the services as separate processes under `converge up`/);
  assert.deepEqual(watched.problems, []);
});

test('the numbers move when the slider offers orders', async () => {
  const { page } = watched;
  assert.equal(await figure(page, '#system-0 [data-metric=acked-per-s] .value'), 0);
  const rate = await slide(page, SLIDER_POSITION);
  assert.ok(rate >= 30 && rate <= 50, `the slider at ${SLIDER_POSITION} offers ${rate} orders/s`);
  await waitFor('the page to say the load is offered', async () =>
    (await page.locator('#control-status').textContent()) === `offering ${rate} orders/s`);
  for (const panel of ['#system-0', '#system-1']) {
    await waitFor(`${panel}: acknowledged/s near the offered rate`, async () =>
      (await figure(page, `${panel} [data-metric=acked-per-s] .value`)) >= rate * 0.5, 60_000);
    await waitFor(`${panel}: an ack latency`, async () =>
      (await figure(page, `${panel} [data-metric=ack-p99] .value`)) > 0);
    await waitFor(`${panel}: Order's metrics count the orders`, async () =>
      (await figure(page, `${panel} [data-metric=system-acked-per-s] .value`)) > 0);
    await waitFor(`${panel}: Stats applying orders`, async () =>
      (await figure(page, `${panel} tr[data-service=stats] [data-field=applied-per-s]`)) > 0);
    await waitFor(`${panel}: recent orders listed`, async () =>
      (await page.locator(`${panel} button.order-link`).count()) > 0);
    await waitFor(`${panel}: a t-visibility curve from sampled orders`, async () =>
      /orders sampled/.test(await page.locator(`${panel} [data-field=visibility-note]`).textContent()), 30_000);
  }
  assert.deepEqual(watched.problems, []);
});

// Sets a service's processing delay on the first system from its card, and waits until the
// service itself reports it in force.
async function setDelay(page, service, delayMs) {
  const row = card(page).operate(service);
  await row.locator('[data-field=delay-input]').fill(String(delayMs));
  await row.locator('[data-action=set-delay]').click();
  await waitFor(`${service}'s delay ${delayMs} ms in force`, async () =>
    (await figure(page, `#system-0 table.operate tr[data-service=${service}] [data-field=delay-now]`)) === delayMs);
}

// Median Stats and Loyalty lag p50 over LAG_READINGS readings a second apart, per panel.
async function lagReadings(page) {
  const lag = (panel, service) => card(page, panel).figure(service, 'lag-p50');
  const readings = [];
  for (let i = 0; i < LAG_READINGS; i++) {
    readings.push({
      stats: await lag('#system-0', 'stats'),
      loyalty: await lag('#system-0', 'loyalty'),
      otherStats: await lag('#system-1', 'stats'),
    });
    await sleep(1_000);
  }
  for (const key of Object.keys(readings[0])) {
    assert.ok(readings.every((r) => r[key] !== null), `a ${key} lag in every reading: ${JSON.stringify(readings)}`);
  }
  const medians = Object.fromEntries(Object.keys(readings[0]).map((key) => [key, median(readings.map((r) => r[key]))]));
  return { ...medians, readings };
}

test('raising the Stats delay from the page widens the Stats lag on the page', async () => {
  const { page } = watched;
  await sleep(LAG_WINDOW_FILLED_MS);
  const before = await lagReadings(page);
  await setDelay(page, 'stats', STATS_DELAY_MS);
  assert.match(await page.locator('#system-0 [data-field=operate-status]').textContent(), /stats's processing delay set to 500 ms/);
  await sleep(LAG_WINDOW_FILLED_MS);
  const slowed = await lagReadings(page);
  const seen = `Stats lag p50 ${before.stats} ms before, ${slowed.stats} ms with a ${STATS_DELAY_MS} ms delay; `
    + `the other system's ${slowed.otherStats} ms (readings ${JSON.stringify(slowed.readings)})`;
  // Every event waits out at least one delay before Stats applies it.
  assert.ok(slowed.stats >= STATS_DELAY_MS * 0.9, seen);
  assert.ok(slowed.stats - before.stats >= STATS_DELAY_MS / 2, seen);
  // The system without the delay is the control: nothing else made Stats slow.
  assert.ok(slowed.stats - slowed.otherStats >= STATS_DELAY_MS / 2, seen);
  // The slowed system's other consumers are not held up by its Stats.
  assert.ok(slowed.loyalty < slowed.stats - STATS_DELAY_MS / 2, `Loyalty ${slowed.loyalty} ms; ${seen}`);

  // Back to none: the lag narrows again.
  await setDelay(page, 'stats', 0);
  await waitFor('the Stats lag to narrow once the delay is gone', async () => {
    const lag = await card(page).figure('stats', 'lag-p50');
    return lag !== null && lag < STATS_DELAY_MS / 2;
  }, 30_000, 500);
  assert.deepEqual(watched.problems, []);
});

test("clicking an order shows its life, service by service", async () => {
  const { page } = watched;
  for (const panel of ['#system-0', '#system-1']) {
    // The list turns over twice a second under load and holds still under the pointer, as
    // a user would find it: point at it, then click an order.
    await page.locator(`${panel} [data-field=recent]`).hover();
    const order = page.locator(`${panel} button.order-link`).last();
    const orderId = await order.getAttribute('data-order');
    await order.click();
    await waitFor(`${panel}: the timeline of ${orderId}`, async () =>
      (await page.locator(`${panel} [data-field=timeline-order]`).textContent()) === orderId);
    const step = (name) => page.locator(`${panel} .steps li[data-service=${name}]`);
    await waitFor(`${panel}: acknowledged, then settled`, async () =>
      (await page.locator(`${panel} .steps li[data-step=acknowledged]`).count()) === 1
      && (await page.locator(`${panel} .steps li[data-step=confirmed], ${panel} .steps li[data-step=cancelled]`).count()) === 1,
    20_000);
    // Every service's step is there, done once the order has settled everywhere, and timed.
    for (const service of ['payment', 'stats', 'loyalty']) {
      await waitFor(`${panel}: the ${service} step done`, async () =>
        (await step(service).getAttribute('class')).includes('step-done'), 20_000);
      assert.match(await step(service).locator('.step-time').textContent(), /^[+-]?\d+ ms$/);
    }
    assert.match(await page.locator(`${panel} .steps li[data-step=acknowledged] .step-time`).textContent(), /^\+0 ms$/);
  }
  assert.deepEqual(watched.problems, []);
});

test("pausing Stats' consumers from the page grows its backlog; resuming drains it", async () => {
  const { page } = watched;
  const c = card(page);
  const backlog = (service) => c.figure(service, 'backlog');
  const resume = c.operate('stats').locator('[data-action=resume]');
  await c.operate('stats').locator('[data-action=pause]').click();
  try {
    await waitFor('Stats shown paused', async () => (await c.state('stats').textContent()) === 'paused', 15_000);
    assert.equal(await resume.isDisabled(), false);
    assert.equal(await c.operate('stats').locator('[data-action=pause]').isDisabled(), true);
    const readings = [];
    for (let i = 0; i < BACKLOG_READINGS; i++) {
      await sleep(1_000);
      readings.push({ stats: await backlog('stats'), loyalty: await backlog('loyalty') });
    }
    const seen = `backlog readings a second apart: ${JSON.stringify(readings)}`;
    for (let i = 1; i < readings.length; i++) assert.ok(readings[i].stats >= readings[i - 1].stats, seen);
    assert.ok(readings.at(-1).stats - readings[0].stats >= BACKLOG_GROWTH_MIN, seen);
    // The paused service alone falls behind: Loyalty, reading the same feed, never had a
    // quarter of what Stats has in the end (a reading may catch Loyalty mid-batch).
    assert.ok(Math.max(...readings.map((r) => r.loyalty)) < readings.at(-1).stats / 4, seen);
    assert.equal(await c.state('stats').textContent(), 'paused');
    assert.match(await c.row('stats').locator('.since').textContent(), /^ for \d+ s$/);
  } finally {
    // Resumed even when an assertion failed, so the tests after this one find Stats running.
    await resume.click();
  }
  await waitFor('Stats shown running', async () => (await c.state('stats').textContent()) === 'running', 15_000);
  await waitFor('the Stats backlog drained', async () => (await backlog('stats')) <= DRAINED_BACKLOG_MAX, 30_000);
  assert.deepEqual(watched.problems, []);
});

test('a poison event is set aside; its body shows on demand; replay fails again; discard removes it', async () => {
  const { page } = watched;
  const c = card(page);
  // A row no consumer can read, written into Order's outbox behind its back, as a buggy
  // producer would (crates/converge/tests/recovery.rs does the same).
  const eventId = `evt_poison_${randomBytes(8).toString('hex')}`;
  sqlite(join(first.dataDir, 'order.db'), [[
    'INSERT INTO outbox (event_id, recorded_at_ms, body) VALUES (?, ?, ?)',
    [eventId, Date.now(), JSON.stringify({ type: 'Nonsense' })],
  ]]);
  // Every consumer of Order's feed tries it a few times, then sets it aside; the orders
  // behind it flow on (the load is still running).
  for (const service of ['payment', 'loyalty', 'stats']) {
    await waitFor(`${service}'s dead letter on the page`, async () =>
      (await c.letters(service, eventId).count()) === 1, 30_000);
    await waitFor(`${service}'s dead-letter count`, async () => (await c.figure(service, 'dead-letters')) === 1);
  }
  const stats = c.letters('stats', eventId);
  assert.match(await stats.locator('.error-text').textContent(), /unreadable/);
  const attempts = Number(await stats.locator('[data-field=attempts]').textContent());

  // The body, on demand.
  await stats.locator('[data-action=body]').click();
  const body = page.locator('#system-0 tr.dead-body pre');
  await waitFor('the body shown', async () => (await body.count()) === 1);
  assert.deepEqual(JSON.parse(await body.textContent()), { type: 'Nonsense' });

  // Replayed, it fails again: the page says so and the letter stays, one more try counted.
  await stats.locator('[data-action=replay]').click();
  await waitFor('the failed replay reported', async () =>
    /refused: .*failed again/.test(await c.deadStatus().textContent()));
  await waitFor('the extra try counted', async () =>
    Number(await stats.locator('[data-field=attempts]').textContent()) === attempts + 1);
  // The browser logs the refused request (the 409 the page reported) as a console error;
  // that one is expected here, and nothing else.
  assert.deepEqual(watched.problems, ['console: Failed to load resource: the server responded with a status of 409 (Conflict)']);
  watched.problems.length = 0;

  // Discarded everywhere, it leaves the page.
  for (const service of ['payment', 'loyalty', 'stats']) {
    const row = c.letters(service, eventId);
    await row.locator('[data-action=discard]').click();
    await waitFor(`${service}'s letter gone`, async () => (await row.count()) === 0);
    await waitFor(`${service}'s dead-letter count back to 0`, async () => (await c.figure(service, 'dead-letters')) === 0);
  }
  assert.equal(await page.locator('#system-0 tr.dead-body').count(), 0);
  assert.deepEqual(watched.problems, []);
});

test('an order Stats refused is set aside and, once the cause is fixed, replayed from its button', async () => {
  const { page } = watched;
  const c = card(page);
  // An account of the test's own, with money.
  const [created, account] = await api(first.base, 'POST', '/accounts', { name: 'Under review' });
  assert.equal(created, 201);
  const [toppedUp] = await api(first.base, 'POST', `/wallets/${account.id}/top-ups`, { amount_cents: 10_000 });
  assert.equal(toppedUp, 201);
  // Stats' database refuses this account's orders: a rule in the consumer's own store, as
  // a constraint an operator must change would (a trigger's abort is SQLite's constraint
  // error, which the consumer treats as permanent: retried a few times, then set aside).
  const statsDb = join(first.dataDir, 'stats.db');
  sqlite(statsDb, [[
    `CREATE TRIGGER converge_test_under_review BEFORE INSERT ON order_facts
     WHEN NEW.account_id = '${account.id}'
     BEGIN SELECT RAISE(ABORT, 'account under review'); END`,
    [],
  ]]);
  const [placed, order] = await api(first.base, 'POST', '/orders', {
    account_id: account.id, items: [{ sku: 'ramen', quantity: 2, unit_price_cents: 1450 }],
  });
  assert.equal(placed, 202);
  const letter = c.letters('stats').filter({ hasText: 'account under review' });
  await waitFor("Stats' dead letter for the order", async () => (await letter.count()) === 1, 30_000);
  // Only Stats refused it.
  for (const service of ['payment', 'loyalty']) assert.equal(await c.letters(service).count(), 0, service);
  // Stats has not counted it; the rest of the system has (Loyalty credited it).
  const [, before] = await api(first.base, 'GET', `/stats/accounts/${account.id}`);
  assert.equal(before.orders, 0);
  await waitFor('Loyalty to credit the order', async () =>
    (await api(first.base, 'GET', `/loyalty/${account.id}`))[1].points === order.points);

  // The operator lifts the rule, then replays from the page.
  sqlite(statsDb, [['DROP TRIGGER converge_test_under_review', []]]);
  await letter.locator('[data-action=replay]').click();
  await waitFor('the replay reported', async () => /^replayed stats's dead letter/.test(await c.deadStatus().textContent()));
  await waitFor('the letter gone from the page', async () => (await letter.count()) === 0);
  const [, after] = await api(first.base, 'GET', `/stats/accounts/${account.id}`);
  assert.deepEqual(after, { account_id: account.id, orders: 1, revenue_cents: order.total_cents });
  assert.deepEqual(watched.problems, []);
});

test('without the token the page is read-only and the server refuses controls', async () => {
  const { page, problems } = await watchedPage(browser.context);
  await page.goto(`${first.base}/dashboard`);
  await waitFor('the read-only badge', async () =>
    (await page.locator('#auth').textContent()) === 'read-only (no token)');
  assert.equal(await page.locator('#rate-slider').isDisabled(), true);
  // It still watches, and every control that would act is off, saying why.
  await waitFor('the page to be live', async () =>
    (await page.locator('#system-0 [data-field=connection]').textContent()) === 'live');
  await waitFor('a snapshot drawn', async () =>
    (await page.locator('#system-0 table.services tr[data-service=stats] [data-field=state] .pill').textContent()) === 'running');
  for (const action of ['set-delay', 'pause', 'resume', 'kill']) {
    const button = page.locator(`#system-0 table.operate tr[data-service=stats] [data-action=${action}]`);
    assert.equal(await button.isDisabled(), true, action);
  }
  assert.match(await page.locator('#system-0 table.operate tr[data-service=stats] [data-action=pause]').getAttribute('title'), /token/);
  for (const [path, body] of [
    ['/dashboard/api/load', '{"rate_per_s": 10}'],
    ['/dashboard/api/services/stats/delay', '{"delay_ms": 10}'],
    ['/dashboard/api/services/stats/pause', '{}'],
    ['/dashboard/api/dead-letters/stats/1/discard', '{}'],
  ]) {
    for (const header of [{}, { 'x-dashboard-token': `${token}x` }]) {
      const refused = await fetch(`${first.base}${path}`, {
        method: 'POST', headers: { 'content-type': 'application/json', ...header }, body,
      });
      assert.equal(refused.status, 401, path);
    }
  }
  assert.deepEqual(problems, []);
  await page.close();
});

test('the slider at zero stops the load', async () => {
  const { page } = watched;
  assert.equal(await slide(page, 0), 0);
  await waitFor('no order in flight and none acknowledged in the window', async () =>
    (await figure(page, '#system-0 [data-metric=acked-per-s] .value')) === 0
    && (await figure(page, '#system-1 [data-metric=acked-per-s] .value')) === 0, 30_000);
  assert.deepEqual(watched.problems, []);
});

test('a system stops promptly while a page is still watching it', async () => {
  // The page is still connected to both event streams.
  const took = await second.stop();
  assert.ok(took < 10_000, `stopping took ${took} ms`);
  // The page says so instead of freezing.
  await waitFor('the followed system to show as reconnecting', async () =>
    (await watched.page.locator('#system-1 [data-field=connection]').textContent()) === 'reconnecting…', 15_000);
  // The browser logs the dropped stream as a failed request; that is expected here.
});
