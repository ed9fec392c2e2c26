/**
 * LeafOperationIntent (draft-kohbrok-mls-leaf-operation-intents): an intent
 * made in epoch e is proposed and committed epochs later, by a member or
 * by an external sender, and removes exactly the leaves it implies; every
 * invalid intent or mismatching commit is refused and changes nothing.
 */
import { describe, expect, it } from 'vitest';
import {
  ExternalSender,
  IntentError,
  LEAF_OPERATION_PROPOSAL_TYPE,
  MlsClient,
  commitIntents,
  createIntent,
  decodeIntent,
  encodeIntent,
  encodeIntentMessage,
  encodeIntentTbs,
  intentProposal,
  processWithIntents,
  proposeIntent,
  validateIntent,
  type Group,
  type LeafOperationIntent,
} from 'paired-mls';
import { expectInSync, type Member } from './helpers.js';

const CAPS = { proposals: [LEAF_OPERATION_PROPOSAL_TYPE] };

async function member(name: string, identity = name): Promise<Member> {
  const client = await MlsClient.open();
  return { name, client, identity: await client.createIdentity(identity, 1) };
}

/** Deliver `message` to `members` through the intent rules; merge commits. */
async function deliver(message: Uint8Array, members: Member[]): Promise<void> {
  for (const m of members) {
    const r = await processWithIntents(m.group!, message);
    if (r.kind === 'commit') await r.staged.merge();
  }
}

async function commitAndDeliver(from: Member, others: Member[], op: (g: Group) => Promise<{ commit: Uint8Array; welcome?: Uint8Array }>): Promise<Uint8Array | undefined> {
  const { commit, welcome } = await op(from.group!);
  await from.group!.mergePendingCommit();
  await deliver(commit, others);
  return welcome;
}

/**
 * alice has two devices ("alice" identity on both: associated by the
 * default AS rule), with bob, carol and dave. Everyone has updated once,
 * so no leaf holds its KeyPackage LeafNode.
 */
async function world(options: { externalSender?: Member } = {}) {
  const alice = await member('alice');
  const alicePhone = await member('alice-phone', 'alice');
  const bob = await member('bob');
  const carol = await member('carol');
  const dave = await member('dave');
  const all = [alice, alicePhone, bob, carol, dave];
  const extensions = options.externalSender
    ? { externalSenders: [{ identity: options.externalSender.identity.identity, signatureKey: options.externalSender.identity.signaturePublicKey }] }
    : undefined;
  alice.group = await alice.client.createGroup(alice.identity, { capabilities: CAPS, extensions });
  const kps = await Promise.all(all.slice(1).map((m) => m.client.createKeyPackage(m.identity, { capabilities: CAPS })));
  const { welcome } = await alice.group.commit({ add: kps });
  await alice.group.mergePendingCommit();
  for (const m of all.slice(1)) m.group = await m.client.joinFromWelcome(welcome!, { capabilities: CAPS });
  for (const m of all) await commitAndDeliver(m, all.filter((o) => o !== m), (g) => g.selfUpdate());
  expectInSync(all);
  return { alice, alicePhone, bob, carol, dave, all };
}

/** Unrelated traffic between creating and using an intent: erin joins, dave leaves. */
async function unrelatedChanges(w: Awaited<ReturnType<typeof world>>): Promise<Member[]> {
  const erin = await member('erin');
  const welcome = await commitAndDeliver(w.bob, w.all.filter((m) => m !== w.bob), async (g) => g.commit({ add: [await erin.client.createKeyPackage(erin.identity, { capabilities: CAPS })] }));
  erin.group = await erin.client.joinFromWelcome(welcome!, { capabilities: CAPS });
  const present = [...w.all, erin];
  const daveLeaf = w.dave.group!.ownLeafIndex;
  await commitAndDeliver(w.carol, present.filter((m) => m !== w.carol), (g) => g.commit({ remove: [daveLeaf] }));
  return present.filter((m) => m !== w.dave);
}

const names = (g: Group) => g.members().map((m) => new TextDecoder().decode(m.credential.identity)).sort();

