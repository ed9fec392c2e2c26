/**
 * Sixth attacker review of ts/resilience (docs/PROTOCOL.md §7): the
 * branches a switch keeps (review 5) and the recovery records that follow
 * a switch. "limit": a documented limit, pinned.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, utf8 } from 'paired-mls';
import { ForkResolver, acceptRecoveryPsks, commitRank, expectRecoveryTransfer, recoverMembership, recoveryPolicy, transferRecoveryPsks, type ForkEvent } from 'paired-mls/resilience';
import { copiesAround, forkWorld, proofAndNewcomer } from './resilience-helpers.js';
import { deliverCommit, expectInSync, mlsError, stillWorks, type Member } from './helpers.js';

const types = (events: ForkEvent[]) => events.map((e) => e.type);

/** A self-update of `m` (pending), ranked in the range `first` matches. */
async function grind(m: Member, first: RegExp): Promise<Uint8Array> {
  for (;;) {
    const { commit } = await m.group!.commit({ selfUpdate: true });
    if (first.test(await commitRank(commit))) return commit;
    await m.group!.clearPendingCommit();
  }
}

describe('resilience review 6: branches kept inside a branch left', () => {
  it('a switch in a lower window keeps the branches the windows on top had left: a lower copy of such a branch brings the member back to its own state there, its commit on top regained', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'dave', 'mallory']);
    const [alice, bob, carol, dave, mallory] = members as [Member, Member, Member, Member, Member];
    const clock = 0;
    const resolver = (m: Member) => new ForkResolver(m.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    const epoch = alice.group!.epoch;
    // Epoch e: Bob's commit, and Mallory's Add in a copy ranked below it and one above.
    const b = await grind(bob, /^[4-b]/);
    const [aLow, aHigh] = await copiesAround(mallory, await commitRank(b));
    await mallory.group!.mergePendingCommit();
    const r = await carol.group!.process(aHigh);
    if (r.kind === 'commit') await r.staged.merge();
    // Epoch e+1 on Mallory's branch: Carol's commit, and Mallory's second Add in a copy below it and one above.
    const y = await grind(carol, /^[4-b]/);
    const [xLow, xHigh] = await copiesAround(mallory, await commitRank(y));
    await mallory.group!.mergePendingCommit();
    // Alice applies both high copies and commits on top (e+3), and sends there.
    const atAlice = resolver(alice);
    expect(types(await atAlice.receive(aHigh))).toEqual(['processed']);
    expect(types(await atAlice.receive(xHigh))).toEqual(['processed']);
    const c = (await atAlice.commit({ selfUpdate: true })).commit;
    const sent = await atAlice.encrypt('sent on top');
    // Carol's commit wins at e+1 (Alice's dropped, kept in that window's branch left), then Bob's at e.
    expect(types(await atAlice.receive(y))).toEqual(['switched', 'lostRace']);
    expect(types(await atAlice.receive(b))).toEqual(['switched']);
    // The window at e; the branch left there: its tip, the window at e+1, and the branch that window had left (its tip and the window on top).
    expect(atAlice.retainedStates()).toBe(5);
    // The low copies bring Alice back to Mallory's branch, then to her own state on it with her commit on top.
    expect(types(await atAlice.receive(aLow))).toEqual(['switched']);
    expect(alice.group!.epoch).toBe(epoch + 2);
    // Before, the branch the window at e+1 had left was wiped by the switch at e: the low copy was applied afresh, Alice's commit gone.
    expect(await atAlice.receive(xLow)).toEqual([
      { type: 'switched', epoch: epoch + 1, winner: await commitRank(xLow), ownCommitLost: false, unread: 0 },
      { type: 'regained', epoch: epoch + 2 },
    ]);
    expect(alice.group!.epoch).toBe(epoch + 3);
    // Dave got the low copies and Alice's commit: the two agree, and her message there is read (no generation used twice).
    const atDave = resolver(dave);
    for (const m of [aLow, xLow, c]) expect(types(await atDave.receive(m))).toEqual(['processed']);
    expect(await atAlice.receive(c)).toEqual([{ type: 'dropped', reason: 'duplicate' }]);
    const [read] = await atDave.receive(sent);
    expect(read?.type === 'processed' && read.result.kind === 'application' && utf8(read.result.data)).toBe('sent on top');
    expectInSync([alice, dave]);
    await stillWorks([alice, dave]);
  });
});

