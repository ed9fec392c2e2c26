/**
 * A fourth attacker's review of the DS (quotas, Welcomes stored once, the
 * reply budget): each test is an attack that succeeded before its fix,
 * against the real server on loopback (SQLite file), asserting the exact
 * refusal or bound and that honest clients keep working.
 *
 * Attacks:
 * - a client registers as `delivery-service`, the DS's own log sender name
 *   (and its external sender's identity): its messages passed for the DS's.
 * - fetching KeyPackages of made-up client ids stored a usage row for each,
 *   counted for nobody and never deleted.
 */
import { describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { WebSocket } from 'ws';
import { toHex } from 'paired-mls';
import { DeliveryClient } from 'paired-mls/services';
import { SqliteDeliveryStore } from 'paired-mls/server';
import { dsPeer, groupOf, groupStillWorks, proof, raw, sqliteServers, tokenOf } from './ds-helpers.js';
import { newMember } from './helpers.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

describe('fourth review of the DS (SQLite)', () => {
  const server = sqliteServers('paired-mls-review4-');
  const tag = Math.random().toString(36).slice(2, 8);

  it("the DS's own name `delivery-service` is no client's (403 registration-refused as client, user or identity; 403 forbidden to post under it)", async () => {
    // A permissive policy: the AS itself refuses the name, whatever the deployment lets through.
    const s = await server({ registrationPolicy: () => true });
    const [alice, bob] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`)]);
    const ds = await newMember('delivery-service');
    // Registered, it posted in groups under the sender name of the DS's own
    // proposals (LeafOperationIntents): a member reading the log's sender
    // could not tell its messages from the DS's.
    const register = async (clientId: string, userId: string) =>
      raw(s.url, 'POST', '/v1/as/register', { ...(await proof(s.url, clientId, ds)), userId, identity: b64(ds.identity.identity) });
    expect(await register('delivery-service', 'delivery-service')).toMatchObject({ status: 403, body: { reason: 'registration-refused' } });
    expect(await register(`ds-${tag}`, 'delivery-service')).toMatchObject({ status: 403, body: { reason: 'registration-refused' } });
    // The identity alone: the DS's external sender credential names `delivery-service`.
    expect(await register(`ds-${tag}`, `ds-${tag}`)).toMatchObject({ status: 403, body: { reason: 'registration-refused' } });
    expect(await s.authentication.bindingsOf('delivery-service')).toEqual([]);
    // A binding from before the name was reserved posts nothing under it.
    await s.ds.store.registerBinding({ clientId: 'delivery-service', userId: 'delivery-service', identity: ds.identity.identity, signatureKey: ds.identity.signaturePublicKey, ciphersuite: 1 });
    const token = await tokenOf(s.url, 'delivery-service', ds);
    ds.group = await ds.client.createGroup(ds.identity);
    expect(await raw(s.url, 'POST', '/v1/groups', { groupId: b64(ds.group.id) }, token)).toMatchObject({ status: 200 });
    expect(await raw(s.url, 'POST', `/v1/groups/${toHex(ds.group.id)}/messages`, { message: b64(await ds.group.encrypt('from the DS?')) }, token)).toMatchObject({
      status: 403,
      body: { reason: 'forbidden' },
    });
    await groupOf(alice, [bob]);
    await groupStillWorks([alice, bob], 'beside the reserved name');
  });

  it('fetching KeyPackages of made-up client ids stores nothing (a usage row each before, counted for nobody, never deleted)', async () => {
    let file = '';
    const s = await server({}, (f) => new SqliteDeliveryStore((file = f)));
    const [alice, bob, mallory] = await Promise.all([dsPeer(s.url, `alice-${tag}`), dsPeer(s.url, `bob-${tag}`), dsPeer(s.url, `mallory-${tag}`)]);
    const rows = () => {
      const db = new Database(file, { readonly: true });
      try {
        return (db.prepare('SELECT count(*) AS n FROM usage').get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    const before = rows();
    // 100 ids of 256 characters a request, 200 a client at once, as many clients as it registers.
    const ids = Array.from({ length: 100 }, (_, i) => `${i}-${tag}-`.padEnd(256, 'x'));
    expect(await mallory.ds.fetchKeyPackages(ids)).toEqual(new Map());
    expect(rows()).toBe(before);
    await groupOf(alice, [bob]);
    await groupStillWorks([alice, bob], 'after the made-up ids');
  });
});
