/**
 * An independent attacker's review of the networked DS and its AS: each
 * test is an attack that succeeded before its fix, against the real server
 * on loopback (SQLite file; PostgreSQL where the race is between servers),
 * asserting the exact refusal and that the honest clients keep working.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { toHex } from 'paired-mls';
import { catchUpAll, dsPeer, groupOf, groupStillWorks, proof, raw, sqliteServers, tokenOf, upgrade } from './ds-helpers.js';
import { postgresPair, type PostgresPair } from './ds-postgres-pair.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const MiB = 1024 * 1024;

describe('review of the DS (SQLite)', () => {
  const server = sqliteServers('paired-mls-review-');
  const tag = Math.random().toString(36).slice(2, 8);

  it('a poll page is bounded in bytes, not only in messages: 24 messages of 1 MiB come in pages of at most 8 MiB, all of them in order', async () => {
    const s = await server();
    const [alice, bob] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`)]);
    await groupOf(alice, [bob]);
    const gid = alice.group!.id;
    // Any registered client can fill a log of its own with 500 messages of
    // ~3 MiB (the 4 MiB body limit); one GET then used to read all of them
    // (1.5 GB) into memory and base64 them into one string past V8's limit.
    const from = alice.seen;
    const big = new Uint8Array(MiB).fill(7);
    for (let i = 0; i < 24; i++) alice.seen = await alice.ds.submit(gid, await alice.group!.encrypt(big));
    const token = await tokenOf(s.url, bob.name, bob);
    const first = await raw(s.url, 'GET', `/v1/groups/${toHex(gid)}/messages?after=${from}`, undefined, token);
    expect(first.status).toBe(200);
    const bytes = (first.body.messages as { message: string }[]).reduce((sum, m) => sum + Buffer.from(m.message, 'base64').length, 0);
    expect(first.body.messages.length).toBeGreaterThanOrEqual(1);
    expect(first.body.messages.length).toBeLessThan(24);
    expect(bytes).toBeLessThanOrEqual(8 * MiB + 2 * MiB);
    // The honest reader pages through everything, in order, and the group still works.
    await catchUpAll(bob);
    expect(bob.seen).toBe(alice.seen);
    await groupStillWorks([alice, bob], 'after the big messages');
  });

  it("a stream's unsent bytes stay near streamHighWater: a subscriber that stops reading is not sent a whole page at once", async () => {
    const highWater = 256 * 1024;
    const s = await server({ streamHighWater: highWater, slowConsumerMs: 60_000 });
    const [alice, bob] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`)]);
    await groupOf(alice, [bob]);
    const gid = alice.group!.id;
    const from = alice.seen;
    const big = new Uint8Array(MiB).fill(9);
    for (let i = 0; i < 24; i++) alice.seen = await alice.ds.submit(gid, await alice.group!.encrypt(big));
    // Watch the server's sockets: the test's own sockets send nothing.
    const send = WebSocket.prototype.send;
    let most = 0;
    WebSocket.prototype.send = function (this: WebSocket, ...args: Parameters<WebSocket['send']>) {
      send.apply(this, args);
      most = Math.max(most, this.bufferedAmount);
    } as WebSocket['send'];
    try {
      const { ws } = await upgrade(s.url, `/v1/stream?group=${toHex(gid)}&after=${from}&access_token=${await tokenOf(s.url, bob.name, bob)}`);
      const socket = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
      socket.pause();
      const got: number[] = [];
      ws!.on('message', (data) => got.push(JSON.parse(String(data)).seq));
      await new Promise((r) => setTimeout(r, 1500));
      // At most one message (~1.4 MB of JSON) past the high-water mark.
      expect(most).toBeLessThan(highWater + 2 * MiB);
      socket.resume();
      for (let i = 0; i < 400 && got.length < 24; i++) await new Promise((r) => setTimeout(r, 25));
      ws!.close();
      expect(got).toEqual(Array.from({ length: 24 }, (_, i) => from + i + 1));
    } finally {
      WebSocket.prototype.send = send;
    }
    await catchUpAll(bob);
    await groupStillWorks([alice, bob], 'after the stream');
  });

  it('the routes open to anyone take small bodies only: 1 MiB to /v1/auth/* or /v1/as/register is refused with 413 too-large before it is read', async () => {
    const s = await server();
    // Without a session, 512 connections per address (10,000 in all) could each make the server hold a 4 MiB body.
    const pad = 'a'.repeat(MiB);
    for (const path of ['/v1/auth/challenge', '/v1/auth/session', '/v1/as/register']) {
      expect(await raw(s.url, 'POST', path, { clientId: `x-${tag}`, pad })).toMatchObject({ status: 413, body: { reason: 'too-large' } });
    }
    // Registering, logging in and posting still work, and a member's 1 MiB message is still taken.
    const [alice, bob] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`)]);
    await groupOf(alice, [bob]);
    alice.seen = await alice.ds.submit(alice.group!.id, await alice.group!.encrypt(new Uint8Array(MiB)));
    await catchUpAll(bob);
    await groupStillWorks([alice, bob], 'after the padded requests');
  });

  it("a key rotation proves a key for the session's own client: a challenge naming another id is refused with 403 forbidden, nothing registered or revoked", async () => {
    const s = await server();
    const [alice, bob] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`)]);
    await groupOf(alice, [bob]);
    const token = await tokenOf(s.url, alice.name, alice);
    // A new key whose proof is over a challenge for a fresh id: the rotation
    // registered that id and revoked alice's key, then handed her a session
    // (alice, new key) that no request accepts.
    const other = `other-${tag}`;
    const fresh = await alice.client.createIdentity(other, 1);
    const body = { ...(await proof(s.url, other, { client: alice.client, identity: fresh })), userId: other, identity: b64(fresh.identity), ciphersuite: 1 };
    expect(await raw(s.url, 'POST', '/v1/as/rotate', body, token)).toMatchObject({ status: 403, body: { reason: 'forbidden' } });
    expect(await raw(s.url, 'POST', '/v1/as/validate', { identity: b64(fresh.identity), signatureKey: b64(fresh.signaturePublicKey) }, token)).toMatchObject({ status: 404, body: { reason: 'unknown-client' } });
    expect(await raw(s.url, 'GET', '/v1/welcomes', undefined, token)).toMatchObject({ status: 200 });
    // A real rotation still works, and so does the group.
    const next = await alice.client.createIdentity(alice.name, 1);
    await alice.ds.rotateKey(next);
    expect(await raw(s.url, 'GET', '/v1/welcomes', undefined, token)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    await groupStillWorks([alice, bob], 'after the rotations');
  });
  it('KeyPackages signed with a revoked key are not handed out: after a rotation only the new key\'s, after a revocation none', async () => {
    const s = await server();
    const [alice, bob, carol] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`), dsPeer(s.url, `carol-${tag}`)]);
    alice.group = await alice.client.createGroup(alice.identity);
    await alice.ds.createGroup(alice.group.id, { epoch: alice.group.epoch });
    // bob's key was stolen: he rotates it away (PROTOCOL §8.4). His KeyPackages of the old key used to be handed out still.
    await bob.ds.uploadKeyPackages([await bob.client.createKeyPackage(bob.identity)]);
    const rotated = await bob.client.createIdentity(bob.name, 1);
    await bob.ds.rotateKey(rotated);
    // carol's device is retired for good; its KeyPackages used to be handed out too.
    await carol.ds.uploadKeyPackages([await carol.client.createKeyPackage(carol.identity)]);
    await carol.ds.revoke();
    expect([...(await alice.ds.fetchKeyPackages([bob.name, carol.name])).keys()]).toEqual([]);
    // bob's KeyPackage of the new key is served, and adding him works.
    await bob.ds.uploadKeyPackages([await bob.client.createKeyPackage(rotated)]);
    const kps = await alice.ds.fetchKeyPackages([bob.name]);
    expect(alice.client.inspectKeyPackage(kps.get(bob.name)!).signatureKey).toEqual(rotated.signaturePublicKey);
    const add = await alice.group.commit({ add: [kps.get(bob.name)!], groupInfo: true });
    alice.seen = await alice.ds.submit(alice.group.id, add.commit, { welcome: add.welcome, added: [bob.name], groupInfo: add.groupInfo });
    await alice.group.mergePendingCommit();
    const [w] = await bob.ds.welcomes();
    bob.group = await bob.client.joinFromWelcome(w!.welcome);
    bob.seen = alice.seen;
    await groupStillWorks([alice, bob], 'with the rotated key');
  });
  it('on a DS that verifies commits, a creator cannot opt its group out by declaring it eventual: 403 forbidden', async () => {
    const s = await server({ verifyCommits: true });
    const plaintext = { wireFormat: 'plaintext' as const };
    const [alice, bob, mallory] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`), dsPeer(s.url, `mallory-${tag}`)]);
    // An eventual group is never verified and its member list is the
    // committer's word: mallory could invite members who expect this DS's
    // checks, then drop any of them from the readers with a claimed `removed`.
    const g = await mallory.client.createGroup(mallory.identity, plaintext);
    for (const groupInfo of [undefined, await g.exportGroupInfo()]) {
      await expect(mallory.ds.createGroup(g.id, { epoch: 0, consistency: 'eventual', groupInfo })).rejects.toMatchObject({ reason: 'forbidden' });
    }
    expect(await s.ds.epoch(g.id)).toBeUndefined();
    // Strong groups are created and verified as before.
    alice.group = await alice.client.createGroup(alice.identity, plaintext);
    await alice.ds.createGroup(alice.group.id, { epoch: 0, groupInfo: await alice.group.exportGroupInfo() });
    await bob.ds.uploadKeyPackages([await bob.client.createKeyPackage(bob.identity)]);
    const kps = await alice.ds.fetchKeyPackages([bob.name]);
    const add = await alice.group.commit({ add: [...kps.values()], groupInfo: true });
    alice.seen = await alice.ds.submit(alice.group.id, add.commit, { welcome: add.welcome, groupInfo: add.groupInfo });
    await alice.group.mergePendingCommit();
    const [w] = await bob.ds.welcomes();
    bob.group = await bob.client.joinFromWelcome(w!.welcome, plaintext);
    bob.seen = alice.seen;
    await groupStillWorks([alice, bob], 'verified');
  });
  it("a paired device is no member: its external commit to a closed group of its anchor is refused (403 external-join-closed), so ceasing the pairing still ends its access", async () => {
    const s = await server();
    const [alice, bob, phone] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`), dsPeer(s.url, `alice-phone-${tag}`)]);
    await groupOf(alice, [bob]);
    const gid = alice.group!.id;
    expect(await alice.ds.initPairing(alice.name, phone.name)).toBe(false);
    expect(await phone.ds.initPairing(alice.name, phone.name)).toBe(true);
    // The device reads the GroupInfo (it may) and joins by an external
    // commit of its own. As a reader it skipped the external-join checks,
    // and `externalJoin` put it on the member list for good: ceasing the
    // pairing no longer ended its access.
    const joined = await phone.client.joinExternal(await phone.ds.groupInfo(gid), phone.identity);
    await expect(phone.ds.submit(gid, joined.commit, { externalJoin: true })).rejects.toMatchObject({ reason: 'external-join-closed' });
    expect(await s.ds.epoch(gid)).toBe(alice.group!.epoch);
    await phone.ds.ceasePairing(alice.name, phone.name);
    await expect(phone.ds.poll(gid, 0)).rejects.toMatchObject({ reason: 'not-a-member' });
    await groupStillWorks([alice, bob], 'after the device');
  });
  it('over TLS the per-address cap counts TCP connections, not finished handshakes: one address cannot take every socket by never saying hello', async () => {
    const tlsDir = mkdtempSync(join(tmpdir(), 'paired-mls-review-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(tlsDir, 'key.pem'), '-out', join(tlsDir, 'cert.pem')], { stdio: 'ignore' });
    const cert = readFileSync(join(tlsDir, 'cert.pem'));
    const s = await server({ tls: { cert, key: readFileSync(join(tlsDir, 'key.pem')) }, maxConnections: 30, maxConnectionsPerIp: 5 });
    const { port } = new URL(s.url);
    // The attacker (127.0.0.2) opens 40 TCP connections and sends nothing:
    // they used to be counted only once their handshake finished, so they
    // filled maxConnections (Node's TLS handshake timeout: 120 s).
    const closed: boolean[] = [];
    const sockets: Socket[] = [];
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => new Promise<void>((resolve) => {
        const sock = connect({ host: '127.0.0.1', port: Number(port), localAddress: '127.0.0.2' }, () => resolve());
        sock.on('error', () => resolve());
        sock.on('close', () => (closed[i] = true));
        sockets.push(sock);
      })),
    );
    await new Promise((r) => setTimeout(r, 300));
    expect(closed.filter(Boolean).length).toBe(35);
    // Another address is served.
    const status = await new Promise<number>((resolve) => {
      const req = httpsRequest(`${s.url}/healthz`, { ca: cert }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', () => resolve(0));
      req.end();
    });
    expect(status).toBe(200);
    for (const sock of sockets) sock.destroy();
  });
});

describe('review of the DS (PostgreSQL, two servers)', () => {
  let pair: PostgresPair;
  const tag = Math.random().toString(36).slice(2, 8);
  beforeAll(async () => {
    pair = await postgresPair();
  });
  afterAll(async () => pair?.close());

  it('two creations of one group id racing on two servers: one is 200, the other 409 group-exists; the winner is not overwritten', async () => {
    const { one, two } = pair;
    const [alice, mallory, bob] = await Promise.all([dsPeer(one.url, `alice-${tag}`), dsPeer(two.url, `mallory-${tag}`), dsPeer(one.url, `bob-${tag}`)]);
    const [ta, tm] = await Promise.all([tokenOf(one.url, alice.name, alice), tokenOf(two.url, mallory.name, mallory)]);
    // mallory knows the id alice is about to create (e.g. a deterministic one) and creates it at the same moment elsewhere.
    for (let round = 0; round < 10; round++) {
      const groupId = b64(new Uint8Array(16).map(() => Math.floor(Math.random() * 256)));
      const [a, m] = await Promise.all([raw(one.url, 'POST', '/v1/groups', { groupId }, ta), raw(two.url, 'POST', '/v1/groups', { groupId }, tm)]);
      const statuses = [a.status, m.status].sort();
      expect(statuses, `round ${round}`).toEqual([200, 409]);
      expect((a.status === 409 ? a : m).body.reason).toBe('group-exists');
      const winner = a.status === 200 ? alice.name : mallory.name;
      const record = await one.ds.store.getGroup(toHex(Buffer.from(groupId, 'base64')));
      expect(record?.members).toEqual([winner]);
    }
    await groupOf(alice, [bob]);
    await groupStillWorks([alice, bob], 'after the races');
  });
});
