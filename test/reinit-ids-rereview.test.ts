/**
 * Second attacker's review of a ReInit's successor id at a DS
 * (docs/PROTOCOL.md §1.6 item 7, §8.3, §8.5):
 *
 * - A reserved id (epoch −1, an empty GroupInfo) is no group on any route,
 *   at a verifying server and at a default-mode one on its database, for a
 *   member of the retired group as for an outsider: reading its log, its
 *   GroupInfo or its stream, posting a message, a commit at epoch 0 or an
 *   external join are all refused as for an unknown group (nothing leaks,
 *   nothing is logged); the members then register it and talk.
 * - A member's standalone ReInit proposal (a ts-mls client's), naming an
 *   id the DS has or a free one, and a PrivateMessage proposal are refused
 *   by a verifying DS when posted (403 forbidden), so no honest member
 *   queues them. Before, they were logged; every honest member's next
 *   commit (a selfUpdate too) carried the ReInit by reference and was
 *   refused `invalid-commit` (the id taken) until the committer dropped it
 *   (clearPendingProposals), or retired the group (a free id); a
 *   'mixed-plaintext' member queued the PrivateMessage one, and the DS
 *   refused each of its commits covering it (never logged as one it reads).
 * - An Add proposal of a KeyPackage the DS handed to no member is refused
 *   when posted (403 not-granted). Before, it was logged and each honest
 *   commit covering it refused (not-granted) until its committer dropped it
 *   (the other variants: test/ds-add-proposal-jam).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProposal, decodeMlsMessage, encodeMlsMessage, type KeyPackage } from 'ts-mls';
import { toHex } from 'paired-mls';
import { DeliveryService, MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { catchUp, dsPeer, groupOf, groupStillWorks, headerOnly, moveToSuccessor, raw, sqliteServers, tokenOf, upgrade } from './ds-helpers.js';
import { SUITE1, tsLedGroupAtDs } from './reinit-ts-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

const utf8Bytes = (s: string) => new TextEncoder().encode(s);
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const NO_GROUP = { status: 404, body: { error: 'no such group (unknown-group)', reason: 'unknown-group' } };
const NO_REINIT_PROPOSAL = { status: 403, body: { error: 'a verifying DS takes a ReInit only in a commit of its own (commitReInit), not as a proposal (forbidden)', reason: 'forbidden' } };
const NO_PRIVATE_PROPOSAL = { status: 403, body: { error: 'a verifying DS takes only PublicMessage proposals (forbidden)', reason: 'forbidden' } };

/** Every route of a group, for `token`'s client, on the reserved id `id`: each answers as for no group. */
async function noGroupAnywhere(url: string, id: Uint8Array, token: string): Promise<void> {
  const path = `/v1/groups/${toHex(id)}`;
  expect(await raw(url, 'GET', `${path}/messages`, undefined, token)).toEqual(NO_GROUP);
  expect(await raw(url, 'GET', `${path}/group-info`, undefined, token)).toEqual({ status: 404, body: { error: 'no GroupInfo for this group', reason: 'unknown-group' } });
  // An application message, a proposal, a commit at epoch 0 (the reservation's is −1), and an external join.
  for (const contentType of [1, 2, 3]) expect(await raw(url, 'POST', `${path}/messages`, { message: b64(headerOnly(id, 0, contentType, contentType)) }, token)).toEqual(NO_GROUP);
  expect(await raw(url, 'POST', `${path}/messages`, { message: b64(headerOnly(id, 0, 3, 9, 64, 1)), externalJoin: true }, token)).toEqual(NO_GROUP);
  expect(await upgrade(url, `/v1/stream?group=${toHex(id)}&access_token=${token}`)).toEqual({ status: 403 });
}

