/**
 * Which batches the Node Encap pool takes (ts/mls/x25519-pool.ts,
 * PROTOCOL §1.5): a batch of 64 Encaps (POOL_MIN_ENCAPS, the Encaps of
 * a self-update in a blank tree of n = 65 … 128) runs on the worker, one
 * Encap fewer stays on the calling thread and starts no worker. Real X25519:
 * each `enc || DH` result is checked against the recipient's own DH with the
 * ephemeral key, so a result from the wrong key or the wrong slot fails.
 */
import crypto from 'node:crypto';
import workerThreads from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { CHUNK } from '../ts/mls/encap-batch.js';
import { POOL_MIN_ENCAPS, WorkerPoolEncaps } from '../ts/mls/x25519-pool.js';
import { importPublic, recipients } from './x25519-recipients.js';

/** Run one batch on `pool`; every result must be `enc || DH(recipient, enc)`. */
function runBatch(pool: WorkerPoolEncaps, count: number): void {
  const { privateKeys, publicKeys } = recipients(count);
  const out = new Uint8Array(64 * count);
  pool.begin(publicKeys);
  try {
    // Taken in two parts, as the core takes chunk by chunk.
    const half = Math.floor(count / 2);
    pool.take(out.subarray(0, 64 * half));
    pool.take(out.subarray(64 * half));
  } finally {
    pool.end();
  }
  for (let i = 0; i < count; i++) {
    const enc = out.subarray(64 * i, 64 * i + 32);
    const dh = crypto.diffieHellman({ privateKey: privateKeys[i]!, publicKey: importPublic(enc) });
    expect(Buffer.from(out.subarray(64 * i + 32, 64 * i + 64)).equals(dh)).toBe(true);
  }
}

describe('the Node Encap pool minimum', () => {
  let pool: WorkerPoolEncaps | undefined;
  afterEach(() => pool?.close());

  it('is 64 Encaps, several chunks', () => {
    expect(POOL_MIN_ENCAPS % CHUNK).toBe(0);
    expect(POOL_MIN_ENCAPS).toBe(64);
  });

  it('a batch one Encap short stays on the calling thread and starts no worker; a batch of the minimum runs on the pool', () => {
    pool = new WorkerPoolEncaps(crypto, importPublic, workerThreads, 1);
    runBatch(pool, POOL_MIN_ENCAPS - 1);
    expect(pool.stats).toMatchObject({ pooledBatches: 0, workerEncaps: 0, callingThreadEncaps: 0 });
    expect(pool.running).toBe(0);

    runBatch(pool, POOL_MIN_ENCAPS);
    expect(pool.stats.pooledBatches).toBe(1);
    expect(pool.running).toBe(1);
    // Whoever made them (the worker may not have woken in time), all were made once.
    expect(pool.stats.workerEncaps + pool.stats.callingThreadEncaps).toBe(POOL_MIN_ENCAPS);
    expect(pool.stats).toMatchObject({ redoneChunks: 0, stalls: 0 });

    // A small batch after a pooled one still stays on the calling thread.
    runBatch(pool, 5);
    expect(pool.stats.pooledBatches).toBe(1);
  });
});
