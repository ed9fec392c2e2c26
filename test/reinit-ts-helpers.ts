/**
 * A dishonest member built with ts-mls 1.6.4 (what this library never
 * sends), shared by the ReInit reviews (test/reinit-review,
 * test/rereview-reinit): the member, a group it leads with paired-mls
 * members, its GroupInfo, the same group at a verifying DS (in process, or
 * on loopback with an AS account of its own), and the honest members going
 * on afterwards.
 */
import { expect } from 'vitest';
import {
  acceptAll,
  createCommit,
  createGroup,
  decodeMlsMessage,
  defaultCapabilities,
  defaultLifetime,
  encodeMlsMessage,
  generateKeyPackage,
  generateKeyPackageWithKey,
  getCiphersuiteFromName,
  getCiphersuiteImpl,
  makePskIndex,
  processPrivateMessage,
  type CiphersuiteImpl,
  type ClientState,
  type KeyPackage,
  type PrivateKeyPackage,
} from 'ts-mls';
import { createGroupInfoWithRatchetTree } from 'ts-mls/createCommit.js';
import { createPrivateKey, sign } from 'node:crypto';
import { WebSocket } from 'ws';
import { TlsWriter, type Identity, type MlsClient } from 'paired-mls';
import { DeliveryClient, DeliveryService } from 'paired-mls/services';
import { type DsPeer } from './ds-helpers.js';
import { type Member, deliverCommit, expectInSync, newMember } from './helpers.js';
import { fastKdfProvider } from './interop-actors.js';

const enc = new TextEncoder();
export const SUITE1 = 'MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519' as const;
export const SUITE3 = 'MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519' as const;

/** A ts-mls member: its suite, KeyPackage and, once in a group, its state. */
export interface TsMember {
  cs: CiphersuiteImpl;
  pub: KeyPackage;
  priv: PrivateKeyPackage;
  state?: ClientState;
}

/** A ts-mls member `name` in `suite` (ciphersuite 1 by default), with a KeyPackage. */
export async function tsMember(name: string, suite: typeof SUITE1 | typeof SUITE3 = SUITE1): Promise<TsMember> {
  const cs = await getCiphersuiteImpl(getCiphersuiteFromName(suite), fastKdfProvider);
  const kp = await generateKeyPackage({ credentialType: 'basic', identity: enc.encode(name) }, defaultCapabilities(), defaultLifetime, [], cs);
  return { cs, pub: kp.publicPackage, priv: kp.privatePackage };
}

/**
 * `t` in `suite` with the signature key it had (suites 1 and 3 both sign
 * with Ed25519): a successor member a paired-mls member joining without
 * `authenticate` takes (PROTOCOL §1.6 item 4: old keys only).
 */
export async function tsKeeping(t: TsMember, suite: typeof SUITE1 | typeof SUITE3): Promise<TsMember> {
  const cs = await getCiphersuiteImpl(getCiphersuiteFromName(suite), fastKdfProvider);
  const key = { signKey: t.priv.signaturePrivateKey, publicKey: t.pub.leafNode.signaturePublicKey };
  const kp = await generateKeyPackageWithKey(t.pub.leafNode.credential, defaultCapabilities(), defaultLifetime, [], key, cs);
  return { cs, pub: kp.publicPackage, priv: kp.privatePackage };
}

/** A ts-mls KeyPackage as an MLSMessage, as paired-mls takes it. */
export const kpMessage = (kp: KeyPackage) => encodeMlsMessage({ keyPackage: kp, wireformat: 'mls_key_package', version: 'mls10' });

/** A Welcome MLSMessage of paired-mls, as ts-mls reads it. */
export const welcomeOf = (bytes: Uint8Array) => {
  const m = decodeMlsMessage(bytes, 0)![0];
  if (m.wireformat !== 'mls_welcome') throw new Error('expected a Welcome');
  return m.welcome;
};

/** ts-mls member `t` processes a paired-mls PrivateMessage (a commit is merged). */
export async function tsReceive(t: TsMember, message: Uint8Array): Promise<void> {
  const m = decodeMlsMessage(message, 0)![0];
  if (m.wireformat !== 'mls_private_message') throw new Error(`unexpected ${m.wireformat}`);
  const r = await processPrivateMessage(t.state!, m.privateMessage, makePskIndex(t.state, {}), t.cs, acceptAll);
  t.state = r.newState;
}

