#!/usr/bin/env node
// The DS costs docs/PROTOCOL.md states, on SQLite and PostgreSQL:
// - poll (§8.4): the session key's lookup the poll route asks again after
//   its read (`store.bindingByKey`, ds-server.ts stillValidAfterRead), alone;
//   and a poll of 20 messages by a member of a group of 128 over HTTP
//   (startDeliveryServer on loopback, DeliveryClient.poll);
// - delete (§8.3): `store.deleteGroup` of a group holding 100,000 logged
//   messages of 1 KiB from 1,000 senders (the log and the senders' usage
//   rows filled by SQL as `append` writes them; PostgreSQL: then VACUUM);
//   on PostgreSQL also another group's appends (at another store, as
//   another server) meanwhile;
// - index (§8.6): the proposal index's first build on PostgreSQL: three
//   servers opening at once on a log of a million 500-byte rows across 50
//   groups, a previous-release writer appending throughout (lock_timeout
//   100 ms: a refusal is a wait past it); the index and its column dropped
//   before each run (as the release before left the log). The first run is
//   on the log as inserted, the others after a VACUUM.
//
//   npm run build:ts && node bench/ds-costs.js [--runs 3] [--only poll|delete|index]
//
// PostgreSQL: a throw-away cluster of Debian's package (as test/pg-server.ts:
// fsync off), run as the `postgres` user when root. SQLite: files in a
// temporary directory, the store's defaults (WAL, synchronous FULL). The
// poll's server raises the rate limits only (registering 128 clients and
// polling back to back from one address); the rest is its defaults.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { MlsClient } from 'paired-mls';
import { DeliveryClient } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
import { option, upperMedian } from './script-helpers.js';

const runs = Number(option('--runs', '3'));
const only = option('--only', undefined);
const parts = only ? only.split(',') : ['poll', 'delete', 'index'];
const tmp = mkdtempSync(join(tmpdir(), 'paired-mls-ds-costs-'));
chmodSync(tmp, 0o777);
const ms = (x) => x.toFixed(x < 10 ? 2 : 1);
const sleep = (t) => new Promise((r) => setTimeout(r, t));
const sha256 = (b) => createHash('sha256').update(b).digest('hex');
/** A table: a header row, then rows, columns padded. */
function table(title, rows) {
  console.log(`\n${title}`);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const r of rows) console.log('  ' + r.map((c, i) => String(c).padEnd(widths[i])).join('  '));
}

// ---- PostgreSQL: a cluster of its own (test/pg-server.ts, minimal) ----
function pgBin(name) {
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) for (const v of readdirSync(base).sort().reverse()) if (existsSync(join(base, v, 'bin', name))) return join(base, v, 'bin', name);
  return name;
}
const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
async function startPostgres() {
  const asRoot = process.getuid?.() === 0;
  const run = (bin, args) => (asRoot ? execFileSync('runuser', ['-u', 'postgres', '--', bin, ...args], { stdio: 'pipe' }) : execFileSync(bin, args, { stdio: 'pipe' }));
  const data = join(tmp, 'pg');
  run(pgBin('initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
  const port = await freePort();
  const args = ['-D', data, '-p', String(port), '-k', tmp, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=200'];
  const child = asRoot ? spawn('runuser', ['-u', 'postgres', '--', pgBin('postgres'), ...args], { stdio: 'ignore' }) : spawn(pgBin('postgres'), args, { stdio: 'ignore' });
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  for (let i = 0; ; i++) {
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => undefined);
    try {
      await c.connect();
      const { rows } = await c.query('SHOW data_directory');
      const { rows: v } = await c.query('SHOW server_version');
      await c.end();
      if (rows[0].data_directory !== data) throw new Error(`port ${port} is another cluster's`);
      return {
        url,
        version: v[0].server_version,
        stop: async () => {
          const ended = new Promise((r) => child.once('exit', r));
          run(pgBin('pg_ctl'), ['stop', '-D', data, '-m', 'fast', '-w']);
          await ended;
        },
      };
    } catch (err) {
      await c.end().catch(() => undefined);
      if (i > 100 || child.exitCode !== null) throw err;
      await sleep(100);
    }
  }
}
async function sql(url, f) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await f(c);
  } finally {
    await c.end();
  }
}
/** A database of its own on the cluster (each part starts from an empty schema). */
async function database(postgres, name) {
  await sql(postgres.url, (c) => c.query(`CREATE DATABASE ${name}`));
  return postgres.url.replace(/\/postgres$/, `/${name}`);
}

