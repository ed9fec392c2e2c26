#!/usr/bin/env node
// `npm run bench -- --sizes 2,16,128,512,1024 --json FILE [--time MS] [--ops a,b]`
// Measures MLS operations with tinybench for each group size and writes
// { results: [{ impl, op, n, mean_ms, p50_ms, samples }], meta }.
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Bench } from 'tinybench';
import * as pairedMls from './impl/paired-mls.js';

const OPS = ['self_update_commit', 'process_commit', 'add_member', 'join_welcome', 'encrypt_100b', 'decrypt_100b', 'key_package'];
const IMPLS = [pairedMls];

function args(argv) {
  const out = { sizes: [2, 16, 128], json: undefined, time: 300, ops: OPS };
  for (let i = 0; i < argv.length; i++) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--sizes') out.sizes = value.split(',').map(Number);
    else if (flag === '--json') out.json = value;
    else if (flag === '--time') out.time = Number(value);
    else if (flag === '--ops') out.ops = value.split(',');
    else continue;
    i++;
  }
  for (const op of out.ops) if (!OPS.includes(op)) throw new Error(`unknown op ${op}; choose from ${OPS.join(', ')}`);
  if (out.sizes.some((n) => !Number.isInteger(n) || n < 2)) throw new Error('sizes must be integers >= 2');
  return out;
}

const options = args(process.argv.slice(2));
const results = [];
const started = Date.now();

for (const impl of IMPLS) {
  for (const n of options.sizes) {
    const setupStart = Date.now();
    const ops = await impl.setup(n);
    console.error(`${impl.name}: n=${n} group built in ${Date.now() - setupStart} ms`);
    // Slow operations get fewer iterations; tinybench stops at time or iterations.
    const bench = new Bench({ time: options.time, iterations: 5, warmup: true, warmupIterations: 2, warmupTime: 0 });
    for (const op of options.ops) {
      const task = ops[op];
      if (typeof task === 'function') {
        bench.add(op, task);
      } else {
        const state = {};
        bench.add(op, () => task.run.call(state), {
          beforeEach: task.before ? () => task.before.call(state) : undefined,
          afterEach: task.after ? () => task.after.call(state) : undefined,
        });
      }
    }
    await bench.run();
    for (const t of bench.tasks) {
      const r = t.result;
      const latency = r?.latency ?? r;
      results.push({
        impl: impl.name,
        op: t.name,
        n,
        mean_ms: Number((latency?.mean ?? NaN).toFixed(4)),
        p50_ms: Number((latency?.p50 ?? NaN).toFixed(4)),
        samples: latency?.samples?.length ?? r?.samples?.length ?? 0,
      });
    }
    ops.dispose();
  }
}

console.table(results.map(({ impl, op, n, mean_ms, p50_ms, samples }) => ({ impl, op, n, mean_ms, p50_ms, samples })));
const meta = { node: process.version, date: new Date().toISOString(), cpu: cpus()[0]?.model, sizes: options.sizes, seconds: (Date.now() - started) / 1000 };
if (options.json) {
  writeFileSync(options.json, JSON.stringify({ results, meta }, null, 2));
  console.error(`wrote ${options.json}`);
}
