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

/**
 * The browsers' Encap pool (ts/mls/browser-encap-pool.ts) with its real
 * worker source, run here in a vm context that stands for the Web Worker
 * (its messages delivered by hand, so every interleaving of the calling
 * thread's claims and the worker's is chosen, not raced): the worker's
 * instance is the core's module (the one pkg/ holds) instantiated without
 * the glue, as in a browser.
 */
describe("the browser pool's wasm workers (worker source in a vm context)", () => {
  type Sent = { data: unknown };
  class FakeWorker {
    static made: FakeWorker[] = [];
    onmessage: ((event: Sent) => void) | null = null;
    onerror: ((event: unknown) => void) | null = null;
    inbox: unknown[] = [];
    terminated = false;
    context: Record<string, unknown> | undefined;
    constructor(readonly url: string) {
      FakeWorker.made.push(this);
    }
    postMessage(data: unknown): void {
      this.inbox.push(data);
    }
    terminate(): void {
      this.terminated = true;
    }
  }
  const sources = new Map<string, string>();
  const realWorker = (globalThis as { Worker?: unknown }).Worker;
  const realCreate = URL.createObjectURL;

  beforeAll(() => {
    (globalThis as { Worker?: unknown }).Worker = FakeWorker;
    URL.createObjectURL = (blob: Blob) => {
      const url = `blob:review63d/${sources.size}`;
      sources.set(url, '');
      void blob.text().then((text) => sources.set(url, text));
      return url;
    };
  });
  afterAll(() => {
    (globalThis as { Worker?: unknown }).Worker = realWorker;
    URL.createObjectURL = realCreate;
  });

  /** What the worker's instance holds, and what its getRandomValues drew. */
  interface Seen {
    memory: WebAssembly.Memory | undefined;
    drawn: Uint8Array[];
    failRandom: boolean;
  }

  /** Start `worker` as a Web Worker would: its source in a fresh context; deliver its queued messages. */
  async function run(worker: FakeWorker, seen: Seen): Promise<void> {
    if (!worker.context) {
      const source = sources.get(worker.url)!;
      expect(source.length).toBeGreaterThan(0);
      const capturing = {
        ...WebAssembly,
        Module: WebAssembly.Module,
        Instance: function (module: WebAssembly.Module, imports: WebAssembly.Imports) {
          const instance = new WebAssembly.Instance(module, imports);
          seen.memory = instance.exports.memory as WebAssembly.Memory;
          return instance;
        },
      };
      const crypto = {
        subtle: globalThis.crypto.subtle,
        getRandomValues: (bytes: Uint8Array) => {
          if (seen.failRandom) throw new Error('refused');
          globalThis.crypto.getRandomValues(bytes);
          seen.drawn.push(bytes.slice());
          return bytes;
        },
      };
      const context: Record<string, unknown> = {
        crypto,
        WebAssembly: capturing,
        Atomics,
        SharedArrayBuffer,
        Int32Array,
        Uint8Array,
        Error,
        RangeError,
        Promise,
        Math,
        postMessage: (message: unknown) => worker.onmessage?.({ data: message }),
      };
      worker.context = context;
      runInNewContext(source, context);
    }
    for (const data of worker.inbox.splice(0)) {
      if (data && typeof data === 'object' && 'buffer' in data) worker.context.lastBatch = (data as { buffer: SharedArrayBuffer }).buffer;
      (worker.context.onmessage as (event: Sent) => void)({ data });
      // The claim loop awaits each chunk: let it run to its end.
      for (let i = 0; i < 20; i++) await Promise.resolve();
    }
  }

  /** `n` recipients: their X25519 key pairs (node:crypto) and public keys, 32 bytes each. */
  async function recipients(n: number) {
    const { generateKeyPairSync } = await import('node:crypto');
    return Array.from({ length: n }, () => {
      const pair = generateKeyPairSync('x25519');
      const pk = new Uint8Array(Buffer.from(pair.publicKey.export({ format: 'jwk' }).x!, 'base64url'));
      return { privateKey: pair.privateKey, pk };
    });
  }

  /** Each `enc || DH` in `out` is the recipient's: DH = X25519(sk_r, enc). */
  async function expectEncaps(out: Uint8Array, of: { privateKey: import('node:crypto').KeyObject }[]): Promise<void> {
    const { createPublicKey, diffieHellman } = await import('node:crypto');
    of.forEach(({ privateKey }, i) => {
      const enc = out.subarray(i * 64, i * 64 + 32);
      const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(enc).toString('base64url') }, format: 'jwk' });
      expect(Buffer.from(diffieHellman({ privateKey, publicKey })).toString('hex')).toBe(Buffer.from(out.subarray(i * 64 + 32, i * 64 + 64)).toString('hex'));
    });
  }

  /** Whether `needle` occurs in `haystack`. */
  function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
    return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).indexOf(Buffer.from(needle)) >= 0;
  }

  /** After a chunk: nothing secret left in the worker's memory (results, drawn secrets), as far as a search sees. */
  function expectWiped(seen: Seen, results: Uint8Array): void {
    const memory = new Uint8Array(seen.memory!.buffer);
    for (let i = 0; i + 64 <= results.length; i += 64) {
      expect(contains(memory, results.subarray(i + 32, i + 64)), 'a DH output left in the worker').toBe(false);
    }
    for (const drawn of seen.drawn) {
      // Bytes 1..30: x25519 clamps the first and last byte of its copy.
      for (let i = 0; i + 32 <= drawn.length; i += 32) expect(contains(memory, drawn.subarray(i + 1, i + 31)), 'an ephemeral secret (clamped) left in the worker').toBe(false);
    }
  }

  /** A begun batch of 9 Encaps: `worker` runs and makes both chunks; the results, each checked against its recipient. */
  async function workerMakesBoth(pool: { take(out: Uint8Array): void; end(): void }, worker: FakeWorker, seen: Seen, keys: { privateKey: import('node:crypto').KeyObject }[]): Promise<Uint8Array> {
    await run(worker, seen);
    const out = new Uint8Array(9 * 64);
    pool.take(out.subarray(0, 8 * 64));
    pool.take(out.subarray(8 * 64));
    pool.end();
    await expectEncaps(out, keys);
    return out;
  }

  async function freshPool(threads = 1) {
    FakeWorker.made = [];
    const { BrowserEncapPool } = await import('../ts/mls/browser-encap-pool.js');
    const module = new WebAssembly.Module(WASM);
    const pool = new BrowserEncapPool(threads, module);
    await new Promise((resolve) => setTimeout(resolve, 10)); // the Blob's text
    return { pool, module };
  }

  it('n = 16 (15 Encaps, two chunks): the worker makes both, or one while the calling thread claims the other, or none when its message comes after the batch; results right, nothing secret left in the worker', async () => {
    const { pool, module } = await freshPool();
    const worker = FakeWorker.made[0]!;
    // Its first message is the module, before any batch.
    expect(worker.inbox[0]).toEqual({ module });
    const seen: Seen = { memory: undefined, drawn: [], failRandom: false };
    await run(worker, seen);
    const keys = await recipients(15);
    const publicKeys = new Uint8Array(keys.flatMap(({ pk }) => [...pk]));

    // 1. The worker runs first and claims both chunks.
    pool.begin(publicKeys);
    await run(worker, seen);
    expect(pool.claim(8)).toBe(-1);
    const out = new Uint8Array(15 * 64);
    pool.take(out.subarray(0, 8 * 64));
    expect(pool.claim(8)).toBe(-1);
    pool.take(out.subarray(8 * 64));
    pool.end();
    await expectEncaps(out, keys);
    expectWiped(seen, out);
    expect(pool.stats).toMatchObject({ pooledBatches: 1, workerEncaps: 15, callingThreadEncaps: 0, stalls: 0 });
    // The shared buffer holds no enc || DH after the batch (the calling thread's copy wiped it).
    const shared = new Uint8Array((FakeWorker.made[0]!.context!.lastBatch as SharedArrayBuffer) ?? new SharedArrayBuffer(0));
    expect(shared.length).toBeGreaterThan(0);
    for (let i = 0; i < 15; i++) expect(contains(shared, out.subarray(i * 64 + 32, i * 64 + 64))).toBe(false);

    // 2. The calling thread claims chunk 0, then the worker runs and makes chunk 1.
    pool.begin(publicKeys);
    expect(pool.claim(8)).toBe(0);
    await run(worker, seen);
    expect(pool.claim(8)).toBe(-1);
    const second = new Uint8Array(7 * 64);
    pool.take(second);
    pool.end();
    await expectEncaps(second, keys.slice(8));
    expectWiped(seen, second);
    expect(contains(second, out.subarray(8 * 64 + 32, 8 * 64 + 64))).toBe(false);

    // 3. The calling thread claims both; the worker's message is handled after `end`: it claims nothing, writes nothing.
    pool.begin(publicKeys);
    expect(pool.claim(8)).toBe(0);
    expect(pool.claim(8)).toBe(1);
    expect(pool.claim(8)).toBe(-1);
    pool.end();
    const drawnBefore = seen.drawn.length;
    await run(worker, seen);
    expect(seen.drawn.length).toBe(drawnBefore);
    expect(pool.stats).toMatchObject({ pooledBatches: 3, workerEncaps: 22, callingThreadEncaps: 23, stalls: 0, redoneChunks: 0 });
    pool.close();
  });

  it('a worker whose chunk fails: FAILED, nothing of it in the shared buffer or its memory, the batch left to wasm, the pool replaced (each new worker given the module first); setThreads(0)-like close afterwards', async () => {
    const { pool, module } = await freshPool();
    const worker = FakeWorker.made[0]!;
    const seen: Seen = { memory: undefined, drawn: [], failRandom: false };
    await run(worker, seen);
    const keys = await recipients(9);
    const publicKeys = new Uint8Array(keys.flatMap(({ pk }) => [...pk]));
    seen.failRandom = true;
    pool.begin(publicKeys);
    await run(worker, seen);
    expect(pool.claim(8)).toBe(-1);
    expect(() => pool.take(new Uint8Array(8 * 64))).toThrow('the Encap pool failed');
    pool.end();
    expect(pool.stats.stalls).toBe(1);
    // Its keys went into its wasm memory before the draw failed: wiped.
    const memory = new Uint8Array(seen.memory!.buffer);
    for (const { pk } of keys) expect(contains(memory, pk)).toBe(false);
    // Replaced at `end`: the old worker terminated, a new one given the module first.
    expect(worker.terminated).toBe(true);
    expect(FakeWorker.made.length).toBe(2);
    const replacement = FakeWorker.made[1]!;
    expect(replacement.inbox[0]).toEqual({ module });
    // Until the new worker runs, a batch is left to wasm (begin throws), not waited for.
    expect(() => pool.begin(publicKeys)).toThrow('no worker runs yet');
    const fresh: Seen = { memory: undefined, drawn: [], failRandom: false };
    await run(replacement, fresh);
    pool.begin(publicKeys);
    const out = await workerMakesBoth(pool, replacement, fresh, keys);
    expectWiped(fresh, out);
    pool.close();
    expect(replacement.terminated).toBe(true);
    expect(pool.running).toBe(0);
  });

  it('a worker that claims a chunk and hangs at the minimum (9): the calling thread gives up after ~1 s, the pool is replaced, the next batch uses a new shared buffer (the hung one cannot write into it)', async () => {
    const { pool } = await freshPool();
    const worker = FakeWorker.made[0]!;
    await run(worker, { memory: undefined, drawn: [], failRandom: false });
    const keys = await recipients(9);
    const publicKeys = new Uint8Array(keys.flatMap(({ pk }) => [...pk]));
    pool.begin(publicKeys);
    const message = worker.inbox.pop() as { buffer: SharedArrayBuffer };
    // The hung worker: claims chunk 0 (as claimChunks does) and never finishes it.
    const control = new Int32Array(message.buffer, 0, 4);
    expect(Atomics.add(control, 0, 1) & 0xfffff).toBe(0);
    // The calling thread makes chunk 1 itself, then must wait for chunk 0.
    expect(pool.claim(8)).toBe(1);
    const start = performance.now();
    expect(() => pool.take(new Uint8Array(8 * 64))).toThrow('the Encap pool failed');
    const waited = performance.now() - start;
    expect(waited).toBeGreaterThanOrEqual(990);
    expect(waited).toBeLessThan(3000);
    pool.end();
    expect(pool.stats.stalls).toBe(1);
    expect(worker.terminated).toBe(true);
    const replacement = FakeWorker.made[1]!;
    const fresh = { memory: undefined, drawn: [], failRandom: false };
    await run(replacement, fresh);
    pool.begin(publicKeys);
    const next = replacement.inbox[replacement.inbox.length - 1] as { buffer: SharedArrayBuffer };
    expect(next.buffer).not.toBe(message.buffer);
    await workerMakesBoth(pool, replacement, fresh, keys);
    pool.close();
  });

  it('the worker entry at its edges (the instance a worker makes): 0, huge and wrapping counts, a count the buffer does not hold, a second chunk without a buffer', () => {
    const module = new WebAssembly.Module(WASM);
    const imports: Record<string, Record<string, () => never>> = {};
    for (const { module: from, name } of WebAssembly.Module.imports(module)) {
      (imports[from] ??= {})[name] = () => {
        throw new Error(`${name} reached`);
      };
    }
    const core = new WebAssembly.Instance(module, imports).exports as unknown as { memory: WebAssembly.Memory; paired_mls_encap_buffer(n: number): number; paired_mls_encap_chunk(n: number): number };
    expect(core.paired_mls_encap_buffer(0)).not.toBe(0);
    expect(core.paired_mls_encap_chunk(0)).toBe(0);
    for (const huge of [2 ** 26, 2 ** 26 + 1, 2 ** 31, 2 ** 32 - 1, -1]) {
      expect(core.paired_mls_encap_buffer(huge)).toBe(0);
      // No trap (a count past 2^26 wrapped `count * 64` before a6cb953).
      expect(core.paired_mls_encap_chunk(huge)).toBe(-1);
    }
    const at = core.paired_mls_encap_buffer(2);
    const view = () => new Uint8Array(core.memory.buffer, at, 128);
    view().fill(9, 0, 64);
    crypto.getRandomValues(view().subarray(64));
    expect(core.paired_mls_encap_chunk(2)).toBe(2);
    // The results left in place (the worker's JS wipes them; here not): a second chunk refuses and wipes them.
    expect(core.paired_mls_encap_chunk(2)).toBe(-1);
    expect(view().every((b) => b === 0)).toBe(true);
    core.paired_mls_encap_buffer(2);
    view().fill(9, 0, 64);
    expect(core.paired_mls_encap_chunk(1)).toBe(-1);
    expect(core.paired_mls_encap_chunk(3)).toBe(-1);
  });
});
