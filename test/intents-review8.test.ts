/**
 * Eighth review of the LeafOperationIntent layer (seed 004) as an attacker,
 * end to end: the engine's expander, a verifying DS.
 *
 * 1. One commit, many copies of one intent. A commit's intents were each
 *    checked (leaf hash and signature) before their duplicate Removes were
 *    found. Copies with the same bytes collapse into one proposal, but the
 *    holder of a signature key can sign one intent anew as often as it
 *    likes (here P-256, whose signatures node's crypto randomises; an
 *    Ed25519 signer can pick its own nonces), so any member could hand a
 *    verifying DS a commit of 5,000 distinct valid copies of its own intent
 *    (655 KB) that took 9.4 s of the server's one thread to refuse, charged
 *    as a commit of the group's size (PROTOCOL §8.6). Every receiver paid the
 *    same. Now proposals bound to one leaf, or to the committer, are refused
 *    before any is checked (docs/ENGINE.md change 42): 38 ms.
 * 2. The DS's association rule. A verifying DS removed by the engine's
 *    default rule (same credential identity), whatever rule the members
 *    installed (`AuthenticationService.association()`: same user). Their
 *    commit of a user's leave was refused (`invalid-commit`), and a member
 *    without their rule (bob) had a commit accepted that removed only the
 *    sender, which every member refuses: the group was stuck for good, its
 *    epoch taken. The DS now takes the members' rule
 *    (`DeliveryOptions.association`, PROTOCOL §5.4, §8.5).
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, MlsError, TlsWriter, type GroupOptions, type LeafAssociation } from 'paired-mls';
import { commitIntents, createIntent, decodeIntent, ExternalSender, encodeIntent, IntentError, leavesRemovedBy, validateIntent } from 'paired-mls/intents';
import { AuthenticationService, DeliveryService, DsError } from 'paired-mls/services';
import { groupContextOf } from '../ts/services/ds-checks.js';
import { expectInSync, mlsError, type Member } from './helpers.js';
import { deliverPaired, pairedWorld, stolen } from './paired-helpers.js';
import { CAPS, deliver, names, resigned } from './intents-review-helpers.js';

const OPTIONS = { capabilities: CAPS, wireFormat: 'plaintext' as const };

/** A member on its own client (ciphersuite `cs`), with `association` installed when given. */
async function member(name: string, cs: 1 | 2, association?: LeafAssociation): Promise<Member> {
  const client = await MlsClient.open({ association });
  return { name, client, identity: await client.createIdentity(name, cs) };
}

/**
 * A group of `all` built through a verifying DS (every commit verified and
 * logged), everyone updated once (no leaf holds its KeyPackage LeafNode).
 */
async function verifiedWorld(ds: DeliveryService, all: Member[], extensions: GroupOptions['extensions'] = {}) {
  const [creator, ...rest] = all;
  const g = await creator!.client.createGroup(creator!.identity, { ...OPTIONS, extensions });
  creator!.group = g;
  await ds.createGroup(g.id, creator!.name, { epoch: 0, groupInfo: await g.exportGroupInfo() });
  const kps = await Promise.all(rest.map((m) => m.client.createKeyPackage(m.identity, { capabilities: CAPS })));
  const add = await g.commit({ add: kps, groupInfo: true });
  expect(await ds.submit(g.id, creator!.name, add.commit, { groupInfo: add.groupInfo, welcome: add.welcome })).toMatchObject({ accepted: true });
  await g.mergePendingCommit();
  for (const m of rest) m.group = await m.client.joinFromWelcome(add.welcome!, OPTIONS);
  for (const m of all) await through(ds, m, await m.group!.selfUpdate({ groupInfo: true }), all);
  expectInSync(all);
  return g.id;
}

/** `from`'s commit goes through the DS (accepted), then to every other member of `to`. */
async function through(ds: DeliveryService, from: Member, c: { commit: Uint8Array; groupInfo?: Uint8Array }, to: Member[]): Promise<void> {
  expect(await ds.submit(from.group!.id, from.name, c.commit, { groupInfo: c.groupInfo })).toMatchObject({ accepted: true });
  await from.group!.mergePendingCommit();
  for (const m of to.filter((o) => o !== from && o.group)) {
    const r = await m.group!.process(c.commit);
    if (r.kind !== 'commit') throw new Error('not a commit');
    await r.staged.merge();
  }
}

