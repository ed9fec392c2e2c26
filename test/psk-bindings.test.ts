/**
 * External PSKs bound to a group (`client.psks.store(id, secret, { group })`,
 * `psks.bind`, `psks.unbind`; docs/PROTOCOL.md §2.5): the batch that
 * deletes the group deletes them from the core's store — also for a group
 * set aside at open, and for a binding whose group is gone at open. A
 * layer's per-group PSKs (recovery proofs, DMLS epoch PSKs) outlived the
 * group before (test/recovery-delete, test/dmls-delete).
 */
import { describe, expect, it } from 'vitest';
import * as lib from 'paired-mls';
import { mlsError } from './helpers.js';
// @ts-expect-error plain JS module shared with the browser page
import { groupRecordKey, includes, twoGroups } from './browser/storage-checks.js';

const { MlsClient, MemoryStorageAdapter, EncryptedStorageAdapter, toHex, utf8 } = lib;
const enc = new TextEncoder();
const random = () => crypto.getRandomValues(new Uint8Array(32));
/** The PSK ids (hex) of the core's stored PSKs, from their keys (label `Psk`, then the id inside). */
const storedPsks = async (store: lib.StorageAdapter, ids: Uint8Array[]) => {
  const keys = (await store.entries()).map(([k]) => k).filter((k) => utf8(k.subarray(0, 3)) === 'Psk');
  return ids.filter((id) => keys.some((k) => Buffer.from(k).indexOf(id) >= 0)).map(toHex);
};
/** The binding records' keys, as text, without the prefix. */
const bindings = async (store: lib.StorageAdapter) =>
  (await store.entries())
    .map(([k]) => utf8(k))
    .filter((k) => k.includes('/\u0000psk/'))
    .map((k) => k.slice('\u0000paired-mls/group-record/'.length))
    .sort();
const ids = ['one', 'two', 'three', 'four'].map((n) => enc.encode(`psk ${n}`));
const [one, two, three, four] = ids as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];

describe('external PSKs bound to a group', () => {
  it('go in the batch that deletes their group (stored bound, or bound later); unbound or of another group they stay; delete drops the binding', async () => {
    const storage = new MemoryStorageAdapter();
    const { alice, g1, g2 } = await twoGroups(lib, storage);
    await alice.psks.store(one, random(), { group: g1.id });
    await alice.psks.store(two, random(), { group: g2.id });
    await alice.psks.store(three, random());
    await alice.psks.store(four, random());
    await alice.psks.bind(four, g1.id);
    expect((await mlsError(() => alice.psks.store(random(), random(), { group: random() }))).code).toBe('UNKNOWN_GROUP');
    expect((await mlsError(() => alice.psks.bind(three, random()))).code).toBe('UNKNOWN_GROUP');
    expect((await mlsError(() => alice.putGroupRecord(g1.id, `\u0000psk/${toHex(three)}`, new Uint8Array(0)))).code).toBe('INVALID_ARGUMENT');
    expect(await bindings(storage)).toEqual([`${toHex(g1.id)}/\u0000psk/${toHex(one)}`, `${toHex(g1.id)}/\u0000psk/${toHex(four)}`, `${toHex(g2.id)}/\u0000psk/${toHex(two)}`].sort());
    alice.free();

    const client = await MlsClient.open({ storage });
    await client.psks.unbind(four);
    await client.deleteGroup(g1.id);
    expect(await storedPsks(storage, ids)).toEqual([two, three, four].map(toHex));
    expect(await bindings(storage)).toEqual([`${toHex(g2.id)}/\u0000psk/${toHex(two)}`]);
    await client.psks.delete(two);
    expect(await bindings(storage)).toEqual([]);
    await client.deleteGroup(g2.id);
    expect(await storedPsks(storage, ids)).toEqual([three, four].map(toHex));
  });

  it('of a group set aside at open go with its deleteGroup; one whose group is gone at open (a store changed from outside) goes at open', async () => {
    const inner = new MemoryStorageAdapter();
    const key = random();
    const { alice, g1, g2 } = await twoGroups(lib, await EncryptedStorageAdapter.open(inner, key));
    await alice.psks.store(one, random(), { group: g1.id });
    await alice.psks.store(two, random(), { group: g2.id });
    alice.free();
    // A tampered openmls record of g1 sets it aside.
    const tree = groupRecordKey('Tree', g1.id);
    const value = (await inner.get(tree))!;
    value[20]! ^= 1;
    await inner.apply({ puts: [[tree, value]], deletes: [] });
    // g2 deleted from outside but for its group records: its binding is an orphan. (Its index entry
    // alone no longer does: a group whose records are stored is listed, test/storage-review2.test.ts.)
    const g2Records = (await inner.entries()).map(([k]) => k).filter((k) => k[0] !== 0 && includes(k, g2.id));
    await inner.apply({ puts: [], deletes: [enc.encode(`\u0000paired-mls/group/${toHex(g2.id)}`), ...g2Records] });

    const client = await MlsClient.open({ storage: await EncryptedStorageAdapter.open(inner, key) });
    expect(await storedPsks(inner, ids)).toEqual([one].map(toHex));
    expect(await bindings(inner)).toEqual([`${toHex(g1.id)}/\u0000psk/${toHex(one)}`]);
    await client.deleteGroup(g1.id);
    expect(await storedPsks(inner, ids)).toEqual([]);
    expect(await bindings(inner)).toEqual([]);
  });
});
