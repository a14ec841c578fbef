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
