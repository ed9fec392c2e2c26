/**
 * Attacker review of client state at rest (docs/PROTOCOL.md §2.4, §2.6):
 * someone who can write a device's stored state but holds no key.
 * - SQLite is dynamically typed: a cell edited to another type than BLOB
 *   (a value, a key, the key check) must be refused like a changed record
 *   (STORAGE_TAMPERED, the group set aside; STORAGE_KEY for the key
 *   check), not surface a TypeError wrapped as STORAGE or a plain Error.
 * - A group set aside after tampering must be deletable: `deleteGroup`
 *   answered UNKNOWN_GROUP, so the group stayed listed and refusing for
 *   good, its intact sealed secrets stayed on disk, and it could not be
 *   cleared before a rejoin.
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

const { MlsClient } = lib;
const key32 = () => crypto.getRandomValues(new Uint8Array(32));

/** A storage attacker's edit: one bit of a group's sealed Tree record flipped in `inner` (below the encryption). */
async function flipTreeByte(inner: lib.StorageAdapter, groupId: Uint8Array): Promise<void> {
  const tree = (await inner.get(groupRecordKey('Tree', groupId)))!;
  tree[20]! ^= 1;
  await inner.apply({ puts: [[groupRecordKey('Tree', groupId), tree]], deletes: [] });
}

describe('state at rest: attacker review', () => {
  it('a SQLite cell retyped from BLOB is STORAGE_TAMPERED (value: its group set aside), a key check not in hex STORAGE_KEY', async () => {
    const key = key32();
    const base = join(mkdtempSync(join(tmpdir(), 'paired-mls-store-review-')), 'base.sqlite');
    const storage = await SqliteStorageAdapter.open(base, { key });
    const { alice, carol, g1, g2 } = await twoGroups(lib, storage);
    alice.free();
    storage.close();
    const copy = async (name: string, sql: string, ...args: unknown[]): Promise<string> => {
      const file = base.replace('base', name);
      const src = new Database(base);
      await src.backup(file);
      src.close();
      const db = new Database(file);
      if (args.length) db.prepare(sql).run(...args);
      else db.exec(sql);
      db.close();
      return file;
    };
    const tree = Buffer.from(groupRecordKey('Tree', g1.id));
    for (const [name, sql] of [
      ['int', 'UPDATE entries SET value = 5 WHERE key = ?'],
      ['text', "UPDATE entries SET value = 'x' WHERE key = ?"],
    ] as const) {
      const file = await copy(name, sql, tree);
      const adapter = await SqliteStorageAdapter.open(file, { key });
      expect((await mlsError(() => adapter.get(tree))).code, name).toBe('STORAGE_TAMPERED');
      const client = await MlsClient.open({ storage: adapter });
      expect((await mlsError(() => client.group(g1.id))).code, name).toBe('STORAGE_TAMPERED');
      // Once only: carol moves on, so the next copy's g2 is behind her.
      if (name === 'int') {
        const auth = await stillWorks(client.group(g2.id), carol, 'after a retyped cell');
        expect(auth.alice).toBe(auth.carol);
      }
      client.free();
      adapter.close();
    }
    // A key that is not bytes cannot be attributed to a group: the whole load is refused.
    for (const [name, sql] of [
      ['key-text', "INSERT INTO entries (key, value) VALUES ('x', x'00')"],
      ['key-null', "INSERT INTO entries (key, value) VALUES (NULL, x'00')"],
    ] as const) {
      const adapter = await SqliteStorageAdapter.open(await copy(name, sql), { key });
      expect((await mlsError(() => MlsClient.open({ storage: adapter }))).code, name).toBe('STORAGE_TAMPERED');
      adapter.close();
    }
    for (const [name, sql] of [
      ['check-text', "UPDATE meta SET value = 'zz' WHERE key = 'key-check'"],
      ['check-blob', "UPDATE meta SET value = x'0102' WHERE key = 'key-check'"],
      // Hex of odd length, and (the column retyped) a number, a BLOB of hex
      // digits: fromHex threw a plain Error, or read the BLOB as its text.
      // The retyped column is a redefined table, refused before the key
      // check since test/storage-review2.test.ts (SQLite schema).
      ['check-odd', "UPDATE meta SET value = 'abc' WHERE key = 'key-check'"],
      ['check-int', "ALTER TABLE meta RENAME TO m; CREATE TABLE meta (key TEXT PRIMARY KEY, value); INSERT INTO meta SELECT * FROM m; DROP TABLE m; UPDATE meta SET value = 12 WHERE key = 'key-check'"],
      ['check-hexblob', "UPDATE meta SET value = CAST(value AS BLOB) WHERE key = 'key-check'"],
    ] as const) {
      const file = await copy(name, sql);
      expect((await mlsError(() => SqliteStorageAdapter.open(file, { key }))).code, name).toBe(name === 'check-int' ? 'STORAGE_TAMPERED' : 'STORAGE_KEY');
    }
  });

  it('a group set aside after tampering can be deleted: its records leave the store, the client reopens and rejoins it', async () => {
    const inner = new lib.MemoryStorageAdapter();
    const key = key32();
    const { alice, bob, carol, g1, g2 } = await twoGroups(lib, await lib.EncryptedStorageAdapter.open(inner, key));
    const aliceLeaf = g1.ownLeafIndex;
    alice.free();
    await flipTreeByte(inner, g1.id);

    let client = await MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(inner, key) });
    expect((await mlsError(() => client.group(g1.id))).code).toBe('STORAGE_TAMPERED');
    await client.deleteGroup(g1.id); // was UNKNOWN_GROUP
    expect(client.groupIds().map((id) => lib.toHex(id))).toEqual([lib.toHex(g2.id)]);
    expect((await mlsError(() => client.group(g1.id))).code).toBe('UNKNOWN_GROUP');
    // None of g1's records (sealed secrets among them) is left.
    expect((await inner.entries()).filter(([k]) => includes(k, g1.id))).toEqual([]);
    client.free();

    // Reopened: g2 works, and bob's Welcome brings alice back into g1.
    client = await MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(inner, key) });
    const auth = await stillWorks(client.group(g2.id), carol, 'after the delete');
    expect(auth.alice).toBe(auth.carol);
    const { welcome } = await bob.commit({ remove: [aliceLeaf], add: [await client.createKeyPackage(client.identities()[0]!)] });
    await bob.mergePendingCommit();
    await client.joinFromWelcome(welcome);
    client.free();
    client = await MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(inner, key) });
    const back = await bob.process(await client.group(g1.id).encrypt('back'));
    expect(back.kind === 'application' && new TextDecoder().decode(back.data)).toBe('back');
    client.free();
  });
});

