// The calling thread's CPU time per join with one verification worker
// (setThreads(1)), besides wall time: on a shared 2-core machine wall time
// swings with the neighbours' load, while the calling thread's CPU time
// (Linux schedstat of the main thread, ns) shows what it did itself. Also
// prints the time it waited for the worker's last chunks and its share of
// the leaf verifications (threadStats().verify). Linux only.
//
//   node --no-liftoff bench/join-cpu.js [--n 128] [--shape full] [--ms 3000]
//
// Run two builds' copies alternately (each a directory with package.json,
// dist/ and bench/, as for bench/ab.js) to compare them.
import { readFileSync } from 'node:fs';
import { setup } from './impl/paired-mls.js';
import { setThreads, threadStats } from 'paired-mls';
import { option as opt } from './script-helpers.js';

const n = Number(opt('--n', 128));
const shape = opt('--shape', 'full');
const ms = Number(opt('--ms', 3000));

/** CPU ms the main thread has run so far (first field of schedstat: ns on a CPU). */
const mainThreadCpu = () => Number(readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;

const { tasks } = await setup(n, { ops: ['join_welcome'], shape });
const task = tasks.join_welcome;
await task.beforeAll?.call(task);
setThreads(1);
const once = async () => {
  await task.beforeEach?.call(task);
  const t0 = performance.now();
  const c0 = mainThreadCpu();
  await task.run.call(task);
  const timed = { wall: performance.now() - t0, cpu: mainThreadCpu() - c0 };
  await task.afterEach?.call(task);
  return timed;
};
// Warm-up: the pool starts its worker at the first batch.
for (let i = 0; i < 10; i++) await once();
const before = { ...threadStats().verify };
let wall = 0;
let cpu = 0;
let count = 0;
while (wall < ms) {
  const timed = await once();
  wall += timed.wall;
  cpu += timed.cpu;
  count++;
}
const after = threadStats().verify;
const caller = after.callingThreadVerifications - before.callingThreadVerifications;
const worker = after.workerVerifications - before.workerVerifications;
const waited = after.callingThreadWaitMs === undefined ? null : (after.callingThreadWaitMs - before.callingThreadWaitMs) / count;
console.log(JSON.stringify({ n, shape, joins: count, wallMs: wall / count, callingThreadCpuMs: cpu / count, waitMs: waited, callingThreadShare: caller / (caller + worker) }));
process.exit(0);
