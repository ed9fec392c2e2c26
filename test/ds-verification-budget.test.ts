/**
 * Signature checks of proofs are bounded per address (docs/PROTOCOL.md
 * §8.6; the outsider review of stop 51). A proof whose signature fails
 * spends no nonce, so an outsider sent one challenge's failing proof again
 * and again, each a signature check in a ciphersuite it chose: with P-256
 * (1.45 ms a check, ten times Ed25519) one address kept the server's CPU
 * busy (~0.8 core) within its request budget, and /healthz slowed from 4 to
 * 114 ms. Now every check first takes its cost from the address's
 * verification budget (50 Ed25519 checks a second, burst 200; P-256 counts
 * 10), past which it is 429 rate-limited without being checked.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient } from 'paired-mls';
import { DeliveryClient } from 'paired-mls/services';
import { WebSocket } from 'ws';
import { dsPeer, groupOf, groupStillWorks, postFrom, proofFrom, raw, sqliteServers, tokenOf } from './ds-helpers.js';

describe('the signature checks one address makes the DS run', () => {
  const server = sqliteServers('paired-mls-verify-budget-');

  it("an outsider's failing P-256 proof, sent again and again from 127.0.0.2, is checked 20 times (401), then 429 rate-limited unchecked; its Ed25519 proofs too, while the budget is spent; clients of other addresses log in and talk", async () => {
    // The default budget (50 a second, burst 200) refills too fast to count on in a test: 1 a second, same burst.
    const s = await server({ verificationRate: [1, 200] });
    const [alice, bob] = await Promise.all([dsPeer(s.url, 'alice'), dsPeer(s.url, 'bob')]);
    const outsider = await MlsClient.open();
    const p256 = await outsider.createIdentity('anyone', 2);
    // A challenge naming alice, answered with a signature that does not verify.
    const forged = await proofFrom(s.url, 'alice', outsider, p256, '127.0.0.2', true);
    const answers: string[] = [];
    for (let i = 0; i < 24; i++) {
      const r = await postFrom(s.url, '/v1/as/register', forged, '127.0.0.2');
      answers.push(`${r.status} ${r.body.reason}`);
    }
    // Before: 24 times 401, each a P-256 verification, without end.
    expect(answers).toEqual([...Array<string>(20).fill('401 unauthenticated'), ...Array<string>(4).fill('429 rate-limited')]);
    const refused = await postFrom(s.url, '/v1/as/register', forged, '127.0.0.2');
    expect(refused.body).toMatchObject({ reason: 'rate-limited', error: 'too many signature checks for this address' });
    // The budget is the address's: an Ed25519 login from it waits too.
    const ed = await outsider.createIdentity('carol', 1);
    expect((await postFrom(s.url, '/v1/as/register', await proofFrom(s.url, 'carol', outsider, ed, '127.0.0.2'), '127.0.0.2')).body).toMatchObject({ reason: 'rate-limited', error: 'too many signature checks for this address' });
    // Other addresses are served: alice logs in again, and alice and bob talk.
    await DeliveryClient.login(s.url, { clientId: 'alice', client: alice.client, identity: alice.identity }, { WebSocket });
    await groupOf(alice, [bob]);
    await groupStillWorks([alice, bob], 'beside the outsider');
  });

  it("a KeyPackage upload takes the same budget, two checks a KeyPackage in its ciphersuite: 1,000 copies of one P-256 KeyPackage (20,000 units, a request that held the event loop ~2.7 s) are 413 unchecked, 100 of them twice 429 the second time; an honest batch of 100 Ed25519 ones is taken", async () => {
    const s = await server();
    const [alice, mallory] = await Promise.all([dsPeer(s.url, 'alice-kp'), dsPeer(s.url, 'mallory-kp')]);
    const p256 = await mallory.client.createIdentity('nobody', 2);
    const kp = Buffer.from(await mallory.client.createKeyPackage(p256)).toString('base64');
    const token = await tokenOf(s.url, mallory.name, mallory);
    // Before: 400 invalid-key-package after 2,000 P-256 verifications, again and again.
    // More than the whole burst at once (20,000 units): never a wait, a smaller batch (third look: 429 forever).
    expect(await raw(s.url, 'POST', '/v1/key-packages', { keyPackages: Array<string>(1000).fill(kp) }, token)).toMatchObject({
      status: 413,
      body: { reason: 'too-large', error: 'these KeyPackages cost 20000 signature checks, more than one upload may (2000); upload fewer at once' },
    });
    // 100 of them (the burst, 2,000) are checked and refused (not mallory's credential); the next 100 wait.
    expect(await raw(s.url, 'POST', '/v1/key-packages', { keyPackages: Array<string>(100).fill(kp) }, token)).toMatchObject({ status: 400, body: { reason: 'invalid-key-package' } });
    expect(await raw(s.url, 'POST', '/v1/key-packages', { keyPackages: Array<string>(100).fill(kp) }, token)).toMatchObject({
      status: 429,
      body: { reason: 'rate-limited', error: 'too many signature checks for this address' },
    });
    // The budget is the address's (all of this test's clients share 127.0.0.1), and refills: honest uploads go on.
    await new Promise((r) => setTimeout(r, 1500));
    await alice.ds.uploadKeyPackages(await alice.client.createKeyPackages(alice.identity, { count: 100 }));
    expect(await s.ds.store.countKeyPackages('alice-kp')).toBe(100);
  });
});
