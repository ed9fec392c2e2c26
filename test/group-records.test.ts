/**
 * Group records (`MlsClient.groupRecord` / `putGroupRecord`,
 * docs/PROTOCOL.md §2.5, §2.6): a protocol layer's records about one
 * group, stored under `\0paired-mls/group-record/<hex id>/<name>` and
 * deleted in the batch that deletes or replaces the group — also a group
 * set aside after tampering, whose group records count as its records:
 * one that fails authentication sets aside only its group.
 */
import { describe, expect, it } from 'vitest';
import * as lib from 'paired-mls';
import { mlsError } from './helpers.js';
// @ts-expect-error plain JS module shared with the browser page
import { groupRecordKey, stillWorks, twoGroups } from './browser/storage-checks.js';

const { MlsClient, MemoryStorageAdapter, EncryptedStorageAdapter, toHex, utf8 } = lib;
const enc = new TextEncoder();
const key32 = () => crypto.getRandomValues(new Uint8Array(32));
/** The stored key of a group record, as the client writes it. */
const storedKey = (groupId: Uint8Array, name: string) => enc.encode(`\u0000paired-mls/group-record/${toHex(groupId)}/${name}`);
/** The stored keys of `store` that are group records, as text. */
const groupRecordKeys = async (store: lib.StorageAdapter) => (await store.entries()).map(([k]) => utf8(k)).filter((k) => k.startsWith('\u0000paired-mls/group-record/')).sort();

/** Counts `apply` calls and keeps the last batch. */
class Recording extends MemoryStorageAdapter {
  batches: lib.StorageBatch[] = [];
  override async apply(batch: lib.StorageBatch): Promise<void> {
    this.batches.push(batch);
    return super.apply(batch);
  }
}

/** A storage attacker's edit: one bit of the sealed value under `key` flipped in `inner`. */
async function flip(inner: lib.StorageAdapter, key: Uint8Array): Promise<void> {
  const value = (await inner.get(key))!;
  value[20]! ^= 1;
  await inner.apply({ puts: [[key, value]], deletes: [] });
}

