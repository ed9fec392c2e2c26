/**
 * A seventh attacker's review of the DS: a client's signature keys.
 * Each test is an attack that succeeded before its fix, against the real
 * server (SQLite file; PostgreSQL, two servers), asserting the exact
 * refusal or bound and that honest clients keep working.
 *
 * Attacks:
 * - a registered client registered further keys for itself without bound
 *   (~500/s from one address), and each rotation kept the old key
 *   (revoked), counted by no quota; every key of a client, revoked ones
 *   too, was read into memory on paths anyone triggers by naming it (a
 *   registration, a commit adding it, a pairing request): with 300,000
 *   keys on one client, one forged 400-byte registration naming it blocked
 *   the SQLite server's event loop for 1.7 s, ten at once for 20.7 s and
 *   ~1 GB. Now a client has at most `maxKeysPerClient` (16) active keys
 *   (429 `quota-exceeded`), each key stored counts against its storage
 *   quota, and naming a client reads its active keys only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import pg from 'pg';
import { MlsClient, type Identity } from 'paired-mls';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { dsPeer, groupOf, groupStillWorks, proof, raw, sqliteServers, tokenOf, type DsPeer } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** A registration of `key` for `who`'s client (a further key with its session `token`, or a rotation's body). */
async function keyBody(url: string, who: DsPeer, key: Identity) {
  return { ...(await proof(url, who.name, { client: who.client, identity: key })), userId: who.name, identity: b64(key.identity), ciphersuite: 1 };
}

async function activeKeys(store: DeliveryStore, client: string): Promise<number> {
  return (await store.bindingsOf(client)).filter((b) => !b.revoked).length;
}

/**
 * Every binding of `client` that any method of `stores` returns, from now
 * until `stop()`: what the store read for the requests in between.
 */
function bindingsRead(stores: DeliveryStore[], client: string) {
  const seen = { calls: [] as string[], active: 0, revoked: 0 };
  const undo: (() => void)[] = [];
  const look = (x: unknown) => {
    for (const b of Array.isArray(x) ? x : [x]) {
      if (b && typeof b === 'object' && 'revoked' in b && (b as { clientId?: string }).clientId === client) seen[(b as { revoked: boolean }).revoked ? 'revoked' : 'active']++;
    }
  };
  for (const store of stores) {
    const s = store as unknown as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(store))) {
      const f = s[name];
      if (name === 'constructor' || typeof f !== 'function') continue;
      s[name] = (...args: unknown[]) => {
        seen.calls.push(name);
        const out = (f as (...a: unknown[]) => unknown).apply(store, args);
        if (out instanceof Promise) return out.then((v) => (look(v), v));
        look(out);
        return out;
      };
      undo.push(() => delete s[name]);
    }
  }
  return { seen, stop: () => undo.forEach((u) => u()) };
}

/** `p` rotates its DS key, and uses the new one in its next KeyPackages. */
async function rotate(p: DsPeer): Promise<void> {
  const next = await p.client.createIdentity(p.name, 1);
  await p.ds.rotateKey(next);
  p.identity = next;
}

