/**
 * review63a: an attacker's review of the post entitlement check in the append's transaction (`MessageToLog.postsFor`,
 * `takesPost`, docs/PROTOCOL.md §8.1 *Ordering*, *Eventual*, §1.6 item 1), on the memory store, SQLite and PostgreSQL.
 *
 * Broke (fixed here): a paired device's commit was not so checked. Held between the DS's check and its append while the
 * device's pairing ended (ceased, or the anchor's key rotated or revoked), it was logged after that end, in a strong and
 * in an eventual group: a device whose pairing ended committed once more for its former anchor (here removing another
 * member). Now the commit carries `postsFor` (its anchor) and is refused 403 `not-a-member`, nothing logged or charged.
 *
 * Held (kept as evidence): the same bytes sent again after a refusal or after the removal; a retry whose first try was
 * logged before the removal; the proposal share and the quota on a refused try; a device paired to two members whose
 * first anchor is removed; membership churn forcing 17 refusals (its cost to the attacker); a group deleted and
 * registered again while the post is held; two DeliveryServices on one PostgreSQL; HTTP answers for outsiders.
 */
import { describe, expect, it } from 'vitest';
import { DeliveryService, MemoryDeliveryStore, type DeliveryStore, type SubmitResult } from 'paired-mls/services';
import { startDeliveryServer } from 'paired-mls/server';
import { toHex } from 'paired-mls';
import { aroundPosts, headerOnly, holdNext, raw, registeredClient, tokenOf } from './ds-helpers.js';
import { everyStore } from './ds-store-kinds.js';
import { NOT_A_MEMBER_POST, eventualTrio } from './ds-eventual-helpers.js';
import type { Closable } from './ds-lossy-store.js';

const DELETED = { accepted: false, reason: 'unknown-group', message: 'the group was deleted (unknown-group)' };
const MOVED17 = { accepted: false, reason: 'stale', message: "the sender's membership moved while the message was checked (17 tries); send it again (stale)" };

