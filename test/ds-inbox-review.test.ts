/**
 * Review of edddb44 (the inbox cap counted in the transaction that stores a
 * commit's Welcome, docs/PROTOCOL.md §8.1): attacks on its PostgreSQL lock,
 * its option, retries and SQLite shared by two threads.
 *
 * - The per-recipient advisory locks were taken in the order of the
 *   recipients' ids, but a lock is keyed by a 64-bit hash of the id
 *   (`hashtextextended`, Jenkins lookup3: not collision resistant; a second
 *   preimage of any id, printable, takes milliseconds, test/pg-hash.ts). An
 *   attacker registers a client whose id hashes as an honest client W's and
 *   sorts before V: its commit adding [itself, V] takes W's lock, then V's;
 *   an honest commit adding [V, W] takes V's, then W's: a deadlock, one of
 *   them aborted by PostgreSQL after deadlock_timeout (500 internal).
 * - `maxPendingWelcomes: Infinity` (no cap, as `maxStoredBytesPerClient`
 *   takes it) was passed to PostgreSQL as a bigint: every commit with a
 *   Welcome failed (it passed before the change, the count read in JS).
 * - A retried commit (same bytes) whose first submission filled the inbox
 *   gets its first answer, not `inbox-full`, on each store.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { toHex } from 'paired-mls';
import { DeliveryService, MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore } from 'paired-mls/server';
import { aWelcome, headerOnly } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';
import { collide, pgHash } from './pg-hash.js';

/** A commit at epoch 0, told apart by `fill`. */
const commitFor = (gid: Uint8Array, fill: number) => headerOnly(gid, 0, 3, fill);

const tagged = (tag: string, n: number) => new Uint8Array([9, n, ...new TextEncoder().encode(tag)]);

