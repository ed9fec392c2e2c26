/**
 * An in-process subscription (`DeliveryService.subscribe`) follows the registration of its group it began on
 * (docs/PROTOCOL.md §8.3), as a WebSocket stream does: each read checks the group still has it, the page included, and
 * once it has not (the group deleted, its id perhaps registered again) the subscription ends, `onEnd` told unknown-group
 * "the group was deleted". Before, it pushed the new group's log from its old position on. Over the memory store, SQLite
 * and PostgreSQL (its notifications over LISTEN), each behind the `lossy` wrapper (a page read held, or a group lookup
 * failed, on demand): a subscription whose lookup at the call fails ends `unavailable` instead of following whichever
 * registration its first read finds.
 */
import { describe, expect, it } from 'vitest';
import { DeliveryService, type DsError } from 'paired-mls/services';
import { headerOnly } from './ds-helpers.js';
import { lossy, type Closable } from './ds-lossy-store.js';
import { everyStore } from './ds-store-kinds.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tag = () => Math.random().toString(36).slice(2, 8);
const seqs = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const DELETED = { reason: 'unknown-group', message: 'the group was deleted (unknown-group)' };
const UNAVAILABLE = { reason: 'unavailable', message: 'the store failed to look the group up when subscribing: subscribe again (unavailable)' };

describe('DeliveryService.subscribe follows its group\'s registration: deleted and registered again, it ends (memory, SQLite, PostgreSQL)', () => {
  const { stores } = everyStore('paired-mls-subscribe-registration-');

  /** An in-process DS (default mode) on a `lossy` store of `make`'s, alice's group registered there, and what a test does with them. */
  async function withDs(make: () => Promise<Closable>, run: (t: Awaited<ReturnType<typeof setup>>) => Promise<void>): Promise<void> {
    const inner = await make();
    try {
      await run(await setup(inner));
    } finally {
      // A subscription's read in flight would find the pool closed.
      await sleep(200);
      await inner.close?.();
    }
  }

  async function setup(inner: Closable) {
    const l = lossy(inner);
    const ds = await DeliveryService.create({ store: l.store });
    const gid = new Uint8Array([0xef, ...Buffer.from(tag())]);
    const register = () => ds.createGroup(gid, 'alice');
    await register();
    let fill = 1;
    const post = async () => {
      const r = await ds.submit(gid, 'alice', headerOnly(gid, 0, 1, fill++, 64));
      if (!r.accepted) throw new Error(`refused: ${r.message}`);
      return r.seq;
    };
    /** A subscription of the group: the sequence numbers it pushed, and how it ended (undefined: still on). */
    const follow = () => {
      const got: number[] = [];
      let ended: { reason: string; message: string } | undefined;
      const stop = ds.subscribe(gid, (m) => got.push(m.seq), { onEnd: (e: DsError) => (ended = { reason: e.reason, message: e.message }) });
      return { got, stop, ended: () => ended };
    };
    return { l, ds, gid, register, post, follow, remove: () => ds.deleteGroup(gid, 'alice') };
  }

  for (const [name, make] of stores) {
    it(`${name}: a subscriber whose group is deleted and registered again ends, onEnd unknown-group "the group was deleted", nothing of the new log pushed (before: it pushed the new log from its old position on, [4, 5, 6]); a new subscriber gets the new group's messages`, async () => {
      await withDs(make, async ({ post, remove, register, follow }) => {
        const old = follow();
        for (let i = 0; i < 3; i++) await post();
        await expect.poll(() => old.got).toEqual(seqs(1, 3));
        await remove();
        await register();
        const fresh = follow();
        for (let i = 0; i < 6; i++) await post();
        await expect.poll(() => fresh.got).toEqual(seqs(1, 6));
        await sleep(300);
        expect({ got: old.got, ended: old.ended() }).toEqual({ got: seqs(1, 3), ended: DELETED });
        expect(fresh.ended()).toBeUndefined();
        fresh.stop();
      });
    });

    it(`${name}: a subscriber whose page read waits while its group is deleted and registered again (the page then read from the new log) pushes none of it and ends, onEnd unknown-group "the group was deleted" (before: it pushed the new log's [2, 3])`, async () => {
      await withDs(make, async ({ l, post, remove, register, follow }) => {
        const old = follow();
        await post();
        await expect.poll(() => old.got).toEqual([1]);
        const page = l.holdRead(true);
        await post();
        await page.reached;
        await remove();
        await register();
        for (let i = 0; i < 3; i++) await post();
        page.release();
        await expect.poll(() => old.ended()).toEqual(DELETED);
        expect(old.got).toEqual([1]);
      });
    });

    it(`${name}: a subscriber whose lookup at the call fails (the store away) ends, onEnd unavailable, and pushes nothing of the group registered again meanwhile (before: it took the registration at its first read, the new group's, and pushed [1, 2, 3]); subscribing again follows the new group`, async () => {
      await withDs(make, async ({ l, post, remove, register, follow }) => {
        l.failGroupRead();
        const old = follow();
        await remove();
        await register();
        for (let i = 0; i < 3; i++) await post();
        await expect.poll(() => old.ended()).toEqual(UNAVAILABLE);
        await sleep(300);
        expect(old.got).toEqual([]);
        const again = follow();
        await post();
        await expect.poll(() => again.got).toEqual([4]);
        expect(again.ended()).toBeUndefined();
        again.stop();
      });
    });

    it(`${name}: an honest subscriber goes on across many messages and a gap in notifications; one of a group that is not registered ends at once, onEnd unknown-group "no such group"`, async () => {
      await withDs(make, async ({ l, ds, post, follow }) => {
        const on = follow();
        for (let i = 0; i < 4; i++) await post();
        l.deaf(true);
        for (let i = 0; i < 3; i++) await post();
        l.deaf(false);
        l.gap();
        await expect.poll(() => on.got).toEqual(seqs(1, 7));
        expect(on.ended()).toBeUndefined();
        on.stop();
        let ended: DsError | undefined;
        ds.subscribe(new Uint8Array([0xef, 0]), () => undefined, { onEnd: (e) => (ended = e) });
        await expect.poll(() => ended && { reason: ended.reason, message: ended.message }).toEqual({ reason: 'unknown-group', message: 'no such group (unknown-group)' });
      });
    });
  }
});
