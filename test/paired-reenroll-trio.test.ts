/**
 * `reenroll` with several passive devices (docs/PROTOCOL.md §4.7, §4.14).
 * Every step and Notify goes to every passive device of the pairing; the
 * re-enrolment of one device sends, per group, an enrolment Notify, which
 * the PROTOCOL audit found refused by the other passive devices
 * (`commit-mismatch`, "the group is already enrolled"): without its
 * derivation info they could not process the anchor's commit and dropped
 * out of every enrolled group. Now an enrolment of a group a device already
 * follows is a paired update there.
 */
import { describe, expect, it } from 'vitest';
import { PairedDevice } from 'paired-mls/paired';
import { deliverCommit, expectInSync } from './helpers.js';
import { applyShareRand, enrolPaired, inviteNext, read, seededTrio } from './paired-helpers.js';

describe('Paired MLS: reenroll in a pairing of three devices', () => {
  it.each(['hidden', 'standard'] as const)('%s mode: the watch falls behind and is re-enrolled; the phone follows the enrolment as a paired update, and all three keep following', async (mode) => {
    const { a, phone, watch, bob, active, phoneDevice, watchVault } = await seededTrio(mode);
    const { joiner: watchDevice, shareRand } = await inviteNext(active, phoneDevice, watch, watchVault);
    const s = await applyShareRand(watchDevice, shareRand);
    expect(await active.receive(s.accept)).toEqual({ type: 'paired' });
    await enrolPaired(active, a, [[phone, phoneDevice], [watch, watchDevice]], [bob]);
    expectInSync([a, phone, watch, bob]);

    // The watch loses a paired update; the phone follows it.
    const lost = await active.update(a.group!, { send: async () => undefined });
    await deliverCommit(lost.commit, [bob]);
    expect((await phoneDevice.applyNotify(lost)).kind).toBe('update');

    // The watch resets and is re-enrolled; the phone takes the same messages.
    const staleLeaf = watchDevice.pairingGroup.ownLeafIndex;
    await PairedDevice.reset(watch.client);
    const back = await active.reenroll(staleLeaf, await PairedDevice.createKeyPackage(watch.client, watch.identity));
    for (const g of back.groups) await deliverCommit(g.commit, [bob]);
    // The step that removes the watch's stale leaf, then the add of its new one.
    expect(await Promise.all(back.pairing.map(async (m) => (await phoneDevice.receive(m)).type))).toEqual(['derivationStep', 'pairingGroupChanged']);
    const rejoined = await PairedDevice.join(watch.client, back.initPairing, { vault: watchVault });
    expect((await rejoined.receive(back.shareRand)).type).toBe('shareRandApplied');
    for (const g of back.groups) {
      // Before: NOTIFY_REJECTED commit-mismatch at the phone, which then could not follow the group.
      expect((await phoneDevice.applyNotify(g)).kind).toBe('update');
      expect((await rejoined.applyNotify(g)).kind).toBe('enroll');
    }
    watch.group = watch.client.group(a.group!.id);
    expectInSync([a, phone, watch, bob]);

    // All three follow the next paired update, and read bob.
    const next = await active.update(a.group!, { send: async () => undefined });
    await deliverCommit(next.commit, [bob]);
    for (const d of [phoneDevice, rejoined]) expect((await d.applyNotify(next)).kind).toBe('update');
    expectInSync([a, phone, watch, bob]);
    const m = await bob.group.encrypt('to all three again');
    for (const d of [a, phone, watch]) expect(await read(d, m)).toBe('to all three again');
  });
});
