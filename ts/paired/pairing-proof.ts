/**
 * Vault proofs of Paired MLS (docs/PROTOCOL.md §4.2, §4.6): what makes a
 * pairing message or pairing-group commit acceptable only from a holder of
 * the seed vault, which a stolen copy of a device's storage is not.
 */
import { sha256 } from '../mls/bytes.js';
import { Writer } from '../codec/tls.js';
import { pairingProofTbs } from './pairing-messages.js';
import type { SeedVault } from './seed-vault.js';

export const PROOF_LENGTH = 32;

/** `vault.derive("proof", PairingProofTBS, 32)` for `content` sent by `senderLeaf` in pairing epoch `epoch`. */
export function vaultProof(vault: SeedVault, pairingGroupId: Uint8Array, epoch: bigint, senderLeaf: number, content: Uint8Array): Promise<Uint8Array> {
  return vault.derive('proof', pairingProofTbs(pairingGroupId, epoch, senderLeaf, content), PROOF_LENGTH);
}

/** Compare two proofs without an early exit on the first differing byte. */
export function proofsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** SHA-256 over the added devices' signature keys, each as opaque<V> (`PairingCommitContent.added`). */
export function addedDigest(signatureKeys: Uint8Array[]): Promise<Uint8Array> {
  const w = new Writer();
  for (const key of signatureKeys) w.vector(key);
  return sha256(w.finish());
}
