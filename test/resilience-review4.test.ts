/**
 * Fourth attacker review of ts/resilience (docs/PROTOCOL.md §7): a DS or
 * an outsider on the network, a member acting beyond its rights, the
 * thief of a device's stored state. "held": a claim that held without a
 * change; "limit": a documented limit, pinned.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, utf8 } from 'paired-mls';
import {
  ForkResolver,
  RecoveryError,
  acceptRecoveryPsks,
  commitRank,
  expectRecoveryTransfer,
  issueRecoveryPsk,
  recoverMembership,
  recoveryPolicy,
  transferRecoveryPsks,
  type ForkEvent,
} from 'paired-mls/resilience';
import { copiesAround, forkWorld } from './resilience-helpers.js';
import { deliverCommit, expectInSync, mlsError, newMember, stillWorks, type Member } from './helpers.js';

const types = (events: ForkEvent[]) => events.map((e) => e.type);
const WRONG_EPOCH = { code: 'WRONG_EPOCH', message: "processing message: Message epoch differs from the group's epoch." };
const registryOf = (m: Member) => {
  const raw = m.client.groupRecord(m.group!.id, 'paired-mls/recovery-psks');
  return raw ? Object.keys(JSON.parse(utf8(raw))).sort() : [];
};

describe('resilience review 4: optimistic, one commit in two encodings', () => {
  it('members that saw the same candidates agree: a copy of the applied commit that ranks lower becomes the rank to beat', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'mallory']);
    const [alice, bob, carol, mallory] = members as [Member, Member, Member, Member];
    const epoch = alice.group!.epoch;
    const clock = 0;
    const resolver = (m: Member) => new ForkResolver(m.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    // Carol's honest commit for the epoch.
    const atCarol = resolver(carol);
    const y = (await atCarol.commit({ selfUpdate: true })).commit;
    // Mallory commits an Add without a path, clears it and commits it again:
    // the same content (the same epoch follows) encrypted under her next
    // generation, in other bytes. She tries until one copy ranks below
    // Carol's commit and the other above it.
    const [low, high] = await copiesAround(mallory, await commitRank(y));
    // Mallory's pending commit is one of the two copies: the group's winner is her content.
    await mallory.group!.mergePendingCommit();
    // Alice gets the high copy, then the low one, then Carol's; Bob the low copy first.
    const atAlice = resolver(alice);
    expect(types(await atAlice.receive(high))).toEqual(['processed']);
    expect(await atAlice.receive(low)).toEqual([{ type: 'dropped', reason: 'duplicate' }]);
    // Before: Alice kept the high copy's rank as the one to beat and switched to Carol's commit; Bob stayed.
    expect(await atAlice.receive(y)).toEqual([{ type: 'dropped', reason: 'losing-commit' }]);
    const atBob = resolver(bob);
    expect(types(await atBob.receive(low))).toEqual(['processed']);
    expect(await atBob.receive(high)).toEqual([{ type: 'dropped', reason: 'losing-commit' }]);
    expect(await atBob.receive(y)).toEqual([{ type: 'dropped', reason: 'losing-commit' }]);
    // Carol, whose commit lost, switches to Mallory's content and is told.
    expect(await atCarol.receive(high)).toEqual([{ type: 'dropped', reason: 'losing-commit' }]);
    expect(await atCarol.receive(low)).toEqual([
      { type: 'switched', epoch, winner: await commitRank(low), ownCommitLost: true, unread: 0 },
      { type: 'lostRace', epoch },
    ]);
    expectInSync(members);
    await stillWorks(members);
  });
});

/** The other valid ECDSA signature (s → n − s) of a P-256 external commit, re-encoded: the same content in other bytes, made by anyone. */
function negatedSignature(commit: Uint8Array): Uint8Array {
  const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
  // FramedContentAuthData ends the message (no membership tag from a new member): signature<V>, then the 32-byte confirmation tag.
  const end = commit.length - 33;
  const start = [...Array(80).keys()].map((i) => end - 80 + i).find((i) => commit[i] === 0x30 && i + 2 + commit[i + 1]! === end)!;
  const rLength = commit[start + 3]!;
  const r = commit.slice(start + 4, start + 4 + rLength);
  const s = commit.slice(start + 6 + rLength, end);
  const int = (x: bigint) => {
    const hex = x.toString(16).padStart(2 * Math.ceil(x.toString(16).length / 2), '0');
    const bytes = [...(hex.match(/../g) ?? [])].map((h) => parseInt(h, 16));
    return bytes[0]! & 0x80 ? [2, bytes.length + 1, 0, ...bytes] : [2, bytes.length, ...bytes];
  };
  const toInt = (b: Uint8Array) => BigInt(`0x${[...b].map((x) => x.toString(16).padStart(2, '0')).join('')}`);
  const der = [...int(toInt(r)), ...int(n - toInt(s))];
  return Uint8Array.from([...commit.slice(0, start - 2), 0x40, der.length + 2, 0x30, der.length, ...der, ...commit.slice(end)]);
}

