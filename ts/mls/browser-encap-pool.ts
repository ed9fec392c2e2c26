/**
 * Browsers' opt-in pool of Web Workers for the X25519 Encaps of a commit's
 * path encryptions (issue 24 item 6; `setThreads` in a browser). Each
 * worker instantiates the core's compiled module (shared, not compiled
 * again) and makes its Encaps in wasm as the calling thread makes its own
 * (`paired_mls_encap_chunk`): the ephemeral secrets are drawn from
 * WebCrypto's random source straight into the worker's wasm memory and
 * wiped there after use; in batches of 64 or more, WebCrypto's X25519
 * (`WEBCRYPTO_FROM`: its four asynchronous calls per Encap cost a small
 * batch more than wasm, bench/README.md "Round 3i"; its ephemeral key is
 * non-extractable). `enc` and the DH output go into a SharedArrayBuffer, from
 * which the calling thread copies them into the core's memory (which the
 * core wipes) and wipes them.
 * The chunk protocol and buffer are the Node pool's (x25519-pool.ts). The
 * calling thread has no synchronous X25519 outside wasm: it runs the key
 * schedules of the chunks already made, and when the chunk it needs next
 * is not made yet it claims a chunk no worker has claimed and the core
 * makes that one in wasm (`claim`; its results stay in the core's memory,
 * never in the shared buffer); it waits only when every chunk is claimed.
 *
 * Waiting: `Atomics.wait` where the browser allows it (a Worker — run the
 * MLS client in one for the best use of the cores); on the main thread,
 * which may not block, a spin on `Atomics.load`. Either way a commit is
 * one synchronous call into the core, so the page is busy for its length
 * with or without the pool.
 *
 * Needs SharedArrayBuffer, i.e. a cross-origin isolated page (COOP
 * `same-origin` + COEP `require-corp`). Any failure (a worker that errs,
 * or stalls for `STALL_MS`) makes `take` throw; the core then seals that batch
 * in wasm, as without a pool (same result), and the pool's
 * workers are replaced before its next batch.
 */
import { CHUNK, DONE, PENDING, claimChunks, sharedBatchFor, type BatchMessage, type EncapBatchRunner, type SharedBatch } from './encap-batch.js';
import type { PoolStats } from './x25519-pool.js';

/**
 * Smaller batches are sealed in wasm without the pool (the core is told so
 * by `begin`): 9 Encaps, two chunks, so that a self-update at n = 16 (15
 * Encaps) has a worker make one chunk while the calling thread makes the
 * other (bench/README.md "Round 3i"). Was 128 while the calling thread
 * only waited, then 64 (as in Node, "Round 2m") while the workers' Encaps
 * were WebCrypto's, slower than wasm.
 */
export const BROWSER_POOL_MIN_ENCAPS = 9;

/**
 * From this many Encaps in a batch the workers use WebCrypto's X25519
 * instead of wasm: its four asynchronous calls per Encap cost latency,
 * which a small batch waits for, but they run in the browser's native
 * code, and at n = 1024 the wasm workers were 3–5 % slower (bench/README.md
 * "Round 3i").
 */
const WEBCRYPTO_FROM = 64;

/**
 * What `begin` throws for a batch below the minimum (the core then seals
 * it in wasm): made once, because a new Error per call captured the stack
 * of every commit below the minimum, wasm frames and all — 2.3 % of a
 * self-update at n = 16 (bench/README.md "Round 3h").
 */
const BELOW_MINIMUM = new RangeError('batch below the pool minimum');

/**
 * What a Web Worker runs (sent as source text in a Blob URL). Its first
 * message is the core's compiled module, which it instantiates without
 * the JS glue (each import throws if ever reached, as in Node's
 * verification workers); it then makes its Encaps in wasm as the calling
 * thread makes its own chunks (`paired_mls_encap_chunk`: the ephemeral
 * secrets drawn from WebCrypto's random source straight into the
 * instance's memory, their public keys with one shared inversion, a
 * low-order key failing the chunk), copies `enc || DH` into the shared
 * buffer and wipes its instance's copy. In batches of `webCryptoFrom`
 * Encaps or more it uses WebCrypto's X25519 instead (the ephemeral key
 * generated non-extractable; a low-order point rejected).
 */
