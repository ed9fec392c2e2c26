/**
 * A verifying DS's check of posted Update proposals (docs/PROTOCOL.md §8.5),
 * attacked: the two hand-written readers it rests on against the core's own
 * parse (a tree with blank leaves and parent nodes, Ed25519 and P-256; every
 * cut, a length the QUIC-style varint of RFC 9420 §2.1.2 refuses, another
 * credential type), and what the DS does with an Update it cannot read all
 * of: one with a broken signature or membership tag, or cut after its
 * credential, is logged (the DS holds no epoch secrets to check a tag) and
 * every member refuses it, so no commit covers it; one cut before is 400
 * `malformed`, an X.509 one 403 `forbidden`, one
 * of a past epoch 409 `stale`; honest Updates of a P-256 group still go in.
 * The sender-leaf attack itself: test/ds-revoked-leaf ("an Update proposal
 * from another member's leaf…").
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { MlsClient, toHex, type MlsError } from 'paired-mls';
import { DeliveryClient } from 'paired-mls/services';
import type { DeliveryServerOptions } from 'paired-mls/server';
import { readUpdateProposalLeaf } from '../ts/codec/mls-header.js';
import { treeLeafOf } from '../ts/services/ds-checks.js';
import { newMember, type Member } from './helpers.js';
import { catchUp, dsPeer, groupStillWorks, raw, sqliteServers, tokenOf, verifiedGroup, type DsPeer } from './ds-helpers.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** A P-256 (suite 2) member registered at `url` and logged in. */
async function p256Peer(url: string, name: string): Promise<DsPeer> {
  const m = await newMember(name, { ciphersuite: 2 });
  return { ...m, seen: 0, ds: await DeliveryClient.register(url, { clientId: name, client: m.client, identity: m.identity }) };
}

/** `p` processes the log as an app does: a message it refuses is skipped (counted), a commit merged. */
async function catchUpRefusing(p: DsPeer): Promise<number> {
  let refused = 0;
  for (const m of await p.ds.poll(p.group!.id, p.seen)) {
    p.seen = m.seq;
    if (m.sender === p.name) continue;
    const r = await p.group!.process(m.message).catch(() => undefined);
    if (!r) refused++;
    else if (r.kind === 'commit') await r.staged.merge();
  }
  return refused;
}

/** `update` with its new leaf's credential type (the u16 before the identity) set to X.509 (2), the identity kept as its content. */
function toX509(update: Uint8Array, identity: Uint8Array): Uint8Array {
  const out = update.slice();
  const at = Buffer.from(out).indexOf(Buffer.from(identity)) - 1 - 2;
  out[at] = 0;
  out[at + 1] = 2;
  return out;
}

/** A group of `names` in `suite` (no DS), each having committed once; the creator then removes the second: a blank leaf 1. */
async function treeWithBlank(suite: number): Promise<Member[]> {
  const members = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => newMember(`${n}-member-of-suite-${suite}`, { ciphersuite: suite })));
  const [creator, ...others] = members;
  creator!.group = await creator!.client.createGroup(creator!.identity, { wireFormat: 'plaintext' });
  const add = await creator!.group.commit({ add: await Promise.all(others.map((m) => m.client.createKeyPackage(m.identity))) });
  await creator!.group.mergePendingCommit();
  for (const m of others) m.group = await m.client.joinFromWelcome(add.welcome!, { wireFormat: 'plaintext' });
  const rm = await creator!.group.commit({ remove: [1] });
  await creator!.group.mergePendingCommit();
  for (const m of members.slice(2)) {
    const r = await m.group!.process(rm.commit);
    if (r.kind === 'commit') await r.staged.merge();
  }
  return [creator!, ...members.slice(2)];
}