// ---- 1. poll with the read-after check ----
async function pollCosts(storeName, store) {
  const fast = [1e6, 1e6];
  const server = await startDeliveryServer({ port: 0, store, registrationRate: fast, clientRate: fast, ipRate: fast, keyPackageRate: fast, keyPackageTargetRate: fast, verificationRate: fast });
  try {
    const creatorClient = await MlsClient.open();
    const others = await MlsClient.open();
    const register = async (client, name) => {
      const identity = await client.createIdentity(name, 1);
      return { name, identity, ds: await DeliveryClient.register(server.url, { clientId: name, client, identity }) };
    };
    const creator = await register(creatorClient, 'm0');
    const members = [];
    for (let i = 1; i < 128; i++) {
      const m = await register(others, `m${i}`);
      await m.ds.uploadKeyPackages([await others.createKeyPackage(m.identity)]);
      members.push(m);
    }
    const group = await creatorClient.createGroup(creator.identity);
    await creator.ds.createGroup(group.id, { epoch: group.epoch });
    const names = members.map((m) => m.name);
    const kps = [];
    for (let i = 0; i < names.length; i += 100) kps.push(...(await creator.ds.fetchKeyPackages(names.slice(i, i + 100))).values()); // 100 a request at most
    const add = await group.commit({ add: kps, groupInfo: true });
    const after = await creator.ds.submit(group.id, add.commit, { welcome: add.welcome, added: names, groupInfo: add.groupInfo });
    await creator.ds.ackKeyPackages(names);
    await group.mergePendingCommit();
    for (let i = 0; i < 20; i++) await creator.ds.submit(group.id, await group.encrypt(`message ${i} `.padEnd(100, '.')));
    const poller = members[0];
    const first = await poller.ds.poll(group.id, after);
    if (first.length !== 20) throw new Error(`a poll read ${first.length} messages, not 20`);
    const key = poller.identity.signaturePublicKey;
    if ((await store.bindingByKey(key))?.clientId !== poller.name) throw new Error('the poller has no binding');
    for (let i = 0; i < 50; i++) await poller.ds.poll(group.id, after); // warm-up
    for (let i = 0; i < 500; i++) await store.bindingByKey(key);
    const lookups = [];
    const polls = [];
    for (let r = 0; r < runs; r++) {
      const each = [];
      for (let i = 0; i < 2000; i++) {
        const t = performance.now();
        await store.bindingByKey(key);
        each.push(performance.now() - t);
      }
      lookups.push(upperMedian(each) * 1000);
      const per = [];
      for (let i = 0; i < 300; i++) {
        const t = performance.now();
        await poller.ds.poll(group.id, after);
        per.push(performance.now() - t);
      }
      polls.push(upperMedian(per));
    }
    return { store: storeName, lookups, polls, messageBytes: first[0].message.length };
  } finally {
    await server.close();
  }
}

// ---- 2. a group deletion ----
const MESSAGES = 100_000;
const SENDERS = 1000;
const MESSAGE_BYTES = 1024;
/** What `append` counts per message for its sender: its bytes + 256 (storedBytes). */
const PER_MESSAGE = MESSAGE_BYTES + 256;
const deletable = (groupId) => ({ groupId, epoch: 1, members: ['owner'], consistency: 'strong', groupInfo: randomBytes(1000) });

