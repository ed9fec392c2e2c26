/**
 * Live interoperability between paired-mls (openmls on wasm) and ts-mls
 * 1.6.4 (an independent TypeScript implementation of RFC 9420), ciphersuite 1.
 *
 * 1. Mixed groups created by either side; each side commits add, remove,
 *    self-update (UpdatePath) and an external PSK; application messages cross
 *    both ways; epoch authenticators and exporter values agree after every
 *    commit.
 * 2. External joins across implementations (see the notes there on ts-mls'
 *    non-RFC external_pub encoding).
 * 3. A seeded random mixed group: ≥ 20 members, ≥ 200 operations.
 *
 * Everything crosses as serialized MLSMessages. Handshakes go as
 * PrivateMessages (the default of both libraries); external commits are
 * PublicMessages, as RFC 9420 requires.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, toHex, utf8, type Group, type Identity } from 'paired-mls';
import {
  acceptAll,
  nobleCryptoProvider,
  createCommit,
  createGroup,
  createApplicationMessage,
  createGroupInfoWithExternalPubAndRatchetTree,
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  encodeMlsMessage,
  generateKeyPackage,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  joinGroup,
  joinGroupExternal,
  makePskIndex,
  mlsExporter,
  processPrivateMessage,
  processPublicMessage,
  type CiphersuiteImpl,
  type CryptoProvider,
  type ClientState,
  type GroupInfo,
  type KeyPackage,
  type PrivateKeyPackage,
  type Proposal,
} from 'ts-mls';
// Not re-exported from ts-mls' index, but public through its "./*.js" export map.
import { createGroupInfo } from 'ts-mls/createCommit.js';
import { encodeRatchetTree } from 'ts-mls/ratchetTree.js';
import { expand as hkdfExpand, extract as hkdfExtract } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { xorshift32 } from './helpers.js';

const enc = new TextEncoder();
const EXPORT_LABEL = 'interop-exporter';
const EXPORT_CONTEXT = enc.encode('interop context');

/**
 * ts-mls' crypto provider for ciphersuite 1, with HKDF from @noble/hashes.
 * Both stock providers of ts-mls 1.6.4 derive every secret through
 * @hpke/core's HkdfSha256, i.e. a WebCrypto HMAC importKey + sign per
 * HKDF-Expand; with secret trees and key schedules of 20+ members that
 * overhead made ts-mls ~90% of this file's runtime. The result is the same
 * HKDF (RFC 5869), so interop is unaffected; ts-mls' CryptoProvider hook
 * exists for exactly this.
 */
const fastKdfProvider: CryptoProvider = {
  async getCiphersuiteImpl(cs) {
    const base = await nobleCryptoProvider.getCiphersuiteImpl(cs);
    if (cs.hpke.kdf !== 'HKDF-SHA256') return base;
    const kdf: CiphersuiteImpl['kdf'] = {
      extract: async (salt, ikm) => hkdfExtract(sha256, ikm, salt),
      expand: async (prk, info, len) => hkdfExpand(sha256, prk, info, len),
      size: 32,
    };
    return { ...base, kdf };
  },
};

let suite: CiphersuiteImpl | undefined;
async function suite1(): Promise<CiphersuiteImpl> {
  suite ??= await getCiphersuiteImpl(getCiphersuiteFromName('MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519'), fastKdfProvider);
  return suite;
}

// ---------------------------------------------------------------------------
// A common interface over the two implementations.

interface CommitRequest {
  /** KeyPackages (MLSMessages) to add. */
  add?: Uint8Array[];
  /** Leaf indices to remove. */
  remove?: number[];
  /** External PSK id to inject (every member holds it). */
  psk?: Uint8Array;
  /** Commit with an UpdatePath even without proposals needing one. */
  update?: boolean;
}

interface CommitOut {
  commit: Uint8Array;
  welcome?: Uint8Array;
}

type Received = { kind: 'application'; text: string } | { kind: 'commit'; removed: boolean };

