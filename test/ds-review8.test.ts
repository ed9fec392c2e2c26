/**
 * An eighth attacker's review of the DS: the AS's remaining scans and the
 * rotation limit. Each test is an attack that succeeded before its fix,
 * asserting the exact answer and that honest clients keep working.
 *
 * Attacks:
 * - the AS's "identity of another user" check (`identity = ? AND user_id
 *   <> ?`, on an index of identity alone) walked every row of the
 *   registering user's identity, rotated-away keys too: with 300,000 such
 *   rows (rotations and revoked clients of one user, all with the user's
 *   name as identity) each further-key request of that user, refused 429
 *   quota-exceeded after the walk, blocked the SQLite server ~30 ms (~200
 *   such requests a second per client). Now two seeks on (identity, user_id).
 * - a rotation took its client's `rotationRate` token before the new key
 *   was proven: bare requests (no proof) drained the bucket, so a thief
 *   holding a session kept the owner from rotating without rotating itself,
 *   and keeping 100,000 buckets drained stored nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { PostgresDeliveryStore, SqliteDeliveryStore } from 'paired-mls/server';
import { startPostgres, type PgServer } from './pg-server.js';
import { dsPeer, groupOf, groupStillWorks, peerFrom, postFrom, proof, raw, sqliteServers, tokenOf, type DsPeer } from './ds-helpers.js';
import { WebSocket } from 'ws';
import { DeliveryClient } from 'paired-mls/services';
import type { Identity } from 'paired-mls';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

async function keyBody(url: string, who: DsPeer, key: Identity) {
  return { ...(await proof(url, who.name, { client: who.client, identity: key })), userId: who.name, identity: b64(key.identity), ciphersuite: 1 };
}

/** Median ms of `n` runs of `f`. */
async function median(n: number, f: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await f();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[n >> 1]!;
}

