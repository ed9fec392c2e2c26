/**
 * Fifth attacker review of state at rest (docs/PROTOCOL.md §2.6), Node
 * side (IndexedDB: test/browser-storage-review3.test.ts). The attacker
 * writes the stored records (a stolen-then-returned profile, malware with
 * file access, a sync tool) but holds no key.
 * - Every record that says how the store is protected deleted (the key
 *   check, the format, SQLite's meta rows, the client's format marker):
 *   the adapter took the store for a new one and wrote its own. A wrong
 *   key stored its key check over records sealed under the right key (the
 *   client then refused STORAGE_TAMPERED), and the right key was
 *   STORAGE_KEY for good; opened in the clear, SQLite wrote `none` and the
 *   right key was STORAGE_FORMAT for good.
 * - One record of a group whose index entry is gone (the group listed by
 *   its records alone) changed: the whole open was STORAGE_TAMPERED, so
 *   one record denied the device every group.
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
import { groupRecordKey, includes, stillWorks, twoGroups } from './browser/storage-checks.js';

const { MlsClient, EncryptedStorageAdapter } = lib;
const enc = new TextEncoder();
const key32 = () => crypto.getRandomValues(new Uint8Array(32));
const indexKey = (id: Uint8Array) => enc.encode(`\u0000paired-mls/group/${lib.toHex(id)}`);
const FORMAT_MARKER = enc.encode('\u0000paired-mls/format');
const KEY_CHECK = enc.encode('\u0000paired-mls/key-check');
const WRONG_KEY = 'the storage was encrypted under another key (or its key check was changed)';
const snapshot = async (inner: lib.StorageAdapter) => JSON.stringify((await inner.entries()).map(([k, v]) => [lib.toHex(k), lib.toHex(v)]).sort());

/** `client`'s group `groupId` still reaches `peer`: a message sent and read. */
async function sends(client: lib.MlsClient, groupId: Uint8Array, peer: lib.Group, text: string): Promise<void> {
  const got = await peer.process(await client.group(groupId).encrypt(text));
  expect(got.kind === 'application' && new TextDecoder().decode(got.data)).toBe(text);
}

/** Alice on a wrapped memory store in g1 (bob) and g2 (carol), g1 with a layer record; closed. */
async function wrappedWorld() {
  const inner = new lib.MemoryStorageAdapter();
  const key = key32();
  const world = await twoGroups(lib, await EncryptedStorageAdapter.open(inner, key));
  await world.alice.putGroupRecord(world.g1.id, 'layer', enc.encode('about g1'));
  const leaf = world.g1.ownLeafIndex as number;
  world.alice.free();
  const open = async (k: Uint8Array = key) => MlsClient.open({ storage: await EncryptedStorageAdapter.open(inner, k) });
  return { ...world, inner, key, leaf, open };
}

/** Alice on an encrypted SQLite file in g1 (bob) and g2 (carol); closed. */
async function sqliteWorld() {
  const key = key32();
  const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-review3-')), 'a.sqlite');
  const storage = await SqliteStorageAdapter.open(file, { key });
  const world = await twoGroups(lib, storage);
  world.alice.free();
  storage.close();
  const sql = (text: string, ...args: unknown[]) => {
    const db = new Database(file);
    if (args.length) db.prepare(text).run(...args);
    else db.exec(text);
    db.close();
  };
  const dump = () => {
    const db = new Database(file);
    const rows = JSON.stringify([db.prepare('SELECT * FROM meta ORDER BY key').all(), db.prepare('SELECT hex(key), hex(value) FROM entries ORDER BY key').all()]);
    db.close();
    return rows;
  };
  return { ...world, key, file, sql, dump };
}

