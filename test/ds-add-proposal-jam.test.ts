/**
 * Add proposals that jammed a verified group (docs/PROTOCOL.md §8.5, §8.6):
 * a verifying DS logged a member's PublicMessage Add proposal that it then
 * refused in every commit covering it; honest members queued it (openmls
 * commits every valid pending proposal by reference, a selfUpdate too), and
 * each of their commits was refused until they called clearPendingProposals.
 * Against a real server on loopback, SQLite and PostgreSQL:
 *
 * - the proposal is refused when posted, as the commit refused it: a
 *   KeyPackage the DS handed to no member, one of a client the AS does not
 *   know (never granted), one another member fetched, a client whose inbox
 *   is full (before: logged; each honest commit `not-granted`,
 *   `unknown-client`, `inbox-full`);
 * - the proposer's grant goes to the group with the logged proposal: used
 *   elsewhere meanwhile, it had made the commits covering the proposal
 *   `not-granted` (now that use is refused); and an inbox filled after the
 *   post no longer refuses the commit (it goes in without that Welcome);
 * - an honest Add by reference still works end to end, the Welcome counting
 *   for its proposer, and the grant adds its client once;
 * - the proposed client revoked after the post: the commit goes in, and
 *   the next names the leaf (`revoked-leaf`) for its committer to remove;
 * - not a jam: a proposer that fills its quota after the post.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { DsError } from 'paired-mls/services';
import { PostgresDeliveryStore, startDeliveryServer, type RunningDeliveryServer } from 'paired-mls/server';
import { catchUp, dsPeer, groupStillWorks, raw, sqliteServers, tokenOf, verifiedGroup, type DsPeer } from './ds-helpers.js';
import { newMember } from './helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');
const NOT_GRANTED = { status: 403, body: { error: 'the Add proposal is of a KeyPackage this DS did not hand to its proposer (not-granted)', reason: 'not-granted' } };
const fullInbox = (client: string) => ({ status: 429, body: { error: `${client} has 1 Welcomes waiting; it must take them first (inbox-full)`, reason: 'inbox-full' } });

/** pete's verified group with quinn and mallory; a client `sock` of mallory's with `keyPackages` one-time KeyPackages at the DS. */
async function attackedGroup(url: string, keyPackages = 2) {
  const tag = Math.random().toString(36).slice(2, 7);
  const [pete, quinn, mallory, sock] = await Promise.all(['pete', 'quinn', 'mallory', 'sock'].map((n) => dsPeer(url, `${n}-${tag}`)));
  await verifiedGroup(pete!, [quinn!, mallory!]);
  if (keyPackages > 0) await sock!.ds.uploadKeyPackages(await sock!.client.createKeyPackages(sock!.identity, { count: keyPackages }));
  const token = await tokenOf(url, mallory!.name, mallory!);
  /** mallory posts an Add proposal of `keyPackage`: the raw answer. */
  const proposeAdd = async (keyPackage: Uint8Array) => {
    await catchUp(mallory!);
    const r = await raw(url, 'POST', `/v1/groups/${toHex(pete!.group!.id)}/messages`, { message: b64(await mallory!.group!.propose({ type: 'add', keyPackage })) }, token);
    if (r.status === 200) mallory!.seen = r.body.seq;
    // What the DS refused goes nowhere: mallory's own client drops it as well.
    else await mallory!.group!.clearPendingProposals();
    return r;
  };
  return { pete: pete!, quinn: quinn!, mallory: mallory!, sock: sock!, tag, proposeAdd };
}

/** `p` commits what it has queued (a selfUpdate, with any pending proposal by reference) and merges it. */
async function commitQueued(p: DsPeer): Promise<{ welcome?: Uint8Array }> {
  await catchUp(p);
  const c = await p.group!.selfUpdate({ groupInfo: true });
  p.seen = await p.ds.submit(p.group!.id, c.commit, { groupInfo: c.groupInfo, welcome: c.welcome });
  await p.group!.mergePendingCommit();
  return c;
}

