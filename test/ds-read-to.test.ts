/**
 * A commit posted with `readTo` (docs/PROTOCOL.md §8.1): refused, 409
 * `unread-proposal`, when a proposal of its epoch was logged after the position its
 * sender read the log to. The check holds against posts racing it: the DS
 * hands the store the last sequence number it checked (`CommitUpdate.lastSeq`),
 * the store refuses the append when the log moved since (nothing written),
 * and the DS checks what came: a proposal refuses the commit, an
 * application message does not. Real networked server on loopback; memory
 * store, SQLite, PostgreSQL; a store wrapper lands a post between the DS's
 * check and the commit's append. The DS reads what may be proposals after
 * `readTo` by the store's index, or one page of the log at most (in process,
 * a store wrapper counting what it reads). What it is for: the active device of a
 * pairing commits past the generations a copy of its partner burnt
 * (test/paired-burnt-generation).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex, utf8 } from 'paired-mls';
import { DeliveryService, MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
import { catchUp, dsPeer, groupOf, groupStillWorks, headerOnly, raw, tokenOf, type DsPeer } from './ds-helpers.js';
import { newMember } from './helpers.js';
import { submit } from './paired-ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

/** `store`, with `slip` run once before the next append of a commit checked against `readTo` (a post landing while the DS checks). */
function slipping(store: DeliveryStore) {
  const state: { slip?: () => Promise<unknown>; refusedAppends: number } = { refusedAppends: 0 };
  const proxy = new Proxy(store, {
    get(target, name) {
      if (name === 'append') {
        return async (...args: Parameters<DeliveryStore['append']>) => {
          const checked = args[1]?.lastSeq !== undefined;
          const slip = checked ? state.slip : undefined;
          state.slip = checked ? undefined : state.slip;
          await slip?.();
          const seq = await target.append(...args);
          if (checked && seq === undefined) state.refusedAppends++;
          return seq;
        };
      }
      const value = Reflect.get(target, name, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { proxy, state };
}

/** A commit of `p` posted raw with `readTo` (to see the HTTP status): status and body. */
async function rawCommit(url: string, p: DsPeer, commit: Uint8Array, readTo: number) {
  const token = await tokenOf(url, p.name, p);
  const r = await raw(url, 'POST', `/v1/groups/${toHex(p.group!.id)}/messages`, { message: Buffer.from(commit).toString('base64'), readTo }, token);
  return { status: r.status, reason: r.body.reason, error: r.body.error };
}

async function readTo(store: DeliveryStore) {
  const { proxy, state } = slipping(store);
  const s = await startDeliveryServer({ port: 0, store: proxy });
  try {
    const tag = Math.random().toString(36).slice(2, 7);
    const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
    await groupOf(alice!, [bob!, carol!]);
    const gid = alice!.group!.id;
    const epoch = alice!.group!.epoch;
    const seen: Record<string, unknown> = {};

    // bob's proposal, logged after alice's read: her commit is refused, and one claiming a read past the log's end.
    const read = alice!.seen;
    bob!.seen = await bob!.ds.submit(gid, await bob!.group!.propose({ type: 'update' }));
    const blind = await alice!.group!.selfUpdate();
    seen.unread = await rawCommit(s.url, alice!, blind.commit, read);
    seen.pastTheEnd = await rawCommit(s.url, alice!, blind.commit, bob!.seen + 1);
    seen.values = [];
    for (const v of [-1, 1.5, 2 ** 53, 2 ** 53 - 2, 'x', '1', null, true]) (seen.values as unknown[]).push(await rawCommit(s.url, alice!, blind.commit, v as number));
    await alice!.group!.clearPendingCommit();
    seen.logAfterRefusals = (await carol!.ds.poll(gid, read)).map((m) => m.sender);

    // alice reads it and commits again; carol's message lands while the DS checks: it is no proposal, the commit goes in after it.
    await catchUp(alice!);
    const covering = await alice!.group!.commit({});
    let slipped = 0;
    state.slip = async () => (slipped = await carol!.ds.submit(gid, await carol!.group!.encrypt('while alice commits')));
    const accepted = await alice!.ds.submit(gid, covering.commit, { readTo: alice!.seen });
    seen.afterMessage = { accepted: accepted - slipped, refusedAppends: state.refusedAppends };
    alice!.seen = accepted;
    await alice!.group!.mergePendingCommit();
    await catchUp(bob!);
    await catchUp(carol!);

    // carol's proposal lands while the DS checks alice's next commit: refused, nothing logged.
    const next = await alice!.group!.selfUpdate();
    state.slip = async () => carol!.ds.submit(gid, await carol!.group!.propose({ type: 'update' }));
    seen.slipped = await alice!.ds.submit(gid, next.commit, { readTo: alice!.seen }).catch((e: { reason: string; message: string }) => ({ reason: e.reason, message: e.message }));
    seen.refusedAppends = state.refusedAppends;
    await alice!.group!.clearPendingCommit();
    seen.logAfterSlip = (await bob!.ds.poll(gid, bob!.seen)).map((m) => m.sender);

    // Read, then committed: everyone follows and talks.
    await catchUp(alice!);
    const last = await alice!.group!.commit({});
    alice!.seen = await alice!.ds.submit(gid, last.commit, { readTo: alice!.seen });
    await alice!.group!.mergePendingCommit();
    await groupStillWorks([bob!, alice!, carol!], 'all read');
    seen.epochs = [alice!, bob!, carol!].map((p) => p.group!.epoch - epoch);
    const ids = { bob: bob!.name, carol: carol!.name };
    return { seen, epoch, read, ids };
  } finally {
    await s.close();
  }
}

function expected({ epoch, read, ids }: { epoch: number; read: number; ids: { bob: string; carol: string } }) {
  const notNatural = { status: 400, reason: 'malformed', error: 'readTo must be a natural number below 2^53' };
  const unreadAfter = (n: number) => ({ status: 409, reason: 'unread-proposal', error: `a proposal of epoch ${epoch} was logged after ${n}: process the group's messages and commit again (unread-proposal)` });
  return {
    unread: unreadAfter(read),
    // Its append refused (the log's end is not where it claims), the DS finds nothing new.
    pastTheEnd: { status: 400, reason: 'malformed', error: 'readTo is past the end of the log (malformed)' },
    // -1, 1.5, 2^53, 2^53 - 2 (past the end), 'x', '1', null, true. A number in a body is a JSON number (§8.3): '1' had
    // been taken for 1 and null for 0 (read nothing), 409 unread-proposal; 400 malformed since 272ab49, which left this
    // test expecting the old answers (review 60).
    values: [notNatural, notNatural, notNatural, { status: 400, reason: 'malformed', error: 'readTo is past the end of the log (malformed)' }, notNatural, notNatural, notNatural, notNatural],
    logAfterRefusals: [ids.bob],
    // Counted from the two past the end above. The log moved after the DS looked: the store refused the append, the DS found carol's message, no proposal, and appended after it.
    afterMessage: { accepted: 1, refusedAppends: 3 },
    // Without the store's check this commit went in after carol's proposal.
    slipped: { reason: 'unread-proposal', message: `a proposal of epoch ${epoch + 1} was logged after ${read + 3}: process the group's messages and commit again (unread-proposal)` },
    refusedAppends: 4,
    logAfterSlip: [ids.carol],
    epochs: [2, 2, 2],
  };
}

describe('a commit with readTo: refused (409 unread-proposal) by a proposal its sender had not read, also one racing the check (PROTOCOL §8.1)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'paired-mls-read-to-'));
  let pg: PgServer;
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => {
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('memory store', async () => {
    const r = await readTo(new MemoryDeliveryStore());
    expect(r.seen).toEqual(expected(r));
  });

  it('SQLite', async () => {
    const store = new SqliteDeliveryStore(join(dir, 'ds.sqlite'));
    try {
      const r = await readTo(store);
      expect(r.seen).toEqual(expected(r));
    } finally {
      store.close();
    }
  });

  it('PostgreSQL', async () => {
    const store = await PostgresDeliveryStore.connect(pg.url);
    try {
      const r = await readTo(store);
      expect(r.seen).toEqual(expected(r));
    } finally {
      await store.close();
    }
  });
});

/**
 * An in-process DS (pages of 4) on a memory store counting the log rows it reads; `indexed` false: a store of another
 * package, without `readProposals`. bob fills the epoch with 40 application messages, then asks again and again with
 * readTo at its start and a junk GroupInfo, which the DS refuses only after the readTo check.
 */
async function flooded(indexed: boolean) {
  const read = { rows: 0 };
  const store = new Proxy(new MemoryDeliveryStore(), {
    get(target, name) {
      if (name === 'readProposals' && !indexed) return undefined;
      if (name === 'readLog' || name === 'readProposals') {
        return async (...args: Parameters<DeliveryStore['readLog']>) => {
          const r = await target[name](...args);
          read.rows += Array.isArray(r) ? r.length : r.messages.length;
          return r;
        };
      }
      const value = Reflect.get(target, name, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  const ds = await DeliveryService.create({ store, pageSize: 4 });
  const [alice, bob, carol] = await Promise.all(['alice', 'bob', 'carol'].map((n) => newMember(n)));
  alice!.group = await alice!.client.createGroup(alice!.identity);
  const gid = alice!.group.id;
  await ds.createGroup(gid, 'alice', { epoch: alice!.group.epoch });
  const add = await alice!.group.commit({ add: [await bob!.client.createKeyPackage(bob!.identity), await carol!.client.createKeyPackage(carol!.identity)] });
  const start = await submit(ds, gid, 'alice', add.commit, { welcome: add.welcome, added: ['bob', 'carol'] });
  await alice!.group.mergePendingCommit();
  for (const m of [bob!, carol!]) m.group = await m.client.joinFromWelcome(add.welcome!);
  for (let i = 0; i < 40; i++) await submit(ds, gid, 'bob', await bob!.group!.encrypt(`filler ${i}`));
  const junk = headerOnly(gid, alice!.group.epoch, 3, 9);
  /** bob's junk commit with `readTo`: the DS's answer and the log rows it read. */
  const ask = async (readTo: number) => {
    read.rows = 0;
    return { ...(await ds.submit(gid, 'bob', junk, { readTo, groupInfo: new Uint8Array([1, 2, 3]) })), read: read.rows };
  };
  const badGroupInfo = (rows: number) => ({ accepted: false, reason: 'invalid-group-info', message: `the GroupInfo is not one of this group at epoch ${alice!.group!.epoch + 1} (invalid-group-info)`, read: rows });
  /** alice reads to the end and commits with readTo: it goes in, and everyone follows and talks. */
  const honest = async () => {
    let end = start;
    for (let page = await ds.poll('alice', gid, end); page.length > 0; page = await ds.poll('alice', gid, end)) {
      for (const m of page) await alice!.group!.process(m.bytes);
      end = page.at(-1)!.seq;
    }
    const update = await alice!.group!.selfUpdate();
    await submit(ds, gid, 'alice', update.commit, { readTo: end });
    await alice!.group!.mergePendingCommit();
    for (const m of [bob!, carol!]) {
      const r = await m.group!.process(update.commit);
      if (r.kind === 'commit') await r.staged.merge();
    }
    const hello = await carol!.group!.encrypt('after the flood');
    for (const m of [alice!, bob!]) {
      const r = await m.group!.process(hello);
      expect(r.kind === 'application' && utf8(r.data)).toBe('after the flood');
    }
  };
  return { start, ask, badGroupInfo, honest };
}

describe("a commit with readTo: the DS reads the proposals logged after it by the store's index, else one page of the log at most, as a poll (PROTOCOL §8.1)", () => {
  it("a member's commit with readTo far behind, after it filled the epoch with application messages: the DS reads none of them (no proposal) and checks the commit; it read the whole epoch's log on every such request, then a page of it and refused (409 unread-proposal). Honest commits with readTo go in", async () => {
    const { start, ask, badGroupInfo, honest } = await flooded(true);
    expect([await ask(start), await ask(start), await ask(start + 37)]).toEqual([badGroupInfo(0), badGroupInfo(0), badGroupInfo(0)]);
    await honest();
  });

  it('a store without the index (of another package): refused (409 unread-proposal) after one page; within a page of the end the check goes on', async () => {
    const { start, ask, badGroupInfo, honest } = await flooded(false);
    const morePages = { accepted: false, reason: 'unread-proposal', message: `more than a page of the log follows ${start}: process the group's messages and commit again (unread-proposal)`, read: 5 };
    expect([await ask(start), await ask(start), await ask(start + 37)]).toEqual([morePages, morePages, badGroupInfo(3)]);
    await honest();
  });
});

describe('readTo is a member’s: an outsider’s external commit carries none that counts (PROTOCOL §8.1)', () => {
  it("an outsider of an open group probed the log with readTo on its external commit, refused and logging nothing each time (409 unread-proposal: a proposal after N; 400 past the end: the log's length); it is not read: the commit goes in, and everyone talks", async () => {
    const s = await startDeliveryServer({ port: 0, store: new MemoryDeliveryStore() });
    try {
      const tag = Math.random().toString(36).slice(2, 7);
      const [alice, bob, eve] = await Promise.all(['alice', 'bob', 'eve'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
      await groupOf(alice!, [bob!], { open: true });
      const gid = alice!.group!.id;
      bob!.seen = await bob!.ds.submit(gid, await bob!.group!.propose({ type: 'update' }));
      const joined = await eve!.client.joinExternal(await eve!.ds.groupInfo(gid), eve!.identity, { wireFormat: 'plaintext' });
      const probes = [];
      for (const readTo of [0, 10 ** 6]) probes.push(await eve!.ds.submit(gid, joined.commit, { externalJoin: true, readTo }).catch((e: { reason: string }) => e.reason));
      expect(probes).toEqual([bob!.seen + 1, bob!.seen + 1]);
      eve!.group = joined.group;
      eve!.seen = bob!.seen + 1;
      await groupStillWorks([alice!, bob!, eve!], 'eve joined');
    } finally {
      await s.close();
    }
  });
});
