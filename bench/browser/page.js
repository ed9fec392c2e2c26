// Page side of `npm run bench:browser` (bench/browser.js drives it).
//
// Implementation interface (bench/browser/paired-mls.js, core-crypto.js):
//   export const name; export function init({ threads }?);  (threads: ours only)
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

/**
 * A 30 ms busy loop in a function of a known name: its first and last
 * profile samples tie the profiler's clock to performance.now().
 */
function benchCalibrationMarker() {
  const start = performance.now();
  let x = 0;
  while (performance.now() - start < 30) x += Math.sqrt(x + 1);
  return [start, performance.now(), x];
}
function calibrate() {
  const [start, end] = benchCalibrationMarker();
  return { start, end };
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
  async run({ impl: implName, n, storage, ops, timeMs, minSamples, maxSamples, warmup, tag, profile, threads = 0 }) {
    const impl = await impls[implName]();
    await impl.init({ threads });
    const t0 = performance.now();
    const { tasks, check } = await impl.setup(n, { storage, tag });
    const setupMs = performance.now() - t0;
    const results = [];
    for (const op of ops) {
      const task = tasks[op];
      const samples = [];
      const windows = []; // [start, end] of each timed run, for --profile
      let timed = 0;
      const profiling = profile && window.benchProfile;
      if (profiling) await window.benchProfile('start');
      const calibration = profiling ? calibrate() : undefined;
      for (let i = 0; i < warmup + maxSamples && (samples.length < minSamples || timed < timeMs); i++) {
        if (task.before) await task.before();
        const start = performance.now();
        await task.run();
        const end = performance.now();
        if (task.after) await task.after();
        if (i >= warmup) {
          samples.push(end - start);
          windows.push([start, end]);
          timed += end - start;
        }
      }
      if (profiling) await window.benchProfile('stop', JSON.stringify({ label: `${implName} ${op} n=${n} ${storage}`, calibration, windows }));
      await check();
      results.push({ impl: implName, op, n, storage, ...stats(samples) });
    }
    return { setupMs, results, pool: impl.poolStats?.() ?? null };
  },
};
window.benchReady = true;
