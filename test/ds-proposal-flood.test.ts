/**
 * A member floods its group's epoch with proposals (docs/PROTOCOL.md §8.6,
 * docs/ENGINE.md change 37).
 *
 * Before: the DS logged every proposal a member posted (only its storage
 * quota bounded them), and two things followed.
 * - On a verifying DS a commit reads the epoch's first page of proposals
 *   only: a member that posted a page of them early in the epoch made every
 *   commit covering a later, honest proposal `invalid-commit`.
 * - Every member's client stored them all, and a committer spent a time
 *   cubic in their number leaving out those no commit can carry: a thousand
 *   conflicting Adds (KeyPackages that share one signature key) made a
 *   commit take 4 s, three thousand 103 s.
 * Now an epoch holds no more proposals than a verified commit reads:
 * members' are refused past seven eighths of the page (`too-many-proposals`,
 * 409), the DS's own LeafOperationProposals keep the last eighth, and a
 * commit begins the next epoch with none. Each store counts them in the
 * transaction that logs them, so servers sharing a database cannot each
 * pass their own.
 *
 * Then: one member could still take all of those seven eighths again after
 * every commit, and the others' proposals were refused. Now each member
 * (with its paired devices) may hold an equal share of them (rounded down),
 * never less than 1/32.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { utf8 } from 'paired-mls';
import { commitIntents, createIntent, LEAF_OPERATION_PROPOSAL_TYPE } from 'paired-mls/intents';
import { DeliveryService, EpochProposalsFullError, MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { DS_SCHEMA_VERSION, PostgresDeliveryStore, SqliteDeliveryStore } from 'paired-mls/server';
import { catchUpAll, dsPeer, headerOnly, groupStillWorks, raw, sqliteServers, tokenOf, verifiedGroup, type DsPeer } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

const CAPS = { proposals: [LEAF_OPERATION_PROPOSAL_TYPE] };
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

/** A verifying DS's group of `creator` and `others` with intents allowed and the DS an external sender. */
const intentGroup = (s: { ds: { externalSenderSpec: { identity: Uint8Array; signatureKey: Uint8Array } } }, creator: DsPeer, others: DsPeer[]) =>
  verifiedGroup(creator, others, { capabilities: CAPS, extensions: { externalSenders: [s.ds.externalSenderSpec], requiredCapabilities: CAPS } });

/** The reason `p` is refused with, or undefined when it succeeds. */
const refusal = (p: Promise<unknown>) => p.then(
  () => undefined,
  (e: unknown) => (e as { reason?: string }).reason ?? String(e),
);

