/**
 * A commit that moves its committer's leaf to another client, on a verifying
 * DS (docs/PROTOCOL.md §8.5). RFC 9420 lets a commit's UpdatePath replace
 * the committer's leaf with a new credential and key; the DS asked only
 * that the new leaf's client be the poster or the anchor it is a paired
 * device of. So a member that was also a paired device of another client's
 * account (an accomplice's, a stolen copy's own) moved its leaf to that
 * client: the member left the member list and the other came onto it, with
 * no Add, grant or Welcome, and read the group's log; a member holding a
 * second member's leaf key (two clients of one user) moved that leaf to
 * itself, the other off the list; and a member's external commit brought
 * its anchor into a closed group. Now the new leaf must carry a credential
 * the AS binds to the client of the leaf it replaces (403 `forbidden`,
 * nothing logged), a further or rotated key of that client still goes in,
 * and an external commit's new leaf must be its poster's own (`invalid-commit`).
 *
 * Since the core's default credential-succession policy (PROTOCOL §8.4,
 * RFC 9420 §5.3.1) a leaf keeps its credential identity: a move to another
 * identity (an accomplice's, a paired device's own, a thief's) is refused
 * by the committing client itself (INVALID_ARGUMENT, nothing built), and
 * one built by another engine by every member (CREDENTIAL_CHANGED) and by
 * the verifying DS's `verifyPublicCommit` (`invalid-commit`) before this
 * rule. What this rule still decides is a move to another client under
 * the same identity (a second client of one user, a further key).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlsClient, MlsError, toHex, utf8, type Group, type Identity } from 'paired-mls';
import { DeliveryClient, DsError } from 'paired-mls/services';
import type { RunningDeliveryServer } from 'paired-mls/server';
import { catchUp, dsPeer, groupStillWorks, postedSelfUpdate, proof, raw, refusalOf, tokenOf, twoVerifyingServers, verifiedGroup, type DsPeer } from './ds-helpers.js';
import { mlsError } from './helpers.js';


const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

const MOVED = { reason: 'forbidden', message: "a commit's UpdatePath leaf must carry a credential the AS binds to the member it is sent for (forbidden)", leaves: undefined, proposed: undefined };
/** The committing client's own refusal of a new credential of another identity (leaf `leaf`). */
const OWN_REFUSED = (leaf: number) => ({
  code: 'INVALID_ARGUMENT',
  message: `the new credential has another identity than this member's leaf ${leaf}: a leaf's credential may change only within its type and identity (RFC 9420 §5.3.1)`,
});
const NOT_SIGNED = { reason: 'invalid-commit', message: 'the commit is not signed by the posting client (invalid-commit)', leaves: undefined, proposed: undefined };

/** `p`'s selfUpdate putting `signer` on its leaf (undefined: a fresh key of its own credential), posted by `poster`: the seq, or the refusal (the pending commit then dropped), or `p`'s own refusal to build it. */
async function renamed(p: DsPeer, poster: DsPeer, signer?: Identity): Promise<number | ReturnType<typeof refusalOf> | { code: string; message: string }> {
  await catchUp(p);
  let u: Awaited<ReturnType<Group['commit']>>;
  try {
    u = await p.group!.commit({ selfUpdate: true, newSigner: signer, groupInfo: true });
  } catch (e) {
    if (!(e instanceof MlsError)) throw e;
    expect(p.group!.state().pendingCommit).toBeFalsy();
    return { code: e.code, message: e.message };
  }
  const r = await poster.ds.submit(p.group!.id, u.commit, { groupInfo: u.groupInfo }).catch((e: DsError) => e);
  if (r instanceof DsError) {
    await p.group!.clearPendingCommit();
    return refusalOf(r);
  }
  p.seen = r;
  await p.group!.mergePendingCommit();
  return r;
}

/** `key`, held by `holder`'s MLS client too (the same person, or an accomplice handing it over). */
const heldBy = async (holder: DsPeer, owner: { client: MlsClient }, key: Identity): Promise<Identity> =>
  holder.client.importIdentity(key.identity, owner.client.exportSignatureKeyPair(key), 1);

