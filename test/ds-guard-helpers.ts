/**
 * Shared by the DS key-rotation and rotation-guard tests (docs/PROTOCOL.md
 * §8.4): the anchor key on a leaf, a DsError's reason and message, a fresh
 * vault's guard, two servers on one PostgreSQL database, a guarded account.
 */
import { expect } from 'vitest';
import { bytesEqual, MlsClient, type Group, type Identity } from 'paired-mls';
import { generateSeed, WebCryptoSeedVault } from 'paired-mls/paired';
import { DeliveryClient, DsError, vaultRotationGuard, type DeliveryClientOptions, type DeliveryStore, type RotationGuard } from 'paired-mls/services';
import { PostgresDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';

/** The refusal of a key change of a guarded account without its secret. */
export const GUARD_REFUSED = "this client's keys change only with the secret of its rotation guard (guard-refused)";

/** The identity (in `client`) whose key is on `group`'s own leaf: the anchor key of the last paired commit. */
export function leafIdentity(client: MlsClient, group: Group): Identity {
  const leaf = group.members().find((m) => m.leafIndex === group.ownLeafIndex)!;
  const identity = client.identities().find((i) => bytesEqual(i.signaturePublicKey, leaf.signatureKey));
  if (!identity) throw new Error('the leaf key is not in this client');
  return identity;
}

/** The DsError `p` is refused with, as reason and message (it must be refused with one). */
export async function dsRefusal(p: Promise<unknown>): Promise<{ reason: string; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DsError);
  return { reason: (err as DsError).reason, message: (err as DsError).message };
}

/** The guard of `clientId` from a vault of a fresh seed (another pairing's). */
export async function newGuard(clientId: string): Promise<RotationGuard> {
  return vaultRotationGuard(await WebCryptoSeedVault.import(generateSeed()), clientId);
}

/** Two DS servers sharing the PostgreSQL database at `url`. */
export async function twoPostgresServers(url: string): Promise<RunningDeliveryServer[]> {
  return [await startDeliveryServer({ port: 0, store: await PostgresDeliveryStore.connect(url) }), await startDeliveryServer({ port: 0, store: await PostgresDeliveryStore.connect(url) })];
}

/** Where a stolen copy and its owner act: one server (`store`) for both, or two servers sharing one database. */
export type CopyAndOwner = { store: DeliveryStore; ownerStore: DeliveryStore; copyAt: RunningDeliveryServer; ownerAt: RunningDeliveryServer; close(): Promise<void> };

/** The copy at one server and the owner at another, on the PostgreSQL database at `url`. */
export async function copyAndOwnerOnPostgres(url: string): Promise<CopyAndOwner> {
  const store = await PostgresDeliveryStore.connect(url);
  const other = await PostgresDeliveryStore.connect(url);
  const copyAt = await startDeliveryServer({ port: 0, store });
  const ownerAt = await startDeliveryServer({ port: 0, store: other });
  return { store, ownerStore: other, copyAt, ownerAt, close: async () => (await copyAt.close(), await ownerAt.close(), await store.close(), await other.close()) };
}

/** The copy and the owner at one server over `store`. */
export async function copyAndOwnerAtOne(store: DeliveryStore): Promise<CopyAndOwner> {
  const s = await startDeliveryServer({ port: 0, store });
  return { store, ownerStore: store, copyAt: s, ownerAt: s, close: () => s.close() };
}

/** `id`'s account at `url`, guarded (set with a rotation); `current`: its key now, which a copy of the device holds too. */
export async function guardedAccount(url: string, id: string): Promise<{ client: MlsClient; ds: DeliveryClient; guard: RotationGuard; current: Identity }> {
  const client = await MlsClient.open();
  const ds = await DeliveryClient.register(url, { clientId: id, client, identity: await client.createIdentity(id, 1) });
  const guard = vaultRotationGuard(await WebCryptoSeedVault.import(generateSeed()), id);
  const current = await client.createIdentity(id, 1);
  await ds.rotateKey(current, { guard });
  return { client, ds, guard, current };
}

/**
 * Bob's group (bob registered at `peersUrl`, streaming over `options.WebSocket` if given) with the guarded account
 * alice (at `ownerUrl`) added by one of her KeyPackages; the Welcome is left for her to read.
 */
export async function guardedAliceInBobsGroup(ownerUrl: string, peersUrl: string, options?: DeliveryClientOptions) {
  const tag = () => Math.random().toString(36).slice(2, 8);
  const id = `alice-${tag()}`;
  const alice = await guardedAccount(ownerUrl, id);
  const bobId = `bob-${tag()}`;
  const bobClient = await MlsClient.open();
  const bobIdentity = await bobClient.createIdentity(bobId, 1);
  const bob = await DeliveryClient.register(peersUrl, { clientId: bobId, client: bobClient, identity: bobIdentity }, options);
  await alice.ds.uploadKeyPackages([await alice.client.createKeyPackage(alice.current)]);
  const group = await bobClient.createGroup(bobIdentity);
  await bob.createGroup(group.id, { epoch: 0 });
  const add = await group.commit({ add: [(await bob.fetchKeyPackages([id])).get(id)!] });
  const seen = await bob.submit(group.id, add.commit, { welcome: add.welcome, added: [id] });
  await group.mergePendingCommit();
  return { id, alice, bob, bobClient, group, seen };
}
