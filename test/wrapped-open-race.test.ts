/**
 * State at rest (docs/PROTOCOL.md §2.6): two `EncryptedStorageAdapter`s
 * opened at once, with two keys, over one new inner store (two tabs, two
 * processes, an app that opens twice at start-up, or an attacker who opens
 * the app's inner store first). The race is forced: each opener works on
 * its own view of the one store (`interleaved`): opener A's first write
 * waits until opener B has read everything and is about to write, and B's
 * write until A's landed. Real adapters underneath: memory, and two SQLite
 * connections to one file.
 *
 * Before: both opened, B's key check replaced A's, A's client sealed its
 * records under key A, and at the next open key A was STORAGE_KEY while
 * under key B the client refused A's 16 records (STORAGE_TAMPERED): all
 * lost. Now the wrapper adds its key check with the inner adapter's
 * `putIfAbsent`: A's check stands, B wrote nothing and is STORAGE_KEY. An
 * app's adapter without `putIfAbsent` keeps the old behaviour (the limit).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as lib from 'paired-mls';
import { SqliteStorageAdapter } from 'paired-mls/server';
import { mlsError } from './helpers.js';
// @ts-expect-error plain JS module shared with the browser page
import { interleaved } from './browser/storage-checks.js';

const { MlsClient, EncryptedStorageAdapter, MemoryStorageAdapter, toHex } = lib;
type StorageAdapter = lib.StorageAdapter;
type Race = { a: StorageAdapter; b: StorageAdapter; writes: [string, Uint8Array[], Uint8Array[], unknown][] };
const key32 = (fill: number) => new Uint8Array(32).fill(fill);
const label = (err: lib.MlsError) => [err.code, err.message];
const KEY_CHECK = new TextEncoder().encode('\u0000paired-mls/key-check');
const WRONG_KEY = ['STORAGE_KEY', 'the storage was encrypted under another key (or its key check was changed)'];
const text = (m: { kind: string; data?: Uint8Array }) => (m.kind === 'application' ? new TextDecoder().decode(m.data) : m.kind);

const toClose: { close(): void }[] = [];
afterEach(() => toClose.splice(0).forEach((s) => s.close()));

/** One new store and the race's two views of it: the same memory adapter twice, or two SQLite connections to one file (in the clear: the wrapper seals). */
async function newStore(kind: 'memory' | 'sqlite'): Promise<{ inner: StorageAdapter; race: Race }> {
  if (kind === 'memory') {
    const inner = new MemoryStorageAdapter();
    return { inner, race: interleaved(inner, inner) };
  }
  const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-wrapped-race-')), 'a.sqlite');
  const connect = async () => {
    const s = await SqliteStorageAdapter.open(file, { encryption: false });
    toClose.push(s);
    return s;
  };
  const [one, two] = [await connect(), await connect()];
  return { inner: await connect(), race: interleaved(one, two) };
}

/** Alice on `storage`: an identity and a group with bob, a message each way; freed. */
async function aliceTalks(storage: StorageAdapter) {
  const alice = await MlsClient.open({ storage });
  const identity = await alice.createIdentity('alice', 1);
  const bobClient = await MlsClient.open();
  const bobId = await bobClient.createIdentity('bob', 1);
  const group = await alice.createGroup(identity);
  const { welcome } = await group.commit({ add: [await bobClient.createKeyPackage(bobId)] });
  await group.mergePendingCommit();
  const bob = await bobClient.joinFromWelcome(welcome!);
  expect(text(await bob.process(await group.encrypt('hello bob')))).toBe('hello bob');
  expect(text(await group.process(await bob.encrypt('hello alice')))).toBe('hello alice');
  alice.free();
  return { groupId: group.id, bob, bobClient };
}