describe('state at rest: second attacker review (deleteGroup of a group set aside)', () => {
  const enc = new TextEncoder();
  const indexKey = (hex: string) => enc.encode(`\u0000paired-mls/group/${hex}`);
  const copyOf = async (from: lib.MemoryStorageAdapter) => {
    const to = new lib.MemoryStorageAdapter();
    await to.apply({ puts: await from.entries(), deletes: [] });
    return to;
  };

  it('a planted group index entry naming no canonical group id refuses the open (was: every record of no group dropped, or another group claimed)', async () => {
    const inner = new lib.MemoryStorageAdapter();
    const key = key32();
    const { alice, carol, g1, g2 } = await twoGroups(lib, await lib.EncryptedStorageAdapter.open(inner, key));
    await alice.putRecord('review/layer', enc.encode('layer state'));
    alice.free();
    const g1hex = lib.toHex(g1.id);
    const garbage = new Uint8Array(40).fill(7);
    // '': the branch set aside group "" and with it (its owner sentinel was '')
    // every record of no group: identities, signature keys, layer records
    // were dropped at open, and deleteGroup(empty id) deleted them all.
    // Uppercase / odd-length ids: the same prefix as g1's records, so
    // g1's records went to a ghost no deleteGroup call can name.
    for (const hex of ['', g1hex.toUpperCase(), `${g1hex}0`]) {
      const store = await copyOf(inner);
      // g1's own index entry tampered and moved behind the planted one.
      const index = (await store.get(indexKey(g1hex)))!;
      index[5]! ^= 1;
      await store.apply({ puts: [], deletes: [indexKey(g1hex)] });
      await store.apply({ puts: [[indexKey(hex), garbage], [indexKey(g1hex), index]], deletes: [] });
      const storage = await lib.EncryptedStorageAdapter.open(store, key);
      expect((await mlsError(() => MlsClient.open({ storage }))).code, JSON.stringify(hex)).toBe('STORAGE_TAMPERED');
    }
    // The honest store: a deleted set-aside group takes only its own records.
    const store = await copyOf(inner);
    const index = (await store.get(indexKey(g1hex)))!;
    index[5]! ^= 1;
    await store.apply({ puts: [[indexKey(g1hex), index]], deletes: [] });
    const client = await MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(store, key) });
    const before = (await store.entries()).filter(([k]) => !includes(k, g1.id) && !includes(k, indexKey(g1hex))).map(([k]) => lib.toHex(k));
    await client.deleteGroup(g1.id);
    expect((await store.entries()).map(([k]) => lib.toHex(k)).sort()).toEqual(before.sort());
    expect(client.identities().length).toBe(1);
    expect(new TextDecoder().decode(client.record('review/layer'))).toBe('layer state');
    const auth = await stillWorks(client.group(g2.id), carol, 'after the ghost');
    expect(auth.alice).toBe(auth.carol);
    client.free();
  });

  it('a Welcome into a group set aside replaces its stored records (was: the new group refused STORAGE_TAMPERED, the old records stayed mixed in, deleteGroup left the new ones)', async () => {
    const inner = new lib.MemoryStorageAdapter();
    const key = key32();
    const { alice, bob, g1 } = await twoGroups(lib, await lib.EncryptedStorageAdapter.open(inner, key));
    const aliceLeaf = g1.ownLeafIndex;
    alice.free();
    await flipTreeByte(inner, g1.id);
    const old = new Map((await inner.entries()).filter(([k]) => includes(k, g1.id)).map(([k, v]) => [lib.toHex(k), lib.toHex(v)]));

    let client = await MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(inner, key) });
    expect((await mlsError(() => client.group(g1.id))).code).toBe('STORAGE_TAMPERED');
    // No deleteGroup first: bob's Welcome brings alice back into g1.
    const { welcome } = await bob.commit({ remove: [aliceLeaf], add: [await client.createKeyPackage(client.identities()[0]!)] });
    await bob.mergePendingCommit();
    await client.joinFromWelcome(welcome);
    // None of the old records is left as it was (each is deleted or written anew).
    const stale = (await inner.entries()).filter(([k, v]) => old.get(lib.toHex(k)) === lib.toHex(v));
    expect(stale.length).toBe(0);
    const hi = await bob.process(await client.group(g1.id).encrypt('hi'));
    expect(hi.kind === 'application' && new TextDecoder().decode(hi.data)).toBe('hi');
    // deleteGroup now deletes the new group (the core's), and after a reopen nothing of g1 is left.
    await client.deleteGroup(g1.id);
    expect((await inner.entries()).filter(([k]) => includes(k, g1.id))).toEqual([]);
    client.free();
    client = await MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(inner, key) });
    expect(client.groupIds().length).toBe(1);
    client.free();
  });

  it('a group whose index entry failed is listed and answers STORAGE_TAMPERED, like any group set aside (was: unlisted, UNKNOWN_GROUP)', async () => {
    const inner = new lib.MemoryStorageAdapter();
    const key = key32();
    const { alice, carol, g1, g2 } = await twoGroups(lib, await lib.EncryptedStorageAdapter.open(inner, key));
    alice.free();
    const index = (await inner.get(indexKey(lib.toHex(g1.id))))!;
    index[5]! ^= 1;
    await inner.apply({ puts: [[indexKey(lib.toHex(g1.id)), index]], deletes: [] });
    const client = await MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(inner, key) });
    expect(client.groupIds().map((id) => lib.toHex(id)).sort()).toEqual([lib.toHex(g1.id), lib.toHex(g2.id)].sort());
    expect((await mlsError(() => client.group(g1.id))).code).toBe('STORAGE_TAMPERED');
    await client.deleteGroup(g1.id);
    expect((await inner.entries()).filter(([k]) => includes(k, g1.id) || includes(k, indexKey(lib.toHex(g1.id))))).toEqual([]);
    const auth = await stillWorks(client.group(g2.id), carol, 'after the index');
    expect(auth.alice).toBe(auth.carol);
    client.free();
  });
});

