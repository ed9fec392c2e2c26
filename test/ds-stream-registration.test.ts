/**
 * A stream knows which registration of its group it reads (docs/PROTOCOL.md §8.3): the DS gives each registration of a
 * group id a random id (`GroupRecord.registration`), the stream takes the group's at its upgrade, and every read checks
 * it, the page included. Over the memory store, SQLite and PostgreSQL, each server's store `lossy` (its notifications
 * dropped on demand, a gap reported when the test says, one read held). Closed here (before: the limit §8.3 wrote down):
 * after lost notifications,
 * - a stream whose first read ran after its group was deleted and registered again (it had read nothing of the old log,
 *   so it had no message to tell the logs apart by) pushed the new log from its position on, its start skipped;
 * - a stream opened past its log's end (no message at its position) did the same.
 * Now both end 1008 unknown-group, nothing pushed. Honest streams are never ended: one opened past the end of a group
 * that was not deleted, one opened on the new registration while the old one's deletion reaches the server late.
 * A custom store adapter that keeps no registration gets the checks of before (by the message at the stream's
 * position), limits included.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { toHex } from 'paired-mls';
import { DS_SCHEMA_VERSION, PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
import { headerOnly, raw, registeredClient, tokenOf } from './ds-helpers.js';
import { serveLossy as serve, withoutRegistration, type Closable, type Holder } from './ds-lossy-store.js';
import { everyStore } from './ds-store-kinds.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const tag = () => Math.random().toString(36).slice(2, 8);
const seqs = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('a stream checks its group\'s registration: deleted and registered again, it ends (memory, SQLite, PostgreSQL)', () => {
  const { stores, postgresUrl, tempDir } = everyStore('paired-mls-registration-');

  for (const [name, make] of stores) {
    it(`${name}: a stream whose first read runs after its group was deleted and registered again, notifications lost meanwhile, ends 1008 unknown-group, nothing pushed; so does one whose first page is read then (before: they pushed the new log from their position on, [3, 4, 5, 6]); a new stream reads the new group from 0 and goes on`, async () => {
      await serve(make, {}, async ({ l, post, remove, register, open }) => {
        for (let i = 0; i < 3; i++) await post();
        // One stream's first read looks its group up and waits before it reads its page: it reads the new log.
        const page = l.holdRead(true);
        const paged = await open(2);
        await page.reached;
        // Another's upgrade reads the group (the stream takes its registration), its first read waits before its lookup.
        const lookup = l.holdGroupRead(1);
        const late = await open(2);
        await lookup.reached;
        l.deaf(true);
        await remove();
        await register();
        for (let i = 0; i < 6; i++) await post();
        lookup.release();
        page.release();
        l.deaf(false);
        l.gap();
        const ended = { end: [1008, 'unknown-group'], got: [] };
        expect([await late.outcome(3_000), await paged.outcome(3_000)]).toEqual([ended, ended]);
        const fresh = await open(0);
        await expect.poll(() => fresh.got).toEqual(seqs(1, 6));
        await post();
        expect(await fresh.outcome(500)).toEqual({ end: 'open', got: seqs(1, 7) });
        fresh.ws.close();
      });
    });

    it(`${name}: a stream opened past its log's end: the group deleted and registered again while notifications were lost, it ends 1008 unknown-group once the gap is reported, nothing pushed (before: it pushed the new log from its position on, [6])`, async () => {
      await serve(make, {}, async ({ l, post, remove, register, open }) => {
        for (let i = 0; i < 3; i++) await post();
        const pastEnd = await open(5);
        await sleep(300);
        l.deaf(true);
        await remove();
        await register();
        for (let i = 0; i < 6; i++) await post();
        l.deaf(false);
        l.gap();
        expect(await pastEnd.outcome(3_000)).toEqual({ end: [1008, 'unknown-group'], got: [] });
      });
    });

    it(`${name}: a stream at 0 that has pushed nothing: the group deleted and registered again while notifications were lost, it ends 1008 unknown-group once the gap is reported, nothing pushed (before: it read the new group's log from its start, [1..6])`, async () => {
      await serve(make, {}, async ({ l, post, remove, register, open }) => {
        const atZero = await open(0);
        await sleep(300);
        l.deaf(true);
        for (let i = 0; i < 3; i++) await post();
        await remove();
        await register();
        for (let i = 0; i < 6; i++) await post();
        l.deaf(false);
        l.gap();
        expect(await atZero.outcome(3_000)).toEqual({ end: [1008, 'unknown-group'], got: [] });
      });
    });

    it(`${name}: honest streams go on: one opened past the end of a group not deleted, across a gap; one opened on the registered-again group while the old one's deletion reaches its server late, with a gap; each message pushed once, in order`, async () => {
      await serve(make, {}, async ({ l, gid, post, remove, register, open }) => {
        for (let i = 0; i < 3; i++) await post();
        const pastEnd = await open(5);
        await sleep(300);
        l.deaf(true);
        for (let i = 0; i < 4; i++) await post();
        l.deaf(false);
        l.gap();
        await expect.poll(() => pastEnd.got).toEqual([6, 7]);
        expect(await pastEnd.outcome(300)).toEqual({ end: 'open', got: [6, 7] });
        // The group deleted and registered again, its deletion not yet heard here; a stream opened on the new group.
        l.deaf(true);
        await remove();
        await register();
        await post();
        const fresh = await open(0);
        await expect.poll(() => fresh.got).toEqual([1]);
        l.deaf(false);
        // The old one's deletion, heard late, and a gap: the stream of the new group reads it again and goes on.
        l.late(toHex(gid), 0);
        l.gap();
        await post();
        expect(await fresh.outcome(1_000)).toEqual({ end: 'open', got: [1, 2] });
        // The stream of the old registration ended (the deletion), nothing of the new log pushed.
        expect(await pastEnd.outcome(0)).toEqual({ end: [1008, 'unknown-group'], got: [6, 7] });
        fresh.ws.close();
      });
    });
  }

  for (const [name, make] of stores.slice(0, 2)) {
    it(`${name}, a custom store adapter that keeps no registration: the checks of before hold (a stream that pushed messages ends 1008 unknown-group after the gap), and so do their limits (a stream whose first read ran after the re-registration, and one past its log's end, read the new log from their positions on)`, async () => {
      await serve(
        make,
        {},
        async ({ l, post, remove, register, open }) => {
          const pushed = await open(0);
          for (let i = 0; i < 3; i++) await post();
          await expect.poll(() => pushed.got).toEqual([1, 2, 3]);
          const held = l.holdRead(true);
          const late = await open(2);
          await held.reached;
          const pastEnd = await open(5);
          await sleep(300);
          l.deaf(true);
          await remove();
          await register();
          for (let i = 0; i < 6; i++) await post();
          held.release();
          l.deaf(false);
          l.gap();
          expect(await pushed.outcome(3_000)).toEqual({ end: [1008, 'unknown-group'], got: [1, 2, 3] });
          await expect.poll(() => [late.got, pastEnd.got]).toEqual([[3, 4, 5, 6], [6]]);
          expect([(await late.outcome(500)).end, (await pastEnd.outcome(0)).end]).toEqual(['open', 'open']);
        },
        withoutRegistration,
      );
    });
  }

  /**
   * A database as a server of the previous release (schema 7) left it: written by this release's store, then its
   * registrations dropped and its version set back. `store` opens it; alice's group there holds 3 messages, and a
   * group she deleted keeps its id.
   */
  async function schema7(store: () => Promise<Closable>, downgrade: (sql: string) => Promise<void>): Promise<Holder> {
    const first = await store();
    const s = await startDeliveryServer({ port: 0, store: first });
    const name = `alice-${tag()}`;
    const who = await registeredClient(s.url, name);
    const token = await tokenOf(s.url, name, who);
    const gid = new Uint8Array([0xee, ...Buffer.from(tag())]);
    const gone = new Uint8Array([0xef, ...Buffer.from(tag())]);
    for (const id of [gid, gone]) expect(await raw(s.url, 'POST', '/v1/groups', { groupId: b64(id) }, token)).toMatchObject({ status: 200 });
    for (let fill = 1; fill <= 3; fill++) expect(await raw(s.url, 'POST', `/v1/groups/${toHex(gid)}/messages`, { message: b64(headerOnly(gid, 0, 1, fill, 64)) }, token)).toMatchObject({ status: 200 });
    expect(await raw(s.url, 'DELETE', `/v1/groups/${toHex(gone)}`, undefined, token)).toMatchObject({ status: 200 });
    await s.close();
    await first.close?.();
    await downgrade("ALTER TABLE {groups} DROP COLUMN registration; UPDATE {meta} SET value = '7' WHERE key = 'schema'");
    return { name, who, gid };
  }

  /**
   * On the migrated database: each group has a registration, the deleted id none; its streams are checked by it. With
   * `forget`, the group's registration is then cleared, as a server of the previous release registering it leaves it:
   * the stream takes none, and ends when the id is registered again (by this release: a registration appears).
   */
  async function migratedStreams(store: () => Promise<Closable>, holder: Holder, registrations: () => Promise<Record<string, string | null>>, forget?: () => Promise<void>) {
    await serve(
      store,
      {},
      async ({ l, post, remove, register, open }) => {
        const held = await registrations();
        expect(Object.keys(held).length).toBe(2);
        expect(Object.entries(held).map(([id, r]) => [id, id === toHex(holder.gid) ? /^[0-9a-f]{32}$/.test(r ?? '') : r])).toEqual(
          Object.keys(held).map((id) => [id, id === toHex(holder.gid) ? true : null]),
        );
        await forget?.();
        // An honest stream past the end goes on; the group deleted and registered again unheard, it ends.
        const pastEnd = await open(5);
        await sleep(300);
        expect([await post(), await post(), await post()]).toEqual([4, 5, 6]);
        await expect.poll(() => pastEnd.got).toEqual([6]);
        l.deaf(true);
        await remove();
        await register();
        for (let i = 0; i < 7; i++) await post();
        l.deaf(false);
        l.gap();
        expect(await pastEnd.outcome(3_000)).toEqual({ end: [1008, 'unknown-group'], got: [6] });
        const fresh = await open(0);
        await expect.poll(() => fresh.got).toEqual(seqs(1, 7));
        fresh.ws.close();
      },
      undefined,
      holder,
    );
  }

  it(`a SQLite database of schema 7 is migrated to ${DS_SCHEMA_VERSION} when opened: each group gets a registration (a deleted id none); a group without one (as a server of schema 7 registers it) has its stream end once the id is registered again`, async () => {
    expect(DS_SCHEMA_VERSION).toBe('8');
    const dir = tempDir('paired-mls-registration-v7-');
    const file = join(dir, 'ds.sqlite');
    const holder = await schema7(
      async () => new SqliteDeliveryStore(file),
      async (sql) => {
        const db = new Database(file);
        db.exec(sql.replace('{groups}', 'groups').replace('{meta}', 'meta'));
        db.close();
      },
    );
    const read = <T>(sql: string): T[] => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare(sql).all() as T[];
      } finally {
        db.close();
      }
    };
    const schema = () => read<{ value: string }>("SELECT value FROM meta WHERE key = 'schema'");
    expect(schema()).toEqual([{ value: '7' }]);
    await migratedStreams(
      async () => new SqliteDeliveryStore(file),
      holder,
      async () => Object.fromEntries(read<{ group_id: string; registration: string | null }>('SELECT group_id, registration FROM groups').map((r) => [r.group_id, r.registration])),
      async () => {
        const db = new Database(file);
        db.prepare('UPDATE groups SET registration = NULL WHERE group_id = ?').run(toHex(holder.gid));
        db.close();
      },
    );
    expect(schema()).toEqual([{ value: '8' }]);
  });

  it(`a PostgreSQL database of schema 7 is migrated to ${DS_SCHEMA_VERSION} when a server connects: each group gets a registration (a deleted id none), and its streams are checked by it`, async () => {
    const admin = new pg.Client({ connectionString: postgresUrl() });
    await admin.connect();
    await admin.query('CREATE DATABASE registration_v7');
    await admin.end();
    const url = Object.assign(new URL(postgresUrl()), { pathname: '/registration_v7' }).href;
    const db = new pg.Client({ connectionString: url });
    const holder = await schema7(
      () => PostgresDeliveryStore.connect(url),
      async (sql) => {
        await db.connect();
        await db.query(sql.replace('{groups}', 'ds_groups').replace('{meta}', 'ds_meta'));
      },
    );
    try {
      expect((await db.query("SELECT value FROM ds_meta WHERE key = 'schema'")).rows).toEqual([{ value: '7' }]);
      await migratedStreams(
        () => PostgresDeliveryStore.connect(url),
        holder,
        async () => Object.fromEntries((await db.query('SELECT group_id, registration FROM ds_groups')).rows.map((r) => [r.group_id, r.registration])),
      );
      expect((await db.query("SELECT value FROM ds_meta WHERE key = 'schema'")).rows).toEqual([{ value: '8' }]);
    } finally {
      await db.end();
    }
  });
});
