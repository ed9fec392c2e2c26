/**
 * Issue 24 item 6: a commit's path encryptions with their X25519 Encaps on
 * a worker pool (setThreads, ts/mls/x25519-pool.ts). Real groups: the
 * committer uses the pool, members at several leaves (each decrypting a
 * different ciphertext of the batch, so a misplaced result shows) process
 * the commit and reach the same epoch authenticator; a pool whose workers
 * throw or hang falls back to the calling thread and the group keeps
 * working; the single-thread mode still works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlsClient, MlsError, curveBackend, init, setThreads, threadCount, threadStats } from 'paired-mls';
import { deliverCommit, expectInSync, newMember, type Member } from './helpers.js';
import { PairedActor, TsActor, commitAll, expectAgree } from './interop-actors.js';

/** Leaves of the members that process the commits; the rest are KeyPackages only. */
const REAL_LEAVES = [1, 37, 130, 255, 299];
const SIZE = 300;

async function bigGroup(): Promise<{ creator: Member; members: Member[] }> {
  const creator = await newMember('creator');
  creator.group = await creator.client.createGroup(creator.identity);
  const filler = await MlsClient.open();
  const members: Member[] = [];
  const keyPackages: Uint8Array[] = [];
  for (let leaf = 1; leaf < SIZE; leaf++) {
    if (REAL_LEAVES.includes(leaf)) {
      const member = await newMember(`m${leaf}`);
      members.push(member);
      keyPackages.push(await member.client.createKeyPackage(member.identity));
    } else {
      keyPackages.push(await filler.createKeyPackage(await filler.createIdentity(`m${leaf}`)));
    }
  }
  const { welcome } = await creator.group.commit({ add: keyPackages });
  await creator.group.mergePendingCommit();
  filler.free();
  for (const member of members) member.group = await member.client.joinFromWelcome(welcome!);
  for (const [i, member] of members.entries()) expect(member.group!.ownLeafIndex).toBe(REAL_LEAVES[i]);
  return { creator, members };
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The creator self-updates, everyone else processes it; all agree. */
async function selfUpdateRound(creator: Member, members: Member[]): Promise<void> {
  const { commit } = await creator.group!.selfUpdate();
  await creator.group!.mergePendingCommit();
  await deliverCommit(commit, members);
  expectInSync([creator, ...members]);
}

describe('path encryptions on worker threads', () => {
  let creator: Member;
  let members: Member[];

  beforeAll(async () => {
    await init();
    expect(curveBackend()).toBe('native');
    ({ creator, members } = await bigGroup());
  }, 120_000);

  afterAll(() => {
    delete process.env.PAIRED_MLS_TEST_POOL_FAULT;
    setThreads(0);
  });

  it('a threaded self-update is processed by members at every position; so is a single-thread one', async () => {
    expect(setThreads(2)).toBe(2);
    expect(threadCount()).toBe(2);
    // Until the workers (started by the first large batch) made a share.
    for (let round = 0; round < 6 && (threadStats()?.workerEncaps ?? 0) === 0; round++) {
      await selfUpdateRound(creator, members);
      await pause(100);
    }
    const stats = threadStats()!;
    expect(stats.workerEncaps).toBeGreaterThan(0);
    expect(stats.workerEncaps + stats.callingThreadEncaps).toBe(stats.pooledBatches * (SIZE - 1));
    expect(stats.stalls).toBe(0);
    expect(stats.redoneChunks).toBe(0);
    // A member commits on the pool too (its path: the other SIZE - 1 leaves).
    const [first, ...others] = members;
    const { commit } = await first!.group!.selfUpdate();
    await first!.group!.mergePendingCommit();
    await deliverCommit(commit, [creator, ...others]);
    expectInSync([creator, ...members]);
    expect(threadStats()!.pooledBatches).toBe(stats.pooledBatches + 1);

    expect(setThreads(0)).toBe(0);
    expect(threadStats()).toBeUndefined();
    await selfUpdateRound(creator, members);
  }, 120_000);

  it('small batches stay on the calling thread', async () => {
    setThreads(2);
    const small = await newMember('small');
    small.group = await small.client.createGroup(small.identity);
    const peer = await newMember('peer');
    const { welcome } = await small.group.commit({ add: [await peer.client.createKeyPackage(peer.identity)] });
    await small.group.mergePendingCommit();
    peer.group = await peer.client.joinFromWelcome(welcome!);
    await selfUpdateRound(small, [peer]);
    expect(threadStats()).toMatchObject({ pooledBatches: 0, running: 0 });
    setThreads(0);
  }, 60_000);

  it('workers that throw: their chunks are redone on the calling thread, same commit semantics', async () => {
    process.env.PAIRED_MLS_TEST_POOL_FAULT = 'throw';
    setThreads(2);
    // Workers start with the first large batch, which the calling thread
    // may finish alone: commit until they have claimed (and failed) chunks.
    for (let round = 0; round < 6 && threadStats()!.redoneChunks === 0; round++) {
      await selfUpdateRound(creator, members);
      await pause(100);
    }
    const stats = threadStats()!;
    expect(stats.redoneChunks).toBeGreaterThan(0);
    expect(stats.workerEncaps).toBe(0);
    expect(stats.callingThreadEncaps).toBe(stats.pooledBatches * (SIZE - 1));
    expect(stats.stalls).toBe(0);
    delete process.env.PAIRED_MLS_TEST_POOL_FAULT;
    setThreads(0);
  }, 60_000);

  it('a worker that hangs is given up after a stall: the calling thread finishes, the pool is replaced', async () => {
    process.env.PAIRED_MLS_TEST_POOL_FAULT = 'hang';
    setThreads(1);
    let stalled = 0;
    for (let round = 0; round < 6 && threadStats()!.stalls === 0; round++) {
      const started = performance.now();
      await selfUpdateRound(creator, members);
      if (threadStats()!.stalls > 0) stalled = performance.now() - started;
      await pause(100);
    }
    expect(threadStats()).toMatchObject({ stalls: 1, running: 0 });
    // The calling thread waited STALL_MS (1 s) for the hung chunk, then finished the batch.
    expect(stalled).toBeGreaterThanOrEqual(950);
    // The next large commits start a healthy pool (the fault is gone).
    delete process.env.PAIRED_MLS_TEST_POOL_FAULT;
    const workerEncaps = threadStats()!.workerEncaps;
    for (let round = 0; round < 6 && threadStats()!.workerEncaps === workerEncaps; round++) {
      await selfUpdateRound(creator, members);
      await pause(100);
    }
    expect(threadStats()).toMatchObject({ stalls: 1, running: 1 });
    expect(threadStats()!.workerEncaps).toBeGreaterThan(workerEncaps);
    setThreads(0);
  }, 60_000);

  it('ts-mls (an independent implementation) processes a commit whose Encaps the pool made', async () => {
    const creator = await PairedActor.create('p-creator');
    await creator.createGroup();
    const ts = await TsActor.create('t-member');
    const filler = await MlsClient.open();
    const keyPackages = [await ts.keyPackage()];
    for (let leaf = 2; leaf < 200; leaf++) keyPackages.push(await filler.createKeyPackage(await filler.createIdentity(`f${leaf}`)));
    await ts.join((await commitAll(creator, { add: keyPackages }, [creator]))!);
    filler.free();
    setThreads(1);
    for (let round = 0; round < 6 && (threadStats()?.workerEncaps ?? 0) === 0; round++) {
      await commitAll(creator, { update: true }, [creator, ts]);
      await expectAgree([creator, ts]);
      await pause(100);
    }
    expect(threadStats()!.workerEncaps).toBeGreaterThan(0);
    setThreads(0);
  }, 120_000);

  it('refuses a thread count that is not a whole number from 0 to 64', () => {
    for (const bad of [-1, 1.5, 65, Number.NaN]) {
      let error: unknown;
      try {
        setThreads(bad);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(MlsError);
      expect((error as MlsError).code).toBe('INVALID_ARGUMENT');
    }
    expect(threadCount()).toBe(0);
  });
});