/** A fresh KeyPackage of a paired-mls member, as ts-mls reads it. */
export const keyPackageOf = async (m: Member) => (decodeMlsMessage(await m.client.createKeyPackage(m.identity), 0)![0] as { keyPackage: KeyPackage }).keyPackage;

/** A group led by a ts-mls member (mallory, leaf 0) with paired-mls members `names`. */
export async function tsLedGroup(names: string[], wireFormat: 'ciphertext' | 'plaintext' = 'ciphertext'): Promise<{ t: TsMember; ours: Member[] }> {
  const t = await tsMember('ts-mallory');
  const ours = await Promise.all(names.map((n) => newMember(n)));
  t.state = await createGroup(enc.encode(`ts-led ${Math.random()}`), t.pub, t.priv, [], t.cs);
  const add = await createCommit(
    { state: t.state, cipherSuite: t.cs, pskIndex: makePskIndex(t.state, {}) },
    { extraProposals: await Promise.all(ours.map(async (m) => ({ proposalType: 'add' as const, add: { keyPackage: await keyPackageOf(m) } }))), ratchetTreeExtension: true },
  );
  t.state = add.newState;
  const welcome = encodeMlsMessage({ welcome: add.welcome!, wireformat: 'mls_welcome', version: 'mls10' });
  for (const m of ours) m.group = await m.client.joinFromWelcome(welcome, { wireFormat });
  return { t, ours };
}

/** The honest members go on: the first self-updates (no ReInit in it), the rest and mallory follow, a message crosses. */
export async function honestGoOn(t: TsMember, ours: Member[]): Promise<void> {
  const [first, ...rest] = ours as [Member, ...Member[]];
  const next = await first.group!.selfUpdate();
  await first.group!.mergePendingCommit();
  expect(first.group!.reinitState()).toBeUndefined();
  await deliverCommit(next.commit, rest);
  const m = decodeMlsMessage(next.commit, 0)![0];
  if (m.wireformat !== 'mls_private_message') throw new Error('expected a PrivateMessage');
  t.state = (await processPrivateMessage(t.state!, m.privateMessage, makePskIndex(t.state, {}), t.cs, acceptAll)).newState;
  expect(Number(t.state.groupContext.epoch)).toBe(first.group!.epoch);
  expectInSync(ours);
  const msg = await first.group!.encrypt('still one group');
  for (const o of rest) expect((await o.group!.process(msg)).kind).toBe('application');
}

/** mallory's GroupInfo of `state`, with its tree. Without external_pub: ts-mls 1.6.4 writes that extension's data without its inner length (openmls cannot read it). */
export const tsGroupInfo = async (t: TsMember, state: ClientState) =>
  encodeMlsMessage({ groupInfo: await createGroupInfoWithRatchetTree(state.groupContext, state.confirmationTag, state, state.ratchetTree, [], t.cs), wireformat: 'mls_group_info', version: 'mls10' });

/**
 * An in-process verifying DS with a group mallory (`name`, leaf 0) created
 * and added `pete` to by a PublicMessage commit with its GroupInfo, which
 * the DS took (epoch 1). No AS: the DS names a leaf's client by its identity.
 */
export async function tsLedGroupAtVerifyingDs(name: string, pete: Member): Promise<{ ds: DeliveryService; t: TsMember & { state: ClientState }; gid: Uint8Array }> {
  const ds = await DeliveryService.create({ verifyCommits: true });
  const t: TsMember & { state?: ClientState } = await tsMember(name);
  t.state = await createGroup(enc.encode(`ts-led at a DS ${Math.random()}`), t.pub, t.priv, [], t.cs);
  const gid = t.state.groupContext.groupId;
  await ds.createGroup(gid, name, { groupInfo: await tsGroupInfo(t, t.state) });
  const add = await createCommit({ state: t.state, cipherSuite: t.cs }, { extraProposals: [{ proposalType: 'add', add: { keyPackage: await keyPackageOf(pete) } }], ratchetTreeExtension: true, wireAsPublicMessage: true });
  t.state = add.newState;
  const welcome = encodeMlsMessage({ welcome: add.welcome!, wireformat: 'mls_welcome', version: 'mls10' });
  expect(await ds.submit(gid, name, encodeMlsMessage(add.commit), { welcome, groupInfo: await tsGroupInfo(t, t.state) })).toMatchObject({ accepted: true });
  pete.group = await pete.client.joinFromWelcome(welcome, { wireFormat: 'plaintext' });
  return { ds, t: t as TsMember & { state: ClientState }, gid };
}

