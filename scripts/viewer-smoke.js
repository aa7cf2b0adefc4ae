// Manual smoke test of the OHIF viewer behind Aegis login, in headless Chromium (not part of CI: it needs the
// viewer fetched by scripts/fetch-viewer.sh and, for images, DICOMweb with data).
//   npm install playwright-core   (any recent version; uses the system's /usr/bin/chromium, no browser download)
//   AEGIS_URL=https://127.0.0.1:8443 U=user P=password node scripts/viewer-smoke.js
// Prints the OIDC and DICOMweb requests the viewer made (and whether they carried a Bearer token), and saves
// viewer-smoke.png.
const { chromium } = require('playwright-core');
(async () => {
  const base = process.env.AEGIS_URL || 'https://127.0.0.1:8443';
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: ['--no-sandbox'] });
  const page = await browser.newPage({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 800 } });
  const seen = [];
  page.on('response', r => {
    if (r.url().includes('/dicomweb') || r.url().includes('/oauth')) {
      const auth = r.request().headers()['authorization'];
      seen.push(`${r.status()} ${r.request().method()} ${r.url().replace(/code=[^&]+/, 'code=…')} ${auth ? auth.split(' ')[0] : 'no-auth'}`);
    }
  });
  page.on('pageerror', e => console.log('page error:', String(e).slice(0, 300)));
  await page.goto(base + '/viewer/');
  if (!page.url().includes('/login')) throw new Error('expected the login page, got ' + page.url());
  await page.fill('#username', process.env.U);
  await page.fill('#password', process.env.P);
  await page.click('button[type=submit]');
  await page.waitForTimeout(Number(process.env.WAIT_MS || 15000));
  console.log('viewer at', page.url());
  console.log(seen.join('\n'));
  try { await page.screenshot({ path: 'viewer-smoke.png', timeout: 20000 }); } catch (e) { console.log('screenshot failed:', e.message.split('\n')[0]); }
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
