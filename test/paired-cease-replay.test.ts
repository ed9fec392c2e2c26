/**
 * A CeasePair rejoin's records of an earlier join of the same group
 * (docs/PROTOCOL.md §4.9, §4.10). After the app deleted the group and
 * rejoined it with the cease's key (`ceasePair`'s `identity`), a join the
 * DS never took, the device is on a leaf of the cease's key in a state of
 * its own: it must answer `join-unconfirmed` and send nothing. Records of
 * the cease's own, earlier join counted for that later join when they came
 * back:
 *  - the DS's yes (`cease-rejoin-joined`) held only the cease's key, which
 *    the app's join has too: a storage attacker putting the sealed yes back
 *    (an older value authenticates, §2.6), or, with no attacker, the
 *    earlier release's yes under its old name migrated into the rejoined
 *    group, had the device make a removal from a state the DS never took;
 *    the DS took it, the others could not read it, the device reported the
 *    group ceased and the anchor leaf, whose keys the phone's copy holds,
 *    stayed;
 *  - the join (`cease-rejoin-commit`) was checked by its epoch number only:
 *    the cease's join J1, put back (or migrated) while the group was the
 *    app's join J2 from the same epoch, was sent again, the DS took it, and
 *    the removal was made from J2's state.
 * Now the yes is the key and the HPKE key of the leaf the join made (a
 * fresh one for every external join), the join comes after the
 * authenticator of the epoch it made, and an old yes is never migrated.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, bytesEqual, toHex, utf8, type Identity, type MemoryStorageAdapter, type StorageEntry } from 'paired-mls';
import { PairedDevice, PairingError, type CeaseCommit, type PairingMode, type SeedVault } from 'paired-mls/paired';
import { JOIN_RECORD, SNAPSHOT_RECORD, YES_RECORD, anchorKeyOf, bobWins, catchUp, ceaseSend, crashAtFirstSend, dsWorld, epochTaken, honestGoOn, inSync, lockedOut, submit, type DsGroup } from './paired-ds-helpers.js';

type World = Awaited<ReturnType<typeof dsWorld>>;

const enc = new TextEncoder();
const kinds = (seen: CeaseCommit[]) => seen.map((c) => [toHex(c.groupId), c.kind]);
const groupRecordKey = (groupId: Uint8Array, name: string) => enc.encode(`\u0000paired-mls/group-record/${toHex(groupId)}/${name}`);
/** Where the release before group records kept a rejoin record: a layer record named `<name>/<group hex>`. */
const oldRecordKey = (groupId: Uint8Array, name: string) => enc.encode(`\u0000paired-mls/record/${name}/${toHex(groupId)}`);
const stored = async (storage: MemoryStorageAdapter, text: string) => (await storage.entries()).map(([k]) => utf8(k)).filter((k) => k.includes(text));

/** alice's app restarts on the same storage (`w.a.client` is the new client); her device is opened with `vault`. */
async function restart(w: World, vault: SeedVault): Promise<PairedDevice> {
  w.a.client.free();
  w.a.client = await MlsClient.open({ storage: w.a.storage! });
  return PairedDevice.open(w.a.client, vault);
}

/** The app deletes g1 and joins it again from bob's GroupInfo with `identity`; with `sent`, through the DS (the others follow). */
async function appRejoins(w: World, g1: DsGroup, identity: Identity, sent: boolean): Promise<void> {
  await catchUp(g1.bob, g1.inbox.bob);
  await catchUp(g1.carol, g1.inbox.carol);
  await w.a.client.deleteGroup(g1.id);
  const joined = await w.a.client.joinExternal(await g1.bob.exportGroupInfo(), identity);
  g1.alice = joined.group;
  if (!sent) return;
  await submit(w.ds, g1.id, 'alice', joined.commit, { externalJoin: true });
  await g1.inbox.alice.next(); // what came before the join
  await catchUp(g1.bob, g1.inbox.bob);
  await catchUp(g1.carol, g1.inbox.carol);
  inSync([g1.alice, g1.bob, g1.carol]);
}

