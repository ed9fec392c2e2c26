/**
 * Attacker review of ts/resilience (docs/PROTOCOL.md §7): the fork resolver
 * (hold and optimistic strategies, the tie-break, retained group state) and
 * state-loss recovery (recovery PSK proofs, their registration and
 * hand-over, the rejoin, the acceptance check).
 *
 * Attackers:
 * - a hostile member: crafts registrations and transfers (application
 *   messages), commits, rejoins by external commit, races commits;
 * - a former member and the thief of a member's stored state (or of its
 *   recovery record), who want back in by the recovery path;
 * - an outsider who injects traffic through a DS that does not verify
 *   (junk with a commit's clear header);
 * - a hostile DS: duplicates, reorders, withholds, replays.
 *
 * Each test of a hole first ran as an attack that succeeded on the code
 * before the review; it now asserts the exact refusal (error class, code,
 * reason) and that the honest members keep working afterwards (commit,
 * send, read). What held without a change is pinned as well ("held": an
 * external commit removing other members; non-canonical copies of a
 * commit), and so is one documented limit ("limit": a proof is a secret
 * of the group).
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, fromHex, toHex, utf8, type Group } from 'paired-mls';
import {
  ForkResolver,
  RecoveryError,
  acceptRecoveryPsks,
  commitRank,
  expectRecoveryTransfer,
  issueRecoveryPsk,
  parseRecoveryPskId,
  recoverMembership,
  recoveryPolicy,
  recoveryPskId,
  transferRecoveryPsks,
  type ForkEvent,
  type RecoveryRecord,
} from 'paired-mls/resilience';
import { DeliveryService } from 'paired-mls/services';
import { Writer } from '../ts/codec/tls.js';
import { forkWorld } from './resilience-helpers.js';
import { deliverCommit, expectInSync, mlsError, newMember, stillWorks, type Member } from './helpers.js';

const LABEL = 'paired-mls recovery';
const enc = new TextEncoder();

const world = forkWorld;

/** Every member in `to` processes an application message and hands it to the recovery layer. */
async function deliverApp(message: Uint8Array, to: Member[]): Promise<void> {
  for (const m of to) {
    const r = await m.group!.process(message);
    if (r.kind !== 'application') throw new Error(`expected an application message, got ${r.kind}`);
    expect(await acceptRecoveryPsks(m.group!, r)).toBe(true);
  }
}

/** A recovery message in the wire format of docs/PROTOCOL.md §7.2 (kind 1 registration, 2 transfer), as an attacker builds it. */
function recoveryMessage(kind: 1 | 2, entries: { pskId: Uint8Array; secret: Uint8Array }[]): Uint8Array {
  return new Writer().u16(2).vector(enc.encode(LABEL)).u8(kind).list(entries, (w, e) => w.vector(e.pskId).vector(e.secret)).finish();
}

/** The leaf of `m` as the group sees it. */
function leafOf(m: Member): { leafIndex: number; encryptionKey: Uint8Array } {
  const own = m.group!.members().find((x) => x.leafIndex === m.group!.ownLeafIndex)!;
  return { leafIndex: own.leafIndex, encryptionKey: own.encryptionKey };
}

/** What `fn` threw, as class, code and reason (a RecoveryError is expected). */
async function recoveryRefusal(fn: () => Promise<unknown>): Promise<{ name: string; code: string; reason: string }> {
  const err = await mlsError(fn);
  expect(err).toBeInstanceOf(RecoveryError);
  return { name: err.name, code: err.code, reason: (err as RecoveryError).reason };
}

/** A stranger's external commit with the proof `record` (as an attacker makes it, without the honest helper's own checks). */
async function externalJoin(name: string, groupInfo: Uint8Array, record: { pskId: Uint8Array; secret: Uint8Array }): Promise<Uint8Array> {
  const client = await MlsClient.open();
  const identity = await client.createIdentity(name, 1);
  await client.psks.store(record.pskId, record.secret);
  return (await client.joinExternal(groupInfo, identity, { psks: [record.pskId] })).commit;
}

const names = (g: Group) => g.members().map((m) => utf8(m.credential.identity)).sort();


