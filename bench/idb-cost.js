// node bench/idb-cost.js [--rounds 3] [--runs 40]
// Chromium's IndexedDB cost of one readwrite transaction by number and size
// of its put requests (bench/browser/idb-cost.js), median and 10th / 90th
// percentile over rounds × runs, interleaved shape by shape. It measures
// the browser, not the library: the figures behind the IndexedDB adapter's
// one-record-per-batch log (bench/README.md "Round 2n").
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { option } from './script-helpers.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const rounds = Number(option('--rounds', '3'));
const runs = Number(option('--runs', '40'));

const server = createServer((req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
  readFile(join(ROOT, path)).then(
    (body) => {
      // Cross-origin isolated, so performance.now() has its fine resolution (5 µs, not 100 µs).
      res.writeHead(200, {
        'content-type': extname(path) === '.html' ? 'text/html' : 'text/javascript',
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-embedder-policy': 'require-corp',
      });
      res.end(body);
    },
    () => {
      res.writeHead(404);
      res.end();
    },
  );
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/bench/browser/idb-cost.html`);
  await page.waitForFunction(() => window.idbCostReady === true);
  const rows = await page.evaluate((a) => window.idbCost(a), { rounds, runs });
  const at = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
  console.log(`Chromium IndexedDB, one readwrite transaction (${rounds} rounds × ${runs} runs), ms: median [p10–p90]`);
  for (const { puts, size, durability, log, ms } of rows) {
    const sorted = [...ms].sort((x, y) => x - y);
    const shape = `${puts} × ${size} B${log ? ' (log add)' : ''}${durability ? ` (${durability})` : ''}`;
    console.log(`${shape.padEnd(24)} ${at(sorted, 0.5).toFixed(3)} [${at(sorted, 0.1).toFixed(3)}–${at(sorted, 0.9).toFixed(3)}]`);
  }
} finally {
  await browser.close();
  server.close();
}