/**
 * ts-mls member `t` as DS client `name` at `url`: registered at the AS with
 * its own leaf key (ts-mls keeps it as PKCS#8). The DS proof is signed here
 * with node's Ed25519 over SignWithLabel's content (RFC 9420 §5.1.2), as
 * `signDsChallenge` signs it (ts-mls signs asynchronously, the DS client
 * synchronously).
 */
export async function tsDsAccount(url: string, name: string, t: TsMember): Promise<{ ds: DeliveryClient; signer: { client: MlsClient; identity: Identity } }> {
  const key = createPrivateKey({ key: Buffer.from(t.priv.signaturePrivateKey), format: 'der', type: 'pkcs8' });
  const client = { signWithLabel: (_: Identity, label: string, content: Uint8Array) => new Uint8Array(sign(null, new TlsWriter().vector(enc.encode(`MLS 1.0 ${label}`)).vector(content).finish(), key)) } as unknown as MlsClient;
  const identity: Identity = { identity: enc.encode(name), signaturePublicKey: t.pub.leafNode.signaturePublicKey, ciphersuite: 1 };
  return { ds: await DeliveryClient.register(url, { clientId: name, client, identity }, { WebSocket }), signer: { client, identity } };
}

/**
 * A group mallory (ts-mls, `name`, leaf 0) created at the verifying DS at
 * `url` and added `ours` to by a PublicMessage commit with its Welcome and
 * GroupInfo (KeyPackages fetched from the DS); each joins with its
 * `wireFormat` (a PublicMessage handshake). `ds` is mallory's DS client.
 */
export async function tsLedGroupAtDs(url: string, name: string, ours: [DsPeer, 'plaintext' | 'mixed-plaintext'][]): Promise<{ t: TsMember & { state: ClientState }; gid: Uint8Array; ds: DeliveryClient; signer: { client: MlsClient; identity: Identity } }> {
  const t: TsMember & { state?: ClientState } = await tsMember(name);
  const { ds, signer } = await tsDsAccount(url, name, t);
  t.state = await createGroup(enc.encode(`ts-led at ${url} ${Math.random()}`), t.pub, t.priv, [], t.cs);
  const gid = t.state.groupContext.groupId;
  await ds.createGroup(gid, { epoch: 0, groupInfo: await tsGroupInfo(t, t.state) });
  for (const [p] of ours) await p.ds.uploadKeyPackages([await p.client.createKeyPackage(p.identity)]);
  const kps = await ds.fetchKeyPackages(ours.map(([p]) => p.name));
  const extraProposals = [...kps.values()].map((kp) => ({ proposalType: 'add' as const, add: { keyPackage: (decodeMlsMessage(kp, 0)![0] as { keyPackage: KeyPackage }).keyPackage } }));
  const add = await createCommit({ state: t.state, cipherSuite: t.cs }, { extraProposals, ratchetTreeExtension: true, wireAsPublicMessage: true });
  t.state = add.newState;
  const seen = await ds.submit(gid, encodeMlsMessage(add.commit), { welcome: encodeMlsMessage({ welcome: add.welcome!, wireformat: 'mls_welcome', version: 'mls10' }), groupInfo: await tsGroupInfo(t, t.state) });
  for (const [p, wireFormat] of ours) {
    const [w] = await p.ds.welcomes();
    p.group = await p.client.joinFromWelcome(w!.welcome, { wireFormat });
    await p.ds.ackWelcomes([w!.id]);
    p.seen = seen;
  }
  return { t: t as TsMember & { state: ClientState }, gid, ds, signer };
}
