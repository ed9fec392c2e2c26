/**
 * A group deleted in the middle of a CeasePair rejoin (docs/PROTOCOL.md
 * §4.9, §2.5). Route `rejoin` keeps the group's state from before its
 * external join in a record (the epoch's secrets, the anchor leaf's keys)
 * until the DS answered. Those records were free-form layer records named
 * by the group, which `deleteGroup` did not touch: an app that gave the
 * group up (or deleted it for any reason) left them on disk until some
 * later `ceasePair` happened to run, and whoever later copied the
 * device's storage with its key read the deleted group's old epoch —
 * forward secrecy lost after the deletion. They are group records now,
 * deleted in the batch that deletes the group.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, toHex, utf8, type MemoryStorageAdapter, type StorageEntry } from 'paired-mls';
import { PairedDevice, type CeaseCommit, type PairingMode } from 'paired-mls/paired';
import { JOIN_RECORD, SNAPSHOT_RECORD, anchorKeyOf, joinIn, bobWins, catchUp, ceaseSend, crashAtFirstSend, dsWorld, epochTaken, finishAfterRefusedJoin, honestGoOn, inSync, lockedOut, submit } from './paired-ds-helpers.js';

/** The stored snapshot record (old or new key layout: the name is the layer's), found by its key's text. */
function storedSnapshot(entries: StorageEntry[]): Uint8Array | undefined {
  return entries.find(([k]) => /cease-rejoin(?!-)/.test(utf8(k)))?.[1];
}

/** The 32-byte windows of `secret` with 20+ distinct bytes (no fill, no common header). */
function windowsOf(secret: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i + 32 <= secret.length; i += 32) if (new Set(secret.subarray(i, i + 32)).size >= 20) out.push(secret.subarray(i, i + 32));
  return out;
}

/** Those of `windows` that occur in a stored value. */
function foundIn(entries: StorageEntry[], windows: Uint8Array[]): Uint8Array[] {
  const all = Buffer.concat(entries.map(([, v]) => v));
  return windows.filter((w) => all.indexOf(w) >= 0);
}

const includes = (haystack: Uint8Array, needle: Uint8Array) => Buffer.from(haystack).indexOf(needle) >= 0;

const enc = new TextEncoder();
/** The names an earlier release stored the rejoin records under: layer records named by the group. */
const oldNames = (groupId: Uint8Array) => ['paired-mls/cease-rejoin', 'paired-mls/cease-rejoin-commit', 'paired-mls/cease-rejoin-joined'].map((name) => `${name}/${toHex(groupId)}`);

/**
 * `storage` as an earlier release left it: alice's group records of `groupId` stored as its free-form records were, the join
 * without the authenticator in front (`join`: the join itself).
 */
async function asEarlierRelease(storage: MemoryStorageAdapter, groupId: Uint8Array, join: Uint8Array): Promise<void> {
  const prefix = `\u0000paired-mls/group-record/${toHex(groupId)}/`;
  const records = (await storage.entries()).filter(([k]) => utf8(k).startsWith(prefix));
  expect(records.length).toBe(2); // the snapshot and the join
  const puts = records.map(([k, v]): StorageEntry => {
    const name = utf8(k).slice(prefix.length);
    return [enc.encode(`\u0000paired-mls/record/${name}/${toHex(groupId)}`), name === JOIN_RECORD ? join : v];
  });
  await storage.apply({ puts, deletes: records.map(([k]) => k) });
}

describe.each(['hidden', 'standard'] as const)('a group deleted while its CeasePair rejoin is unanswered (%s mode)', (mode: PairingMode) => {
  it('a crash while g1\'s join waits, then the app deletes g1 and restarts: the storage holds no record of g1 and no byte of its snapshot (before: the snapshot record stayed until a later ceasePair); ceasePair then finishes (g1 given up, g2 rejoined) and g2 works without the phone', async () => {
    const w = await dsWorld(mode);
    const [g1, g2] = w.groups;
    const phoneKeys = w.groups.map((g) => anchorKeyOf(g.phone));
    const storage = w.a.storage as MemoryStorageAdapter;
    const vault = await crashAtFirstSend(w);
    const stored = await storage.entries();
    const snapshot = storedSnapshot(stored);
    expect(snapshot).toBeInstanceOf(Uint8Array);
    // The snapshot's own bytes: those no record of another group or of no group holds (the members'
    // public keys, in g2's tree too, are left out).
    const ofG1 = ([k]: StorageEntry) => utf8(k).includes(toHex(g1.id)) || includes(k, g1.id);
    const windows = windowsOf(snapshot!);
    const shared = foundIn(stored.filter((e) => !ofG1(e)), windows);
    const own = windows.filter((w) => !shared.includes(w));
    expect(own.length).toBeGreaterThan(20);

    // The app gives g1 up, and restarts on the same storage: nothing of g1 is stored, from the
    // deletion's own batch on.
    const nothingOfG1 = async () => {
      const entries = await storage.entries();
      expect(entries.filter(ofG1).map(([k]) => utf8(k))).toEqual([]);
      expect(storedSnapshot(entries)).toBeUndefined();
      expect(foundIn(entries, own)).toEqual([]);
    };
    await w.a.client.deleteGroup(g1.id);
    await nothingOfG1();
    w.a.client.free();
    w.a.client = await MlsClient.open({ storage });
    await nothingOfG1();
    expect(w.a.client.groupIds().map(toHex)).toEqual([toHex(g2.id)]);
    const g1Hex = toHex(g1.id);

    // The cease goes on: g1 needs nothing more, g2 is rejoined and its anchor leaf removed.
    const active = PairedDevice.open(w.a.client, vault);
    expect(active.ceasingGroups()).toEqual([g1Hex, toHex(g2.id)]);
    const seen: CeaseCommit[] = [];
    const next = await active.ceasePair('rejoin', { send: ceaseSend(w.ds, seen) });
    expect(seen.map((c) => [toHex(c.groupId), c.kind])).toEqual([
      [toHex(g2.id), 'join'],
      [toHex(g2.id), 'remove'],
    ]);
    expect(next.groups).toEqual([
      { groupId: g1.id, commits: [], ceased: true },
      { groupId: g2.id, commits: seen.map((c) => c.commit), ceased: true },
    ]);
    expect(active.ceasingGroups()).toEqual([]);
    expect(storedSnapshot(await storage.entries())).toBeUndefined();
    g2.alice = w.a.client.group(g2.id);
    await honestGoOn(w.ds, g2, 'group 2 after the cease');
    await lockedOut(w.ds, g2, phoneKeys[1]!);
    // bob and carol go on in g1 without alice.
    await catchUp(g1.bob, g1.inbox.bob);
    await catchUp(g1.carol, g1.inbox.carol);
    inSync([g1.bob, g1.carol]);
    await submit(w.ds, g1.id, 'carol', await g1.carol.encrypt('without alice'));
    expect(await catchUp(g1.bob, g1.inbox.bob)).toEqual(['without alice']);
  });
});

