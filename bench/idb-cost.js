// node bench/idb-cost.js [--rounds 3] [--runs 40] [--in-memory-profile]
// Chromium's IndexedDB cost of one readwrite transaction by number and size
// of its put requests (bench/browser/idb-cost.js), median and 10th / 90th
// percentile over rounds × runs, the shapes taking turns run by run. It measures
// the browser, not the library: the figures behind the IndexedDB adapter's
// one-record-per-batch log (bench/README.md "Round 2n").
import { contextOpener, serveRepository } from './chromium.js';
import { option } from './script-helpers.js';

const rounds = Number(option('--rounds', '3'));
const runs = Number(option('--runs', '40'));

// Cross-origin isolated, so performance.now() has its fine resolution (5 µs, not 100 µs).
// On disk by default, as a user's profile (`--in-memory-profile`: off the record, IndexedDB in memory).
const contexts = await contextOpener({ inMemory: process.argv.includes('--in-memory-profile') });
const site = await serveRepository();
const { context, close } = await contexts.open();
try {
  const page = await context.newPage();
  await page.goto(`${site.url}/bench/browser/idb-cost.html`);
  await page.waitForFunction(() => window.idbCostReady === true);
  const rows = await page.evaluate((a) => window.idbCost(a), { rounds, runs });
  const at = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
  console.log(`Chromium IndexedDB (${contexts.where}), one readwrite transaction (${rounds} rounds × ${runs} runs), ms: median [p10–p90]`);
  for (const { puts, size, durability, log, commit, ms } of rows) {
    const sorted = [...ms].sort((x, y) => x - y);
    const shape = `${puts} × ${size} B${log ? ' (log add)' : ''}${durability ? ` (${durability})` : ''}${commit ? ' commit()' : ''}`;
    console.log(`${shape.padEnd(24)} ${at(sorted, 0.5).toFixed(3)} [${at(sorted, 0.1).toFixed(3)}–${at(sorted, 0.9).toFixed(3)}]`);
  }
} finally {
  await close();
  await contexts.close();
  await site.close();
}
