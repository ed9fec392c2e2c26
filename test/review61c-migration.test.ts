/**
 * Attacker review 61c: the migration of schema 7 to 8 (the groups' `registration`, docs/PROTOCOL.md §8.3), SQLite and
 * PostgreSQL. A schema-7 database holding a live group with messages, a deleted id and a reserved id (a ReInit's
 * successor) is opened: the live group gets a registration (32 hex digits), the deleted and reserved ids none; the
 * registration is the same after two more starts (a restart never re-draws it: a stream at another server would end
 * falsely), also with several PostgreSQL servers migrating at once (one of them draws, the others find the column);
 * an honest stream opened at one server before the others start stays open and reads on. Claiming the deleted or the
 * reserved id then gives a new registration. A database of a later schema (9) is refused, nothing in it changed.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { toHex } from 'paired-mls';
import { DeliveryService } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
import { headerOnly, raw, registeredClient, tokenOf } from './ds-helpers.js';
import { everyStore } from './ds-store-kinds.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const tag = () => Math.random().toString(36).slice(2, 8);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Store = SqliteDeliveryStore | PostgresDeliveryStore;

/** What a database of schema 7 holds here: ids (hex) of alice's live group (3 messages), her deleted id, a reserved id of hers. */
interface Seven {
  live: string;
  deleted: string;
  reserved: string;
}

/**
 * Fills a database through this release's store, then sets it back to schema 7 (`sql` runs on it: the registration
 * column dropped, the version 7) and adds a reserved id as schema 7 wrote one.
 */
async function schema7(open: () => Promise<Store>, sql: (text: string, params?: unknown[]) => Promise<void>, names: { groups: string; meta: string }): Promise<Seven> {
  const store = await open();
  const ds = await DeliveryService.create({ store });
  const [live, deleted, reserved] = [0xd1, 0xd2, 0xd3].map((b) => new Uint8Array([b, ...Buffer.from(tag())]));
  for (const id of [live!, deleted!]) await ds.createGroup(id, 'alice');
  for (let fill = 1; fill <= 3; fill++) expect(await ds.submit(live!, 'alice', headerOnly(live!, 0, 1, fill, 64))).toEqual({ accepted: true, seq: fill });
  await ds.deleteGroup(deleted!, 'alice');
  await store.close();
  await sql(`ALTER TABLE ${names.groups} DROP COLUMN registration`);
  await sql(`UPDATE ${names.meta} SET value = '7' WHERE key = 'schema'`);
  // A successor id reserved for alice alone (as a verified ReInit's commit leaves it): epoch -1, an empty GroupInfo.
  await sql(`INSERT INTO ${names.groups} (group_id, epoch, members, consistency, group_info, record_by) VALUES ('${toHex(reserved!)}', -1, '["alice"]', 'strong', ${names.groups === 'groups' ? "x''" : "''::bytea"}, 'alice')`);
  return { live: toHex(live!), deleted: toHex(deleted!), reserved: toHex(reserved!) };
}

