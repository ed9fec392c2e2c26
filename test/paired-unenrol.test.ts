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
import { allTalk, pairedWorld, refused, stolen, type PairedWorld } from './paired-helpers.js';

const LIVE = { code: 'PAIRING_STATE', message: 'the pairing still acts on the anchor leaf in this group: it stays enrolled' };
const HELD_ANEW = { code: 'PAIRING_STATE', message: 'the pairing has left this group (the leaf here is not the anchor leaf it enrolled): enroll it again' };

/** bob removes alice's anchor leaf; alice's two devices process the removal. */
async function bobRemovesAlice(w: PairedWorld): Promise<void> {
  const bob = w.others[0]!;
  const { commit } = await bob.group!.commit({ remove: [w.a.group!.ownLeafIndex] });
  await bob.group!.mergePendingCommit();
  for (const m of [w.a, w.p]) {
    const r = await m.group!.process(commit);
    if (r.kind === 'commit') await r.staged.merge();
    expect(m.group!.state().active).toBe(false);
  }
}

/** bob adds alice back from a new KeyPackage of the anchor identity; the active device joins (its dead copy deleted first). */
async function bobAddsAliceBack(w: PairedWorld): Promise<void> {
  const bob = w.others[0]!;
  const id = bob.group!.id;
  const { welcome } = await bob.group!.commit({ add: [await w.a.client.createKeyPackage(w.activeDevice.anchor!)] });
  await bob.group!.mergePendingCommit();
  await w.a.client.deleteGroup(id);
  w.a.group = await w.a.client.joinFromWelcome(welcome!);
  expectInSync([w.a, bob]);
}

describe.each(['hidden', 'standard'] as PairingMode[])('paired unenrol (%s mode)', (mode) => {
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
