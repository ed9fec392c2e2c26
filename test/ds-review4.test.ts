/**
 * A fourth attacker's review of the DS (quotas, Welcomes stored once, the
 * reply budget): each test is an attack that succeeded before its fix,
 * against the real server on loopback (SQLite file), asserting the exact
 * refusal or bound and that honest clients keep working.
 *
 * Attacks:
 * - a client registers as `delivery-service`, the DS's own log sender name
 *   (and its external sender's identity): its messages passed for the DS's.
 * - fetching KeyPackages of made-up client ids stored a usage row for each,
 *   counted for nobody and never deleted.
 * - verified mode: a member proposes Adds of clients of its own that never
 *   take their Welcomes; an honest member's commit covers them by reference
 *   and its Welcome counted for the honest committer until every recipient
 *   took it (never): the committer reached its quota and could commit no
 *   more (not even a Remove). Now a Welcome counts for the holders of the
 *   grants its commit spends (whoever fetched each KeyPackage), a part each.
 * - verified mode: that let any member charge another: the victim fetched a
 *   KeyPackage of a client of the attacker's, the attacker committed its Add
 *   (inline, never taken) and its Welcome counted for the victim. Now a
 *   grant's holder pays only for an Add proposal it posted itself.
 * - reply budget: requests pipelined on one connection behind a reply that
 *   stalls, then the connection dropped: the replies queued behind the
 *   second were never given back, and their address was refused for good.
 * - reply budget: a connection that asks for a large reply and never reads,
 *   or streams that never read holding less than streamHighWater each,
 *   held their address's budget for good (every request of the address
 *   429, its streams waiting forever). Now a reply or stream that hands the
 *   kernel nothing for slowConsumerMs is cut off; a slow reader is not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import Database from 'better-sqlite3';
import { WebSocket } from 'ws';
import { MlsClient, toHex } from 'paired-mls';
import { DeliveryClient, MemoryDeliveryStore, StorageQuotaError, type DeliveryStore } from 'paired-mls/services';
import { SqliteDeliveryStore } from 'paired-mls/server';
import { postgresPair, type PostgresPair } from './ds-postgres-pair.js';
import { catchUp, dsPeer, groupOf, groupStillWorks, proof, raw, sqliteServers, tokenOf, type DsPeer } from './ds-helpers.js';
import { newMember } from './helpers.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const KiB = 1024;
/** What each stored record counts beside its own bytes (docs/PROTOCOL.md §8.6). */
const RECORD = 256;
/** What a client's registered key counts, for good (its binding: credential identity and key, plus 256). */
const KEY = (p: DsPeer) => RECORD + p.identity.identity.length + p.identity.signaturePublicKey.length;
const MiB = 1024 * KiB;
const plaintext = { wireFormat: 'plaintext' as const };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A connection from `localAddress` that sends these GETs at once (pipelined) and never reads. */
function stalledGets(url: string, paths: string[], token: string, localAddress: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const sock = connect({ host: hostname, port: Number(port), localAddress }, () => {
      sock.pause();
      sock.write(paths.map((p) => `GET ${p} HTTP/1.1\r\nhost: ${hostname}\r\nauthorization: Bearer ${token}\r\n\r\n`).join(''));
      resolve(sock);
    });
    sock.on('error', () => undefined);
  });
}

/** A GET from `localAddress`, read at once: its status and reason. */
function getFrom(url: string, path: string, token: string, localAddress: string): Promise<{ status: number; reason?: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url + path, { localAddress, headers: { authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, reason: JSON.parse(Buffer.concat(chunks).toString('utf8')).reason }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A GET from `localAddress` read slowly (a chunk, then `pauseMs` without reading): whether its whole body came (content-length), and how long it took. */
function slowGet(url: string, path: string, token: string, localAddress: string, pauseMs: number): Promise<{ whole: boolean; ms: number }> {
  const { hostname, port } = new URL(url);
  const start = Date.now();
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const sock = connect({ host: hostname, port: Number(port), localAddress }, () => {
      sock.write(`GET ${path} HTTP/1.1\r\nhost: ${hostname}\r\nconnection: close\r\nauthorization: Bearer ${token}\r\n\r\n`);
    });
    sock.on('data', (c: Buffer) => {
      chunks.push(c);
      sock.pause();
      setTimeout(() => sock.resume(), pauseMs);
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      const all = Buffer.concat(chunks);
      const head = all.indexOf('\r\n\r\n');
      const length = Number(/content-length: (\d+)/i.exec(all.subarray(0, head).toString())?.[1]);
      resolve({ whole: length > 0 && all.length - head - 4 === length, ms: Date.now() - start });
    });
  });
}