async function deleteSqlite() {
  const Database = createRequire(import.meta.url)('better-sqlite3');
  const file = join(tmp, 'delete.sqlite');
  const store = new SqliteDeliveryStore(file);
  const db = new Database(file);
  const out = [];
  try {
    for (let r = 0; r < runs; r++) {
      const gid = `de1e7e${r}`;
      await store.insertGroup(deletable(gid));
      const f0 = performance.now();
      // As append logs an application message (proposal_epoch NULL: no budget), its sender's usage row counting bytes + 256.
      db.transaction(() => {
        db.prepare(
          `WITH RECURSIVE i(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM i WHERE n < ${MESSAGES})
           INSERT INTO log (group_id, seq, sender, bytes, digest, proposal_epoch) SELECT ?, n, 's' || (n % ${SENDERS}), randomblob(${MESSAGE_BYTES}), lower(hex(randomblob(32))), NULL FROM i`,
        ).run(gid);
        db.prepare(
          `WITH RECURSIVE i(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM i WHERE n < ${SENDERS - 1})
           INSERT INTO usage (client_id, bytes, key_packages) SELECT 's' || n, ${(MESSAGES / SENDERS) * PER_MESSAGE}, 0 FROM i WHERE true
           ON CONFLICT (client_id) DO UPDATE SET bytes = usage.bytes + excluded.bytes`,
        ).run();
      })();
      const filled = performance.now() - f0;
      const t = performance.now();
      const done = await store.deleteGroup(gid, 'owner', { held: () => [], keep: 1000 });
      const took = performance.now() - t;
      const left = db.prepare('SELECT count(*) AS n FROM log WHERE group_id = ?').get(gid).n;
      const s0 = (await store.usage('s0')).bytes;
      if (done !== 'deleted' || left !== 0 || s0 !== 0) throw new Error(`SQLite deletion: ${done}, ${left} rows left, s0 counts ${s0}`);
      out.push({ took, filled });
    }
  } finally {
    db.close();
    store.close();
  }
  return out;
}

async function deletePostgres(url) {
  const store = await PostgresDeliveryStore.connect(url);
  const other = await PostgresDeliveryStore.connect(url); // another server, appending to another group
  const out = [];
  try {
    await store.insertGroup({ groupId: 'a11ce', epoch: 0, members: ['alice'], consistency: 'strong' });
    for (let r = 0; r < runs; r++) {
      const gid = `de1e7e${r}`;
      await store.insertGroup(deletable(gid));
      const f0 = performance.now();
      await sql(url, async (c) => {
        await c.query('BEGIN');
        // 1 KiB of hex-decoded MD5s (no compression below the TOAST threshold), a distinct digest each; as append logs it.
        await c.query(
          `INSERT INTO ds_log (group_id, seq, sender, bytes, digest, proposal_epoch)
           SELECT $1, i, 's' || (i % ${SENDERS}), decode(repeat(md5($1 || ':' || i), ${MESSAGE_BYTES / 16}), 'hex'), md5(i || ':' || $1) || md5($1 || ':' || i), NULL FROM generate_series(1, ${MESSAGES}) i`,
          [gid],
        );
        await c.query(
          `INSERT INTO ds_usage AS u (client_id, bytes, key_packages) SELECT 's' || n, ${(MESSAGES / SENDERS) * PER_MESSAGE}, 0 FROM generate_series(0, ${SENDERS - 1}) n
           ON CONFLICT (client_id) DO UPDATE SET bytes = u.bytes + excluded.bytes`,
        );
        await c.query('COMMIT');
        await c.query('VACUUM ANALYZE ds_log');
      });
      const filled = performance.now() - f0;
      // alice's posts to her own group, one after another, before and while the deletion runs.
      let deleting = false;
      let appending = true;
      const during = [];
      const before = [];
      const appender = (async () => {
        while (appending) {
          const bytes = randomBytes(MESSAGE_BYTES);
          const t = performance.now();
          const overlapped = deleting;
          await other.append({ groupId: 'a11ce', sender: 'alice', bytes, digest: sha256(bytes) });
          const lat = performance.now() - t;
          const list = overlapped || deleting ? during : before;
          if (list.length < 100_000) list.push(lat);
          await sleep(1);
        }
      })();
      await sleep(300);
      deleting = true;
      const t = performance.now();
      const done = await store.deleteGroup(gid, 'owner', { held: () => [], keep: 1000 });
      const took = performance.now() - t;
      deleting = false;
      appending = false;
      await appender;
      const left = await sql(url, async (c) => Number((await c.query('SELECT count(*) AS n FROM ds_log WHERE group_id = $1', [gid])).rows[0].n));
      const s0 = (await store.usage('s0')).bytes;
      if (done !== 'deleted' || left !== 0 || s0 !== 0) throw new Error(`PostgreSQL deletion: ${done}, ${left} rows left, s0 counts ${s0}`);
      out.push({ took, filled, appends: during.length, max: Math.max(...during), median: upperMedian(during), baseline: upperMedian(before) });
    }
  } finally {
    await store.close();
    await other.close();
  }
  return out;
}