async function rejected(fn: () => Promise<unknown> | unknown, reason: string): Promise<void> {
  let error: unknown;
  try {
    await fn();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(IntentError);
  expect((error as IntentError).reason).toBe(reason);
}

describe('LeafOperationIntent', () => {
  it('made in epoch e, proposed by a member and committed in e+k, removes the sender and its associated devices', async () => {
    const w = await world();
    const epochE = w.alice.group!.epoch;
    const intent = createIntent(w.alice.group!, 'removeAssociatedMembers');
    // alice may now delete her state at once; the intent is all she leaves behind.
    const present = await unrelatedChanges(w);
    expect(w.bob.group!.epoch).toBeGreaterThan(epochE + 1);

    const proposal = await proposeIntent(w.bob.group!, intent);
    await deliver(proposal, present.filter((m) => m !== w.bob));
    await commitAndDeliver(w.carol, present.filter((m) => m !== w.carol), (g) => commitIntents(g, [], { byReference: [intent] }));
    const remaining = present.filter((m) => m !== w.alice && m !== w.alicePhone);
    expectInSync(remaining);
    expect(names(w.carol.group!)).toEqual(['bob', 'carol', 'erin']);
  });

  it('sender_removal_only removes just the sender, committed by value', async () => {
    const w = await world();
    const intent = createIntent(w.alice.group!, 'senderRemovalOnly');
    const present = await unrelatedChanges(w);
    await commitAndDeliver(w.bob, present.filter((m) => m !== w.bob), (g) => commitIntents(g, [intent]));
    expect(names(w.bob.group!)).toEqual(['alice', 'bob', 'carol', 'erin']);
    expect(w.bob.group!.members().some((m) => m.leafIndex === intent.senderIndex)).toBe(false);
    expectInSync(present.filter((m) => m !== w.alice));
  });

  it('proposed by an external sender (the DS) and committed epochs later', async () => {
    const ds = await member('delivery-service');
    const w = await world({ externalSender: ds });
    const intent = createIntent(w.alicePhone.group!, 'removeAssociatedMembers');
    const present = await unrelatedChanges(w);
    const g = w.bob.group!;
    const implied = [w.alice.group!.ownLeafIndex, w.alicePhone.group!.ownLeafIndex].sort((a, b) => a - b);
    const sender = new ExternalSender(ds.client, ds.identity);
    const proposals = sender.proposeIntentRemovals({ groupId: g.id, epoch: g.epoch, senderIndex: 0 }, intent, implied);
    for (const p of proposals) await deliver(p, present);
    await commitAndDeliver(w.carol, present.filter((m) => m !== w.carol), (cg) => commitIntents(cg, [intent], { pendingRemoves: implied }));
    expect(names(w.carol.group!)).toEqual(['bob', 'carol', 'erin']);
    expectInSync([w.bob, w.carol, present.find((m) => m.name === 'erin')!]);

    // An external Remove whose intent does not imply it is refused before processing.
    const w2 = await world({ externalSender: ds });
    const other = createIntent(w2.alice.group!, 'senderRemovalOnly');
    const g2 = w2.bob.group!;
    const [bogus] = sender.proposeIntentRemovals({ groupId: g2.id, epoch: g2.epoch, senderIndex: 0 }, other, [w2.carol.group!.ownLeafIndex]);
    await rejected(() => processWithIntents(g2, bogus!), 'removes-mismatch');
    expect(g2.state().pendingProposals).toBe(0);
  });

  it('rejects a wrong group, a stale leaf and a bad signature', async () => {
    const w = await world();
    const other = await world();
    const intent = createIntent(w.alice.group!);
    await rejected(() => validateIntent(other.bob.group!, intent), 'wrong-group');
    const forged: LeafOperationIntent = { ...intent, signature: intent.signature.map((b, i) => (i === 0 ? b ^ 1 : b)) };
    await rejected(() => validateIntent(w.bob.group!, forged), 'bad-signature');
    // Signed by someone else's key (bob claims alice's leaf).
    const tbs = encodeIntentTbs(intent);
    const bobSig = w.bob.client.read((core) => core.signWithLabel(w.bob.identity.signaturePublicKey, 1, 'LeafOperationIntentTBS', tbs));
    await rejected(() => validateIntent(w.carol.group!, { ...intent, signature: bobSig }), 'bad-signature');
    await rejected(() => validateIntent(w.carol.group!, { ...intent, senderIndex: 99 }), 'unknown-leaf');
    // alice updates after making the intent: the intent is stale.
    await commitAndDeliver(w.alice, w.all.filter((m) => m !== w.alice), (g) => g.selfUpdate());
    await rejected(() => validateIntent(w.bob.group!, intent), 'stale-leaf');
    await rejected(() => proposeIntent(w.bob.group!, intent), 'stale-leaf');
    await rejected(() => commitIntents(w.bob.group!, [intent]), 'stale-leaf');
    // Round trip of the wire formats.
    expect(decodeIntent(encodeIntent(intent))).toEqual(intent);
    expect(encodeIntentMessage(intent).subarray(0, 4)).toEqual(new Uint8Array([0, 1, 0xf1, 0xa0]));
  });

  it('rejects a commit whose Removes differ from the implied set (one missing, one extra) and keeps going', async () => {
    const w = await world();
    const intent = createIntent(w.alice.group!, 'removeAssociatedMembers');
    const receivers = w.all.filter((m) => m !== w.bob);
    const aliceLeaves = [w.alice.group!.ownLeafIndex, w.alicePhone.group!.ownLeafIndex];
    const carolLeaf = w.carol.group!.ownLeafIndex;
    for (const remove of [[aliceLeaves[0]!], [...aliceLeaves, carolLeaf]]) {
      const epoch = w.carol.group!.epoch;
      const { commit } = await w.bob.group!.commit({ custom: [intentProposal(intent)], remove });
      await w.bob.group!.clearPendingCommit();
      for (const m of receivers) await rejected(() => processWithIntents(m.group!, commit), 'removes-mismatch');
      expect(w.carol.group!.epoch).toBe(epoch);
    }
    // A malformed LeafOperationProposal is refused too.
    const { commit: garbled } = await w.bob.group!.commit({ custom: [{ proposalType: LEAF_OPERATION_PROPOSAL_TYPE, payload: new Uint8Array([1, 2, 3]) }], remove: aliceLeaves });
    await w.bob.group!.clearPendingCommit();
    await rejected(() => processWithIntents(w.carol.group!, garbled), 'malformed');
    // The right commit goes through.
    await commitAndDeliver(w.bob, receivers, (g) => commitIntents(g, [intent]));
    expect(names(w.bob.group!)).toEqual(['bob', 'carol', 'dave']);
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
  });
});
