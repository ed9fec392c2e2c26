// The targets table bench/run.js prints last: one row per target of the
// performance issue (issue 24, "Performance round 2"), each with the figure
// measured in this run and met / MISSED, or "reported" where the issue asks
// for a figure without a bound. Figures not measured in this run say so;
// the one figure read from a committed file (the browser comparison) names
// that file.
import { NATIVE_MAX, NATIVE_MIN_N, SPEEDUP_TARGETS, TARGET_N } from './summary.js';

/** n of the large-group targets (self-update time, wasm memory). */
export const BIG_N = 10000;
/** Self-update commit at n = BIG_N, paired-mls, mean ms. */
export const BIG_SELF_UPDATE_MS = 1000;
/** Wasm linear memory per member at n = BIG_N. */
export const WASM_BYTES_PER_MEMBER = 10 * 1024;
/** Packed tarball (`npm pack --dry-run --json` size). */
export const TARBALL_BYTES = 800_000;
/** Ours vs Wire's core-crypto in Chromium, IndexedDB with encryption at rest. */
export const BROWSER_SPEEDUP = 2;

const x = (v) => (v >= 100 ? `${v.toFixed(0)}×` : v >= 10 ? `${v.toFixed(1)}×` : `${v.toFixed(2)}×`);
const ms = (v) => (v >= 100 ? `${v.toFixed(0)} ms` : v >= 1 ? `${v.toFixed(2)} ms` : `${v.toFixed(3)} ms`);
const kib = (b) => `${(b / 1024).toFixed(1)} KiB`;
const status = (met) => (met ? 'met' : 'MISSED');
const NOT_MEASURED = 'not measured';

/**
 * The rows: { target, figure, status } with status 'met', 'MISSED',
 * 'reported' or 'not measured'.
 *
 * @param {object} run
 * @param {Array} run.summary ratio rows of bench/summary.js ratioRows
 * @param {Array} run.results result rows ({ impl, op, n, shape, mean_ms })
 * @param {Array} run.wasmMemory paired-mls wasm memory records ({ n, bytes, bytes_after_ops })
 * @param {Array} run.jsHeap JS heap records ({ impl, n, heap_used_bytes })
 * @param {{bytes:number}|{error:string}} [run.tarball]
 * @param {{gzipBytes:number, wasmGzipBytes:number}|{error:string}} [run.coreBundle]
 * @param {{node_ms?:number, chromium_ms?:number}|{error:string}} [run.coldStart]
 * @param {{file:string, cells:number, met:number, misses:Array}|{error:string}} [run.browser]
 */
