#!/usr/bin/env node
// `npm run bench:browser`: paired-mls (dist/) and Wire's core-crypto
// (@wireapp/core-crypto, npm, a dev-only dependency of this bench) side by
// side in headless Chromium, the same group shape and operations, with
// in-memory storage and with IndexedDB encrypted at rest on both sides.
// `--storages …,indexeddb-plain` adds ours on IndexedDB without
// encryption (the cost of encryption at rest). `indexeddb-relaxed` (in
// the default list) is ours on IndexedDB with `durability: 'relaxed'`,
// the durability core-crypto's store has, against core-crypto's
// IndexedDB figures; the target is read on `indexeddb` (ours: 'strict'). Prints the ratios
// (core-crypto time / ours) and writes
// bench/results/browser-<date>.{json,txt}. See bench/README.md.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { CHROMIUM, ROOT, contextOpener, serveRepository } from './chromium.js';

const ALL_OPS = ['key_package', 'add_member', 'join_welcome', 'self_update_commit', 'process_commit', 'encrypt_100b', 'decrypt_100b'];
const TARGET = 2; // issue 24: at least 2× core-crypto on every op, IndexedDB storage

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '16,128,1024' },
    storages: { type: 'string', default: 'memory,indexeddb,indexeddb-relaxed' },
    impls: { type: 'string', default: 'paired-mls,core-crypto' },
    ops: { type: 'string', default: ALL_OPS.join(',') },
    time: { type: 'string', default: '1000' },
    'min-samples': { type: 'string', default: '5' },
    'max-samples': { type: 'string', default: '200' },
    warmup: { type: 'string', default: '2' },
    profile: { type: 'boolean', default: false },
    // With --profile: also each op's raw V8 profile, its calibration and timed windows (JSON, for inclusive times: bench/profile-tree.js).
    'profile-raw': { type: 'boolean', default: false },
    // Off-the-record contexts (IndexedDB in memory), as runs before round 2p.
    'in-memory-profile': { type: 'boolean', default: false },
    out: { type: 'string', default: join(ROOT, 'bench', 'results') },
    wasm: { type: 'string' },
    // As the Node targets run (bench/run.js): cores − 1 worker threads for ours.
    threads: { type: 'string', default: String(Math.max(1, availableParallelism() - 1)) },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log('node bench/browser.js [--sizes 16,128,1024] [--storages memory,indexeddb,indexeddb-relaxed] [--impls paired-mls,core-crypto] [--ops a,b] [--time MS] [--min-samples K] [--max-samples K] [--warmup K] [--threads N] [--out DIR] [--profile] [--profile-raw] [--wasm FILE] [--in-memory-profile]');
  console.log('  --in-memory-profile   off-the-record pages (IndexedDB in memory, never waiting for the disk) instead of a fresh on-disk profile per page');
  console.log('  --threads N   paired-mls: Web Workers for a commit\'s path encryptions (setThreads; the page is cross-origin isolated); default cores − 1, 0: none');
  process.exit(0);
}
const list = (s) => s.split(',').map((x) => x.trim()).filter(Boolean);
const sizes = list(args.sizes).map(Number);
const storages = list(args.storages);
const impls = list(args.impls);
const ops = list(args.ops);
const threads = Number(args.threads);
/** Where each page's IndexedDB lives: said in the output and the JSON. */
const contexts = await contextOpener({ inMemory: args['in-memory-profile'] });
if (!Number.isInteger(threads) || threads < 0) throw new RangeError('--threads: an integer >= 0');

/**
 * --profile: V8's sampling profiler (100 µs) around each op's loop; only
 * the samples inside timed runs count (the page's calibration marker ties
 * the profiler's clock to performance.now()). Self time per function, top
 * 25, to stderr and bench/results/browser-profile-<date>.txt. Serve a
 * wasm built with PAIRED_MLS_KEEP_NAMES=1 (--wasm FILE) for Rust names.
 */
