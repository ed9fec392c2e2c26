/**
 * Node worker threads verifying a ratchet tree's leaf signatures at join
 * (issue 24; engine change 23 in docs/ENGINE.md;
 * crates/core/src/verify_pool.rs is the other side of this contract).
 *
 * A join verifies one Ed25519 signature per leaf, ~80 % of its time. The
 * core hands them over as one batch (`verifyBegin`); each worker runs its
 * own instance of the core's wasm module (the compiled module is shared,
 * not recompiled) and calls the core's worker entry on the chunks it
 * claims, while the calling thread claims chunks too and verifies them in
 * its own instance (`verifyClaim`). `verifyEnd` waits for the workers'
 * chunks and hands their results to the core. Workers start with the
 * first batch large enough and are `unref()`ed.
 *
 * A worker only ever saves the calling thread work: the core keeps a
 * signature as verified only when a worker's instance found it valid, and
 * verifies every other one itself (invalid, a chunk a worker failed, or
 * one given up after `STALL_MS`), so a join refuses exactly the trees it
 * refused on one thread, with the same error. A pool whose worker failed,
 * stalled or exited is replaced before its next batch.
 *
 * Waking the workers: each waits in `Atomics.wait` on the pool's doorbell
 * word between batches; a batch's buffer goes to every worker's own
 * MessagePort, then the doorbell is rung, and the worker takes the buffer
 * with `receiveMessageOnPort` (wake-up to first claim at n = 128: median
 * 0.2 ms, p90 1.0 ms, against 0.4 and 3.5 ms for a message to an idle
 * worker's event loop).
 *
 * Buffer (one SharedArrayBuffer per batch, so no claim of one batch can
 * touch another): four control words (next claim, chunk count, job count,
 * jobs per chunk), one status word per chunk, `count + 1` job offsets, one
 * result byte per job, then the jobs as the core laid them out.
 */
import type * as WorkerThreads from 'node:worker_threads';
import { FAILED, STALL_MS, waitWhilePending } from './encap-batch.js';
import { startWorkers } from './pool-workers.js';

/**
 * Signatures per claim: 2 verifications take ~0.2 ms, against ~2 µs for a
 * claim. What the calling thread waits for at the end of a batch (the
 * worker's last chunk) shrinks with the chunk: at n = 128, full tree, one
 * worker, 0.40 ms per join with chunks of 8, 0.21 ms with 2, and 0.05–0.08
 * ms with 2 and the short spin of `END_SPIN_MS` (bench/README.md, round 2i).
 */
export const VERIFY_CHUNK = 2;
/** How long `verifyEnd` spins in all on the workers' chunks before it blocks: about one chunk's work, so a waiting calling thread never takes a core from the workers for longer than that. */
const END_SPIN_MS = 0.25;
/** Smaller batches stay on the calling thread (the core sends none smaller: MIN_BATCH in verify_pool.rs). */
export const POOL_MIN_VERIFICATIONS = 32;
/** Bytes before a job's signed data: key (32), signature (64), length (4). */
const JOB_HEADER = 100;
/** Where the claim counter is set when a batch ends: past every chunk. */
const CLOSED = 1 << 30;

/** What a verification pool did since it was made (part of `threadStats()`). */
export interface VerifyPoolStats {
  /** Batches of leaf signatures run on the pool. */
  verifyBatches: number;
  /** Signatures whose chunk a worker verified. */
  workerVerifications: number;
  /** Signatures whose chunk the calling thread claimed. */
  callingThreadVerifications: number;
  /** Chunks a worker failed (verified again by the calling thread; the pool is replaced). */
  failedVerifyChunks: number;
  /** Batches in which a worker stalled (its chunks verified by the calling thread; the pool is replaced). */
  verifyStalls: number;
  /** Milliseconds the calling thread spent in `verifyEnd`, waiting for the workers' last chunks. */
  callingThreadWaitMs: number;
}

