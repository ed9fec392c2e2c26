// What the bench's Chromium scripts (browser.js, idb-cost.js) share: the
// browser they launch and the repository served to it on loopback.
import { createServer } from 'node:http';
import { mkdtemp, readFile, rm, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { extname, join, normalize, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

/** The repository's root. */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** Debian's Chromium unless CHROMIUM_PATH says otherwise. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

const TYPES = { '.js': 'text/javascript', '.html': 'text/html', '.wasm': 'application/wasm', '.json': 'application/json' };

/**
 * Static files from the repository on loopback, cross-origin isolated
 * (SharedArrayBuffer, and performance.now() at its fine resolution);
 * `replace` maps a served path to another file on disk.
 */
export async function serveRepository(replace = {}) {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    readFile(replace[path] ?? join(ROOT, path)).then(
      (body) => {
        res.writeHead(200, {
          'content-type': TYPES[extname(path)] ?? 'application/octet-stream',
          'cross-origin-opener-policy': 'same-origin',
          'cross-origin-embedder-policy': 'require-corp',
        });
        res.end(body);
      },
      () => {
        res.writeHead(404);
        res.end();
      },
    );
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => server.close(r)) };
}

const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-component-update', '--disable-sync'];

/** Headless Chromium with the background services that would add noise turned off. */
export function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}

/**
 * A browsing context whose storage is on disk, as a user's profile is: a
 * fresh profile directory under the system's temp directory, removed by
 * `close()`. A `browser.newContext()` is off the record: its IndexedDB
 * lives in memory, so no write there ever waits for the disk
 * (bench/README.md "Round 2p").
 */
export async function openDiskContext() {
  const dir = await mkdtemp(join(tmpdir(), 'pm-bench-profile-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  let context;
  try {
    context = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, args: ARGS, headless: true });
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    context,
    close: async () => {
      try {
        await context.close();
      } finally {
        await remove();
      }
    },
  };
}

/** Whether the profiles of `openDiskContext` would be in memory after all (a tmpfs temp directory). */
export async function tempDirIsTmpfs() {
  const TMPFS_MAGIC = 0x01021994;
  return (await statfs(tmpdir())).type === TMPFS_MAGIC;
}

/**
 * Fresh contexts for the bench's pages: each in a profile on disk
 * (`openDiskContext`), or with `inMemory` off the record in one shared
 * browser launched at the first. `open()` gives `{ context, close }`;
 * `close()` ends the shared browser; `where` says where IndexedDB lives
 * (for the output), `onDisk` whether that is a disk.
 */
export async function contextOpener({ inMemory }) {
  const tmpfs = inMemory ? false : await tempDirIsTmpfs();
  let browser;
  return {
    onDisk: !inMemory && !tmpfs,
    where: inMemory
      ? 'off the record: IndexedDB in memory (--in-memory-profile)'
      : tmpfs
        ? 'a fresh browser profile per page, but the temp directory is a tmpfs: in memory after all'
        : 'a fresh browser profile per page, on disk',
    async open() {
      if (!inMemory) return openDiskContext();
      browser ??= await launchChromium();
      const context = await browser.newContext();
      return { context, close: () => context.close() };
    },
    close: async () => {
      await browser?.close();
    },
  };
}
