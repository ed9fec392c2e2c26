/**
 * Attacker review of the read-after-rotation check after the router, the stream upgrade's failures and a deletion's
 * notification ending streams (docs/PROTOCOL.md §8.3, §8.4, §8.6). A stolen copy's session, authenticated before the
 * owner's rotation, whose request runs after it:
 * - Finding: a refused POST or DELETE went out as such, naming what was stored after the rotation: a commit's 409
 *   "the group is at 2" (a commit of bob's since), 403 or 404 of a group left or deleted since. Only GETs were checked,
 *   and a POST's session is checked before its body comes, so the copy stretched the race by sending its body slowly.
 *   Now any refusal (nothing written) is checked as a GET's: 401 unauthenticated.
 * - Finding: a stream upgrade refused 403 not-a-member after the rotation went out as such (a poll's is 401). Now 401.
 * - Finding: ending every stream of a group at its deletion's notification ended, at a server the notification reached
 *   late, a stream its only member had opened there on the group registered again since. Now a stream that pushed
 *   the message at its position reads it again (SHA-256) and ends only if it is gone; one at 0 reads on.
 * Forced as in test/ds-read-race: the store read of the request waits, once entered, until the owner has rotated and
 * bob has committed; on PostgreSQL the rotation and the commit run at another server on the same database.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, startDeliveryServer } from 'paired-mls/server';
import { WebSocket } from 'ws';
import { headerOnly, holdNext, raw, registeredClient, tokenOf, upgrade } from './ds-helpers.js';
import { copyAndOwnerAtOne, copyAndOwnerOnPostgres, guardedAliceInBobsGroup, type CopyAndOwner } from './ds-guard-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const REVOKED_MEANWHILE = { reason: 'unauthenticated', error: 'the key this session was proven with was revoked meanwhile (unauthenticated)' };

describe('review 59: what a revoked session still learns after the rotation', () => {
  let postgres: PgServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  }, 60_000);
  afterAll(async () => postgres?.stop());

  const setups: [string, () => Promise<CopyAndOwner>][] = [
    ['memory', async () => copyAndOwnerAtOne(new MemoryDeliveryStore())],
    ['PostgreSQL, two servers', async () => copyAndOwnerOnPostgres(postgres.url)],
  ];

  it.each(setups)("%s: the copy's refused POST and DELETE, and its refused stream upgrade, read after the rotation are 401 unauthenticated, naming nothing stored since (before: 409 'the group is at 2', 403, 404); the owner and bob go on", async (_, setup) => {
    const { store, copyAt, ownerAt, close } = await setup();
    try {
      const { id, alice, bob, bobClient, group, seen } = await guardedAliceInBobsGroup(ownerAt.url, ownerAt.url);
      const hex = toHex(group.id);
      const rotate = async () => alice.ds.rotateKey(await alice.client.createIdentity(id, 1), { guard: alice.guard });
      // Each request of the copy's session, its read held until the owner rotated and bob changed the group.
      const race = async <T>(request: (token: string) => Promise<T>, meanwhile: () => Promise<unknown>): Promise<T> => {
        const token = await tokenOf(copyAt.url, id, { client: alice.client, identity: alice.client.identities().at(-1)! });
        const hold = holdNext(store, 'getGroup');
        const pending = request(token);
        await hold.reached;
        await rotate();
        await meanwhile();
        hold.release();
        return pending;
      };
      // A commit for epoch 1 (the group's when it was sent); bob commits epoch 1 meanwhile.
      const commit = { message: b64(headerOnly(group.id, 1, 3, 7)) };
      const byBob = async () => {
        const update = await group.selfUpdate();
        await bob.submit(group.id, update.commit);
        await group.mergePendingCommit();
      };
      // Before: 409 epoch-taken "epoch 1 already has a commit; process the group's messages up to epoch 2 …".
      expect(await race((t) => raw(copyAt.url, 'POST', `/v1/groups/${hex}/messages`, commit, t), byBob)).toEqual({ status: 401, body: REVOKED_MEANWHILE });
      // A group of the account's own that the owner deletes meanwhile. Before: 404 unknown-group.
      const own = await alice.client.createGroup(alice.client.identities().at(-1)!);
      await alice.ds.createGroup(own.id, { epoch: 0 });
      expect(await race((t) => raw(copyAt.url, 'DELETE', `/v1/groups/${toHex(own.id)}`, undefined, t), () => alice.ds.deleteGroup(own.id))).toEqual({ status: 401, body: REVOKED_MEANWHILE });
      // A stream of bob's other group, which the account is not in. Before: 403 (not-a-member).
      const other = await bobClient.createGroup(bobClient.identities()[0]!);
      await bob.createGroup(other.id, { epoch: 0 });
      expect((await race((t) => upgrade(copyAt.url, `/v1/stream?group=${toHex(other.id)}&access_token=${t}`), async () => undefined)).status).toBe(401);
      // The owner's new key gets each refusal as such, and bob's group goes on.
      const stale = await raw(ownerAt.url, 'POST', `/v1/groups/${hex}/messages`, commit, await tokenOf(ownerAt.url, id, { client: alice.client, identity: alice.client.identities().at(-1)! }));
      expect([stale.status, stale.body.reason]).toEqual([409, 'epoch-taken']);
      await expect(alice.ds.deleteGroup(own.id)).rejects.toMatchObject({ reason: 'unknown-group' });
      const refused = await upgrade(ownerAt.url, `/v1/stream?group=${toHex(other.id)}&access_token=${await tokenOf(ownerAt.url, id, { client: alice.client, identity: alice.client.identities().at(-1)! })}`);
      expect(refused.status).toBe(403);
      const seq = await bob.submit(group.id, await group.encrypt('after the refusals'));
      expect((await alice.ds.poll(group.id, seen)).map((m) => m.seq).at(-1)).toBe(seq);
    } finally {
      await close();
    }
  });
});

describe('review 59: a deletion notified late at another server', () => {
  let postgres: PgServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  }, 60_000);
  afterAll(async () => postgres?.stop());

  it("PostgreSQL, two servers: the deletion's notification reaching the stream's server after the only member registered the id again and opened a new stream there ends the old stream 1008 unknown-group, not the new one, which goes on (before: the new stream ended 1008 unknown-group too)", async () => {
    const stores = [await PostgresDeliveryStore.connect(postgres.url), await PostgresDeliveryStore.connect(postgres.url)];
    // The stream's server hears notifications late once a deletion's comes (its LISTEN connection slower than its
    // pool): that one and the ones after it, in their order, wait until `release`.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let late = false;
    const inner = stores[1]!;
    const watch = (listener: (g: string, seq: number) => void) =>
      inner.watch((g, seq) => {
        if (seq === 0) late = true;
        if (late) void gate.then(() => listener(g, seq));
        else listener(g, seq);
      });
    const at: DeliveryStore = new Proxy(inner, { get: (t, k) => (k === 'watch' ? watch : typeof (t as any)[k] === 'function' ? (t as any)[k].bind(t) : (t as any)[k]) });
    const servers = [await startDeliveryServer({ port: 0, store: stores[0]! }), await startDeliveryServer({ port: 0, store: at })];
    try {
      const alice = await registeredClient(servers[0]!.url, `alice-${Math.random().toString(36).slice(2, 8)}`);
      const g = await alice.client.createGroup(alice.identity);
      await alice.ds.createGroup(g.id, { epoch: 0 });
      for (let i = 0; i < 2; i++) await alice.ds.submit(g.id, await g.encrypt(`old ${i}`));
      const token = await tokenOf(servers[1]!.url, alice.ds.clientId!, alice);
      const open = (after: number) => {
        const ws = new WebSocket(`${servers[1]!.url.replace(/^http/, 'ws')}/v1/stream?group=${toHex(g.id)}&after=${after}&access_token=${token}`);
        const got: number[] = [];
        ws.on('message', (d) => got.push(JSON.parse(d.toString()).seq));
        const closed = new Promise((r) => ws.on('close', (code, reason) => r([code, reason.toString()])));
        return { ws, got, closed, opened: new Promise((r) => ws.once('open', r)) };
      };
      const old = open(2);
      await old.opened;
      await alice.ds.deleteGroup(g.id);
      await alice.ds.createGroup(g.id, { epoch: 0 });
      await alice.ds.submit(g.id, await g.encrypt('new 0'));
      const fresh = open(0);
      await expect.poll(() => fresh.got).toEqual([1]);
      release();
      expect(await old.closed).toEqual([1008, 'unknown-group']);
      await alice.ds.submit(g.id, await g.encrypt('new 1'));
      await expect.poll(() => fresh.got).toEqual([1, 2]);
      expect(await Promise.race([fresh.closed, new Promise((r) => setTimeout(() => r('open'), 500))])).toBe('open');
      expect(old.got).toEqual([]);
      fresh.ws.close();
    } finally {
      for (const server of servers) await server.close();
      await new Promise((r) => setTimeout(r, 200));
      for (const store of stores) await store.close();
    }
  });
});