describe('state at rest: fifth attacker review (a store whose key check and format are both gone)', () => {
  it('wrapped: key check and format marker deleted, a wrong key is STORAGE_KEY and writes nothing (was: it stored its own key check; the right key was STORAGE_KEY for good); the right key opens everything', async () => {
    const { inner, bob, carol, g1, g2, open } = await wrappedWorld();
    await inner.apply({ puts: [], deletes: [KEY_CHECK, FORMAT_MARKER] });
    const before = await snapshot(inner);
    const wrong = await mlsError(() => EncryptedStorageAdapter.open(inner, key32()));
    expect([wrong.constructor, wrong.code, wrong.message]).toEqual([lib.MlsError, 'STORAGE_KEY', WRONG_KEY]);
    expect(await snapshot(inner)).toBe(before);

    const client = await open();
    expect(await inner.get(KEY_CHECK)).toBeInstanceOf(Uint8Array);
    expect(await inner.get(FORMAT_MARKER)).toBeInstanceOf(Uint8Array);
    expect(client.identities().length).toBe(1);
    expect(new TextDecoder().decode(client.groupRecord(g1.id, 'layer'))).toBe('about g1');
    await sends(client, g1.id, bob, 'right key');
    const auth = await stillWorks(client.group(g2.id), carol, 'and g2');
    expect(auth.alice).toBe(auth.carol);
    client.free();
  });

  it('SQLite: meta and the format marker deleted, a wrong key is STORAGE_KEY and the clear STORAGE_FORMAT, neither writes (was: each wrote its own meta, the right key refused for good); the right key opens everything', async () => {
    const { key, file, sql, dump, bob, carol, g1, g2 } = await sqliteWorld();
    sql('DELETE FROM meta');
    sql('DELETE FROM entries WHERE key = ?', Buffer.from(FORMAT_MARKER));
    const before = dump();
    const wrong = await mlsError(() => SqliteStorageAdapter.open(file, { key: key32() }));
    expect([wrong.constructor, wrong.code, wrong.message]).toEqual([lib.MlsError, 'STORAGE_KEY', WRONG_KEY]);
    const clear = await mlsError(() => SqliteStorageAdapter.open(file, { encryption: false }));
    expect([clear.constructor, clear.code, clear.message]).toEqual([lib.MlsError, 'STORAGE_FORMAT', 'SQLite storage holds sealed records; opened as none']);
    expect(dump()).toBe(before);

    const storage = await SqliteStorageAdapter.open(file, { key });
    const client = await MlsClient.open({ storage });
    await sends(client, g1.id, bob, 'right key');
    const auth = await stillWorks(client.group(g2.id), carol, 'and g2');
    expect(auth.alice).toBe(auth.carol);
    client.free();
    storage.close();
    // Its meta is back: a wrong key is refused by the key check again.
    expect((await mlsError(() => SqliteStorageAdapter.open(file, { key: key32() }))).code).toBe('STORAGE_KEY');
  });

  it('SQLite: the format row and the marker deleted, the key check kept, a wrong key is STORAGE_KEY by that key check and writes nothing (was: it wrote its own key check over it)', async () => {
    const { key, file, sql, dump, bob, g1 } = await sqliteWorld();
    sql("DELETE FROM meta WHERE key = 'format'");
    sql('DELETE FROM entries WHERE key = ?', Buffer.from(FORMAT_MARKER));
    const before = dump();
    const wrong = await mlsError(() => SqliteStorageAdapter.open(file, { key: key32() }));
    expect([wrong.constructor, wrong.code, wrong.message]).toEqual([lib.MlsError, 'STORAGE_KEY', WRONG_KEY]);
    expect(dump()).toBe(before);
    const storage = await SqliteStorageAdapter.open(file, { key });
    const client = await MlsClient.open({ storage });
    await sends(client, g1.id, bob, 'right key');
    client.free();
    storage.close();
  });

  it('a store with nothing in it still opens as new, under any key (SQLite with its meta deleted; wrapped without a key check)', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'paired-mls-review3-')), 'empty.sqlite');
    (await SqliteStorageAdapter.open(file, { key: key32() })).close();
    const db = new Database(file);
    db.exec('DELETE FROM meta');
    db.close();
    const key = key32();
    const storage = await SqliteStorageAdapter.open(file, { key });
    const client = await MlsClient.open({ storage });
    await client.createIdentity('new', 1);
    client.free();
    storage.close();
    (await SqliteStorageAdapter.open(file, { key })).close();

    const inner = new lib.MemoryStorageAdapter();
    await EncryptedStorageAdapter.open(inner, key32());
    await inner.apply({ puts: [], deletes: [KEY_CHECK] });
    await EncryptedStorageAdapter.open(inner, key);
    expect(inner.size).toBe(1);
  });
});

