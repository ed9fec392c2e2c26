// A/B of two builds of paired-mls in ONE process, interleaved: on a shared,
// loaded machine the load drifts over minutes, so two separate bench runs
// differ by ±20 % for the same build; alternating the two builds every few
// hundred ms exposes both to the same load. Each build is a directory with
// package.json, dist/ and bench/ (bench/impl/paired-mls.js resolves
// 'paired-mls' to its own directory's package). CPU time per operation, or
// wall-clock time with `--clock wall` (for worker threads, whose work the
// process CPU time counts too; PAIRED_MLS_THREADS=N sets both builds' pools).
//
//   node --no-liftoff bench/ab.js --a /tmp/before-tree --b . --n 128 [--shape full]
//        [--ops key_package,encrypt_100b] [--rounds 10] [--ms 300] [--clock wall]
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { option as opt, timeTaskRuns, upperMedian as median } from './script-helpers.js';

const dirs = { a: resolve(opt('--a', '.')), b: resolve(opt('--b', '.')) };
const n = Number(opt('--n', 128));
const shape = opt('--shape', 'blank');
const ops = opt('--ops', 'key_package,self_update_commit,process_commit,add_member,encrypt_100b').split(',');
const rounds = Number(opt('--rounds', 10));
const ms = Number(opt('--ms', 300));
const clock = opt('--clock', 'cpu');
if (clock !== 'cpu' && clock !== 'wall') throw new Error('--clock: cpu or wall');

const sides = {};
for (const [side, dir] of Object.entries(dirs)) {
  const impl = await import(pathToFileURL(`${dir}/bench/impl/paired-mls.js`).href);
  sides[side] = await impl.setup(n, { ops, shape });
}

/** Mean ms (of `clock`) of `task.run` over at least `ms` of timed runs (hooks untimed). */
const measure = async (task) => (await timeTaskRuns(task, { budgetMs: ms, clock }))[clock];

const results = Object.fromEntries(ops.map((op) => [op, { a: [], b: [] }]));
for (const op of ops) for (const side of ['a', 'b']) { const t = sides[side].tasks[op]; await t.beforeAll?.call(t); await measure(t); }
for (let round = 0; round < rounds; round++) {
  for (const op of ops) {
    // Alternate which build goes first.
    for (const side of round % 2 ? ['b', 'a'] : ['a', 'b']) results[op][side].push(await measure(sides[side].tasks[op]));
  }
}
const f = (x) => (x >= 1 ? x.toFixed(3) : x.toFixed(4));
console.log(`A = ${dirs.a}\nB = ${dirs.b}\nn = ${n} ${shape}, ${rounds} interleaved rounds × ≥ ${ms} ms ${clock} per build and op; threads ${process.env.PAIRED_MLS_THREADS ?? 'library default'}; ${clock} ms per op: median [min–max of rounds]; B/A per round`);
console.log('| op | A | B | B / A median [range] |');
console.log('| --- | --- | --- | --- |');
for (const op of ops) {
  const { a, b } = results[op];
  const ratios = a.map((x, i) => b[i] / x);
  console.log(`| ${op} | ${f(median(a))} [${f(Math.min(...a))}–${f(Math.max(...a))}] | ${f(median(b))} [${f(Math.min(...b))}–${f(Math.max(...b))}] | ${median(ratios).toFixed(2)} [${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}] |`);
}
for (const side of Object.values(sides)) await side.dispose();
process.exit(0);
