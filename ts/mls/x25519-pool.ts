/**
 * A pool of Node worker threads making the X25519 Encaps of an UpdatePath
 * (issue 24 item 6): the calling thread shares the work and waits for the
 * workers' share with `Atomics.wait` (allowed on Node's main thread), while
 * the wasm core runs the key schedules of the chunks already made.
 *
 * Protocol (one SharedArrayBuffer): the public keys are copied in, the
 * batch is cut into chunks of `CHUNK` Encaps, and every thread (workers and
 * the calling thread) claims the next chunk with `Atomics.add` until none is
 * left, writes its `enc || DH` results and marks the chunk done (or failed)
 * in a status word. Claiming as they go balances the load whatever else
 * runs on the cores. The calling thread copies each chunk's results into
 * the core's memory (which the core wipes) and wipes them from the shared
 * buffer at once; `end()` waits for every claimed chunk and wipes the rest.
 *
 * Failures never hang or crash the caller:
 * - a worker whose Encap throws marks its chunk failed; the calling thread
 *   redoes that chunk itself, so a bad public key gives exactly the error
 *   of the single-thread mode;
 * - a worker that does not finish a claimed chunk within `STALL_MS` (it
 *   died, hangs or the machine is starved) is given up: the calling thread
 *   makes the rest of the batch itself (fresh ephemeral keys, so the late
 *   worker's results are never used) and the pool is terminated; the next
 *   large batch starts a new one. A late worker may still write the DH
 *   outputs of its chunk into the abandoned buffer after the wipe: they
 *   belong to encryptions that were never sent, and the buffer is no longer
 *   referenced by the pool.
 * Workers are `unref()`ed: an idle pool never keeps the process alive.
 */
import type * as NodeCrypto from 'node:crypto';
import type * as WorkerThreads from 'node:worker_threads';
import { CHUNK, DONE, FAILED, claimChunks, sharedBatchFor, type BatchMessage, type EncapBatchRunner, type SharedBatch } from './encap-batch.js';
import { CallingThreadEncaps, encapInto, type PublicKeyImport } from './x25519-encap.js';
import { startWorkers } from './pool-workers.js';

/**
 * Smaller batches stay on the calling thread (64 Encaps; eight chunks
 * since round 2u made a chunk 8: a smaller batch gains little against the
 * worker's wake-up). Measured by wall clock with one worker
 * (bench/pool-threshold.js, bench/README.md "Round 2d: commits"): a
 * self-update at n = 128 (127 Encaps) gains from the second core, one at
 * n = 16 or 32 (one chunk) does not. Was 128, which left n = 128 out.
 */
export const POOL_MIN_ENCAPS = 64;

/** What a worker runs (its source text is sent with `eval: true`, so the package needs no extra file). */
function workerMain(encap: typeof encapInto, claim: typeof claimChunks): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const crypto = require('node:crypto') as typeof NodeCrypto;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parentPort } = require('node:worker_threads') as typeof WorkerThreads;
  // Test hook only (test/threads.test.ts): make this worker fail its chunks.
  const fault = process.env.PAIRED_MLS_TEST_POOL_FAULT;
  const keys = new Map<string, NodeCrypto.KeyObject>();
  const importPublic = (bytes: Uint8Array): NodeCrypto.KeyObject => {
    const x = Buffer.from(bytes).toString('base64url');
    let key = keys.get(x);
    if (!key) {
      if (keys.size >= 1 << 14) keys.clear();
      key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
      keys.set(x, key);
    }
    return key;
  };
  parentPort!.on('message', (message: BatchMessage) =>
    claim(message, (publicKeys, out, from, to) => {
      if (fault === 'throw') throw new Error('test fault');
      if (fault === 'hang') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
      // One draw of randomness per chunk, wiped after (x25519-encap.ts).
      const random = crypto.randomBytes(32 * (to - from));
      try {
        for (let i = from; i < to; i++) encap(crypto, importPublic(publicKeys.subarray(i * 32, i * 32 + 32)), out, i * 64, random.subarray((i - from) * 32, (i - from) * 32 + 32));
      } finally {
        random.fill(0);
      }
    }),
  );
}

/** What a pool did since it was made (`threadStats()`). */
export interface PoolStats {
  /** Batches run on the pool (large enough). */
  pooledBatches: number;
  /** Encaps the workers made and the calling thread used. */
  workerEncaps: number;
  /** Encaps the calling thread made in pooled batches (its share, chunks a worker failed, and after a stall). */
  callingThreadEncaps: number;
  /** Chunks a worker failed that the calling thread redid. */
  redoneChunks: number;
  /** Batches finished on the calling thread because a worker stalled (the pool was then replaced). */
  stalls: number;
}

/** Batches on `threads` workers plus the calling thread; small batches on the calling thread only. */
export class WorkerPoolEncaps implements EncapBatchRunner {
  readonly #local: CallingThreadEncaps;
  #workers: WorkerThreads.Worker[] = [];
  #shared: SharedBatch | undefined;
  /** Whether the current batch runs on the pool (else on `#local`). */
  #pooled = false;
  #items = 0;
  #taken = 0;
  /** Set when a worker stalled, exited or failed outside a chunk: the pool is replaced before its next batch. */
  #broken = false;
  /** Chunks of the current batch the calling thread made. */
  readonly #madeHere = new Set<number>();
  readonly stats: PoolStats = { pooledBatches: 0, workerEncaps: 0, callingThreadEncaps: 0, redoneChunks: 0, stalls: 0 };

