/**
 * audit63: the documented answers of a paired device's commit that the store refuses for its pairing (`postsFor`, docs/PROTOCOL.md
 * §8.1 *Ordering*: "refused so 17 times it is 409: in a strong group `stale` …, in an eventual one `epoch-taken` …", and
 * "(with `readTo` too, not answered `unread-proposal`); paired again by then, it is logged"), which no other test pinned:
 * a store refusing every append that carries `postsFor` while the DS finds the device paired each time (a pairing that
 * ends and comes back between each check and its append), and one pairing end and return around the first append.
 * The readTo cases failed before the fix in `#submit` (the readTo loop took the refusal for a log past readTo: 400
 * `malformed` "readTo is past the end of the log"); they now get the answers without readTo.
 */
import { describe, expect, it } from 'vitest';
import { DeliveryService, MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { toHex } from 'paired-mls';
import { headerOnly } from './ds-helpers.js';

/** `store.append` refuses every message carrying `postsFor` (counted), and logs everything else. */
function refusingPosts(store: MemoryDeliveryStore): { refused: () => number } {
  const s = store as { append: DeliveryStore['append'] };
  const original = s.append.bind(store);
  let refused = 0;
  s.append = async (message, update, quota, budget) => (message.postsFor !== undefined ? (refused++, undefined) : original(message, update, quota, budget));
  return { refused: () => refused };
}

async function trio(consistency: 'strong' | 'eventual', id: number) {
  const store = new MemoryDeliveryStore();
  const ds = await DeliveryService.create({ store });
  const gid = new Uint8Array([0xa6, 0x63, id]);
  await ds.createGroup(gid, 'alice', { consistency });
  expect(await ds.submit(gid, 'alice', headerOnly(gid, 0, 3, 1), { added: ['bob', 'xavier'] })).toEqual({ accepted: true, seq: 1 });
  await store.putPairing('bob', 'phone');
  return { store, ds, gid };
}

describe('audit63: a paired device commit the store refuses for its pairing (postsFor)', () => {
  it('strong: 409 stale "(17 tries)", 17 appends, nothing logged (PROTOCOL §8.1)', async () => {
    const { store, ds, gid } = await trio('strong', 1);
    const { refused } = refusingPosts(store);
    expect(await ds.submit(gid, 'phone', headerOnly(gid, 1, 3, 2))).toEqual({
      accepted: false,
      reason: 'stale',
      message: "the sender's membership moved while the message was checked (17 tries); send it again (stale)",
    });
    expect(refused()).toBe(17);
    expect((await store.readLog(toHex(gid), 0, 10)).map((m) => m.seq)).toEqual([1]);
  });

  it('eventual: 409 epoch-taken "the group\'s member list moved on … (17 tries)", 17 appends, nothing logged (PROTOCOL §8.1)', async () => {
    const { store, ds, gid } = await trio('eventual', 2);
    const { refused } = refusingPosts(store);
    expect(await ds.submit(gid, 'phone', headerOnly(gid, 1, 3, 2))).toEqual({
      accepted: false,
      reason: 'epoch-taken',
      message: "the group's member list moved on while the commit was checked (17 tries); process the group's messages and commit again (epoch-taken)",
    });
    expect(refused()).toBe(17);
    expect((await store.readLog(toHex(gid), 0, 10)).map((m) => m.seq)).toEqual([1]);
  });

  /** The device's first append of a commit runs while its pairing with bob has ended, and the pairing is back before the DS looks again. */
  function unpairedDuringAppend(store: MemoryDeliveryStore): { appends: () => number } {
    const s = store as { append: DeliveryStore['append'] };
    const original = s.append.bind(store);
    let appends = 0;
    s.append = async (message, update, quota, budget) => {
      if (message.sender !== 'phone') return original(message, update, quota, budget);
      if (appends++ > 0) return original(message, update, quota, budget);
      await store.removePairing('bob', 'phone');
      const seq = await original(message, update, quota, budget);
      await store.putPairing('bob', 'phone');
      return seq;
    };
    return { appends: () => appends };
  }

  it('strong, control (no readTo): the device paired again by the time the DS looks, its commit is taken again and logged (PROTOCOL §8.1 "paired again by then, it is logged")', async () => {
    const { store, ds, gid } = await trio('strong', 3);
    const { appends } = unpairedDuringAppend(store);
    expect(await ds.submit(gid, 'phone', headerOnly(gid, 1, 3, 2))).toEqual({ accepted: true, seq: 2 });
    expect(appends()).toBe(2);
  });

  // Before the fix: 400 malformed "readTo is past the end of the log", nothing logged (the readTo loop read a log that
  // did not move and took the store's refusal for a readTo past its end).
  it('strong with readTo: the device paired again by the time the DS looks, its commit is logged as without readTo (PROTOCOL §8.1)', async () => {
    const { store, ds, gid } = await trio('strong', 4);
    const { appends } = unpairedDuringAppend(store);
    expect(await ds.submit(gid, 'phone', headerOnly(gid, 1, 3, 2), { readTo: 1 })).toEqual({ accepted: true, seq: 2 });
    expect(appends()).toBe(2);
  });

  it('strong with readTo: a store refusing every append is 409 stale "(17 tries)" as without readTo, not malformed (PROTOCOL §8.1)', async () => {
    const { store, ds, gid } = await trio('strong', 5);
    const { refused } = refusingPosts(store);
    expect(await ds.submit(gid, 'phone', headerOnly(gid, 1, 3, 2), { readTo: 1 })).toEqual({
      accepted: false,
      reason: 'stale',
      message: "the sender's membership moved while the message was checked (17 tries); send it again (stale)",
    });
    expect(refused()).toBe(17);
    expect((await store.readLog(toHex(gid), 0, 10)).map((m) => m.seq)).toEqual([1]);
  });
});
