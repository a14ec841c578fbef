// The mapping workbench in a real browser (Debian's chromium, driven by playwright-core),
// under the hub's own CSP (its script and `fetch` must work with it), with axe-core on
// each page type: sign in, open the Mängelanzeige, break its template so that the
// rendered XML no longer validates and see the results update as one types, fix it,
// apply; and the same preview without JavaScript through "Vorschau aktualisieren".
//
// Then the admin console's page of an application: its history in German, its history
// and audit tables scrollable with the keyboard, and axe-core without any violation on
// it and on every other console page (sign-in, search, XML view, status, dead letters,
// awaiting receipt).
//
// Run by tests/tests/workbench_browser.rs:
// `node workbench.mjs <hub URL> <token> <out> <admin token> <application id>`.
// Every step prints `ok <step>`; the first failure prints `FAILED <step>: <reason>` and
// exits with 1. The Rust test then checks that the next application uses the template.

import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, checkAxe, failed, ok, step } from './steps.mjs';

const require = createRequire(import.meta.url);
// Evaluated through the DevTools protocol, which the page's CSP does not restrict (an
// injected <script> would be refused: the workbench allows only its own file).
const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

const [base, token, out, adminToken, applicationId] = process.argv.slice(2);
if (!base || !token || !out || !adminToken || !applicationId) {
  console.error('usage: node workbench.mjs <hub URL> <engineer token> <output folder> <admin token> <application id>');
  process.exit(2);
}
const FIELD = '<beschreibung>{{data.beschreibung}}</beschreibung>';
const BROKEN = '<beschreibungx>{{data.beschreibung}}</beschreibungx>';
const MARKED = '<!-- in der Werkbank geprüft -->';

/** The console's XML view shows the message. */
async function expectXml(page) {
  const xml = await page.locator('pre.xml').innerText();
  check(xml.includes('<?xml') || xml.includes('xmlns'), `the XML view shows the message: ${xml.slice(0, 200)}`);
}

/** axe-core on the page: no violation of any impact. */
async function axe(page, pageType) {
  await page.evaluate(axeSource);
  await checkAxe(page, pageType, { anyImpact: true });
}

async function shot(page, name, fullPage = false) {
  await page.screenshot({ path: join(out, `${name}.png`), fullPage });
}

async function signIn(page) {
  await page.goto(`${base}/workbench/login`);
  check((await page.getAttribute('html', 'lang')) === 'de', 'the page language is German');
  await page.fill('#token', token);
  await page.click('button:has-text("Anmelden")');
  await page.waitForURL(`${base}/workbench`);
}

/** Waits until the results pane contains `text` (also in a closed <details>). */
async function resultsShow(page, text) {
  await page.waitForFunction(
    (wanted) => document.getElementById('ergebnisse')?.textContent.includes(wanted),
    text,
    { timeout: 20000 },
  );
}

const profile = mkdtempSync(join(tmpdir(), 'workbench-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
  locale: 'de-DE',
  viewport: { width: 1600, height: 1000 },
});
const page = await context.newPage();
page.setDefaultTimeout(20000);
const refused = [];
// A CSP violation is a console error; a failed answer is named by its URL (the browser
// asks for a favicon the hub does not have).
page.on('console', (message) => {
  if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) refused.push(message.text());
});
page.on('response', (response) => {
  if (response.status() >= 400 && !response.url().endsWith('/favicon.ico')) refused.push(`${response.status()} ${response.url()}`);
});

