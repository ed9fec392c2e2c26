#!/usr/bin/env node
// Renders the browser chat example with two tabs talking through a DS and
// saves docs/browser-chat.png (the README's screenshot). Needs Debian's
// Chromium (scripts/setup-services.sh) and a built dist/.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { chromium } from 'playwright-core';
import { SqliteDeliveryStore, startDeliveryServer } from '../dist/server.js';

const types = { '.js': 'text/javascript', '.html': 'text/html', '.wasm': 'application/wasm' };
const site = createServer((req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
  readFile(join(process.cwd(), path)).then(
    (b) => (res.writeHead(200, { 'content-type': types[extname(path)] ?? 'application/octet-stream' }), res.end(b)),
    () => (res.writeHead(404), res.end()),
  );
});
await new Promise((r) => site.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${site.address().port}`;
const ds = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(':memory:') });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run'],
});
try {
  const context = await browser.newContext({ viewport: { width: 480, height: 420 } });
  const open = async (q) => {
    const p = await context.newPage();
    await p.goto(`${base}/examples/browser-chat/index.html?ds=${encodeURIComponent(ds.url)}&${q}`);
    await p.waitForFunction(() => window.chatReady === true);
    return p;
  };
  const alice = await open('name=alice&create=1');
  const bob = await open('name=bob');
  await bob.waitForFunction(() => document.body.textContent.includes('joined the room'), null, { timeout: 15000 });
  const say = async (page, text) => {
    await page.fill('#text', text);
    await page.click('button');
  };
  await say(alice, 'Hi Bob, this tab talks MLS through the DS.');
  await bob.waitForFunction(() => document.body.textContent.includes('this tab talks MLS'), null, { timeout: 15000 });
  await say(bob, 'Hi Alice! End-to-end encrypted, state in IndexedDB.');
  await alice.waitForFunction(() => document.body.textContent.includes('state in IndexedDB'), null, { timeout: 15000 });
  await alice.screenshot({ path: 'docs/browser-chat.png' });
  console.log('wrote docs/browser-chat.png');
} finally {
  await browser.close();
  await ds.close();
  site.close();
}