describe('resilience review: recovery proofs', () => {
  it('a member cannot register a proof for another member (it would rejoin as them and remove them)', async () => {
    const [alice, bob, carol, mallory] = (await world(['alice', 'bob', 'carol', 'mallory'])) as [Member, Member, Member, Member];
    const g = mallory.group!;
    // Mallory computes a well-formed proof for Alice's leaf: the id names
    // Alice, and the value is the genuine exporter value (any member of the
    // epoch can compute it). Before the review every member stored it, and
    // Mallory rejoined as "alice" with it and removed Alice's leaf.
    const forgedId = recoveryPskId(g.id, alice.identity.identity, g.epoch, leafOf(alice).leafIndex, leafOf(alice).encryptionKey);
    const forged = { pskId: forgedId, secret: g.exportSecret(LABEL, forgedId, 32) };
    const registration = await g.encrypt(recoveryMessage(1, [forged]));
    // Her own identity on Alice's leaf, or Alice's identity on her own leaf: the same.
    const onAliceLeaf = recoveryPskId(g.id, mallory.identity.identity, g.epoch, leafOf(alice).leafIndex, leafOf(alice).encryptionKey);
    const mixed = await g.encrypt(recoveryMessage(1, [{ pskId: onAliceLeaf, secret: g.exportSecret(LABEL, onAliceLeaf, 32) }]));
    // Her own proof with a value of her choosing.
    const ownId = recoveryPskId(g.id, mallory.identity.identity, g.epoch, leafOf(mallory).leafIndex, leafOf(mallory).encryptionKey);
    const chosen = await g.encrypt(recoveryMessage(1, [{ pskId: ownId, secret: new Uint8Array(32).fill(7) }]));
    for (const message of [registration, mixed, chosen]) {
      for (const m of [alice, bob, carol]) {
        const r = await m.group!.process(message);
        if (r.kind !== 'application') throw new Error('expected an application message');
        expect(await recoveryRefusal(() => acceptRecoveryPsks(m.group!, r))).toEqual({ name: 'RecoveryError', code: 'INVALID_MESSAGE', reason: 'forged-registration' });
      }
    }
    // The honest API refuses to issue for another identity, too.
    expect(await recoveryRefusal(() => issueRecoveryPsk(g, { ...mallory.identity, identity: alice.identity.identity }))).toEqual({
      name: 'RecoveryError',
      code: 'INVALID_COMMIT',
      reason: 'identity-mismatch',
    });
    // Mallory's rejoin as "alice": nobody stored the PSK, so it does not process.
    const rejoin = await externalJoin('alice', await bob.group!.exportGroupInfo(), forged);
    for (const m of [alice, bob, carol]) expect((await mlsError(() => m.group!.process(rejoin))).code).toBe('PSK_NOT_FOUND');
    expect(names(bob.group!)).toEqual(['alice', 'bob', 'carol', 'mallory']);
    // Alice's own proof still registers, and the honest members go on.
    const { registration: own } = await issueRecoveryPsk(alice.group!, alice.identity);
    await deliverApp(own, [bob, carol]);
    await stillWorks([alice, bob, carol]);
  });

  it('a removed member cannot rejoin with the proof it issued while a member', async () => {
    const [alice, bob, carol, mallory] = (await world(['alice', 'bob', 'carol', 'mallory'])) as [Member, Member, Member, Member];
    const { record, registration } = await issueRecoveryPsk(mallory.group!, mallory.identity);
    await deliverApp(registration, [alice, bob, carol]);
    const { commit } = await alice.group!.commit({ remove: [mallory.group!.ownLeafIndex] });
    await alice.group!.mergePendingCommit();
    await deliverCommit(commit, [bob, carol]);
    // Before the review the proof stayed good for ever: the removal was not final.
    const rejoin = await externalJoin('mallory', await bob.group!.exportGroupInfo(), record);
    for (const m of [alice, bob, carol]) {
      expect(await recoveryRefusal(() => m.group!.process(rejoin))).toEqual({ name: 'RecoveryError', code: 'INVALID_COMMIT', reason: 'stale-proof' });
    }
    // The honest helper refuses before sending anything.
    const fresh = await MlsClient.open();
    expect(await recoveryRefusal(async () => recoverMembership(fresh, await fresh.createIdentity('mallory', 1), await bob.group!.exportGroupInfo(), record))).toEqual({
      name: 'RecoveryError',
      code: 'INVALID_COMMIT',
      reason: 'stale-proof',
    });
    expect(names(bob.group!)).toEqual(['alice', 'bob', 'carol']);
    await stillWorks([alice, bob, carol]);
  });

  it('a proof is spent by the recovery that uses it: a stolen copy of the record cannot be replayed', async () => {
    const [alice, bob, carol] = (await world(['alice', 'bob', 'carol'])) as [Member, Member, Member];
    const { record, registration } = await issueRecoveryPsk(alice.group!, alice.identity);
    await deliverApp(registration, [bob, carol]);
    const stolenRecord: RecoveryRecord = { ...record, pskId: record.pskId.slice(), secret: record.secret.slice() };
    // Alice loses her state and recovers with her record.
    alice.client.free();
    const fresh = await MlsClient.open();
    const freshId = await fresh.createIdentity('alice', 1);
    const { group, commits } = await recoverMembership(fresh, freshId, await bob.group!.exportGroupInfo(), record);
    expect(commits).toHaveLength(2);
    for (const c of commits) await deliverCommit(c, [bob, carol]);
    const back: Member = { name: 'alice', client: fresh, identity: freshId, group };
    back.group!.useChecks([recoveryPolicy()]);
    // The thief of her backup replays the proof: the leaf it names is gone.
    // (Before the review it was accepted, and the helper removed every leaf
    // named "alice": the recovered Alice was thrown out.)
    const replay = await externalJoin('alice', await bob.group!.exportGroupInfo(), stolenRecord);
    for (const m of [bob, carol]) {
      expect(await recoveryRefusal(() => m.group!.process(replay))).toEqual({ name: 'RecoveryError', code: 'INVALID_COMMIT', reason: 'stale-proof' });
    }
    // The recovered Alice has no proofs yet (PSK_NOT_FOUND, which she may retry).
    expect((await mlsError(() => back.group!.process(replay))).code).toBe('PSK_NOT_FOUND');
    // She takes the group's proofs from a member she chose (Bob), and issues
    // a new one; the registries drop the spent proof with it.
    await expectRecoveryTransfer(group, bob.group!.ownLeafIndex);
    await deliverApp(await transferRecoveryPsks(bob.group!), [carol, back]);
    await deliverApp((await issueRecoveryPsk(group, freshId)).registration, [bob, carol]);
    for (const m of [back, bob, carol]) expect((await mlsError(() => m.group!.process(replay))).code).toBe('PSK_NOT_FOUND');
    expect(names(bob.group!)).toEqual(['alice', 'bob', 'carol']);
    await stillWorks([back, bob, carol]);
  });

  it("the thief of a member's stored state cannot rejoin with the proofs in it once that member updated", async () => {
    const [alice, bob, carol] = (await world(['alice', 'bob', 'carol'])) as [Member, Member, Member];
    const { registration } = await issueRecoveryPsk(alice.group!, alice.identity);
    await deliverApp(registration, [bob, carol]);
    // The thief copies Alice's storage: her group state and the registry of proofs.
    const copy = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(alice.client.storage) });
    const registry = JSON.parse(utf8(copy.groupRecord(alice.group!.id, 'paired-mls/recovery-psks')!)) as Record<string, string>;
    copy.free();
    const [[idHex, secretHex]] = Object.entries(registry) as [[string, string]];
    const stolen = { pskId: fromHex(idHex), secret: fromHex(secretHex) };
    expect(parseRecoveryPskId(stolen.pskId)?.leafIndex).toBe(alice.group!.ownLeafIndex);
    // Alice heals (a commit with a path): her leaf changes, and the proof with it.
    const { commit } = await alice.group!.selfUpdate();
    await alice.group!.mergePendingCommit();
    await deliverCommit(commit, [bob, carol]);
    // Before the review the thief rejoined as "alice" and removed her.
    const rejoin = await externalJoin('alice', await bob.group!.exportGroupInfo(), stolen);
    for (const m of [alice, bob, carol]) {
      expect(await recoveryRefusal(() => m.group!.process(rejoin))).toEqual({ name: 'RecoveryError', code: 'INVALID_COMMIT', reason: 'stale-proof' });
    }
    // Alice issues a new proof; it replaces the old one in every registry.
    const again = await issueRecoveryPsk(alice.group!, alice.identity);
    await deliverApp(again.registration, [bob, carol]);
    for (const m of [alice, bob, carol]) expect(Object.keys(JSON.parse(utf8(m.client.groupRecord(m.group!.id, 'paired-mls/recovery-psks')!)))).toEqual([toHex(again.record.pskId)]);
    await stillWorks([alice, bob, carol]);
  });

  it('limit, pinned: a proof is a secret of the group, so a member that received it can present it while the leaf is unchanged (an AS must refuse it the credential)', async () => {
    const [alice, bob, carol, mallory] = (await world(['alice', 'bob', 'carol', 'mallory'])) as [Member, Member, Member, Member];
    const { record, registration } = await issueRecoveryPsk(alice.group!, alice.identity);
    await deliverApp(registration, [bob, carol, mallory]);
    // Basic credentials, no AS: Mallory's external commit as "alice" with
    // Alice's proof passes the recovery check (docs/PROTOCOL.md §7.2, limits).
    const rejoin = await externalJoin('alice', await bob.group!.exportGroupInfo(), record);
    const r = await bob.group!.process(rejoin);
    expect(r.kind).toBe('commit');
    if (r.kind === 'commit') r.staged.discard();
    // Once Alice updates, the proof Mallory knows is stale.
    const { commit } = await alice.group!.selfUpdate();
    await alice.group!.mergePendingCommit();
    await deliverCommit(commit, [bob, carol, mallory]);
    const later = await externalJoin('alice', await bob.group!.exportGroupInfo(), record);
    expect(await recoveryRefusal(() => bob.group!.process(later))).toEqual({ name: 'RecoveryError', code: 'INVALID_COMMIT', reason: 'stale-proof' });
    await stillWorks([alice, bob, carol, mallory]);
  });

  it("held: an external commit with a valid proof cannot remove other members (the core's resync rule)", async () => {
    const [alice, bob, carol, mallory] = (await world(['alice', 'bob', 'carol', 'mallory'])) as [Member, Member, Member, Member];
    const { record, registration } = await issueRecoveryPsk(mallory.group!, mallory.identity);
    await deliverApp(registration, [alice, bob, carol]);
    const client = await MlsClient.open();
    // Under alice's name (a key of its own): the client refuses to build a Remove of a leaf of another
    // identity than the joiner's (INVALID_ARGUMENT, credential succession), so the attacker takes hers.
    const identity = await client.createIdentity(alice.identity.identity, 1);
    await client.psks.store(record.pskId, record.secret);
    const { commit } = await client.joinExternal(await carol.group!.exportGroupInfo(), identity, {
      psks: [record.pskId],
      remove: [alice.group!.ownLeafIndex],
    });
    for (const m of [alice, bob, carol]) {
      const err = await mlsError(() => m.group!.process(commit));
      expect({ name: err.name, code: err.code, message: err.message }).toEqual({
        name: 'MlsError',
        code: 'INVALID_COMMIT',
        message: "an external commit may only remove a leaf with the joiner's own signature key (resync)",
      });
    }
    await stillWorks([alice, bob, carol, mallory]);
  });

  it("the application's policy adds to the proof checks and cannot relax them", async () => {
    const [alice, bob, carol, mallory] = (await world(['alice', 'bob', 'carol', 'mallory'])) as [Member, Member, Member, Member];
    const { record, registration } = await issueRecoveryPsk(mallory.group!, mallory.identity);
    await deliverApp(registration, [alice, bob, carol]);
    // A permissive policy let anyone holding a proof in under any identity.
    const asEve = await externalJoin('eve', await bob.group!.exportGroupInfo(), record);
    expect(await recoveryRefusal(() => bob.group!.process(asEve, { checks: [recoveryPolicy(() => true)] }))).toEqual({
      name: 'RecoveryError',
      code: 'INVALID_COMMIT',
      reason: 'identity-mismatch',
    });
    // A policy that refuses is reported as such (the reason existed but was never raised).
    const honest = await externalJoin('mallory', await bob.group!.exportGroupInfo(), record);
    const seen: unknown[] = [];
    const refuse = recoveryPolicy((joiner, proof) => {
      seen.push({ joiner: utf8(joiner), identity: utf8(proof.identity), leafIndex: proof.leafIndex });
      return false;
    });
    expect(await recoveryRefusal(() => bob.group!.process(honest, { checks: [refuse] }))).toEqual({ name: 'RecoveryError', code: 'INVALID_COMMIT', reason: 'policy' });
    expect(seen).toEqual([{ joiner: 'mallory', identity: 'mallory', leafIndex: mallory.group!.ownLeafIndex }]);
    await stillWorks([alice, bob, carol, mallory]);
  });

  it('a transfer is taken only by a new member, from the member that added it: a forged one is ignored', async () => {
    const [alice, bob, carol, mallory] = (await world(['alice', 'bob', 'carol', 'mallory'])) as [Member, Member, Member, Member];
    const { record, registration } = await issueRecoveryPsk(carol.group!, carol.identity);
    await deliverApp(registration, [alice, bob, mallory]);
    // Alice adds Dave, who expects the group's proofs from her.
    const dave = await newMember('dave');
    const add = await alice.group!.commit({ add: [await dave.client.createKeyPackage(dave.identity)] });
    await alice.group!.mergePendingCommit();
    await deliverCommit(add.commit, [bob, carol, mallory]);
    const joined = await dave.client.joinFromWelcomeWithSender(add.welcome!);
    dave.group = joined.group;
    dave.group.useChecks([recoveryPolicy()]);
    await expectRecoveryTransfer(dave.group, joined.welcomeSender);
    // Mallory races Alice with a transfer of a proof for Alice's leaf, of a
    // value she chose. Before the review Dave (and everyone else) stored
    // it: Dave then took Mallory's rejoin as "alice", the others did not.
    const g = mallory.group!;
    const forgedId = recoveryPskId(g.id, alice.identity.identity, g.epoch, leafOf(alice).leafIndex, leafOf(alice).encryptionKey);
    const forged = { pskId: forgedId, secret: new Uint8Array(32).fill(9) };
    await deliverApp(await g.encrypt(recoveryMessage(2, [forged])), [alice, bob, carol, dave]);
    for (const m of [alice, bob, carol, dave]) {
      const registry = m.client.groupRecord(m.group!.id, 'paired-mls/recovery-psks');
      expect(registry ? utf8(registry) : '').not.toContain(toHex(forgedId));
    }
    // Alice's transfer: the others ignore it, Dave takes it (once).
    await deliverApp(await transferRecoveryPsks(alice.group!), [bob, carol, mallory, dave]);
    const rejoin = await externalJoin('alice', await bob.group!.exportGroupInfo(), forged);
    for (const m of [alice, bob, dave]) expect((await mlsError(() => m.group!.process(rejoin))).code).toBe('PSK_NOT_FOUND');
    // Carol's real proof works at Dave as at everyone else.
    carol.client.free();
    const fresh = await MlsClient.open();
    const freshId = await fresh.createIdentity('carol', 1);
    const { group, commits } = await recoverMembership(fresh, freshId, await alice.group!.exportGroupInfo(), record);
    for (const c of commits) await deliverCommit(c, [alice, bob, mallory, dave]);
    const back: Member = { name: 'carol', client: fresh, identity: freshId, group };
    expect(names(dave.group)).toEqual(['alice', 'bob', 'carol', 'dave', 'mallory']);
    await stillWorks([alice, bob, back, dave, mallory]);
  });

  it('a registration of another epoch cannot be checked and is refused; the issuer issues again', async () => {
    const [alice, bob, carol] = (await world(['alice', 'bob', 'carol'], { maxPastEpochs: 2 })) as [Member, Member, Member];
    const { registration } = await issueRecoveryPsk(alice.group!, alice.identity);
    // Bob commits before Carol reads the registration (she keeps past epochs, so it decrypts).
    const { commit } = await bob.group!.selfUpdate();
    await bob.group!.mergePendingCommit();
    await deliverCommit(commit, [alice, carol]);
    const r = await carol.group!.process(registration);
    if (r.kind !== 'application') throw new Error('expected an application message');
    expect(await recoveryRefusal(() => acceptRecoveryPsks(carol.group!, r))).toEqual({ name: 'RecoveryError', code: 'INVALID_MESSAGE', reason: 'stale-registration' });
    const again = await issueRecoveryPsk(alice.group!, alice.identity);
    await deliverApp(again.registration, [bob, carol]);
    // A recovery message of the earlier format is refused, not taken for something else.
    const v1 = new Writer().u16(1).vector(enc.encode(LABEL)).list([] as Uint8Array[], () => undefined).finish();
    const old = await bob.group!.encrypt(v1);
    const seen = await carol.group!.process(old);
    if (seen.kind !== 'application') throw new Error('expected an application message');
    expect(await recoveryRefusal(() => acceptRecoveryPsks(carol.group!, seen))).toEqual({ name: 'RecoveryError', code: 'INVALID_MESSAGE', reason: 'malformed' });
    // The bytes alone (the API before the review) cannot be checked: refused.
    expect((await mlsError(() => acceptRecoveryPsks(carol.group!, seen.data as never))).code).toBe('INVALID_ARGUMENT');
    await stillWorks([alice, bob, carol]);
  });
});

