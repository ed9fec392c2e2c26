/**
 * A third attacker's review of the networked DS: each test is an attack
 * that succeeded before its fix, against the real server on loopback
 * (SQLite file; PostgreSQL where the database is shared), asserting the
 * exact refusal or bound and that the honest clients keep working.
 *
 * Attacks:
 * - a paired device posts a real external commit of its own to its
 *   anchor's closed group without the `externalJoin` flag, naming itself in
 *   `added` (default mode) or letting the verified tree name it (verified
 *   mode): it was put on the member list and kept reading, and decrypting,
 *   the group after its pairing ceased.
 * - a committer adds 100 clients (or, with grants, 1000) with one Welcome
 *   of S bytes: the DS stored N copies (N x S bytes; 30,919 bytes to 100
 *   clients grew the SQLite file by 3.2 MB). Now stored once, and a
 *   database of schema 3 is migrated to that form when opened.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { WebSocket } from 'ws';
import { MlsClient, toHex } from 'paired-mls';
import { DeliveryClient } from 'paired-mls/services';
import { DS_SCHEMA_VERSION, PostgresDeliveryStore, SqliteDeliveryStore } from 'paired-mls/server';
import type { DeliveryStore } from 'paired-mls/services';
import { dsPeer, groupStillWorks, raw, sqliteServers, tokenOf, type DsPeer } from './ds-helpers.js';
import { postgresPair, type PostgresPair } from './ds-postgres-pair.js';
import { POSTGRES_SCHEMA_V3, SQLITE_SCHEMA_V3 } from './ds-schema-v3.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const KiB = 1024;

/** Bytes of the SQLite file's pages that hold Welcomes (tables and indexes named after them; dbstat, whatever the schema). */
function welcomePages(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare("SELECT coalesce(sum(pgsize), 0) AS n FROM dbstat WHERE name LIKE '%welcome%'").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/**
 * What a database of schema 3 held (filled in by `fillV3`): group `aa` at
 * epoch 1; Welcomes 1 and 3 waiting (for bob and carol), 2 and 4 issued
 * and acknowledged (so the next id is 5).
 */
const V3_WELCOMES = [
  { id: 1, recipient: 'bob', welcome: new Uint8Array(300).fill(1) },
  { id: 3, recipient: 'carol', welcome: new Uint8Array(500).fill(3) },
];

/** Runs each statement of a database of schema 3 (`run(sql, params)`), SQLite or PostgreSQL, then the acknowledgements. */
async function fillV3(run: (sql: string, params: unknown[]) => unknown, ph: (i: number) => string, welcomesTable: string): Promise<void> {
  await run(`INSERT INTO ${welcomesTable.replace('welcomes', 'meta')} (key, value) VALUES (${ph(1)}, ${ph(2)})`, ['schema', '3']);
  await run(`INSERT INTO ${welcomesTable.replace('welcomes', 'groups')} (group_id, epoch, members, consistency) VALUES (${ph(1)}, 1, ${ph(2)}, 'strong')`, ['aa', '["alice"]']);
  for (let id = 1; id <= 4; id++) {
    const w = V3_WELCOMES.find((x) => x.id === id) ?? { recipient: 'dave', welcome: new Uint8Array(10) };
    await run(`INSERT INTO ${welcomesTable} (id, recipient, group_id, welcome) VALUES (${ph(1)}, ${ph(2)}, 'aa', ${ph(3)})`, [id, w.recipient, Buffer.from(w.welcome)]);
  }
  await run(`DELETE FROM ${welcomesTable} WHERE recipient = ${ph(1)}`, ['dave']);
}

/** The checks of a store opened on a database of schema 3 (`fillV3`): the Welcomes wait under their ids; new ids follow the old ones; acknowledging works. */
async function checkMigratedWelcomes(store: DeliveryStore): Promise<void> {
  for (const w of V3_WELCOMES) expect(await store.pendingWelcomes(w.recipient)).toEqual([{ id: w.id, groupId: 'aa', welcome: w.welcome }]);
  const message = { groupId: 'aa', sender: 'alice', bytes: new Uint8Array([1, 2, 3]), digest: 'ab' };
  expect(await store.append(message, { expectEpoch: 1, setEpoch: 2, welcome: { recipients: ['erin', 'frank'], welcome: new Uint8Array(64).fill(9) } })).toBe(1);
  // Ids are never reused: 4 was issued (and acknowledged) before the migration.
  expect((await store.pendingWelcomes('erin')).map((w) => w.id)).toEqual([5]);
  expect((await store.pendingWelcomes('frank')).map((w) => w.id)).toEqual([6]);
  for (const w of V3_WELCOMES) {
    await store.ackWelcomes(w.recipient, [w.id]);
    expect(await store.countWelcomes(w.recipient)).toBe(0);
  }
}

/** `n` clients registered at `url`, sharing one MlsClient (cheap), each with one KeyPackage uploaded. */
async function registeredClients(url: string, prefix: string, n: number): Promise<DsPeer[]> {
  const client = await MlsClient.open();
  const out: DsPeer[] = [];
  for (let i = 0; i < n; i++) {
    const name = `${prefix}${i}`;
    const identity = await client.createIdentity(name, 1);
    const ds = await DeliveryClient.register(url, { clientId: name, client, identity }, { WebSocket });
    await ds.uploadKeyPackages([await client.createKeyPackage(identity)]);
    out.push({ name, client, identity, ds, seen: 0, storage: client.storage });
  }
  return out;
}

/**
 * A well-formed Welcome that `p` makes for its own KeyPackage (fetched from
 * the DS, so the DS granted it to `p`): a scratch group of its own adds it.
 */
async function ownWelcome(p: DsPeer): Promise<Uint8Array> {
  await p.ds.uploadKeyPackages([await p.client.createKeyPackage(p.identity)]);
  const kp = (await p.ds.fetchKeyPackages([p.name])).get(p.name)!;
  const scratch = await p.client.createGroup(await p.client.createIdentity(`${p.name}-scratch`, 1));
  const add = await scratch.commit({ add: [kp] });
  return add.welcome!;
}

describe('third review of the DS (SQLite)', () => {
  const server = sqliteServers('paired-mls-review3-');
  const tag = Math.random().toString(36).slice(2, 8);

  for (const verifyCommits of [false, true]) {
    const mode = verifyCommits ? 'verified mode' : 'default mode';
    it(`${mode}: a paired device cannot put itself on its anchor's member list by a commit (403 forbidden), so ceasing the pairing still ends its access`, async () => {
      const s = await server({ verifyCommits });
      const plaintext = verifyCommits ? { wireFormat: 'plaintext' as const } : {};
      const [alice, bob, phone] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`), dsPeer(s.url, `alice-phone-${tag}`)]);
      alice.group = await alice.client.createGroup(alice.identity, plaintext);
      const gid = alice.group.id;
      await alice.ds.createGroup(gid, { epoch: 0, groupInfo: await alice.group.exportGroupInfo() });
      await bob.ds.uploadKeyPackages([await bob.client.createKeyPackage(bob.identity)]);
      const add = await alice.group.commit({ add: [...(await alice.ds.fetchKeyPackages([bob.name])).values()], groupInfo: true });
      alice.seen = await alice.ds.submit(gid, add.commit, { welcome: add.welcome, added: verifyCommits ? undefined : [bob.name], groupInfo: add.groupInfo });
      await alice.group.mergePendingCommit();
      bob.group = await bob.client.joinFromWelcome((await bob.ds.welcomes())[0]!.welcome, plaintext);
      bob.seen = alice.seen;
      expect(await alice.ds.initPairing(alice.name, phone.name)).toBe(false);
      expect(await phone.ds.initPairing(alice.name, phone.name)).toBe(true);
      // The device reads the GroupInfo (it may, through alice) and makes a
      // real external commit of its own. Without the externalJoin flag it
      // was judged as alice's device posting a commit: in default mode its
      // `added` (itself, with a Welcome to its own granted KeyPackage) put it
      // on the member list; in verified mode the tree did, the commit being
      // signed by the poster's own leaf. Either way it outlived the pairing.
      const welcome = verifyCommits ? undefined : await ownWelcome(phone);
      const joined = await phone.client.joinExternal(await phone.ds.groupInfo(gid), phone.identity, plaintext);
      const token = await tokenOf(s.url, phone.name, phone);
      const body = {
        message: b64(joined.commit),
        ...(verifyCommits ? { groupInfo: b64(await joined.group.exportGroupInfo()) } : { added: [phone.name], welcome: b64(welcome!) }),
      };
      expect(await raw(s.url, 'POST', `/v1/groups/${toHex(gid)}/messages`, body, token)).toMatchObject({ status: 403, body: { reason: 'forbidden' } });
      expect(await s.ds.epoch(gid)).toBe(alice.group.epoch);
      expect((await s.ds.store.getGroup(toHex(gid)))!.members.sort()).toEqual([alice.name, bob.name].sort());
      // Ceasing the pairing ends its access.
      await phone.ds.ceasePairing(alice.name, phone.name);
      await expect(phone.ds.poll(gid, 0)).rejects.toMatchObject({ reason: 'not-a-member' });
      await groupStillWorks([alice, bob], `${mode}, after the device`);
    });
  }

  it('a Welcome to 100 clients is stored once, not once per recipient; each recipient acknowledges its own, and the bytes go with the last acknowledgement', async () => {
    let file = '';
    const s = await server({}, (f) => new SqliteDeliveryStore((file = f)));
    const alice = await dsPeer(s.url, `alice-${tag}`);
    const N = 100;
    // The first and the last join (each with a client of its own); the 98 between share one MlsClient.
    const ends = await Promise.all([dsPeer(s.url, `first-${tag}`), dsPeer(s.url, `last-${tag}`)]);
    for (const p of ends) await p.ds.uploadKeyPackages([await p.client.createKeyPackage(p.identity)]);
    const others = [ends[0], ...(await registeredClients(s.url, `w${tag}-`, N - 2)), ends[1]];
    alice.group = await alice.client.createGroup(alice.identity);
    const gid = alice.group.id;
    await alice.ds.createGroup(gid, { epoch: 0 });
    const kps = await alice.ds.fetchKeyPackages(others.map((p) => p.name));
    expect(kps.size).toBe(N);
    const add = await alice.group.commit({ add: [...kps.values()] });
    const before = welcomePages(file);
    // One commit adding N clients with one Welcome of S bytes: the DS stored
    // N copies (N x S bytes); a committer with grants for 1000 clients (the
    // `added` bound) made it store 1000 copies of a Welcome of up to 4 MiB.
    alice.seen = await alice.ds.submit(gid, add.commit, { welcome: add.welcome, added: others.map((p) => p.name) });
    await alice.group.mergePendingCommit();
    const stored = welcomePages(file) - before;
    const S = add.welcome!.length;
    console.log(`a Welcome of ${S} bytes to ${N} clients: Welcome pages grew by ${stored} bytes (${N} copies: ${N * S} bytes)`);
    expect(stored).toBeLessThan(S + N * 128 + 16 * KiB);
    // Each recipient reads the same Welcome, under an id of its own, and acknowledges it.
    const ids = new Set<number>();
    for (const [i, p] of others.entries()) {
      const mine = await p.ds.welcomes();
      expect(mine).toHaveLength(1);
      expect(mine[0]!.welcome).toEqual(add.welcome);
      ids.add(mine[0]!.id);
      if (i === 0 || i === N - 1) {
        p.group = await p.client.joinFromWelcome(mine[0]!.welcome);
        p.seen = alice.seen;
      }
      await p.ds.ackWelcomes([mine[0]!.id]);
      await p.ds.ackWelcomes([mine[0]!.id]);
      expect(await s.ds.store.countWelcomes(p.name)).toBe(0);
    }
    expect(ids.size).toBe(N);
    // The last acknowledgement deleted the Welcome's bytes.
    const db = new Database(file, { readonly: true });
    const left = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE '%welcome%'").all() as { name: string }[];
    for (const { name } of left) expect((db.prepare(`SELECT count(*) AS n FROM ${name}`).get() as { n: number }).n, name).toBe(0);
    db.close();
    await groupStillWorks([alice, others[0]!, others[N - 1]!], 'after the Welcome');
  });

  it('a database of schema 3 is migrated when opened (one transaction): its waiting Welcomes keep their ids and bytes, new ids follow the old ones; a database of schema 2 is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paired-mls-review3-v3-'));
    const file = join(dir, 'v3.sqlite');
    const old = new Database(file);
    old.exec(SQLITE_SCHEMA_V3);
    await fillV3((sql, params) => old.prepare(sql).run(...params), () => '?', 'welcomes');
    old.close();
    const store = new SqliteDeliveryStore(file);
    await checkMigratedWelcomes(store);
    store.close();
    // Opened again: already at the current version, the data kept.
    const again = new SqliteDeliveryStore(file);
    expect((await again.pendingWelcomes('erin')).map((w) => w.id)).toEqual([5]);
    again.close();
    const meta = new Database(file, { readonly: true });
    expect(meta.prepare("SELECT value FROM meta WHERE key = 'schema'").get()).toEqual({ value: DS_SCHEMA_VERSION });
    meta.close();
    const older = new Database(join(dir, 'v2.sqlite'));
    older.exec("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO meta VALUES ('schema', '2')");
    older.close();
    expect(() => new SqliteDeliveryStore(join(dir, 'v2.sqlite'))).toThrow(`database schema 2; this server reads ${DS_SCHEMA_VERSION}`);
  });
});

describe('third review of the DS (PostgreSQL, two servers)', () => {
  let pair: PostgresPair;
  const tag = Math.random().toString(36).slice(2, 8);
  beforeAll(async () => {
    pair = await postgresPair();
  });
  afterAll(async () => pair?.close());
  const url = (db: string) => `postgres://postgres@127.0.0.1:${pair.port}/${db}`;

  it('a Welcome to 100 clients is stored once; its recipients acknowledge it on both servers at once, and the last acknowledgement takes its bytes', async () => {
    const { one, two } = pair;
    const alice = await dsPeer(one.url, `alice-${tag}`);
    const N = 100;
    const others = await registeredClients(one.url, `w${tag}-`, N);
    alice.group = await alice.client.createGroup(alice.identity);
    const gid = alice.group.id;
    await alice.ds.createGroup(gid, { epoch: 0 });
    const add = await alice.group.commit({ add: [...(await alice.ds.fetchKeyPackages(others.map((p) => p.name))).values()] });
    const db = new pg.Client({ connectionString: url('postgres') });
    await db.connect();
    const size = async () => Number((await db.query("SELECT sum(pg_total_relation_size(oid)) AS n FROM pg_class WHERE relkind = 'r' AND relname LIKE 'ds_welcome%'")).rows[0].n);
    const before = await size();
    alice.seen = await alice.ds.submit(gid, add.commit, { welcome: add.welcome, added: others.map((p) => p.name) });
    const stored = await size();
    console.log(`PostgreSQL: a Welcome of ${add.welcome!.length} bytes to ${N} clients: the Welcome tables grew by ${stored - before} bytes (${N} copies: ${N * add.welcome!.length} bytes)`);
    expect(stored - before).toBeLessThan(add.welcome!.length + N * 128 + 64 * KiB);
    // Half of the recipients read and acknowledge on one server, half on the other, all at once.
    const logins = await Promise.all(others.map((p, i) => DeliveryClient.login(i % 2 ? two.url : one.url, { clientId: p.name, client: p.client, identity: p.identity }, { WebSocket })));
    const pending = await Promise.all(logins.map((ds) => ds.welcomes()));
    expect(pending.every((w) => w.length === 1 && Buffer.from(w[0]!.welcome).equals(Buffer.from(add.welcome!)))).toBe(true);
    await Promise.all(logins.map((ds, i) => ds.ackWelcomes([pending[i]![0]!.id])));
    expect(Number((await db.query('SELECT count(*) AS n FROM ds_welcomes')).rows[0].n)).toBe(0);
    expect(Number((await db.query('SELECT count(*) AS n FROM ds_welcome_blobs')).rows[0].n)).toBe(0);
    await db.end();
  });

  it('a database of schema 3 is migrated when opened (one transaction, under the schema lock): its waiting Welcomes keep their ids and bytes, new ids follow the old ones', async () => {
    const admin = new pg.Client({ connectionString: url('postgres') });
    await admin.connect();
    await admin.query('CREATE DATABASE v3');
    await admin.end();
    const old = new pg.Client({ connectionString: url('v3') });
    await old.connect();
    await old.query(POSTGRES_SCHEMA_V3);
    await fillV3((sql, params) => old.query(sql, params), (i) => `$${i}`, 'ds_welcomes');
    // The old table's id sequence stands where the old server left it.
    await old.query("SELECT setval(pg_get_serial_sequence('ds_welcomes', 'id'), 4)");
    await old.end();
    // Two servers start on it at once: one migrates, the other waits and finds it done.
    const stores = await Promise.all([PostgresDeliveryStore.connect(url('v3')), PostgresDeliveryStore.connect(url('v3'))]);
    try {
      await checkMigratedWelcomes(stores[0]!);
      expect((await stores[1]!.pendingWelcomes('frank')).map((w) => w.id)).toEqual([6]);
    } finally {
      for (const s of stores) await s.close();
    }
    const check = new pg.Client({ connectionString: url('v3') });
    await check.connect();
    expect((await check.query("SELECT value FROM ds_meta WHERE key = 'schema'")).rows).toEqual([{ value: DS_SCHEMA_VERSION }]);
    await check.end();
  });
});
