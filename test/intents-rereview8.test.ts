/**
 * Re-review (as an attacker) of review 8's LeafOperationIntent fixes
 * (test/intents-review8): engine change 42, the DS's association rule, its
 * key per signature scheme, revoked devices in a user's leave.
 *
 * 1. The DS's external-sender keys were new at every `DeliveryService.create`.
 *    Groups pin the key they list in external_senders, so after a restart,
 *    or at a second server on the same database, `proposeIntent` signed with
 *    a key no group lists: it logged the proposal and answered as if
 *    proposed, and every member refused it ("Verifying the signature failed"). Now
 *    it refuses first (`forbidden`; basic mode `unverifiable-intent`), and
 *    `externalSenderKeys` keeps the keys across restarts and servers.
 * 2. Change 42 cannot be turned against an honest commit: a copy of alice's
 *    intent that another member makes (an ECDSA signature (r, s) has the
 *    twin (r, n - s), valid without the key) and proposes beside hers
 *    overlaps it, and the committer includes one.
 * 3. A revoked binding widens a leave only within its own user, and a
 *    revoked key is not registered again (it was valid again, and the
 *    thief's wide leave took the user's other devices along).
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, type GroupOptions } from 'paired-mls';
import { commitIntents, createIntent, decodeIntent, encodeIntent, proposeIntent, validateIntent, type LeafOperationIntent } from 'paired-mls/intents';
import { AuthenticationService, DeliveryService, DsError, MemoryDeliveryStore } from 'paired-mls/services';
import { expectInSync, mlsError, type Member } from './helpers.js';
import { CAPS, names } from './intents-review-helpers.js';

const OPTIONS = { capabilities: CAPS, wireFormat: 'plaintext' as const };

async function member(name: string, cs: 1 | 2): Promise<Member> {
  const client = await MlsClient.open();
  return { name, client, identity: await client.createIdentity(name, cs) };
}

/** `from`'s message goes through the DS (accepted), then to every other member of `to`; `from` merges its commit. */
async function through(ds: DeliveryService, from: Member, bytes: Uint8Array, to: Member[], groupInfo?: Uint8Array): Promise<void> {
  expect(await ds.submit(from.group!.id, from.name, bytes, { groupInfo })).toMatchObject({ accepted: true });
  if (groupInfo) await from.group!.mergePendingCommit();
  for (const m of to.filter((o) => o !== from)) {
    const r = await m.group!.process(bytes);
    if (r.kind === 'commit') await r.staged.merge();
  }
}

/** A group of `all` through a verifying DS, everyone updated once (no KeyPackage leaf). */
async function verifiedWorld(ds: DeliveryService, all: Member[], extensions: GroupOptions['extensions']) {
  const [creator, ...rest] = all;
  const g = await creator!.client.createGroup(creator!.identity, { ...OPTIONS, extensions });
  creator!.group = g;
  await ds.createGroup(g.id, creator!.name, { epoch: 0, groupInfo: await g.exportGroupInfo() });
  const add = await g.commit({ add: await Promise.all(rest.map((m) => m.client.createKeyPackage(m.identity, { capabilities: CAPS }))), groupInfo: true });
  expect(await ds.submit(g.id, creator!.name, add.commit, { groupInfo: add.groupInfo, welcome: add.welcome })).toMatchObject({ accepted: true });
  await g.mergePendingCommit();
  for (const m of rest) m.group = await m.client.joinFromWelcome(add.welcome!, OPTIONS);
  for (const m of all) {
    const u = await m.group!.selfUpdate({ groupInfo: true });
    await through(ds, m, u.commit, all, u.groupInfo);
  }
  expectInSync(all);
  return g.id;
}

/** An operator's DS key pairs, made once and kept (here: on a throwaway client). */
async function operatorKeys(): Promise<{ ed25519: Uint8Array; p256: Uint8Array }> {
  const c = await MlsClient.open();
  return {
    ed25519: c.exportSignatureKeyPair(await c.createIdentity('delivery-service', 1)),
    p256: c.exportSignatureKeyPair(await c.createIdentity('delivery-service', 2)),
  };
}

