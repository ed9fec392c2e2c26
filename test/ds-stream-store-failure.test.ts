/**
 * A stream outlives a failure of the DS's store (docs/PROTOCOL.md §8.6):
 * the CI run saw a PostgreSQL restart close a stream (`ds-network`, "the
 * database restarting under it"), since any error while a stream read the
 * log closed it (1008), as if its client had been removed from the group.
 * Now only the DS's refusals end a stream; a store failure makes it read
 * again after a wait (250 ms, doubling up to 5 s).
 */
import { describe, expect, it } from 'vitest';
import { MemoryDeliveryStore, type DeliveredMessage } from 'paired-mls/services';
import { startDeliveryServer } from 'paired-mls/server';
import { utf8 } from 'paired-mls';
import { dsPeer, groupOf } from './ds-helpers.js';

/** A memory store whose log reads fail while `failing` (a database that went away). */
class FlakyStore extends MemoryDeliveryStore {
  failing = false;
  failures = 0;
  override async readLog(groupId: string, afterSeq: number, limit: number, maxBytes?: number) {
    if (this.failing) {
      this.failures++;
      throw new Error('connect ECONNREFUSED (the database is restarting)');
    }
    return super.readLog(groupId, afterSeq, limit, maxBytes);
  }
}

describe('a stream and a store that fails for a while', () => {
  it('stays open and delivers what was posted during the failure once the store answers again', async () => {
    const store = new FlakyStore();
    const s = await startDeliveryServer({ port: 0, store });
    const quiet = console.error;
    console.error = () => undefined;
    try {
      const tag = Math.random().toString(36).slice(2, 8);
      const [alice, bob] = await Promise.all(['alice', 'bob'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
      await groupOf(alice!, [bob!]);
      const gid = alice!.group!.id;
      const got: DeliveredMessage[] = [];
      let closed: string | undefined;
      const stop = bob!.ds.stream(gid, bob!.seen, (m) => got.push(m), (error) => (closed = String(error ?? 'closed')));
      const waitFor = async (n: number) => {
        for (let i = 0; i < 400 && got.length < n && closed === undefined; i++) await new Promise((r) => setTimeout(r, 20));
      };
      await new Promise((r) => setTimeout(r, 100));
      store.failing = true;
      await alice!.ds.submit(gid, await alice!.group!.encrypt('during the failure'));
      for (let i = 0; i < 100 && store.failures < 2; i++) await new Promise((r) => setTimeout(r, 20));
      // Before: the first failed read closed the stream (1008 error).
      expect(store.failures).toBeGreaterThanOrEqual(2);
      expect(closed).toBeUndefined();
      store.failing = false;
      await waitFor(1);
      expect(closed).toBeUndefined();
      expect(got).toHaveLength(1);
      const r = await bob!.group!.process(got[0]!.message);
      expect(r.kind === 'application' && utf8(r.data)).toBe('during the failure');
      // Another failure, and 40 posts meanwhile: each wake used to start a
      // retry chain of its own (80 reads of the log in 10 s for one stream);
      // now the stream keeps one timer (250 ms, then 500, then 1 s).
      store.failing = true;
      store.failures = 0;
      for (let i = 0; i < 40; i++) await alice!.ds.submit(gid, await alice!.group!.encrypt(`burst ${i}`));
      await new Promise((r) => setTimeout(r, 1500));
      expect(store.failures).toBeGreaterThanOrEqual(2);
      expect(store.failures).toBeLessThanOrEqual(5);
      store.failing = false;
      await waitFor(41);
      expect(closed).toBeUndefined();
      expect(got).toHaveLength(41);
      stop();
    } finally {
      console.error = quiet;
      await s.close();
    }
  });
});
