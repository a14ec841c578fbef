// The dog tax (Hundesteuer-Anmeldung) in a real browser, as a signed-in citizen with two
// dogs: the repeatable group's entries added and removed, a future birth date and the
// dangerous dog's missing test number refused naming the dog, an IBAN with a wrong
// check digit refused and one typed with spaces accepted, the Wesenstest's certificate
// required (an attachment slot only for a dangerous dog), the review listing both dogs,
// submission. Run with JavaScript (conditional fields appear when they apply) and
// without it (every button is a plain submit button; conditional fields carry a hint).
//
// Run by tests/tests/portal_browser.rs:
// `node dogs.mjs <portal URL> <output folder> <cookie header> <js|nojs>`.

import { chromium } from 'playwright-core';
import { check, failed, ok, step } from './steps.mjs';

const [base, out, cookieHeader, mode] = process.argv.slice(2);
if (!base || !out || !cookieHeader || !['js', 'nojs'].includes(mode)) {
  console.error('usage: node dogs.mjs <portal URL> <output folder> <cookie header> <js|nojs>');
  process.exit(2);
}
const javaScript = mode === 'js';

async function expectText(page, selector, text) {
  const found = await page.innerText(selector);
  check(found.includes(text), `${selector} shows "${text}" (it shows: ${found.slice(0, 400)})`);
}

async function shot(page, name) {
  if (process.env.SCREENSHOTS) await page.screenshot({ path: `${out}/${name}-${mode}.png`, fullPage: true });
}

