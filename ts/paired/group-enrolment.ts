/**
 * A higher-level group brought under the pairing (docs/PROTOCOL.md §4.4):
 * a derivation step, the group's state sealed for the partner, and a
 * paired update of the anchor leaf it follows.
 */
import { toHex } from '../mls/bytes.js';
import { invalidArgument } from '../mls/errors.js';
import type { Group } from '../mls/group.js';
import { sendThenMerge } from './commit-settle.js';
import type { DeviceSession } from './device-session.js';
import { anchorCommit, sendNotify } from './paired-commit.js';
import type { PairedCommit, PairedSend } from './paired-types.js';
import { PairingError } from './pairing-error.js';
import { savePairingState, withAnchorKey, withoutAnchorKey, withPendingAnchorKey } from './pairing-state.js';
import { derivationStep } from './vault-derivations.js';

/** `PairedDevice.enroll`: the group recorded as enrolled once its paired update merged. */
export async function enrollGroup(device: DeviceSession, group: Group, options: { send?: PairedSend }): Promise<PairedCommit> {
  const { send } = options;
  const hex = toHex(group.id);
  // A listed group the pairing has left (`pairingLeft`) is enrolled anew: its old entry goes with the same write.
  const record = async (out: PairedCommit) => {
    device.state = withAnchorKey({ ...device.state, groups: [...device.state.groups.filter((g) => g !== hex), hex] }, hex, out.anchorSignatureKey);
    await savePairingState(device.client, device.state);
  };
  const built = await device.serially(async () => {
    device.requireRole('active');
    device.requireEstablished();
    if (device.state.groups.includes(hex) && !device.pairingLeft(group.id)) throw new PairingError('PAIRING_STATE', 'the group is already enrolled');
    if (send !== undefined && typeof send !== 'function') throw invalidArgument('send must be a function');
    if (!send) {
      return device.atomically(async () => {
        const out = await enrollStep(device, group, { merge: true });
        await record(out);
        return { out, sent: undefined };
      });
    }
    const out = await device.atomically(() => enrollStep(device, group, { merge: false }));
    return { out, sent: group.pendingCommitDigest() };
  });
  return send && built.sent ? sendThenMerge(device, group, built.out, built.sent, send, () => record(built.out)) : built.out;
}

/**
 * A derivation step, the group's state for the partner, and a paired
 * update of the anchor leaf (merged when `merge`, else left pending) with
 * its enroll Notify. The state travels only in the Notify, encrypted in
 * the pairing epoch of the step, which needs the vault.
 */
export async function enrollStep(device: DeviceSession, group: Group, options: { merge: boolean }): Promise<PairedCommit> {
  const step = await derivationStep(device);
  const epoch = BigInt(group.epoch) + 1n;
  const groupState = device.client.exportSiblingGroupState(group.id);
  try {
    const leafKey = group.ownLeaf()?.signatureKey;
    const { commit, derivationInfo, anchorSignatureKey, askedToLeave } = await anchorCommit(device, group, step, { selfUpdate: true });
    // Pending until merged (`pairingLeft` takes it only once the leaf carries it); recorded at the merge.
    device.state = withPendingAnchorKey(device.state, toHex(group.id), leafKey, anchorSignatureKey);
    if (options.merge) {
      await group.mergePendingCommit();
      device.state = withAnchorKey(device.state, toHex(group.id), anchorSignatureKey);
    }
    await savePairingState(device.client, device.state);
    const notify = await sendNotify(device, { kind: 'enroll', counter: step.counter, group, commit, groupState, derivationInfo, epoch });
    return { groupId: group.id, commit, pairing: [step.commit, notify], anchorSignatureKey, ...(askedToLeave && { askedToLeave }) };
  } finally {
    groupState.fill(0);
  }
}

/**
 * `PairedDevice.forgetGroup`: an enrolled group the pairing has left leaves
 * the list; a live one is refused (the partner's paired updates there would
 * be refused, and the leaf would stop healing).
 */
export async function forgetGroup(device: DeviceSession, groupId: Uint8Array): Promise<void> {
  if (!(groupId instanceof Uint8Array)) throw invalidArgument('groupId must be a Uint8Array');
  const hex = toHex(groupId);
  device.requireEnrolled(groupId);
  if (!device.pairingLeft(groupId)) throw new PairingError('PAIRING_STATE', 'the pairing still acts on the anchor leaf in this group: it stays enrolled');
  await device.atomically(async () => {
    device.state = withoutAnchorKey({ ...device.state, groups: device.state.groups.filter((g) => g !== hex) }, hex);
    await savePairingState(device.client, device.state);
  });
}