describe('the readers under the Update check (PROTOCOL §8.5)', () => {
  it.each([1, 2])('treeLeafOf reads every leaf of a stored GroupInfo as the core does (suite %i: blank leaf 1, parent nodes), nothing for a blank leaf, one past the tree or a cut GroupInfo', async (suite) => {
    const [creator] = await treeWithBlank(suite);
    const info = await creator!.group!.exportGroupInfo();
    const core = creator!.client.publicGroupMembers(info);
    expect(core.map((l) => l.leafIndex)).toEqual([0, 2, 3, 4]);
    for (const l of core) expect(treeLeafOf(info, l.leafIndex)).toEqual({ leafIndex: l.leafIndex, identity: l.identity, signatureKey: l.signatureKey });
    for (const blank of [1, 5, 2 ** 31]) expect(treeLeafOf(info, blank)).toBeUndefined();
    // Without its tree, or cut before leaf 4 is whole: no leaf 4.
    expect(treeLeafOf(await creator!.group!.exportGroupInfo({ ratchetTree: false }), 0)).toBeUndefined();
    const at = Buffer.from(info).indexOf(Buffer.from(core[3]!.signatureKey));
    for (let cut = 0; cut < at + core[3]!.signatureKey.length; cut++) expect(treeLeafOf(info.subarray(0, cut), 4)).toBeUndefined();
  });

  it.each([1, 2])("readUpdateProposalLeaf (suite %i): a member's Update read as the core builds it; every cut before its credential's end, a length of prefix 0b11 or not minimal: unread; the rest of the leaf (capabilities, extensions, signature) is the members' to check", async (suite) => {
    const [creator, c] = await treeWithBlank(suite);
    const update = await c!.group!.propose({ type: 'update' });
    const leaf = readUpdateProposalLeaf(update)!;
    const own = creator!.client.publicGroupMembers(await creator!.group!.exportGroupInfo()).find((l) => l.leafIndex === 2)!;
    expect({ leafIndex: leaf.leafIndex, identity: leaf.identity }).toEqual({ leafIndex: 2, identity: own.identity });
    expect(leaf.signatureKey).toEqual(own.signatureKey); // an Update keeps the leaf's key unless it rotates the credential
    const end = Buffer.from(update).indexOf(Buffer.from(own.identity)) + own.identity.length;
    for (let cut = 0; cut < end; cut++) expect(readUpdateProposalLeaf(update.subarray(0, cut))).toBeUndefined();
    expect(readUpdateProposalLeaf(update.subarray(0, end))).toEqual(leaf);
    // The group id's length (one byte, 16) written with prefix 0b11, or as a two-byte varint: no MLS length.
    const badLength = (bytes: number[]) => Uint8Array.from([...update.subarray(0, 4), ...bytes, ...update.subarray(5)]);
    expect(update[4]).toBe(16);
    expect(readUpdateProposalLeaf(badLength([0xc0, 0, 0, 0, 0, 0, 0, 16]))).toBeUndefined();
    expect(readUpdateProposalLeaf(badLength([0x40, 16]))).toBeUndefined();
    // Another credential type: no identity (the core's PublicLeaf has none either), so no client the AS binds.
    const x509 = toX509(update, own.identity);
    expect(readUpdateProposalLeaf(x509)!.identity).toEqual(new Uint8Array(0));
  });
});