async function until(what: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the inbox cap of edddb44 under attack', () => {
  let postgres: PgServer;
  let welcome: Uint8Array;
  beforeAll(async () => {
    postgres = await startPostgres();
    welcome = await aWelcome();
  });
  afterAll(async () => postgres?.stop());

  it("test/pg-hash computes PostgreSQL's hashtextextended, and its second preimages hold there", async () => {
    const db = new pg.Client({ connectionString: postgres.url });
    await db.connect();
    try {
      const x = collide('ds inbox ', 'victim-w', 'aaa');
      for (const s of ['a', 'ds inbox abc', 'ds inbox victim-w', `ds inbox ${x}`, 'hello world 12345678901234567 and more']) {
        const { rows } = await db.query('SELECT hashtextextended($1, 0)::text AS h', [s]);
        expect(BigInt(rows[0].h)).toBe(pgHash(s));
      }
      const { rows } = await db.query("SELECT hashtextextended('ds inbox ' || $1, 0) = hashtextextended('ds inbox ' || $2, 0) AS same, $1 < $3 AS before", [x, 'victim-w', 'victim-v']);
      expect(rows[0]).toEqual({ same: true, before: true });
    } finally {
      await db.end();
    }
  });

  it("an attacker's client whose id hashes as an honest one's cannot make two commits deadlock on the inbox locks", async () => {
    const tag = Math.random().toString(36).slice(2, 8);
    const [v, w] = [`victim-v-${tag}`, `victim-w-${tag}`];
    // Sorts before v (and w), and takes w's lock.
    const x = collide('ds inbox ', w, 'aaa');
    const store = await PostgresDeliveryStore.connect(postgres.url);
    const ds = await DeliveryService.create({ store });
    const holder = new pg.Client({ connectionString: postgres.url });
    await holder.connect();
    try {
      const [honest, attack] = [tagged(tag, 1), tagged(tag, 2)];
      await ds.createGroup(honest, 'alice');
      await ds.createGroup(attack, 'mallory');
      const waiting = async (n: number) => (await holder.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rows[0].n === n;
      // v's lock held a moment (any commit adding v might hold it): the honest commit waits for it first, the attacker's behind it holding w's.
      await holder.query("SELECT pg_advisory_lock(hashtextextended('ds inbox ' || $1, 0))", [v]);
      const first = ds.submit(honest, 'alice', commitFor(honest, 1), { welcome, added: [v, w] });
      await until(() => waiting(1));
      const second = ds.submit(attack, 'mallory', commitFor(attack, 2), { welcome, added: [x, v] });
      await until(() => waiting(2));
      await holder.query("SELECT pg_advisory_unlock(hashtextextended('ds inbox ' || $1, 0))", [v]);
      const answers = await Promise.allSettled([first, second]);
      expect(answers.map((a) => (a.status === 'fulfilled' ? a.value.accepted : (a.reason as { code?: string }).code))).toEqual([true, true]);
      expect(await store.countWelcomes(v)).toBe(2);
    } finally {
      await holder.end();
      await store.close();
    }
  });

  it('maxPendingWelcomes Infinity (no cap) takes commits with a Welcome on PostgreSQL as on the other stores; a cap that is no count is refused', async () => {
    const sqlite = new SqliteDeliveryStore();
    const postgresStore = await PostgresDeliveryStore.connect(postgres.url);
    try {
      for (const store of [new MemoryDeliveryStore(), sqlite, postgresStore] as DeliveryStore[]) {
        const ds = await DeliveryService.create({ store, maxPendingWelcomes: Infinity });
        const tag = Math.random().toString(36).slice(2, 8);
        const gid = tagged(tag, 3);
        await ds.createGroup(gid, 'alice');
        expect(await ds.submit(gid, 'alice', commitFor(gid, 3), { welcome, added: [`bob-${tag}`] })).toMatchObject({ accepted: true });
        expect(await store.countWelcomes(`bob-${tag}`)).toBe(1);
      }
      for (const bad of [NaN, -1, 1.5]) {
        await expect(DeliveryService.create({ store: new MemoryDeliveryStore(), maxPendingWelcomes: bad })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
      }
    } finally {
      sqlite.close();
      await postgresStore.close();
    }
  });

  it('a retried commit whose first submission filled the inbox gets its first answer, on every store', async () => {
    const sqlite = new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-inbox-review-')), 'ds.sqlite'));
    const postgresStore = await PostgresDeliveryStore.connect(postgres.url);
    try {
      for (const store of [new MemoryDeliveryStore(), sqlite, postgresStore] as DeliveryStore[]) {
        const ds = await DeliveryService.create({ store, maxPendingWelcomes: 1 });
        const tag = Math.random().toString(36).slice(2, 8);
        const [g1, g2] = [tagged(tag, 4), tagged(tag, 5)];
        await ds.createGroup(g1, 'alice');
        await ds.createGroup(g2, 'alice');
        const commit = commitFor(g1, 4);
        // The first submission and its retry at once (the answer lost, the client resubmits), then once more later.
        const [a, b] = await Promise.all([ds.submit(g1, 'alice', commit, { welcome, added: [`bob-${tag}`] }), ds.submit(g1, 'alice', commit, { welcome, added: [`bob-${tag}`] })]);
        expect([a, b]).toEqual([{ accepted: true, seq: 1 }, { accepted: true, seq: 1 }]);
        expect(await ds.submit(g1, 'alice', commit, { welcome, added: [`bob-${tag}`] })).toEqual({ accepted: true, seq: 1 });
        // A new commit is refused, nothing of it stored.
        expect(await ds.submit(g2, 'alice', commitFor(g2, 5), { welcome, added: [`bob-${tag}`] })).toMatchObject({ accepted: false, reason: 'inbox-full' });
        expect(await store.countWelcomes(`bob-${tag}`)).toBe(1);
        expect((await store.getGroup(toHex(g2)))!.epoch).toBe(0);
      }
    } finally {
      sqlite.close();
      await postgresStore.close();
    }
  });
});

describe('the inbox cap on one SQLite file shared by two threads (WAL; not one process taking turns)', () => {
  it('never stores more than the cap; a commit that lost the race is refused, never stored past it', async () => {
    const { Worker } = await import('node:worker_threads');
    const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-inbox-threads-')), 'ds.sqlite');
    const MAX = 5;
    const PER_THREAD = 40;
    const tag = Math.random().toString(36).slice(2, 8);
    const victim = `victim-${tag}`;
    const welcome = await aWelcome();
    const store = new SqliteDeliveryStore(file);
    const ds = await DeliveryService.create({ store, maxPendingWelcomes: MAX });
    const groups = [0, 1].map((t) => Array.from({ length: PER_THREAD }, (_, i) => [...new Uint8Array([t, i]), ...new TextEncoder().encode(tag)]));
    for (const g of groups.flat()) await ds.createGroup(Uint8Array.from(g), 'alice');
    const go = new SharedArrayBuffer(4);
    // Opened one after the other (two stores opening one file at once may find it busy, as any write raced: below), then both at once.
    let ready = 0;
    const workers: InstanceType<typeof Worker>[] = [];
    const replies: Promise<unknown[]>[] = [];
    for (const g of groups) {
      const w = new Worker(new URL('./ds-inbox-sqlite-worker.mjs', import.meta.url), { workerData: { file, max: MAX, groups: g, victim, welcome: [...welcome], go } });
      workers.push(w);
      const messages: unknown[] = [];
      replies.push(
        new Promise<unknown[]>((resolve, reject) => {
          w.on('message', (m) => {
            messages.push(m);
            if (m === 'ready') ready++;
            if (messages.length === 2) resolve(messages);
          });
          w.on('error', reject);
        }),
      );
      await until(async () => ready === workers.length);
    }
    Atomics.store(new Int32Array(go), 0, 1);
    Atomics.notify(new Int32Array(go), 0);
    const answers = (await Promise.all(replies)).flatMap((m) => m[1] as string[]);
    const tally = answers.reduce<Record<string, number>>((t, a) => ({ ...t, [a]: (t[a] ?? 0) + 1 }), {});
    // e.g. { accepted: 5, 'inbox-full': 58, SQLITE_BUSY: 16, SQLITE_BUSY_SNAPSHOT: 1 }
    // Exact, as SQLite serialises writers: a transaction whose read is older than another thread's write gets SQLITE_BUSY
    // (SQLITE_BUSY or SQLITE_BUSY_SNAPSHOT) and stores nothing; on a server that is 500 internal (as for any commit so raced).
    expect(tally.accepted).toBe(MAX);
    expect(Object.keys(tally).filter((k) => !['accepted', 'inbox-full', 'SQLITE_BUSY', 'SQLITE_BUSY_SNAPSHOT'].includes(k))).toEqual([]);
    expect(await store.countWelcomes(victim)).toBe(MAX);
    store.close();
    for (const w of workers) await w.terminate();
  }, 60_000);
});
