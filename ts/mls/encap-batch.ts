/**
 * The batch contract between the wasm core and a host that makes the
 * X25519 Encaps of a commit's path encryptions (engine change 17,
 * docs/ENGINE.md; crates/core/src/native_crypto.rs, native_x25519_seal_batch),
 * and the shared buffer and chunk protocol of the pools that make them on
 * several threads (Node: x25519-pool.ts; browsers: browser-encap-pool.ts).
 *
 * Buffer layout: four control words (next claim, chunk count, Encap
 * count, batch generation), one status word per chunk, the public keys (32
 * bytes each), the results (`enc || DH`, 64 bytes each). Every thread
 * claims the next chunk with `Atomics.add` on the first word until none is
 * left, writes its results, then stores DONE or FAILED in the chunk's
 * status and notifies.
 *
 * A claim carries its batch: the first word is `generation << 20 | chunk
 * index`, and a claim counts only if its generation is still the batch's
 * when the claimer reads the chunk count. Without it, a worker that added
 * to the counter at the end of one batch (an over-claim past its last
 * chunk) and was paused before reading the chunk count could read the next
 * batch's larger count and make a chunk some other thread also makes: two
 * writers of one chunk, an enc from one Encap next to the DH of another,
 * and a member unable to decrypt its path secret. `load` stores the new
 * generation before the new count, and claimers read the count before the
 * generation (all sequentially consistent), so whoever sees the new count
 * also sees the new generation and drops its stale claim.
 */

/** Runs the Encaps of one batch (x25519EncapBegin/Take/End of the core's contract). */
export interface EncapBatchRunner {
  /** Start a batch: `publicKeys` is 32 bytes per recipient (copied if kept). */
  begin(publicKeys: Uint8Array): void;
  /**
   * Write the next `out.length / 64` results, in order, into `out` (the
   * browsers' pool steps over the chunks the core made itself: `claim`).
   */
  take(out: Uint8Array): void;
  /** End the batch, done or abandoned; wipe every copy of its results. */
  end(): void;
}

/** Encaps per claim; also what the core takes per call (`ENCAP_CHUNK` in crates/core/src/native_crypto.rs). */
export const CHUNK = 8;
/** How long a claimed chunk may take before its worker is given up. */
export const STALL_MS = 1000;
/** Status of a chunk. */
export const PENDING = 0;
export const DONE = 2;
export const FAILED = 3;
/** Control words. */
export const NEXT = 0;
export const CHUNKS = 1;
export const ITEMS = 2;
export const GENERATION = 3;
const CONTROL_BYTES = 16;
/** Low bits of a claim: the chunk index; high bits: the batch generation (11 bits). */
const INDEX_BITS = 20;
const INDEX_MASK = (1 << INDEX_BITS) - 1;
const GENERATIONS = 1 << 11;
/** The index a finished batch's counter is set to: past every chunk, far from overflowing into the generation. */
const CLOSED = 1 << 19;

/** A pool's shared buffer and its views. */
export class SharedBatch {
  readonly buffer: SharedArrayBuffer;
  readonly control: Int32Array;
  readonly status: Int32Array;
  readonly publicKeys: Uint8Array;
  readonly out: Uint8Array;

  constructor(readonly capacity: number) {
    const chunks = Math.ceil(capacity / CHUNK);
    if (chunks >= CLOSED) throw new RangeError('too many Encaps for one shared batch');
    this.buffer = new SharedArrayBuffer(CONTROL_BYTES + 4 * chunks + 96 * capacity);
    this.control = new Int32Array(this.buffer, 0, 4);
    this.status = new Int32Array(this.buffer, CONTROL_BYTES, chunks);
    this.publicKeys = new Uint8Array(this.buffer, CONTROL_BYTES + 4 * chunks, 32 * capacity);
    this.out = new Uint8Array(this.buffer, CONTROL_BYTES + 4 * chunks + 32 * capacity, 64 * capacity);
  }

  /** Load a new batch and open it for claims; returns its Encap count. */
  load(publicKeys: Uint8Array): number {
    const items = publicKeys.length / 32;
    this.publicKeys.set(publicKeys);
    this.status.fill(PENDING);
    // The generation first, then the counts, then claims open (module docs).
    const generation = (Atomics.load(this.control, GENERATION) + 1) % GENERATIONS;
    Atomics.store(this.control, GENERATION, generation);
    Atomics.store(this.control, ITEMS, items);
    Atomics.store(this.control, CHUNKS, Math.ceil(items / CHUNK));
    Atomics.store(this.control, NEXT, generation << INDEX_BITS);
    return items;
  }

  /** Claim the next chunk of the current batch: its index, or -1 when none is left. */
  claim(): number {
    const claimed = Atomics.add(this.control, NEXT, 1);
    const chunks = Atomics.load(this.control, CHUNKS);
    return chunkOfClaim(claimed, chunks, Atomics.load(this.control, GENERATION));
  }

