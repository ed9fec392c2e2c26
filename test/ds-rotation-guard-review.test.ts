/**
 * Review of the DS account rotation guard (docs/PROTOCOL.md §8.4): attacks
 * by a thief holding a guarded account's current key (a copy of a device's
 * stored state, not its seed vault), by hostile DS replies, and store
 * parity. Each test is an attack and asserts the exact refusal.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, request as httpRequest } from 'node:http';
import { MlsClient, type Identity } from 'paired-mls';
import { AuthenticationDirectory, DeliveryClient, MemoryDeliveryStore, DsError, type DeliveryStore, type RotationGuard } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore } from 'paired-mls/server';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { dsPeer, groupOf, proof, raw, sqliteServers, tokenOf } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';
import { dsRefusal as refusal, GUARD_REFUSED, newGuard, twoPostgresServers } from './ds-guard-helpers.js';
import pg from 'pg';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const utf8 = (s: string) => new TextEncoder().encode(s);
const sha256 = async (b: Uint8Array) => new Uint8Array(await crypto.subtle.digest('SHA-256', b as Uint8Array<ArrayBuffer>));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');


/** `id`'s account, guarded by `guard` (set with a rotation); the key it holds now (which a copy of the device also holds). */
async function guardedAccount(url: string, id: string): Promise<{ client: MlsClient; ds: DeliveryClient; guard: RotationGuard; current: Identity }> {
  const client = await MlsClient.open();
  const ds = await DeliveryClient.register(url, { clientId: id, client, identity: await client.createIdentity(id, 1) });
  const guard = await newGuard(id);
  const current = await client.createIdentity(id, 1);
  await ds.rotateKey(current, { guard });
  return { client, ds, guard, current };
}

describe('rotation guard review: a thief holding the guarded key', () => {
  const sqliteServer = sqliteServers('paired-mls-guard-review-');

  it('a copy holding a guarded account key cannot vouch for a new client of its user (named as the user), which no guarded rotation would end', async () => {
    const server = await sqliteServer();
    const alice = await guardedAccount(server.url, 'alice');
    // The thief: the same key (a copy of the device's state), a session of its own.
    const token = await tokenOf(server.url, 'alice', { client: alice.client, identity: alice.current });
    const evil = await MlsClient.open();
    const evilKey = await evil.createIdentity('alice', 1);
    // A client id of its own, user alice, credential identity "alice": what members show as alice.
    const body = { ...(await proof(server.url, 'alice-phone', { client: evil, identity: evilKey })), userId: 'alice', identity: b64(utf8('alice')), ciphersuite: 1 };
    expect(await raw(server.url, 'POST', '/v1/as/register', body, token)).toEqual({
      status: 403,
      body: { reason: 'registration-refused', error: 'the registration policy refused this client id, user or key' },
    });
    expect(await server.authentication.activeBindingsOf('alice-phone')).toEqual([]);

    // The real device's next guarded rotation ends the copy; it keeps the account alone.
    await alice.ds.rotateKey(await alice.client.createIdentity('alice', 1), { guard: alice.guard });
    expect(await alice.ds.welcomes()).toEqual([]);
    expect(await raw(server.url, 'GET', '/v1/welcomes', undefined, token)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });

    // An unguarded account still vouches for its user's next device (the default policy's use).
    const bobClient = await MlsClient.open();
    const bob = await DeliveryClient.register(server.url, { clientId: 'bob', client: bobClient, identity: await bobClient.createIdentity('bob', 1) });
    const tablet = await DeliveryClient.register(server.url, { clientId: 'bob-tablet', userId: 'bob', client: bobClient, identity: await bobClient.createIdentity('bob', 1), vouch: bob });
    expect(await tablet.welcomes()).toEqual([]);
  });
});

