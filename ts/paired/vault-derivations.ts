/**
 * What a paired device derives from its seed vault (docs/PROTOCOL.md §4.2,
 * §4.5): the vault proofs of pairing messages, derivation steps with their
 * PSK, and the anchor's signature keys. Every vault output is wiped after
 * its one use.
 */
import type { Identity } from '../mls/client.js';
import type { CommitOptions } from '../mls/types.js';
import type { DeviceSession } from './device-session.js';
import { pairingRejected } from './pairing-error.js';
import { type ProvenMessage, encodePairingMessage, pairingPskId, provenContent } from './pairing-messages.js';
import { proofsEqual, vaultProof } from './pairing-proof.js';
import { savePairingState } from './pairing-state.js';

const PSK_LENGTH = 32;
const ANCHOR_KEY_SEED_LENGTH = 32;

function u64(n: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, n);
  return out;
}

/**
 * `use` of a vault output (a proof, the Accept confirmation) or of a
 * plaintext that carries one, which is then wiped (docs/PROTOCOL.md §4.2:
 * each output is wiped after its one use).
 */
export async function usedOnce<T>(output: Uint8Array | Promise<Uint8Array>, use: (bytes: Uint8Array) => T | Promise<T>): Promise<T> {
  const bytes = await output;
  try {
    return await use(bytes);
  } finally {
    bytes.fill(0);
  }
}

/**
 * The vault proof over `content` as sent by `senderLeaf` in pairing epoch
 * `epoch` (PairingProofTBS, docs/PROTOCOL.md §4.2).
 */
function proofOf(device: DeviceSession, content: Uint8Array, epoch: bigint, senderLeaf: number): Promise<Uint8Array> {
  return vaultProof(device.requireVault(), device.state.pairingGroupId, epoch, senderLeaf, content);
}

/** Whether `given` is the vault proof over `content` as sent by `senderLeaf` in pairing epoch `epoch`; both the proof computed and `given` (the received message's copy) are wiped. */
export function proofMatches(device: DeviceSession, content: Uint8Array, epoch: bigint, senderLeaf: number, given: Uint8Array): Promise<boolean> {
  return usedOnce(given, () => usedOnce(proofOf(device, content, epoch, senderLeaf), (expected) => proofsEqual(expected, given)));
}

/** `use` of this device's vault proof over `content` in pairing epoch `epoch`, wiped once `use` is done. */
export function withOwnProof<T>(device: DeviceSession, content: Uint8Array, epoch: bigint, use: (proof: Uint8Array) => Promise<T>): Promise<T> {
  return usedOnce(proofOf(device, content, epoch, device.state.ownLeaf), use);
}

/** Encrypt `message` in the pairing group with its vault proof (the proof and the plaintext wiped after). */
export async function sendProven(device: DeviceSession, message: ProvenMessage): Promise<Uint8Array> {
  const pairing = device.pairingGroup;
  return withOwnProof(device, provenContent(message), BigInt(pairing.epoch), (proof) => usedOnce(encodePairingMessage({ ...message, proof }), (body) => pairing.encrypt(body)));
}

/**
 * Refuse `message` unless its proof is the vault's for it, its sender and
 * epoch (`no-proof`) and it was made for `counter` (this device's, unless
 * the caller allows an earlier one: a CeasePair of the current pairing
 * epoch, `ceasePairCounter`): an earlier one is a `replay` (the counter
 * moves with every derivation step and every hand-over), a later one
 * `stale`. Only a holder of the seed vault can produce the proof.
 */
export async function verifyProof(device: DeviceSession, message: ProvenMessage, epoch: bigint, senderLeaf: number, counter = device.state.counter): Promise<void> {
  if (!(await proofMatches(device, provenContent(message), epoch, senderLeaf, message.proof))) throw pairingRejected('no-proof', `${message.type} without a valid vault proof`);
  if (message.counter < counter) throw pairingRejected('replay', `${message.type} for counter ${message.counter}, already past (${counter})`);
  if (message.counter !== counter) throw pairingRejected('stale', `${message.type} for counter ${message.counter}, expected ${counter}`);
}

/** PRF("accept", pairing group id): both devices hold the same seed. */
export function deriveSeedConfirmation(device: DeviceSession): Promise<Uint8Array> {
  return device.requireVault().derive('accept', device.state.pairingGroupId, 32);
}

/**
 * The anchor's signature key from derivation step `counter`, called in
 * the pairing epoch that step created: both devices derive it from the
 * vault (`vault.derive("anchor key", pairing_group_id ‖ uint64(counter),
 * 32)`) and that epoch's exporter (docs/PROTOCOL.md §4.5), so it is
 * rotated on every paired commit and never sent.
 */
export async function deriveAnchorKey(device: DeviceSession, counter: bigint): Promise<Identity> {
  const anchor = device.requireAnchor();
  const context = new Uint8Array([...device.state.pairingGroupId, ...u64(counter)]);
  const vaultOutput = await device.requireVault().derive('anchor key', context, ANCHOR_KEY_SEED_LENGTH);
  // Wipes vaultOutput; the core mixes in the pairing epoch's exporter.
  return device.client.deriveAnchorIdentity(anchor.identity, device.state.pairingGroupId, vaultOutput, context, anchor.ciphersuite);
}

/**
 * Derivation step (docs/PROTOCOL.md §4.5): commit in the pairing group
 * with PSK(counter) from the vault and a fresh path, then register the
 * new pairing epoch as the emulation epoch.
 */
export async function derivationStep(device: DeviceSession, extra: CommitOptions = {}): Promise<{ counter: bigint; commit: Uint8Array; epochId: Uint8Array }> {
  const counter = device.state.counter;
  const pskId = await storePsk(device, counter);
  const pairing = device.pairingGroup;
  const { commit } = await pairing.commit({ ...extra, selfUpdate: true, psks: [pskId] });
  await pairing.mergePendingCommit();
  await device.client.psks.delete(pskId);
  const epochId = await pairing.registerEmulationEpoch();
  device.state = { ...device.state, counter: counter + 1n };
  await savePairingState(device.client, device.state);
  return { counter, commit, epochId };
}

/** Store PSK(`counter`) of the pairing (from the vault) in the client's PSK store; returns its id. */
export async function storePsk(device: DeviceSession, counter: bigint): Promise<Uint8Array> {
  const pskId = pairingPskId(device.state.pairingGroupId, counter);
  const context = new Uint8Array([...device.state.pairingGroupId, ...u64(counter)]);
  const psk = await device.requireVault().derive('psk', context, PSK_LENGTH);
  try {
    await device.client.psks.store(pskId, psk);
  } finally {
    psk.fill(0);
  }
  return pskId;
}
