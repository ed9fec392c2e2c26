/**
 * A device whose pairing has ended follows no Notify (docs/PROTOCOL.md §4.9,
 * "After the end"). Review61d found that `applyNotify` did not check that
 * the pairing had ended: a passive device that had taken a CeasePair (or
 * made its own) still followed a paired update of the former active device
 * on the anchor leaf — the one raced by the cease, or one the ex-partner
 * (who keeps its vault and its older state) makes afterwards. Now it is
 * refused, `PAIRING_REJECTED` `unexpected` "the pairing has ended", as
 * `receive` refuses a RoleChange or a CeasePair then, before anything is
 * read or stored, and inside the device's turn; the former active device's
 * derivation step alone (`receive`) is refused the same way. Each case
 * checks the device's stored state and group epoch are unchanged, and that
 * the honest parties go on in the group, the ceased device with its own key.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { PairedDevice, type CeasePairResult, type PairedCommit, type PairingMode } from 'paired-mls/paired';
import { type Member, deliverCommit, expectInSync, mlsError } from './helpers.js';
import { allTalk, applyShareRand, device, deviceSnapshot, inviteNext, pairedTrio, pairedWorld, refused, rejoinOwnKey, seededTrio, stolen } from './paired-helpers.js';

const ENDED = ['PAIRING_REJECTED', 'unexpected', 'the pairing has ended (unexpected)'] as const;

/**
 * The cease's group commits, which the DS took (the paired update lost there): `takers` process them
 * (route rekey: the members; route rejoin: also the devices on the anchor leaf it removes).
 */
async function deliverCease(cease: CeasePairResult, takers: Member[]): Promise<void> {
  for (const g of cease.groups) {
    expect(g.ceased).toBe(true);
    for (const c of g.commits) await deliverCommit(c, takers);
  }
}

/** The active side's paired update, lost at the DS (the cease's commit won the epoch): its pending commit cleared, its step taken. */
async function updateLostAtDs(active: PairedDevice, a: Member): Promise<PairedCommit> {
  const u = await active.update(a.group!);
  await a.group!.clearPendingCommit();
  return u;
}

