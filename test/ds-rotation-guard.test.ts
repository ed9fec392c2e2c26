/**
 * The rotation guard of a DS account (docs/PROTOCOL.md §8.4, §4.0). In
 * hidden Paired MLS the passive device holds the anchor's DS key, so a
 * stolen copy of it holds the anchor's account until the next paired
 * update's rotation. Without a guard the copy could, in that window,
 * register a further key of its own (kept after the real rotation), rotate
 * first (keeping the account), or revoke the account for good. The guard
 * (SHA-256 of a secret both devices derive from their seed vault) makes
 * every key change and the revocation need that secret; a guarded rotation
 * leaves the account one key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesEqual, MemoryStorageAdapter, MlsClient, type Group, type Identity } from 'paired-mls';
import { DeliveryClient, vaultRotationGuard, type RotationGuard } from 'paired-mls/services';
import { SqliteDeliveryStore, startDeliveryServer, DS_SCHEMA_VERSION } from 'paired-mls/server';
import { deliverPaired, pairedWorld, type PairedWorld } from './paired-helpers.js';
import { proof, raw, sqliteServers, tokenOf } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';
import { dsRefusal as refusal, GUARD_REFUSED, leafIdentity, newGuard, twoPostgresServers } from './ds-guard-helpers.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');



/** A further key `key` for alice's account, registered with the session `token` (what the default policy lets a client do). */
async function furtherKey(url: string, token: string, client: MlsClient, key: Identity) {
  return raw(url, 'POST', '/v1/as/register', { ...(await proof(url, 'alice', { client, identity: key })), userId: 'alice', identity: b64(key.identity), ciphersuite: 1 }, token);
}

/** The anchor's account: registered by the active device, moved to the enrolled anchor key (with `guard`, which it sets). */
async function anchorAccount(url: string, w: PairedWorld, guard?: RotationGuard): Promise<DeliveryClient> {
  const active = await DeliveryClient.register(url, { clientId: 'alice', client: w.a.client, identity: w.a.identity });
  await active.rotateKey(leafIdentity(w.a.client, w.a.group!), { guard });
  return active;
}

/** The thief: a copy of the phone's storage, and the anchor key it holds. */
async function theft(w: PairedWorld): Promise<{ copy: MlsClient; stolen: Identity }> {
  const copy = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(w.p.storage!) });
  const key = leafIdentity(w.p.client, w.p.group!);
  return { copy, stolen: copy.identities().find((i) => bytesEqual(i.signaturePublicKey, key.signaturePublicKey))! };
}

/** A paired update that every real party follows; returns the new anchor key (the active device's identity of it). */
async function pairedUpdate(w: PairedWorld): Promise<Identity> {
  await deliverPaired(await w.activeDevice.update(w.a.group!), w.a, w.passiveDevice, w.others);
  return leafIdentity(w.a.client, w.a.group!);
}

