/**
 * The gaps docs/PROTOCOL.md §8 used to list as open, each closed and shown
 * by an attack that fails against the real networked DS (SQLite file; the
 * PostgreSQL store where its code differs): the exact refusal (status +
 * reason) and the honest clients still served afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bytesEqual, MlsClient, toHex } from 'paired-mls';
import { DeliveryClient, signDsChallenge } from 'paired-mls/services';
import { startDeliveryServer, type PostgresDeliveryStore, type RunningDeliveryServer } from 'paired-mls/server';
import { dsPeer, groupOf, groupStillWorks, proof, raw, sqliteServers, tokenOf, upgrade, type DsPeer } from './ds-helpers.js';
import { postgresPair, type PostgresPair } from './ds-postgres-pair.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** A registration body for `clientId` with `who`'s key (identity `identity`, default the client id). */
async function registration(url: string, clientId: string, who: { client: MlsClient; identity: DsPeer['identity'] }, extra: Record<string, unknown> = {}) {
  return { ...(await proof(url, clientId, who)), userId: clientId, identity: b64(who.identity.identity), ciphersuite: 1, ...extra };
}

/** A fresh MLS identity named `name`, not registered anywhere. */
async function unregistered(name: string): Promise<{ name: string; client: MlsClient; identity: DsPeer['identity'] }> {
  const client = await MlsClient.open();
  return { name, client, identity: await client.createIdentity(name, 1) };
}

