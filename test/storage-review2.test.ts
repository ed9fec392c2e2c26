/**
 * Fourth attacker review of client state at rest (docs/PROTOCOL.md §2.6):
 * someone who can read and write a device's stored records but holds no
 * key. What each record's change gets them:
 * - One record of a group deleted (or a deleted group's index entry put
 *   back, an older ciphertext of one record): the group is listed but does
 *   not load. `deleteGroup`, the way out, answered UNKNOWN_GROUP: the group
 *   stayed listed for good and its other sealed secrets stayed in the
 *   store; a Welcome joined over it left the earlier epoch's key pairs
 *   mixed in, which no later `deleteGroup` removed.
 * - Failed records planted under many group ids: the open attributed each
 *   to its group by trying every group's key prefix, quadratic time (8,000
 *   planted: 12 s; 100,000, some 10 MB: about half an hour of a frozen tab).
 * - An older ciphertext of any one record of a group put back under its own
 *   key (rollback, documented as not detected): every call on the group is
 *   refused with a typed error or goes on from the older value; none
 *   poisons the wasm instance or reaches the client's other group.
 */
import { describe, expect, it } from 'vitest';
import * as lib from 'paired-mls';
import { mlsError } from './helpers.js';
// @ts-expect-error plain JS module shared with the browser page
import { groupRecordKey, includes, stillWorks, twoGroups } from './browser/storage-checks.js';

const { MlsClient, EncryptedStorageAdapter } = lib;
const enc = new TextEncoder();
const key32 = () => crypto.getRandomValues(new Uint8Array(32));
const indexKey = (id: Uint8Array) => enc.encode(`\u0000paired-mls/group/${lib.toHex(id)}`);
/** The stored keys that name `id` (its openmls records, index entry and group records). */
const naming = async (inner: lib.StorageAdapter, id: Uint8Array) => (await inner.entries()).filter(([k]) => includes(k, id));

/** Alice (on an encrypted `inner`) in g1 with bob and g2 with carol, with a layer record about g1. */
async function setUp() {
  const inner = new lib.MemoryStorageAdapter();
  const key = key32();
  const world = await twoGroups(lib, await EncryptedStorageAdapter.open(inner, key));
  await world.alice.putGroupRecord(world.g1.id, 'layer', enc.encode('about g1'));
  const leaf = world.g1.ownLeafIndex as number;
  world.alice.free();
  const open = async () => MlsClient.open({ storage: await EncryptedStorageAdapter.open(inner, key) });
  return { ...world, inner, key, leaf, open };
}