describe('resilience review 6: the bound on branches left', () => {
  it('over 8 states, the branches kept inside a branch left go before that branch: the member still returns to its state on it', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'dave', 'mallory']);
    const [alice, bob, carol, dave, mallory] = members as [Member, Member, Member, Member, Member];
    const resolver = (m: Member) => new ForkResolver(m.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    const epoch = alice.group!.epoch;
    const y = await grind(carol, /^[4-b]/);
    const [low, high] = await copiesAround(mallory, await commitRank(y));
    await mallory.group!.mergePendingCommit();
    // Alice applies the high copy and 7 commits of Bob's on top (8 windows).
    const [atAlice, atBob, atDave] = [resolver(alice), resolver(bob), resolver(dave)];
    for (const at of [atAlice, atBob, atDave]) expect(types(await at.receive(high))).toEqual(['processed']);
    const onTop: Uint8Array[] = [];
    for (let i = 0; i < 6; i++) onTop.push((await atBob.commit({ selfUpdate: true })).commit);
    onTop.push(await grind(bob, /^[89a-f]/));
    for (const c of onTop) expect(types(await atAlice.receive(c))).toEqual(['processed']);
    // Dave's commit competes with Bob's 7th and ranks lower: Alice keeps Bob's 7th as a branch left (1 state).
    for (const c of onTop.slice(0, 6)) expect(types(await atDave.receive(c))).toEqual(['processed']);
    const z = await grind(dave, /^[0-7]/);
    expect(types(await atAlice.receive(z))).toEqual(['switched']);
    expect(atAlice.retainedStates()).toBe(9);
    // Carol's wins at e: the branch left holds its tip, the 7 windows and Bob's 7th kept in the last: 9 states. Bob's 7th goes, the branch stays.
    expect(types(await atAlice.receive(y))).toEqual(['switched']);
    expect(atAlice.retainedStates()).toBe(9);
    expect(types(await atAlice.receive(low))).toEqual(['switched']);
    // Back in her state on Mallory's branch, Dave's commit on top: before, the branch went whole and the low copy was applied afresh (epoch e+1).
    expect(alice.group!.epoch).toBe(epoch + 8);
    await dave.group!.mergePendingCommit();
    expectInSync([alice, dave]);
  });
});

describe('resilience review 6: a return to a kept branch reads nothing twice', () => {
  it('a message of the common epoch read on the winner is not readable again once a lower copy brings the kept branch back (a DS replaying it), nor one read before', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'dave', 'mallory'], { maxPastEpochs: 2 });
    const [alice, bob, carol, dave, mallory] = members as [Member, Member, Member, Member, Member];
    const resolver = (m: Member) => new ForkResolver(m.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    const text = (e: ForkEvent[]) => (e[0]?.type === 'processed' && e[0].result.kind === 'application' ? utf8(e[0].result.data) : undefined);
    // Dave sends twice in epoch e; Carol's commit and Mallory's Add (two copies around it) compete for e.
    const [m1, m2] = [await dave.group!.encrypt('first'), await dave.group!.encrypt('second')];
    const y = await grind(carol, /^[4-b]/);
    const [low, high] = await copiesAround(mallory, await commitRank(y));
    await mallory.group!.mergePendingCommit();
    const atAlice = resolver(alice);
    expect(types(await atAlice.receive(high))).toEqual(['processed']);
    expect(text(await atAlice.receive(m1))).toBe('first');
    const own = await atAlice.encrypt('from alice on the kept branch');
    expect(types(await atAlice.receive(y))).toEqual(['switched']);
    expect(text(await atAlice.receive(m2))).toBe('second');
    expect(types(await atAlice.receive(low))).toEqual(['switched']);
    // Back on Mallory's branch in the state Alice left: the DS replays both.
    for (const m of [m1, m2]) expect((await mlsError(() => atAlice.receive(m))).code).toBe('MESSAGE_REPLAYED');
    // Bob, on that branch, reads what Alice sent there before and after (no generation used twice).
    const again = await atAlice.encrypt('from alice, back');
    const atBob = resolver(bob);
    expect(types(await atBob.receive(low))).toEqual(['processed']);
    expect(text(await atBob.receive(own))).toBe('from alice on the kept branch');
    expect(text(await atBob.receive(again))).toBe('from alice, back');
    expectInSync([alice, bob, mallory]);
    await stillWorks([alice, bob, mallory]);
  });
});