/** `ceasePair` refuses g1 with `join-unconfirmed` and sends nothing for it. */
async function unconfirmed(w: World, active: PairedDevice, g1: DsGroup): Promise<void> {
  const seen: CeaseCommit[] = [];
  const result = await active.ceasePair('rejoin', { send: ceaseSend(w.ds, seen) });
  const r1 = result.groups.find((g) => bytesEqual(g.groupId, g1.id))!;
  expect(kinds(seen).filter(([hex]) => hex === toHex(g1.id))).toEqual([]);
  expect({ ceased: r1.ceased, commits: r1.commits }).toEqual({ ceased: false, commits: [] });
  expect(r1.error).toBeInstanceOf(PairingError);
  expect({ code: (r1.error as PairingError).code, reason: (r1.error as PairingError).reason }).toEqual({ code: 'PAIRING_STATE', reason: 'join-unconfirmed' });
  expect(active.ceasingGroups()).toContain(toHex(g1.id));
}

/** The way out: the app rejoins g1 with a key other than the cease's (through the DS); ceasePair removes the anchor leaf and the group goes on without the phone. */
async function finishWithAnotherKey(w: World, active: PairedDevice, g1: DsGroup, phoneKey: Uint8Array, anchorLeaf: number): Promise<void> {
  await appRejoins(w, g1, await w.a.client.createIdentity(active.anchor!.identity, active.anchor!.ciphersuite), true);
  const seen: CeaseCommit[] = [];
  const done = await active.ceasePair('rejoin', { send: ceaseSend(w.ds, seen) });
  expect(kinds(seen)).toEqual([[toHex(g1.id), 'remove']]);
  expect(done.groups).toEqual([{ groupId: g1.id, commits: seen.map((c) => c.commit), ceased: true }]);
  expect(active.ceasingGroups()).toEqual([]);
  g1.alice = w.a.client.group(g1.id);
  await honestGoOn(w.ds, g1, 'g1 after the cease');
  await lockedOut(w.ds, g1, phoneKey);
  expect(g1.bob.members().some((m) => m.leafIndex === anchorLeaf && bytesEqual(m.signatureKey, phoneKey))).toBe(false);
}