  /** The message that tells a worker to join the batch. */
  message(): BatchMessage {
    return { buffer: this.buffer, capacity: this.capacity, chunk: CHUNK };
  }

  /** Copy results `[from, to)` into `out` at `at`, wiping them here. */
  move(from: number, to: number, out: Uint8Array, at: number): void {
    const results = this.out.subarray(from * 64, to * 64);
    out.set(results, at * 64);
    results.fill(0);
  }

  /**
   * End a batch of `items`: no new claims, wait for the claimed chunks
   * (unless `stalled` already), wipe the results. False if a chunk stalled.
   */
  finish(items: number, block: boolean, stalled: boolean): boolean {
    const generation = Atomics.load(this.control, GENERATION);
    const next = Atomics.exchange(this.control, NEXT, (generation << INDEX_BITS) | CLOSED);
    const claimed = Math.min(next & INDEX_MASK, Atomics.load(this.control, CHUNKS));
    for (let chunk = 0; chunk < claimed && !stalled; chunk++) {
      if (!this.waitWhilePending(chunk, block)) stalled = true;
    }
    this.out.fill(0, 0, items * 64);
    return !stalled;
  }

  /** Wait while `chunk` is pending, blocking if `block`, else spinning; false after STALL_MS. */
  waitWhilePending(chunk: number, block: boolean): boolean {
    return waitWhilePending(this.status, chunk, block);
  }
}

/**
 * Wait while `status[chunk]` is PENDING, blocking if `block`, else
 * spinning; false after STALL_MS (the Encap pools' and the verification
 * pool's status words). With `spinMs`, a blocking wait spins that long
 * first: a thread woken by `Atomics.notify` here resumes ~0.1 ms after the
 * notify, longer than a chunk the verification pool's worker is finishing.
 */
export function waitWhilePending(status: Int32Array, chunk: number, block: boolean, spinMs = 0): boolean {
  const start = performance.now();
  const deadline = start + STALL_MS;
  while (Atomics.load(status, chunk) === PENDING) {
    const now = performance.now();
    const left = deadline - now;
    if (left <= 0) return false;
    if (block && now - start >= spinMs) Atomics.wait(status, chunk, PENDING, left);
  }
  return true;
}

/**
 * The chunk a value taken from the claim counter stands for, given the
 * chunk count and then the generation read after it (module docs): -1 for
 * a claim of another batch or past the last chunk. (claimChunks inlines
 * this: its source runs alone in workers.)
 */
export function chunkOfClaim(claimed: number, chunks: number, generation: number): number {
  const index = claimed & INDEX_MASK;
  return claimed >>> INDEX_BITS === generation && index < chunks ? index : -1;
}

/** What a worker receives to join a batch. */
export interface BatchMessage {
  buffer: SharedArrayBuffer;
  capacity: number;
  chunk: number;
}

/**
 * A worker's side of the protocol: claim chunks until none is left, make
 * each with `makeChunk(publicKeys, out, from, to)` (results `[from, to)`
 * into `out`), mark it DONE, or FAILED when `makeChunk` throws. Its source
 * text runs in the workers of both pools, so it names nothing outside
 * itself (the layout and the claim rule are SharedBatch's: `claim`).
 */
export async function claimChunks(message: BatchMessage, makeChunk: (publicKeys: Uint8Array, out: Uint8Array, from: number, to: number) => unknown): Promise<void> {
  const { buffer, capacity, chunk } = message;
  const chunks = Math.ceil(capacity / chunk);
  const control = new Int32Array(buffer, 0, 4);
  const status = new Int32Array(buffer, 16, chunks);
  const publicKeys = new Uint8Array(buffer, 16 + 4 * chunks, 32 * capacity);
  const out = new Uint8Array(buffer, 16 + 4 * chunks + 32 * capacity, 64 * capacity);
  for (;;) {
    const next = Atomics.add(control, 0, 1);
    const chunks = Atomics.load(control, 1);
    const claimed = next & 0xfffff;
    // A claim of another batch, or past the last chunk: nothing left here (SharedBatch.claim).
    if (next >>> 20 !== Atomics.load(control, 3) || claimed >= chunks) return;
    const items = Atomics.load(control, 2);
    let result = 2;
    try {
      await makeChunk(publicKeys, out, claimed * chunk, Math.min(items, (claimed + 1) * chunk));
    } catch {
      result = 3;
    }
    Atomics.store(status, claimed, result);
    Atomics.notify(status, claimed);
  }
}

/** A buffer big enough for `items` Encaps: `current` or a new one. */
export function sharedBatchFor(current: SharedBatch | undefined, items: number): SharedBatch {
  return current && current.capacity >= items ? current : new SharedBatch(Math.max(items, 2 * (current?.capacity ?? 0)));
}
