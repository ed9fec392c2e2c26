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
 * - limit (not fixed): a member's standalone ReInit proposal naming an id
 *   the DS has goes by reference into every honest member's next commit,
 *   which a verifying DS refuses: the epoch takes no commit until the
 *   committer drops the queued proposal (clearPendingProposals). Before
 *   the DS check the commit was logged and retired the group for good.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createProposal, encodeMlsMessage } from 'ts-mls';
import { toHex } from 'paired-mls';
import { DeliveryService, MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { catchUp, dsPeer, groupOf, groupStillWorks, headerOnly, moveToSuccessor, raw, sqliteServers, tokenOf, upgrade } from './ds-helpers.js';
import { newMember } from './helpers.js';
import { SUITE1, tsLedGroupAtVerifyingDs } from './reinit-ts-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

const utf8Bytes = (s: string) => new TextEncoder().encode(s);
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const NO_GROUP = { status: 404, body: { error: 'no such group (unknown-group)', reason: 'unknown-group' } };
const TAKEN = { accepted: false, reason: 'invalid-commit', message: 'the ReInit names a successor group id this DS already has: commit one with another id (invalid-commit)' };

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
}

describe('a reserved successor id on every route, SQLite (PROTOCOL §1.6 item 7)', () => {
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

describe('a reserved successor id on every route, PostgreSQL (PROTOCOL §1.6 item 7)', () => {
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

it('limit (not fixed): a standalone ReInit proposal naming a group the DS has goes into the next honest commit by reference, which a verifying DS refuses (invalid-commit) until the committer drops the queued proposal; then the group goes on', async () => {
  const pete = await newMember('pete-byref');
  const { ds, t, gid } = await tsLedGroupAtVerifyingDs('mallory-byref', pete);
  const eve = await newMember('eve-byref');
  const taken = await eve.client.createGroup(eve.identity, { wireFormat: 'plaintext' });
  await ds.createGroup(taken.id, 'eve-byref', { groupInfo: await taken.exportGroupInfo() });
  // mallory (ts-mls) proposes a ReInit to eve's id; the DS logs it (a proposal is not verified), pete queues it.
  const p = await createProposal(t.state, true, { proposalType: 'reinit', reinit: { groupId: taken.id, version: 'mls10', cipherSuite: SUITE1, extensions: [] } }, t.cs);
  t.state = p.newState;
  expect(await ds.submit(gid, 'mallory-byref', encodeMlsMessage(p.message))).toMatchObject({ accepted: true });
  expect(await pete.group!.process(encodeMlsMessage(p.message))).toMatchObject({ kind: 'proposal' });
  const epoch = await ds.epoch(gid);
  // Each of pete's commits carries it, and is refused; a retry the same.
  for (let i = 0; i < 2; i++) {
    const update = await pete.group!.selfUpdate({ groupInfo: true });
    expect(await ds.submit(gid, 'pete-byref', update.commit, { groupInfo: update.groupInfo })).toEqual(TAKEN);
    await pete.group!.clearPendingCommit();
  }
  expect(await ds.epoch(gid)).toBe(epoch);
  // Dropping the queued proposal, pete commits; the group is not retired.
  await pete.group!.clearPendingProposals();
  const update = await pete.group!.selfUpdate({ groupInfo: true });
  expect(await ds.submit(gid, 'pete-byref', update.commit, { groupInfo: update.groupInfo })).toMatchObject({ accepted: true });
  await pete.group!.mergePendingCommit();
  expect(pete.group!.reinitState()).toBeUndefined();
  expect(await ds.epoch(gid)).toBe(epoch! + 1);
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
