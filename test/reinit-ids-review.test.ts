/**
 * Attacker's review of a ReInit's successor id (docs/PROTOCOL.md §1.6
 * items 1, 4 and 5; §8.3, §8.5), against a real DS on loopback in both
 * modes, on SQLite and on PostgreSQL (a verifying and a default-mode server
 * on one database each). Found, before the fixes:
 *
 * - A member's ReInit may name the id of a group another member holds.
 *   Held outside this DS, every member merged it and the holder's
 *   joinReInitSuccessor failed GROUP_EXISTS only once the Welcome was
 *   processed ("processing welcome: A group with this [`GroupId`] already
 *   exists"), createReInitSuccessor the same ("creating the successor: …"):
 *   the holder is out of the continuation unless it gives the other group
 *   up. Now both refuse first, with a message that says so, and so does
 *   commitReInit of such an id; the member deletes the other group and joins.
 * - Naming a group this DS serves (anyone's), both modes logged the ReInit,
 *   every member retired the group, and the successor could never be
 *   registered (`group-exists`): one member ended the group for all. A
 *   verifying DS now refuses it (`invalid-commit`, nothing logged); the
 *   default mode cannot read it (limit).
 * - Squatting: an outsider registered the successor id first, and the
 *   members' registration was `group-exists` (they did refuse the
 *   squatter's Welcome, REINIT_MISMATCH: it has no reinit PSK). A verifying
 *   DS now reserves the id for the retired group's members in the ReInit
 *   commit's transaction (a default-mode server on its database honours
 *   it): an outsider is `forbidden`. Left: a member registering it first
 *   (limit), and the default mode.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { DeliveryClient, GroupIdTakenError, MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { catchUp, dsPeer, groupOf, groupStillWorks, moveToSuccessor, raw, sqliteServers, tokenOf, type DsPeer } from './ds-helpers.js';
import { mlsError } from './helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

const plaintext = { wireFormat: 'plaintext' as const };
const utf8Bytes = (s: string) => new TextEncoder().encode(s);
const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const HELD = { code: 'GROUP_EXISTS', message: "this client holds another group under the ReInit's successor id" };
const TAKEN = 'the ReInit names a successor group id this DS already has: commit one with another id (invalid-commit)';
const RESERVED = 'this group id is reserved for the successor of a group a ReInit retired: only its members may register it (forbidden)';

/** Two servers on one database: one verifying commits, one in the default mode. */
interface Servers {
  verifying: RunningDeliveryServer;
  basic: RunningDeliveryServer;
  /** Another store on the same database, for the store-level check. */
  store: DeliveryStore;
}

/** Everyone in `peers` reads the group's log (the ReInit) and merges it. */
const readReInit = async (peers: DsPeer[]) => {
  for (const p of peers) await catchUp(p);
  for (const p of peers) expect(p.group!.reinitState()).toBeDefined();
};

