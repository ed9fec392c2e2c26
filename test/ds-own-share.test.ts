/**
 * The DS's own share of an epoch's proposals (docs/PROTOCOL.md §5.4, §8.6),
 * against real servers on loopback (two on one SQLite file, two on one
 * PostgreSQL database). The DS proposed every intent that passed its
 * check, so a member handing it 62 copies of its own leave in one epoch
 * (each signed anew: P-256 signatures are randomised) filled the DS's
 * share of 62: other members' intents waited for the next epoch, and so did
 * the DS's Removes of revoked clients' leaves (`proposed: false`, every
 * app removing the leaf itself). Now the DS proposes one proposal a leaf
 * an epoch of each kind (alone: its Remove or a sender_removal_only intent;
 * with the associated members: a remove_associated_members intent), kept
 * in the store's transaction, so two servers cannot each log one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GroupOptions } from 'paired-mls';
import { createIntent, decodeIntent, type LeafOperationIntent } from 'paired-mls/intents';
import { DeliveryClient } from 'paired-mls/services';
import type { RunningDeliveryServer } from 'paired-mls/server';
import { WebSocket } from 'ws';
import { newMember } from './helpers.js';
import { groupStillWorks, twoVerifyingServers, verifiedGroup, postedSelfUpdate, refusalOf, type DsPeer } from './ds-helpers.js';
import { CAPS, resigned } from './intents-review-helpers.js';

/** A P-256 member registered and logged in at `url` (its intents can be signed anew, distinct bytes each). */
async function p256Peer(url: string, name: string): Promise<DsPeer> {
  const m = await newMember(name, { ciphersuite: 2 });
  const ds = await DeliveryClient.register(url, { clientId: name, client: m.client, identity: m.identity }, { WebSocket });
  return { ...m, ds, seen: 0 };
}

/** pete's verified P-256 group with quinn, bob, alice and mallory (leaves 0..4), listing the DS as external sender 0. */
async function group(s: RunningDeliveryServer) {
  const tag = Math.random().toString(36).slice(2, 7);
  const [pete, quinn, bob, alice, mallory] = await Promise.all(['pete', 'quinn', 'bob', 'alice', 'mallory'].map((n) => p256Peer(s.url, `${n}-${tag}`)));
  const options: GroupOptions = { capabilities: CAPS, extensions: { externalSenders: [s.ds.externalSenderSpecFor(2)], requiredCapabilities: CAPS } };
  await verifiedGroup(pete!, [quinn!, bob!, alice!, mallory!], options);
  return { pete: pete!, quinn: quinn!, bob: bob!, alice: alice!, mallory: mallory! };
}

/** The exact refusal of a second proposal for a leaf. */
const DUPLICATE = (leaf: number, epoch: number, wide = false) => ({
  reason: 'duplicate',
  message: `the removal of leaf ${leaf}${wide ? ' with its associated members' : ''} is already proposed in epoch ${epoch}: this DS proposes one a leaf an epoch, and the one logged stands (duplicate)`,
});

/** The DS's own messages logged in the group since `after`. */
async function fromDs(p: DsPeer, after: number): Promise<Uint8Array[]> {
  return (await p.ds.poll(p.group!.id, after)).filter((m) => m.sender === 'delivery-service').map((m) => m.message);
}

const copiesOf = (p: DsPeer, intent: LeafOperationIntent, n: number) => resigned(p, intent, n).map(decodeIntent);