describe('state at rest: fourth attacker review', () => {
  it('a listed group with one record deleted from outside is deleted with every record naming it (was: UNKNOWN_GROUP for good, its sealed secrets left); g2 works, g1 is rejoined', async () => {
    const { inner, bob, carol, g1, g2, leaf, open } = await setUp();
    await inner.apply({ puts: [], deletes: [groupRecordKey('Tree', g1.id)] });

    let client = await open();
    // What the attacker gets: the group is listed and refuses every call.
    expect(client.groupIds().map(lib.toHex).sort()).toEqual([lib.toHex(g1.id), lib.toHex(g2.id)].sort());
    const refused = await mlsError(() => client.group(g1.id).encrypt('x'));
    expect([refused.constructor, refused.code, refused.message]).toEqual([lib.MlsError, 'UNKNOWN_GROUP', 'no such group in storage']);
    // The way out works: every record of g1 goes (its epoch secrets, message secrets, key pairs, the layer record).
    await client.deleteGroup(g1.id); // was UNKNOWN_GROUP
    expect(client.groupIds().map(lib.toHex)).toEqual([lib.toHex(g2.id)]);
    expect(await naming(inner, g1.id)).toEqual([]);
    const auth = await stillWorks(client.group(g2.id), carol, 'after the delete');
    expect(auth.alice).toBe(auth.carol);

    const { welcome } = await bob.commit({ remove: [leaf], add: [await client.createKeyPackage(client.identities()[0]!)] });
    await bob.mergePendingCommit();
    await client.joinFromWelcome(welcome);
    client.free();
    client = await open();
    const back = await bob.process(await client.group(g1.id).encrypt('back'));
    expect(back.kind === 'application' && new TextDecoder().decode(back.data)).toBe('back');
    client.free();
  });

  it('a deleted group\'s index entry put back (an older ciphertext of one record) lists a group that deleteGroup removes (was: UNKNOWN_GROUP, listed for good)', async () => {
    const { inner, carol, g1, g2, open } = await setUp();
    const sealedIndex = (await inner.get(indexKey(g1.id)))!;
    let client = await open();
    await client.deleteGroup(g1.id);
    client.free();
    expect(await naming(inner, g1.id)).toEqual([]);
    await inner.apply({ puts: [[indexKey(g1.id), sealedIndex]], deletes: [] });

    client = await open();
    expect(client.groupIds().map(lib.toHex).sort()).toEqual([lib.toHex(g1.id), lib.toHex(g2.id)].sort());
    const refused = await mlsError(() => client.group(g1.id).encrypt('x'));
    expect([refused.constructor, refused.code, refused.message]).toEqual([lib.MlsError, 'UNKNOWN_GROUP', 'no such group in storage']);
    await client.deleteGroup(g1.id); // was UNKNOWN_GROUP
    expect(client.groupIds().map(lib.toHex)).toEqual([lib.toHex(g2.id)]);
    expect(await naming(inner, g1.id)).toEqual([]);
    client.free();
    client = await open();
    expect(client.groupIds().map(lib.toHex)).toEqual([lib.toHex(g2.id)]);
    const auth = await stillWorks(client.group(g2.id), carol, 'after the phantom went');
    expect(auth.alice).toBe(auth.carol);
    client.free();
  });

  it('a Welcome joined over such a group, then deleteGroup, leaves none of the earlier epoch\'s key pairs (was: they stayed for good)', async () => {
    const { inner, bob, g1, leaf, open } = await setUp();
    await inner.apply({ puts: [], deletes: [groupRecordKey('Tree', g1.id)] });
    const earlierKeyPairs = (await naming(inner, g1.id)).filter(([k]) => new TextDecoder().decode(k).startsWith('EpochKeyPairs'));
    expect(earlierKeyPairs.length).toBe(1);

    const client = await open();
    const { welcome } = await bob.commit({ remove: [leaf], add: [await client.createKeyPackage(client.identities()[0]!)] });
    await bob.mergePendingCommit();
    await client.joinFromWelcome(welcome);
    const back = await bob.process(await client.group(g1.id).encrypt('joined'));
    expect(back.kind).toBe('application');
    // Documented limit: the join writes its own records over the old ones and leaves the old epoch's key pair beside them…
    expect((await naming(inner, g1.id)).some(([k]) => lib.toHex(k) === lib.toHex(earlierKeyPairs[0]![0]))).toBe(true);
    // …until the group is deleted, which now takes every record naming it.
    await client.deleteGroup(g1.id);
    expect(await naming(inner, g1.id)).toEqual([]);
    client.free();
  });

  it('10,000 failed index entries and records planted under one of those ids: the open is linear (was quadratic: 8,000 took 12 s), each planted group listed and set aside, g2 works', async () => {
    const { inner, carol, g2, open } = await setUp();
    const n = 10_000;
    const junk = new Uint8Array(40);
    const puts: lib.StorageEntry[] = [];
    let last = new Uint8Array(0);
    for (let i = 0; i < n; i++) {
      last = new Uint8Array(16);
      new DataView(last.buffer).setUint32(0, i + 1);
      puts.push([indexKey(last), junk]);
    }
    // Per-group records of the last id planted: the prefix scan tried every other group first.
    const tree = groupRecordKey('Tree', last) as Uint8Array;
    for (let i = 0; i < n; i++) {
      const k = new Uint8Array(tree.length + 4);
      k.set(tree);
      new DataView(k.buffer).setUint32(tree.length, i);
      puts.push([k, junk]);
    }
    await inner.apply({ puts, deletes: [] });

    const started = performance.now();
    const client = await open();
    expect(performance.now() - started).toBeLessThan(5000);
    expect(client.groupIds().length).toBe(n + 2);
    const refused = await mlsError(() => client.group(last));
    expect([refused.constructor, refused.code]).toEqual([lib.MlsError, 'STORAGE_TAMPERED']);
    const auth = await stillWorks(client.group(g2.id), carol, 'next to the planted groups');
    expect(auth.alice).toBe(auth.carol);
    // The planted group and its records go by deleteGroup.
    await client.deleteGroup(last);
    expect(await naming(inner, last)).toEqual([]);
    client.free();
  });
});
