/**
 * docs/PROTOCOL.md §8.1 and §8.2 claims that had no test, each as an attack
 * against real servers on loopback (SQLite, and two servers on one
 * PostgreSQL database), asserting the exact refusal, the honest members
 * working afterwards:
 * - §8.2: each server refuses a challenge of another audience (401
 *   `unauthenticated`), also one of a server sharing its database and so
 *   its MAC secret (PostgreSQL; the SQLite servers here have a file, and
 *   a secret, each); the refusal spends nothing, the proof still works at
 *   the server whose challenge it is. A session token names no audience:
 *   one server's is taken at the other.
 * - §8.2: a session proof of a key registered to another client than the
 *   challenge names is refused before its signature check: it takes
 *   nothing of the address's verification budget.
 * - §8.1: `key-packages:ack` deletes only the requester's own leases, and a
 *   Welcome is read and acknowledged by its addressee only (a real ref
 *   leased to another requester, a real Welcome id of another client).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signDsChallenge } from 'paired-mls/services';
import type { RunningDeliveryServer } from 'paired-mls/server';
import { dsPeer, groupOf, groupStillWorks, proof, raw, sqliteServers, tokenOf, type DsPeer } from './ds-helpers.js';
import { postgresPair, type PostgresPair } from './ds-postgres-pair.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/**
 * mallory's attacks on KeyPackage leases and Welcomes at `at` (alice's and bob's server may be another one on the same
 * database): another requester's real lease, acknowledged by mallory, stays; bob's real Welcome, read and acknowledged by
 * mallory, stays; then bob joins from it and the group works.
 */
async function leasesAndWelcomes(at: string, alice: DsPeer, bob: DsPeer, carol: DsPeer, mallory: DsPeer, server: RunningDeliveryServer): Promise<void> {
  const malloryToken = await tokenOf(at, mallory.name, mallory);
  await groupOf(alice, [carol]);
  await bob.ds.uploadKeyPackages([await bob.client.createKeyPackage(bob.identity), await bob.client.createKeyPackage(bob.identity)]);
  const before = await server.ds.store.countKeyPackages(bob.name);
  expect(before).toBe(2);
  // alice's lease of one of bob's KeyPackages, and mallory's of the other: the refs are in each reply.
  const forAlice = await raw(at, 'POST', '/v1/key-packages:fetch', { clients: [bob.name] }, await tokenOf(at, alice.name, alice));
  const forMallory = await raw(at, 'POST', '/v1/key-packages:fetch', { clients: [bob.name] }, malloryToken);
  const [aliceRef, malloryRef] = [forAlice.body.refs[bob.name] as string, forMallory.body.refs[bob.name] as string];
  expect(aliceRef).not.toBe(malloryRef);
  // mallory acknowledges alice's lease (a ref she can compute from any KeyPackage she saw): nothing deleted.
  expect(await raw(at, 'POST', '/v1/key-packages:ack', { refs: [aliceRef] }, malloryToken)).toMatchObject({ status: 200, body: { deleted: 0 } });
  expect(await server.ds.store.countKeyPackages(bob.name)).toBe(2);
  // Her own lease she may acknowledge.
  expect(await raw(at, 'POST', '/v1/key-packages:ack', { refs: [malloryRef] }, malloryToken)).toMatchObject({ status: 200, body: { deleted: 1 } });
  // alice asking again gets her lease, the same KeyPackage, and adds bob with it.
  const kps = await alice.ds.fetchKeyPackages([bob.name]);
  expect(b64(kps.get(bob.name)!)).toBe(forAlice.body.keyPackages[bob.name]);
  const add = await alice.group!.commit({ add: [...kps.values()] });
  alice.seen = await alice.ds.submit(alice.group!.id, add.commit, { welcome: add.welcome, added: [bob.name] });
  await alice.group!.mergePendingCommit();
  await alice.ds.ackKeyPackages([bob.name]);
  expect(await server.ds.store.countKeyPackages(bob.name)).toBe(0);
  // bob's Welcome: mallory's inbox shows none of it, and her acknowledgement of its real id deletes nothing.
  const pending = await server.ds.pendingWelcomes(bob.name);
  expect(pending).toHaveLength(1);
  expect(await raw(at, 'GET', '/v1/welcomes', undefined, malloryToken)).toMatchObject({ status: 200, body: { welcomes: [] } });
  expect(await raw(at, 'POST', '/v1/welcomes:ack', { ids: [pending[0]!.id] }, malloryToken)).toMatchObject({ status: 200, body: {} });
  const [w] = await bob.ds.welcomes();
  expect(w!.id).toBe(pending[0]!.id);
  bob.group = await bob.client.joinFromWelcome(w!.welcome);
  await bob.ds.ackWelcomes([w!.id]);
  bob.seen = alice.seen;
  await groupStillWorks([alice, carol, bob], 'after mallory acknowledged what is not hers');
}

