/**
 * The `authenticate` option of `MlsClient.joinReInitSuccessor` from an
 * Authentication Service (docs/PROTOCOL.md §1.6 item 5, §8.4). Without it
 * the join takes only signature keys the old group had for their
 * identities (§1.6 item 4), and does not tell an identity the old group
 * let a member take; with it, binding each member's signature key (a new
 * one too) to its identity is the AS's answer, as for any KeyPackage.
 */
import type { SuccessorAuthenticator } from '../mls/types.js';
import type { CredentialCheck } from './credential-check.js';

/**
 * Accepts a successor's member when `check` binds its identity to its
 * signature key (`validate` returns a binding: registered, not revoked).
 * `AuthenticationService` and `AuthenticationDirectory` are such checks.
 */
export function credentialAuthenticator(check: Pick<CredentialCheck, 'validate'>): SuccessorAuthenticator {
  return async (member) => (await check.validate(member.identity, member.signatureKey)) !== undefined;
}