export function targetRows({ summary, results, wasmMemory, jsHeap, tarball, coreBundle, coldStart, browser, threads }) {
  const rows = [];

  // 1. ≤ NATIVE_MAX× native openmls on every op at n ≥ NATIVE_MIN_N.
  const nativeCells = summary.filter((r) => r.n >= NATIVE_MIN_N && r.slowdown !== null);
  if (nativeCells.length === 0) {
    rows.push({ target: `≤ ${NATIVE_MAX}× native openmls, every op at n ≥ ${NATIVE_MIN_N}`, figure: `${NOT_MEASURED} (needs --impls paired-mls,openmls-native at n ≥ ${NATIVE_MIN_N})`, status: NOT_MEASURED });
  } else {
    const worst = nativeCells.reduce((a, b) => (b.slowdown > a.slowdown ? b : a));
    const missed = nativeCells.filter((r) => !r.slowdown_met);
    const list = missed.map((r) => `${r.op} n=${r.n}${r.shape === 'blank' ? '' : ` ${r.shape}`} ${x(r.slowdown)}`).join(', ');
    rows.push({
      target: `≤ ${NATIVE_MAX}× native openmls, every op at n ≥ ${NATIVE_MIN_N}`,
      figure: `${nativeCells.length - missed.length}/${nativeCells.length} cells within; worst ${worst.op} n=${worst.n} ${worst.shape} ${x(worst.slowdown)}${missed.length ? `; over: ${list}` : ''}`,
      status: status(missed.length === 0),
    });
  }

  // 2–3. encrypt and decrypt speed-ups over ts-mls at n = TARGET_N (blank tree).
  for (const op of ['encrypt_100b', 'decrypt_100b']) {
    const target = `${op.replace('_100b', '')} ≥ ${SPEEDUP_TARGETS[op]}× ts-mls at n = ${TARGET_N}`;
    const row = summary.find((r) => r.op === op && r.n === TARGET_N && r.shape === 'blank' && r.speedup !== null);
    if (!row) rows.push({ target, figure: `${NOT_MEASURED} (needs paired-mls and ts-mls at n = ${TARGET_N})`, status: NOT_MEASURED });
    else {
      const p = findResult(results, 'paired-mls', op, TARGET_N);
      const t = findResult(results, 'ts-mls', op, TARGET_N);
      rows.push({ target, figure: `${x(row.speedup)} (${ms(t.mean_ms)} / ${ms(p.mean_ms)})`, status: status(row.speedup_met) });
    }
  }

  // 4. n = BIG_N self-update under a second.
  {
    const target = `self-update commit at n = ${BIG_N} < ${BIG_SELF_UPDATE_MS} ms`;
    const p = findResult(results, 'paired-mls', 'self_update_commit', BIG_N);
    const native = findResult(results, 'openmls-native', 'self_update_commit', BIG_N);
    if (!p) rows.push({ target, figure: `${NOT_MEASURED} (needs --sizes ${BIG_N} --ops self_update_commit)`, status: NOT_MEASURED });
    else rows.push({ target, figure: `${ms(p.mean_ms)}${threads ? ` with ${threads} worker thread(s)` : ''}${native ? ` (native openmls ${ms(native.mean_ms)})` : ''}`, status: status(p.mean_ms < BIG_SELF_UPDATE_MS) });
  }

  // 5. Wasm memory per member at n = BIG_N, with the JS heap reported.
  {
    const target = `wasm memory ≤ ${kib(WASM_BYTES_PER_MEMBER)} per member at n = ${BIG_N} (+ JS heap)`;
    const m = wasmMemory.find((r) => r.n === BIG_N && r.impl === 'paired-mls');
    const heap = jsHeap.find((r) => r.n === BIG_N && r.impl === 'paired-mls');
    if (!m) rows.push({ target, figure: `${NOT_MEASURED} (needs paired-mls at n = ${BIG_N})`, status: NOT_MEASURED });
    else {
      const perMember = Math.max(m.bytes, m.bytes_after_ops ?? 0) / BIG_N;
      const heapNote = heap ? `; JS heap ${(heap.heap_used_bytes / 2 ** 20).toFixed(1)} MiB after setup (${kib(heap.heap_used_bytes / BIG_N)} per member, process-wide)` : '';
      rows.push({ target, figure: `${kib(perMember)} per member (${(Math.max(m.bytes, m.bytes_after_ops ?? 0) / 2 ** 20).toFixed(1)} MiB high-water)${heapNote}`, status: status(perMember <= WASM_BYTES_PER_MEMBER) });
    }
  }

  // 6. Packed tarball.
  rows.push(
    !tarball || tarball.error
      ? { target: `packed tarball ≤ ${TARBALL_BYTES / 1000} KB`, figure: `${NOT_MEASURED}${tarball?.error ? ` (${tarball.error})` : ''}`, status: NOT_MEASURED }
      : { target: `packed tarball ≤ ${TARBALL_BYTES / 1000} KB`, figure: `${tarball.bytes.toLocaleString('en-US')} bytes (npm pack --dry-run)`, status: status(tarball.bytes <= TARBALL_BYTES) },
  );

  // 7. Core-only app bundle, reported.
  rows.push(
    !coreBundle || coreBundle.error
      ? { target: 'core-only app bundle, gzip (reported)', figure: `${NOT_MEASURED}${coreBundle?.error ? ` (${coreBundle.error})` : ''}`, status: NOT_MEASURED }
      : { target: 'core-only app bundle, gzip (reported)', figure: `${coreBundle.gzipBytes.toLocaleString('en-US')} bytes JS + ${coreBundle.wasmGzipBytes.toLocaleString('en-US')} bytes wasm (gzip -9)`, status: 'reported' },
  );

  // 8. Cold start, reported.
  for (const [key, where] of [['node_ms', 'Node'], ['chromium_ms', 'Chromium']]) {
    const value = coldStart && !coldStart.error ? coldStart[key] : undefined;
    const why = coldStart?.error ? ` (${coldStart.error})` : '';
    rows.push(typeof value === 'number' ? { target: `cold start in ${where} (reported)`, figure: ms(value), status: 'reported' } : { target: `cold start in ${where} (reported)`, figure: `${NOT_MEASURED}${why}`, status: NOT_MEASURED });
  }

  // 9. Browser comparison: from the latest committed `npm run bench:browser` run.
  {
    const target = `≥ ${BROWSER_SPEEDUP}× core-crypto in Chromium, IndexedDB, every op at n = 16, 128, 1024`;
    if (!browser || browser.error) rows.push({ target, figure: `${NOT_MEASURED} here: run npm run bench:browser${browser?.error ? ` (${browser.error})` : ''}`, status: NOT_MEASURED });
    else {
      const misses = browser.misses.map((m) => `${m.op} n=${m.n} ${x(m.ratio)}`).join(', ');
      rows.push({
        target,
        figure: `read from ${browser.file} (not this run): ${browser.met}/${browser.cells} cells ≥ ${BROWSER_SPEEDUP}×${misses ? `; under: ${misses}` : ''}`,
        status: browser.met === browser.cells ? 'met' : 'MISSED',
      });
    }
  }
  return rows;
}

function findResult(results, impl, op, n, shape = 'blank') {
  return results.find((r) => r.impl === impl && r.op === op && r.n === n && (r.shape ?? 'blank') === shape);
}

/** Summary of a committed bench:browser JSON: IndexedDB cells and those under BROWSER_SPEEDUP. */
export function browserCells(json, file) {
  const cells = (json.meta?.summary ?? []).filter((r) => r.storage === 'indexeddb' && typeof r.ratio === 'number');
  if (cells.length === 0) return { error: `${file} has no IndexedDB ratios` };
  const misses = cells.filter((r) => r.ratio < BROWSER_SPEEDUP);
  return { file, date: json.meta?.date, cells: cells.length, met: cells.length - misses.length, misses };
}

/** The targets table as text (wrapped figure column), with a tally. */
export function formatTargets(rows) {
  const width = Math.max(...rows.map((r) => r.target.length));
  const statusWidth = Math.max(...rows.map((r) => r.status.length));
  const out = ['targets (issue 24, "Performance round 2"; every figure from this run unless it names a file)'];
  out.push(`${'target'.padEnd(width)}  ${'status'.padEnd(statusWidth)}  figure`, `${'-'.repeat(width)}  ${'-'.repeat(statusWidth)}  ------`);
  for (const r of rows) out.push(`${r.target.padEnd(width)}  ${r.status.padEnd(statusWidth)}  ${r.figure}`);
  const count = (s) => rows.filter((r) => r.status === s).length;
  out.push('', `targets: ${count('met')} met, ${count('MISSED')} missed, ${count('reported')} reported, ${count(NOT_MEASURED)} not measured`);
  return out.join('\n');
}
