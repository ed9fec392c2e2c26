/**
 * A third attacker's review of the networked DS: each test is an attack
 * that succeeded before its fix, against the real server on loopback
 * (SQLite file; PostgreSQL where the database is shared; the quotas also
 * on the in-process DS's memory store), asserting the exact refusal or
 * bound and that the honest clients keep working.
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
 * - one registered client has the DS store without bound: 4 MiB messages
 *   in as many groups of its own as it likes, group records with 4 MiB
 *   GroupInfos, KeyPackages (also 80 KB ones), Welcomes in others' inboxes.
 *   Now per-client quotas, counted in the store's transaction (memory,
 *   SQLite, PostgreSQL).
 * - one address opens polls of an 8 MiB page and streams and never reads:
 *   the server held every reply (11.2 MB each, 512 connections an
 *   address). Now a budget of unsent reply bytes per address.
 * - Welcomes padded to 1 MiB in one inbox: a page was 100 of them whatever
 *   their size. Now bounded in bytes like a poll.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { ServerResponse, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { WebSocket } from 'ws';
import { MlsClient, toHex } from 'paired-mls';
import { DeliveryClient, DeliveryService } from 'paired-mls/services';
import { DS_SCHEMA_VERSION, PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
import type { DeliveryStore } from 'paired-mls/services';
import { catchUpAll, dsPeer, groupOf, groupStillWorks, raw, sqliteServers, tokenOf, upgrade, type DsPeer } from './ds-helpers.js';
import { postgresPair, type PostgresPair } from './ds-postgres-pair.js';
import { POSTGRES_SCHEMA_V3, SQLITE_SCHEMA_V3 } from './ds-schema-v3.js';
import { newMember } from './helpers.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const KiB = 1024;
const MiB = 1024 * KiB;
/** What each stored record counts beside its own bytes (docs/PROTOCOL.md §8.6). */
const RECORD = 256;
/** What a client's registered key counts, for good (its binding: credential identity and key, plus 256). */
const KEY = (p: DsPeer) => RECORD + p.identity.identity.length + p.identity.signaturePublicKey.length;
/** 100 clients register from loopback here: more than one address's registration burst (30, docs/PROTOCOL.md §8.6). */
const MANY_REGISTRATIONS = { registrationRate: [100, 200] as [number, number] };

/** POST a message (and extras, base64 already) to a group as the holder of `token`. */
function post(url: string, token: string, gid: Uint8Array, message: Uint8Array, extras: Record<string, unknown> = {}) {
  return raw(url, 'POST', `/v1/groups/${toHex(gid)}/messages`, { message: b64(message), ...extras }, token);
}

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
  // alice's message of 100 bytes in the log, bob's KeyPackage of 50 bytes.
  await run(`INSERT INTO ${welcomesTable.replace('welcomes', 'log')} (group_id, seq, sender, bytes, digest) VALUES ('aa', 1, 'alice', ${ph(1)}, 'old')`, [Buffer.alloc(100)]);
  await run(`INSERT INTO ${welcomesTable.replace('welcomes', 'key_packages')} (ref, client_id, bytes, last_resort, not_after) VALUES ('r1', 'bob', ${ph(1)}, ${ph(2)}, 4000000000)`, [Buffer.alloc(50), ph(1) === '?' ? 0 : false]);
}

/**
 * The checks of a store opened on a database of schema 3 (`fillV3`): the
 * Welcomes wait under their ids; new ids follow the old ones; acknowledging
 * works; what was stored counts for its sender or owner (the Welcomes
 * stored before name no committer: they count for nobody).
 */
async function checkMigratedWelcomes(store: DeliveryStore): Promise<void> {
  for (const w of V3_WELCOMES) expect(await store.pendingWelcomes(w.recipient)).toEqual([{ id: w.id, groupId: 'aa', welcome: w.welcome }]);
  expect(await store.usage('alice')).toEqual({ bytes: 100 + RECORD, keyPackages: 0 });
  expect(await store.usage('bob')).toEqual({ bytes: 50 + RECORD, keyPackages: 1 });
  const message = { groupId: 'aa', sender: 'alice', bytes: new Uint8Array([1, 2, 3]), digest: 'ab' };
  expect(await store.append(message, { expectEpoch: 1, setEpoch: 2, welcome: { recipients: ['erin', 'frank'], welcome: new Uint8Array(64).fill(9) } })).toBe(2);
  expect(await store.usage('alice')).toEqual({ bytes: 100 + RECORD + 3 + RECORD + 64 + 3 * RECORD, keyPackages: 0 });
  // Ids are never reused: 4 was issued (and acknowledged) before the migration.
  expect((await store.pendingWelcomes('erin')).map((w) => w.id)).toEqual([5]);
  expect((await store.pendingWelcomes('frank')).map((w) => w.id)).toEqual([6]);
  for (const w of V3_WELCOMES) {
    await store.ackWelcomes(w.recipient, [w.id]);
    expect(await store.countWelcomes(w.recipient)).toBe(0);
  }
  await store.ackWelcomes('erin', [5]);
  await store.ackWelcomes('frank', [6]);
  expect(await store.usage('alice')).toEqual({ bytes: 100 + RECORD + 3 + RECORD, keyPackages: 0 });
}

