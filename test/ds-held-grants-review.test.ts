/**
 * Attacker review of the held grants' drop in a verified commit's
 * transaction (docs/PROTOCOL.md §8.5, `DeliveryStore.dropGrants`): a commit
 * the store refuses after the drop (an inline Add of a full inbox) keeps the
 * group's grants, and the honest commit after it still adds the proposed
 * client; the commit stored again without a full inbox's Welcome drops them
 * once; the drop statement takes exactly the keys it is given (control
 * characters, quotes, backslashes, a key that is another's prefix); no
 * client id can be a held key; two servers on one database, one with a
 * store of the older interface (a rolling upgrade), each clear what the
 * other's proposals left. Real servers on loopback, real groups, the memory
 * store, SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { toHex } from 'paired-mls';
import { DeliveryClient, MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { catchUp, dsPeer, groupStillWorks, raw, verifiedGroup, type DsPeer } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

/** The requester holding a group's grants in an epoch (delivery-service.ts `heldGrants`). */
const heldKey = (p: DsPeer, epoch: number) => `\u0001${epoch}\u0001${toHex(p.group!.id)}`;
const refsOf = async (store: DeliveryStore, requester: string) => (await store.grants(requester, 0)).map((g) => g.clientId).sort();
const fullInbox = (client: string) => ({ reason: 'inbox-full', message: `${client} has 1 Welcomes waiting; it must take them first (inbox-full)` });

/** `p` commits what it has queued (a selfUpdate, with any pending proposal by reference) and merges it. */
async function commitQueued(p: DsPeer): Promise<{ welcome?: Uint8Array }> {
  await catchUp(p);
  const c = await p.group!.selfUpdate({ groupInfo: true });
  p.seen = await p.ds.submit(p.group!.id, c.commit, { groupInfo: c.groupInfo, welcome: c.welcome });
  await p.group!.mergePendingCommit();
  return c;
}

/** A verified group of `p`'s own adding `keyPackage` inline: its Welcome fills that client's inbox (maxPendingWelcomes 1). */
async function fillInbox(p: DsPeer, keyPackage: Uint8Array): Promise<void> {
  const g = await p.client.createGroup(p.identity, { wireFormat: 'plaintext' });
  await p.ds.createGroup(g.id, { epoch: 0, groupInfo: await g.exportGroupInfo() });
  const c = await g.commit({ add: [keyPackage], groupInfo: true });
  await p.ds.submit(g.id, c.commit, { welcome: c.welcome, groupInfo: c.groupInfo });
}

/** pete's verified group with quinn and mallory; sock and tom with `keyPackages` KeyPackages each; mallory's Add of sock logged (its grant held by the group). */
async function heldAdd(url: string, keyPackages = 2) {
  const tag = Math.random().toString(36).slice(2, 7);
  const [pete, quinn, mallory, sock, tom] = await Promise.all(['pete', 'quinn', 'mallory', 'sock', 'tom'].map((n) => dsPeer(url, `${n}-${tag}`)));
  await verifiedGroup(pete!, [quinn!, mallory!]);
  for (const p of [sock!, tom!]) await p.ds.uploadKeyPackages(await p.client.createKeyPackages(p.identity, { count: keyPackages }));
  const kp = (await mallory!.ds.fetchKeyPackages([sock!.name])).get(sock!.name)!;
  await mallory!.ds.ackKeyPackages([sock!.name]);
  await catchUp(mallory!);
  mallory!.seen = await mallory!.ds.submit(mallory!.group!.id, await mallory!.group!.propose({ type: 'add', keyPackage: kp }));
  return { pete: pete!, quinn: quinn!, mallory: mallory!, sock: sock!, tom: tom!, kp };
}