describe('a member floods an epoch with proposals (networked DS, SQLite, verifying)', () => {
  const server = sqliteServers('paired-mls-flood-');
  const tag = Math.random().toString(36).slice(2, 8);

  it("one member takes at most its share (a quarter of the members' 438 in a group of four, rounded down: 109; 409 too-many-proposals), the others' proposals still go in, each up to its own share, the DS's own intent still fits, the commit taking them all verifies and leaves out every conflicting Add, and the next epoch takes proposals again", async () => {
    const s = await server({ verifyCommits: true, keyPackageRate: [1000, 1000] });
    const [alice, bob, carol, mallory] = await Promise.all(['alice', 'bob', 'carol', 'mallory'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
    await intentGroup(s, alice!, [bob!, carol!, mallory!]);
    const gid = alice!.group!.id;
    const hex = Buffer.from(gid).toString('hex');
    for (const p of [alice!, bob!, carol!, mallory!]) await p.ds.uploadKeyPackages([await p.client.createKeyPackage(p.identity, { capabilities: CAPS, lastResort: true })]);
    /**
     * `p`'s KeyPackage fetched from the DS, anew for each proposal: a verifying DS takes an Add proposal only of a KeyPackage
     * it handed to the proposer, and the proposal takes that grant (docs/PROTOCOL.md §8.5).
     */
    const own = async (p: DsPeer) => (await p.ds.fetchKeyPackages([p.name])).get(p.name)!;
    let posted = 0;
    /** `p` posts `n` Add proposals of a KeyPackage of its own signature key (told apart by their aad): every one valid alone, none committable (its key is in the tree already); the answers. */
    const addsOwn = async (p: DsPeer, n: number) => {
      const answers: (string | undefined)[] = [];
      for (let i = 0; i < n; i++) {
        const add = await p.group!.propose({ type: 'add', keyPackage: await own(p) }, { aad: new TextEncoder().encode(`${++posted}`) });
        answers.push(await refusal(p.ds.submit(gid, add)));
      }
      await p.group!.clearPendingProposals();
      return answers;
    };
    // mallory floods: 109 of her Adds go in, then her share is full.
    expect(await addsOwn(mallory!, 111)).toEqual([...Array<undefined>(109).fill(undefined), 'too-many-proposals', 'too-many-proposals']);
    // Over HTTP: 409, with whose share it is; nothing logged.
    const token = await tokenOf(s.url, mallory!.name, mallory!);
    const one = await mallory!.group!.propose({ type: 'add', keyPackage: await own(mallory!) }, { aad: new TextEncoder().encode('one') });
    await mallory!.group!.clearPendingProposals();
    const before = (await s.ds.store.readLog(hex, 0, 1000)).length;
    expect(await raw(s.url, 'POST', `/v1/groups/${hex}/messages`, { message: b64(one) }, token)).toMatchObject({
      status: 409,
      body: { reason: 'too-many-proposals', error: `${mallory!.name} holds its share of the proposals of group ${hex}'s epoch; commit first (too-many-proposals)` },
    });
    expect((await s.ds.store.readLog(hex, 0, 1000)).length).toBe(before);
    // Before, mallory's flood took the whole members' part (438), and bob's
    // honest proposals were refused until the next commit. Now they go in.
    expect(await addsOwn(bob!, 108)).toEqual(Array<undefined>(108).fill(undefined));
    await refusal(bob!.ds.submit(gid, await bob!.group!.propose({ type: 'update' }))).then((r) => expect(r).toBeUndefined());
    // Four shares of 109 fit in the members' 438: carol's and alice's are
    // whole too, whatever mallory did.
    expect(await addsOwn(carol!, 109)).toEqual(Array<undefined>(109).fill(undefined));
    expect(await addsOwn(alice!, 110)).toEqual([...Array<undefined>(109).fill(undefined), 'too-many-proposals']);
    // The DS's own proposals keep the page's last eighth: carol's leave intent is proposed.
    await s.ds.proposeIntent(gid, createIntent(carol!.group!, 'senderRemovalOnly'));
    for (const p of [alice!, bob!, carol!, mallory!]) await catchUpAll(p);
    // Each skips its own: alice holds mallory's, bob's and carol's, and the intent.
    expect(alice!.group!.state().pendingProposals).toBe(109 + 109 + 109 + 1);
    // alice's commit takes the store: the Adds are left out, bob's update
    // and carol's intent are committed, and the DS verifies it (before: a
    // flood of a page made this commit invalid-commit).
    const c = await commitIntents(alice!.group!, [], { commit: { groupInfo: true } });
    alice!.seen = await alice!.ds.submit(gid, c.commit, { groupInfo: c.groupInfo });
    await alice!.group!.mergePendingCommit();
    const names = (p: DsPeer) => p.group!.members().map((m) => utf8(m.credential.identity)).sort();
    expect(names(alice!)).toEqual([alice!.name, bob!.name, mallory!.name].sort());
    expect(await s.ds.isReader(gid, carol!.name)).toBe(false);
    for (const p of [bob!, mallory!]) await catchUpAll(p);
    expect(names(bob!)).toEqual(names(alice!));
    // A new epoch holds no proposals: mallory's share starts again.
    mallory!.seen = await mallory!.ds.submit(gid, await mallory!.group!.propose({ type: 'update' }));
    await catchUpAll(alice!);
    const next = await alice!.group!.commit({ groupInfo: true });
    alice!.seen = await alice!.ds.submit(gid, next.commit, { groupInfo: next.groupInfo });
    await alice!.group!.mergePendingCommit();
    await groupStillWorks([alice!, bob!, mallory!], 'after the flood');
  });
});


describe('the count belongs to an epoch (attacker review)', () => {
  it("an eventual group: a member's stale junk commit (accepted, the epoch stays) no longer starts the count again; one that moves the DS's epoch does", async () => {
    const ds = await DeliveryService.create();
    const gid = new Uint8Array([9, 9, 9, 1]);
    const hex = '09090901';
    await ds.createGroup(gid, 'alice', { consistency: 'eventual' });
    expect(await ds.submit(gid, 'alice', headerOnly(gid, 0, 3, 0), { added: ['mallory'] })).toMatchObject({ accepted: true });
    let n = 1;
    const flood = async (count: number, epoch: number) => {
      const reasons: (string | undefined)[] = [];
      for (let i = 0; i < count; i++) {
        const r = await ds.submit(gid, 'mallory', headerOnly(gid, epoch, 2, n++));
        reasons.push(r.accepted ? undefined : r.reason);
      }
      return reasons;
    };
    // mallory's share of two members' 438.
    expect(await flood(220, 1)).toEqual([...Array<undefined>(219).fill(undefined), 'too-many-proposals']);
    // Before: this junk commit for epoch 0 cleared the count, and 219 more went in, again and again.
    expect(await ds.submit(gid, 'mallory', headerOnly(gid, 0, 3, n++))).toMatchObject({ accepted: true });
    expect((await ds.store.getGroup(hex))!.epoch).toBe(1);
    expect(await flood(1, 1)).toEqual(['too-many-proposals']);
    // Any member of an eventual group can move the DS's epoch (docs/PROTOCOL.md §8.6): the count is then the new epoch's.
    expect(await ds.submit(gid, 'mallory', headerOnly(gid, 1, 3, n++))).toMatchObject({ accepted: true });
    expect((await ds.store.getGroup(hex))!.epoch).toBe(2);
    expect(await flood(1, 2)).toEqual([undefined]);
  });
});

/** A memory store whose appends of `held` senders wait for `release()` once `arm()`ed: a commit can move the epoch while a proposal is on its way. */
class GatedStore extends MemoryDeliveryStore {
  #gate: Promise<void> | undefined;
  #open: () => void = () => undefined;
  #arrived: () => void = () => undefined;
  /** Resolves when a held append waits at the gate. */
  reached: Promise<void> = Promise.resolve();
  constructor(private readonly held: string) {
    super();
  }
  arm(): void {
    this.#gate = new Promise((resolve) => (this.#open = resolve));
    this.reached = new Promise((resolve) => (this.#arrived = resolve));
  }
  release(): void {
    this.#gate = undefined;
    this.#open();
  }
  override async append(...args: Parameters<MemoryDeliveryStore['append']>): ReturnType<MemoryDeliveryStore['append']> {
    const gate = this.#gate;
    if (gate && args[0].sender === this.held) {
      this.#arrived();
      await gate;
    }
    return super.append(...args);
  }
}

describe('a proposal is counted in the epoch it was made for (attacker review)', () => {
  it("one on its way while a commit moves the group (and grows its member list) is refused as stale, nothing logged: it was logged and counted in the next epoch, against a share of the old member list", async () => {
    const store = new GatedStore('mallory');
    const ds = await DeliveryService.create({ store });
    const gid = new Uint8Array([9, 9, 7, 1]);
    const hex = '09090701';
    await ds.createGroup(gid, 'alice');
    expect(await ds.submit(gid, 'alice', headerOnly(gid, 0, 3, 0), { added: ['mallory'] })).toMatchObject({ accepted: true });
    store.arm();
    const late = ds.submit(gid, 'mallory', headerOnly(gid, 1, 2, 1));
    await store.reached;
    // alice's commit adds 62 clients (the share is 13 of 64 now) and moves the epoch.
    const added = Array.from({ length: 62 }, (_, i) => `m${i}`);
    expect(await ds.submit(gid, 'alice', headerOnly(gid, 1, 3, 2), { added })).toMatchObject({ accepted: true });
    const logged = (await store.readLog(hex, 0, 100)).length;
    store.release();
    expect(await late).toEqual({ accepted: false, reason: 'stale', message: 'a proposal for epoch 1; the group has moved past it (stale)' });
    expect((await store.readLog(hex, 0, 100)).length).toBe(logged);
    // mallory's share of epoch 2 is whole: 13 (the floor of 438 / 32), then too-many-proposals.
    const answers = [];
    for (let i = 0; i < 14; i++) answers.push((await ds.submit(gid, 'mallory', headerOnly(gid, 2, 2, 10 + i))).accepted);
    expect(answers).toEqual([...Array<boolean>(13).fill(true), false]);
  });
});

describe("the members' share of a small page (attacker review)", () => {
  it('pageSize 1 is refused (the DS would keep nothing of its own); of 2 members get 1, of 9 they get 8; pageBytes the same way', async () => {
    await expect(DeliveryService.create({ pageSize: 1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: 'pageSize and pageBytes must be at least 2' });
    await expect(DeliveryService.create({ pageBytes: 1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    for (const [pageSize, share] of [[2, 1], [9, 8]] as const) {
      const ds = await DeliveryService.create({ pageSize });
      const gid = new Uint8Array([9, 9, 9, pageSize]);
      await ds.createGroup(gid, 'mallory');
      const answers = [];
      for (let i = 0; i <= share; i++) answers.push((await ds.submit(gid, 'mallory', headerOnly(gid, 0, 2, i))).accepted);
      expect(answers).toEqual([...Array<boolean>(share).fill(true), false]);
    }
    // pageBytes 64: members' proposals up to 56 bytes in all.
    const ds = await DeliveryService.create({ pageBytes: 64 });
    const gid = new Uint8Array([9, 9, 8, 1]);
    await ds.createGroup(gid, 'mallory');
    expect(await ds.submit(gid, 'mallory', headerOnly(gid, 0, 2, 1, 57))).toMatchObject({ accepted: false, reason: 'too-many-proposals' });
    expect(await ds.submit(gid, 'mallory', headerOnly(gid, 0, 2, 1, 56))).toMatchObject({ accepted: true });
  });
});

describe('a large first proposal (networked DS, SQLite, verifying, maxBodyBytes 16 MiB)', () => {
  const server = sqliteServers('paired-mls-flood-large-');
  const tag = Math.random().toString(36).slice(2, 8);
  it("is refused past its member's share like any other (a 7 MiB one held back the DS's own proposals: carol's leave intent was too-many-proposals); the intent is proposed and committed", async () => {
    const s = await server({ verifyCommits: true, maxBodyBytes: 16 * 1024 * 1024 });
    const [alice, carol, mallory] = await Promise.all(['alice', 'carol', 'mallory'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
    await intentGroup(s, alice!, [carol!, mallory!]);
    const gid = alice!.group!.id;
    // A third of the members' 7 MiB, rounded down: 2,446,677 bytes.
    const share = Math.floor((7 * 1024 * 1024) / 3);
    const junk = headerOnly(gid, alice!.group!.epoch, 2, 5, 7 * 1024 * 1024, 1);
    expect(await refusal(mallory!.ds.submit(gid, junk))).toBe('too-many-proposals');
    expect(await refusal(mallory!.ds.submit(gid, junk.subarray(0, share + 1)))).toBe('too-many-proposals');
    expect(await refusal(mallory!.ds.submit(gid, junk.subarray(0, share)))).toBeUndefined();
    await s.ds.proposeIntent(gid, createIntent(carol!.group!, 'senderRemovalOnly'));
    // alice reads the epoch: the junk is refused by her client, the intent is pending.
    const logged = await alice!.ds.poll(gid, alice!.seen);
    expect(logged.map((m) => m.sender)).toEqual([mallory!.name, 'delivery-service']);
    await expect(alice!.group!.process(logged[0]!.message)).rejects.toMatchObject({ code: 'MALFORMED', message: 'malformed MLS message: TrailingData' });
    expect((await alice!.group!.process(logged[1]!.message)).kind).toBe('proposal');
    alice!.seen = logged[1]!.seq;
    const c = await commitIntents(alice!.group!, [], { commit: { groupInfo: true } });
    alice!.seen = await alice!.ds.submit(gid, c.commit, { groupInfo: c.groupInfo });
    await alice!.group!.mergePendingCommit();
    expect(await s.ds.isReader(gid, carol!.name)).toBe(false);
    await groupStillWorks([alice!, mallory!], 'after the large proposal');
  });
});

/** `n` appends at once of `size`-byte proposals to group `g`, spread over `stores`, within a budget of 5 and 1,000 bytes; returns how many were refused (each EpochProposalsFullError). */
async function floodStore(stores: DeliveryStore[], g: string, n: number, size = 100): Promise<number> {
  const budget = { count: 5, bytes: 1000 };
  const answers = await Promise.allSettled(
    Array.from({ length: n }, (_, i) => stores[i % stores.length]!.append({ groupId: g, sender: 'mallory', bytes: new Uint8Array(size).fill(i + 1), digest: `${g}-${i}-${Math.random()}` }, undefined, undefined, budget)),
  );
  for (const a of answers) if (a.status === 'rejected') expect(a.reason).toBeInstanceOf(EpochProposalsFullError);
  return answers.filter((a) => a.status === 'rejected').length;
}

/** The budget's rules on `stores` (one store, or several on one database, racing). */
async function budgetRules(stores: DeliveryStore[]): Promise<void> {
  const g = `g${Math.random().toString(36).slice(2, 8)}`;
  const [store] = stores as [DeliveryStore];
  const budget = { count: 5, bytes: 1000 };
  const message = (sender: string, bytes: Uint8Array, digest?: string) => ({ groupId: g, sender, bytes, digest });
  const commit = (epoch: number) => store.append(message('alice', new Uint8Array(10)), { expectEpoch: epoch, setEpoch: epoch + 1 });
  expect(await store.insertGroup({ groupId: g, epoch: 0, members: ['alice', 'mallory'], consistency: 'strong' })).toBe(true);
  expect(await store.append(message('mallory', new Uint8Array(100), 'first'), undefined, undefined, budget)).toBe(1);
  // Twelve more at once, spread over the stores: exactly 4 logged.
  expect(await floodStore(stores, g, 12)).toBe(8);
  expect(await store.readLog(g, 0, 100)).toHaveLength(5);
  // The same bytes posted again get their first answer; application messages never count.
  expect(await store.append(message('mallory', new Uint8Array(100), 'first'), undefined, undefined, budget)).toBe(1);
  expect(await store.append(message('alice', new Uint8Array(10)))).toBe(6);
  // A commit that leaves the epoch where it is (an eventual group's stale one) starts nothing.
  expect(await store.append(message('alice', new Uint8Array(10)), { expectEpoch: 0, setEpoch: 0 })).toBe(7);
  expect(await floodStore(stores, g, 1)).toBe(1);
  // One that moves it does: 5 more fit.
  expect(await commit(0)).toBe(8);
  expect(await floodStore(stores, g, 6)).toBe(1);
  // Bytes: a proposal larger than the budget is refused, also as the epoch's first.
  expect(await commit(1)).toBe(14);
  expect(await floodStore(stores, g, 1, 2000)).toBe(1);
  // Three of 400 bytes: the third would take the epoch's 1,200 past 1,000.
  expect(await floodStore(stores, g, 3, 400)).toBe(1);
  expect(await store.readLog(g, 14, 100)).toHaveLength(2);
}

/**
 * A member's share on `stores` (one store, or several on one database,
 * racing), within an epoch's budget of 5 and 1,000 bytes and a share of 2
 * and 500 bytes: its paired device's proposals count for it, another
 * member's do not, the epoch's count still holds, and only a commit that
 * moves the epoch starts the shares again.
 */
async function shareRules(stores: DeliveryStore[]): Promise<void> {
  const g = `g${Math.random().toString(36).slice(2, 8)}`;
  const [store] = stores as [DeliveryStore];
  let n = 0;
  const post = (sender: string, member: string, size = 100) =>
    stores[n % stores.length]!.append({ groupId: g, sender, bytes: new Uint8Array(size).fill(++n & 255), digest: `${g}-${n}-${Math.random()}` }, undefined, undefined, {
      count: 5,
      bytes: 1000,
      member: { id: member, count: 2, bytes: 500 },
    });
  /** What became of a post: 'ok', or the refusal's scope and member. */
  const outcome = (a: PromiseSettledResult<unknown>) => {
    if (a.status === 'fulfilled') return 'ok';
    expect(a.reason).toBeInstanceOf(EpochProposalsFullError);
    const e = a.reason as EpochProposalsFullError;
    return `${e.scope}${e.memberId === undefined ? '' : ` ${e.memberId}`}`;
  };
  /** The posts one after the other. */
  const inTurn = async (...posts: (() => Promise<unknown>)[]) => {
    const out: string[] = [];
    for (const p of posts) out.push(outcome((await Promise.allSettled([p()]))[0]!));
    return out;
  };
  const commit = (from: number, to: number) => store.append({ groupId: g, sender: 'alice', bytes: new Uint8Array(10) }, { expectEpoch: from, setEpoch: to });
  expect(await store.insertGroup({ groupId: g, epoch: 0, members: ['alice', 'bob', 'carol', 'mallory'], consistency: 'strong' })).toBe(true);
  // Twelve at once from mallory and her paired device, over the stores: exactly 2 logged.
  const flood = (await Promise.allSettled(Array.from({ length: 12 }, (_, i) => post(i % 2 ? 'mallory' : 'mallory-phone', 'mallory')))).map(outcome);
  expect(flood.filter((o) => o === 'ok')).toHaveLength(2);
  expect(flood.filter((o) => o === 'member mallory')).toHaveLength(10);
  // bob's and carol's go in until the epoch holds 5; then the epoch's refusal, within carol's share.
  expect(await inTurn(() => post('bob', 'bob'), () => post('bob', 'bob'), () => post('carol', 'carol'), () => post('carol', 'carol'))).toEqual(['ok', 'ok', 'ok', 'epoch']);
  expect(await store.readLog(g, 0, 100)).toHaveLength(5);
  // A commit that leaves the epoch where it is (an eventual group's stale one) starts nothing.
  expect(await commit(0, 0)).toBe(6);
  expect(await inTurn(() => post('mallory', 'mallory'), () => post('alice', 'alice'))).toEqual(['member mallory', 'epoch']);
  // One that moves it starts both: mallory's 2 again, not 3.
  expect(await commit(0, 1)).toBe(7);
  expect(await inTurn(() => post('mallory', 'mallory'), () => post('mallory-phone', 'mallory'), () => post('mallory', 'mallory'))).toEqual(['ok', 'ok', 'member mallory']);
  // Bytes: bob's 300 and 300 would take his share past 500; 300 and 200 fit.
  expect(await commit(1, 2)).toBe(10);
  expect(await inTurn(() => post('bob', 'bob', 300), () => post('bob', 'bob', 300), () => post('bob', 'bob', 200))).toEqual(['ok', 'member bob', 'ok']);
  // Within alice's share but past the epoch's 1,000 bytes: the epoch's refusal.
  expect(await inTurn(() => post('carol', 'carol', 400), () => post('alice', 'alice', 200), () => post('alice', 'alice', 100))).toEqual(['ok', 'epoch', 'ok']);
  expect(await store.readLog(g, 10, 100)).toHaveLength(4);
}

/**
 * The DS's own proposals on `stores` are counted apart, under its name
 * (re-review): they used to share the members' count, so each intent the DS
 * proposed took a slot of the members' part and cut into a member's share.
 */
async function dsApartRules(stores: DeliveryStore[]): Promise<void> {
  const g = `g${Math.random().toString(36).slice(2, 8)}`;
  const [store] = stores as [DeliveryStore];
  let n = 0;
  const post = (sender: string, budget: Parameters<DeliveryStore['append']>[3]) =>
    stores[n % stores.length]!.append({ groupId: g, sender, bytes: new Uint8Array(50).fill(++n & 255), digest: `${g}-${n}-${Math.random()}` }, undefined, undefined, budget).then(
      () => 'ok',
      (e: EpochProposalsFullError) => `${e.scope}${e.memberId === undefined ? '' : ` ${e.memberId}`}`,
    );
  // A members' part of 4, two members with shares of 2; the DS's own: 1.
  const member = (id: string) => post(id, { count: 4, bytes: 1000, member: { id, count: 2, bytes: 500 }, epoch: 0 });
  const own = () => post('delivery-service', { member: { id: 'delivery-service', count: 1, bytes: 100 }, epoch: 0 });
  expect(await store.insertGroup({ groupId: g, epoch: 0, members: ['alice', 'bob'], consistency: 'strong' })).toBe(true);
  const answers = [];
  for (const p of [own, () => member('bob'), () => member('bob'), () => member('alice'), () => member('alice'), own]) answers.push(await p());
  // Before: alice's second was the epoch's refusal, the DS's intent holding one of the members' 4.
  expect(answers).toEqual(['ok', 'ok', 'ok', 'ok', 'ok', 'member delivery-service']);
  expect(await store.readLog(g, 0, 100)).toHaveLength(5);
}

describe("SQLite's synchronous = COMMITS (PROTOCOL §8.1 audit)", () => {
  it('relaxes application messages only: a proposal, which a commit may cover by reference, is synced like a commit', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-flood-sync-')), 'ds.sqlite');
    const store = new SqliteDeliveryStore(file, { synchronous: 'COMMITS' });
    // What each append asks of SQLite's synchronous setting.
    const asked: string[] = [];
    const pragma = Database.prototype.pragma;
    Database.prototype.pragma = function (this: Database.Database, source: string, options?: Database.PragmaOptions) {
      if (source.startsWith('synchronous')) asked.push(source);
      return pragma.call(this, source, options);
    };
    try {
      const g = 'gsync';
      await store.insertGroup({ groupId: g, epoch: 0, members: ['alice', 'bob'], consistency: 'strong' });
      const appends = {
        application: () => store.append({ groupId: g, sender: 'bob', bytes: new Uint8Array(10) }),
        proposal: () => store.append({ groupId: g, sender: 'bob', bytes: new Uint8Array(11) }, undefined, undefined, { count: 5, bytes: 1000, member: { id: 'bob', count: 2, bytes: 500 }, epoch: 0 }),
        commit: () => store.append({ groupId: g, sender: 'alice', bytes: new Uint8Array(12) }, { expectEpoch: 0, setEpoch: 1 }),
      };
      const seen: Record<string, string[]> = {};
      for (const [kind, append] of Object.entries(appends)) {
        asked.length = 0;
        await append();
        seen[kind] = [...asked];
      }
      // Before, the proposal ran NORMAL like an application message, and a power loss could take it after a commit covering it was accepted.
      expect(seen).toEqual({ application: ['synchronous = NORMAL', 'synchronous = FULL'], proposal: [], commit: [] });
    } finally {
      Database.prototype.pragma = pragma;
      store.close();
    }
  });
});

describe('each store counts an epoch\'s proposals in the transaction that logs them', () => {
  let postgres: PgServer;
  beforeAll(async () => {
    postgres = await startPostgres();
  });
  afterAll(async () => postgres?.stop());

  it('in memory', async () => {
    await budgetRules([new MemoryDeliveryStore()]);
    await shareRules([new MemoryDeliveryStore()]);
    await dsApartRules([new MemoryDeliveryStore()]);
  });

  it('on SQLite', async () => {
    const store = new SqliteDeliveryStore(join(mkdtempSync(join(tmpdir(), 'paired-mls-flood-store-')), 'ds.sqlite'));
    try {
      await budgetRules([store]);
      await shareRules([store]);
      await dsApartRules([store]);
    } finally {
      store.close();
    }
  });

  it('on PostgreSQL, two pools on one database racing: the count is one, in the database', async () => {
    const stores = [await PostgresDeliveryStore.connect(postgres.url), await PostgresDeliveryStore.connect(postgres.url)];
    try {
      await budgetRules(stores);
      await shareRules(stores);
      await dsApartRules(stores);
    } finally {
      for (const s of stores) await s.close();
    }
  });

  it('a database of schema 4 or 5 is migrated when opened (SQLite, PostgreSQL): its groups count from no proposals, and members\' shares from none', async () => {
    // What each older schema lacks, on SQLite and on PostgreSQL.
    const older = {
      '4': {
        sqlite: 'ALTER TABLE groups DROP COLUMN proposals_epoch; ALTER TABLE groups DROP COLUMN epoch_proposals; ALTER TABLE groups DROP COLUMN epoch_proposal_bytes; DROP TABLE member_proposals; DROP TABLE rotation_guards',
        postgres: 'ALTER TABLE ds_groups DROP COLUMN proposals_epoch, DROP COLUMN epoch_proposals, DROP COLUMN epoch_proposal_bytes; DROP TABLE ds_member_proposals; DROP TABLE ds_rotation_guards',
      },
      '5': { sqlite: 'DROP TABLE member_proposals; DROP TABLE rotation_guards', postgres: 'DROP TABLE ds_member_proposals; DROP TABLE ds_rotation_guards' },
    };
    for (const [version, drop] of Object.entries(older)) {
      const file = join(mkdtempSync(join(tmpdir(), `paired-mls-flood-v${version}-`)), 'ds.sqlite');
      new SqliteDeliveryStore(file).close();
      const old = new Database(file);
      old.exec(`${drop.sqlite}; UPDATE meta SET value = '${version}' WHERE key = 'schema'`);
      old.close();
      const sqlite = new SqliteDeliveryStore(file);
      try {
        await budgetRules([sqlite]);
        await shareRules([sqlite]);
      } finally {
        sqlite.close();
      }
      const meta = new Database(file, { readonly: true });
      expect(meta.prepare("SELECT value FROM meta WHERE key = 'schema'").get()).toEqual({ value: DS_SCHEMA_VERSION });
      meta.close();

      const admin = new pg.Client({ connectionString: postgres.url });
      await admin.connect();
      await admin.query(`CREATE DATABASE v${version}`);
      await admin.end();
      const url = Object.assign(new URL(postgres.url), { pathname: `/v${version}` }).href;
      await (await PostgresDeliveryStore.connect(url)).close();
      const db = new pg.Client({ connectionString: url });
      await db.connect();
      await db.query(`${drop.postgres}; UPDATE ds_meta SET value = '${version}' WHERE key = 'schema'`);
      await db.end();
      const stores = await Promise.all([PostgresDeliveryStore.connect(url), PostgresDeliveryStore.connect(url)]);
      try {
        await budgetRules(stores);
        await shareRules(stores);
      } finally {
        for (const s of stores) await s.close();
      }
      const check = new pg.Client({ connectionString: url });
      await check.connect();
      expect((await check.query("SELECT value FROM ds_meta WHERE key = 'schema'")).rows).toEqual([{ value: DS_SCHEMA_VERSION }]);
      await check.end();
    }
    expect(DS_SCHEMA_VERSION).toBe('8');
  });
});
