/**
 * Fifth attacker review of ts/resilience (docs/PROTOCOL.md §7): the
 * per-commit optimistic windows and the recovery refusal while one is open
 * (review 4). "limit": a documented limit, pinned.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, utf8 } from 'paired-mls';
import { ForkResolver, acceptRecoveryPsks, commitRank, issueRecoveryPsk, recoverMembership, type ForkEvent } from 'paired-mls/resilience';
import { copiesAround, forkWorld } from './resilience-helpers.js';
import { deliverCommit, expectInSync, mlsError, newMember, stillWorks, type Member } from './helpers.js';

const types = (events: ForkEvent[]) => events.map((e) => e.type);

describe('resilience review 5: limits of the per-commit windows', () => {
  it('limit: a member that commits 8 times on top of a commit within the window closes its window early where the 8 arrive first; members that saw the same two candidates within windowMs split', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'mallory']);
    const [alice, bob, carol, mallory] = members as [Member, Member, Member, Member];
    const clock = 0;
    const resolver = (m: Member) => new ForkResolver(m.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    const epoch = alice.group!.epoch;
    // Mallory's commit and Carol's for one epoch; Carol's ranks lower (wins).
    let x: Uint8Array, y: Uint8Array;
    for (;;) {
      x = (await mallory.group!.commit({ selfUpdate: true })).commit;
      y = (await carol.group!.commit({ selfUpdate: true })).commit;
      if ((await commitRank(y)) < (await commitRank(x))) break;
      await mallory.group!.clearPendingCommit();
      await carol.group!.clearPendingCommit();
    }
    await carol.group!.mergePendingCommit();
    const atMallory = resolver(mallory);
    await mallory.group!.mergePendingCommit();
    // Mallory at once commits 8 times on top of hers.
    const flood: Uint8Array[] = [];
    for (let i = 0; i < 8; i++) flood.push((await atMallory.commit({ selfUpdate: true })).commit);
    // Alice gets Mallory's commit and her 8, then Carol's: all at time 0, within her window.
    const atAlice = resolver(alice);
    for (const c of [x, ...flood]) expect(types(await atAlice.receive(c))).toEqual(['processed']);
    expect(atAlice.retainedStates()).toBe(8);
    expect(await atAlice.receive(y)).toEqual([{ type: 'dropped', reason: 'late' }]);
    // Bob gets Mallory's commit, then Carol's, then the 8.
    const atBob = resolver(bob);
    expect(types(await atBob.receive(x))).toEqual(['processed']);
    expect(types(await atBob.receive(y))).toEqual(['switched']);
    const refused = await mlsError(() => atBob.receive(flood[0]!));
    expect(refused.code).toBe('DECRYPTION_FAILED');
    // Alice is 9 epochs on Mallory's branch, Bob on Carol's.
    expect([alice.group!.epoch, bob.group!.epoch, carol.group!.epoch]).toEqual([epoch + 9, epoch + 1, epoch + 1]);
    expectInSync([bob, carol]);
    expectInSync([alice, mallory]);
  });

  it('a member that commits more often than windowMs keeps a window open at every optimistic member; recovery messages are still taken and proofs issued there', async () => {
    const members = await forkWorld(['alice', 'bob', 'mallory']);
    const [alice, bob, mallory] = members as [Member, Member, Member];
    let clock = 0;
    const atBob = new ForkResolver(bob.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    // Mallory self-updates every 600 ms: Bob's windows overlap, one is always open.
    for (let round = 0; round < 5; round++) {
      const { commit } = await mallory.group!.commit({ selfUpdate: true });
      await mallory.group!.mergePendingCommit();
      await deliverCommit(commit, [alice]);
      expect(types(await atBob.receive(commit))).toEqual(['processed']);
      expect(atBob.settledEpoch()).toBeLessThan(bob.group!.epoch);
      // Review 4 refused both while a window was open (INVALID_STATE), here for good: Alice's proof never reached Bob.
      const [read] = await atBob.receive((await issueRecoveryPsk(alice.group!, alice.identity)).registration);
      expect(read?.type === 'processed' && read.result.kind === 'application' && (await acceptRecoveryPsks(bob.group!, read.result))).toBe(true);
      const { registration } = await issueRecoveryPsk(bob.group!, bob.identity);
      const taken = await alice.group!.process(registration);
      expect(taken.kind === 'application' && (await acceptRecoveryPsks(alice.group!, taken))).toBe(true);
      clock += 600;
      await atBob.tick();
      expect(atBob.retainedStates()).toBe(1);
    }
    // One proof per leaf: Alice's and Bob's latest.
    const registry = Object.keys(JSON.parse(utf8(bob.client.groupRecord(bob.group!.id, 'paired-mls/recovery-psks')!)));
    expect(registry).toHaveLength(2);
    expectInSync(members);
    await stillWorks(members);
  });
});

describe('resilience review 5: a re-encoded commit brings its branch back', () => {
  it("a member whose own commit on top was dropped by a switch, when a lower copy of the first commit switches it back, is not left behind those that kept its commit", async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'mallory']);
    const [alice, bob, carol, mallory] = members as [Member, Member, Member, Member];
    const clock = 0;
    const resolver = (m: Member) => new ForkResolver(m.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    const epoch = alice.group!.epoch;
    const atCarol = resolver(carol);
    const y = (await atCarol.commit({ selfUpdate: true })).commit;
    const rankY = await commitRank(y);
    // Mallory's commit without a path in two encodings, one ranked below Carol's and one above (review 4).
    const [low, high] = await copiesAround(mallory, rankY);
    await mallory.group!.mergePendingCommit();
    // Alice applies the high copy and commits on top; Bob applies the low copy and Alice's commit.
    const [atAlice, atBob] = [resolver(alice), resolver(bob)];
    expect(types(await atAlice.receive(high))).toEqual(['processed']);
    const onTop = (await atAlice.commit({ selfUpdate: true })).commit;
    expect(types(await atBob.receive(low))).toEqual(['processed']);
    expect(types(await atBob.receive(onTop))).toEqual(['processed']);
    // Alice gets Carol's commit (she switches, her commit dropped), then the
    // low copy: back to Mallory's content, and to her own state there with
    // her commit on top, which the others kept. Before, she applied the low
    // copy afresh and could not take her own commit when it came back
    // (INVALID_COMMIT "The Commit was created by this client but does not
    // match the pending commit"): she stayed an epoch behind the others.
    const sent = await atAlice.encrypt('on the branch that loses');
    expect(await atAlice.receive(y)).toEqual([
      { type: 'switched', epoch, winner: rankY, ownCommitLost: false, unread: 1 },
      { type: 'lostRace', epoch: epoch + 1 },
    ]);
    expect(atAlice.retainedStates()).toBe(3); // the window, and the branch left: its tip and the window on top
    expect(await atAlice.receive(low)).toEqual([
      { type: 'switched', epoch, winner: await commitRank(low), ownCommitLost: false, unread: 0 },
      { type: 'regained', epoch: epoch + 1 },
    ]);
    expect(atAlice.retainedStates()).toBe(3);
    for (const c of [y, high]) expect(await atBob.receive(c)).toEqual([{ type: 'dropped', reason: 'losing-commit' }]);
    expect(types(await atCarol.receive(low))).toEqual(['switched', 'lostRace']);
    expect(types(await atCarol.receive(onTop))).toEqual(['processed']);
    const r = await mallory.group!.process(onTop);
    if (r.kind === 'commit') await r.staged.merge();
    expect(await atAlice.receive(onTop)).toEqual([{ type: 'dropped', reason: 'duplicate' }]);
    // What Alice sent there is read again (her generations were not reused).
    const [read] = await atBob.receive(sent);
    expect(read?.type === 'processed' && read.result.kind === 'application' && utf8(read.result.data)).toBe('on the branch that loses');
    expect(alice.group!.epoch).toBe(epoch + 2);
    expectInSync(members);
    await stillWorks(members);
  });
});

describe('resilience review 5: the branches a switch leaves are bounded', () => {
  it('at most 8 states of branches left are kept; a branch whose states went is applied afresh (the limit), and members still agree', async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'dave', 'mallory']);
    const [alice, bob, carol, dave, mallory] = members as [Member, Member, Member, Member, Member];
    const clock = 0;
    const resolver = (m: Member) => new ForkResolver(m.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    const epoch = alice.group!.epoch;
    // Carol's commit ranks in the upper half, Dave's in the second quarter.
    const grind = async (m: Member, first: RegExp) => {
      for (;;) {
        const { commit } = await m.group!.commit({ selfUpdate: true });
        if (first.test(await commitRank(commit))) return commit;
        await m.group!.clearPendingCommit();
      }
    };
    const y = await grind(carol, /^[89ab]/);
    const z = await grind(dave, /^[4-7]/);
    // Mallory's commit without a path, in a copy ranked above Carol's and one below Dave's.
    const eve = await newMember('eve');
    const kp = await eve.client.createKeyPackage(eve.identity);
    let high: Uint8Array | undefined, low: Uint8Array | undefined;
    while (!high || !low) {
      await mallory.group!.clearPendingCommit();
      const copy = (await mallory.group!.commit({ add: [kp] })).commit;
      const rank = await commitRank(copy);
      if (/^[c-f]/.test(rank)) high ??= copy;
      if (/^[0-3]/.test(rank)) low ??= copy;
    }
    await mallory.group!.mergePendingCommit();
    // Alice applies the high copy and 7 commits of Bob's on top (8 windows), then Carol's, then Dave's.
    const [atAlice, atBob] = [resolver(alice), resolver(bob)];
    expect(types(await atAlice.receive(high))).toEqual(['processed']);
    expect(types(await atBob.receive(high))).toEqual(['processed']);
    for (let i = 0; i < 7; i++) expect(types(await atAlice.receive((await atBob.commit({ selfUpdate: true })).commit))).toEqual(['processed']);
    expect(atAlice.retainedStates()).toBe(8);
    expect(types(await atAlice.receive(y))).toEqual(['switched']);
    // The window, and the branch left: its tip and the 7 windows on top.
    expect(atAlice.retainedStates()).toBe(9);
    expect(types(await atAlice.receive(z))).toEqual(['switched']);
    // Carol's branch (1 state) made 9: the oldest branch, Mallory's, went.
    expect(atAlice.retainedStates()).toBe(2);
    // The low copy brings Mallory's content back, applied afresh: Alice is at its epoch, without Bob's 7.
    expect(await atAlice.receive(low)).toEqual([{ type: 'switched', epoch, winner: await commitRank(low), ownCommitLost: false, unread: 0 }]);
    expect([alice.group!.epoch, bob.group!.epoch]).toEqual([epoch + 1, epoch + 8]);
  });
});

describe('resilience review 5: a recovery competing in a window', () => {
  it("a recovery commit that wins against a commit applied first is checked against the registry of the kept epoch, not the one the branch left pruned", async () => {
    const members = await forkWorld(['alice', 'bob', 'carol', 'mallory', 'zed']);
    const [alice, bob, carol, mallory, zed] = members as [Member, Member, Member, Member, Member];
    const { record, registration } = await issueRecoveryPsk(zed.group!, zed.identity);
    for (const m of [alice, bob, carol, mallory]) {
      const r = await m.group!.process(registration);
      expect(r.kind === 'application' && (await acceptRecoveryPsks(m.group!, r))).toBe(true);
    }
    const epoch = alice.group!.epoch;
    // Zed lost his state and recovers from this epoch's GroupInfo; Mallory's commit for the same epoch removes his leaf and ranks above his.
    const groupInfo = await alice.group!.exportGroupInfo();
    const fresh = await MlsClient.open();
    const recovered = await recoverMembership(fresh, await fresh.createIdentity('zed', 1), groupInfo, record);
    const [join, removeOld] = recovered.commits as [Uint8Array, Uint8Array];
    let removal: Uint8Array;
    for (;;) {
      removal = (await mallory.group!.commit({ remove: [zed.group!.ownLeafIndex] })).commit;
      if ((await commitRank(removal)) > (await commitRank(join))) break;
      await mallory.group!.clearPendingCommit();
    }
    await mallory.group!.clearPendingCommit();
    // Alice (optimistic) applies Mallory's commit and takes Carol's registration on that branch: its pruning drops Zed's proof.
    const atAlice = new ForkResolver(alice.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    const atCarol = new ForkResolver(carol.group!, { strategy: 'optimistic', windowMs: 1000, now: () => 0 });
    for (const at of [atAlice, atCarol]) expect(types(await at.receive(removal))).toEqual(['processed']);
    expect(alice.group!.epoch).toBe(epoch + 1);
    const [read] = await atAlice.receive((await issueRecoveryPsk(carol.group!, carol.identity)).registration);
    expect(read?.type === 'processed' && read.result.kind === 'application' && (await acceptRecoveryPsks(alice.group!, read.result))).toBe(true);
    // Zed's recovery ranks lower: Alice switches to it. Before, it was checked with the pruned registry (PSK_NOT_FOUND) and Alice stayed on Mallory's branch.
    expect(types(await atAlice.receive(join))).toEqual(['switched']);
    expect(types(await atCarol.receive(join))).toEqual(['switched']);
    await deliverCommit(join, [bob, mallory]);
    for (const at of [atAlice, atCarol]) expect(types(await at.receive(removeOld))).toEqual(['processed']);
    await deliverCommit(removeOld, [bob, mallory]);
    await stillWorks([alice, bob, carol, mallory, { ...zed, client: fresh, group: recovered.group }]);
  });
});