describe("the DS's external-sender keys across a restart and a second server", () => {
  it.each([1, 2] as const)("ciphersuite %i: a restarted DS without its keys refuses proposeIntent (it logged a proposal every member refused); one given externalSenderKeys proposes, and the group commits", async (cs) => {
    const store = new MemoryDeliveryStore();
    const first = await DeliveryService.create({ store, verifyCommits: true });
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => member(n, cs)));
    const all = [alice!, bob!, carol!];
    const gid = await verifiedWorld(first, all, { externalSenders: [first.externalSenderSpecFor(cs)], requiredCapabilities: CAPS });
    const intent = createIntent(alice!.group!, 'senderRemovalOnly');
    const logged = (await first.poll('bob', gid, 0)).length;
    // The same store, a new process: new keys, which the group does not list.
    const restarted = await DeliveryService.create({ store, verifyCommits: true });
    const err = await restarted.proposeIntent(gid, intent).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DsError);
    expect(err).toMatchObject({ code: 'DS_REJECTED', reason: 'forbidden', message: expect.stringContaining(`the group's external sender 0 is not this DS's key for ciphersuite ${cs}`) });
    expect(await restarted.poll('bob', gid, 0)).toHaveLength(logged);
    // What it logged before: a proposal under a key the group does not list, which every member refuses.
    if (cs === 1) {
      const unlisted = restarted.externalSender.proposeIntent({ groupId: gid, epoch: bob!.group!.epoch, senderIndex: 0 }, intent);
      const refused = await mlsError(() => bob!.group!.process(unlisted));
      expect({ code: refused.code, message: refused.message }).toEqual({ code: 'INVALID_SIGNATURE', message: 'processing message: Verifying the signature failed.' });
    }
    // A basic-mode DS says the same, retryable (its GroupInfo is the last submitter's word).
    const basic = await DeliveryService.create({ store });
    await expect(basic.proposeIntent(gid, intent)).rejects.toMatchObject({ reason: 'unverifiable-intent', message: expect.stringContaining("is not this DS's key") });
    // The DS the group lists still proposes; the group commits it.
    const { proposal } = await first.proposeIntent(gid, intent);
    for (const m of [bob!, carol!]) expect((await m.group!.process(proposal)).kind).toBe('proposal');
    const c = await bob!.group!.commit({ includePending: true, groupInfo: true });
    await through(restarted, bob!, c.commit, [carol!], c.groupInfo);
    expect(names(carol!.group!)).toEqual(['bob', 'carol']);
  }, 60_000);

  it('two servers on one database with the same externalSenderKeys: either proposes in a P-256 group; the keys handed in are wiped; a pair of the wrong scheme is refused', async () => {
    const keys = await operatorKeys();
    const store = new MemoryDeliveryStore();
    const copy = () => ({ ed25519: keys.ed25519.slice(), p256: keys.p256.slice() });
    const handed = copy();
    const a = await DeliveryService.create({ store, verifyCommits: true, externalSenderKeys: handed });
    expect([handed.ed25519.every((b) => b === 0), handed.p256.every((b) => b === 0)]).toEqual([true, true]);
    const b = await DeliveryService.create({ store, verifyCommits: true, externalSenderKeys: copy() });
    expect(b.externalSenderSpecFor(2)).toEqual(a.externalSenderSpecFor(2));
    expect(b.externalSenderSpec).toEqual(a.externalSenderSpec);
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => member(n, 2)));
    const gid = await verifiedWorld(a, [alice!, bob!], { externalSenders: [a.externalSenderSpecFor(2)], requiredCapabilities: CAPS });
    const { proposal } = await b.proposeIntent(gid, createIntent(alice!.group!, 'senderRemovalOnly'));
    expect((await bob!.group!.process(proposal)).kind).toBe('proposal');
    const c = await bob!.group!.commit({ includePending: true, groupInfo: true });
    await through(a, bob!, c.commit, [], c.groupInfo);
    expect(names(bob!.group!)).toEqual(['bob']);
    await expect(DeliveryService.create({ externalSenderKeys: { ed25519: keys.p256.slice() } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'externalSenderKeys.ed25519 is not a key pair of that scheme',
    });
  }, 60_000);
});