const profiles = [];
async function attachProfiler(page, context) {
  const cdp = await context.newCDPSession(page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
  await page.exposeFunction('benchProfile', async (what, json) => {
    if (what === 'start') return void (await cdp.send('Profiler.start'));
    const { profile } = await cdp.send('Profiler.stop');
    const { label, calibration, windows } = JSON.parse(json);
    profiles.push(summarizeProfile(label, profile, calibration, windows));
    if (args['profile-raw']) {
      mkdirSync(args.out, { recursive: true });
      const file = join(args.out, `browser-profile-${label.replace(/[^A-Za-z0-9_=-]+/g, '_')}.json`);
      writeFileSync(file, JSON.stringify({ profile, calibration, windows }));
      console.error(`raw profile: ${file}`);
    }
    console.error(profiles.at(-1));
  });
}

function summarizeProfile(label, profile, calibration, windows) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const times = [];
  let t = profile.startTime;
  for (const dt of profile.timeDeltas) times.push((t += dt));
  // Profiler clock (µs) → performance.now() (ms): the marker's first sample is its start.
  const markerSamples = profile.samples.map((id, i) => [byId.get(id).callFrame.functionName, times[i]]).filter(([name]) => name === 'benchCalibrationMarker' || name === 'calibrate'); // (inlined or not)
  if (markerSamples.length === 0) return `${label}: no calibration samples`;
  const offset = markerSamples[0][1] / 1000 - calibration.start;
  const inside = (ms) => windows.some(([a, b]) => ms >= a && ms <= b);
  const self = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    if (!inside(times[i] / 1000 - offset)) return;
    const name = byId.get(id).callFrame.functionName || '(anonymous)';
    self.set(name, (self.get(name) ?? 0) + 1);
    total++;
  });
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 25);
  return [`${label}: ${total} samples in timed runs`, ...top.map(([name, c]) => `  ${((c / total) * 100).toFixed(1).padStart(5)} %  ${name.replace(/::h[0-9a-f]{16}$/, '').slice(0, 150)}`)].join('\n');
}

const fmt = (ms) => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms >= 1 ? ms.toFixed(2) : ms.toFixed(3));

async function main() {
  const site = await serveRepository(args.wasm ? { '/dist/paired_mls_core_bg.wasm': args.wasm } : {});
  const started = Date.now();
  const results = [];
  const setups = [];
  const cold = {};
  // Each page in a fresh context (`contexts`); `close()` ends it with its profile.
  const openPage = async () => {
    const { context, close } = await contexts.open();
    try {
      const page = await context.newPage();
      page.on('pageerror', (e) => console.error(`page: ${e.message}`));
      await page.goto(`${site.url}/bench/browser/page.html`);
      await page.waitForFunction(() => window.benchReady === true);
      return { page, context, close };
    } catch (err) {
      await close();
      throw err;
    }
  };
  try {
    // Cold start: a fresh page (fresh context, nothing cached) loads and initialises each library.
    for (const impl of impls) {
      const { page, close } = await openPage();
      try {
        cold[impl] = await page.evaluate((name) => window.bench.coldStart(name), impl);
      } finally {
        await close();
      }
      console.error(`cold start ${impl}: ${fmt(cold[impl])} ms`);
    }
    for (const storage of storages) {
      for (const n of sizes) {
        // One page per size and storage, both libraries in it.
        const { page, context, close } = await openPage();
        try {
          if (args.profile) await attachProfiler(page, context);
          for (const impl of impls) {
            // core-crypto always encrypts its database, and its durability is fixed (relaxed): its figures are `indexeddb`'s.
            if (impl === 'core-crypto' && (storage === 'indexeddb-plain' || storage === 'indexeddb-relaxed')) continue;
            const tag = `${n}-${Date.now()}`;
            console.error(`${impl} n=${n} ${storage}: setting up…`);
            const out = await page.evaluate((a) => window.bench.run(a), {
              impl, n, storage, ops, tag, profile: args.profile, threads,
              timeMs: Number(args.time), minSamples: Number(args['min-samples']), maxSamples: Number(args['max-samples']), warmup: Number(args.warmup),
            });
            setups.push({ impl, n, storage, ms: out.setupMs, ...(out.pool ? { pool: out.pool } : {}) });
            if (out.pool) console.error(`  ${impl} pool: ${JSON.stringify(out.pool)}`);
            for (const r of out.results) {
              results.push(r);
              console.error(`  ${r.op}: ${fmt(r.mean_ms)} ms (${r.samples})`);
            }
          }
        } finally {
          await close();
        }
      }
    }
  } finally {
    await contexts.close();
    await site.close();
  }
  report({ results, setups, cold, seconds: Math.round((Date.now() - started) / 1000) });
}

