/**
 * Writes of the copy's session that race the owner's guarded rotation (docs/PROTOCOL.md §8.4): a request
 * authenticated with the old key before the rotation whose write reaches the store after it. Each interleaving
 * is forced: the store method of the write waits, once entered (everything before it checked), until the
 * rotation has finished; on PostgreSQL the rotation runs at another server on the same database.
 * - KeyPackages: the copy's were stored after the rotation's purge, stale, held the account's KeyPackage quota
 *   (429 for the owner's new key; last-resort ones are never fetched away, kept to their expiry);
 * - pairing: the copy's InitPairing as the anchor was stored after the rotation and only then removed again: in
 *   between, the copy's own account, its device, read the account's group.
 * Fixed: the store's write confirms, in its transaction, that the session's key is still active (401 unauthenticated).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesEqual, toHex, utf8 } from 'paired-mls';
import { MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { holdNext, raw, registeredClient as peer, tokenOf } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';
import { guardedAccount } from './ds-guard-helpers.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const REVOKED_MEANWHILE = { reason: 'unauthenticated', error: 'the key this session was proven with was revoked meanwhile (unauthenticated)' };

/** The next call of `store[method]`, once entered, waits for `release()`; `reached` settles when it is entered. */
describe('writes racing the guarded rotation', () => {
  let postgres: PgServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  }, 60_000);
  afterAll(async () => postgres?.stop());
  const tmp = () => join(mkdtempSync(join(tmpdir(), 'paired-mls-rotation-race-')), 'ds.sqlite');
  /** The copy's store and server, and the owner's server (the same one but on PostgreSQL). */
  const setups: [string, () => Promise<{ store: DeliveryStore; copyAt: RunningDeliveryServer; ownerAt: RunningDeliveryServer; close(): Promise<void> }>][] = [
    ['memory', async () => one(new MemoryDeliveryStore())],
    ['SQLite', async () => one(new SqliteDeliveryStore(tmp()))],
    [
      'PostgreSQL, two servers',
      async () => {
        const store = await PostgresDeliveryStore.connect(postgres.url);
        const other = await PostgresDeliveryStore.connect(postgres.url);
        const copyAt = await startDeliveryServer({ port: 0, store, maxKeyPackagesPerClient: 4 });
        const ownerAt = await startDeliveryServer({ port: 0, store: other, maxKeyPackagesPerClient: 4 });
        return { store, copyAt, ownerAt, close: async () => (await copyAt.close(), await ownerAt.close(), await store.close(), await other.close()) };
      },
    ],
  ];
  async function one(store: DeliveryStore) {
    const s = await startDeliveryServer({ port: 0, store, maxKeyPackagesPerClient: 4 });
    return { store, copyAt: s, ownerAt: s, close: () => s.close() };
  }
  const tag = () => Math.random().toString(36).slice(2, 8);

  it.each(setups)("%s: the copy's KeyPackage upload checked before the rotation and stored after it is refused (401 unauthenticated), stores nothing, and the owner's new key uploads, is fetched and joins", async (_, setup) => {
    const { store, copyAt, ownerAt, close } = await setup();
    try {
      const id = `alice-${tag()}`;
      const alice = await guardedAccount(ownerAt.url, id);
      const bob = await peer(ownerAt.url, `bob-${tag()}`);
      // The copy: the account's current key, a session of its own, KeyPackages it holds the private keys of (a full quota).
      const token = await tokenOf(copyAt.url, id, { client: alice.client, identity: alice.current });
      const copyKps = await alice.client.createKeyPackages(alice.current, { count: 4, lastResort: true });
      const hold = holdNext(store, 'putKeyPackages');
      const upload = raw(copyAt.url, 'POST', '/v1/key-packages', { keyPackages: copyKps.map(b64) }, token);
      // Its session, credentials and lifetimes are checked; the write waits while the owner rotates.
      await hold.reached;
      const next = await alice.client.createIdentity(id, 1);
      await alice.ds.rotateKey(next, { guard: alice.guard });
      hold.release();
      expect(await upload).toEqual({ status: 401, body: REVOKED_MEANWHILE });
      expect(await store.countKeyPackages(id)).toBe(0);
      expect(await raw(copyAt.url, 'GET', '/v1/welcomes', undefined, token)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
      // The owner's new key fills the account's quota; bob gets one of its KeyPackages (none of the copy's) and adds the account.
      const ownKps = await alice.client.createKeyPackages(next, { count: 4 });
      await alice.ds.uploadKeyPackages(ownKps);
      const got = (await bob.ds.fetchKeyPackages([id])).get(id)!;
      expect(ownKps.some((k) => bytesEqual(k, got))).toBe(true);
      expect(copyKps.some((k) => bytesEqual(k, got))).toBe(false);
      const group = await bob.client.createGroup(bob.identity);
      await bob.ds.createGroup(group.id, { epoch: 0 });
      const add = await group.commit({ add: [got] });
      await bob.ds.submit(group.id, add.commit, { welcome: add.welcome, added: [id] });
      await group.mergePendingCommit();
      const [w] = await alice.ds.welcomes();
      const joined = await alice.client.joinFromWelcome(w!.welcome);
      const seq = await bob.ds.submit(group.id, await group.encrypt('after the rotation'));
      const [m] = await alice.ds.poll(group.id, seq - 1);
      const r = await joined.process(m!.message);
      expect(r.kind === 'application' && utf8(r.data)).toBe('after the rotation');
    } finally {
      await close();
    }
  });

  it.each(setups)("%s: the copy's InitPairing as the anchor checked before the rotation and stored after it is refused (401 unauthenticated), pairs nothing, and the owner's own device pairs", async (_, setup) => {
    const { store, copyAt, ownerAt, close } = await setup();
    try {
      const id = `alice-${tag()}`;
      const alice = await guardedAccount(ownerAt.url, id);
      const group = await alice.client.createGroup(alice.current);
      await alice.ds.createGroup(group.id, { epoch: 0 });
      // The copy's own account, to be the account's device.
      const devId = `mal-dev-${tag()}`;
      const dev = await peer(copyAt.url, devId);
      const devToken = await tokenOf(copyAt.url, devId, dev);
      const token = await tokenOf(copyAt.url, id, { client: alice.client, identity: alice.current });
      const hold = holdNext(store, 'requestPairing');
      const asked = raw(copyAt.url, 'POST', '/v1/pairings', { anchor: id, device: devId }, token);
      await hold.reached;
      const next = await alice.client.createIdentity(id, 1);
      await alice.ds.rotateKey(next, { guard: alice.guard });
      // The owner posts in its group after the rotation.
      const seq = await alice.ds.submit(group.id, await group.encrypt('after the rotation'));
      // Before: the copy's request was stored, then removed after a check of the session: in between, its device paired and read.
      const removal = holdNext(store, 'removePairing');
      hold.release();
      const first = await Promise.race([asked.then(() => 'answered'), removal.reached.then(() => 'stored')]);
      const devAnswer = await raw(copyAt.url, 'POST', '/v1/pairings', { anchor: id, device: devId }, devToken);
      const read = await raw(copyAt.url, 'GET', `/v1/groups/${toHex(group.id)}/messages?after=0`, undefined, devToken);
      removal.release();
      expect(read).toEqual({ status: 403, body: { reason: 'not-a-member', error: expect.any(String) } });
      expect(devAnswer).toEqual({ status: 200, body: { accepted: false } });
      expect(await asked).toEqual({ status: 401, body: REVOKED_MEANWHILE });
      expect(first).toBe('answered');
      // The owner pairs its own device, which reads the group; the copy's device is none of the account's.
      const phoneId = `phone-${tag()}`;
      const phone = await peer(ownerAt.url, phoneId);
      expect(await alice.ds.initPairing(id, phoneId)).toBe(false);
      expect(await phone.ds.initPairing(id, phoneId)).toBe(true);
      expect((await phone.ds.poll(group.id, 0)).map((m) => m.seq)).toEqual([seq]);
      expect(await raw(copyAt.url, 'GET', `/v1/groups/${toHex(group.id)}/messages?after=0`, undefined, devToken)).toMatchObject({ status: 403, body: { reason: 'not-a-member' } });
    } finally {
      await close();
    }
  });
});
