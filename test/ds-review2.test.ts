/**
 * A second independent attacker's review of the networked DS and its AS,
 * after the fixes of test/ds-review: each test is an attack that succeeded
 * before its fix, against the real server on loopback (SQLite file;
 * PostgreSQL where the race is between servers), asserting the exact
 * refusal or bound and that the honest clients keep working.
 *
 * Attacks:
 * - a thief of a session key rotates it after (or while) the owner rotates:
 *   the losing rotation registered its key anyway (one request started
 *   before the owner's rotation and finished after it);
 * - after a rotation, a client's KeyPackages of the old key starved the new
 *   ones (a stale last-resort one shadowed the new last-resort one; 16
 *   stale one-time ones made a fetch return nothing).
 * - on a verifying DS a member fills the epoch with large header-valid
 *   proposals: every commit then read all of them into memory at once (the
 *   byte bound of pages did not hold across the epoch's proposals).
 * - an outsider registers one client (open to anyone) and then holds a
 *   4 MiB body on each of its address's 512 connections: the 64 KiB bound
 *   of the open routes did not bound what one address makes the server hold.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import { SqliteDeliveryStore } from 'paired-mls/server';
import { catchUpAll, dsPeer, groupOf, groupStillWorks, proof, raw, sqliteServers, tokenOf, type DsPeer } from './ds-helpers.js';
import { postgresPair, type PostgresPair } from './ds-postgres-pair.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/**
 * A request whose headers go now and whose body goes when `send()` is
 * called: the server runs the route (and its authentication) on the
 * headers, then waits for the body.
 */
