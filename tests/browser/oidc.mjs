// Sign-in with OpenID Connect in a real browser (Debian's chromium, driven by
// playwright-core), against either panva's oidc-provider (tests/oidc/provider.mjs) or the
// demo Servicekonto (`kopplung idp-sim`): sign in at basis, start a Wohnsitzanmeldung
// (hoch), step up with the Online-Ausweis and land on the form prefilled read-only from
// the ID, log out at the portal and the provider; then sign in at substanziell (ELSTER
// certificate), fill, pay and submit a Meldebescheinigung. The test that runs this opens
// the message the procedure receives. The portal's CSP is enforced (its form-action must
// let the sign-in and logout forms lead to the provider); axe-core checks the new pages
// in a second context that may inject it.
//
// Run by tests/tests/identity_browser.rs:
//   node oidc.mjs <portal URL> <output folder> <oidc-provider | servicekonto>
// Every step prints `ok <step>`; the first failure prints `FAILED <step>: <reason>` and
// exits with 1.

import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, failed, ok, step } from './steps.mjs';

const require = createRequire(import.meta.url);
const axePath = require.resolve('axe-core/axe.min.js');

const base = process.argv[2];
const out = process.argv[3] ?? mkdtempSync(join(tmpdir(), 'portal-oidc-browser-'));
const provider = process.argv[4] ?? 'oidc-provider';
if (!base || !['oidc-provider', 'servicekonto'].includes(provider)) {
  console.error('usage: node oidc.mjs <portal URL> [output folder] [oidc-provider | servicekonto]');
  process.exit(2);
}
const WOHNSITZ = '99115005000000';
const MELDE = '99115003000000';
const DRESDEN = '146120000000';


const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
// The citizen's browser: the portal's CSP as it is.
const context = await browser.newContext({ locale: 'de-DE' });
// For axe-core only: the same cookies, CSP bypassed to inject the script.
const audit = await browser.newContext({ locale: 'de-DE', bypassCSP: true });
const page = await context.newPage();
page.setDefaultTimeout(20000);
const blocked = [];
page.on('console', (message) => {
  if (message.text().includes('Content Security Policy')) blocked.push(message.text());
});

/** axe-core on `page`'s current URL, opened with the citizen's cookies. */
async function axe(pageType) {
  await audit.clearCookies();
  await audit.addCookies(await context.cookies());
  const view = await audit.newPage();
  try {
    await view.goto(page.url());
    await view.addScriptTag({ path: axePath });
    const result = await view.evaluate(async () =>
      // eslint-disable-next-line no-undef
      await axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
      }),
    );
    const bad = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    if (bad.length > 0) {
      const details = bad.map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`).join('\n  ');
      throw new Error(`axe-core on ${pageType} (${view.url()}):\n  ${details}`);
    }
    ok(`axe-core ${pageType}: no serious or critical violation (${result.violations.length} minor)`);
  } finally {
    await view.close();
  }
}

async function shot(name) {
  if (process.env.SCREENSHOTS) await page.screenshot({ path: join(out, `${name}.png`), fullPage: true });
}

async function text(selector) {
  return page.locator(selector).first().innerText();
}

/** The means of identification the demo Servicekonto offers for each level. */
const MEANS = { low: 'benutzername-passwort', substantial: 'elster-zertifikat', high: 'online-ausweis' };
/** What each provider's login page says about the level the portal asked for. */
const ASKED = {
  'oidc-provider': { none: 'keine Angabe', high: 'LoA/high; prompt: login' },
  servicekonto: { none: null, high: 'mindestens das Vertrauensniveau „hoch“' },
};

/** At the provider's login page: picks Erika Mustermann and the level, signs in. */
async function atProvider(level, asked) {
  const expected = ASKED[provider][asked];
  if (provider === 'oidc-provider') {
    await page.waitForURL(/\/interaction\//);
    const said = await text('#verlangt');
    check(said.includes(expected), `the provider was asked for “${expected}”: ${said}`);
    await page.check('input[name="account"][value="pseudonym-erika-7f3a"]');
    await page.check(`input[name="acr"][value="http://eidas.europa.eu/LoA/${level}"]`);
    await page.click('#anmelden button');
    return;
  }
  await page.waitForURL(/\/anmeldung\?/);
  const intro = await text('p.einleitung');
  if (expected) check(intro.includes(expected), `the Servicekonto was asked for “${expected}”: ${intro}`);
  else check(!intro.includes('mindestens'), `no level was asked for: ${intro}`);
  await shot(`servicekonto-login-${level}`);
  await axe(`the Servicekonto's login (${level})`);
  await page.check('#identitaet-erika-mustermann');
  await page.check(`#mittel-${MEANS[level]}`);
  await page.click('button[value="anmelden"]');
}

/** At the provider's logout confirmation: confirms. */
async function logoutAtProvider() {
  if (provider === 'oidc-provider') {
    await page.waitForSelector('#abmelden');
    check(page.url().includes('/session/end'), `at the provider's logout (${page.url()})`);
    await page.click('#abmelden');
    return;
  }
  // With the portal's id_token_hint the Servicekonto ends the session without asking
  // and sends the citizen straight back.
}

