#!/usr/bin/env node
// Cold start of paired-mls (dist/): the time from importing the package to
// the first usable client, i.e. import + wasm fetch/compile/instantiate
// (`init()`) + `MlsClient.open()` + `createIdentity` + `createKeyPackage`,
// in Node (a fresh `node` process per sample, so nothing is cached in the
// process) and in headless Chromium (Debian's, through playwright-core as
// bench/browser.js; a fresh browser context per sample, so nothing is in
// the HTTP or code cache). Median of --runs samples each.
//
//   node bench/cold-start.js [--runs 5] [--no-node] [--no-chromium] [--json FILE]
//
// `coldStart({ runs })` returns `{ node_ms, chromium_ms, ... }` for
// bench/run.js. See bench/README.md "Size round 2".
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * The measured steps, as one module's source; `entry` is the package's
 * core entry as the importer sees it (a file URL in Node, a path on the
 * page). `performance.now()` runs from the time origin of the process or
 * page, so the import is timed from a mark taken before it starts.
 */
const program = (entry) => `
const t0 = performance.now();
const { MlsClient, init } = await import(${JSON.stringify(entry)});
const tImport = performance.now();
await init();
const tInit = performance.now();
const client = await MlsClient.open();
const identity = await client.createIdentity('cold', 1);
const keyPackage = await client.createKeyPackage(identity);
const tReady = performance.now();
if (!(keyPackage instanceof Uint8Array) || keyPackage.length === 0) throw new Error('cold start: no KeyPackage');
client.free();
globalThis.coldStartResult = { total_ms: tReady - t0, import_ms: tImport - t0, init_ms: tInit - tImport, first_key_package_ms: tReady - tInit };
`;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/** Median of each field over the samples. */
const summarize = (samples) => Object.fromEntries(Object.keys(samples[0]).map((k) => [k, median(samples.map((s) => s[k]))]));

function requireDist() {
  if (!existsSync(join(ROOT, 'dist', 'index.js')) || !existsSync(join(ROOT, 'dist', 'paired_mls_core_bg.wasm'))) {
    throw new Error('cold start: dist/ is not built (npm run build)');
  }
}

/** One sample in a fresh Node process. */
function nodeSample() {
  const entry = pathToFileURL(join(ROOT, 'dist', 'index.js')).href;
  const code = `${program(entry)}\nprocess.stdout.write(JSON.stringify(globalThis.coldStartResult));`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out);
}

const TYPES = { '.js': 'text/javascript', '.html': 'text/html', '.wasm': 'application/wasm' };
/**
 * dist/ and the page on loopback, served from memory (read once up front,
 * as a CDN would serve them, so a loaded machine's disk and thread pool do
 * not show up as network time); the page runs `program` as an inline module.
 */
async function serve() {
  const files = new Map([['/cold.html', [`<!doctype html><meta charset="utf-8"><script type="module">${program('/dist/index.js')}</script>`, TYPES['.html']]]]);
  for (const name of readdirSync(join(ROOT, 'dist'))) {
    const type = TYPES[extname(name)];
    if (type) files.set(`/dist/${name}`, [await readFile(join(ROOT, 'dist', name)), type]);
  }
  const server = createServer((req, res) => {
    const file = files.get(new URL(req.url ?? '/', 'http://x').pathname);
    if (!file) {
      res.writeHead(404);
      return res.end();
    }
    res.writeHead(200, { 'content-type': file[1], 'cache-control': 'no-store' });
    res.end(file[0]);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

async function chromiumSamples(runs) {
  const { chromium } = await import('playwright-core');
  const site = await serve();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
  const samples = [];
  try {
    for (let i = 0; i < runs; i++) {
      const context = await browser.newContext();
      const page = await context.newPage();
      // A page error (the module failed) ends the wait at once, not after the timeout.
      let fail;
      const failed = new Promise((_, reject) => (fail = reject));
      failed.catch(() => {});
      page.on('pageerror', (e) => fail(new Error(`cold start in Chromium: ${e.message}`)));
      await page.goto(`${site.url}/cold.html`);
      await Promise.race([page.waitForFunction(() => globalThis.coldStartResult !== undefined, undefined, { timeout: 60_000 }), failed]);
      samples.push(await page.evaluate(() => globalThis.coldStartResult));
      await context.close();
    }
  } finally {
    await browser.close();
    await site.close();
  }
  return samples;
}

/**
 * Cold start in Node and in Chromium, median of `runs` samples each (ms):
 * `node_ms` and `chromium_ms` are import → first KeyPackage; `node` and
 * `chromium` break it into import, init (wasm compile + instantiate) and
 * the first client's identity and KeyPackage. A side that is skipped or
 * cannot run (no Chromium) is `undefined`, with the reason in `skipped`.
 */
export async function coldStart({ runs = 5, node = true, chromium = true } = {}) {
  requireDist();
  const result = { node_ms: undefined, chromium_ms: undefined, runs, skipped: {} };
  if (node) {
    nodeSample(); // warms the OS file cache, as an installed package's files would be
    result.node = summarize(Array.from({ length: runs }, nodeSample));
    result.node_ms = result.node.total_ms;
  }
  if (chromium) {
    if (!existsSync(CHROMIUM)) result.skipped.chromium = `no Chromium at ${CHROMIUM} (set CHROMIUM_PATH)`;
    else {
      result.chromium = summarize(await chromiumSamples(runs));
      result.chromium_ms = result.chromium.total_ms;
    }
  }
  return result;
}

const fmt = (ms) => (ms === undefined ? '-' : ms.toFixed(1));

async function main() {
  const { values: args } = parseArgs({
    options: {
      runs: { type: 'string', default: '5' },
      'no-node': { type: 'boolean', default: false },
      'no-chromium': { type: 'boolean', default: false },
      json: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (args.help) {
    console.log('node bench/cold-start.js [--runs 5] [--no-node] [--no-chromium] [--json FILE]');
    return;
  }
  const r = await coldStart({ runs: Number(args.runs), node: !args['no-node'], chromium: !args['no-chromium'] });
  console.log(`cold start, import → first KeyPackage (median of ${r.runs}; ms): total / import / init (wasm) / client+identity+KeyPackage`);
  for (const side of ['node', 'chromium']) {
    const s = r[side];
    if (s) console.log(`${side}\t${fmt(s.total_ms)}\t${fmt(s.import_ms)}\t${fmt(s.init_ms)}\t${fmt(s.first_key_package_ms)}`);
    else if (r.skipped[side]) console.log(`${side}\tskipped: ${r.skipped[side]}`);
  }
  if (args.json) writeFileSync(args.json, `${JSON.stringify(r, null, 2)}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