function heldRequest(url: string, path: string, body: unknown, token: string): { send(): Promise<{ status: number; body: any }> } {
  const data = Buffer.from(JSON.stringify(body));
  let req!: import('node:http').ClientRequest;
  const answer = new Promise<{ status: number; body: any }>((resolve, reject) => {
    req = httpRequest(url + path, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': data.length, authorization: `Bearer ${token}` } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.flushHeaders();
  });
  return {
    send: () => {
      req.end(data);
      return answer;
    },
  };
}

describe('second review of the DS (SQLite)', () => {
  const server = sqliteServers('paired-mls-review2-');
  const tag = Math.random().toString(36).slice(2, 8);

  it("a thief's rotation that loses the race registers nothing: one started before the owner's rotation and finished after it is refused with 401 unauthenticated", async () => {
    const s = await server();
    const [alice, bob] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`)]);
    // A thief copied bob's signature key (PROTOCOL §8.4: whoever rotates first keeps the account).
    const thiefToken = await tokenOf(s.url, bob.name, bob);
    const thiefKey = await bob.client.createIdentity(bob.name, 1);
    const body = { ...(await proof(s.url, bob.name, { client: bob.client, identity: thiefKey })), userId: bob.name, identity: b64(thiefKey.identity), ciphersuite: 1 };
    // The thief's rotation is authenticated on its headers; its body follows
    // the owner's rotation. It registered the thief's key and only then
    // failed to revoke the (already revoked) old one: 404, key kept.
    const thief = heldRequest(s.url, '/v1/as/rotate', body, thiefToken);
    await new Promise((r) => setTimeout(r, 100));
    const ownerKey = await bob.client.createIdentity(bob.name, 1);
    await bob.ds.rotateKey(ownerKey);
    expect(await thief.send()).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    // Nothing of the thief's is bound: no session with its key.
    const bobToken = await tokenOf(s.url, bob.name, { client: bob.client, identity: ownerKey });
    expect(await raw(s.url, 'POST', '/v1/as/validate', { identity: b64(thiefKey.identity), signatureKey: b64(thiefKey.signaturePublicKey) }, bobToken)).toMatchObject({ status: 404, body: { reason: 'unknown-client' } });
    expect(await raw(s.url, 'POST', '/v1/auth/session', await proof(s.url, bob.name, { client: bob.client, identity: thiefKey }))).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    // Two rotations of one session at once: exactly one wins.
    const t1 = await tokenOf(s.url, bob.name, { client: bob.client, identity: ownerKey });
    const keys = [await bob.client.createIdentity(bob.name, 1), await bob.client.createIdentity(bob.name, 1)];
    const bodies = await Promise.all(keys.map(async (k) => ({ ...(await proof(s.url, bob.name, { client: bob.client, identity: k })), userId: bob.name, identity: b64(k.identity), ciphersuite: 1 })));
    const held = bodies.map((b) => heldRequest(s.url, '/v1/as/rotate', b, t1));
    await new Promise((r) => setTimeout(r, 100));
    const answers = await Promise.all(held.map((h) => h.send()));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 401]);
    const active = (await s.authentication.bindingsOf(bob.name)).filter((b) => !b.revoked);
    expect(active).toHaveLength(1);
    // bob, with the winning key, and alice still work together.
    const winner = keys[answers.findIndex((a) => a.status === 200)]!;
    expect(active[0]!.signatureKey).toEqual(winner.signaturePublicKey);
    alice.group = await alice.client.createGroup(alice.identity);
    await alice.ds.createGroup(alice.group.id, { epoch: alice.group.epoch });
    const bobDs = await (await import('paired-mls/services')).DeliveryClient.login(s.url, { clientId: bob.name, client: bob.client, identity: winner }, { WebSocket: (await import('ws')).WebSocket });
    await bobDs.uploadKeyPackages([await bob.client.createKeyPackage(winner)]);
    const kps = await alice.ds.fetchKeyPackages([bob.name]);
    const add = await alice.group.commit({ add: [...kps.values()], groupInfo: true });
    alice.seen = await alice.ds.submit(alice.group.id, add.commit, { welcome: add.welcome, added: [bob.name], groupInfo: add.groupInfo });
    await alice.group.mergePendingCommit();
    const [w] = await bobDs.welcomes();
    bob.group = await bob.client.joinFromWelcome(w!.welcome);
    bob.ds = bobDs;
    bob.seen = alice.seen;
    await groupStillWorks([alice, bob], 'after the rotations');
  });

  it("on a verifying DS the epoch's proposals read for a commit are bounded in bytes: a member's junk proposals past its share of 7 MiB are refused (too-many-proposals), those logged are read within the bound, and honest commits go on", async () => {
    // Counts the log bytes the server reads (the real SQLite store).
    class CountingStore extends SqliteDeliveryStore {
      read = 0;
      override async readLog(groupId: string, afterSeq: number, limit: number, maxBytes?: number) {
        const page = await super.readLog(groupId, afterSeq, limit, maxBytes);
        this.read += page.reduce((sum, m) => sum + m.bytes.length, 0);
        return page;
      }
      override async readProposals(groupId: string, afterSeq: number, limit: number, maxBytes?: number) {
        const page = await super.readProposals(groupId, afterSeq, limit, maxBytes);
        this.read += page.messages.reduce((sum, m) => sum + m.bytes.length, 0);
        return page;
      }
    }
    let store!: CountingStore;
    const s = await server({ verifyCommits: true }, (file) => (store = new CountingStore(file)));
    const plaintext = { wireFormat: 'plaintext' as const };
    const [alice, mallory] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `mallory-${tag}`)]);
    alice.group = await alice.client.createGroup(alice.identity, plaintext);
    const gid = alice.group.id;
    await alice.ds.createGroup(gid, { epoch: 0, groupInfo: await alice.group.exportGroupInfo() });
    await mallory.ds.uploadKeyPackages([await mallory.client.createKeyPackage(mallory.identity)]);
    const add = await alice.group.commit({ add: [...(await alice.ds.fetchKeyPackages([mallory.name])).values()], groupInfo: true });
    alice.seen = await alice.ds.submit(gid, add.commit, { welcome: add.welcome, groupInfo: add.groupInfo });
    await alice.group.mergePendingCommit();
    mallory.group = await mallory.client.joinFromWelcome((await mallory.ds.welcomes())[0]!.welcome, plaintext);
    mallory.seen = alice.seen;
    // mallory posts twelve 2.5 MiB "proposals": a PublicMessage header (member
    // sender, this epoch, content type proposal) and junk. The DS judges
    // proposals by their header; a commit's verification then read every
    // one of the epoch into memory at once (2,000 of 4 MiB: 8 GB). Now an
    // epoch holds no more proposals than a commit reads: members' stop at
    // 7 MiB of them (seven eighths of pageBytes), and each of the two
    // members may hold half of that, so mallory's second is refused.
    const epoch = alice.group.epoch;
    const refusals: unknown[] = [];
    for (let i = 0; i < 12; i++) {
      const head = [0, 1, 0, 1, gid.length, ...gid, ...new Uint8Array(new BigUint64Array([BigInt(epoch)]).buffer).reverse(), 1, 0, 0, 0, 1, 0, 2];
      const junk = new Uint8Array(2.5 * 1024 * 1024).fill(i + 1);
      junk.set(head);
      refusals.push(await mallory.ds.submit(gid, junk).then(() => undefined, (e: unknown) => (e as { reason?: string }).reason));
    }
    expect(refusals).toEqual([undefined, ...Array<string>(11).fill('too-many-proposals')]);
    // alice's commit still verifies, reading at most the epoch's first
    // pageBytes (8 MiB) of proposals, and one page beyond.
    store.read = 0;
    const update = await alice.group.commit({ groupInfo: true });
    alice.seen = await alice.ds.submit(gid, update.commit, { groupInfo: update.groupInfo });
    await alice.group.mergePendingCommit();
    expect(store.read).toBeGreaterThan(0);
    expect(store.read).toBeLessThanOrEqual(16 * 1024 * 1024);
    await catchUpAll(mallory);
    await groupStillWorks([alice, mallory], 'after the junk proposals');
  });

  it('the request bodies one address makes the server hold are bounded (maxBodyBytesPerIp): a registered client\'s third held 1 MiB body is refused with 429 rate-limited, others are served', async () => {
    const KiB = 1024;
    const s = await server({ maxBodyBytes: 1024 * KiB, maxBodyBytesPerIp: 2560 * KiB });
    const [alice, bob, mallory] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`), dsPeer(s.url, `mallory-${tag}`)]);
    const token = await tokenOf(s.url, mallory.name, mallory);
    // mallory (127.0.0.2) starts bodies of 1000 KiB and never finishes them:
    // each connection held up to maxBodyBytes, 512 per address (2 GiB with
    // the 4 MiB default), renewed every requestTimeout.
    const { port } = new URL(s.url);
    const answers: { status: number; reason?: string }[] = [];
    const requests = Array.from({ length: 4 }, (_, i) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: Number(port), localAddress: '127.0.0.2', path: '/v1/key-packages', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': 1000 * KiB, authorization: `Bearer ${token}` } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => (answers[i] = { status: res.statusCode ?? 0, reason: JSON.parse(Buffer.concat(chunks).toString('utf8')).reason }));
        },
      );
      req.on('error', () => undefined);
      return req;
    });
    for (const req of requests) {
      req.write('{"keyPackages":["' + 'A'.repeat(1000 * KiB - 20));
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(answers[0]).toBeUndefined();
    expect(answers[1]).toBeUndefined();
    expect(answers[2]).toEqual({ status: 429, reason: 'rate-limited' });
    expect(answers[3]).toEqual({ status: 429, reason: 'rate-limited' });
    // Another address is served, large bodies included.
    await groupOf(alice, [bob]);
    // Eight 700 KiB bodies one after the other (5.6 MiB, over the budget): each is given back when answered.
    for (let i = 0; i < 8; i++) alice.seen = await alice.ds.submit(alice.group!.id, await alice.group!.encrypt(new Uint8Array(700 * KiB)));
    await catchUpAll(bob);
    await groupStillWorks([alice, bob], 'while mallory holds bodies');
    // mallory's bytes are given back when her requests end.
    for (const req of requests) req.destroy();
    await new Promise((r) => setTimeout(r, 200));
    const again = await new Promise<number>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: Number(port), localAddress: '127.0.0.2', path: '/v1/welcomes', headers: { authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.end();
    });
    expect(again).toBe(200);
  });

  it("after a rotation the new key's KeyPackages are handed out: a stale last-resort one does not shadow the new one, nor 20 stale one-time ones the valid ones", async () => {
    const s = await server();
    const [alice, bob, carol] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`), dsPeer(s.url, `carol-${tag}`)]);
    // bob keeps only a last-resort KeyPackage; after rotating (hidden Paired
    // MLS rotates the anchor's key at every paired commit) he uploads the new
    // key's. The old one was first in line and skipped, so nobody got any
    // KeyPackage of bob until the old one expired (up to 90 days).
    await bob.ds.uploadKeyPackages([await bob.client.createKeyPackage(bob.identity, { lastResort: true })]);
    const bobNew = await bob.client.createIdentity(bob.name, 1);
    await bob.ds.rotateKey(bobNew);
    await bob.ds.uploadKeyPackages([await bob.client.createKeyPackage(bobNew, { lastResort: true })]);
    // carol had 20 one-time KeyPackages and a last-resort one; after her rotation she uploads one of each.
    await carol.ds.uploadKeyPackages([...(await carol.client.createKeyPackages(carol.identity, { count: 20 })), await carol.client.createKeyPackage(carol.identity, { lastResort: true })]);
    const carolNew = await carol.client.createIdentity(carol.name, 1);
    await carol.ds.rotateKey(carolNew);
    await carol.ds.uploadKeyPackages([await carol.client.createKeyPackage(carolNew), await carol.client.createKeyPackage(carolNew, { lastResort: true })]);
    const kps = await alice.ds.fetchKeyPackages([bob.name, carol.name]);
    expect([...kps.keys()].sort()).toEqual([bob.name, carol.name]);
    expect(alice.client.inspectKeyPackage(kps.get(bob.name)!).signatureKey).toEqual(bobNew.signaturePublicKey);
    expect(alice.client.inspectKeyPackage(kps.get(carol.name)!).signatureKey).toEqual(carolNew.signaturePublicKey);
    // And alice adds both.
    alice.group = await alice.client.createGroup(alice.identity);
    await alice.ds.createGroup(alice.group.id, { epoch: alice.group.epoch });
    const add = await alice.group.commit({ add: [...kps.values()], groupInfo: true });
    alice.seen = await alice.ds.submit(alice.group.id, add.commit, { welcome: add.welcome, added: [bob.name, carol.name], groupInfo: add.groupInfo });
    await alice.group.mergePendingCommit();
    for (const [p, id] of [[bob, bobNew], [carol, carolNew]] as const) {
      const [w] = await p.ds.welcomes();
      p.group = await p.client.joinFromWelcome(w!.welcome);
      p.seen = alice.seen;
      void id;
    }
    await catchUpAll(bob);
    await groupStillWorks([alice, bob, carol], 'with the rotated keys');
  });
});

describe('second review of the DS (PostgreSQL, two servers)', () => {
  let pair: PostgresPair;
  const tag = Math.random().toString(36).slice(2, 8);
  beforeAll(async () => {
    pair = await postgresPair();
  });
  afterAll(async () => pair?.close());

  it('two rotations from one key on two servers, both authenticated before either ran: exactly one registers its key, the other is 401 unauthenticated', async () => {
    const { one, two } = pair;
    const [alice, bob] = await Promise.all([dsPeer(one.url, `alice-${tag}`), dsPeer(one.url, `bob-${tag}`)]);
    for (let round = 0; round < 5; round++) {
      const current = (await one.authentication.bindingsOf(bob.name)).find((b) => !b.revoked)!;
      const identity = round === 0 ? bob.identity : (bob as DsPeer & { current?: DsPeer['identity'] }).current!;
      expect(current.signatureKey).toEqual(identity.signaturePublicKey);
      const urls = [one.url, two.url];
      const keys = [await bob.client.createIdentity(bob.name, 1), await bob.client.createIdentity(bob.name, 1)];
      const tokens = await Promise.all(urls.map((u) => tokenOf(u, bob.name, { client: bob.client, identity })));
      const bodies = await Promise.all(keys.map(async (k, i) => ({ ...(await proof(urls[i]!, bob.name, { client: bob.client, identity: k })), userId: bob.name, identity: b64(k.identity), ciphersuite: 1 })));
      const held = bodies.map((b, i) => heldRequest(urls[i]!, '/v1/as/rotate', b, tokens[i]!));
      await new Promise((r) => setTimeout(r, 100));
      const answers = await Promise.all(held.map((h) => h.send()));
      expect(answers.map((a) => a.status).sort(), `round ${round}`).toEqual([200, 401]);
      expect(answers.find((a) => a.status === 401)!.body.reason).toBe('unauthenticated');
      const active = (await two.authentication.bindingsOf(bob.name)).filter((b) => !b.revoked);
      const winner = keys[answers.findIndex((a) => a.status === 200)]!;
      expect(active.map((b) => b.signatureKey)).toEqual([winner.signaturePublicKey]);
      (bob as DsPeer & { current?: DsPeer['identity'] }).current = winner;
    }
    // alice is unaffected.
    alice.group = await alice.client.createGroup(alice.identity);
    await alice.ds.createGroup(alice.group.id, { epoch: alice.group.epoch });
    expect(await two.ds.epoch(alice.group.id)).toBe(alice.group.epoch);
  });
});