/** A verified group of `p`'s own, adding `keyPackage` inline (its Welcome to that client): the DS's answer. */
async function ownGroupAdding(p: DsPeer, keyPackage: Uint8Array): Promise<number | DsError> {
  const g = await p.client.createGroup(p.identity, { wireFormat: 'plaintext' });
  await p.ds.createGroup(g.id, { epoch: 0, groupInfo: await g.exportGroupInfo() });
  const c = await g.commit({ add: [keyPackage], groupInfo: true });
  return p.ds.submit(g.id, c.commit, { welcome: c.welcome, groupInfo: c.groupInfo }).catch((e: DsError) => e);
}

function variants(kind: string, open: () => Promise<RunningDeliveryServer>, close: () => Promise<void>) {
  let url: string;
  let usage: (client: string) => Promise<number>;
  beforeAll(async () => {
    const s = await open();
    url = s.url;
    usage = async (client) => (await s.ds.store.usage(client)).bytes;
  }, 60_000);
  afterAll(close);

  it(`${kind}: an Add proposal the DS would refuse in a commit is refused when posted (a KeyPackage handed to no member, to another member, of a client the AS does not know, of a full inbox); the honest members' next selfUpdates go through with nothing to drop`, async () => {
    const { pete, quinn, mallory, sock, proposeAdd } = await attackedGroup(url);
    // Before, each was logged (200) and every honest commit covering it refused: not-granted, not-granted, unknown-client, inbox-full.
    expect(await proposeAdd(await sock.client.createKeyPackage(sock.identity))).toEqual(NOT_GRANTED);
    const ghost = await newMember(`ghost-${sock.name}`);
    expect(await proposeAdd(await ghost.client.createKeyPackage(ghost.identity))).toEqual(NOT_GRANTED);
    // One quinn fetched (before: committed on quinn's grant, and its Welcome charged to whoever committed).
    expect(await proposeAdd((await quinn.ds.fetchKeyPackages([sock.name])).get(sock.name)!)).toEqual(NOT_GRANTED);
    // sock's inbox holds its one Welcome (maxPendingWelcomes 1): mallory added it to a group of her own. She asks again: the same KeyPackage, granted anew.
    expect(await ownGroupAdding(mallory, (await mallory.ds.fetchKeyPackages([sock.name])).get(sock.name)!)).toBeGreaterThan(0);
    expect(await proposeAdd((await mallory.ds.fetchKeyPackages([sock.name])).get(sock.name)!)).toEqual(fullInbox(sock.name));
    // Nothing was logged: the honest members commit with nothing queued, no clearPendingProposals.
    for (const p of [pete, quinn]) {
      await catchUp(p);
      expect(p.group!.state().pendingProposals).toBe(0);
      await commitQueued(p);
    }
    await groupStillWorks([pete, quinn, mallory], 'no Add held the group');
  });

  it(`${kind}: the grant goes with the logged proposal (mallory's use of it elsewhere: 403 not-granted), and an inbox filled after the post does not refuse the honest commit, which goes in without that Welcome`, async () => {
    const { pete, quinn, mallory, sock, proposeAdd } = await attackedGroup(url, 3);
    const kp = (await mallory.ds.fetchKeyPackages([sock.name])).get(sock.name)!;
    expect(await proposeAdd(kp)).toMatchObject({ status: 200 });
    // Before: accepted, spending the grant, and every honest commit covering the proposal was not-granted.
    expect(await ownGroupAdding(mallory, kp)).toMatchObject({ reason: 'not-granted', message: expect.stringMatching(/^the commit adds a KeyPackage \([0-9a-f]{16}…\) this DS handed to no member/) });
    // Asked again, the DS hands her the same KeyPackage (her lease) with a grant of her own, which she keeps.
    expect((await mallory.ds.fetchKeyPackages([sock.name])).get(sock.name)).toEqual(kp);
    await mallory.ds.ackKeyPackages([sock.name]);
    // She fills sock's inbox after the post (a Welcome of a group of hers, with another KeyPackage: maxPendingWelcomes 1).
    expect(await ownGroupAdding(mallory, (await mallory.ds.fetchKeyPackages([sock.name])).get(sock.name)!)).toBeGreaterThan(0);
    // Before: inbox-full, until pete dropped the Add. Now pete's selfUpdate adds sock, its Welcome not stored.
    await commitQueued(pete);
    expect((await sock.ds.welcomes()).length).toBe(1);
    expect(pete.group!.state().memberCount).toBe(4);
    await groupStillWorks([quinn, pete, mallory], 'after the Add of a full inbox');
  });

  it(`${kind}: an honest Add by reference (quinn proposes, pete commits) works end to end, its Welcome counting for quinn; the grant adds its client once, and one its epoch's commit did not cover ends with the epoch`, async () => {
    const { pete, quinn, mallory, sock, tag } = await attackedGroup(url, 1);
    const sam = await dsPeer(url, `sam-${tag}`);
    await sam.ds.uploadKeyPackages([await sam.client.createKeyPackage(sam.identity)]);
    const kp = (await quinn.ds.fetchKeyPackages([sam.name])).get(sam.name)!;
    await quinn.ds.ackKeyPackages([sam.name]);
    await catchUp(quinn);
    quinn.seen = await quinn.ds.submit(quinn.group!.id, await quinn.group!.propose({ type: 'add', keyPackage: kp }));
    const quinns = await usage(quinn.name);
    const c = await commitQueued(pete);
    expect(c.welcome).toBeDefined();
    expect(await usage(quinn.name)).toBeGreaterThanOrEqual(quinns + c.welcome!.length);
    const [w] = await sam.ds.welcomes();
    sam.group = await sam.client.joinFromWelcome(w!.welcome, { wireFormat: 'plaintext' });
    await sam.ds.ackWelcomes([w!.id]);
    sam.seen = pete.seen;
    await groupStillWorks([sam, pete, quinn, mallory], 'sam joined by reference');
    // Spent: quinn does not add sam with it again.
    expect(await ownGroupAdding(quinn, kp)).toMatchObject({ reason: 'not-granted' });
    // mallory's Add of sock, which pete's commit does not cover (he drops it): its grant ends with the epoch.
    const other = (await mallory.ds.fetchKeyPackages([sock.name])).get(sock.name)!;
    await catchUp(mallory);
    mallory.seen = await mallory.ds.submit(mallory.group!.id, await mallory.group!.propose({ type: 'add', keyPackage: other }));
    await catchUp(pete);
    await pete.group!.clearPendingProposals();
    await commitQueued(pete);
    await catchUp(mallory);
    const inline = await mallory.group!.commit({ add: [other], groupInfo: true });
    await expect(mallory.ds.submit(mallory.group!.id, inline.commit, { welcome: inline.welcome, groupInfo: inline.groupInfo })).rejects.toMatchObject({ reason: 'not-granted' });
    await mallory.group!.clearPendingCommit();
    await groupStillWorks([pete, quinn, sam, mallory], 'after the epoch');
  });
}

