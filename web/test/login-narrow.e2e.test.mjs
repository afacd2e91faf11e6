// The sign-in page in a narrow window: it names the product as it does in a
// wide one. (Below 1100 px the console's sidebar shows the mark alone; the
// sign-in page has no sidebar.) And the pages' actions at 640 px, a
// 1280 px window zoomed to 200 %: within the window. A real broker and
// headless Chromium.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { collectErrors, launch } from './browser.mjs';
import { signIn, startBroker, stopAll, totp } from './procs.mjs';

after(stopAll);

test('the sign-in page names the product at 1366, 1000 and 900 px wide', { timeout: 60_000 }, async (t) => {
  const broker = await startBroker();
  const browser = await launch({ viewport: { width: 1366, height: 768 } });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const errors = collectErrors(page);
  await page.goto(broker.url + '/');
  await page.getByTestId('login-username').waitFor();
  errors.length = 0; // the console's first look for a login answers 401
  for (const [width, height] of [[1366, 768], [1000, 800], [900, 700]]) {
    await page.setViewportSize({ width, height });
    const name = page.locator('.login-brand .brand-name');
    assert.equal(await name.isVisible(), true, `at ${width} px the sign-in page shows the logo without the product's name`);
    assert.equal(await name.textContent(), 'Tether');
  }
  assert.deepEqual(errors.map(String), []);
});

test('at 640 and 360 px wide each page\u2019s actions stay inside the window, under its title', { timeout: 60_000 }, async (t) => {
  const broker = await startBroker();
  const browser = await launch({ viewport: { width: 640, height: 720 } });
  t.after(() => browser.close());
  const page = await browser.newPage();
  await signIn(page, broker);
  for (const width of [640, 360]) {
    await page.setViewportSize({ width, height: 720 });
    for (const [nav, action] of [['nav-sessions', 'new-session'], ['nav-keys', 'new-key'], ['nav-accounts', 'new-account']]) {
      await page.getByTestId(nav).click();
      const button = page.getByTestId(action).first();
      await button.waitFor();
      const box = await button.boundingBox();
      assert.ok(box.x + box.width <= width, `at ${width} px ${action} ends at ${box.x + box.width} px, past the window`);
      const title = await page.locator('.page-title').boundingBox();
      assert.ok(box.x + box.width > title.x, `${action} is off to the left`);
    }
    await page.getByTestId('nav-sessions').click();
    const tabs = await page.getByRole('group', { name: 'Filter sessions' }).boundingBox();
    assert.ok(tabs.x + tabs.width <= width, `at ${width} px the session filters end at ${tabs.x + tabs.width} px, past the window`);
  }

  // Account security, with the recovery codes just made and after: no
  // card, list or field runs past the window.
  const pageWidth = () => page.evaluate(() => document.documentElement.scrollWidth);
  await page.goto(broker.url + '/#/account');
  await page.getByTestId('totp-start').waitFor();
  assert.ok(await pageWidth() <= 360, `at 360 px Account security is ${await pageWidth()} px wide`);
  await page.getByTestId('totp-password').fill(broker.admin.password);
  await page.getByTestId('totp-start').click();
  const secret = await page.getByTestId('totp-secret').getAttribute('data-secret');
  await page.getByTestId('totp-confirm-code').fill(totp(secret));
  await page.getByTestId('totp-confirm').click();
  const codes = page.getByTestId('recovery-codes');
  await codes.waitFor();
  const [inner, outer] = await codes.evaluate((el) => [el.scrollWidth, el.clientWidth]);
  assert.ok(inner <= outer, `at 360 px the recovery codes need ${inner} px in a list of ${outer}`);
  assert.ok(await pageWidth() <= 360, `at 360 px the recovery codes make the page ${await pageWidth()} px wide`);
  await page.getByTestId('recovery-codes-done').click();
  const field = await page.getByTestId('totp-change-code').boundingBox();
  assert.ok(field.x + field.width <= 360, `at 360 px the code field ends at ${field.x + field.width} px`);
});