interface Actor {
  readonly name: string;
  readonly impl: 'paired-mls' | 'ts-mls';
  keyPackage(): Promise<Uint8Array>;
  storePsk(id: Uint8Array, secret: Uint8Array): Promise<void>;
  join(welcome: Uint8Array): Promise<void>;
  commit(req: CommitRequest): Promise<CommitOut>;
  encrypt(text: string): Promise<Uint8Array>;
  receive(message: Uint8Array): Promise<Received>;
  leaf(): number;
  epoch(): number;
  authenticator(): string;
  exporter(): Promise<string>;
}

class PairedActor implements Actor {
  readonly impl = 'paired-mls' as const;
  group: Group | undefined;
  private constructor(
    readonly name: string,
    readonly client: MlsClient,
    readonly identity: Identity,
  ) {}

  static async create(name: string): Promise<PairedActor> {
    const client = await MlsClient.open();
    return new PairedActor(name, client, await client.createIdentity(name, 1));
  }

  async createGroup(): Promise<void> {
    this.group = await this.client.createGroup(this.identity);
  }
  keyPackage(): Promise<Uint8Array> {
    return this.client.createKeyPackage(this.identity);
  }
  storePsk(id: Uint8Array, secret: Uint8Array): Promise<void> {
    return this.client.psks.store(id, secret);
  }
  async join(welcome: Uint8Array): Promise<void> {
    this.group = await this.client.joinFromWelcome(welcome);
  }
  async commit(req: CommitRequest): Promise<CommitOut> {
    const g = this.group!;
    const out = await g.commit({ add: req.add, remove: req.remove, psks: req.psk ? [req.psk] : undefined, selfUpdate: req.update });
    await g.mergePendingCommit();
    return out;
  }
  encrypt(text: string): Promise<Uint8Array> {
    return this.group!.encrypt(text);
  }
  async receive(message: Uint8Array): Promise<Received> {
    const r = await this.group!.process(message);
    if (r.kind === 'application') return { kind: 'application', text: utf8(r.data) };
    if (r.kind === 'commit') {
      const removed = r.staged.selfRemoved;
      await r.staged.merge();
      return { kind: 'commit', removed };
    }
    throw new Error(`${this.name}: unexpected ${r.kind}`);
  }
  leaf(): number {
    return this.group!.ownLeafIndex;
  }
  epoch(): number {
    return this.group!.epoch;
  }
  authenticator(): string {
    return toHex(this.group!.epochAuthenticator());
  }
  async exporter(): Promise<string> {
    return toHex(this.group!.exportSecret(EXPORT_LABEL, EXPORT_CONTEXT, 32));
  }
}

class TsActor implements Actor {
  readonly impl = 'ts-mls' as const;
  state: ClientState | undefined;
  /** External PSKs by base64 id, the key makePskIndex looks them up by. */
  readonly psks: Record<string, Uint8Array> = {};
  private constructor(
    readonly name: string,
    readonly cs: CiphersuiteImpl,
    readonly publicPackage: KeyPackage,
    readonly privatePackage: PrivateKeyPackage,
  ) {}

  static async create(name: string): Promise<TsActor> {
    const cs = await suite1();
    const kp = await generateKeyPackage({ credentialType: 'basic', identity: enc.encode(name) }, defaultCapabilities(), defaultLifetime, [], cs);
    return new TsActor(name, cs, kp.publicPackage, kp.privatePackage);
  }

