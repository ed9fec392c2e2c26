/**
 * Issue 24: a joined tree's leaf signatures verified on worker threads
 * (setThreads in Node, ts/mls/verify-pool.ts, engine change 23). Real
 * groups and real joins: the workers' share is counted, a tree with forged
 * leaf signatures is refused with the single-thread mode's exact error
 * even when the workers verify every chunk, workers that throw or hang
 * only cost time, and the joiner keeps working afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlsClient, bytesEqual, init, setThreads, threadStats, type Group } from 'paired-mls';
import { mlsError, newMember, type Member } from './helpers.js';

/** 80 leaves: five chunks of 16 signatures. */
const SIZE = 80;

let creator: Member;
let joiner: Member;
let welcome: Uint8Array;
let tree: Uint8Array;
/** The leaf signatures of the filler KeyPackages, in leaf order (leaves 2 to SIZE - 1). */
let leafSignatures: Uint8Array[];

function indexOf(haystack: Uint8Array, needle: Uint8Array): number[] {
  const found: number[] = [];
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    found.push(i);
  }
  return found;
}

/** The tree with one bit of the signature of each leaf in `leaves` (indices into leafSignatures) flipped. */
function forged(leaves: number[]): Uint8Array {
  const copy = tree.slice();
  for (const leaf of leaves) {
    const [at] = indexOf(copy, leafSignatures[leaf]!);
    copy[at! + 17]! ^= 0x04;
  }
  return copy;
}

async function joinAndCheck(ratchetTree: Uint8Array): Promise<Group> {
  const group = await joiner.client.joinFromWelcome(welcome, { ratchetTree });
  expect(group.epoch).toBe(creator.group!.epoch);
  expect(bytesEqual(group.epochAuthenticator(), creator.group!.epochAuthenticator())).toBe(true);
  return group;
}

const verifyStats = () => threadStats()?.verify;
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Honest joins (each then deleted), 100 ms apart, until `done` (at most
 * 20): workers start with the first batch, which the calling thread may
 * finish alone while they instantiate the module (slower when other test
 * files share the cores).
 */
async function joinUntil(done: () => boolean): Promise<void> {
  for (let round = 0; round < 20 && !done(); round++) {
    const group = await joinAndCheck(tree);
    await joiner.client.deleteGroup(group.id);
    await pause(100);
  }
}

