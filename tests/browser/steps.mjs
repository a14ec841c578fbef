// What both browser runs share: the step under way, the lines they report, and what a
// failed run leaves behind for whoever reads the test's output.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

let current = 'start';

/** Names the step under way: a failure names it. */
export function step(name) {
  current = name;
}

export function ok(what) {
  console.log(`ok ${what}`);
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** A failed run: the step and the error, and the page's screenshot and HTML in `out`. */
export async function failed(page, out, error) {
  console.log(`FAILED ${current}: ${error.message}`);
  try {
    await page.screenshot({ path: join(out, 'failure.png'), fullPage: true });
    writeFileSync(join(out, 'failure.html'), await page.content());
    console.log(`(page at ${page.url()}; screenshot and HTML in ${out})`);
  } catch {
    // the page itself may be gone
  }
  process.exitCode = 1;
}

/**
 * axe-core (already injected into the page) on the page: fails on any serious or
 * critical violation of WCAG 2.1 A/AA — with `{ anyImpact: true }` on any violation at
 * all; prints the step. The number of minor ones.
 */
export async function checkAxe(page, pageType, { anyImpact = false } = {}) {
  const result = await page.evaluate(async () =>
    // eslint-disable-next-line no-undef
    await axe.run(document, {
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] },
    }),
  );
  const bad = result.violations.filter((v) => anyImpact || v.impact === 'serious' || v.impact === 'critical');
  if (bad.length > 0) {
    const details = bad
      .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`)
      .join('\n  ');
    throw new Error(`axe-core on ${pageType} (${page.url()}):\n  ${details}`);
  }
  ok(anyImpact
    ? `axe-core ${pageType}: no violation`
    : `axe-core ${pageType}: no serious or critical violation (${result.violations.length} minor)`);
  return result.violations.length;
}

/**
 * Debian's chromium with the citizen's session cookies set for `base`. The CSP is
 * bypassed only so that axe-core can be injected (the portal's CSP forbids it).
 */
export async function browseAs(base, cookieHeader) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ locale: 'de-DE', bypassCSP: true });
  await context.addCookies(
    cookieHeader.split('; ').map((pair) => {
      const at = pair.indexOf('=');
      return { name: pair.slice(0, at), value: pair.slice(at + 1), url: base };
    }),
  );
  return { browser, page: await context.newPage() };
}

/** axe-core injected and checked on the page, and its screenshot `<pageType>.png` in `out`. */
export async function auditPage(page, out, pageType) {
  const { createRequire } = await import('node:module');
  const require = createRequire(import.meta.url);
  await page.addScriptTag({ path: require.resolve('axe-core/axe.min.js') });
  await checkAxe(page, pageType);
  await page.screenshot({ path: join(out, `${pageType.replaceAll(' ', '-')}.png`), fullPage: true });
}
