/**
 * review62c: an independent attack on two changes of the Delivery Service (docs/PROTOCOL.md §8.3):
 * - 87cb273, `DeliveryService.subscribe` ends `unavailable` when the store fails its lookup at the call;
 * - 1052a13, a reserved id's deletion deletes only a reservation (`DeleteGroupOptions.reserved`).
 * Over memory, SQLite and PostgreSQL. Each test states what was tried and asserts the exact outcome, and that the honest
 * parties go on.
 *
 * Found: a subscription whose lookup at the call waited (answered late) while its group was deleted and its id registered
 * again took the new registration for the one at the call, and pushed the new group's log from the position a
 * notification of the old group had set (the review61c class, through a slow lookup instead of a failed one). Fixed: a
 * deletion announced (seq 0) before the lookup answers ends the subscription, onEnd unknown-group "the group was deleted".
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { DeliveryService, DsError, type DeliveryStore, type DeleteGroupOptions, type Reading } from 'paired-mls/services';
import { headerOnly, holdNext, raw, registeredClient, tokenOf } from './ds-helpers.js';
import { lossy, serveLossy, type Closable } from './ds-lossy-store.js';
import { everyStore } from './ds-store-kinds.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tag = () => Math.random().toString(36).slice(2, 8);
const utf8Bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
const seqs = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const refusal = (e: unknown) => (e instanceof DsError ? { reason: e.reason, message: e.message } : e);

const DELETED = { reason: 'unknown-group', message: 'the group was deleted (unknown-group)' };
const UNAVAILABLE = { reason: 'unavailable', message: 'the store failed to look the group up when subscribing: subscribe again (unavailable)' };
const NO_LONGER_RESERVED = { reason: 'unknown-group', message: 'the id is no longer reserved: its group was registered, or the id deleted, meanwhile (unknown-group)' };
const OTHERS = { reason: 'forbidden', message: 'this group has other members: it is theirs too (forbidden)' };
const NOT_MEMBER = { reason: 'forbidden', message: "only a group's only member may delete it (a paired device is no member) (forbidden)" };

/**
 * `inner` behind a Proxy whose next `getGroup` (once `gate()` is called) waits until released, then answers or (`fail`)
 * throws: a lookup answered late, or failed late.
 */
function gated(inner: Closable) {
  let next: { entered: () => void; gate: Promise<boolean> } | undefined;
  const getGroup = async (id: string) => {
    const h = next;
    next = undefined;
    if (h) {
      h.entered();
      if (await h.gate) throw new Error('the database is away');
    }
    return inner.getGroup(id);
  };
  const store = new Proxy(inner, {
    get: (t, k) => (k === 'getGroup' ? getGroup : typeof (t as any)[k] === 'function' ? (t as any)[k].bind(t) : (t as any)[k]),
  }) as Closable;
  const gate = () => {
    let release!: (fail: boolean) => void;
    let entered!: () => void;
    const g = new Promise<boolean>((r) => (release = r));
    const reached = new Promise<void>((r) => (entered = r));
    next = { entered, gate: g };
    return { reached, answer: () => release(false), fail: () => release(true) };
  };
  return { store, gate };
}