  async createGroup(groupId: Uint8Array): Promise<void> {
    this.state = await createGroup(groupId, this.publicPackage, this.privatePackage, [], this.cs);
  }
  async keyPackage(): Promise<Uint8Array> {
    return encodeMlsMessage({ keyPackage: this.publicPackage, wireformat: 'mls_key_package', version: 'mls10' });
  }
  async storePsk(id: Uint8Array, secret: Uint8Array): Promise<void> {
    this.psks[Buffer.from(id).toString('base64')] = secret;
  }
  private pskIndex() {
    return makePskIndex(this.state, this.psks);
  }
  async join(welcome: Uint8Array): Promise<void> {
    const m = decodeMlsMessage(welcome, 0)![0];
    if (m.wireformat !== 'mls_welcome') throw new Error('expected a Welcome');
    this.state = await joinGroup(m.welcome, this.publicPackage, this.privatePackage, this.pskIndex(), this.cs);
  }
  async commit(req: CommitRequest): Promise<CommitOut> {
    const proposals: Proposal[] = [];
    for (const kp of req.add ?? []) {
      const m = decodeMlsMessage(kp, 0)![0];
      if (m.wireformat !== 'mls_key_package') throw new Error('expected a KeyPackage');
      proposals.push({ proposalType: 'add', add: { keyPackage: m.keyPackage } });
    }
    for (const leaf of req.remove ?? []) proposals.push({ proposalType: 'remove', remove: { removed: leaf } });
    if (req.psk) {
      proposals.push({
        proposalType: 'psk',
        psk: { preSharedKeyId: { psktype: 'external', pskId: req.psk, pskNonce: crypto.getRandomValues(new Uint8Array(32)) } },
      });
    }
    // ts-mls has no "force path" switch: a commit without proposals always
    // carries an UpdatePath (RFC 9420 §12.4), which is its self-update.
    if (req.update && proposals.length > 0) throw new Error('ts-mls: a self-update is an empty commit');
    const r = await createCommit({ state: this.state!, cipherSuite: this.cs, pskIndex: this.pskIndex() }, { extraProposals: proposals, ratchetTreeExtension: true });
    this.state = r.newState;
    return {
      commit: encodeMlsMessage(r.commit),
      welcome: r.welcome ? encodeMlsMessage({ welcome: r.welcome, wireformat: 'mls_welcome', version: 'mls10' }) : undefined,
    };
  }
  async encrypt(text: string): Promise<Uint8Array> {
    const r = await createApplicationMessage(this.state!, enc.encode(text), this.cs);
    this.state = r.newState;
    return encodeMlsMessage({ privateMessage: r.privateMessage, wireformat: 'mls_private_message', version: 'mls10' });
  }
  async receive(message: Uint8Array): Promise<Received> {
    const m = decodeMlsMessage(message, 0)![0];
    // Not ts-mls' processMessage: for PrivateMessages it passes an empty PSK
    // index instead of the caller's (processMessages.js), so commits with
    // external PSKs fail there. The per-wire-format functions take it.
    if (m.wireformat === 'mls_public_message') {
      const r = await processPublicMessage(this.state!, m.publicMessage, this.pskIndex(), this.cs, acceptAll);
      this.state = r.newState;
      return { kind: 'commit', removed: r.newState.groupActiveState.kind === 'removedFromGroup' };
    }
    if (m.wireformat !== 'mls_private_message') throw new Error(`unexpected ${m.wireformat}`);
    const r = await processPrivateMessage(this.state!, m.privateMessage, this.pskIndex(), this.cs, acceptAll);
    this.state = r.newState;
    return r.kind === 'applicationMessage'
      ? { kind: 'application', text: new TextDecoder().decode(r.message) }
      : { kind: 'commit', removed: r.newState.groupActiveState.kind === 'removedFromGroup' };
  }
  leaf(): number {
    return Number(this.state!.privatePath.leafIndex);
  }
  epoch(): number {
    return Number(this.state!.groupContext.epoch);
  }
  authenticator(): string {
    return toHex(this.state!.keySchedule.epochAuthenticator);
  }
  async exporter(): Promise<string> {
    return toHex(await mlsExporter(this.state!.keySchedule.exporterSecret, EXPORT_LABEL, EXPORT_CONTEXT, 32, this.cs));
  }
}

// ---------------------------------------------------------------------------
// Delivery and checks.

/** Known ts-mls 1.6.4 failures hit (and tolerated) while delivering commits. */
export const knownTsMlsFailures = { removedMemberSlotReused: 0 };

/**
 * `from` commits; every other member (removed ones included) processes it
 * and must see whether it was removed. Returns the Welcome.
 */
