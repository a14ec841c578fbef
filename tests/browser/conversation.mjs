// The citizen objects to a decision in a real browser (Debian's chromium, driven by
// playwright-core), with axe-core on each page: the application page offers the
// objection, the form shows what is missing, and after sending the page confirms it.
//
// Run by tests/tests/portal_conversation.rs:
// `node conversation.mjs <portal URL> <Cookie header> <draft id> <output folder>`.

import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { check, checkAxe, failed, step } from './steps.mjs';

const require = createRequire(import.meta.url);
const axePath = require.resolve('axe-core/axe.min.js');
const [base, cookieHeader, draft, out] = process.argv.slice(2);

async function axe(page, pageType) {
  await page.addScriptTag({ path: axePath });
  await checkAxe(page, pageType);
  await page.screenshot({ path: join(out, `${pageType.replaceAll(' ', '-')}.png`), fullPage: true });
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
// CSP bypassed only so that axe-core can be injected (the portal's CSP forbids it).
const context = await browser.newContext({ locale: 'de-DE', bypassCSP: true });
await context.addCookies(
  cookieHeader.split('; ').map((pair) => {
    const at = pair.indexOf('=');
    return { name: pair.slice(0, at), value: pair.slice(at + 1), url: base };
  }),
);
const page = await context.newPage();
try {
  step('application page');
  await page.goto(`${base}/antraege/${draft}`);
  await axe(page, 'application with decision');
  step('objection form');
  await page.getByRole('link', { name: 'Widerspruch einlegen' }).click();
  await page.waitForURL(/\/nachricht\?art=widerspruch/);
  check((await page.locator('h1').textContent()).includes('Widerspruch einlegen'), 'no heading');
  await axe(page, 'objection form');
  step('objection without reasons');
  await page.getByRole('button', { name: 'Widerspruch verbindlich einlegen' }).click();
  await page.waitForSelector('#fehlerliste');
  check(
    (await page.locator('#fehlerliste').textContent()).includes('Bitte schreiben Sie einen Text.'),
    'no error summary',
  );
  await axe(page, 'objection form with errors');
  step('objection sent');
  await page.getByLabel('Begründung Ihres Widerspruchs').fill('Das Schlagloch ist noch da; bitte prüfen Sie es erneut.');
  await page.getByRole('button', { name: 'Widerspruch verbindlich einlegen' }).click();
  await page.waitForSelector('#nachricht-gesendet');
  check((await page.locator('#gesendet').textContent()).includes('Ihr Widerspruch'), 'objection not listed');
  check((await page.getByRole('link', { name: 'Widerspruch einlegen' }).count()) === 0, 'offered twice');
  await axe(page, 'application with objection');
  console.log('PASSED');
} catch (error) {
  await failed(page, out, error);
} finally {
  await browser.close();
}