describe('review62c: DeliveryService.subscribe and its lookup at the call (memory, SQLite, PostgreSQL)', () => {
  const { stores } = everyStore('paired-mls-review62c-sub-');

  async function withDs(make: () => Promise<Closable>, run: (t: Awaited<ReturnType<typeof setup>>) => Promise<void>) {
    const inner = await make();
    try {
      await run(await setup(inner));
    } finally {
      await sleep(200);
      await inner.close?.();
    }
  }

  async function setup(inner: Closable) {
    const l = lossy(inner);
    const g = gated(l.store);
    const ds = await DeliveryService.create({ store: g.store });
    const gid = new Uint8Array([0xec, ...Buffer.from(tag())]);
    const register = () => ds.createGroup(gid, 'alice');
    await register();
    let fill = 1;
    const post = async () => {
      const r = await ds.submit(gid, 'alice', headerOnly(gid, 0, 1, fill++, 64));
      if (!r.accepted) throw new Error(`refused: ${r.message}`);
      return r.seq;
    };
    const follow = (options: { throwing?: boolean; reading?: Reading } = {}) => {
      const got: number[] = [];
      const ends: { reason: string; message: string }[] = [];
      const stop = ds.subscribe(
        gid,
        (m) => {
          got.push(m.seq);
          if (options.throwing) throw new Error('the listener fails');
        },
        {
          reading: options.reading,
          onEnd: (e: DsError) => {
            ends.push({ reason: e.reason, message: e.message });
            if (options.throwing) throw new Error('onEnd fails');
          },
        },
      );
      return { got, ends, stop };
    };
    return { l, g, ds, gid, register, post, follow, remove: () => ds.deleteGroup(gid, 'alice') };
  }

  for (const [name, make] of stores) {
    it(`${name}: a lookup that fails after a notification already set the start ends once, unavailable, nothing pushed; later posts push nothing, no second onEnd; a new subscriber gets them`, async () => {
      await withDs(make, async ({ g, post, follow }) => {
        const held = g.gate();
        const sub = follow();
        await held.reached;
        await post();
        await post();
        await sleep(100);
        held.fail();
        await expect.poll(() => sub.ends).toEqual([UNAVAILABLE]);
        await post();
        await sleep(100);
        const fresh = follow();
        await sleep(100);
        await post();
        await expect.poll(() => fresh.got).toEqual([4]);
        await sleep(300);
        expect({ got: sub.got, ends: sub.ends }).toEqual({ got: [], ends: [UNAVAILABLE] });
        expect(fresh.ends).toEqual([]);
        fresh.stop();
      });
    });

    it(`${name}: unsubscribed while its lookup waits, a lookup that then fails calls no onEnd and pushes nothing`, async () => {
      await withDs(make, async ({ g, post, follow }) => {
        const held = g.gate();
        const sub = follow();
        await held.reached;
        await post();
        sub.stop();
        held.fail();
        await post();
        await sleep(300);
        expect({ got: sub.got, ends: sub.ends }).toEqual({ got: [], ends: [] });
      });
    });

    it(`${name}: an onEnd that throws (failed lookup) and a listener that throws crash nothing; the throwing listener still gets every message`, async () => {
      await withDs(make, async ({ g, post, follow }) => {
        g.gate().fail();
        const failed = follow({ throwing: true });
        await expect.poll(() => failed.ends).toEqual([UNAVAILABLE]);
        const sub = follow({ throwing: true });
        await sleep(50);
        for (let i = 0; i < 3; i++) await post();
        await expect.poll(() => sub.got).toEqual(seqs(1, 3));
        expect(sub.ends).toEqual([]);
        sub.stop();
      });
    });

    it(`${name}: with reading given, a store failing a group lookup neither ends it nor loses a message: the next notification reads again`, async () => {
      await withDs(make, async ({ ds, l, gid, post, follow }) => {
        await sleep(100);
        const reading = await ds.reader(gid, 'alice');
        expect(reading).toEqual({ registration: expect.any(String) });
        const sub = follow({ reading });
        await post();
        await expect.poll(() => sub.got).toEqual([1]);
        // The read of the next notification fails (its registration check): seq 2's notification handed late, after it.
        l.deaf(true);
        await post();
        await sleep(100);
        l.deaf(false);
        l.failGroupRead();
        l.late(toHex(gid), 2);
        await sleep(100);
        expect(sub.got).toEqual([1]);
        await post();
        await expect.poll(() => sub.got).toEqual(seqs(1, 3));
        expect(sub.ends).toEqual([]);
        sub.stop();
      });
    });

    it(`${name}: a lookup at the call answered late, after its group was deleted and registered again meanwhile, ends the subscription unknown-group "the group was deleted", nothing of the new log pushed (before the fix: the new log pushed from the old group's position, [4, 5])`, async () => {
      await withDs(make, async ({ g, post, remove, register, follow }) => {
        for (let i = 0; i < 3; i++) await post();
        // PostgreSQL's notifications come late: theirs before the subscription.
        await sleep(100);
        const held = g.gate();
        const sub = follow();
        await held.reached;
        // The old group's seq 4 sets the start (after 3), then the group is deleted and its id registered again.
        await post();
        await remove();
        await register();
        for (let i = 0; i < 5; i++) await post();
        await sleep(100);
        held.answer();
        await expect.poll(() => sub.ends).toEqual([DELETED]);
        await post();
        await sleep(300);
        expect({ got: sub.got, ends: sub.ends }).toEqual({ got: [], ends: [DELETED] });
        // The new group's subscriber is served from its start.
        const fresh = follow();
        await sleep(100);
        await post();
        await expect.poll(() => fresh.got).toEqual([7]);
        fresh.stop();
      });
    });

    it(`${name}: a lookup answered late with no deletion meanwhile (posts only) still pushes every message from the first notification on, no onEnd`, async () => {
      await withDs(make, async ({ g, post, follow }) => {
        await post();
        await sleep(100);
        const held = g.gate();
        const sub = follow();
        await held.reached;
        for (let i = 0; i < 3; i++) await post();
        await sleep(100);
        held.answer();
        await expect.poll(() => sub.got).toEqual(seqs(2, 4));
        await post();
        await expect.poll(() => sub.got).toEqual(seqs(2, 5));
        expect(sub.ends).toEqual([]);
        sub.stop();
      });
    });
  }
});