function routes(kind: string, open: () => Promise<{ verifying: string; basic: string }>, close: () => Promise<void>) {
  let urls: { verifying: string; basic: string };
  beforeAll(async () => {
    urls = await open();
  });
  afterAll(close);

  it(`${kind}: a reserved successor id is no group on any route, for a member of the retired group and for an outsider, at both servers; the members then register it and talk`, async () => {
    const tag = Math.random().toString(36).slice(2, 7);
    const [alice, bob, eve] = await Promise.all(['alice', 'bob', 'eve'].map((n) => dsPeer(urls.verifying, `${n}-routes-${tag}`)));
    await groupOf(alice!, [bob!], { open: true });
    const newId = utf8Bytes(`reserved ${tag}`);
    const reinit = await alice!.group!.commitReInit({ ciphersuite: 1, groupId: newId });
    alice!.seen = await alice!.ds.submit(alice!.group!.id, reinit.commit, { groupInfo: reinit.groupInfo });
    await alice!.group!.mergePendingCommit();
    await catchUp(bob!);
    for (const url of [urls.verifying, urls.basic]) {
      for (const p of [bob!, eve!]) await noGroupAnywhere(url, newId, await tokenOf(url, p.name, p));
    }
    await moveToSuccessor(alice!, [bob!], newId, 1);
    await groupStillWorks([bob!, alice!], 'in the successor');
  });

  it(`${kind}: a verifying DS refuses a standalone ReInit proposal (to an id it has, or a free one) and a PrivateMessage proposal when posted; the honest members' next commits and messages go through with nothing to drop`, async () => {
    const tag = Math.random().toString(36).slice(2, 7);
    const [pete, quinn, eve] = await Promise.all(['pete', 'quinn', 'eve'].map((n) => dsPeer(urls.verifying, `${n}-byref-${tag}`)));
    const mallory = `mallory-byref-${tag}`;
    // quinn takes PrivateMessage handshakes too ('mixed-plaintext', which verified mode allows): he queued mallory's.
    const { t, gid, signer } = await tsLedGroupAtDs(urls.verifying, mallory, [[pete!, 'plaintext'], [quinn!, 'mixed-plaintext']]);
    eve!.group = await eve!.client.createGroup(eve!.identity, { wireFormat: 'plaintext' });
    await eve!.ds.createGroup(eve!.group.id, { epoch: 0, groupInfo: await eve!.group.exportGroupInfo() });
    const token = await tokenOf(urls.verifying, mallory, signer);
    const post = (message: Uint8Array) => raw(urls.verifying, 'POST', `/v1/groups/${toHex(gid)}/messages`, { message: b64(message) }, token);
    const reinitTo = async (groupId: Uint8Array, publicMessage: boolean) =>
      encodeMlsMessage((await createProposal(t.state, publicMessage, { proposalType: 'reinit', reinit: { groupId, version: 'mls10', cipherSuite: SUITE1, extensions: [] } }, t.cs)).message);
    // Before: each was logged (a proposal was judged by its header) and pete and quinn queued it: each commit of theirs was
    // invalid-commit (the id taken) until they called clearPendingProposals, or (the free id) retired the group.
    for (const id of [eve!.group.id, utf8Bytes(`free ${tag}`)]) expect(await post(await reinitTo(id, true))).toEqual(NO_REINIT_PROPOSAL);
    // A PrivateMessage proposal of any type (a ReInit, a Remove of pete): the DS cannot read it, so no commit covering it verifies.
    expect(await post(await reinitTo(eve!.group.id, false))).toEqual(NO_PRIVATE_PROPOSAL);
    expect(await post(encodeMlsMessage((await createProposal(t.state, false, { proposalType: 'remove', remove: { removed: 1 } }, t.cs)).message))).toEqual(NO_PRIVATE_PROPOSAL);
    // A PublicMessage proposal cut after its content type has no proposal type to read.
    expect(await post(headerOnly(gid, 1, 2, 0, 0, 1).subarray(0, 20 + gid.length))).toEqual({ status: 400, body: { error: 'not an MLS group message (malformed)', reason: 'malformed' } });
    // Nothing was logged: each commits a selfUpdate with nothing queued, then messages cross both ways.
    for (const p of [pete!, quinn!]) {
      await catchUp(p);
      expect(p.group!.state().pendingProposals).toBe(0);
      const update = await p.group!.selfUpdate({ groupInfo: true });
      p.seen = await p.ds.submit(gid, update.commit, { groupInfo: update.groupInfo });
      await p.group!.mergePendingCommit();
      expect(p.group!.reinitState()).toBeUndefined();
    }
    await groupStillWorks([pete!, quinn!], 'no proposal held the group');
    await groupStillWorks([quinn!, pete!], 'and back');
  });
}

describe('a reserved successor id on every route, and the proposals a verifying DS refuses when posted, SQLite (PROTOCOL §1.6 item 7)', () => {
  const start = sqliteServers('paired-mls-reinit-ids-rereview-');
  routes(
    'SQLite',
    async () => {
      let file = '';
      const verifying = await start({ verifyCommits: true }, (f) => new SqliteDeliveryStore((file = f)));
      const basic = await start({}, () => new SqliteDeliveryStore(file));
      return { verifying: verifying.url, basic: basic.url };
    },
    async () => {},
  );
});

