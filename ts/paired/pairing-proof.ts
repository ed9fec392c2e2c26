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

/** struct { opaque pairing_group_id<V>; uint64 counter; opaque group_id<V>; } — what an enroll Notify's sealed state is bound to. */
function groupStateContext(pairingGroupId: Uint8Array, counter: bigint, groupId: Uint8Array): Uint8Array {
  return new Writer().vector(pairingGroupId).u64(counter).vector(groupId).finish();
}

/** AES-GCM's nonce length; a fresh random nonce leads the sealed state. */
const NONCE_BYTES = 12;

async function groupStateKey(vault: SeedVault, context: Uint8Array, usage: 'encrypt' | 'decrypt'): Promise<CryptoKey> {
  const raw = await vault.derive('group state', context, 32);
  try {
    return await globalThis.crypto.subtle.importKey('raw', raw as Uint8Array<ArrayBuffer>, 'AES-GCM', false, [usage]);
  } finally {
    raw.fill(0);
  }
}

/**
 * An enroll Notify's group state, sealed under a key only vault holders
 * derive (docs/PROTOCOL.md §4.2, §4.4): AES-256-GCM, key
 * `vault.derive("group state", context, 32)`, a random nonce (sent before
 * the ciphertext: each key should seal one state, one enrolment per
 * derivation step, but a fresh nonce does not rest on that), the context
 * as associated data. The pairing epoch alone does not protect it: a partner
 * that took a refused enrolment's step alone keeps that epoch's key of the
 * unprocessed Notify, and a copy of its state would read the group.
 */
export async function sealGroupState(vault: SeedVault, pairingGroupId: Uint8Array, counter: bigint, groupId: Uint8Array, state: Uint8Array): Promise<Uint8Array> {
  const context = groupStateContext(pairingGroupId, counter, groupId);
  const key = await groupStateKey(vault, context, 'encrypt');
  const nonce = globalThis.crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const params = { name: 'AES-GCM', iv: nonce, additionalData: context as Uint8Array<ArrayBuffer> };
  const ciphertext = new Uint8Array(await globalThis.crypto.subtle.encrypt(params, key, state as Uint8Array<ArrayBuffer>));
  const sealed = new Uint8Array(NONCE_BYTES + ciphertext.length);
  sealed.set(nonce);
  sealed.set(ciphertext, NONCE_BYTES);
  return sealed;
}

/** The state `sealGroupState` sealed, or `undefined` when it was not sealed for this context with this vault. */
export async function openGroupState(vault: SeedVault, pairingGroupId: Uint8Array, counter: bigint, groupId: Uint8Array, sealed: Uint8Array): Promise<Uint8Array | undefined> {
  const context = groupStateContext(pairingGroupId, counter, groupId);
  if (sealed.length < NONCE_BYTES) return undefined;
  const key = await groupStateKey(vault, context, 'decrypt');
  const params = { name: 'AES-GCM', iv: sealed.slice(0, NONCE_BYTES), additionalData: context as Uint8Array<ArrayBuffer> };
  try {
    return new Uint8Array(await globalThis.crypto.subtle.decrypt(params, key, sealed.subarray(NONCE_BYTES) as Uint8Array<ArrayBuffer>));
  } catch {
    return undefined;
  }
}
