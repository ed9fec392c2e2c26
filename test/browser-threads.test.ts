/**
 * The browsers' opt-in Web Worker pool of `setThreads` (ts/mls/
 * browser-encap-pool.ts) in Chromium: on a cross-origin isolated page a
 * self-update whose Encaps the workers (WebCrypto X25519 at n = 300; the
 * core's wasm, its module compiled once, below 64 Encaps) and the calling
 * thread (in wasm, the chunks no worker had claimed) made is processed by
 * members at several leaves to the same epoch authenticator; workers that
 * never claim leave every chunk to the calling thread, without a stall;
 * workers that claim a chunk and hang stall the batch, the core seals it
 * in wasm instead and the group keeps working; a worker whose chunk fails
 * after earlier takes succeeded gets the same fallback; the pool starts
 * at 9 Encaps (a self-update at n = 16 is pooled, its workers' Encaps
 * open for every member); without cross-origin
 * isolation setThreads is refused with UNSUPPORTED; the single-thread
 * mode works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, staticServer } from './browser-harness.js';

const REAL_LEAVES = [1, 37, 130, 255, 299];
const SIZE = 300;

let browser: Browser;
let isolated: { url: string; close(): Promise<void> };
let plain: { url: string; close(): Promise<void> };

beforeAll(async () => {
  isolated = await staticServer(process.cwd(), { isolated: true });
  plain = await staticServer(process.cwd());
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await isolated?.close();
  await plain?.close();
});

async function open(site: { url: string }): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`page: ${e.message}`));
  await page.goto(`${site.url}/test/browser/threads.html`);
  await page.waitForFunction(() => (window as unknown as { appReady?: boolean }).appReady === true);
  return page;
}

const call = <T>(page: Page, fn: string, ...args: unknown[]): Promise<T> =>
  page.evaluate(([f, a]) => (window as any).app[f as string](...(a as unknown[])), [fn, args] as const) as Promise<T>;

interface Round {
  ms: number;
  epoch: number;
  authenticators: string[];
  stats: { pooledBatches: number; workerEncaps: number; callingThreadEncaps: number; stalls: number; running: number } | null;
}

function expectAgreed(round: Round): void {
  expect(new Set(round.authenticators).size).toBe(1);
  expect(round.authenticators).toHaveLength(REAL_LEAVES.length + 1);
}

/** Real workers again (a fresh pool of one): a commit on it after `previous` is good and every Encap made once. */
async function expectRepairedPoolWorks(page: Page, previous: Round): Promise<void> {
  await call(page, 'repairWorkers');
  expect(await call(page, 'setThreads', 0)).toEqual({ threads: 0, count: 0 });
  expect(await call(page, 'setThreads', 1)).toEqual({ threads: 1, count: 1 });
  await call(page, 'idle', 300);
  const after = await call<Round>(page, 'selfUpdateRound');
  expectAgreed(after);
  expect(after.epoch).toBe(previous.epoch + 1);
  expect(after.stats).toMatchObject({ pooledBatches: 1, stalls: 0 });
  expect(after.stats!.workerEncaps + after.stats!.callingThreadEncaps).toBe(SIZE - 1);
}

/** As expectRepairedPoolWorks, for the n = 16 group (15 members processing). */
async function expectRepairedPoolWorks16(page: Page, previous: Round): Promise<void> {
  await call(page, 'repairWorkers');
  expect(await call(page, 'setThreads', 0)).toEqual({ threads: 0, count: 0 });
  expect(await call(page, 'setThreads', 1)).toEqual({ threads: 1, count: 1 });
  await call(page, 'idle', 300);
  const after = await call<Round>(page, 'selfUpdateRound');
  expect(new Set(after.authenticators).size).toBe(1);
  expect(after.epoch).toBe(previous.epoch + 1);
  expect(after.stats).toMatchObject({ pooledBatches: 1, stalls: 0 });
  expect(after.stats!.workerEncaps + after.stats!.callingThreadEncaps).toBe(15);
}