describe('rotation guard review: a thief starving the owner of its guarded rotation', () => {
  const sqliteServer = sqliteServers('paired-mls-guard-review-rate-');

  it("the copy's refused rotations do not spend the account's rotation tokens: the owner's guarded rotation still passes (default rotationRate)", async () => {
    const server = await sqliteServer();
    const alice = await guardedAccount(server.url, 'alice');
    const token = await tokenOf(server.url, 'alice', { client: alice.client, identity: alice.current });
    const thief = await MlsClient.open();
    const own = await thief.createIdentity('alice', 1);
    const attempt = async () => raw(server.url, 'POST', '/v1/as/rotate', { ...(await proof(server.url, 'alice', { client: thief, identity: own })), identity: b64(own.identity), ciphersuite: 1 }, token);
    // More than the burst (60) of proven rotations, each refused by the guard.
    for (let i = 0; i < 61; i++) expect(await attempt()).toEqual({ status: 403, body: { reason: 'guard-refused', error: GUARD_REFUSED } });
    await alice.ds.rotateKey(await alice.client.createIdentity('alice', 1), { guard: alice.guard });
    expect(await alice.ds.guardStep()).toBe(1);
    expect(await raw(server.url, 'GET', '/v1/as/guard', undefined, token)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
  });

  it("the copy spending the account's request tokens (clientRate) cannot hold off the owner's guarded rotation", async () => {
    const server = await sqliteServer({ clientRate: [1, 3] });
    const alice = await guardedAccount(server.url, 'alice');
    const token = await tokenOf(server.url, 'alice', { client: alice.client, identity: alice.current });
    // The copy keeps the account's bucket empty (cheap reads with its session).
    const burn = async () => {
      for (let i = 0; i < 6; i++) await raw(server.url, 'GET', '/v1/welcomes', undefined, token);
    };
    await burn();
    expect(await raw(server.url, 'GET', '/v1/welcomes', undefined, token)).toMatchObject({ status: 429, body: { reason: 'rate-limited', error: 'too many requests from this client' } });
    const owner = await DeliveryClient.login(server.url, { clientId: 'alice', client: alice.client, identity: alice.current });
    await burn();
    await owner.rotateKey(await alice.client.createIdentity('alice', 1), { guard: alice.guard });
    expect(await raw(server.url, 'GET', '/v1/welcomes', undefined, token)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    // Other routes keep the account's bucket (the owner's own session, after its rotation, is limited as before).
    expect(await owner.guardStep()).toBe(1);
  });
});

describe('rotation guard review: streams of keys a guarded rotation revokes', () => {
  const sqliteServer = sqliteServers('paired-mls-guard-review-stream-');

  it("the first guarded rotation ends an open stream of the copy's further key from before the guard (not the session's key)", async () => {
    const s = await sqliteServer();
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((x) => dsPeer(s.url, x)));
    await groupOf(alice!, [bob!]);
    const own = await bob!.client.createIdentity('bob', 1);
    const token = await tokenOf(s.url, 'bob', bob!);
    expect((await raw(s.url, 'POST', '/v1/as/register', { ...(await proof(s.url, 'bob', { client: bob!.client, identity: own })), identity: b64(own.identity), ciphersuite: 1 }, token)).status).toBe(200);
    const thief = await DeliveryClient.login(s.url, { clientId: 'bob', client: bob!.client, identity: own }, { WebSocket });
    let closed: DsError | 'closed' | undefined;
    const got: number[] = [];
    const stop = thief.stream(alice!.group!.id, bob!.seen, (m) => got.push(m.seq), (error) => (closed = error ?? 'closed'));
    await new Promise((r) => setTimeout(r, 200));
    expect(closed).toBeUndefined();
    await bob!.ds.rotateKey(await bob!.client.createIdentity('bob', 1), { guard: await newGuard('bob') });
    for (let i = 0; i < 50 && closed === undefined; i++) await new Promise((r) => setTimeout(r, 20));
    // Ended by the server, with its reason (before, onClose got none), and its key logs in no more.
    expect(closed instanceof DsError && { reason: closed.reason, message: closed.message }).toEqual({ reason: 'unauthenticated', message: 'the DS ended the stream (unauthenticated)' });
    expect(await refusal(DeliveryClient.login(s.url, { clientId: 'bob', client: bob!.client, identity: own }))).toEqual({
      reason: 'unauthenticated',
      message: 'this signature key is not registered (or was revoked) (unauthenticated)',
    });
    // What alice sends next reaches bob, not the copy.
    const seq = await alice!.ds.submit(alice!.group!.id, await alice!.group!.encrypt('after the rotation'));
    expect((await bob!.ds.poll(alice!.group!.id, bob!.seen)).map((m) => m.seq)).toContain(seq);
    expect(got).toEqual([]);
    stop();
  });
});

describe('rotation guard review: secrets, hook sessions, hostile replies', () => {
  const sqliteServer = sqliteServers('paired-mls-guard-review2-');

  /** A rotation of `id` to `key` by hand, with the session `token` and these guard fields. */
  async function rotateRaw(url: string, id: string, token: string, client: MlsClient, key: Identity, fields: Record<string, string>) {
    return raw(url, 'POST', '/v1/as/rotate', { ...(await proof(url, id, { client, identity: key })), identity: b64(key.identity), ciphersuite: 1, ...fields }, token);
  }

  it('a revealed secret opens its step once: replayed after its rotation, or the stored commitment sent as secret, or a commitment alone, is guard-refused', async () => {
    const server = await sqliteServer();
    const carol = await guardedAccount(server.url, 'carol');
    const r0 = await carol.guard.secret(0);
    const h1 = await sha256(await carol.guard.secret(1));
    await carol.ds.rotateKey(await carol.client.createIdentity('carol', 1), { guard: carol.guard });
    expect(await carol.ds.guardStep()).toBe(1);
    const current = carol.client.identities().at(-1)!;
    const token = await tokenOf(server.url, 'carol', { client: carol.client, identity: current });
    const refused = { status: 403, body: { reason: 'guard-refused', error: GUARD_REFUSED } };
    // r_0 seen on the wire (a log): spent.
    expect(await rotateRaw(server.url, 'carol', token, carol.client, await carol.client.createIdentity('carol', 1), { guardSecret: b64(r0), nextGuard: b64(h1) })).toEqual(refused);
    // The commitment the DS stores (SHA-256(r_1)) is no secret that opens it.
    expect(await rotateRaw(server.url, 'carol', token, carol.client, await carol.client.createIdentity('carol', 1), { guardSecret: b64(h1), nextGuard: b64(h1) })).toEqual(refused);
    // A new commitment without the secret: no take-over of the guard.
    expect(await rotateRaw(server.url, 'carol', token, carol.client, await carol.client.createIdentity('carol', 1), { nextGuard: b64(h1) })).toEqual(refused);
    expect(await raw(server.url, 'POST', '/v1/as/revoke', { guardSecret: b64(r0) }, token)).toEqual({
      status: 403,
      body: { reason: 'guard-refused', error: 'this client is revoked only with the secret of its rotation guard (guard-refused)' },
    });
    expect(await carol.ds.guardStep()).toBe(1);
    expect((await server.authentication.activeBindingsOf('carol')).map((b) => hex(b.signatureKey))).toEqual([hex(current.signaturePublicKey)]);
    // The devices go on.
    await carol.ds.rotateKey(await carol.client.createIdentity('carol', 1), { guard: carol.guard });
    expect(await carol.ds.guardStep()).toBe(2);
  });

  it("a deployment hook's session (no key) of a guarded account cannot rotate, add a key, vouch, nor revoke it", async () => {
    const server = await sqliteServer({ authenticate: (req) => (typeof req.headers['x-client'] === 'string' ? req.headers['x-client'] : undefined) });
    const dave = await guardedAccount(server.url, 'dave');
    const hook = async (path: string, body: unknown) => {
      const res = await fetch(server.url + path, { method: 'POST', headers: { 'content-type': 'application/json', 'x-client': 'dave' }, body: JSON.stringify(body) });
      return { status: res.status, body: await res.json() };
    };
    const other = await dave.client.createIdentity('dave', 1);
    expect(await hook('/v1/as/rotate', { ...(await proof(server.url, 'dave', { client: dave.client, identity: other })), identity: b64(other.identity), ciphersuite: 1 })).toEqual({
      status: 403,
      body: { reason: 'forbidden', error: 'a key is rotated from a session proven with that key' },
    });
    expect(await hook('/v1/as/register', { ...(await proof(server.url, 'dave', { client: dave.client, identity: other })), userId: 'dave', identity: b64(other.identity), ciphersuite: 1 })).toEqual({
      status: 403,
      body: { reason: 'guard-refused', error: GUARD_REFUSED },
    });
    const tablet = await dave.client.createIdentity('dave', 1);
    expect(await hook('/v1/as/register', { ...(await proof(server.url, 'dave-tablet', { client: dave.client, identity: tablet })), userId: 'dave', identity: b64(utf8('dave')), ciphersuite: 1 })).toEqual({
      status: 403,
      body: { reason: 'registration-refused', error: 'the registration policy refused this client id, user or key' },
    });
    expect(await hook('/v1/as/revoke', {})).toEqual({ status: 403, body: { reason: 'guard-refused', error: 'this client is revoked only with the secret of its rotation guard (guard-refused)' } });
    expect(await server.authentication.revoked('dave')).toBe(false);
    await dave.ds.rotateKey(await dave.client.createIdentity('dave', 1), { guard: dave.guard });
    expect(await dave.ds.guardStep()).toBe(1);
  });

  it('a hostile reply to GET /v1/as/guard (wrong shape, a step past 2^53) makes the client send no secret', async () => {
    let target: URL | undefined;
    let guardReply: string | undefined;
    const seen: string[] = [];
    const proxy = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      const up = httpRequest({ host: target!.hostname, port: target!.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
        if (req.url === '/v1/as/guard' && guardReply !== undefined) {
          r.resume();
          res.writeHead(200, { 'content-type': 'application/json' }).end(guardReply);
          return;
        }
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    try {
      // The DS behind the proxy names the proxy in its challenges (the client's view of it).
      const url = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
      target = new URL((await sqliteServer({ audience: url })).url);
      const erin = await guardedAccount(url, 'erin');
      seen.length = 0;
      const ds = await DeliveryClient.login(url, { clientId: 'erin', client: erin.client, identity: erin.current });
      const next = await erin.client.createIdentity('erin', 1);
      for (const junk of ['{"step":"0"}', '{"step":-1}', '{"step":0.5}', '{}', '[]']) {
        guardReply = junk;
        expect(await refusal(ds.rotateKey(next, { guard: erin.guard }))).toEqual({ reason: 'malformed', message: 'the DS sent a reply of the wrong shape (malformed)' });
      }
      guardReply = JSON.stringify({ step: Number.MAX_SAFE_INTEGER });
      await expect(ds.rotateKey(next, { guard: erin.guard })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('a guard step is a whole number from 0') });
      // Nothing was sent after the reply: no challenge asked, no rotation (no secret).
      expect(seen.filter((x) => x.startsWith('POST /v1/as/') || x.startsWith('POST /v1/auth/'))).toEqual(['POST /v1/auth/challenge', 'POST /v1/auth/session']);
      guardReply = undefined;
      await ds.rotateKey(next, { guard: erin.guard });
      expect(await ds.guardStep()).toBe(1);
    } finally {
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});

describe('rotation guard review: the stores (memory, SQLite, PostgreSQL), two servers, schema 6', () => {
  let postgres: PgServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  });
  afterAll(async () => postgres?.stop());

  /** The same in-process AS calls on `store`; what each returned. */
  async function script(store: DeliveryStore): Promise<unknown[]> {
    const as = new AuthenticationDirectory(store);
    const out: unknown[] = [];
    const key = (n: number) => new Uint8Array(32).fill(n);
    const bind = (n: number) => ({ clientId: 'gina', userId: 'gina', identity: utf8('gina'), signatureKey: key(n), ciphersuite: 1 });
    const got = async (p: Promise<unknown>) => out.push(await p.then(() => 'ok', (e: DsError) => `${e.reason}: ${e.message}`));
    const h = async (n: number) => hex(await sha256(key(100 + n)));
    await got(as.register(bind(1), { newClient: true }));
    await got(as.register(bind(2))); // a further key, before the guard
    await got(as.register(bind(3), { replacing: key(1), guard: { next: await h(0) } })); // sets the guard: key 2 goes
    out.push(await as.guardStep('gina'), (await as.activeBindingsOf('gina')).map((b) => b.signatureKey[0]));
    await got(as.register(bind(4))); // a further key without the guard
    await got(as.register(bind(4), { replacing: key(3), guard: { opens: await h(1), next: await h(1) } })); // a wrong secret
    await got(as.register(bind(4), { replacing: key(3), guard: { next: await h(1) } })); // no secret
    await got(as.register(bind(4), { newClient: true }));
    await got(as.revoke('gina', {}));
    await got(as.revoke('gina', { opens: await h(1) }));
    out.push(await as.guardStep('gina'), (await as.activeBindingsOf('gina')).map((b) => b.signatureKey[0]), await as.revoked('gina'));
    await got(as.register(bind(4), { replacing: key(3), guard: { opens: await h(0), next: await h(1) } }));
    out.push(await as.guardStep('gina'));
    await got(as.register(bind(5), { replacing: key(4), guard: { opens: await h(1) } })); // drops the guard
    out.push(await as.guardStep('gina'));
    await got(as.register(bind(6), { replacing: key(5), guard: { next: await h(0) } }));
    await got(as.revoke('gina')); // the deployment's: no guard asked
    out.push(await as.guardStep('gina'), await as.revoked('gina'), (await as.activeBindingsOf('gina')).length);
    return out;
  }

  it('each store gives the same answers to the same guard script', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paired-mls-guard-parity-'));
    const sqlite = new SqliteDeliveryStore(join(dir, 'ds.sqlite'));
    const pg = await PostgresDeliveryStore.connect(postgres.url);
    try {
      const memory = await script(new MemoryDeliveryStore());
      const refusedKey = `guard-refused: ${GUARD_REFUSED}`;
      const refusedRevoke = 'guard-refused: this client is revoked only with the secret of its rotation guard (guard-refused)';
      expect(memory).toEqual(['ok', 'ok', 'ok', 0, [3], refusedKey, refusedKey, refusedKey, refusedKey, refusedRevoke, refusedRevoke, 0, [3], false, 'ok', 1, 'ok', undefined, 'ok', 'ok', undefined, true, 0]);
      expect(await script(sqlite)).toEqual(memory);
      expect(await script(pg)).toEqual(memory);
    } finally {
      sqlite.close();
      await pg.close();
    }
  });

  it("on two servers: the copy's pairing request (as the anchor) racing the guarded rotation pairs nothing that outlives it", async () => {
    const servers = await twoPostgresServers(postgres.url);
    try {
      const [a, b] = servers.map((x) => x.url) as [string, string];
      for (let round = 0; round < 4; round++) {
        const id = `ivy${round}`;
        const ivy = await guardedAccount(a, id);
        const thiefToken = await tokenOf(b, id, { client: ivy.client, identity: ivy.current });
        const dev = await dsPeer(b, `mal-dev${round}`);
        expect(await dev.ds.initPairing(id, dev.name)).toBe(false);
        const [paired] = await Promise.all([
          raw(b, 'POST', '/v1/pairings', { anchor: id, device: dev.name }, thiefToken),
          ivy.ds.rotateKey(await ivy.client.createIdentity(id, 1), { guard: ivy.guard }),
        ]);
        // Paired before the rotation (then dropped by it), or refused: never a pairing after it.
        expect([
          { status: 200, body: { accepted: true } },
          { status: 401, body: { reason: 'unauthenticated', error: 'the key this session was proven with was revoked meanwhile (unauthenticated)' } },
          { status: 401, body: { reason: 'unauthenticated', error: 'authenticate first (POST /v1/auth/challenge, then /v1/auth/session)' } },
        ]).toContainEqual(paired);
        expect(await servers[0]!.ds.devicesOf(id)).toEqual([]);
        expect(await servers[1]!.authentication.guardStep(id)).toBe(1);
      }
    } finally {
      for (const x of servers) await x.close();
    }
  });

  it('a PostgreSQL database of schema 6 is migrated (to 8, which gives groups their registrations) when a server connects: no client has a guard, and one can be set', async () => {
    await (await PostgresDeliveryStore.connect(postgres.url)).close();
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    try {
      await admin.query("DROP TABLE ds_rotation_guards; UPDATE ds_meta SET value = '6' WHERE key = 'schema'");
      const store = await PostgresDeliveryStore.connect(postgres.url);
      try {
        const as = new AuthenticationDirectory(store);
        expect(await as.guardStep('gina')).toBeUndefined();
        const bind = (n: number) => ({ clientId: 'hana', userId: 'hana', identity: utf8('hana'), signatureKey: new Uint8Array(32).fill(n), ciphersuite: 1 });
        await as.register(bind(201), { newClient: true });
        await as.register(bind(202), { replacing: bind(201).signatureKey, guard: { next: 'ab'.repeat(32) } });
        expect(await store.rotationGuard('hana')).toEqual({ step: 0, commitment: 'ab'.repeat(32) });
      } finally {
        await store.close();
      }
      expect((await admin.query("SELECT value FROM ds_meta WHERE key = 'schema'")).rows).toEqual([{ value: '8' }]);
    } finally {
      await admin.end();
    }
  });
});