describe('a reserved successor id on every route, and the proposals a verifying DS refuses when posted, PostgreSQL (PROTOCOL §1.6 item 7)', () => {
  let pg: PgServer;
  const stores: PostgresDeliveryStore[] = [];
  const running: RunningDeliveryServer[] = [];
  routes(
    'PostgreSQL',
    async () => {
      pg = await startPostgres();
      for (let i = 0; i < 2; i++) stores.push(await PostgresDeliveryStore.connect(pg.url));
      running.push(await startDeliveryServer({ port: 0, store: stores[0]!, verifyCommits: true }), await startDeliveryServer({ port: 0, store: stores[1]! }));
      return { verifying: running[0]!.url, basic: running[1]!.url };
    },
    async () => {
      for (const s of running) await s.close();
      for (const s of stores) await s.close();
      await pg?.stop();
    },
  );
});

describe('an Add proposal the verifying DS would refuse in a commit (PROTOCOL §8.5)', () => {
  const start = sqliteServers('paired-mls-reinit-ids-rereview-add-');
  it("an Add proposal of a KeyPackage the DS handed to no member is refused when posted (403 not-granted); the honest members' next selfUpdate goes through with nothing to drop", async () => {
    const s = await start({ verifyCommits: true });
    const tag = Math.random().toString(36).slice(2, 7);
    const [pete, quinn, sock] = await Promise.all(['pete', 'quinn', 'sock'].map((n) => dsPeer(s.url, `${n}-add-${tag}`)));
    const { t, gid, signer } = await tsLedGroupAtDs(s.url, `mallory-add-${tag}`, [[pete!, 'plaintext'], [quinn!, 'plaintext']]);
    // mallory's own sock puppet's KeyPackage, never fetched from the DS, proposed through mallory's DS account.
    const keyPackage = (decodeMlsMessage(await sock!.client.createKeyPackage(sock!.identity), 0)![0] as { keyPackage: KeyPackage }).keyPackage;
    const add = encodeMlsMessage((await createProposal(t.state, true, { proposalType: 'add', add: { keyPackage } }, t.cs)).message);
    // Before: logged, and each of pete's commits covering it was refused (not-granted) until he called clearPendingProposals.
    const token = await tokenOf(s.url, `mallory-add-${tag}`, signer);
    expect(await raw(s.url, 'POST', `/v1/groups/${toHex(gid)}/messages`, { message: b64(add) }, token)).toEqual({
      status: 403,
      body: { error: 'the Add proposal is of a KeyPackage this DS did not hand to its proposer (not-granted)', reason: 'not-granted' },
    });
    await catchUp(pete!);
    expect(pete!.group!.state().pendingProposals).toBe(0);
    const update = await pete!.group!.selfUpdate({ groupInfo: true });
    pete!.seen = await pete!.ds.submit(gid, update.commit, { groupInfo: update.groupInfo });
    await pete!.group!.mergePendingCommit();
    await groupStillWorks([pete!, quinn!], 'no Add held the group');
  });
});

it("a store without claimReserved (another package's) sharing a database with reservations: a member's registration of a reserved id is group-exists, as at an earlier release, not a TypeError (500)", async () => {
  const inner = new MemoryDeliveryStore();
  // Its own methods, less claimReserved: a store that reads reservations other servers made but cannot claim one.
  const store = new Proxy(inner, { get: (s, k) => (k === 'claimReserved' ? undefined : typeof Reflect.get(s, k) === 'function' ? Reflect.get(s, k).bind(s) : Reflect.get(s, k)) }) as DeliveryStore;
  const [gid, x] = [utf8Bytes('retired by a ReInit'), utf8Bytes('its successor')];
  expect(await inner.insertGroup({ groupId: toHex(gid), epoch: 0, members: ['alice'], consistency: 'strong' })).toBe(true);
  await inner.append({ groupId: toHex(gid), sender: 'alice', bytes: new Uint8Array([1]), digest: 'd' }, { expectEpoch: 0, setEpoch: 1, groupInfo: new Uint8Array(0), reserve: { groupId: toHex(x), members: ['alice', 'bob'] } });
  const ds = await DeliveryService.create({ store });
  // Before: TypeError "this.store.claimReserved is not a function".
  await expect(ds.createGroup(x, 'bob')).rejects.toMatchObject({ name: 'DsError', reason: 'group-exists', message: 'a group with this id exists (group-exists)' });
  await expect(ds.createGroup(x, 'eve')).rejects.toMatchObject({ reason: 'forbidden' });
  await ds.createGroup(utf8Bytes('another id'), 'bob');
});
