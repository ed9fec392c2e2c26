/**
 * Sixth attacker review of state at rest (docs/PROTOCOL.md §2.6), Node
 * side (IndexedDB: test/browser-storage-review4.test.ts): the recovery of a
 * store whose metadata was deleted, attacked by one who writes the stored
 * records but holds no key.
 * - Opened in the clear, one clear record planted among sealed ones passed
 *   as proof: the adapter wrote `none`, the client refused the sealed
 *   records, and the right key was STORAGE_FORMAT for good.
 * - A wrong key tried every record (a million planted: over a minute), and
 *   the right key every record planted ahead of its own.
 * - With the format kept, a deleted key check (or `encryption` row) refused
 *   the right key for good.
 * - `deleteGroup` of a group set aside deleted the PSKs named by its failed
 *   (planted) bindings: another group's, or a client-wide one.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as lib from 'paired-mls';
import { SqliteStorageAdapter } from 'paired-mls/server';
import { mlsError } from './helpers.js';
// @ts-expect-error plain JS module shared with the browser page
import { groupRecordKey, stillWorks, twoGroups } from './browser/storage-checks.js';

const { MlsClient, EncryptedStorageAdapter, MemoryStorageAdapter, toHex, utf8 } = lib;
const enc = new TextEncoder();
const key32 = () => crypto.getRandomValues(new Uint8Array(32));
const KEY_CHECK = enc.encode('\u0000paired-mls/key-check');
const FORMAT_MARKER = enc.encode('\u0000paired-mls/format');
const WRONG_KEY = 'the storage was encrypted under another key (or its key check was changed)';
const label = (err: lib.MlsError) => [err.constructor, err.code, err.message];

/** Alice on an encrypted (or clear) SQLite file in g1 (bob) and g2 (carol); closed. `sql` edits the file from outside, `dump` shows all of it. */
async function sqliteWorld(clear = false) {
  const key = key32();
  const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-review4-')), 'a.sqlite');
  const storage = await SqliteStorageAdapter.open(file, clear ? { encryption: false } : { key });
  const world = await twoGroups(lib, storage);
  world.alice.free();
  storage.close();
  const sql = (text: string, ...args: unknown[]) => {
    const db = new Database(file);
    db.prepare(text).run(...args);
    db.close();
  };
  const dump = () => {
    const db = new Database(file);
    const rows = JSON.stringify([db.prepare('SELECT * FROM meta ORDER BY key').all(), db.prepare('SELECT hex(key), hex(value) FROM entries ORDER BY key').all()]);
    db.close();
    return rows;
  };
  const meta = () => {
    const db = new Database(file);
    const rows = (db.prepare('SELECT key FROM meta ORDER BY key').all() as { key: string }[]).map((r) => r.key);
    db.close();
    return rows;
  };
  /** The client on the file still works in both groups. */
  const works = async (openKey: Uint8Array = key) => {
    const storage = await SqliteStorageAdapter.open(file, { key: openKey });
    const client = await MlsClient.open({ storage });
    const got = await world.bob.process(await client.group(world.g1.id).encrypt('g1'));
    const auth = await stillWorks(client.group(world.g2.id), world.carol, 'g2');
    client.free();
    storage.close();
    return got.kind === 'application' && auth.alice === auth.carol;
  };
  return { ...world, key, file, sql, dump, meta, works };
}

describe('state at rest: sixth attacker review (the clear cannot be steered by a planted record)', () => {
  it('SQLite: meta deleted and one clear record planted among the sealed ones, the clear is STORAGE_FORMAT and writes nothing (was: it wrote `none`, the client refused, the right key STORAGE_FORMAT for good); the right key works', async () => {
    const { file, sql, dump, works } = await sqliteWorld();
    sql('DELETE FROM meta');
    sql('INSERT INTO entries (key, value) VALUES (?, ?)', Buffer.from('planted'), Buffer.of(0x02));
    const before = dump();
    const clear = await mlsError(() => SqliteStorageAdapter.open(file, { encryption: false }));
    expect(label(clear)).toEqual([lib.MlsError, 'STORAGE_FORMAT', 'SQLite storage holds sealed records; opened as none']);
    expect(dump()).toBe(before);
    sql('DELETE FROM entries WHERE key = ?', Buffer.from('planted'));
    expect(await works()).toBe(true);
  });

  it('SQLite in the clear, meta deleted: it still opens in the clear, also with a layer record whose value reads as sealed (0x01, 29 bytes or more)', async () => {
    const { file, sql, meta, g1, g2 } = await sqliteWorld(true);
    let storage = await SqliteStorageAdapter.open(file, { encryption: false });
    let client = await MlsClient.open({ storage });
    const looksSealed = Uint8Array.of(0x01, ...new Uint8Array(40).fill(7));
    await client.putRecord('binary', looksSealed);
    client.free();
    storage.close();
    sql('DELETE FROM meta');
    storage = await SqliteStorageAdapter.open(file, { encryption: false });
    client = await MlsClient.open({ storage });
    expect(client.record('binary')).toEqual(looksSealed);
    expect(client.groupIds().map(toHex).sort()).toEqual([toHex(g1.id), toHex(g2.id)].sort());
    client.free();
    storage.close();
    expect(meta()).toEqual(['encryption', 'format']);
  });
});