/**
 * The server's sockets (this process runs it) and the bytes each has not
 * yet handed to the kernel: HTTP replies (ServerResponse.end) and
 * WebSocket frames (the server's WebSocket.send). Returns the bytes held
 * for `address`, and `restore`.
 */
function watchServerSockets(): { heldFor(address: string): number; restore(): void } {
  const sockets = new Set<Socket>();
  const end = ServerResponse.prototype.end;
  const send = WebSocket.prototype.send;
  ServerResponse.prototype.end = function (this: ServerResponse, ...args: unknown[]) {
    sockets.add(this.socket as Socket);
    return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
  } as ServerResponse['end'];
  WebSocket.prototype.send = function (this: WebSocket, ...args: Parameters<WebSocket['send']>) {
    sockets.add((this as unknown as { _socket: Socket })._socket);
    return send.apply(this, args);
  } as WebSocket['send'];
  return {
    heldFor: (address) => [...sockets].filter((k) => k && !k.destroyed && k.remoteAddress === address).reduce((n, k) => n + k.writableLength, 0),
    restore: () => {
      ServerResponse.prototype.end = end;
      WebSocket.prototype.send = send;
    },
  };
}

/** A connection from `localAddress` that sends a GET and never reads (its socket paused). */
function stalledGet(url: string, path: string, token: string, localAddress: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const sock = connect({ host: hostname, port: Number(port), localAddress }, () => {
      sock.pause();
      sock.write(`GET ${path} HTTP/1.1\r\nhost: ${hostname}\r\nauthorization: Bearer ${token}\r\n\r\n`);
      resolve(sock);
    });
    sock.on('error', () => undefined);
  });
}

