/**
 * Review of round 2m (ENCAP_CHUNK 32): the core takes a pooled batch's
 * results 32 at a time, so in a browser the Web Worker pool
 * (ts/mls/browser-encap-pool.ts) can fail after earlier takes were handed
 * over. Chromium, one real worker whose WebCrypto X25519 refuses every DH
 * after the 64th: its first two chunks are good, its third fails; the
 * calling thread makes in wasm the chunks the worker has not claimed
 * (browser-encap-pool.ts `claim`), so which takes came from the worker
 * before the failing one depends on the timing, but the take of the failed
 * chunk throws, the core seals the whole batch in wasm instead (none of the
 * worker's results is sent) and members at every position agree.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, staticServer } from './browser-harness.js';

const REAL_LEAVES = [1, 37, 130, 255, 299];
const SIZE = 300;

let browser: Browser;
let isolated: { url: string; close(): Promise<void> };

beforeAll(async () => {
  isolated = await staticServer(process.cwd(), { isolated: true });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await isolated?.close();
});

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

describe('browser Encap pool, a failure in a later take (round 2m)', () => {
  it('two takes handed over, the third fails: the batch is sealed in wasm, the group agrees, the pool recovers', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${isolated.url}/test/browser/threads.html`);
    await page.waitForFunction(() => (window as unknown as { appReady?: boolean }).appReady === true);
    expect(await call(page, 'build', SIZE, REAL_LEAVES)).toEqual(REAL_LEAVES);

    await call(page, 'failWorkersAfter', 64);
    expect(await call(page, 'setThreads', 1)).toEqual({ threads: 1, count: 1 });
    await call(page, 'idle', 300);
    const failed = await call<Round>(page, 'selfUpdateRound');
    expectAgreed(failed);
    // At most the worker's two good chunks were taken (whole takes of 32)
    // before the take of its failed chunk threw.
    expect(failed.stats).toMatchObject({ pooledBatches: 1, stalls: 1 });
    expect([0, 32, 64]).toContain(failed.stats!.workerEncaps);
    // A worker's FAILED chunk is seen at once, not after STALL_MS.
    expect(failed.ms).toBeLessThan(900);

    await call(page, 'repairWorkers');
    expect(await call(page, 'setThreads', 0)).toEqual({ threads: 0, count: 0 });
    expect(await call(page, 'setThreads', 1)).toEqual({ threads: 1, count: 1 });
    await call(page, 'idle', 300);
    const after = await call<Round>(page, 'selfUpdateRound');
    expectAgreed(after);
    expect(after.epoch).toBe(failed.epoch + 1);
    expect(after.stats).toMatchObject({ pooledBatches: 1, stalls: 0 });
    expect(after.stats!.workerEncaps + after.stats!.callingThreadEncaps).toBe(SIZE - 1);
    expect(errors).toEqual([]);
    await page.close();
  }, 180_000);
});