/**
 * A PublicMessage commit of `committer` carrying `intents` by value and no
 * UpdatePath, signed with its leaf key over the GroupContext of `info`, its
 * group's current GroupInfo (RFC 9420 §6.1). Its tags are zeros: the DS,
 * holding no group secret, checks neither, and reads the proposals before
 * it would compute the confirmation tag.
 */
function craftedCommit(committer: Member, info: Uint8Array, intents: Uint8Array[]): Uint8Array {
  const g = committer.group!;
  const proposals = new TlsWriter();
  for (const intent of intents) proposals.u8(1).u16(0xf1a0).raw(intent);
  const content = new TlsWriter().vector(g.id).u64(g.epoch).u8(1).u32(g.ownLeafIndex).vector(new Uint8Array(0)).u8(3).vector(proposals.finish()).u8(0).finish();
  const tbs = new TlsWriter().u16(1).u16(1).raw(content).raw(groupContextOf(info)!.context).finish();
  const signature = committer.client.signWithLabel(committer.identity, 'FramedContentTBS', tbs);
  return new TlsWriter().u16(1).u16(1).raw(content).vector(signature).vector(new Uint8Array(32)).vector(new Uint8Array(32)).finish();
}

describe('LeafOperationIntent review 8: many copies of one intent, the DS association rule', () => {
  it("a commit of 3,000 distinct valid copies of alice's intent is refused before any is checked, by the DS and by the engine; the honest commit of that intent goes through", async () => {
    // Every intent the engine accepts asks the association rule: a count of the intents it checked through.
    let asked = 0;
    const counting: LeafAssociation = { associatedLeaves: () => (asked++, []) };
    const ds = await DeliveryService.create({ verifyCommits: true, association: counting });
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => member(n, 2)));
    const all = [alice!, bob!, carol!];
    const gid = await verifiedWorld(ds, all);
    const intent = createIntent(alice!.group!, 'removeAssociatedMembers');
    const info = await bob!.group!.exportGroupInfo();
    const copies = resigned(alice!, intent, 3000);
    expect(new Set(copies.map((c) => Buffer.from(c).toString('hex'))).size).toBe(3000);
    const flood = craftedCommit(bob!, info, copies);
    // The DS reads the new GroupInfo's header first: one of the next epoch (bob's, of an update he does not send).
    const next = (await bob!.group!.selfUpdate({ groupInfo: true })).groupInfo!;
    await bob!.group!.clearPendingCommit();
    // The engine's check, as the DS makes it: refused as duplicate Removes, not one intent checked (before: 3,000).
    const verifier = await MlsClient.open({ association: counting });
    const err = (() => {
      try {
        verifier.verifyPublicCommit(info, flood, info, []);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(MlsError);
    expect(err).toMatchObject({ code: 'INVALID_COMMIT', message: expect.stringContaining('Duplicate remove proposals for the same member') });
    expect(asked).toBe(0);
    // Through the DS: the same refusal, nothing logged, in a fraction of the 5.6 s it took.
    const started = performance.now();
    const refused = await ds.submit(gid, bob!.name, flood, { groupInfo: next });
    expect(performance.now() - started).toBeLessThan(2000);
    expect(refused).toMatchObject({ accepted: false, reason: 'invalid-commit', message: expect.stringContaining('Duplicate remove proposals for the same member') });
    expect(asked).toBe(0);
    // One copy bound to the committer itself (its own intent beside alice's): refused as removing the committer, unchecked.
    const own = createIntent(bob!.group!, 'senderRemovalOnly');
    expect(await ds.submit(gid, bob!.name, craftedCommit(bob!, info, [copies[0]!, encodeIntent(own)]), { groupInfo: next })).toMatchObject({
      accepted: false,
      reason: 'invalid-commit',
      message: expect.stringContaining('A custom proposal would remove the committer'),
    });
    expect(asked).toBe(0);
    // The intent itself, committed once by bob, verifies at the DS (checked once there) and removes alice everywhere.
    await through(ds, bob!, await commitIntents(bob!.group!, [intent], { commit: { groupInfo: true } }), [carol!]);
    expect(asked).toBeGreaterThan(0);
    expect(names(bob!.group!)).toEqual(['bob', 'carol']);
    expect(await ds.isReader(gid, 'alice')).toBe(false);
    expectInSync([bob!, carol!]);
    await through(ds, carol!, await carol!.group!.selfUpdate({ groupInfo: true }), [bob!]);
  }, 60_000);

  it("a verifying DS removes by the members' association rule: their commit of alice's leave verifies, and bob's commit removing by another rule is refused instead of jamming the group", async () => {
    const as = new AuthenticationService();
    const association = as.association();
    const ds = await DeliveryService.create({ verifyCommits: true, association });
    // alice's phone has its own identity: the AS, not the identity, says it is alice's.
    const alice = await member('alice', 1, association);
    const phone = await member('alice-phone', 1, association);
    const carol = await member('carol', 1, association);
    // bob removes by the engine's default rule (same identity).
    const bob = await member('bob', 1);
    const all = [alice, phone, bob, carol];
    for (const m of all) as.register({ clientId: m.name, userId: m.name.startsWith('alice') ? 'alice' : m.name, identity: m.identity.identity, signatureKey: m.identity.signaturePublicKey });
    const gid = await verifiedWorld(ds, all);
    const intent = createIntent(alice.group!, 'removeAssociatedMembers');
    const aliceLeaves = [alice.group!.ownLeafIndex, phone.group!.ownLeafIndex].sort();
    expect(leavesRemovedBy(carol.group!, intent).sort()).toEqual(aliceLeaves);
    expect(leavesRemovedBy(bob.group!, intent)).toEqual([alice.group!.ownLeafIndex]);
    // bob commits alice's leave removing alice alone. Before, the DS took it (its rule was his) and every member refused it:
    // the epoch was taken by a commit nobody could process, and every later commit was epoch-taken.
    const bobs = await commitIntents(bob.group!, [intent], { commit: { groupInfo: true } });
    const refused = await ds.submit(gid, bob.name, bobs.commit, { groupInfo: bobs.groupInfo });
    expect(refused).toMatchObject({ accepted: false, reason: 'invalid-commit', message: expect.stringContaining('the commit does not verify') });
    await bob.group!.clearPendingCommit();
    // carol's commit of the same leave (alice and her phone) verifies: the DS's member list follows the tree.
    const carols = await commitIntents(carol.group!, [intent], { commit: { groupInfo: true } });
    expect(await ds.submit(gid, carol.name, carols.commit, { groupInfo: carols.groupInfo })).toMatchObject({ accepted: true });
    await carol.group!.mergePendingCommit();
    const atPhone = await phone.group!.process(carols.commit);
    expect(atPhone.kind === 'commit' && atPhone.staged.selfRemoved).toBe(true);
    // bob takes the AS's rule and follows; the group goes on.
    bob.client.setLeafAssociation(association);
    const atBob = await bob.group!.process(carols.commit);
    if (atBob.kind !== 'commit') throw new Error('not a commit');
    await atBob.staged.merge();
    expect(names(carol.group!)).toEqual(['bob', 'carol']);
    expect([await ds.isReader(gid, 'alice'), await ds.isReader(gid, 'alice-phone')]).toEqual([false, false]);
    await through(ds, bob, await bob.group!.selfUpdate({ groupInfo: true }), [carol]);
    expectInSync([bob, carol]);
  }, 60_000);
});

describe("LeafOperationIntent review 8: the AS's association and a revoked device", () => {
  it("alice revokes her stolen phone, then leaves: her leave covers the phone's leaf (it covered only leaves the AS still vouched for, so the thief's stayed, reading); the phone's own wide leave removes the phone alone", async () => {
    const as = new AuthenticationService();
    const association = as.association();
    const laptop = await member('alice-laptop', 1, association);
    const phone = await member('alice-phone', 1, association);
    const bob = await member('bob', 1, association);
    const all = [laptop, phone, bob];
    for (const m of all) as.register({ clientId: m.name, userId: m.name.startsWith('alice') ? 'alice' : m.name, identity: m.identity.identity, signatureKey: m.identity.signaturePublicKey });
    laptop.group = await laptop.client.createGroup(laptop.identity, { capabilities: CAPS });
    const { welcome } = await laptop.group.commit({ add: await Promise.all([phone, bob].map((m) => m.client.createKeyPackage(m.identity, { capabilities: CAPS }))) });
    await laptop.group.mergePendingCommit();
    for (const m of [phone, bob]) m.group = await m.client.joinFromWelcome(welcome!, { capabilities: CAPS });
    for (const m of all) {
      const { commit } = await m.group!.selfUpdate();
      await m.group!.mergePendingCommit();
      await deliver(commit, all.filter((o) => o !== m));
    }
    const [laptopLeaf, phoneLeaf] = [laptop.group.ownLeafIndex, phone.group!.ownLeafIndex];
    // The phone is stolen: alice revokes it at the AS.
    as.revoke('alice-phone');
    expect(leavesRemovedBy(bob.group!, createIntent(phone.group!, 'removeAssociatedMembers'))).toEqual([phoneLeaf]);
    const leave = createIntent(laptop.group, 'removeAssociatedMembers');
    expect(leavesRemovedBy(bob.group!, leave).sort()).toEqual([laptopLeaf, phoneLeaf].sort());
    const c = await commitIntents(bob.group!, [leave]);
    await bob.group!.mergePendingCommit();
    const atPhone = await phone.group!.process(c.commit);
    expect(atPhone.kind === 'commit' && atPhone.staged.selfRemoved).toBe(true);
    expect(names(bob.group!)).toEqual(['bob']);
  });
});

describe('LeafOperationIntent review 8: an outsider at the DS', () => {
  it("a client on no member list can neither read nor post an intent, as a member's proposal, as the DS's, or flagged as an external join; the members commit the intent", async () => {
    const ds = await DeliveryService.create({ verifyCommits: true });
    const [alice, bob, mallory] = await Promise.all(['alice', 'bob', 'mallory'].map((n) => member(n, 1)));
    const gid = await verifiedWorld(ds, [alice!, bob!], { externalSenders: [ds.externalSenderSpec], requiredCapabilities: CAPS });
    const intent = createIntent(alice!.group!, 'senderRemovalOnly');
    const { proposal } = await ds.proposeIntent(gid, intent);
    await expect(ds.poll(mallory!.name, gid, 0)).rejects.toMatchObject({ reason: 'not-a-member' });
    // The DS's own proposal (a copy from the wire), an external sender's of mallory's key: no member's, so not taken.
    const asExternal = new ExternalSender(mallory!.client, mallory!.identity).proposeIntent({ groupId: gid, epoch: alice!.group!.epoch, senderIndex: 0 }, intent);
    for (const bytes of [proposal, asExternal]) {
      expect(await ds.submit(gid, mallory!.name, bytes)).toEqual({ accepted: false, reason: 'not-a-member', message: 'the sender is not a member of the group (not-a-member)' });
      expect(await ds.submit(gid, mallory!.name, bytes, { externalJoin: true })).toEqual({ accepted: false, reason: 'external-join-closed', message: 'this group does not take external joins (external-join-closed)' });
    }
    // The DS's name is its own: no client posts under it.
    expect(await ds.submit(gid, 'delivery-service', asExternal)).toEqual({ accepted: false, reason: 'forbidden', message: "delivery-service is the DS's own sender name (forbidden)" });
    expect((await bob!.group!.process(proposal)).kind).toBe('proposal');
    await through(ds, bob!, await bob!.group!.commit({ includePending: true, groupInfo: true }), []);
    expect(names(bob!.group!)).toEqual(['bob']);
  }, 60_000);
});

describe('LeafOperationIntent review 8: the DS proposes in a P-256 group', () => {
  it("signs with its P-256 key (it signed with its Ed25519 one, and every member refused the proposal: 'Verifying the signature failed'); the group commits it", async () => {
    const ds = await DeliveryService.create({ verifyCommits: true });
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => member(n, 2)));
    const gid = await verifiedWorld(ds, [alice!, bob!], { externalSenders: [ds.externalSenderSpecFor(2)], requiredCapabilities: CAPS });
    const { proposal } = await ds.proposeIntent(gid, createIntent(alice!.group!, 'senderRemovalOnly'));
    expect((await bob!.group!.process(proposal)).kind).toBe('proposal');
    // An uncompressed P-256 point; ciphersuite 3 signs with Ed25519 like 1; no key for a suite this library does not run.
    expect(ds.externalSenderSpecFor(2).signatureKey).toHaveLength(65);
    expect(ds.externalSenderSpecFor(3)).toEqual(ds.externalSenderSpec);
    expect(() => ds.externalSenderSpecFor(7)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', message: 'no external-sender key for ciphersuite 7' }));
    const c = await bob!.group!.commit({ includePending: true, groupInfo: true });
    expect(await ds.submit(gid, bob!.name, c.commit, { groupInfo: c.groupInfo })).toMatchObject({ accepted: true });
    await bob!.group!.mergePendingCommit();
    expect(names(bob!.group!)).toEqual(['bob']);
    expect(await ds.isReader(gid, 'alice')).toBe(false);
  }, 60_000);
});

