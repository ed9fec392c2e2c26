/**
 * Review of round 2m (ENCAP_CHUNK 32): the core now takes a batch's
 * `enc || DH` results 32 at a time, so a batch has several takes and a
 * failure can come after earlier takes succeeded. The Node pool
 * (ts/mls/x25519-pool.ts) on real worker threads and real X25519: every
 * take of 32 holds Encaps to the right recipients, each moved result is
 * wiped from the shared buffer at once, a low-order key in a later chunk
 * makes a take throw (never one after that chunk's), `end()` then leaves no result in the shared buffer, and
 * the next batch on the same pool is correct. The Worker class is Node's
 * own, subclassed only to keep the SharedArrayBuffer it is sent.
 */
import crypto from 'node:crypto';
import workerThreads from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { CHUNK, type BatchMessage } from '../ts/mls/encap-batch.js';
import { WorkerPoolEncaps } from '../ts/mls/x25519-pool.js';
import { importPublic, recipients } from './x25519-recipients.js';

/** The messages the pool sent to its workers (each carries the shared buffer). */
const sent: BatchMessage[] = [];
class RecordingWorker extends workerThreads.Worker {
  override postMessage(message: BatchMessage): void {
    sent.push(message);
    super.postMessage(message);
  }
}
const recordingThreads = { ...workerThreads, Worker: RecordingWorker } as typeof workerThreads;

/** The results region of a shared batch buffer (layout of SharedBatch, encap-batch.ts). */
function resultsOf(message: BatchMessage): Uint8Array {
  const chunks = Math.ceil(message.capacity / message.chunk);
  return new Uint8Array(message.buffer, 16 + 4 * chunks + 32 * message.capacity, 64 * message.capacity);
}

/** Result `i` is `enc || DH(recipient i, enc)`. */
function expectEncapTo(privateKey: crypto.KeyObject, result: Uint8Array): void {
  const dh = crypto.diffieHellman({ privateKey, publicKey: importPublic(result.subarray(0, 32)) });
  expect(Buffer.from(result.subarray(32, 64)).equals(dh)).toBe(true);
}

const allZero = (bytes: Uint8Array): boolean => bytes.every((b) => b === 0);
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const COUNT = 300;

/** One batch taken CHUNK at a time, as the core does; checks the wipe after each take. */
function takeAll(pool: WorkerPoolEncaps, privateKeys: crypto.KeyObject[], publicKeys: Uint8Array): void {
  pool.begin(publicKeys);
  const shared = resultsOf(sent[sent.length - 1]!);
  try {
    for (let from = 0; from < COUNT; from += CHUNK) {
      const to = Math.min(COUNT, from + CHUNK);
      const out = new Uint8Array(64 * (to - from));
      pool.take(out);
      for (let i = from; i < to; i++) expectEncapTo(privateKeys[i]!, out.subarray(64 * (i - from), 64 * (i - from) + 64));
      // Moved into the core's memory and wiped here at once.
      expect(allZero(shared.subarray(0, 64 * to))).toBe(true);
    }
  } finally {
    pool.end();
  }
  expect(allZero(shared)).toBe(true);
}

describe('several takes per batch on the Node pool (round 2m)', () => {
  let pool: WorkerPoolEncaps | undefined;
  afterEach(() => pool?.close());

  it('a low-order key in a later take: earlier takes right, that take throws, end() leaves the shared buffer blank, the next batch is right', async () => {
    pool = new WorkerPoolEncaps(crypto, importPublic, recordingThreads, 1);
    const { privateKeys, publicKeys } = recipients(COUNT);
    // Until the worker made a share (it starts with the first large batch).
    for (let round = 0; round < 6 && pool.stats.workerEncaps === 0; round++) {
      takeAll(pool, privateKeys, publicKeys);
      await pause(100);
    }
    expect(pool.stats.workerEncaps).toBeGreaterThan(0);

    const bad = 250;
    const badChunk = Math.floor(bad / CHUNK);
    const withLowOrder = publicKeys.slice();
    withLowOrder.fill(0, 32 * bad, 32 * bad + 32);
    for (let round = 0; round < 4; round++) {
      pool.begin(withLowOrder);
      const shared = resultsOf(sent[sent.length - 1]!);
      let failedAt = -1;
      try {
        for (let chunk = 0; chunk * CHUNK < COUNT; chunk++) {
          const from = chunk * CHUNK;
          const to = Math.min(COUNT, from + CHUNK);
          const out = new Uint8Array(64 * (to - from));
          try {
            pool.take(out);
          } catch {
            failedAt = chunk;
            break;
          }
          for (let i = from; i < to; i++) expectEncapTo(privateKeys[i]!, out.subarray(64 * (i - from), 64 * (i - from) + 64));
        }
      } finally {
        pool.end();
      }
      // It fails at the latest in the take of the bad key's chunk; earlier
      // if the calling thread, waiting for a worker's chunk, made that
      // chunk ahead (x25519-pool.ts, #awaitChunk). Never after it.
      expect(failedAt).toBeGreaterThanOrEqual(0);
      expect(failedAt).toBeLessThanOrEqual(badChunk);
      // Chunks after the failed one may have been made (by the worker or
      // ahead by the calling thread): end() waited for them and wiped all.
      expect(allZero(shared)).toBe(true);
      expect(pool.stats.stalls).toBe(0);
      await pause(20);
    }
    // A take outside a batch is refused; the pool still works.
    expect(() => pool!.take(new Uint8Array(64))).toThrow(RangeError);
    takeAll(pool, privateKeys, publicKeys);
    expect(pool.running).toBe(1);
  }, 60_000);
});