async function commitAll(from: Actor, req: CommitRequest, members: Actor[]): Promise<Uint8Array | undefined> {
  const removedLeaves = new Set(req.remove ?? []);
  const out = await from.commit(req);
  for (const m of members) {
    if (m === from) continue;
    const who = `${m.name} (${m.impl}) processing a commit of ${from.name} (${from.impl})`;
    const removed = removedLeaves.has(m.leaf());
    let r: Received;
    try {
      r = await m.receive(out.commit);
    } catch (err) {
      // ts-mls 1.6.4 bug: it decides "was I removed?" by looking at its own
      // leaf slot *after* the commit's Adds (clientState.js applyProposals:
      // `selfRemoved = mutatedTree[own leaf] === undefined`). When an Add in
      // the same commit fills the freed slot (RFC 9420 §12.1.1: leftmost
      // blank leaf), the removed member believes it stayed, tries to decrypt
      // the UpdatePath and throws. Only the removed member is affected; the
      // group goes on. Pure ts-mls groups fail the same way.
      if (removed && m.impl === 'ts-mls' && (req.add?.length ?? 0) > 0 && /No overlap between provided private keys and update path/.test(String(err))) {
        knownTsMlsFailures.removedMemberSlotReused++;
        continue;
      }
      throw new Error(`${who}: ${String(err)}`, { cause: err });
    }
    expect(r, who).toEqual({ kind: 'commit', removed });
  }
  return out.welcome;
}

async function say(from: Actor, members: Actor[], text: string): Promise<void> {
  const msg = await from.encrypt(text);
  for (const m of members) {
    if (m === from) continue;
    expect(await m.receive(msg), `${m.name} (${m.impl}) reading ${from.name} (${from.impl})`).toEqual({ kind: 'application', text });
  }
}

/** Same epoch, epoch authenticator and exporter value everywhere. */
async function expectAgree(members: Actor[], withExporter = true): Promise<void> {
  const first = members[0]!;
  const epoch = first.epoch();
  const auth = first.authenticator();
  const exported = withExporter ? await first.exporter() : '';
  for (const m of members) {
    const who = `${m.name} (${m.impl})`;
    expect(m.epoch(), who).toBe(epoch);
    expect(m.authenticator(), who).toBe(auth);
    if (withExporter) expect(await m.exporter(), who).toBe(exported);
  }
}

async function everyoneTalks(members: Actor[], tag: string): Promise<void> {
  for (const m of members) await say(m, members, `${tag}: hello from ${m.name} (${m.impl})`);
}

const PSK_ID = enc.encode('interop external psk');
const PSK_SECRET = crypto.getRandomValues(new Uint8Array(32));

async function freshPaired(name: string): Promise<PairedActor> {
  const a = await PairedActor.create(name);
  await a.storePsk(PSK_ID, PSK_SECRET);
  return a;
}
async function freshTs(name: string): Promise<TsActor> {
  const a = await TsActor.create(name);
  await a.storePsk(PSK_ID, PSK_SECRET);
  return a;
}

/**
 * The full round from one creator: each implementation adds, self-updates,
 * injects an external PSK and removes; messages cross after every step.
 */