describe('resilience review 4: an outsider re-encoding a commit', () => {
  it('held: a P-256 external commit with its signature negated (valid ECDSA, other bytes, another rank) does not process: the confirmation tag covers the signature', async () => {
    const alice = await newMember('alice', { ciphersuite: 2 });
    const bob = await newMember('bob', { ciphersuite: 2 });
    alice.group = await alice.client.createGroup(alice.identity);
    const { commit } = await bob.client.joinExternal(await alice.group.exportGroupInfo(), bob.identity);
    const copy = negatedSignature(commit);
    expect(await commitRank(copy)).not.toBe(await commitRank(commit));
    const atAlice = new ForkResolver(alice.group, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    const err = await mlsError(() => atAlice.receive(copy));
    expect({ code: err.code, message: err.message }).toEqual({ code: 'INVALID_COMMIT', message: 'processing message: The confirmation tag is invalid.' });
    expect(atAlice.retainedStates()).toBe(0);
    expect(types(await atAlice.receive(commit))).toEqual(['processed']);
    bob.group = bob.client.group(alice.group.id);
    await stillWorks([alice, bob]);
  });
});

describe('resilience review 4: recovery messages in an optimistic window', () => {
  it("a registration read on a branch that then loses cannot prune the others' proofs: a switch puts the registry back as the window found it, and the member's recovery is taken everywhere", async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'dave', 'mallory', 'zed']);
    const [alice, bob, carol, dave, mallory, zed] = members as [Member, Member, Member, Member, Member, Member];
    const { record, registration } = await issueRecoveryPsk(zed.group!, zed.identity);
    for (const m of [alice, bob, carol, dave, mallory]) {
      const r = await m.group!.process(registration);
      expect(r.kind === 'application' && (await acceptRecoveryPsks(m.group!, r))).toBe(true);
    }
    // Mallory's commit removes Zed, Carol's updates; Carol's ranks lower (wins).
    let removal: Uint8Array, update: Uint8Array;
    for (;;) {
      removal = (await mallory.group!.commit({ remove: [zed.group!.ownLeafIndex] })).commit;
      update = (await carol.group!.commit({ selfUpdate: true })).commit;
      if ((await commitRank(update)) < (await commitRank(removal))) break;
      await mallory.group!.clearPendingCommit();
      await carol.group!.clearPendingCommit();
    }
    await carol.group!.mergePendingCommit();
    await mallory.group!.mergePendingCommit();
    // Bob (optimistic) applies Mallory's commit first, issues and reads her
    // registration on that branch: the pruning drops Zed's proof there.
    // Before review 4 the switch to Carol's commit did not bring it back;
    // review 4 refused recovery messages while the window was open.
    let clock = 0;
    const atBob = new ForkResolver(bob.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    const before = registryOf(bob);
    await atBob.receive(removal);
    await issueRecoveryPsk(bob.group!, bob.identity);
    const { registration: hers } = await issueRecoveryPsk(mallory.group!, mallory.identity);
    const [read] = await atBob.receive(hers);
    const result = read?.type === 'processed' && read.result.kind === 'application' ? read.result : undefined;
    expect(await acceptRecoveryPsks(bob.group!, result!)).toBe(true);
    expect(registryOf(bob)).toHaveLength(2);
    expect(registryOf(bob)).not.toContain(before[0]);
    expect(types(await atBob.receive(update))).toEqual(['switched']);
    expect(registryOf(bob)).toEqual(before);
    // Handed in again on the winning branch, Mallory's registration is refused; she issues again.
    clock += 1001;
    await atBob.tick();
    const forged = await mlsError(() => acceptRecoveryPsks(bob.group!, result!));
    expect({ code: forged.code, message: forged.message, reason: (forged as RecoveryError).reason }).toEqual({
      code: 'INVALID_MESSAGE',
      message: 'recovery refused (forged-registration)',
      reason: 'forged-registration',
    });
    await deliverCommit(update, [alice, dave, zed]); // Mallory, on her own branch, rejoins (§7.2)
    // Zed recovers from a fresh client with his record: every member of the winning branch takes it.
    const fresh = await MlsClient.open();
    const { group, commits } = await recoverMembership(fresh, await fresh.createIdentity('zed', 1), await alice.group!.exportGroupInfo(), record);
    for (const c of commits) await deliverCommit(c, [alice, bob, carol, dave]);
    await stillWorks([alice, bob, carol, dave, { ...zed, client: fresh, group }]);
  });

  it('a transfer taken on a branch that then loses is undone by the switch (the expectation back), and taken again on the winning one', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol']);
    const [alice, bob, carol] = members as [Member, Member, Member];
    const { registration } = await issueRecoveryPsk(bob.group!, bob.identity);
    for (const m of [alice, carol]) {
      const r = await m.group!.process(registration);
      expect(r.kind === 'application' && (await acceptRecoveryPsks(m.group!, r))).toBe(true);
    }
    const dave = await newMember('dave');
    const add = await alice.group!.commit({ add: [await dave.client.createKeyPackage(dave.identity)] });
    await alice.group!.mergePendingCommit();
    await deliverCommit(add.commit, [bob, carol]);
    const joined = await dave.client.joinFromWelcomeWithSender(add.welcome!);
    dave.group = joined.group;
    dave.group.useChecks([recoveryPolicy()]);
    await expectRecoveryTransfer(dave.group, joined.welcomeSender);
    // Bob and Carol commit for one epoch; Carol's ranks lower (wins). Bob's updates his leaf: his proof is dead on his branch only.
    let losing: Uint8Array, winning: Uint8Array;
    for (;;) {
      losing = (await bob.group!.commit({ selfUpdate: true })).commit;
      winning = (await carol.group!.commit({ selfUpdate: true })).commit;
      if ((await commitRank(winning)) < (await commitRank(losing))) break;
      await bob.group!.clearPendingCommit();
      await carol.group!.clearPendingCommit();
    }
    await bob.group!.clearPendingCommit();
    await carol.group!.mergePendingCommit();
    await deliverCommit(winning, [bob]);
    // Alice and Dave (optimistic) apply Bob's first; Alice's transfer sent there is empty, and Dave takes it.
    const resolver = (m: Member) => new ForkResolver(m.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    const [atAlice, atDave] = [resolver(alice), resolver(dave)];
    for (const at of [atAlice, atDave]) expect(types(await at.receive(losing))).toEqual(['processed']);
    const [empty] = await atDave.receive(await transferRecoveryPsks(alice.group!));
    // Review 4 refused it here (INVALID_STATE) while the window was open; before that, the switch left the expectation spent.
    expect(empty?.type === 'processed' && empty.result.kind === 'application' && (await acceptRecoveryPsks(dave.group!, empty.result))).toBe(true);
    expect(registryOf(dave)).toEqual([]);
    // The switch puts the expectation back: Alice's transfer on the winning branch, with Bob's proof, is taken.
    for (const at of [atAlice, atDave]) expect(types(await at.receive(winning))).toEqual(['switched']);
    const [full] = await atDave.receive(await transferRecoveryPsks(alice.group!));
    expect(full?.type === 'processed' && full.result.kind === 'application' && (await acceptRecoveryPsks(dave.group!, full.result))).toBe(true);
    expect(registryOf(dave)).toHaveLength(1);
    await stillWorks([alice, bob, carol, dave]);
  });
});

