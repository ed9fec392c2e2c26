/**
 * Paired MLS, hidden mode: pairing, enrolment of a group, paired updates
 * followed by the passive device, and the passive device's traffic.
 */
import { describe, expect, it } from 'vitest';
import { PAIRED_DEVICES_COMPONENT, readMlsHeader, utf8 } from 'paired-mls';
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

  it('what a member sees of the anchor (docs/PROTOCOL.md §4.13): one member, no device, but a virtual-client leaf', async () => {
    const w = await pairedWorld(['bob', 'carol']);
    const bob = w.others[0]!;
    const anchorLeaf = w.a.group!.ownLeafIndex;
    const update = await w.activeDevice.update(w.a.group!);
    const seen = await bob.group!.process(update.commit);
    if (seen.kind !== 'commit') throw new Error('expected a commit');
    await seen.staged.merge();
    await w.a.group!.mergePendingCommit();
    await deliverCommit(update.commit, [w.others[1]!]);
    await w.passiveDevice.applyNotify(update);
    // One member with alice's credential; no device is named or listed.
    const anchor = bob.group!.members().find((m) => m.leafIndex === anchorLeaf)!;
    expect(utf8(anchor.credential.identity)).toBe('alice');
    expect(bob.group!.members()).toHaveLength(3);
    expect(bob.group!.leafAppData(anchorLeaf, PAIRED_DEVICES_COMPONENT)).toBeUndefined();
    expect(seen.device).toBeUndefined();
    expect(seen.aad).toHaveLength(0);
    // The documented signal: the virtual-clients component (0x667A) sits on the anchor leaf only.
    expect(bob.group!.leafAppData(anchorLeaf, 0x667a)).toBeDefined();
    expect(bob.group!.leafAppData(bob.group!.ownLeafIndex, 0x667a)).toBeUndefined();
    // Same wire format as an ordinary member's commit and application message; same message size.
    const { commit: bobs } = await bob.group!.selfUpdate();
    await bob.group!.clearPendingCommit();
    expect(readMlsHeader(update.commit)!.wireFormat).toBe(readMlsHeader(bobs)!.wireFormat);
    const fromPhone = await w.p.group!.encrypt('x'.repeat(40));
    const fromBob = await bob.group!.encrypt('y'.repeat(40));
    expect(readMlsHeader(fromPhone)!.wireFormat).toBe(readMlsHeader(fromBob)!.wireFormat);
    expect(fromPhone.length).toBe(fromBob.length);
  });
});
