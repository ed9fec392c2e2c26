/**
 * Real-browser test plumbing: a static file server for the repository
 * (dist/ and the test pages) and a Delivery Service on loopback, and
 * Debian's Chromium driven by playwright-core.
 */
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { chromium, type Browser, type Page } from 'playwright-core';

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.html': 'text/html', '.wasm': 'application/wasm', '.map': 'application/json', '.css': 'text/css' };

/**
 * `isolated`: serve every file with COOP same-origin and COEP require-corp,
 * so pages are cross-origin isolated (SharedArrayBuffer, `setThreads`).
 */
export async function staticServer(root: string, options: { isolated?: boolean } = {}): Promise<{ url: string; close(): Promise<void> }> {
  const isolation = options.isolated ? { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' } : {};
  const server: Server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    readFile(join(root, path)).then(
      (body) => {
        res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream', ...isolation });
        res.end(body);
      },
      () => {
        res.writeHead(404);
        res.end();
      },
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
}

/**
 * Registers the suite's Chromium and static server (started before its
 * tests, closed after) and returns `page()`: a fresh context's page at
 * `path`, with the modules of `modules` (name → URL under the repository)
 * imported and set on `window.modules`, for page-side code to use.
 * `page(tabOf)` opens it in `tabOf`'s context instead: a second tab of the
 * same browser profile (same IndexedDB, same Web Locks).
 */
export function chromiumPages(path: string, modules: Record<string, string> = {}): { page(tabOf?: Page): Promise<Page> } {
  let browser: Browser | undefined;
  let site: { url: string; close(): Promise<void> } | undefined;
  beforeAll(async () => {
    site = await staticServer(process.cwd());
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await site?.close();
  });
  return {
    async page(tabOf?: Page) {
      const context = tabOf?.context() ?? (await browser!.newContext());
      const p = await context.newPage();
      p.on('pageerror', (e) => console.error(e.message));
      await p.goto(`${site!.url}${path}`);
      await p.evaluate(async (urls) => {
        // A dynamic import the test transform leaves alone.
        const load = new Function('url', 'return import(url)') as (url: string) => Promise<unknown>;
        const loaded: Record<string, unknown> = {};
        for (const [name, url] of Object.entries(urls)) loaded[name] = await load(url);
        (window as unknown as { modules: Record<string, unknown> }).modules = loaded;
      }, modules);
      return p;
    },
  };
}
