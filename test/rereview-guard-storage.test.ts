/**
 * Re-review of today's fixes (docs/PROTOCOL.md §8.4 rotation guard, §2.2/§2.6 stored state):
 * attacks by a thief holding a guarded account's current key (not its seed vault) against a real
 * DS on loopback, and by someone who writes the raw records of a client's SQLite store.
 * Each test asserts the exact refusal and that the honest parties keep working.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlsClient, type Identity } from 'paired-mls';
import { generateSeed, WebCryptoSeedVault } from 'paired-mls/paired';
import { DeliveryClient, MemoryDeliveryStore, vaultRotationGuard, type DeliveryStore, type RotationGuard } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { raw, tokenOf } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** `id`'s account, guarded (set with a rotation); the key it holds now, which a copy of the device holds too. */
async function guardedAccount(url: string, id: string): Promise<{ client: MlsClient; ds: DeliveryClient; guard: RotationGuard; current: Identity }> {
  const client = await MlsClient.open();
  const ds = await DeliveryClient.register(url, { clientId: id, client, identity: await client.createIdentity(id, 1) });
  const guard = vaultRotationGuard(await WebCryptoSeedVault.import(generateSeed()), id);
  const current = await client.createIdentity(id, 1);
  await ds.rotateKey(current, { guard });
  return { client, ds, guard, current };
}

describe('re-review: the rotation guard', () => {
  let postgres: PgServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  }, 60_000);
  afterAll(async () => postgres?.stop());
  const stores: [string, () => Promise<DeliveryStore>][] = [
    ['memory', async () => new MemoryDeliveryStore()],
    ['SQLite', async () => new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-rereview-')), 'ds.sqlite'))],
    ['PostgreSQL', () => PostgresDeliveryStore.connect(postgres.url)],
  ];

  it.each(stores)("%s: the copy filling the account's KeyPackage quota before the guarded rotation does not keep the owner from uploading its new key's KeyPackages", async (_, store) => {
    const s = await startDeliveryServer({ port: 0, store: await store(), maxKeyPackagesPerClient: 4 });
    try {
    const alice = await guardedAccount(s.url, 'alice');
    // The copy: the account's current key (stored state), a session of its own, the whole KeyPackage quota.
    const token = await tokenOf(s.url, 'alice', { client: alice.client, identity: alice.current });
    const stale = await alice.client.createKeyPackages(alice.current, { count: 4 });
    expect(await raw(s.url, 'POST', '/v1/key-packages', { keyPackages: stale.map(b64) }, token)).toEqual({ status: 200, body: {} });
    // The owner's guarded rotation ends the copy...
    const next = await alice.client.createIdentity('alice', 1);
    await alice.ds.rotateKey(next, { guard: alice.guard });
    expect(await raw(s.url, 'GET', '/v1/welcomes', undefined, token)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    // ...and its KeyPackages (of the revoked key, never handed out) do not hold the owner's quota.
    await alice.ds.uploadKeyPackages(await alice.client.createKeyPackages(next, { count: 4 }));
    const bobClient = await MlsClient.open();
    const bob = await DeliveryClient.register(s.url, { clientId: 'bob', client: bobClient, identity: await bobClient.createIdentity('bob', 1) });
    const got = await bob.fetchKeyPackages(['alice']);
    expect(bobClient.inspectKeyPackage(got.get('alice')!).signatureKey).toEqual(next.signaturePublicKey);
    } finally {
      await s.close();
    }
  });
});
