/**
 * An outsider (and a dishonest member) against the real networked DS on a
 * SQLite file: every attack of issue #20 and a few more, each asserting the
 * exact refusal (HTTP status + reason) and that the honest clients' data
 * and service are intact afterwards; then a fuzz run of 10,000 malformed
 * HTTP requests and WebSocket upgrades/frames with no 5xx, the server up,
 * and the honest clients' stored data byte-for-byte unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { Agent, createServer as createHttpServer, request as httpRequest } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { MlsClient, toHex, utf8 } from 'paired-mls';
import { DeliveryClient, DsError, signDsChallenge } from 'paired-mls/services';
import { SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { dsPeer, groupStillWorks, raw, tokenOf, upgrade, type DsPeer } from './ds-helpers.js';
import { xorshift32 } from './helpers.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** Expect a DeliveryClient call to be refused with exactly `reason`. */
async function refused(p: Promise<unknown>, reason: string): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected a refusal (${reason})`).toBeInstanceOf(DsError);
  expect((err as DsError).reason).toBe(reason);
}

/** The honest clients' stored data, read straight from the database file. */
function snapshot(file: string, honest: string[], groups: string[]): string {
  const db = new Database(file, { readonly: true });
  try {
    const q = (sql: string, ...args: unknown[]) => JSON.stringify(db.prepare(sql).all(...args), (_k, v) => (v?.type === 'Buffer' ? toHex(Uint8Array.from(v.data)) : v));
    const inList = (xs: string[]) => `(${xs.map(() => '?').join(',')})`;
    return [
      q(`SELECT * FROM groups WHERE group_id IN ${inList(groups)} ORDER BY group_id`, ...groups),
      q(`SELECT group_id, seq, sender, hex(bytes) FROM log WHERE group_id IN ${inList(groups)} ORDER BY group_id, seq`, ...groups),
      q(`SELECT * FROM bindings WHERE client_id IN ${inList(honest)} ORDER BY signature_key`, ...honest),
      q(`SELECT ref, client_id, last_resort, not_after, leased_to, lease_until FROM key_packages WHERE client_id IN ${inList(honest)} ORDER BY ref`, ...honest),
      q(`SELECT w.id, w.recipient, b.group_id, hex(b.welcome) FROM welcomes w JOIN welcome_blobs b ON b.id = w.blob_id WHERE w.recipient IN ${inList(honest)} ORDER BY w.id`, ...honest),
      q('SELECT * FROM pairings ORDER BY anchor, device'),
      q('SELECT * FROM revoked_clients ORDER BY client_id'),
    ].join('\n');
  } finally {
    db.close();
  }
}

/** A header-only PrivateMessage "commit" for `groupId` at `epoch`: what an outsider can forge from the clear header alone. */
function forgedCommit(groupId: Uint8Array, epoch: number, wireFormat = 2, senderType?: number): Uint8Array {
  const parts: number[] = [0, 1, 0, wireFormat, groupId.length, ...groupId];
  for (let i = 7; i >= 0; i--) parts.push(Number((BigInt(epoch) >> BigInt(8 * i)) & 0xffn));
  if (senderType !== undefined) parts.push(senderType, 0); // sender type, empty authenticated_data
  parts.push(3, 0, 0, 0);
  return new Uint8Array(parts);
}

describe('the DS against an attacker', () => {
  let server: RunningDeliveryServer;
  let db: string;
  let tag: string;
  let alice: DsPeer;
  let bob: DsPeer;
  let carol: DsPeer;
  let mallory: DsPeer;
  let malloryToken: string;
  let seq = 0;

  const names = () => [alice.name, bob.name, carol.name];

  /** Everyone processes the log up to now; the group still works (a message from alice arrives at the others). */
  async function honestStillWork(): Promise<void> {
    await groupStillWorks([alice, bob, carol], `still fine ${++seq}`);
  }

  beforeAll(async () => {
    db = join(mkdtempSync(join(tmpdir(), 'paired-mls-attacks-')), 'ds.sqlite');
    // Generous request rates here (the fuzz run sends thousands); the limits have their own server below.
    server = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(db), clientRate: [1e6, 1e6], ipRate: [1e6, 1e6], keyPackageRate: [5, 20] });
    tag = Math.random().toString(36).slice(2, 8);
    [alice, bob, carol, mallory] = await Promise.all(['alice', 'bob', 'carol', 'mallory'].map((n) => dsPeer(server.url, `${n}-${tag}`)));
    for (const p of [bob, carol]) await p.ds.uploadKeyPackages(await p.client.createKeyPackages(p.identity, { count: 3 }));
    alice.group = await alice.client.createGroup(alice.identity);
    await alice.ds.createGroup(alice.group.id, { epoch: alice.group.epoch });
    const kps = await alice.ds.fetchKeyPackages([bob.name, carol.name]);
    const add = await alice.group.commit({ add: [...kps.values()], groupInfo: true });
    alice.seen = await alice.ds.submit(alice.group.id, add.commit, { welcome: add.welcome, added: [bob.name, carol.name], groupInfo: add.groupInfo });
    await alice.ds.ackKeyPackages([bob.name, carol.name]);
    await alice.group.mergePendingCommit();
    for (const p of [bob, carol]) {
      const [w] = await p.ds.welcomes();
      p.group = await p.client.joinFromWelcome(w!.welcome);
      await p.ds.ackWelcomes([w!.id]);
      p.seen = alice.seen;
    }
    malloryToken = await tokenOf(server.url, mallory.name, mallory);
  });
  afterAll(async () => server?.close());

  it('one anonymous connection cannot kill the server: bad upgrades are refused, an oversized frame ends only its own stream', async () => {
    expect((await upgrade(server.url, '/v1/stream')).status).toBe(400);
    expect((await upgrade(server.url, `/v1/stream?group=${toHex(alice.group!.id)}`)).status).toBe(401);
    expect((await upgrade(server.url, '/v1/elsewhere')).status).toBe(404);
    // mallory, authenticated, is no reader of the group.
    expect((await upgrade(server.url, `/v1/stream?group=${toHex(alice.group!.id)}&access_token=${malloryToken}`)).status).toBe(403);
    // A member's stream that sends a 100 KiB frame (limit 1 KiB): closed with 1009, the server stays up.
    const { status, ws } = await upgrade(server.url, `/v1/stream?group=${toHex(alice.group!.id)}&access_token=${await tokenOf(server.url, bob.name, bob)}`);
    expect(status).toBe(101);
    const code = await new Promise<number>((resolve) => {
      ws!.on('close', (c) => resolve(c));
      ws!.send(Buffer.alloc(100 * 1024));
    });
    expect(code).toBe(1009);
    expect(await new DeliveryClient(server.url).healthy()).toBe(true);
    await honestStillWork();
  });

  it('anyone cannot jam a group: forged commits from outsiders, junk GroupInfo and Welcomes from members are refused; the epoch does not move', async () => {
    const gid = alice.group!.id;
    const epoch = alice.group!.epoch;
    const forged = forgedCommit(gid, epoch);
    const before = await server.ds.groupInfo(gid);
    // The seed §5.3 "stuck group": a header-only commit from a non-member, claiming an external join.
    let r = await raw(server.url, 'POST', `/v1/groups/${toHex(gid)}/messages`, { message: b64(forged), externalJoin: true, added: [mallory.name], welcome: b64(new Uint8Array([1])) }, malloryToken);
    expect(r).toMatchObject({ status: 403, body: { reason: 'external-join-closed' } });
    r = await raw(server.url, 'POST', `/v1/groups/${toHex(gid)}/messages`, { message: b64(forged) }, malloryToken);
    expect(r).toMatchObject({ status: 403, body: { reason: 'not-a-member' } });
    // The old "sender" field names nobody any more: the acting client is the token's.
    r = await raw(server.url, 'POST', `/v1/groups/${toHex(gid)}/messages`, { sender: alice.name, message: b64(forged) }, malloryToken);
    expect(r).toMatchObject({ status: 403, body: { reason: 'not-a-member' } });
    // A member posting junk GroupInfo or a junk Welcome with a commit.
    const junkInfo = await bob.group!.selfUpdate();
    await refused(bob.ds.submit(gid, junkInfo.commit, { groupInfo: new Uint8Array([0, 1, 0, 4, 9, 9]) }), 'invalid-group-info');
    // A real GroupInfo of another epoch is refused as well.
    await refused(bob.ds.submit(gid, junkInfo.commit, { groupInfo: before! }), 'invalid-group-info');
    await refused(bob.ds.submit(gid, junkInfo.commit, { welcome: new Uint8Array([0, 1, 0, 3, 0, 1]), added: [mallory.name] }), 'invalid-welcome');
    await bob.group!.clearPendingCommit();
    expect(await server.ds.epoch(gid)).toBe(epoch);
    expect(await server.ds.groupInfo(gid)).toEqual(before);
    expect(await mallory.ds.welcomes()).toEqual([]);
    await refused(mallory.ds.poll(gid, 0), 'not-a-member');
    await honestStillWork();
  });

  it('in a group open to external joins, an outsider may join only by a real external commit of her own (signature and AS binding checked)', async () => {
    const dave = await dsPeer(server.url, `dave-${tag}`);
    dave.group = await dave.client.createGroup(dave.identity);
    await dave.ds.createGroup(dave.group.id, { epoch: dave.group.epoch, externalJoin: true, groupInfo: await dave.group.exportGroupInfo() });
    const gid = toHex(dave.group.id);
    // A header-only PrivateMessage or a PublicMessage from a "member" is no external join.
    for (const forged of [forgedCommit(dave.group.id, 0), forgedCommit(dave.group.id, 0, 1, 1)]) {
      const r = await raw(server.url, 'POST', `/v1/groups/${gid}/messages`, { message: b64(forged), externalJoin: true }, malloryToken);
      expect(r).toMatchObject({ status: 400, body: { reason: 'malformed' } });
    }
    // A header-only "new member commit": no UpdatePath, nothing signed.
    let r = await raw(server.url, 'POST', `/v1/groups/${gid}/messages`, { message: b64(forgedCommit(dave.group.id, 0, 1, 4)), externalJoin: true }, malloryToken);
    expect(r).toMatchObject({ status: 400, body: { reason: 'malformed' } });
    // An external joiner adds no one else.
    r = await raw(server.url, 'POST', `/v1/groups/${gid}/messages`, { message: b64(forgedCommit(dave.group.id, 0, 1, 4)), externalJoin: true, added: [bob.name] }, malloryToken);
    expect(r).toMatchObject({ status: 400, body: { reason: 'malformed' } });
    // A real external commit by someone the AS does not know as its poster (eve's commit posted by mallory), or with its signature broken.
    const eve = await dsPeer(server.url, `eve-${tag}`);
    const info = await mallory.ds.groupInfo(dave.group.id);
    const byEve = await eve.client.joinExternal(info, eve.identity);
    r = await raw(server.url, 'POST', `/v1/groups/${gid}/messages`, { message: b64(byEve.commit), externalJoin: true }, malloryToken);
    expect(r).toMatchObject({ status: 400, body: { reason: 'invalid-commit' } });
    const broken = byEve.commit.slice();
    broken[broken.length - 40] ^= 1; // inside the signature (before the 32-byte confirmation tag and its length)
    await refused(eve.ds.submit(dave.group.id, broken, { externalJoin: true }), 'invalid-commit');
    expect(await server.ds.epoch(dave.group.id)).toBe(0);
    // eve posting her own real external commit joins.
    await eve.ds.submit(dave.group.id, byEve.commit, { externalJoin: true });
    expect(await server.ds.epoch(dave.group.id)).toBe(1);
    const [logged] = await dave.ds.poll(dave.group.id, 0);
    const processed = await dave.group.process(logged!.message);
    expect(processed.kind).toBe('commit');
    if (processed.kind === 'commit') await processed.staged.merge();
    expect(dave.group.epoch).toBe(byEve.group.epoch);
  });

  it('no client is impersonated: anonymous, forged-token and other-client requests are refused', async () => {
    const gid = toHex(alice.group!.id);
    expect(await raw(server.url, 'GET', `/v1/groups/${gid}/messages`)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    expect(await raw(server.url, 'GET', `/v1/groups/${gid}/messages?client=${alice.name}`)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    // mallory's token with its payload changed to name alice: the MAC fails.
    const [v, payload, mac] = malloryToken.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString());
    const forgedToken = `${v}.${Buffer.from(JSON.stringify({ ...claims, c: alice.name })).toString('base64url')}.${mac}`;
    expect(await raw(server.url, 'GET', `/v1/groups/${gid}/messages`, undefined, forgedToken)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    // A challenge is no session.
    const { body: ch } = await raw(server.url, 'POST', '/v1/auth/challenge', { clientId: alice.name });
    expect(await raw(server.url, 'GET', `/v1/groups/${gid}/messages`, undefined, ch.challenge)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    // A session for alice needs alice's key: mallory signing alice's challenge with her own key, or presenting alice's key, fails.
    const sig = b64(signDsChallenge(mallory.client, mallory.identity, ch.challenge));
    expect(await raw(server.url, 'POST', '/v1/auth/session', { challenge: ch.challenge, signatureKey: b64(mallory.identity.signaturePublicKey), signature: sig })).toMatchObject({
      status: 401,
      body: { reason: 'unauthenticated' },
    });
    expect(await raw(server.url, 'POST', '/v1/auth/session', { challenge: ch.challenge, signatureKey: b64(alice.identity.signaturePublicKey), signature: sig })).toMatchObject({
      status: 401,
      body: { reason: 'unauthenticated' },
    });
    // mallory (authenticated as herself) reads nothing of the group, over HTTP or WebSocket, and posts nothing.
    await refused(mallory.ds.poll(alice.group!.id, 0), 'not-a-member');
    await refused(mallory.ds.submit(alice.group!.id, await alice.group!.encrypt('replayed by mallory')), 'not-a-member');
    await refused(mallory.ds.groupInfo(alice.group!.id), 'not-a-member');
    await honestStillWork();
  });

  it('a malicious DS cannot relay the honest DS\'s challenge: the client refuses to sign a challenge for another audience', async () => {
    // "DS M" is an HTTP server on loopback that answers every challenge
    // request with one it fetched from the honest DS for the same client,
    // and forwards any signed answer there.
    const forwarded: string[] = [];
    const relay = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (chunk) => (body += chunk));
      req.on('end', async () => {
        if (req.url === '/v1/auth/session') forwarded.push(body);
        const upstream = await raw(server.url, req.method ?? 'POST', req.url ?? '/', body === '' ? undefined : body);
        res.writeHead(upstream.status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(upstream.body));
      });
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    const relayUrl = `http://127.0.0.1:${(relay.address() as AddressInfo).port}`;
    try {
      const err = await DeliveryClient.login(relayUrl, { clientId: alice.name, client: alice.client, identity: alice.identity }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DsError);
      expect({ reason: (err as DsError).reason, message: (err as DsError).message }).toEqual({
        reason: 'unauthenticated',
        message: 'the DS sent a challenge for another server, client or purpose; not signed (unauthenticated)',
      });
      expect(forwarded).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    }
    // A client that names the honest DS's audience would sign (and the honest
    // DS itself still logs alice in).
    const again = await DeliveryClient.login(server.url, { clientId: alice.name, client: alice.client, identity: alice.identity });
    expect((await again.poll(alice.group!.id, 0)).length).toBeGreaterThan(0);
    await honestStillWork();
  });

  it('KeyPackages cannot be drained or replaced: leased per requester, at most 100 ids a request, rate-limited, uploaded only by their owner', async () => {
    const before = await server.ds.store.countKeyPackages(bob.name);
    expect(before).toBeGreaterThan(0);
    // 10,000 ids in one request: refused.
    const many = Array.from({ length: 10_000 }, () => bob.name);
    expect(await raw(server.url, 'POST', '/v1/key-packages:fetch', { clients: many }, malloryToken)).toMatchObject({ status: 400, body: { reason: 'malformed' } });
    // Fetching again and again: the same KeyPackage (leased to mallory), never a second one; then the rate limit.
    const got = new Set<string>();
    let limited = 0;
    for (let i = 0; i < 30; i++) {
      const r = await raw(server.url, 'POST', '/v1/key-packages:fetch', { clients: [bob.name] }, malloryToken);
      if (r.status === 429) {
        expect(r.body.reason).toBe('rate-limited');
        limited++;
      } else got.add(r.body.keyPackages[bob.name]);
    }
    expect(got.size).toBe(1);
    expect(limited).toBeGreaterThan(0);
    expect(await server.ds.store.countKeyPackages(bob.name)).toBe(before);
    // mallory's acknowledgement deletes only what is leased to her: bob's others stay for alice.
    expect(await raw(server.url, 'POST', '/v1/key-packages:ack', { refs: ['00'.repeat(32)] }, malloryToken)).toMatchObject({ status: 200, body: { deleted: 0 } });
    const forAlice = await alice.ds.fetchKeyPackages([bob.name]);
    expect(forAlice.has(bob.name)).toBe(true);
    expect(b64(forAlice.get(bob.name)!)).not.toBe([...got][0]);
    // A KeyPackage naming bob but signed with mallory's key: refused (her key is registered to "mallory", not to identity "bob").
    const fake = await MlsClient.open();
    const fakeBob = await fake.importIdentity(bob.identity.identity, mallory.client.exportSignatureKeyPair(mallory.identity), 1);
    expect(toHex(fakeBob.signaturePublicKey)).toBe(toHex(mallory.identity.signaturePublicKey));
    await refused(mallory.ds.uploadKeyPackages([await fake.createKeyPackage(fakeBob)]), 'invalid-key-package');
    // A KeyPackage of bob (real, his key) uploaded by mallory: refused, it is not hers.
    await refused(mallory.ds.uploadKeyPackages([await bob.client.createKeyPackage(bob.identity)]), 'invalid-key-package');
    expect(await server.ds.store.countKeyPackages(mallory.name)).toBe(0);
    // There is no route naming another client any more.
    expect(await raw(server.url, 'POST', `/v1/key-packages/${bob.name}`, { keyPackages: [] }, malloryToken)).toMatchObject({ status: 404, body: { reason: 'not-found' } });
  });

  it('Welcomes go to their addressee only and survive a lost reply until acknowledged', async () => {
    const erin = await dsPeer(server.url, `erin-${tag}`);
    await erin.ds.uploadKeyPackages([await erin.client.createKeyPackage(erin.identity)]);
    const kps = await alice.ds.fetchKeyPackages([erin.name]);
    // A lost reply: alice fetches again and gets the same KeyPackage.
    const again = await alice.ds.fetchKeyPackages([erin.name]);
    expect(again.get(erin.name)).toEqual(kps.get(erin.name));
    await honestStillWork();
    const add = await alice.group!.commit({ add: [...kps.values()], groupInfo: true });
    alice.seen = await alice.ds.submit(alice.group!.id, add.commit, { welcome: add.welcome, added: [erin.name], groupInfo: add.groupInfo });
    // Retried with the same bytes (a lost reply): the same answer, logged once, one Welcome.
    expect(await alice.ds.submit(alice.group!.id, add.commit, { welcome: add.welcome, added: [erin.name], groupInfo: add.groupInfo })).toBe(alice.seen);
    await alice.ds.ackKeyPackages([erin.name]);
    await alice.group!.mergePendingCommit();
    // mallory asks for Welcomes: only hers (none); acknowledging erin's ids deletes nothing of erin's.
    expect(await raw(server.url, 'GET', '/v1/welcomes', undefined, malloryToken)).toMatchObject({ status: 200, body: { welcomes: [] } });
    const pending = await server.ds.pendingWelcomes(erin.name);
    expect(pending).toHaveLength(1);
    expect(await raw(server.url, 'POST', '/v1/welcomes:ack', { ids: pending.map((w) => w.id) }, malloryToken)).toMatchObject({ status: 200 });
    // erin reads it twice (the first reply "lost"), then acknowledges.
    const [w1] = await erin.ds.welcomes();
    const [w2] = await erin.ds.welcomes();
    expect(w2).toEqual(w1);
    erin.group = await erin.client.joinFromWelcome(w1!.welcome);
    await erin.ds.ackWelcomes([w1!.id]);
    expect(await erin.ds.welcomes()).toEqual([]);
    for (const p of [bob, carol]) {
      for (const m of await p.ds.poll(alice.group!.id, p.seen)) {
        p.seen = m.seq;
        const r = await p.group!.process(m.message);
        if (r.kind === 'commit') await r.staged.merge();
      }
    }
    expect(erin.group.epoch).toBe(alice.group!.epoch);
    // erin leaves again (alice removes her), so the other tests keep three members.
    const leave = await alice.group!.commit({ remove: [erin.group.ownLeafIndex] });
    alice.seen = await alice.ds.submit(alice.group!.id, leave.commit, { removed: [erin.name] });
    await alice.group!.mergePendingCommit();
    await honestStillWork();
    // Adding a client the AS does not know is refused (it could never take its Welcome).
    const ghost = await dsPeer(server.url, `ghost-${tag}`);
    const ghostKp = await ghost.client.createKeyPackage(ghost.identity);
    const ghostAdd = await alice.group!.commit({ add: [ghostKp] });
    await refused(alice.ds.submit(alice.group!.id, ghostAdd.commit, { welcome: ghostAdd.welcome, added: [`nobody-${tag}`] }), 'unknown-client');
    await alice.group!.clearPendingCommit();
  });

  it('pairings need both sides; nobody else can register, read through, or cease them', async () => {
    const phone = await dsPeer(server.url, `alice-phone-${tag}`);
    // mallory claims to be alice's device: alice never asked, so no pairing, and no access.
    expect(await mallory.ds.initPairing(alice.name, mallory.name)).toBe(false);
    await refused(mallory.ds.poll(alice.group!.id, 0), 'not-a-member');
    // mallory cannot speak for either side of someone else's pairing.
    await refused(mallory.ds.initPairing(alice.name, phone.name), 'forbidden');
    expect(await alice.ds.initPairing(alice.name, phone.name)).toBe(false);
    expect(await phone.ds.initPairing(alice.name, phone.name)).toBe(true);
    expect(await alice.ds.devices()).toEqual([phone.name]);
    expect((await phone.ds.poll(alice.group!.id, 0)).length).toBeGreaterThan(0);
    await refused(mallory.ds.ceasePairing(alice.name, phone.name), 'forbidden');
    expect(await mallory.ds.devices()).toEqual([]);
    expect(await alice.ds.devices()).toEqual([phone.name]);
    await phone.ds.ceasePairing(alice.name, phone.name);
    expect(await alice.ds.devices()).toEqual([]);
    await refused(phone.ds.poll(alice.group!.id, 0), 'not-a-member');
  });

  it('the AS: client ids first come first served, keys bound once, revocation final, proof of the key required', async () => {
    const post = (path: string, body: unknown, token?: string) => raw(server.url, 'POST', path, body, token);
    const registration = async (clientId: string, who: DsPeer, extra: Record<string, unknown> = {}, key = who) => {
      const { body: c } = await post('/v1/auth/challenge', { clientId });
      return {
        challenge: c.challenge,
        userId: clientId,
        identity: b64(key.identity.identity),
        signatureKey: b64(key.identity.signaturePublicKey),
        ciphersuite: 1,
        signature: b64(signDsChallenge(who.client, who.identity, c.challenge)),
        ...extra,
      };
    };
    // mallory registers her key as alice (taken), as a new id (her key is bound to mallory), or alice's key (no proof).
    expect(await post('/v1/as/register', await registration(alice.name, mallory))).toMatchObject({ status: 403, body: { reason: 'registration-refused' } });
    expect(await post('/v1/as/register', await registration(`mallory2-${tag}`, mallory))).toMatchObject({ status: 403, body: { reason: 'registration-refused' } });
    expect(await post('/v1/as/register', await registration(`m3-${tag}`, mallory, {}, alice))).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    // A new client claiming to be a client of user alice, without a session of one of alice's clients.
    const newcomer = await dsPeer(server.url, `newcomer-${tag}`);
    const other = await (async () => {
      const c = await MlsClient.open();
      return { name: `x-${tag}`, client: c, identity: await c.createIdentity(`x-${tag}`, 1) } as DsPeer;
    })();
    expect(await post('/v1/as/register', await registration(other.name, other, { userId: alice.name }))).toMatchObject({ status: 403, body: { reason: 'registration-refused' } });
    expect(await post('/v1/as/register', await registration(other.name, other, { userId: alice.name }), await tokenOf(server.url, newcomer.name, newcomer))).toMatchObject({
      status: 403,
      body: { reason: 'registration-refused' },
    });
    // A registered client adding a key cannot move itself under another
    // user id or credential identity, even from its own session; a further
    // key with its own user id and identity is accepted.
    const malloryToken2 = await tokenOf(server.url, mallory.name, mallory);
    const withKey = async (name: string) => {
      const identity = await mallory.client.createIdentity(name, 1);
      return { ...mallory, identity } as DsPeer;
    };
    const asAlice = await withKey(alice.name);
    const refusal = { status: 403, body: { reason: 'registration-refused', error: 'a further key of a client keeps its user id and credential identity' } };
    expect(await post('/v1/as/register', await registration(mallory.name, asAlice, {}, asAlice), malloryToken2)).toMatchObject(refusal);
    const secondKey = await withKey(mallory.name);
    expect(await post('/v1/as/register', await registration(mallory.name, secondKey, { userId: alice.name }, secondKey), malloryToken2)).toMatchObject(refusal);
    expect(await post('/v1/as/register', await registration(mallory.name, secondKey, {}, secondKey), malloryToken2)).toMatchObject({ status: 200 });
    expect(await alice.ds.validate(secondKey.identity.identity, secondKey.identity.signaturePublicKey)).toEqual({ clientId: mallory.name, userId: mallory.name });
    await refused(alice.ds.validate(asAlice.identity.identity, asAlice.identity.signaturePublicKey), 'unknown-client');
    // Validation names the holder of a credential.
    expect(await alice.ds.validate(bob.identity.identity, bob.identity.signaturePublicKey)).toEqual({ clientId: bob.name, userId: bob.name });
    await refused(alice.ds.validate(alice.identity.identity, bob.identity.signaturePublicKey), 'unknown-client');
    // Revocation: the session ends, and neither the key nor the client id can come back, under any user.
    const token = await tokenOf(server.url, newcomer.name, newcomer);
    await newcomer.ds.revoke();
    expect(await raw(server.url, 'GET', '/v1/welcomes', undefined, token)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    expect(await post('/v1/as/register', await registration(`reborn-${tag}`, newcomer))).toMatchObject({ status: 403, body: { reason: 'registration-refused' } });
    expect(await post('/v1/as/register', await registration(newcomer.name, newcomer))).toMatchObject({ status: 403, body: { reason: 'registration-refused' } });
    expect(await post('/v1/as/register', await registration(newcomer.name, other))).toMatchObject({ status: 403, body: { reason: 'registration-refused' } });
    await refused(alice.ds.validate(newcomer.identity.identity, newcomer.identity.signaturePublicKey), 'unknown-client');
  });

  it('inputs are validated: ids needing URL encoding work, numbers are range-checked, empty ids refused', async () => {
    const dave = await dsPeer(server.url, `dave@example.com/${tag} ü`);
    await dave.ds.uploadKeyPackages([await dave.client.createKeyPackage(dave.identity)]);
    const got = await alice.ds.fetchKeyPackages([dave.name]);
    expect(got.has(dave.name)).toBe(true);
    await alice.ds.ackKeyPackages([dave.name]);
    const gid = toHex(alice.group!.id);
    const t = malloryToken;
    const cases: [string, string, unknown, number, string][] = [
      ['POST', '/v1/groups', { groupId: b64(new Uint8Array(16).fill(7)), epoch: 1e300 }, 400, 'malformed'],
      ['POST', '/v1/groups', { groupId: b64(new Uint8Array(16).fill(7)), epoch: -1 }, 400, 'malformed'],
      ['POST', '/v1/groups', { groupId: b64(new Uint8Array(16).fill(7)), epoch: 1.5 }, 400, 'malformed'],
      ['POST', '/v1/groups', { groupId: '' }, 400, 'malformed'],
      ['POST', '/v1/groups', { groupId: b64(new Uint8Array(300)) }, 400, 'malformed'],
      ['POST', '/v1/groups', { groupId: b64(new Uint8Array(16).fill(8)), externalJoin: 'yes' }, 400, 'malformed'],
      ['GET', `/v1/groups/${gid}/messages?after=1e300`, undefined, 400, 'malformed'],
      ['GET', `/v1/groups/${gid}/messages?after=-1`, undefined, 400, 'malformed'],
      ['GET', '/v1/groups//messages', undefined, 404, 'not-found'],
      ['GET', `/v1/groups/${gid.toUpperCase()}/messages`, undefined, 400, 'malformed'],
      ['POST', `/v1/groups/${gid}/messages`, { message: b64(forgedCommit(alice.group!.id, 2 ** 60)) }, 400, 'malformed'],
      ['POST', '/v1/auth/challenge', { clientId: '' }, 400, 'malformed'],
      ['POST', '/v1/auth/challenge', { clientId: 'a\u0000b' }, 400, 'malformed'],
      ['POST', '/v1/pairings', { anchor: '', device: mallory.name }, 400, 'malformed'],
      ['POST', '/v1/welcomes:ack', { ids: [1e300] }, 400, 'malformed'],
    ];
    for (const [method, path, body, status, reason] of cases) {
      expect(await raw(server.url, method, path, body, t), `${method} ${path} ${JSON.stringify(body)?.slice(0, 60)}`).toMatchObject({ status, body: { reason } });
    }
    await honestStillWork();
  });

  it('fuzz: 10,000 malformed HTTP requests and WebSocket upgrades/frames: no 5xx, the server stays up, honest data unchanged', async () => {
    const honest = names();
    const groups = [toHex(alice.group!.id)];
    const before = snapshot(db, honest, groups);
    const prng = xorshift32(20_261_201);
    const rand = (): number => prng.next();
    const pick = <T>(xs: readonly T[]): T => xs[rand() % xs.length]!;
    const gid = groups[0]!;
    const paths = [
      '/v1/groups',
      `/v1/groups/${gid}/messages`,
      `/v1/groups/${gid}/messages?after=`,
      `/v1/groups/${gid}/group-info`,
      '/v1/key-packages',
      '/v1/key-packages:fetch',
      '/v1/key-packages:ack',
      '/v1/welcomes',
      '/v1/welcomes:ack',
      '/v1/pairings',
      '/v1/pairings:cease',
      '/v1/auth/challenge',
      '/v1/auth/session',
      '/v1/as/register',
      '/v1/as/validate',
      '/v1/stream',
      '/healthz',
      '/v1/%zz',
      '/v1/groups/%00/messages',
      '/../../etc/passwd',
      `/v1/groups/${gid}/messages/../../welcomes`,
    ];
    const fields = ['groupId', 'message', 'welcome', 'groupInfo', 'added', 'removed', 'clients', 'refs', 'ids', 'keyPackages', 'anchor', 'device', 'challenge', 'signature', 'signatureKey', 'identity', 'clientId', 'userId', 'epoch', 'externalJoin', 'consistency', 'ciphersuite', '__proto__', 'constructor'];
    const values = (): unknown => {
      switch (rand() % 14) {
        case 0: return 'AAEC';
        case 1: return b64(forgedCommit(alice.group!.id, rand() % 4, 1 + (rand() % 2), rand() % 5));
        case 2: return -1;
        case 3: return 1e308;
        case 4: return [];
        case 5: return Array.from({ length: rand() % 5 }, () => `fz-${rand() % 50}`);
        case 6: return { nested: { deeper: [1, 2, { x: null }] } };
        case 7: return null;
        case 8: return '%%%=';
        case 9: return 'x'.repeat(rand() % 400);
        case 10: return true;
        case 11: return b64(Uint8Array.from({ length: rand() % 64 }, () => rand() % 256));
        case 12: return [1e300];
        default: return '\u0000\uffff';
      }
    };
    const bodies = (): string | undefined => {
      switch (rand() % 6) {
        case 0: return undefined;
        case 1: return Buffer.from(Uint8Array.from({ length: rand() % 200 }, () => rand() % 256)).toString('latin1');
        case 2: return '{"a":'.repeat(rand() % 50);
        case 3: return JSON.stringify(rand() % 2 ? [1, 2] : 'str');
        default: {
          const o: Record<string, unknown> = {};
          for (let i = rand() % 6; i >= 0; i--) o[pick(fields)] = values();
          return JSON.stringify(o);
        }
      }
    };
    const agent = new Agent({ keepAlive: true, maxSockets: 32 });
    const { port } = new URL(server.url);
    const statuses = new Map<number, number>();
    const send = () =>
      new Promise<void>((resolve) => {
        const body = bodies();
        const path = pick(paths) + (rand() % 4 === 0 ? `?after=${pick(['x', '-5', '1e9', '%', '99999999999999999'])}&access_token=${pick(['', 'v1.x.y', malloryToken])}` : '');
        const headers: Record<string, string> = { 'content-type': pick(['application/json', 'text/plain', '']) };
        if (rand() % 3 > 0) headers.authorization = pick([`Bearer ${malloryToken}`, 'Bearer v1..', 'Basic Zm9vOmJhcg==', `Bearer ${malloryToken.slice(0, -3)}abc`]);
        const req = httpRequest({ host: '127.0.0.1', port, method: pick(['GET', 'POST', 'POST', 'PUT', 'DELETE', 'PATCH']), path, headers, agent }, (res) => {
          statuses.set(res.statusCode!, (statuses.get(res.statusCode!) ?? 0) + 1);
          res.resume();
          res.on('end', resolve);
          res.on('error', () => resolve());
        });
        req.on('error', () => {
          statuses.set(0, (statuses.get(0) ?? 0) + 1);
          resolve();
        });
        req.end(body);
      });
    const started = performance.now();
    const HTTP = 9_500;
    let next = 0;
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < HTTP) {
          next++;
          await send();
        }
      }),
    );
    // WebSocket: upgrades with junk parameters, and junk frames on real streams (mallory has none; bob's streams are used).
    const bobToken = await tokenOf(server.url, bob.name, bob);
    let wsCount = 0;
    for (let i = 0; i < 500; i++) {
      if (i % 2 === 0) {
        const q = pick([`group=${gid}`, 'group=zz', `group=${gid}&after=-1`, `group=${gid}&access_token=${malloryToken}`, `group=${'ab'.repeat(300)}&access_token=${bobToken}`, '']);
        const { status, ws } = await upgrade(server.url, `/v1/stream?${q}`);
        expect(status).not.toBe(101);
        ws?.terminate();
      } else {
        const { status, ws } = await upgrade(server.url, `/v1/stream?group=${gid}&after=${rand() % 5}&access_token=${bobToken}`);
        expect(status).toBe(101);
        await new Promise<void>((resolve) => {
          ws!.on('close', () => resolve());
          ws!.on('error', () => resolve());
          const frame = Buffer.from(Uint8Array.from({ length: rand() % 3000 }, () => rand() % 256));
          if (rand() % 2) ws!.send(frame);
          else ws!.ping(frame.subarray(0, 100));
          setTimeout(() => ws!.terminate(), 50);
        });
      }
      wsCount++;
    }
    agent.destroy();
    const seconds = (performance.now() - started) / 1000;
    console.log(`ds fuzz: ${HTTP} HTTP requests + ${wsCount} WebSocket upgrades/frames in ${seconds.toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(HTTP + wsCount).toBeGreaterThanOrEqual(10_000);
    expect([...statuses.keys()].filter((s) => s >= 500)).toEqual([]);
    expect(statuses.get(0) ?? 0).toBe(0);
    expect(await new DeliveryClient(server.url).healthy()).toBe(true);
    expect(snapshot(db, honest, groups)).toBe(before);
    await honestStillWork();
  }, 120_000);
});

describe('the DS under abuse: rate limits, connection caps, slow clients, TLS', () => {
  let server: RunningDeliveryServer;
  let alice: DsPeer;
  let bob: DsPeer;
  beforeAll(async () => {
    server = await startDeliveryServer({
      port: 0,
      store: new SqliteDeliveryStore(':memory:'),
      clientRate: [20, 40],
      ipRate: [2000, 4000],
      maxConnectionsPerIp: 100,
      maxStreamsPerClient: 3,
      headersTimeoutMs: 500,
      requestTimeoutMs: 1000,
      streamHighWater: 256 * 1024,
      slowConsumerMs: 1000,
      maxBodyBytes: 8 * 1024 * 1024,
    });
    [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => dsPeer(server.url, n)));
    await bob.ds.uploadKeyPackages([await bob.client.createKeyPackage(bob.identity)]);
    alice.group = await alice.client.createGroup(alice.identity);
    await alice.ds.createGroup(alice.group.id, { epoch: alice.group.epoch });
    const kps = await alice.ds.fetchKeyPackages([bob.name]);
    const add = await alice.group.commit({ add: [...kps.values()] });
    alice.seen = await alice.ds.submit(alice.group.id, add.commit, { welcome: add.welcome, added: [bob.name] });
    await alice.group.mergePendingCommit();
    const [w] = await bob.ds.welcomes();
    bob.group = await bob.client.joinFromWelcome(w!.welcome);
  });
  afterAll(async () => server?.close());

  it('300 parallel requests from one client: the burst is served, the rest refused with 429 rate-limited', async () => {
    const token = await tokenOf(server.url, alice.name, alice);
    await new Promise((r) => setTimeout(r, 2100)); // the bucket refills
    // 50 sockets (under the per-address cap), 300 requests in flight.
    const agent = new Agent({ keepAlive: true, maxSockets: 50 });
    const { port } = new URL(server.url);
    const get = () =>
      new Promise<{ status: number; body: any }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: `/v1/groups/${toHex(alice.group!.id)}/messages`, headers: { authorization: `Bearer ${token}` }, agent }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
        });
        req.on('error', reject);
        req.end();
      });
    const results = await Promise.all(Array.from({ length: 300 }, get));
    agent.destroy();
    const ok = results.filter((r) => r.status === 200).length;
    const limited = results.filter((r) => r.status === 429);
    expect(ok).toBeGreaterThanOrEqual(40);
    expect(ok).toBeLessThan(100);
    expect(limited.length).toBe(300 - ok);
    for (const r of limited) expect(r.body.reason).toBe('rate-limited');
    // bob is not affected by alice's limit.
    expect((await bob.ds.poll(alice.group!.id, 0)).length).toBeGreaterThan(0);
  });

  it('connections per address are capped; a slow-headers client is cut off; streams per client are capped', async () => {
    const { port } = new URL(server.url);
    // 200 sockets that start a request and never finish its headers (slowloris).
    const closed = Array.from(
      { length: 200 },
      () =>
        new Promise<void>((resolve) => {
          const s = connect(Number(port), '127.0.0.1', () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n'));
          s.resume(); // read, so the server's close is seen
          s.on('error', () => undefined);
          s.on('close', () => resolve());
        }),
    );
    await Promise.all(closed);
    expect(await new DeliveryClient(server.url).healthy()).toBe(true);
    const token = await tokenOf(server.url, bob.name, bob);
    const path = `/v1/stream?group=${toHex(alice.group!.id)}&access_token=${token}`;
    const open = [];
    for (let i = 0; i < 3; i++) open.push(await upgrade(server.url, path));
    expect(open.map((o) => o.status)).toEqual([101, 101, 101]);
    expect((await upgrade(server.url, path)).status).toBe(429);
    for (const o of open) o.ws!.terminate();
  });

  it('a subscriber that never reads is cut off (bounded buffering); the others keep streaming', async () => {
    const token = await tokenOf(server.url, bob.name, bob);
    const { ws } = await upgrade(server.url, `/v1/stream?group=${toHex(alice.group!.id)}&access_token=${token}`);
    // Stop reading: the server's writes back up.
    const socket = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    socket.pause();
    let received = 0;
    ws!.on('message', () => received++);
    const closed = new Promise<void>((resolve) => ws!.on('close', () => resolve()));
    // 60 messages of 128 KiB: about 10 MB, more than the kernel's socket buffers take.
    const from = (await bob.ds.poll(alice.group!.id, 0)).at(-1)!.seq;
    const big = 'x'.repeat(128 * 1024);
    for (let i = 0; i < 60; i++) await alice.ds.submit(alice.group!.id, await alice.group!.encrypt(big));
    // Give the server time to notice (slow-consumer limit 1 s), then read what reached us: the stream was cut short.
    await new Promise((r) => setTimeout(r, 3000));
    socket.resume();
    const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 15_000))]);
    expect(outcome).toBe('closed');
    expect(received).toBeLessThan(60);
    // A reading subscriber gets everything.
    const got: number[] = [];
    const stop = bob.ds.stream(alice.group!.id, from, (m) => got.push(m.seq));
    for (let i = 0; i < 2400 && got.length < 60; i++) await new Promise((r) => setTimeout(r, 25));
    stop();
    expect(got).toEqual(Array.from({ length: 60 }, (_, i) => from + i + 1));
  });

  it('serves HTTPS and WSS itself from certificate and key files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paired-mls-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    const cert = readFileSync(join(dir, 'cert.pem'));
    const tls = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(':memory:'), tls: { cert, key: readFileSync(join(dir, 'key.pem')) } });
    try {
      expect(tls.url.startsWith('https://')).toBe(true);
      const post = (path: string, body: unknown, token?: string) =>
        new Promise<{ status: number; body: any }>((resolve, reject) => {
          const req = httpsRequest(tls.url + path, { method: 'POST', ca: cert, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } }, (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
          });
          req.on('error', reject);
          req.end(JSON.stringify(body));
        });
      const m = await (async () => {
        const c = await MlsClient.open();
        return { client: c, identity: await c.createIdentity('tls-alice', 1) };
      })();
      const { body: ch } = await post('/v1/auth/challenge', { clientId: 'tls-alice' });
      const reg = await post('/v1/as/register', {
        challenge: ch.challenge,
        identity: b64(m.identity.identity),
        signatureKey: b64(m.identity.signaturePublicKey),
        ciphersuite: 1,
        signature: b64(signDsChallenge(m.client, m.identity, ch.challenge)),
      });
      expect(reg.status).toBe(200);
      const group = await m.client.createGroup(m.identity);
      expect((await post('/v1/groups', { groupId: b64(group.id), epoch: group.epoch }, reg.body.token)).status).toBe(200);
      expect((await post(`/v1/groups/${toHex(group.id)}/messages`, { message: b64(await group.encrypt('over tls')) }, reg.body.token)).status).toBe(200);
      const { status, ws } = await upgrade(tls.url, `/v1/stream?group=${toHex(group.id)}&access_token=${reg.body.token}`, { ca: cert });
      expect(status).toBe(101);
      const first = await new Promise<{ seq: number }>((resolve) => ws!.once('message', (d) => resolve(JSON.parse(String(d)))));
      expect(first.seq).toBe(1);
      ws!.terminate();
      // Plain HTTP to the TLS port is no request.
      const plain = await raw(tls.url.replace('https', 'http'), 'GET', '/healthz').catch(() => ({ status: 0 }));
      expect(plain.status).not.toBe(200);
    } finally {
      await tls.close();
    }
  });
});

describe('a DS that verifies commits (verifyCommits: PublicMessage handshake, docs/PROTOCOL.md §8.5)', () => {
  let server: RunningDeliveryServer;
  let alice: DsPeer;
  let bob: DsPeer;
  let carol: DsPeer;
  let mallory: DsPeer;
  const plaintext = { wireFormat: 'plaintext' as const };

  async function honestStillWork(peers: DsPeer[]): Promise<void> {
    await groupStillWorks(peers, `verified ${Math.random()}`);
  }

  beforeAll(async () => {
    const db = join(mkdtempSync(join(tmpdir(), 'paired-mls-verified-')), 'ds.sqlite');
    server = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(db), verifyCommits: true, clientRate: [1e6, 1e6], ipRate: [1e6, 1e6] });
    const tag = Math.random().toString(36).slice(2, 8);
    [alice, bob, carol, mallory] = await Promise.all(['alice', 'bob', 'carol', 'mallory'].map((n) => dsPeer(server.url, `${n}-v-${tag}`)));
    for (const p of [bob, carol, mallory]) await p.ds.uploadKeyPackages(await p.client.createKeyPackages(p.identity, { count: 3 }));
    alice.group = await alice.client.createGroup(alice.identity, plaintext);
    // A verified group starts from a GroupInfo carrying its ratchet tree.
    await refused(alice.ds.createGroup(alice.group.id, { epoch: 0 }), 'invalid-group-info');
    await refused(mallory.ds.createGroup(alice.group.id, { epoch: 0, groupInfo: await alice.group.exportGroupInfo() }), 'invalid-group-info');
    await alice.ds.createGroup(alice.group.id, { epoch: 0, groupInfo: await alice.group.exportGroupInfo() });
    const kps = await alice.ds.fetchKeyPackages([bob.name, carol.name]);
    const add = await alice.group.commit({ add: [...kps.values()], groupInfo: true });
    // No `added` claim: the DS reads the adds from the commit and sends the Welcome to them.
    alice.seen = await alice.ds.submit(alice.group.id, add.commit, { welcome: add.welcome, groupInfo: add.groupInfo });
    await alice.ds.ackKeyPackages([bob.name, carol.name]);
    await alice.group.mergePendingCommit();
    for (const p of [bob, carol]) {
      const [w] = await p.ds.welcomes();
      p.group = await p.client.joinFromWelcome(w!.welcome, plaintext);
      await p.ds.ackWelcomes([w!.id]);
      p.seen = alice.seen;
    }
    expect(await server.ds.isReader(alice.group.id, bob.name)).toBe(true);
  });
  afterAll(async () => server?.close());

  it('a member cannot post a commit signed by another member, with a forged signature, or with tampered content', async () => {
    const gid = alice.group!.id;
    const epoch = await server.ds.epoch(gid);
    // carol's real commit, posted by bob: signed by a member, but not by the posting client.
    const carols = await carol.group!.selfUpdate({ groupInfo: true });
    await refused(bob.ds.submit(gid, carols.commit, { groupInfo: carols.groupInfo }), 'invalid-commit');
    await carol.group!.clearPendingCommit();
    const own = await bob.group!.selfUpdate({ groupInfo: true });
    // Forged signature: the last byte of the Ed25519 signature (then confirmation and membership tags, 1 + 32 bytes each).
    const sigEnd = own.commit.length - 66;
    expect(own.commit[sigEnd - 65]).toBe(64);
    const forged = own.commit.slice();
    forged[sigEnd - 1]! ^= 1;
    await refused(bob.ds.submit(gid, forged, { groupInfo: own.groupInfo }), 'invalid-commit');
    // Tampered content: one byte inside the UpdatePath.
    const tampered = own.commit.slice();
    tampered[Math.floor(own.commit.length / 2)]! ^= 1;
    await refused(bob.ds.submit(gid, tampered, { groupInfo: own.groupInfo }), 'invalid-commit');
    // His real commit with carol's GroupInfo of the next epoch (a valid GroupInfo of another state), or one without the tree.
    await refused(bob.ds.submit(gid, own.commit, { groupInfo: carols.groupInfo }), 'invalid-group-info');
    await refused(bob.ds.submit(gid, own.commit, {}), 'invalid-group-info');
    // A Welcome that is not for the commit's adds (it adds no one).
    await refused(bob.ds.submit(gid, own.commit, { groupInfo: own.groupInfo, welcome: new Uint8Array([0, 1, 0, 3, 0, 1, 3, 0, 0, 0, 0]) }), 'invalid-welcome');
    expect(await server.ds.epoch(gid)).toBe(epoch);
    await bob.group!.clearPendingCommit();
    await honestStillWork([alice, bob, carol]);
  });

  it('the member list follows the commit, not the `added` / `removed` the committer claims', async () => {
    const gid = alice.group!.id;
    // bob updates only, but claims he added mallory and removed carol.
    const c = await bob.group!.selfUpdate({ groupInfo: true });
    bob.seen = await bob.ds.submit(gid, c.commit, { groupInfo: c.groupInfo, added: [mallory.name], removed: [carol.name] });
    await bob.group!.mergePendingCommit();
    expect(await server.ds.isReader(gid, mallory.name)).toBe(false);
    expect(await server.ds.isReader(gid, carol.name)).toBe(true);
    await refused(mallory.ds.poll(gid, 0), 'not-a-member');
    expect(await mallory.ds.welcomes()).toEqual([]);
    await honestStillWork([alice, bob, carol]);
    // alice removes carol and claims nothing: the DS removes carol anyway.
    const carolLeaf = alice.group!.members().find((m) => utf8(m.credential.identity) === carol.name)!.leafIndex;
    const rm = await alice.group!.commit({ remove: [carolLeaf], groupInfo: true });
    alice.seen = await alice.ds.submit(gid, rm.commit, { groupInfo: rm.groupInfo });
    await alice.group!.mergePendingCommit();
    expect(await server.ds.isReader(gid, carol.name)).toBe(false);
    await refused(carol.ds.poll(gid, 0), 'not-a-member');
    await honestStillWork([alice, bob]);
  });

  it('an external join to an open verified group is verified like any commit; the joiner becomes a reader by the tree', async () => {
    const g = await bob.client.createGroup(bob.identity, plaintext);
    await bob.ds.createGroup(g.id, { epoch: 0, groupInfo: await g.exportGroupInfo(), externalJoin: true });
    const info = (await mallory.ds.groupInfo(g.id))!;
    const joined = await mallory.client.joinExternal(info, mallory.identity, plaintext);
    const newInfo = await joined.group.exportGroupInfo();
    // Without the new GroupInfo, or with the old one, the state would go stale: refused.
    await refused(mallory.ds.submit(g.id, joined.commit, { externalJoin: true }), 'invalid-group-info');
    await refused(mallory.ds.submit(g.id, joined.commit, { externalJoin: true, groupInfo: info }), 'invalid-group-info');
    const seen = await mallory.ds.submit(g.id, joined.commit, { externalJoin: true, groupInfo: newInfo });
    expect(await server.ds.isReader(g.id, mallory.name)).toBe(true);
    await groupStillWorks([{ ...bob, group: g, seen: 0 }, { ...mallory, group: joined.group, seen }], 'joined');
  });

  it('fuzz: 500 mutations of a signed commit are all refused; the wasm instance and the group keep working', async () => {
    const gid = alice.group!.id;
    const epoch = await server.ds.epoch(gid);
    const own = await bob.group!.selfUpdate({ groupInfo: true });
    // Only the signed part (FramedContent and signature); the confirmation and
    // membership tags after it need epoch secrets the DS does not have (§8.5).
    // The wire format and content type stay: a member's message that is not a
    // commit is not verified in either mode (§8.5), so a flip there is logged.
    const signedEnd = own.commit.length - 66;
    const contentType = 4 + 1 + gid.length + 8 + 5 + 1;
    expect(own.commit[contentType]).toBe(3);
    const { int } = xorshift32(20);
    const reasons = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const m = own.commit.slice(0, i % 5 === 0 ? int(signedEnd) : own.commit.length);
      const at = 4 + int(signedEnd - 4);
      if (i % 5 !== 0 && at !== contentType) m[at]! ^= 1 + int(255);
      if (i % 5 !== 0 && at === contentType) m[at + 1]! ^= 1 + int(255);
      const err = await bob.ds.submit(gid, m, { groupInfo: own.groupInfo }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DsError);
      reasons.add((err as DsError).reason);
    }
    expect([...reasons].every((r) => ['invalid-commit', 'unverifiable-commit', 'malformed', 'stale', 'epoch-taken'].includes(r))).toBe(true);
    expect(await server.ds.epoch(gid)).toBe(epoch);
    // The real commit still goes through, and everyone follows it.
    bob.seen = await bob.ds.submit(gid, own.commit, { groupInfo: own.groupInfo });
    await bob.group!.mergePendingCommit();
    await honestStillWork([alice, bob]);
  });

  it('a group with an encrypted handshake cannot have its commits verified: refused with unverifiable-commit', async () => {
    const g = await alice.client.createGroup(alice.identity);
    await alice.ds.createGroup(g.id, { epoch: 0, groupInfo: await g.exportGroupInfo() });
    const c = await g.selfUpdate({ groupInfo: true });
    await refused(alice.ds.submit(g.id, c.commit, { groupInfo: c.groupInfo }), 'unverifiable-commit');
    await g.clearPendingCommit();
    await honestStillWork([alice, bob]);
  });
});