async function fullRound(creator: PairedActor | TsActor): Promise<void> {
  const pA = creator.impl === 'paired-mls' ? creator : await freshPaired('p-A');
  const tA = creator.impl === 'ts-mls' ? creator : await freshTs('t-A');
  if (creator.impl === 'paired-mls') await (creator as PairedActor).createGroup();
  else await (creator as TsActor).createGroup(enc.encode(`group of ${creator.name}`));
  let members: Actor[] = [creator];
  const other = creator === pA ? tA : pA;

  // The creator adds the other implementation's first member.
  await other.join((await commitAll(creator, { add: [await other.keyPackage()] }, members))!);
  members.push(other);
  await expectAgree(members);
  await everyoneTalks(members, 'two members');

  // Each side adds a member of each implementation.
  const pB = await freshPaired('p-B');
  const tB = await freshTs('t-B');
  let w = await commitAll(pA, { add: [await tB.keyPackage(), await pB.keyPackage()] }, members);
  await tB.join(w!);
  await pB.join(w!);
  members.push(tB, pB);
  await expectAgree(members);
  const pC = await freshPaired('p-C');
  const tC = await freshTs('t-C');
  w = await commitAll(tA, { add: [await pC.keyPackage(), await tC.keyPackage()] }, members);
  await pC.join(w!);
  await tC.join(w!);
  members.push(pC, tC);
  await expectAgree(members);
  await everyoneTalks(members, 'six members');

  // Self-updates (commits with an UpdatePath) from both sides.
  for (const m of [pA, tA, pB, tB]) {
    await commitAll(m, { update: true }, members);
    await expectAgree(members);
  }
  await everyoneTalks(members, 'after updates');

  // External PSK from both sides.
  for (const m of [pB, tB]) {
    await commitAll(m, { psk: PSK_ID }, members);
    await expectAgree(members);
    await say(m, members, `after ${m.name}'s PSK commit`);
  }

  // Removes from both sides, each removing a member of the other implementation.
  await commitAll(pA, { remove: [tC.leaf()] }, members);
  members = members.filter((m) => m !== tC);
  await expectAgree(members);
  await commitAll(tA, { remove: [pC.leaf()] }, members);
  members = members.filter((m) => m !== pC);
  await expectAgree(members);
  await everyoneTalks(members, 'after removes');

  // A combined commit from each side: add + remove + PSK in one.
  const pD = await freshPaired('p-D');
  const tD = await freshTs('t-D');
  w = await commitAll(tB, { add: [await pD.keyPackage()], remove: [pB.leaf()], psk: PSK_ID }, members);
  members = members.filter((m) => m !== pB);
  await pD.join(w!);
  members.push(pD);
  await expectAgree(members);
  // tD lands in tB's freed leaf: ts-mls' removed tB trips over its
  // "removed?" check (see commitAll); the rest of the group is unaffected.
  const before = knownTsMlsFailures.removedMemberSlotReused;
  w = await commitAll(pD, { add: [await tD.keyPackage()], remove: [tB.leaf()], psk: PSK_ID }, members);
  expect(knownTsMlsFailures.removedMemberSlotReused - before, 'ts-mls 1.6.4 removed-member bug no longer reproduces: update this test').toBe(1);
  members = members.filter((m) => m !== tB);
  await tD.join(w!);
  members.push(tD);
  await expectAgree(members);
  await everyoneTalks(members, 'final');
}

describe('paired-mls ⇄ ts-mls 1.6.4, ciphersuite 1: mixed groups', () => {
  it('paired-mls creates, ts-mls joins; both add, self-update, PSK, remove', async () => {
    await fullRound(await freshPaired('p-creator'));
  });

  it('ts-mls creates, paired-mls joins; both add, self-update, PSK, remove', async () => {
    await fullRound(await freshTs('t-creator'));
  });
});

// ---------------------------------------------------------------------------
// 2. External joins across implementations.
//
// RFC 9420 §12.4.3.2 defines the external_pub extension's data as
// `struct { HPKEPublicKey external_pub; }` with `opaque HPKEPublicKey<V>`,
// i.e. varint length || key (33 bytes for X25519). openmls (paired-mls)
// follows the RFC. ts-mls 1.6.4 writes and reads the raw 32-byte key
// (createCommit.js: createGroupInfoWithExternalPub / joinGroupExternal), so
// neither side can use the other's GroupInfo as is (fixed upstream by
// LukaJCB/ts-mls#449, after 1.6.4). The tests below first pin that failure,
// then run the external join through a minimal adapter that changes only the
// external_pub encoding, so everything else of the external join (external
// init, UpdatePath from a new member, PublicMessage commit, key schedule) is
// still exercised across the implementations.

/** RFC 9420 encoding of an X25519 external_pub extension: varint(32) || key. */
function rfcExternalPub(rawKey: Uint8Array): Uint8Array {
  expect(rawKey.length).toBe(32);
  return Uint8Array.of(rawKey.length, ...rawKey);
}

/**
 * Let ts-mls 1.6.4 read an RFC-encoded external_pub: joinGroupExternal looks
 * the extension up with `extensions.find(...)` and uses its data as the raw
 * key; signature verification re-encodes the extensions by iterating them.
 * So `find` hands back the unwrapped key while iteration still sees the
 * signed bytes.
 */
