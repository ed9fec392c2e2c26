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
 * Each test first ran as an attack that succeeded on the code before the
 * review; it now asserts the exact refusal (error class, code, reason) and
 * that the honest members keep working afterwards (commit, send, read).
 * What held without a change is pinned as well (an external commit
 * removing other members; non-canonical copies of a commit).
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, fromHex, toHex, utf8, type Group } from 'paired-mls';
import {
  RecoveryError,
  acceptRecoveryPsks,
  expectRecoveryTransfer,
  issueRecoveryPsk,
  parseRecoveryPskId,
  recoverMembership,
  recoveryPolicy,
  recoveryPskId,
  transferRecoveryPsks,
  type RecoveryRecord,
} from 'paired-mls/resilience';
import { Writer } from '../ts/codec/tls.js';
import { deliverCommit, expectInSync, mlsError, newMember, type Member } from './helpers.js';

const LABEL = 'paired-mls recovery';
const enc = new TextEncoder();

/** A group of `names` (the first creates it), each member checking external commits with the recovery policy. */
async function world(names: string[], options: { maxPastEpochs?: number } = {}): Promise<Member[]> {
  const members = await Promise.all(names.map((n) => newMember(n)));
  const [first] = members as [Member];
  first.group = await first.client.createGroup(first.identity, options);
  const { welcome } = await first.group.commit({ add: await Promise.all(members.slice(1).map((m) => m.client.createKeyPackage(m.identity))) });
  await first.group.mergePendingCommit();
  for (const m of members.slice(1)) m.group = await m.client.joinFromWelcome(welcome!, options);
  for (const m of members) m.group!.useChecks([recoveryPolicy()]);
  return members;
}

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

/** The honest members still work together: one commits, all follow; each sends and all others read. */
async function stillWorks(members: Member[]): Promise<void> {
  const [first, ...rest] = members as [Member, ...Member[]];
  const { commit } = await first.group!.selfUpdate();
  await first.group!.mergePendingCommit();
  await deliverCommit(commit, rest);
  expectInSync(members);
  for (const from of members) {
    const sent = await from.group!.encrypt(`hello from ${from.name}`);
    for (const to of members) {
      if (to === from) continue;
      const r = await to.group!.process(sent);
      expect(r.kind === 'application' && utf8(r.data)).toBe(`hello from ${from.name}`);
    }
  }
}

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
    const registry = JSON.parse(utf8(copy.record('paired-mls/recovery-psks')!)) as Record<string, string>;
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
    for (const m of [alice, bob, carol]) expect(Object.keys(JSON.parse(utf8(m.client.record('paired-mls/recovery-psks')!)))).toEqual([toHex(again.record.pskId)]);
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
    const identity = await client.createIdentity('mallory', 1);
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
      const registry = m.client.record('paired-mls/recovery-psks');
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