/** Signs in from the portal's sign-in page at `level`, agreeing to the prefill. */
async function signIn(level, pageName) {
  await page.goto(`${base}/konto/anmelden`);
  check(await page.isVisible('button:has-text("Anmelden mit Test-Servicekonto")'), 'the provider is offered');
  if (pageName) await axe(pageName);
  await page.check('#uebernahme-test');
  await page.click('button:has-text("Anmelden mit Test-Servicekonto")');
  // A plain sign-in asks for no level; the citizen picks one.
  await atProvider(level, 'none');
  await page.waitForURL(`${base}/konto`);
}

try {
  step('sign-in page with the identity provider');
  await signIn('low', 'sign-in with providers');
  check((await text('#vertrauensniveau')) === 'basis', 'signed in at basis');
  check((await text('#mittel')).includes('Benutzername und Passwort'), 'the means from amr');
  await axe('account signed in at a provider');
  ok('signed in at the provider at basis');

  step('step-up before the Wohnsitzanmeldung');
  await page.goto(`${base}/zustaendigkeit?leistung=${WOHNSITZ}&ort=${DRESDEN}`);
  await page.click('button:has-text("Online anmelden")');
  await page.waitForURL(/\/entwurf\/.+\/schritt\/\d+$/);
  const formUrl = page.url();
  await page.waitForSelector('h1:has-text("Höheres Vertrauensniveau nötig")');
  check((await text('#stufe')).includes('„hoch“'), 'the page names the level needed');
  await shot('step-up');
  await axe('step-up');
  await page.click('button:has-text("Anmelden mit Test-Servicekonto")');
  await atProvider('high', 'high');
  await page.waitForURL(formUrl);
  const familyName = page.locator('input[name="person.familienname"]');
  check((await familyName.inputValue()) === 'Mustermann', 'the name from the ID');
  check((await familyName.getAttribute('readonly')) !== null, 'the name from the ID is read-only');
  check(await page.isVisible('text=Aus Ihrem Servicekonto'), 'marked as from the Servicekonto');
  await shot('prefilled-form');
  await axe('form prefilled from the ID');
  await page.goto(`${base}/konto`);
  check((await text('#vertrauensniveau')) === 'hoch', 'the session is at hoch now');
  await page.goto(`${base}/konto/identifizierung`);
  await axe('identification');
  ok('stepped up from basis to hoch and back at the form');

  step('logout at the portal and the provider');
  await page.click('button:has-text("Abmelden")');
  await logoutAtProvider();
  await page.waitForURL(new RegExp(`^${base.replace(/[.]/g, '\\.')}/\\?state=`));
  check((await text('#abgemeldet')).includes('im Portal und bei Ihrem Identitätsanbieter abgemeldet'), 'the start page confirms the logout');
  await axe('start page after logout');
  await page.goto(`${base}/konto`);
  check(page.url().includes('/konto/anmelden'), 'signed out of the portal');
  ok('logged out at the portal and the provider');

  step('a Meldebescheinigung signed in at substanziell');
  await signIn('substantial');
  check((await text('#vertrauensniveau')) === 'substanziell', 'signed in at substanziell');
  check((await text('#mittel')).includes('ELSTER'), 'the means from amr');
  await page.goto(`${base}/zustaendigkeit?leistung=${MELDE}&ort=${DRESDEN}`);
  await page.click('button:has-text("Antrag online stellen")');
  await page.waitForURL(/\/entwurf\/.+\/schritt\/\d+$/);
  check((await page.locator('input[name="person.familienname"]').inputValue()) === 'Mustermann', 'the name from the ID');
  await page.check('label:has-text("einfache Meldebescheinigung")');
  await page.check('label:has-text("Abholung im Bürgerbüro")');
  await page.click('button:has-text("Weiter")');
  await page.waitForURL(/\/(anlagen|pruefen)$/);
  if (page.url().endsWith('/anlagen')) {
    await page.click('button:has-text("Weiter zur Prüfung")');
    await page.waitForURL(/\/pruefen$/);
  }
  await page.click('button:has-text("Weiter zur Bezahlung")');
  await page.waitForURL(/\/xbezahldienste\/bezahlen\//);
  await page.check('label:has-text("Kreditkarte")');
  await page.click('button:has-text("Jetzt bezahlen")');
  await page.waitForURL(/\/pruefen\?bezahlt/);
  await page.click('button:has-text("Antrag verbindlich absenden")');
  await page.waitForURL(/\/antraege\/[^/]+$/);
  const receipt = (await text('#vorgangsnummer')).trim();
  await shot('meldebescheinigung-submitted');
  ok(`Meldebescheinigung submitted at substanziell, receipt ${receipt}`);

  check(blocked.length === 0, `the CSP blocked something: ${blocked.join('\n')}`);
  console.log('PASSED');
} catch (error) {
  await failed(page, out, error);
} finally {
  await browser.close();
}
