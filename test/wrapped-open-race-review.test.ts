/**
 * Review of the wrapped adapter's add-only key check (docs/PROTOCOL.md
 * §2.6, test/wrapped-open-race.test.ts): attacks by whoever opens the store
 * at the same time (the app twice, another process) or writes its records.
 *
 * - A `MemoryStorageAdapter` subclass whose `apply` waits before it writes
 *   (as the tests' `SlowStorage` does, "as IndexedDB's do", or an app's
 *   adapter that persists each batch first) inherited a `putIfAbsent` that
 *   read the key and then called `apply`: two wrapped opens with two keys
 *   both read it absent, both added, both opened, and the later check
 *   stood (the first client's records all lost). Now the memory adapter's
 *   adds run one after another.
 * - A key check deleted while the right key's client is open, then a wrong
 *   key opened: refused from the client's records, nothing written, and
 *   the right key recovers its check.
 * - The limit: the records are read for the proof before the add; a writer
 *   that deletes another open's check in between has the add land over
 *   records sealed under the other key (a denial, as writing any check is).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as lib from 'paired-mls';
import { SqliteStorageAdapter } from 'paired-mls/server';
import { mlsError } from './helpers.js';

const { MlsClient, EncryptedStorageAdapter, MemoryStorageAdapter, toHex } = lib;
type StorageAdapter = lib.StorageAdapter;
type StorageBatch = lib.StorageBatch;
const key32 = (fill: number) => new Uint8Array(32).fill(fill);
const label = (err: lib.MlsError) => [err.code, err.message];
const KEY_CHECK = new TextEncoder().encode('\u0000paired-mls/key-check');
const WRONG_KEY = ['STORAGE_KEY', 'the storage was encrypted under another key (or its key check was changed)'];
const text = (m: { kind: string; data?: Uint8Array }) => (m.kind === 'application' ? new TextDecoder().decode(m.data) : m.kind);
const keysOf = async (s: StorageAdapter) => (await s.entries()).map(([k]) => toHex(k)).sort();

const toClose: { close(): void }[] = [];
afterEach(() => toClose.splice(0).forEach((s) => s.close()));

/** A memory adapter whose writes land a moment later (as a durable store's do); `failNext` makes the next one throw. */
class SlowStorage extends MemoryStorageAdapter {
  failNext = false;
  override async apply(batch: StorageBatch): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 2));
    if (this.failNext) {
      this.failNext = false;
      throw new Error('disk full');
    }
    return super.apply(batch);
  }
}

/** Alice on `storage` with a group with bob; returns both, alice still open. */
async function aliceWithBob(storage: StorageAdapter) {
  const alice = await MlsClient.open({ storage });
  const group = await alice.createGroup(await alice.createIdentity('alice', 1));
  const bobClient = await MlsClient.open();
  const { welcome } = await group.commit({ add: [await bobClient.createKeyPackage(await bobClient.createIdentity('bob', 1))] });
  await group.mergePendingCommit();
  const bob = await bobClient.joinFromWelcome(welcome!);
  expect(text(await bob.process(await group.encrypt('hello bob')))).toBe('hello bob');
  return { alice, group, bob, bobClient };
}

async function sqliteFile(): Promise<() => Promise<SqliteStorageAdapter>> {
  const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-wrapped-review-')), 'a.sqlite');
  return async () => {
    const s = await SqliteStorageAdapter.open(file, { encryption: false });
    toClose.push(s);
    return s;
  };
}