// ---- 3. the proposal index's first build on PostgreSQL ----
const LOG_ROWS = 1_000_000;
async function indexBuild(url) {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  const out = [];
  try {
    await (await PostgresDeliveryStore.connect(url)).close();
    await admin.query('DROP INDEX IF EXISTS ds_log_proposals; ALTER TABLE ds_log DROP COLUMN IF EXISTS proposal_epoch');
    // Autovacuum off for the log: it would run at a moment of its choosing (the build waits for its lock).
    await admin.query('ALTER TABLE ds_log SET (autovacuum_enabled = false)');
    const f0 = performance.now();
    for (let from = 1; from <= LOG_ROWS; from += 200_000) {
      await admin.query(
        `INSERT INTO ds_log (group_id, seq, sender, bytes, digest)
         SELECT 'big-' || (i % 50), i, 's' || (i % 1000), decode(substr(repeat(md5(i::text), 32), 1, 1000), 'hex'), md5('d' || i) || md5(i || 'd') FROM generate_series($1::bigint, $2::bigint) i`,
        [from, Math.min(from + 199_999, LOG_ROWS)],
      );
    }
    const filled = performance.now() - f0;
    const { rows: size } = await admin.query("SELECT pg_size_pretty(pg_total_relation_size('ds_log')) AS s");
    // The first run on the log as inserted (its first scan sets every row's hint bits), the others after a VACUUM.
    for (let r = 0; r <= runs; r++) {
      if (r === 1) await admin.query('VACUUM ANALYZE ds_log');
      // The release before: no mark, no index (dropping the column is metadata only; adding it back gives every row -1).
      await admin.query('DROP INDEX IF EXISTS ds_log_proposals; ALTER TABLE ds_log DROP COLUMN IF EXISTS proposal_epoch');
      const old = new pg.Client({ connectionString: url });
      await old.connect();
      await old.query("SET lock_timeout = '100ms'");
      let seq = LOG_ROWS + r * 1_000_000;
      let opening = true;
      const traffic = { appends: 0, refused: 0, codes: new Set(), max: 0 };
      const writer = (async () => {
        while (opening) {
          const t = performance.now();
          await old.query('INSERT INTO ds_log (group_id, seq, sender, bytes, digest) VALUES ($1, $2, $3, $4, $5)', ['big-1', ++seq, 'old', randomBytes(500), null]).then(
            () => traffic.appends++,
            (e) => (traffic.refused++, traffic.codes.add(e.code)),
          );
          traffic.max = Math.max(traffic.max, performance.now() - t);
          await sleep(5);
        }
      })();
      await sleep(200);
      const t = performance.now();
      const opened = await Promise.allSettled([0, 1, 2].map(() => PostgresDeliveryStore.connect(url)));
      const took = performance.now() - t;
      opening = false;
      await writer;
      await old.end();
      for (const o of opened) if (o.status === 'fulfilled') await o.value.close();
      const [index] = (await admin.query("SELECT indisvalid AS valid, pg_size_pretty(pg_relation_size(indexrelid)) AS size FROM pg_index WHERE indexrelid = to_regclass('ds_log_proposals')")).rows;
      const failed = opened.filter((o) => o.status === 'rejected').map((o) => o.reason?.message);
      out.push({ log: r === 0 ? 'as inserted' : 'vacuumed', took, ...traffic, codes: [...traffic.codes].join(' '), valid: index ? `${index.valid} (${index.size})` : 'absent', failed });
    }
    return { filled, size: size[0].s, runs: out };
  } finally {
    await admin.end();
  }
}

