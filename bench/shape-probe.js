// Does a group's tree shape change the cost of an op, with everything else
// equal? Builds a blank and a full n-member group of paired-mls in ONE
// process (bench/impl/paired-mls.js set-ups, both kept alive) and measures
// the ops on each in alternating windows, so both see the same process
// state and the same machine load. Prints per op and shape the range and
// median of the windows' per-op CPU time (process.cpuUsage: all threads)
// and wall time (bench/README.md, "Round 2e: full-shape cells").
//
//   node --expose-gc bench/shape-probe.js [--ops key_package,encrypt_100b,decrypt_100b] [--n 128] [--rounds 6] [--ms 300]
import { setFlagsFromString } from 'node:v8';
import { setup } from './impl/paired-mls.js';
import { option as opt, processCpuMs as cpuMs } from './script-helpers.js';

setFlagsFromString('--no-liftoff'); // as bench/run.js: wasm from the optimizing tier
const ops = opt('--ops', 'key_package,encrypt_100b,decrypt_100b').split(',');
const n = Number(opt('--n', 128));
const rounds = Number(opt('--rounds', 6));
const ms = Number(opt('--ms', 300));
if (typeof gc !== 'function') throw new Error('run with node --expose-gc');

/** Per-op CPU and wall ms of `task` over a window of `ms` wall-clock ms (3 untimed warm-up runs). */
async function window(task) {
  const once = async (timed) => {
    await task.beforeEach?.call(task);
    const w0 = performance.now();
    const c0 = cpuMs();
    await task.run.call(task);
    const times = [cpuMs() - c0, performance.now() - w0];
    await task.afterEach?.call(task);
    return timed ? times : [0, 0];
  };
  for (let i = 0; i < 3; i++) await once(false);
  let runs = 0;
  let cpu = 0;
  let wall = 0;
  while (wall < ms) {
    const [c, w] = await once(true);
    cpu += c;
    wall += w;
    runs++;
  }
  return [cpu / runs, wall / runs];
}

const shapes = { blank: await setup(n, { ops, shape: 'blank' }), full: await setup(n, { ops, shape: 'full' }) };
const windows = {};
for (let r = 0; r < rounds; r++) {
  for (const op of ops) {
    for (const [shape, built] of Object.entries(shapes)) {
      gc();
      const [cpu, wall] = await window(built.tasks[op]);
      const key = `${op} ${shape}`;
      windows[key] ??= { cpu: [], wall: [] };
      windows[key].cpu.push(cpu);
      windows[key].wall.push(wall);
    }
  }
}
const range = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return `${s[0].toFixed(4)}–${s[s.length - 1].toFixed(4)} (median ${s[s.length >> 1].toFixed(4)})`;
};
console.log(`n = ${n}, ${rounds} windows of ${ms} ms per op and shape, alternating; ms per op`);
for (const [key, { cpu, wall }] of Object.entries(windows)) console.log(`${key.padEnd(22)} cpu ${range(cpu)}  wall ${range(wall)}`);
for (const built of Object.values(shapes)) await built.dispose();
