#!/usr/bin/env node
// MLS operation benchmarks.
//
//   npm run bench -- [--sizes 2,16,128] [--ops a,b] [--time MS] [--json FILE]
//                    [--impls paired-mls,ts-mls,openmls-native] [--shapes blank,full]
//                    [--min-samples K] [--clock wall|cpu] [--prewarm MS]
//                    [--full-max N] [--wasm-baseline] [--[no-]cold-start]
//
// Without --sizes, --ops, --impls and --shapes it runs TARGETS_PLAN: what
// the performance issue's targets need (bench/targets.js), measured in one
// run. With any of them, the one selection given (defaults: sizes 2,16,128,
// all ops, paired-mls, blank) is run for every implementation.
//
// For each implementation (bench/impl/*.js), tree shape and group size n,
// builds an n-member group and times each operation (bench/ops.js) with
// tinybench. openmls-native is the Rust binary of crates/native-bench (built
// here when missing or stale), run with the same sizes, ops and budget; its
// rows are merged in. Prints a table, then the ratio summary
// (bench/summary.js) and the targets table (bench/targets.js) to stdout (progress goes to stderr) and, with --json,
// writes { results: [{ impl, op, n, mean_ms, p50_ms, samples, shape }], meta }
// and an SVG chart next to it (FILE.svg, bench/chart.js).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { arch, availableParallelism, cpus, loadavg, platform } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Bench } from 'tinybench';
import { renderChart } from './chart.js';
import { OPS, OP_NAMES } from './ops.js';
import { formatRoundSpread, mergeRounds } from './rounds.js';
import { formatSummary, ratioRows } from './summary.js';
import { BIG_N, browserCells, formatTargets, targetRows } from './targets.js';
import { SHAPES } from './tree.js';
import { bundleCoreApp } from '../scripts/core-bundle.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const NATIVE = 'openmls-native';
const IMPLS = {
  'paired-mls': () => import('./impl/paired-mls.js'),
  'ts-mls': () => import('./impl/ts-mls.js'),
  [NATIVE]: null, // crates/native-bench, run as a child process
};

// Largest n the full shape is built for by default (--full-max overrides).
// Building it costs about n/2 joins, self-updates and processed commits at
// sizes up to n (bench/README.md, "Tree shapes"); these keep each build
// within a few minutes on a 2-core machine.
const FULL_MAX = { 'paired-mls': 1024, 'ts-mls': 256, [NATIVE]: 2048 };

// The default run (no --sizes/--ops/--impls/--shapes): the sizes and
// implementations issue 24's targets need, and nothing more, so it ends in
// minutes on a 2-core machine. Each step runs its impls × shapes × sizes ×
// ops; the order keeps the largest group last (wasm memory never shrinks, so
// the n = 10,000 high-water mark is that group's own).
export const TARGETS_PLAN = [
  // ≤ 1.5× native at n ≥ 128, every op: the blank tree at 128 and 1024, the
  // full tree at 128 (building it at 1024 takes ~3 min for paired-mls and
  // ~1 min for native under load: `--shapes full --sizes 1024` runs it).
  // Three rounds each, the two sides taking turns (bench/rounds.js): a
  // burst of load in one window no longer decides a ratio.
  { impls: ['paired-mls', NATIVE], shapes: ['blank'], sizes: [128, 1024], ops: OP_NAMES, rounds: 3 },
  { impls: ['paired-mls', NATIVE], shapes: ['full'], sizes: [128], ops: OP_NAMES, rounds: 3 },
  // ≥ 20× / ≥ 10× ts-mls at n = 1024 (encrypt / decrypt; round 1's ≥ 10× for the others).
  { impls: ['ts-mls'], shapes: ['blank'], sizes: [1024], ops: OP_NAMES },
  // Self-update < 1 s and ≤ 10 KiB of wasm memory per member at n = 10,000;
  // also a ≤ 1.5× cell: three rounds too (one round read 1.55×, three of
  // the same build 1.35×: bench/README.md "Round 2s").
  { impls: ['paired-mls', NATIVE], shapes: ['blank'], sizes: [BIG_N], ops: ['self_update_commit'], rounds: 3 },
];