/** The three requests that name `victim` (anyone can send the first; any registered client the others), each refused or recorded as before. */
async function nameIt(url: string, alice: DsPeer, victim: string, outsider: MlsClient): Promise<void> {
  const key = await outsider.createIdentity(victim, 1);
  const { body: c } = await raw(url, 'POST', '/v1/auth/challenge', { clientId: victim });
  const forged = { challenge: c.challenge, signatureKey: b64(key.signaturePublicKey), signature: b64(new Uint8Array(64)), userId: victim, identity: b64(key.identity), ciphersuite: 1 };
  expect(await raw(url, 'POST', '/v1/as/register', forged)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
  const add = await alice.group!.commit({ add: [await outsider.createKeyPackage(await outsider.createIdentity(`kp-${victim}`, 1))] });
  await expect(alice.ds.submit(alice.group!.id, add.commit, { welcome: add.welcome, added: [victim] })).rejects.toMatchObject({ reason: 'not-granted' });
  await alice.group!.clearPendingCommit();
  expect(await alice.ds.initPairing(alice.name, victim)).toBe(false);
}

/** A store's own rules: at most `keys` active keys (a rotation replaces one), each new key counted for good; active keys read without the revoked ones. */
async function storeRules(store: DeliveryStore, tag: string): Promise<void> {
  const key = (i: number) => new Uint8Array(32).fill(i);
  const b = (i: number) => ({ clientId: `c-${tag}`, userId: `c-${tag}`, identity: new TextEncoder().encode(`c-${tag}`), signatureKey: key(i), ciphersuite: 1 });
  const quota = { keys: 2, bytes: 10_000 };
  const row = 256 + b(0).identity.length + 32;
  expect(await store.registerBinding(b(1), { newClient: true, quota })).toBeUndefined();
  expect(await store.registerBinding(b(2), { quota })).toBeUndefined();
  await expect(store.registerBinding(b(3), { quota })).rejects.toMatchObject({ name: 'StorageQuotaError', kind: 'keys' });
  // The same key again is no new key.
  expect(await store.registerBinding(b(2), { quota })).toBeUndefined();
  for (let i = 3; i < 10; i++) expect(await store.registerBinding(b(i), { replacing: key(i - 2), quota })).toBeUndefined();
  expect((await store.activeBindingsOf(b(0).clientId)).map((x) => x.signatureKey[0])).toEqual([8, 9]);
  expect((await store.activeBindingsOf(b(0).clientId, 1)).map((x) => x.signatureKey[0])).toEqual([8]);
  expect((await store.bindingsOf(b(0).clientId)).length).toBe(9);
  expect(await store.usage(b(0).clientId)).toEqual({ bytes: 9 * row, keyPackages: 0 });
  // A rotation past the bytes is counted, not refused (a thief could fill the quota to keep its key); a new key past them is refused.
  expect(await store.registerBinding(b(10), { replacing: key(8), quota: { bytes: 9 * row } })).toBeUndefined();
  expect(await store.usage(b(0).clientId)).toEqual({ bytes: 10 * row, keyPackages: 0 });
  await expect(store.registerBinding(b(11), { quota: { keys: 5, bytes: 10 * row } })).rejects.toMatchObject({ kind: 'bytes' });
  expect(await store.bindingByKey(key(11))).toBeUndefined();
}

describe('seventh review of the DS (stores)', () => {
  it('memory and SQLite stores: at most `keys` active keys, a rotation at the cap works, each key counts its bytes, active keys read alone', async () => {
    await storeRules(new MemoryDeliveryStore(), 'mem');
    await storeRules(new SqliteDeliveryStore(), 'sqlite');
  });
});

describe('seventh review of the DS (SQLite)', () => {
  const server = sqliteServers('paired-mls-review7-');
  const tag = Math.random().toString(36).slice(2, 8);

  it('a client registers at most maxKeysPerClient (16) active keys: a further one is 429 quota-exceeded and nothing of it is stored, also 10 at once; rotations at the cap still work', async () => {
    const s = await server();
    const store = s.ds.store;
    const m = await dsPeer(s.url, `mallory-${tag}`);
    const token = await tokenOf(s.url, m.name, m);
    const further = async () => {
      const key = await m.client.createIdentity(m.name, 1);
      return { key, answer: await raw(s.url, 'POST', '/v1/as/register', await keyBody(s.url, m, key), token) };
    };
    for (let i = 1; i < 16; i++) expect((await further()).answer.status).toBe(200);
    expect(await activeKeys(store, m.name)).toBe(16);
    const usage = await store.usage(m.name);
    // Before the fix: 200, without bound (~500 a second from one address).
    const { key, answer } = await further();
    expect(answer).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
    expect(await store.bindingByKey(key.signaturePublicKey)).toBeUndefined();
    expect(await store.usage(m.name)).toEqual(usage);
    expect(await raw(s.url, 'POST', '/v1/auth/session', await proof(s.url, m.name, { client: m.client, identity: key }))).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    // A rotation replaces a key: at the cap it still works, and the cap stays.
    const next = await m.client.createIdentity(m.name, 1);
    expect((await raw(s.url, 'POST', '/v1/as/rotate', await keyBody(s.url, m, next), token)).status).toBe(200);
    expect(await activeKeys(store, m.name)).toBe(16);
    expect((await store.bindingByKey(m.identity.signaturePublicKey))?.revoked).toBe(true);
    const t2 = await tokenOf(s.url, m.name, { client: m.client, identity: next });
    expect((await raw(s.url, 'POST', '/v1/as/register', await keyBody(s.url, m, await m.client.createIdentity(m.name, 1)), t2)).body.reason).toBe('quota-exceeded');
    // Ten further keys at once from a client with 12: exactly 4 are stored (the count is checked in the store's transaction).
    const n = await dsPeer(s.url, `nina-${tag}`);
    const tn = await tokenOf(s.url, n.name, n);
    for (let i = 1; i < 12; i++) expect((await raw(s.url, 'POST', '/v1/as/register', await keyBody(s.url, n, await n.client.createIdentity(n.name, 1)), tn)).status).toBe(200);
    const bodies = await Promise.all(Array.from({ length: 10 }, async () => keyBody(s.url, n, await n.client.createIdentity(n.name, 1))));
    const answers = await Promise.all(bodies.map((b) => raw(s.url, 'POST', '/v1/as/register', b, tn)));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(4);
    for (const a of answers.filter((x) => x.status !== 200)) expect(a).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
    expect(await activeKeys(store, n.name)).toBe(16);
  });

  it('maxKeysPerClient is checked: a whole number from 1, or Infinity', async () => {
    for (const bad of [0, -1, 2.5, Number.NaN]) {
      const started = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(), maxKeysPerClient: bad }).then(
        async (x) => (await x.close(), 'started'),
        (err: unknown) => err,
      );
      expect(started, String(bad)).toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
    const s = await server({ maxKeysPerClient: 1 });
    const a = await dsPeer(s.url, `solo-${tag}`);
    const further = await keyBody(s.url, a, await a.client.createIdentity(a.name, 1));
    expect(await raw(s.url, 'POST', '/v1/as/register', further, await tokenOf(s.url, a.name, a))).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
  });

  it("each key stored counts against its client's storage quota; a rotation past it is not refused (a thief that filled the quota cannot keep its key) but rotations are rate-limited (429 rate-limited, the session's key kept); a further key past the quota is 429 quota-exceeded", async () => {
    const s = await server({ maxStoredBytesPerClient: 2000, rotationRate: [1 / 3600, 8] });
    const store = s.ds.store;
    const r = await dsPeer(s.url, `rot-${tag}`);
    // A key row counts its credential identity and key plus 256.
    const row = 256 + r.identity.identity.length + r.identity.signaturePublicKey.length;
    expect((await store.usage(r.name)).bytes).toBe(row);
    let current = r.identity;
    let rotations = 0;
    for (;;) {
      const token = await tokenOf(s.url, r.name, { client: r.client, identity: current });
      const next = await r.client.createIdentity(r.name, 1);
      const answer = await raw(s.url, 'POST', '/v1/as/rotate', await keyBody(s.url, r, next), token);
      if (answer.status !== 200) {
        expect(answer).toMatchObject({ status: 429, body: { reason: 'rate-limited' } });
        expect(await store.bindingByKey(next.signaturePublicKey)).toBeUndefined();
        expect((await store.bindingByKey(current.signaturePublicKey))?.revoked).toBe(false);
        break;
      }
      current = next;
      // Before the fix: without bound (~200 rotations a second), each keeping a revoked row.
      expect(++rotations).toBeLessThan(20);
    }
    expect(rotations).toBe(8);
    expect((await store.usage(r.name)).bytes).toBe(9 * row);
    expect(9 * row).toBeGreaterThan(2000);
    // A further key (not a rotation) past the quota: refused, nothing stored.
    const token = await tokenOf(s.url, r.name, { client: r.client, identity: current });
    const further = await r.client.createIdentity(r.name, 1);
    expect(await raw(s.url, 'POST', '/v1/as/register', await keyBody(s.url, r, further), token)).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
    expect(await store.bindingByKey(further.signaturePublicKey)).toBeUndefined();
  });

  it("naming a client with 20,000 revoked keys (a registration, a commit adding it, a pairing request) reads its active key only, not the revoked ones; honest clients register, rotate and their group works", async () => {
    let file = '';
    const s = await server({}, (f) => new SqliteDeliveryStore((file = f)));
    const [alice, bob, victim] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`), dsPeer(s.url, `victim-${tag}`)]);
    // What 20,000 rotations leave (they now also count 20,000 rows against the victim's quota).
    const db = new Database(file);
    const put = db.prepare('INSERT INTO bindings (signature_key, client_id, user_id, identity, ciphersuite, revoked) VALUES (?, ?, ?, ?, 1, 1)');
    db.transaction(() => {
      for (let i = 0; i < 20_000; i++) put.run(i.toString(16).padStart(64, '0'), victim.name, victim.name, Buffer.from(victim.identity.identity));
    })();
    db.close();
    alice.group = await alice.client.createGroup(alice.identity);
    await alice.ds.createGroup(alice.group.id, { epoch: alice.group.epoch });
    const read = bindingsRead([s.ds.store], victim.name);
    await nameIt(s.url, alice, victim.name, await MlsClient.open());
    read.stop();
    // Before the fix: bindingsOf, 20,001 bindings read for each of the three.
    expect(read.seen.calls).not.toContain('bindingsOf');
    expect(read.seen.revoked).toBe(0);
    expect(read.seen.active).toBeLessThanOrEqual(3);
    // Honest clients: bob rotates, alice adds bob and the victim, all talk; bob rotates again and the group still works.
    await rotate(bob);
    alice.group = undefined;
    await groupOf(alice, [bob, victim]);
    await groupStillWorks([alice, bob, victim], 'after the keys');
    await rotate(bob);
    await groupStillWorks([bob, alice, victim], 'after a rotation');
  });
});

describe('seventh review of the DS (PostgreSQL, two servers)', () => {
  let pgServer: PgServer;
  let servers: RunningDeliveryServer[] = [];
  let stores: PostgresDeliveryStore[] = [];
  const tag = Math.random().toString(36).slice(2, 8);
  beforeAll(async () => {
    pgServer = await startPostgres();
    for (let i = 0; i < 2; i++) stores.push(await PostgresDeliveryStore.connect(pgServer.url));
    servers = await Promise.all(stores.map((store) => startDeliveryServer({ port: 0, store })));
  });
  afterAll(async () => {
    for (const s of servers) await s.close();
    for (const s of stores) await s.close();
    await pgServer?.stop();
  });

  it('the store: at most `keys` active keys, each key counted, active keys read alone', async () => {
    await storeRules(stores[0]!, `pg-${tag}`);
  });

  it('further keys on two servers at once stop at 16 (429 quota-exceeded); a rotation at the cap works', async () => {
    const [one, two] = servers as [RunningDeliveryServer, RunningDeliveryServer];
    const urls = [one.url, two.url];
    const m = await dsPeer(one.url, `mallory-${tag}`);
    const tokens = await Promise.all(urls.map((u) => tokenOf(u, m.name, m)));
    for (let i = 1; i < 10; i++) expect((await raw(urls[i % 2]!, 'POST', '/v1/as/register', await keyBody(urls[i % 2]!, m, await m.client.createIdentity(m.name, 1)), tokens[i % 2])).status).toBe(200);
    const bodies = await Promise.all(Array.from({ length: 12 }, async (_, i) => keyBody(urls[i % 2]!, m, await m.client.createIdentity(m.name, 1))));
    const answers = await Promise.all(bodies.map((b, i) => raw(urls[i % 2]!, 'POST', '/v1/as/register', b, tokens[i % 2])));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(6);
    for (const a of answers.filter((x) => x.status !== 200)) expect(a).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
    expect(await activeKeys(stores[0]!, m.name)).toBe(16);
    const next = await m.client.createIdentity(m.name, 1);
    expect((await raw(two.url, 'POST', '/v1/as/rotate', await keyBody(two.url, m, next), tokens[1])).status).toBe(200);
    expect(await activeKeys(stores[1]!, m.name)).toBe(16);
  });

  it("naming a client with 20,000 revoked keys on either server reads none of them; its group works", async () => {
    const [one, two] = servers as [RunningDeliveryServer, RunningDeliveryServer];
    const [alice, bob] = await Promise.all([dsPeer(one.url, `alice-${tag}`), dsPeer(two.url, `bob-${tag}`)]);
    const c = new pg.Client({ connectionString: pgServer.url });
    await c.connect();
    await c.query(
      `INSERT INTO ds_bindings (signature_key, client_id, user_id, identity, ciphersuite, revoked)
       SELECT lpad(to_hex(i), 64, '0'), $1, $1, $2, 1, true FROM generate_series(1, 20000) i`,
      [bob.name, Buffer.from(bob.identity.identity)],
    );
    await c.end();
    alice.group = await alice.client.createGroup(alice.identity);
    await alice.ds.createGroup(alice.group.id, { epoch: alice.group.epoch });
    const read = bindingsRead(stores, bob.name);
    const outsider = await MlsClient.open();
    await nameIt(one.url, alice, bob.name, outsider);
    await nameIt(two.url, alice, bob.name, outsider);
    read.stop();
    expect(read.seen.calls).not.toContain('bindingsOf');
    expect(read.seen.revoked).toBe(0);
    expect(read.seen.active).toBeLessThanOrEqual(6);
    alice.group = undefined;
    await rotate(bob);
    await groupOf(alice, [bob]);
    await groupStillWorks([alice, bob], 'on PostgreSQL');
  });
});