/** `p`'s own group holding `n` messages of about 1 MiB. */
async function groupOfMiB(p: DsPeer, n: number): Promise<Uint8Array> {
  p.group = await p.client.createGroup(p.identity);
  await p.ds.createGroup(p.group.id, { epoch: 0 });
  for (let i = 0; i < n; i++) p.seen = await p.ds.submit(p.group.id, await p.group.encrypt(new Uint8Array(MiB - 200).fill(i)));
  return p.group.id;
}

/** A verified group of `honest` with `mallory` added through the DS. */
async function verifiedPair(honest: DsPeer, mallory: DsPeer): Promise<Uint8Array> {
  honest.group = await honest.client.createGroup(honest.identity, plaintext);
  const gid = honest.group.id;
  await honest.ds.createGroup(gid, { epoch: 0, groupInfo: await honest.group.exportGroupInfo() });
  await mallory.ds.uploadKeyPackages([await mallory.client.createKeyPackage(mallory.identity)]);
  const add = await honest.group.commit({ add: [...(await honest.ds.fetchKeyPackages([mallory.name])).values()], groupInfo: true });
  honest.seen = await honest.ds.submit(gid, add.commit, { welcome: add.welcome, groupInfo: add.groupInfo });
  await honest.ds.ackKeyPackages([mallory.name]);
  await honest.group.mergePendingCommit();
  const [w] = await mallory.ds.welcomes();
  mallory.group = await mallory.client.joinFromWelcome(w!.welcome, plaintext);
  await mallory.ds.ackWelcomes([w!.id]);
  mallory.seen = honest.seen;
  return gid;
}

/** `n` clients of one MlsClient registered at `url`, each with a KeyPackage uploaded, that never take a Welcome. */
async function sybils(url: string, prefix: string, n: number): Promise<{ name: string; ds: DeliveryClient }[]> {
  const client = await MlsClient.open();
  const out = [];
  for (let i = 0; i < n; i++) {
    const name = `${prefix}${i}`;
    const identity = await client.createIdentity(name, 1);
    const ds = await DeliveryClient.register(url, { clientId: name, client, identity }, { WebSocket });
    await ds.uploadKeyPackages([await client.createKeyPackage(identity)]);
    out.push({ name, ds });
  }
  return out;
}

/** What `client`'s logged messages in the group count (bytes + 256 each). */
async function loggedFor(store: DeliveryStore, gid: Uint8Array, client: string): Promise<number> {
  return (await store.readLog(toHex(gid), 0, 100_000)).filter((m) => m.sender === client).reduce((n, m) => n + m.bytes.length + RECORD, 0);
}

/**
 * A store's Welcome accounting, on `one` and `two` (two servers' stores on
 * one database, or one store twice): each reference counts its part for its
 * payer; a commit past the sender's quota is refused whole (the other
 * payers' parts too), another payer's quota refuses nothing; recipients
 * acknowledging at once give every part back and delete the Welcome.
 */