describe('a verifying DS and Update proposals it cannot read all of (PROTOCOL §8.5)', () => {
  const start = sqliteServers('paired-mls-update-review-');
  let options: () => Omit<DeliveryServerOptions, 'store'>;
  beforeAll(async () => {
    const c = await MlsClient.open();
    const keys = { ed25519: c.exportSignatureKeyPair(await c.createIdentity('delivery-service', 1)), p256: c.exportSignatureKeyPair(await c.createIdentity('delivery-service', 2)) };
    options = () => ({ port: 0, verifyCommits: true, registrationRate: [1, 100], externalSenderKeys: { ed25519: keys.ed25519.slice(), p256: keys.p256.slice() } });
  });

  it('a member whose DS key was rotated: an Update from its leaf (the key rotated away still names it, §8.4) to its new key goes in, and the next commit covers it', async () => {
    const s = await start(options());
    const tag = Math.random().toString(36).slice(2, 7);
    const [pete, quinn] = await Promise.all(['pete', 'quinn'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
    await verifiedGroup(pete!, [quinn!], { extensions: { externalSenders: [s.ds.externalSenderSpec] } });
    const key = await quinn!.client.createIdentity(quinn!.name, 1);
    await quinn!.ds.rotateKey(key);
    const update = await quinn!.client.mutate((core) => core.dmlsProposeCredentialUpdate(quinn!.group!.id, key.identity, key.signaturePublicKey));
    quinn!.seen = await quinn!.ds.submit(quinn!.group!.id, update);
    await catchUp(pete!);
    const u = await pete!.group!.selfUpdate({ groupInfo: true });
    pete!.seen = await pete!.ds.submit(pete!.group!.id, u.commit, { groupInfo: u.groupInfo });
    await pete!.group!.mergePendingCommit();
    expect(pete!.group!.members().find((m) => m.leafIndex === 1)!.signatureKey).toEqual(key.signaturePublicKey);
    await groupStillWorks([pete!, quinn!], 'rotated');
  });

  it("a P-256 group: an honest Update goes in; a broken signature or membership tag, or one cut after its credential, is logged and every member refuses it (no commit covers it); cut in its credential: 400 malformed; X.509: 403 forbidden; a past epoch's: 409 stale", async () => {
    const s = await start(options());
    const tag = Math.random().toString(36).slice(2, 7);
    const [pete, quinn, mallory] = await Promise.all(['pete', 'quinn', 'mallory'].map((n) => p256Peer(s.url, `${n}-${tag}`)));
    await verifiedGroup(pete!, [quinn!, mallory!], { extensions: { externalSenders: [s.ds.externalSenderSpec] } });
    const gid = pete!.group!.id;
    const post = async (p: DsPeer, message: Uint8Array) => raw(s.url, 'POST', `/v1/groups/${toHex(gid)}/messages`, { message: b64(message) }, await tokenOf(s.url, p.name, p));
    quinn!.seen = await quinn!.ds.submit(gid, await quinn!.group!.propose({ type: 'update' }));
    const own = await mallory!.group!.propose({ type: 'update' });
    await mallory!.group!.clearPendingProposals();
    const flipped = (at: number) => {
      const out = own.slice();
      out[at]! ^= 1;
      return out;
    };
    // The last byte is the membership tag's (a 32-byte MAC), the one before it the signature's; cut after the credential.
    for (const bad of [flipped(own.length - 1), flipped(own.length - 34), own.subarray(0, own.length - 200)]) expect((await post(mallory!, bad)).status).toBe(200);
    // Cut inside the credential: no leaf to check.
    const cut = own.subarray(0, Buffer.from(own).indexOf(Buffer.from(mallory!.identity.identity)) + 3);
    expect(await post(mallory!, cut)).toEqual({ status: 400, body: { error: "not a member's Update proposal with a leaf node (malformed)", reason: 'malformed' } });
    expect(await post(mallory!, toX509(own, mallory!.identity.identity))).toEqual({ status: 403, body: { error: "an Update proposal's leaf must carry a credential the AS binds to the member it is sent for (forbidden)", reason: 'forbidden' } });
    // Every member refuses the broken ones; pete's commit covers quinn's Update only.
    const log = await pete!.ds.poll(gid, pete!.seen);
    expect(log.map((m) => m.sender)).toEqual([quinn!.name, mallory!.name, mallory!.name, mallory!.name]);
    // The tag covers the signature too: a member checks it first.
    const refusals = [];
    for (const m of log.slice(1)) refusals.push(await pete!.group!.process(m.message).then(() => 'taken', (e: MlsError) => [e.code, e.message]));
    expect(refusals).toEqual([
      ['INVALID_SIGNATURE', 'processing message: Membership tag is invalid.'],
      ['INVALID_SIGNATURE', 'processing message: Membership tag is invalid.'],
      ['MALFORMED', 'malformed MLS message: EndOfStream'],
    ]);
    await pete!.group!.process(log[0]!.message);
    pete!.seen = log.at(-1)!.seq;
    const u = await pete!.group!.selfUpdate({ groupInfo: true });
    pete!.seen = await pete!.ds.submit(gid, u.commit, { groupInfo: u.groupInfo });
    await pete!.group!.mergePendingCommit();
    // mallory's Update of the epoch before: stale, as before the check (the DS holds this epoch's tree only).
    expect(await post(mallory!, own)).toEqual({ status: 409, body: { error: `a message for epoch ${pete!.group!.epoch - 1}; the group is at ${pete!.group!.epoch} (stale)`, reason: 'stale' } });
    for (const p of [quinn!, mallory!]) await catchUpRefusing(p);
    await groupStillWorks([pete!, quinn!, mallory!], 'P-256 group works');
  });
});