describe('setThreads in Chromium', () => {
  it('a cross-origin isolated page commits on the pool; members at every position agree; a stalled pool falls back to wasm', async () => {
    const page = await open(isolated);
    expect(await call(page, 'crossOriginIsolated')).toBe(true);
    expect(await call(page, 'build', SIZE, REAL_LEAVES)).toEqual(REAL_LEAVES);

    const single = await call<Round>(page, 'selfUpdateRound');
    expectAgreed(single);
    expect(await call(page, 'setThreads', 2)).toEqual({ threads: 2, count: 2 });
    // The workers start once the page is free (a commit cannot wait for that).
    await call(page, 'idle', 300);
    const pooled: Round[] = [];
    for (let i = 0; i < 3; i++) pooled.push(await call<Round>(page, 'selfUpdateRound'));
    for (const round of pooled) expectAgreed(round);
    // Every Encap made once, by a worker or by the calling thread in wasm
    // (it claims what no worker has claimed instead of waiting); none stalled.
    const shared = pooled[2]!.stats!;
    expect(shared).toMatchObject({ pooledBatches: 3, stalls: 0, running: 2 });
    expect(shared.workerEncaps + shared.callingThreadEncaps).toBe(3 * (SIZE - 1));
    expect(shared.workerEncaps).toBeGreaterThan(0);
    expect(shared.callingThreadEncaps).toBeGreaterThan(0);
    expect(pooled.map((r) => r.epoch)).toEqual([single.epoch + 1, single.epoch + 2, single.epoch + 3]);

    // Workers that start but never claim: the calling thread makes every
    // chunk in wasm, no stall; the commit is good.
    expect(await call(page, 'setThreads', 0)).toEqual({ threads: 0, count: 0 });
    await call(page, 'breakWorkers');
    expect(await call(page, 'setThreads', 1)).toEqual({ threads: 1, count: 1 });
    await call(page, 'idle', 300);
    const silent = await call<Round>(page, 'selfUpdateRound');
    expectAgreed(silent);
    expect(silent.ms).toBeLessThan(900);
    expect(silent.stats).toMatchObject({ pooledBatches: 1, workerEncaps: 0, callingThreadEncaps: SIZE - 1, stalls: 0 });

    // Workers that claim a chunk and hang: the batch stalls (STALL_MS, 1 s)
    // on that chunk, the core seals it in wasm; the commit is good and the
    // group goes on.
    await call(page, 'repairWorkers');
    expect(await call(page, 'setThreads', 0)).toEqual({ threads: 0, count: 0 });
    await call(page, 'hangWorkers');
    expect(await call(page, 'setThreads', 1)).toEqual({ threads: 1, count: 1 });
    await call(page, 'idle', 300);
    const stalled = await call<Round>(page, 'selfUpdateRound');
    expectAgreed(stalled);
    expect(stalled.ms).toBeGreaterThanOrEqual(950);
    expect(stalled.stats).toMatchObject({ pooledBatches: 1, workerEncaps: 0, stalls: 1 });
    // The pool was replaced at once (by workers that hang, still): the next
    // commit stalls again and still works.
    await call(page, 'idle', 300);
    const again = await call<Round>(page, 'selfUpdateRound');
    expectAgreed(again);
    expect(again.stats).toMatchObject({ pooledBatches: 2, stalls: 2 });
    // Real workers again: the pool works after its failures.
    await expectRepairedPoolWorks(page, again);

    // A commit right after setThreads, before any worker could start: sealed
    // in wasm at once (no stall), and correct.
    expect(await call(page, 'setThreads', 0)).toEqual({ threads: 0, count: 0 });
    const early = await call<Round>(page, 'setThreadsThenCommit', 2);
    expectAgreed(early);
    expect(early.stats).toMatchObject({ pooledBatches: 0, workerEncaps: 0, stalls: 0 });
    expect(early.ms).toBeLessThan(900);

    expect(await call(page, 'setThreads', 0)).toEqual({ threads: 0, count: 0 });
    expectAgreed(await call<Round>(page, 'selfUpdateRound'));
    console.log(`Chromium n=300 self-update: single-thread ${single.ms.toFixed(0)} ms; pool of 2: ${pooled.map((r) => r.ms.toFixed(0)).join(', ')} ms`);
    await page.close();
  }, 180_000);

  it('the pool takes a batch of 9 Encaps (two chunks), not one of 8; both commits are good', async () => {
    for (const [size, pooled] of [
      [9, 0],
      [10, 1],
    ] as const) {
      const page = await open(isolated);
      expect(await call(page, 'build', size, [1, size - 1])).toEqual([1, size - 1]);
      expect(await call(page, 'setThreads', 1)).toEqual({ threads: 1, count: 1 });
      await call(page, 'idle', 300);
      const round = await call<Round>(page, 'selfUpdateRound');
      expect(new Set(round.authenticators).size).toBe(1);
      expect(round.authenticators).toHaveLength(3);
      expect(round.stats).toMatchObject({ pooledBatches: pooled, stalls: 0 });
      expect(round.stats!.workerEncaps + round.stats!.callingThreadEncaps).toBe(pooled ? size - 1 : 0);
      await page.close();
    }
  }, 120_000);

  // Round 3i: at n = 16 (15 Encaps, two chunks) the worker makes its
  // chunk in wasm. Every member (each leaf a real client) opens its own
  // path secret from the commits, whoever made its Encap; over several
  // commits the worker made some and the calling thread some. Then a
  // worker that hangs on its chunk: that commit is sealed in wasm on the
  // calling thread and still opens for everyone.
  it('at n = 16 the workers make Encaps in wasm that every member opens; a hung worker falls back to wasm', async () => {
    const page = await open(isolated);
    const leaves = Array.from({ length: 15 }, (_, i) => i + 1);
    expect(await call(page, 'build', 16, leaves)).toEqual(leaves);
    expect(await call(page, 'setThreads', 1)).toEqual({ threads: 1, count: 1 });
    await call(page, 'idle', 300);
    let round: Round | undefined;
    for (let i = 0; i < 12 && !(round && round.stats!.workerEncaps > 0); i++) {
      round = await call<Round>(page, 'selfUpdateRound');
      expect(new Set(round.authenticators).size).toBe(1);
      expect(round.authenticators).toHaveLength(16);
      await call(page, 'idle', 20);
    }
    expect(round!.stats).toMatchObject({ stalls: 0 });
    expect(round!.stats!.workerEncaps).toBeGreaterThan(0);
    expect(round!.stats!.workerEncaps + round!.stats!.callingThreadEncaps).toBe(15 * round!.stats!.pooledBatches);

    expect(await call(page, 'setThreads', 0)).toEqual({ threads: 0, count: 0 });
    await call(page, 'hangWorkers');
    expect(await call(page, 'setThreads', 1)).toEqual({ threads: 1, count: 1 });
    await call(page, 'idle', 300);
    // Whether the worker claims a chunk before the calling thread has made
    // both is timing; a round where it did stalls, and still agrees.
    let stalled: Round | undefined;
    for (let i = 0; i < 8 && !stalled; i++) {
      const tried = await call<Round>(page, 'selfUpdateRound');
      expect(new Set(tried.authenticators).size).toBe(1);
      expect(tried.authenticators).toHaveLength(16);
      if (tried.stats!.stalls > 0) stalled = tried;
      await call(page, 'idle', 300);
    }
    if (!stalled) throw new Error('the hung worker never claimed a chunk in 8 rounds');
    expect(stalled.ms).toBeGreaterThanOrEqual(950);
    await expectRepairedPoolWorks16(page, stalled);
    await page.close();
  }, 180_000);

  // From the review of round 2m: the core takes a pooled batch a chunk at
  // a time, so a failure can come after takes that succeeded. One real
  // worker that refuses every Encap after its 64th: its
  // first 64 Encaps are good, its next chunk fails; the calling thread makes
  // the chunks the worker has not claimed, so how many of the worker's
  // were taken first depends on timing, but the take of the failed chunk
  // throws, the core seals the whole batch in wasm (none of the worker's
  // results is sent), members agree and a repaired pool works again.
  it('a worker whose chunk fails after its good ones (a later take): the batch is sealed in wasm, the group agrees, the pool recovers', async () => {
    const page = await open(isolated);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    expect(await call(page, 'build', SIZE, REAL_LEAVES)).toEqual(REAL_LEAVES);

    await call(page, 'failWorkersAfter', 64);
    // Whether the worker claims its failing (third) chunk before the
    // calling thread has made every chunk is timing: on a loaded machine it
    // may not (a CI run gave stalls 0). Such a round is still checked for
    // agreement, and a fresh pool (a new worker, its count from 0) runs
    // another, up to 5.
    let failed: Round | undefined;
    for (let round = 0; round < 5 && !failed; round++) {
      expect(await call(page, 'setThreads', 0)).toEqual({ threads: 0, count: 0 });
      expect(await call(page, 'setThreads', 1)).toEqual({ threads: 1, count: 1 });
      await call(page, 'idle', 300);
      const tried = await call<Round>(page, 'selfUpdateRound');
      expectAgreed(tried);
      if (tried.stats!.stalls > 0) failed = tried;
      else expect(tried.stats).toMatchObject({ pooledBatches: 1, stalls: 0 });
    }
    if (!failed) throw new Error('the worker never reached its failing chunk in 5 rounds');
    // At most the worker's two good chunks were taken (whole takes of 32)
    // before the take of its failed chunk threw.
    expect(failed.stats).toMatchObject({ pooledBatches: 1, stalls: 1 });
    expect([0, 32, 64]).toContain(failed.stats!.workerEncaps);
    // A worker's FAILED chunk is seen at once, not after STALL_MS.
    expect(failed.ms).toBeLessThan(900);

    await expectRepairedPoolWorks(page, failed);
    expect(errors).toEqual([]);
    await page.close();
  }, 180_000);

  it('without cross-origin isolation, setThreads is refused with UNSUPPORTED (0 still works)', async () => {
    const page = await open(plain);
    expect(await call(page, 'crossOriginIsolated')).toBe(false);
    await call(page, 'build', 3, [1, 2]);
    expect(await call(page, 'setThreads', 1)).toEqual({ error: 'UNSUPPORTED' });
    expect(await call(page, 'setThreads', 0)).toEqual({ threads: 0, count: 0 });
    await page.close();
  }, 60_000);
});