// ---- run ----
let postgres;
try {
  postgres = await startPostgres();
  console.log(`ds-costs: ${runs} runs; PostgreSQL ${postgres.version} (loopback, fsync off); SQLite (WAL, synchronous FULL); ${new Date().toISOString()}`);
  if (parts.includes('poll')) {
    const results = [await pollCosts('SQLite', new SqliteDeliveryStore(join(tmp, 'poll.sqlite')))];
    const pgStore = await PostgresDeliveryStore.connect(await database(postgres, 'poll'));
    try {
      results.push(await pollCosts('PostgreSQL', pgStore));
    } finally {
      await pgStore.close();
    }
    const range = (xs, f) => `${f(Math.min(...xs))}–${f(Math.max(...xs))}`;
    table(`1. poll (§8.4): bindingByKey alone (median of 2000 calls a run), a poll of 20 messages (${results[0].messageBytes} bytes each) by a member of 128 over HTTP (median of 300 a run); runs' medians`, [
      ['store', 'lookup µs', 'lookup runs µs', 'poll ms', 'poll runs ms'],
      ...results.map((x) => [x.store, upperMedian(x.lookups).toFixed(1), range(x.lookups, (v) => v.toFixed(1)), ms(upperMedian(x.polls)), range(x.polls, ms)]),
    ]);
  }
  if (parts.includes('delete')) {
    const lite = await deleteSqlite();
    const pgRuns = await deletePostgres(await database(postgres, 'del'));
    table(`2. deleteGroup (§8.3): ${MESSAGES} logged messages of ${MESSAGE_BYTES} B from ${SENDERS} senders (filled by SQL); PostgreSQL: another group's appends meanwhile (another store, 1 ms apart)`, [
      ['store', 'run', 'fill s', 'delete s', 'appends during', 'append median ms', 'append max ms', 'append before ms'],
      ...lite.map((x, i) => ['SQLite', i + 1, (x.filled / 1000).toFixed(1), (x.took / 1000).toFixed(2), '-', '-', '-', '-']),
      ...pgRuns.map((x, i) => ['PostgreSQL', i + 1, (x.filled / 1000).toFixed(1), (x.took / 1000).toFixed(2), x.appends, ms(x.median), ms(x.max), ms(x.baseline)]),
    ]);
    console.log(`  median delete: SQLite ${(upperMedian(lite.map((x) => x.took)) / 1000).toFixed(2)} s, PostgreSQL ${(upperMedian(pgRuns.map((x) => x.took)) / 1000).toFixed(2)} s`);
  }
  if (parts.includes('index')) {
    const res = await indexBuild(await database(postgres, 'idx'));
    table(`3. proposal index's first build (§8.6): ${LOG_ROWS} rows of 500 B in 50 groups (${res.size}, filled in ${(res.filled / 1000).toFixed(1)} s; autovacuum off for it); three connect() at once, a writer appending 5 ms apart (lock_timeout 100 ms)`, [
      ['run', 'log', 'all open s', 'appends', 'refused', 'max append ms', 'index valid (size)', 'failed opens'],
      ...res.runs.map((x, i) => [i + 1, x.log, (x.took / 1000).toFixed(2), x.appends, x.refused + (x.codes ? ` (${x.codes})` : ''), ms(x.max), x.valid, x.failed.length ? x.failed.join('; ') : 0]),
    ]);
  }
} finally {
  await postgres?.stop();
  rmSync(tmp, { recursive: true, force: true });
}
