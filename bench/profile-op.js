// CPU profile of one bench operation of paired-mls, only while its timed
// `run` executes (the V8 profiler is started and stopped around each run,
// so the untimed hooks are left out). Prints self and inclusive time per
// function, merged over the runs. Use a names-keeping build
// (PAIRED_MLS_KEEP_NAMES=1 npm run build) to see the core's functions.
//
//   node --no-liftoff bench/profile-op.js --op key_package --n 128 [--shape full] [--ms 3000] [--top 40]
//     [--callers REGEX [--depth 1]]
import { Session } from 'node:inspector/promises';
import { setup } from './impl/paired-mls.js';
import { option as opt } from './script-helpers.js';

const op = opt('--op', 'key_package');
const n = Number(opt('--n', 128));
const shape = opt('--shape', 'blank');
const ms = Number(opt('--ms', 3000));
const top = Number(opt('--top', 40));
// --callers REGEX: also print who calls the matching frames (first caller
// frame outside the match), to split a hot leaf like sha256 by its source.
const callersOf = opt('--callers', '');
const callerDepth = Number(opt('--depth', 1));

const { tasks, dispose } = await setup(n, { ops: [op], shape });
const task = tasks[op];
const session = new Session();
session.connect();
await session.post('Profiler.enable');
await session.post('Profiler.setSamplingInterval', { interval: 25 });

const self = new Map();
const inclusive = new Map();
const callers = new Map();
let samples = 0;
let runs = 0;
// Rust symbols without their hash; wasm frames without the module's URL.
const label = (f) => {
  const name = (f.functionName || '(anonymous)').replace(/::h[0-9a-f]{16}$/, '');
  const file = f.url ? f.url.replace(/^.*\//, '') : '';
  return /\.wasm/.test(file) ? `[wasm] ${name}` : `${name} ${file}`.trim();
};

await task.beforeAll?.call(task);
for (let i = 0; i < 20; i++) { await task.beforeEach?.call(task); await task.run.call(task); await task.afterEach?.call(task); }
// Without per-iteration hooks one profile covers the whole loop; with
// them the profiler runs only around each `run`.
const continuous = !task.beforeEach && !task.afterEach;
const profiles = [];
const start = performance.now();
if (continuous) await session.post('Profiler.start');
while (performance.now() - start < ms) {
  await task.beforeEach?.call(task);
  if (!continuous) await session.post('Profiler.start');
  await task.run.call(task);
  if (!continuous) profiles.push((await session.post('Profiler.stop')).profile);
  await task.afterEach?.call(task);
  runs++;
}
if (continuous) profiles.push((await session.post('Profiler.stop')).profile);
for (const profile of profiles) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  for (const id of profile.samples) {
    const node = byId.get(id);
    const name = label(node.callFrame);
    if (name === '(program)' || name === '(idle)') continue;
    // The profiler's own start/stop work is not the operation's.
    let inspector = false;
    for (let at = id; at !== undefined && !inspector; at = parent.get(at)) inspector = /node:inspector$|^dispatch$/.test(label(byId.get(at).callFrame));
    if (inspector) continue;
    samples++;
    self.set(name, (self.get(name) ?? 0) + 1);
    const seen = new Set();
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const l = label(byId.get(at).callFrame);
      if (!seen.has(l)) { seen.add(l); inclusive.set(l, (inclusive.get(l) ?? 0) + 1); }
    }
    if (callersOf && new RegExp(callersOf).test(name)) {
      const chain = [];
      for (let at = parent.get(id); at !== undefined && chain.length < callerDepth; at = parent.get(at)) {
        const l = label(byId.get(at).callFrame);
        if (!new RegExp(callersOf).test(l)) chain.push(l);
      }
      const key = chain.join(' <- ');
      callers.set(key, (callers.get(key) ?? 0) + 1);
    }
  }
}
await dispose();
const pct = (k) => ((100 * k) / samples).toFixed(1).padStart(5);
console.log(`${op} n=${n} ${shape}: ${runs} runs, ${samples} samples (25 µs) outside (program)/(idle) and the profiler's own frames`);
console.log('-- self --');
for (const [name, k] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(k)} %  ${name}`);
console.log('-- inclusive --');
for (const [name, k] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(k)} %  ${name}`);
if (callersOf) {
  console.log(`-- callers of /${callersOf}/ (self samples) --`);
  for (const [name, k] of [...callers].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(k)} %  ${name}`);
}
process.exit(0);