function commitsOverHeldGrants(kind: string, open: () => Promise<{ store: DeliveryStore; close?: () => Promise<void> | void }>) {
  let server: RunningDeliveryServer;
  let store: DeliveryStore;
  let close: (() => Promise<void> | void) | undefined;
  beforeAll(async () => {
    ({ store, close } = await open());
    server = await startDeliveryServer({ port: 0, store, verifyCommits: true, maxPendingWelcomes: 1 });
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    await close?.();
  });

  it(`${kind}: a commit refused after the drop (its inline Add's client has a full inbox) keeps the group's grant; the honest commit after it adds the proposed client and drops it`, async () => {
    const { pete, quinn, mallory, sock, tom } = await heldAdd(server.url);
    const epoch = (await store.getGroup(toHex(pete.group!.id)))!.epoch;
    expect(await refsOf(store, heldKey(pete, epoch))).toEqual([sock.name]);
    await fillInbox(quinn, (await quinn.ds.fetchKeyPackages([tom.name])).get(tom.name)!);
    // pete adds tom inline, covering mallory's Add by reference: the store drops the group's grants, then refuses tom's Welcome.
    const tomKp = (await pete.ds.fetchKeyPackages([tom.name])).get(tom.name)!;
    await catchUp(pete);
    const refused = await pete.group!.commit({ add: [tomKp], groupInfo: true });
    await expect(pete.ds.submit(pete.group!.id, refused.commit, { welcome: refused.welcome, groupInfo: refused.groupInfo })).rejects.toMatchObject(fullInbox(tom.name));
    await pete.group!.clearPendingCommit();
    // Rolled back with the refusal: lost, the next commit covering the Add would be not-granted.
    expect(await refsOf(store, heldKey(pete, epoch))).toEqual([sock.name]);
    const c = await commitQueued(pete);
    expect(c.welcome).toBeDefined();
    expect((await sock.ds.welcomes()).map((w) => w.groupId)).toEqual([toHex(pete.group!.id)]);
    expect(await refsOf(store, heldKey(pete, epoch))).toEqual([]);
    await groupStillWorks([pete, quinn, mallory], 'after the refused commit');
  });

  it(`${kind}: the commit stored again without a full inbox's Welcome drops the group's grants in that second transaction, once; the proposed client is in the group, its grant used`, async () => {
    const { pete, quinn, mallory, sock, kp } = await heldAdd(server.url, 3);
    const epoch = (await store.getGroup(toHex(pete.group!.id)))!.epoch;
    await fillInbox(quinn, (await quinn.ds.fetchKeyPackages([sock.name])).get(sock.name)!);
    await commitQueued(pete);
    expect(pete.group!.state().memberCount).toBe(4);
    expect((await sock.ds.welcomes()).length).toBe(1);
    expect(await refsOf(store, heldKey(pete, epoch))).toEqual([]);
    // The grant does not add sock again, in mallory's own group either.
    const own = await mallory.client.createGroup(mallory.identity, { wireFormat: 'plaintext' });
    await mallory.ds.createGroup(own.id, { epoch: 0, groupInfo: await own.exportGroupInfo() });
    const again = await own.commit({ add: [kp], groupInfo: true });
    await expect(mallory.ds.submit(own.id, again.commit, { welcome: again.welcome, groupInfo: again.groupInfo })).rejects.toMatchObject({ reason: 'not-granted' });
    await groupStillWorks([pete, quinn, mallory], 'after the commit stored again');
  });
}