describe('resilience review 4: the thief of the lost state and the recoverer', () => {
  it("limit: a copy of the lost state that still follows the group forks it with a member of its own; a DS handing the recoverer that fork's GroupInfo gets it to recover there, where the thief reads it", async () => {
    const members = await forkWorld(['alice', 'bob', 'zed']);
    const [alice, bob, zed] = members as [Member, Member, Member];
    const { record, registration } = await issueRecoveryPsk(zed.group!, zed.identity);
    for (const m of [alice, bob]) {
      const r = await m.group!.process(registration);
      expect(r.kind === 'application' && (await acceptRecoveryPsks(m.group!, r))).toBe(true);
    }
    // The thief copies Zed's storage; Zed then loses his state (his record is in his backup).
    const thief = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(zed.client.storage) });
    const forked = thief.group(zed.group!.id);
    // It adds a member of its own, as Zed's unchanged leaf, and sends the commit nowhere.
    const eve = await newMember('eve');
    const add = await forked.commit({ add: [await eve.client.createKeyPackage(eve.identity)] });
    await forked.mergePendingCommit();
    const joined = await eve.client.joinFromWelcomeWithSender(add.welcome!);
    eve.group = joined.group;
    // Zed's proof is in the copy's registry: Eve takes it from her adder.
    await expectRecoveryTransfer(eve.group, joined.welcomeSender);
    const transfer = await eve.group.process(await transferRecoveryPsks(forked));
    expect(transfer.kind === 'application' && (await acceptRecoveryPsks(eve.group, transfer))).toBe(true);
    // The DS hands the recoverer the fork's GroupInfo (signed by Eve: refusing Zed's own leaf as signer would not help).
    const fresh = await MlsClient.open();
    const { group, commits } = await recoverMembership(fresh, await fresh.createIdentity('zed', 1), await eve.group.exportGroupInfo(), record);
    expect(group.members().map((m) => utf8(m.credential.identity)).sort()).toEqual(['alice', 'bob', 'eve', 'zed']);
    for (const c of commits) {
      const r = await eve.group.process(c);
      if (r.kind === 'commit') await r.staged.merge();
    }
    // Eve, "another member in the new epoch", reads the recoverer and is read.
    const secret = await group.encrypt('after my recovery');
    const read = await eve.group.process(secret);
    expect(read.kind === 'application' && utf8(read.data)).toBe('after my recovery');
    const hello = await group.process(await eve.group.encrypt('welcome back'));
    expect(hello.kind === 'application' && utf8(hello.data)).toBe('welcome back');
    // The real group refuses the fork's commits; the record recovers Zed there from a current GroupInfo.
    const refused = await mlsError(() => alice.group!.process(commits[0]!));
    expect({ code: refused.code, message: refused.message }).toEqual({ code: 'WRONG_EPOCH', message: "processing message: Message epoch differs from the group's epoch." });
    const again = await MlsClient.open();
    const back = await recoverMembership(again, await again.createIdentity('zed', 1), await alice.group!.exportGroupInfo(), record);
    for (const c of back.commits) await deliverCommit(c, [alice, bob]);
    await stillWorks([alice, bob, { ...zed, client: again, group: back.group }]);
  });
});