function browserWorkerMain(claim: typeof claimChunks, webCryptoFrom: number): void {
  const subtle = crypto.subtle;
  const X25519 = { name: 'X25519' } as const;
  const encap = async (publicKey: Uint8Array, out: Uint8Array, offset: number): Promise<void> => {
    const recipient = await subtle.importKey('raw', publicKey.slice(), X25519, false, []);
    const ephemeral = (await subtle.generateKey(X25519, false, ['deriveBits'])) as CryptoKeyPair;
    const enc = new Uint8Array(await subtle.exportKey('raw', ephemeral.publicKey));
    // Rejects on a low-order point (an all-zero output).
    const shared = new Uint8Array(await subtle.deriveBits({ name: 'X25519', public: recipient } as never, ephemeral.privateKey, 256));
    try {
      if (enc.length !== 32 || shared.length !== 32) throw new RangeError('X25519 output of unexpected length');
      out.set(enc, offset);
      out.set(shared, offset + 32);
    } finally {
      shared.fill(0);
    }
  };
  type Core = { memory: WebAssembly.Memory; paired_mls_encap_buffer(count: number): number; paired_mls_encap_chunk(count: number): number };
  let core: Core | undefined;
  let failed = false;
  const encapInWasm = (wasm: Core, publicKeys: Uint8Array, out: Uint8Array, from: number, to: number): void => {
    const count = to - from;
    const at = wasm.paired_mls_encap_buffer(count);
    if (at === 0) throw new Error('no room for the Encaps');
    try {
      // The public keys, then as many random secrets.
      const input = new Uint8Array(wasm.memory.buffer, at, count * 64);
      input.set(publicKeys.subarray(from * 32, to * 32));
      crypto.getRandomValues(input.subarray(count * 32));
      if (wasm.paired_mls_encap_chunk(count) !== count) throw new Error('the Encaps failed');
      out.set(new Uint8Array(wasm.memory.buffer, at, count * 64), from * 64);
    } finally {
      new Uint8Array(wasm.memory.buffer, at, count * 64).fill(0);
    }
  };
  onmessage = (event: MessageEvent<BatchMessage | { module: WebAssembly.Module }>) => {
    const data = event.data;
    if (!('buffer' in data)) {
      const imports: Record<string, Record<string, () => never>> = {};
      for (const { module: from, name } of WebAssembly.Module.imports(data.module)) {
        (imports[from] ??= {})[name] = () => {
          throw new Error(`${name} is not available in an Encap worker`);
        };
      }
      core = new WebAssembly.Instance(data.module, imports).exports as unknown as Core;
      // Tell the page this worker runs: a worker starts only when the
      // page's main thread is free, never while it waits inside a commit.
      postMessage('ready');
      return;
    }
    const items = Atomics.load(new Int32Array(data.buffer, 0, 4), 2);
    void claim(data, async (publicKeys, out, from, to) => {
      // An instance that failed is not trusted again (a trap may leave its
      // buffer borrowed): this worker fails every later chunk, and the
      // pool replaces it before its next batch.
      if (failed || !core) throw new Error('this worker cannot make Encaps');
      if (items >= webCryptoFrom) {
        const jobs = [];
        for (let i = from; i < to; i++) jobs.push(encap(publicKeys.subarray(i * 32, i * 32 + 32), out, i * 64));
        await Promise.all(jobs);
        return;
      }
      try {
        encapInWasm(core, publicKeys, out, from, to);
      } catch (error) {
        failed = true;
        throw error;
      }
    });
  };
}

/** Whether this thread may block in `Atomics.wait` (Workers may; a window's main thread may not). */
function mayBlock(): boolean {
  return typeof (globalThis as { document?: unknown }).document === 'undefined';
}

/** The pool; installed into the core by `setThreads` in a browser. */
export class BrowserEncapPool implements EncapBatchRunner {
  #workers: Worker[] = [];
  #shared: SharedBatch | undefined;
  #url: string | undefined;
  #items = 0;
  #taken = 0;
  #broken = false;
  /** As the Node pool's; `stalls` counts batches the core sealed in wasm because the pool failed. */
  readonly stats: PoolStats = { pooledBatches: 0, workerEncaps: 0, callingThreadEncaps: 0, redoneChunks: 0, stalls: 0 };

  /** Workers that reported they run. */
  #ready = 0;
  /** Chunks of the current batch the core makes itself (`claim`): `take` skips them. */
  readonly #madeByCaller = new Set<number>();

  /** Starts the workers now, so that they run by the first large commit (they start once the page's thread is free). */
  constructor(
    readonly threads: number,
    /** The core's compiled module, which each worker instantiates. */
    private readonly module: WebAssembly.Module,
  ) {
    this.#start();
  }

  /** Workers running now. */
  get running(): number {
    return this.#workers.length;
  }