describe('resilience review 6: a transfer of the common epoch survives a switch', () => {
  it('a new member that took its transfer (sent in the epoch both branches start from) on the branch that then loses still holds the proofs on the winner, and takes a recovery there', async () => {
    const { members, record, nina, add } = await proofAndNewcomer();
    const [alice, bob, carol, mallory, zed] = members as [Member, Member, Member, Member, Member];
    // Alice adds Nina, who expects Alice's transfer; Alice sends it in the new epoch e.
    const joined = await nina.client.joinFromWelcomeWithSender(add.welcome!, { maxPastEpochs: 2 });
    nina.group = joined.group;
    nina.group.useChecks([recoveryPolicy()]);
    await expectRecoveryTransfer(nina.group, joined.welcomeSender);
    const transfer = await transferRecoveryPsks(alice.group!);
    const epoch = nina.group.epoch;
    // Mallory's commit and Carol's for e; Carol's wins. The DS hands Nina Mallory's first, then the transfer, then Carol's.
    const y = await grind(carol, /^[0-7]/);
    const x = await grind(mallory, /^[89a-f]/);
    await carol.group!.mergePendingCommit();
    await deliverCommit(y, [alice, bob, zed]);
    const atNina = new ForkResolver(nina.group, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    expect(types(await atNina.receive(x))).toEqual(['processed']);
    const [read] = await atNina.receive(transfer);
    expect(read?.type === 'processed' && read.result.kind === 'application' && (await acceptRecoveryPsks(nina.group, read.result))).toBe(true);
    expect(await atNina.receive(y)).toEqual([{ type: 'switched', epoch, winner: await commitRank(y), ownCommitLost: false, unread: 0 }]);
    // The transfer is not readable again (engine change 28), so it must not be undone: its proofs were of epochs both branches share.
    expect((await mlsError(() => atNina.receive(transfer))).code).toBe('MESSAGE_REPLAYED');
    const registry = nina.client.groupRecord(nina.group.id, 'paired-mls/recovery-psks');
    expect(registry && Object.keys(JSON.parse(utf8(registry)))).toEqual([Buffer.from(record.pskId).toString('hex')]);
    // Zed lost his state and recovers on Carol's branch: Nina takes it as the others do. Before, the switch put back her empty registry (PSK_NOT_FOUND): she stayed behind.
    const fresh = await MlsClient.open();
    const recovered = await recoverMembership(fresh, await fresh.createIdentity('zed', 1), await carol.group!.exportGroupInfo(), record);
    for (const c of recovered.commits) {
      expect(types(await atNina.receive(c))).toEqual(['processed']);
      await deliverCommit(c, [alice, bob, carol]);
    }
    const honest = [alice, bob, carol, nina, { ...zed, client: fresh, group: recovered.group }];
    expectInSync(honest);
    await stillWorks(honest);
  });
});

describe('resilience review 6: limits', () => {
  it('limit: with past epochs kept, a committer whose lower-ranked commit for an epoch is more than the out-of-order tolerance older (handshake generations) than the one a member applied first splits it from members that got the lower one first', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'mallory'], { maxPastEpochs: 2 });
    const [alice, bob, carol, mallory] = members as [Member, Member, Member, Member];
    const resolver = (m: Member) => new ForkResolver(m.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    const epoch = alice.group!.epoch;
    // Mallory's low copy first, then 6 handshake generations, then the high copy.
    const y = await grind(carol, /^[4-b]/);
    const [low, high] = await copiesAround(mallory, await commitRank(y), { lowFirst: true, gap: 6 });
    const [atAlice, atBob] = [resolver(alice), resolver(bob)];
    // Alice: the high copy, Carol's, the low copy. The switch to Carol's carried Mallory's sender ratchet of the
    // kept epoch past the high copy (a message read is not readable again, engine change 28): the low copy is too old.
    expect(types(await atAlice.receive(high))).toEqual(['processed']);
    expect(types(await atAlice.receive(y))).toEqual(['switched']);
    const refused = await mlsError(() => atAlice.receive(low));
    expect([refused.code, refused.message]).toEqual(['MESSAGE_TOO_OLD', expect.stringContaining('Generation is too old')]);
    // Bob: the low copy first; the others rank behind it.
    expect(types(await atBob.receive(low))).toEqual(['processed']);
    for (const c of [y, high]) expect(types(await atBob.receive(c))).toEqual(['dropped']);
    expect([alice.group!.epoch, bob.group!.epoch]).toEqual([epoch + 1, epoch + 1]);
    expect(alice.group!.epochAuthenticator()).not.toEqual(bob.group!.epochAuthenticator());
  });
});