/** The views of one batch's shared buffer (module docs). */
class VerifyBatch {
  readonly control: Int32Array;
  readonly status: Int32Array;
  readonly offsets: Uint32Array;
  readonly results: Uint8Array;
  readonly jobs: Uint8Array;

  /** Copies `count` jobs laid out back to back in `jobs`; a RangeError unless they fill it exactly. */
  constructor(jobs: Uint8Array, readonly count: number) {
    const chunks = Math.ceil(count / VERIFY_CHUNK);
    const offsetsAt = 16 + 4 * chunks;
    const resultsAt = offsetsAt + 4 * (count + 1);
    const jobsAt = resultsAt + count;
    const buffer = new SharedArrayBuffer(jobsAt + jobs.length);
    this.control = new Int32Array(buffer, 0, 4);
    this.status = new Int32Array(buffer, 16, chunks);
    this.offsets = new Uint32Array(buffer, offsetsAt, count + 1);
    this.results = new Uint8Array(buffer, resultsAt, count);
    this.jobs = new Uint8Array(buffer, jobsAt, jobs.length);
    const view = new DataView(jobs.buffer, jobs.byteOffset, jobs.byteLength);
    let at = 0;
    for (let i = 0; i < count; i++) {
      this.offsets[i] = at;
      if (at + JOB_HEADER > jobs.length) throw new RangeError('verification jobs cut short');
      at += JOB_HEADER + view.getUint32(at + 96, true);
    }
    if (at !== jobs.length) throw new RangeError('verification jobs do not fill their bytes');
    this.offsets[count] = at;
    this.jobs.set(jobs);
    this.control.set([0, chunks, count, VERIFY_CHUNK]);
  }

  get buffer(): SharedArrayBuffer {
    return this.control.buffer as SharedArrayBuffer;
  }

  get chunks(): number {
    return this.status.length;
  }

  /** The jobs of `chunk`: [from, to). */
  range(chunk: number): [number, number] {
    return [chunk * VERIFY_CHUNK, Math.min(this.count, (chunk + 1) * VERIFY_CHUNK)];
  }

  /** The next unclaimed chunk, or -1. */
  claim(): number {
    const claimed = Atomics.add(this.control, 0, 1);
    return claimed < this.chunks ? claimed : -1;
  }

  /** No claims from now on; returns how many chunks were claimed. */
  close(): number {
    return Math.min(Atomics.exchange(this.control, 0, CLOSED), this.chunks);
  }
}

/**
 * What a worker runs (its source text is sent with `eval: true`, so it
 * names nothing outside itself). The core's module is instantiated without
 * its JS glue: the worker entry needs none of its imports, so each import
 * throws if it is ever reached (the chunk then fails, the worker exits and
 * the calling thread verifies the chunk).
 */
