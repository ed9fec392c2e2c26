/**
 * Eighth attacker review of ts/resilience (docs/PROTOCOL.md §7): the
 * transfer-taken record a fork switch compares with the one its window
 * kept (a take on the branch left is one since the branches parted).
 */
import { describe, expect, it } from 'vitest';
import { toHex, utf8 } from 'paired-mls';
import { ForkResolver, acceptRecoveryPsks, commitRank, expectRecoveryTransfer, issueRecoveryPsk, transferRecoveryPsks, type ForkEvent } from 'paired-mls/resilience';
import { forkWorld } from './resilience-helpers.js';
import { expectInSync, stillWorks, type Member } from './helpers.js';

const types = (events: ForkEvent[]) => events.map((e) => e.type);

describe('resilience review 8: the transfer-taken record', () => {
  it('two takes of messages of the same epoch are two takes: the second, made on the branch that then loses, stays taken (before, its record equalled the first one kept as the window opened: the expectation came back, the message unreadable again)', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'mallory', 'dave'], { maxPastEpochs: 1 });
    const [alice, bob, carol, mallory, dave] = members as [Member, Member, Member, Member, Member];
    const epoch = dave.group!.epoch;
    // Epoch e: Dave takes Alice's transfer, then expects one from Bob (still in e); Bob sends it in e.
    await issueRecoveryPsk(alice.group!, alice.identity);
    await expectRecoveryTransfer(dave.group!, alice.group!.ownLeafIndex);
    const first = await dave.group!.process(await transferRecoveryPsks(alice.group!));
    expect(first.kind === 'application' && (await acceptRecoveryPsks(dave.group!, first))).toBe(true);
    await expectRecoveryTransfer(dave.group!, bob.group!.ownLeafIndex);
    const { record } = await issueRecoveryPsk(bob.group!, bob.identity);
    const fromBob = await transferRecoveryPsks(bob.group!);
    // Carol's and Mallory's commits for e: Dave gets the losing one first, then Bob's transfer, then the winner.
    const c = (await carol.group!.commit({ selfUpdate: true })).commit;
    const m = (await mallory.group!.commit({ selfUpdate: true })).commit;
    const [low, high] = (await commitRank(c)) < (await commitRank(m)) ? [c, m] : [m, c];
    const [winner, loser] = low === c ? [carol, mallory] : [mallory, carol];
    await winner.group!.mergePendingCommit();
    await loser.group!.clearPendingCommit();
    for (const other of [alice, bob, loser]) {
      const r = await other.group!.process(low);
      if (r.kind === 'commit') await r.staged.merge();
    }
    const atDave = new ForkResolver(dave.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    expect(types(await atDave.receive(high))).toEqual(['processed']);
    const [read] = await atDave.receive(fromBob);
    expect(read?.type === 'processed' && read.result.kind === 'application' && (await acceptRecoveryPsks(dave.group!, read.result))).toBe(true);
    expect(types(await atDave.receive(low))).toEqual(['switched']);
    expect(dave.group!.epoch).toBe(epoch + 1);
    // Bob's transfer (of e, both branches') stays taken with Bob's proof; before, Dave expected it again and could not read it again.
    expect(dave.client.groupRecord(dave.group!.id, 'paired-mls/recovery-transfer')).toBeUndefined();
    const registry = dave.client.groupRecord(dave.group!.id, 'paired-mls/recovery-psks');
    expect(registry && Object.keys(JSON.parse(utf8(registry)))).toContain(toHex(record.pskId));
    expectInSync(members);
    await stillWorks(members);
  });
});