// Wall-clock time, or this process's CPU time (user + system, all threads:
// steadier when other processes compete for the CPU).
const CLOCKS = {
  wall: () => performance.now(),
  cpu: () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  },
};

const USAGE = `usage: node bench/run.js [options]
  With none of --sizes, --ops, --impls, --shapes: the targets run (paired-mls and
  openmls-native at n=128,1024 blank and n=128 full, every op; ts-mls at n=1024 blank;
  paired-mls and openmls-native self-update at n=10000), then the targets table.
  --sizes N,N,...     group sizes (default 2,16,128)
  --ops a,b,...       operations (default all): ${OP_NAMES.join(', ')}
  --time MS           timed milliseconds per operation and size (default 300)
  --min-samples K     at least K timed iterations each (default 5)
  --impls a,b,...     implementations (default paired-mls): ${Object.keys(IMPLS).join(', ')}
  --shapes a,b,...    tree shapes (default blank): blank (add-only, every parent blank),
                      full (every parent non-blank; see bench/README.md)
  --full-max N        build the full shape up to n=N for every implementation (default
                      per implementation: ${Object.entries(FULL_MAX).map(([k, v]) => `${k} ${v}`).join(', ')})
  --clock wall|cpu    time samples by the wall clock (default) or by process CPU time
  --prewarm MS        before measuring an implementation, run every op at n=2 for
                      MS timed milliseconds each, unrecorded (default 150; 0: skip)
  --wasm-baseline     let V8 start wasm in its baseline tier (Liftoff) and tier up
                      lazily, as node does by default; without it, wasm is compiled
                      by the optimizing tier from the start (--no-liftoff)
  --no-cold-start     do not measure the cold start (bench/cold-start.js) for the targets table
  --cold-start        measure it with a selection too (default: only in the targets run)
  --rounds R          measure every selected cell R times, the implementations taking
                      turns, each round with fresh groups; a cell reports the median
                      of its round means (default 1; the targets run uses 3 for the
                      cells compared with native, bench/rounds.js)
  --json FILE         also write the results as JSON, and a chart as FILE.svg
  --threads N         paired-mls: worker threads for a commit's path encryptions
                      (setThreads; default: cores - 1 in the targets run, else the
                      library's default, 0)`;

