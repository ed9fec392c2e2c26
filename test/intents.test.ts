/**
 * LeafOperationIntent (draft-kohbrok-mls-leaf-operation-intents): an intent
 * made in epoch e is proposed and committed epochs later — by a member, by
 * the Delivery Service as an external sender, or inside an external commit —
 * and the engine processes the LeafOperationProposal alone as the Removes it
 * implies (docs/ENGINE.md). Every invalid intent, unlisted sender or
 * overlapping Remove is refused with its exact reason and changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, MlsError, type Group, type GroupOptions } from 'paired-mls';
import { type LeafAssociation } from 'paired-mls';
import { ExternalSender, IntentError, LEAF_OPERATION_PROPOSAL_TYPE, commitIntents, createIntent, decodeIntent, encodeIntent, encodeIntentMessage, encodeIntentTbs, intentProposal, intentsIn, proposeIntent, validateIntent, type LeafOperationIntent } from 'paired-mls/intents';
import { DeliveryService, AuthenticationService } from 'paired-mls/services';
import { expectInSync, type Member } from './helpers.js';

const CAPS = { proposals: [LEAF_OPERATION_PROPOSAL_TYPE] };

async function member(name: string, identity = name, association?: LeafAssociation): Promise<Member> {
  const client = await MlsClient.open({ association });
  return { name, client, identity: await client.createIdentity(identity, 1) };
}

interface Seen {
  removes: number;
  impliedRemoves: readonly number[];
  intents: number;
}

/** Deliver `message` to `members`; merge commits; return what the last receiver's staged commit showed. */
async function deliver(message: Uint8Array, members: Member[]): Promise<Seen | undefined> {
  let seen: Seen | undefined;
  for (const m of members) {
    const r = await m.group!.process(message);
    if (r.kind === 'commit') {
      seen = { removes: r.staged.removes.length, impliedRemoves: r.staged.impliedRemoves, intents: intentsIn(r.staged).length };
      await r.staged.merge();
    }
  }
  return seen;
}

async function commitAndDeliver(from: Member, others: Member[], op: (g: Group) => Promise<{ commit: Uint8Array; welcome?: Uint8Array }>): Promise<{ welcome?: Uint8Array; seen?: Seen }> {
  const { commit, welcome } = await op(from.group!);
  await from.group!.mergePendingCommit();
  return { welcome, seen: await deliver(commit, others) };
}

/**
 * alice has two devices ("alice" identity on both: associated by the
 * engine's AS rule), with bob, carol and dave. Everyone has updated once,
 * so no leaf holds its KeyPackage LeafNode.
 */
async function world(options: { externalSender?: { identity: Uint8Array; signatureKey: Uint8Array }; requireIntents?: boolean } = {}) {
  const alice = await member('alice');
  const alicePhone = await member('alice-phone', 'alice');
  const bob = await member('bob');
  const carol = await member('carol');
  const dave = await member('dave');
  const all = [alice, alicePhone, bob, carol, dave];
  const extensions = {
    ...(options.externalSender ? { externalSenders: [options.externalSender] } : {}),
    ...(options.requireIntents ? { requiredCapabilities: CAPS } : {}),
  };
  await formGroup(all, extensions);
  return { alice, alicePhone, bob, carol, dave, all };
}

/** The first member creates the group and adds the others; everyone updates once. */
async function formGroup(all: Member[], extensions: GroupOptions['extensions'] = {}): Promise<void> {
  const [founder, ...rest] = all;
  founder!.group = await founder!.client.createGroup(founder!.identity, { capabilities: CAPS, extensions });
  const kps = await Promise.all(rest.map((m) => m.client.createKeyPackage(m.identity, { capabilities: CAPS })));
  const { welcome } = await founder!.group.commit({ add: kps });
  await founder!.group.mergePendingCommit();
  for (const m of rest) m.group = await m.client.joinFromWelcome(welcome!, { capabilities: CAPS });
  for (const m of all) await commitAndDeliver(m, all.filter((o) => o !== m), (g) => g.selfUpdate());
  expectInSync(all);
}

/** Unrelated traffic between creating and using an intent: erin joins, dave leaves. */
async function unrelatedChanges(w: Awaited<ReturnType<typeof world>>): Promise<Member[]> {
  const erin = await member('erin');
  const { welcome } = await commitAndDeliver(w.bob, w.all.filter((m) => m !== w.bob), async (g) => g.commit({ add: [await erin.client.createKeyPackage(erin.identity, { capabilities: CAPS })] }));
  erin.group = await erin.client.joinFromWelcome(welcome!, { capabilities: CAPS });
  const present = [...w.all, erin];
  const daveLeaf = w.dave.group!.ownLeafIndex;
  await commitAndDeliver(w.carol, present.filter((m) => m !== w.carol), (g) => g.commit({ remove: [daveLeaf] }));
  return present.filter((m) => m !== w.dave);
}