describe('state at rest: sixth attacker review (the cost of proving a key)', () => {
  /** A wrapped store holding `junk` failed records ahead of alice's own (in the order the store gives them), its key check deleted. */
  async function junkAhead(junk: number) {
    const key = key32();
    const own = new MemoryStorageAdapter();
    const alice = await MlsClient.open({ storage: await EncryptedStorageAdapter.open(own, key) });
    await alice.createIdentity('alice', 1);
    alice.free();
    const inner = new MemoryStorageAdapter();
    const planted: lib.StorageEntry[] = [];
    for (let i = 0; i < junk; i++) planted.push([enc.encode(`junk ${i}`), Uint8Array.of(1, ...new Uint8Array(40))]);
    await inner.apply({ puts: [...planted, ...(await own.entries()).filter(([k]) => utf8(k) !== utf8(KEY_CHECK))], deletes: [] });
    return { key, inner, planted };
  }
  const timed = async <T>(fn: () => Promise<T>) => {
    const start = performance.now();
    const out = await fn().catch((err: unknown) => err);
    return { out, ms: performance.now() - start };
  };

  it('50,000 failed records planted ahead: a wrong key is STORAGE_KEY after at most 65 tries (was: one per record, ~3 s here, over a minute at a million), the right key opens at the format marker (was: after all the junk)', async () => {
    const { key, inner, planted } = await junkAhead(50_000);
    const size = inner.size;
    const wrong = await timed(() => EncryptedStorageAdapter.open(inner, key32()));
    expect(label(wrong.out as lib.MlsError)).toEqual([lib.MlsError, 'STORAGE_KEY', WRONG_KEY]);
    expect(inner.size).toBe(size);
    const right = await timed(() => EncryptedStorageAdapter.open(inner, key));
    expect(right.out).toBeInstanceOf(EncryptedStorageAdapter);
    expect([wrong.ms < 1000, right.ms < 1000]).toEqual([true, true]);
    // The junk gone, the client goes on.
    await inner.apply({ puts: [], deletes: planted.map(([k]) => k) });
    const client = await MlsClient.open({ storage: await EncryptedStorageAdapter.open(inner, key) });
    expect(client.identities().length).toBe(1);
    client.free();
  });

  it('the limit of the bound: the format marker gone too and 64 failed records ahead, the right key is STORAGE_KEY, nothing written (a denial, as one changed identity record is); 63 ahead, it opens', async () => {
    for (const [junk, opens] of [
      [64, false],
      [63, true],
    ] as const) {
      const { key, inner } = await junkAhead(junk);
      await inner.apply({ puts: [], deletes: [FORMAT_MARKER] });
      const size = inner.size;
      const out = await EncryptedStorageAdapter.open(inner, key).catch((err: lib.MlsError) => err);
      if (opens) expect(out).toBeInstanceOf(EncryptedStorageAdapter);
      else {
        expect(label(out as lib.MlsError)).toEqual([lib.MlsError, 'STORAGE_KEY', WRONG_KEY]);
        expect(inner.size).toBe(size);
      }
    }
  });
});