// --- forks -------------------------------------------------------------------

const WINDOW = 1000;

/** Resolvers for `members` on a simulated clock. */
function resolvers(members: Member[], strategy: 'hold' | 'optimistic') {
  let clock = 0;
  const byName = new Map(members.map((m) => [m.name, new ForkResolver(m.group!, { strategy, windowMs: WINDOW, now: () => clock })]));
  return {
    r: (m: Member) => byName.get(m.name)!,
    /** Let every window close. */
    async settle(): Promise<ForkEvent[]> {
      clock += WINDOW + 1;
      const events: ForkEvent[] = [];
      for (const res of byName.values()) events.push(...(await res.tick()));
      return events;
    },
  };
}

/** A PrivateMessage with a commit's clear header for `groupId` and `epoch` and a random body: what an outsider injects. */
function junkCommit(groupId: Uint8Array, epoch: number): Uint8Array {
  const random = (n: number) => crypto.getRandomValues(new Uint8Array(n));
  return new Writer().u16(1).u16(2).vector(groupId).u64(BigInt(epoch)).u8(3).vector(new Uint8Array(0)).vector(random(40)).vector(random(120)).finish();
}

/** Two commits for the current epoch by `x` and `y` (pending at both), lower-ranked first. */
async function race(x: Member, y: Member, rx: ForkResolver, ry: ForkResolver) {
  const fromX = await rx.commit({ selfUpdate: true });
  const fromY = await ry.commit({ selfUpdate: true });
  const xWins = (await commitRank(fromX.commit)) < (await commitRank(fromY.commit));
  return xWins ? { winner: fromX.commit, loser: fromY.commit, winnerMember: x, loserMember: y } : { winner: fromY.commit, loser: fromX.commit, winnerMember: y, loserMember: x };
}