describe('state at rest: two wrapped opens of one new store at once (PROTOCOL §2.6)', () => {
  for (const kind of ['memory', 'sqlite'] as const) {
    it(`${kind}: two keys: the first to add its key check opens, the other is STORAGE_KEY and wrote nothing; the winner's client talks, and reopens under its key (was: both opened, the winner's records all lost at the next open)`, async () => {
      const { inner, race } = await newStore(kind);
      const [a, b] = await Promise.allSettled([EncryptedStorageAdapter.open(race.a, key32(1)), EncryptedStorageAdapter.open(race.b, key32(2))]);
      expect(a.status).toBe('fulfilled');
      expect(b.status === 'rejected' && label(b.reason)).toEqual(WRONG_KEY);
      // Both tried to add a key check, one each; only A's landed (B's add found it there), and the store holds it alone.
      expect(race.writes.map(([view, keys, , stored]) => [view, keys.map(toHex), stored])).toEqual([
        ['a', [toHex(KEY_CHECK)], true],
        ['b', [toHex(KEY_CHECK)], false],
      ]);
      const held = await inner.entries();
      expect(held.map(([k, v]) => [toHex(k), toHex(v)])).toEqual([[toHex(KEY_CHECK), toHex(race.writes[0]![2][0]!)]]);

      const { groupId, bob, bobClient } = await aliceTalks((a as PromiseFulfilledResult<lib.EncryptedStorageAdapter>).value);
      expect(label(await mlsError(() => EncryptedStorageAdapter.open(inner, key32(2))))).toEqual(WRONG_KEY);
      const again = await MlsClient.open({ storage: await EncryptedStorageAdapter.open(inner, key32(1)) });
      expect(again.identities().map((i) => new TextDecoder().decode(i.identity))).toEqual(['alice']);
      const group = again.group(groupId);
      expect(text(await bob.process(await group.encrypt('after the reopen')))).toBe('after the reopen');
      expect(text(await group.process(await bob.encrypt('read after the reopen')))).toBe('read after the reopen');
      again.free();
      bobClient.free();
    });

    it(`${kind}: the same key twice at once (an honest app opening twice): both open, the second after reading the first's key check; one check stored`, async () => {
      const { inner, race } = await newStore(kind);
      const both = await Promise.all([EncryptedStorageAdapter.open(race.a, key32(3)), EncryptedStorageAdapter.open(race.b, key32(3))]);
      expect(race.writes.map(([view, , , stored]) => [view, stored])).toEqual([
        ['a', true],
        ['b', false],
      ]);
      const { groupId, bob, bobClient } = await aliceTalks(both[1]);
      const again = await MlsClient.open({ storage: both[0] });
      expect(text(await bob.process(await again.group(groupId).encrypt('from the other wrapper')))).toBe('from the other wrapper');
      again.free();
      bobClient.free();
      expect((await inner.entries()).filter(([k]) => toHex(k) === toHex(KEY_CHECK))).toHaveLength(1);
    });
  }

  it("the limit: an app's adapter without putIfAbsent (here a plain pass-through over memory) keeps the old behaviour: both open, and the later key check stands", async () => {
    const store = new MemoryStorageAdapter();
    const appAdapter: StorageAdapter = { entries: () => store.entries(), get: (k) => store.get(k), apply: (b) => store.apply(b) };
    const race: Race = interleaved(appAdapter, appAdapter);
    const [a, b] = await Promise.allSettled([EncryptedStorageAdapter.open(race.a, key32(1)), EncryptedStorageAdapter.open(race.b, key32(2))]);
    expect([a.status, b.status]).toEqual(['fulfilled', 'fulfilled']);
    expect(label(await mlsError(() => EncryptedStorageAdapter.open(store, key32(1))))).toEqual(WRONG_KEY);
    await EncryptedStorageAdapter.open(store, key32(2));
  });

  it('a key check deleted each time it is added (by a writer of the store): STORAGE after three turns, the opener left nothing', async () => {
    const store = new MemoryStorageAdapter();
    // Another writer adds a check just before each of this open's adds, and deletes it just after.
    const raced: StorageAdapter = {
      entries: () => store.entries(),
      get: (k) => store.get(k),
      apply: (b) => store.apply(b),
      putIfAbsent: async (k, v) => {
        await store.apply({ puts: [[k, new Uint8Array(40).fill(1)]], deletes: [] });
        const added = await store.putIfAbsent(k, v);
        await store.apply({ puts: [], deletes: [k] });
        return added;
      },
    };
    expect(label(await mlsError(() => EncryptedStorageAdapter.open(raced, key32(1))))).toEqual(['STORAGE', "another open kept writing this store's key check"]);
    expect(store.size).toBe(0);
    // Once the other writer stops, the store opens.
    await EncryptedStorageAdapter.open(store, key32(1));
    expect(store.size).toBe(1);
  });
});