function withRawExternalPub(gi: GroupInfo): GroupInfo {
  class Exts extends Array<GroupInfo['extensions'][number]> {
    override find(pred: (e: GroupInfo['extensions'][number], i: number, a: GroupInfo['extensions'][number][]) => unknown): GroupInfo['extensions'][number] | undefined {
      const hit = Array.prototype.find.call(this, pred as never) as GroupInfo['extensions'][number] | undefined;
      if (hit && hit.extensionType === 'external_pub') {
        const data = hit.extensionData;
        expect(data[0]).toBe(data.length - 1); // varint length prefix (< 64)
        return { ...hit, extensionData: data.subarray(1) };
      }
      return hit;
    }
  }
  const exts = new Exts();
  for (const e of gi.extensions) exts.push(e);
  return { ...gi, extensions: exts as never };
}

class TsExternalJoiner {
  static async join(actor: TsActor, groupInfo: Uint8Array, adapt: boolean): Promise<Uint8Array> {
    const m = decodeMlsMessage(groupInfo, 0)![0];
    if (m.wireformat !== 'mls_group_info') throw new Error('expected a GroupInfo');
    const gi = adapt ? withRawExternalPub(m.groupInfo) : m.groupInfo;
    const r = await joinGroupExternal(gi, actor.publicPackage, actor.privatePackage, false, actor.cs);
    actor.state = r.newState;
    return encodeMlsMessage({ publicMessage: r.publicMessage, wireformat: 'mls_public_message', version: 'mls10' });
  }
}

/** A GroupInfo signed by a ts-mls member, external_pub encoded per RFC 9420; no ratchet_tree extension. */
async function rfcGroupInfoFromTs(actor: TsActor): Promise<Uint8Array> {
  const s = actor.state!;
  const kp = await actor.cs.hpke.deriveKeyPair(s.keySchedule.externalSecret);
  const pub = await actor.cs.hpke.exportPublicKey(kp.publicKey);
  const gi = await createGroupInfo(s.groupContext, s.confirmationTag, s, [{ extensionType: 'external_pub', extensionData: rfcExternalPub(pub) }], actor.cs);
  return encodeMlsMessage({ groupInfo: gi, wireformat: 'mls_group_info', version: 'mls10' });
}

/** Deliver an external commit (PublicMessage) to the members. */
async function deliverExternal(commit: Uint8Array, members: Actor[], joiner: Actor): Promise<void> {
  for (const m of members) {
    if (m === joiner) continue;
    expect(await m.receive(commit), `${m.name} (${m.impl}) processing ${joiner.name}'s external commit`).toEqual({ kind: 'commit', removed: false });
  }
}

