/**
 * Taking back a passive device that fell behind for good (docs/PROTOCOL.md
 * §4.14): its stale leaf removed, its new KeyPackage invited, and every
 * enrolled group handed to it again.
 */
import { fromHex, toHex } from '../mls/bytes.js';
import { invalidArgument } from '../mls/errors.js';
import type { Group } from '../mls/group.js';
import { settle } from './commit-settle.js';
import type { DeviceSession } from './device-session.js';
import { enrollStep } from './group-enrolment.js';
import type { PairedCommit, PairedSend, ReenrollResult, ReenrolledGroup } from './paired-types.js';
import { PairingError } from './pairing-error.js';
import { invitePartner } from './pairing-invite.js';
import { savePairingState, withAnchorKey, withoutAnchorKey } from './pairing-state.js';
import { derivationStep } from './vault-derivations.js';

/** `PairedDevice.reenroll`: a group whose commit the DS refused leaves the pairing. */
export async function reenrollDevice(device: DeviceSession, staleLeaf: number, keyPackage: Uint8Array, send: PairedSend | undefined): Promise<ReenrollResult> {
  const built = await device.serially(async () => {
    device.requireRole('active');
    device.requireEstablished();
    if (staleLeaf === device.state.ownLeaf || !device.pairingGroup.members().some((m) => m.leafIndex === staleLeaf)) {
      throw new PairingError('PAIRING_STATE', 'no such partner device in the pairing group');
    }
    if (send !== undefined && typeof send !== 'function') throw invalidArgument('send must be a function');
    return device.atomically(async () => {
      const removal = await derivationStep(device, { remove: [staleLeaf] });
      const { initPairing, shareRand, pairingCommit } = await invitePartner(device, keyPackage);
      // The device kept its vault: it needs no Accept round (it could not
      // arrive anyway; the enrolment steps below move the pairing epoch on).
      device.state = { ...device.state, awaitingAccept: (device.state.awaitingAccept ?? []).slice(0, -1) };
      await savePairingState(device.client, device.state);
      const groups: { out: PairedCommit; group: Group; sent: Uint8Array | undefined }[] = [];
      for (const hex of device.state.groups) {
        const group = device.client.group(fromHex(hex));
        const out = await enrollStep(device, group, { merge: !send });
        groups.push({ out, group, sent: send ? group.pendingCommitDigest() : undefined });
      }
      return { pairing: [removal.commit, pairingCommit], initPairing, shareRand, groups };
    });
  });
  const groups: ReenrolledGroup[] = [];
  for (const { out, group, sent } of built.groups) {
    if (!send || !sent) {
      groups.push({ ...out, enrolled: true });
      continue;
    }
    // Refused: the re-enrolled device never gets this group's state, so
    // the group leaves the pairing until `enroll` hands it over again.
    const settled = await settle(device, group, sent, () => send(out), {
      // The key the pairing put on the leaf, recorded at the merge (`pairingLeft`, docs/PROTOCOL.md §4.4).
      merged: async () => {
        device.state = withAnchorKey(device.state, toHex(group.id), out.anchorSignatureKey);
        await savePairingState(device.client, device.state);
      },
      refused: async (pending) => {
        if (pending) await group.clearPendingCommit();
        device.state = withoutAnchorKey({ ...device.state, groups: device.state.groups.filter((g) => g !== toHex(group.id)) }, toHex(group.id));
        await savePairingState(device.client, device.state);
      },
    });
    groups.push(settled.merged ? { ...out, enrolled: true } : { ...out, enrolled: false, error: settled.error });
  }
  return { pairing: built.pairing, initPairing: built.initPairing, shareRand: built.shareRand, groups };
}
