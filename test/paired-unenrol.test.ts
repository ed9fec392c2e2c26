/**
 * When the pairing leaves an enrolled group (docs/PROTOCOL.md §4.4, "When
 * the pairing leaves a group"): bob removes alice's anchor leaf, the
 * active device's paired update there is a typed error, bob adds alice
 * back from a KeyPackage of the anchor identity, and the active device
 * enrols the group again (the old entry dropped, as each device's own
 * client shows the pairing left it); the passive device takes that
 * enrolment, drops its dead copy, and follows a paired update. A live
 * group cannot be forgotten; a thief's copy of the passive device gains
 * nothing.
 */
import { describe, expect, it } from 'vitest';
import { PairedDevice, PairingError, type PairingMode } from 'paired-mls/paired';
import { toHex } from 'paired-mls';
import { deliverCommit, expectInSync, mlsError } from './helpers.js';
import { allTalk, pairedWorld, refused, stolen, updateFollowed } from './paired-helpers.js';
import type { Member } from './helpers.js';
import { HELD_ANEW, LIVE, bobAddsAliceBack, bobRemovesAlice, ownLeafKey, restart, storedAnchorKeys } from './unenrol-helpers.js';







/**
 * The device's pairing record rewritten as a release before the anchor keys
 * stored it (the field left out; everything else as written), then the
 * device restarted from its storage (the vault survives).
 */
async function restartFromOldFormat(m: Member, d: PairedDevice): Promise<PairedDevice> {
  const raw = JSON.parse(new TextDecoder().decode(m.client.record('paired-mls/pairing')!)) as Record<string, unknown>;
  expect(raw.anchorKeys).toBeDefined(); // this release writes it
  delete raw.anchorKeys;
  await m.client.putRecord('paired-mls/pairing', new TextEncoder().encode(JSON.stringify(raw)));
  return restart(m, d);
}