/** The order of the P-256 group (SEC 2): (r, s) and (r, n - s) both verify. */
const P256_N = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

/** A DER INTEGER of a positive `n` (a 0 byte first when its top bit is set). */
function derInteger(n: bigint): number[] {
  const bytes = Array.from(Buffer.from(n.toString(16).padStart(64, '0'), 'hex'));
  while (bytes.length > 1 && bytes[0] === 0 && !(bytes[1]! & 0x80)) bytes.shift();
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return [0x02, bytes.length, ...bytes];
}

/** `intent` with its ECDSA signature's twin: made without the sender's key, by anyone holding a copy. */
function twin(intent: LeafOperationIntent): LeafOperationIntent {
  const der = intent.signature;
  const rLen = der[3]!;
  const r = BigInt(`0x${Buffer.from(der.subarray(4, 4 + rLen)).toString('hex')}`);
  const sLen = der[5 + rLen]!;
  const s = BigInt(`0x${Buffer.from(der.subarray(6 + rLen, 6 + rLen + sLen)).toString('hex')}`);
  const body = [...derInteger(r), ...derInteger(P256_N - s)];
  return { ...intent, signature: new Uint8Array([0x30, body.length, ...body]) };
}

describe('change 42 against an honest commit: a twin of alice\'s intent proposed beside hers', () => {
  it("mallory proposes the (r, n - s) twin of alice's pending intent, distinct bytes bound to alice's leaf; carol's commit of the pending proposals takes one, verifies at the DS, and every member follows", async () => {
    const ds = await DeliveryService.create({ verifyCommits: true });
    const [alice, bob, carol, mallory] = await Promise.all(['alice', 'bob', 'carol', 'mallory'].map((n) => member(n, 2)));
    const all = [alice!, bob!, carol!, mallory!];
    await verifiedWorld(ds, all, {});
    const intent = createIntent(alice!.group!, 'senderRemovalOnly');
    await through(ds, alice!, await proposeIntent(alice!.group!, intent), all);
    const copy = decodeIntent(encodeIntent(twin(intent)));
    expect(Buffer.from(copy.signature).equals(Buffer.from(intent.signature))).toBe(false);
    // The engine takes the twin (P-256 verification does not insist on a low s): another valid proposal for alice's leaf.
    validateIntent(bob!.group!, copy);
    await through(ds, mallory!, await proposeIntent(mallory!.group!, copy), all);
    // mallory also hands carol's own intent around: a proposal bound to the next committer.
    const carols = createIntent(carol!.group!, 'senderRemovalOnly');
    await through(ds, mallory!, await proposeIntent(mallory!.group!, carols), all);
    const c = await carol!.group!.commit({ includePending: true, groupInfo: true });
    await through(ds, carol!, c.commit, all.filter((m) => m !== alice), c.groupInfo);
    expect(names(carol!.group!)).toEqual(['bob', 'carol', 'mallory']);
    expectInSync([bob!, carol!, mallory!]);
    // The twins together in one commit are mallory's own failure: her engine refuses to build it.
    const again = createIntent(bob!.group!, 'senderRemovalOnly');
    const err = await mlsError(() => commitIntents(mallory!.group!, [again, twin(again)]));
    expect({ code: err.code, message: err.message }).toEqual({ code: 'INVALID_MESSAGE', message: 'building commit: Duplicate remove proposals for the same member.' });
  }, 60_000);
});