describe('resilience review 4: hold windows and application messages', () => {
  for (const maxPastEpochs of [0, 1]) {
    it(`limit: a message sent in a window that settled elsewhere first is read only with a past epoch kept (maxPastEpochs ${maxPastEpochs})`, async () => {
      const members = await forkWorld(['alice', 'bob', 'carol'], { maxPastEpochs });
      const [alice, bob, carol] = members as [Member, Member, Member];
      let clock = 0;
      const resolver = (m: Member) => new ForkResolver(m.group!, { strategy: 'hold', windowMs: 1000, now: () => clock });
      const [atAlice, atBob] = [resolver(alice), resolver(bob)];
      const { commit } = await carol.group!.commit({ selfUpdate: true });
      await carol.group!.mergePendingCommit();
      // The commit reaches Alice at 0 and Bob at 500; at 1200 Alice has settled, Bob not.
      expect(types(await atAlice.receive(commit))).toEqual(['candidate']);
      clock = 500;
      expect(types(await atBob.receive(commit))).toEqual(['candidate']);
      clock = 1200;
      expect(types(await atAlice.tick())).toEqual(['settled']);
      expect(await atBob.tick()).toEqual([]);
      const late = await atBob.encrypt('sent in the held epoch');
      if (maxPastEpochs === 0) {
        const err = await mlsError(() => atAlice.receive(late));
        expect({ code: err.code, message: err.message }).toEqual({ code: 'WRONG_EPOCH', message: 'message from an epoch whose secrets this member no longer has' });
      } else {
        const [read] = await atAlice.receive(late);
        expect(read?.type === 'processed' && read.result.kind === 'application' && utf8(read.result.data)).toBe('sent in the held epoch');
      }
      clock = 1600;
      expect(types(await atBob.tick())).toEqual(['settled']);
      expectInSync(members);
      await stillWorks(members);
    });
  }
});