/** A further key of `p`'s client (user `userId`), registered from its own session (what the default policy lets a client, or a holder of its key, do). */
async function furtherKey(url: string, p: DsPeer, userId = p.name): Promise<Identity> {
  const key = await p.client.createIdentity(utf8(p.identity.identity), 1);
  const r = await raw(url, 'POST', '/v1/as/register', { ...(await proof(url, p.name, { client: p.client, identity: key })), userId, identity: b64(key.identity), ciphersuite: 1 }, await tokenOf(url, p.name, p));
  expect(r.status).toBe(200);
  return key;
}

/** `device` becomes a paired device of `anchor` at the DS (both sides ask). */
async function paired(anchor: DsPeer, device: DsPeer): Promise<void> {
  expect(await anchor.ds.initPairing(anchor.name, device.name)).toBe(false);
  expect(await device.ds.initPairing(anchor.name, device.name)).toBe(true);
}

function variants(kind: string, open: () => Promise<{ one: RunningDeliveryServer; two: RunningDeliveryServer }>, close: () => Promise<void>) {
  let s: RunningDeliveryServer;
  beforeAll(async () => {
    ({ one: s } = await open());
  }, 60_000);
  afterAll(close);

  /** pete's verified group with quinn, mallory and `more` (leaves 0, 1, 2…), the DS listed as external sender. */
  async function group(tag: string, more: DsPeer[] = []) {
    const [pete, quinn, mallory] = await Promise.all(['pete', 'quinn', 'mallory'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
    await verifiedGroup(pete!, [quinn!, mallory!, ...more], { extensions: { externalSenders: [s.ds.externalSenderSpec] } });
    const members = async () => (await s.ds.store.getGroup(toHex(pete!.group!.id)))!.members.sort();
    return { pete: pete!, quinn: quinn!, mallory: mallory!, members };
  }

  it(`${kind}: a member that is a paired device of an accomplice's account cannot move its leaf to the accomplice (its client refuses another identity; before the core's policy: 403 forbidden, and before that taken); to a second client of its own user: 403 forbidden, nothing logged; a further key and a rotated key of its own go in`, async () => {
    const tag = Math.random().toString(36).slice(2, 7);
    const { pete, quinn, mallory, members } = await group(tag);
    const bob = await dsPeer(s.url, `bob-${tag}`);
    const before = await members();
    await paired(bob, mallory);
    const bobKey = await heldBy(mallory, bob, bob.identity);
    expect(await renamed(mallory, mallory, bobKey)).toEqual(OWN_REFUSED(2));
    // Her own selfUpdate posted by bob himself: he is no member (a paired device reads through its anchor, not the other way).
    expect(refusalOf(await (async () => {
      const u = await mallory.group!.commit({ selfUpdate: true, groupInfo: true });
      await mallory.group!.clearPendingCommit();
      return bob.ds.submit(mallory.group!.id, u.commit, { groupInfo: u.groupInfo }).catch((e) => e);
    })())).toMatchObject({ reason: 'not-a-member' });
    // A second client of her user (vouched for by her, not in the group), and the accomplice without a pairing: the same.
    const second = await mallory.client.createIdentity(mallory.name, 1);
    await DeliveryClient.register(s.url, { clientId: `mallory2-${tag}`, userId: mallory.name, vouch: mallory.ds, client: mallory.client, identity: second });
    expect(await renamed(mallory, mallory, second)).toEqual(MOVED);
    await mallory.ds.ceasePairing(bob.name, mallory.name);
    expect(await renamed(mallory, mallory, bobKey)).toEqual(OWN_REFUSED(2));
    expect(await pete.ds.poll(pete.group!.id, pete.seen)).toEqual([]);
    expect(await members()).toEqual(before);
    expect(refusalOf(await bob.ds.poll(pete.group!.id, 0).catch((e) => e))).toMatchObject({ reason: 'not-a-member' });
    // How clients rotate: a further key of her own (the AS keeps the identity), then a key rotated to, both go in.
    const further = await furtherKey(s.url, mallory);
    expect(await renamed(mallory, mallory, further)).toBeGreaterThan(0);
    const rotated = await mallory.client.createIdentity(mallory.name, 1);
    await mallory.ds.rotateKey(rotated);
    expect(await renamed(mallory, mallory, rotated)).toBeGreaterThan(0);
    expect(utf8(pete.group!.members().find((m) => m.leafIndex === 2)!.credential.identity)).toBe(mallory.name);
    expect(await members()).toEqual(before);
    await groupStillWorks([pete, quinn, mallory], 'her leaf stays hers');
    await groupStillWorks([mallory, pete, quinn], 'and she reads on');
  });

  it(`${kind}: a member posting the commit of a second client's leaf (one user's two clients, both members) that moves it to a further key of its own: 403 forbidden (before: taken, the second client off the member list); that leaf's own commit, posted by the first: invalid-commit as before`, async () => {
    const tag = Math.random().toString(36).slice(2, 7);
    // mallory2: a second client of mallory's user with a client of its own (leaf 3), whose key mallory also holds.
    const m2 = await MlsClient.open();
    const own = await m2.createIdentity(`mallory-${tag}`, 1);
    const mallory2: DsPeer = { name: `mallory2-${tag}`, client: m2, identity: own, seen: 0, ds: undefined as unknown as DeliveryClient };
    const [pete, quinn, mallory] = await Promise.all(['pete', 'quinn', 'mallory'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
    mallory2.ds = await DeliveryClient.register(s.url, { clientId: mallory2.name, userId: mallory!.name, vouch: mallory!.ds, client: m2, identity: own });
    await verifiedGroup(pete!, [quinn!, mallory!, mallory2], { extensions: { externalSenders: [s.ds.externalSenderSpec] } });
    const members = async () => (await s.ds.store.getGroup(toHex(pete!.group!.id)))!.members.sort();
    const before = await members();
    // mallory2 registers a further key, which leaf 2 (mallory's) is moved to, in a commit signed as leaf 2, posted by mallory2.
    const further = await heldBy(mallory!, mallory2, await furtherKey(s.url, mallory2, mallory!.name));
    expect(await renamed(mallory!, mallory2, further)).toEqual(MOVED);
    expect(await renamed(mallory!, mallory2)).toEqual(NOT_SIGNED);
    expect(await pete!.ds.poll(pete!.group!.id, pete!.seen)).toEqual([]);
    expect(await members()).toEqual(before);
    await groupStillWorks([pete!, quinn!, mallory!, mallory2], 'four members');
  });

  it(`${kind}: a paired device posting for its anchor: the anchor's selfUpdate (its key, a further key of it) goes in; a move to the device's own credential or an outsider's is refused by the anchor's client (another identity; before the core's policy: 403 forbidden)`, async () => {
    const tag = Math.random().toString(36).slice(2, 7);
    const { pete, quinn, mallory, members } = await group(tag);
    const [phone, bob] = await Promise.all([dsPeer(s.url, `pete-phone-${tag}`), dsPeer(s.url, `bob-${tag}`)]);
    await paired(pete, phone);
    const before = await members();
    expect(await renamed(pete, phone)).toBeGreaterThan(0);
    expect(await renamed(pete, phone, await furtherKey(s.url, pete))).toBeGreaterThan(0);
    expect(await renamed(pete, phone, await heldBy(pete, phone, phone.identity))).toEqual(OWN_REFUSED(0));
    expect(await renamed(pete, phone, await heldBy(pete, bob, bob.identity))).toEqual(OWN_REFUSED(0));
    expect(await members()).toEqual(before);
    await groupStillWorks([pete, quinn, mallory], 'the anchor leaf stays the anchor');
  });

  it(`${kind}: external commits: a member that is a paired device of another client posts one with that client's key to a closed group: invalid-commit (before: that client joined it, no member asked); a member's resync with its own key goes in, with a further key of its own it is invalid-commit (members refuse it: it removes a leaf of another key)`, async () => {
    const tag = Math.random().toString(36).slice(2, 7);
    const { pete, quinn, mallory, members } = await group(tag);
    const gid = pete.group!.id;
    const bob = await dsPeer(s.url, `bob-${tag}`);
    await paired(bob, quinn);
    const before = await members();
    /** An external commit by a fresh client holding `key` (removing `remove`), posted by `poster` with the flag. */
    const external = async (poster: DsPeer, owner: DsPeer, key: Identity, remove: number[] = []) => {
      const c = await MlsClient.open();
      const identity = await c.importIdentity(key.identity, owner.client.exportSignatureKeyPair(key), 1);
      const joined = await c.joinExternal(await poster.ds.groupInfo(gid), identity, { remove, wireFormat: 'plaintext' });
      const r = await poster.ds.submit(gid, joined.commit, { externalJoin: true, groupInfo: await joined.group.exportGroupInfo() }).catch((e: DsError) => refusalOf(e));
      return { r, client: c, group: joined.group, identity };
    };
    expect((await external(quinn, bob, bob.identity)).r).toEqual({ reason: 'invalid-commit', message: "the joiner's credential is not the AS's binding of the posting client (invalid-commit)", leaves: undefined, proposed: undefined });
    expect(await pete.ds.poll(gid, pete.seen)).toEqual([]);
    expect(await members()).toEqual(before);
    // A resync: mallory rejoins with her own key, removing her leaf (2); with a further key of hers, the members' own check refuses it.
    const further = await furtherKey(s.url, mallory);
    expect((await external(mallory, mallory, further, [2])).r).toEqual({ reason: 'invalid-commit', message: "an external commit may only remove a leaf with the joiner's own signature key (resync) (invalid-commit)", leaves: undefined, proposed: undefined });
    const resync = await external(mallory, mallory, mallory.identity, [2]);
    expect(resync.r).toBeGreaterThan(0);
    Object.assign(mallory, { client: resync.client, group: resync.group, identity: resync.identity, seen: resync.r });
    expect(await members()).toEqual(before);
    await groupStillWorks([pete, quinn, mallory], 'after the resync');
    await groupStillWorks([mallory, pete, quinn], 'mallory on her new leaf');
  });

  it(`${kind}: a member holding a revoked client's leaf key (its thief) cannot move that leaf to a further key of its own (another identity: refused by the client; before the core's policy: 403 forbidden, and before that taken); the DS then removes the revoked leaf and the group goes on`, async () => {
    const tag = Math.random().toString(36).slice(2, 7);
    const { pete, quinn, mallory, members } = await group(tag);
    // The thief's copy of quinn's state, holding a further key of mallory's; quinn is revoked before the copy commits.
    const further = await heldBy(quinn, mallory, await furtherKey(s.url, mallory));
    await catchUp(quinn);
    await s.authentication.revoke(quinn.name);
    const err = await mlsError(() => quinn.group!.commit({ selfUpdate: true, newSigner: further, groupInfo: true }));
    expect({ code: err.code, message: err.message }).toEqual(OWN_REFUSED(1));
    expect(quinn.group!.state().pendingCommit).toBeFalsy();
    expect(await pete.ds.poll(pete.group!.id, pete.seen)).toEqual([]);
    // The honest path: pete's commit is refused revoked-leaf once, the DS proposes the Remove, his next commit covers it.
    expect(refusalOf(await postedSelfUpdate(pete))).toMatchObject({ reason: 'revoked-leaf', leaves: [1], proposed: true });
    expect(await postedSelfUpdate(pete)).toBeGreaterThan(0);
    expect(await members()).toEqual([mallory.name, pete.name].sort());
    await groupStillWorks([pete, mallory], 'without quinn');
    await groupStillWorks([mallory, pete], 'mallory on her one leaf');
  });

  it(`${kind}: a commit removing a member and adding another client's KeyPackage, which lands on the removed leaf's index, is an Add: with a KeyPackage the DS handed to no member, 403 not-granted, nothing logged; with one it handed the committer, it goes in and the Welcome reaches the added client`, async () => {
    const tag = Math.random().toString(36).slice(2, 7);
    const { pete, mallory, members } = await group(tag);
    const bob = await dsPeer(s.url, `bob-${tag}`);
    /** mallory's commit removing quinn (leaf 1) and adding `kp`: the DS's answer (refused: dropped). */
    const replace = async (kp: Uint8Array) => {
      await catchUp(mallory);
      const c = await mallory.group!.commit({ remove: [1], add: [kp], groupInfo: true });
      const r = await mallory.ds.submit(mallory.group!.id, c.commit, { groupInfo: c.groupInfo, welcome: c.welcome }).catch((e: DsError) => e);
      if (r instanceof DsError) await mallory.group!.clearPendingCommit();
      else await mallory.group!.mergePendingCommit();
      return r;
    };
    const handed = await bob.client.createKeyPackage(bob.identity);
    const ref = toHex(bob.client.inspectKeyPackage(handed).keyPackageRef).slice(0, 16);
    expect(refusalOf(await replace(handed))).toEqual({ reason: 'not-granted', message: `the commit adds a KeyPackage (${ref}…) this DS handed to no member (not-granted)`, leaves: undefined, proposed: undefined });
    expect(await pete.ds.poll(pete.group!.id, pete.seen)).toEqual([]);
    await bob.ds.uploadKeyPackages([await bob.client.createKeyPackage(bob.identity)]);
    const kps = await mallory.ds.fetchKeyPackages([bob.name]);
    const seq = await replace(kps.get(bob.name)!);
    expect(seq).toBeGreaterThan(0);
    mallory.seen = seq as number;
    expect(mallory.group!.members().find((m) => m.leafIndex === 1)!.credential.identity).toEqual(bob.identity.identity);
    expect(await members()).toEqual([bob.name, mallory.name, pete.name].sort());
    const [w] = await bob.ds.welcomes();
    bob.group = await bob.client.joinFromWelcome(w!.welcome, { wireFormat: 'plaintext' });
    bob.seen = seq as number;
    await groupStillWorks([bob, pete, mallory], 'bob on leaf 1');
  });

  it(`${kind}: a guarded rotation (every other key of the account revoked) and then the member's selfUpdate from its leaf's old key to the new one goes in; a commit by another member while that leaf still has the old key goes in too`, async () => {
    const tag = Math.random().toString(36).slice(2, 7);
    const { pete, quinn, mallory, members } = await group(tag);
    const before = await members();
    const secret = new Uint8Array(32).fill(7);
    const guard = { secret: async () => secret.slice() };
    await furtherKey(s.url, mallory);
    const k1 = await mallory.client.createIdentity(mallory.name, 1);
    await mallory.ds.rotateKey(k1, { nextGuard: guard });
    const k2 = await mallory.client.createIdentity(mallory.name, 1);
    await mallory.ds.rotateKey(k2, { guard });
    expect((await s.authentication.activeBindingsOf(mallory.name)).map((b) => toHex(b.signatureKey))).toEqual([toHex(k2.signaturePublicKey)]);
    expect(await postedSelfUpdate(pete)).toBeGreaterThan(0);
    expect(await renamed(mallory, mallory, k2)).toBeGreaterThan(0);
    await catchUp(pete);
    expect(toHex(pete.group!.members().find((m) => m.leafIndex === 2)!.signatureKey)).toBe(toHex(k2.signaturePublicKey));
    expect(await members()).toEqual(before);
    await groupStillWorks([mallory, pete, quinn], 'after her guarded rotation');
  });
}

describe('a commit moving its leaf to another client, SQLite (PROTOCOL §8.5)', () => {
  const { open, close } = twoVerifyingServers('SQLite', 'paired-mls-leaf-client-');
  variants('SQLite', open, close);
});

describe('a commit moving its leaf to another client, PostgreSQL (PROTOCOL §8.5)', () => {
  const { open, close } = twoVerifyingServers('PostgreSQL', '');
  variants('PostgreSQL', open, close);
});