function parseArgs(argv) {
  const opts = { sizes: [2, 16, 128], ops: OP_NAMES, time: 300, minSamples: 5, impls: ['paired-mls'], shapes: ['blank'], fullMax: undefined, clock: 'wall', prewarm: 150, wasmBaseline: false, coldStart: undefined, json: undefined, threads: undefined, rounds: 1 };
  let selected = false;
  const list = (v) => v.split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = 0; i < argv.length; i++) {
    let [flag, value] = argv[i].split(/=(.*)/s, 2);
    if (flag === '--help' || flag === '-h') {
      console.log(USAGE);
      process.exit(0);
    }
    if (flag === '--wasm-baseline') {
      opts.wasmBaseline = true;
      continue;
    }
    if (flag === '--no-cold-start' || flag === '--cold-start') {
      opts.coldStart = flag === '--cold-start';
      continue;
    }
    if (['--sizes', '--ops', '--impls', '--shapes'].includes(flag)) selected = true;
    if (value === undefined) value = argv[++i];
    if (value === undefined) fail(`${flag} needs a value`);
    switch (flag) {
      case '--sizes': opts.sizes = list(value).map(Number); break;
      case '--ops': opts.ops = list(value); break;
      case '--time': opts.time = Number(value); break;
      case '--min-samples': opts.minSamples = Number(value); break;
      case '--impls': opts.impls = list(value); break;
      case '--shapes': opts.shapes = list(value); break;
      case '--full-max': opts.fullMax = Number(value); break;
      case '--clock': opts.clock = value; break;
      case '--prewarm': opts.prewarm = Number(value); break;
      case '--json': opts.json = value; break;
      case '--threads': opts.threads = Number(value); break;
      case '--rounds': opts.rounds = Number(value); break;
      default: fail(`unknown option ${flag}`);
    }
  }
  if (opts.sizes.length === 0 || opts.sizes.some((n) => !Number.isInteger(n) || n < 2)) fail('--sizes: integers >= 2');
  for (const op of opts.ops) if (!OP_NAMES.includes(op)) fail(`unknown op ${op}`);
  for (const impl of opts.impls) if (!(impl in IMPLS)) fail(`unknown impl ${impl}`);
  for (const shape of opts.shapes) if (!SHAPES.includes(shape)) fail(`unknown shape ${shape}`);
  if (opts.shapes.length === 0) fail('--shapes: blank, full or both');
  if (opts.fullMax !== undefined && !(opts.fullMax >= 2)) fail('--full-max: a group size >= 2');
  if (!(opts.clock in CLOCKS)) fail('--clock: wall or cpu');
  if (!(opts.time > 0)) fail('--time: a positive number of milliseconds');
  if (!(opts.prewarm >= 0)) fail('--prewarm: a number of milliseconds >= 0');
  if (opts.threads !== undefined && !(Number.isInteger(opts.threads) && opts.threads >= 0)) fail('--threads: an integer >= 0');
  if (!Number.isInteger(opts.minSamples) || opts.minSamples < 1) fail('--min-samples: an integer >= 1');
  if (!Number.isInteger(opts.rounds) || opts.rounds < 1) fail('--rounds: an integer >= 1');
  // Report in the canonical op order.
  opts.ops = OP_NAMES.filter((op) => opts.ops.includes(op));
  opts.plan = selected ? [{ impls: opts.impls, shapes: opts.shapes, sizes: opts.sizes, ops: opts.ops, rounds: opts.rounds }] : TARGETS_PLAN;
  // Cold start (bench/cold-start.js: fresh Node processes and Chromium
  // contexts) is part of the targets run; a selection measures it on request.
  opts.coldStart ??= !selected;
  if (!selected) {
    // Issue 24 item 6 measures the n = 10,000 self-update "with threads":
    // the targets run gives paired-mls one worker per core besides the
    // committing thread (native openmls uses rayon on every core).
    opts.threads ??= Math.max(1, availableParallelism() - 1);
    // What the table, chart and JSON meta describe: the union of the plan.
    opts.impls = [...new Set(TARGETS_PLAN.flatMap((s) => s.impls))];
    opts.shapes = SHAPES.filter((shape) => TARGETS_PLAN.some((s) => s.shapes.includes(shape)));
    opts.sizes = [...new Set(TARGETS_PLAN.flatMap((s) => s.sizes))].sort((a, b) => a - b);
  }
  return opts;
}

function fail(message) {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}

// A full GC before each task, so one task's garbage is not collected in
// the next one's timing (the flag takes effect for new contexts).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc');

const log = (line) => process.stderr.write(`${line}\n`);
const round = (x) => Number(x.toPrecision(4));

/** tinybench task options for one implementation task; `this` is the task object. */
function addTask(bench, op, task) {
  const hook = (name) => (task[name] ? async () => { await task[name](); } : undefined);
  // An async function: tinybench then awaits it and never probes it by calling it.
  bench.add(op, async () => { await task.run(); }, {
    beforeAll: hook('beforeAll'),
    beforeEach: hook('beforeEach'),
    afterEach: hook('afterEach'),
    afterAll: hook('afterAll'),
  });
}

/**
 * Build an n-member group with `impl` and time `ops`; returns
 * { builtMs, results, errors }.
 */
async function measure(impl, n, opts, time, shape = 'blank', ops = opts.ops) {
  const t0 = performance.now();
  const { tasks, dispose, info = {} } = await impl.setup(n, { ops, shape });
  const builtMs = performance.now() - t0;
  // The process's JS heap with the group built (after a full GC).
  gc();
  info.heap_used_bytes = process.memoryUsage().heapUsed;
  const bench = new Bench({
    time,
    iterations: opts.minSamples,
    warmup: true,
    warmupIterations: 2,
    warmupTime: Math.min(100, time / 3),
    throws: false,
    now: CLOCKS[opts.clock],
    setup: () => gc(),
  });
  for (const op of ops) {
    if (tasks[op]) addTask(bench, op, tasks[op]);
    else log(`${impl.name} n=${n}: ${op} not implemented, skipped`);
  }
  const results = [];
  const errors = [];
  try {
    await bench.run();
  } finally {
    await dispose();
  }
  for (const task of bench.tasks) {
    const r = task.result;
    if (!r || r.error) {
      const error = r?.error ?? new Error('no result');
      errors.push({ impl: impl.name, op: task.name, n, error: String(error?.stack ?? error) });
      log(`${impl.name} n=${n} ${task.name}: FAILED: ${error?.stack ?? error}`);
      continue;
    }
    const { mean, p50, samples } = r.latency;
    results.push({ impl: impl.name, op: task.name, n, mean_ms: round(mean), p50_ms: round(p50), samples: samples.length, shape });
  }
  return { builtMs, results, errors, info };
}