describe('wrapped open race review: a memory adapter whose apply waits (PROTOCOL §2.6)', () => {
  it('two keys at once: the first to add opens (either call), the other is STORAGE_KEY and wrote nothing; the winner talks and reopens (was: both opened, the later check stood)', async () => {
    const inner = new SlowStorage();
    const settled = await Promise.allSettled([EncryptedStorageAdapter.open(inner, key32(1)), EncryptedStorageAdapter.open(inner, key32(2))]);
    // Either call may add first (under load the second's key import can finish first): exactly one opens.
    const won = settled.findIndex((r) => r.status === 'fulfilled');
    const [winner, loser] = [settled[won], settled[1 - won]];
    expect(settled.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(loser!.status === 'rejected' && label(loser!.reason)).toEqual(WRONG_KEY);
    expect(await keysOf(inner)).toEqual([toHex(KEY_CHECK)]);
    const [winnerKey, loserKey] = [key32(won + 1), key32(2 - won)];

    const { alice, group, bob, bobClient } = await aliceWithBob((winner as PromiseFulfilledResult<lib.EncryptedStorageAdapter>).value);
    const groupId = group.id;
    alice.free();
    expect(label(await mlsError(() => EncryptedStorageAdapter.open(inner, loserKey)))).toEqual(WRONG_KEY);
    const again = await MlsClient.open({ storage: await EncryptedStorageAdapter.open(inner, winnerKey) });
    expect(text(await bob.process(await again.group(groupId).encrypt('after the reopen')))).toBe('after the reopen');
    again.free();
    bobClient.free();
  });

  it('the same key twice at once: both open, one key check stored', async () => {
    const inner = new SlowStorage();
    await Promise.all([EncryptedStorageAdapter.open(inner, key32(3)), EncryptedStorageAdapter.open(inner, key32(3))]);
    expect(await keysOf(inner)).toEqual([toHex(KEY_CHECK)]);
  });

  it("an add whose write fails holds up no later add: that open gets the adapter's error, the next one opens", async () => {
    const inner = new SlowStorage();
    inner.failNext = true;
    const settled = await Promise.allSettled([EncryptedStorageAdapter.open(inner, key32(1)), EncryptedStorageAdapter.open(inner, key32(2))]);
    // The failed write is whichever add comes first (either call, under load): that one fails, the other opens.
    const failed = settled.findIndex((r) => r.status === 'rejected');
    expect(settled.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : r.status))).toEqual(failed === 0 ? ['disk full', 'fulfilled'] : ['fulfilled', 'disk full']);
    expect(label(await mlsError(() => EncryptedStorageAdapter.open(inner, key32(failed + 1))))).toEqual(WRONG_KEY);
    expect(await keysOf(inner)).toEqual([toHex(KEY_CHECK)]);
  });
});

describe('wrapped open race review: a key check deleted while the right key is open (PROTOCOL §2.6)', () => {
  for (const kind of ['memory', 'sqlite'] as const) {
    it(`${kind}: a wrong key opened then is STORAGE_KEY from the client's records, nothing written; the open client goes on, and the right key recovers its check`, async () => {
      const memory = new MemoryStorageAdapter();
      const connect = kind === 'memory' ? async () => memory : await sqliteFile();
      const store = await connect();
      const { alice, group, bob, bobClient } = await aliceWithBob(await EncryptedStorageAdapter.open(store, key32(1)));
      // A writer of the store deletes the check, then opens with its own key (twice at once, through another connection).
      await store.apply({ puts: [], deletes: [KEY_CHECK] });
      const held = await keysOf(store);
      const other = await connect();
      const tries = await Promise.allSettled([EncryptedStorageAdapter.open(other, key32(2)), EncryptedStorageAdapter.open(other, key32(2))]);
      expect(tries.map((t) => t.status === 'rejected' && label(t.reason))).toEqual([WRONG_KEY, WRONG_KEY]);
      expect(await keysOf(store)).toEqual(held);
      // The open client goes on.
      expect(text(await bob.process(await group.encrypt('still here')))).toBe('still here');
      alice.free();
      const again = await MlsClient.open({ storage: await EncryptedStorageAdapter.open(store, key32(1)) });
      expect(await keysOf(store)).toContain(toHex(KEY_CHECK));
      expect(text(await bob.process(await again.group(group.id).encrypt('after the recovery')))).toBe('after the recovery');
      again.free();
      bobClient.free();
    });
  }
});

describe('wrapped open race review: the limit, records read before the add (PROTOCOL §2.6)', () => {
  it("a writer that, between a new store's proof and its add, lets another key open and write, then deletes that check: the add lands over the other's records (that key then STORAGE_KEY, this client STORAGE_TAMPERED), a denial as any check written over the right one is", async () => {
    const store = new MemoryStorageAdapter();
    let other: lib.MlsClient | undefined;
    // The opener's view: its add waits for the other open, its client's writes and the check's deletion.
    const raced: StorageAdapter = {
      entries: () => store.entries(),
      get: (k) => store.get(k),
      apply: (b) => store.apply(b),
      putIfAbsent: async (k, v) => {
        other = await MlsClient.open({ storage: await EncryptedStorageAdapter.open(store, key32(1)) });
        await other.createIdentity('alice', 1);
        await store.apply({ puts: [], deletes: [KEY_CHECK] });
        return store.putIfAbsent(k, v);
      },
    };
    const late = await EncryptedStorageAdapter.open(raced, key32(2));
    other!.free();
    expect(label(await mlsError(() => MlsClient.open({ storage: late })))).toEqual(['STORAGE_TAMPERED', '3 stored record(s) were changed, truncated or moved to another key']);
    expect(label(await mlsError(() => EncryptedStorageAdapter.open(store, key32(1))))).toEqual(WRONG_KEY);
  });
});