describe('state at rest: third attacker review (the batch that replaces a group set aside)', () => {
  /** Copies of `from`: one per scenario, each client on its own. */
  const copyOf = async (from: lib.MemoryStorageAdapter) => {
    const to = new lib.MemoryStorageAdapter();
    await to.apply({ puts: await from.entries(), deletes: [] });
    return to;
  };

  it('a Welcome into a group set aside is stored by an adapter that applies its puts before its deletes (was: the joined group lost at the next open)', async () => {
    // Atomic as StorageAdapter.apply asks; the order within a batch is its
    // own (the contract names none, and no batch put and deleted one key).
    class PutsFirst extends lib.MemoryStorageAdapter {
      override async apply(batch: lib.StorageBatch): Promise<void> {
        await super.apply({ puts: batch.puts, deletes: [] });
        await super.apply({ puts: [], deletes: batch.deletes });
      }
    }
    const inner = new PutsFirst();
    const key = key32();
    const { alice, bob, carol, g1, g2 } = await twoGroups(lib, await lib.EncryptedStorageAdapter.open(inner, key));
    const aliceLeaf = g1.ownLeafIndex;
    alice.free();
    await flipTreeByte(inner, g1.id);
    let client = await MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(inner, key) });
    expect((await mlsError(() => client.group(g1.id))).code).toBe('STORAGE_TAMPERED');
    const { welcome } = await bob.commit({ remove: [aliceLeaf], add: [await client.createKeyPackage(client.identities()[0]!)] });
    await bob.mergePendingCommit();
    await client.joinFromWelcome(welcome);
    client.free();
    // Reopened: the joined group is there (its index entry and records were deleted after being written).
    client = await MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(inner, key) });
    expect(client.groupIds().map((id) => lib.toHex(id)).sort()).toEqual([lib.toHex(g1.id), lib.toHex(g2.id)].sort());
    const back = await bob.process(await client.group(g1.id).encrypt('back'));
    expect(back.kind === 'application' && new TextDecoder().decode(back.data)).toBe('back');
    const auth = await stillWorks(client.group(g2.id), carol, 'after the rejoin');
    expect(auth.alice).toBe(auth.carol);
    client.free();
  });

  it('a group set aside under 200,000 planted failed records is deleted, or rejoined, in one batch (was: a RangeError after the join, the core holding a group the store did not)', async () => {
    const inner = new lib.MemoryStorageAdapter();
    const key = key32();
    const { alice, bob, carol, g1, g2 } = await twoGroups(lib, await lib.EncryptedStorageAdapter.open(inner, key));
    const aliceLeaf = g1.ownLeafIndex;
    alice.free();
    // Failed records under g1's key prefix: more keys than one call's
    // arguments hold (mutate spread the kept keys into push()).
    const base = groupRecordKey('Tree', g1.id);
    const planted: [Uint8Array, Uint8Array][] = [];
    for (let i = 0; i < 200_000; i++) {
      const k = new Uint8Array(base.length + 4);
      k.set(base);
      new DataView(k.buffer).setUint32(base.length, i);
      planted.push([k, new Uint8Array(1)]);
    }
    await inner.apply({ puts: planted, deletes: [] });
    const leftOf = async (store: lib.MemoryStorageAdapter) => (await store.entries()).filter(([k]) => includes(k, g1.id)).length;
    const plantedLeft = async (store: lib.MemoryStorageAdapter) => (await store.entries()).filter(([k]) => k.length === base.length + 4 && includes(k, base)).length;

    // deleteGroup, the way out PROTOCOL §2.6 names.
    let store = await copyOf(inner);
    let client = await MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(store, key) });
    expect((await mlsError(() => client.group(g1.id))).code).toBe('STORAGE_TAMPERED');
    await client.deleteGroup(g1.id);
    expect(await leftOf(store)).toBe(0);
    const auth = await stillWorks(client.group(g2.id), carol, 'after deleting the planted group');
    expect(auth.alice).toBe(auth.carol);
    client.free();

    // A Welcome into it, without deleteGroup first. Was: a RangeError once
    // the core had joined; the client then sent in g1 from a state never
    // stored, and a deleteGroup took the core's path, deleting g1's index
    // entry but not the planted records: the next open refused everything.
    store = await copyOf(inner);
    client = await MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(store, key) });
    const { welcome } = await bob.commit({ remove: [aliceLeaf], add: [await client.createKeyPackage(client.identities()[0]!)] });
    await bob.mergePendingCommit();
    await client.joinFromWelcome(welcome);
    client.free();
    // What the core held is what the store holds: the joined group, none of the planted records.
    expect(await plantedLeft(store)).toBe(0);
    expect(await leftOf(store)).toBeGreaterThan(0);
    client = await MlsClient.open({ storage: await lib.EncryptedStorageAdapter.open(store, key) });
    const back = await bob.process(await client.group(g1.id).encrypt('back'));
    expect(back.kind === 'application' && new TextDecoder().decode(back.data)).toBe('back');
    client.free();
  });
});
