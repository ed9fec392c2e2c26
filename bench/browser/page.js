// Page side of `npm run bench:browser` (bench/browser.js drives it).
//
// Implementation interface (bench/browser/paired-mls.js, core-crypto.js):
//   export const name; export function init();
//   export async function setup(n, { storage: 'memory' | 'indexeddb', tag }) →
//     { check(), tasks: { [op]: { run, before?, after? } } }
// Only `run` is timed (performance.now(); the page is cross-origin
// isolated, so timers are not coarsened to 100 µs). `before`/`after` run
// untimed around each iteration; `check()` after each operation verifies
// the two members are still in the same epoch.

const impls = {
  'paired-mls': () => import('/bench/browser/paired-mls.js'),
  'core-crypto': () => import('/bench/browser/core-crypto.js'),
};

function stats(samples) {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
  return { mean_ms: mean, p50_ms: sorted[sorted.length >> 1], samples: samples.length };
}

window.bench = {
  /** Load and initialise one implementation; its cold start in ms (module fetch, compile, init). */
  async coldStart(implName) {
    const t0 = performance.now();
    const impl = await impls[implName]();
    await impl.init();
    return performance.now() - t0;
  },

  /** Build an n-member group with `implName` on `storage` and time each op. */
  async run({ impl: implName, n, storage, ops, timeMs, minSamples, maxSamples, warmup, tag }) {
    const impl = await impls[implName]();
    await impl.init();
    const t0 = performance.now();
    const { tasks, check } = await impl.setup(n, { storage, tag });
    const setupMs = performance.now() - t0;
    const results = [];
    for (const op of ops) {
      const task = tasks[op];
      const samples = [];
      let timed = 0;
      for (let i = 0; i < warmup + maxSamples && (samples.length < minSamples || timed < timeMs); i++) {
        if (task.before) await task.before();
        const start = performance.now();
        await task.run();
        const ms = performance.now() - start;
        if (task.after) await task.after();
        if (i >= warmup) {
          samples.push(ms);
          timed += ms;
        }
      }
      await check();
      results.push({ impl: implName, op, n, storage, ...stats(samples) });
    }
    return { setupMs, results };
  },
};
window.benchReady = true;