describe('eighth review of the DS (SQLite)', () => {
  const server = sqliteServers('paired-mls-review8-');
  const tag = Math.random().toString(36).slice(2, 8);

  it("the AS's identity check seeks another user's row: 300,000 rows of the registering user's identity are not walked (each request blocked the server ~30 ms); another user's identity is still refused", async () => {
    let file = '';
    const s = await server({}, (f) => new SqliteDeliveryStore((file = f)));
    const m = await dsPeer(s.url, `mallory-${tag}`);
    const db = new Database(file);
    const put = db.prepare('INSERT INTO bindings (signature_key, client_id, user_id, identity, ciphersuite, revoked) VALUES (?, ?, ?, ?, 1, 1)');
    db.transaction(() => {
      for (let i = 0; i < 300_000; i++) put.run(i.toString(16).padStart(64, '0'), `${m.name}-${i >> 4}`, m.name, Buffer.from(m.identity.identity));
    })();
    db.close();
    const store = s.ds.store;
    const at = (i: number) => ({ clientId: m.name, userId: m.name, identity: m.identity.identity, signatureKey: new Uint8Array(32).fill(i), ciphersuite: 1 });
    // A further key past a cap of 1: the identity check runs first, then the refusal. Before the fix: ~30 ms each, the event loop blocked.
    const ms = await median(7, () => expect(store.registerBinding(at(1), { quota: { keys: 1 } })).rejects.toMatchObject({ kind: 'keys' }));
    expect(ms).toBeLessThan(5);
    // Over HTTP: refused as before.
    const token = await tokenOf(s.url, m.name, m);
    for (let i = 1; i < 16; i++) expect((await raw(s.url, 'POST', '/v1/as/register', await keyBody(s.url, m, await m.client.createIdentity(m.name, 1)), token)).status).toBe(200);
    expect(await raw(s.url, 'POST', '/v1/as/register', await keyBody(s.url, m, await m.client.createIdentity(m.name, 1)), token)).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
    // The identity stays mallory's: another user (either side of it in order) is refused.
    for (const other of [`a-${tag}`, `z-${tag}`]) {
      expect(await store.registerBinding({ ...at(2), clientId: other, userId: other }, { newClient: true })).toBe('identity-taken');
    }
    expect(await store.registerBinding({ ...at(2), clientId: `${m.name}-new`, userId: m.name }, { newClient: true })).toBeUndefined();
  }, 120_000);

  it("a database of the previous schema (identity index alone) gets the (identity, user_id) index and the seek", async () => {
    const fs = await import('node:fs');
    const dir = fs.mkdtempSync((await import('node:path')).join((await import('node:os')).tmpdir(), 'paired-mls-review8-old-'));
    const file = `${dir}/old.db`;
    try {
      new SqliteDeliveryStore(file).close();
      const db = new Database(file);
      db.exec('DROP INDEX bindings_identity_user; CREATE INDEX bindings_identity ON bindings (identity)');
      db.close();
      new SqliteDeliveryStore(file).close();
      const again = new Database(file);
      const indexes = (again.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'bindings'").all() as { name: string }[]).map((r) => r.name);
      expect(indexes).toContain('bindings_identity_user');
      const plan = again.prepare('EXPLAIN QUERY PLAN SELECT 1 FROM bindings WHERE identity = ? AND user_id > ?').all(Buffer.from('x'), 'u') as { detail: string }[];
      expect(plan.map((p) => p.detail).join()).toContain('bindings_identity_user (identity=? AND user_id>?)');
      again.close();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("bare rotation requests (no proof of a new key) no longer drain the client's rotation bucket: the owner still rotates the stolen key away", async () => {
    const s = await server({ rotationRate: [1 / 3600, 2] });
    const [owner, bob] = await Promise.all([dsPeer(s.url, `owner-${tag}`), dsPeer(s.url, `bob-${tag}`)]);
    const stolen = await tokenOf(s.url, owner.name, owner);
    // The thief, holding a session: rotation requests without a valid proof, 10 of them.
    const fake = await owner.client.createIdentity(owner.name, 1);
    for (let i = 0; i < 10; i++) {
      const answer = await raw(s.url, 'POST', '/v1/as/rotate', { signatureKey: b64(fake.signaturePublicKey), ciphersuite: 1 }, stolen);
      // Before the fix: 401 twice (each took a token), then 429 rate-limited.
      expect(answer).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    }
    // The owner rotates the key away: the thief's session ends.
    const next = await owner.client.createIdentity(owner.name, 1);
    await owner.ds.rotateKey(next);
    owner.identity = next;
    expect(await raw(s.url, 'GET', '/v1/pairings', undefined, stolen)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    // Still limited: proven rotations take the tokens (2), then 429 with the key kept.
    const after = await owner.client.createIdentity(owner.name, 1);
    await owner.ds.rotateKey(after);
    owner.identity = after;
    const refused = await owner.client.createIdentity(owner.name, 1);
    await expect(owner.ds.rotateKey(refused)).rejects.toMatchObject({ reason: 'rate-limited' });
    expect((await s.ds.store.bindingByKey(after.signaturePublicKey))?.revoked).toBe(false);
    expect(await s.ds.store.bindingByKey(refused.signaturePublicKey)).toBeUndefined();
    // Honest clients work.
    await groupOf(bob, [owner]);
    await groupStillWorks([bob, owner], 'after the rotations');
  });

  it("made-up client ids in KeyPackage fetches no longer hold the per-target limiter's map full (every target then handed out only its last-resort KeyPackage): an id with no KeyPackage takes no bucket; bob's one-time KeyPackages still go out", async () => {
    // rateLimitKeys 3 stands for the default 100,000 (made-up ids, each kept 10 s once drawn on).
    const s = await server({ rateLimitKeys: 3 });
    const [mallory, alice, bob] = await Promise.all(['mallory', 'alice', 'bob'].map((x) => dsPeer(s.url, `${x}-kp-${tag}`)));
    const lastResort = await bob!.client.createKeyPackage(bob!.identity, { lastResort: true });
    await bob!.ds.uploadKeyPackages([...(await bob!.client.createKeyPackages(bob!.identity, { count: 3 })), lastResort]);
    expect((await mallory!.ds.fetchKeyPackages(Array.from({ length: 60 }, (_, i) => `made-up-${i}-${tag}`))).size).toBe(0);
    // Before the fix: the map held 3 made-up ids and the overflow was empty, so bob's one-time KeyPackages were held back.
    const got = (await alice!.ds.fetchKeyPackages([bob!.name])).get(bob!.name)!;
    expect(Buffer.from(got).equals(Buffer.from(lastResort))).toBe(false);
    await alice!.ds.ackKeyPackages([bob!.name]);
    expect(await s.ds.store.countKeyPackages(bob!.name)).toBe(3);
    await groupOf(alice!, [bob!]);
    await groupStillWorks([alice!, bob!], 'bob is reachable');
  });

  it("the rotation bucket map held full by an attacker's clients no longer leaves every other client one shared bucket: a client without a bucket draws on its address's network's (an honest rotation elsewhere goes on; 429 rate-limited in the attacker's /16)", async () => {
    // rateLimitKeys 2 stands for the default 100,000 (clients of the attacker, each rotating once a minute).
    const s = await server({ rateLimitKeys: 2, rotationRate: [1 / 3600, 1] });
    const [m1, m2, m3, m4] = await Promise.all([1, 2, 3, 4].map((i) => peerFrom(s.url, `m${i}-${tag}`, `127.0.0.${i}`)));
    const rotateFrom = async (p: DsPeer, from: string) => {
      const next = await p.client.createIdentity(p.name, 1);
      const answer = await postFrom(s.url, '/v1/as/rotate', await keyBody(s.url, p, next), from, await tokenOf(s.url, p.name, p));
      if (answer.status === 200) p.identity = next;
      return answer;
    };
    for (const [p, from] of [[m1, '127.0.0.1'], [m2, '127.0.0.2']] as const) expect((await rotateFrom(p, from)).status).toBe(200);
    // The map holds 2 drawn-on buckets: m3 draws on what it falls back on, and drains it.
    expect((await rotateFrom(m3!, '127.0.0.3')).status).toBe(200);
    expect(await rotateFrom(m4!, '127.0.0.4')).toMatchObject({ status: 429, body: { reason: 'rate-limited' } });
    // Clients of other networks rotate (before the fix: 429, one overflow bucket for all) and their group works.
    const [alice, bob] = await Promise.all([peerFrom(s.url, `alice-${tag}`, '127.1.0.1'), peerFrom(s.url, `bob-${tag}`, '127.2.0.1')]);
    expect((await rotateFrom(alice, '127.1.0.1')).status).toBe(200);
    expect((await rotateFrom(bob, '127.2.0.1')).status).toBe(200);
    await Promise.all([alice, bob].map(async (p) => (p.ds = await DeliveryClient.login(s.url, { clientId: p.name, client: p.client, identity: p.identity }, { WebSocket }))));
    await groupOf(alice, [bob]);
    await groupStillWorks([alice, bob], 'after the rotations');
  });
});

describe('eighth review of the DS (PostgreSQL)', () => {
  let pgServer: PgServer;
  let store: PostgresDeliveryStore;
  beforeAll(async () => {
    pgServer = await startPostgres();
    store = await PostgresDeliveryStore.connect(pgServer.url);
  });
  afterAll(async () => {
    await store?.close();
    await pgServer?.stop();
  });

  it("the identity check's seeks: another user (either side in order) is refused, the same user's further client is not", async () => {
    const identity = new TextEncoder().encode('m');
    const at = (i: number, clientId: string, userId: string) => ({ clientId, userId, identity, signatureKey: new Uint8Array(32).fill(i), ciphersuite: 1 });
    expect(await store.registerBinding(at(1, 'm', 'm'), { newClient: true })).toBeUndefined();
    expect(await store.registerBinding(at(2, 'a', 'a'), { newClient: true })).toBe('identity-taken');
    expect(await store.registerBinding(at(3, 'z', 'z'), { newClient: true })).toBe('identity-taken');
    expect(await store.registerBinding(at(4, 'm2', 'm'), { newClient: true })).toBeUndefined();
  });
});
