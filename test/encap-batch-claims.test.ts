/**
 * The claim protocol of the Encap pools' shared batch (ts/mls/encap-batch.ts):
 * a claim taken at the end of one batch by a worker that was then paused
 * must not count in the next batch (review finding F1 of the threads work:
 * two threads making one chunk would pair an enc with another Encap's DH).
 * The pause is reproduced exactly: the worker's `Atomics.add` on the claim
 * counter is done by hand, the next batch loaded, then the worker's check run.
 */
import { describe, expect, it } from 'vitest';
import { CHUNK, CHUNKS, DONE, GENERATION, NEXT, SharedBatch, chunkOfClaim, claimChunks } from '../ts/mls/encap-batch.js';

const keys = (count: number) => new Uint8Array(32 * count).map((_, i) => i);

describe('shared Encap batch claims', () => {
  it('a claim taken at the end of a batch and checked after the next one loaded is dropped', () => {
    const shared = new SharedBatch(8 * CHUNK);
    shared.load(keys(2 * CHUNK));
    expect([shared.claim(), shared.claim()]).toEqual([0, 1]);
    for (const chunk of [0, 1]) Atomics.store(shared.status, chunk, DONE);
    // A worker over-claims (its add returns the index past the last chunk)
    // and is paused before it reads the chunk count.
    const stale = Atomics.add(shared.control, NEXT, 1);
    expect(stale & 0xfffff).toBe(2);
    expect(shared.finish(2 * CHUNK, true, false)).toBe(true);
    // The next commit reuses the buffer with a larger batch.
    shared.load(keys(8 * CHUNK));
    const chunks = Atomics.load(shared.control, CHUNKS);
    expect(chunks).toBe(8);
    // The index alone would now name chunk 2 of the new batch, which the
    // claims below also hand out: the generation drops the stale claim.
    expect((stale & 0xfffff) < chunks).toBe(true);
    expect(chunkOfClaim(stale, chunks, Atomics.load(shared.control, GENERATION))).toBe(-1);
    // Fresh claims hand out every chunk exactly once, then none.
    const claimed = Array.from({ length: 10 }, () => shared.claim());
    expect(claimed).toEqual([0, 1, 2, 3, 4, 5, 6, 7, -1, -1]);
  });

  it('claims after finish are refused; a worker joining a loaded batch makes each chunk once', async () => {
    const shared = new SharedBatch(4 * CHUNK);
    shared.load(keys(3 * CHUNK + 5));
    const made: number[] = [];
    await claimChunks(shared.message(), (_keys, out, from, to) => {
      made.push(from);
      out.fill(1, from * 64, to * 64);
    });
    expect(made).toEqual([0, CHUNK, 2 * CHUNK, 3 * CHUNK]);
    expect(Array.from(shared.status)).toEqual([DONE, DONE, DONE, DONE]);
    expect(shared.finish(3 * CHUNK + 5, true, false)).toBe(true);
    expect(shared.out.every((byte) => byte === 0)).toBe(true); // finish wiped the results
    expect(shared.claim()).toBe(-1);
    await claimChunks(shared.message(), () => {
      throw new Error('no chunk is left to make');
    });
  });
});