function variants(kind: string, open: () => Promise<{ one: RunningDeliveryServer; two: RunningDeliveryServer }>, close: () => Promise<void>) {
  let one: RunningDeliveryServer;
  let two: RunningDeliveryServer;
  beforeAll(async () => {
    ({ one, two } = await open());
  }, 60_000);
  afterAll(close);

  it(`${kind}: bob hands the DS 62 copies of his leave (half at each server): one is logged, 61 refused 409 duplicate; the share still takes alice's intent and a revoked leaf's Remove (proposed: true), and the honest commit removes all three (before: the share full, alice's intent too-many-proposals, the Remove proposed: false)`, async () => {
    const { pete, quinn, bob, alice, mallory } = await group(one);
    const gid = pete.group!.id;
    const epoch = pete.group!.epoch;
    const start = pete.seen;
    const [first, ...copies] = copiesOf(bob, createIntent(bob.group!, 'senderRemovalOnly'), 62);
    const logged = await one.ds.proposeIntent(gid, first!);
    for (const [i, copy] of copies.entries()) {
      const at = i % 2 === 0 ? one : two;
      expect(refusalOf(await at.ds.proposeIntent(gid, copy).catch((e) => e))).toEqual({ ...DUPLICATE(2, epoch), leaves: undefined, proposed: undefined });
    }
    // A retry of the logged one, at either server: its first answer.
    expect(await two.ds.proposeIntent(gid, first!)).toEqual(logged);
    const alices = await two.ds.proposeIntent(gid, createIntent(alice.group!, 'senderRemovalOnly'));
    await mallory.ds.revoke();
    expect(refusalOf(await postedSelfUpdate(pete))).toEqual({
      reason: 'revoked-leaf',
      message: "leaf 4 is of a revoked client; this DS proposed its removal: process the group's messages and commit again (revoked-leaf)",
      leaves: [4],
      proposed: true,
    });
    const own = await fromDs(pete, start);
    expect(own).toHaveLength(3);
    expect(own.slice(0, 2)).toEqual([logged.proposal, alices.proposal]);
    // pete reads the log and commits again: bob's leave, alice's, and the DS's Remove of mallory's leaf go in.
    expect(await postedSelfUpdate(pete)).toBeGreaterThan(0);
    expect(pete.group!.members().map((m) => m.leafIndex)).toEqual([0, 1]);
    expect((await one.ds.store.getGroup(Buffer.from(gid).toString('hex')))!.members.sort()).toEqual([pete.name, quinn.name].sort());
    await groupStillWorks([pete, quinn], 'without bob, alice and mallory');
    await groupStillWorks([quinn, pete], 'both ways');
  });

  it(`${kind}: copies of bob's leave proposed at once at two servers on one database: exactly one is logged, the others refused duplicate (the store's transaction decides)`, async () => {
    const { pete, quinn, bob } = await group(one);
    const gid = pete.group!.id;
    const copies = copiesOf(bob, createIntent(bob.group!, 'senderRemovalOnly'), 8);
    const results = await Promise.allSettled(copies.map((c, i) => (i % 2 === 0 ? one : two).ds.proposeIntent(gid, c)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) expect(refusalOf(r.reason)).toMatchObject(DUPLICATE(2, pete.group!.epoch));
    expect(await fromDs(pete, pete.seen)).toHaveLength(1);
    expect(await postedSelfUpdate(pete)).toBeGreaterThan(0);
    expect(pete.group!.members().map((m) => m.leafIndex)).toEqual([0, 1, 3, 4]);
    await groupStillWorks([pete, quinn], 'bob gone');
  });

  it(`${kind}: the other kind is not held back: bob's wide leave after his narrow one goes in (a copy of either is duplicate); a narrow intent of a leaf makes the DS's Remove of it needless, and its Remove makes a narrow intent needless; an intent of no leaf, or stale after the epoch moved, is refused by the check`, async () => {
    const { pete, quinn, bob, alice, mallory } = await group(one);
    const gid = pete.group!.id;
    const epoch = pete.group!.epoch;
    const start = pete.seen;
    const narrow = createIntent(bob.group!, 'senderRemovalOnly');
    const wide = createIntent(bob.group!, 'removeAssociatedMembers');
    const proposed = [(await one.ds.proposeIntent(gid, narrow)).proposal, (await two.ds.proposeIntent(gid, wide)).proposal];
    expect(refusalOf(await one.ds.proposeIntent(gid, copiesOf(bob, wide, 1)[0]!).catch((e) => e))).toMatchObject(DUPLICATE(2, epoch, true));
    expect(refusalOf(await two.ds.proposeIntent(gid, copiesOf(bob, narrow, 1)[0]!).catch((e) => e))).toMatchObject(DUPLICATE(2, epoch));
    // No leaf 9: the check refuses it (the dedupe keys only what was logged).
    expect(refusalOf(await one.ds.proposeIntent(gid, { ...narrow, senderIndex: 9 }).catch((e) => e))).toMatchObject({ reason: 'unknown-leaf' });
    // mallory's own leave, then her client revoked (alice's too): the DS's Remove of leaf 4 is needless, that of leaf 3 is proposed.
    proposed.push((await one.ds.proposeIntent(gid, createIntent(mallory.group!, 'senderRemovalOnly'))).proposal);
    await mallory.ds.revoke();
    await alice.ds.revoke();
    // pete commits before reading the log (mallory's intent not yet queued): his commit keeps both leaves.
    const early = await pete.group!.selfUpdate({ groupInfo: true });
    expect(refusalOf(await pete.ds.submit(gid, early.commit, { groupInfo: early.groupInfo }).catch((e) => e))).toMatchObject({ reason: 'revoked-leaf', leaves: [3, 4], proposed: true });
    await pete.group!.clearPendingCommit();
    const own = await fromDs(pete, start);
    expect(own).toHaveLength(4);
    expect(own.slice(0, 3)).toEqual(proposed);
    // alice's narrow intent after the DS's Remove of her leaf: needless.
    expect(refusalOf(await two.ds.proposeIntent(gid, createIntent(alice.group!, 'senderRemovalOnly')).catch((e) => e))).toMatchObject(DUPLICATE(3, epoch));
    // quinn's intent, then her update through the DS: the DS's check uses the new epoch's state, not the one it last checked against.
    const stale = createIntent(quinn.group!, 'senderRemovalOnly');
    expect(await postedSelfUpdate(pete)).toBeGreaterThan(0);
    expect(pete.group!.members().map((m) => m.leafIndex)).toEqual([0, 1]);
    expect(await postedSelfUpdate(quinn)).toBeGreaterThan(0);
    expect(refusalOf(await one.ds.proposeIntent(gid, stale).catch((e) => e))).toMatchObject({ reason: 'stale-leaf' });
    await groupStillWorks([pete, quinn], 'bob, alice and mallory gone');
    await groupStillWorks([quinn, pete], 'both ways');
  });
}

describe("the DS's own share, one proposal a leaf an epoch, SQLite (PROTOCOL §5.4, §8.6)", () => {
  const { open, close } = twoVerifyingServers('SQLite', 'paired-mls-own-share-');
  variants('SQLite', open, close);
});

describe("the DS's own share, one proposal a leaf an epoch, PostgreSQL (PROTOCOL §5.4, §8.6)", () => {
  const { open, close } = twoVerifyingServers('PostgreSQL', '');
  variants('PostgreSQL', open, close);
});