describe("LeafOperationIntent review 8: the DS's own share of an epoch's proposals (PROTOCOL §5.4, §8.6)", () => {
  it("bob hands the DS 62 re-signed copies of his own leave: one is logged, the others are refused duplicate (before: all 62 logged, the share full, alice's intent too-many-proposals); alice's intent goes in the same epoch, and carol's commit removes both", async () => {
    const ds = await DeliveryService.create({ verifyCommits: true });
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => member(n, 2)));
    const gid = await verifiedWorld(ds, [alice!, bob!, carol!], { externalSenders: [ds.externalSenderSpecFor(2)], requiredCapabilities: CAPS });
    const bobs = createIntent(bob!.group!, 'senderRemovalOnly');
    const [first, ...copies] = resigned(bob!, bobs, 62);
    const logged = await ds.proposeIntent(gid, decodeIntent(first!));
    for (const copy of copies) {
      const err = await ds.proposeIntent(gid, decodeIntent(copy)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DsError);
      expect(err).toMatchObject({ reason: 'duplicate', message: 'the removal of leaf 1 is already proposed in epoch 4: this DS proposes one a leaf an epoch, and the one logged stands (duplicate)' });
    }
    // A retry of the one logged: its first answer (the DS signs deterministically: the same bytes).
    expect(await ds.proposeIntent(gid, decodeIntent(first!))).toEqual(logged);
    const alices = createIntent(alice!.group!, 'senderRemovalOnly');
    const { proposal } = await ds.proposeIntent(gid, alices);
    const fromDs = (await ds.poll(carol!.name, gid, 0)).filter((l) => l.sender === 'delivery-service');
    expect(fromDs.map((m) => m.bytes)).toEqual([logged.proposal, proposal]);
    for (const m of fromDs) for (const to of [alice!, bob!, carol!]) expect((await to.group!.process(m.bytes)).kind).toBe('proposal');
    await through(ds, carol!, await carol!.group!.commit({ includePending: true, groupInfo: true }), []);
    expect(names(carol!.group!)).toEqual(['carol']);
    expect(await ds.isReader(gid, 'alice')).toBe(false);
    expect(await ds.isReader(gid, 'bob')).toBe(false);
  }, 60_000);
});

