/**
 * Proof of possession for Delivery Service sessions (docs/PROTOCOL.md
 * §8.2): the client signs the server's challenge with the MLS signature key
 * the AS registered for it, SignWithLabel(key, "DS auth", challenge)
 * (RFC 9420 §5.1.2), so the proof cannot be replayed as any MLS signature.
 */
import type { Identity, MlsClient } from '../mls/client.js';

/** The SignWithLabel label of DS challenge signatures. */
export const DS_AUTH_LABEL = 'paired-mls DS auth';

const enc = new TextEncoder();

/** Sign a DS challenge with `identity`'s signature key (one call into the core; the key never leaves it). */
export function signDsChallenge(client: MlsClient, identity: Identity, challenge: string): Uint8Array {
  return client.signWithLabel(identity, DS_AUTH_LABEL, enc.encode(challenge));
}

/** Verify a DS challenge signature (the server's side). */
export function verifyDsChallenge(verifier: MlsClient, ciphersuite: number, signatureKey: Uint8Array, challenge: string, signature: Uint8Array): boolean {
  try {
    return verifier.verifyWithLabel(ciphersuite, signatureKey, DS_AUTH_LABEL, enc.encode(challenge), signature);
  } catch {
    return false;
  }
}
