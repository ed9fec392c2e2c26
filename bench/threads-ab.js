// One build of paired-mls, one process, an op timed with and without worker
// threads (setThreads), alternating every round so both see the same load:
// wall-clock and process CPU time per op (CPU counts every thread, so it
// shows what the pool costs on top of what it saves in wall time). After
// each switch a short untimed run lets the new pool start its workers.
//
//   node --no-liftoff bench/threads-ab.js [--op join_welcome] [--n 128]
//        [--shape blank] [--threads 1] [--rounds 8] [--ms 600]
import { setup } from './impl/paired-mls.js';
import { setThreads, threadStats } from 'paired-mls';
import { option as opt, timeTaskRuns, upperMedian as median } from './script-helpers.js';

const op = opt('--op', 'join_welcome');
const n = Number(opt('--n', 128));
const shape = opt('--shape', 'blank');
const threads = Number(opt('--threads', 1));
const rounds = Number(opt('--rounds', 8));
const ms = Number(opt('--ms', 600));

const { tasks } = await setup(n, { ops: [op], shape });
const task = tasks[op];
await task.beforeAll?.call(task);
/** Mean wall and CPU ms of `task.run` over at least `budget` wall ms of timed runs (hooks untimed). */
const measure = (budget) => timeTaskRuns(task, { budgetMs: budget, clock: 'wall' });

const results = { 0: [], [threads]: [] };
for (let round = 0; round < rounds; round++) {
  for (const t of round % 2 ? [threads, 0] : [0, threads]) {
    setThreads(t);
    await measure(200);
    results[t].push(await measure(ms));
  }
}
const f = (x) => x.toFixed(x >= 10 ? 1 : 2);
console.log(`${op} n = ${n} ${shape}, ${rounds} alternating rounds × ≥ ${ms} ms per setting; ms per op: median [min–max of rounds]`);
console.log('| threads | wall | CPU (all threads) |');
console.log('| --- | --- | --- |');
for (const t of [0, threads]) {
  const walls = results[t].map((r) => r.wall);
  const cpus = results[t].map((r) => r.cpu);
  console.log(`| ${t} | ${f(median(walls))} [${f(Math.min(...walls))}–${f(Math.max(...walls))}] | ${f(median(cpus))} [${f(Math.min(...cpus))}–${f(Math.max(...cpus))}] |`);
}
const ratio = (key) => median(results[threads].map((r) => r[key])) / median(results[0].map((r) => r[key]));
console.log(`threads ${threads} / 0: wall ${ratio('wall').toFixed(2)}, CPU ${ratio('cpu').toFixed(2)}`);
// The pool of the last setting timed (none when that was 0 threads).
const stats = threadStats();
if (stats) console.log(`pool: ${JSON.stringify(stats)}`);
