// The whole conversation of a submitted dog tax application, as the citizen clicks it in
// a real browser, whoever works on it at the authority (the reference procedure or a
// clerk in the clerk inbox) (Debian's chromium, driven by playwright-core), with axe-core on each
// page: the authority's query arrives and is answered with a photo; the decision sets
// the tax with the Rechtsbehelfsbelehrung; the citizen pays it at the payment provider;
// the citizen objects once, and the objection is not offered again.
//
// Run by tests/tests/portal_conversation.rs:
// `node whole-conversation.mjs <portal URL> <Cookie header> <draft id> <output folder>`.

import { auditPage, browseAs, check, failed, ok, step } from './steps.mjs';

const [base, cookieHeader, draft, out] = process.argv.slice(2);
const axe = (page, pageType) => auditPage(page, out, pageType);
const application = `${base}/antraege/${draft}`;

/** Reloads the application page until `text` is on it (the procedure works meanwhile). */
async function waitFor(page, text) {
  const until = Date.now() + 90_000;
  for (;;) {
    await page.goto(application);
    if ((await page.locator('main').textContent()).includes(text)) return;
    check(Date.now() < until, `„${text}“ never appeared on the application page`);
    await page.waitForTimeout(500);
  }
}

/** The first 1×1 PNG a phone could send: the real signature, so the portal takes it. */
const photo = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

const { browser, page } = await browseAs(base, cookieHeader);
try {
  step('the query arrives');
  await waitFor(page, 'Auf die Rückfrage antworten');
  await axe(page, 'application with query');

  step('the answer form');
  await page.getByRole('link', { name: 'Auf die Rückfrage antworten' }).click();
  await page.waitForURL(/\/nachricht\?art=antwort&bezug=/);
  await axe(page, 'answer form');
  await page.getByRole('button', { name: 'Antwort senden' }).click();
  await page.waitForSelector('#fehlerliste');
  check((await page.locator('#fehlerliste').textContent()).includes('Bitte schreiben Sie eine Antwort oder fügen Sie eine Datei bei.'), 'an empty answer was not refused');
  await axe(page, 'answer form with errors');
  ok('an empty answer is refused with what to do');

  step('the answer with a photo');
  await page.locator('#text').fill('Anbei ein Foto von Bello mit seiner Steuermarke.');
  await page.setInputFiles('#datei', { name: 'Bello.png', mimeType: 'image/png', buffer: photo });
  await page.getByRole('button', { name: 'Antwort senden' }).click();
  await page.waitForSelector('#nachricht-gesendet');
  check((await page.locator('#gesendet').textContent()).includes('Ihre Antwort auf die Rückfrage'), 'the answer is not listed');
  check((await page.getByRole('link', { name: 'Auf die Rückfrage antworten' }).count()) === 0, 'answer offered twice');
  ok('the answer is sent and listed');

  step('the decision with a fee');
  await waitFor(page, 'Steuer jetzt online bezahlen');
  const decided = await page.locator('main').textContent();
  check(decided.includes('Sie haben auf diese Rückfrage geantwortet.'), 'the query is not marked as answered');
  check(decided.includes('Widerspruch ist bis einschließlich'), 'no appeal information');
  await axe(page, 'application with decision and fee');

  step('paying the fee');
  await page.getByRole('button', { name: 'Steuer jetzt online bezahlen' }).click();
  await page.waitForURL(/\/xbezahldienste\/bezahlen\//);
  await axe(page, 'payment provider');
  await page.getByLabel('Kreditkarte').check();
  await page.getByRole('button', { name: 'Jetzt bezahlen' }).click();
  await page.waitForURL(/gebuehr=bezahlt/);
  check((await page.locator('main').textContent()).includes('Die Steuer ist bezahlt.'), 'no notice of the payment');
  check((await page.locator('#gebuehr-bezahlt').count()) === 1, 'the fee is not shown as paid');
  await axe(page, 'application with the fee paid');
  ok('the fee is paid');

  step('the objection');
  await page.getByRole('link', { name: 'Widerspruch einlegen' }).click();
  await page.waitForURL(/\/nachricht\?art=widerspruch/);
  await page.getByLabel('Begründung Ihres Widerspruchs').fill('Bello ist ein Blindenhund und damit steuerfrei.');
  await page.getByRole('button', { name: 'Widerspruch verbindlich einlegen' }).click();
  await page.waitForSelector('#nachricht-gesendet');
  check((await page.locator('#gesendet').textContent()).includes('Ihr Widerspruch'), 'the objection is not listed');
  check((await page.getByRole('link', { name: 'Widerspruch einlegen' }).count()) === 0, 'objection offered twice');
  await axe(page, 'application with objection');
  ok('the objection is sent, once');
  console.log('PASSED');
} catch (error) {
  await failed(page, out, error);
} finally {
  await browser.close();
}