function report({ results, setups, cold, seconds }) {
  const find = (impl, op, n, storage) => results.find((r) => r.impl === impl && r.op === op && r.n === n && r.storage === storage);
  const lines = [];
  const summary = [];
  lines.push(`paired-mls vs core-crypto in Chromium (mean ms per op, ratio = core-crypto / paired-mls; target ≥ ${TARGET}× with IndexedDB)`);
  lines.push(`paired-mls threads: ${threads} (setThreads: Web Workers for path encryptions; core-crypto has none)`);
  lines.push(`pages: ${contexts.where}`);
  lines.push('');
  lines.push(['storage', 'op', 'n', 'paired-mls', 'core-crypto', 'ratio', 'target'].join('\t'));
  for (const storage of storages) {
    for (const op of ops) {
      for (const n of sizes) {
        const ours = find('paired-mls', op, n, storage);
        const theirs = find('core-crypto', op, n, storage === 'indexeddb-relaxed' ? 'indexeddb' : storage);
        const ratio = ours && theirs ? theirs.mean_ms / ours.mean_ms : undefined;
        const verdict = ratio === undefined ? '' : storage === 'indexeddb' ? (ratio >= TARGET ? 'met' : 'MISSED') : '';
        if (ratio !== undefined) summary.push({ storage, op, n, ratio, target: storage === 'indexeddb' ? TARGET : undefined, met: storage === 'indexeddb' ? ratio >= TARGET : undefined });
        lines.push([storage, op, n, ours ? fmt(ours.mean_ms) : '-', theirs ? fmt(theirs.mean_ms) : '-', ratio ? `${ratio.toFixed(2)}×` : '-', verdict].join('\t'));
      }
    }
  }
  if (storages.includes('indexeddb') && storages.includes('indexeddb-plain')) {
    lines.push('');
    lines.push('encryption at rest, paired-mls on IndexedDB: in the clear → encrypted (mean ms)');
    for (const op of ops) {
      for (const n of sizes) {
        const plain = find('paired-mls', op, n, 'indexeddb-plain');
        const sealed = find('paired-mls', op, n, 'indexeddb');
        if (plain && sealed) lines.push([op, n, fmt(plain.mean_ms), fmt(sealed.mean_ms), `${(((sealed.mean_ms - plain.mean_ms) / plain.mean_ms) * 100).toFixed(0)}%`].join('\t'));
      }
    }
  }
  lines.push('');
  lines.push(`cold start (fresh page: fetch, compile, init): ${Object.entries(cold).map(([k, v]) => `${k} ${fmt(v)} ms`).join(', ')}`);
  const missed = summary.filter((s) => s.met === false).length;
  const met = summary.filter((s) => s.met === true).length;
  lines.push(`IndexedDB cells at ≥ ${TARGET}×: ${met} met, ${missed} missed; ${seconds} s in all`);
  const text = lines.join('\n');
  console.log(text);
  mkdirSync(args.out, { recursive: true });
  const date = new Date().toISOString().slice(0, 10);
  const meta = { date: new Date().toISOString(), node: process.version, chromium: CHROMIUM, profile_on_disk: contexts.onDisk, sizes, storages, impls, ops, threads, time_ms: Number(args.time), cold_start_ms: cold, setup_ms: setups, summary, total_seconds: seconds };
  writeFileSync(join(args.out, `browser-${date}.json`), JSON.stringify({ results, meta }, null, 2));
  writeFileSync(join(args.out, `browser-${date}.txt`), `${text}\n`);
  if (profiles.length > 0) writeFileSync(join(args.out, `browser-profile-${date}.txt`), `${profiles.join('\n\n')}\n`);
  console.error(`wrote ${join(args.out, `browser-${date}.json`)} and .txt`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
