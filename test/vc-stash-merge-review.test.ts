/**
 * Review of 0d29f4a (mergeStagedCommit writes the operation-tree stash back
 * only while the stashed keys hold `stash_base`): rolled-back transactions
 * (the TS layer reloads the core from the adapter: an ABA of the tree),
 * merges inside transactions, a refused merge followed by a reprocess,
 * and a reopen from storage after both punctures.
 * Helpers: test/vc-siblings-helpers.ts.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, type Group } from 'paired-mls';
import { mlsError } from './helpers.js';
import { follow, siblings, vcCommit } from './vc-siblings-helpers.js';

class Abort extends Error {}

describe('review: stash base across rollbacks, transactions and reopen', () => {
  it('ABA through a rolled-back transaction: the own draw is undone with it, the staged merge (in the reloaded core) is accepted and no secret is reused', async () => {
    const { b, epochId, gA, gB, hB, hA } = await siblings();
    const c1 = await vcCommit(gA, epochId);
    const r1 = await gB.process(c1.commit, { vcDerivationInfo: c1.vcDerivationInfo });
    if (r1.kind !== 'commit') throw new Error(`expected a commit, got ${r1.kind}`);
    const hEpoch = hB.epoch;
    // B draws its generation 0 in h inside a transaction that fails: the core is reloaded from the adapter.
    await expect(
      b.client.transaction(async () => {
        await vcCommit(hB, epochId);
        throw new Abort('abort');
      }),
    ).rejects.toBeInstanceOf(Abort);
    expect(hB.epoch).toBe(hEpoch);
    // The tree is back at the base (byte-equal): the merge is accepted, and the draw it "lost" was never persisted.
    await r1.staged.merge();
    expect(gB.epochAuthenticator()).toEqual(gA.epochAuthenticator());
    // B draws generation 0 in h for real: A (which never saw the aborted one) follows.
    await follow(hA, await vcCommit(hB, epochId));
    expect(hA.epochAuthenticator()).toEqual(hB.epochAuthenticator());
    // A's generation 1 in g: B's copy consumed 0 only.
    await follow(gB, await vcCommit(gA, epochId));
    expect(gB.epochAuthenticator()).toEqual(gA.epochAuthenticator());
  });

  it('a merge inside a transaction that fails is undone with it; the commit is processed again and merged once', async () => {
    const { b, epochId, gA, gB } = await siblings();
    const c1 = await vcCommit(gA, epochId);
    const epochBefore = gB.epoch;
    const r1 = await gB.process(c1.commit, { vcDerivationInfo: c1.vcDerivationInfo });
    if (r1.kind !== 'commit') throw new Error(`expected a commit, got ${r1.kind}`);
    await expect(
      b.client.transaction(async () => {
        await r1.staged.merge();
        expect(gB.epoch).toBe(epochBefore + 1);
        throw new Abort('abort');
      }),
    ).rejects.toBeInstanceOf(Abort);
    expect(gB.epoch).toBe(epochBefore);
    // The handle is freed by merge's finally.
    expect((await mlsError(() => r1.staged.merge())).code).toBe('RELEASED');
    const r2 = await gB.process(c1.commit, { vcDerivationInfo: c1.vcDerivationInfo });
    if (r2.kind !== 'commit') throw new Error(`expected a commit, got ${r2.kind}`);
    await r2.staged.merge();
    expect(gB.epochAuthenticator()).toEqual(gA.epochAuthenticator());
    await follow(gB, await vcCommit(gA, epochId));
    expect(gB.epochAuthenticator()).toEqual(gA.epochAuthenticator());
  });

  it('a refused merge inside a transaction writes nothing; the commit processed again in the same transaction merges, and the transaction commits', async () => {
    const { b, epochId, gA, gB, hB, hA } = await siblings();
    const c1 = await vcCommit(gA, epochId);
    const r1 = await gB.process(c1.commit, { vcDerivationInfo: c1.vcDerivationInfo });
    if (r1.kind !== 'commit') throw new Error(`expected a commit, got ${r1.kind}`);
    await follow(hA, await vcCommit(hB, epochId));
    const epochBefore = gB.epoch;
    await b.client.transaction(async () => {
      const refused = await mlsError(() => r1.staged.merge());
      expect(refused.code).toBe('INVALID_STATE');
      expect(gB.epoch).toBe(epochBefore);
      // Released by merge's finally: discard is a no-op, merge again RELEASED.
      r1.staged.discard();
      expect((await mlsError(() => r1.staged.merge())).code).toBe('RELEASED');
      const r2 = await gB.process(c1.commit, { vcDerivationInfo: c1.vcDerivationInfo });
      if (r2.kind !== 'commit') throw new Error(`expected a commit, got ${r2.kind}`);
      await r2.staged.merge();
    });
    expect(gB.epoch).toBe(epochBefore + 1);
    expect(gB.epochAuthenticator()).toEqual(gA.epochAuthenticator());
    await follow(hA, await vcCommit(hB, epochId));
    await follow(gB, await vcCommit(gA, epochId));
    expect(hA.epochAuthenticator()).toEqual(hB.epochAuthenticator());
    expect(gB.epochAuthenticator()).toEqual(gA.epochAuthenticator());
  });

  it('both punctures (own draw, then the reprocessed sibling commit) survive a reopen from storage', async () => {
    const storage = new MemoryStorageAdapter();
    const { b, epochId, gA, gB, hB, hA } = await siblings(storage);
    const c1 = await vcCommit(gA, epochId);
    const r1 = await gB.process(c1.commit, { vcDerivationInfo: c1.vcDerivationInfo });
    if (r1.kind !== 'commit') throw new Error(`expected a commit, got ${r1.kind}`);
    await follow(hA, await vcCommit(hB, epochId));
    expect((await mlsError(() => r1.staged.merge())).code).toBe('INVALID_STATE');
    const r2 = await gB.process(c1.commit, { vcDerivationInfo: c1.vcDerivationInfo });
    if (r2.kind !== 'commit') throw new Error(`expected a commit, got ${r2.kind}`);
    await r2.staged.merge();
    const gId = gB.id;
    const hId = hB.id;
    b.client.free();
    const reopened = await MlsClient.open({ storage });
    try {
      const gB2 = reopened.group(gId);
      const hB2 = reopened.group(hId);
      expect(gB2.epochAuthenticator()).toEqual(gA.epochAuthenticator());
      // B's next draw is generation 1 (0 is gone from the stored tree): A follows it.
      await follow(hA, await vcCommit(hB2, epochId));
      expect(hA.epochAuthenticator()).toEqual(hB2.epochAuthenticator());
      // A's generation 1 in g: the stored tree has A's 0 consumed, not 1.
      await follow(gB2, await vcCommit(gA, epochId));
      expect(gB2.epochAuthenticator()).toEqual(gA.epochAuthenticator());
      // Replaying A's generation-0 commit c1 to the reopened copy fails (consumed / old epoch).
      await mlsError(() => gB2.process(c1.commit, { vcDerivationInfo: c1.vcDerivationInfo }));
    } finally {
      reopened.free();
    }
  });

  it('a staged commit processed inside a rolled-back transaction, merged after the reload, still refuses when the own draw was persisted before', async () => {
    const { b, epochId, gA, gB, hB, hA } = await siblings();
    const c1 = await vcCommit(gA, epochId);
    let staged: Awaited<ReturnType<Group['process']>> | undefined;
    await expect(
      b.client.transaction(async () => {
        staged = await gB.process(c1.commit, { vcDerivationInfo: c1.vcDerivationInfo });
        // Something written inside, so the rollback reloads the core.
        await hB.commit({ selfUpdate: true });
        await hB.mergePendingCommit();
        throw new Abort('abort');
      }),
    ).rejects.toBeInstanceOf(Abort);
    if (staged?.kind !== 'commit') throw new Error('expected a commit');
    // Persisted own draw after the reload, then the old handle.
    await follow(hA, await vcCommit(hB, epochId));
    expect((await mlsError(() => staged!.kind === 'commit' && staged!.staged.merge())).code).toBe('INVALID_STATE');
    await follow(gB, c1);
    expect(gB.epochAuthenticator()).toEqual(gA.epochAuthenticator());
    await follow(hA, await vcCommit(hB, epochId));
    await follow(gB, await vcCommit(gA, epochId));
    expect(gB.epochAuthenticator()).toEqual(gA.epochAuthenticator());
  });
});
