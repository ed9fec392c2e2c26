/**
 * Reads of the copy's session that race the owner's guarded rotation (docs/PROTOCOL.md §8.4): a request
 * authenticated with the old key before the rotation whose read runs after it. Each interleaving is forced: the
 * store method of the read waits, once entered (the session checked), until the owner has rotated and the account's
 * peers have written something new; on PostgreSQL the rotation and the writes run at another server on the same
 * database. Before, each read returned what was stored when it ran:
 * - a poll: the messages posted after the rotation;
 * - a Welcome page: a Welcome of a group the account was added to after it (one the copy opens when the adder
 *   fetched one of its KeyPackages before);
 * - a GroupInfo: the group's state after the next commit (members, tree);
 * - the account's devices: the one it paired after;
 * - a stream: the page it read after the rotation (at another server, what was posted within a second);
 * - the list of its sole groups: a group the owner created after.
 * Fixed: a read's reply goes only while the session's key is still an active key of its client, checked after the
 * read (401 unauthenticated, nothing returned); a stream checks after each page it read, before pushing it.
 * The check was then made once for every GET, after the router, its refusals too: six routes asked by hand (a new
 * one could forget), and a poll refused 403 or 404 after the rotation went out as such.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { bytesEqual, toHex, utf8 } from 'paired-mls';
import { MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { holdNext, raw, registeredClient as peer, tokenOf } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';
import { copyAndOwnerAtOne, copyAndOwnerOnPostgres, guardedAccount, type CopyAndOwner } from './ds-guard-helpers.js';

const REVOKED_MEANWHILE = { reason: 'unauthenticated', error: 'the key this session was proven with was revoked meanwhile (unauthenticated)' };

/** Every GET route of a session, as docs/PROTOCOL.md §8.3 lists them; `{gid}`: a group of the session's client. */
const GET_ROUTES = ['/v1/as/guard', '/v1/groups:sole', '/v1/groups/{gid}/messages', '/v1/groups/{gid}/group-info', '/v1/welcomes', '/v1/pairings'];

