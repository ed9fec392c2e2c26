/**
 * Why the recovery registry follows a fork switch (docs/PROTOCOL.md §7.2,
 * "Fork windows"): re-review 7 proposed a registry that is never rolled
 * back (every branch's proofs kept, the live-leaf check to make a proof of
 * a branch left harmless). It is not: a proof issued on a branch that loses
 * names a leaf the winner may hold unchanged, so the live-leaf check passes
 * on the winner, at the members that took it there only.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient } from 'paired-mls';
import { ForkResolver, acceptRecoveryPsks, issueRecoveryPsk, recoverMembership, recoveryPskId, type ForkEvent } from 'paired-mls/resilience';
import { forkWorld, rivals, winnerTakes } from './resilience-helpers.js';
import { deliverCommit, expectInSync, mlsError, stillWorks, type Member } from './helpers.js';

const types = (events: ForkEvent[]) => events.map((e) => e.type);
const PSK_NOT_FOUND = { code: 'PSK_NOT_FOUND', message: 'processing message: The PSK could not be found in the store.' };

describe('the recovery registry across a fork switch', () => {
  it("a proof issued on a branch that then loses is held by no member after the switch: a recovery with it is refused by every member of the winner alike (the group stays one), the proof before recovers", async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'dave', 'mallory']);
    const [alice, bob, carol, dave, mallory] = members as [Member, Member, Member, Member, Member];
    // Bob's proof of epoch e, registered everywhere (his record keeps it as "the one before").
    const before = await issueRecoveryPsk(bob.group!, bob.identity);
    for (const m of [alice, carol, dave, mallory]) {
      const r = await m.group!.process(before.registration);
      expect(r.kind === 'application' && (await acceptRecoveryPsks(m.group!, r))).toBe(true);
    }
    const epoch = alice.group!.epoch;
    // Carol's and Mallory's self-updates compete for e; neither changes Bob's leaf.
    const rival = await rivals(carol, mallory);
    await winnerTakes(rival, [dave, rival.loser]);
    // Alice and Bob (optimistic) apply the losing one first; Bob issues there, Alice takes it.
    const resolver = (m: Member) => new ForkResolver(m.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    const [atAlice, atBob] = [resolver(alice), resolver(bob)];
    for (const at of [atAlice, atBob]) expect(types(await at.receive(rival.high))).toEqual(['processed']);
    const onLoser = await issueRecoveryPsk(bob.group!, bob.identity);
    const [read] = await atAlice.receive(onLoser.registration);
    expect(read?.type === 'processed' && read.result.kind === 'application' && (await acceptRecoveryPsks(alice.group!, read.result))).toBe(true);
    for (const at of [atAlice, atBob]) expect(types(await at.receive(rival.low))).toEqual(['switched']);
    // On the winner Bob's leaf is as the proof names it, and a proof of epoch e+1 there has the same id, another value.
    const leaf = bob.group!.members().find((m) => m.leafIndex === bob.group!.ownLeafIndex)!;
    const sameId = recoveryPskId(bob.group!.id, leaf.credential.identity, epoch + 1, leaf.leafIndex, leaf.encryptionKey);
    expect(sameId).toEqual(onLoser.record.pskId);
    expect(bob.group!.exportSecret('paired-mls recovery', sameId, 32)).not.toEqual(onLoser.record.secret);
    // Bob loses his state before he issues again; his newest record is the one of the branch left.
    // A registry kept over branches would let Alice take this recovery while Carol, Dave and Mallory refuse it: the group split.
    const fresh = await MlsClient.open();
    const stale = await recoverMembership(fresh, await fresh.createIdentity('bob', 1), await carol.group!.exportGroupInfo(), onLoser.record);
    const refused = await mlsError(() => atAlice.receive(stale.commits[0]!));
    expect({ code: refused.code, message: refused.message }).toEqual(PSK_NOT_FOUND);
    for (const m of [carol, dave, mallory]) {
      const err = await mlsError(() => m.group!.process(stale.commits[0]!));
      expect({ code: err.code, message: err.message }).toEqual(PSK_NOT_FOUND);
    }
    // The proof before (epoch e, both branches') recovers him at every member.
    const again = await MlsClient.open();
    const back = await recoverMembership(again, await again.createIdentity('bob', 1), await carol.group!.exportGroupInfo(), before.record);
    for (const c of back.commits) {
      expect(types(await atAlice.receive(c))).toEqual(['processed']);
      await deliverCommit(c, [carol, dave, mallory]);
    }
    const honest = [alice, carol, dave, mallory, { ...bob, client: again, group: back.group }];
    expectInSync(honest);
    await stillWorks(honest);
  });
});
