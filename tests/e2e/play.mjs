// Drives Debian's chromium (playwright-core) through the test page of the
// browser playback check and prints one line of JSON about what it did.
//   node play.mjs URL play|fail [TIMEOUT_SECONDS]
// play: succeed once the video is past 2 s, with frames decoded and no player error.
// fail: succeed once the player reports an error and no frame was decoded
//       within 3 s after it (Shaka's stall handling nudges currentTime a little).
// Exit 0 when the outcome is the expected one, 1 otherwise, 2 on misuse.
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const [url, expect, timeoutArg] = process.argv.slice(2);
if (!url || !['play', 'fail'].includes(expect)) {
  console.error('usage: node play.mjs URL play|fail [TIMEOUT_SECONDS]');
  process.exit(2);
}
// playwright-core is installed by setup.sh in target/e2e (or E2E_PREFIX).
const prefix = process.env.E2E_PREFIX
  ? join(process.env.E2E_PREFIX, 'package.json')
  : new URL('../../target/e2e/package.json', import.meta.url);
const { chromium } = createRequire(prefix)('playwright-core');
const timeoutMs = Number(timeoutArg || 60) * 1000;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
// A fresh profile, under E2E_TMPDIR when given (playback.py uses its workdir).
const profile = mkdtempSync(join(process.env.E2E_TMPDIR || tmpdir(), 'chromium-profile-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let context;
let out = { expect, ok: false };
const watchdog = setTimeout(() => {
  console.log(JSON.stringify({ ...out, ok: false, reason: 'watchdog: run took too long' }));
  process.exit(1);
}, timeoutMs + 30000);
try {
  // Playwright passes --headless itself and takes the profile directory as an argument.
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    timeout: 30000,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  const page = context.pages()[0] || (await context.newPage());
  const console_ = [];
  page.on('console', (m) => { if (m.type() === 'error') console_.push(m.text()); });
  page.on('pageerror', (e) => console_.push(String(e)));
  await page.goto(url, { timeout: 15000 });
  const deadline = Date.now() + timeoutMs;
  let r = {};
  let erroredAt = null;
  const trace = [];
  const t0 = Date.now();
  while (Date.now() < deadline) {
    r = await page.evaluate(() => {
      const v = document.querySelector('video');
      const q = v && v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
      return { errors: [], state: 'no result', ...window.__result, currentTime: v ? v.currentTime : 0,
               frames: q.totalVideoFrames || 0 };
    });
    if (expect === 'play') {
      if (r.errors.length) break;
      if (r.currentTime > 2.0 && r.frames >= 25) { out.ok = true; break; }
    } else {
      if (r.frames > 0 || r.state === 'playing') break;
      // After the error, watch a little longer that nothing plays.
      if (r.errors.length && erroredAt === null) erroredAt = Date.now();
      if (erroredAt !== null && Date.now() - erroredAt > 3000) { out.ok = true; break; }
    }
    trace.push([Date.now() - t0, Math.round(r.currentTime * 100) / 100, r.frames]);
    await sleep(250);
  }
  out = { ...out, state: r.state, currentTime: r.currentTime, errors: r.errors,
          frames: r.frames, licence: r.licence, events: r.events, trace: trace.slice(-8), console: console_.slice(0, 5) };
  if (!out.ok) out.reason = Date.now() >= deadline ? 'timed out' : 'unexpected outcome';
} catch (e) {
  out.reason = String(e && e.message ? e.message.split('\n')[0] : e);
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  clearTimeout(watchdog);
}
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