/** The next call of `store[method]` answers only once `release()` is called; `reached` settles when it has read its answer. */
function holdAnswer(store: DeliveryStore, method: keyof DeliveryStore): { reached: Promise<void>; release(): void } {
  const s = store as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = s[method]!;
  let release!: () => void;
  let read!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const reached = new Promise<void>((r) => (read = r));
  s[method] = async (...args: unknown[]) => {
    delete s[method];
    const answer = await original.apply(store, args);
    read();
    await gate;
    return answer;
  };
  return { reached, release };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('reads racing the guarded rotation', () => {
  let postgres: PgServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  }, 60_000);
  afterAll(async () => postgres?.stop());
  const tmp = () => join(mkdtempSync(join(tmpdir(), 'paired-mls-read-race-')), 'ds.sqlite');
  const setups: [string, () => Promise<CopyAndOwner>][] = [
    ['memory', async () => copyAndOwnerAtOne(new MemoryDeliveryStore())],
    ['SQLite', async () => copyAndOwnerAtOne(new SqliteDeliveryStore(tmp()))],
    ['PostgreSQL, two servers', async () => copyAndOwnerOnPostgres(postgres.url)],
  ];
  const tag = () => Math.random().toString(36).slice(2, 8);

  /**
   * The guarded account alice in bob's group (added with one of two KeyPackages of its current key; bob holds the
   * other), the copy's session (alice's current key, at the copy's server), and the owner's rotation.
   */
  async function scene(ownerAt: RunningDeliveryServer, copyAt: RunningDeliveryServer) {
    const id = `alice-${tag()}`;
    const alice = await guardedAccount(ownerAt.url, id);
    const bob = await peer(ownerAt.url, `bob-${tag()}`);
    await alice.ds.uploadKeyPackages(await alice.client.createKeyPackages(alice.current, { count: 2 }));
    const bobGroup = await bob.client.createGroup(bob.identity);
    await bob.ds.createGroup(bobGroup.id, { epoch: 0, groupInfo: await bobGroup.exportGroupInfo() });
    const add = await bobGroup.commit({ add: [(await bob.ds.fetchKeyPackages([id])).get(id)!], groupInfo: true });
    const seen = await bob.ds.submit(bobGroup.id, add.commit, { welcome: add.welcome, added: [id], groupInfo: add.groupInfo });
    await bobGroup.mergePendingCommit();
    const [w] = await alice.ds.welcomes();
    const group = await alice.client.joinFromWelcome(w!.welcome);
    await alice.ds.ackWelcomes([w!.id]);
    const token = await tokenOf(copyAt.url, id, { client: alice.client, identity: alice.current });
    const rotate = async () => alice.ds.rotateKey(await alice.client.createIdentity(id, 1), { guard: alice.guard });
    return { id, alice, bob, bobGroup, group, seen, token, rotate, hex: toHex(bobGroup.id) };
  }

  it.each(setups)("%s: the copy's poll checked before the rotation and read after it is refused (401 unauthenticated) with no message; the owner's new key and bob read everything, the owner's own poll racing its rotation too", async (_, setup) => {
    const { store, ownerStore, copyAt, ownerAt, close } = await setup();
    try {
      const { alice, bob, bobGroup, group, seen, token, rotate, hex } = await scene(ownerAt, copyAt);
      const hold = holdNext(store, 'readLog');
      const read = raw(copyAt.url, 'GET', `/v1/groups/${hex}/messages?after=${seen}`, undefined, token);
      await hold.reached;
      await rotate();
      const seq = await bob.ds.submit(bobGroup.id, await bobGroup.encrypt('after the rotation'));
      hold.release();
      // Before: 200 with the message posted after the rotation (one the copy, a member until the paired update, reads).
      expect(await read).toEqual({ status: 401, body: REVOKED_MEANWHILE });
      const [m] = await alice.ds.poll(bobGroup.id, seen);
      const r = await group.process(m!.message);
      expect(r.kind === 'application' && utf8(r.data)).toBe('after the rotation');
      expect((await bob.ds.poll(bobGroup.id, seen)).map((x) => x.seq)).toEqual([seq]);
      // The owner's own read with the session it held when it rotated: refused once, its client logs in with the new key.
      const own = holdNext(ownerStore, 'readLog');
      const ownRead = alice.ds.poll(bobGroup.id, seen);
      await own.reached;
      await rotate();
      const later = await bob.ds.submit(bobGroup.id, await bobGroup.encrypt('after the second rotation'));
      own.release();
      expect((await ownRead).map((x) => x.seq)).toEqual([seq, later]);
    } finally {
      await close();
    }
  });

  it.each(setups)("%s: the copy's Welcome page checked before the rotation and read after it is refused (401 unauthenticated), though carol added the account with a KeyPackage the copy holds; the owner takes the Welcome and joins", async (_, setup) => {
    const { store, copyAt, ownerAt, close } = await setup();
    try {
      const { id, alice, token, rotate } = await scene(ownerAt, copyAt);
      // carol holds one of the account's KeyPackages of the current key, fetched before the rotation.
      const carol = await peer(ownerAt.url, `carol-${tag()}`);
      const kp = (await carol.ds.fetchKeyPackages([id])).get(id)!;
      const hold = holdNext(store, 'pendingWelcomes');
      const read = raw(copyAt.url, 'GET', '/v1/welcomes', undefined, token);
      await hold.reached;
      await rotate();
      const other = await carol.client.createGroup(carol.identity);
      await carol.ds.createGroup(other.id, { epoch: 0 });
      const add = await other.commit({ add: [kp] });
      await carol.ds.submit(other.id, add.commit, { welcome: add.welcome, added: [id] });
      await other.mergePendingCommit();
      hold.release();
      // Before: 200 with that Welcome, which the copy opens (it holds the KeyPackage's private keys, as the owner below).
      expect(await read).toEqual({ status: 401, body: REVOKED_MEANWHILE });
      const [w] = await alice.ds.welcomes();
      expect(w!.groupId).toBe(toHex(other.id));
      const joined = await alice.client.joinFromWelcome(w!.welcome);
      const seq = await carol.ds.submit(other.id, await other.encrypt('welcome'));
      const r = await joined.process((await alice.ds.poll(other.id, seq - 1))[0]!.message);
      expect(r.kind === 'application' && utf8(r.data)).toBe('welcome');
    } finally {
      await close();
    }
  });

  it.each(setups)("%s: the copy's GroupInfo fetch checked before the rotation and read after it is refused (401 unauthenticated); the owner's new key and bob get the new epoch's", async (_, setup) => {
    const { store, copyAt, ownerAt, close } = await setup();
    try {
      const { alice, bob, bobGroup, group, seen, token, rotate, hex } = await scene(ownerAt, copyAt);
      const hold = holdNext(store, 'getGroup');
      const read = raw(copyAt.url, 'GET', `/v1/groups/${hex}/group-info`, undefined, token);
      await hold.reached;
      await rotate();
      const update = await bobGroup.selfUpdate({ groupInfo: true });
      await bob.ds.submit(bobGroup.id, update.commit, { groupInfo: update.groupInfo });
      await bobGroup.mergePendingCommit();
      hold.release();
      // Before: 200 with the GroupInfo of bob's commit after the rotation.
      expect(await read).toEqual({ status: 401, body: REVOKED_MEANWHILE });
      expect(bytesEqual(await alice.ds.groupInfo(bobGroup.id), update.groupInfo!)).toBe(true);
      expect(bytesEqual(await bob.ds.groupInfo(bobGroup.id), update.groupInfo!)).toBe(true);
      const r = await group.process((await alice.ds.poll(bobGroup.id, seen))[0]!.message);
      if (r.kind === 'commit') await r.staged.merge();
      expect(group.epoch).toBe(bobGroup.epoch);
    } finally {
      await close();
    }
  });

  it.each(setups)("%s: the copy's read of the account's devices checked before the rotation and read after it is refused (401 unauthenticated), as its guard step; the owner's new key reads both", async (_, setup) => {
    const { store, copyAt, ownerAt, close } = await setup();
    try {
      const { id, alice, token, rotate } = await scene(ownerAt, copyAt);
      const hold = holdNext(store, 'devicesOf');
      const read = raw(copyAt.url, 'GET', '/v1/pairings', undefined, token);
      await hold.reached;
      await rotate();
      const phoneId = `phone-${tag()}`;
      const phone = await peer(ownerAt.url, phoneId);
      expect(await alice.ds.initPairing(id, phoneId)).toBe(false);
      expect(await phone.ds.initPairing(id, phoneId)).toBe(true);
      hold.release();
      // Before: 200 with the device paired after the rotation.
      expect(await read).toEqual({ status: 401, body: REVOKED_MEANWHILE });
      expect(await alice.ds.devices()).toEqual([phoneId]);
      // The guard step (nothing the copy could not guess, but a read like the others), with a session of the key now.
      const stepBefore = await alice.ds.guardStep();
      const copy2 = await tokenOf(copyAt.url, id, { client: alice.client, identity: alice.client.identities().at(-1)! });
      const guard = holdNext(store, 'rotationGuard');
      const step = raw(copyAt.url, 'GET', '/v1/as/guard', undefined, copy2);
      await guard.reached;
      await rotate();
      guard.release();
      expect(await step).toEqual({ status: 401, body: REVOKED_MEANWHILE });
      expect(await alice.ds.guardStep()).toBe(stepBefore! + 1);
    } finally {
      await close();
    }
  });

  it.each(setups)("%s: the copy's list of the account's sole groups checked before the rotation and read after it is refused (401 unauthenticated): it does not learn the id of a group the owner creates after; the owner's new key lists it", async (_, setup) => {
    const { store, copyAt, ownerAt, close } = await setup();
    try {
      const { alice, token, rotate } = await scene(ownerAt, copyAt);
      const hold = holdNext(store, 'soleGroups');
      const read = raw(copyAt.url, 'GET', '/v1/groups:sole', undefined, token);
      await hold.reached;
      await rotate();
      const own = await alice.client.createGroup(alice.client.identities().at(-1)!);
      await alice.ds.createGroup(own.id, { epoch: 0, groupInfo: await own.exportGroupInfo() });
      hold.release();
      // Before: 200 listing the group created after the rotation.
      expect(await read).toEqual({ status: 401, body: REVOKED_MEANWHILE });
      expect((await alice.ds.soleGroups()).groupIds.map(toHex)).toEqual([toHex(own.id)]);
    } finally {
      await close();
    }
  });

  it.each(setups)("%s: the copy's stream pushes nothing of a page read after the rotation and ends (1008 unauthenticated); bob's stream gets every message", async (_, setup) => {
    const { store, copyAt, ownerAt, close } = await setup();
    try {
      const { bob, bobGroup, seen, token, rotate, hex } = await scene(ownerAt, copyAt);
      const frames: number[] = [];
      const ws = new WebSocket(`${copyAt.url.replace('http', 'ws')}/v1/stream?group=${hex}&after=${seen}&access_token=${token}`);
      ws.on('message', (d) => frames.push((JSON.parse(String(d)) as { seq: number }).seq));
      const ended = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: String(reason) })));
      await new Promise((r) => ws.once('open', r));
      const bobFrames: number[] = [];
      const stopBob = bob.ds.stream(bobGroup.id, seen, (m) => bobFrames.push(m.seq));
      const before = await bob.ds.submit(bobGroup.id, await bobGroup.encrypt('before the rotation'));
      while (!frames.includes(before)) await sleep(10);
      // The next message wakes the stream (its key checked less than a second ago); its read waits while the owner rotates.
      const hold = holdNext(store, 'readLog');
      const racing = await bob.ds.submit(bobGroup.id, await bobGroup.encrypt('as the owner rotates'));
      await hold.reached;
      await rotate();
      const after = await bob.ds.submit(bobGroup.id, await bobGroup.encrypt('after the rotation'));
      hold.release();
      // Before: the page [racing, after] was pushed (at another server the stream then stayed open).
      expect(await Promise.race([ended, sleep(3000).then(() => 'still open')])).toEqual({ code: 1008, reason: 'unauthenticated' });
      expect(frames).toEqual([before]);
      while (bobFrames.length < 3) await sleep(10);
      expect(bobFrames).toEqual([before, racing, after]);
      stopBob();
    } finally {
      await close();
    }
  });

  it.each(setups)("%s: the copy's own account, paired as the account's device before the rotation (which drops the pairing), reads nothing posted after it: a poll and a stream authorised by the pairing before and reading after (403, 1008 not-a-member); a device the owner pairs after reads all", async (_, setup) => {
    const { store, copyAt, ownerAt, close } = await setup();
    try {
      const { id, alice, bob, bobGroup, seen, token, rotate, hex } = await scene(ownerAt, copyAt);
      const mallory = await peer(copyAt.url, `mallory-${tag()}`);
      const dev = mallory.ds.clientId!;
      expect((await raw(copyAt.url, 'POST', '/v1/pairings', { anchor: id, device: dev }, token)).body).toEqual({ accepted: false });
      expect(await mallory.ds.initPairing(id, dev)).toBe(true);
      const devToken = await tokenOf(copyAt.url, dev, mallory);
      const frames: number[] = [];
      const ws = new WebSocket(`${copyAt.url.replace('http', 'ws')}/v1/stream?group=${hex}&after=${seen}&access_token=${devToken}`);
      ws.on('message', (d) => frames.push((JSON.parse(String(d)) as { seq: number }).seq));
      const ended = new Promise<{ code: number; reason: string }>((r) => ws.on('close', (code, reason) => r({ code, reason: String(reason) })));
      await new Promise((r) => ws.once('open', r));
      const before = await bob.ds.submit(bobGroup.id, await bobGroup.encrypt('before the rotation'));
      while (!frames.includes(before)) await sleep(10);
      // The stream's read (woken by the next message) and a poll, both past the pairing check, wait while the owner rotates.
      const hold = holdNext(store, 'readLog', 2);
      const racing = await bob.ds.submit(bobGroup.id, await bobGroup.encrypt('as the owner rotates'));
      const read = raw(copyAt.url, 'GET', `/v1/groups/${hex}/messages?after=${before}`, undefined, devToken);
      await hold.reached;
      await rotate();
      const after = await bob.ds.submit(bobGroup.id, await bobGroup.encrypt('after the rotation'));
      hold.release();
      // Before: 200 with [racing, after], and the stream pushed both (the device's own key was never rotated).
      expect(await read).toEqual({ status: 403, body: { reason: 'not-a-member', error: 'the pairing this device reads by ended meanwhile (not-a-member)' } });
      expect(await Promise.race([ended, sleep(3000).then(() => 'still open')])).toEqual({ code: 1008, reason: 'not-a-member' });
      expect(frames).toEqual([before]);
      const phoneId = `phone-${tag()}`;
      const phone = await peer(ownerAt.url, phoneId);
      expect(await alice.ds.initPairing(id, phoneId)).toBe(false);
      expect(await phone.ds.initPairing(id, phoneId)).toBe(true);
      for (const reader of [phone.ds, alice.ds, bob.ds]) expect((await reader.poll(bobGroup.id, seen)).map((m) => m.seq)).toEqual([before, racing, after]);
    } finally {
      await close();
    }
  });

  it.each(setups)("%s: every GET route, and a GET of no route, authenticated before the rotation and run after it is refused (401 unauthenticated): one check after the router, whatever the route; the owner's new key reads each", async (_, setup) => {
    const { store, copyAt, ownerAt, close } = await setup();
    try {
      const { id, alice, bob, bobGroup, seen, token, rotate, hex } = await scene(ownerAt, copyAt);
      const step = await alice.ds.guardStep();
      // The list is the documented one, and the router serves each of its routes to a session (none is 404 not-found).
      const documented = readFileSync(new URL('../docs/PROTOCOL.md', import.meta.url), 'utf8').match(/^\| `GET \/v1\/[^`?]*/gm)!.map((row) => row.slice(7));
      expect(GET_ROUTES.slice().sort()).toEqual(documented.sort());
      const paths = [...GET_ROUTES.map((route) => route.replace('{gid}', hex)), '/v1/no-such-route'];
      for (const path of paths) expect(await raw(copyAt.url, 'GET', path, undefined, token)).toMatchObject(path.endsWith('no-such-route') ? { status: 404, body: { reason: 'not-found' } } : { status: 200 });
      for (const path of paths) {
        // The copy's session is checked (its key looked up) before the owner rotates; the route runs after.
        const copy = await tokenOf(copyAt.url, id, { client: alice.client, identity: alice.client.identities().at(-1)! });
        const hold = holdAnswer(store, 'bindingByKey');
        const read = raw(copyAt.url, 'GET', path, undefined, copy);
        await hold.reached;
        await rotate();
        hold.release();
        // Before, no-such-route: 404 not-found (a route without its own check went out unchecked).
        expect([path, await read]).toEqual([path, { status: 401, body: REVOKED_MEANWHILE }]);
      }
      const seq = await bob.ds.submit(bobGroup.id, await bobGroup.encrypt('after the rotations'));
      expect((await alice.ds.poll(bobGroup.id, seen)).map((m) => m.seq)).toEqual([seq]);
      expect(bytesEqual(await alice.ds.groupInfo(bobGroup.id), (await bob.ds.groupInfo(bobGroup.id))!)).toBe(true);
      expect([await alice.ds.welcomes(), await alice.ds.devices(), (await alice.ds.soleGroups()).groupIds]).toEqual([[], [], []]);
      expect(await alice.ds.guardStep()).toBe(step! + paths.length);
    } finally {
      await close();
    }
  });

  it.each(setups)("%s: a GET refused after the rotation is 401 unauthenticated too, not its refusal: a GroupInfo the DS does not hold (not 404), a poll of a group the account is not in (not 403) or of none (not 404); honest parties go on", async (_, setup) => {
    const { store, copyAt, ownerAt, close } = await setup();
    try {
      const { id, alice, bob, bobGroup, group, seen, rotate } = await scene(ownerAt, copyAt);
      const own = await alice.client.createGroup(alice.client.identities().at(-1)!);
      await alice.ds.createGroup(own.id, { epoch: 0 });
      const other = await bob.client.createGroup(bob.identity);
      await bob.ds.createGroup(other.id, { epoch: 0 });
      const refusals: [string, number, string][] = [
        [`/v1/groups/${toHex(own.id)}/group-info`, 404, 'unknown-group'],
        [`/v1/groups/${toHex(other.id)}/messages`, 403, 'not-a-member'],
        [`/v1/groups/${'ab'.repeat(16)}/messages`, 404, 'unknown-group'],
      ];
      for (const [path, status, reason] of refusals) {
        const copy = await tokenOf(copyAt.url, id, { client: alice.client, identity: alice.client.identities().at(-1)! });
        expect(await raw(copyAt.url, 'GET', path, undefined, copy)).toMatchObject({ status, body: { reason } });
        const hold = holdNext(store, 'getGroup');
        const read = raw(copyAt.url, 'GET', path, undefined, copy);
        await hold.reached;
        await rotate();
        hold.release();
        // Before: the GroupInfo's 401 came before its 404 already; the polls went out 403 and 404.
        expect([path, await read]).toEqual([path, { status: 401, body: REVOKED_MEANWHILE }]);
      }
      // The owner's new key gets each refusal as such.
      await expect(alice.ds.groupInfo(own.id)).rejects.toMatchObject({ reason: 'unknown-group' });
      await expect(alice.ds.poll(other.id, 0)).rejects.toMatchObject({ reason: 'not-a-member' });
      const seq = await bob.ds.submit(bobGroup.id, await bobGroup.encrypt('after the refusals'));
      const r = await group.process((await alice.ds.poll(bobGroup.id, seen))[0]!.message);
      expect(r.kind === 'application' && utf8(r.data)).toBe('after the refusals');
      expect((await bob.ds.poll(bobGroup.id, seen)).map((m) => m.seq)).toEqual([seq]);
    } finally {
      await close();
    }
  });

  it("SQLite: a deployment hook's session holds no key, so no rotation ends it; its poll read after its client's revocation is refused (401 unauthenticated) with no message", async () => {
    const store = new SqliteDeliveryStore(tmp());
    const server = await startDeliveryServer({ port: 0, store, authenticate: (req) => (typeof req.headers['x-client'] === 'string' ? req.headers['x-client'] : undefined) });
    try {
      const dave = await peer(server.url, `dave-${tag()}`);
      const bob = await peer(server.url, `bob-${tag()}`);
      await dave.ds.uploadKeyPackages([await dave.client.createKeyPackage(dave.identity)]);
      const group = await bob.client.createGroup(bob.identity);
      await bob.ds.createGroup(group.id, { epoch: 0 });
      const add = await group.commit({ add: [(await bob.ds.fetchKeyPackages([dave.ds.clientId!])).get(dave.ds.clientId!)!] });
      const seen = await bob.ds.submit(group.id, add.commit, { welcome: add.welcome, added: [dave.ds.clientId!] });
      await group.mergePendingCommit();
      const poll = () => fetch(`${server.url}/v1/groups/${toHex(group.id)}/messages?after=${seen}`, { headers: { 'x-client': dave.ds.clientId! } }).then(async (res) => ({ status: res.status, body: await res.json() }));
      const hold = holdNext(store, 'readLog');
      const read = poll();
      await hold.reached;
      await server.authentication.revoke(dave.ds.clientId!);
      const seq = await bob.ds.submit(group.id, await group.encrypt('after the revocation'));
      hold.release();
      // Before: 200 with the message posted after the revocation.
      expect(await read).toEqual({ status: 401, body: { reason: 'unauthenticated', error: 'this client was revoked meanwhile' } });
      expect(await poll()).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
      expect((await bob.ds.poll(group.id, seen)).map((m) => m.seq)).toEqual([seq]);
    } finally {
      await server.close();
    }
  });
});
