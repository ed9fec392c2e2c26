/**
 * Review 63d (branch `wpool`, round 3i): `init(source)` now compiles the
 * core's module itself (so the browsers' Encap workers can instantiate
 * it) instead of handing `source` to wasm-bindgen's `initCore`. Every form
 * `initCore` accepted must load as before: a URL string, a URL, a Request,
 * a Response, a Promise of a Response, bytes (ArrayBuffer, a view), a
 * compiled module, also from another realm; a server that sends the wasm
 * without `application/wasm` (wasm-bindgen's fallback, warning and all);
 * and the failures are the same: a 404's message, a non-wasm body's
 * CompileError, an opaque-type error.
 *
 * In Node, `init(source)` with a source takes the browsers' path, so each
 * case runs here on a fresh copy of ts/mls/init.ts and its wasm glue
 * (vi.resetModules: the glue keeps one instance per copy).
 */
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const WASM = readFileSync(new URL('../pkg/paired_mls_core_bg.wasm', import.meta.url));
let server: Server;
let base = '';

beforeAll(async () => {
  server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://x');
    if (url.pathname === '/missing.wasm') {
      response.writeHead(404, 'Not Found');
      response.end();
      return;
    }
    const type = url.searchParams.get('type');
    const headers: Record<string, string> = {};
    if (type) headers['Content-Type'] = type;
    response.writeHead(200, headers);
    response.end(url.pathname === '/garbage.wasm' ? Buffer.from('not wasm at all') : WASM);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** A fresh copy of init.ts (and of the wasm glue it loads). */
async function freshInit(): Promise<typeof import('../ts/mls/init.js')> {
  vi.resetModules();
  return import('../ts/mls/init.js');
}

/** `init(source)` on a fresh copy; then the core answers. */
async function loads(source: unknown): Promise<void> {
  const lib = await freshInit();
  await lib.init(source as never);
  expect(lib.coreInfo().ciphersuites.length).toBeGreaterThan(0);
}

describe('init(source) in the browsers path accepts what initCore accepted', () => {
  it('a URL string, a URL, a Request, a Response, a Promise of a Response', async () => {
    const url = `${base}/core.wasm?type=application/wasm`;
    await loads(url);
    await loads(new URL(url));
    await loads(new Request(url));
    await loads(await fetch(url));
    await loads(fetch(url));
  });

  it('bytes (Uint8Array, ArrayBuffer, a view over part of a buffer), a compiled module, one from another realm', async () => {
    await loads(new Uint8Array(WASM));
    await loads(new Uint8Array(WASM).buffer);
    const padded = new Uint8Array(WASM.length + 16);
    padded.set(WASM, 8);
    await loads(padded.subarray(8, 8 + WASM.length));
    const module = new WebAssembly.Module(WASM);
    await loads(module);
    await loads(Promise.resolve(module));
    // A module compiled in another realm (an iframe's): `instanceof` misses it, WebAssembly.instantiate did not.
    const foreign = runInNewContext('new WebAssembly.Module(bytes)', { bytes: new Uint8Array(WASM) }) as WebAssembly.Module;
    expect(foreign instanceof WebAssembly.Module).toBe(false);
    await loads(foreign);
  });

  it('a server that sends the wasm without application/wasm: it still loads, with wasm-bindgen warning as before', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      for (const type of ['application/octet-stream', 'application/wasm; charset=binary', '']) {
        warn.mockClear();
        await loads(`${base}/core.wasm?type=${encodeURIComponent(type)}`);
        expect(warn).toHaveBeenCalledTimes(1);
        expect(String(warn.mock.calls[0]![0])).toContain('application/wasm');
      }
      warn.mockClear();
      await loads(`${base}/core.wasm?type=application/wasm`);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });

  it('the failures are the same: a 404, a body that is not wasm (either MIME type), bytes that are not wasm; a retry then loads', async () => {
    const lib = await freshInit();
    await expect(lib.init(`${base}/missing.wasm`)).rejects.toThrow(`failed to fetch Wasm: 404 Not Found fetching '${base}/missing.wasm'`);
    await expect(lib.init(`${base}/garbage.wasm?type=application/wasm`)).rejects.toBeInstanceOf(WebAssembly.CompileError);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      await expect(lib.init(`${base}/garbage.wasm?type=text/plain`)).rejects.toBeInstanceOf(WebAssembly.CompileError);
    } finally {
      warn.mockRestore();
    }
    await expect(lib.init(new Uint8Array([0, 1, 2, 3]))).rejects.toBeInstanceOf(WebAssembly.CompileError);
    expect(() => lib.coreInfo()).toThrow(expect.objectContaining({ code: 'WASM_NOT_LOADED' }));
    // A failed init is not cached: the next call loads.
    await lib.init(`${base}/core.wasm?type=application/wasm`);
    expect(lib.coreInfo().ciphersuites.length).toBeGreaterThan(0);
  });

  it('a Response of a type other than basic/cors/default without application/wasm fails as before (no silent fallback)', async () => {
    const response = await fetch(`${base}/core.wasm?type=text/plain`);
    // An opaque-like response: wasm-bindgen only fell back for basic, cors and default.
    Object.defineProperty(response, 'type', { value: 'opaque' });
    const lib = await freshInit();
    await expect(lib.init(response)).rejects.toThrow(TypeError);
  });
});