describe.each(['hidden', 'standard'] as const)('Paired MLS (%s mode): a device whose pairing has ended follows no Notify', (mode: PairingMode) => {
  for (const route of ['rekey', 'rejoin'] as const) {
    for (const order of ['awaited', 'queued'] as const) {
      it(`three devices, route ${route}, ${order}: the phone takes the watch's CeasePair, then the laptop's Notify that raced it is refused; nothing changes; all go on`, async () => {
        const t = await pairedTrio(mode);
        const groupId = t.a.group!.id;
        // The laptop's paired update and the watch's cease, made in the same pairing and group epochs.
        const u = await updateLostAtDs(t.laptop, t.a);
        const cease = await t.watchDevice.ceasePair(route);
        let before: Awaited<ReturnType<typeof deviceSnapshot>>;
        if (order === 'awaited') {
          expect(await t.phoneDevice.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route });
          before = await deviceSnapshot(t.phone, t.phoneDevice, groupId);
          await refused(() => t.phoneDevice.applyNotify(u), ...ENDED);
        } else {
          // Both calls made at once: the Notify waits its turn behind the CeasePair, and the check is made in that turn.
          before = await deviceSnapshot(t.phone, t.phoneDevice, groupId);
          const taking = t.phoneDevice.receive(cease.pairing[0]!);
          const applying = mlsError(() => t.phoneDevice.applyNotify(u));
          expect(await taking).toEqual({ type: 'pairingCeased', route });
          const err = await applying;
          expect({ code: err.code, reason: (err as { reason?: string }).reason, message: err.message }).toEqual({ code: ENDED[0], reason: ENDED[1], message: ENDED[2] });
          const after = await deviceSnapshot(t.phone, t.phoneDevice, groupId);
          // Only the CeasePair changed the phone.
          expect(after.device).toEqual({ ...before.device, ceased: true });
          expect(after.group).toEqual(before.group);
          before = after;
        }
        expect(await deviceSnapshot(t.phone, t.phoneDevice, groupId)).toEqual(before);
        expect(before.device).toMatchObject({ ceased: true, role: 'passive', groups: [toHex(groupId)] });
        // The laptop's derivation step alone is refused too (it ended nothing at the laptop, which has not read the CeasePair).
        await refused(() => t.phoneDevice.receive(u.pairing[0]!), ...ENDED);
        expect(await deviceSnapshot(t.phone, t.phoneDevice, groupId)).toEqual(before);
        // The watch's removal step is still taken from its leaf: the phone leaves the pairing group.
        if (route === 'rekey') {
          expect(await t.phoneDevice.receive(cease.pairing[1]!)).toEqual({ type: 'derivationStep', counter: before.device.counter });
          expect(t.phoneDevice.pairingGroup.state().active).toBe(false);
        }
        // The laptop took its own step: the CeasePair is of a pairing epoch it left.
        expect((await mlsError(() => t.laptop.receive(cease.pairing[0]!))).code).toBe('WRONG_EPOCH');
        // The group goes on: the watch's commits (the DS took them), the laptop and the phone join again with their own keys.
        await deliverCease(cease, route === 'rekey' ? [t.bob] : [t.a, t.phone, t.bob]);
        t.watch.group = t.watch.client.group(groupId);
        expectInSync([t.watch, t.bob]);
        await rejoinOwnKey(t.phone, t.watch, [t.watch, t.bob]);
        await rejoinOwnKey(t.a, t.watch, [t.watch, t.bob, t.phone]);
        const { commit } = await t.bob.group!.selfUpdate();
        await t.bob.group!.mergePendingCommit();
        await deliverCommit(commit, [t.a, t.phone, t.watch]);
        await allTalk([t.a, t.phone, t.watch, t.bob], 'after the cease');
      });
    }

    it(`two devices, route ${route}: the laptop ends the pairing and the phone takes its CeasePair; the laptop's older copy (with its vault) makes a paired update: refused, nothing changes; all go on`, async () => {
      const w = await pairedWorld(['bob'], mode);
      const bob = w.others[0]!;
      const groupId = w.a.group!.id;
      // The ex-partner keeps what it had: its state from before the cease, and its vault.
      const older = await stolen(w.a);
      const cease = await w.activeDevice.ceasePair(route);
      expect(await w.passiveDevice.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route });
      const before = await deviceSnapshot(w.p, w.passiveDevice, groupId);
      const exPartner = PairedDevice.open(older, w.activeDevice.vault);
      expect({ ceased: exPartner.ceased, role: exPartner.role }).toEqual({ ceased: false, role: 'active' });
      const u = await exPartner.update(older.group(groupId));
      await refused(() => w.passiveDevice.applyNotify(u), ...ENDED);
      await refused(() => w.passiveDevice.receive(u.pairing[0]!), ...ENDED);
      expect(await deviceSnapshot(w.p, w.passiveDevice, groupId)).toEqual(before);
      if (route === 'rekey') {
        expect(await w.passiveDevice.receive(cease.pairing[1]!)).toEqual({ type: 'derivationStep', counter: before.device.counter });
        expect(w.passiveDevice.pairingGroup.state().active).toBe(false);
      }
      // The laptop's cease reaches bob (route rejoin: the phone too, whom the removal of the anchor leaf takes out); the phone joins with its own key.
      await deliverCease(cease, route === 'rekey' ? [bob] : [w.p, bob]);
      expectInSync([w.a, bob]);
      await rejoinOwnKey(w.p, w.a, [w.a, bob]);
      await allTalk([w.a, w.p, bob], 'after the cease');
    });

    it(`two devices, route ${route}: the phone ends the pairing itself before the laptop's Notify arrives: refused, nothing changes; all go on`, async () => {
      const w = await pairedWorld(['bob'], mode);
      const bob = w.others[0]!;
      const groupId = w.a.group!.id;
      const u = await updateLostAtDs(w.activeDevice, w.a);
      const cease = await w.passiveDevice.ceasePair(route);
      const before = await deviceSnapshot(w.p, w.passiveDevice, groupId);
      expect(before.device).toMatchObject({ ceased: true, role: route === 'rekey' ? 'active' : 'passive' });
      await refused(() => w.passiveDevice.applyNotify(u), ...ENDED);
      expect(await deviceSnapshot(w.p, w.passiveDevice, groupId)).toEqual(before);
      // The phone's cease reaches bob (route rejoin: the laptop too); the laptop joins with its own key.
      await deliverCease(cease, route === 'rekey' ? [bob] : [w.a, bob]);
      w.p.group = w.p.client.group(groupId);
      expectInSync([w.p, bob]);
      await rejoinOwnKey(w.a, w.p, [w.p, bob]);
      await allTalk([w.a, w.p, bob], 'after the cease');
    });
  }

  it("the ex-partner's other pairing messages after the end: an invited device's Accept at the laptop that took the phone's CeasePair, and the laptop's older copy's proven add at the phone: refused, nothing changes", async () => {
    // Accept: the laptop invites the watch, the phone ends the pairing, the watch's Accept comes after the CeasePair.
    const t = await seededTrio(mode);
    const { joiner: watchDevice, shareRand } = await inviteNext(t.active, t.phoneDevice, t.watch, t.watchVault);
    const { accept } = await applyShareRand(watchDevice, shareRand);
    const cease = await t.phoneDevice.ceasePair('rekey');
    expect(await t.active.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    const before = await deviceSnapshot(t.a, t.active, t.a.group.id);
    await refused(() => t.active.receive(accept), ...ENDED);
    expect(await deviceSnapshot(t.a, t.active, t.a.group.id)).toEqual(before);
    expect(await t.active.receive(cease.pairing[1]!)).toEqual({ type: 'derivationStep', counter: before.device.counter });
    expect(t.active.pairingGroup.state().active).toBe(false);
    await allTalk([t.a, t.bob], 'after the cease');

    // Proven add: the laptop ends the pairing, its older copy (with its vault) invites a device; the phone took the CeasePair.
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const groupId = w.a.group!.id;
    const older = await stolen(w.a);
    const ended = await w.activeDevice.ceasePair('rekey');
    expect(await w.passiveDevice.receive(ended.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    const phoneBefore = await deviceSnapshot(w.p, w.passiveDevice, groupId);
    const tablet = await device('alice-tablet');
    const invite = await PairedDevice.open(older, w.activeDevice.vault).invite(await PairedDevice.createKeyPackage(tablet.client, tablet.identity));
    await refused(() => w.passiveDevice.receive(invite.pairingCommit), ...ENDED);
    expect(await deviceSnapshot(w.p, w.passiveDevice, groupId)).toEqual(phoneBefore);
    expect(await w.passiveDevice.receive(ended.pairing[1]!)).toEqual({ type: 'derivationStep', counter: phoneBefore.device.counter });
    await deliverCease(ended, [bob]);
    await rejoinOwnKey(w.p, w.a, [w.a, bob]);
    await allTalk([w.a, w.p, bob], 'after the cease');
  });
});