describe('PROTOCOL §8.1/§8.2 claims (SQLite)', () => {
  const server = sqliteServers('paired-mls-audit60f-');
  const tag = Math.random().toString(36).slice(2, 8);

  it("a session proof of a key registered to another client than the challenge names is refused before its check: 401, the address's verification budget untouched", async () => {
    // A budget of 3 checks for this address, refilling one in ~11 days: two registrations take 2.
    const s = await server({ verificationRate: [1e-6, 3] });
    const alice = await dsPeer(s.url, `alice-${tag}`);
    const mallory = await dsPeer(s.url, `mallory-${tag}`);
    // mallory signs alice's challenge with her own (registered) key, 50 times: each refused before its signature check.
    for (let i = 0; i < 50; i++) {
      const { body: c } = await raw(s.url, 'POST', '/v1/auth/challenge', { clientId: alice.name });
      const body = { challenge: c.challenge, signatureKey: b64(mallory.identity.signaturePublicKey), signature: b64(signDsChallenge(mallory.client, mallory.identity, c.challenge)) };
      expect(await raw(s.url, 'POST', '/v1/auth/session', body)).toMatchObject({
        status: 401,
        body: { reason: 'unauthenticated', error: 'this key is registered to another client than the challenge names' },
      });
    }
    // The budget still holds its third check: alice logs in; the next proof of anyone's is 429, unchecked.
    expect((await raw(s.url, 'POST', '/v1/auth/session', await proof(s.url, alice.name, alice))).status).toBe(200);
    expect(await raw(s.url, 'POST', '/v1/auth/session', await proof(s.url, mallory.name, mallory))).toMatchObject({ status: 429, body: { reason: 'rate-limited' } });
    // alice's session from her registration still works.
    expect(await alice.ds.devices()).toEqual([]);
  });

  it("key-packages:ack deletes only the requester's own leases; a Welcome is read and acknowledged only by its addressee", async () => {
    const s = await server();
    const [alice, bob, carol, mallory] = await Promise.all(['alice', 'bob', 'carol', 'mallory'].map((n) => dsPeer(s.url, `${n}-k-${tag}`)));
    await leasesAndWelcomes(s.url, alice!, bob!, carol!, mallory!, s);
  });
});

describe('PROTOCOL §8.1/§8.2 claims (PostgreSQL, two servers on one database)', () => {
  let pair: PostgresPair;
  const tag = Math.random().toString(36).slice(2, 8);
  beforeAll(async () => {
    pair = await postgresPair();
  });
  afterAll(async () => pair?.close());

  it("a challenge of one server is refused at the other, though they share the database and its MAC secret (another audience); the proof then works where it belongs, once", async () => {
    const { one, two } = pair;
    const alice = await dsPeer(one.url, `alice-${tag}`);
    const atOne = await proof(one.url, alice.name, alice);
    expect(await raw(two.url, 'POST', '/v1/auth/session', atOne)).toMatchObject({
      status: 401,
      body: { reason: 'unauthenticated', error: 'no valid challenge of this server (expired, forged or for another server)' },
    });
    expect((await raw(one.url, 'POST', '/v1/auth/session', atOne)).status).toBe(200);
    expect(await raw(one.url, 'POST', '/v1/auth/session', atOne)).toMatchObject({ status: 401, body: { reason: 'unauthenticated', error: 'this proof was used already; ask for a new challenge' } });
    // A session token carries no audience: one server's is taken at the other (one deployment, one secret).
    const token = await tokenOf(one.url, alice.name, alice);
    expect(await raw(two.url, 'GET', '/v1/pairings', undefined, token)).toMatchObject({ status: 200, body: { devices: [] } });
  });

  it("key-packages:ack deletes only the requester's own leases; a Welcome is read and acknowledged only by its addressee (mallory at the other server)", async () => {
    const { one, two } = pair;
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => dsPeer(one.url, `${n}-k-${tag}`)));
    const mallory = await dsPeer(two.url, `mallory-k-${tag}`);
    await leasesAndWelcomes(two.url, alice!, bob!, carol!, mallory, two);
  });
});