async function checkWelcomePayers(one: DeliveryStore, two: DeliveryStore, tag: string): Promise<void> {
  const [h, m] = [`h-${tag}`, `m-${tag}`];
  const recipients = [0, 1, 2, 3].map((i) => `r${i}-${tag}`);
  const group = `aa${tag}`;
  expect(await one.insertGroup({ groupId: group, epoch: 0, members: [h], consistency: 'strong' })).toBe(true);
  const welcome = { recipients, welcome: new Uint8Array(1001).fill(7), payers: [h, m, m, m] };
  const message = { groupId: group, sender: h, bytes: new Uint8Array(100), digest: `d1${tag}` };
  // Past h's quota: nothing stored, nothing counted for m either.
  await expect(one.append(message, { expectEpoch: 0, setEpoch: 1, welcome }, { bytes: 1000 })).rejects.toBeInstanceOf(StorageQuotaError);
  expect(await one.usage(m)).toEqual({ bytes: 0, keyPackages: 0 });
  expect(await one.countWelcomes(recipients[1]!)).toBe(0);
  // m's quota is not asked (m is at it): h's commit goes.
  expect(await two.append(message, { expectEpoch: 0, setEpoch: 1, welcome }, { bytes: 10 * KiB })).toBe(1);
  const share = (i: number) => RECORD + Math.floor((1001 + RECORD) / 4) + (i < (1001 + RECORD) % 4 ? 1 : 0);
  expect(await one.usage(h)).toEqual({ bytes: RECORD + 100 + RECORD + share(0), keyPackages: 0 });
  expect(await one.usage(m)).toEqual({ bytes: share(1) + share(2) + share(3), keyPackages: 0 });
  expect(share(0) + share(1) + share(2) + share(3)).toBe(1001 + 5 * RECORD);
  // A forged id and another's id acknowledge nothing; the recipients, at once on both servers, everything.
  const ids = await Promise.all(recipients.map(async (r) => (await one.pendingWelcomes(r))[0]!.id));
  await one.ackWelcomes(recipients[0]!, [ids[1]!, ids[2]!, 999_999_999]);
  expect(await one.usage(m)).toEqual({ bytes: share(1) + share(2) + share(3), keyPackages: 0 });
  await Promise.all(recipients.map((r, i) => (i % 2 ? one : two).ackWelcomes(r, [ids[i]!, ids[i]!])));
  expect(await one.usage(h)).toEqual({ bytes: RECORD + 100 + RECORD, keyPackages: 0 });
  expect(await one.usage(m)).toEqual({ bytes: 0, keyPackages: 0 });
  for (const r of recipients) expect(await two.countWelcomes(r)).toBe(0);
}

describe('fourth review of the DS (stores)', () => {
  const tag = Math.random().toString(36).slice(2, 8);
  let pair: PostgresPair;
  beforeAll(async () => {
    pair = await postgresPair();
  });
  afterAll(async () => pair?.close());

  it('a Welcome counts a part for each reference, for its payer (memory, SQLite, PostgreSQL on two servers at once)', async () => {
    const memory = new MemoryDeliveryStore();
    await checkWelcomePayers(memory, memory, `${tag}m`);
    const sqlite = new SqliteDeliveryStore();
    await checkWelcomePayers(sqlite, sqlite, `${tag}s`);
    sqlite.close();
    await checkWelcomePayers(pair.stores[0]!, pair.stores[1]!, `${tag}p`);
  });
});