/** Whether the full shape is built at n for `impl` (see FULL_MAX). */
function feasible(impl, shape, n, opts) {
  if (shape !== 'full') return true;
  return n <= (opts.fullMax ?? FULL_MAX[impl] ?? Infinity);
}

/** The native binary, built with cargo when missing or older than its sources. */
function nativeBinary() {
  const bin = join(process.env.CARGO_TARGET_DIR ? resolve(ROOT, process.env.CARGO_TARGET_DIR) : join(ROOT, 'target'), 'release', process.platform === 'win32' ? 'native-bench.exe' : 'native-bench');
  const sources = ['crates/native-bench/src/main.rs', 'crates/native-bench/Cargo.toml', 'Cargo.lock'].map((p) => join(ROOT, p));
  const built = existsSync(bin) ? statSync(bin).mtimeMs : 0;
  if (sources.some((p) => existsSync(p) && statSync(p).mtimeMs > built)) {
    log(`${NATIVE}: building crates/native-bench (cargo build --release -p native-bench)`);
    // scripts/setup-toolchain.sh writes the toolchain's location there.
    const r = spawnSync('bash', ['-c', 'if [ -f .toolchain.env ]; then source .toolchain.env; fi; "${CARGO:-cargo}" build --release -p native-bench'], {
      cwd: ROOT,
      stdio: ['ignore', process.stderr, process.stderr],
    });
    if (r.status !== 0) throw new Error(`${NATIVE}: cargo build failed (status ${r.status})`);
  }
  return bin;
}

