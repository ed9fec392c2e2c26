/**
 * Sixth review of the LeafOperationIntent layer (seed 004): the Delivery
 * Service is a recipient of the intent. Draft §2.3: "Recipients of a
 * LeafOperationIntent MUST perform the following steps" (group id, the
 * LeafNodeRef of the leaf at sender_index, the signature with that leaf's
 * key), and only "if the validation was successful" MAY it make a
 * LeafOperationProposal. The DS signed and logged whatever it was handed:
 * an intent for another group, a forged or stale one. Members refused it
 * (their engines check too), but the DS had put its external-sender
 * signature on it. It now checks against the group's current public state
 * (a GroupInfo with the ratchet tree) and without one proposes nothing.
 */
import { describe, expect, it } from 'vitest';
import { ExternalSender, IntentError, commitIntents, createIntent, encodeIntentTbs } from 'paired-mls/intents';
import { DeliveryService, DsError } from 'paired-mls/services';
import { expectInSync, type Member } from './helpers.js';
import { CAPS, deliver, names, world } from './intents-review-helpers.js';

async function thrown(fn: () => Promise<unknown>): Promise<unknown> {
  return fn().then(() => undefined, (e: unknown) => e);
}

async function refusedAs(fn: () => Promise<unknown>, reason: string): Promise<void> {
  const err = await thrown(fn);
  expect(err).toBeInstanceOf(IntentError);
  expect((err as IntentError).code).toBe('INTENT_INVALID');
  expect((err as IntentError).reason).toBe(reason);
}

async function dsRefused(fn: () => Promise<unknown>, reason: string): Promise<void> {
  const err = await thrown(fn);
  expect(err).toBeInstanceOf(DsError);
  expect((err as DsError).code).toBe('DS_REJECTED');
  expect((err as DsError).reason).toBe(reason);
}

async function commitAndDeliver(from: Member, to: Member[], op: () => Promise<{ commit: Uint8Array }>): Promise<Uint8Array> {
  const { commit } = await op();
  await from.group!.mergePendingCommit();
  await deliver(commit, to);
  return commit;
}

