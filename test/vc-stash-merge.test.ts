/**
 * A staged sibling commit and the virtual-client operation tree
 * (crates/core/src/group.rs `process` / `mergeStagedCommit`,
 * docs/PROTOCOL.md §4.13). Processing a sibling's virtual-client commit
 * consumes one operation secret of the emulation epoch; storage is rolled
 * back and the punctured tree kept with the staged commit, to be written at
 * merge. A device that draws an operation secret of the same emulation
 * epoch itself in between (its own virtual-client commit, here in another
 * group) changed that tree: writing the staged tree back would undo its own
 * puncture, and its next commit would draw the consumed secret again. The
 * merge is refused instead (INVALID_STATE); the commit is processed again
 * and then merged onto the current tree.
 *
 * Raw Group API (registerEmulationEpoch, commit with vcEpochId, process
 * with vcDerivationInfo): Paired MLS itself processes and merges inside one
 * transaction and draws one emulation epoch per commit.
 */
import { describe, expect, it } from 'vitest';
import { mlsError } from './helpers.js';
import { follow, siblings, vcCommit } from './vc-siblings-helpers.js';

describe('merging a staged sibling commit after an own operation-secret draw', () => {
  it('refuses the merge (INVALID_STATE); processed again, the commit merges and no operation secret is drawn twice', async () => {
    const { epochId, gA, gB, hB, hA } = await siblings();
    // A's commit in g draws A's generation 0; B processes it and holds it staged.
    const c1 = await vcCommit(gA, epochId);
    const r1 = await gB.process(c1.commit, { vcDerivationInfo: c1.vcDerivationInfo });
    if (r1.kind !== 'commit') throw new Error(`expected a commit, got ${r1.kind}`);
    // Meanwhile B draws its own generation 0 in h; A follows it there.
    const c2 = await vcCommit(hB, epochId);
    await follow(hA, c2);
    const epochBefore = gB.epoch;

    // The staged tree predates B's own draw: merging it is refused, nothing changes.
    const refused = await mlsError(() => r1.staged.merge());
    expect(refused.code).toBe('INVALID_STATE');
    expect(refused.message).toMatch(/process/i);
    expect(gB.epoch).toBe(epochBefore);

    // Processed again, the commit merges onto the current tree.
    const r2 = await gB.process(c1.commit, { vcDerivationInfo: c1.vcDerivationInfo });
    if (r2.kind !== 'commit') throw new Error(`expected a commit, got ${r2.kind}`);
    await r2.staged.merge();
    expect(gB.epoch).toBe(epochBefore + 1);
    expect(gB.epochAuthenticator()).toEqual(gA.epochAuthenticator());

    // B's next commit in h draws generation 1, not 0 again: A follows it.
    const c3 = await vcCommit(hB, epochId);
    await follow(hA, c3);
    expect(hA.epochAuthenticator()).toEqual(hB.epochAuthenticator());
    // And A's next commit in g draws its generation 1, which B has not consumed.
    const c4 = await vcCommit(gA, epochId);
    await follow(gB, c4);
    expect(gB.epochAuthenticator()).toEqual(gA.epochAuthenticator());
  });

  it('two staged sibling commits of one emulation epoch: the second merge is refused, processed again it keeps both punctures', async () => {
    const { a, b, epochId, gA, gB } = await siblings();
    // A second group of A that B holds a sibling copy of.
    const kA = await a.client.createGroup(a.identity);
    const kB = await b.client.importSiblingGroupState(kA.id, a.client.exportSiblingGroupState(kA.id));
    // A draws generation 0 in g and 1 in k; B processes both before merging either.
    const c1 = await vcCommit(gA, epochId);
    const c2 = await vcCommit(kA, epochId);
    const r1 = await gB.process(c1.commit, { vcDerivationInfo: c1.vcDerivationInfo });
    const r2 = await kB.process(c2.commit, { vcDerivationInfo: c2.vcDerivationInfo });
    if (r1.kind !== 'commit' || r2.kind !== 'commit') throw new Error('expected two commits');
    await r1.staged.merge();
    // The second staged tree lacks the first puncture: refused.
    expect((await mlsError(() => r2.staged.merge())).code).toBe('INVALID_STATE');
    const again = await kB.process(c2.commit, { vcDerivationInfo: c2.vcDerivationInfo });
    if (again.kind !== 'commit') throw new Error(`expected a commit, got ${again.kind}`);
    await again.staged.merge();
    expect(kB.epochAuthenticator()).toEqual(kA.epochAuthenticator());
    // A's next draws (generations 2 and 3) are followed in both groups.
    await follow(gB, await vcCommit(gA, epochId));
    await follow(kB, await vcCommit(kA, epochId));
    expect(gB.epochAuthenticator()).toEqual(gA.epochAuthenticator());
    expect(kB.epochAuthenticator()).toEqual(kA.epochAuthenticator());
  });

  it('merges as before when nothing wrote the operation tree in between (other writes allowed)', async () => {
    const { epochId, gA, gB, hB, hA } = await siblings();
    const c1 = await vcCommit(gA, epochId);
    const r1 = await gB.process(c1.commit, { vcDerivationInfo: c1.vcDerivationInfo });
    if (r1.kind !== 'commit') throw new Error(`expected a commit, got ${r1.kind}`);
    // An ordinary commit of B in h writes storage, not the operation tree.
    await hB.commit({ selfUpdate: true });
    await hB.mergePendingCommit();
    await r1.staged.merge();
    expect(gB.epochAuthenticator()).toEqual(gA.epochAuthenticator());
    // B's puncture of A's generation 0 holds: A's commit drawing generation 1 is followed.
    const c2 = await vcCommit(gA, epochId);
    await follow(gB, c2);
    expect(gB.epochAuthenticator()).toEqual(gA.epochAuthenticator());
    void hA;
  });
});