function verifyWorkerMain(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { receiveMessageOnPort, workerData } = require('node:worker_threads') as typeof WorkerThreads;
  // Test hook only (test/verify-pool.test.ts): make this worker fail its chunks.
  const fault = process.env.PAIRED_MLS_TEST_POOL_FAULT;
  const { module, port, doorbell } = workerData as { module: WebAssembly.Module; port: WorkerThreads.MessagePort; doorbell: Int32Array };
  const imports: Record<string, Record<string, () => never>> = {};
  for (const { module: from, name } of WebAssembly.Module.imports(module)) {
    (imports[from] ??= {})[name] = () => {
      throw new Error(`${name} is not available in a verification worker`);
    };
  }
  const exports = new WebAssembly.Instance(module, imports).exports as {
    memory: WebAssembly.Memory;
    paired_mls_verify_buffer(length: number): number;
    paired_mls_verify_jobs(count: number): number;
  };
  const verifyBatch = (buffer: SharedArrayBuffer): void => {
    const control = new Int32Array(buffer, 0, 4);
    const chunks = control[1]!;
    const count = control[2]!;
    const chunk = control[3]!;
    const offsetsAt = 16 + 4 * chunks;
    const resultsAt = offsetsAt + 4 * (count + 1);
    const status = new Int32Array(buffer, 16, chunks);
    const offsets = new Uint32Array(buffer, offsetsAt, count + 1);
    const results = new Uint8Array(buffer, resultsAt, count);
    const jobs = new Uint8Array(buffer, resultsAt + count);
    for (;;) {
      const claimed = Atomics.add(control, 0, 1);
      if (claimed >= chunks) return;
      const from = claimed * chunk;
      const to = Math.min(count, from + chunk);
      try {
        if (fault === 'throw') throw new Error('test fault');
        if (fault === 'hang') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
        const start = offsets[from]!;
        const end = offsets[to]!;
        const at = exports.paired_mls_verify_buffer(end - start);
        if (at === 0) throw new Error('no room for the verification jobs');
        new Uint8Array(exports.memory.buffer, at, end - start).set(jobs.subarray(start, end));
        if (exports.paired_mls_verify_jobs(to - from) !== to - from) throw new Error('malformed verification jobs');
        results.set(new Uint8Array(exports.memory.buffer, at, to - from), from);
      } catch {
        Atomics.store(status, claimed, 3); // FAILED
        Atomics.notify(status, claimed);
        // An instance that trapped is not trusted to work again (a borrow
        // may be left held): this worker ends, the calling thread verifies
        // what it leaves, and the pool is replaced before its next batch.
        process.exit(1);
      }
      Atomics.store(status, claimed, 2); // DONE
      Atomics.notify(status, claimed);
    }
  };
  // Blocked on the doorbell between batches, not in the event loop: a
  // ring wakes this thread in tens of µs, where a message took 0.4 ms
  // (median) to 3.5 ms (p90) to reach an idle worker's loop. The batch's
  // buffer is then taken from the port synchronously.
  for (let seen = 0; ; ) {
    Atomics.wait(doorbell, 0, seen);
    seen = Atomics.load(doorbell, 0);
    for (let message = receiveMessageOnPort(port); message; message = receiveMessageOnPort(port)) verifyBatch(message.message as SharedArrayBuffer);
  }
}

/** The host object the core calls (`installVerifyPool`): `threads` workers plus the calling thread. */
export class VerifyPool {
  #workers: WorkerThreads.Worker[] = [];
  #batch: VerifyBatch | undefined;
  /** Chunks of the current batch the calling thread claimed. */
  readonly #claimedHere = new Set<number>();
  /** Set when a worker failed, stalled or exited: the pool is replaced before its next batch. */
  #broken = false;
  readonly stats: VerifyPoolStats = { verifyBatches: 0, workerVerifications: 0, callingThreadVerifications: 0, failedVerifyChunks: 0, verifyStalls: 0, callingThreadWaitMs: 0 };
  /** Test hook only (test/verify-pool.test.ts): the workers take every chunk. Read once: `process.env` is slow to read per claim. */
  readonly #workersOnly = process.env.PAIRED_MLS_TEST_VERIFY_SHARE === 'workers';
  /** Rung (incremented and notified) after a batch is posted to every worker's port. */
  readonly #doorbell = new Int32Array(new SharedArrayBuffer(4));
  /** This side of each worker's port. */
  #ports: WorkerThreads.MessagePort[] = [];

  constructor(
    private readonly workerThreads: typeof WorkerThreads,
    /** The core's compiled module, instantiated once per worker. */
    private readonly module: WebAssembly.Module,
    /** Workers besides the calling thread (at least 1). */
    readonly threads: number,
  ) {}