  /** Whether this browser can run the pool (SharedArrayBuffer needs cross-origin isolation). */
  static supported(): boolean {
    return typeof SharedArrayBuffer === 'function' && (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true && typeof Worker === 'function' && !!globalThis.crypto?.subtle;
  }

  begin(publicKeys: Uint8Array): void {
    const items = publicKeys.length / 32;
    // Too small, or no worker runs yet: the core then seals in wasm, as
    // without a pool (waiting here could not let a worker start).
    if (items < BROWSER_POOL_MIN_ENCAPS) throw BELOW_MINIMUM;
    if (this.#broken) this.#restart();
    if (this.#ready === 0) throw new RangeError('no worker runs yet');
    const shared = (this.#shared = sharedBatchFor(this.#shared, items));
    this.#items = shared.load(publicKeys);
    this.#taken = 0;
    this.#madeByCaller.clear();
    this.stats.pooledBatches++;
    for (const worker of this.#workers) worker.postMessage(shared.message());
  }

  /**
   * Asked by the core before each `take`: while the chunk it needs next is
   * not made yet, the next chunk no worker has claimed, marked as the
   * core's own (done, nothing in the shared buffer), for the core to make
   * in wasm; -1 when the core should take (and, if need be, wait).
   * `chunkSize` is the core's chunk: an index means the same recipients on
   * both sides only if it is ours, so any other size is refused.
   */
  claim(chunkSize: number): number {
    if (chunkSize !== CHUNK) throw new RangeError(`the core's chunk (${chunkSize}) is not the pool's (${CHUNK})`);
    const shared = this.#shared;
    this.#skipMadeByCaller();
    if (!shared || this.#taken >= this.#items) return -1;
    const needed = Math.floor(this.#taken / CHUNK);
    if (this.#madeByCaller.has(needed) || Atomics.load(shared.status, needed) !== PENDING) return -1;
    const chunk = shared.claim();
    if (chunk < 0) return -1;
    this.#madeByCaller.add(chunk);
    // Not pending: `end` does not wait for it, and no worker makes it (claims are unique).
    Atomics.store(shared.status, chunk, DONE);
    this.stats.callingThreadEncaps += Math.min(this.#items, (chunk + 1) * CHUNK) - chunk * CHUNK;
    return chunk;
  }

  /** Step `#taken` over the chunks the core made itself (it takes only the others). */
  #skipMadeByCaller(): void {
    while (this.#taken < this.#items && this.#madeByCaller.has(Math.floor(this.#taken / CHUNK))) {
      this.#taken = Math.min(this.#items, (Math.floor(this.#taken / CHUNK) + 1) * CHUNK);
    }
  }

  take(out: Uint8Array): void {
    const shared = this.#shared;
    this.#skipMadeByCaller();
    const count = out.length / 64;
    if (!shared || !Number.isInteger(count) || this.#taken + count > this.#items) throw new RangeError('no such Encaps in this batch');
    let written = 0;
    while (written < count) {
      const index = this.#taken + written;
      const chunk = Math.floor(index / CHUNK);
      // The core's own chunk has nothing here: asking for it is a bug, not zeros.
      if (this.#madeByCaller.has(chunk)) throw new RangeError('that chunk is made by the core');
      // Failed or stalled: the core seals this batch in wasm instead.
      if (!shared.waitWhilePending(chunk, mayBlock()) || Atomics.load(shared.status, chunk) !== DONE) {
        this.#broken = true;
        this.stats.stalls++;
        throw new Error('the Encap pool failed');
      }
      const upTo = Math.min(this.#taken + count, (chunk + 1) * CHUNK);
      shared.move(index, upTo, out, written);
      this.stats.workerEncaps += upTo - index;
      written += upTo - index;
    }
    this.#taken += count;
  }

  end(): void {
    const shared = this.#shared;
    // No new claims; wait for the claimed chunks, then wipe the results.
    if (this.#items > 0 && shared && !shared.finish(this.#items, mayBlock(), this.#broken)) this.#broken = true;
    this.#items = 0;
    this.#taken = 0;
    // Replace a failed pool now, so the new workers start as soon as the page's thread is free.
    if (this.#broken) this.#restart();
  }

  /** Terminate the workers (`setThreads(0)` or another count). */
  close(): void {
    for (const worker of this.#workers) worker.terminate();
    this.#workers = [];
    this.#ready = 0;
    // A stalled worker may still write into the old buffer: never reuse it.
    if (this.#broken) this.#shared = undefined;
    this.#broken = false;
  }

  #restart(): void {
    this.close();
    this.#start();
  }

  #start(): void {
    this.#url ??= URL.createObjectURL(new Blob([`(${browserWorkerMain.toString()})(${claimChunks.toString()}, ${WEBCRYPTO_FROM})`], { type: 'text/javascript' }));
    for (let i = 0; i < this.threads; i++) {
      const worker = new Worker(this.#url);
      worker.onmessage = () => this.#ready++;
      worker.onerror = () => (this.#broken = true);
      worker.postMessage({ module: this.module });
      this.#workers.push(worker);
    }
  }
}