/** Run crates/native-bench for one shape; its stdout is JSON lines (rows and setup records). */
function runNative(opts, shape, sizes, ops = opts.ops) {
  const bin = nativeBinary();
  const args = ['--sizes', sizes.join(','), '--ops', ops.join(','), '--time', String(opts.time), '--min-samples', String(opts.minSamples), '--shape', shape, '--clock', opts.clock];
  log(`${NATIVE}: ${bin} ${args.join(' ')}`);
  return new Promise((resolve) => {
    const child = spawn(bin, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => { out += chunk; });
    child.stderr.on('data', (chunk) => process.stderr.write(chunk));
    child.on('error', (error) => resolve({ results: [], setups: [], error: String(error) }));
    child.on('close', (code) => {
      const results = [];
      const setups = [];
      for (const line of out.split('\n')) {
        if (!line.trim()) continue;
        const row = JSON.parse(line);
        if (row.setup) setups.push(row.setup);
        else results.push(row);
      }
      resolve({ results, setups, error: code === 0 ? undefined : `${NATIVE} exited with status ${code}` });
    });
  });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  // Before any wasm is compiled: optimized code from the first call, so
  // early samples do not catch V8 tiering wasm up lazily.
  if (!opts.wasmBaseline) setFlagsFromString('--no-liftoff');
  // Read by the library's init() (PAIRED_MLS_THREADS), before any import of it.
  if (opts.threads !== undefined) process.env.PAIRED_MLS_THREADS = String(opts.threads);
  // The machine is shared: the load is part of every figure.
  const loadAtStart = loadavg();
  const started = performance.now();
  const measured = []; // result rows of every round (merged into `results` below)
  const setupMs = [];
  const errors = [];
  const skipped = [];
  const wasmMemory = [];
  const skip = (impl, shape, n) => {
    const max = opts.fullMax ?? FULL_MAX[impl];
    const reason = `the full shape costs ~n/2 joins and processed commits at sizes up to n; built up to n=${max} for ${impl} (--full-max raises it)`;
    skipped.push({ impl, shape, n, reason });
    log(`${impl} n=${n} ${shape}: skipped (${reason})`);
  };

  const jsHeap = [];
  const loaded = new Map(); // JS implementations, imported and prewarmed once
  for (const step of opts.plan) {
    const rounds = step.rounds ?? 1;
    for (let roundIndex = 0; roundIndex < rounds; roundIndex++) {
      // Set-up times, memory and skips: the first round's (the later ones repeat them).
      const first = roundIndex === 0;
      if (rounds > 1) log(`round ${roundIndex + 1} of ${rounds}: ${step.impls.join(', ')} (${step.shapes.join(', ')}; n = ${step.sizes.join(', ')})`);
      // Each side goes first in every other round, so neither always runs
      // in the window after the other's set-up.
      const order = roundIndex % 2 === 1 ? [...step.impls].reverse() : step.impls;
      for (const implName of order) {
        if (implName === NATIVE) {
          for (const shape of step.shapes) {
            const sizes = step.sizes.filter((n) => feasible(NATIVE, shape, n, opts));
            if (first) for (const n of step.sizes) if (!sizes.includes(n)) skip(NATIVE, shape, n);
            if (!sizes.length) continue;
            const run = await runNative(opts, shape, sizes, step.ops);
            measured.push(...run.results.map((r) => ({ ...r, round: roundIndex })));
            if (first) for (const s of run.setups) setupMs.push({ impl: NATIVE, n: s.n, shape, ms: s.ms, tree: { nonblank_parents: s.nonblank_parents, fillable_parents: s.fillable_parents } });
            if (run.error) {
              errors.push({ impl: NATIVE, shape, error: run.error });
              log(`${NATIVE} ${shape}: FAILED: ${run.error}`);
            }
          }
          continue;
        }
        if (!loaded.has(implName)) {
          const impl = await IMPLS[implName]();
          if (opts.prewarm > 0) {
            // Warm the JIT (and lazily compiled wasm) on every op, unrecorded.
            const t0 = performance.now();
            const warm = await measure(impl, 2, opts, opts.prewarm, 'blank', OP_NAMES);
            errors.push(...warm.errors);
            log(`${impl.name}: prewarmed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
          }
          loaded.set(implName, impl);
        }
        const impl = loaded.get(implName);
        for (const shape of step.shapes) {
          for (const n of step.sizes) {
            if (!feasible(impl.name, shape, n, opts)) {
              if (first) skip(impl.name, shape, n);
              continue;
            }
            const t0 = performance.now();
            let run;
            try {
              run = await measure(impl, n, opts, opts.time, shape, step.ops);
            } catch (error) {
              errors.push({ impl: impl.name, n, shape, error: String(error?.stack ?? error) });
              log(`${impl.name} n=${n} ${shape}: setup FAILED: ${error?.stack ?? error}`);
              continue;
            }
            const { tree, wasm_memory_bytes: bytes, wasm_memory_bytes_after: bytesAfter, heap_used_bytes: heapUsed } = run.info;
            measured.push(...run.results.map((r) => ({ ...r, round: roundIndex })));
            errors.push(...run.errors);
            const treeNote = tree ? `, ${tree.nonblank_parents}/${tree.fillable_parents} parents non-blank, ${tree.unmerged_leaves} unmerged leaves` : '';
            log(`${impl.name} n=${n} ${shape}: group built in ${run.builtMs.toFixed(0)} ms${treeNote}, measured in ${((performance.now() - t0 - run.builtMs) / 1000).toFixed(1)} s`);
            if (!first) continue;
            setupMs.push({ impl: impl.name, n, shape, ms: round(run.builtMs), ...(tree ? { tree } : {}) });
            if (bytes !== undefined) {
              wasmMemory.push({ impl: impl.name, n, shape, bytes, bytes_per_member: round(bytes / n), bytes_after_ops: bytesAfter, bytes_after_ops_per_member: bytesAfter === undefined ? undefined : round(bytesAfter / n) });
            }
            jsHeap.push({ impl: impl.name, n, shape, heap_used_bytes: heapUsed, heap_used_per_member: round(heapUsed / n) });
          }
        }
      }
    }
  }
  // One row per cell: the median of its rounds' means (bench/rounds.js).
  const results = mergeRounds(measured);

  printTable(results, opts);
  const spread = formatRoundSpread(results, fmt);
  if (spread) console.log(`\n${spread}`);
  if (wasmMemory.length) {
    const mb = (b) => `${(b / 2 ** 20).toFixed(1)} MiB`;
    console.log('\npaired-mls wasm linear memory (memory.buffer.byteLength; never shrinks, so a high-water mark of the run so far)');
    for (const m of wasmMemory) {
      console.log(`  n=${m.n} ${m.shape}: ${mb(m.bytes)} after setup (${(m.bytes_per_member / 1024).toFixed(1)} KiB per member), ${mb(m.bytes_after_ops)} after the ops (${(m.bytes_after_ops_per_member / 1024).toFixed(1)} KiB per member)`);
    }
  }
  if (jsHeap.length) {
    console.log('\nJS heap with the group built (process.memoryUsage().heapUsed after a full GC; process-wide)');
    for (const h of jsHeap) console.log(`  ${h.impl} n=${h.n} ${h.shape}: ${(h.heap_used_bytes / 2 ** 20).toFixed(1)} MiB (${(h.heap_used_per_member / 1024).toFixed(1)} KiB per member)`);
  }
  const summary = ratioRows(results, { ops: opts.ops });
  console.log(`\n${formatSummary(summary)}`);
  const load = (l) => l.map((v) => v.toFixed(2)).join(' ');
  console.log(`\npaired-mls threads: ${opts.threads ?? 'library default'}; load average (1, 5, 15 min) at start ${load(loadAtStart)}, at end ${load(loadavg())}`);
  const measuredSeconds = (performance.now() - started) / 1000;
  // The figures of the targets that are not per-op timings.
  const coreBundle = await settle(async () => bundleCoreApp());
  const tarball = await settle(packedTarball);
  const coldStart = opts.coldStart ? await settle(coldStartTimes) : { error: 'not run: a selection measures it with --cold-start' };
  const browser = await settle(latestBrowserRun);
  const targets = targetRows({ summary, results, wasmMemory, jsHeap, tarball, coreBundle, coldStart, browser, threads: opts.threads });
  console.log(`\n${formatTargets(targets)}`);
  const totalSeconds = (performance.now() - started) / 1000;
  log(`total ${totalSeconds.toFixed(1)} s (operations ${measuredSeconds.toFixed(1)} s)`);

  if (opts.json) {
    const meta = {
      node: process.version,
      date: new Date().toISOString(),
      cpu: cpus()[0]?.model ?? 'unknown',
      cpu_count: cpus().length,
      platform: `${platform()}-${arch()}`,
      plan: opts.plan,
      sizes: opts.sizes,
      ops: opts.ops,
      impls: opts.impls,
      shapes: opts.shapes,
      full_max: Object.fromEntries(opts.impls.map((impl) => [impl, opts.fullMax ?? FULL_MAX[impl]])),
      clock: opts.clock,
      native_timing: opts.impls.includes(NATIVE) ? `openmls-native times itself (--clock ${opts.clock}: ${opts.clock === 'cpu' ? 'process CPU time' : 'std::time::Instant'}; 2 warmup iterations; mean and median)` : undefined,
      time_ms: opts.time,
      min_samples: opts.minSamples,
      rounds: opts.plan.map((step) => step.rounds ?? 1),
      prewarm_ms: opts.prewarm,
      threads: opts.threads ?? 'library default',
      load_average: { start: loadAtStart, end: loadavg() },
      wasm_tiers: opts.wasmBaseline ? 'default (Liftoff, lazy tier-up)' : 'optimizing only (--no-liftoff)',
      ciphersuite: 1,
      setup_ms: setupMs,
      ...(wasmMemory.length ? { wasm_memory: wasmMemory } : {}),
      ...(skipped.length ? { skipped } : {}),
      js_heap: jsHeap,
      summary,
      targets,
      tarball,
      core_bundle: coreBundle.error ? coreBundle : { js_gzip_bytes: coreBundle.gzipBytes, js_raw_bytes: coreBundle.bytes, wasm_gzip_bytes: coreBundle.wasmGzipBytes },
      cold_start: coldStart,
      browser_from_file: browser,
      total_seconds: round(totalSeconds),
      op_descriptions: Object.fromEntries(opts.ops.map((op) => [op, OPS[op]])),
      ...(errors.length ? { errors } : {}),
    };
    writeFileSync(opts.json, `${JSON.stringify({ results, meta }, null, 2)}\n`);
    writeFileSync(`${opts.json}.svg`, renderChart(results, { ops: opts.ops, impls: opts.impls }));
    log(`wrote ${opts.json} and ${opts.json}.svg`);
  }
  if (errors.length) process.exitCode = 1;
}

/** `fn()`'s value, or `{ error }` when it throws (one missing figure does not end the run). */
async function settle(fn) {
  try {
    return await fn();
  } catch (error) {
    log(`${fn.name || 'figure'}: ${error?.message ?? error}`);
    return { error: String(error?.message ?? error).split('\n')[0] };
  }
}

/** The packed npm tarball's size, as `npm pack --dry-run --json` reports it. */
function packedTarball() {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`npm pack --dry-run failed (status ${r.status})`);
  const [pack] = JSON.parse(r.stdout);
  return { bytes: pack.size, unpacked_bytes: pack.unpackedSize, files: pack.entryCount };
}

/** Cold start in Node and Chromium from bench/cold-start.js, when the repository has it. */
async function coldStartTimes() {
  const file = join(ROOT, 'bench', 'cold-start.js');
  if (!existsSync(file)) throw new Error('bench/cold-start.js is not in this tree');
  const mod = await import(pathToFileURL(file).href);
  const fn = mod.coldStart ?? mod.default;
  if (typeof fn !== 'function') throw new Error('bench/cold-start.js exports no coldStart function');
  log('cold start: bench/cold-start.js');
  return fn();
}

/** The newest committed `npm run bench:browser` run (bench/results/browser-*.json, by its meta.date). */
function latestBrowserRun() {
  const dir = join(ROOT, 'bench', 'results');
  const runs = readdirSync(dir)
    .filter((f) => /^browser-.*\.json$/.test(f))
    .map((f) => ({ file: `bench/results/${f}`, json: JSON.parse(readFileSync(join(dir, f), 'utf8')) }))
    .filter(({ json }) => (json.meta?.summary ?? []).some((r) => r.storage === 'indexeddb' && typeof r.ratio === 'number'))
    .sort((a, b) => String(b.json.meta.date).localeCompare(String(a.json.meta.date)));
  if (runs.length === 0) throw new Error('no committed bench:browser run with IndexedDB ratios');
  return browserCells(runs[0].json, runs[0].file);
}

function printTable(results, opts) {
  const order = (r) => [opts.shapes.indexOf(r.shape), opts.ops.indexOf(r.op), r.n, opts.impls.indexOf(r.impl)];
  const rows = [...results].sort((a, b) => {
    const [x, y] = [order(a), order(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2] || x[3] - y[3];
  });
  const cols = [
    ...(opts.shapes.length > 1 ? [['shape', (r) => r.shape, 'l']] : []),
    ['op', (r) => r.op, 'l'],
    ['n', (r) => String(r.n), 'r'],
    ...(opts.impls.length > 1 ? [['impl', (r) => r.impl, 'l']] : []),
    ['mean ms', (r) => fmt(r.mean_ms), 'r'],
    ['p50 ms', (r) => fmt(r.p50_ms), 'r'],
    ['samples', (r) => String(r.samples), 'r'],
  ];
  const cells = rows.map((r) => cols.map(([, get]) => get(r)));
  const widths = cols.map(([title], i) => Math.max(title.length, ...cells.map((c) => c[i].length)));
  const line = (values) => values.map((v, i) => (cols[i][2] === 'l' ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  const out = [];
  out.push(`${opts.impls.length === 1 ? `impl: ${opts.impls[0]}, ` : ''}${opts.clock === 'cpu' ? 'process CPU' : 'wall-clock'} ms per operation`);
  out.push(line(cols.map(([title]) => title)), widths.map((w) => '-'.repeat(w)).join('  '));
  let prevOp;
  for (let i = 0; i < rows.length; i++) {
    if (prevOp !== undefined && `${rows[i].shape} ${rows[i].op}` !== prevOp) out.push('');
    prevOp = `${rows[i].shape} ${rows[i].op}`;
    out.push(line(cells[i]));
  }
  console.log(out.join('\n'));
}

function fmt(ms) {
  return ms >= 100 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(3) : ms.toFixed(4);
}

await main();