describe.each(['hidden', 'standard'] as PairingMode[])('paired unenrol (%s mode)', (mode) => {
  it('a pairing state stored before the anchor keys were recorded (no anchorKeys) loads and behaves: each live group\'s key is taken at open (in memory, stored with the next write), paired commits record the keys (at the merge; a refused one drops its pending key), a group held anew is still left', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    const hex = toHex(id);
    const bob = w.others[0]!;
    // Enrolment recorded the key on both devices.
    for (const m of [w.a, w.p]) expect(storedAnchorKeys(m)).toEqual({ [hex]: { key: ownLeafKey(m) } });
    w.activeDevice = await restartFromOldFormat(w.a, w.activeDevice);
    w.passiveDevice = await restartFromOldFormat(w.p, w.passiveDevice);
    // Open writes nothing: the stored record is still without the keys.
    for (const m of [w.a, w.p]) expect(storedAnchorKeys(m)).toBeUndefined();
    // The live group is live (the key its leaf carries, taken at open).
    for (const d of [w.activeDevice, w.passiveDevice]) {
      expect(d.enrolledGroups()).toEqual([hex]);
      await refused(() => d.forgetGroup(id), LIVE.code, undefined, LIVE.message);
    }
    // A paired update refused at the DS (cleared): the key taken at open is stored with the write that clears it, no pending
    // key; the partner takes the step alone, and its write stores the key it took at open.
    const before = ownLeafKey(w.a);
    let step: Uint8Array | undefined;
    await expect(w.activeDevice.update(w.a.group!, { send: async (out) => { step = out.pairing[0]; throw new Error('DS refused'); } })).rejects.toThrow('DS refused');
    expect(storedAnchorKeys(w.a)).toEqual({ [hex]: { key: before } });
    expect((await w.passiveDevice.receive(step!)).type).toBe('derivationStep');
    expect(storedAnchorKeys(w.p)).toEqual({ [hex]: { key: ownLeafKey(w.p) } });
    await refused(() => w.activeDevice.forgetGroup(id), LIVE.code, undefined, LIVE.message);
    // Without send the application merges: pending until the leaf carries it, live meanwhile and after.
    const u = await w.activeDevice.update(w.a.group!);
    await refused(() => w.activeDevice.forgetGroup(id), LIVE.code, undefined, LIVE.message);
    await w.a.group!.mergePendingCommit();
    await deliverCommit(u.commit, [bob]);
    expect((await w.passiveDevice.applyNotify(u)).kind).toBe('update');
    expect(storedAnchorKeys(w.a)).toEqual({ [hex]: { key: before, pending: ownLeafKey(w.a) } });
    expect(storedAnchorKeys(w.p)).toEqual({ [hex]: { key: ownLeafKey(w.p) } });
    await refused(() => w.activeDevice.forgetGroup(id), LIVE.code, undefined, LIVE.message);
    // The next paired update (with send) records it at the merge.
    await updateFollowed(w.activeDevice, w.a, w.passiveDevice, w.others);
    for (const m of [w.a, w.p]) expect(storedAnchorKeys(m)).toEqual({ [hex]: { key: ownLeafKey(m) } });
    // Stored old again: a group held anew with the anchor identity's own key is still left without a record.
    w.activeDevice = await restartFromOldFormat(w.a, w.activeDevice);
    w.passiveDevice = await restartFromOldFormat(w.p, w.passiveDevice);
    await bobRemovesAlice(w);
    await bobAddsAliceBack(w);
    await refused(() => w.activeDevice.update(w.a.group!), HELD_ANEW.code, undefined, HELD_ANEW.message);
    const en = await w.activeDevice.enroll(w.a.group!, { send: async ({ commit }) => deliverCommit(commit, [bob]) });
    expect((await w.passiveDevice.applyNotify(en)).kind).toBe('enroll');
    w.p.group = w.p.client.group(id);
    for (const m of [w.a, w.p]) expect(storedAnchorKeys(m)).toEqual({ [hex]: { key: ownLeafKey(m) } });
    await allTalk([w.a, w.p, bob], 'after the old state');
  });

  it('a pairing state stored before the anchor keys: a rejoin with a fresh key of the anchor credential AFTER the open counts as left (the key taken at open); one BEFORE the open is still taken as live (the limit, §4.4)', async () => {
    for (const when of ['after open', 'before open'] as const) {
      const w = await pairedWorld(['bob'], mode);
      const id = w.a.group!.id;
      const bob = w.others[0]!;
      const rejoinFresh = async () => {
        await bobRemovesAlice(w);
        await w.a.client.deleteGroup(id);
        const rejoin = await w.a.client.joinExternal(await bob.group!.exportGroupInfo(), await w.a.client.createIdentity(w.activeDevice.anchor!.identity, 1));
        if (rejoin.group.state().pendingCommit) await rejoin.group.mergePendingCommit();
        await deliverCommit(rejoin.commit, [bob]);
        w.a.group = rejoin.group;
      };
      if (when === 'before open') {
        await rejoinFresh();
        w.activeDevice = await restartFromOldFormat(w.a, w.activeDevice);
        // LIMIT: the key the leaf carries at open is taken as the pairing's; the held-anew group is live to this device.
        await refused(() => w.activeDevice.forgetGroup(id), LIVE.code, undefined, LIVE.message);
        continue;
      }
      w.activeDevice = await restartFromOldFormat(w.a, w.activeDevice);
      await rejoinFresh();
      // Left: the update refused before anything is made, the group enrolled again and followed.
      await refused(() => w.activeDevice.update(w.a.group!), HELD_ANEW.code, undefined, HELD_ANEW.message);
      const en = await w.activeDevice.enroll(w.a.group!, { send: async ({ commit }) => deliverCommit(commit, [bob]) });
      expect((await w.passiveDevice.applyNotify(en)).kind).toBe('enroll');
      w.p.group = w.p.client.group(id);
      for (const m of [w.a, w.p]) expect(storedAnchorKeys(m)).toEqual({ [toHex(id)]: { key: ownLeafKey(m) } });
      await allTalk([w.a, w.p, bob], 'after the rejoin');
    }
  });

  it('a pairing state stored before the anchor keys, with a paired commit pending at open: no key taken for that group (the merge would put one it did not take); merged, it stays live and the next paired commit records the key', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    const hex = toHex(id);
    const bob = w.others[0]!;
    const u = await w.activeDevice.update(w.a.group!);
    w.activeDevice = await restartFromOldFormat(w.a, w.activeDevice);
    // A write (a refused forget writes nothing; a pairing message does): the record stays without a key for the group.
    await refused(() => w.activeDevice.forgetGroup(id), LIVE.code, undefined, LIVE.message);
    await w.a.group!.mergePendingCommit();
    await deliverCommit(u.commit, [bob]);
    await refused(() => w.activeDevice.forgetGroup(id), LIVE.code, undefined, LIVE.message);
    expect((await w.passiveDevice.applyNotify(u)).kind).toBe('update');
    await updateFollowed(w.activeDevice, w.a, w.passiveDevice, w.others);
    for (const m of [w.a, w.p]) expect(storedAnchorKeys(m)).toEqual({ [hex]: { key: ownLeafKey(m) } });
    await allTalk([w.a, w.p, bob], 'after the pending commit');
  });

  it('a live group cannot be forgotten (PAIRING_STATE), on either device, and stays followed', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    for (const d of [w.activeDevice, w.passiveDevice]) {
      const err = await mlsError(() => d.forgetGroup(id));
      expect(err).toBeInstanceOf(PairingError);
      expect({ code: err.code, message: err.message }).toEqual(LIVE);
      expect(d.enrolledGroups()).toEqual([toHex(id)]);
    }
    const other = await mlsError(() => w.activeDevice.forgetGroup(new Uint8Array([1, 2, 3])));
    expect({ code: other.code, message: other.message }).toEqual({ code: 'PAIRING_STATE', message: 'the group is not enrolled in the pairing' });
    const u = await w.activeDevice.update(w.a.group!);
    await w.a.group!.mergePendingCommit();
    await deliverCommit(u.commit, w.others);
    expect((await w.passiveDevice.applyNotify(u)).kind).toBe('update');
    await allTalk([w.a, w.p, ...w.others], 'still paired');
  });

  it('bob removes the anchor leaf: update is NOT_A_MEMBER; bob adds alice back: enroll again, the passive device takes it and follows, everyone talks', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    const bob = w.others[0]!;
    await bobRemovesAlice(w);
    const up = await mlsError(() => w.activeDevice.update(w.a.group!));
    expect({ code: up.code, message: up.message }).toEqual({ code: 'NOT_A_MEMBER', message: 'this client is no longer a member of the group' });
    for (const d of [w.activeDevice, w.passiveDevice]) expect(d.enrolledGroups()).toEqual([toHex(id)]);

    // The thief's copy of the phone, taken now (the dead group listed), without the vault.
    const thiefClient = await stolen(w.p);
    const thief = PairedDevice.open(thiefClient, undefined);

    await bobAddsAliceBack(w);
    // Held anew, not yet enrolled again: no paired update (the partner does not follow this leaf).
    const early = await mlsError(() => w.activeDevice.update(w.a.group!));
    expect({ code: early.code, message: early.message }).toEqual(HELD_ANEW);
    const counter = w.activeDevice.counter;

    const enrolled = await w.activeDevice.enroll(w.a.group!, { send: async ({ commit }) => deliverCommit(commit, [bob]) });
    expect(w.activeDevice.enrolledGroups()).toEqual([toHex(id)]);
    expect(w.activeDevice.counter).toBe(counter + 1n);

    // The thief's copy cannot take the enrolment (its step needs the vault's PSK): refused as any paired update, nothing imported.
    await refused(() => thief.applyNotify(enrolled), 'NOTIFY_REJECTED', 'counter');
    expect(thiefClient.groupIds().some((g) => toHex(g) === toHex(id) && thiefClient.group(g).state().active)).toBe(false);
    // It may forget the dead group on its copy: nothing changes for the honest devices.
    await thief.forgetGroup(id);
    expect(thief.enrolledGroups()).toEqual([]);
    expect(w.passiveDevice.enrolledGroups()).toEqual([toHex(id)]);

    expect((await w.passiveDevice.applyNotify(enrolled)).kind).toBe('enroll');
    w.p.group = w.p.client.group(id);
    expect(w.passiveDevice.enrolledGroups()).toEqual([toHex(id)]);
    expectInSync([w.a, w.p, bob]);

    // A paired update the passive device follows; then everyone talks.
    const u = await w.activeDevice.update(w.a.group!, { send: async ({ commit }) => deliverCommit(commit, [bob]) });
    expect((await w.passiveDevice.applyNotify(u)).kind).toBe('update');
    await allTalk([w.a, w.p, bob], 'paired again');
    // Live again on both devices: forget refused.
    for (const d of [w.activeDevice, w.passiveDevice]) {
      const err = await mlsError(() => d.forgetGroup(id));
      expect({ code: err.code, message: err.message }).toEqual(LIVE);
    }
  });

  it('the app forgets the dead group on both devices first (forgetGroup), then enrols it again; a listed group held anew is also enrolled without it', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    const bob = w.others[0]!;
    await bobRemovesAlice(w);
    await w.activeDevice.forgetGroup(id);
    expect(w.activeDevice.enrolledGroups()).toEqual([]);
    const notEnrolled = await mlsError(() => w.activeDevice.update(w.a.group!));
    expect({ code: notEnrolled.code, message: notEnrolled.message }).toEqual({ code: 'PAIRING_STATE', message: 'the group is not enrolled in the pairing' });
    await w.passiveDevice.forgetGroup(id);
    // The phone no longer lists it but still holds its dead state: the app deletes it, as any group it holds outside the pairing.
    await w.p.client.deleteGroup(id);
    await bobAddsAliceBack(w);
    const enrolled = await w.activeDevice.enroll(w.a.group!, { send: async ({ commit }) => deliverCommit(commit, [bob]) });
    expect((await w.passiveDevice.applyNotify(enrolled)).kind).toBe('enroll');
    w.p.group = w.p.client.group(id);
    await allTalk([w.a, w.p, bob], 'enrolled again');
  });
});
