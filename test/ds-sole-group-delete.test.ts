/**
 * A stolen copy of a device's state (the account's DS key before the owner's guarded rotation, docs/PROTOCOL.md §4.0,
 * §8.4) creates groups in the account's name (only member: the account) and logs messages in them until the account's
 * storage quota is full. Before: group records were kept for good and the messages until retention pruned them (never,
 * in a group nobody else posts to), so after the rotation the owner stayed 429 `quota-exceeded` for good. Fixed:
 * `DELETE /v1/groups/{gid}` (only by the group's only member; everything the group stored goes in one transaction, each
 * part given back to whom it counted for) and `GET /v1/groups:sole` (the groups whose only member is the session's
 * client), with which the owner finds and deletes the copy's groups itself. A deleted id is kept for its last member.
 * Real servers on loopback, SQLite and PostgreSQL (two servers on one database for the races).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import pg from 'pg';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MlsClient, toHex, type Group, type Identity } from 'paired-mls';
import { DeliveryClient, MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer, type DeliveryServerOptions, type RunningDeliveryServer } from 'paired-mls/server';
import { catchUp, dsPeer, groupOf, groupStillWorks, holdNext, raw, tokenOf, upgrade, verifyingServerOptions, type DsPeer } from './ds-helpers.js';
import { dsRefusal, guardedAccount } from './ds-guard-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const tag = () => Math.random().toString(36).slice(2, 8);
const QUOTA = 8192;
const NOT_THE_ONLY_MEMBER = { status: 403, body: { reason: 'forbidden', error: "only a group's only member may delete it (a paired device is no member) (forbidden)" } };
const OTHER_MEMBERS = { reason: 'forbidden', message: 'this group has other members: it is theirs too (forbidden)' };
const UNKNOWN = { status: 404, body: { reason: 'unknown-group', error: 'no such group (unknown-group)' } };

/** The next call of `store[method]`, once entered, waits for `release()`; `reached` settles when it is entered. */
/** Every id of the groups whose only member is `ds`'s client, page by page. */
async function allSole(ds: DeliveryClient): Promise<string[]> {
  const ids: string[] = [];
  for (let after = ''; ; ) {
    const page = await ds.soleGroups(after);
    ids.push(...page.groupIds.map(toHex));
    if (page.next === undefined) return ids;
    after = page.next;
  }
}

/** `p`'s own group (only member: `p`), registered at its DS with one message logged. */
async function soleGroup(p: { client: MlsClient; identity: Identity; ds: DeliveryClient }, options: { open?: boolean } = {}): Promise<Group> {
  const group = await p.client.createGroup(p.identity);
  await p.ds.createGroup(group.id, options.open ? { epoch: 0, groupInfo: await group.exportGroupInfo(), externalJoin: true } : { epoch: 0 });
  await p.ds.submit(group.id, await group.encrypt('mine'));
  return group;
}