describe('Add proposals a verifying DS refused only in a commit, SQLite (PROTOCOL §8.5)', () => {
  const start = sqliteServers('paired-mls-add-proposal-jam-');
  variants('SQLite', () => start({ verifyCommits: true, maxPendingWelcomes: 1 }), async () => {});

  it('the proposed client revoked after the post: the honest commit covering the Add goes in (no Welcome for it), and the next one, refused revoked-leaf naming the new leaf, removes it in one step; a member that revokes its own client likewise (before: unknown-client until the committer dropped the Add, or removed the leaf by hand)', async () => {
    const s = await start({ verifyCommits: true });
    const { pete, quinn, mallory, sock, proposeAdd } = await attackedGroup(s.url);
    expect(await proposeAdd((await mallory.ds.fetchKeyPackages([sock.name])).get(sock.name)!)).toMatchObject({ status: 200 });
    await sock.ds.revoke();
    await commitQueued(pete);
    expect(await s.ds.store.countWelcomes(sock.name)).toBe(0);
    // This group lists no key of the DS, which cannot propose the Remove itself (test/ds-revoked-leaf: one that can).
    const removeNamed = async (p: DsPeer, leaf: number) => {
      await catchUp(p);
      const u = await p.group!.selfUpdate({ groupInfo: true });
      const err = await p.ds.submit(p.group!.id, u.commit, { groupInfo: u.groupInfo }).catch((e: DsError) => e);
      expect(err).toMatchObject({ reason: 'revoked-leaf', leaves: [leaf], proposed: false, message: expect.stringMatching(new RegExp(`^leaf ${leaf} is of a revoked client: commit its removal`)) });
      await p.group!.clearPendingCommit();
      const rm = await p.group!.commit({ remove: (err as DsError).leaves!, groupInfo: true });
      p.seen = await p.ds.submit(p.group!.id, rm.commit, { groupInfo: rm.groupInfo });
      await p.group!.mergePendingCommit();
    };
    await removeNamed(quinn, 3);
    await groupStillWorks([quinn, pete, mallory], 'without sock');
    await mallory.ds.revoke();
    await removeNamed(quinn, 2);
    await groupStillWorks([pete, quinn], 'without mallory');
  });

  it("not a jam: a proposer that fills its storage quota after the post does not refuse the commit (its Welcome's part counts past its quota: only the committer's is asked); one out of quota cannot post the Add at all", async () => {
    const s = await start({ verifyCommits: true, maxStoredBytesPerClient: 96 * 1024 });
    const { pete, quinn, mallory, sock, proposeAdd } = await attackedGroup(s.url);
    expect(await proposeAdd((await mallory.ds.fetchKeyPackages([sock.name])).get(sock.name)!)).toMatchObject({ status: 200 });
    const own = await mallory.client.createGroup(mallory.identity, { wireFormat: 'plaintext' });
    await mallory.ds.createGroup(own.id, { epoch: 0, groupInfo: await own.exportGroupInfo() });
    for (const size of [4000, 1]) {
      for (;;) {
        const r = await mallory.ds.submit(own.id, await own.encrypt(new Uint8Array(size))).catch((e: DsError) => e);
        if (r instanceof DsError) {
          expect(r.reason).toBe('quota-exceeded');
          break;
        }
      }
    }
    const before = (await s.ds.store.usage(mallory.name)).bytes;
    const c = await commitQueued(pete);
    expect((await s.ds.store.usage(mallory.name)).bytes).toBeGreaterThan(Math.max(before, 96 * 1024));
    expect(c.welcome).toBeDefined();
    expect(await proposeAdd((await mallory.ds.fetchKeyPackages([sock.name])).get(sock.name)!)).toMatchObject({ status: 429, body: { reason: 'quota-exceeded' } });
    await groupStillWorks([pete, quinn], 'after the Welcome past mallory’s quota');
  });
});

describe('Add proposals a verifying DS refused only in a commit, PostgreSQL (PROTOCOL §8.5)', () => {
  let pg: PgServer;
  let store: PostgresDeliveryStore;
  let server: RunningDeliveryServer;
  variants(
    'PostgreSQL',
    async () => {
      pg = await startPostgres();
      store = await PostgresDeliveryStore.connect(pg.url);
      return (server = await startDeliveryServer({ port: 0, store, verifyCommits: true, maxPendingWelcomes: 1 }));
    },
    async () => {
      await server?.close();
      await store?.close();
      await pg?.stop();
    },
  );
});
