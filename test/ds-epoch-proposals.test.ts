/**
 * A verifying DS reads an epoch's proposals by the store's index of them, not the epoch's log (docs/PROTOCOL.md §8.5,
 * §8.6). Before, every commit posted to a verified group had the DS read every message logged since the epoch began,
 * application messages included, before the commit was charged (§8.2) or checked: a member that logged 20,000
 * application messages of ~1 KB in one epoch (within its quota) then posted junk commits (a real commit whose GroupInfo
 * signature fails, 400 invalid-group-info), each holding the server ~150 ms on SQLite (an honest poll waited ~200 ms
 * behind ten of them) and ~400 ms on PostgreSQL; now 2-6 ms. A commit's `readTo` check (§8.1) reads the same index.
 * The tests count the log rows the server reads, through a wrapper over the real store. Real servers on loopback, real
 * groups; memory, SQLite, PostgreSQL; a database of the previous release (its rows unmarked) opened by this one, and
 * that release's appends beside this one's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { toHex, utf8, type GroupOptions } from 'paired-mls';
import { createIntent } from 'paired-mls/intents';
import { MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { catchUpAll, dsPeer, groupStillWorks, raw, refusalOf, tokenOf, verifiedGroup, verifyingServerOptions, type DsPeer } from './ds-helpers.js';
import { CAPS } from './intents-review-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

/** `store`, counting the log rows it returns (`readLog`, `readProposals`). */
function counting(store: DeliveryStore): { proxy: DeliveryStore; read: { rows: number } } {
  const read = { rows: 0 };
  const proxy = new Proxy(store, {
    get(target, name) {
      const value = Reflect.get(target, name, target);
      if (typeof value !== 'function') return value;
      if (name === 'readLog') {
        return async (...a: Parameters<DeliveryStore['readLog']>) => {
          const page = await target.readLog(...a);
          read.rows += page.length;
          return page;
        };
      }
      if (name === 'readProposals') {
        return async (...a: Parameters<NonNullable<DeliveryStore['readProposals']>>) => {
          const r = await target.readProposals!(...a);
          read.rows += r.messages.length;
          return r;
        };
      }
      return value.bind(target);
    },
  });
  return { proxy, read };
}

