/**
 * Review of the log's proposal index on PostgreSQL (docs/PROTOCOL.md §8.6): a server of this release starting while
 * another builds the index (CREATE INDEX CONCURRENTLY, each at its first start of this release, a rolling upgrade
 * starting several at once) must not hold the log's appends. Its schema's CREATE UNIQUE INDEX IF NOT EXISTS on the log
 * took the log's SHARE lock though the index existed, waited for the whole build, and every server's append queued
 * behind that wait (a previous-release server, waiting at most 100 ms for a lock, was refused 55P03 tens of times).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import pg from 'pg';
import { PostgresDeliveryStore } from 'paired-mls/server';
import { startPostgres, type PgServer } from './pg-server.js';

let pgServer: PgServer;
beforeAll(async () => {
  pgServer = await startPostgres();
}, 60_000);
afterAll(async () => {
  await pgServer?.stop();
});

it("PostgreSQL: a server starting while another builds the log's proposal index holds no server's appends", async () => {
  const sql = new pg.Client({ connectionString: pgServer.url });
  await sql.connect();
  // A previous-release server, waiting at most 100 ms for a lock on the log (55P03 past that).
  const old = new pg.Client({ connectionString: pgServer.url });
  await old.connect();
  const opened: PostgresDeliveryStore[] = [];
  try {
    opened.push(await PostgresDeliveryStore.connect(pgServer.url));
    await opened.pop()!.close();
    await sql.query('DROP INDEX IF EXISTS ds_log_proposals; ALTER TABLE ds_log DROP COLUMN IF EXISTS proposal_epoch');
    await sql.query("INSERT INTO ds_log (group_id, seq, sender, bytes, digest) SELECT 'big-' || (i % 50), i, 'm', '\\x0001', NULL FROM generate_series(1, 2000000) i");
    await old.query("SET lock_timeout = '100ms'");
    const refused: string[] = [];
    let seq = 2_000_000;
    let opening = true;
    const traffic = (async () => {
      while (opening) {
        await old.query('INSERT INTO ds_log (group_id, seq, sender, bytes, digest) VALUES ($1, $2, $3, $4, $5)', ['big-1', ++seq, 'm', Buffer.from([1]), null]).catch((e) => refused.push(e.code));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const first = PostgresDeliveryStore.connect(pgServer.url);
    // The second starts once the first's build is under way.
    let building = false;
    for (let i = 0; i < 2000 && !building; i++) {
      building = (await sql.query("SELECT 1 FROM pg_stat_progress_create_index WHERE relid = 'ds_log'::regclass")).rows.length > 0;
      if (!building) await new Promise((r) => setTimeout(r, 10));
    }
    const second = PostgresDeliveryStore.connect(pgServer.url);
    const both = await Promise.allSettled([first, second]);
    for (const r of both) if (r.status === 'fulfilled') opened.push(r.value);
    opening = false;
    await traffic;
    const [index] = (await sql.query("SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = to_regclass('ds_log_proposals')")).rows;
    // Before: refused [55P03, 55P03, …] while the second start waited for the build.
    expect({ building, opened: both.map((r) => r.status), refused, index }).toEqual({ building: true, opened: ['fulfilled', 'fulfilled'], refused: [], index: { valid: true } });
  } finally {
    for (const s of opened) await s.close();
    await sql.query("DELETE FROM ds_log WHERE group_id LIKE 'big-%'").catch(() => undefined);
    await old.end();
    await sql.end();
  }
}, 300_000);