function reviews(kind: 'SQLite' | 'PostgreSQL', open: () => Promise<Servers>, close: () => Promise<void>) {
  let servers: Servers;
  beforeAll(async () => {
    servers = await open();
  });
  afterAll(close);

  for (const verifyCommits of [true, false]) {
    const mode = verifyCommits ? 'verified' : 'default';
    const tag = `${kind[0]}${mode[0]}${Math.random().toString(36).slice(2, 7)}`;
    const url = () => (verifyCommits ? servers.verifying : servers.basic).url;
    const peers = (names: string[], test: string) => Promise.all(names.map((n) => dsPeer(url(), `${n}-${test}-${tag}`)));

    describe(`${kind}, ${mode} mode`, () => {
      it('A ReInit naming a group a member holds elsewhere: all merge it; the holder is refused GROUP_EXISTS before the Welcome is read, gives that group up and joins; the successor works both ways', async () => {
        const [alice, mallory, vic] = await peers(['alice', 'mallory', 'vic'], 'held');
        await groupOf(alice!, [mallory!, vic!], { open: true });
        const gid = alice!.group!.id;
        // vic's group H, at another DS or none: this one cannot know it. Its id was shown to mallory.
        const h = await vic!.client.createGroup(vic!.identity, plaintext);
        // The committer's own client refuses to name a group it holds itself.
        const own = await mallory!.client.createGroup(mallory!.identity, plaintext);
        expect(await mlsError(() => mallory!.group!.commitReInit({ ciphersuite: 1, groupId: own.id }))).toMatchObject(HELD);
        const reinit = await mallory!.group!.commitReInit({ ciphersuite: 1, groupId: h.id });
        mallory!.seen = await mallory!.ds.submit(gid, reinit.commit, { groupInfo: reinit.groupInfo });
        await mallory!.group!.mergePendingCommit();
        await readReInit([alice!, vic!]);
        // vic cannot create the successor either (before: "creating the successor: A group with the given GroupId already exists").
        expect(await mlsError(() => vic!.client.createReInitSuccessor(vic!.group!, vic!.identity, []))).toMatchObject(HELD);
        for (const p of [mallory!, vic!]) await p.ds.uploadKeyPackages([await p.client.createKeyPackage(p.identity)]);
        const kps = await alice!.ds.fetchKeyPackages([mallory!.name, vic!.name]);
        const created = await alice!.client.createReInitSuccessor(alice!.group!, alice!.identity, [...kps.values()], plaintext);
        await alice!.ds.createGroup(h.id, { epoch: 0, groupInfo: await created.group.exportGroupInfo() });
        alice!.seen = await alice!.ds.submit(h.id, created.commit, { welcome: created.welcome, added: [mallory!.name, vic!.name], groupInfo: created.groupInfo });
        await created.group.mergePendingCommit();
        alice!.group = created.group;
        // Before: GROUP_EXISTS "processing welcome: A group with this [`GroupId`] already exists".
        const [w] = await vic!.ds.welcomes();
        expect(await mlsError(() => vic!.client.joinReInitSuccessor(vic!.group!, w!.welcome, plaintext))).toMatchObject(HELD);
        // vic chooses the continuation of G: H goes, the same Welcome is joined (nothing of it was used).
        await vic!.client.deleteGroup(h.id);
        vic!.group = (await vic!.client.joinReInitSuccessor(vic!.group!, w!.welcome, plaintext)).group;
        const [wm] = await mallory!.ds.welcomes();
        mallory!.group = (await mallory!.client.joinReInitSuccessor(mallory!.group!, wm!.welcome, plaintext)).group;
        vic!.seen = mallory!.seen = alice!.seen;
        await groupStillWorks([alice!, vic!, mallory!], 'in the successor');
        await groupStillWorks([vic!, alice!, mallory!], 'and back');
      });

      it(
        verifyCommits
          ? "A ReInit naming a group this DS serves (anyone's) is refused invalid-commit, nothing logged; the members then ReInit to a free id and continue"
          : "limit (not fixed): a ReInit naming a group this DS serves is logged and merged, and nobody can register the successor (group-exists)",
        async () => {
          const [alice, mallory, vic, eve] = await peers(['alice', 'mallory', 'vic', 'eve'], 'served');
          await groupOf(alice!, [mallory!, vic!], { open: true });
          const gid = alice!.group!.id;
          const served = await eve!.client.createGroup(eve!.identity, plaintext);
          await eve!.ds.createGroup(served.id, { epoch: 0, groupInfo: await served.exportGroupInfo() });
          const epoch = (await servers.verifying.ds.epoch(gid))!;
          const reinit = await mallory!.group!.commitReInit({ ciphersuite: 1, groupId: served.id });
          if (!verifyCommits) {
            mallory!.seen = await mallory!.ds.submit(gid, reinit.commit, { groupInfo: reinit.groupInfo });
            await mallory!.group!.mergePendingCommit();
            await readReInit([alice!, vic!]);
            const created = await alice!.client.createReInitSuccessor(alice!.group!, alice!.identity, [], plaintext);
            await expect(alice!.ds.createGroup(served.id, { epoch: 0, groupInfo: await created.group.exportGroupInfo() })).rejects.toMatchObject({ reason: 'group-exists', message: 'a group with this id exists (group-exists)' });
            return;
          }
          await expect(mallory!.ds.submit(gid, reinit.commit, { groupInfo: reinit.groupInfo })).rejects.toMatchObject({ name: 'DsError', reason: 'invalid-commit', message: TAKEN });
          expect(await servers.verifying.ds.epoch(gid)).toBe(epoch);
          expect(await alice!.ds.poll(gid, alice!.seen)).toEqual([]);
          await mallory!.group!.clearPendingCommit();
          // The members go on in G, then alice's ReInit to a free id is taken and they continue in its successor.
          await groupStillWorks([vic!, alice!, mallory!], 'still in G');
          const newId = utf8Bytes(`served successor ${tag}`);
          const honest = await alice!.group!.commitReInit({ ciphersuite: 1, groupId: newId });
          alice!.seen = await alice!.ds.submit(gid, honest.commit, { groupInfo: honest.groupInfo });
          await alice!.group!.mergePendingCommit();
          await readReInit([mallory!, vic!]);
          await moveToSuccessor(alice!, [mallory!, vic!], newId, 1);
          await groupStillWorks([alice!, vic!, mallory!], 'in the successor');
          await groupStillWorks([vic!, mallory!, alice!], 'and back');
        },
      );

      it(
        verifyCommits
          ? 'An outsider registering the successor id of a taken ReInit is refused forbidden (also at a default-mode server on the database); the members register it, join and talk; a later ReInit naming it is refused'
          : "limit (not fixed): an outsider registers the successor id first; the members refuse its Welcome (REINIT_MISMATCH) but cannot register theirs (group-exists)",
        async () => {
          const [alice, bob, eve] = await peers(['alice', 'bob', 'eve'], 'squat');
          await groupOf(alice!, [bob!], { open: true });
          const gid = alice!.group!.id;
          const newId = utf8Bytes(`squatted successor ${tag}`);
          const reinit = await alice!.group!.commitReInit({ ciphersuite: 1, groupId: newId });
          alice!.seen = await alice!.ds.submit(gid, reinit.commit, { groupInfo: reinit.groupInfo });
          await alice!.group!.mergePendingCommit();
          await readReInit([bob!]);
          // eve read the id (a member showed it, or the log of a plaintext group she read before): her own group under it.
          const squat = await eve!.client.createGroup(eve!.identity, { ...plaintext, groupId: newId });
          const squatInfo = await squat.exportGroupInfo();
          if (!verifyCommits) {
            await eve!.ds.createGroup(newId, { epoch: 0, groupInfo: squatInfo });
            await bob!.ds.uploadKeyPackages([await bob!.client.createKeyPackage(bob!.identity)]);
            const add = await squat.commit({ add: [...(await eve!.ds.fetchKeyPackages([bob!.name])).values()], groupInfo: true });
            await eve!.ds.submit(newId, add.commit, { welcome: add.welcome, added: [bob!.name], groupInfo: add.groupInfo });
            const [w] = await bob!.ds.welcomes();
            expect(await mlsError(() => bob!.client.joinReInitSuccessor(bob!.group!, w!.welcome, plaintext))).toMatchObject({ code: 'REINIT_MISMATCH', message: "the Welcome does not carry this group's reinit PSK" });
            const created = await alice!.client.createReInitSuccessor(alice!.group!, alice!.identity, [], plaintext);
            await expect(alice!.ds.createGroup(newId, { epoch: 0, groupInfo: await created.group.exportGroupInfo() })).rejects.toMatchObject({ reason: 'group-exists' });
            return;
          }
          // Before: accepted, and alice's registration was group-exists.
          const token = await tokenOf(url(), eve!.name, eve!);
          expect(await raw(url(), 'POST', '/v1/groups', { groupId: b64(newId), epoch: 0, groupInfo: b64(squatInfo) }, token)).toEqual({ status: 403, body: { error: RESERVED, reason: 'forbidden' } });
          // Every DS honours the reservation: the default-mode server on the same database too.
          const there = await dsPeerAt(servers.basic.url, eve!);
          await expect(there.createGroup(newId, { epoch: 0 })).rejects.toMatchObject({ name: 'DsError', reason: 'forbidden', message: RESERVED });
          await expect(eve!.ds.poll(newId)).rejects.toMatchObject({ reason: 'unknown-group' });
          // A ReInit of another group naming the reserved id is refused as any taken id.
          const [carol, dave] = await peers(['carol', 'dave'], 'squat2');
          await groupOf(carol!, [dave!], { open: true });
          const second = await carol!.group!.commitReInit({ ciphersuite: 1, groupId: newId });
          await expect(carol!.ds.submit(carol!.group!.id, second.commit, { groupInfo: second.groupInfo })).rejects.toMatchObject({ reason: 'invalid-commit', message: TAKEN });
          // The members: alice registers it (first come among them); a registration by bob is then group-exists, as before.
          await moveToSuccessor(alice!, [bob!], newId, 1);
          await expect((await dsPeerAt(servers.basic.url, bob!)).createGroup(newId, { epoch: 0 })).rejects.toMatchObject({ reason: 'group-exists' });
          await groupStillWorks([alice!, bob!], 'in the successor');
          await groupStillWorks([bob!, alice!], 'and back');
        },
      );

      if (verifyCommits) {
        it("limit (not fixed): a member of the retired group may register the successor id first, with a group of its own; the others' registration is group-exists", async () => {
          const [alice, bob, mallory] = await peers(['alice', 'bob', 'mallory'], 'member');
          await groupOf(alice!, [bob!, mallory!], { open: true });
          const newId = utf8Bytes(`member-squatted successor ${tag}`);
          const reinit = await alice!.group!.commitReInit({ ciphersuite: 1, groupId: newId });
          alice!.seen = await alice!.ds.submit(alice!.group!.id, reinit.commit, { groupInfo: reinit.groupInfo });
          await alice!.group!.mergePendingCommit();
          await readReInit([bob!, mallory!]);
          // mallory's successor of herself alone is one the others would accept (its Welcome carries the reinit PSK); she sends none.
          const hers = await mallory!.client.createReInitSuccessor(mallory!.group!, mallory!.identity, [], plaintext);
          await mallory!.ds.createGroup(newId, { epoch: 0, groupInfo: await hers.group.exportGroupInfo() });
          const created = await alice!.client.createReInitSuccessor(alice!.group!, alice!.identity, [], plaintext);
          await expect(alice!.ds.createGroup(newId, { epoch: 0, groupInfo: await created.group.exportGroupInfo() })).rejects.toMatchObject({ reason: 'group-exists' });
        });
      }
    });
  }

  it(`${kind}: the reservation is written in the ReInit commit's transaction: an id taken meanwhile refuses the whole commit (GroupIdTakenError), nothing written; a reserved id is claimed once`, () => reservationInTransaction(servers.store));
}