describe('review61c: the migration of schema 7 to 8 (SQLite, PostgreSQL)', () => {
  const { postgresUrl, tempDir } = everyStore('paired-mls-review61c-mig-');

  /**
   * After the migration (`open` opens a store on the database, `rows` reads [group_id, epoch, registration] of every
   * row): each row class, the same registration after two more starts, an honest stream at a server started first that
   * stays open while two others start, the claims' new registrations.
   */
  async function checkMigrated(seven: Seven, open: () => Promise<Store>, rows: () => Promise<Record<string, [number, string | null]>>, concurrent: number) {
    const first = await Promise.all(Array.from({ length: concurrent }, () => open()));
    const after = await rows();
    expect(Object.keys(after).sort()).toEqual([seven.live, seven.deleted, seven.reserved].sort());
    expect(after[seven.live]![0]).toBe(0);
    expect(after[seven.live]![1]).toMatch(/^[0-9a-f]{32}$/);
    expect([after[seven.deleted], after[seven.reserved]]).toEqual([[-2, null], [-1, null]]);
    const registration = after[seven.live]![1]!;
    for (const s of first) expect((await s.getGroup(seven.live))?.registration).toBe(registration);
    for (const s of first.slice(1)) await s.close();
    // A server on the first store; alice's stream of her group, opened before two more starts.
    const s = await startDeliveryServer({ port: 0, store: first[0]!, ipRate: [1e6, 1e6], clientRate: [1e6, 1e6] });
    try {
      const name = `alice-${tag()}`;
      const token = await tokenOf(s.url, name, await registeredClient(s.url, name));
      // (The groups are 'alice''s, a client id this server cannot register twice: her records are read through the store.)
      expect((await first[0]!.getGroup(seven.live))?.members).toEqual(['alice']);
      const mine = new Uint8Array([0xd4, ...Buffer.from(tag())]);
      expect(await raw(s.url, 'POST', '/v1/groups', { groupId: b64(mine) }, token)).toMatchObject({ status: 200 });
      const ws = new (await import('ws')).WebSocket(`${s.url.replace(/^http/, 'ws')}/v1/stream?group=${toHex(mine)}&after=0&access_token=${token}`);
      const got: number[] = [];
      let closed: number | undefined;
      ws.on('message', (d) => got.push(JSON.parse(d.toString()).seq));
      ws.on('close', (code) => (closed = code));
      await new Promise((r) => ws.once('open', r));
      const post = async (fill: number) => (await raw(s.url, 'POST', `/v1/groups/${toHex(mine)}/messages`, { message: b64(headerOnly(mine, 0, 1, fill, 64)) }, token)).body.seq;
      expect(await post(1)).toBe(1);
      const mineRegistration = (await first[0]!.getGroup(toHex(mine)))!.registration;
      for (let restart = 0; restart < 2; restart++) {
        const again = await open();
        expect((await again.getGroup(seven.live))?.registration).toBe(registration);
        expect((await again.getGroup(toHex(mine)))?.registration).toBe(mineRegistration);
        await again.close();
      }
      expect(await post(2)).toBe(2);
      await expect.poll(() => got).toEqual([1, 2]);
      await sleep(300);
      expect([closed, got]).toEqual([undefined, [1, 2]]);
      ws.close();
      expect(await rows()).toEqual({ ...after, [toHex(mine)]: [0, mineRegistration] });
      // The claims: the deleted id by its last member, the reserved one by its member, each a new registration.
      const ds = s.ds;
      await ds.createGroup(Buffer.from(seven.deleted, 'hex'), 'alice');
      await ds.createGroup(Buffer.from(seven.reserved, 'hex'), 'alice');
      const claimed = await rows();
      for (const id of [seven.deleted, seven.reserved]) {
        expect(claimed[id]![0]).toBe(0);
        expect(claimed[id]![1]).toMatch(/^[0-9a-f]{32}$/);
      }
      expect(new Set([registration, mineRegistration, claimed[seven.deleted]![1], claimed[seven.reserved]![1]]).size).toBe(4);
    } finally {
      await s.close();
      await sleep(100);
      await first[0]!.close();
    }
  }

  it('SQLite: a schema-7 file is migrated once (live group: a registration; deleted and reserved ids: none), kept over two restarts with an honest stream open; a schema-9 file is refused, unchanged', async () => {
    const dir = tempDir();
    const file = join(dir, 'ds.sqlite');
    const exec = async (text: string) => {
      const db = new Database(file);
      db.exec(text);
      db.close();
    };
    const seven = await schema7(async () => new SqliteDeliveryStore(file), exec, { groups: 'groups', meta: 'meta' });
    const read = <T>(text: string): T[] => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare(text).all() as T[];
      } finally {
        db.close();
      }
    };
    expect(read("SELECT value FROM meta WHERE key = 'schema'")).toEqual([{ value: '7' }]);
    const rows = async () => Object.fromEntries(read<{ group_id: string; epoch: number; registration: string | null }>('SELECT group_id, epoch, registration FROM groups').map((r) => [r.group_id, [r.epoch, r.registration] as [number, string | null]]));
    await checkMigrated(seven, async () => new SqliteDeliveryStore(file), rows, 1);
    expect(read("SELECT value FROM meta WHERE key = 'schema'")).toEqual([{ value: '8' }]);
    // A later schema: refused before anything changes.
    await exec("UPDATE meta SET value = '9' WHERE key = 'schema'");
    const before = await rows();
    expect(() => new SqliteDeliveryStore(file)).toThrow('database schema 9; this server reads 8');
    expect([read("SELECT value FROM meta WHERE key = 'schema'"), await rows()]).toEqual([[{ value: '9' }], before]);
  });

  it('PostgreSQL: a schema-7 database is migrated once by three servers starting at once (one draws the registrations, the others find them), kept over two restarts with an honest stream open at the first; a schema-9 database is refused, unchanged', async () => {
    const admin = new pg.Client({ connectionString: postgresUrl() });
    await admin.connect();
    await admin.query('CREATE DATABASE review61c_v7');
    await admin.end();
    const url = Object.assign(new URL(postgresUrl()), { pathname: '/review61c_v7' }).href;
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const seven = await schema7(() => PostgresDeliveryStore.connect(url), async (text) => void (await db.query(text)), { groups: 'ds_groups', meta: 'ds_meta' });
      expect((await db.query("SELECT value FROM ds_meta WHERE key = 'schema'")).rows).toEqual([{ value: '7' }]);
      const rows = async () => Object.fromEntries((await db.query('SELECT group_id, epoch, registration FROM ds_groups')).rows.map((r) => [r.group_id, [Number(r.epoch), r.registration] as [number, string | null]]));
      await checkMigrated(seven, () => PostgresDeliveryStore.connect(url), rows, 3);
      expect((await db.query("SELECT value FROM ds_meta WHERE key = 'schema'")).rows).toEqual([{ value: '8' }]);
      await db.query("UPDATE ds_meta SET value = '9' WHERE key = 'schema'");
      const before = await rows();
      await expect(PostgresDeliveryStore.connect(url)).rejects.toThrow('database schema 9; this server reads 8');
      expect([(await db.query("SELECT value FROM ds_meta WHERE key = 'schema'")).rows, await rows()]).toEqual([[{ value: '9' }], before]);
    } finally {
      await db.end();
    }
  });
});