try {
  step('sign in');
  await signIn(page);
  await axe(page, 'services');
  await shot(page, 'workbench-services');
  ok('signed in with the engineer token');

  step('open a service');
  await page.click('main a:has-text("Mängelanzeige")');
  await page.waitForURL(/\/workbench\/services\/99999001000000$/);
  await resultsShow(page, 'Alle Prüfungen bestanden');
  await resultsShow(page, 'XSD-gültig');
  const portalForm = await page.locator('.portal-preview').innerText();
  check(portalForm.includes('Art des Mangels'), `the portal's form is shown: ${portalForm.slice(0, 200)}`);
  await axe(page, 'service');
  await shot(page, 'workbench-service');
  ok('the files, the portal form and the fixtures are shown, all checks pass');

  step('keyboard');
  // From the skip link through the navigation to the first file's text area.
  await page.keyboard.press('Tab');
  const skip = await page.evaluate(() => document.activeElement?.textContent);
  check(skip === 'Zum Inhalt springen', `the first tab stop is the skip link, not ${skip}`);
  await page.focus('#template');
  await page.keyboard.press('End');
  ok('the page is reachable with the keyboard');

  step('break the template');
  const original = await page.inputValue('#template');
  check(original.includes(FIELD), 'the template has the field');
  await page.fill('#template', original.replace(FIELD, BROKEN));
  await resultsShow(page, 'Nicht gültig');
  await resultsShow(page, '<beschreibungx>');
  await page.waitForFunction(() => document.getElementById('ansage')?.textContent.includes('Ergebnis aktualisiert'));
  const announced = await page.locator('#ansage').innerText();
  check(announced.includes('Problem'), `the status line says what changed: ${announced}`);
  await shot(page, 'workbench-broken', true);
  ok(`the XML and its validation error updated as typed (${announced.slice(0, 80)}…)`);

  step('fix it');
  await page.fill('#template', original.replace(FIELD, `${MARKED}${FIELD}`));
  await resultsShow(page, 'Alle Prüfungen bestanden');
  await resultsShow(page, MARKED);
  ok('fixed: all checks pass again');

  step('apply');
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("Übernehmen")')]);
  const notice = await page.locator('#uebernahme').innerText();
  check(notice.includes('Übernommen'), `applied: ${notice}`);
  check((await page.inputValue('#template')).includes(MARKED), 'the applied template stays in the editor');
  await axe(page, 'applied');
  await shot(page, 'workbench-applied');
  ok('applied');

  step('without JavaScript');
  const plainBrowser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run'],
  });
  const noJs = await (await plainBrowser.newContext({
    javaScriptEnabled: false,
    locale: 'de-DE',
    viewport: { width: 1600, height: 1000 },
  })).newPage();
  await signIn(noJs);
  await noJs.goto(`${base}/workbench/services/99999001000000`);
  const current = await noJs.inputValue('#template');
  await noJs.fill('#template', current.replace(FIELD, BROKEN));
  await Promise.all([noJs.waitForNavigation(), noJs.click('button:has-text("Vorschau aktualisieren")')]);
  const results = await noJs.locator('#ergebnisse').innerText();
  check(results.includes('Nicht gültig'), `the server-side preview shows the error: ${results.slice(0, 300)}`);
  check((await noJs.inputValue('#template')).includes(BROKEN), 'the edit stays in the editor');
  await shot(noJs, 'workbench-no-js');
  await plainBrowser.close();
  ok('without JavaScript the button gives the same results');

  step('admin console');
  await page.goto(`${base}/console/login`);
  await axe(page, 'console sign-in');
  await page.fill('#token', adminToken);
  await page.click('main button:has-text("Anmelden")');
  await page.waitForURL(`${base}/console`);
  await axe(page, 'console search');
  await page.goto(`${base}/console/applications/${applicationId}`);
  const history = await page.locator('#historie + .scroll').innerText();
  check(history.includes('Angenommen von Client'), `the history in German: ${history.slice(0, 300)}`);
  check(!/accepted from client|delivered to/.test(history), `no English in the history: ${history.slice(0, 300)}`);
  // Both tables scroll with the keyboard: a focusable, named region each.
  for (const heading of ['historie', 'laufzettel']) {
    const region = page.locator(`.scroll[aria-labelledby="${heading} ${heading}-tabelle"]`);
    check((await region.getAttribute('role')) === 'region' && (await region.getAttribute('tabindex')) === '0', `the ${heading} table is a focusable region`);
    await region.focus();
    await page.keyboard.press('ArrowRight');
  }
  await axe(page, 'console application');
  await shot(page, 'console-application', true);
  ok('the console shows the history in German, its tables keyboard-scrollable');

  step('the console\'s other pages');
  // The message's XML (a logged view) and the operator's lists, each with axe-core.
  await Promise.all([page.waitForNavigation(), page.click('button:has-text("XML anzeigen")')]);
  await expectXml(page);
  await axe(page, 'console XML view');
  for (const [path, what] of [['/console/status', 'console status'], ['/console/deadletters', 'console dead letters'], ['/console/awaiting-receipt', 'console awaiting receipt']]) {
    const response = await page.goto(`${base}${path}`);
    check(response.ok(), `${path}: HTTP ${response.status()}`);
    await axe(page, what);
  }
  ok('the console\'s XML view, status, dead letters and awaiting receipt pass axe-core');

  check(refused.length === 0, `no errors in the console (CSP): ${refused.join('; ')}`);
  console.log('PASSED');
} catch (error) {
  await failed(page, out, error);
} finally {
  await context.close();
}