describe('LeafOperationIntent review 6: the DS checks an intent before it proposes it (draft §2.3)', () => {
  it('refuses a foreign, forged, stale or unknown-leaf intent, logging nothing; proposes the honest one, which the group commits', async () => {
    const ds = await DeliveryService.create();
    const w = await world('ciphertext', { externalSenders: [ds.externalSenderSpec], requiredCapabilities: CAPS });
    const other = await world();
    const g = w.bob.group!;
    const foreign = createIntent(other.alice.group!, 'senderRemovalOnly');
    const stale = createIntent(w.alice.group!, 'removeAssociatedMembers');
    // alice updates after making `stale`; her next intent is the honest one.
    await commitAndDeliver(w.alice, w.all.filter((m) => m !== w.alice), () => w.alice.group!.selfUpdate());
    const honest = createIntent(w.alice.group!, 'removeAssociatedMembers');
    // carol signs alice's fields with her own key: a forgery.
    const cs = g.state().ciphersuite;
    const forged = { ...honest, signature: w.carol.client.signWithLabel({ signaturePublicKey: w.carol.identity.signaturePublicKey, ciphersuite: cs }, 'LeafOperationIntentTBS', encodeIntentTbs(honest)) };
    await ds.createGroup(g.id, 'bob', { epoch: g.epoch, groupInfo: await g.exportGroupInfo() });
    const logged = (await ds.poll('bob', g.id)).length;

    await refusedAs(() => ds.proposeIntent(g.id, foreign), 'wrong-group');
    // This DS does not verify commits, so its stored GroupInfo is the last
    // submitter's word: a failed check is not final (review 7; the exact
    // IntentError in verified mode: test/ds-verified).
    for (const [intent, reason] of [[{ ...honest, senderIndex: 99 }, 'unknown-leaf'], [stale, 'stale-leaf'], [forged, 'bad-signature']] as const) {
      const err = await thrown(() => ds.proposeIntent(g.id, intent));
      expect((err as DsError).reason).toBe('unverifiable-intent');
      expect((err as DsError).message).toContain(`(${reason})`);
    }
    expect(await ds.poll('bob', g.id)).toHaveLength(logged);

    const { proposal } = await ds.proposeIntent(g.id, honest);
    const present = [w.bob, w.carol, w.dave];
    for (const m of present) expect((await m.group!.process(proposal)).kind).toBe('proposal');
    await commitAndDeliver(w.carol, [w.bob, w.dave], () => commitIntents(w.carol.group!, []));
    expect(names(w.carol.group!)).toEqual(['bob', 'carol', 'dave']);
    expectInSync(present);
  });

  it("proposes nothing without the group's current public state (no GroupInfo, one of an earlier epoch, one without the tree): unverifiable-intent, retryable", async () => {
    const ds = await DeliveryService.create();
    const w = await world('ciphertext', { externalSenders: [ds.externalSenderSpec], requiredCapabilities: CAPS });
    const g = w.bob.group!;
    const intent = createIntent(w.alice.group!, 'senderRemovalOnly');
    await ds.createGroup(g.id, 'bob', { epoch: g.epoch });
    await dsRefused(() => ds.proposeIntent(g.id, intent), 'unverifiable-intent');
    expect(await ds.poll('bob', g.id)).toHaveLength(0);

    // A GroupInfo the DS was given, then a commit that came without the next one.
    const w2 = await world('ciphertext', { externalSenders: [ds.externalSenderSpec], requiredCapabilities: CAPS });
    const g2 = w2.bob.group!;
    await ds.createGroup(g2.id, 'bob', { epoch: g2.epoch, groupInfo: await g2.exportGroupInfo() });
    const update = await commitAndDeliver(w2.bob, w2.all.filter((m) => m !== w2.bob), () => g2.selfUpdate());
    expect((await ds.submit(g2.id, 'bob', update)).accepted).toBe(true);
    const intent2 = createIntent(w2.alice.group!, 'senderRemovalOnly');
    await dsRefused(() => ds.proposeIntent(g2.id, intent2), 'unverifiable-intent');
    expect(await ds.poll('bob', g2.id)).toHaveLength(1);
    // Retryable: the next commit hands the DS its GroupInfo, and the same intent goes through.
    let withInfo: { commit: Uint8Array; groupInfo?: Uint8Array } | undefined;
    await commitAndDeliver(w2.bob, w2.all.filter((m) => m !== w2.bob), async () => (withInfo = await g2.selfUpdate({ groupInfo: true })));
    expect((await ds.submit(g2.id, 'bob', withInfo!.commit, { groupInfo: withInfo!.groupInfo })).accepted).toBe(true);
    const { proposal: retried } = await ds.proposeIntent(g2.id, intent2);
    expect((await w2.carol.group!.process(retried)).kind).toBe('proposal');

    // A GroupInfo of the current epoch without its ratchet tree: no leaves to check against.
    const w3 = await world('ciphertext', { externalSenders: [ds.externalSenderSpec], requiredCapabilities: CAPS });
    const g3 = w3.bob.group!;
    await ds.createGroup(g3.id, 'bob', { epoch: g3.epoch, groupInfo: await g3.exportGroupInfo({ ratchetTree: false }) });
    await dsRefused(() => ds.proposeIntent(g3.id, createIntent(w3.alice.group!, 'senderRemovalOnly')), 'unverifiable-intent');
    expect(await ds.poll('bob', g3.id)).toHaveLength(0);

    // The external sender's signer itself checks nothing: what it signs, members' engines still refuse.
    const signer: ExternalSender = ds.externalSender;
    const unchecked = signer.proposeIntent({ groupId: g.id, epoch: g.epoch, senderIndex: 0 }, { ...intent, senderIndex: 99 });
    await refusedAs(() => w.carol.group!.process(unchecked), 'unknown-leaf');
  });
});