/** `p`'s messages, `n` of them, logged as its route logs them (in process: no rate limit to wait out). */
async function flood(s: RunningDeliveryServer, p: DsPeer, n: number): Promise<void> {
  for (let i = 0; i < n; i++) expect((await s.ds.submit(p.group!.id, p.name, await p.group!.encrypt(`flood ${i}`))).accepted).toBe(true);
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const leafOf = (p: DsPeer, of: DsPeer) => p.group!.members().find((m) => utf8(m.credential.identity) === of.name)!.leafIndex;

/** `p`'s real commit posted with a GroupInfo whose signature fails (and `readTo`): the HTTP answer and the log rows read for it. */
async function junkCommit(url: string, p: DsPeer, read: { rows: number }, readTo?: number) {
  const c = await p.group!.selfUpdate({ groupInfo: true });
  await p.group!.clearPendingCommit();
  const groupInfo = c.groupInfo!.slice();
  groupInfo[groupInfo.length - 1]! ^= 1;
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
  const token = await tokenOf(url, p.name, p);
  read.rows = 0;
  const r = await raw(url, 'POST', `/v1/groups/${toHex(p.group!.id)}/messages`, { message: b64(c.commit), groupInfo: b64(groupInfo), ...(readTo === undefined ? {} : { readTo }) }, token);
  return { status: r.status, body: r.body, rows: read.rows };
}

const JUNK = (rows: number) => ({ status: 400, body: { reason: 'invalid-group-info', error: 'the new GroupInfo does not verify: The signature on the GroupInfo is not valid. (invalid-group-info)' }, rows });

/** `p` reads the log, commits what it queued (by reference) with `readTo`, and merges: the log rows the DS read for the commit. */
async function commitQueued(p: DsPeer, read: { rows: number }): Promise<number> {
  await catchUpAll(p);
  const c = await p.group!.selfUpdate({ groupInfo: true });
  read.rows = 0;
  p.seen = await p.ds.submit(p.group!.id, c.commit, { groupInfo: c.groupInfo, welcome: c.welcome, readTo: p.seen });
  const rows = read.rows;
  await p.group!.mergePendingCommit();
  return rows;
}

/**
 * In one epoch of a verified group, between batches of mallory's 400 application messages: bob's Add proposal, quinn's
 * Remove of mallory, the DS's proposal of dora's leave (a LeafOperationIntent), its Remove of rita's leaf (her client
 * revoked). mallory's junk commits read those 4 rows, not 1,200 more; pete's commit covers exactly those 4 by reference.
 */
async function interleaved(store: DeliveryStore) {
  const { proxy, read } = counting(store);
  const s = await startDeliveryServer({ ...(await verifyingServerOptions())(), store: proxy });
  try {
    const tag = Math.random().toString(36).slice(2, 7);
    const [pete, quinn, bob, dora, rita, mallory, sam] = await Promise.all(['pete', 'quinn', 'bob', 'dora', 'rita', 'mallory', 'sam'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
    const options: GroupOptions = { capabilities: CAPS, extensions: { externalSenders: [s.ds.externalSenderSpecFor(1)], requiredCapabilities: CAPS } };
    await verifiedGroup(pete!, [quinn!, bob!, dora!, rita!, mallory!], options);
    const gid = pete!.group!.id;
    const seen: Record<string, unknown> = {};

    await sam!.ds.uploadKeyPackages([await sam!.client.createKeyPackage(sam!.identity, { capabilities: CAPS })]);
    const kp = (await bob!.ds.fetchKeyPackages([sam!.name])).get(sam!.name)!;
    await bob!.ds.ackKeyPackages([sam!.name]);
    await bob!.ds.submit(gid, await bob!.group!.propose({ type: 'add', keyPackage: kp }));
    await flood(s, mallory!, 400);
    await quinn!.ds.submit(gid, await quinn!.group!.propose({ type: 'remove', leafIndex: leafOf(quinn!, mallory!) }));
    await flood(s, mallory!, 400);
    await s.ds.proposeIntent(gid, createIntent(dora!.group!, 'senderRemovalOnly'));
    const ritaLeaf = leafOf(pete!, rita!);
    await rita!.ds.revoke();
    // pete commits without reading the log: rita's leaf kept, the DS proposes its removal.
    const early = await pete!.group!.selfUpdate({ groupInfo: true });
    seen.early = refusalOf(await pete!.ds.submit(gid, early.commit, { groupInfo: early.groupInfo }).catch((e) => e));
    await pete!.group!.clearPendingCommit();
    const last = (await s.ds.store.readLog(toHex(gid), 0, 100_000)).at(-1)!.seq;
    await flood(s, mallory!, 400);

    seen.junk = [await junkCommit(s.url, mallory!, read), await junkCommit(s.url, mallory!, read), await junkCommit(s.url, mallory!, read, last)];
    seen.covering = await commitQueued(pete!, read);
    seen.dsMembers = (await s.ds.store.getGroup(toHex(gid)))!.members.sort();
    const [w] = await sam!.ds.welcomes();
    sam!.group = await sam!.client.joinFromWelcome(w!.welcome, { wireFormat: 'plaintext', capabilities: CAPS });
    await sam!.ds.ackWelcomes([w!.id]);
    sam!.seen = pete!.seen;
    for (const p of [quinn!, bob!]) await catchUpAll(p);
    await groupStillWorks([pete!, quinn!, bob!, sam!], 'after the flood');
    await groupStillWorks([sam!, pete!, quinn!, bob!], 'sam too');
    const ids = { pete: pete!.name, quinn: quinn!.name, bob: bob!.name, sam: sam!.name, rita: ritaLeaf };
    return { seen, ids };
  } finally {
    await s.close();
  }
}

function expectInterleaved({ seen, ids }: Awaited<ReturnType<typeof interleaved>>) {
  expect(seen).toEqual({
    early: { reason: 'revoked-leaf', message: `leaf ${ids.rita} is of a revoked client; this DS proposed its removal: process the group's messages and commit again (revoked-leaf)`, leaves: [ids.rita], proposed: true },
    // Before: 1,204 rows each (the epoch's whole log), 1,604 with readTo (the 400 after it too); the covering commit 1,204.
    junk: [JUNK(4), JUNK(4), JUNK(4)],
    covering: 4,
    dsMembers: [ids.pete, ids.quinn, ids.bob, ids.sam].sort(),
  });
}

type Db = { open: () => Promise<SqliteDeliveryStore | PostgresDeliveryStore>; downgrade: () => Promise<void>; oldAppend: (groupId: string, sender: string, bytes: Uint8Array) => Promise<void> };

/**
 * A database of the previous release, opened by this one mid-epoch (bob's proposal and 30 messages logged unmarked),
 * and that release's server still logging beside this one (quinn's proposal, 20 messages): the DS reads those rows as
 * it read the log (21 for a readTo, 52 for a commit; not this release's 200 messages), misses none of their proposals
 * (readTo, a commit covering both by reference), and after the next commit reads only what is marked.
 */
async function upgrade(db: Db) {
  const options = await verifyingServerOptions();
  let store = await db.open();
  let s = await startDeliveryServer({ ...options(), store });
  const port = Number(new URL(s.url).port);
  const tag = Math.random().toString(36).slice(2, 7);
  const [pete, quinn, bob, mallory] = await Promise.all(['pete', 'quinn', 'bob', 'mallory'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
  await verifiedGroup(pete!, [quinn!, bob!, mallory!]);
  const gid = pete!.group!.id;
  const hex = toHex(gid);
  const epoch = pete!.group!.epoch;
  const seen: Record<string, unknown> = {};
  await bob!.ds.submit(gid, await bob!.group!.propose({ type: 'update' }));
  await flood(s, mallory!, 30);
  await s.close();
  await store.close();
  // The clients' kept-alive connections to it see it close (a request on one then fails: fetch's TypeError).
  await new Promise((r) => setTimeout(r, 100));
  await db.downgrade();
  store = await db.open();
  const { proxy, read } = counting(store);
  // On the same port: the members' clients and sessions (keyed by the store's secret) carry on.
  s = await startDeliveryServer({ ...options(), port, store: proxy });
  try {
    await catchUpAll(pete!);
    const readTo = pete!.seen;
    await db.oldAppend(hex, quinn!.name, await quinn!.group!.propose({ type: 'update' }));
    for (let i = 0; i < 20; i++) await db.oldAppend(hex, mallory!.name, await mallory!.group!.encrypt(`old ${i}`));
    await flood(s, mallory!, 200);
    // pete read to before quinn's proposal: refused, having read the 21 rows the previous release logged since.
    const blind = await pete!.group!.selfUpdate({ groupInfo: true });
    read.rows = 0;
    seen.unread = { ...refusalOf(await pete!.ds.submit(gid, blind.commit, { groupInfo: blind.groupInfo, readTo }).catch((e) => e)), rows: read.rows };
    await pete!.group!.clearPendingCommit();
    seen.junk = await junkCommit(s.url, mallory!, read);
    seen.covering = await commitQueued(pete!, read);
    for (const p of [quinn!, bob!, mallory!]) await catchUpAll(p);
    await groupStillWorks([pete!, quinn!, bob!, mallory!], 'after the upgrade');
    // The next epoch: only this release's rows, marked.
    await flood(s, mallory!, 100);
    await bob!.ds.submit(gid, await bob!.group!.propose({ type: 'update' }));
    seen.next = await junkCommit(s.url, mallory!, read);
    seen.nextCovering = await commitQueued(quinn!, read);
    for (const p of [pete!, bob!, mallory!]) await catchUpAll(p);
    await groupStillWorks([quinn!, pete!, bob!, mallory!], 'the epoch after');
    expect(seen).toEqual({
      unread: { reason: 'unread-proposal', message: `a proposal of epoch ${epoch} was logged after ${readTo}: process the group's messages and commit again (unread-proposal)`, rows: 21 },
      // Before: 252 (the epoch's whole log).
      junk: JUNK(52),
      covering: 52,
      next: JUNK(1),
      nextCovering: 1,
    });
  } finally {
    await s.close();
    await store.close();
  }
}

describe("a verifying DS reads the epoch's proposals by an index, not the epoch's log (PROTOCOL §8.5, §8.6)", () => {
  const dir = mkdtempSync(join(tmpdir(), 'paired-mls-epoch-proposals-'));
  let pgServer: PgServer;
  beforeAll(async () => {
    pgServer = await startPostgres();
  });
  afterAll(async () => {
    await pgServer?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("memory store: mallory's 1,200 application messages between an Add, a Remove, the DS's intent and its Remove of a revoked leaf are not read for her junk commits (4 rows each), and the honest commit covers exactly those 4 proposals", async () => {
    expectInterleaved(await interleaved(new MemoryDeliveryStore()));
  });

  it('SQLite: the same', async () => {
    const store = new SqliteDeliveryStore(join(dir, 'interleaved.sqlite'));
    try {
      expectInterleaved(await interleaved(store));
    } finally {
      store.close();
    }
  });

  it('PostgreSQL: the same', async () => {
    const store = await PostgresDeliveryStore.connect(pgServer.url);
    try {
      expectInterleaved(await interleaved(store));
    } finally {
      await store.close();
    }
  });

  it("SQLite: a database of the previous release, and that release's server logging beside this one: their unmarked rows are read as before (a proposal of theirs refuses a readTo before it, and a commit covers it), this release's application messages are not", async () => {
    const file = join(dir, 'upgrade.sqlite');
    await upgrade({
      open: async () => new SqliteDeliveryStore(file),
      // The previous release's database: no proposal mark, no index of it.
      downgrade: async () => {
        const db = new Database(file);
        db.exec('DROP INDEX IF EXISTS log_proposals');
        if (db.prepare("SELECT 1 FROM pragma_table_info('log') WHERE name = 'proposal_epoch'").get()) db.exec('ALTER TABLE log DROP COLUMN proposal_epoch');
        db.close();
      },
      // The previous release's append (its INSERT names no proposal mark).
      oldAppend: async (groupId, sender, bytes) => {
        const db = new Database(file);
        const { n } = db.prepare('SELECT coalesce(max(seq), 0) + 1 AS n FROM log WHERE group_id = ?').get(groupId) as { n: number };
        db.prepare('INSERT INTO log (group_id, seq, sender, bytes, digest) VALUES (?, ?, ?, ?, ?)').run(groupId, n, sender, Buffer.from(bytes), sha256(bytes));
        db.close();
      },
    });
  });

  it("PostgreSQL: this release's first start on a log of the previous release (400,000 rows) holds no server's appends or reads of it while the index is built", async () => {
    const sql = new pg.Client({ connectionString: pgServer.url });
    await sql.connect();
    // A previous-release server, waiting at most 100 ms for a lock on the log (55P03 past that).
    const old = new pg.Client({ connectionString: pgServer.url });
    await old.connect();
    try {
      await (await PostgresDeliveryStore.connect(pgServer.url)).close();
      await sql.query('DROP INDEX IF EXISTS ds_log_proposals; ALTER TABLE ds_log DROP COLUMN IF EXISTS proposal_epoch');
      await sql.query("INSERT INTO ds_log (group_id, seq, sender, bytes, digest) SELECT 'big-' || (i % 50), i, 'm', '\\x0001', NULL FROM generate_series(1, 400000) i");
      await old.query("SET lock_timeout = '100ms'");
      const refused: string[] = [];
      let seq = 400_000;
      let opening = true;
      const traffic = (async () => {
        while (opening) {
          await old.query('INSERT INTO ds_log (group_id, seq, sender, bytes, digest) VALUES ($1, $2, $3, $4, $5)', ['big-1', ++seq, 'm', Buffer.from([1]), null]).catch((e) => refused.push(e.code));
          await old.query('SELECT seq FROM ds_log WHERE group_id = $1 AND seq > $2 ORDER BY seq LIMIT 10', ['big-1', seq - 5]).catch((e) => refused.push(e.code));
        }
      })();
      await new Promise((r) => setTimeout(r, 50));
      const store = await PostgresDeliveryStore.connect(pgServer.url);
      opening = false;
      await traffic;
      await store.close();
      const [index] = (await sql.query("SELECT indisvalid AS valid FROM pg_index WHERE indexrelid = to_regclass('ds_log_proposals')")).rows;
      const [marks] = (await sql.query("SELECT count(*) FILTER (WHERE proposal_epoch = -1) AS unknown, count(*) AS n FROM ds_log WHERE group_id LIKE 'big-%'")).rows;
      // Before: the ALTER TABLE's lock, held through the index build in the schema's transaction, refused both ([55P03, ...]).
      expect({ refused, index, unknown: marks.unknown === marks.n }).toEqual({ refused: [], index: { valid: true }, unknown: true });
      await sql.query("DELETE FROM ds_log WHERE group_id LIKE 'big-%'");
    } finally {
      await old.end();
      await sql.end();
    }
  });

  it('PostgreSQL: an index left invalid by a failed build is dropped and built again by the next start', async () => {
    const sql = new pg.Client({ connectionString: pgServer.url });
    await sql.connect();
    try {
      await (await PostgresDeliveryStore.connect(pgServer.url)).close();
      // A build that fails (here: unique on a column with duplicates) leaves an invalid index under the name.
      await sql.query('DROP INDEX IF EXISTS ds_log_proposals');
      await sql.query("INSERT INTO ds_log (group_id, seq, sender, bytes, digest, proposal_epoch) VALUES ('dup', 1, 'm', '\\x01', NULL, 0), ('dup', 2, 'm', '\\x01', NULL, 0)");
      const failed = await sql.query('CREATE UNIQUE INDEX CONCURRENTLY ds_log_proposals ON ds_log (group_id) WHERE proposal_epoch IS NOT NULL').catch((e) => e.code);
      const state = async () => (await sql.query("SELECT indisvalid AS valid, indisunique AS \"unique\" FROM pg_index WHERE indexrelid = to_regclass('ds_log_proposals')")).rows[0];
      expect({ failed, before: await state() }).toEqual({ failed: '23505', before: { valid: false, unique: true } });
      await (await PostgresDeliveryStore.connect(pgServer.url)).close();
      expect(await state()).toEqual({ valid: true, unique: false });
      await sql.query("DELETE FROM ds_log WHERE group_id = 'dup'");
    } finally {
      await sql.end();
    }
  });

  it('PostgreSQL: the same, on a database of the previous release', async () => {
    const sql = async (text: string, values: unknown[] = []) => {
      const c = new pg.Client({ connectionString: pgServer.url });
      await c.connect();
      try {
        return (await c.query(text, values)).rows;
      } finally {
        await c.end();
      }
    };
    await upgrade({
      open: () => PostgresDeliveryStore.connect(pgServer.url),
      downgrade: async () => void (await sql('DROP INDEX IF EXISTS ds_log_proposals; ALTER TABLE ds_log DROP COLUMN IF EXISTS proposal_epoch')),
      oldAppend: async (groupId, sender, bytes) => {
        const [{ n }] = await sql('SELECT coalesce(max(seq), 0) + 1 AS n FROM ds_log WHERE group_id = $1', [groupId]);
        await sql('INSERT INTO ds_log (group_id, seq, sender, bytes, digest) VALUES ($1, $2, $3, $4, $5)', [groupId, n, sender, Buffer.from(bytes), sha256(bytes)]);
      },
    });
  });
});