describe('paired-mls ⇄ ts-mls 1.6.4: external commits', () => {
  it('external_pub encodings differ (RFC 9420 vs ts-mls raw key): GroupInfos are rejected across as is', async () => {
    const p = await freshPaired('p-owner');
    await p.createGroup();
    const pmlsInfo = await p.group!.exportGroupInfo({ ratchetTree: true });
    const m = decodeMlsMessage(pmlsInfo, 0)![0];
    if (m.wireformat !== 'mls_group_info') throw new Error('expected a GroupInfo');
    const pub = m.groupInfo.extensions.find((e) => e.extensionType === 'external_pub')!.extensionData;
    expect(pub.length).toBe(33);
    expect(pub[0]).toBe(32);
    await expect(TsExternalJoiner.join(await freshTs('t-joiner'), pmlsInfo, false)).rejects.toThrow();

    const t = await freshTs('t-owner');
    await t.createGroup(enc.encode('ts group'));
    const tsInfo = encodeMlsMessage({
      groupInfo: await createGroupInfoWithExternalPubAndRatchetTree(t.state!, [], t.cs),
      wireformat: 'mls_group_info',
      version: 'mls10',
    });
    const tm = decodeMlsMessage(tsInfo, 0)![0];
    if (tm.wireformat !== 'mls_group_info') throw new Error('expected a GroupInfo');
    expect(tm.groupInfo.extensions.find((e) => e.extensionType === 'external_pub')!.extensionData.length).toBe(32);
    const joiner = await freshPaired('p-joiner');
    await expect(joiner.client.joinExternal(tsInfo, joiner.identity)).rejects.toMatchObject({ name: 'MlsError' });
  });

  it('ts-mls joins a paired-mls group by external commit (paired-mls GroupInfo with ratchet tree)', async () => {
    const p = await freshPaired('p-owner');
    await p.createGroup();
    const t1 = await freshTs('t-member');
    const p2 = await freshPaired('p-member');
    let members: Actor[] = [p];
    const w = await commitAll(p, { add: [await t1.keyPackage(), await p2.keyPackage()] }, members);
    await t1.join(w!);
    await p2.join(w!);
    members.push(t1, p2);
    await commitAll(t1, { update: true }, members);
    await expectAgree(members);

    const joiner = await freshTs('t-external');
    const commit = await TsExternalJoiner.join(joiner, await p2.group!.exportGroupInfo({ ratchetTree: true }), true);
    await deliverExternal(commit, members, joiner);
    members.push(joiner);
    await expectAgree(members);
    await everyoneTalks(members, 'after ts-mls external join');
    // The external joiner is a full member: it commits and is removed.
    await commitAll(joiner, { psk: PSK_ID }, members);
    await expectAgree(members);
    await commitAll(p, { remove: [joiner.leaf()] }, members);
    members = members.filter((m) => m !== joiner);
    await expectAgree(members);
  });

  it('paired-mls joins a ts-mls group by external commit (ts-mls-signed GroupInfo, tree out of band)', async () => {
    const t = await freshTs('t-owner');
    await t.createGroup(enc.encode('ts group for external join'));
    const p1 = await freshPaired('p-member');
    const t2 = await freshTs('t-member');
    const members: Actor[] = [t];
    const w = await commitAll(t, { add: [await p1.keyPackage(), await t2.keyPackage()] }, members);
    await p1.join(w!);
    await t2.join(w!);
    members.push(p1, t2);
    await commitAll(p1, { update: true }, members);
    await expectAgree(members);

    const joiner = await freshPaired('p-external');
    const { group, commit } = await joiner.client.joinExternal(await rfcGroupInfoFromTs(t2), joiner.identity, {
      ratchetTree: encodeRatchetTree(t2.state!.ratchetTree),
    });
    joiner.group = group;
    await deliverExternal(commit, members, joiner);
    members.push(joiner);
    await expectAgree(members);
    await everyoneTalks(members, 'after paired-mls external join');
    await commitAll(joiner, { update: true }, members);
    await expectAgree(members);
    await commitAll(t2, { remove: [p1.leaf()] }, members);
    await expectAgree(members.filter((m) => m !== p1));
  });
});

// ---------------------------------------------------------------------------
// 3. Seeded random mixed group.


/** Leaves listed in some parent node's unmerged_leaves, from a ts-mls member's view of the tree. */
function unmergedLeaves(ts: TsActor): Set<number> {
  const out = new Set<number>();
  for (const n of ts.state!.ratchetTree) if (n?.nodeType === 'parent') for (const l of n.parent.unmergedLeaves) out.add(Number(l));
  return out;
}

const SEED = Number(process.env.INTEROP_SEED ?? 0x5eed2024);