describe('state at rest: sixth attacker review (the format kept, a key check or protection row deleted)', () => {
  it('SQLite: the key check deleted, a wrong key is STORAGE_KEY and the clear STORAGE_FORMAT, neither writes; the right key opens (was: STORAGE_KEY for good) and writes it back; a wrong key is then refused by it', async () => {
    const { file, sql, dump, meta, works } = await sqliteWorld();
    sql("DELETE FROM meta WHERE key = 'key-check'");
    const before = dump();
    expect(label(await mlsError(() => SqliteStorageAdapter.open(file, { key: key32() })))).toEqual([lib.MlsError, 'STORAGE_KEY', WRONG_KEY]);
    expect(label(await mlsError(() => SqliteStorageAdapter.open(file, { encryption: false })))).toEqual([lib.MlsError, 'STORAGE_FORMAT', 'SQLite storage is aes-256-gcm-protected; opened as none']);
    expect(dump()).toBe(before);
    expect(await works()).toBe(true);
    expect(meta()).toEqual(['encryption', 'format', 'key-check']);
    expect((await mlsError(() => SqliteStorageAdapter.open(file, { key: key32() }))).code).toBe('STORAGE_KEY');
  });

  it('SQLite: the `encryption` row deleted, the right key opens (was: STORAGE_FORMAT "undefined-protected" for good) and writes it back; the clear is STORAGE_FORMAT by the key check, nothing written', async () => {
    const { file, sql, dump, meta, works } = await sqliteWorld();
    sql("DELETE FROM meta WHERE key = 'encryption'");
    const before = dump();
    expect(label(await mlsError(() => SqliteStorageAdapter.open(file, { encryption: false })))).toEqual([lib.MlsError, 'STORAGE_FORMAT', 'SQLite storage is aes-256-gcm-protected; opened as none']);
    expect(label(await mlsError(() => SqliteStorageAdapter.open(file, { key: key32() })))).toEqual([lib.MlsError, 'STORAGE_KEY', WRONG_KEY]);
    expect(dump()).toBe(before);
    expect(await works()).toBe(true);
    expect(meta()).toEqual(['encryption', 'format', 'key-check']);
  });

  it('SQLite: both deleted, the format kept: the records decide (a wrong key STORAGE_KEY, the clear STORAGE_FORMAT, nothing written); the right key opens and writes both back', async () => {
    const { file, sql, dump, meta, works } = await sqliteWorld();
    sql("DELETE FROM meta WHERE key <> 'format'");
    const before = dump();
    expect(label(await mlsError(() => SqliteStorageAdapter.open(file, { key: key32() })))).toEqual([lib.MlsError, 'STORAGE_KEY', WRONG_KEY]);
    expect(label(await mlsError(() => SqliteStorageAdapter.open(file, { encryption: false })))).toEqual([lib.MlsError, 'STORAGE_FORMAT', 'SQLite storage holds sealed records; opened as none']);
    expect(dump()).toBe(before);
    expect(await works()).toBe(true);
    expect(meta()).toEqual(['encryption', 'format', 'key-check']);
  });

  it('a changed key check stays a refusal for every key, the right one too (decision, PROTOCOL.md §2.6): else a record copied from a database under a wrong key would let that key replace an intact check', async () => {
    const { file, sql, dump, key } = await sqliteWorld();
    const other = await sqliteWorld();
    const db = new Database(other.file);
    const otherCheck = (db.prepare("SELECT value FROM meta WHERE key = 'key-check'").get() as { value: string }).value;
    db.close();
    sql("UPDATE meta SET value = ? WHERE key = 'key-check'", otherCheck);
    const before = dump();
    expect(label(await mlsError(() => SqliteStorageAdapter.open(file, { key })))).toEqual([lib.MlsError, 'STORAGE_KEY', WRONG_KEY]);
    expect(dump()).toBe(before);
  });
});

describe('state at rest: sixth attacker review (deleteGroup of a group set aside deletes only its own)', () => {
  it("failed bindings planted under a phantom group naming g2's bound PSK and a client-wide one: deleteGroup of the phantom deletes its keys and neither PSK (was: both deleted from the core's store)", async () => {
    const inner = new MemoryStorageAdapter();
    const key = key32();
    const { alice, g1, g2 } = await twoGroups(lib, await EncryptedStorageAdapter.open(inner, key));
    const [bound, wide] = ['bound to g2', 'client-wide'].map((n) => enc.encode(n)) as [Uint8Array, Uint8Array];
    await alice.psks.store(bound, key32(), { group: g2.id });
    await alice.psks.store(wide, key32());
    alice.free();
    const stored = async () => {
      const keys = (await inner.entries()).map(([k]) => k).filter((k) => utf8(k.subarray(0, 3)) === 'Psk');
      return [bound, wide].filter((id) => keys.some((k) => Buffer.from(k).indexOf(id) >= 0)).map(utf8);
    };
    const phantom = enc.encode('phantom');
    const junk = Uint8Array.of(1, ...new Uint8Array(40));
    const binding = (id: Uint8Array) => enc.encode(`\u0000paired-mls/group-record/${toHex(phantom)}/\u0000psk/${toHex(id)}`);
    const planted = [groupRecordKey('Tree', phantom), binding(bound), binding(wide)];
    await inner.apply({ puts: planted.map((k): lib.StorageEntry => [k, junk]), deletes: [] });

    const client = await MlsClient.open({ storage: await EncryptedStorageAdapter.open(inner, key) });
    expect(client.groupIds().map(toHex).sort()).toEqual([toHex(g1.id), toHex(g2.id), toHex(phantom)].sort());
    await client.deleteGroup(phantom);
    expect(await stored()).toEqual(['bound to g2', 'client-wide']);
    for (const k of planted) expect(await inner.get(k)).toBeUndefined();
    // g2 still deletes its own bound PSK with it.
    await client.deleteGroup(g2.id);
    expect(await stored()).toEqual(['client-wide']);
    client.free();
  });
});
