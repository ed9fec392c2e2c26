/**
 * A commit posted with `readTo` (docs/PROTOCOL.md §8.1): refused, 409
 * `unread-proposal`, when a proposal of its epoch was logged after the position its
 * sender read the log to. The check holds against posts racing it: the DS
 * hands the store the last sequence number it checked (`CommitUpdate.lastSeq`),
 * the store refuses the append when the log moved since (nothing written),
 * and the DS checks what came: a proposal refuses the commit, an
 * application message does not. Real networked server on loopback; memory
 * store, SQLite, PostgreSQL; a store wrapper lands a post between the DS's
 * check and the commit's append. What it is for: the active device of a
 * pairing commits past the generations a copy of its partner burnt
 * (test/paired-burnt-generation).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from 'paired-mls';
import { MemoryDeliveryStore, type DeliveryStore } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
import { catchUp, dsPeer, groupOf, groupStillWorks, raw, tokenOf, type DsPeer } from './ds-helpers.js';
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
  return {
    unread: { status: 409, reason: 'unread-proposal', error: `a proposal of epoch ${epoch} was logged after ${read}: process the group's messages and commit again (unread-proposal)` },
    // Its append refused (the log's end is not where it claims), the DS finds nothing new.
    pastTheEnd: { status: 400, reason: 'malformed', error: 'readTo is past the end of the log (malformed)' },
    logAfterRefusals: [ids.bob],
    // The log moved after the DS looked: the store refused the append, the DS found carol's message, no proposal, and appended after it.
    afterMessage: { accepted: 1, refusedAppends: 2 },
    // Without the store's check this commit went in after carol's proposal.
    slipped: { reason: 'unread-proposal', message: `a proposal of epoch ${epoch + 1} was logged after ${read + 3}: process the group's messages and commit again (unread-proposal)` },
    refusedAppends: 3,
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
