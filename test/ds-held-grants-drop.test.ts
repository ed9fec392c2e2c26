/**
 * The grants a verifying DS holds for a group's Add proposals (docs/PROTOCOL.md
 * §8.5) end with their epoch's commit, with those of the epoch before (moved
 * by a post that raced that epoch's commit). The DS read and spent them after
 * every verified commit: two reads and two writes more per commit. Now the
 * store drops them in the commit's transaction (`DeliveryStore.dropGrants`,
 * one statement), on each store; a store of the older interface, without
 * `dropGrants`, still has them cleared the old way. Real servers on loopback,
 * real groups, the memory store, SQLite and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from 'paired-mls';
import { MemoryDeliveryStore, type CommitUpdate, type DeliveryStore, type KeyPackageGrant } from 'paired-mls/services';
import { PostgresDeliveryStore, SqliteDeliveryStore, startDeliveryServer } from 'paired-mls/server';
import { catchUp, dsPeer, groupStillWorks, verifiedGroup, type DsPeer } from './ds-helpers.js';
import { startPostgres, type PgServer } from './pg-server.js';

/**
 * `store` as the DS sees it, observed: the grant reads and spends it is asked
 * for, and the grants of `watched` as each commit's transaction has ended
 * (before the DS goes on). `older`: without `dropGrants`, as a store of the
 * interface before it.
 */
function observed(store: DeliveryStore, older = false) {
  const seen = { calls: { grants: 0, spendGrants: 0 }, atCommit: [] as KeyPackageGrant[][], watched: [] as string[] };
  const proxy = new Proxy(store, {
    get(target, name) {
      if (name === 'dropGrants' && older) return undefined;
      if (name === 'grants' || name === 'spendGrants') seen.calls[name]++;
      if (name === 'append') {
        return async (...args: Parameters<DeliveryStore['append']>) => {
          const seq = await target.append(...args);
          const update: CommitUpdate | undefined = args[1];
          if (update && seq !== undefined) seen.atCommit = await Promise.all(seen.watched.map((h) => target.grants(h, 0)));
          return seq;
        };
      }
      const value = Reflect.get(target, name, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { proxy, seen };
}

/** `p` commits what it has queued (a selfUpdate) and merges it. */
async function commitQueued(p: DsPeer): Promise<void> {
  await catchUp(p);
  const c = await p.group!.selfUpdate({ groupInfo: true });
  p.seen = await p.ds.submit(p.group!.id, c.commit, { groupInfo: c.groupInfo, welcome: c.welcome });
  await p.group!.mergePendingCommit();
}

/**
 * pete's verified group with quinn; the group holds a grant of this epoch and
 * one of the epoch before (as an Add proposal's post leaves them), quinn one
 * of his own. pete commits: what the observed store saw, and what is left.
 */
async function commitOverHeldGrants(store: DeliveryStore, older = false) {
  const { proxy, seen } = observed(store, older);
  const s = await startDeliveryServer({ port: 0, store: proxy, verifyCommits: true });
  try {
    const tag = Math.random().toString(36).slice(2, 7);
    const [pete, quinn, sock] = await Promise.all(['pete', 'quinn', 'sock'].map((n) => dsPeer(s.url, `${n}-${tag}`)));
    await verifiedGroup(pete!, [quinn!]);
    await sock!.ds.uploadKeyPackages([await sock!.client.createKeyPackage(sock!.identity)]);
    await quinn!.ds.fetchKeyPackages([sock!.name]);
    const gid = toHex(pete!.group!.id);
    const epoch = (await store.getGroup(gid))!.epoch;
    const held = [epoch, epoch - 1].map((e) => `\u0001${e}\u0001${gid}`);
    for (const [i, requester] of held.entries()) await store.grantKeyPackage({ requester, clientId: sock!.name, ref: `held-${i}`, until: Number.MAX_SAFE_INTEGER - 1 }, 0);
    expect((await Promise.all(held.map((h) => store.grants(h, 0)))).map((g) => g.length)).toEqual([1, 1]);
    seen.watched = held;
    seen.calls = { grants: 0, spendGrants: 0 };
    await commitQueued(pete!);
    const left = await Promise.all(held.map((h) => store.grants(h, 0)));
    const quinns = await store.grants(quinn!.name, 0);
    await groupStillWorks([pete!, quinn!], 'after the commit');
    return { calls: seen.calls, atCommit: seen.atCommit, left, quinns };
  } finally {
    await s.close();
  }
}

const droppedInTheCommit = {
  // Before: [[held-0], [held-1]] (still there when the commit's transaction ended) and { grants: 2, spendGrants: 2 }.
  atCommit: [[], []],
  calls: { grants: 0, spendGrants: 0 },
  left: [[], []],
  quinns: [expect.objectContaining({ clientId: expect.stringMatching(/^sock-/) })],
};

describe("a verified commit drops its epoch's held grants in its transaction (PROTOCOL §8.5)", () => {
  const dir = mkdtempSync(join(tmpdir(), 'paired-mls-held-grants-'));
  let pg: PgServer;
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(async () => {
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('memory store: the grants of both epochs are gone as the transaction ends, none read or spent after it; a member’s own grant stays', async () => {
    expect(await commitOverHeldGrants(new MemoryDeliveryStore())).toEqual(droppedInTheCommit);
  });

  it('SQLite: the same', async () => {
    const store = new SqliteDeliveryStore(join(dir, 'ds.sqlite'));
    try {
      expect(await commitOverHeldGrants(store)).toEqual(droppedInTheCommit);
    } finally {
      store.close();
    }
  });

  it('PostgreSQL: the same', async () => {
    const store = await PostgresDeliveryStore.connect(pg.url);
    try {
      expect(await commitOverHeldGrants(store)).toEqual(droppedInTheCommit);
    } finally {
      await store.close();
    }
  });

  it('a store of the older interface (no dropGrants): the grants are still cleared, read and spent after the commit', async () => {
    const store = new SqliteDeliveryStore(join(dir, 'older.sqlite'));
    try {
      expect(await commitOverHeldGrants(store, true)).toEqual({
        ...droppedInTheCommit,
        atCommit: [[expect.objectContaining({ ref: 'held-0' })], [expect.objectContaining({ ref: 'held-1' })]],
        calls: { grants: 2, spendGrants: 2 },
      });
    } finally {
      store.close();
    }
  });
});
