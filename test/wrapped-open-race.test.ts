/**
 * State at rest (docs/PROTOCOL.md §2.6): two `EncryptedStorageAdapter`s
 * opened at once, with two keys, over one new inner store (two tabs, two
 * processes, an app that opens twice at start-up, or an attacker who opens
 * the app's inner store first). The race is forced: each opener works on
 * its own view of the one store (`interleaved`), and the first write of
 * opener A waits until opener B has read everything and is about to write;
 * B's write then waits until A's landed. Real adapters underneath (memory,
 * and two SQLite connections to one file).
 *
 * Today both open: B's key check replaces A's, A's client seals its
 * records under key A, and at the next open key A is STORAGE_KEY while key
 * B opens the adapter but the client refuses A's records (STORAGE_TAMPERED).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as lib from 'paired-mls';
import { SqliteStorageAdapter } from 'paired-mls/server';
import { mlsError } from './helpers.js';

const { MlsClient, EncryptedStorageAdapter, MemoryStorageAdapter } = lib;
type StorageAdapter = lib.StorageAdapter;
const key32 = (fill: number) => new Uint8Array(32).fill(fill);
const label = (err: lib.MlsError) => [err.code, err.message];

/**
 * Two views of one store, one per opener: A's first write is held until B
 * makes its first write (B has read all it reads before writing), and B's
 * until A's landed. Every other call goes straight through.
 */
function interleaved(innerA: StorageAdapter, innerB: StorageAdapter): { a: StorageAdapter; b: StorageAdapter } {
  let bWrites!: () => void;
  const bAboutToWrite = new Promise<void>((resolve) => (bWrites = resolve));
  let aLanded!: () => void;
  const aWritten = new Promise<void>((resolve) => (aLanded = resolve));
  const view = (inner: StorageAdapter, isA: boolean): StorageAdapter => {
    let first = true;
    const write = async <T>(run: () => Promise<T>): Promise<T> => {
      if (!first) return run();
      first = false;
      if (!isA) {
        bWrites();
        await aWritten;
        return run();
      }
      await bAboutToWrite;
      try {
        return await run();
      } finally {
        aLanded();
      }
    };
    return {
      entries: () => inner.entries(),
      get: (key) => inner.get(key),
      apply: (batch) => write(() => inner.apply(batch)),
    };
  };
  return { a: view(innerA, true), b: view(innerB, false) };
}

/** Alice on `storage`: an identity, a group with bob, a message each way; returns what a reopen needs. */
async function aliceTalks(storage: StorageAdapter) {
  const alice = await MlsClient.open({ storage });
  const identity = await alice.createIdentity('alice', 1);
  const bobClient = await MlsClient.open();
  const bobId = await bobClient.createIdentity('bob', 1);
  const group = await alice.createGroup(identity);
  const { welcome } = await group.commit({ add: [await bobClient.createKeyPackage(bobId)] });
  await group.mergePendingCommit();
  const bob = await bobClient.joinFromWelcome(welcome);
  const read = await bob.process(await group.encrypt('hello bob'));
  expect(read.kind === 'application' && new TextDecoder().decode(read.data)).toBe('hello bob');
  const back = await group.process(await bob.encrypt('hello alice'));
  expect(back.kind === 'application' && new TextDecoder().decode(back.data)).toBe('hello alice');
  alice.free();
  return { groupId: group.id, bob, bobClient };
}

const toClose: { close(): void }[] = [];
afterEach(() => toClose.splice(0).forEach((s) => s.close()));

/** Two connections to one new SQLite file, stored in the clear (the wrapper seals). */
function sqlitePair(): [SqliteStorageAdapter, SqliteStorageAdapter, () => SqliteStorageAdapter] {
  const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-wrapped-race-')), 'a.sqlite');
  const connect = () => {
    const s = new SqliteStorageAdapter(file, { encryption: false });
    toClose.push(s);
    return s;
  };
  return [connect(), connect(), connect];
}

describe('state at rest: two wrapped opens of one new store at once (PROTOCOL §2.6)', () => {
  for (const kind of ['memory', 'sqlite'] as const) {
    it(`${kind}: today both open, the later key check stands, and what the other client wrote is lost`, async () => {
      let inner: StorageAdapter;
      let views: { a: StorageAdapter; b: StorageAdapter };
      if (kind === 'memory') {
        inner = new MemoryStorageAdapter();
        views = interleaved(inner, inner);
      } else {
        const [one, two, connect] = sqlitePair();
        await Promise.all([one.entries(), two.entries()]); // both connections past their own meta
        inner = connect();
        views = interleaved(one, two);
      }
      const [a, b] = await Promise.allSettled([EncryptedStorageAdapter.open(views.a, key32(1)), EncryptedStorageAdapter.open(views.b, key32(2))]);
      expect([a.status, b.status]).toEqual(['fulfilled', 'fulfilled']);
      const { bobClient } = await aliceTalks((a as PromiseFulfilledResult<lib.EncryptedStorageAdapter>).value);
      expect(label(await mlsError(() => EncryptedStorageAdapter.open(inner, key32(1))))).toEqual(['STORAGE_KEY', 'the storage was encrypted under another key (or its key check was changed)']);
      const underB = await EncryptedStorageAdapter.open(inner, key32(2));
      // Every record alice's client wrote (her identity and keys, the group, bob's messages' secrets) fails under key B.
      expect(label(await mlsError(() => MlsClient.open({ storage: underB })))).toEqual(['STORAGE_TAMPERED', '16 stored record(s) were changed, truncated or moved to another key']);
      bobClient.free();
    });
  }
});