describe('deleting a group whose only member is the client (PROTOCOL §8.3)', () => {
  let postgres: PgServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  }, 60_000);
  afterAll(async () => postgres?.stop());

  /** One server (SQLite), or two on one PostgreSQL database; `stores[i]` is `servers[i]`'s. */
  type Setup = { servers: RunningDeliveryServer[]; stores: DeliveryStore[]; close(): Promise<void> };
  /** `options`: each server's (a factory: a verifying server's keys are wiped once imported). */
  type Options = Partial<DeliveryServerOptions> | (() => Partial<DeliveryServerOptions>);
  const each = (o: Options) => (typeof o === 'function' ? o() : o);
  const setups: [string, (options?: Options) => Promise<Setup>][] = [
    [
      'SQLite',
      async (options = {}) => {
        const store = new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-sole-delete-')), 'ds.sqlite'));
        const s = await startDeliveryServer({ port: 0, store, ...each(options) });
        return { servers: [s, s], stores: [store, store], close: async () => (await s.close(), store.close()) };
      },
    ],
    [
      'PostgreSQL, two servers',
      async (options = {}) => {
        const stores = [await PostgresDeliveryStore.connect(postgres.url), await PostgresDeliveryStore.connect(postgres.url)];
        const servers = [await startDeliveryServer({ port: 0, store: stores[0]!, ...each(options) }), await startDeliveryServer({ port: 0, store: stores[1]!, ...each(options) })];
        return { servers, stores, close: async () => void (await Promise.all(servers.map((s) => s.close())), await Promise.all(stores.map((s) => s.close()))) };
      },
    ],
  ];

  it.each(setups)("%s: the copy fills the account's quota with groups and messages; after the guarded rotation the owner (429 quota-exceeded) finds and deletes them itself, and posts again", async (_, setup) => {
    const { servers, stores, close } = await setup({ maxStoredBytesPerClient: QUOTA });
    try {
      const [one, two] = servers;
      const id = `alice-${tag()}`;
      const full = { reason: 'quota-exceeded', message: `${id} is at its quota of bytes (quota-exceeded)` };
      const alice = await guardedAccount(one!.url, id);
      const own = await soleGroup({ ...alice, identity: alice.current });
      const before = (await stores[0]!.usage(id)).bytes;
      // The copy: the device's stored state (the account's current key) in a client of its own, logged in at the other server.
      const thief = await MlsClient.open();
      const stolen = await thief.importIdentity(new TextEncoder().encode(id), alice.client.exportSignatureKeyPair(alice.current), 1);
      const copy = await DeliveryClient.login(two!.url, { clientId: id, client: thief, identity: stolen });
      const copyToken = await tokenOf(two!.url, id, { client: thief, identity: stolen });
      // A group of its own (the account its only member) with messages until the quota refuses one, then more groups.
      const junk = await thief.createGroup(stolen);
      await copy.createGroup(junk.id, { epoch: 0 });
      let refused: unknown;
      while (!refused) refused = await copy.submit(junk.id, await junk.encrypt('x'.repeat(600))).then(() => undefined, (e: unknown) => e);
      expect(await dsRefusal(Promise.reject(refused))).toEqual(full);
      const made: string[] = [toHex(junk.id)];
      for (;;) {
        const gid = crypto.getRandomValues(new Uint8Array(16));
        const r = await raw(two!.url, 'POST', '/v1/groups', { groupId: b64(gid), epoch: 0 }, copyToken);
        if (r.status !== 200) {
          expect(r).toEqual({ status: 429, body: { reason: 'quota-exceeded', error: full.message } });
          break;
        }
        made.push(toHex(gid));
      }
      expect(made.length).toBeGreaterThan(1);
      const filled = (await stores[0]!.usage(id)).bytes;
      // The owner's guarded rotation ends the copy: its session is 401, also for a deletion.
      const rotated = await alice.client.createIdentity(id, 1);
      await alice.ds.rotateKey(rotated, { guard: alice.guard });
      const rotation = (await stores[0]!.usage(id)).bytes - filled;
      expect(await raw(two!.url, 'DELETE', `/v1/groups/${made[1]}`, undefined, copyToken)).toEqual({
        status: 401,
        body: { reason: 'unauthenticated', error: 'authenticate first (POST /v1/auth/challenge, then /v1/auth/session)' },
      });
      // The owner, alone on the account, is refused for the copy's bytes: before, for good.
      expect(await dsRefusal(alice.ds.submit(own.id, await own.encrypt('refused')))).toEqual(full);
      // It lists the groups it is the only member of, and deletes those its own state does not hold (the copy's).
      const mine = new Set(alice.client.groupIds().map(toHex));
      const listed = await allSole(alice.ds);
      expect(listed).toEqual([toHex(own.id), ...made].sort());
      for (const gid of listed.filter((g) => !mine.has(g))) await alice.ds.deleteGroup(Buffer.from(gid, 'hex'));
      // Every byte the copy stored is given back, exactly; nothing of its groups is left to read.
      expect((await stores[1]!.usage(id)).bytes).toBe(before + rotation);
      const ownerToken = await tokenOf(one!.url, id, { client: alice.client, identity: rotated });
      for (const gid of made) {
        expect(await stores[1]!.readLog(gid, 0, 100)).toEqual([]);
        expect(await raw(one!.url, 'GET', `/v1/groups/${gid}/messages`, undefined, ownerToken)).toEqual(UNKNOWN);
      }
      expect(await allSole(alice.ds)).toEqual([toHex(own.id)]);
      // The owner posts again, in its own group, which kept its log.
      expect(await alice.ds.submit(own.id, await own.encrypt('after'))).toBe(2);
      expect((await alice.ds.poll(own.id)).map((m) => m.seq)).toEqual([1, 2]);
    } finally {
      await close();
    }
  });

  it.each(setups)('%s: a deleted id is its last member\'s (its streams end): anyone else registering it is 409 group-deleted, the member registers it again (counted again); it is listed no more and deleted once', async (_, setup) => {
    const { servers, stores, close } = await setup();
    try {
      const [one, two] = servers;
      const [alice, bob] = [await dsPeer(one!.url, `alice-${tag()}`), await dsPeer(two!.url, `bob-${tag()}`)];
      const base = (await stores[0]!.usage(alice.name)).bytes;
      const group = await soleGroup(alice);
      // Her stream of it (at the other server) ends with the deletion: it would have waited for good on a log gone.
      const { ws } = await upgrade(two!.url, `/v1/stream?group=${toHex(group.id)}&after=1&access_token=${await tokenOf(two!.url, alice.name, alice)}`);
      const closed = new Promise<[number, string]>((resolve) => ws!.on('close', (code, reason) => resolve([code, String(reason)])));
      await alice.ds.deleteGroup(group.id);
      expect(await Promise.race([closed, new Promise((r) => setTimeout(() => r('still open'), 5000))])).toEqual([1008, 'unknown-group']);
      expect((await stores[1]!.usage(alice.name)).bytes).toBe(base);
      expect(await allSole(alice.ds)).toEqual([]);
      const gid = toHex(group.id);
      const bobToken = await tokenOf(two!.url, bob.name, bob);
      expect(await raw(two!.url, 'POST', '/v1/groups', { groupId: b64(group.id), epoch: 0 }, bobToken)).toEqual({
        status: 409,
        body: { reason: 'group-deleted', error: 'this group id was deleted by its last member: only that client may register it again (group-deleted)' },
      });
      const aliceToken = await tokenOf(one!.url, alice.name, alice);
      expect(await raw(one!.url, 'DELETE', `/v1/groups/${gid}`, undefined, aliceToken)).toEqual(UNKNOWN);
      expect(await raw(one!.url, 'GET', `/v1/groups/${gid}/messages`, undefined, aliceToken)).toEqual(UNKNOWN);
      // Its last member registers it again: a new group from epoch 0, counted again, and deleted again.
      await alice.client.deleteGroup(group.id);
      const fresh = await alice.client.createGroup(alice.identity, { groupId: group.id });
      await alice.ds.createGroup(fresh.id, { epoch: 0 });
      expect(await alice.ds.submit(fresh.id, await fresh.encrypt('again'))).toBe(1);
      expect((await stores[0]!.usage(alice.name)).bytes).toBeGreaterThan(base + 256);
      expect(await allSole(alice.ds)).toEqual([gid]);
      await alice.ds.deleteGroup(fresh.id);
      expect((await stores[1]!.usage(alice.name)).bytes).toBe(base);
    } finally {
      await close();
    }
  });

  it.each(setups)('%s: refused: a non-member, a member of a two-member group, a paired device (403 forbidden); the group is untouched and works', async (_, setup) => {
    const { servers, close } = await setup();
    try {
      const [one, two] = servers;
      const t = tag();
      const [alice, bob, dev] = [await dsPeer(one!.url, `alice-${t}`), await dsPeer(two!.url, `bob-${t}`), await dsPeer(two!.url, `dev-${t}`)];
      const sole = await soleGroup(alice);
      const gid = toHex(sole.id);
      // A non-member (any registered client), and alice's paired device, which reads her group but is no member.
      expect(await raw(two!.url, 'DELETE', `/v1/groups/${gid}`, undefined, await tokenOf(two!.url, bob.name, bob))).toEqual(NOT_THE_ONLY_MEMBER);
      await alice.ds.initPairing(alice.name, dev.name);
      expect(await dev.ds.initPairing(alice.name, dev.name)).toBe(true);
      expect((await dev.ds.poll(sole.id)).length).toBe(1);
      expect(await raw(two!.url, 'DELETE', `/v1/groups/${gid}`, undefined, await tokenOf(two!.url, dev.name, dev))).toEqual(NOT_THE_ONLY_MEMBER);
      expect(await allSole(alice.ds)).toEqual([gid]);
      // A member of a group with another member: it is the other's too.
      const carol = await dsPeer(one!.url, `carol-${t}`);
      await groupOf(alice, [carol]);
      expect(await dsRefusal(alice.ds.deleteGroup(alice.group!.id))).toEqual(OTHER_MEMBERS);
      expect(await dsRefusal(carol.ds.deleteGroup(alice.group!.id))).toEqual(OTHER_MEMBERS);
      await groupStillWorks([alice, carol], 'still ours');
      // An unknown id.
      expect(await raw(one!.url, 'DELETE', `/v1/groups/${toHex(crypto.getRandomValues(new Uint8Array(16)))}`, undefined, await tokenOf(one!.url, alice.name, alice))).toEqual(UNKNOWN);
      expect((await alice.ds.poll(sole.id)).length).toBe(1);
    } finally {
      await close();
    }
  });

  it.each(setups)('%s, verifying: a reserved successor id of two members is refused (403 forbidden), and its record moves to the member registering it; one of the account alone, and its retired group, are deleted and their quota given back', async (_, setup) => {
    const { servers, stores, close } = await setup(await verifyingServerOptions());
    try {
      const [one, two] = servers;
      const t = tag();
      const [alice, bob] = [await dsPeer(one!.url, `alice-${t}`), await dsPeer(two!.url, `bob-${t}`)];
      // Shared: alice and bob's group retired by a ReInit reserves its successor id for both.
      await groupOf(alice, [bob], { open: true });
      const shared = crypto.getRandomValues(new Uint8Array(16));
      const reinit = await alice.group!.commitReInit({ ciphersuite: 1, groupId: shared });
      await alice.ds.submit(alice.group!.id, reinit.commit, { groupInfo: reinit.groupInfo });
      await alice.group!.mergePendingCommit();
      expect(await dsRefusal(alice.ds.deleteGroup(shared))).toEqual(OTHER_MEMBERS);
      // bob registers it (the successor): the reservation's record, counted for alice (the ReInit's committer), is his
      // group's now; before, it stayed alice's for good. His successor alone, he deletes it: nothing is left counted.
      await catchUp(bob);
      const [aliceHeld, bobHeld] = [(await stores[0]!.usage(alice.name)).bytes, (await stores[0]!.usage(bob.name)).bytes];
      const successor = await bob.client.createReInitSuccessor(bob.group!, bob.identity, [], { wireFormat: 'plaintext' });
      const info = await successor.group.exportGroupInfo();
      await bob.ds.createGroup(shared, { epoch: 0, groupInfo: info });
      expect([(await stores[1]!.usage(alice.name)).bytes, (await stores[1]!.usage(bob.name)).bytes]).toEqual([aliceHeld - 256, bobHeld + 256 + info.length]);
      await bob.ds.deleteGroup(shared);
      expect([(await stores[1]!.usage(alice.name)).bytes, (await stores[1]!.usage(bob.name)).bytes]).toEqual([aliceHeld - 256, bobHeld]);
      // Alone: a group of alice's only, retired by her ReInit; its successor id reserved for her, counted for her.
      const base = (await stores[0]!.usage(alice.name)).bytes;
      const own = await alice.client.createGroup(alice.identity, { wireFormat: 'plaintext' });
      await alice.ds.createGroup(own.id, { epoch: 0, groupInfo: await own.exportGroupInfo() });
      const next = crypto.getRandomValues(new Uint8Array(16));
      const retire = await own.commitReInit({ ciphersuite: 1, groupId: next });
      await alice.ds.submit(own.id, retire.commit, { groupInfo: retire.groupInfo });
      await own.mergePendingCommit();
      expect(await allSole(alice.ds)).toEqual([toHex(own.id), toHex(next)].sort());
      await alice.ds.deleteGroup(next);
      await alice.ds.deleteGroup(own.id);
      expect((await stores[1]!.usage(alice.name)).bytes).toBe(base);
      expect(await allSole(alice.ds)).toEqual([]);
      // The successor id stays hers alone.
      const mallory = await dsPeer(two!.url, `mallory-${t}`);
      const squat = await mallory.client.createGroup(mallory.identity, { groupId: next, wireFormat: 'plaintext' });
      expect(await dsRefusal(mallory.ds.createGroup(next, { epoch: 0, groupInfo: await squat.exportGroupInfo() }))).toEqual({
        reason: 'group-deleted',
        message: 'this group id was deleted by its last member: only that client may register it again (group-deleted)',
      });
    } finally {
      await close();
    }
  });

  it.each(setups)('%s: a post whose write waits while the group is deleted (at the other server) is 404 unknown-group: nothing of it logged or counted', async (_, setup) => {
    const { servers, stores, close } = await setup();
    try {
      const [one, two] = servers;
      const alice = await dsPeer(one!.url, `alice-${tag()}`);
      const base = (await stores[0]!.usage(alice.name)).bytes;
      const group = await soleGroup(alice);
      const atTwo = await DeliveryClient.login(two!.url, { clientId: alice.name, client: alice.client, identity: alice.identity });
      // The post is checked (alice a member) and its append entered; the deletion runs meanwhile.
      const hold = holdNext(stores[1]!, 'append');
      const post = atTwo.submit(group.id, await group.encrypt('late')).then(() => undefined, (e: unknown) => e);
      await hold.reached;
      await alice.ds.deleteGroup(group.id);
      hold.release();
      // Before: the append found the row and logged the message under the deleted id, counted for alice.
      expect(await dsRefusal(Promise.reject(await post))).toEqual({ reason: 'unknown-group', message: 'no such group (unknown-group)' });
      expect(await stores[0]!.readLog(toHex(group.id), 0, 10)).toEqual([]);
      expect((await stores[1]!.usage(alice.name)).bytes).toBe(base);
    } finally {
      await close();
    }
  });

  it.each(setups)('%s: a deletion whose transaction waits while a commit adds a member (at the other server) is 403: the group is theirs and works', async (_, setup) => {
    const { servers, stores, close } = await setup();
    try {
      const [one, two] = servers;
      const t = tag();
      const [alice, carol] = [await dsPeer(one!.url, `alice-${t}`), await dsPeer(two!.url, `carol-${t}`)];
      alice.group = await soleGroup(alice);
      alice.seen = 1;
      const hold = holdNext(stores[0]!, 'deleteGroup');
      const deletion = alice.ds.deleteGroup(alice.group.id).then(() => undefined, (e: unknown) => e);
      await hold.reached;
      const atTwo = await DeliveryClient.login(two!.url, { clientId: alice.name, client: alice.client, identity: alice.identity });
      await carol.ds.uploadKeyPackages([await carol.client.createKeyPackage(carol.identity)]);
      const kp = (await atTwo.fetchKeyPackages([carol.name])).get(carol.name)!;
      const add = await alice.group.commit({ add: [kp] });
      alice.seen = await atTwo.submit(alice.group.id, add.commit, { welcome: add.welcome, added: [carol.name] });
      await alice.group.mergePendingCommit();
      hold.release();
      expect(await dsRefusal(Promise.reject(await deletion))).toEqual(OTHER_MEMBERS);
      const [w] = await carol.ds.welcomes();
      carol.group = await carol.client.joinFromWelcome(w!.welcome);
      await carol.ds.ackWelcomes([w!.id]);
      carol.seen = alice.seen;
      await groupStillWorks([carol, alice], 'the deletion lost');
    } finally {
      await close();
    }
  });

  it.each(setups)('%s: an external join and a deletion of an open group: the join waiting for the deletion is 404, the deletion waiting for the join 403, and at once exactly one wins', async (_, setup) => {
    const { servers, stores, close } = await setup();
    try {
      const [one, two] = servers;
      const t = tag();
      const alice = await dsPeer(one!.url, `alice-${t}`);
      const base = (await stores[0]!.usage(alice.name)).bytes;
      const opened = async () => {
        const g = await alice.client.createGroup(alice.identity);
        await alice.ds.createGroup(g.id, { epoch: 0, groupInfo: await g.exportGroupInfo(), externalJoin: true });
        return g;
      };
      const joinOf = async (bob: DsPeer, g: Group) => (await bob.client.joinExternal(await bob.ds.groupInfo(g.id), bob.identity)).commit;
      const post = (bob: DsPeer, g: Group, commit: Uint8Array) => bob.ds.submit(g.id, commit, { externalJoin: true });
      // The join waits (checked: signature, AS binding) while the group is deleted.
      const bob = await dsPeer(two!.url, `bob-${t}`);
      const bobBase = (await stores[1]!.usage(bob.name)).bytes;
      let g = await opened();
      let hold = holdNext(stores[1]!, 'append');
      const late = post(bob, g, await joinOf(bob, g)).then(() => undefined, (e: unknown) => e);
      await hold.reached;
      await alice.ds.deleteGroup(g.id);
      hold.release();
      expect(await dsRefusal(Promise.reject(await late))).toEqual({ reason: 'unknown-group', message: 'no such group (unknown-group)' });
      expect([await stores[0]!.readLog(toHex(g.id), 0, 10), (await stores[1]!.usage(bob.name)).bytes, (await stores[1]!.usage(alice.name)).bytes]).toEqual([[], bobBase, base]);
      // The deletion waits while the join is logged: the joiner is a member, the deletion refused.
      g = await opened();
      hold = holdNext(stores[0]!, 'deleteGroup');
      const lost = alice.ds.deleteGroup(g.id).then(() => undefined, (e: unknown) => e);
      await hold.reached;
      expect(await post(bob, g, await joinOf(bob, g))).toBe(1);
      hold.release();
      expect(await dsRefusal(Promise.reject(await lost))).toEqual(OTHER_MEMBERS);
      // At once, from the two servers: exactly one wins, and what is stored is counted for whoever stored it.
      for (let i = 0; i < 4; i++) {
        const dave = await dsPeer(two!.url, `dave${i}-${t}`);
        const daveBase = (await stores[1]!.usage(dave.name)).bytes;
        const h = await opened();
        const before = (await stores[0]!.usage(alice.name)).bytes;
        const info = (await stores[0]!.getGroup(toHex(h.id)))!.groupInfo!.length;
        const commit = await joinOf(dave, h);
        const [deleted, joined] = await Promise.allSettled([alice.ds.deleteGroup(h.id), post(dave, h, commit)]);
        expect([deleted.status, joined.status].sort()).toEqual(['fulfilled', 'rejected']);
        const log = await stores[1]!.readLog(toHex(h.id), 0, 10);
        if (deleted.status === 'fulfilled') {
          expect([log, (await stores[1]!.usage(dave.name)).bytes, before - (await stores[1]!.usage(alice.name)).bytes]).toEqual([[], daveBase, 256 + info]);
          expect(await dsRefusal(Promise.reject((joined as PromiseRejectedResult).reason))).toEqual({ reason: 'unknown-group', message: 'no such group (unknown-group)' });
        } else {
          expect(log.map((m) => m.sender)).toEqual([dave.name]);
          expect([(await stores[1]!.usage(dave.name)).bytes, (await stores[1]!.usage(alice.name)).bytes]).toEqual([daveBase + 256 + commit.length, before]);
          expect(await dsRefusal(Promise.reject(deleted.reason))).toEqual(OTHER_MEMBERS);
        }
      }
    } finally {
      await close();
    }
  });

  it.each(setups)("%s, verifying: an Add proposal's grant, moved to the group after the group's deletion (at the other server), is dropped again: no row stays behind", async (_, setup) => {
    const { servers, stores, close } = await setup(await verifyingServerOptions());
    try {
      const [one, two] = servers;
      const t = tag();
      const [alice, carol] = [await dsPeer(one!.url, `alice-${t}`), await dsPeer(one!.url, `carol-${t}`)];
      const group = await alice.client.createGroup(alice.identity, { wireFormat: 'plaintext' });
      await alice.ds.createGroup(group.id, { epoch: 0, groupInfo: await group.exportGroupInfo() });
      await carol.ds.uploadKeyPackages([await carol.client.createKeyPackage(carol.identity)]);
      const atTwo = await DeliveryClient.login(two!.url, { clientId: alice.name, client: alice.client, identity: alice.identity });
      const kp = (await atTwo.fetchKeyPackages([carol.name])).get(carol.name)!;
      // The proposal is logged; its grant goes to the group after that transaction, here after the deletion.
      const hold = holdNext(stores[1]!, 'grantKeyPackage');
      const posted = atTwo.submit(group.id, await group.propose({ type: 'add', keyPackage: kp }));
      await hold.reached;
      await alice.ds.deleteGroup(group.id);
      hold.release();
      expect(await posted).toBe(1);
      expect(await stores[0]!.grants(`\u00010\u0001${toHex(group.id)}`, 0)).toEqual([]);
      expect(await stores[0]!.grants(alice.name, 0)).toEqual([]);
    } finally {
      await close();
    }
  });

  it.each(setups)("%s: a deleted open eventual group's id reads as a retired group's (strong, empty GroupInfo, closed), which a server of the previous release refuses posts to", async (_, setup) => {
    const { servers, stores, close } = await setup();
    try {
      const alice = await dsPeer(servers[0]!.url, `alice-${tag()}`);
      const group = await alice.client.createGroup(alice.identity);
      await alice.ds.createGroup(group.id, { consistency: 'eventual', groupInfo: await group.exportGroupInfo(), externalJoin: true });
      await alice.ds.deleteGroup(group.id);
      // The previous release serves any row but a reservation (epoch -1) as a group, and refuses posts only to a retired one
      // (isRetired: strong with an empty GroupInfo). Before: the row stayed eventual and open, so it logged her (or her
      // paired devices') messages under the deleted id, counted for good (a kept id is deleted no more), and handed its
      // empty GroupInfo to anyone.
      const kept = (await stores[1]!.getGroup(toHex(group.id)))!;
      expect([kept.epoch, kept.consistency, kept.externalJoin, kept.groupInfo?.length, kept.members]).toEqual([-2, 'strong', false, 0, [alice.name]]);
    } finally {
      await close();
    }
  });

  it("PostgreSQL: a server starting on a database that has the deletion's column and indexes takes no lock on ds_groups: another server reads a group while a transaction that read ds_groups is open", async () => {
    const one = await PostgresDeliveryStore.connect(postgres.url);
    const reader = new pg.Client({ connectionString: postgres.url });
    await reader.connect();
    const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<'waiting'>((r) => setTimeout(() => r('waiting'), ms))]);
    let two: Promise<PostgresDeliveryStore> | undefined;
    try {
      const groupId = `0a${tag()}`;
      await one.insertGroup({ groupId, epoch: 0, members: ['alice'], consistency: 'strong' });
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM ds_groups');
      // Before: its ALTER TABLE ... ADD COLUMN IF NOT EXISTS took ds_groups exclusively even with the column there, so it
      // waited for that transaction, and every read of a group (each request's) waited behind it, at every server.
      two = PostgresDeliveryStore.connect(postgres.url);
      expect(await within(two.then(() => 'started'), 3000)).toBe('started');
      expect(await within(one.getGroup(groupId).then((g) => g?.members), 1000)).toEqual(['alice']);
      expect(await (await two).deleteGroup!(groupId, 'alice', { held: () => [], keep: 1 })).toBe('deleted');
    } finally {
      await reader.query('COMMIT');
      await reader.end();
      await one.close();
      await (await two)?.close();
    }
  });

  it.each([
    ['memory', async () => new MemoryDeliveryStore()],
    ['SQLite', async () => new SqliteDeliveryStore()],
    ['PostgreSQL', () => PostgresDeliveryStore.connect(postgres.url)],
  ] as [string, () => Promise<DeliveryStore>][])("%s: a client's deleted ids are kept up to the store's bound (each counting for nobody); past it a deletion frees the id", async (_, open) => {
    const store = await open();
    try {
      const [me, ids] = [`alice-${tag()}`, ['0a', '0b', '0c'].map((x) => `${x}${tag()}`)];
      for (const groupId of ids) await store.insertGroup({ groupId, epoch: 0, members: [me], consistency: 'strong' });
      expect((await store.usage(me)).bytes).toBe(3 * 256);
      for (const groupId of ids) expect(await store.deleteGroup!(groupId, me, { held: () => [], keep: 2 })).toBe('deleted');
      expect((await store.usage(me)).bytes).toBe(0);
      expect(await Promise.all(ids.map(async (id) => (await store.getGroup(id))?.epoch))).toEqual([-2, -2, undefined]);
      // The freed id is anyone's; a kept one its last member's only.
      expect(await store.insertGroup({ groupId: ids[2]!, epoch: 0, members: ['bob'], consistency: 'strong' })).toBe(true);
      expect(await store.claimDeleted!({ groupId: ids[0]!, epoch: 0, members: ['bob'], consistency: 'strong' })).toBe(false);
      expect(await store.claimDeleted!({ groupId: ids[0]!, epoch: 0, members: [me], consistency: 'strong' })).toBe(true);
      expect((await store.usage(me)).bytes).toBe(256);
    } finally {
      await (store as { close?: () => unknown }).close?.();
    }
  });
});
