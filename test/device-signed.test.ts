/**
 * Device-signed anchor messages are built in ONE core call
 * (crates/core/src/device_signed.rs): build, digest, undo, sign, build
 * again, compare. A build that cannot be signed (fresh randomness in its
 * content, a caller-chosen AAD, a SelfRemove) is refused with its exact
 * code and leaves nothing behind: no pending commit, no queued proposal,
 * same epoch — and the pairing then goes on with an honest update.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, type Group } from 'paired-mls';
import { signedAnchorCommit, signedAnchorProposal } from 'paired-mls/paired';
import { expectInSync, mlsError, type Member } from './helpers.js';
import { deliverPaired, pairedWorld } from './paired-helpers.js';

function snapshot(group: Group) {
  const s = group.state();
  return { epoch: s.epoch, pendingCommit: s.pendingCommit, pendingProposals: s.pendingProposals, tree: group.exportRatchetTree() };
}

function expectSame(group: Group, before: ReturnType<typeof snapshot>): void {
  const now = snapshot(group);
  expect({ epoch: now.epoch, pendingCommit: now.pendingCommit, pendingProposals: now.pendingProposals }).toEqual({
    epoch: before.epoch,
    pendingCommit: before.pendingCommit,
    pendingProposals: before.pendingProposals,
  });
  expect(bytesEqual(now.tree, before.tree)).toBe(true);
}

describe('device-signed anchor messages (one core call)', () => {
  it('refuses what cannot be signed, exactly, and changes nothing; the pairing goes on', async () => {
    const w = await pairedWorld(['bob'], 'standard');
    const [bob] = w.others as [Member];
    const group = w.a.group!;
    const device = w.activeDevice.deviceIdentity;
    const before = snapshot(group);

    // A PSK proposal carries a fresh nonce: the two builds differ.
    const pskId = new TextEncoder().encode('psk-1');
    await w.a.client.psks.store(pskId, crypto.getRandomValues(new Uint8Array(32)));
    const differs = await mlsError(() => signedAnchorCommit(group, device, { psks: [pskId] }));
    expect({ code: differs.code, message: differs.message }).toEqual({
      code: 'DEVICE_SIGNATURE',
      message: 'the commit content differs between its two builds (fresh randomness in it?); nothing was sent',
    });
    expectSame(group, before);

    // The AAD is the device signature's; a caller-chosen one is refused.
    const aad = await mlsError(() => signedAnchorCommit(group, device, { selfUpdate: true, aad: new Uint8Array([1]) }));
    expect(aad.code).toBe('INVALID_ARGUMENT');
    expect(aad.message).toMatch(/give no aad/);
    expectSame(group, before);

    // A SelfRemove (openmls' leave path) is refused before anything is built in this PrivateMessage group.
    const leave = await mlsError(() => signedAnchorProposal(group, device, { type: 'selfRemove' }));
    expect({ code: leave.code, message: leave.message }).toEqual({
      code: 'WIRE_FORMAT_POLICY',
      message: 'self remove: SelfRemove not allowed with pure ciphertext outgoing wire format policy.',
    });
    expectSame(group, before);

    // An Update proposal carries a fresh leaf key: its two builds differ too.
    const update = await mlsError(() => signedAnchorProposal(group, device, { type: 'update' }));
    expect({ code: update.code, message: update.message }).toEqual({
      code: 'DEVICE_SIGNATURE',
      message: 'the proposal content differs between its two builds (fresh randomness in it?); nothing was sent',
    });
    expectSame(group, before);

    // A signed proposal is queued once (the first build was removed) and bob accepts it, naming the device.
    const proposal = await signedAnchorProposal(group, device, { type: 'remove', leafIndex: bob.group!.ownLeafIndex });
    expect(group.state().pendingProposals).toBe(before.pendingProposals + 1);
    const seen = await bob.group!.process(proposal);
    expect(seen.kind === 'proposal' && bytesEqual(seen.device!.signatureKey, device.signaturePublicKey)).toBe(true);
    await group.clearPendingProposals();
    await bob.group!.clearPendingProposals();

    // The honest paired update still works and everyone agrees.
    await deliverPaired(await w.activeDevice.update(group), w.a, w.passiveDevice, [bob]);
    expectInSync([w.a, w.p, bob]);
  });
});