describe('the rotation guard of a DS account (hidden Paired MLS)', () => {
  // A server each: every world's anchor is alice.
  const sqliteServer = sqliteServers('paired-mls-guard-');

  it("without a guard the copy's further key outlives the real rotation; the first guarded rotation revokes it", async () => {
    const server = await sqliteServer();
    const w = await pairedWorld(['bob'], 'hidden');
    const active = await anchorAccount(server.url, w);
    const { copy, stolen } = await theft(w);
    const token = await tokenOf(server.url, 'alice', { client: copy, identity: stolen });
    const own = await copy.createIdentity('alice', 1);
    expect((await furtherKey(server.url, token, copy, own)).status).toBe(200);

    // The attack an unguarded account is open to: the real rotation retires the stolen key only.
    await active.rotateKey(await pairedUpdate(w));
    const kept = await DeliveryClient.login(server.url, { clientId: 'alice', client: copy, identity: own });
    expect(await kept.welcomes()).toEqual([]);

    // A guarded rotation leaves the account one key: the copy's further key and its session end.
    const guard = vaultRotationGuard(w.activeDevice.vault!, 'alice');
    await active.rotateKey(await pairedUpdate(w), { guard });
    expect(await refusal(kept.welcomes())).toMatchObject({ reason: 'unauthenticated' });
    expect(await refusal(DeliveryClient.login(server.url, { clientId: 'alice', client: copy, identity: own }))).toEqual({
      reason: 'unauthenticated',
      message: 'this signature key is not registered (or was revoked) (unauthenticated)',
    });
    const keys = (await server.authentication.activeBindingsOf('alice')).map((b) => b.signatureKey);
    expect(keys).toEqual([leafIdentity(w.a.client, w.a.group!).signaturePublicKey]);
    expect(await active.guardStep()).toBe(0);
    expect(await active.welcomes()).toEqual([]);
  });

  it('a copy holding the guarded account key can neither rotate, add a key, nor revoke; the next paired update ends it; both devices keep the account', async () => {
    const server = await sqliteServer();
    const w = await pairedWorld(['bob'], 'hidden');
    const guardA = vaultRotationGuard(w.activeDevice.vault!, 'alice');
    const active = await anchorAccount(server.url, w, guardA);
    expect(await active.guardStep()).toBe(0);
    const { copy, stolen } = await theft(w);
    const thief = await DeliveryClient.login(server.url, { clientId: 'alice', client: copy, identity: stolen });
    const own = await copy.createIdentity('alice', 1);

    // Rotate first, with no guard, or with a guard of a vault of its own: refused, nothing registered.
    expect(await refusal(thief.rotateKey(own))).toEqual({ reason: 'guard-refused', message: GUARD_REFUSED });
    const forged = await newGuard('alice');
    expect(await refusal(thief.rotateKey(own, { guard: forged }))).toEqual({ reason: 'guard-refused', message: GUARD_REFUSED });
    // A guard may only be dropped or replaced by one that opens it.
    expect(await refusal(thief.rotateKey(own, { guard: forged, nextGuard: null }))).toMatchObject({ reason: 'guard-refused' });
    expect(await server.authentication.validate(own.identity, own.signaturePublicKey)).toBeUndefined();
    // A further key of its own.
    const token = await tokenOf(server.url, 'alice', { client: copy, identity: stolen });
    expect(await furtherKey(server.url, token, copy, own)).toEqual({ status: 403, body: { reason: 'guard-refused', error: GUARD_REFUSED } });
    // The account's end, for good.
    const notRevoked = { reason: 'guard-refused', message: 'this client is revoked only with the secret of its rotation guard (guard-refused)' };
    expect(await refusal(thief.revoke())).toEqual(notRevoked);
    expect(await refusal(thief.revoke({ guard: forged }))).toEqual(notRevoked);
    expect(await server.authentication.revoked('alice')).toBe(false);
    // A secret of another length is malformed, not compared.
    const body = { ...(await proof(server.url, 'alice', { client: copy, identity: own })), identity: b64(own.identity), ciphersuite: 1, guardSecret: b64(new Uint8Array(16)) };
    expect(await raw(server.url, 'POST', '/v1/as/rotate', body, token)).toEqual({ status: 400, body: { reason: 'malformed', error: 'guardSecret and nextGuard are 32 bytes' } });
    expect((await server.authentication.activeBindingsOf('alice')).length).toBe(1);

    // The next paired update: the active device rotates with the guard, the copy's session ends.
    await active.rotateKey(await pairedUpdate(w), { guard: guardA });
    expect(await active.guardStep()).toBe(1);
    expect(await refusal(thief.welcomes())).toMatchObject({ reason: 'unauthenticated' });
    expect(await refusal(DeliveryClient.login(server.url, { clientId: 'alice', client: copy, identity: stolen }))).toMatchObject({ reason: 'unauthenticated' });

    // The phone derives the same anchor key and the same guard from its vault: it logs in, and can rotate the account itself.
    const phone = await DeliveryClient.login(server.url, { clientId: 'alice', client: w.p.client, identity: leafIdentity(w.p.client, groupAt(w)) });
    expect(await phone.welcomes()).toEqual([]);
    await pairedUpdate(w);
    await phone.rotateKey(leafIdentity(w.p.client, groupAt(w)), { guard: vaultRotationGuard(w.passiveDevice.vault!, 'alice') });
    expect(await phone.guardStep()).toBe(2);
    // The active device's session of the key before ends with it; it logs in with the key both derived.
    expect(await refusal(active.welcomes())).toMatchObject({ reason: 'unauthenticated' });
    const again = await DeliveryClient.login(server.url, { clientId: 'alice', client: w.a.client, identity: leafIdentity(w.a.client, w.a.group!) });
    expect(await again.welcomes()).toEqual([]);
  });

  it("standard mode: the passive device guards its own account the same way; the copy holding its DS key cannot rotate it first, and the device's next rotation ends the copy's session", async () => {
    const server = await sqliteServer();
    const w = await pairedWorld(['bob'], 'standard');
    const guard = vaultRotationGuard(w.passiveDevice.vault!, 'alice-phone');
    const phone = await DeliveryClient.register(server.url, { clientId: 'alice-phone', client: w.p.client, identity: w.p.identity });
    const dsKey = await w.p.client.createIdentity('alice-phone', 1);
    await phone.rotateKey(dsKey, { guard });
    // The thief copies the phone, its DS key with it.
    const copy = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(w.p.storage!) });
    const stolen = copy.identities().find((i) => bytesEqual(i.signaturePublicKey, dsKey.signaturePublicKey))!;
    const thief = await DeliveryClient.login(server.url, { clientId: 'alice-phone', client: copy, identity: stolen });
    expect(await refusal(thief.rotateKey(await copy.createIdentity('alice-phone', 1)))).toEqual({ reason: 'guard-refused', message: GUARD_REFUSED });
    // The device moves on to a key the copy never had.
    await phone.rotateKey(await w.p.client.createIdentity('alice-phone', 1), { guard });
    expect(await refusal(thief.welcomes())).toMatchObject({ reason: 'unauthenticated' });
    expect(await phone.welcomes()).toEqual([]);
    expect(await phone.guardStep()).toBe(1);
  });

  it('a guard is handed over to a new vault (a new pairing) or dropped only by a rotation its secret opens; a guarded account is revoked with its guard', async () => {
    const server = await sqliteServer();
    const client = await MlsClient.open();
    const keys = [];
    for (let i = 0; i < 5; i++) keys.push(await client.createIdentity('carol', 1));
    const old = await newGuard('carol');
    const next = await newGuard('carol');
    const carol = await DeliveryClient.register(server.url, { clientId: 'carol', client, identity: keys[0]! });
    expect(await carol.guardStep()).toBeNull();
    await carol.rotateKey(keys[1]!, { guard: old });
    await carol.rotateKey(keys[2]!, { guard: old, nextGuard: next });
    expect(await carol.guardStep()).toBe(1);
    // The old vault's secret of step 1 opens nothing now; the new one does.
    expect(await refusal(carol.rotateKey(keys[3]!, { guard: old }))).toEqual({ reason: 'guard-refused', message: GUARD_REFUSED });
    await carol.rotateKey(keys[3]!, { guard: next, nextGuard: null });
    expect(await carol.guardStep()).toBeNull();
    // Unguarded again: a plain rotation, then a guarded account's revocation with its guard.
    await carol.rotateKey(keys[4]!);
    await carol.rotateKey(await client.createIdentity('carol', 1), { guard: next });
    expect(await refusal(carol.revoke())).toMatchObject({ reason: 'guard-refused' });
    await carol.revoke({ guard: next });
    expect(await server.authentication.revoked('carol')).toBe(true);
  });
});

