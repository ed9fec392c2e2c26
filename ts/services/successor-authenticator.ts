/**
 * The `authenticate` option of `MlsClient.joinReInitSuccessor` from an
 * Authentication Service (docs/PROTOCOL.md §1.6 item 5, §8.4): the core
 * checks a successor's members by identity only, so binding each one's new
 * signature key to its identity is the AS's answer, as for any KeyPackage.
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