/** The store's side of a reservation (`CommitUpdate.reserve`, `claimReserved`), on `store`. */
async function reservationInTransaction(store: DeliveryStore): Promise<void> {
  const id = (what: string) => toHex(utf8Bytes(`${what} ${Math.random()}`));
  const [gid, taken, free] = [id('store-level'), id('taken'), id('free')];
  expect(await store.insertGroup({ groupId: gid, epoch: 0, members: ['alice'], consistency: 'strong' })).toBe(true);
  expect(await store.insertGroup({ groupId: taken, epoch: 0, members: ['eve'], consistency: 'strong' })).toBe(true);
  const commit = { groupId: gid, sender: 'alice', bytes: new Uint8Array([1, 2, 3]), digest: 'd1' };
  await expect(store.append(commit, { expectEpoch: 0, setEpoch: 1, groupInfo: new Uint8Array(0), reserve: { groupId: taken, members: ['alice'] } })).rejects.toBeInstanceOf(GroupIdTakenError);
  expect(await store.getGroup(gid)).toMatchObject({ epoch: 0 });
  expect(await store.readLog(gid, 0, 10)).toEqual([]);
  // A free id: reserved with the commit; no insert takes it, one claim does.
  expect(await store.append(commit, { expectEpoch: 0, setEpoch: 1, groupInfo: new Uint8Array(0), reserve: { groupId: free, members: ['alice'] } })).toBe(1);
  expect(await store.insertGroup({ groupId: free, epoch: 0, members: ['alice'], consistency: 'strong' })).toBe(false);
  const claim = { groupId: free, epoch: 0, members: ['alice'], consistency: 'strong' as const };
  expect(await store.claimReserved!(claim)).toBe(true);
  expect(await store.claimReserved!(claim)).toBe(false);
  const claimed = await store.getGroup(free);
  expect(claimed).toMatchObject({ epoch: 0, members: ['alice'] });
  expect(claimed!.groupInfo).toBeUndefined();
}

