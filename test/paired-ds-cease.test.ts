/**
 * The end of a pairing at the Delivery Service (draft Figure 1a, docs/
 * PROTOCOL.md §4.9): after CeasePair, either device removes the pairing from
 * the DS registry over HTTP (POST /v1/pairings:cease, authenticated) on a
 * real server on loopback; a third party cannot; and the devices can pair
 * again, both in the registry and as PairedDevices.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PairedDevice } from 'paired-mls/paired';
import { DsError } from 'paired-mls/services';
import { SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { deliverCommit } from './helpers.js';
import { dsPeer } from './ds-helpers.js';
import { pairedWorld } from './paired-helpers.js';

describe('Paired MLS: CeasePair at the Delivery Service', () => {
  let server: RunningDeliveryServer;
  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'paired-mls-cease-'));
    server = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(join(dir, 'ds.sqlite')) });
  });
  afterAll(async () => server.close());

  it('either device removes the registry entry, nobody else can, and the devices pair again', async () => {
    const laptop = (await dsPeer(server.url, 'alice')).ds;
    const phone = (await dsPeer(server.url, 'alice-phone')).ds;
    expect(await laptop.initPairing('alice', 'alice-phone')).toBe(false);
    expect(await phone.initPairing('alice', 'alice-phone')).toBe(true);
    expect(await server.ds.devicesOf('alice')).toEqual(['alice-phone']);

    // The devices end their pairing (the phone initiates, the laptop accepts the proven CeasePair).
    const w = await pairedWorld(['bob']);
    const cease = await w.passiveDevice.ceasePair('rekey');
    for (const c of cease.groups[0]!.commits) await deliverCommit(c, w.others);
    expect(await w.activeDevice.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rekey' });

    // A third party cannot end it at the DS …
    const mallory = (await dsPeer(server.url, 'mallory')).ds;
    const err = await mallory.ceasePairing('alice', 'alice-phone').then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(DsError);
    expect({ code: (err as DsError).code, reason: (err as DsError).reason }).toEqual({ code: 'DS_REJECTED', reason: 'forbidden' });
    expect(await server.ds.devicesOf('alice')).toEqual(['alice-phone']);
    // … the device can: the registry forgets the pairing.
    await phone.ceasePairing('alice', 'alice-phone');
    expect(await server.ds.devicesOf('alice')).toEqual([]);

    // And they pair again: at the DS and as devices.
    expect(await laptop.initPairing('alice', 'alice-phone')).toBe(false);
    expect(await phone.initPairing('alice', 'alice-phone')).toBe(true);
    expect(await server.ds.devicesOf('alice')).toEqual(['alice-phone']);
    const again = await PairedDevice.initiate(w.p.client, cease.identity);
    const { initPairing, shareRand } = await again.invite(await PairedDevice.createKeyPackage(w.a.client, w.a.identity));
    const joined = await PairedDevice.join(w.a.client, initPairing);
    const shared = await joined.receive(shareRand);
    if (shared.type !== 'shareRandApplied') throw new Error(`expected shareRandApplied, got ${shared.type}`);
    expect(await again.receive(shared.accept)).toEqual({ type: 'paired' });
    expect(again.role).toBe('active');
    expect(joined.role).toBe('passive');
  });
});
