/**
 * Attacks on the Delivery Service's pairing registry (docs/PROTOCOL.md §4.0,
 * §4.9, §8.3, draft Figure 1a), on a real server on loopback.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStorageAdapter, MlsClient, bytesEqual } from 'paired-mls';
import { DeliveryClient, DeliveryService, DsError, MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { startPostgres } from './pg-server.js';
import { dsPeer, groupOf, groupStillWorks, raw, tokenOf } from './ds-helpers.js';

describe('the DS pairing registry under attack', () => {
  let server: RunningDeliveryServer;
  beforeAll(async () => {
    server = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-pairds-')), 'ds.sqlite')) });
  });
  afterAll(async () => server.close());

  it("a thief holding the anchor's DS key pairs an account of its own; rotateKey ends that pairing and its pending requests", async () => {
    const url = server.url;
    const alice = await dsPeer(url, 'alice');
    const bob = await dsPeer(url, 'bob');
    await groupOf(alice, [bob]);
    const gid = alice.group!.id;
    const hex = Buffer.from(gid).toString('hex');

    // Hidden mode: a copy of the passive device's storage holds the anchor's current key, and logs in as alice.
    const copy = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(alice.storage!) });
    const stolen = copy.identities().find((i) => bytesEqual(i.signaturePublicKey, alice.identity.signaturePublicKey))!;
    const thief = await DeliveryClient.login(url, { clientId: 'alice', client: copy, identity: stolen });
    // It registers accounts of its own and pairs one with alice (both sides are its); a second request it leaves pending.
    const thiefToken = await tokenOf(url, 'alice', { client: copy, identity: stolen });
    const dev = await dsPeer(url, 'mallory-dev');
    const dev2 = await dsPeer(url, 'mallory-dev2');
    expect(await thief.initPairing('alice', 'mallory-dev')).toBe(false);
    expect(await dev.ds.initPairing('alice', 'mallory-dev')).toBe(true);
    expect(await thief.initPairing('alice', 'mallory-dev2')).toBe(false);
    expect(await server.ds.devicesOf('alice')).toEqual(['mallory-dev']);
    const devToken = await tokenOf(url, 'mallory-dev', dev);
    expect((await raw(url, 'GET', `/v1/groups/${hex}/messages`, undefined, devToken)).status).toBe(200);

    // The active device rotates alice's account to a new key (§4.0, §8.4): the thief's alice session ends …
    const rotated = await alice.client.createIdentity('alice', 1);
    await alice.ds.rotateKey(rotated);
    expect((await raw(url, 'GET', '/v1/pairings', undefined, thiefToken)).status).toBe(401);

    // … and so does every pairing alice's old key made, and its unanswered requests.
    expect(await server.ds.devicesOf('alice')).toEqual([]);
    expect(await raw(url, 'GET', `/v1/groups/${hex}/messages`, undefined, devToken)).toMatchObject({ status: 403, body: { reason: 'not-a-member' } });
    const post = await raw(url, 'POST', `/v1/groups/${hex}/messages`, { message: Buffer.from(await alice.group!.encrypt('x')).toString('base64') }, devToken);
    expect(post).toMatchObject({ status: 403, body: { reason: 'not-a-member' } });
    expect(await dev2.ds.initPairing('alice', 'mallory-dev2')).toBe(false);
    expect(await server.ds.devicesOf('alice')).toEqual([]);

    // Honest parties: alice pairs a phone with her new key; the group still works.
    const phone = await dsPeer(url, 'alice-phone');
    expect(await alice.ds.initPairing('alice', 'alice-phone')).toBe(false);
    expect(await phone.ds.initPairing('alice', 'alice-phone')).toBe(true);
    expect(await server.ds.devicesOf('alice')).toEqual(['alice-phone']);
    await groupStillWorks([alice, bob], 'still here');
  });

  it('removePairing(anchor) drops that anchor\'s pairings and requests, and nothing of another anchor (memory, SQLite, PostgreSQL)', async () => {
    const pg = await startPostgres();
    const pgStore = await PostgresDeliveryStore.connect(pg.url);
    const stores: DeliveryStore[] = [new MemoryDeliveryStore(), new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-pairds-')), 'ds.sqlite')), pgStore];
    try {
      for (const store of stores) {
        await store.putPairing('a', 'd1');
        await store.putPairing('a', 'd2');
        await store.putPairing('a2', 'd1');
        expect(await store.requestPairing('a', 'd3', 'anchor', 100, 0)).toBe(false);
        expect(await store.requestPairing('a2', 'd3', 'anchor', 100, 0)).toBe(false);
        await store.removePairing('a');
        expect([await store.devicesOf('a'), await store.devicesOf('a2'), await store.anchorsOf!('d1')]).toEqual([[], ['d1'], ['a2']]);
        // The request of a is gone, a2's stays.
        expect(await store.requestPairing('a', 'd3', 'device', 101, 0)).toBe(false);
        expect(await store.requestPairing('a2', 'd3', 'device', 101, 0)).toBe(true);
        // One pairing still goes alone.
        await store.removePairing('a2', 'd1');
        expect(await store.devicesOf('a2')).toEqual(['d3']);
        // A pair's cease withdraws its request too.
        expect(await store.requestPairing('a2', 'd4', 'anchor', 102, 0)).toBe(false);
        await store.removePairing('a2', 'd4');
        expect(await store.requestPairing('a2', 'd4', 'device', 103, 0)).toBe(false);
        expect(await store.devicesOf('a2')).toEqual(['d3']);
      }
    } finally {
      await pgStore.close();
      await pg.stop();
    }
  }, 60_000);

  it("an unanswered request is withdrawn by pairings:cease; a revoked anchor's devices lose its groups; outsiders' requests pair nothing", async () => {
    const url = server.url;
    const ann = await dsPeer(url, 'ann');
    const bea = await dsPeer(url, 'bea');
    await groupOf(ann, [bea]);
    const hex = Buffer.from(ann.group!.id).toString('hex');
    const tab = await dsPeer(url, 'ann-tab');
    const eve = await dsPeer(url, 'eve');

    // ann asks to pair her tablet, then thinks better of it (the tablet was stolen): the cease withdraws the request,
    // so the thief holding the tablet's DS key cannot complete it.
    expect(await ann.ds.initPairing('ann', 'ann-tab')).toBe(false);
    await ann.ds.ceasePairing('ann', 'ann-tab');
    expect(await tab.ds.initPairing('ann', 'ann-tab')).toBe(false);
    expect(await server.ds.devicesOf('ann')).toEqual([]);
    await tab.ds.ceasePairing('ann', 'ann-tab');

    // Outsiders: eve asks from both ends with ann's and the tablet's names; none of it pairs, nor blocks the honest pairing.
    expect(await eve.ds.initPairing('eve', 'ann-tab')).toBe(false);
    expect(await eve.ds.initPairing('ann', 'eve')).toBe(false);
    expect(await raw(url, 'POST', '/v1/pairings', { anchor: 'ann', device: 'ann-tab' }, await tokenOf(url, 'eve', eve))).toMatchObject({ status: 403, body: { reason: 'forbidden' } });
    expect(await raw(url, 'POST', '/v1/pairings', { anchor: 'ann', device: 'nobody' }, await tokenOf(url, 'ann', ann))).toMatchObject({ status: 404, body: { reason: 'unknown-client' } });
    expect(await ann.ds.initPairing('ann', 'ann-tab')).toBe(false);
    expect(await tab.ds.initPairing('ann', 'ann-tab')).toBe(true);
    expect([await server.ds.devicesOf('ann'), await server.ds.devicesOf('eve')]).toEqual([['ann-tab'], []]);
    const tabToken = await tokenOf(url, 'ann-tab', tab);
    expect((await raw(url, 'GET', `/v1/groups/${hex}/messages`, undefined, tabToken)).status).toBe(200);

    // ann revokes her account for good: her tablet no longer acts for her.
    expect((await raw(url, 'POST', '/v1/as/revoke', {}, await tokenOf(url, 'ann', ann))).status).toBe(200);
    expect(await server.ds.devicesOf('ann')).toEqual([]);
    expect(await raw(url, 'GET', `/v1/groups/${hex}/messages`, undefined, tabToken)).toMatchObject({ status: 403, body: { reason: 'not-a-member' } });
    expect((await raw(url, 'GET', `/v1/groups/${hex}/messages`, undefined, await tokenOf(url, 'bea', bea))).status).toBe(200);

    // In process, the DS refuses a third party as the route does.
    const ds = await DeliveryService.create();
    const err = await ds.initPairing('eve', 'ann', 'ann-tab').then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(DsError);
    expect((err as DsError).reason).toBe('forbidden');
  });
});