describe('fourth review of the DS (SQLite)', () => {
  const server = sqliteServers('paired-mls-review4-');
  const tag = Math.random().toString(36).slice(2, 8);

  it("the DS's own name `delivery-service` is no client's (403 registration-refused as client, user or identity; 403 forbidden to post under it)", async () => {
    // A permissive policy: the AS itself refuses the name, whatever the deployment lets through.
    const s = await server({ registrationPolicy: () => true });
    const [alice, bob] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`)]);
    const ds = await newMember('delivery-service');
    // Registered, it posted in groups under the sender name of the DS's own
    // proposals (LeafOperationIntents): a member reading the log's sender
    // could not tell its messages from the DS's.
    const register = async (clientId: string, userId: string) =>
      raw(s.url, 'POST', '/v1/as/register', { ...(await proof(s.url, clientId, ds)), userId, identity: b64(ds.identity.identity) });
    expect(await register('delivery-service', 'delivery-service')).toMatchObject({ status: 403, body: { reason: 'registration-refused' } });
    expect(await register(`ds-${tag}`, 'delivery-service')).toMatchObject({ status: 403, body: { reason: 'registration-refused' } });
    // The identity alone: the DS's external sender credential names `delivery-service`.
    expect(await register(`ds-${tag}`, `ds-${tag}`)).toMatchObject({ status: 403, body: { reason: 'registration-refused' } });
    expect(await s.authentication.bindingsOf('delivery-service')).toEqual([]);
    // A binding from before the name was reserved posts nothing under it.
    await s.ds.store.registerBinding({ clientId: 'delivery-service', userId: 'delivery-service', identity: ds.identity.identity, signatureKey: ds.identity.signaturePublicKey, ciphersuite: 1 });
    const token = await tokenOf(s.url, 'delivery-service', ds);
    ds.group = await ds.client.createGroup(ds.identity);
    expect(await raw(s.url, 'POST', '/v1/groups', { groupId: b64(ds.group.id) }, token)).toMatchObject({ status: 200 });
    expect(await raw(s.url, 'POST', `/v1/groups/${toHex(ds.group.id)}/messages`, { message: b64(await ds.group.encrypt('from the DS?')) }, token)).toMatchObject({
      status: 403,
      body: { reason: 'forbidden' },
    });
    await groupOf(alice, [bob]);
    await groupStillWorks([alice, bob], 'beside the reserved name');
  });

  it('fetching KeyPackages of made-up client ids stores nothing (a usage row each before, counted for nobody, never deleted)', async () => {
    let file = '';
    const s = await server({}, (f) => new SqliteDeliveryStore((file = f)));
    const [alice, bob, mallory] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`), dsPeer(s.url, `mallory-${tag}`)]);
    const rows = () => {
      const db = new Database(file, { readonly: true });
      try {
        return (db.prepare('SELECT count(*) AS n FROM usage').get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    const before = rows();
    // 100 ids of 256 characters a request, 200 a client at once, as many clients as it registers.
    const ids = Array.from({ length: 100 }, (_, i) => `${i}-${tag}-`.padEnd(256, 'x'));
    expect(await mallory.ds.fetchKeyPackages(ids)).toEqual(new Map());
    expect(rows()).toBe(before);
    await groupOf(alice, [bob]);
    await groupStillWorks([alice, bob], 'after the made-up ids');
  });

  it("verified mode: a Welcome counts for whoever fetched the KeyPackages it adds, not for the committer who covered another member's Add proposals; the honest committer keeps committing, the proposer meets its quota (429 quota-exceeded)", async () => {
    // Up to 200 clients of mallory's register from loopback: past one address's registration burst (30).
    const s = await server({ verifyCommits: true, maxStoredBytesPerClient: 64 * KiB, registrationRate: [100, 200] });
    const [honest, mallory] = await Promise.all([dsPeer(s.url, `honest-${tag}`), dsPeer(s.url, `mallory-${tag}`)]);
    const gid = await verifiedPair(honest, mallory);
    const token = await tokenOf(s.url, mallory.name, mallory);
    let refused;
    let welcomes = 0;
    for (let round = 0; round < 40 && !refused; round++) {
      // mallory fetches KeyPackages of 5 clients of her own (granted to her) and proposes their Adds.
      const names = (await sybils(s.url, `sybil-${tag}-${round}-`, 5)).map((x) => x.name);
      await catchUp(mallory);
      for (const kp of (await mallory.ds.fetchKeyPackages(names)).values()) {
        const r = await raw(s.url, 'POST', `/v1/groups/${toHex(gid)}/messages`, { message: b64(await mallory.group!.propose({ type: 'add', keyPackage: kp })) }, token);
        if (r.status !== 200) {
          refused = r;
          break;
        }
        mallory.seen = r.body.seq;
      }
      // The honest member commits (pending proposals by reference, as every commit of its does): the Welcome goes to mallory's clients, who never take it.
      await catchUp(honest);
      const c = await honest.group!.commit({ groupInfo: true });
      if (!c.welcome) break;
      honest.seen = await honest.ds.submit(gid, c.commit, { welcome: c.welcome, groupInfo: c.groupInfo });
      await honest.group!.mergePendingCommit();
      welcomes += c.welcome.length + (1 + 5) * RECORD;
    }
    // What counts for the honest member: its group, its commits, the GroupInfo it stored last; no Welcome.
    expect((await s.ds.store.usage(honest.name)).bytes).toBe(KEY(honest) + RECORD + (await loggedFor(s.ds.store, gid, honest.name)) + (await s.ds.groupInfo(gid))!.length);
    // mallory pays for the Welcomes to her clients, until her own posts are refused.
    expect(refused).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
    expect((await s.ds.store.usage(mallory.name)).bytes).toBeGreaterThanOrEqual(welcomes);
    // The honest member still commits, also what mallory proposed last.
    await catchUp(honest);
    const c = await honest.group!.commit({ groupInfo: true });
    honest.seen = await honest.ds.submit(gid, c.commit, { welcome: c.welcome, groupInfo: c.groupInfo });
    await honest.group!.mergePendingCommit();
    await groupStillWorks([honest, mallory], 'after the proposals');
  });

  it("verified mode: a member's commit adding a KeyPackage another member fetched (and proposed no Add of) counts its Welcome for the committer, not for the member who fetched it (it charged that member's quota, and spent its grant)", async () => {
    const s = await server({ verifyCommits: true, maxStoredBytesPerClient: 256 * KiB });
    const [honest, mallory] = await Promise.all([dsPeer(s.url, `honest2-${tag}`), dsPeer(s.url, `mallory2-${tag}`)]);
    const gid = await verifiedPair(honest, mallory);
    // A client of mallory's, which never takes a Welcome; the honest member fetches its KeyPackage (to invite it somewhere, say).
    const [x] = await sybils(s.url, `x-${tag}-`, 1);
    const kps = await honest.ds.fetchKeyPackages([x!.name]);
    const before = (await s.ds.store.usage(honest.name)).bytes;
    const infoBefore = (await s.ds.groupInfo(gid))!.length;
    const mallorys = (await s.ds.store.usage(mallory.name)).bytes;
    // mallory (who made that KeyPackage) commits its Add herself, inline, with the Welcome: the honest member's grant covered it.
    await catchUp(mallory);
    const c = await mallory.group!.commit({ add: [...kps.values()], groupInfo: true });
    mallory.seen = await mallory.ds.submit(gid, c.commit, { welcome: c.welcome, groupInfo: c.groupInfo });
    await mallory.group!.mergePendingCommit();
    // The Welcome counts for mallory, its committer; for the honest member, its group and its commit (its GroupInfo was replaced), no Welcome.
    expect(before).toBe(KEY(honest) + RECORD + (await loggedFor(s.ds.store, gid, honest.name)) + infoBefore);
    expect((await s.ds.store.usage(honest.name)).bytes).toBe(KEY(honest) + RECORD + (await loggedFor(s.ds.store, gid, honest.name)));
    expect((await s.ds.store.usage(mallory.name)).bytes).toBeGreaterThanOrEqual(mallorys + c.welcome!.length + 2 * RECORD);
    await groupStillWorks([honest, mallory], 'after the Add');
  });

  it('reply budget: replies queued on a pipelined connection are given back when it drops (they were held for good, and the address refused every large reply: 429)', async () => {
    const s = await server({ maxReplyBytesPerIp: 8 * MiB, slowConsumerMs: 60_000 });
    const mallory = await dsPeer(s.url, `mallory-${tag}`);
    const gid = await groupOfMiB(mallory, 8);
    const token = await tokenOf(s.url, mallory.name, mallory);
    const page = (after: number) => `/v1/groups/${toHex(gid)}/messages?after=${after}`;
    // A 4 MB page that stalls, a small reply, then an 11 MB page queued behind them.
    const sock = await stalledGets(s.url, [page(5), '/v1/pairings', page(0), page(0)], token, '127.0.0.4');
    await sleep(1500);
    sock.destroy();
    await sleep(500);
    // Nothing of that connection is held any more: the address is served.
    expect(await getFrom(s.url, page(0), token, '127.0.0.4')).toMatchObject({ status: 200 });
    expect(await getFrom(s.url, page(0), token, '127.0.0.4')).toMatchObject({ status: 200 });
  });

  it('reply budget: a reader that takes nothing for slowConsumerMs is cut off and its address served again (it held the budget for good: 429, streams waiting); a slow reader gets its whole reply', async () => {
    const s = await server({ maxReplyBytesPerIp: 4 * MiB, slowConsumerMs: 1000 });
    const mallory = await dsPeer(s.url, `mallory-${tag}`);
    const gid = await groupOfMiB(mallory, 8);
    const token = await tokenOf(s.url, mallory.name, mallory);
    const page = (after: number) => `/v1/groups/${toHex(gid)}/messages?after=${after}`;
    const sock = await stalledGets(s.url, [page(0)], token, '127.0.0.5');
    const cut = new Promise((r) => sock.once('close', r));
    await sleep(300);
    expect(await getFrom(s.url, page(0), token, '127.0.0.5')).toMatchObject({ status: 429, reason: 'rate-limited' });
    // A stream of the address waits meanwhile.
    const got: number[] = [];
    const ws = new WebSocket(`${s.url.replace('http', 'ws')}/v1/stream?group=${toHex(gid)}&after=0&access_token=${token}`, { localAddress: '127.0.0.5' });
    ws.on('message', (data) => got.push(JSON.parse(String(data)).seq));
    // The stalled connection is cut after slowConsumerMs without progress: the address is served, the stream gets everything.
    await sleep(2500);
    expect(await getFrom(s.url, page(0), token, '127.0.0.5')).toMatchObject({ status: 200 });
    for (let i = 0; i < 200 && got.length < 8; i++) await sleep(25);
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // It was cut: read now, it ends short of its reply.
    let read = 0;
    sock.on('data', (c: Buffer) => (read += c.length));
    sock.resume();
    await cut;
    expect(read).toBeLessThan(11 * 1000 * 1000);
    ws.close();
    // A reader pausing 10 ms after each chunk it reads: 11 MB in longer than slowConsumerMs, all of it.
    const slow = await slowGet(s.url, page(0), token, '127.0.0.6', 10);
    expect(slow).toMatchObject({ whole: true });
    expect(slow.ms).toBeGreaterThan(1000);
  });

  it('reply budget: streams that never read, each holding less than streamHighWater, are cut after slowConsumerMs without progress (they held their address budget for good)', async () => {
    // Six streams of one client on one group: the per-group stream cap (4) is not what this test is about.
    const s = await server({ maxReplyBytesPerIp: 4 * MiB, slowConsumerMs: 1000, streamHighWater: 8 * MiB, maxStreamsPerClientGroup: 32 });
    const mallory = await dsPeer(s.url, `mallory-${tag}`);
    mallory.group = await mallory.client.createGroup(mallory.identity);
    const gid = mallory.group.id;
    await mallory.ds.createGroup(gid, { epoch: 0 });
    const token = await tokenOf(s.url, mallory.name, mallory);
    const stalled: WebSocket[] = [];
    for (let i = 0; i < 6; i++) {
      const ws = new WebSocket(`${s.url.replace('http', 'ws')}/v1/stream?group=${toHex(gid)}&after=0&access_token=${token}`, { localAddress: '127.0.0.7' });
      await new Promise((r) => ws.once('open', r));
      (ws as unknown as { _socket: Socket })._socket.pause();
      ws.on('error', () => undefined);
      stalled.push(ws);
    }
    // Two messages of 2.9 MB pushed to streams that read nothing: 7.7 MB of frames each (the kernel takes up to 4 MB),
    // below the 8 MiB at which a stream pauses (and its cut starts).
    for (let i = 0; i < 2; i++) await mallory.ds.submit(gid, await mallory.group.encrypt(new Uint8Array(2_900_000).fill(i)));
    await sleep(300);
    expect(await getFrom(s.url, `/v1/groups/${toHex(gid)}/messages?after=0`, token, '127.0.0.7')).toMatchObject({ status: 429, reason: 'rate-limited' });
    await sleep(2500);
    expect(await getFrom(s.url, `/v1/groups/${toHex(gid)}/messages?after=0`, token, '127.0.0.7')).toMatchObject({ status: 200 });
    for (const ws of stalled) ws.terminate();
  });
});
