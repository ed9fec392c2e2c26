/**
 * What a request of a client that is not on a group's member list costs the
 * DS (docs/PROTOCOL.md §8.3). To tell a member's paired device from an
 * outsider, the DS asked the devices of every member, a store query per
 * member: any registered client polling a group of 10,000 members (200
 * requests a second within its rate limit) made the DS run two million
 * queries a second. Now one lookup of the anchors the client is a device of
 * (`DeliveryStore.anchorsOf`), on every store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeliveryService, MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore } from 'paired-mls/server';
import { startPostgres, type PgServer } from './pg-server.js';
import { headerOnly } from './ds-helpers.js';

/** A memory store that counts the pairing lookups the DS makes. */
class CountingStore extends MemoryDeliveryStore {
  devicesOfCalls = 0;
  anchorsOfCalls = 0;
  override async devicesOf(anchor: string): Promise<string[]> {
    this.devicesOfCalls++;
    return super.devicesOf(anchor);
  }
  override async anchorsOf(device: string): Promise<string[]> {
    this.anchorsOfCalls++;
    return super.anchorsOf(device);
  }
}

/** A commit of a group at `epoch` that the basic DS takes by its header. */
const commitHeader = (gid: Uint8Array, epoch: number) => headerOnly(gid, epoch, 3, 0);

describe('a request of a client off the member list costs one pairing lookup, not one per member', () => {
  it("an outsider's poll of a group of 2,000 is refused (not-a-member) after one anchorsOf and no devicesOf; a member's paired device reads through its anchor the same way", async () => {
    const store = new CountingStore();
    const ds = await DeliveryService.create({ store });
    const gid = new Uint8Array([7, 7, 7, 1]);
    await ds.createGroup(gid, 'alice');
    const added = Array.from({ length: 1999 }, (_, i) => `member-${i}`);
    expect(await ds.submit(gid, 'alice', commitHeader(gid, 0), { added })).toMatchObject({ accepted: true });
    await store.putPairing('member-1500', 'member-1500-phone');
    store.devicesOfCalls = 0;
    await expect(ds.poll('eve', gid, 0)).rejects.toMatchObject({ reason: 'not-a-member' });
    expect(await ds.submit(gid, 'eve', commitHeader(gid, 1))).toMatchObject({ accepted: false, reason: 'not-a-member' });
    expect(await ds.poll('member-1500-phone', gid, 0)).toHaveLength(1);
    expect(await ds.isReader(gid, 'member-1500-phone')).toBe(true);
    // The device's poll looks its pairing up twice: before the read and once its page is read (§8.4, a pairing dropped meanwhile).
    expect({ devicesOf: store.devicesOfCalls, anchorsOf: store.anchorsOfCalls }).toEqual({ devicesOf: 0, anchorsOf: 5 });
    // Unpaired, the device reads no more.
    await store.removePairing('member-1500', 'member-1500-phone');
    expect(await ds.isReader(gid, 'member-1500-phone')).toBe(false);
  });

  describe('anchorsOf on each store: the reverse of devicesOf', () => {
    let postgres: PgServer;
    beforeAll(async () => {
      postgres = await startPostgres();
    });
    afterAll(async () => postgres?.stop());

    const reverse = async (store: DeliveryStore) => {
      const id = Math.random().toString(36).slice(2, 8);
      await store.putPairing(`b-${id}`, `phone-${id}`);
      await store.putPairing(`a-${id}`, `phone-${id}`);
      await store.putPairing(`a-${id}`, `watch-${id}`);
      expect(await store.anchorsOf!(`phone-${id}`)).toEqual([`a-${id}`, `b-${id}`]);
      expect(await store.anchorsOf!(`watch-${id}`)).toEqual([`a-${id}`]);
      expect(await store.anchorsOf!(`a-${id}`)).toEqual([]);
      await store.removePairing(`a-${id}`, `phone-${id}`);
      expect(await store.anchorsOf!(`phone-${id}`)).toEqual([`b-${id}`]);
    };

    it('in memory', async () => reverse(new MemoryDeliveryStore()));

    it('on SQLite', async () => {
      const store = new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-anchors-')), 'ds.sqlite'));
      try {
        await reverse(store);
      } finally {
        store.close();
      }
    });

    it('on PostgreSQL', async () => {
      const store = await PostgresDeliveryStore.connect(postgres.url);
      try {
        await reverse(store);
      } finally {
        await store.close();
      }
    });
  });
});