/** `p` logged in at another server (its DeliveryClient there). */
const dsPeerAt = (url: string, p: DsPeer) => DeliveryClient.login(url, { clientId: p.name, client: p.client, identity: p.identity });

it('the memory store keeps a reservation as the database stores do', () => reservationInTransaction(new MemoryDeliveryStore()));

describe('ReInit successor ids at a DS on SQLite (PROTOCOL §1.6, §8.5)', () => {
  const start = sqliteServers('paired-mls-reinit-ids-');
  let store: SqliteDeliveryStore | undefined;
  reviews(
    'SQLite',
    async () => {
      let file = '';
      const verifying = await start({ verifyCommits: true }, (f) => new SqliteDeliveryStore((file = f)));
      const basic = await start({}, () => new SqliteDeliveryStore(file));
      store = new SqliteDeliveryStore(file);
      return { verifying, basic, store };
    },
    async () => store?.close(),
  );
});

describe('ReInit successor ids at a DS on PostgreSQL (PROTOCOL §1.6, §8.5)', () => {
  let pg: PgServer;
  const stores: PostgresDeliveryStore[] = [];
  const running: RunningDeliveryServer[] = [];
  reviews(
    'PostgreSQL',
    async () => {
      pg = await startPostgres();
      for (let i = 0; i < 3; i++) stores.push(await PostgresDeliveryStore.connect(pg.url));
      running.push(await startDeliveryServer({ port: 0, store: stores[0]!, verifyCommits: true }), await startDeliveryServer({ port: 0, store: stores[1]! }));
      return { verifying: running[0]!, basic: running[1]!, store: stores[2]! };
    },
    async () => {
      for (const s of running) await s.close();
      for (const s of stores) await s.close();
      await pg?.stop();
    },
  );
});
