/**
 * What the DS asks of an authentication service. Its own module so that the
 * DS and its commit verifier (verified-commit.ts) share it without importing
 * each other.
 */
import type { CredentialBinding } from './authentication-service.js';

/** Validates credentials (the in-memory AS or the store-backed one). */
export interface CredentialCheck {
  validate(identity: Uint8Array, signatureKey: Uint8Array): CredentialBinding | undefined | Promise<CredentialBinding | undefined>;
  /** The client a credential names, also when only this key was rotated away (not when the client is revoked). */
  holderOf?(identity: Uint8Array, signatureKey: Uint8Array): Promise<CredentialBinding | undefined>;
  /**
   * The client a credential was bound to, when that client is revoked (a verifying DS removes its leaves, docs/PROTOCOL.md
   * §8.5). Required with `verifyCommits`: without it a revoked leaf was one no AS knew, and every commit keeping it refused.
   */
  revokedClientOf?(identity: Uint8Array, signatureKey: Uint8Array): string | undefined | Promise<string | undefined>;
}