describe('the gaps of docs/PROTOCOL.md §8, closed (SQLite)', () => {
  const server = sqliteServers('paired-mls-gaps-');
  const tag = Math.random().toString(36).slice(2, 8);

  it('a first registration ties the credential identity to the client id: nobody registers an identity naming another client', async () => {
    const s = await server();
    const alice = await dsPeer(s.url, `alice-${tag}`);
    const post = (body: unknown, token?: string) => raw(s.url, 'POST', '/v1/as/register', body, token);
    const refusal = { status: 403, body: { reason: 'registration-refused' } };
    // mallory, a new client id, with the credential identity "alice-…": the default policy refuses (the identity names another client).
    const asAlice = await unregistered(alice.name);
    expect(await post(await registration(s.url, `mallory-${tag}`, asAlice))).toMatchObject({ ...refusal, body: { ...refusal.body, error: 'the registration policy refused this client id, user or key' } });
    // Nor any identity other than her own client id ("bob", unregistered yet, is someone else's name too).
    expect(await post(await registration(s.url, `mallory-${tag}`, await unregistered(`bob-${tag}`)))).toMatchObject(refusal);
    // With a policy that accepts everything, the AS itself still refuses an identity another client uses.
    const open = await server({ registrationPolicy: () => true });
    const alice2 = await dsPeer(open.url, `alice-${tag}`);
    expect(await raw(open.url, 'POST', '/v1/as/register', await registration(open.url, `mallory-${tag}`, await unregistered(alice2.name)))).toMatchObject({
      status: 403,
      body: { reason: 'registration-refused', error: 'this credential identity belongs to a client of another user (registration-refused)' },
    });
    // A device of alice's, vouched for by her session, may carry her user's identity (same user); not mallory's.
    const phone = await unregistered(alice.name);
    expect((await post(await registration(s.url, `alice-phone-${tag}`, phone, { userId: alice.name }), await tokenOf(s.url, alice.name, alice))).status).toBe(200);
    // Two first registrations of one new client id racing with different keys: exactly one wins.
    const racers = await Promise.all(Array.from({ length: 8 }, () => unregistered(`carol-${tag}`)));
    const bodies = await Promise.all(racers.map((r) => registration(s.url, r.name, r)));
    const results = await Promise.all(bodies.map((b) => post(b)));
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 200)) expect(r).toMatchObject(refusal);
    expect((await s.authentication.bindingsOf(`carol-${tag}`)).length).toBe(1);
    // mallory with her own name is fine; alice's binding and validation are untouched.
    const mallory = await dsPeer(s.url, `mallory-${tag}`);
    expect(await mallory.ds.validate(alice.identity.identity, alice.identity.signaturePublicKey)).toEqual({ clientId: alice.name, userId: alice.name });
    expect((await s.authentication.bindingsOf(alice.name)).map((b) => b.revoked)).toEqual([false]);
  });

  it('auth proofs are single-use: a replayed proof is refused at /v1/auth/session and /v1/as/register', async () => {
    const s = await server();
    const alice = await dsPeer(s.url, `alice-${tag}`);
    const p = await proof(s.url, alice.name, alice);
    expect((await raw(s.url, 'POST', '/v1/auth/session', p)).status).toBe(200);
    const replayed = { status: 401, body: { reason: 'unauthenticated', error: 'this proof was used already; ask for a new challenge' } };
    expect(await raw(s.url, 'POST', '/v1/auth/session', p)).toMatchObject(replayed);
    const dave = await unregistered(`dave-${tag}`);
    const reg = await registration(s.url, dave.name, dave);
    expect((await raw(s.url, 'POST', '/v1/as/register', reg)).status).toBe(200);
    expect(await raw(s.url, 'POST', '/v1/as/register', reg)).toMatchObject(replayed);
    // The proof a registration spent cannot open a session either.
    expect(await raw(s.url, 'POST', '/v1/auth/session', { challenge: reg.challenge, signatureKey: reg.signatureKey, signature: reg.signature })).toMatchObject(replayed);
    // Honest logins take a fresh challenge each time and keep working.
    expect((await raw(s.url, 'GET', '/v1/welcomes', undefined, await tokenOf(s.url, alice.name, alice))).status).toBe(200);
    await DeliveryClient.login(s.url, { clientId: alice.name, client: alice.client, identity: alice.identity });
  });

  it('Welcome amplification: added must be distinct and match KeyPackages the DS handed to the committer; inboxes are capped and paged', async () => {
    const s = await server({ maxPendingWelcomes: 2 });
    const [alice, bob, carol, mallory, victim] = await Promise.all(['alice', 'bob', 'carol', 'mallory', 'victim'].map((x) => dsPeer(s.url, `${x}-${tag}`)));
    await groupOf(alice, [bob!, carol!]);
    mallory!.group = await mallory!.client.createGroup(mallory!.identity);
    const gid = mallory!.group.id;
    await mallory!.ds.createGroup(gid, { epoch: mallory!.group.epoch });
    // victim's KeyPackage that mallory did not get from the DS (out of band, or an old one): not-granted.
    const oob = await victim!.client.createKeyPackage(victim!.identity);
    await victim!.ds.uploadKeyPackages([await victim!.client.createKeyPackage(victim!.identity, { lastResort: true })]);
    let add = await mallory!.group.commit({ add: [oob] });
    const notGranted = (r: Promise<unknown>) =>
      expect(r).rejects.toMatchObject({ reason: 'not-granted' });
    await notGranted(mallory!.ds.submit(gid, add.commit, { welcome: add.welcome, added: [victim!.name] }));
    // Naming the victim twice (one copy of the Welcome each): malformed.
    await expect(mallory!.ds.submit(gid, add.commit, { welcome: add.welcome, added: [victim!.name, victim!.name] })).rejects.toMatchObject({ reason: 'malformed' });
    // Naming bob, whose KeyPackage is not in this Welcome at all: not-granted.
    await notGranted(mallory!.ds.submit(gid, add.commit, { welcome: add.welcome, added: [bob!.name] }));
    await mallory!.group.clearPendingCommit();
    expect(await s.ds.store.countWelcomes(victim!.name)).toBe(0);
    // With the victim's (last-resort) KeyPackage from the DS, one add works, and the grant is spent by it.
    const groups: Uint8Array[] = [];
    const addVictim = async () => {
      const g = await mallory!.client.createGroup(mallory!.identity);
      await mallory!.ds.createGroup(g.id, { epoch: g.epoch });
      groups.push(g.id);
      const kp = (await mallory!.ds.fetchKeyPackages([victim!.name])).get(victim!.name)!;
      const c = await g.commit({ add: [kp] });
      return { g, c, kp };
    };
    const first = await addVictim();
    await mallory!.ds.submit(first.g.id, first.c.commit, { welcome: first.c.welcome, added: [victim!.name] });
    await first.g.mergePendingCommit();
    const second = await first.g.commit({ remove: [1] });
    await mallory!.ds.submit(first.g.id, second.commit, { removed: [victim!.name] });
    await first.g.mergePendingCommit();
    // Re-adding with the same KeyPackage (its grant spent by the first add): not-granted.
    const again = await first.g.commit({ add: [first.kp] });
    await notGranted(mallory!.ds.submit(first.g.id, again.commit, { welcome: again.welcome, added: [victim!.name] }));
    await first.g.clearPendingCommit();
    // A fresh fetch grants again; the victim's inbox holds at most 2: the third Welcome is refused.
    const third = await addVictim();
    await mallory!.ds.submit(third.g.id, third.c.commit, { welcome: third.c.welcome, added: [victim!.name] });
    const fourth = await addVictim();
    await expect(mallory!.ds.submit(fourth.g.id, fourth.c.commit, { welcome: fourth.c.welcome, added: [victim!.name] })).rejects.toMatchObject({ reason: 'inbox-full' });
    expect(await s.ds.store.countWelcomes(victim!.name)).toBe(2);
    // The inbox route is paged.
    const token = await tokenOf(s.url, victim!.name, victim!);
    const page1 = await raw(s.url, 'GET', '/v1/welcomes?limit=1', undefined, token);
    expect(page1.status).toBe(200);
    expect(page1.body.welcomes).toHaveLength(1);
    expect(page1.body.next).toBe(page1.body.welcomes[0].id);
    const page2 = await raw(s.url, 'GET', `/v1/welcomes?limit=1&after=${page1.body.next}`, undefined, token);
    expect(page2.body.welcomes).toHaveLength(1);
    expect(page2.body.next).toBeUndefined();
    // The victim takes them; then honest alice adds the victim as usual.
    const all = await victim!.ds.welcomes();
    expect(all.map((w) => w.id)).toEqual([page1.body.welcomes[0].id, page2.body.welcomes[0].id]);
    await victim!.ds.ackWelcomes(all.map((w) => w.id));
    const kp = (await alice.ds.fetchKeyPackages([victim!.name])).get(victim!.name)!;
    const honest = await alice.group!.commit({ add: [kp], groupInfo: true });
    alice.seen = await alice.ds.submit(alice.group!.id, honest.commit, { welcome: honest.welcome, added: [victim!.name], groupInfo: honest.groupInfo });
    await alice.group!.mergePendingCommit();
    const [w] = await victim!.ds.welcomes();
    victim!.group = await victim!.client.joinFromWelcome(w!.welcome);
    victim!.seen = alice.seen;
    await groupStillWorks([alice, bob!, carol!, victim!], 'after the amplification attempts');
  });

  it('Sybil requesters cannot drain a KeyPackage pool: one-time KeyPackages per target are limited, then the last-resort one is served', async () => {
    const s = await server({ keyPackageTargetRate: [0.001, 5] });
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((x) => dsPeer(s.url, `${x}-${tag}`)));
    await bob!.ds.uploadKeyPackages([...(await bob!.client.createKeyPackages(bob!.identity, { count: 10 })), await bob!.client.createKeyPackage(bob!.identity, { lastResort: true })]);
    const sybils = await Promise.all(Array.from({ length: 20 }, (_, i) => dsPeer(s.url, `sybil${i}-${tag}`)));
    const got = await Promise.all(sybils.map(async (x) => b64((await x.ds.fetchKeyPackages([bob!.name])).get(bob!.name)!)));
    // 5 one-time KeyPackages went out (the target's burst); the other 15 requesters all got the same last-resort one.
    const counts = new Map<string, number>();
    for (const k of got) counts.set(k, (counts.get(k) ?? 0) + 1);
    expect(counts.size).toBe(6);
    expect(Math.max(...counts.values())).toBe(15);
    // Even if every Sybil acknowledges, bob keeps 5 unleased one-time KeyPackages and his last-resort one.
    await Promise.all(sybils.map((x) => x.ds.ackKeyPackages([bob!.name])));
    expect(await s.ds.store.countKeyPackages(bob!.name)).toBe(6);
    // alice can still add bob (with the last-resort KeyPackage while the target limit lasts).
    await groupOf(alice!, [bob!]);
    await groupStillWorks([alice!, bob!], 'bob is reachable');
  });

  it('parallel WebSocket upgrades cannot pass the per-client stream cap (the slot is reserved before the upgrade)', async () => {
    const s = await server({ maxStreamsPerClient: 2 });
    const [alice, bob] = await Promise.all(['alice', 'bob'].map((x) => dsPeer(s.url, `${x}-${tag}`)));
    await groupOf(alice!, [bob!]);
    const token = await tokenOf(s.url, bob!.name, bob!);
    const path = `/v1/stream?group=${toHex(alice!.group!.id)}&access_token=${token}`;
    const results = await Promise.all(Array.from({ length: 12 }, () => upgrade(s.url, path)));
    expect(results.filter((r) => r.status === 101)).toHaveLength(2);
    expect(results.filter((r) => r.status === 429)).toHaveLength(10);
    // Closing one frees its slot; a refused upgrade took none.
    const open = results.filter((r) => r.ws);
    const closed = new Promise((r) => open[0]!.ws!.once('close', r));
    open[0]!.ws!.close();
    await closed;
    await new Promise((r) => setTimeout(r, 50));
    const next = await upgrade(s.url, path);
    expect(next.status).toBe(101);
    expect((await upgrade(s.url, path)).status).toBe(429);
    for (const r of [...open, next]) r.ws?.terminate();
    await groupStillWorks([alice!, bob!], 'streams capped');
  });

  it('a rate-limited client cannot reset its bucket by making the limiter forget it (churning other keys)', async () => {
    const s = await server({ clientRate: [0.001, 3], rateLimitKeys: 3, ipRate: [1e6, 1e6] });
    const mallory = await dsPeer(s.url, `mallory-${tag}`);
    const churners = await Promise.all(Array.from({ length: 6 }, (_, i) => dsPeer(s.url, `churn${i}-${tag}`)));
    const token = await tokenOf(s.url, mallory.name, mallory);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await raw(s.url, 'GET', '/v1/welcomes', undefined, token)).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    // More keys than the limiter keeps: before the fix this evicted mallory's empty bucket.
    const tokens = await Promise.all(churners.map((c) => tokenOf(s.url, c.name, c)));
    for (const t of tokens) await raw(s.url, 'GET', '/v1/welcomes', undefined, t);
    expect(await raw(s.url, 'GET', '/v1/welcomes', undefined, token)).toMatchObject({ status: 429, body: { reason: 'rate-limited' } });
  });

  it('pairing requests name registered clients only and expire unanswered', async () => {
    const s = await server({ pairingRequestSeconds: 1 });
    const [alice, bob, phone] = await Promise.all(['alice', 'bob', 'phone'].map((x) => dsPeer(s.url, `${x}-${tag}`)));
    await groupOf(alice!, [bob!]);
    // A request naming a device nobody registered: refused (it would lie in wait for whoever registers that id).
    await expect(alice!.ds.initPairing(alice!.name, `ghost-${tag}`)).rejects.toMatchObject({ reason: 'unknown-client' });
    await expect(phone!.ds.initPairing(`ghost-${tag}`, phone!.name)).rejects.toMatchObject({ reason: 'unknown-client' });
    // alice asks, the phone answers too late: the request is gone, no pairing.
    expect(await alice!.ds.initPairing(alice!.name, phone!.name)).toBe(false);
    await new Promise((r) => setTimeout(r, 2200));
    expect(await phone!.ds.initPairing(alice!.name, phone!.name)).toBe(false);
    expect(await alice!.ds.devices()).toEqual([]);
    await expect(phone!.ds.poll(alice!.group!.id, 0)).rejects.toMatchObject({ reason: 'not-a-member' });
    // Asked again in time: paired.
    expect(await alice!.ds.initPairing(alice!.name, phone!.name)).toBe(true);
    expect(await alice!.ds.devices()).toEqual([phone!.name]);
    await groupStillWorks([alice!, bob!], 'paired in time');
  });
});