describe.each(['hidden', 'standard'] as const)('the DS\'s yes of the cease\'s join and a later app rejoin with the cease\'s key (%s mode)', (mode: PairingMode) => {
  /** g1's join taken (its yes recorded), its removal lost to bob; g2 ceased. */
  async function yesRecorded() {
    const w = await dsWorld(mode);
    const [g1] = w.groups;
    const phoneKey = anchorKeyOf(g1.phone);
    const anchorLeaf = g1.alice.ownLeafIndex;
    const e1 = g1.alice.epoch;
    const send = ceaseSend(w.ds);
    const result = await w.activeDevice.ceasePair('rejoin', {
      send: async (c) => {
        if (bytesEqual(c.groupId, g1.id) && c.kind === 'remove') {
          await catchUp(g1.bob, g1.inbox.bob);
          await bobWins(w.ds, g1);
        }
        await send(c);
      },
    });
    expect(result.groups.map((g) => [g.ceased, g.commits.length])).toEqual([[false, 1], [true, 2]]);
    epochTaken(result.groups[0]!.error, e1 + 1, e1 + 2);
    // The yes: the cease's key, then the HPKE key of the leaf its join made.
    const group = w.a.client.group(g1.id);
    const own = group.members().find((m) => m.leafIndex === group.ownLeafIndex)!;
    expect(bytesEqual(own.signatureKey, result.identity.signaturePublicKey)).toBe(true);
    expect(w.a.client.groupRecord(g1.id, YES_RECORD)).toEqual(new Uint8Array([...result.identity.signaturePublicKey, ...own.encryptionKey]));
    const storage = w.a.storage as MemoryStorageAdapter;
    const sealedYes = (await storage.get(groupRecordKey(g1.id, YES_RECORD)))!;
    expect(sealedYes).toBeInstanceOf(Uint8Array);
    return { w, g1, phoneKey, anchorLeaf, identity: result.identity, storage, sealedYes, vault: w.activeDevice.vault! };
  }

  it('the sealed yes put back (storage attacker) after the app deleted g1 and rejoined it with the cease\'s key (a join the DS never took): join-unconfirmed, nothing sent (before: a removal from that state, taken by the DS, g1 reported ceased with the anchor leaf in everyone else\'s group); rejoined with another key, the cease finishes', async () => {
    const { w, g1, phoneKey, anchorLeaf, identity, storage, sealedYes, vault } = await yesRecorded();
    await appRejoins(w, g1, identity, false);
    expect(await stored(storage, YES_RECORD)).toEqual([]); // deleted with the group
    await storage.apply({ puts: [[groupRecordKey(g1.id, YES_RECORD), sealedYes.slice()]], deletes: [] });
    const active = await restart(w, vault);
    expect(w.a.client.groupRecord(g1.id, YES_RECORD)).toBeInstanceOf(Uint8Array); // it authenticates
    await unconfirmed(w, active, g1);
    await finishWithAnotherKey(w, active, g1, phoneKey, anchorLeaf);
  });

  it('the store upgraded from the release before group records (the yes under its old name, the key alone), then the app deleted g1 and rejoined it with the cease\'s key: the old yes is not moved into the rejoined group (before: it counted for the app\'s join, as above); join-unconfirmed, nothing sent, the old name deleted; rejoined with another key, the cease finishes', async () => {
    const { w, g1, phoneKey, anchorLeaf, identity, storage, vault } = await yesRecorded();
    await storage.apply({ puts: [[oldRecordKey(g1.id, YES_RECORD), identity.signaturePublicKey.slice()]], deletes: [groupRecordKey(g1.id, YES_RECORD)] });
    const active = await restart(w, vault);
    await appRejoins(w, g1, identity, false);
    await unconfirmed(w, active, g1);
    expect(await stored(storage, 'cease-rejoin')).toEqual([]);
    await finishWithAnotherKey(w, active, g1, phoneKey, anchorLeaf);
  });

  it('an update of the application\'s own in g1 between the yes and the removal (taken by the DS) renews the leaf\'s HPKE key, which ends the yes: join-unconfirmed, nothing sent (a safe refusal, as documented); rejoined with another key, the cease finishes', async () => {
    const { w, g1, phoneKey, anchorLeaf, vault } = await yesRecorded();
    const active = await restart(w, vault);
    g1.alice = w.a.client.group(g1.id);
    await catchUp(g1.alice, g1.inbox.alice);
    const { commit } = await g1.alice.selfUpdate();
    await submit(w.ds, g1.id, 'alice', commit);
    await g1.alice.mergePendingCommit();
    await g1.inbox.alice.next();
    await catchUp(g1.bob, g1.inbox.bob);
    await catchUp(g1.carol, g1.inbox.carol);
    inSync([g1.alice, g1.bob, g1.carol]);
    await unconfirmed(w, active, g1);
    await finishWithAnotherKey(w, active, g1, phoneKey, anchorLeaf);
  });

  it('the store upgraded between the DS\'s yes and the removal, the group untouched: the old yes is dropped, not moved (it cannot be told from the yes of a later join with the key), so join-unconfirmed, nothing sent (the cost of that safety; before: the removal was made); rejoined with another key, the cease finishes', async () => {
    const { w, g1, phoneKey, anchorLeaf, identity, storage, vault } = await yesRecorded();
    await storage.apply({ puts: [[oldRecordKey(g1.id, YES_RECORD), identity.signaturePublicKey.slice()]], deletes: [groupRecordKey(g1.id, YES_RECORD)] });
    const active = await restart(w, vault);
    await unconfirmed(w, active, g1);
    expect(await stored(storage, 'cease-rejoin')).toEqual([]);
    await finishWithAnotherKey(w, active, g1, phoneKey, anchorLeaf);
  });
});