describe.each(['hidden', 'standard'] as const)("LeafOperationIntent review 8 (%s mode): a stolen copy of alice's passive device signs her account's leave", (mode) => {
  it("valid as the anchor's until the group's paired update (PROTOCOL §4.0, the window); after it, stale-leaf at every member, and alice stays", async () => {
    const w = await pairedWorld(['bob', 'carol'], mode);
    const [bob, carol] = w.others as [Member, Member];
    const copy = await stolen(w.p);
    const thiefGroup = copy.group(w.a.group!.id);
    // The copy holds the anchor key: its intent is the anchor leaf's, and removes it.
    const intent = createIntent(thiefGroup, 'removeAssociatedMembers');
    expect(leavesRemovedBy(bob.group!, intent)).toEqual([w.a.group!.ownLeafIndex]);
    // The active device's paired update replaces the anchor leaf.
    const update = await w.activeDevice.update(w.a.group!);
    await deliverPaired(update, w.a, w.passiveDevice, [bob, carol]);
    for (const m of [bob, carol, w.a]) {
      const err = await mlsError(() => validateIntent(m.group!, intent));
      expect(err).toBeInstanceOf(IntentError);
      expect({ code: err.code, reason: (err as IntentError).reason }).toEqual({ code: 'INTENT_INVALID', reason: 'stale-leaf' });
    }
    // Nor can the copy sign a fresh one: its state stays at the old leaf.
    expect(() => validateIntent(bob.group!, createIntent(thiefGroup, 'senderRemovalOnly'))).toThrow(expect.objectContaining({ reason: 'stale-leaf' }));
    expect(names(bob.group!)).toEqual(['alice', 'bob', 'carol']);
    expectInSync([w.a, w.p, bob, carol]);
  });
});