/** A group of `members[0]`'s whose ReInit commit reserved `successor` for `members` (the store's side, `CommitUpdate.reserve`). */
async function reserveFor(store: DeliveryStore, successor: Uint8Array, members: string[], sender = members[0]!): Promise<string> {
  const retired = toHex(utf8Bytes(`retired ${Math.random()}`));
  expect(await store.insertGroup({ groupId: retired, epoch: 0, members, consistency: 'strong' })).toBe(true);
  const commit = { groupId: retired, sender, bytes: new Uint8Array([1, 2, 3]), digest: `d${Math.random()}` };
  expect(await store.append(commit, { expectEpoch: 0, setEpoch: 1, groupInfo: new Uint8Array(0), reserve: { groupId: toHex(successor), members } })).toBe(1);
  return retired;
}

const isGoneOrTombstone = (row: { epoch: number } | undefined) => row === undefined || row.epoch === -2;

describe('review62c: a reserved id\'s deletion (memory, SQLite, PostgreSQL)', () => {
  const { stores } = everyStore('paired-mls-review62c-res-');

  for (const [name, make] of stores) {
    it(`${name}: a reservation for two members: neither deletes it (forbidden, other members), an outsider is forbidden, the reservation stays; the other member claims it and the group goes on`, async () => {
      const store = await make();
      try {
        const ds = await DeliveryService.create({ store });
        const successor = utf8Bytes(`successor ${Math.random()}`);
        await reserveFor(store, successor, ['alice', 'bob']);
        expect(await ds.deleteGroup(successor, 'bob').then(() => 'deleted', refusal)).toEqual(OTHERS);
        expect(await ds.deleteGroup(successor, 'alice').then(() => 'deleted', refusal)).toEqual(OTHERS);
        expect(await ds.deleteGroup(successor, 'mallory').then(() => 'deleted', refusal)).toEqual(NOT_MEMBER);
        const row = await store.getGroup(toHex(successor));
        expect({ epoch: row?.epoch, members: row?.members }).toEqual({ epoch: -1, members: ['alice', 'bob'] });
        await ds.createGroup(successor, 'bob');
        expect(await ds.submit(successor, 'bob', headerOnly(successor, 0, 1, 1, 64))).toEqual({ accepted: true, seq: 1 });
      } finally {
        await (store as { close?(): unknown }).close?.();
      }
    });

    it(`${name}: two deletions of a reservation racing: one deletes it, the other is 404 "no longer reserved"; the committer's record charge is given back exactly once; the id is then alice's to register`, async () => {
      const store = await make();
      try {
        const ds = await DeliveryService.create({ store });
        const successor = utf8Bytes(`successor ${Math.random()}`);
        await reserveFor(store, successor, ['alice']);
        const reserved = (await store.usage('alice')).bytes;
        const held = holdNext(store, 'deleteGroup');
        const first = ds.deleteGroup(successor, 'alice').then(() => 'deleted', refusal);
        await held.reached;
        const second = await ds.deleteGroup(successor, 'alice').then(() => 'deleted', refusal);
        held.release();
        expect([second, await first]).toEqual(['deleted', NO_LONGER_RESERVED]);
        const after = (await store.usage('alice')).bytes;
        // The reservation's record (STORED_RECORD_BYTES, 256) went back once, to the ReInit committer it counted for.
        expect(reserved - after).toBe(256);
        // Given back once: a third deletion changes nothing.
        expect(await ds.deleteGroup(successor, 'alice').then(() => 'deleted', refusal)).toEqual({ reason: 'unknown-group', message: 'no such group (unknown-group)' });
        expect((await store.usage('alice')).bytes).toBe(after);
        expect(isGoneOrTombstone(await store.getGroup(toHex(successor)))).toBe(true);
        await ds.createGroup(successor, 'alice');
        expect(await ds.submit(successor, 'alice', headerOnly(successor, 0, 1, 1, 64))).toEqual({ accepted: true, seq: 1 });
      } finally {
        await (store as { close?(): unknown }).close?.();
      }
    });

    it(`${name}: the claim charges the group's record to its creator and gives the reservation's back; a deletion raced by the claim gives back nothing more (usage as after the claim alone)`, async () => {
      const store = await make();
      try {
        const ds = await DeliveryService.create({ store });
        const successor = utf8Bytes(`successor ${Math.random()}`);
        await reserveFor(store, successor, ['alice']);
        const held = holdNext(store, 'deleteGroup');
        const deletion = ds.deleteGroup(successor, 'alice').then(() => 'deleted', refusal);
        await held.reached;
        await ds.createGroup(successor, 'alice');
        const claimed = (await store.usage('alice')).bytes;
        held.release();
        expect(await deletion).toEqual(NO_LONGER_RESERVED);
        expect((await store.usage('alice')).bytes).toBe(claimed);
        expect((await store.getGroup(toHex(successor)))?.registration).toEqual(expect.any(String));
      } finally {
        await (store as { close?(): unknown }).close?.();
      }
    });

    it(`${name}: a reservation committed by a paired device of its sole member: the member's deletion gives the record back to the device (the committer), once; the member's usage is untouched`, async () => {
      const store = await make();
      try {
        const ds = await DeliveryService.create({ store });
        const [member, device] = [`carol-${tag()}`, `carol-phone-${tag()}`];
        const successor = utf8Bytes(`successor ${Math.random()}`);
        await reserveFor(store, successor, [member], device);
        const [m0, d0] = [(await store.usage(member)).bytes, (await store.usage(device)).bytes];
        await ds.deleteGroup(successor, member);
        expect([(await store.usage(member)).bytes, (await store.usage(device)).bytes]).toEqual([m0, d0 - 256]);
        expect(await ds.deleteGroup(successor, member).then(() => 'deleted', refusal)).toEqual({ reason: 'unknown-group', message: 'no such group (unknown-group)' });
        expect([(await store.usage(member)).bytes, (await store.usage(device)).bytes]).toEqual([m0, d0 - 256]);
        // The device is no member: it cannot delete a reservation of its member's either.
        const other = utf8Bytes(`other ${Math.random()}`);
        await reserveFor(store, other, [member], device);
        expect(await ds.deleteGroup(other, device).then(() => 'deleted', refusal)).toEqual(NOT_MEMBER);
        expect((await store.getGroup(toHex(other)))?.epoch).toBe(-1);
      } finally {
        await (store as { close?(): unknown }).close?.();
      }
    });

    it(`${name}: a reservation claimed and the group deleted while a deletion of the reservation waits: that deletion is 404 "no longer reserved", the tombstone stays its member's (it registers the id again), usage unchanged by it`, async () => {
      const store = await make();
      try {
        const ds = await DeliveryService.create({ store });
        const dave = `dave-${tag()}`;
        const successor = utf8Bytes(`successor ${Math.random()}`);
        await reserveFor(store, successor, [dave]);
        const held = holdNext(store, 'deleteGroup');
        const deletion = ds.deleteGroup(successor, dave).then(() => 'deleted', refusal);
        await held.reached;
        await ds.createGroup(successor, dave);
        expect(await ds.submit(successor, dave, headerOnly(successor, 0, 1, 1, 64))).toEqual({ accepted: true, seq: 1 });
        await ds.deleteGroup(successor, dave);
        const usage = (await store.usage(dave)).bytes;
        held.release();
        expect(await deletion).toEqual(NO_LONGER_RESERVED);
        expect((await store.usage(dave)).bytes).toBe(usage);
        await expect(ds.createGroup(successor, 'mallory')).rejects.toMatchObject({ reason: 'group-deleted' });
        await ds.createGroup(successor, dave);
        expect(await ds.submit(successor, dave, headerOnly(successor, 0, 1, 2, 64))).toEqual({ accepted: true, seq: 1 });
      } finally {
        await (store as { close?(): unknown }).close?.();
      }
    });

    it(`${name}: a custom store that ignores DeleteGroupOptions.reserved (an older adapter) deletes the group claimed meanwhile: the limit stands with such a store (documented), and the DS answers as a deletion`, async () => {
      const inner = await make();
      try {
        const store = new Proxy(inner, {
          get: (t, k) =>
            k === 'deleteGroup'
              ? (id: string, member: string, { reserved: _, ...options }: DeleteGroupOptions) => t.deleteGroup!(id, member, options)
              : typeof (t as any)[k] === 'function'
                ? (t as any)[k].bind(t)
                : (t as any)[k],
        }) as Closable;
        const ds = await DeliveryService.create({ store });
        const successor = utf8Bytes(`successor ${Math.random()}`);
        await reserveFor(store, successor, ['alice']);
        const held = holdNext(store, 'deleteGroup');
        const deletion = ds.deleteGroup(successor, 'alice').then(() => 'deleted', refusal);
        await held.reached;
        await ds.createGroup(successor, 'alice');
        held.release();
        expect(await deletion).toBe('deleted');
        expect(await ds.epoch(successor)).toBeUndefined();
      } finally {
        await (inner as { close?(): unknown }).close?.();
      }
    });

    it(`${name}: over HTTP, DELETE /v1/groups/:id of a reserved id: no token 401, an outsider 403, its sole member 200 and the reservation gone; again 404`, async () => {
      await serveLossy(make, {}, async (t) => {
        const successor = utf8Bytes(`successor ${Math.random()}`);
        await reserveFor(t.l.store, successor, [t.name]);
        const path = `/v1/groups/${toHex(successor)}`;
        const anon = await raw(t.s.url, 'DELETE', path);
        expect(anon.status).toBe(401);
        const mallory = `mallory-${tag()}`;
        const mt = await tokenOf(t.s.url, mallory, await registeredClient(t.s.url, mallory));
        expect(await raw(t.s.url, 'DELETE', path, undefined, mt)).toEqual({ status: 403, body: { reason: 'forbidden', error: "only a group's only member may delete it (a paired device is no member) (forbidden)" } });
        expect((await t.l.store.getGroup(toHex(successor)))?.epoch).toBe(-1);
        expect(await raw(t.s.url, 'DELETE', path, undefined, t.token)).toEqual({ status: 200, body: {} });
        expect(isGoneOrTombstone(await t.l.store.getGroup(toHex(successor)))).toBe(true);
        expect(await raw(t.s.url, 'DELETE', path, undefined, t.token)).toEqual({ status: 404, body: { reason: 'unknown-group', error: 'no such group (unknown-group)' } });
        // Alice's own group goes on.
        expect(await t.post()).toBe(1);
      });
    });
  }
});
