/**
 * A send group the application deletes itself (`client.deleteGroup`, not
 * `DMember.forget`) takes the PSKs of its epochs with it (docs/PROTOCOL.md
 * §6.10, §2.5). They are external PSKs in the core's store, which
 * `deleteGroup` did not touch: the exported PSKs of the deleted group's
 * epochs stayed on disk for good (only `forget` deleted them), readable by
 * whoever later copied the storage with its key. Now they are bound to the
 * send group. The DMember's bookkeeping of it (public) goes at its next
 * call; before, that call failed on the missing group.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, toHex, utf8, type MemoryStorageAdapter, type StorageEntry } from 'paired-mls';
import { DMember } from 'paired-mls/dmls';
import { everyoneTalks, send, universe, type Person } from './dmls-review-helpers.js';

const enc = new TextEncoder();
const has = (haystack: Uint8Array, needle: Uint8Array) => Buffer.from(haystack).indexOf(needle) >= 0;
/** The stored keys (as text) of `entries` naming `groupId`, raw or in hex. */
const naming = (entries: StorageEntry[], groupId: Uint8Array) =>
  entries.filter(([k, v]) => [groupId, enc.encode(toHex(groupId))].some((n) => has(k, n) || has(v, n))).map(([k]) => utf8(k));
/** The values (their last 32 bytes: the PSK) of the core's stored PSKs of `groupId`'s epochs. */
const pskSecrets = (entries: StorageEntry[], groupId: Uint8Array) =>
  entries.filter(([k]) => utf8(k.subarray(0, 3)) === 'Psk' && has(k, groupId)).map(([, v]) => v.slice(v.length - 32));

describe('DMLS: a send group the application deletes', () => {
  it("ben's app deletes cat's send group and restarts: no PSK of its epochs is stored, and after ben's next call only the universe's binding of cat's send group id names it (before: the PSKs stayed, and that call failed with UNKNOWN_GROUP); ann and ben go on", async () => {
    const people = await universe(['ann', 'ben', 'cat']);
    const [ann, ben, cat] = people as [Person, Person, Person];
    const catGroup = cat.member!.sendGroup.id;
    // cat's fresh epoch: ben stores its PSK and imports it.
    await send(await cat.member!.update(), [ann, ben]);
    await everyoneTalks(people, 'before');
    const storage = ben.client.storage as MemoryStorageAdapter;
    const secrets = pskSecrets(await storage.entries(), catGroup);
    expect(secrets.length).toBe(2); // epochs 1 and 2

    await ben.client.deleteGroup(catGroup);
    ben.client.free();
    ben.client = await MlsClient.open({ storage });
    ben.member = DMember.open(ben.client, ben.identity);
    let entries = await storage.entries();
    expect(pskSecrets(entries, catGroup)).toEqual([]);
    expect(entries.filter(([, v]) => secrets.some((s) => has(v, s)))).toEqual([]);
    // Only the DMember's own record still names it: public bookkeeping, dropped at its next call.
    expect(naming(entries, catGroup)).toEqual(['\u0000paired-mls/record/paired-mls/dmls']);

    await everyoneTalks([ann, ben], 'without cat at ben');
    entries = await storage.entries();
    // Left only in the universe's binding of cat's identity to its send group id (§6.1: public, derived from the founder's send group).
    expect(naming(entries, catGroup)).toEqual(['\u0000paired-mls/record/paired-mls/dmls']);
    const { sendGroupIds, ...rest } = JSON.parse(utf8(ben.client.record('paired-mls/dmls')!));
    expect(JSON.stringify(rest)).not.toContain(toHex(catGroup));
    expect(sendGroupIds[toHex(cat.identity.identity)]).toEqual([expect.objectContaining({ id: toHex(catGroup) })]);
    expect([...ben.member.sendGroups().keys()].sort()).toEqual([toHex(ann.member!.sendGroup.id), toHex(ben.member.sendGroup.id)].sort());
    // ann's send group's PSKs are still bound to it, so they go with it too.
    expect(pskSecrets(entries, ann.member!.sendGroup.id).length).toBeGreaterThan(0);
    await ben.client.deleteGroup(ann.member!.sendGroup.id);
    expect(pskSecrets(await storage.entries(), ann.member!.sendGroup.id)).toEqual([]);
  });
});
