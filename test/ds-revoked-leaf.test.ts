/**
 * A revoked client's leaf in a verified group (docs/PROTOCOL.md §8.5). A
 * verifying DS maps every leaf of a commit's new tree to a client through
 * the AS; a client revoked (by itself, `POST /v1/as/revoke`, or by the
 * deployment, `AuthenticationDirectory.revoke`) mapped to none, and every
 * honest commit keeping its leaf was refused 404 `unknown-client` ("leaf N
 * has a credential the AS does not know") until some member removed it by
 * hand: a member jammed its group by revoking its own client. Now, against
 * a real server on loopback (SQLite, and PostgreSQL; two servers on one
 * database):
 *
 * - the commit is refused 409 `revoked-leaf`, naming the leaves, and the DS
 *   proposes their removal itself as the group's external sender; the
 *   committer processes the log and commits again, which removes the leaf;
 * - in a group that lists no key of the DS, the refusal says so
 *   (`proposed: false`) and the app commits the removal of the leaves named;
 * - two commits refused at once at two servers log one Remove;
 * - a member cannot aim it at another (its revocation removes its own leaf
 *   only), and a key rotated away (not a revoked client) removes nothing;
 * - an Add of a client revoked since, landing where the retry removes a
 *   revoked leaf, goes in (it was read as kept: refused for ever);
 * - a member's Update proposal to a leaf that is not its own client's, or
 *   from a leaf that is not (a second client's of its user), is refused
 *   when posted (logged, it made every honest commit unknown-client).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MlsClient, toHex } from 'paired-mls';
import { DeliveryClient, DsError } from 'paired-mls/services';
import type { DeliveryServerOptions, RunningDeliveryServer } from 'paired-mls/server';
import { newMember } from './helpers.js';
import { catchUp, dsPeer, groupStillWorks, raw, sqliteServers, tokenOf, twoVerifyingServers, verifiedGroup, postedSelfUpdate, refusalOf, verifyingServerOptions, type DsPeer } from './ds-helpers.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

/** pete's verified group with quinn and mallory (leaves 0, 1, 2); `listed`: the DS's key in its external_senders. */
async function group(s: RunningDeliveryServer, listed = true): Promise<{ pete: DsPeer; quinn: DsPeer; mallory: DsPeer; tag: string }> {
  const tag = Math.random().toString(36).slice(2, 7);
  const [pete, quinn, mallory] = await Promise.all(['pete', 'quinn', 'mallory'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
  await verifiedGroup(pete!, [quinn!, mallory!], listed ? { extensions: { externalSenders: [s.ds.externalSenderSpec] } } : {});
  return { pete: pete!, quinn: quinn!, mallory: mallory!, tag };
}

/**
 * Who sent the messages logged after `p.seen` (read, not processed) and, for the DS's own, the leaf its Remove proposal
 * names: the u32 before the Ed25519 signature (a 2-byte vector header and 64 bytes; no membership tag for an external sender).
 */
async function logged(p: DsPeer): Promise<{ sender: string; removed?: number }[]> {
  return (await p.ds.poll(p.group!.id, p.seen)).map((m) =>
    m.sender === 'delivery-service' ? { sender: m.sender, removed: new DataView(m.message.buffer, m.message.byteOffset + m.message.length - 70, 4).getUint32(0) } : { sender: m.sender },
  );
}

/** A member's PublicMessage with its sender leaf index set to `leaf` (the u32 after the group id, epoch and sender type). */
function withSenderLeaf(message: Uint8Array, leaf: number): Uint8Array {
  const out = message.slice();
  const idLength = out[4]! >> 6 === 0 ? [1, out[4]!] : [2, ((out[4]! & 0x3f) << 8) | out[5]!];
  new DataView(out.buffer).setUint32(4 + idLength[0]! + idLength[1]! + 8 + 1, leaf);
  return out;
}

const PROPOSED = (leaf: number) => ({
  reason: 'revoked-leaf',
  message: `leaf ${leaf} is of a revoked client; this DS proposed its removal: process the group's messages and commit again (revoked-leaf)`,
  leaves: [leaf],
  proposed: true,
});

function variants(kind: string, open: () => Promise<{ one: RunningDeliveryServer; two: RunningDeliveryServer }>, close: () => Promise<void>) {
  let one: RunningDeliveryServer;
  let two: RunningDeliveryServer;
  beforeAll(async () => {
    ({ one, two } = await open());
  }, 60_000);
  afterAll(close);

  it.each(['itself (POST /v1/as/revoke)', 'the deployment (AuthenticationDirectory.revoke)'])(
    `${kind}: a member revoked by %s: the honest selfUpdate keeping its leaf is refused 409 revoked-leaf once, the DS proposes the Remove, and the selfUpdate again removes the leaf (before: unknown-client until a member removed it by hand)`,
    async (by) => {
      const { pete, quinn, mallory } = await group(one);
      if (by.startsWith('itself')) await mallory.ds.revoke();
      else await one.authentication.revoke(mallory.name);
      await catchUp(pete);
      const u = await pete.group!.selfUpdate({ groupInfo: true });
      const r = await raw(one.url, 'POST', `/v1/groups/${toHex(pete.group!.id)}/messages`, { message: b64(u.commit), groupInfo: b64(u.groupInfo!) }, await tokenOf(one.url, pete.name, pete));
      expect(r).toEqual({ status: 409, body: { error: PROPOSED(2).message, reason: 'revoked-leaf', leaves: [2], proposed: true } });
      await pete.group!.clearPendingCommit();
      // The DS's own Remove of leaf 2, logged under its name in this epoch.
      expect(await logged(pete)).toEqual([{ sender: 'delivery-service', removed: 2 }]);
      // Refused again before the committer read it (another of its commits): the same answer, no second Remove.
      const again = await pete.group!.selfUpdate({ groupInfo: true });
      expect(refusalOf(await pete.ds.submit(pete.group!.id, again.commit, { groupInfo: again.groupInfo }).catch((e) => e))).toEqual(PROPOSED(2));
      await pete.group!.clearPendingCommit();
      expect(await logged(pete)).toHaveLength(1);
      // The selfUpdate after reading the log covers the Remove by reference: no manual step.
      expect(await postedSelfUpdate(pete)).toBeGreaterThan(0);
      expect(pete.group!.state().memberCount).toBe(2);
      await groupStillWorks([pete, quinn], 'without mallory');
      await groupStillWorks([quinn, pete], 'quinn too');
    },
  );

  it(`${kind}: a group listing no key of this DS: the refusal says so (proposed: false) and names the leaf; the app commits its removal in one step`, async () => {
    const { pete, quinn, mallory } = await group(one, false);
    await mallory.ds.revoke();
    const err = await postedSelfUpdate(pete);
    expect(refusalOf(err)).toEqual({
      reason: 'revoked-leaf',
      message: 'leaf 2 is of a revoked client: commit its removal (this DS cannot propose it: the group lists no external-sender key of this DS, or its proposals of the epoch are full) (revoked-leaf)',
      leaves: [2],
      proposed: false,
    });
    expect(await logged(pete)).toEqual([]);
    const rm = await pete.group!.commit({ remove: (err as DsError).leaves!, groupInfo: true });
    pete.seen = await pete.ds.submit(pete.group!.id, rm.commit, { groupInfo: rm.groupInfo });
    await pete.group!.mergePendingCommit();
    await groupStillWorks([pete, quinn], 'mallory removed by the app');
  });

  it(`${kind}: an Add proposal whose client is revoked before the commit: the honest commit covering it goes in at once (no Welcome for the revoked client), the DS proposes the new leaf's removal in the epoch it made, and the next commit removes it`, async () => {
    const { pete, quinn, mallory, tag } = await group(one);
    const sock = await dsPeer(one.url, `sock-${tag}`);
    await sock.ds.uploadKeyPackages([await sock.client.createKeyPackage(sock.identity)]);
    const kp = (await mallory.ds.fetchKeyPackages([sock.name])).get(sock.name)!;
    await catchUp(mallory);
    mallory.seen = await mallory.ds.submit(mallory.group!.id, await mallory.group!.propose({ type: 'add', keyPackage: kp }));
    await sock.ds.revoke();
    // Before: unknown-client "leaf 3 has a credential the AS does not know", until the committer dropped the Add.
    expect(await postedSelfUpdate(pete)).toBeGreaterThan(0);
    expect(pete.group!.state().memberCount).toBe(4);
    expect(await one.ds.store.countWelcomes(sock.name)).toBe(0);
    // mallory's Add, pete's commit, then the DS's Remove of leaf 3 (sock's) in the new epoch.
    expect(await logged(quinn)).toEqual([
      { sender: mallory.name },
      { sender: pete.name },
      { sender: 'delivery-service', removed: 3 },
    ]);
    expect(await postedSelfUpdate(quinn)).toBeGreaterThan(0);
    expect(quinn.group!.state().memberCount).toBe(3);
    await groupStillWorks([quinn, pete, mallory], 'sock removed');
  });

  it(`${kind}: two commits refused at once at two servers on one database log one Remove (the same signed bytes); both committers then get through`, async () => {
    const { pete, quinn, mallory } = await group(one);
    // quinn talks to the second server.
    const atTwo = await tokenOf(two.url, quinn.name, quinn);
    await mallory.ds.revoke();
    await Promise.all([pete, quinn].map(catchUp));
    const [p, q] = [await pete.group!.selfUpdate({ groupInfo: true }), await quinn.group!.selfUpdate({ groupInfo: true })];
    const [rp, rq] = await Promise.all([
      pete.ds.submit(pete.group!.id, p.commit, { groupInfo: p.groupInfo }).catch((e) => e),
      raw(two.url, 'POST', `/v1/groups/${toHex(quinn.group!.id)}/messages`, { message: b64(q.commit), groupInfo: b64(q.groupInfo!) }, atTwo),
    ]);
    expect(refusalOf(rp)).toEqual(PROPOSED(2));
    expect(rq).toEqual({ status: 409, body: { error: PROPOSED(2).message, reason: 'revoked-leaf', leaves: [2], proposed: true } });
    for (const m of [pete, quinn]) await m.group!.clearPendingCommit();
    expect(await logged(pete)).toEqual([{ sender: 'delivery-service', removed: 2 }]);
    expect(await postedSelfUpdate(pete)).toBeGreaterThan(0);
    expect(await postedSelfUpdate(quinn)).toBeGreaterThan(0);
    await groupStillWorks([pete, quinn], 'after the race');
  });
}

describe('a revoked client in a verified group, SQLite (PROTOCOL §8.5)', () => {
  const { open, close, servers } = twoVerifyingServers('SQLite', 'paired-mls-revoked-leaf-');
  variants('SQLite', open, close);

  it('a member cannot aim it at another: a revocation naming pete revokes its sender only, and the DS proposes the removal of its leaf alone; a key rotated away (its client not revoked) removes nothing', async () => {
    const s = servers[0]!;
    const { pete, quinn, mallory } = await group(s);
    // quinn rotates her DS key; her leaf keeps the old one, which still names her (§8.4): nothing refused, nothing proposed.
    await quinn.ds.rotateKey(await quinn.client.createIdentity(quinn.name, 1));
    expect(await postedSelfUpdate(pete)).toBeGreaterThan(0);
    expect(await logged(quinn)).toEqual([{ sender: pete.name }]);
    await catchUp(quinn);
    // mallory's revocation names pete: the route revokes the session's own client, whatever the body says.
    expect(await raw(s.url, 'POST', '/v1/as/revoke', { clientId: pete.name }, await tokenOf(s.url, mallory.name, mallory))).toEqual({ status: 200, body: {} });
    expect(await s.authentication.revoked(pete.name)).toBe(false);
    // Nor can she register pete's key to a client of hers (to revoke it): no proof without its private key.
    const forged = { challenge: (await raw(s.url, 'POST', '/v1/auth/challenge', { clientId: 'mallory-2' })).body.challenge, identity: b64(mallory.identity.identity), signatureKey: b64(pete.identity.signaturePublicKey), ciphersuite: 1, signature: b64(new Uint8Array(64)) };
    expect(await raw(s.url, 'POST', '/v1/as/register', forged)).toEqual({ status: 401, body: { error: 'the signature does not verify with this key', reason: 'unauthenticated' } });
    // pete's commit keeping mallory's leaf: the DS proposes leaf 2 only (mallory's), never pete's (0) or quinn's (1).
    expect(refusalOf(await postedSelfUpdate(quinn))).toEqual(PROPOSED(2));
    expect(await logged(quinn)).toEqual([{ sender: 'delivery-service', removed: 2 }]);
    expect(await postedSelfUpdate(quinn)).toBeGreaterThan(0);
    expect(quinn.group!.members().map((m) => m.leafIndex)).toEqual([0, 1]);
    await groupStillWorks([quinn, pete], 'pete and quinn stay');
  });
});

describe("a revoked leaf's slot, and Update proposals, SQLite (PROTOCOL §8.5)", () => {
  const start = sqliteServers('paired-mls-revoked-slot-');
  let options: () => Omit<DeliveryServerOptions, 'store'>;
  beforeAll(async () => {
    options = await verifyingServerOptions();
  });

  it("an Add of a client revoked since, taking the slot of a revoked leaf the retry removes, goes in (before: that retry refused revoked-leaf again, the DS's Remove already logged, forever); one the committer adds by value there is unknown-client", async () => {
    const s = await start(options());
    const { pete, quinn, mallory, tag } = await group(s);
    const sock = await dsPeer(s.url, `sock-${tag}`);
    await sock.ds.uploadKeyPackages([await sock.client.createKeyPackage(sock.identity)]);
    // mallory proposes her second client, then revokes both: the retry's Remove of leaf 2 frees the slot sock's Add takes.
    const kp = (await mallory.ds.fetchKeyPackages([sock.name])).get(sock.name)!;
    mallory.seen = await mallory.ds.submit(mallory.group!.id, await mallory.group!.propose({ type: 'add', keyPackage: kp }));
    await sock.ds.revoke();
    await mallory.ds.revoke();
    expect(refusalOf(await postedSelfUpdate(pete))).toEqual(PROPOSED(2));
    expect(await logged(quinn)).toEqual([{ sender: mallory.name }, { sender: 'delivery-service', removed: 2 }]);
    // The retry removes mallory and adds sock at leaf 2: it goes in, sock off the member list, no Welcome for it.
    expect(await postedSelfUpdate(pete)).toBeGreaterThan(0);
    expect(pete.group!.members().map((m) => [m.leafIndex, new TextDecoder().decode(m.credential.identity)])).toEqual([[0, pete.name], [1, quinn.name], [2, sock.name]]);
    expect((await s.ds.store.getGroup(toHex(pete.group!.id)))!.members.sort()).toEqual([pete.name, quinn.name].sort());
    expect(await s.ds.store.countWelcomes(sock.name)).toBe(0);
    // The DS proposed sock's removal in the new epoch; quinn's commit covers it.
    expect((await logged(quinn)).at(-1)).toEqual({ sender: 'delivery-service', removed: 2 });
    expect(await postedSelfUpdate(quinn)).toBeGreaterThan(0);
    expect(quinn.group!.members().map((m) => m.leafIndex)).toEqual([0, 1]);
    await groupStillWorks([pete, quinn], 'sock and mallory gone');
    await groupStillWorks([quinn, pete], 'both ways');

    // By value: ann (quinn's) revoked, pete adds a client revoked since fetched where her leaf goes: his own choice, as before (he drops it).
    const ann = await dsPeer(s.url, `ann-${tag}`);
    await ann.ds.uploadKeyPackages([await ann.client.createKeyPackage(ann.identity)]);
    const annKp = (await quinn.ds.fetchKeyPackages([ann.name])).get(ann.name)!;
    const add = await quinn.group!.commit({ add: [annKp], groupInfo: true });
    quinn.seen = await quinn.ds.submit(quinn.group!.id, add.commit, { groupInfo: add.groupInfo, welcome: add.welcome });
    await quinn.group!.mergePendingCommit();
    await ann.ds.revoke();
    expect(refusalOf(await postedSelfUpdate(pete))).toEqual(PROPOSED(2));
    const sock2 = await dsPeer(s.url, `sock2-${tag}`);
    await sock2.ds.uploadKeyPackages([await sock2.client.createKeyPackage(sock2.identity)]);
    const inline = (await pete.ds.fetchKeyPackages([sock2.name])).get(sock2.name)!;
    await sock2.ds.revoke();
    await catchUp(pete);
    const c = await pete.group!.commit({ add: [inline], groupInfo: true });
    expect(refusalOf(await pete.ds.submit(pete.group!.id, c.commit, { groupInfo: c.groupInfo, welcome: c.welcome }).catch((e) => e))).toEqual({
      reason: 'unknown-client',
      message: 'leaf 2 has a credential the AS does not know (unknown-client)',
      leaves: undefined,
      proposed: undefined,
    });
    await pete.group!.clearPendingCommit();
    expect(await postedSelfUpdate(pete)).toBeGreaterThan(0);
    await groupStillWorks([pete, quinn], 'ann gone');
    await groupStillWorks([quinn, pete], 'both ways again');
  });

  it("a member's Update proposal whose leaf is not its own client's is refused when posted, 403 forbidden: a fresh key, another client of its user (revoked then); before: logged, and every honest commit covering it unknown-client until its committer dropped it", async () => {
    const s = await start(options());
    const { pete, quinn, mallory, tag } = await group(s);
    const post = async (p: DsPeer, message: Uint8Array) => raw(s.url, 'POST', `/v1/groups/${toHex(p.group!.id)}/messages`, { message: b64(message) }, await tokenOf(s.url, p.name, p));
    const updateTo = (p: DsPeer, key: { identity: Uint8Array; signaturePublicKey: Uint8Array }) =>
      p.client.mutate((core) => core.dmlsProposeCredentialUpdate(p.group!.id, key.identity, key.signaturePublicKey));
    const forbidden = { status: 403, body: { error: "an Update proposal's leaf must carry a credential the AS binds to the member it is sent for (forbidden)", reason: 'forbidden' } };
    // A key pair of her own the AS never saw (same identity): free, and no revocation needed.
    expect(await post(mallory, await updateTo(mallory, await mallory.client.createIdentity(mallory.name, 1)))).toEqual(forbidden);
    // A second client of her user, vouched for by her, with her identity: refused too (revoking it later jammed the group).
    const other = await mallory.client.createIdentity(mallory.name, 1);
    await DeliveryClient.register(s.url, { clientId: `mallory2-${tag}`, userId: mallory.name, vouch: mallory.ds, client: mallory.client, identity: other });
    expect(await post(mallory, await updateTo(mallory, other))).toEqual(forbidden);
    expect(await logged(pete)).toEqual([]);
    // An honest Update proposal (its own credential) still goes in, and the next commit covers it.
    quinn.seen = await quinn.ds.submit(quinn.group!.id, await quinn.group!.propose({ type: 'update' }));
    expect(await postedSelfUpdate(pete)).toBeGreaterThan(0);
    await groupStillWorks([pete, quinn, mallory], 'nothing jammed');
    await groupStillWorks([mallory, quinn, pete], 'mallory too');
  });

  it("an Update proposal from another member's leaf is refused when posted, 403 forbidden, even to a credential of the poster's: mallory's second client's leaf moved to a key of mallory's (mallory revoked then); before: logged, and every honest commit covering it unknown-client until its committer dropped it", async () => {
    const s = await start(options());
    const tag = Math.random().toString(36).slice(2, 7);
    const [pete, quinn, mallory] = await Promise.all(['pete', 'quinn', 'mallory'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
    // mallory's second client, vouched for by her, under her identity (a leaf's credential keeps its identity, §8.4:
    // a move to another identity is refused by the client itself before the DS sees it): leaf 3.
    const secondClient = await MlsClient.open();
    const second = { name: `mallory2-${tag}`, client: secondClient, identity: await secondClient.createIdentity(mallory!.name, 1), storage: secondClient.storage };
    const mallory2: DsPeer = { ...second, seen: 0, ds: await DeliveryClient.register(s.url, { clientId: second.name, userId: mallory!.name, vouch: mallory!.ds, client: second.client, identity: second.identity }) };
    await verifiedGroup(pete!, [quinn!, mallory!, mallory2], { extensions: { externalSenders: [s.ds.externalSenderSpec] } });
    // mallory rotates her DS key (leaf 2 keeps the old one, which still names her, §8.4) and hands the new one to her second client.
    const key = await mallory!.client.createIdentity(mallory!.name, 1);
    await mallory!.ds.rotateKey(key);
    await mallory2.client.importIdentity(key.identity, mallory!.client.exportSignatureKeyPair(key), 1);
    // Leaf 3's Update to mallory's new key, signed as leaf 3 (every member takes it), posted by mallory: the leaf's
    // credential is the poster's, the leaf is not.
    const update = await mallory2.client.mutate((core) => core.dmlsProposeCredentialUpdate(mallory2.group!.id, key.identity, key.signaturePublicKey));
    const notHers = { reason: 'forbidden', message: "an Update proposal must come from a leaf of the member it is sent for (forbidden)", leaves: undefined, proposed: undefined };
    expect(refusalOf(await mallory!.ds.submit(mallory!.group!.id, update).catch((e) => e))).toEqual(notHers);
    // Posted by mallory2, whose leaf it is: the leaf's credential is not hers.
    expect(refusalOf(await mallory2.ds.submit(mallory2.group!.id, update).catch((e) => e))).toMatchObject({ reason: 'forbidden', message: "an Update proposal's leaf must carry a credential the AS binds to the member it is sent for (forbidden)" });
    // Her own leaf's Update with the sender index rewritten to pete's (0): refused too (no member took it: not pete's signature).
    const own = await mallory!.group!.propose({ type: 'update' });
    expect(refusalOf(await mallory!.ds.submit(mallory!.group!.id, withSenderLeaf(own, 0)).catch((e) => e))).toEqual(notHers);
    expect(await logged(pete!)).toEqual([]);
    // mallory revokes her client: the DS proposes the Remove of leaf 2 (hers) only; the retry goes in, leaf 3 untouched.
    await mallory!.ds.revoke();
    expect(refusalOf(await postedSelfUpdate(pete!))).toEqual(PROPOSED(2));
    expect(await postedSelfUpdate(pete!)).toBeGreaterThan(0);
    expect(pete!.group!.members().map((m) => m.leafIndex)).toEqual([0, 1, 3]);
    await groupStillWorks([pete!, quinn!, mallory2], 'leaf 3 kept its own client');
    await groupStillWorks([mallory2, quinn!, pete!], 'mallory2 too');
  });
});

describe("DeliveryClient and a hostile DS's revoked-leaf (PROTOCOL §8.2, §8.5)", () => {
  it('a revoked-leaf refusal without leaves (or with leaves that are no leaf indexes, or no proposed flag) is malformed; a well-formed one is a DsError with its leaves and flag', async () => {
    let body: unknown;
    // Answers every request with `body` (a login's first request, the challenge, reads it as any call does).
    const http = createServer((_req, res) => {
      res.writeHead(409, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
    const m = await newMember('reader');
    const answer = (b: unknown) => {
      body = b;
      return DeliveryClient.login(url, { clientId: 'reader', client: m.client, identity: m.identity }).then(
        () => undefined,
        (e: DsError) => ({ reason: e.reason, message: e.message, leaves: e.leaves, proposed: e.proposed }),
      );
    };
    const malformed = { reason: 'malformed', message: 'the DS sent a reply of the wrong shape (malformed)', leaves: undefined, proposed: undefined };
    try {
      for (const bad of [{}, { leaves: [] }, { leaves: [-1], proposed: true }, { leaves: [1.5], proposed: true }, { leaves: [2 ** 32], proposed: true }, { leaves: [2] }, { leaves: [2], proposed: 'yes' }]) {
        expect(await answer({ error: 'x', reason: 'revoked-leaf', ...bad })).toEqual(malformed);
      }
      expect(await answer({ error: 'leaf 2 is of a revoked client (revoked-leaf)', reason: 'revoked-leaf', leaves: [2, 7], proposed: false })).toEqual({ reason: 'revoked-leaf', message: 'leaf 2 is of a revoked client (revoked-leaf)', leaves: [2, 7], proposed: false });
      // Another refusal's fields are not read.
      expect(await answer({ error: 'e', reason: 'epoch-taken', leaves: 'junk' })).toEqual({ reason: 'epoch-taken', message: 'e (epoch-taken)', leaves: undefined, proposed: undefined });
    } finally {
      await new Promise<void>((resolve) => (http.closeAllConnections(), http.close(() => resolve())));
    }
  });
});

describe('a revoked client in a verified group, PostgreSQL (PROTOCOL §8.5)', () => {
  const { open, close } = twoVerifyingServers('PostgreSQL', '');
  variants('PostgreSQL', open, close);
});
