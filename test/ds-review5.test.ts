/**
 * A fifth attacker's review of the DS: what an outsider on the network does
 * with addresses. Each test is an attack that succeeded before its fix,
 * against the real server (SQLite file), asserting the exact refusal and
 * that honest clients keep working.
 *
 * Attacks:
 * - registrations of new clients were limited only by the address's request
 *   rate (1000/s): one outsider created clients without bound, each one a
 *   store quota. Now a registration bucket per address key
 *   (`registrationRate`, default 30 at once, then 1 a minute); a refused
 *   registration is refused before its signature is checked and stores
 *   nothing; a registered client's further keys and rotations do not count.
 */
import { describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import Database from 'better-sqlite3';
import { MlsClient, type Identity } from 'paired-mls';
import { signDsChallenge } from 'paired-mls/services';
import { SqliteDeliveryStore } from 'paired-mls/server';
import { dsPeer, groupOf, groupStillWorks, sqliteServers } from './ds-helpers.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** A POST of JSON from `localAddress`: its status and parsed body. */
function postFrom(url: string, path: string, body: unknown, localAddress: string, token?: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
    const req = httpRequest(url + path, { method: 'POST', localAddress, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** A proof of `identity`'s key over a fresh challenge naming `clientId`, asked for from `from`; `forge` spoils the signature. */
async function proofFrom(url: string, clientId: string, client: MlsClient, identity: Identity, from: string, forge = false) {
  const { body: c } = await postFrom(url, '/v1/auth/challenge', { clientId }, from);
  const signature = signDsChallenge(client, identity, c.challenge);
  if (forge) signature[0] ^= 1;
  return { challenge: c.challenge as string, identity: b64(identity.identity), signatureKey: b64(identity.signaturePublicKey), ciphersuite: identity.ciphersuite, signature: b64(signature) };
}

/** Rows in every table of the SQLite file. */
function rows(file: string): Record<string, number> {
  const db = new Database(file, { readonly: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[];
    return Object.fromEntries(tables.map(({ name }) => [name, (db.prepare(`SELECT count(*) AS n FROM "${name}"`).get() as { n: number }).n]));
  } finally {
    db.close();
  }
}

describe('fifth review of the DS (SQLite)', () => {
  const server = sqliteServers('paired-mls-ds-review5-');

  it('registrations of new clients are limited per address (default 30, then 1 a minute): the attacker (127.0.0.2) gets 429 rate-limited, before its signature is checked, with nothing stored; its clients still rotate and add keys; another address registers and its group works', async () => {
    let file = '';
    const s = await server({}, (f) => new SqliteDeliveryStore((file = f)));
    const mallory = await MlsClient.open();
    const ids: Identity[] = [];
    // 30 new clients from one address: the burst.
    for (let i = 0; i < 30; i++) {
      ids.push(await mallory.createIdentity(`mallory-${i}`, 1));
      const r = await postFrom(s.url, '/v1/as/register', await proofFrom(s.url, `mallory-${i}`, mallory, ids[i]!, '127.0.0.2'), '127.0.0.2');
      expect(r.status).toBe(200);
    }
    const before = rows(file);
    // Before the fix every one was registered (1000 requests a second from one address).
    for (let i = 30; i < 33; i++) {
      const id = await mallory.createIdentity(`mallory-${i}`, 1);
      const r = await postFrom(s.url, '/v1/as/register', await proofFrom(s.url, `mallory-${i}`, mallory, id, '127.0.0.2'), '127.0.0.2');
      expect(r).toMatchObject({ status: 429, body: { reason: 'rate-limited' } });
      // Refused before the signature is checked: a forged one is refused alike, not 401.
      const forged = await postFrom(s.url, '/v1/as/register', await proofFrom(s.url, `mallory-${i}`, mallory, id, '127.0.0.2', true), '127.0.0.2');
      expect(forged).toMatchObject({ status: 429, body: { reason: 'rate-limited' } });
      expect(await s.authentication.bindingsOf(`mallory-${i}`)).toEqual([]);
    }
    // Nothing stored: no binding, no spent proof, no row of any table.
    expect(rows(file)).toEqual(before);
    // A registered client of that address still adds a key (as itself) and rotates one: not new clients.
    const token = (await postFrom(s.url, '/v1/auth/session', await proofFrom(s.url, 'mallory-0', mallory, ids[0]!, '127.0.0.2'), '127.0.0.2')).body.token as string;
    const second = await mallory.createIdentity('mallory-0', 1);
    expect((await postFrom(s.url, '/v1/as/register', await proofFrom(s.url, 'mallory-0', mallory, second, '127.0.0.2'), '127.0.0.2', token)).status).toBe(200);
    const third = await mallory.createIdentity('mallory-0', 1);
    const rotated = await postFrom(s.url, '/v1/as/rotate', await proofFrom(s.url, 'mallory-0', mallory, third, '127.0.0.2'), '127.0.0.2', token);
    expect(rotated.status).toBe(200);
    expect((await s.authentication.bindingsOf('mallory-0')).filter((b) => !b.revoked).length).toBe(2);
    // Honest clients from another address (127.0.0.1) register and their group works.
    const [alice, bob] = await Promise.all([dsPeer(s.url, 'alice'), dsPeer(s.url, 'bob')]);
    await groupOf(alice, [bob]);
    await groupStillWorks([alice, bob], 'beside the registering address');
  });
});