describe('paired-mls ⇄ ts-mls 1.6.4: seeded random mixed group', () => {
  it(`≥ 20 members, ≥ 200 random operations, all agree after every epoch (seed ${SEED})`, async () => {
    const rng = xorshift32(SEED);
    let n = 0;
    const fresh = async (impl: 'paired-mls' | 'ts-mls'): Promise<Actor> =>
      impl === 'paired-mls' ? freshPaired(`p${n++}`) : freshTs(`t${n++}`);
    const randomImpl = (): 'paired-mls' | 'ts-mls' => (rng.int(2) === 0 ? 'paired-mls' : 'ts-mls');

    const stats = { add: { 'paired-mls': 0, 'ts-mls': 0 }, remove: 0, update: 0, psk: 0, message: 0, repairUpdates: 0, epochs: 0 };
    const byActor = { 'paired-mls': 0, 'ts-mls': 0 };
    let members: Actor[] = [];
    const check = async () => {
      stats.epochs++;
      await expectAgree(members);
    };

    /**
     * ts-mls 1.6.4 rejects valid ratchet trees on join (clientState.js
     * validateRatchetTree): for a leaf L in some parent P's unmerged_leaves it
     * demands that *every* non-blank node on L's whole direct path, root
     * included, has unmerged_leaves *equal* to P's, while RFC 9420 §7.9.2
     * only asks that the nodes between L and P list L. Trees where an
     * unmerged leaf sits below a node refreshed by someone else's UpdatePath
     * are valid yet rejected (pure ts-mls groups hit it too). Before adding a
     * ts-mls member, the members still listed as unmerged self-update (real
     * commits, processed and checked like all others), so the joiner's tree
     * has no stale unmerged leaves.
     */
    const repairForTsJoiner = async (): Promise<void> => {
      for (;;) {
        const view = members.find((m): m is TsActor => m.impl === 'ts-mls');
        if (!view) return; // no ts-mls member yet: the tree is small and unmerged leaves come from paired-mls adds only
        const pending = unmergedLeaves(view);
        if (pending.size === 0) return;
        const who = members.find((m) => pending.has(m.leaf()))!;
        await commitAll(who, { update: true }, members);
        stats.repairUpdates++;
        await check();
      }
    };

    const add = async (actor: Actor, impl: 'paired-mls' | 'ts-mls') => {
      if (impl === 'ts-mls') await repairForTsJoiner();
      const joiner = await fresh(impl);
      const welcome = await commitAll(actor, { add: [await joiner.keyPackage()] }, members);
      await joiner.join(welcome!);
      members.push(joiner);
      stats.add[impl]++;
      await check();
    };

    const founder = await freshPaired(`p${n++}`);
    await founder.createGroup();
    members.push(founder);
    // Grow to 20, alternating implementations, each add by a random member.
    for (let i = 1; i < 20; i++) await add(rng.pick(members), i % 2 === 1 ? 'ts-mls' : 'paired-mls');

    const OPS = 200;
    for (let op = 0; op < OPS; op++) {
      const actor = rng.pick(members);
      byActor[actor.impl]++;
      const roll = rng.int(100);
      if (roll < 12 && members.length < 26) {
        await add(actor, randomImpl());
      } else if (roll < 24 && members.length > 20) {
        const victim = rng.pick(members.filter((m) => m !== actor));
        await commitAll(actor, { remove: [victim.leaf()] }, members);
        members = members.filter((m) => m !== victim);
        stats.remove++;
        await check();
      } else if (roll < 36) {
        await commitAll(actor, { update: true }, members);
        stats.update++;
        await check();
      } else if (roll < 44) {
        await commitAll(actor, { psk: PSK_ID }, members);
        stats.psk++;
        await check();
      } else {
        await say(actor, members, `op ${op} from ${actor.name}`);
        stats.message++;
      }
    }

    const final = { 'paired-mls': members.filter((m) => m.impl === 'paired-mls').length, 'ts-mls': members.filter((m) => m.impl === 'ts-mls').length };
    console.log('random interop', JSON.stringify({ seed: SEED, stats, byActor, final, knownTsMlsFailures }));
    expect(members.length).toBeGreaterThanOrEqual(20);
    expect(final['ts-mls']).toBeGreaterThanOrEqual(6);
    expect(final['paired-mls']).toBeGreaterThanOrEqual(6);
    expect(byActor['ts-mls']).toBeGreaterThanOrEqual(60);
    expect(byActor['paired-mls']).toBeGreaterThanOrEqual(60);
    expect(stats.remove + stats.update + stats.psk + stats.message + stats.add['paired-mls'] + stats.add['ts-mls'] - 19).toBe(OPS);
  });
});
