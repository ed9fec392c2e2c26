// Wall-clock A/B/… of several builds of paired-mls in ONE process with a
// worker pool (PAIRED_MLS_THREADS, default 1 = the targets run on 2 cores):
// which batch size should start the X25519 Encap pool
// (ts/mls/x25519-pool.ts POOL_MIN_ENCAPS)? Each build is a directory with
// package.json, dist/ and bench/ (as for bench/ab.js), typically copies of one
// build whose dist/ differs only in the pool's minimum. The builds take turns
// every few hundred ms, so all see the same load. Wall ms per op (the
// pool's gain is the second core, which CPU time would count as a cost).
//
//   PAIRED_MLS_THREADS=1 node --no-liftoff bench/pool-threshold.js \
//     --dirs /tmp/thr/t1,/tmp/thr/t100000 --sizes 16,32,64,128 [--shape blank]
//     [--op self_update_commit] [--rounds 8] [--ms 400]
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadavg } from 'node:os';
import { option as opt, timeTaskRuns, upperMedian as median } from './script-helpers.js';

const dirs = opt('--dirs', '.').split(',').map((d) => resolve(d));
const sizes = opt('--sizes', '16,32,64,128').split(',').map(Number);
const shape = opt('--shape', 'blank');
const op = opt('--op', 'self_update_commit');
const rounds = Number(opt('--rounds', 8));
const ms = Number(opt('--ms', 400));
process.env.PAIRED_MLS_THREADS ??= '1';

/** Mean wall ms of `task.run` over at least `ms` of timed runs (hooks untimed). */
const measure = async (task) => (await timeTaskRuns(task, { budgetMs: ms, clock: 'wall' })).wall;

const f = (x) => (x >= 1 ? x.toFixed(2) : x.toFixed(3));
console.log(`builds: ${dirs.map((d, i) => `${String.fromCharCode(65 + i)} = ${d}`).join(', ')}`);
console.log(`${op} ${shape}, threads ${process.env.PAIRED_MLS_THREADS}, ${rounds} interleaved rounds × ≥ ${ms} ms wall per build; load at start ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
console.log(`| n | ${dirs.map((_, i) => String.fromCharCode(65 + i)).join(' | ')} | ${dirs.slice(1).map((_, i) => `${String.fromCharCode(66 + i)} / A median [range]`).join(' | ')} |`);
console.log(`| --- |${' --- |'.repeat(2 * dirs.length - 1)}`);
for (const n of sizes) {
  const sides = [];
  for (const dir of dirs) {
    const impl = await import(pathToFileURL(`${dir}/bench/impl/paired-mls.js`).href);
    sides.push(await impl.setup(n, { ops: [op], shape }));
  }
  for (const side of sides) { const t = side.tasks[op]; await t.beforeAll?.call(t); await measure(t); }
  const times = sides.map(() => []);
  for (let round = 0; round < rounds; round++) {
    const order = sides.map((_, i) => i);
    if (round % 2) order.reverse();
    for (const i of order) times[i].push(await measure(sides[i].tasks[op]));
  }
  const cells = times.map((xs) => `${f(median(xs))} [${f(Math.min(...xs))}–${f(Math.max(...xs))}]`);
  const ratios = times.slice(1).map((xs) => {
    const r = xs.map((x, i) => x / times[0][i]);
    return `${median(r).toFixed(2)} [${Math.min(...r).toFixed(2)}–${Math.max(...r).toFixed(2)}]`;
  });
  console.log(`| ${n} | ${cells.join(' | ')} | ${ratios.join(' | ')} |`);
  for (const side of sides) await side.dispose();
}
console.log(`load at end ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
process.exit(0);