describe('group records', () => {
  it('are kept per group apart from putRecord names, survive a reopen, are handed out as copies, and go in the one batch that deletes their group', async () => {
    const storage = new Recording();
    const { alice, carol, g1, g2 } = await twoGroups(lib, storage);
    await alice.putGroupRecord(g1.id, 'layer/state', enc.encode('g1 state'));
    await alice.putGroupRecord(g1.id, 'layer/other/with/slashes', enc.encode('g1 other'));
    await alice.putGroupRecord(g2.id, 'layer/state', enc.encode('g2 state'));
    // A free-form record named as a group record's stored key still lands under record/.
    await alice.putRecord(`group-record/${toHex(g1.id)}/layer/state`, enc.encode('free-form'));
    const copy = alice.groupRecord(g1.id, 'layer/state')!;
    copy.fill(0);
    expect(utf8(alice.groupRecord(g1.id, 'layer/state')!)).toBe('g1 state');
    alice.free();

    let client = await MlsClient.open({ storage });
    expect([utf8(client.groupRecord(g1.id, 'layer/state')!), utf8(client.groupRecord(g1.id, 'layer/other/with/slashes')!), utf8(client.groupRecord(g2.id, 'layer/state')!)]).toEqual([
      'g1 state',
      'g1 other',
      'g2 state',
    ]);
    expect(client.groupRecord(g1.id, 'absent')).toBeUndefined();
    const applies = storage.batches.length;
    await client.putGroupRecord(g1.id, 'absent', undefined); // nothing there: nothing written
    expect(storage.batches.length).toBe(applies);

    await client.deleteGroup(g1.id);
    expect(storage.batches.length).toBe(applies + 1);
    const deleted = storage.batches.at(-1)!.deletes.map(utf8);
    expect(deleted).toEqual(expect.arrayContaining([`\u0000paired-mls/group/${toHex(g1.id)}`, utf8(storedKey(g1.id, 'layer/state')), utf8(storedKey(g1.id, 'layer/other/with/slashes'))]));
    expect(client.groupRecord(g1.id, 'layer/state')).toBeUndefined();
    expect((await mlsError(() => client.putGroupRecord(g1.id, 'layer/state', enc.encode('again')))).code).toBe('UNKNOWN_GROUP');
    client.free();

    client = await MlsClient.open({ storage });
    expect(await groupRecordKeys(storage)).toEqual([utf8(storedKey(g2.id, 'layer/state'))]);
    expect(utf8(client.record(`group-record/${toHex(g1.id)}/layer/state`)!)).toBe('free-form');
    expect(utf8(client.groupRecord(g2.id, 'layer/state')!)).toBe('g2 state');
    const auth = await stillWorks(client.group(g2.id), carol, 'after the delete');
    expect(auth.alice).toBe(auth.carol);
    client.free();
  });

  it('roll back with atomically: a throw puts back the records written, deleted, and deleted with their group inside', async () => {
    const storage = new MemoryStorageAdapter();
    const { alice, g1, g2 } = await twoGroups(lib, storage);
    await alice.putGroupRecord(g1.id, 'kept', enc.encode('g1 before'));
    await alice.putGroupRecord(g2.id, 'kept', enc.encode('g2 before'));
    const stored = (await storage.entries()).map(([k, v]) => `${toHex(k)}=${toHex(v)}`).sort();
    const failure = new Error('the layer fails');
    await expect(
      alice.atomically(async () => {
        await alice.putGroupRecord(g1.id, 'kept', enc.encode('g1 inside'));
        await alice.putGroupRecord(g1.id, 'new', enc.encode('g1 new'));
        await alice.putGroupRecord(g2.id, 'kept', undefined);
        await alice.deleteGroup(g1.id);
        expect([alice.groupRecord(g1.id, 'kept'), alice.groupRecord(g2.id, 'kept')]).toEqual([undefined, undefined]);
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect([utf8(alice.groupRecord(g1.id, 'kept')!), alice.groupRecord(g1.id, 'new'), utf8(alice.groupRecord(g2.id, 'kept')!)]).toEqual(['g1 before', undefined, 'g2 before']);
    expect((await storage.entries()).map(([k, v]) => `${toHex(k)}=${toHex(v)}`).sort()).toEqual(stored);
    // The same calls without the throw are one write.
    await alice.atomically(async () => {
      await alice.putGroupRecord(g1.id, 'new', enc.encode('g1 new'));
      await alice.deleteGroup(g1.id);
    });
    expect(await groupRecordKeys(storage)).toEqual([utf8(storedKey(g2.id, 'kept'))]);
    alice.free();
  });

  it('a tampered group record sets aside only its group (STORAGE_TAMPERED there, the other group and its records work); deleteGroup deletes the set-aside group\'s records; a tampered putRecord record still refuses the open', async () => {
    const inner = new MemoryStorageAdapter();
    const key = key32();
    const { alice, carol, g1, g2 } = await twoGroups(lib, await EncryptedStorageAdapter.open(inner, key));
    await alice.putGroupRecord(g1.id, 'layer/a', enc.encode('g1 a'));
    await alice.putGroupRecord(g1.id, 'layer/b', enc.encode('g1 b'));
    await alice.putGroupRecord(g2.id, 'layer/a', enc.encode('g2 a'));
    await alice.putRecord('layer/free', enc.encode('free'));
    alice.free();
    const clean = await MemoryStorageAdapter.copyOf(inner);
    await flip(inner, storedKey(g1.id, 'layer/a'));

    let client = await MlsClient.open({ storage: await EncryptedStorageAdapter.open(inner, key) });
    expect(client.groupIds().map(toHex).sort()).toEqual([toHex(g1.id), toHex(g2.id)].sort());
    for (const call of [() => client.group(g1.id), () => client.groupRecord(g1.id, 'layer/b'), () => client.putGroupRecord(g1.id, 'layer/b', enc.encode('x'))]) {
      expect((await mlsError(call)).code).toBe('STORAGE_TAMPERED');
    }
    expect([utf8(client.groupRecord(g2.id, 'layer/a')!), utf8(client.record('layer/free')!)]).toEqual(['g2 a', 'free']);
    const auth = await stillWorks(client.group(g2.id), carol, 'beside the set-aside group');
    expect(auth.alice).toBe(auth.carol);
    await client.deleteGroup(g1.id);
    expect(await groupRecordKeys(inner)).toEqual([utf8(storedKey(g2.id, 'layer/a'))]);
    client.free();
    client = await MlsClient.open({ storage: await EncryptedStorageAdapter.open(inner, key) });
    expect(client.groupIds().map(toHex)).toEqual([toHex(g2.id)]);
    client.free();

    // A record of no group (putRecord) that fails authentication refuses the whole open, as before.
    await flip(clean, enc.encode('\u0000paired-mls/record/layer/free'));
    const storage = await EncryptedStorageAdapter.open(clean, key);
    expect((await mlsError(() => MlsClient.open({ storage }))).code).toBe('STORAGE_TAMPERED');
  });

  it('a group set aside for a tampered openmls record: its intact group records are not loaded, and deleteGroup, or a Welcome into its id, deletes them', async () => {
    const inner = new MemoryStorageAdapter();
    const key = key32();
    const { alice, bob, g1, g2 } = await twoGroups(lib, await EncryptedStorageAdapter.open(inner, key));
    const aliceLeaf = g1.ownLeafIndex;
    await alice.putGroupRecord(g1.id, 'layer/secret', enc.encode('of the old epoch'));
    await alice.putGroupRecord(g2.id, 'layer/secret', enc.encode('of g2'));
    alice.free();
    await flip(inner, groupRecordKey('Tree', g1.id));
    const tampered = await MemoryStorageAdapter.copyOf(inner);

    // deleteGroup.
    let client = await MlsClient.open({ storage: await EncryptedStorageAdapter.open(inner, key) });
    expect((await mlsError(() => client.groupRecord(g1.id, 'layer/secret'))).code).toBe('STORAGE_TAMPERED');
    await client.deleteGroup(g1.id);
    expect(await groupRecordKeys(inner)).toEqual([utf8(storedKey(g2.id, 'layer/secret'))]);
    expect(client.groupRecord(g1.id, 'layer/secret')).toBeUndefined();
    client.free();

    // A Welcome into its id, without deleteGroup first.
    client = await MlsClient.open({ storage: await EncryptedStorageAdapter.open(tampered, key) });
    const { welcome } = await bob.commit({ remove: [aliceLeaf], add: [await client.createKeyPackage(client.identities()[0]!)] });
    await bob.mergePendingCommit();
    await client.joinFromWelcome(welcome);
    expect(client.groupRecord(g1.id, 'layer/secret')).toBeUndefined();
    expect(await groupRecordKeys(tampered)).toEqual([utf8(storedKey(g2.id, 'layer/secret'))]);
    await client.putGroupRecord(g1.id, 'layer/secret', enc.encode('of the new group'));
    client.free();
    client = await MlsClient.open({ storage: await EncryptedStorageAdapter.open(tampered, key) });
    expect(utf8(client.groupRecord(g1.id, 'layer/secret')!)).toBe('of the new group');
    client.free();
  });

  it('a group record whose group is not held is deleted at open (only a store changed from outside has one); a failed one refuses the open', async () => {
    const storage = new MemoryStorageAdapter();
    const { alice, g1 } = await twoGroups(lib, storage);
    await alice.putGroupRecord(g1.id, 'layer/state', enc.encode('g1'));
    alice.free();
    const ghost = new Uint8Array(16).fill(9);
    await storage.apply({ puts: [[storedKey(ghost, 'layer/state'), enc.encode('planted')]], deletes: [] });
    const client = await MlsClient.open({ storage });
    expect(await groupRecordKeys(storage)).toEqual([utf8(storedKey(g1.id, 'layer/state'))]);
    expect(client.groupRecord(ghost, 'layer/state')).toBeUndefined();
    expect((await mlsError(() => client.putGroupRecord(ghost, 'layer/state', enc.encode('x')))).code).toBe('UNKNOWN_GROUP');
    client.free();

    // Sealed: a planted (unauthenticated) group record of no held group belongs to no group.
    const inner = new MemoryStorageAdapter();
    const key = key32();
    (await twoGroups(lib, await EncryptedStorageAdapter.open(inner, key))).alice.free();
    await inner.apply({ puts: [[storedKey(ghost, 'layer/state'), new Uint8Array(40).fill(7)]], deletes: [] });
    const sealed = await EncryptedStorageAdapter.open(inner, key);
    expect((await mlsError(() => MlsClient.open({ storage: sealed }))).code).toBe('STORAGE_TAMPERED');
  });
  it('names must be well-formed UTF-16: one with a lone surrogate is refused (INVALID_ARGUMENT) by putGroupRecord, groupRecord, putRecord and record, also where String.prototype.isWellFormed is missing (before: accepted, and two such names were both stored as U+FFFD, one record after a reopen); a surrogate pair and U+FFFD itself are names like any', async () => {
    const storage = new MemoryStorageAdapter();
    const { alice, g1 } = await twoGroups(lib, storage);
    const lone = ['a\uD800', 'a\uDC00', '\uDC00\uD800', 'x\uD800\uD800\uDC00', '\uDBFF'];
    const refused = async (client: lib.MlsClient) => {
      for (const name of lone) {
        const codes = [
          (await mlsError(() => client.putGroupRecord(g1.id, name, enc.encode('v')))).code,
          (await mlsError(async () => client.groupRecord(g1.id, name))).code,
          (await mlsError(() => client.putRecord(name, enc.encode('v')))).code,
          (await mlsError(async () => client.record(name))).code,
        ];
        expect({ name, codes }).toEqual({ name, codes: ['INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'INVALID_ARGUMENT'] });
      }
    };
    await refused(alice);
    const isWellFormed = Object.getOwnPropertyDescriptor(String.prototype, 'isWellFormed');
    expect(isWellFormed).toBeDefined(); // Node 20 has it; the check without it:
    delete (String.prototype as { isWellFormed?: unknown }).isWellFormed;
    try {
      await refused(alice);
      await alice.putGroupRecord(g1.id, 'pair \uD83D\uDE00', enc.encode('emoji')); // well-formed
    } finally {
      Object.defineProperty(String.prototype, 'isWellFormed', isWellFormed!);
    }
    await alice.putGroupRecord(g1.id, 'a\uFFFD', enc.encode('replacement'));
    await alice.putRecord('r \uD83D\uDE00', enc.encode('free-form emoji'));
    expect(await groupRecordKeys(storage)).toEqual([utf8(storedKey(g1.id, 'a\uFFFD')), utf8(storedKey(g1.id, 'pair \uD83D\uDE00'))].sort());
    alice.free();
    const client = await MlsClient.open({ storage });
    expect([utf8(client.groupRecord(g1.id, 'pair \uD83D\uDE00')!), utf8(client.groupRecord(g1.id, 'a\uFFFD')!), utf8(client.record('r \uD83D\uDE00')!)]).toEqual(['emoji', 'replacement', 'free-form emoji']);
    await refused(client);
    client.free();
  });
});