describe('leaf signatures verified on worker threads at join', () => {
  beforeAll(async () => {
    await init();
    creator = await newMember('creator');
    creator.group = await creator.client.createGroup(creator.identity, { ratchetTreeExtension: false });
    joiner = await newMember('joiner');
    const filler = await MlsClient.open();
    // A last-resort KeyPackage: the joiner joins the same Welcome again after each test.
    const keyPackages = [await joiner.client.createKeyPackage(joiner.identity, { lastResort: true })];
    for (let leaf = 2; leaf < SIZE; leaf++) keyPackages.push(await filler.createKeyPackage(await filler.createIdentity(`m${leaf}`)));
    const added = await creator.group.commit({ add: keyPackages });
    await creator.group.mergePendingCommit();
    filler.free();
    welcome = added.welcome!;
    tree = creator.group.exportRatchetTree();
    // A KeyPackage ends with its leaf node's signature (varint 0x4040 + 64
    // bytes), its empty extensions (0x00) and its own signature (0x4040 +
    // 64 bytes); the tree carries each leaf node as in its KeyPackage.
    leafSignatures = keyPackages.slice(1).map((kp) => kp.slice(kp.length - 131, kp.length - 67));
    for (const signature of leafSignatures) expect(indexOf(tree, signature)).toHaveLength(1);
  }, 120_000);

  afterAll(() => {
    delete process.env.PAIRED_MLS_TEST_POOL_FAULT;
    delete process.env.PAIRED_MLS_TEST_VERIFY_SHARE;
    setThreads(0);
  });

  it('the workers and the calling thread share the leaves; the joiner reaches the creator epoch', async () => {
    expect(setThreads(1)).toBe(1);
    await joinUntil(() => (verifyStats()?.workerVerifications ?? 0) > 0);
    const stats = verifyStats()!;
    expect(stats.workerVerifications).toBeGreaterThan(0);
    expect(stats.workerVerifications + stats.callingThreadVerifications).toBe(stats.verifyBatches * SIZE);
    expect(stats).toMatchObject({ failedVerifyChunks: 0, verifyStalls: 0, running: 1 });
  }, 60_000);

  it('forged leaf signatures verified by the workers: refused with the single-thread error; the honest tree then joins', async () => {
    // One forged leaf in every chunk (fillers 16k sit at leaves 16k + 2),
    // so whichever thread claims a chunk meets one; with the test share
    // the workers claim them all.
    const forgedTree = forged([0, 16, 32, 48, 64]);
    setThreads(0);
    const alone = await mlsError(() => joiner.client.joinFromWelcome(welcome, { ratchetTree: forgedTree }));
    expect(alone.code).toBe('INVALID_SIGNATURE');

    process.env.PAIRED_MLS_TEST_VERIFY_SHARE = 'workers';
    setThreads(1);
    await joinUntil(() => (verifyStats()?.workerVerifications ?? 0) > 0);
    const before = verifyStats()!;
    const pooled = await mlsError(() => joiner.client.joinFromWelcome(welcome, { ratchetTree: forgedTree }));
    expect(pooled.code).toBe(alone.code);
    expect(pooled.message).toBe(alone.message);
    const after = verifyStats()!;
    // Every chunk went through a worker, which reported the forged ones invalid.
    expect(after.workerVerifications - before.workerVerifications).toBe(SIZE);
    expect(after.callingThreadVerifications).toBe(before.callingThreadVerifications);
    // A single forged leaf, the last one.
    const last = await mlsError(() => joiner.client.joinFromWelcome(welcome, { ratchetTree: forged([leafSignatures.length - 1]) }));
    expect(last.code).toBe('INVALID_SIGNATURE');
    delete process.env.PAIRED_MLS_TEST_VERIFY_SHARE;
    setThreads(0);
    setThreads(1);

    const group = await joinAndCheck(tree);
    await joiner.client.deleteGroup(group.id);
  }, 60_000);

  it('small trees stay on the calling thread', async () => {
    setThreads(1);
    const small = await newMember('small');
    small.group = await small.client.createGroup(small.identity);
    const peer = await newMember('peer');
    const { welcome: smallWelcome } = await small.group.commit({ add: [await peer.client.createKeyPackage(peer.identity)] });
    await small.group.mergePendingCommit();
    const batches = verifyStats()!.verifyBatches;
    peer.group = await peer.client.joinFromWelcome(smallWelcome!);
    expect(verifyStats()!.verifyBatches).toBe(batches);
  }, 60_000);

  it('workers that throw: their chunks are verified by the calling thread; a forged tree is still refused', async () => {
    setThreads(0);
    process.env.PAIRED_MLS_TEST_POOL_FAULT = 'throw';
    process.env.PAIRED_MLS_TEST_VERIFY_SHARE = 'workers';
    setThreads(1);
    await joinUntil(() => (verifyStats()?.failedVerifyChunks ?? 0) > 0);
    expect(verifyStats()!.failedVerifyChunks).toBeGreaterThan(0);
    expect(verifyStats()!.workerVerifications).toBe(0);
    expect((await mlsError(() => joiner.client.joinFromWelcome(welcome, { ratchetTree: forged([32]) }))).code).toBe('INVALID_SIGNATURE');
    delete process.env.PAIRED_MLS_TEST_POOL_FAULT;
    delete process.env.PAIRED_MLS_TEST_VERIFY_SHARE;
    setThreads(0);
  }, 60_000);

  it('a worker that hangs is given up after a stall: the join completes, the next pool is healthy', async () => {
    process.env.PAIRED_MLS_TEST_POOL_FAULT = 'hang';
    setThreads(1);
    let stalled = 0;
    for (let round = 0; round < 20 && (verifyStats()?.verifyStalls ?? 0) === 0; round++) {
      const started = performance.now();
      const group = await joinAndCheck(tree);
      if ((verifyStats()?.verifyStalls ?? 0) > 0) stalled = performance.now() - started;
      await joiner.client.deleteGroup(group.id);
    }
    expect(verifyStats()!.verifyStalls).toBe(1);
    expect(stalled).toBeGreaterThanOrEqual(950);
    delete process.env.PAIRED_MLS_TEST_POOL_FAULT;
    const workerVerifications = verifyStats()!.workerVerifications;
    await joinUntil(() => verifyStats()!.workerVerifications > workerVerifications);
    expect(verifyStats()!.workerVerifications).toBeGreaterThan(workerVerifications);
    setThreads(0);
  }, 60_000);
});
