/**
 * Handing the active role to another device of the pairing
 * (docs/PROTOCOL.md §4.7): a proven RoleChange, after which the counter
 * moves on both sides.
 */
import { bytesEqual, fromHex } from '../mls/bytes.js';
import type { DeviceSession } from './device-session.js';
import { PairingError } from './pairing-error.js';
import { savePairingState } from './pairing-state.js';
import { sendProven } from './vault-derivations.js';

/** `PairedDevice.handOver`, in the device's turn. */
export async function handOver(device: DeviceSession, newActiveLeaf?: number): Promise<Uint8Array> {
  device.requireRole('active');
  device.requireEstablished();
  const members = device.pairingGroup.members().map((m) => m.leafIndex);
  const target = newActiveLeaf ?? members.find((l) => l !== device.state.ownLeaf);
  if (target === undefined || target === device.state.ownLeaf || !members.includes(target)) {
    throw new PairingError('PAIRING_STATE', 'no such partner device in the pairing group');
  }
  // The partner never received the anchor key; it holds one only where a
  // paired commit (the enrolment is one) rotated the leaf to a derived key.
  const anchorKey = device.requireAnchor().signaturePublicKey;
  for (const hex of device.state.groups) {
    const group = device.client.group(fromHex(hex));
    const leaf = group.ownLeaf();
    if (leaf && bytesEqual(leaf.signatureKey, anchorKey)) {
      throw new PairingError('PAIRING_STATE', 'the partner holds no anchor key for an enrolled group yet: make a paired update there first');
    }
  }
  return device.atomically(async () => {
    const message = await sendProven(device, { type: 'roleChange', newActiveLeaf: target, counter: device.state.counter, proof: new Uint8Array(0) });
    // Every hand-over moves the counter (on both sides), so the proof of
    // this RoleChange is never valid again, not even after a hand-back
    // within the same pairing epoch (docs/PROTOCOL.md §4.7).
    device.state = { ...device.state, activeLeaf: target, counter: device.state.counter + 1n };
    await savePairingState(device.client, device.state);
    return message;
  });
}
