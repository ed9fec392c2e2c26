/**
 * Hidden Paired MLS at the Delivery Service (docs/PROTOCOL.md §4.5, §8.4):
 * both devices act as the anchor, so a stolen copy of the passive device
 * holds the anchor's signature key and with it the anchor's DS account. A
 * paired update rotates the anchor key; the active device then registers
 * the new key at the AS and retires the old one (`DeliveryClient.rotateKey`,
 * `POST /v1/as/rotate`): the copy's session and any new login with the old
 * key are refused, and both real devices keep working with the new key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesEqual, MemoryStorageAdapter, MlsClient } from 'paired-mls';
import { DeliveryClient, signDsChallenge } from 'paired-mls/services';
import { SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { deliverPaired, pairedWorld } from './paired-helpers.js';
import { dsRefusal as refusal, leafIdentity } from './ds-guard-helpers.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');



describe('hidden Paired MLS: the anchor key rotated at the AS after a paired update', () => {
  let server: RunningDeliveryServer;
  beforeAll(async () => {
    server = await startDeliveryServer({ port: 0, store: new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-rotation-')), 'ds.sqlite')) });
  });
  afterAll(async () => server.close());

  it("a stolen copy of the passive device loses the anchor's DS account; the real devices keep it", async () => {
    const w = await pairedWorld(['bob'], 'hidden');
    // The anchor's account: registered by the active device with its original key, then moved to the
    // key the enrolment (a paired update) put on the anchor leaf, which both devices derived.
    const active = await DeliveryClient.register(server.url, { clientId: 'alice', client: w.a.client, identity: w.a.identity });
    const enrolled = leafIdentity(w.a.client, w.a.group!);
    expect(bytesEqual(enrolled.signaturePublicKey, w.a.identity.signaturePublicKey)).toBe(false);
    await active.rotateKey(enrolled);
    const phone = await DeliveryClient.login(server.url, { clientId: 'alice', client: w.p.client, identity: leafIdentity(w.p.client, w.p.group!) });
    expect(await phone.welcomes()).toEqual([]);
    // The thief copies the phone's storage: the current anchor key comes along, and logs in as the anchor.
    const copy = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(w.p.storage!) });
    const stolen = copy.identities().find((i) => bytesEqual(i.signaturePublicKey, enrolled.signaturePublicKey))!;
    expect(stolen).toBeDefined();
    const thief = await DeliveryClient.login(server.url, { clientId: 'alice', client: copy, identity: stolen });
    expect(await thief.welcomes()).toEqual([]);
    const { body: c } = await fetch(`${server.url}/v1/auth/challenge`, { method: 'POST', body: JSON.stringify({ clientId: 'alice' }) }).then(async (r) => ({ body: (await r.json()) as { challenge: string } }));
    const thiefSession = (await (
      await fetch(`${server.url}/v1/auth/session`, {
        method: 'POST',
        body: JSON.stringify({ challenge: c.challenge, signatureKey: b64(stolen.signaturePublicKey), signature: b64(signDsChallenge(copy, stolen, c.challenge)) }),
      })
    ).json()) as { token: string };

    // A paired update rotates the anchor key; both real devices apply it; the active device rotates it at the AS.
    const update = await w.activeDevice.update(w.a.group!);
    await deliverPaired(update, w.a, w.passiveDevice, w.others);
    const rotated = leafIdentity(w.a.client, w.a.group!);
    expect(bytesEqual(rotated.signaturePublicKey, enrolled.signaturePublicKey)).toBe(false);
    await active.rotateKey(rotated);

    // The old key is retired for good: the thief's session ends and a new login with it is refused.
    const gone = await fetch(`${server.url}/v1/welcomes`, { headers: { authorization: `Bearer ${thiefSession.token}` } });
    expect({ status: gone.status, reason: ((await gone.json()) as { reason: string }).reason }).toEqual({ status: 401, reason: 'unauthenticated' });
    expect(await refusal(DeliveryClient.login(server.url, { clientId: 'alice', client: copy, identity: stolen }))).toEqual({
      reason: 'unauthenticated',
      message: 'this signature key is not registered (or was revoked) (unauthenticated)',
    });
    expect(await refusal(thief.welcomes())).toMatchObject({ reason: 'unauthenticated' });
    // Nor can the thief rotate the account to a key of its own, nor re-register the old key.
    expect(await refusal(thief.rotateKey(await copy.createIdentity('alice', 1)))).toMatchObject({ reason: 'unauthenticated' });
    expect(await refusal(DeliveryClient.register(server.url, { clientId: 'alice', client: copy, identity: stolen }))).toMatchObject({ reason: 'registration-refused' });
    expect(await server.authentication.validate(stolen.identity, stolen.signaturePublicKey)).toBeUndefined();

    // The real devices: the active one goes on with its new session; the phone, having derived the same key, logs in with it.
    expect(await active.welcomes()).toEqual([]);
    const phoneKey = leafIdentity(w.p.client, w.p.group!);
    expect(bytesEqual(phoneKey.signaturePublicKey, rotated.signaturePublicKey)).toBe(true);
    const phoneAgain = await DeliveryClient.login(server.url, { clientId: 'alice', client: w.p.client, identity: phoneKey });
    expect(await phoneAgain.welcomes()).toEqual([]);
    expect(await server.authentication.validate(rotated.identity, rotated.signaturePublicKey)).toMatchObject({ clientId: 'alice', revoked: false });
    // The phone's client with the old key is refused like the thief's: the real phone goes on with the new key only.
    expect(await refusal(phone.welcomes())).toMatchObject({ reason: 'unauthenticated' });
    // Rotating to the key of the current session, or revoking what is not this client's, is refused.
    expect(await refusal(active.rotateKey(rotated))).toMatchObject({ reason: 'malformed' });
  });
});
