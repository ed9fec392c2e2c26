/**
 * Paired MLS, hidden mode: pairing, enrolment of a group, paired updates
 * followed by the passive device, and the passive device's traffic.
 */
import { describe, expect, it } from 'vitest';
import { utf8 } from 'paired-mls';
import { deliverCommit, expectInSync } from './helpers.js';
import { deliverPaired, pairedWorld } from './paired-helpers.js';

describe('Paired MLS hidden mode', () => {
  it('pairs, enrolls a group and follows paired updates', async () => {
    const w = await pairedWorld(['bob', 'carol']);
    const everyone = [w.a, w.p, ...w.others];
    expectInSync(everyone);
    expect(w.activeDevice.role).toBe('active');
    expect(w.passiveDevice.role).toBe('passive');
    // Both devices sit on the same (anchor) leaf.
    expect(w.p.group!.ownLeafIndex).toBe(w.a.group!.ownLeafIndex);

    for (let i = 0; i < 3; i++) {
      const update = await w.activeDevice.update(w.a.group!);
      await deliverPaired(update, w.a, w.passiveDevice, w.others);
      expectInSync(everyone);
    }

    // A commit by another member: both devices process it as usual.
    const bob = w.others[0]!;
    const { commit } = await bob.group!.selfUpdate();
    await bob.group!.mergePendingCommit();
    await deliverCommit(commit, [w.a, w.p, w.others[1]!]);
    expectInSync(everyone);

    // Application traffic both ways, including from the passive device.
    const fromBob = await bob.group!.encrypt('hi alice');
    for (const d of [w.a, w.p]) {
      const r = await d.group!.process(fromBob);
      expect(r.kind === 'application' && utf8(r.data)).toBe('hi alice');
    }
    const fromPhone = await w.p.group!.encrypt('sent from the phone');
    for (const m of [w.a, ...w.others]) {
      const r = await m.group!.process(fromPhone);
      expect(r.kind === 'application' && utf8(r.data)).toBe('sent from the phone');
    }
  });
});
