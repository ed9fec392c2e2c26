/**
 * Fourth attacker review of ts/resilience (docs/PROTOCOL.md §7): a DS or
 * an outsider on the network, a member acting beyond its rights, the
 * thief of a device's stored state. "held": a claim that held without a
 * change; "limit": a documented limit, pinned.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, utf8 } from 'paired-mls';
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
import { forkWorld } from './resilience-helpers.js';
import { deliverCommit, expectInSync, mlsError, newMember, stillWorks, type Member } from './helpers.js';

const types = (events: ForkEvent[]) => events.map((e) => e.type);
const IN_WINDOW = { code: 'INVALID_STATE', message: 'a fork window is open on this group: hand recovery messages in (or issue) once it closes' };

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
    const eve = await newMember('eve');
    const kp = await eve.client.createKeyPackage(eve.identity);
    const rankY = await commitRank(y);
    let low: Uint8Array, high: Uint8Array;
    for (;;) {
      const first = (await mallory.group!.commit({ add: [kp] })).commit;
      await mallory.group!.clearPendingCommit();
      const second = (await mallory.group!.commit({ add: [kp] })).commit;
      const [a, b] = [await commitRank(first), await commitRank(second)];
      if (a < rankY !== b < rankY) {
        [low, high] = a < b ? [first, second] : [second, first];
        break;
      }
      await mallory.group!.clearPendingCommit();
    }
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

describe('resilience review 4: recovery messages in an optimistic window', () => {
  it("a registration read on a branch that then loses cannot prune the others' proofs: the layer refuses recovery messages while the window is open, and the member's recovery is taken everywhere", async () => {
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
    // Bob (optimistic) applies Mallory's commit first and reads her
    // registration on that branch. Before, the layer took it: the pruning
    // dropped Zed's proof, and the switch to Carol's commit did not bring it back.
    let clock = 0;
    const atBob = new ForkResolver(bob.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    await atBob.receive(removal);
    const issued = await mlsError(() => issueRecoveryPsk(bob.group!, bob.identity));
    expect({ code: issued.code, message: issued.message }).toEqual(IN_WINDOW);
    const { registration: hers } = await issueRecoveryPsk(mallory.group!, mallory.identity);
    const [read] = await atBob.receive(hers);
    const result = read?.type === 'processed' && read.result.kind === 'application' ? read.result : undefined;
    const refused = await mlsError(() => acceptRecoveryPsks(bob.group!, result!));
    expect({ name: refused.name, code: refused.code, message: refused.message }).toEqual({ name: 'MlsError', ...IN_WINDOW });
    expect(types(await atBob.receive(update))).toEqual(['switched']);
    // Once the window closed it is handed in again: of the losing branch, refused; Mallory issues again.
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

  it('a transfer the new member would take waits for the window too, and is taken once it closed', async () => {
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
    // Carol commits; Dave (optimistic) applies it, then Alice's transfer arrives.
    let clock = 0;
    const atDave = new ForkResolver(dave.group, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    const { commit } = await carol.group!.commit({ selfUpdate: true });
    await carol.group!.mergePendingCommit();
    await deliverCommit(commit, [alice, bob]);
    await atDave.receive(commit);
    const [read] = await atDave.receive(await transferRecoveryPsks(alice.group!));
    const transfer = read?.type === 'processed' && read.result.kind === 'application' ? read.result : undefined;
    const refused = await mlsError(() => acceptRecoveryPsks(dave.group!, transfer!));
    expect({ code: refused.code, message: refused.message }).toEqual(IN_WINDOW);
    // Another member ignores it, window or not.
    const atBob = new ForkResolver(bob.group!, { strategy: 'optimistic', windowMs: 1000, now: () => clock });
    const { commit: next } = await alice.group!.commit({ selfUpdate: true });
    await alice.group!.mergePendingCommit();
    await atBob.receive(next);
    expect(await acceptRecoveryPsks(bob.group!, transfer!)).toBe(true);
    clock += 1001;
    await atDave.tick();
    expect(await acceptRecoveryPsks(dave.group!, transfer!)).toBe(true);
    const registry = utf8(dave.client.groupRecord(dave.group.id, 'paired-mls/recovery-psks')!);
    expect(Object.keys(JSON.parse(registry))).toHaveLength(1);
    await deliverCommit(next, [carol, dave]);
    await stillWorks([alice, bob, carol, dave]);
  });
});