describe('resilience review: fork resolver', () => {
  it('optimistic: a duplicate of the applied commit (a DS repeating it) is dropped, not applied again', async () => {
    const members = await world(['alice', 'bob', 'carol']);
    const [alice, bob, carol] = members as [Member, Member, Member];
    const { r, settle } = resolvers(members, 'optimistic');
    const { commit } = await r(alice).commit({ selfUpdate: true });
    for (const m of [bob, carol]) await r(m).receive(commit);
    // Bob reads Alice's message and sends one of his own in the new epoch.
    const fromAlice = await alice.group!.encrypt('from alice');
    const read = await r(bob).receive(fromAlice);
    expect(read[0]!.type === 'processed' && read[0]!.result.kind === 'application' && utf8(read[0]!.result.data)).toBe('from alice');
    const first = await bob.group!.encryptUnconfirmed('first from bob');
    await first.confirm();
    await r(alice).receive(first.message);
    // The DS hands Bob the commit again. Before the review Bob "switched"
    // to it: the epoch started afresh, his next message reused generation 0
    // (Alice refused it as replayed) and Alice's message read again.
    expect(await r(bob).receive(commit)).toEqual([{ type: 'dropped', reason: 'duplicate' }]);
    expect((await mlsError(() => r(bob).receive(fromAlice))).code).toBe('MESSAGE_REPLAYED');
    const second = await bob.group!.encryptUnconfirmed('second from bob');
    expect(second.generation).toBe(first.generation + 1);
    await second.confirm();
    const atAlice = await r(alice).receive(second.message);
    expect(atAlice[0]!.type === 'processed' && atAlice[0]!.result.kind === 'application' && utf8(atAlice[0]!.result.data)).toBe('second from bob');
    await settle();
    await stillWorks(members);
  });

  it("optimistic: the member's own commit echoed back by the DS is dropped (it threw INVALID_COMMIT)", async () => {
    const members = await world(['alice', 'bob']);
    const [alice, bob] = members as [Member, Member];
    const { r, settle } = resolvers(members, 'optimistic');
    const { commit } = await r(alice).commit({ selfUpdate: true });
    expect(await r(alice).receive(commit)).toEqual([{ type: 'dropped', reason: 'duplicate' }]);
    await r(bob).receive(commit);
    expect(r(alice).retainedStates()).toBe(1);
    await settle();
    expect(await r(alice).receive(commit)).toEqual([{ type: 'dropped', reason: 'late' }]);
    await stillWorks(members);
  });

  it('optimistic: junk for the next epoch does not close the window, so an outsider cannot keep a member from switching to the winner', async () => {
    const members = await world(['alice', 'bob', 'carol']);
    const [alice, bob, carol] = members as [Member, Member, Member];
    const { r, settle } = resolvers(members, 'optimistic');
    const epoch = alice.group!.epoch;
    const { winner, loser, winnerMember, loserMember } = await race(alice, bob, r(alice), r(bob));
    await r(carol).receive(loser);
    // Before the review the junk wiped Carol's kept state, the winner then
    // arrived and was dropped ("stale"): Carol stayed on the losing branch.
    expect((await mlsError(() => r(carol).receive(junkCommit(carol.group!.id, epoch + 1)))).code).toBe('DECRYPTION_FAILED');
    expect(r(carol).retainedStates()).toBe(1);
    expect(await r(carol).receive(winner)).toEqual([{ type: 'switched', epoch, winner: await commitRank(winner), ownCommitLost: false, unread: 0 }]);
    await r(loserMember).receive(winner);
    await r(winnerMember).receive(loser);
    await settle();
    expectInSync(members);
    await stillWorks(members);
  });

  it('hold: junk with a commit header opens no window, so an outsider cannot hold a member from committing', async () => {
    const members = await world(['alice', 'bob']);
    const [alice, bob] = members as [Member, Member];
    const { r, settle } = resolvers(members, 'hold');
    // Before the review each junk message opened a window (sending held):
    // one every window kept Alice from ever committing.
    for (let i = 0; i < 3; i++) {
      expect((await mlsError(() => r(alice).receive(junkCommit(alice.group!.id, alice.group!.epoch)))).code).toBe('DECRYPTION_FAILED');
      expect(r(alice).canSend()).toBe(true);
      expect(r(alice).heldCandidates()).toBe(0);
    }
    // Sending while held is refused with a typed error (it was a plain Error).
    const { commit } = await r(alice).commit({ selfUpdate: true });
    const held = await mlsError(() => r(alice).commit({ selfUpdate: true }));
    expect({ name: held.name, code: held.code }).toEqual({ name: 'MlsError', code: 'INVALID_STATE' });
    expect(await r(bob).receive(commit)).toEqual([{ type: 'candidate', epoch: alice.group!.epoch }]);
    const events = await settle();
    expect(events.map((e) => e.type)).toEqual(['settled', 'settled']);
    await stillWorks(members);
  });

  it('hold: a flood of valid competitors keeps at most 8, and every member still applies the same winner', async () => {
    const members = await world(['alice', 'bob', 'carol', 'mallory']);
    const [alice, bob, carol, mallory] = members as [Member, Member, Member, Member];
    const { r, settle } = resolvers([alice, bob, carol], 'hold');
    const epoch = alice.group!.epoch;
    // Mallory makes 12 commits for the epoch (clearing each; a modified client needs not).
    const flood: Uint8Array[] = [];
    for (let i = 0; i < 12; i++) {
      flood.push((await mallory.group!.selfUpdate()).commit);
      await mallory.group!.clearPendingCommit();
    }
    const ranks = await Promise.all(flood.map((c) => commitRank(c)));
    const lowest = [...ranks].sort()[0]!;
    for (const [i, m] of [alice, bob, carol].entries()) {
      const order = i === 1 ? [...flood].reverse() : flood;
      for (const c of order) await r(m).receive(c);
      expect(r(m).heldCandidates()).toBe(8);
    }
    const events = await settle();
    expect(events).toEqual([0, 1, 2].map(() => ({ type: 'settled', epoch, winner: lowest, ownCommitWon: false })));
    expectInSync([alice, bob, carol]);
    await stillWorks([alice, bob, carol]);
  });

  it('hold: a window that closes when a message arrives returns its events with it (lostRace was lost)', async () => {
    const members = await world(['alice', 'bob', 'carol']);
    const [alice, bob, carol] = members as [Member, Member, Member];
    let clock = 0;
    const res = new Map(members.map((m) => [m.name, new ForkResolver(m.group!, { strategy: 'hold', windowMs: WINDOW, now: () => clock })]));
    const r = (m: Member) => res.get(m.name)!;
    const epoch = alice.group!.epoch;
    const { winner, loser, winnerMember, loserMember } = await race(alice, bob, r(alice), r(bob));
    await r(winnerMember).receive(loser);
    await r(loserMember).receive(winner);
    for (const c of [winner, loser]) await r(carol).receive(c);
    clock += WINDOW + 1;
    expect((await r(carol).tick()).map((e) => e.type)).toEqual(['settled']);
    // The next thing the loser gets is Carol's message: the window settles
    // first. Before the review its events were dropped, so the loser never
    // learnt that its commit lost and had to be made again.
    const hello = await carol.group!.encrypt('hello');
    const events = await r(loserMember).receive(hello);
    expect(events.map((e) => e.type)).toEqual(['lostRace', 'settled', 'processed']);
    expect(events[1]).toEqual({ type: 'settled', epoch, winner: await commitRank(winner), ownCommitWon: false });
    expect(events[2]!.type === 'processed' && events[2]!.result.kind === 'application' && utf8(events[2]!.result.data)).toBe('hello');
    await r(winnerMember).tick();
    await stillWorks(members);
  });

  it('optimistic: with the default clock the kept state is wiped when the window ends, also if nothing arrives', async () => {
    const members = await world(['alice', 'bob']);
    const [alice, bob] = members as [Member, Member];
    const atAlice = new ForkResolver(alice.group!, { strategy: 'optimistic', windowMs: 30 });
    const { commit } = await atAlice.commit({ selfUpdate: true });
    await deliverCommit(commit, [bob]);
    expect(atAlice.retainedStates()).toBe(1);
    // A silent DS: no message, no call. Before the review the previous
    // epoch's state stayed in memory until the next call.
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(atAlice.retainedStates()).toBe(0);
    // A window that could never close is refused (NaN never compared as past).
    for (const windowMs of [Number.NaN, Infinity, -1]) {
      const err = await mlsError(() => new ForkResolver(alice.group!, { strategy: 'optimistic', windowMs }));
      expect({ name: err.name, code: err.code }).toEqual({ name: 'MlsError', code: 'INVALID_ARGUMENT' });
    }
    await stillWorks(members);
  });

  it('calls run one at a time in the order made: a commit does not overtake a switch to the winner', async () => {
    const members = await world(['alice', 'bob', 'carol', 'dave']);
    const [alice, bob, carol, dave] = members as [Member, Member, Member, Member];
    const { r, settle } = resolvers([dave], 'optimistic');
    const fromAlice = (await alice.group!.selfUpdate()).commit;
    const fromBob = (await bob.group!.selfUpdate()).commit;
    const aliceWins = (await commitRank(fromAlice)) < (await commitRank(fromBob));
    const [winner, loser] = aliceWins ? [fromAlice, fromBob] : [fromBob, fromAlice];
    const [winnerMember, loserMember] = aliceWins ? [alice, bob] : [bob, alice];
    await r(dave).receive(loser);
    // Dave's app hands the winner in, then commits, without waiting. Before
    // the review the commit overtook the switch (the winner was then
    // dropped as stale): Dave committed on the losing branch.
    const [switched, own] = await Promise.all([r(dave).receive(winner), r(dave).commit({ selfUpdate: true })]);
    expect(switched.map((e) => e.type)).toEqual(['switched']);
    await winnerMember.group!.mergePendingCommit();
    await loserMember.group!.clearPendingCommit();
    await deliverCommit(winner, [loserMember, carol]);
    await deliverCommit(own.commit, [alice, bob, carol]);
    await settle();
    expectInSync(members);
    await stillWorks(members);
  });

  it('hold, over a real DeliveryService (eventual group): a member posting junk commits holds nobody, and the race settles the same everywhere', async () => {
    const ds = await DeliveryService.create();
    const members = await Promise.all(['alice', 'bob', 'carol', 'mallory'].map((n) => newMember(n)));
    const [alice, bob, carol, mallory] = members as [Member, Member, Member, Member];
    alice.group = await alice.client.createGroup(alice.identity);
    const gid = alice.group.id;
    await ds.createGroup(gid, 'alice', { consistency: 'eventual', epoch: alice.group.epoch });
    const add = await alice.group.commit({ add: await Promise.all([bob, carol, mallory].map((m) => m.client.createKeyPackage(m.identity))) });
    expect((await ds.submit(gid, 'alice', add.commit, { welcome: add.welcome, added: ['bob', 'carol', 'mallory'] })).accepted).toBe(true);
    await alice.group.mergePendingCommit();
    for (const m of [bob, carol, mallory]) m.group = await m.client.joinFromWelcome((await ds.welcomes(m.name))[0]!.welcome);
    const honest = [alice, bob, carol];
    const { r, settle } = resolvers(honest, 'hold');
    const seen = new Map(honest.map((m) => [m.name, 1]));
    /** `m` feeds its resolver the log after what it saw; returns the events and the codes of what was refused. */
    const pump = async (m: Member) => {
      const events: ForkEvent[] = [];
      const refused: string[] = [];
      for (const entry of await ds.poll(m.name, gid, seen.get(m.name)!)) {
        seen.set(m.name, entry.seq);
        if (entry.sender === m.name) continue;
        try {
          events.push(...(await r(m).receive(entry.bytes)));
        } catch (err) {
          refused.push((err as { code: string }).code);
        }
      }
      return { events, refused };
    };
    const epoch = alice.group.epoch;
    // Mallory posts junk with a commit's header for the epoch; the eventual DS logs it.
    for (let i = 0; i < 3; i++) expect((await ds.submit(gid, 'mallory', junkCommit(gid, epoch))).accepted).toBe(true);
    for (const m of honest) {
      expect(await pump(m)).toEqual({ events: [], refused: ['DECRYPTION_FAILED', 'DECRYPTION_FAILED', 'DECRYPTION_FAILED'] });
      expect(r(m).canSend()).toBe(true);
    }
    // Alice and Bob race; the DS takes both.
    const { winner, loser, winnerMember, loserMember } = await race(alice, bob, r(alice), r(bob));
    expect((await ds.submit(gid, loserMember.name, loser)).accepted).toBe(true);
    expect((await ds.submit(gid, winnerMember.name, winner)).accepted).toBe(true);
    for (const m of honest) await pump(m);
    const events = await settle();
    expect(events.filter((e) => e.type === 'settled')).toEqual(honest.map(() => ({ type: 'settled', epoch, winner: expect.any(String), ownCommitWon: expect.any(Boolean) })));
    expect(new Set(events.filter((e) => e.type === 'settled').map((e) => (e as { winner: string }).winner))).toEqual(new Set([await commitRank(winner)]));
    expect(events.filter((e) => e.type === 'lostRace')).toHaveLength(1);
    expectInSync(honest);
    await stillWorks(honest);
  });

  it('held: a non-canonical copy of a commit (trailing bytes, a longer length encoding) does not process, so it cannot move the tie-break', async () => {
    const members = await world(['alice', 'bob']);
    const [alice, bob] = members as [Member, Member];
    const { commit } = await alice.group!.selfUpdate();
    const trailing = new Uint8Array([...commit, 0]);
    const longLength = new Uint8Array([...commit.slice(0, 4), 0x40, commit[4]!, ...commit.slice(5)]);
    for (const copy of [trailing, longLength]) expect((await mlsError(() => bob.group!.process(copy))).code).toBe('MALFORMED');
    await alice.group!.mergePendingCommit();
    await deliverCommit(commit, [bob]);
    await stillWorks(members);
  });
});

describe('resilience review: healing meter', () => {
  it('a scenario out of range is refused with INVALID_ARGUMENT (it threw a RangeError, or ran for ever)', async () => {
    const { measureHealing } = await import('paired-mls/resilience');
    const base = { name: 'x', members: 3, compromisedPolicy: { kind: 'never' }, othersPolicy: { kind: 'never' }, secondsPerStep: 10, steps: 2, messagesPerStep: 1 } as const;
    const bad = [
      { members: 1 },
      { members: 2.5 },
      { steps: Infinity },
      { secondsPerStep: Number.NaN },
      { messagesPerStep: -1 },
      { compromisedPolicy: { kind: 'everyMessages', messages: 0 } },
      { othersPolicy: { kind: 'everySeconds', seconds: Number.NaN } },
      { paired: { kind: 'sometimes' } },
    ];
    for (const change of bad) {
      const err = await mlsError(() => measureHealing({ ...base, ...change } as never));
      expect({ name: err.name, code: err.code }).toEqual({ name: 'MlsError', code: 'INVALID_ARGUMENT' });
    }
    const report = await measureHealing(base);
    expect(report.timeline).toHaveLength(2);
  });
});
