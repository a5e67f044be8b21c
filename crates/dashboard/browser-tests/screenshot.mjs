// The README's screenshot: strong and queue side by side under the same load, both given the
// same Stats delay from the page (the seed's experiment), an order's life open in each, and
// in the queue system a poison event set aside, its body open.
//
//   CONVERGE_BIN=target/release/converge node screenshot.mjs ../../../docs/dashboard.png
//
// A release build shows the figures the README quotes; a debug build works too, slower.

import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import {
  requireTools, startSystem, launchBrowser, watchedPage, waitFor, slide, sqlite, figure,
} from './lib.mjs';

const out = process.argv[2];
if (!out) throw new Error('usage: node screenshot.mjs FILE.png');
// The seed's experiment: a Stats that takes 20 ms per step or batch.
const STATS_DELAY_MS = 20;
// The slider's position (of 1000) for 200 orders/s on its quadratic scale.
const SLIDER_POSITION = 200;
// Long enough for the charts to show a trend and the visibility curve to fill.
const UNDER_LOAD_MS = 25_000;

requireTools();
const token = randomBytes(16).toString('hex');
const [strong, queue] = await Promise.all([
  startSystem({ mode: 'strong', token }),
  startSystem({ mode: 'queue', token }),
]);
const browser = await launchBrowser();
try {
  const { page, problems } = await watchedPage(browser.context);
  await page.setViewportSize({ width: 1600, height: 1000 });
  await page.goto(`${strong.base}/dashboard?compare=${encodeURIComponent(queue.base)}#token=${token}`);
  await waitFor('controls unlocked', async () => (await page.locator('#auth').textContent()) === 'controls unlocked');
  // The Stats delay, set on each system from its own card.
  for (const panel of ['#system-0', '#system-1']) {
    const row = page.locator(`${panel} table.operate tr[data-service=stats]`);
    await waitFor(`${panel}: the delays in force`, async () =>
      (await figure(page, `${panel} table.operate tr[data-service=stats] [data-field=delay-now]`)) === 0);
    await row.locator('[data-field=delay-input]').fill(String(STATS_DELAY_MS));
    await row.locator('[data-action=set-delay]').click();
    await waitFor(`${panel}: Stats' delay in force`, async () =>
      (await figure(page, `${panel} table.operate tr[data-service=stats] [data-field=delay-now]`)) === STATS_DELAY_MS);
  }
  const rate = await slide(page, SLIDER_POSITION);
  if (rate !== 200) throw new Error(`the slider offers ${rate} orders/s, expected 200`);
  await new Promise((resolve) => setTimeout(resolve, UNDER_LOAD_MS));
  // An order confirmed everywhere makes the clearest timeline; try recent ones in turn.
  for (const panel of ['#system-0', '#system-1']) {
    await waitFor(`${panel}: a confirmed order's timeline`, async () => {
      await page.locator(`${panel} button.order-link`).nth(2).click();
      await page.waitForTimeout(3_000);
      return (await page.locator(`${panel} .steps li.step-done[data-step=confirmed]`).count()) === 1
        && (await page.locator(`${panel} .steps li.step-done`).count()) === 5;
    }, 60_000, 0);
  }
  // A poison event in the queue system's Order outbox (as the browser tests write one), set
  // aside by its consumers; Stats' letter shows its body.
  sqlite(join(queue.dataDir, 'order.db'), [[
    'INSERT INTO outbox (event_id, recorded_at_ms, body) VALUES (?, ?, ?)',
    [`evt_poison_${randomBytes(8).toString('hex')}`, Date.now(), JSON.stringify({ type: 'Nonsense' })],
  ]]);
  const letter = page.locator('#system-1 table.dead-letters tr[data-dead^="stats/"]');
  await waitFor("Stats' dead letter", async () => (await letter.count()) === 1, 30_000);
  await letter.locator('[data-action=body]').click();
  await waitFor('its body', async () => (await page.locator('#system-1 tr.dead-body pre').count()) === 1);
  await page.mouse.move(0, 0);
  await page.screenshot({ path: out, fullPage: true });
  await slide(page, 0);
  if (problems.length) throw new Error(`the page reported problems: ${problems.join('\n')}`);
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await Promise.all([strong.stop(), queue.stop()]);
}
