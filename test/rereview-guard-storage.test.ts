/**
 * Re-review of today's fixes (docs/PROTOCOL.md §8.4 rotation guard, §2.2/§2.6 stored state), against a real DS on
 * loopback and real storage adapters. Attacks:
 * - the copy (a guarded account's current key, no vault) fills the account's KeyPackage quota before the owner's
 *   guarded rotation: the owner's new key could upload none (fixed: that rotation drops the account's KeyPackages);
 * - the copy fills the account's storage quota with groups before the rotation (was a documented limit, groups kept for
 *   good; fixed: the owner deletes them, test/ds-sole-group-delete);
 * - the copy hammers /v1/as/rotate and GET /v1/as/guard, which take no clientRate token (held: bounded per address);
 * - a writer of raw records deletes a group's index entry so it is listed by its records alone, next to a group whose
 *   id it prefixes, and asks to delete a made-up prefix id (held: only that group's records go);
 * - a writer hides a trigger from the SQLite schema check by editing sqlite_master, or replaces the file with junk
 *   (fixed: STORAGE at open, was better-sqlite3's SqliteError).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as lib from 'paired-mls';
import { MlsClient } from 'paired-mls';
import { mlsError } from './helpers.js';
import { DeliveryClient, MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request as httpRequest } from 'node:http';
import { writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { PostgresDeliveryStore, SqliteDeliveryStore, SqliteStorageAdapter, startDeliveryServer } from 'paired-mls/server';
import { postFrom, proofFrom, raw, tokenOf } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';
import { guardedAccount } from './ds-guard-helpers.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const GUARD_REFUSED = "this client's keys change only with the secret of its rotation guard (guard-refused)";

/** A GET from `localAddress` with `token`: its status and parsed body. */
function getFrom(url: string, path: string, localAddress: string, token: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url + path, { localAddress, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('re-review: the rotation guard', () => {
  let postgres: PgServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  }, 60_000);
  afterAll(async () => postgres?.stop());
  const stores: [string, () => Promise<DeliveryStore>][] = [
    ['memory', async () => new MemoryDeliveryStore()],
    ['SQLite', async () => new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-rereview-')), 'ds.sqlite'))],
    ['PostgreSQL', () => PostgresDeliveryStore.connect(postgres.url)],
  ];

  it.each(stores)("%s: the copy filling the account's KeyPackage quota before the guarded rotation does not keep the owner from uploading its new key's KeyPackages", async (_, store) => {
    const s = await startDeliveryServer({ port: 0, store: await store(), maxKeyPackagesPerClient: 4 });
    try {
    const alice = await guardedAccount(s.url, 'alice');
    // The copy: the account's current key (stored state), a session of its own, the whole KeyPackage quota.
    const token = await tokenOf(s.url, 'alice', { client: alice.client, identity: alice.current });
    const stale = await alice.client.createKeyPackages(alice.current, { count: 4 });
    expect(await raw(s.url, 'POST', '/v1/key-packages', { keyPackages: stale.map(b64) }, token)).toEqual({ status: 200, body: {} });
    // The owner's guarded rotation ends the copy...
    const next = await alice.client.createIdentity('alice', 1);
    await alice.ds.rotateKey(next, { guard: alice.guard });
    expect(await raw(s.url, 'GET', '/v1/welcomes', undefined, token)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    // ...and its KeyPackages (of the revoked key, never handed out) do not hold the owner's quota.
    await alice.ds.uploadKeyPackages(await alice.client.createKeyPackages(next, { count: 4 }));
    const bobClient = await MlsClient.open();
    const bob = await DeliveryClient.register(s.url, { clientId: 'bob', client: bobClient, identity: await bobClient.createIdentity('bob', 1) });
    const got = await bob.fetchKeyPackages(['alice']);
    expect(bobClient.inspectKeyPackage(got.get('alice')!).signatureKey).toEqual(next.signaturePublicKey);
    } finally {
      await s.close();
    }
  });

  it("what the copy stored in the account's name before the rotation (here group records) counts against its storage quota after it, until the owner deletes the groups whose only member it is (was kept for good)", async () => {
    const s = await startDeliveryServer({ port: 0, store: new MemoryDeliveryStore(), maxStoredBytesPerClient: 4096 });
    try {
      const alice = await guardedAccount(s.url, 'alice');
      const token = await tokenOf(s.url, 'alice', { client: alice.client, identity: alice.current });
      // The copy creates groups as alice (256 bytes each, for good) until the account's quota is full.
      let made = 0;
      for (;;) {
        const r = await raw(s.url, 'POST', '/v1/groups', { groupId: b64(crypto.getRandomValues(new Uint8Array(16))), epoch: 0 }, token);
        if (r.status !== 200) {
          expect(r).toEqual({ status: 429, body: { reason: 'quota-exceeded', error: 'alice is at its quota of bytes (quota-exceeded)' } });
          break;
        }
        made++;
      }
      expect(made).toBeGreaterThan(5);
      await alice.ds.rotateKey(await alice.client.createIdentity('alice', 1), { guard: alice.guard });
      expect(await raw(s.url, 'GET', '/v1/welcomes', undefined, token)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
      // The owner holds the account alone, and its quota is still the copy's...
      const group = await alice.client.createGroup(alice.current);
      const err = await alice.ds.createGroup(group.id, { epoch: 0 }).then(() => undefined, (e: unknown) => e);
      expect([(err as { reason?: string }).reason, (err as Error).message]).toEqual(['quota-exceeded', 'alice is at its quota of bytes (quota-exceeded)']);
      // ...until it deletes the copy's groups, which it finds as those it is the only member of (none of them in its state).
      const { groupIds, next } = await alice.ds.soleGroups();
      expect([groupIds.length, next]).toEqual([made, undefined]);
      for (const id of groupIds) await alice.ds.deleteGroup(id);
      await alice.ds.createGroup(group.id, { epoch: 0 });
      expect(await alice.ds.submit(group.id, await group.encrypt('mine'))).toBe(1);
    } finally {
      await s.close();
    }
  });

  it("held: /v1/as/rotate and GET /v1/as/guard take no clientRate token, but the copy hammering them is bounded per address (requests, signature checks) and the owner's guarded rotation passes", async () => {
    const s = await startDeliveryServer({ port: 0, store: new MemoryDeliveryStore(), clientRate: [1, 3], ipRate: [5, 40], verificationRate: [1, 10] });
    try {
      const alice = await guardedAccount(s.url, 'alice');
      const token = await tokenOf(s.url, 'alice', { client: alice.client, identity: alice.current });
      // The guard step, read past the account's clientRate burst (3) from one address: its ipRate burst (40), then refused.
      const reads = [];
      for (let i = 0; i < 41; i++) reads.push(await getFrom(s.url, '/v1/as/guard', '127.0.0.2', token));
      expect(reads.slice(0, 40).every((r) => r.status === 200 && JSON.stringify(r.body) === '{"step":0}')).toBe(true);
      expect(reads[40]).toEqual({ status: 429, body: { reason: 'rate-limited', error: 'too many requests from this address' } });
      // Proven rotations (a fresh key each, a challenge each) from another address: its 10 signature checks, then refused before one more.
      const thief = await MlsClient.open();
      const attempt = async () => {
        const key = await thief.createIdentity('alice', 1);
        return postFrom(s.url, '/v1/as/rotate', await proofFrom(s.url, 'alice', thief, key, '127.0.0.3'), '127.0.0.3', token);
      };
      for (let i = 0; i < 10; i++) expect(await attempt()).toEqual({ status: 403, body: { reason: 'guard-refused', error: GUARD_REFUSED } });
      expect(await attempt()).toEqual({ status: 429, body: { reason: 'rate-limited', error: 'too many signature checks for this address' } });
      expect(await s.authentication.activeBindingsOf('alice')).toHaveLength(1);
      // The owner, from its own address, logs in and rotates the copy out.
      const owner = await DeliveryClient.login(s.url, { clientId: 'alice', client: alice.client, identity: alice.current });
      await owner.rotateKey(await alice.client.createIdentity('alice', 1), { guard: alice.guard });
      expect(await owner.guardStep()).toBe(1);
      expect(await raw(s.url, 'GET', '/v1/welcomes', undefined, token)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    } finally {
      await s.close();
    }
  });
});

describe('re-review: stored state at rest (a writer of raw records, no key)', () => {
  const enc = new TextEncoder();
  const has = (k: Uint8Array, part: Uint8Array) => Buffer.from(k).includes(Buffer.from(part));

  it("held: a group listed by its records alone (index entry deleted) is deleted without a record of the group whose id it prefixes; a made-up prefix id deletes nothing", async () => {
    const inner = new lib.MemoryStorageAdapter();
    const key = crypto.getRandomValues(new Uint8Array(32));
    const open = async () => MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(inner, key) });
    let client = await open();
    const me = await client.createIdentity('alice', 1);
    // Ids whose bytes (and hex) prefix each other: 'ab' and 'abc'.
    const a = await client.createGroup(me, { groupId: enc.encode('ab') });
    const b = await client.createGroup(me, { groupId: enc.encode('abc') });
    await a.encrypt('in ab');
    await b.encrypt('in abc');
    await client.putGroupRecord(b.id, 'layer', enc.encode('about abc'));
    client.free();
    const before = new Map((await inner.entries()).map(([k, v]) => [Buffer.from(k).toString('hex'), Buffer.from(v).toString('hex')]));
    // The core's records of 'ab' carry its id length-prefixed (postcard: 0x02 'ab'); its index entry, group/6162.
    const ofA = (k: Uint8Array) => has(k, Uint8Array.of(2, ...enc.encode('ab'))) || Buffer.from(k).toString('latin1') === '\u0000paired-mls/group/6162';
    expect([...before.keys()].filter((k) => ofA(Buffer.from(k, 'hex'))).length).toBeGreaterThan(3);
    await inner.apply({ puts: [], deletes: [enc.encode('\u0000paired-mls/group/6162')] });

    client = await open();
    expect(client.groupIds().map(lib.toHex).sort()).toEqual(['6162', '616263']);
    const madeUp = await mlsError(() => client.deleteGroup(enc.encode('a')));
    expect([madeUp.code, madeUp.message]).toEqual(['UNKNOWN_GROUP', 'no such group in storage']);
    await client.deleteGroup(a.id);
    expect(client.groupIds().map(lib.toHex)).toEqual(['616263']);
    client.free();
    // Exactly the records of 'ab' went; every other record is byte for byte as it was.
    const after = new Map((await inner.entries()).map(([k, v]) => [Buffer.from(k).toString('hex'), Buffer.from(v).toString('hex')]));
    const kept = [...before].filter(([k]) => !ofA(Buffer.from(k, 'hex')));
    expect([...after].filter(([k]) => before.has(k))).toEqual(kept);
    client = await open();
    expect(client.groupIds().map(lib.toHex)).toEqual(['616263']);
    expect(new TextDecoder().decode(client.groupRecord(b.id, 'layer'))).toBe('about abc');
    expect((await client.group(b.id).encrypt('still here')).length).toBeGreaterThan(0);
    client.free();
  });

  it("a SQLite file whose trigger was hidden from the schema check (sqlite_master edited), or that is no database, is refused with STORAGE (was better-sqlite3's SqliteError); the adapter's own file opens", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paired-mls-rereview-sqlite-'));
    const key = crypto.getRandomValues(new Uint8Array(32));
    const file = join(dir, 'client.sqlite');
    let client = await MlsClient.open({ storage: await SqliteStorageAdapter.open(file, { key }) });
    const me = await client.createIdentity('alice', 1);
    const group = await client.createGroup(me);
    client.free();
    // The writer: a trigger that drops every write, then its row in sqlite_master moved to another table's name.
    const db = new Database(join(dir, 'client.sqlite'));
    db.exec('CREATE TRIGGER drop_writes BEFORE INSERT ON entries BEGIN SELECT RAISE(IGNORE); END;');
    db.unsafeMode(true);
    db.pragma('writable_schema = ON');
    db.prepare("UPDATE sqlite_master SET tbl_name = 'other' WHERE name = 'drop_writes'").run();
    db.close();
    const hidden = await mlsError(() => SqliteStorageAdapter.open(file, { key }));
    expect([hidden.code, hidden.message, (hidden.cause as { code?: string }).code]).toEqual(['STORAGE', 'opening the SQLite file failed', 'SQLITE_CORRUPT']);
    writeFileSync(join(dir, 'junk.sqlite'), Buffer.alloc(4096, 7));
    const junk = await mlsError(() => SqliteStorageAdapter.open(join(dir, 'junk.sqlite'), { key }));
    expect([junk.code, junk.message, (junk.cause as { code?: string }).code]).toEqual(['STORAGE', 'opening the SQLite file failed', 'SQLITE_NOTADB']);
    // The honest file of the adapter opens and its group works.
    client = await MlsClient.open({ storage: await SqliteStorageAdapter.open(join(dir, 'fresh.sqlite'), { key }) });
    const again = await client.createGroup(await client.createIdentity('alice', 1));
    expect((await again.encrypt('hello')).length).toBeGreaterThan(0);
    client.free();
    void group;
  });
});