/** A GET from `localAddress` whose answer is read: its status and reason. */
function getFrom(url: string, path: string, token: string, localAddress: string): Promise<{ status: number; reason?: string; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url + path, { localAddress, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        resolve({ status: res.statusCode ?? 0, reason: body.reason, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** `welcome` with its encrypted GroupInfo replaced by `size` junk bytes: still a well-formed Welcome for the same recipients. */
function paddedWelcome(welcome: Uint8Array, size: number): Uint8Array {
  // MLSMessage header (4), cipher_suite (2), secrets<V>, encrypted_group_info<V> (RFC 9420 §12.4.3.1; QUIC varints, §2.1.2).
  const varint = (at: number): [number, number] => {
    const first = welcome[at]!;
    const len = 1 << (first >> 6);
    let v = first & 0x3f;
    for (let i = 1; i < len; i++) v = v * 256 + welcome[at + i]!;
    return [v, len];
  };
  const [secrets, n] = varint(6);
  const end = 6 + n + secrets;
  const head = new Uint8Array([0x80 | (size >>> 24), (size >>> 16) & 0xff, (size >>> 8) & 0xff, size & 0xff]);
  const out = new Uint8Array(end + 4 + size).fill(0x5a);
  out.set(welcome.subarray(0, end));
  out.set(head, end);
  return out;
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
    it(`${mode}: a paired device cannot put itself on its anchor's member list, nor into the tree, by a commit (403 forbidden), so ceasing the pairing still ends its access`, async () => {
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
      // Its own external commit alone (no flag, no `added`): in default mode
      // the DS logged it and moved the epoch, the device's leaf in the tree.
      expect(await raw(s.url, 'POST', `/v1/groups/${toHex(gid)}/messages`, { message: b64(joined.commit) }, token)).toMatchObject({
        status: 403,
        body: { reason: 'forbidden', error: 'a paired device cannot make itself a member (forbidden)' },
      });
      // Nor a new member's proposal (sender type 3): members queued it and covered it by reference.
      const newMemberProposal = new Uint8Array([0, 1, 0, 1, gid.length, ...gid, ...new Uint8Array(new BigUint64Array([BigInt(alice.group.epoch)]).buffer).reverse(), 3, 0, 2, 0, 1]);
      expect(await raw(s.url, 'POST', `/v1/groups/${toHex(gid)}/messages`, { message: b64(newMemberProposal) }, token)).toMatchObject({
        status: 403,
        body: { reason: 'forbidden', error: "a paired device cannot post a new member's proposal (forbidden)" },
      });
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

  it("a client's stored message bytes are bounded (maxStoredBytesPerClient): past the quota its posts are refused with 429 quota-exceeded in every group; what retention prunes is given back; the others keep posting", async () => {
    const s = await server({ maxStoredBytesPerClient: 4 * MiB, retention: 4 });
    const [alice, bob, mallory] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`), dsPeer(s.url, `mallory-${tag}`)]);
    await groupOf(alice, [bob, mallory]);
    const gid = alice.group!.id;
    const own = await mallory.client.createGroup(mallory.identity);
    await mallory.ds.createGroup(own.id, { epoch: 0 });
    const token = await tokenOf(s.url, mallory.name, mallory);
    // One registration let mallory store 4 MiB messages without end: 500
    // messages a group are kept (retention 100,000), in as many groups of her
    // own as she likes. Two of 1 MiB in alice's group, then her own group.
    const sizes: number[] = [];
    for (const g of [alice.group!, alice.group!]) {
      const m = await mallory.group!.encrypt(new Uint8Array(MiB).fill(1));
      expect(await post(s.url, token, g.id, m)).toMatchObject({ status: 200 });
      sizes.push(m.length);
    }
    let refused;
    for (let i = 0; i < 8; i++) {
      const m = await own.encrypt(new Uint8Array(MiB).fill(2));
      const r = await post(s.url, token, own.id, m);
      if (r.status !== 200) {
        refused = r;
        break;
      }
      sizes.push(m.length);
    }
    expect(sizes).toHaveLength(3);
    expect(refused).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
    expect(await post(s.url, token, gid, await mallory.group!.encrypt(new Uint8Array(MiB)))).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
    // Exactly her messages still stored and her group's record; her KeyPackage went when alice acknowledged it.
    const used = () => KEY(mallory) + RECORD + sizes.reduce((a, n) => a + n + RECORD, 0);
    expect(await s.ds.store.usage(mallory.name)).toEqual({ bytes: used(), keyPackages: 0 });
    // What is left is hers to use, to the byte; then even a small message is refused (every record counts 256 bytes).
    const last = await own.encrypt(new Uint8Array(4 * MiB - used() - RECORD - 150));
    expect(await post(s.url, token, own.id, last)).toMatchObject({ status: 200 });
    sizes.push(last.length);
    expect(4 * MiB - used()).toBeLessThan(RECORD);
    expect(await post(s.url, token, own.id, await own.encrypt('hi'))).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
    // alice, with a quota of her own, posts 1 MiB messages as before.
    for (const p of [bob, mallory]) await catchUpAll(p);
    for (let i = 0; i < 2; i++) alice.seen = await alice.ds.submit(gid, await alice.group!.encrypt(new Uint8Array(MiB)));
    for (const p of [bob, mallory]) await catchUpAll(p);
    // Retention (4) prunes alice's group at sequence number 8: mallory's two messages leave it, and her quota has room again.
    while (alice.seen < 8) alice.seen = await alice.ds.submit(gid, await alice.group!.encrypt('to the pruning'));
    expect((await s.ds.poll(alice.name, gid, 0)).map((m) => m.seq)).toEqual([5, 6, 7, 8]);
    expect(await s.ds.store.usage(mallory.name)).toEqual({ bytes: KEY(mallory) + RECORD + sizes[2]! + RECORD + sizes[3]! + RECORD, keyPackages: 0 });
    expect(await post(s.url, token, own.id, await own.encrypt(new Uint8Array(MiB)))).toMatchObject({ status: 200 });
    await groupStillWorks([alice, bob, mallory], 'after the quota');
  });

  it("a client's groups and GroupInfos count against its quota: empty groups past it are refused (429 quota-exceeded); a GroupInfo counts for whoever stored it until a commit replaces it", async () => {
    const s = await server({ maxStoredBytesPerClient: 64 * KiB });
    const [alice, bob, mallory] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`), dsPeer(s.url, `mallory-${tag}`)]);
    const token = await tokenOf(s.url, mallory.name, mallory);
    // Groups are never deleted: one registration made the DS keep as many
    // group records as it asked for, each with a GroupInfo of up to 4 MiB.
    let created = 0;
    let refused;
    for (let i = 0; i < 300; i++) {
      const r = await raw(s.url, 'POST', '/v1/groups', { groupId: b64(new TextEncoder().encode(`${tag}-${i}`)) }, token);
      if (r.status !== 200) {
        refused = r;
        break;
      }
      created++;
    }
    expect(created).toBe(Math.floor((64 * KiB - KEY(mallory)) / RECORD));
    expect(refused).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
    // alice's group with a GroupInfo: it counts for alice, then for bob once his commit replaces it.
    await groupOf(alice, [bob]);
    const gid = alice.group!.id;
    const stored = (await s.ds.groupInfo(gid))!.length;
    const aliceUsage = (await s.ds.store.usage(alice.name)).bytes;
    expect(aliceUsage).toBe(KEY(alice) + RECORD + stored + (await s.ds.poll(alice.name, gid, 0))[0]!.bytes.length + RECORD);
    await catchUpAll(bob);
    const before = (await s.ds.store.usage(bob.name)).bytes;
    const update = await bob.group!.selfUpdate({ groupInfo: true });
    bob.seen = await bob.ds.submit(gid, update.commit, { groupInfo: update.groupInfo });
    await bob.group!.mergePendingCommit();
    expect((await s.ds.store.usage(alice.name)).bytes).toBe(aliceUsage - stored);
    expect((await s.ds.store.usage(bob.name)).bytes).toBe(before + update.commit.length + RECORD + update.groupInfo!.length);
    await groupStillWorks([alice, bob], 'after the groups');
  });

  it('KeyPackages held per client are bounded (maxKeyPackagesPerClient: 429 quota-exceeded) and so is each one (64 KiB: 413 too-large); a KeyPackage handed out and acknowledged makes room', async () => {
    const s = await server({ maxKeyPackagesPerClient: 5 });
    const [alice, bob, mallory] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`), dsPeer(s.url, `mallory-${tag}`)]);
    const token = await tokenOf(s.url, mallory.name, mallory);
    const upload = async (kps: Uint8Array[]) => raw(s.url, 'POST', '/v1/key-packages', { keyPackages: kps.map(b64) }, token);
    // An 80 KB KeyPackage (40,000 capabilities; a plain one is 283 bytes):
    // 100 of them, one per registration, made one fetch reply 8 MB (with
    // another MLS stack, 4 MiB each: 400 MiB, base64ed into one string).
    const huge = await mallory.client.createKeyPackage(mallory.identity, { capabilities: { extensions: Array.from({ length: 40_000 }, (_, i) => i + 100) } });
    expect(huge.length).toBeGreaterThan(64 * KiB);
    expect(await upload([huge])).toMatchObject({ status: 413, body: { reason: 'too-large' } });
    // As many as the DS was sent, 1000 a request: now at most 5 held.
    expect(await upload(await mallory.client.createKeyPackages(mallory.identity, { count: 6 }))).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
    expect(await s.ds.store.countKeyPackages(mallory.name)).toBe(0);
    const five = await mallory.client.createKeyPackages(mallory.identity, { count: 5 });
    expect(await upload(five)).toMatchObject({ status: 200 });
    // The same ones again are no new KeyPackages (they are stored once).
    expect(await upload(five)).toMatchObject({ status: 200 });
    expect(await upload([await mallory.client.createKeyPackage(mallory.identity)])).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
    expect(await s.ds.store.usage(mallory.name)).toEqual({ bytes: KEY(mallory) + five.reduce((a, k) => a + k.length + RECORD, 0), keyPackages: 5 });
    // alice takes one of mallory's: room for one more.
    await alice.ds.fetchKeyPackages([mallory.name]);
    await alice.ds.ackKeyPackages([mallory.name]);
    expect((await s.ds.store.usage(mallory.name)).keyPackages).toBe(4);
    expect(await upload([await mallory.client.createKeyPackage(mallory.identity)])).toMatchObject({ status: 200 });
    await groupOf(alice, [bob]);
    await groupStillWorks([alice, bob], 'after the KeyPackages');
  });

  it("a commit's Welcome counts against its committer's quota until its last recipient takes it; a commit past the quota is refused whole (429 quota-exceeded: no epoch, no Welcome)", async () => {
    const s = await server({ maxStoredBytesPerClient: 24 * KiB });
    const [alice, bob, mallory, victim] = await Promise.all(['alice', 'bob', 'mallory', 'victim'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
    await victim!.ds.uploadKeyPackages([await victim!.client.createKeyPackage(victim!.identity, { lastResort: true })]);
    mallory!.group = await mallory!.client.createGroup(mallory!.identity);
    const gid = mallory!.group.id;
    await mallory!.ds.createGroup(gid, { epoch: 0 });
    const token = await tokenOf(s.url, mallory!.name, mallory!);
    // Welcomes of up to 4 MiB to any client whose KeyPackage the DS hands
    // out, 1000 waiting per inbox, and nothing counted for the committer.
    const add = await mallory!.group.commit({ add: [(await mallory!.ds.fetchKeyPackages([victim!.name])).get(victim!.name)!] });
    const commitBytes = add.commit.length;
    expect(await post(s.url, token, gid, add.commit, { welcome: b64(add.welcome!), added: [victim!.name] })).toMatchObject({ status: 200 });
    await mallory!.group.mergePendingCommit();
    const withWelcome = KEY(mallory!) + RECORD + commitBytes + RECORD + add.welcome!.length + 2 * RECORD;
    expect(await s.ds.store.usage(mallory!.name)).toEqual({ bytes: withWelcome, keyPackages: 0 });
    // Filled up with a message, a commit with a Welcome is refused whole.
    const room = 24 * KiB - withWelcome;
    const fill = await mallory!.group.encrypt(new Uint8Array(room - 500));
    expect(await post(s.url, token, gid, fill)).toMatchObject({ status: 200 });
    expect(await s.ds.store.countWelcomes(victim!.name)).toBe(1);
    const epoch = await s.ds.epoch(gid);
    await bob!.ds.uploadKeyPackages([await bob!.client.createKeyPackage(bob!.identity)]);
    const again = await mallory!.group.commit({ add: [(await mallory!.ds.fetchKeyPackages([bob!.name])).get(bob!.name)!] });
    expect(await post(s.url, token, gid, again.commit, { welcome: b64(again.welcome!), added: [bob!.name] })).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
    await mallory!.group.clearPendingCommit();
    expect(await s.ds.epoch(gid)).toBe(epoch);
    expect(await s.ds.store.countWelcomes(bob!.name)).toBe(0);
    expect(await s.ds.store.countWelcomes(victim!.name)).toBe(1);
    // The victim takes its Welcome: mallory's quota gets the Welcome's bytes back.
    const [w] = await victim!.ds.welcomes();
    await victim!.ds.ackWelcomes([w!.id]);
    expect((await s.ds.store.usage(mallory!.name)).bytes).toBe(withWelcome - add.welcome!.length - 2 * RECORD + fill.length + RECORD);
    await groupOf(alice!, [bob!]);
    await groupStillWorks([alice!, bob!], 'after the Welcomes');
  });

  it('the reply bytes one address makes the server hold unsent are bounded (maxReplyBytesPerIp): past it its polls are refused with 429 rate-limited and its streams wait; other addresses are served', async () => {
    const budget = 24 * MiB;
    // Many streams of one client on one group: the per-group stream cap (4) is not what this test is about.
    const s = await server({ maxReplyBytesPerIp: budget, slowConsumerMs: 60_000, maxStreamsPerClientGroup: 32 });
    const [alice, bob, mallory] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`), dsPeer(s.url, `mallory-${tag}`)]);
    // mallory's own group holds a page of 8 MiB: eight 1 MiB messages (11 MB of JSON a reply).
    mallory.group = await mallory.client.createGroup(mallory.identity);
    const gid = mallory.group.id;
    await mallory.ds.createGroup(gid, { epoch: 0 });
    for (let i = 0; i < 8; i++) mallory.seen = await mallory.ds.submit(gid, await mallory.group.encrypt(new Uint8Array(MiB - 200).fill(i)));
    const token = await tokenOf(s.url, mallory.name, mallory);
    const watch = watchServerSockets();
    const stalled: Socket[] = [];
    const streams: WebSocket[] = [];
    try {
      // From 127.0.0.2, 16 polls that never read their replies, then 16
      // streams that never read: each poll's reply stayed in the server's
      // memory (up to 11 MB each, 512 connections an address), each stream
      // held up to streamHighWater plus one message.
      for (let i = 0; i < 16; i++) stalled.push(await stalledGet(s.url, `/v1/groups/${toHex(gid)}/messages?after=0`, token, '127.0.0.2'));
      await new Promise((r) => setTimeout(r, 1500));
      const polls = watch.heldFor('127.0.0.2');
      for (let i = 0; i < 16; i++) {
        const { ws } = await upgrade(s.url, `/v1/stream?group=${toHex(gid)}&after=0&access_token=${token}`, { localAddress: '127.0.0.2' });
        (ws as unknown as { _socket: Socket })._socket.pause();
        streams.push(ws!);
      }
      await new Promise((r) => setTimeout(r, 1500));
      const all = watch.heldFor('127.0.0.2');
      console.log(`one address, 16 stalled polls of an 8 MiB page: ${polls} reply bytes held; with 16 stalled streams: ${all}`);
      expect(all).toBeLessThanOrEqual(budget + 12 * MiB);
      // Its next poll, read this time, is refused; a stream of its waits (is sent nothing).
      expect(await getFrom(s.url, `/v1/groups/${toHex(gid)}/messages?after=0`, token, '127.0.0.2')).toMatchObject({ status: 429, reason: 'rate-limited' });
      const waiting: number[] = [];
      const { ws: reader } = await upgrade(s.url, `/v1/stream?group=${toHex(gid)}&after=0&access_token=${token}`, { localAddress: '127.0.0.2' });
      reader!.on('message', (data) => waiting.push(JSON.parse(String(data)).seq));
      await new Promise((r) => setTimeout(r, 500));
      expect(waiting).toEqual([]);
      // Another address: alice and bob, pages of 8 MiB included.
      await groupOf(alice, [bob]);
      for (let i = 0; i < 8; i++) alice.seen = await alice.ds.submit(alice.group!.id, await alice.group!.encrypt(new Uint8Array(MiB - 200)));
      await catchUpAll(bob);
      await groupStillWorks([alice, bob], 'beside the stalled address');
      // The stalled connections go: their bytes are given back, and the waiting stream gets every message.
      for (const sock of stalled) sock.destroy();
      for (const ws of streams) ws.terminate();
      for (let i = 0; i < 200 && waiting.length < 8; i++) await new Promise((r) => setTimeout(r, 25));
      expect(waiting).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      reader!.close();
      expect((await getFrom(s.url, `/v1/groups/${toHex(gid)}/messages?after=0`, token, '127.0.0.2')).status).toBe(200);
      // Streams alone: 32 that never read (1.4 MB each: streamHighWater and one message) hold the budget and one frame.
      streams.length = 0;
      for (let i = 0; i < 32; i++) {
        const { ws } = await upgrade(s.url, `/v1/stream?group=${toHex(gid)}&after=0&access_token=${token}`, { localAddress: '127.0.0.2' });
        (ws as unknown as { _socket: Socket })._socket.pause();
        streams.push(ws!);
      }
      await new Promise((r) => setTimeout(r, 1500));
      console.log(`one address, 32 stalled streams: ${watch.heldFor('127.0.0.2')} bytes held`);
      expect(watch.heldFor('127.0.0.2')).toBeLessThanOrEqual(budget + 2 * MiB);
    } finally {
      watch.restore();
      for (const sock of stalled) sock.destroy();
      for (const ws of streams) ws.terminate();
    }
  });

  it('a page of Welcomes is bounded in bytes, not only in number: 12 Welcomes of 1 MiB come in pages of at most 8 MiB (next set), all of them', async () => {
    const s = await server();
    const [alice, bob, mallory, victim] = await Promise.all(['alice', 'bob', 'mallory', 'victim'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
    await victim!.ds.uploadKeyPackages([await victim!.client.createKeyPackage(victim!.identity, { lastResort: true })]);
    // mallory sends the victim 12 Welcomes padded to 1 MiB (the DS parses a
    // Welcome's frame, not its encrypted GroupInfo). A page was up to 100
    // Welcomes whatever their size: 100 of 3 MiB (the most a 4 MiB body
    // carries) made one GET read 300 MiB and build a 400 MB string.
    const sizes: number[] = [];
    for (let i = 0; i < 12; i++) {
      const g = await mallory!.client.createGroup(mallory!.identity);
      await mallory!.ds.createGroup(g.id, { epoch: 0 });
      const add = await g.commit({ add: [(await mallory!.ds.fetchKeyPackages([victim!.name])).get(victim!.name)!] });
      const welcome = paddedWelcome(add.welcome!, MiB);
      await mallory!.ds.submit(g.id, add.commit, { welcome, added: [victim!.name] });
      sizes.push(welcome.length);
    }
    const token = await tokenOf(s.url, victim!.name, victim!);
    const first = await raw(s.url, 'GET', '/v1/welcomes', undefined, token);
    expect(first.status).toBe(200);
    const got = (first.body.welcomes as { welcome: string }[]).map((w) => Buffer.from(w.welcome, 'base64').length);
    expect(got.length).toBeGreaterThanOrEqual(1);
    expect(got.length).toBeLessThan(12);
    expect(got.reduce((a, n) => a + n, 0)).toBeLessThanOrEqual(8 * MiB);
    expect(first.body.next).toBe(first.body.welcomes.at(-1).id);
    // The client reads every page.
    const all = await victim!.ds.welcomes();
    expect(all.map((w) => w.welcome.length)).toEqual(sizes);
    await victim!.ds.ackWelcomes(all.map((w) => w.id));
    // And is added by alice as usual.
    await groupOf(alice!, [bob!, victim!]);
    await groupStillWorks([alice!, bob!, victim!], 'after the padded Welcomes');
  });

  it('a Welcome to 100 clients is stored once, not once per recipient; each recipient acknowledges its own, and the bytes go with the last acknowledgement', async () => {
    let file = '';
    const s = await server(MANY_REGISTRATIONS, (f) => new SqliteDeliveryStore((file = f)));
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

  it('a database of schema 3 is migrated when opened (one transaction): its waiting Welcomes keep their ids and bytes, new ids follow the old ones, what was stored counts for its sender or owner; a database of schema 2 is refused', async () => {
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
    expect(await again.usage('alice')).toEqual({ bytes: 100 + RECORD + 3 + RECORD, keyPackages: 0 });
    expect(await again.readLog('aa', 0, 10)).toHaveLength(2);
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
    pair = await postgresPair(undefined, MANY_REGISTRATIONS);
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
    // A reference row names its recipient and who it counts for; its table's second page brings a free-space map (24 KiB).
    expect(stored - before).toBeLessThan(add.welcome!.length + N * RECORD + 128 * KiB);
    // Half of the recipients read and acknowledge on one server, half on the other, all at once.
    const logins = await Promise.all(others.map((p, i) => DeliveryClient.login(i % 2 ? two.url : one.url, { clientId: p.name, client: p.client, identity: p.identity }, { WebSocket })));
    const pending = await Promise.all(logins.map((ds) => ds.welcomes()));
    expect(pending.every((w) => w.length === 1 && Buffer.from(w[0]!.welcome).equals(Buffer.from(add.welcome!)))).toBe(true);
    await Promise.all(logins.map((ds, i) => ds.ackWelcomes([pending[i]![0]!.id])));
    expect(Number((await db.query('SELECT count(*) AS n FROM ds_welcomes')).rows[0].n)).toBe(0);
    expect(Number((await db.query('SELECT count(*) AS n FROM ds_welcome_blobs')).rows[0].n)).toBe(0);
    await db.end();
  });

  it("a client's quota is one counter in the database: 8 posts of 1 MiB at once on two servers, quota 4 MiB, exactly 3 are stored and 5 refused with 429 quota-exceeded", async () => {
    // Two more servers with a quota, on the pair's two stores (two pools on one database).
    const servers = await Promise.all(pair.stores.map((store) => startDeliveryServer({ port: 0, store, maxStoredBytesPerClient: 4 * MiB })));
    try {
      const [alice, bob, mallory] = await Promise.all([dsPeer(servers[0]!.url, `qa-${tag}`), dsPeer(servers[0]!.url, `qb-${tag}`), dsPeer(servers[1]!.url, `qm-${tag}`)]);
      const groups = [await mallory.client.createGroup(mallory.identity), await mallory.client.createGroup(await mallory.client.createIdentity(mallory.name, 1))];
      for (const g of groups) await mallory.ds.createGroup(g.id, { epoch: 0 });
      const tokens = await Promise.all(servers.map((s) => tokenOf(s.url, mallory.name, mallory)));
      const messages = [];
      for (let i = 0; i < 8; i++) messages.push(await groups[i % 2]!.encrypt(new Uint8Array(MiB).fill(i)));
      // Each server counts in its own transaction, on the database's row of
      // mallory (locked until the transaction ends): a count per process, or
      // a read then a write, would let each server pass its own 3.
      const answers = await Promise.all(messages.map((m, i) => post(servers[i % 2]!.url, tokens[i % 2]!, groups[i % 2]!.id, m)));
      const ok = answers.filter((a) => a.status === 200);
      expect(ok).toHaveLength(3);
      for (const a of answers.filter((x) => x.status !== 200)) expect(a).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
      expect(await servers[1]!.ds.store.usage(mallory.name)).toEqual({ bytes: KEY(mallory) + 2 * RECORD + 3 * (messages[0]!.length + RECORD), keyPackages: 0 });
      // alice and bob, on both servers, are not held back.
      await groupOf(alice, [bob]);
      for (let i = 0; i < 2; i++) alice.seen = await alice.ds.submit(alice.group!.id, await alice.group!.encrypt(new Uint8Array(MiB)));
      await catchUpAll(bob);
      await groupStillWorks([alice, bob], 'beside the quota');
    } finally {
      for (const s of servers) await s.close();
    }
  });

  it('a database of schema 3 is migrated when opened (one transaction, under the schema lock): its waiting Welcomes keep their ids and bytes, new ids follow the old ones, what was stored counts for its sender or owner', async () => {
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
      expect(await stores[1]!.usage('alice')).toEqual({ bytes: 100 + RECORD + 3 + RECORD, keyPackages: 0 });
      expect(await stores[1]!.usage('bob')).toEqual({ bytes: 50 + RECORD, keyPackages: 1 });
    } finally {
      for (const s of stores) await s.close();
    }
    const check = new pg.Client({ connectionString: url('v3') });
    await check.connect();
    expect((await check.query("SELECT value FROM ds_meta WHERE key = 'schema'")).rows).toEqual([{ value: DS_SCHEMA_VERSION }]);
    await check.end();
  });
});

describe('third review of the DS (in process, memory store)', () => {
  it('the in-process DS keeps the same quotas and stores a Welcome once on its memory store', async () => {
    const ds = await DeliveryService.create({ maxStoredBytesPerClient: 64 * KiB, maxKeyPackagesPerClient: 2 });
    const [mallory, bob, carol] = await Promise.all(['mallory', 'bob', 'carol'].map((n) => newMember(n)));
    mallory!.group = await mallory!.client.createGroup(mallory!.identity);
    const gid = mallory!.group.id;
    await ds.createGroup(gid, mallory!.name);
    await expect(ds.uploadKeyPackages(mallory!.name, await mallory!.client.createKeyPackages(mallory!.identity, { count: 3 }))).rejects.toMatchObject({ reason: 'quota-exceeded' });
    await ds.uploadKeyPackages(mallory!.name, await mallory!.client.createKeyPackages(mallory!.identity, { count: 2 }));
    expect((await ds.store.usage(mallory!.name)).keyPackages).toBe(2);
    // A Welcome to bob and carol: stored once, counted once for mallory, with a record per recipient.
    // One taken (the in-process fetch deletes it): room for one more.
    await ds.fetchKeyPackages([mallory!.name]);
    expect((await ds.store.usage(mallory!.name)).keyPackages).toBe(1);
    await ds.uploadKeyPackages(mallory!.name, [await mallory!.client.createKeyPackage(mallory!.identity)]);
    const add = await mallory!.group.commit({ add: [await bob!.client.createKeyPackage(bob!.identity), await carol!.client.createKeyPackage(carol!.identity)] });
    const before = (await ds.store.usage(mallory!.name)).bytes;
    expect(await ds.submit(gid, mallory!.name, add.commit, { welcome: add.welcome, added: [bob!.name, carol!.name] })).toMatchObject({ accepted: true });
    await mallory!.group.mergePendingCommit();
    expect((await ds.store.usage(mallory!.name)).bytes).toBe(before + add.commit.length + RECORD + add.welcome!.length + 3 * RECORD);
    const [forBob] = await ds.welcomes(bob!.name);
    // Each acknowledgement gives back its reference's part: 256 and half the Welcome and its record (bob, first, the odd byte).
    expect((await ds.store.usage(mallory!.name)).bytes).toBe(before + add.commit.length + RECORD + add.welcome!.length + 3 * RECORD - (RECORD + Math.ceil((add.welcome!.length + RECORD) / 2)));
    const [forCarol] = await ds.welcomes(carol!.name);
    expect(forCarol!.welcome).toEqual(forBob!.welcome);
    expect((await ds.store.usage(mallory!.name)).bytes).toBe(before + add.commit.length + RECORD);
    // Messages until the quota: refused with quota-exceeded, nothing logged.
    let refused;
    for (let i = 0; i < 10 && !refused; i++) {
      const r = await ds.submit(gid, mallory!.name, await mallory!.group.encrypt(new Uint8Array(16 * KiB)));
      if (!r.accepted) refused = r;
    }
    expect(refused).toMatchObject({ accepted: false, reason: 'quota-exceeded' });
    expect((await ds.store.usage(mallory!.name)).bytes).toBeLessThanOrEqual(64 * KiB);
    // bob and carol join and talk (their own quotas).
    bob!.group = await bob!.client.joinFromWelcome(forBob!.welcome);
    const hello = await bob!.group.encrypt('hello');
    expect(await ds.submit(gid, bob!.name, hello)).toMatchObject({ accepted: true });
  });
});
