// Account security after too many wrong passwords: the broker answers 429
// with when to try again, and the form's button says so and counts down
// instead of inviting attempts the broker will refuse.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { launch } from './browser.mjs';
import { ROOT, signIn, startBroker, stopAll } from './procs.mjs';

after(stopAll);

test('a password change refused for too many wrong passwords counts down to when it may be tried again', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await signIn(page, broker, '/#/account');
    const save = page.getByTestId('pw-save');
    await save.waitFor();
    const card = page.locator('section', { has: save });
    await page.getByTestId('pw-new').fill('a-new-password-long-enough');
    // Wrong passwords: each is refused, and the button comes back at once,
    // until the broker stops taking them.
    let locked = false;
    for (let i = 0; i < 8 && !locked; i++) {
      await page.getByTestId('pw-current').fill(`wrong-password-${i}`);
      await save.click();
      // A wrong password shows under its field; the broker's refusal above the form.
      await card.locator('[data-testid="field-error"], [data-testid="form-error"]:visible').first().waitFor();
      await page.waitForFunction(() => {
        const b = document.querySelector('[data-testid="pw-save"]');
        return b && (!b.disabled || /Try again in/.test(b.textContent));
      });
      locked = /Try again in/.test(await save.textContent());
      if (!locked) assert.equal(await save.isEnabled(), true, 'after a wrong password the button is usable again');
    }
    assert.ok(locked, 'the broker never answered 429 to wrong passwords');
    assert.match(await card.getByTestId('form-error').textContent(), /Too many wrong passwords or codes/);
    assert.equal(await save.isDisabled(), true, 'the button stays disabled while the broker refuses');
    const first = Number((await save.textContent()).match(/Try again in (\d+)s/)[1]);
    assert.ok(first >= 20 && first <= 31, `counts down from the broker's Retry-After, not ${first}`);
    await page.screenshot({ path: join(ROOT, 'artifacts', 'account-password-wait.png') });
    await page.waitForFunction((n) => {
      const m = document.querySelector('[data-testid="pw-save"]').textContent.match(/Try again in (\d+)s/);
      return m && Number(m[1]) <= n - 2;
    }, first, { timeout: 5_000 });
    assert.equal(await save.isDisabled(), true);
  } finally {
    await browser.close();
  }
});

test('claiming codes too fast counts down to when the broker takes codes again', { timeout: 60_000 }, async () => {
  const broker = await startBroker();
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await signIn(page, broker, '/#/sessions');
    await page.getByTestId('enter-code').click();
    await page.getByTestId('claim-ticket').fill('INC-GUESS');
    const connect = page.getByTestId('claim-submit');
    // Codes nobody is waiting with: each is refused, until the broker stops
    // taking them from this address.
    let held = null; // the button as the 429 left it: disabled, counting down
    for (let i = 0; i < 15 && !held; i++) {
      await page.getByTestId('claim-code').fill(String(100_000_000 + i));
      await connect.click();
      const b = await (await page.waitForFunction(() => {
        const b = document.querySelector('[data-testid="claim-submit"]');
        return b && (!b.disabled || /Try again in/.test(b.textContent)) && { disabled: b.disabled, text: b.textContent.trim() };
      })).jsonValue();
      if (/Try again in/.test(b.text)) held = b;
    }
    assert.ok(held, 'the broker never answered 429 to wrong codes');
    assert.equal(held.disabled, true, 'the button stays disabled while the broker refuses');
    // The wait is what is left of the broker's minute: it may be short.
    const first = Number(held.text.match(/^Try again in (\d+)s$/)[1]);
    assert.ok(first >= 1 && first <= 60, `counts down from the broker's Retry-After, not ${first}`);
    await page.waitForFunction(() => {
      const b = document.querySelector('[data-testid="claim-submit"]');
      return !b.disabled && b.textContent.trim() === 'Connect';
    }, null, { timeout: (first + 3) * 1000 });
  } finally {
    await browser.close();
  }
});