  constructor(
    private readonly crypto: typeof NodeCrypto,
    importPublic: PublicKeyImport,
    private readonly workerThreads: typeof WorkerThreads,
    /** Workers besides the calling thread (at least 1). */
    readonly threads: number,
  ) {
    this.#local = new CallingThreadEncaps(crypto, importPublic);
  }

  begin(publicKeys: Uint8Array): void {
    const items = publicKeys.length / 32;
    if (!Number.isInteger(items)) throw new RangeError('32-byte public keys are expected');
    this.#pooled = items >= POOL_MIN_ENCAPS;
    if (!this.#pooled) return this.#local.begin(publicKeys);
    if (this.#broken) this.close();
    const shared = (this.#shared = sharedBatchFor(this.#shared, items));
    this.#start();
    shared.load(publicKeys);
    this.#madeHere.clear();
    for (const worker of this.#workers) worker.postMessage(shared.message());
    this.#items = items;
    this.#taken = 0;
    this.stats.pooledBatches++;
  }

  take(out: Uint8Array): void {
    if (!this.#pooled) return this.#local.take(out);
    const shared = this.#shared!;
    const count = out.length / 64;
    if (!Number.isInteger(count) || this.#taken + count > this.#items) throw new RangeError('no such Encaps in this batch');
    let written = 0;
    while (written < count) {
      const index = this.#taken + written;
      const chunk = Math.floor(index / CHUNK);
      if (!this.#awaitChunk(shared, chunk)) {
        // A worker stalled: the rest of the batch on the calling thread.
        this.#broken = true;
        this.#pooled = false;
        this.stats.stalls++;
        this.#local.begin(shared.publicKeys.subarray(index * 32, this.#items * 32));
        this.#local.take(out.subarray(written * 64));
        this.stats.callingThreadEncaps += count - written;
        this.#taken += count;
        return;
      }
      const upTo = Math.min(this.#taken + count, (chunk + 1) * CHUNK);
      if (!this.#madeHere.has(chunk)) this.stats.workerEncaps += upTo - index;
      shared.move(index, upTo, out, written);
      written += upTo - index;
    }
    this.#taken += count;
  }

  end(): void {
    const shared = this.#shared;
    // No new claims; wait for the claimed chunks, then wipe the results.
    if (this.#items > 0 && shared && !shared.finish(this.#items, true, this.#broken)) this.#broken = true;
    this.#local.end();
    this.#pooled = false;
    this.#items = 0;
    this.#taken = 0;
    if (this.#broken) this.close();
  }

  /** Terminate the workers (a later large batch starts new ones). */
  close(): void {
    for (const worker of this.#workers) void worker.terminate();
    this.#workers = [];
    // A stalled worker may still write into the old buffer: never reuse it.
    if (this.#broken) this.#shared = undefined;
    this.#broken = false;
  }

  /** Workers running now (0 until the first large batch). */
  get running(): number {
    return this.#workers.length;
  }

  #start(): void {
    if (this.#workers.length > 0) return;
    const source = `(${workerMain.toString()})(${encapInto.toString()}, ${claimChunks.toString()})`;
    this.#workers = startWorkers(this.workerThreads, source, this.threads, {}, (worker) => {
      if (this.#workers.includes(worker)) this.#broken = true;
    });
  }

  /**
   * Make sure `chunk` is done: claim and make chunks on the calling
   * thread while any is left, redo a chunk a worker failed, wait for one a
   * worker is making. False when that worker stalled.
   */
  #awaitChunk(shared: SharedBatch, chunk: number): boolean {
    for (;;) {
      const state = Atomics.load(shared.status, chunk);
      if (state === DONE) return true;
      if (state === FAILED) {
        // The worker is done with it: redo it here (throws as the single-thread mode would).
        this.stats.redoneChunks++;
        this.#make(shared, chunk);
        continue;
      }
      const claimed = shared.claim();
      if (claimed >= 0) {
        this.#make(shared, claimed);
        continue;
      }
      // Then look again: the worker may have FAILED the chunk (it stops at
      // the key that threw, its later results unwritten), which is redone
      // here, not taken as made.
      if (!shared.waitWhilePending(chunk, true)) return false;
    }
  }

  /** Make one chunk's Encaps on the calling thread. */
  #make(shared: SharedBatch, chunk: number): void {
    const start = chunk * CHUNK;
    const end = Math.min(this.#items, (chunk + 1) * CHUNK);
    const random = this.crypto.randomBytes(32 * (end - start));
    try {
      for (let i = start; i < end; i++) {
        encapInto(this.crypto, this.#local.importPublic(shared.publicKeys.subarray(i * 32, i * 32 + 32)), shared.out, i * 64, random.subarray((i - start) * 32, (i - start) * 32 + 32));
      }
    } catch (error) {
      // Not pending any more, so end() does not wait for it.
      Atomics.store(shared.status, chunk, FAILED);
      throw error;
    } finally {
      random.fill(0);
    }
    this.#madeHere.add(chunk);
    this.stats.callingThreadEncaps += end - chunk * CHUNK;
    Atomics.store(shared.status, chunk, DONE);
  }
}