describe('resilience review 4: optimistic, a commit applied on top within the window', () => {
  it('members that saw both candidates within their windows agree, also those that applied (or made) a commit on top of the loser first', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'dave']);
    const [alice, bob, carol, dave] = members as [Member, Member, Member, Member];
    const clock = 0;
    const resolver = (m: Member) => new ForkResolver(m.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    const [atAlice, atBob, atCarol, atDave] = [resolver(alice), resolver(bob), resolver(carol), resolver(dave)];
    const epoch = alice.group!.epoch;
    const a = await atAlice.commit({ selfUpdate: true });
    const c = await atCarol.commit({ selfUpdate: true });
    const aWins = (await commitRank(a.commit)) < (await commitRank(c.commit));
    const [winner, loser] = aWins ? [a.commit, c.commit] : [c.commit, a.commit];
    const [atWinner, atLoser] = aWins ? [atAlice, atCarol] : [atCarol, atAlice];
    // Bob applies the loser and at once commits on top of it (an app that updates after every commit).
    await atBob.receive(loser);
    const onTop = await atBob.commit({ selfUpdate: true });
    const sent = await atBob.encrypt('on the branch that loses');
    // Dave gets the loser, Bob's commit on top, then the winner: all within his window.
    await atDave.receive(loser);
    expect(types(await atDave.receive(onTop.commit))).toEqual(['processed']);
    // Before: Bob's commit had closed the loser's window, the winner was late; Bob and Dave stayed on the other branch.
    expect(await atDave.receive(winner)).toEqual([{ type: 'switched', epoch, winner: await commitRank(winner), ownCommitLost: false, unread: 0 }]);
    expect(await atBob.receive(winner)).toEqual([
      { type: 'switched', epoch, winner: await commitRank(winner), ownCommitLost: false, unread: 1 },
      { type: 'lostRace', epoch: epoch + 1 },
    ]);
    // The window, and the branch left (its tip and the window on top), which a copy of the loser in other bytes would bring back (review 5).
    expect([atBob.retainedStates(), atDave.retainedStates()]).toEqual([3, 3]);
    expect(await atWinner.receive(loser)).toEqual([{ type: 'dropped', reason: 'losing-commit' }]);
    expect(types(await atLoser.receive(winner))).toEqual(['switched', 'lostRace']);
    // What Bob sent on the branch left does not decrypt on the winner's, his commit on top neither.
    const dropped = await mlsError(() => atDave.receive(onTop.commit));
    expect({ code: dropped.code, message: dropped.message }).toEqual({ code: 'DECRYPTION_FAILED', message: 'processing message: An error occurred during AEAD decryption.' });
    const unread = await mlsError(() => atDave.receive(sent));
    expect({ code: unread.code, message: unread.message }).toEqual(WRONG_EPOCH);
    expectInSync(members);
    await stillWorks(members);
  });

  it('at most 8 windows are kept: a ninth commit within the window closes the oldest early; with the default clock all close in time', async () => {
    const members = await forkWorld(['alice', 'bob']);
    const [alice, bob] = members as [Member, Member];
    const atAlice = new ForkResolver(alice.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    const atBob = new ForkResolver(bob.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    for (let i = 1; i <= 9; i++) {
      const { commit } = await atAlice.commit({ selfUpdate: true });
      expect(types(await atBob.receive(commit))).toEqual(['processed']);
      expect([atAlice.retainedStates(), atBob.retainedStates()]).toEqual([Math.min(i, 8), Math.min(i, 8)]);
    }
    // The default clock closes every window by its timer, also when nothing arrives.
    const timed = new ForkResolver(alice.group!, { strategy: 'optimistic', windowMs: 100 });
    for (let i = 0; i < 2; i++) await deliverCommit((await timed.commit({ selfUpdate: true })).commit, [bob]);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(timed.retainedStates()).toBe(0);
    expectInSync(members);
    await stillWorks(members);
  });
});