describe('state at rest: fifth attacker review (a failed record of a group listed only by its records)', () => {
  /** The wrapped world with g1's index entry deleted and one bit of its sealed Tree flipped. */
  async function tamperedUnindexed() {
    const world = await wrappedWorld();
    const { inner, g1 } = world;
    const tree = (await inner.get(groupRecordKey('Tree', g1.id)))!;
    tree[20]! ^= 1;
    await inner.apply({ puts: [[groupRecordKey('Tree', g1.id), tree]], deletes: [indexKey(g1.id)] });
    return world;
  }

  it('wrapped: the group is set aside (listed, STORAGE_TAMPERED, its group records too) and g2 works (was: the whole open STORAGE_TAMPERED); deleteGroup takes every record naming it, then a rejoin', async () => {
    const { inner, open, bob, carol, g1, g2, leaf } = await tamperedUnindexed();
    let client = await open();
    expect(client.groupIds().map(lib.toHex).sort()).toEqual([lib.toHex(g1.id), lib.toHex(g2.id)].sort());
    const refused = await mlsError(() => client.group(g1.id));
    expect([refused.constructor, refused.code, refused.message]).toEqual([lib.MlsError, 'STORAGE_TAMPERED', "this group's stored records failed authentication"]);
    expect((await mlsError(() => client.groupRecord(g1.id, 'layer'))).code).toBe('STORAGE_TAMPERED');
    const auth = await stillWorks(client.group(g2.id), carol, 'next to the set-aside group');
    expect(auth.alice).toBe(auth.carol);

    await client.deleteGroup(g1.id);
    expect(client.groupIds().map(lib.toHex)).toEqual([lib.toHex(g2.id)]);
    expect((await inner.entries()).filter(([k]: lib.StorageEntry) => includes(k, g1.id))).toEqual([]);
    const { welcome } = await bob.commit({ remove: [leaf], add: [await client.createKeyPackage(client.identities()[0]!)] });
    await bob.mergePendingCommit();
    await client.joinFromWelcome(welcome);
    client.free();
    client = await open();
    await sends(client, g1.id, bob, 'rejoined');
    client.free();
  });

  it('SQLite: the same (was: the whole open STORAGE_TAMPERED)', async () => {
    const { key, file, sql, bob, carol, g1, g2 } = await sqliteWorld();
    const treeKey = Buffer.from(groupRecordKey('Tree', g1.id));
    const db = new Database(file);
    const tree = (db.prepare('SELECT value FROM entries WHERE key = ?').get(treeKey) as { value: Buffer }).value;
    tree[20]! ^= 1;
    db.prepare('UPDATE entries SET value = ? WHERE key = ?').run(tree, treeKey);
    db.close();
    sql('DELETE FROM entries WHERE key = ?', Buffer.from(indexKey(g1.id)));
    const storage = await SqliteStorageAdapter.open(file, { key });
    const client = await MlsClient.open({ storage });
    expect(client.groupIds().map(lib.toHex).sort()).toEqual([lib.toHex(g1.id), lib.toHex(g2.id)].sort());
    expect((await mlsError(() => client.group(g1.id))).code).toBe('STORAGE_TAMPERED');
    const auth = await stillWorks(client.group(g2.id), carol, 'next to the set-aside group');
    expect(auth.alice).toBe(auth.carol);
    await client.deleteGroup(g1.id);
    const left = new Database(file).prepare('SELECT key FROM entries').all() as { key: Buffer }[];
    expect(left.filter((r) => includes(new Uint8Array(r.key), g1.id))).toEqual([]);
    client.free();
    storage.close();
    void bob;
  });

  it('attribution: a failed record planted under an id no group has lists that id set aside, never another group; one naming the empty id or cut short refuses the open; none claims g2', async () => {
    const { inner, open, carol, g1, g2 } = await wrappedWorld();
    const junk = new Uint8Array(40);
    // g2's id with one more byte: its key starts with g2's id bytes, but its length says another group.
    const longer = Uint8Array.of(...g2.id, 0x41);
    const planted = groupRecordKey('Tree', longer);
    await inner.apply({ puts: [[planted, junk]], deletes: [] });
    let client = await open();
    expect(client.groupIds().map(lib.toHex).sort()).toEqual([lib.toHex(g1.id), lib.toHex(g2.id), lib.toHex(longer)].sort());
    expect((await mlsError(() => client.group(longer))).code).toBe('STORAGE_TAMPERED');
    const auth = await stillWorks(client.group(g2.id), carol, 'not claimed');
    expect(auth.alice).toBe(auth.carol);
    await client.deleteGroup(longer);
    expect(await inner.get(planted)).toBeUndefined();
    client.free();

    for (const key of [groupRecordKey('Tree', new Uint8Array(0)), Uint8Array.of(...enc.encode('Tree'), 0x01, 0x20, 0x01)]) {
      const before = await snapshot(inner);
      await inner.apply({ puts: [[key, junk]], deletes: [] });
      const refused = await mlsError(() => open());
      expect([refused.constructor, refused.code, refused.message]).toEqual([lib.MlsError, 'STORAGE_TAMPERED', '1 stored record(s) were changed, truncated or moved to another key']);
      await inner.apply({ puts: [], deletes: [key] });
      expect(await snapshot(inner)).toBe(before);
    }
    client = await open();
    await stillWorks(client.group(g2.id), carol, 'after the planted records went');
    client.free();
  });
});
