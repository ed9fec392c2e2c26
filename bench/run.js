#!/usr/bin/env node
// MLS operation benchmarks.
//
//   npm run bench -- [--sizes 2,16,128] [--ops a,b] [--time MS] [--json FILE]
//                    [--impls paired-mls] [--min-samples K] [--clock wall|cpu]
//                    [--prewarm MS] [--wasm-baseline]
//
// For each implementation (bench/impl/*.js) and group size n, builds an
// n-member group and times each operation (bench/ops.js) with tinybench.
// Prints a table to stdout (progress goes to stderr) and, with --json,
// writes { results: [{ impl, op, n, mean_ms, p50_ms, samples }], meta }.
import { writeFileSync } from 'node:fs';
import { arch, cpus, platform } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Bench } from 'tinybench';
import { OPS, OP_NAMES } from './ops.js';

const IMPLS = {
  'paired-mls': () => import('./impl/paired-mls.js'),
  'ts-mls': () => import('./impl/ts-mls.js'),
};

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
  --sizes N,N,...     group sizes (default 2,16,128)
  --ops a,b,...       operations (default all): ${OP_NAMES.join(', ')}
  --time MS           timed milliseconds per operation and size (default 300)
  --min-samples K     at least K timed iterations each (default 5)
  --impls a,b,...     implementations (default paired-mls): ${Object.keys(IMPLS).join(', ')}
  --clock wall|cpu    time samples by the wall clock (default) or by process CPU time
  --prewarm MS        before measuring an implementation, run every op at n=2 for
                      MS timed milliseconds each, unrecorded (default 150; 0: skip)
  --wasm-baseline     let V8 start wasm in its baseline tier (Liftoff) and tier up
                      lazily, as node does by default; without it, wasm is compiled
                      by the optimizing tier from the start (--no-liftoff)
  --json FILE         also write the results as JSON`;

function parseArgs(argv) {
  const opts = { sizes: [2, 16, 128], ops: OP_NAMES, time: 300, minSamples: 5, impls: ['paired-mls'], clock: 'wall', prewarm: 150, wasmBaseline: false, json: undefined };
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
    if (value === undefined) value = argv[++i];
    if (value === undefined) fail(`${flag} needs a value`);
    switch (flag) {
      case '--sizes': opts.sizes = list(value).map(Number); break;
      case '--ops': opts.ops = list(value); break;
      case '--time': opts.time = Number(value); break;
      case '--min-samples': opts.minSamples = Number(value); break;
      case '--impls': opts.impls = list(value); break;
      case '--clock': opts.clock = value; break;
      case '--prewarm': opts.prewarm = Number(value); break;
      case '--json': opts.json = value; break;
      default: fail(`unknown option ${flag}`);
    }
  }
  if (opts.sizes.length === 0 || opts.sizes.some((n) => !Number.isInteger(n) || n < 2)) fail('--sizes: integers >= 2');
  for (const op of opts.ops) if (!OP_NAMES.includes(op)) fail(`unknown op ${op}`);
  for (const impl of opts.impls) if (!(impl in IMPLS)) fail(`unknown impl ${impl}`);
  if (!(opts.clock in CLOCKS)) fail('--clock: wall or cpu');
  if (!(opts.time > 0)) fail('--time: a positive number of milliseconds');
  if (!(opts.prewarm >= 0)) fail('--prewarm: a number of milliseconds >= 0');
  if (!Number.isInteger(opts.minSamples) || opts.minSamples < 1) fail('--min-samples: an integer >= 1');
  // Report in the canonical op order.
  opts.ops = OP_NAMES.filter((op) => opts.ops.includes(op));
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
async function measure(impl, n, opts, time) {
  const t0 = performance.now();
  const { tasks, dispose } = await impl.setup(n, { ops: opts.ops });
  const builtMs = performance.now() - t0;
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
  for (const op of opts.ops) {
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
    results.push({ impl: impl.name, op: task.name, n, mean_ms: round(mean), p50_ms: round(p50), samples: samples.length });
  }
  return { builtMs, results, errors };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  // Before any wasm is compiled: optimized code from the first call, so
  // early samples do not catch V8 tiering wasm up lazily.
  if (!opts.wasmBaseline) setFlagsFromString('--no-liftoff');
  const started = performance.now();
  const results = [];
  const setupMs = [];
  const errors = [];

  for (const implName of opts.impls) {
    const impl = await IMPLS[implName]();
    if (opts.prewarm > 0) {
      // Warm the JIT (and lazily compiled wasm) on every op, unrecorded.
      const t0 = performance.now();
      const warm = await measure(impl, 2, opts, opts.prewarm);
      errors.push(...warm.errors);
      log(`${impl.name}: prewarmed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    for (const n of opts.sizes) {
      const t0 = performance.now();
      const run = await measure(impl, n, opts, opts.time);
      setupMs.push({ impl: impl.name, n, ms: round(run.builtMs) });
      results.push(...run.results);
      errors.push(...run.errors);
      log(`${impl.name} n=${n}: group built in ${run.builtMs.toFixed(0)} ms, measured in ${((performance.now() - t0 - run.builtMs) / 1000).toFixed(1)} s`);
    }
  }

  const totalSeconds = (performance.now() - started) / 1000;
  printTable(results, opts);
  log(`total ${totalSeconds.toFixed(1)} s`);

  if (opts.json) {
    const meta = {
      node: process.version,
      date: new Date().toISOString(),
      cpu: cpus()[0]?.model ?? 'unknown',
      cpu_count: cpus().length,
      platform: `${platform()}-${arch()}`,
      sizes: opts.sizes,
      ops: opts.ops,
      impls: opts.impls,
      clock: opts.clock,
      time_ms: opts.time,
      min_samples: opts.minSamples,
      prewarm_ms: opts.prewarm,
      wasm_tiers: opts.wasmBaseline ? 'default (Liftoff, lazy tier-up)' : 'optimizing only (--no-liftoff)',
      ciphersuite: 1,
      setup_ms: setupMs,
      total_seconds: round(totalSeconds),
      op_descriptions: Object.fromEntries(opts.ops.map((op) => [op, OPS[op]])),
      ...(errors.length ? { errors } : {}),
    };
    writeFileSync(opts.json, `${JSON.stringify({ results, meta }, null, 2)}\n`);
    log(`wrote ${opts.json}`);
  }
  if (errors.length) process.exitCode = 1;
}

function printTable(results, opts) {
  const order = (r) => [opts.ops.indexOf(r.op), r.n, opts.impls.indexOf(r.impl)];
  const rows = [...results].sort((a, b) => {
    const [x, y] = [order(a), order(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  });
  const cols = [
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
    if (prevOp !== undefined && rows[i].op !== prevOp) out.push('');
    prevOp = rows[i].op;
    out.push(line(cells[i]));
  }
  console.log(out.join('\n'));
}

function fmt(ms) {
  return ms >= 100 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(3) : ms.toFixed(4);
}

await main();
