// Drives the OHIF viewer served by `aegis serve` in the system's headless Chromium (Debian package, not a
// browser downloaded by Playwright). Started by ViewerBrowserTests with a JSON job on argv[2]:
//   { origin, user, password, artefacts, name, expectStudies: [accession...], absentStudies: [accession...],
//     open: accession | null, scroll: wheel steps }
// Logs in through Aegis's login page, waits for the OHIF study list, checks which studies are listed, and
// (when "open" is set) opens that study, waits for the viewport to render, screenshots it, scrolls and
// screenshots again. Prints one JSON line "RESULT {...}" with what it saw; the C# test asserts on it and on the
// screenshots. Everything the browser complained about (console errors, failed requests, HTTP >= 400) goes
// into the result too, so a failure says why.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const job = JSON.parse(process.argv[2]);
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const timeout = Number(process.env.VIEWER_E2E_TIMEOUT_MS ?? 120000);
fs.mkdirSync(job.artefacts, { recursive: true });
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'aegis-chromium-'));
const result = { steps: [], console: [], failedRequests: [], httpErrors: [] };
const step = (s) => { result.steps.push(s); process.stderr.write(`[${job.name}] ${s}\n`); };

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  // No network but the server under test, no GPU (software rendering), a fresh profile every run.
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
  ignoreHTTPSErrors: true, // the server's generated self-signed certificate
  viewport: { width: 1400, height: 900 },
});
try {
  const page = context.pages()[0] ?? await context.newPage();
  page.setDefaultTimeout(timeout);
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') result.console.push(`${m.type()}: ${m.text()}`.slice(0, 500)); });
  page.on('pageerror', (e) => result.console.push(`pageerror: ${e.message}`.slice(0, 500)));
  page.on('requestfailed', (r) => result.failedRequests.push(`${r.method()} ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => { if (r.status() >= 400) result.httpErrors.push(`${r.status()} ${r.request().method()} ${r.url()}`); });

  step('open /viewer/ without a session');
  await page.goto(job.origin + '/viewer/');
  await page.waitForURL(/\/login/);
  step('login page: ' + page.url().replace(job.origin, ''));
  await page.fill('#username', job.user);
  await page.fill('#password', job.password);
  await Promise.all([page.waitForURL((u) => !u.pathname.startsWith('/login')), page.click('button[type=submit]')]);
  step('after login: ' + page.url().replace(job.origin, ''));

  // OHIF runs the code flow (authorize -> /viewer/callback -> token) and lands on its study list, filled by
  // QIDO-RS. Studies are told apart by their accession number (a column of the list).
  const rows = page.locator('tr[aria-selected]');
  const row = (accession) => rows.filter({ has: page.getByText(accession, { exact: true }) });
  for (const a of job.expectStudies) await row(a).first().waitFor({ timeout });
  await page.waitForTimeout(1000); // let the list settle: every QIDO-RS response has arrived
  result.listUrl = page.url().replace(job.origin, '');
  result.listed = {};
  for (const a of [...job.expectStudies, ...job.absentStudies]) result.listed[a] = await row(a).count();
  result.rows = await rows.count();
  step(`study list at ${result.listUrl}: ${JSON.stringify(result.listed)}, ${result.rows} row(s)`);
  await page.screenshot({ path: path.join(job.artefacts, `${job.name}-study-list.png`) });

  if (job.open) {
    // Selecting the row shows its series and the workflows; the basic viewer opens the study.
    await row(job.open).first().click();
    const mode = page.getByRole('button', { name: 'Basic Viewer' });
    await mode.waitFor({ timeout });
    await Promise.all([page.waitForURL(/\/viewer\/viewer\?/), mode.click()]);
    result.viewerUrl = page.url().replace(job.origin, '');
    step('viewer: ' + result.viewerUrl);

    const canvas = page.locator('canvas.cornerstone-canvas').first();
    await canvas.waitFor({ state: 'visible', timeout });
    // The first visit shows a guided tour over the viewport; it is not part of what we test.
    const skip = page.getByText('Skip all', { exact: true });
    try { await skip.waitFor({ state: 'visible', timeout: 5000 }); await skip.click(); } catch { /* no tour */ }
    // Rendered means: the viewport canvas holds many non-black pixels with real contrast (a blank viewport is
    // uniformly black). Poll, since decoding and rendering finish after the canvas appears.
    result.before = await waitForImage(page, timeout);
    result.indexBefore = await imageIndex(page);
    step('rendered: ' + JSON.stringify(result.before) + ' image ' + result.indexBefore);
    result.viewportBox = await canvas.boundingBox();
    result.screenshot = path.join(job.artefacts, `${job.name}-viewer.png`);
    await page.screenshot({ path: result.screenshot });

    // Scroll through the stack with the mouse wheel over the viewport (OHIF's default binding).
    const box = result.viewportBox;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    for (let i = 0; i < job.scroll; i++) { await page.mouse.wheel(0, 100); await page.waitForTimeout(200); }
    result.after = await waitForChange(page, result.before?.hash, timeout);
    result.indexAfter = await imageIndex(page);
    step('after scrolling: ' + JSON.stringify(result.after) + ' image ' + result.indexAfter);
    result.screenshotScrolled = path.join(job.artefacts, `${job.name}-viewer-scrolled.png`);
    await page.screenshot({ path: result.screenshotScrolled });
  }
  result.ok = true;
} catch (e) {
  result.ok = false;
  result.error = String(e?.stack ?? e).slice(0, 3000);
  try { await context.pages()[0]?.screenshot({ path: path.join(job.artefacts, `${job.name}-failure.png`) }); } catch { /* best effort */ }
  result.failureUrl = context.pages()[0]?.url();
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log('RESULT ' + JSON.stringify(result));

/** Statistics of the viewport canvas's pixels (it is a 2D canvas: cornerstone copies its WebGL/CPU rendering there). */
async function canvasStats(page) {
  return page.evaluate(() => {
    const c = document.querySelector('canvas.cornerstone-canvas');
    if (!c || c.width === 0 || c.height === 0) return null;
    const ctx = c.getContext('2d');
    if (!ctx) return { error: 'no 2d context' };
    const { data } = ctx.getImageData(0, 0, c.width, c.height);
    let n = 0, nonBlack = 0, sum = 0, sum2 = 0, hash = 2166136261;
    for (let i = 0; i < data.length; i += 4) {
      const v = (data[i] + data[i + 1] + data[i + 2]) / 3;
      n++; sum += v; sum2 += v * v;
      if (v > 16) nonBlack++;
      if ((i & 0x3c) === 0) hash = Math.imul(hash ^ data[i], 16777619) >>> 0; // every 16th pixel
    }
    const mean = sum / n;
    return { width: c.width, height: c.height, nonBlack, nonBlackFraction: nonBlack / n, mean, stddev: Math.sqrt(Math.max(0, sum2 / n - mean * mean)), hash };
  });
}

async function waitForImage(page, ms) {
  const end = Date.now() + ms;
  let s = null;
  while (Date.now() < end) {
    s = await canvasStats(page);
    if (s && s.nonBlackFraction > 0.05 && s.stddev > 10) { await page.waitForTimeout(500); return await canvasStats(page); }
    await page.waitForTimeout(250);
  }
  return s;
}

async function waitForChange(page, hash, ms) {
  const end = Date.now() + Math.min(ms, 30000);
  let s = null;
  while (Date.now() < end) {
    s = await canvasStats(page);
    if (s && s.hash !== hash && s.nonBlackFraction > 0.05) return s;
    await page.waitForTimeout(250);
  }
  return s;
}

/** The image index OHIF shows in the viewport's lower right corner ("I: 8 (1/8)": instance number, then position/count), as "1/8". */
async function imageIndex(page) {
  return page.evaluate(() => {
    const corner = document.querySelector('[data-cy="viewport-overlay-bottom-right"]')?.textContent ?? '';
    const c = /(\d+\/\d+)\)?\s*$/.exec(corner.trim());
    if (c) return c[1];
    for (const e of document.querySelectorAll('canvas.cornerstone-canvas ~ * div, canvas.cornerstone-canvas ~ * span, [class*="viewport"] div, [class*="viewport"] span')) {
      const text = (e.textContent ?? '').trim();
      const m = text.length < 30 && /(?:^|\()(\d+\/\d+)\)?$/.exec(text);
      if (m) return m[1];
    }
    return null;
  });
}