/** “Weiter” (the step's primary button) and the page it leads to. */
async function next(page, url) {
  await page.click('.portal-actions button.kern-btn--primary');
  await page.waitForURL(url);
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium' });
const context = await browser.newContext({ javaScriptEnabled: javaScript });
await context.addCookies(
  cookieHeader.split(';').map((pair) => {
    const [name, ...value] = pair.trim().split('=');
    return { name, value: value.join('='), url: base };
  }),
);
const page = await context.newPage();
try {
  step('the service says what it costs');
  await page.goto(base + '/leistungen/99999003000000');
  await expectText(page, 'main', 'Für diese Leistung wird eine Steuer erhoben');
  check(!(await page.innerText('main')).includes('gebührenfrei'), 'a tax is not "gebührenfrei"');
  await page.fill('#ort', '146120000000');
  await page.click('button:has-text("Zuständigkeit prüfen")');
  await page.click('button:has-text("Antrag online stellen")');
  await page.waitForURL(/\/entwurf\/[^/]+\/schritt\/1$/);
  ok('a tax set by the decision; the draft is open');

  step('step 1: the keeper');
  await expectText(page, 'h1', 'Halterin oder Halter');
  for (const [selector, value] of Object.entries({
    '#f-halter-familienname': 'Schröder',
    '#f-halter-vornamen': 'Anke',
    '#f-halter-geburtsdatum': '14.05.1981',
    '#f-anschrift-strasse': 'Königsbrücker Straße',
    '#f-anschrift-hausnummer': '58',
    '#f-anschrift-postleitzahl': '01099',
    '#f-anschrift-ort': 'Dresden',
  })) await page.fill(selector, value);
  await next(page, /schritt\/2$/);
  ok('step 1 done');

  step('step 2: the first dog, then a second one added');
  await expectText(page, '#f-hunde-0 legend', 'Hund 1');
  check((await page.locator('.portal-entry').count()) === 1, 'one dog to begin with');
  check((await page.locator('button:has-text("Hund 1 entfernen")').count()) === 0, 'the only dog cannot be removed');
  await page.fill('#f-hunde-0-name', 'Bello');
  await page.check('#f-hunde-0 label:has-text("Mischling")');
  await page.fill('#f-hunde-0-geboren', '03.04.2019');
  await page.fill('#f-hunde-0-gehalten_seit', '01.06.2019');
  if (javaScript) {
    check(await page.locator('#f-hunde-0-wesenstest').isHidden(), 'the test number is hidden for a dog that is not dangerous');
  }
  await page.click('button:has-text("Hund hinzufügen")');
  await page.waitForURL(/schritt\/2#f-hunde-1$/);
  check((await page.locator('.portal-entry').count()) === 2, 'two dogs now');
  check((await page.inputValue('#f-hunde-0-name')) === 'Bello', 'the first dog is kept');
  await page.fill('#f-hunde-1-name', 'Ronja');
  await page.check('#f-hunde-1 label:has-text("American Staffordshire Terrier")');
  await page.fill('#f-hunde-1-geboren', '01.01.2099');
  await page.fill('#f-hunde-1-gehalten_seit', '15.01.2022');
  await page.check('#f-hunde-1-gefaehrlich');
  if (javaScript) {
    check(await page.locator('#f-hunde-1-wesenstest').isVisible(), 'the test number appears for the dangerous dog');
    check(await page.locator('#f-hunde-0-wesenstest').isHidden(), 'but not for the first dog');
  }
  ok('two dogs, the second one dangerous');

  step('step 2: a third dog added and removed again');
  await page.click('button:has-text("Hund hinzufügen")');
  await page.waitForURL(/#f-hunde-2$/);
  check((await page.locator('.portal-entry').count()) === 3, 'three dogs');
  await page.click('button:has-text("Hund 3 entfernen")');
  await page.waitForURL(/schritt\/2#f-hunde$/);
  check((await page.locator('.portal-entry').count()) === 2, 'two dogs again');
  check((await page.inputValue('#f-hunde-1-name')) === 'Ronja', 'the second dog is kept');
  ok('entries are added and removed without losing input');

  step('step 2: errors name the dog');
  await page.click('.portal-actions button.kern-btn--primary');
  await page.waitForSelector('#fehlerliste');
  await shot(page, 'dogs-errors');
  await expectText(page, '#fehlerliste', '„Geburtsdatum des Hundes“ (Hund 2): Das Datum darf nicht in der Zukunft liegen. Bitte geben Sie ein Datum bis heute an.');
  await expectText(page, '#fehlerliste', 'Bitte geben Sie „Nummer des bestandenen Wesenstests“ (Hund 2) an.');
  check(!(await page.innerText('#fehlerliste')).includes('Hund 1'), 'nothing wrong with the first dog');
  check((await page.getAttribute('#f-hunde-1-geboren', 'aria-invalid')) === 'true', 'the wrong date is marked');
  await page.fill('#f-hunde-1-geboren', '20.08.2021');
  await page.fill('#f-hunde-1-wesenstest', 'WT-2022-0815');
  await next(page, /schritt\/3$/);
  ok('a future birth date and a missing test number refused, then corrected');

  step('step 3: the IBAN');
  await expectText(page, 'h1', 'Zahlungsweise der Steuer');
  // The label names the responsible authority (placeholder `{behoerde}`).
  await expectText(page, 'label[for="f-lastschrift"]', 'Ich ermächtige Landeshauptstadt Dresden, Bürgerbüro, die Hundesteuer von meinem Konto mittels Lastschrift einzuziehen');
  await page.check('#f-lastschrift');
  await page.fill('#f-kontoinhaber', 'Anke Schröder');
  await page.fill('#f-iban', 'DE03 1203 0000 0000 2020 51');
  await page.click('.portal-actions button.kern-btn--primary');
  await page.waitForSelector('#fehlerliste');
  await expectText(page, '#fehlerliste', 'Die IBAN ist nicht gültig');
  await page.fill('#f-iban', 'DE02 1203 0000 0000 2020 51');
  await next(page, /\/anlagen$/);
  ok('a wrong check digit refused; the IBAN with spaces accepted');

  step('the Wesenstest is required, for the dangerous dog only');
  await expectText(page, '#anlage-wesenstest h2', 'Bescheinigung des Wesenstests');
  await page.click('button:has-text("Weiter zur Prüfung")');
  await page.waitForURL(/\/pruefen$/);
  await expectText(page, '#fehlerliste', 'Bitte laden Sie „Bescheinigung des Wesenstests“ bei den Unterlagen hoch.');
  check((await page.locator('button:has-text("Antrag verbindlich absenden")').count()) === 0, 'no submission without it');
  await page.click('#fehlerliste a');
  await page.waitForURL(/\/anlagen#anlage-wesenstest$/);
  const pdf = Buffer.from('%PDF-1.4\n% Wesenstest WT-2022-0815\n%%EOF\n');
  const certificate = { name: 'Wesenstest-Ronja.pdf', mimeType: 'application/pdf', buffer: pdf };
  if (javaScript) {
    // Chosen: uploaded at once, into its slot.
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.setInputFiles('#datei-wesenstest', certificate)]);
    await expectText(page, '#anlage-wesenstest', 'Wesenstest-Ronja.pdf');
    await shot(page, 'dogs-attachments');
    await page.click('button:has-text("Weiter zur Prüfung")');
  } else {
    // Without JavaScript: chosen but not uploaded, "Weiter zur Prüfung" takes it along.
    await page.setInputFiles('#datei-wesenstest', certificate);
    await page.click('button:has-text("Weiter zur Prüfung")');
  }
  await page.waitForURL(/\/pruefen$/);
  ok(`the missing certificate stops submission; uploaded into its slot (${javaScript ? 'at once' : 'with "Weiter zur Prüfung"'})`);

  step('review and submit');
  await shot(page, 'dogs-review');
  for (const text of ['Hund 1', 'Bello', 'Hund 2', 'Ronja', 'American Staffordshire Terrier', 'WT-2022-0815', 'Wesenstest-Ronja.pdf']) {
    await expectText(page, 'main', text);
  }
  await page.click('button:has-text("Antrag verbindlich absenden")');
  await page.waitForURL(/\/antraege\/[^/]+$/);
  const receipt = (await page.innerText('#vorgangsnummer')).trim();
  ok(`submitted with two dogs: receipt ${receipt}`);
  console.log(`RECEIPT ${receipt}`);
  console.log('PASSED');
} catch (error) {
  await failed(page, out, error);
} finally {
  await browser.close();
}