/** The phone's view of the group (it follows every paired update). */
function groupAt(w: PairedWorld): Group {
  return w.p.client.group(w.a.group!.id);
}

describe('the rotation guard in a shared PostgreSQL database and across schemas', () => {
  let postgres: PgServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  });
  afterAll(async () => postgres?.stop());

  it("on two servers: a thief's further key racing the first guarded rotation ends revoked either way; two guarded rotations from one key: one wins", async () => {
    const servers = await twoPostgresServers(postgres.url);
    try {
      const [a, b] = servers.map((s) => s.url) as [string, string];
      for (let round = 0; round < 4; round++) {
        const id = `dave${round}`;
        const client = await MlsClient.open();
        const first = await client.createIdentity(id, 1);
        const dave = await DeliveryClient.register(a, { clientId: id, client, identity: first });
        const guard = await newGuard(id);
        const own = await client.createIdentity(id, 1);
        const token = await tokenOf(b, id, { client, identity: first });
        const further = raw(b, 'POST', '/v1/as/register', { ...(await proof(b, id, { client, identity: own })), userId: id, identity: b64(own.identity), ciphersuite: 1 }, token);
        const next = await client.createIdentity(id, 1);
        const [registered] = await Promise.all([further, dave.rotateKey(next, { guard })]);
        // Before the rotation: registered, then revoked by it. After: refused, by the guard in the store, or (its session's
        // key already revoked when the request came) by the policy, as a further key with no session of the client.
        expect([
          { status: 200 },
          { status: 403, body: { reason: 'guard-refused', error: GUARD_REFUSED } },
          { status: 403, body: { reason: 'registration-refused', error: 'the registration policy refused this client id, user or key' } },
        ]).toContainEqual(registered.status === 200 ? { status: 200 } : registered);
        expect((await servers[1]!.authentication.activeBindingsOf(id)).map((x) => x.signatureKey)).toEqual([next.signaturePublicKey]);
      }

      // Two rotations with the same guard secret from one session, one on each server: exactly one registers its key.
      const client = await MlsClient.open();
      const erin = await DeliveryClient.register(a, { clientId: 'erin', client, identity: await client.createIdentity('erin', 1) });
      const guard = await newGuard('erin');
      const current = await client.createIdentity('erin', 1);
      await erin.rotateKey(current, { guard });
      const session = await tokenOf(a, 'erin', { client, identity: current });
      const secret = await guard.secret(0);
      const commitment = new Uint8Array(await crypto.subtle.digest('SHA-256', (await guard.secret(1)) as Uint8Array<ArrayBuffer>));
      const candidates = [await client.createIdentity('erin', 1), await client.createIdentity('erin', 1)];
      const results = await Promise.all(
        candidates.map(async (k, i) => {
          const url = i === 0 ? a : b;
          return raw(url, 'POST', '/v1/as/rotate', { ...(await proof(url, 'erin', { client, identity: k })), identity: b64(k.identity), ciphersuite: 1, guardSecret: b64(secret), nextGuard: b64(commitment) }, session);
        }),
      );
      const won = results.filter((r) => r.status === 200);
      expect(won.length).toBe(1);
      const lost = results.find((r) => r.status !== 200)!;
      // The loser found the guard moved on, or its session's key revoked (when its request came, or in the store), whichever it
      // read first; a refusal read after the winner's rotation is 401, as any refusal of a session revoked meanwhile (§8.4).
      expect([
        { status: 403, body: { reason: 'guard-refused', error: GUARD_REFUSED } },
        { status: 401, body: { reason: 'unauthenticated', error: 'the key this session was proven with was revoked meanwhile (unauthenticated)' } },
        { status: 401, body: { reason: 'unauthenticated', error: 'authenticate first (POST /v1/auth/challenge, then /v1/auth/session)' } },
      ]).toContainEqual(lost);
      expect((await servers[0]!.authentication.activeBindingsOf('erin')).length).toBe(1);
      expect(await servers[1]!.authentication.guardStep('erin')).toBe(1);
    } finally {
      for (const s of servers) await s.close();
    }
  });

  it('a database of schema 6 is migrated (to 8, which gives groups their registrations) when opened: its clients have no guard, and one can be set', async () => {
    expect(DS_SCHEMA_VERSION).toBe('8');
    const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-guard-v6-')), 'ds.sqlite');
    new SqliteDeliveryStore(file).close();
    const old = new Database(file);
    old.exec("DROP TABLE rotation_guards; UPDATE meta SET value = '6' WHERE key = 'schema'");
    old.close();
    const s = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(file) });
    try {
      const client = await MlsClient.open();
      const frank = await DeliveryClient.register(s.url, { clientId: 'frank', client, identity: await client.createIdentity('frank', 1) });
      expect(await frank.guardStep()).toBeNull();
      await frank.rotateKey(await client.createIdentity('frank', 1), { guard: await newGuard('frank') });
      expect(await frank.guardStep()).toBe(0);
    } finally {
      await s.close();
    }
    const meta = new Database(file, { readonly: true });
    expect(meta.prepare("SELECT value FROM meta WHERE key = 'schema'").get()).toEqual({ value: '8' });
    meta.close();
  });
});