/** `store` without `dropGrants`, as one of the interface before it (another package's, or this one's before the change). */
const older = (store: DeliveryStore): DeliveryStore =>
  new Proxy(store, {
    get: (target, name) => {
      if (name === 'dropGrants') return undefined;
      const value = Reflect.get(target, name, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });

/** `p` logged in at another server of the same database. */
const at = async (url: string, p: DsPeer): Promise<DsPeer> => ({ ...p, ds: await DeliveryClient.login(url, { clientId: p.name, client: p.client, identity: p.identity }, { WebSocket }) });

/**
 * Two servers on one database, `a` with a store that drops the grants in the
 * commit, `b` with one of the older interface: an Add proposed at one server
 * and committed at the other, both ways; the group's grants are gone after
 * each commit, each Add's client joins once.
 */
async function rollingUpgrade(a: { url: string; store: DeliveryStore }, b: { url: string }) {
  const { pete, quinn, mallory, sock, tom } = await heldAdd(a.url, 1);
  const gid = toHex(pete.group!.id);
  const atB = { pete: await at(b.url, pete), mallory: await at(b.url, mallory) };
  // Proposed at a, committed at b (read and spent after the commit).
  const first = (await a.store.getGroup(gid))!.epoch;
  await commitQueued(atB.pete);
  expect(await refsOf(a.store, heldKey(pete, first))).toEqual([]);
  // Proposed at b, committed at a (dropped in the commit).
  const kp = (await atB.mallory.ds.fetchKeyPackages([tom.name])).get(tom.name)!;
  await catchUp(atB.mallory);
  atB.mallory.seen = await atB.mallory.ds.submit(atB.mallory.group!.id, await atB.mallory.group!.propose({ type: 'add', keyPackage: kp }));
  const second = (await a.store.getGroup(gid))!.epoch;
  expect(await refsOf(a.store, heldKey(pete, second))).toEqual([tom.name]);
  pete.seen = atB.pete.seen;
  await commitQueued(pete);
  expect(await refsOf(a.store, heldKey(pete, second))).toEqual([]);
  expect(pete.group!.state().memberCount).toBe(5);
  for (const p of [sock, tom]) expect((await p.ds.welcomes()).map((w) => w.groupId)).toEqual([gid]);
  mallory.seen = atB.mallory.seen;
  await groupStillWorks([pete, quinn, mallory], 'after commits at both servers');
}

/** Requesters the drop must tell apart: held keys of one group's two epochs and of a group whose id extends it, and ids JSON and SQL escape. */
const REQUESTERS = ['\u00015\u0001ab', '\u00015\u0001abc', '\u00016\u0001ab', 'a"b\\c', "o'q", '\u{1f4a5}', '\u00015', 'sock'];
const DROPPED = ['\u00015\u0001ab', 'a"b\\c', '\u{1f4a5}'];

async function dropsExactly(store: DeliveryStore): Promise<void> {
  for (const [i, requester] of REQUESTERS.entries()) await store.grantKeyPackage({ requester, clientId: `client-${i}`, ref: `ref-${i}`, until: Number.MAX_SAFE_INTEGER - 1 }, 0);
  await store.dropGrants!(DROPPED);
  await store.dropGrants!([]);
  const left = [];
  for (const requester of REQUESTERS) if ((await store.grants(requester, 0)).length > 0) left.push(requester);
  expect(left).toEqual(REQUESTERS.filter((r) => !DROPPED.includes(r)));
}

describe("held grants dropped in a verified commit's transaction, attacked (PROTOCOL §8.5)", () => {
  const dir = mkdtempSync(join(tmpdir(), 'paired-mls-held-grants-review-'));
  let pg: PgServer;
  beforeAll(async () => {
    pg = await startPostgres();
  }, 60_000);
  afterAll(async () => {
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('memory store', () => commitsOverHeldGrants('memory store', async () => ({ store: new MemoryDeliveryStore() })));
  describe('SQLite', () =>
    commitsOverHeldGrants('SQLite', async () => {
      const store = new SqliteDeliveryStore(join(dir, 'commits.sqlite'));
      return { store, close: () => store.close() };
    }));
  describe('PostgreSQL', () =>
    commitsOverHeldGrants('PostgreSQL', async () => {
      const store = await PostgresDeliveryStore.connect(pg.url);
      return { store, close: () => store.close() };
    }));

  it('the drop statement takes exactly the requesters named (a key that is a prefix of another, control characters, quotes, a backslash, an astral character), on each store', async () => {
    await dropsExactly(new MemoryDeliveryStore());
    const sqlite = new SqliteDeliveryStore(join(dir, 'drop.sqlite'));
    const postgres = await PostgresDeliveryStore.connect(pg.url);
    try {
      await dropsExactly(sqlite);
      await dropsExactly(postgres);
    } finally {
      sqlite.close();
      await postgres.close();
    }
  });

  it('no client id is a held key: one with its control characters is refused at the first request (400 malformed)', async () => {
    const store = new MemoryDeliveryStore();
    const s = await startDeliveryServer({ port: 0, store, verifyCommits: true });
    try {
      expect(await raw(s.url, 'POST', '/v1/auth/challenge', { clientId: '\u00010\u0001ab' })).toEqual({
        status: 400,
        body: { error: 'clientId must be a string of 1..256 characters, well-formed UTF-16, without control characters', reason: 'malformed' },
      });
    } finally {
      await s.close();
    }
  });

  it('rolling upgrade, SQLite: two servers on one file, one store of the older interface; Adds proposed at one and committed at the other clear their grants both ways', async () => {
    const file = join(dir, 'rolling.sqlite');
    const [storeA, storeB] = [new SqliteDeliveryStore(file), new SqliteDeliveryStore(file)];
    const a = await startDeliveryServer({ port: 0, store: storeA, verifyCommits: true });
    const b = await startDeliveryServer({ port: 0, store: older(storeB), verifyCommits: true });
    try {
      await rollingUpgrade({ url: a.url, store: storeA }, b);
    } finally {
      await Promise.all([a.close(), b.close()]);
      storeA.close();
      storeB.close();
    }
  });

  it('rolling upgrade, PostgreSQL: the same', async () => {
    const [storeA, storeB] = await Promise.all([PostgresDeliveryStore.connect(pg.url), PostgresDeliveryStore.connect(pg.url)]);
    const a = await startDeliveryServer({ port: 0, store: storeA, verifyCommits: true });
    const b = await startDeliveryServer({ port: 0, store: older(storeB), verifyCommits: true });
    try {
      await rollingUpgrade({ url: a.url, store: storeA }, b);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await Promise.all([storeA.close(), storeB.close()]);
    }
  });
});
