/**
 * The active device invites a device into the pairing (draft Figure 1b,
 * docs/PROTOCOL.md §4.3): InitPairing (the pairing group's Welcome) and
 * ShareRand, both with the vault proof of this device.
 */
import { bytesEqual } from '../mls/bytes.js';
import { MlsError } from '../mls/errors.js';
import type { DeviceSession } from './device-session.js';
import { PairingError } from './pairing-error.js';
import { type ShareRand, encodePairingMessage, pairingCommitContent, shareRandProvenContent } from './pairing-messages.js';
import { addedDigest } from './pairing-proof.js';
import { savePairingState } from './pairing-state.js';
import { withOwnProof } from './vault-derivations.js';

const INVITED_FIRST = 'the device invited first has not sent its Accept yet: wait for it (or reset the pairing and initiate again)';

/** `PairedDevice.invite`, in the device's turn (`reenroll` calls it inside its own). */
export async function invitePartner(device: DeviceSession, keyPackage: Uint8Array): Promise<{ initPairing: Uint8Array; shareRand: Uint8Array; pairingCommit: Uint8Array }> {
  device.requireRole('active');
  const anchor = device.requireAnchor();
  if (!device.state.established && (device.state.awaitingAccept?.length ?? 0) > 0) {
    // From the stored state, so also after a restart: another invite now
    // would move the pairing group past the epoch of that device's Accept
    // (unreadable here, so the pairing never established), and could not
    // carry a generated seed, which went to that device.
    throw new PairingError('PAIRING_STATE', INVITED_FIRST);
  }
  const out = await device.atomically(async () => {
    const pairing = device.pairingGroup;
    // Devices already paired accept this commit (it injects no PSK) only
    // with a vault proof for exactly this device, in its authenticated data.
    const joinerKey = device.client.inspectKeyPackage(keyPackage).signatureKey;
    const added = await addedDigest([joinerKey]);
    const { welcome, commit: pairingCommit } = await withOwnProof(device, pairingCommitContent(device.state.counter, added), BigInt(pairing.epoch), (aad) => pairing.commit({ add: [keyPackage], aad }));
    await pairing.mergePendingCommit();
    if (!welcome) throw new MlsError('INTERNAL', 'adding the partner produced no Welcome');
    const joinerLeaf = pairing.members().find((m) => bytesEqual(m.signatureKey, joinerKey))?.leafIndex;
    if (joinerLeaf === undefined) throw new MlsError('INTERNAL', 'the added partner is not in the pairing group');
    device.state = { ...device.state, awaitingAccept: [...(device.state.awaitingAccept ?? []), joinerLeaf] };
    await savePairingState(device.client, device.state);
    // The anchor's key never leaves this device: the partner needs none
    // before a group is enrolled, and the enrolment (a paired update)
    // gives the leaf a key both devices derive (docs/PROTOCOL.md §4.4).
    const keyPair = new Uint8Array(0);
    const seed = device.seedToShare ?? new Uint8Array(0);
    // With its vault proof: a joiner with a preinstalled seed takes a
    // ShareRand only from a holder of that seed (docs/PROTOCOL.md §4.3).
    const unproven: ShareRand = {
      type: 'shareRand',
      mode: device.state.mode,
      seed,
      anchorIdentity: anchor.identity,
      ciphersuite: anchor.ciphersuite,
      anchorKeyPair: keyPair,
      counter: device.state.counter,
      proof: new Uint8Array(0),
    };
    const content = shareRandProvenContent(unproven, pairing.epochAuthenticator());
    const body = await withOwnProof(device, content, BigInt(pairing.epoch), async (proof) => encodePairingMessage({ ...unproven, proof }));
    content.fill(0);
    keyPair.fill(0);
    try {
      const shareRand = await pairing.encrypt(body);
      return { initPairing: welcome, shareRand, pairingCommit };
    } finally {
      body.fill(0);
    }
  });
  // Sent once: a ShareRand of a later invite is readable by every member of
  // the pairing group, the devices invited before included, so a stolen
  // copy of one of them would read the seed (the vault) from it.
  if (device.seedToShare) {
    device.seedToShare.fill(0);
    device.seedToShare = undefined;
  }
  return out;
}
