/**
 * Review of the DS writes racing a guarded rotation (docs/PROTOCOL.md §8.4), on PostgreSQL with two servers: the
 * copy's InitPairing as the anchor and its KeyPackage upload, the device's InitPairing and both accounts' rotations,
 * all at once. Each write takes the client's advisory lock (`as-client:`) first and the anchor's `pairing:` lock
 * last, as a rotation does, so none deadlocks (no 500), each answer is 200 or 401 `unauthenticated`, and whatever
 * the order, the rotated-away anchor key pairs nothing and stores no KeyPackage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MlsClient } from 'paired-mls';
import { generateSeed, WebCryptoSeedVault } from 'paired-mls/paired';
import { DeliveryClient, vaultRotationGuard } from 'paired-mls/services';
import { PostgresDeliveryStore, startDeliveryServer } from 'paired-mls/server';
import { raw, tokenOf } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const DELAYS = [0, 2, 4, 6, 8, 12, 16, 24, 32, 48];

describe('writes racing rotations on PostgreSQL (lock order)', () => {
  let postgres: PgServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  }, 60_000);
  afterAll(async () => postgres?.stop());

  it('the copy pairing and uploading while the anchor and the device rotate at another server: no 500, nothing of the old key kept', async () => {
    const store = await PostgresDeliveryStore.connect(postgres.url);
    const other = await PostgresDeliveryStore.connect(postgres.url);
    const copyAt = await startDeliveryServer({ port: 0, store, maxKeyPackagesPerClient: 4 });
    const ownerAt = await startDeliveryServer({ port: 0, store: other, maxKeyPackagesPerClient: 4 });
    try {
      for (let round = 0; round < DELAYS.length; round++) {
        const tag = `${round}-${Math.random().toString(36).slice(2, 8)}`;
        const id = `alice-${tag}`;
        const client = await MlsClient.open();
        const ds = await DeliveryClient.register(ownerAt.url, { clientId: id, client, identity: await client.createIdentity(id, 1) });
        const guard = vaultRotationGuard(await WebCryptoSeedVault.import(generateSeed()), id);
        const current = await client.createIdentity(id, 1);
        await ds.rotateKey(current, { guard });
        const devId = `dev-${tag}`;
        const devClient = await MlsClient.open();
        const devIdentity = await devClient.createIdentity(devId, 1);
        const dev = await DeliveryClient.register(ownerAt.url, { clientId: devId, client: devClient, identity: devIdentity });
        const copyToken = await tokenOf(copyAt.url, id, { client, identity: current });
        const devToken = await tokenOf(copyAt.url, devId, { client: devClient, identity: devIdentity });
        const kps = await client.createKeyPackages(current, { count: 2 });
        const [aliceNext, devNext] = [await client.createIdentity(id, 1), await devClient.createIdentity(devId, 1)];
        // The rotations first; the writes after a delay that grows each round, so they land before, within and after.
        const rotations = [ds.rotateKey(aliceNext, { guard }), dev.rotateKey(devNext)].map((p) => p.then(() => ({ status: 200, body: {} })));
        await new Promise((r) => setTimeout(r, DELAYS[round]));
        const answers = await Promise.all([
          raw(copyAt.url, 'POST', '/v1/pairings', { anchor: id, device: devId }, copyToken),
          raw(copyAt.url, 'POST', '/v1/pairings', { anchor: id, device: devId }, devToken),
          raw(copyAt.url, 'POST', '/v1/key-packages', { keyPackages: kps.map(b64) }, copyToken),
          ...rotations,
        ]);
        // A refusal is 401 (the session's key revoked meanwhile), or for the upload 400 when the rotation's revocation came
        // before the upload's check of its KeyPackages' credential (a loaded machine's interleaving): nothing stored either way.
        for (const [i, a] of answers.entries()) {
          expect(i === 2 ? [200, 400, 401] : [200, 401], JSON.stringify(a)).toContain(a.status);
          if (a.status === 401) expect(a.body.reason).toBe('unauthenticated');
          if (a.status === 400) expect(a.body).toEqual({ error: 'the KeyPackage credential is not registered for this client (invalid-key-package)', reason: 'invalid-key-package' });
        }
        expect(await store.devicesOf(id)).toEqual([]);
        expect(await store.countKeyPackages(id)).toBe(0);
      }
    } finally {
      await copyAt.close();
      await ownerAt.close();
      await store.close();
      await other.close();
    }
  }, 120_000);
});