describe('review63a: attacks on the post entitlement check in the append transaction (memory, SQLite, PostgreSQL)', () => {
  const { stores, postgresUrl } = everyStore('paired-mls-review63a-');
  let nextId = 0;

  /** A strong group of alice, bob and xavier on `store` (one DS, or `ds` given), at epoch 1 (alice's Add logged, seq 1). */
  async function strongTrio(store: Closable, ds?: DeliveryService) {
    ds ??= await DeliveryService.create({ store });
    const gid = new Uint8Array([0x63, 0x0a, ...crypto.getRandomValues(new Uint8Array(6)), ++nextId]);
    const hex = toHex(gid);
    await ds.createGroup(gid, 'alice');
    let n = 0;
    const msg = (epoch: number, type: number) => headerOnly(gid, epoch, type, ++n);
    const submit = (sender: string, epoch: number, type: number, extras = {}, via = ds!): Promise<SubmitResult> => via.submit(gid, sender, msg(epoch, type), extras);
    expect(await submit('alice', 0, 3, { added: ['bob', 'xavier'] })).toEqual({ accepted: true, seq: 1 });
    const log = async () => (await store.readLog(hex, 0, 100)).map((m) => [m.seq, m.sender]);
    const members = async () => (await store.getGroup(hex))!.members;
    return { store, ds, gid, hex, msg, submit, log, members };
  }

  for (const [name, make] of stores) {
    it(`${name}, strong (BROKE, fixed): bob's phone's commit removing xavier, held while bob ceases the pairing, is refused not-a-member (before: logged after the pairing ended, xavier removed); nothing logged or charged; xavier, bob and alice go on`, async () => {
      const store = await make();
      try {
        const t = await strongTrio(store);
        await store.putPairing('bob', 'phone');
        const charged = (await store.usage('phone')).bytes;
        const held = holdNext(store, 'append');
        const late = t.submit('phone', 1, 3, { removed: ['xavier'] });
        await held.reached;
        await t.ds.ceasePairing('bob', 'bob', 'phone');
        held.release();
        expect(await late).toEqual(NOT_A_MEMBER_POST);
        expect(await t.log()).toEqual([[1, 'alice']]);
        expect(await t.members()).toEqual(['alice', 'bob', 'xavier']);
        expect((await store.usage('phone')).bytes).toBe(charged);
        // The phone's next commit is refused by the DS's own check; the members go on.
        expect(await t.submit('phone', 1, 3)).toEqual(NOT_A_MEMBER_POST);
        expect(await t.submit('xavier', 1, 1)).toEqual({ accepted: true, seq: 2 });
        expect(await t.submit('bob', 1, 3)).toEqual({ accepted: true, seq: 3 });
        expect(await t.submit('alice', 2, 1)).toEqual({ accepted: true, seq: 4 });
        // Paired again, the phone commits for bob as before.
        await store.putPairing('bob', 'phone');
        expect(await t.submit('phone', 2, 3)).toEqual({ accepted: true, seq: 5 });
      } finally {
        await store.close?.();
      }
    });

    it(`${name}, strong with readTo (BROKE, fixed): the phone's commit saying how far it read, held while the pairing ends, is not-a-member (not 'unread-proposal' after 16 appends); nothing logged`, async () => {
      const store = await make();
      try {
        const t = await strongTrio(store);
        await store.putPairing('bob', 'phone');
        let appends = 0;
        const s = store as { append: DeliveryStore['append'] };
        const original = s.append.bind(store);
        s.append = (...args) => (args[0].sender === 'phone' && appends++, original(...args));
        const held = holdNext(store, 'append');
        const late = t.submit('phone', 1, 3, { readTo: 1 });
        await held.reached;
        await store.removePairing('bob', 'phone');
        held.release();
        expect(await late).toEqual(NOT_A_MEMBER_POST);
        expect(appends).toBe(1);
        expect(await t.log()).toEqual([[1, 'alice']]);
        expect(await t.submit('bob', 1, 3, { readTo: 1 })).toEqual({ accepted: true, seq: 2 });
      } finally {
        await store.close?.();
      }
    });

    it(`${name}, eventual (BROKE, fixed): bob's phone's commit removing xavier, held while the pairing ends (bob's key rotated, removePairing), is refused not-a-member; nothing logged; the members go on`, async () => {
      const t = await eventualTrio(make, new Uint8Array([0x63, 0x0a, 2, ...crypto.getRandomValues(new Uint8Array(4)), ++nextId]));
      try {
        await t.store.putPairing('bob', 'phone');
        const held = holdNext(t.store, 'append');
        const late = t.submit('phone', 2, 3, { removed: ['xavier'] });
        await held.reached;
        await t.store.removePairing('bob');
        held.release();
        expect(await late).toEqual(NOT_A_MEMBER_POST);
        expect(await t.log()).toEqual([[1, 'alice'], [2, 'alice']]);
        expect(await t.members()).toEqual(['alice', 'bob', 'xavier']);
        expect(await t.submit('xavier', 2, 1)).toEqual({ accepted: true, seq: 3 });
        expect(await t.submit('bob', 2, 3)).toEqual({ accepted: true, seq: 4 });
      } finally {
        await t.close();
      }
    });

    it(`${name}: a device paired to bob and xavier posts for xavier when bob's removal refuses its held post (postsFor bob); logged once, as the tablet's`, async () => {
      const store = await make();
      try {
        const t = await strongTrio(store);
        await store.putPairing('bob', 'tablet');
        await store.putPairing('xavier', 'tablet');
        const held = holdNext(store, 'append');
        const late = t.submit('tablet', 1, 1);
        await held.reached;
        expect(await t.submit('alice', 1, 3, { removed: ['bob'] })).toEqual({ accepted: true, seq: 2 });
        held.release();
        expect(await late).toEqual({ accepted: true, seq: 3 });
        expect(await t.log()).toEqual([[1, 'alice'], [2, 'alice'], [3, 'tablet']]);
      } finally {
        await store.close?.();
      }
    });

    it(`${name}: the same bytes after a refused try: not-a-member while removed (also by digest), logged once after the re-add, and that seq again on a retry`, async () => {
      const store = await make();
      try {
        const t = await strongTrio(store);
        const bytes = t.msg(1, 1);
        const held = holdNext(store, 'append');
        const late = t.ds.submit(t.gid, 'xavier', bytes);
        await held.reached;
        expect(await t.submit('alice', 1, 3, { removed: ['xavier'] })).toEqual({ accepted: true, seq: 2 });
        held.release();
        expect(await late).toEqual(NOT_A_MEMBER_POST);
        expect(await t.ds.submit(t.gid, 'xavier', bytes)).toEqual(NOT_A_MEMBER_POST);
        expect(await store.seqOf(t.hex, toHex(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes.slice()))))).toBeUndefined();
        expect(await t.submit('alice', 2, 3, { added: ['xavier'] })).toEqual({ accepted: true, seq: 3 });
        expect(await t.ds.submit(t.gid, 'xavier', bytes)).toEqual({ accepted: true, seq: 4 });
        expect(await t.ds.submit(t.gid, 'xavier', bytes)).toEqual({ accepted: true, seq: 4 });
        expect(await t.log()).toEqual([[1, 'alice'], [2, 'alice'], [3, 'alice'], [4, 'xavier']]);
      } finally {
        await store.close?.();
      }
    });

    it(`${name}: a retry of a message logged before its sender's removal, held while the removal goes in, gets its first seq (the digest looked up first); nothing logged twice; a retry after the removal is not-a-member`, async () => {
      const store = await make();
      try {
        const t = await strongTrio(store);
        const bytes = t.msg(1, 1);
        // The first try is checked and held; the retry (its reply lost) passes the DS's digest lookup before the first is
        // logged, and is held at its append while the first goes in and alice's removal of xavier is logged.
        const held1 = holdNext(store, 'append');
        const first = t.ds.submit(t.gid, 'xavier', bytes);
        await held1.reached;
        const held2 = holdNext(store, 'append');
        const retry = t.ds.submit(t.gid, 'xavier', bytes);
        await held2.reached;
        held1.release();
        expect(await first).toEqual({ accepted: true, seq: 2 });
        expect(await t.submit('alice', 1, 3, { removed: ['xavier'] })).toEqual({ accepted: true, seq: 3 });
        held2.release();
        expect(await retry).toEqual({ accepted: true, seq: 2 });
        expect(await t.ds.submit(t.gid, 'xavier', bytes)).toEqual(NOT_A_MEMBER_POST);
        expect(await t.log()).toEqual([[1, 'alice'], [2, 'xavier'], [3, 'alice']]);
      } finally {
        await store.close?.();
      }
    });

    it(`${name}, eventual: a refused proposal takes nothing of its member's share or quota (the share, 2 of 7, is whole after the re-add: 2 go in, the third is too-many-proposals)`, async () => {
      const store = await make();
      try {
        const ds = await DeliveryService.create({ store, pageSize: 8 });
        const gid = new Uint8Array([0x63, 0x0a, 3, ...crypto.getRandomValues(new Uint8Array(4)), ++nextId]);
        const hex = toHex(gid);
        await ds.createGroup(gid, 'alice', { consistency: 'eventual' });
        let n = 0;
        const submit = (sender: string, epoch: number, type: number, extras = {}) => ds.submit(gid, sender, headerOnly(gid, epoch, type, ++n), extras);
        expect(await submit('alice', 0, 3, { added: ['bob', 'xavier'] })).toEqual({ accepted: true, seq: 1 });
        expect(await submit('alice', 1, 3)).toEqual({ accepted: true, seq: 2 });
        const usage = (await store.usage('xavier')).bytes;
        const held = holdNext(store, 'append');
        const late = submit('xavier', 2, 2);
        await held.reached;
        // For epoch 1: leaves the DS's epoch (2) where it is, so the epoch's proposal counts are not started again.
        expect(await submit('alice', 1, 3, { removed: ['xavier'] })).toEqual({ accepted: true, seq: 3 });
        held.release();
        expect(await late).toEqual(NOT_A_MEMBER_POST);
        expect((await store.usage('xavier')).bytes).toBe(usage);
        expect((await store.proposalCounts!(hex, ['xavier'])).get('xavier')).toBeUndefined();
        expect(await submit('alice', 1, 3, { added: ['xavier'] })).toEqual({ accepted: true, seq: 4 });
        expect((await store.getGroup(hex))!.epoch).toBe(2);
        expect(await submit('xavier', 2, 2)).toEqual({ accepted: true, seq: 5 });
        expect(await submit('xavier', 2, 2)).toEqual({ accepted: true, seq: 6 });
        expect(await submit('xavier', 2, 2)).toMatchObject({ accepted: false, reason: 'too-many-proposals' });
        expect(await submit('bob', 2, 2)).toEqual({ accepted: true, seq: 7 });
      } finally {
        await store.close?.();
      }
    });

    it(`${name}: a group deleted and registered again (xavier added back) while xavier's post is held, after his removal: unknown-group "the group was deleted", nothing in the new log; xavier posts in the new group`, async () => {
      const store = await make();
      try {
        const t = await strongTrio(store);
        const held = holdNext(store, 'append');
        const late = t.submit('xavier', 1, 1);
        await held.reached;
        expect(await t.submit('alice', 1, 3, { removed: ['bob', 'xavier'] })).toEqual({ accepted: true, seq: 2 });
        await t.ds.deleteGroup(t.gid, 'alice');
        await t.ds.createGroup(t.gid, 'alice');
        expect(await t.submit('alice', 0, 3, { added: ['xavier'] })).toEqual({ accepted: true, seq: 1 });
        held.release();
        expect(await late).toEqual(DELETED);
        expect(await t.log()).toEqual([[1, 'alice']]);
        expect(await t.submit('xavier', 1, 1)).toEqual({ accepted: true, seq: 2 });
      } finally {
        await store.close?.();
      }
    });

    it(`${name}: membership churn forcing 17 refusals of xavier's message costs the attacker 34 logged commits (a removal and a re-add a try); xavier gets stale "send it again", nothing of his logged or charged, and his next send goes in`, async () => {
      const store = await make();
      try {
        const t = await strongTrio(store);
        let epoch = 1;
        const commits: SubmitResult[] = [];
        const around = aroundPosts(
          store,
          'xavier',
          17,
          async () => commits.push(await t.submit('alice', epoch++, 3, { removed: ['xavier'] })),
          async () => commits.push(await t.submit('alice', epoch++, 3, { added: ['xavier'] })),
        );
        const usage = (await store.usage('xavier')).bytes;
        // An application message, within the epoch tolerance only for the first few tries: one for the latest epoch each
        // time is what an attacker needs; the DS's own check then answers stale once it falls behind. Use a tolerance-free DS.
        const ds = await DeliveryService.create({ store, epochTolerance: 1000 });
        expect(await ds.submit(t.gid, 'xavier', t.msg(1, 1))).toEqual(MOVED17);
        expect(around.calls()).toBe(17);
        expect(commits).toHaveLength(34);
        expect(commits.every((c) => c.accepted)).toBe(true);
        expect((await t.log()).filter(([, s]) => s === 'xavier')).toEqual([]);
        expect((await store.usage('xavier')).bytes).toBe(usage);
        expect(await ds.submit(t.gid, 'xavier', t.msg(epoch, 1))).toEqual({ accepted: true, seq: 36 });
      } finally {
        await store.close?.();
      }
    });
  }

  it('PostgreSQL, two DeliveryServices on one database: xavier held at one while the other logs his removal: not-a-member, nothing logged; and a device held at one while its pairing ends at the other', async () => {
    const [a, b] = await Promise.all([stores[2]![1](), stores[2]![1]()]);
    try {
      const [dsA, dsB] = await Promise.all([DeliveryService.create({ store: a }), DeliveryService.create({ store: b })]);
      const t = await strongTrio(a, dsA);
      const held = holdNext(a, 'append');
      const late = t.submit('xavier', 1, 1, {}, dsA);
      await held.reached;
      expect(await t.submit('alice', 1, 3, { removed: ['xavier'] }, dsB)).toEqual({ accepted: true, seq: 2 });
      held.release();
      expect(await late).toEqual(NOT_A_MEMBER_POST);
      await a.putPairing('bob', 'phone');
      const held2 = holdNext(a, 'append');
      const late2 = t.submit('phone', 2, 2, {}, dsA);
      await held2.reached;
      await dsB.ceasePairing('phone', 'bob', 'phone');
      held2.release();
      expect(await late2).toEqual(NOT_A_MEMBER_POST);
      expect(await t.log()).toEqual([[1, 'alice'], [2, 'alice']]);
      expect(await t.submit('bob', 2, 2, {}, dsB)).toEqual({ accepted: true, seq: 3 });
    } finally {
      await a.close?.();
      await b.close?.();
    }
    expect(postgresUrl()).toMatch(/^postgres/);
  });

  it('memory, over HTTP: an outsider without a session is 401, a registered non-member 403 not-a-member (its post and its read), and a device whose pairing ended, its commit held, 403 not-a-member; nothing logged', async () => {
    const store = new MemoryDeliveryStore();
    const server = await startDeliveryServer({ port: 0, store });
    try {
      const tag = Math.random().toString(36).slice(2, 8);
      const [alice, bob, phone, mallory] = await Promise.all(['alice', 'bob', 'phone', 'mallory'].map((n) => registeredClient(server.url, `${n}-${tag}`)));
      const ids = [`alice-${tag}`, `bob-${tag}`, `phone-${tag}`, `mallory-${tag}`] as const;
      const tokens = await Promise.all(ids.map((id, i) => tokenOf(server.url, id, [alice, bob, phone, mallory][i]!)));
      const gid = new Uint8Array([0x63, 0x0a, 4, ...crypto.getRandomValues(new Uint8Array(4))]);
      const hex = toHex(gid);
      const b64 = (m: Uint8Array) => Buffer.from(m).toString('base64');
      // bob's group (the HTTP server requires grants for an Add: bob alone, alice registered but no member).
      await server.ds.createGroup(gid, ids[1]);
      expect(await server.ds.submit(gid, ids[1], headerOnly(gid, 0, 3, 1))).toEqual({ accepted: true, seq: 1 });
      await store.putPairing(ids[1], ids[2]);
      const post = (m: Uint8Array, token?: string, extra = {}) => raw(server.url, 'POST', `/v1/groups/${hex}/messages`, { message: b64(m), ...extra }, token);
      const unauthenticated = { status: 401, body: { reason: 'unauthenticated', error: 'authenticate first (POST /v1/auth/challenge, then /v1/auth/session)' } };
      expect(await post(headerOnly(gid, 1, 1, 2))).toEqual(unauthenticated);
      expect(await post(headerOnly(gid, 1, 1, 2), 'forged.token')).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
      expect(await post(headerOnly(gid, 1, 1, 3), tokens[3])).toEqual({ status: 403, body: { reason: 'not-a-member', error: 'the sender is not a member of the group (not-a-member)' } });
      expect(await raw(server.url, 'GET', `/v1/groups/${hex}/messages?after=0`, undefined, tokens[3])).toEqual({ status: 403, body: { reason: 'not-a-member', error: 'not a member of the group (not-a-member)' } });
      const held = holdNext(store, 'append');
      const late = post(headerOnly(gid, 1, 3, 4), tokens[2]);
      await held.reached;
      expect(await raw(server.url, 'POST', '/v1/pairings:cease', { anchor: ids[1], device: ids[2] }, tokens[1])).toMatchObject({ status: 200 });
      held.release();
      expect(await late).toEqual({ status: 403, body: { reason: 'not-a-member', error: 'the sender is not a member of the group (not-a-member)' } });
      expect((await store.readLog(hex, 0, 10)).map((m) => [m.seq, m.sender])).toEqual([[1, ids[1]]]);
      expect(await post(headerOnly(gid, 1, 1, 5), tokens[1])).toEqual({ status: 200, body: { seq: 2 } });
      expect(await post(headerOnly(gid, 1, 1, 6), tokens[0])).toEqual({ status: 403, body: { reason: 'not-a-member', error: 'the sender is not a member of the group (not-a-member)' } });
    } finally {
      await server.close();
    }
  });
});