describe('suspicions checked', () => {
  it("the pairing Accept's seed confirmation is compared in constant time: bytesEqual reads every byte whatever differs", () => {
    // A Proxy counts the element reads: an early exit would read fewer when the first byte differs.
    const reads = (a: Uint8Array, b: Uint8Array) => {
      let n = 0;
      const count = (x: Uint8Array) =>
        new Proxy(x, {
          get(target, key) {
            if (typeof key === 'string' && /^\d+$/.test(key)) n++;
            return Reflect.get(target, key) as unknown;
          },
        });
      const equal = bytesEqual(count(a), count(b));
      return { equal, n };
    };
    const x = new Uint8Array(32).fill(7);
    const firstDiffers = x.slice();
    firstDiffers[0] = 8;
    const lastDiffers = x.slice();
    lastDiffers[31] = 8;
    expect(reads(x, x.slice())).toEqual({ equal: true, n: 64 });
    expect(reads(x, firstDiffers)).toEqual({ equal: false, n: 64 });
    expect(reads(x, lastDiffers)).toEqual({ equal: false, n: 64 });
  });
});

describe('the gaps of docs/PROTOCOL.md §8, closed (PostgreSQL, two servers)', () => {
  let pair: PostgresPair;
  let one: RunningDeliveryServer;
  let two: RunningDeliveryServer;
  let stores: PostgresDeliveryStore[];
  const tag = Math.random().toString(36).slice(2, 8);
  beforeAll(async () => {
    pair = await postgresPair();
    ({ one, two, stores } = pair);
  });
  afterAll(async () => pair?.close());

  it('a proof spent at one server is refused at the other', async () => {
    const alice = await dsPeer(one.url, `alice-${tag}`);
    // Both servers share the audience here only if the challenge is theirs: each takes its own challenge.
    const p = await proof(two.url, alice.name, alice);
    expect((await raw(two.url, 'POST', '/v1/auth/session', p)).status).toBe(200);
    expect(await raw(two.url, 'POST', '/v1/auth/session', p)).toMatchObject({ status: 401, body: { reason: 'unauthenticated' } });
    // Two servers with one audience (behind one proxy): the replay goes to the other server.
    const shared = await Promise.all(stores.map((store) => startDeliveryServer({ port: 0, store, audience: `https://ds.example/${tag}` })));
    try {
      const { body: c } = await raw(shared[0]!.url, 'POST', '/v1/auth/challenge', { clientId: alice.name });
      const body = { challenge: c.challenge, signatureKey: b64(alice.identity.signaturePublicKey), signature: b64(signDsChallenge(alice.client, alice.identity, c.challenge)) };
      expect((await raw(shared[0]!.url, 'POST', '/v1/auth/session', body)).status).toBe(200);
      expect(await raw(shared[1]!.url, 'POST', '/v1/auth/session', body)).toMatchObject({ status: 401, body: { reason: 'unauthenticated', error: 'this proof was used already; ask for a new challenge' } });
    } finally {
      for (const s of shared) await s.close();
    }
  });

  it('a registration racing a revocation of the same client on two servers never leaves a revoked client with an active key', async () => {
    for (let round = 0; round < 12; round++) {
      const c = await dsPeer(one.url, `racer${round}-${tag}`);
      const second = { client: c.client, identity: await c.client.createIdentity(c.name, 1) };
      const token = await tokenOf(one.url, c.name, c);
      const body = await registration(two.url, c.name, second);
      const [reg, rev] = await Promise.all([raw(two.url, 'POST', '/v1/as/register', body, token), raw(one.url, 'POST', '/v1/as/revoke', {}, token)]);
      expect(rev.status).toBe(200);
      // Either the key came first (and was revoked with the client) or the revocation did (and the key is refused).
      if (reg.status !== 200) expect(reg).toMatchObject({ status: expect.any(Number), body: { reason: expect.stringMatching(/^(registration-refused|unauthenticated)$/) } });
      const bindings = await one.authentication.bindingsOf(c.name);
      expect(bindings.every((b) => b.revoked)).toBe(true);
      expect(await one.authentication.validate(second.identity.identity, second.identity.signaturePublicKey)).toBeUndefined();
    }
    // Honest clients on both servers keep working.
    const [a, b] = await Promise.all([dsPeer(one.url, `a-${tag}`), dsPeer(two.url, `b-${tag}`)]);
    await groupOf(a, [b]);
    await groupStillWorks([a, b], 'after the races');
  });
});
