// The citizen objects to a decision in a real browser (Debian's chromium, driven by
// playwright-core), with axe-core on each page: the application page offers the
// objection, the form shows what is missing, and after sending the page confirms it.
//
// Run by tests/tests/portal_conversation.rs:
// `node conversation.mjs <portal URL> <Cookie header> <draft id> <output folder>`.

import { auditPage, browseAs, check, failed, step } from './steps.mjs';

const [base, cookieHeader, draft, out] = process.argv.slice(2);
const axe = (page, pageType) => auditPage(page, out, pageType);

const { browser, page } = await browseAs(base, cookieHeader);
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
  await page.getByLabel('Begründung Ihres Widerspruchs').fill('Bello ist ein Blindenführhund; bitte setzen Sie die Steuer nicht fest.');
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