describe.each(['hidden', 'standard'] as const)('the join record of the cease\'s join and a later app rejoin with the cease\'s key from the same epoch (%s mode)', (mode: PairingMode) => {
  /** A crash while g1's join J1 waits (the DS never got it); alice restarts. */
  async function crashed() {
    const w = await dsWorld(mode);
    const [g1] = w.groups;
    const phoneKey = anchorKeyOf(g1.phone);
    const anchorLeaf = g1.alice.ownLeafIndex;
    let j1!: Uint8Array;
    const vault = await crashAtFirstSend(w, async (c) => {
      if (bytesEqual(c.groupId, g1.id)) j1 = c.commit;
    });
    const storage = w.a.storage as MemoryStorageAdapter;
    const group = w.a.client.group(g1.id);
    const ceaseKey = group.members().find((m) => m.leafIndex === group.ownLeafIndex)!.signatureKey;
    const identity = w.a.client.identities().find((i) => bytesEqual(i.signaturePublicKey, ceaseKey))!;
    const sealedJoin = (await storage.get(groupRecordKey(g1.id, JOIN_RECORD)))!;
    expect(sealedJoin).toBeInstanceOf(Uint8Array);
    return { w, g1, phoneKey, anchorLeaf, vault, storage, identity, sealedJoin, j1 };
  }

  it('J1\'s sealed record put back (storage attacker) while g1 is the app\'s join J2, never sent: not sent again; join-unconfirmed, nothing sent for g1 (before: J1 was sent, the DS took it, and the removal was made from J2\'s state); g2 ceases; rejoined with another key, the cease finishes', async () => {
    const { w, g1, phoneKey, anchorLeaf, vault, storage, identity, sealedJoin } = await crashed();
    const [, g2] = w.groups;
    await appRejoins(w, g1, identity, false);
    await storage.apply({ puts: [[groupRecordKey(g1.id, JOIN_RECORD), sealedJoin.slice()]], deletes: [] });
    const active = await restart(w, vault);
    expect(w.a.client.groupRecord(g1.id, JOIN_RECORD)).toBeInstanceOf(Uint8Array); // it authenticates
    const seen: CeaseCommit[] = [];
    const result = await active.ceasePair('rejoin', { send: ceaseSend(w.ds, seen) });
    expect(kinds(seen)).toEqual([
      [toHex(g2.id), 'join'],
      [toHex(g2.id), 'remove'],
    ]);
    const [r1, r2] = result.groups;
    expect({ ceased: r1!.ceased, commits: r1!.commits, code: (r1!.error as PairingError).code, reason: (r1!.error as PairingError).reason }).toEqual({ ceased: false, commits: [], code: 'PAIRING_STATE', reason: 'join-unconfirmed' });
    expect(r2).toEqual({ groupId: g2.id, commits: seen.map((c) => c.commit), ceased: true });
    expect([SNAPSHOT_RECORD, JOIN_RECORD, YES_RECORD].map((r) => w.a.client.groupRecord(g1.id, r))).toEqual([undefined, undefined, undefined]);
    await finishWithAnotherKey(w, active, g1, phoneKey, anchorLeaf);
  });

  it('the store upgraded from the release before group records (J1\'s records under their old names, the join without an authenticator), then the app deleted g1 and rejoined it with the cease\'s key from the same epoch (J2, never sent): J1 is not moved nor sent (before: moved, sent, taken, and the removal made from J2\'s state); join-unconfirmed, the old names deleted; rejoined with another key, the cease finishes', async () => {
    const { w, g1, phoneKey, anchorLeaf, vault, storage, identity, j1 } = await crashed();
    const prefix = `\u0000paired-mls/group-record/${toHex(g1.id)}/`;
    const records = (await storage.entries()).filter(([k]) => utf8(k).startsWith(prefix));
    expect(records.map(([k]) => utf8(k).slice(prefix.length)).sort()).toEqual([SNAPSHOT_RECORD, JOIN_RECORD].sort());
    const puts = records.map(([k, v]): StorageEntry => {
      const name = utf8(k).slice(prefix.length);
      return [oldRecordKey(g1.id, name), name === JOIN_RECORD ? j1 : v];
    });
    await storage.apply({ puts, deletes: records.map(([k]) => k) });
    w.a.client.free();
    w.a.client = await MlsClient.open({ storage });
    await appRejoins(w, g1, identity, false);
    const active = await restart(w, vault);
    await unconfirmed(w, active, g1);
    expect(await stored(storage, 'cease-rejoin')).toEqual([]);
    await finishWithAnotherKey(w, active, g1, phoneKey, anchorLeaf);
  });
});