describe("the AS's association: a revoked binding counts only within its own user", () => {
  it("bob's revoked device is not in alice's leave; a device re-registered to bob leaves with bob's, not alice's; a revoked sender's leave covers no one", async () => {
    const as = new AuthenticationService();
    const all = await Promise.all(['alice', 'alice-tablet', 'bob', 'bob-old'].map((n) => member(n, 1)));
    for (const m of all) as.register({ clientId: m.name, userId: m.name.split('-')[0]!, identity: m.identity.identity, signatureKey: m.identity.signaturePublicKey });
    const [alice, ...rest] = all;
    const g = await alice!.client.createGroup(alice!.identity, { capabilities: CAPS });
    await g.commit({ add: await Promise.all(rest.map((m) => m.client.createKeyPackage(m.identity, { capabilities: CAPS }))) });
    await g.mergePendingCommit();
    const members = g.members();
    const leaf = (name: string) => members.find((m) => new TextDecoder().decode(m.credential.identity) === name)!.leafIndex;
    const rule = as.association();
    as.revoke('bob-old');
    expect(rule.associatedLeaves(members, leaf('alice'))).toEqual([leaf('alice-tablet')]);
    expect(rule.associatedLeaves(members, leaf('bob'))).toEqual([leaf('bob-old')]);
    // The tablet is handed to bob: re-registered under him (same client), it is his, and valid again.
    as.register({ clientId: 'alice-tablet', userId: 'bob', identity: all[1]!.identity.identity, signatureKey: all[1]!.identity.signaturePublicKey });
    expect(rule.associatedLeaves(members, leaf('alice'))).toEqual([]);
    expect(rule.associatedLeaves(members, leaf('bob')).sort()).toEqual([leaf('alice-tablet'), leaf('bob-old')].sort());
    // A revoked sender's wide leave is its own leaf alone; another client cannot take over its key.
    expect(rule.associatedLeaves(members, leaf('bob-old'))).toEqual([]);
    expect(() => as.register({ clientId: 'alice', userId: 'alice', identity: all[3]!.identity.identity, signatureKey: all[3]!.identity.signaturePublicKey })).toThrow(
      expect.objectContaining({ reason: 'registration-refused', message: 'this signature key belongs to another client (registration-refused)' }),
    );
  });

  it("alice's stolen phone, revoked, cannot be registered again: it was valid again, and the thief's wide leave took alice's laptop along", async () => {
    const as = new AuthenticationService();
    const all = await Promise.all(['alice-laptop', 'alice-phone', 'bob'].map((n) => member(n, 1)));
    const bindings = all.map((m) => ({ clientId: m.name, userId: m.name.split('-')[0]!, identity: m.identity.identity, signatureKey: m.identity.signaturePublicKey }));
    for (const b of bindings) as.register(b);
    const [laptop, ...rest] = all;
    const g = await laptop!.client.createGroup(laptop!.identity, { capabilities: CAPS });
    await g.commit({ add: await Promise.all(rest.map((m) => m.client.createKeyPackage(m.identity, { capabilities: CAPS }))) });
    await g.mergePendingCommit();
    const members = g.members();
    const rule = as.association();
    expect(rule.associatedLeaves(members, 1)).toEqual([0]);
    as.revoke('alice-phone');
    expect(rule.associatedLeaves(members, 1)).toEqual([]);
    // A re-provisioning flow registers the device's binding again, as it was.
    expect(() => as.register(bindings[1]!)).toThrow(expect.objectContaining({ reason: 'registration-refused', message: 'this signature key was revoked; revocation is final (registration-refused)' }));
    expect(as.validate(bindings[1]!.identity, bindings[1]!.signatureKey)).toBeUndefined();
    expect(rule.associatedLeaves(members, 1)).toEqual([]);
    // alice's own leave still takes the phone along, and bob is nobody's.
    expect(rule.associatedLeaves(members, 0)).toEqual([1]);
    expect(rule.associatedLeaves(members, 2)).toEqual([]);
  });
});