const names = (g: Group) => g.members().map((m) => new TextDecoder().decode(m.credential.identity)).sort();

async function thrown(fn: () => Promise<unknown> | unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

async function rejected(fn: () => Promise<unknown> | unknown, reason: string): Promise<void> {
  const error = await thrown(fn);
  expect(error).toBeInstanceOf(IntentError);
  expect((error as IntentError).reason).toBe(reason);
}

/** Refused by the engine with this code and a message naming the rule. */
async function refused(fn: () => Promise<unknown> | unknown, code: string, text: string): Promise<void> {
  const error = await thrown(fn);
  expect(error).toBeInstanceOf(MlsError);
  expect((error as MlsError).code).toBe(code);
  expect((error as MlsError).message).toContain(text);
}

const aliceLeaves = (w: Awaited<ReturnType<typeof world>>) => [w.alice.group!.ownLeafIndex, w.alicePhone.group!.ownLeafIndex].sort((a, b) => a - b);

describe('LeafOperationIntent', () => {
  it('a commit holding only an intent removes the sender and its associated members (proposed by a member in e+k)', async () => {
    const w = await world();
    const epochE = w.alice.group!.epoch;
    const implied = aliceLeaves(w);
    const intent = createIntent(w.alice.group!, 'removeAssociatedMembers');
    // alice may now delete her state at once; the intent is all she leaves behind.
    const present = await unrelatedChanges(w);
    expect(w.bob.group!.epoch).toBeGreaterThan(epochE + 1);

    const proposal = await proposeIntent(w.bob.group!, intent);
    await deliver(proposal, present.filter((m) => m !== w.bob));
    // carol commits the pending proposal: the commit holds the intent and nothing else.
    const { seen } = await commitAndDeliver(w.carol, present.filter((m) => m !== w.carol), (g) => commitIntents(g, []));
    expect(seen).toEqual({ removes: 0, impliedRemoves: implied, intents: 1 });
    const remaining = present.filter((m) => m !== w.alice && m !== w.alicePhone);
    expectInSync(remaining);
    expect(names(w.carol.group!)).toEqual(['bob', 'carol', 'erin']);
    // The honest members keep working.
    await commitAndDeliver(w.bob, remaining.filter((m) => m !== w.bob), (g) => g.selfUpdate());
    expectInSync(remaining);
  });

  it('sender_removal_only removes just the sender, committed by value', async () => {
    const w = await world();
    const intent = createIntent(w.alice.group!, 'senderRemovalOnly');
    const present = await unrelatedChanges(w);
    const { seen } = await commitAndDeliver(w.bob, present.filter((m) => m !== w.bob), (g) => commitIntents(g, [intent]));
    expect(seen).toEqual({ removes: 0, impliedRemoves: [intent.senderIndex], intents: 1 });
    expect(names(w.bob.group!)).toEqual(['alice', 'bob', 'carol', 'erin']);
    expect(w.bob.group!.members().some((m) => m.leafIndex === intent.senderIndex)).toBe(false);
    expectInSync(present.filter((m) => m !== w.alice));
  });

  it('the DS, as an external sender, proposes the intent itself; unlisted senders and stale intents are refused', async () => {
    const ds = await DeliveryService.create();
    const w = await world({ externalSender: ds.externalSenderSpec, requireIntents: true });
    const intent = createIntent(w.alicePhone.group!, 'removeAssociatedMembers');
    const present = await unrelatedChanges(w);
    const g = w.bob.group!;
    // The DS checks the intent against the group's current public state (draft §2.3; test/intents-review6).
    await ds.createGroup(g.id, 'bob', { epoch: g.epoch, groupInfo: await g.exportGroupInfo() });

    // Someone not listed in external_senders: an index beyond the list, or a
    // listed index signed with another key.
    const mallory = await member('mallory');
    const impostor = new ExternalSender(mallory.client, mallory.identity);
    await refused(() => g.process(impostor.proposeIntent({ groupId: g.id, epoch: g.epoch, senderIndex: 1 }, intent)), 'INVALID_MESSAGE', 'external sender');
    await refused(() => g.process(impostor.proposeIntent({ groupId: g.id, epoch: g.epoch, senderIndex: 0 }, intent)), 'INVALID_SIGNATURE', 'signature');
    expect(g.state().pendingProposals).toBe(0);

    const { proposal } = await ds.proposeIntent(g.id, intent);
    const logged = await ds.poll('bob', g.id);
    expect(logged.at(-1)!.sender).toBe('delivery-service');
    for (const m of present) expect((await m.group!.process(proposal)).kind).toBe('proposal');
    const { seen } = await commitAndDeliver(w.carol, present.filter((m) => m !== w.carol), (cg) => commitIntents(cg, []));
    expect(seen).toEqual({ removes: 0, impliedRemoves: aliceLeaves(w), intents: 1 });
    expect(names(w.carol.group!)).toEqual(['bob', 'carol', 'erin']);
    const remaining = present.filter((m) => m !== w.alice && m !== w.alicePhone);
    expectInSync(remaining);

    // An intent whose sender leaf has since updated: the DS refuses to propose it,
    // and members refuse it on receipt when an unchecking signer proposes it.
    const w2 = await world({ externalSender: ds.externalSenderSpec, requireIntents: true });
    const stale = createIntent(w2.carol.group!, 'senderRemovalOnly');
    await commitAndDeliver(w2.carol, w2.all.filter((m) => m !== w2.carol), (cg) => cg.selfUpdate());
    const g2 = w2.bob.group!;
    await ds.createGroup(g2.id, 'bob', { epoch: g2.epoch, groupInfo: await g2.exportGroupInfo() });
    // (this DS does not verify commits: a failed check is not final, test/intents-review7)
    await expect(ds.proposeIntent(g2.id, stale)).rejects.toMatchObject({ code: 'DS_REJECTED', reason: 'unverifiable-intent' });
    const staleProposal = ds.externalSender.proposeIntent({ groupId: g2.id, epoch: g2.epoch, senderIndex: 0 }, stale);
    await rejected(() => g2.process(staleProposal), 'stale-leaf');
    expect(g2.state().pendingProposals).toBe(0);
  });

  it('custom proposals from external senders need the type among the required capabilities', async () => {
    const ds = await DeliveryService.create();
    const w = await world({ externalSender: ds.externalSenderSpec });
    const intent = createIntent(w.alice.group!, 'senderRemovalOnly');
    const g = w.bob.group!;
    const proposal = ds.externalSender.proposeIntent({ groupId: g.id, epoch: g.epoch, senderIndex: 0 }, intent);
    await refused(() => g.process(proposal), 'PROTOCOL', 'invalid for the Sender of type External');
    expect(g.state().pendingProposals).toBe(0);
  });

  it('an external commit carries an intent; the joiner takes a leaf it frees; overlap with a Remove is refused', async () => {
    const w = await world();
    const intent = createIntent(w.alice.group!, 'removeAssociatedMembers');
    const present = await unrelatedChanges(w);
    const implied = aliceLeaves(w);
    const frank = await member('frank');
    const info = await w.bob.group!.exportGroupInfo();

    // The intent and a Remove of one of its leaves in one external commit (under that leaf's identity,
    // with a key of frank's: a Remove of another identity's leaf is refused before the build, INVALID_ARGUMENT).
    const removedName = w.bob.group!.members().find((m) => m.leafIndex === implied[1])!.credential.identity;
    const asRemoved = await frank.client.createIdentity(removedName, 1);
    await refused(() => frank.client.joinExternal(info, asRemoved, { capabilities: CAPS, custom: [intentProposal(intent)], remove: [implied[1]!] }), 'INVALID_MESSAGE', 'Duplicate remove');

    const { group, commit } = await frank.client.joinExternal(info, frank.identity, { capabilities: CAPS, custom: [intentProposal(intent)] });
    frank.group = group;
    expect(group.ownLeafIndex).toBe(implied[0]);
    const seen = await deliver(commit, present.filter((m) => m !== w.alice && m !== w.alicePhone));
    expect(seen).toEqual({ removes: 0, impliedRemoves: implied, intents: 1 });
    const remaining = [...present.filter((m) => m !== w.alice && m !== w.alicePhone), frank];
    expectInSync(remaining);
    expect(names(w.bob.group!)).toEqual(['bob', 'carol', 'erin', 'frank']);
  });

  it('refuses an intent and a Remove of the same leaf in one commit, a malformed proposal, and a stale intent', async () => {
    const w = await world();
    const intent = createIntent(w.alice.group!, 'removeAssociatedMembers');
    const epoch = w.bob.group!.epoch;
    // RFC 9420 §12.2: two Removes of one leaf. The intent implies alice-phone's.
    await refused(() => w.bob.group!.commit({ custom: [intentProposal(intent)], remove: [w.alicePhone.group!.ownLeafIndex] }), 'INVALID_MESSAGE', 'Duplicate remove');
    await rejected(() => w.bob.group!.commit({ custom: [{ proposalType: LEAF_OPERATION_PROPOSAL_TYPE, payload: new Uint8Array([1, 2, 3]) }] }), 'malformed');
    // alice updates: her intent no longer names her leaf; the engine refuses it.
    await commitAndDeliver(w.alice, w.all.filter((m) => m !== w.alice), (g) => g.selfUpdate());
    await rejected(() => w.bob.group!.commit({ custom: [intentProposal(intent)] }), 'stale-leaf');
    expect(w.bob.group!.state().pendingCommit).toBeFalsy();
    expect(w.bob.group!.epoch).toBe(epoch + 1);
    // The honest path still works: a fresh intent goes through.
    const fresh = createIntent(w.alice.group!, 'removeAssociatedMembers');
    await commitAndDeliver(w.bob, w.all.filter((m) => m !== w.bob), (g) => commitIntents(g, [fresh]));
    expect(names(w.bob.group!)).toEqual(['bob', 'carol', 'dave']);
  });

  it('rejects a wrong group, a stale leaf and a bad signature', async () => {
    const w = await world();
    const other = await world();
    const intent = createIntent(w.alice.group!);
    await rejected(() => validateIntent(other.bob.group!, intent), 'wrong-group');
    await rejected(() => other.bob.group!.commit({ custom: [intentProposal(intent)] }), 'wrong-group');
    const forged: LeafOperationIntent = { ...intent, signature: intent.signature.map((b, i) => (i === 0 ? b ^ 1 : b)) };
    await rejected(() => validateIntent(w.bob.group!, forged), 'bad-signature');
    await rejected(() => w.bob.group!.commit({ custom: [intentProposal(forged)] }), 'bad-signature');
    // Signed by someone else's key (bob claims alice's leaf).
    const tbs = encodeIntentTbs(intent);
    const bobSig = w.bob.client.read((core) => core.signWithLabel(w.bob.identity.signaturePublicKey, 1, 'LeafOperationIntentTBS', tbs));
    await rejected(() => validateIntent(w.carol.group!, { ...intent, signature: bobSig }), 'bad-signature');
    await rejected(() => validateIntent(w.carol.group!, { ...intent, senderIndex: 99 }), 'unknown-leaf');
    await rejected(() => w.carol.group!.commit({ custom: [intentProposal({ ...intent, senderIndex: 99 })] }), 'unknown-leaf');
    // alice updates after making the intent: the intent is stale.
    await commitAndDeliver(w.alice, w.all.filter((m) => m !== w.alice), (g) => g.selfUpdate());
    await rejected(() => validateIntent(w.bob.group!, intent), 'stale-leaf');
    await rejected(() => proposeIntent(w.bob.group!, intent), 'stale-leaf');
    await rejected(() => commitIntents(w.bob.group!, [intent]), 'stale-leaf');
    // Round trip of the wire formats.
    expect(decodeIntent(encodeIntent(intent))).toEqual(intent);
    expect(encodeIntentMessage(intent).subarray(0, 4)).toEqual(new Uint8Array([0, 1, 0xf1, 0xa0]));
  });

  it('the replay risk of a leaf that still holds its KeyPackage LeafNode is closed', async () => {
    // bob publishes a last-resort KeyPackage (reusable) and is added with it.
    const alice = await member('alice');
    const bob = await member('bob');
    alice.group = await alice.client.createGroup(alice.identity, { capabilities: CAPS });
    const lastResort = await bob.client.createKeyPackage(bob.identity, { capabilities: CAPS, lastResort: true });
    const add = await alice.group.commit({ add: [lastResort] });
    await alice.group.mergePendingCommit();
    bob.group = await bob.client.joinFromWelcome(add.welcome!, { capabilities: CAPS });
    const bobLeaf = bob.group.ownLeafIndex;

    // bob's leaf is still the KeyPackage's LeafNode: our API refuses to make an intent.
    await rejected(() => createIntent(bob.group!), 'key-package-leaf');
    // A hand-made intent for that leaf (as another implementation might make)…
    const cs = bob.group.state().ciphersuite;
    const leafRef = alice.client.read((core) => core.refHash(cs, 'MLS 1.0 LeafNode Reference', (core.leafNode(alice.group!.id, bobLeaf) as { leafNode: Uint8Array }).leafNode));
    const tbs = { groupId: bob.group.id, senderIndex: bobLeaf, senderLeafRef: leafRef, removalMode: 'senderRemovalOnly' as const };
    const signature = bob.client.read((core) => core.signWithLabel(bob.identity.signaturePublicKey, cs, 'LeafOperationIntentTBS', encodeIntentTbs(tbs)));
    const replayable: LeafOperationIntent = { ...tbs, signature };
    await rejected(() => validateIntent(alice.group!, replayable), 'key-package-leaf');
    // …would be replayable: remove bob, re-add him with the same KeyPackage,
    // and the leaf hash and signature match again. The rule still refuses it.
    await alice.group.commit({ remove: [bobLeaf] });
    await alice.group.mergePendingCommit();
    await alice.group.commit({ add: [lastResort] });
    await alice.group.mergePendingCommit();
    const again = alice.client.read((core) => core.refHash(cs, 'MLS 1.0 LeafNode Reference', (core.leafNode(alice.group!.id, bobLeaf) as { leafNode: Uint8Array }).leafNode));
    expect(again).toEqual(leafRef);
    await rejected(() => validateIntent(alice.group!, replayable), 'key-package-leaf');
    await rejected(() => commitIntents(alice.group!, [replayable]), 'key-package-leaf');
    // The engine refuses it too (a commit built without the TS check).
    await rejected(() => alice.group!.commit({ custom: [intentProposal(replayable)] }), 'key-package-leaf');
  });
});

/**
 * The application's association rule (draft §2.5: the recipient asks the
 * AS). alice has a phone and a laptop with different identities, both
 * registered to user 'alice'; the default rule does not associate them.
 */
describe('LeafOperationIntent: association through the AS', () => {
  /** Every member opened with `association(name)` (undefined: the default rule). */
  async function devices(association: (as: AuthenticationService, name: string) => LeafAssociation | undefined, order = ['alice-phone', 'alice-laptop', 'bob', 'carol', 'dave']) {
    const as = new AuthenticationService();
    const byName = new Map<string, Member>();
    for (const name of order) {
      const m = await member(name, name, association(as, name));
      as.register({ clientId: name, userId: name.startsWith('alice') ? 'alice' : name, identity: m.identity.identity, signatureKey: m.identity.signaturePublicKey });
      byName.set(name, m);
    }
    await formGroup(order.map((n) => byName.get(n)!));
    const [phone, laptop, bob, carol, dave] = ['alice-phone', 'alice-laptop', 'bob', 'carol', 'dave'].map((n) => byName.get(n)!) as [Member, Member, Member, Member, Member];
    const intent = createIntent(phone.group!, 'removeAssociatedMembers');
    return { as, phone, laptop, bob, carol, dave, intent, others: [laptop, carol, dave] };
  }

  const leaves = (...ms: Member[]) => ms.map((m) => m.group!.ownLeafIndex).sort((a, b) => a - b);

  it("with the AS's association, an intent alone removes both of alice's devices on every member", async () => {
    const w = await devices((as) => as.association());
    const { seen } = await commitAndDeliver(w.bob, w.others, (g) => commitIntents(g, [w.intent]));
    expect(seen).toEqual({ removes: 0, impliedRemoves: leaves(w.phone, w.laptop), intents: 1 });
    const remaining = [w.bob, w.carol, w.dave];
    expectInSync(remaining);
    for (const m of remaining) expect(names(m.group!)).toEqual(['bob', 'carol', 'dave']);
    await commitAndDeliver(w.carol, [w.bob, w.dave], (g) => g.selfUpdate());
    expectInSync(remaining);
  });

  it('without a hook the default rule (same type and identity) removes only the sender', async () => {
    const w = await devices(() => undefined);
    const { seen } = await commitAndDeliver(w.bob, w.others, (g) => commitIntents(g, [w.intent]));
    expect(seen).toEqual({ removes: 0, impliedRemoves: leaves(w.phone), intents: 1 });
    expect(names(w.bob.group!)).toEqual(['alice-laptop', 'bob', 'carol', 'dave']);
    expectInSync([w.laptop, w.bob, w.carol, w.dave]);
  });

  // The Removes are not on the wire: dave, with the default rule, removes only
  // the phone, so his tree differs from the committer's. Which check catches
  // it depends on the tree's shape; both refuse with INVALID_COMMIT.
  for (const [order, text] of [
    [['alice-phone', 'alice-laptop', 'bob', 'carol', 'dave'], 'length of the received update path'],
    [['alice-phone', 'bob', 'alice-laptop', 'dave', 'carol'], 'parent hash'],
  ] as const) {
    it(`a member whose association disagrees refuses the commit; the others continue (${text})`, async () => {
      const w = await devices((as, name) => (name === 'dave' ? undefined : as.association()), [...order]);
      const { commit } = await commitIntents(w.bob.group!, [w.intent]);
      await w.bob.group!.mergePendingCommit();
      const daveEpoch = w.dave.group!.epoch;
      await refused(() => w.dave.group!.process(commit), 'INVALID_COMMIT', text);
      expect(w.dave.group!.epoch).toBe(daveEpoch);
      await deliver(commit, [w.laptop, w.carol]);
      expectInSync([w.bob, w.carol]);
      expect(names(w.carol.group!)).toEqual(['bob', 'carol', 'dave']);
      await commitAndDeliver(w.carol, [w.bob], (g) => g.selfUpdate());
      expectInSync([w.bob, w.carol]);
    });
  }

  it('a committer whose association takes an extra member along is refused by every honest member', async () => {
    const w = await devices((as) => as.association());
    const carolLeaf = w.carol.group!.ownLeafIndex;
    // The attacker's (or a misconfigured) committer: the AS's answer plus carol.
    w.bob.client.setLeafAssociation({ associatedLeaves: (members, leaf) => [...w.as.association().associatedLeaves(members, leaf), carolLeaf] });
    const { commit } = await commitIntents(w.bob.group!, [w.intent]);
    for (const m of [w.laptop, w.carol, w.dave]) {
      const epoch = m.group!.epoch;
      await refused(() => m.group!.process(commit), 'INVALID_COMMIT', 'length of the received update path');
      expect(m.group!.epoch).toBe(epoch);
    }
    // bob drops it and commits with the AS's answer; everyone follows.
    await w.bob.group!.clearPendingCommit();
    w.bob.client.setLeafAssociation(w.as.association());
    const { seen } = await commitAndDeliver(w.bob, w.others, (g) => commitIntents(g, [w.intent]));
    expect(seen?.impliedRemoves).toEqual(leaves(w.phone, w.laptop));
    expectInSync([w.bob, w.carol, w.dave]);
  });

  it('a throwing hook or an answer naming no member refuses the commit, built or received', async () => {
    const w = await devices((as) => as.association());
    const honest = w.as.association();
    const answer = (leaves: unknown): LeafAssociation => ({ associatedLeaves: () => leaves as number[] });
    // The committer's own hook: nothing is built.
    for (const [bad, reason] of [
      [answer([99]), 'association-invalid'],
      [answer([w.phone.group!.ownLeafIndex + 0.5]), 'association-invalid'],
      [answer([-1]), 'association-invalid'],
      [answer('1'), 'association-invalid'],
      [{ associatedLeaves: () => { throw new Error('AS unreachable'); } }, 'association-failed'],
      // Calling back into the client that runs the hook is refused, not a panic.
      [{ associatedLeaves: () => w.bob.group!.members().map((m) => m.leafIndex) }, 'association-failed'],
    ] as const) {
      w.bob.client.setLeafAssociation(bad);
      await rejected(() => commitIntents(w.bob.group!, [w.intent]), reason);
    }
    expect(() => w.bob.client.setLeafAssociation({} as LeafAssociation)).toThrow(MlsError);
    // The committer's association may not take the committer along (RFC 9420 §12.2).
    w.bob.client.setLeafAssociation(answer([w.bob.group!.ownLeafIndex]));
    await refused(() => commitIntents(w.bob.group!, [w.intent]), 'INVALID_MESSAGE', 'would remove the committer');
    // A receiver whose hook fails refuses the honest commit.
    w.bob.client.setLeafAssociation(honest);
    w.dave.client.setLeafAssociation(answer([99]));
    const { commit } = await commitIntents(w.bob.group!, [w.intent]);
    await w.bob.group!.mergePendingCommit();
    await rejected(() => w.dave.group!.process(commit), 'association-invalid');
    await deliver(commit, [w.laptop, w.carol]);
    await commitAndDeliver(w.carol, [w.bob], (g) => g.selfUpdate());
    expectInSync([w.bob, w.carol]);
  });
});