  /** Start a batch of `count` jobs; returns the jobs per chunk, or 0 to leave it to the calling thread. */
  verifyBegin(jobs: Uint8Array, count: number): number {
    this.#batch = undefined;
    if (!Number.isInteger(count) || count < POOL_MIN_VERIFICATIONS) return 0;
    if (this.#broken) this.close();
    const batch = new VerifyBatch(jobs, count);
    this.#start();
    this.#claimedHere.clear();
    for (const port of this.#ports) port.postMessage(batch.buffer);
    Atomics.add(this.#doorbell, 0, 1);
    Atomics.notify(this.#doorbell, 0);
    this.#batch = batch;
    this.stats.verifyBatches++;
    return VERIFY_CHUNK;
  }

  /** The next chunk for the calling thread, or -1 when none is left. */
  verifyClaim(): number {
    const batch = this.#batch;
    if (!batch) return -1;
    if (this.#workersOnly) {
      this.#awaitClaims(batch);
      return -1;
    }
    const chunk = batch.claim();
    if (chunk >= 0) {
      this.#claimedHere.add(chunk);
      const [from, to] = batch.range(chunk);
      this.stats.callingThreadVerifications += to - from;
    }
    return chunk;
  }

  /** End the batch: the workers' results into `results` (1 valid, 0 anything else), one byte per job. */
  verifyEnd(results: Uint8Array): void {
    const batch = this.#batch;
    this.#batch = undefined;
    if (!batch) throw new RangeError('no verification batch is running');
    if (results.length !== batch.count) throw new RangeError('one result byte per job is expected');
    results.fill(0);
    const started = performance.now();
    try {
      this.#collect(batch, results);
    } finally {
      this.stats.callingThreadWaitMs += performance.now() - started;
    }
  }

  /** The workers' chunks of `batch` into `results`, waiting for each (verifyEnd). */
  #collect(batch: VerifyBatch, results: Uint8Array): void {
    const claimed = batch.close();
    // One spin budget for the whole wait, not one per pending chunk.
    const spinUntil = performance.now() + END_SPIN_MS;
    for (let chunk = 0; chunk < claimed; chunk++) {
      if (this.#claimedHere.has(chunk)) continue;
      const [from, to] = batch.range(chunk);
      if (!waitWhilePending(batch.status, chunk, true, Math.max(0, spinUntil - performance.now()))) {
        // Left to the calling thread; the worker may still finish into this batch's own buffer.
        this.#broken = true;
        this.stats.verifyStalls++;
        return;
      }
      if (Atomics.load(batch.status, chunk) === FAILED) {
        this.#broken = true;
        this.stats.failedVerifyChunks++;
        continue;
      }
      results.set(batch.results.subarray(from, to), from);
      this.stats.workerVerifications += to - from;
    }
  }

  /** Terminate the workers (a later batch starts new ones). */
  close(): void {
    for (const worker of this.#workers) void worker.terminate();
    for (const port of this.#ports) port.close();
    this.#workers = [];
    this.#ports = [];
    this.#broken = false;
  }

  /** Workers running now (0 until the first batch). */
  get running(): number {
    return this.#workers.length;
  }

  #start(): void {
    if (this.#workers.length > 0) return;
    const source = `(${verifyWorkerMain.toString()})()`;
    const channels = Array.from({ length: this.threads }, () => new this.workerThreads.MessageChannel());
    this.#ports = channels.map(({ port1 }) => port1);
    const options = (i: number): WorkerThreads.WorkerOptions => {
      const port = channels[i]!.port2;
      return { workerData: { module: this.module, port, doorbell: this.#doorbell }, transferList: [port] };
    };
    this.#workers = startWorkers(this.workerThreads, source, this.threads, options, (worker) => {
      if (this.#workers.includes(worker)) this.#broken = true;
    });
  }

  /** Test hook: wait until the workers claimed every chunk (or STALL_MS passed). */
  #awaitClaims(batch: VerifyBatch): void {
    const deadline = performance.now() + STALL_MS;
    while (Atomics.load(batch.control, 0) < batch.chunks && performance.now() < deadline) {
      Atomics.wait(batch.control, 0, Atomics.load(batch.control, 0), 1);
    }
  }
}