describe.each(['hidden', 'standard'] as const)('rejoin records an earlier release stored under names of its own (%s mode)', (mode: PairingMode) => {
  /** A crash while g1's join waits (bob has taken the epoch); the store then as the earlier release wrote it; alice restarts. */
  async function crashedOnEarlierRelease() {
    const w = await dsWorld(mode);
    const [g1] = w.groups;
    const e1 = g1.alice.epoch;
    const anchorLeaf = g1.alice.ownLeafIndex;
    const phoneKeys = w.groups.map((g) => anchorKeyOf(g.phone));
    const vault = await crashAtFirstSend(w, () => bobWins(w.ds, g1));
    const join = joinIn(w.a.client.groupRecord(g1.id, JOIN_RECORD)!, w.a.client.group(g1.id));
    const storage = w.a.storage as MemoryStorageAdapter;
    w.a.client.free();
    await asEarlierRelease(storage, g1.id, join);
    w.a.client = await MlsClient.open({ storage });
    expect(oldNames(g1.id).map((n) => w.a.client.record(n) !== undefined)).toEqual([true, true, false]);
    return { w, storage, vault, join, e1, anchorLeaf, phoneKeys };
  }

  it('g1 still held: the next ceasePair moves them to g1\'s group records and goes on from them (sends the same join, and, refused, puts g1 back), the old names gone', async () => {
    const { w, vault, join, e1, anchorLeaf, phoneKeys } = await crashedOnEarlierRelease();
    const [g1, g2] = w.groups;
    const active = PairedDevice.open(w.a.client, vault);
    const seen: CeaseCommit[] = [];
    const next = await active.ceasePair('rejoin', { send: ceaseSend(w.ds, seen) });
    expect(seen.map((c) => [toHex(c.groupId), c.kind])).toEqual([
      [toHex(g1.id), 'join'],
      [toHex(g2.id), 'join'],
      [toHex(g2.id), 'remove'],
    ]);
    expect(seen[0]!.commit).toEqual(join);
    expect(next.groups.map((g) => g.ceased)).toEqual([false, true]);
    epochTaken(next.groups[0]!.error, e1, e1 + 1);
    expect(oldNames(g1.id).map((n) => w.a.client.record(n))).toEqual([undefined, undefined, undefined]);
    expect([SNAPSHOT_RECORD, JOIN_RECORD].map((r) => w.a.client.groupRecord(g1.id, r))).toEqual([undefined, undefined]);
    await finishAfterRefusedJoin(w, active, { epoch: e1, leaf: anchorLeaf }, phoneKeys);
  });

  it('g1 deleted first (given up): the next ceasePair deletes them from storage, g1 counts as ceased and g2 is ceased', async () => {
    const { w, storage, vault } = await crashedOnEarlierRelease();
    const [g1, g2] = w.groups;
    await w.a.client.deleteGroup(g1.id);
    const active = PairedDevice.open(w.a.client, vault);
    const seen: CeaseCommit[] = [];
    const next = await active.ceasePair('rejoin', { send: ceaseSend(w.ds, seen) });
    expect(next.groups).toEqual([
      { groupId: g1.id, commits: [], ceased: true },
      { groupId: g2.id, commits: seen.map((c) => c.commit), ceased: true },
    ]);
    expect((await storage.entries()).filter(([k]) => utf8(k).includes('cease-rejoin')).map(([k]) => utf8(k))).toEqual([]);
    g2.alice = w.a.client.group(g2.id);
    await honestGoOn(w.ds, g2, 'group 2 after the cease');
  });
});
