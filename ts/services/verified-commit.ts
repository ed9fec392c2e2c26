/**
 * "Verified" groups (docs/PROTOCOL.md §8.5): the DS checks each commit with
 * openmls' PublicGroup against the stored GroupInfo (one typed call into the
 * core) and derives the member list from the verified tree, mapping each
 * leaf's credential to a client id through the AS, never from the
 * submitter's `added` / `removed`.
 */
import type { MlsClient } from '../mls/client.js';
import type { PublicLeaf, VerifiedCommit } from '../mls/types.js';
import { MlsError } from '../mls/errors.js';
import { bytesEqual, utf8 } from '../mls/bytes.js';
import type { CredentialCheck } from './credential-check.js';

// The result types of the core's public-group verification belong to the MLS layer.
export type { PublicLeaf, VerifiedCommit } from '../mls/types.js';

/** Why a verified check failed, in DS terms (a DsRejection and a message). */
export type VerifyFailure = { reason: 'unverifiable-commit' | 'invalid-commit' | 'invalid-group-info'; message: string };

function failure(err: unknown): VerifyFailure {
  const code = err instanceof MlsError ? err.code : 'INVALID_COMMIT';
  const message = (err as Error).message;
  if (code === 'UNVERIFIABLE_COMMIT') return { reason: 'unverifiable-commit', message };
  if (code === 'INVALID_GROUP_INFO') return { reason: 'invalid-group-info', message };
  return { reason: 'invalid-commit', message };
}

/**
 * Verify `commit` against the stored GroupInfo and the committer's new one,
 * with the epoch's PublicMessage `proposals` (a commit may cover them by
 * reference); a VerifyFailure when it does not hold.
 */
export function verifyCommit(client: MlsClient, groupInfo: Uint8Array, commit: Uint8Array, newGroupInfo: Uint8Array, proposals: Uint8Array[] = []): VerifiedCommit | VerifyFailure {
  try {
    return client.verifyPublicCommit(groupInfo, commit, newGroupInfo, proposals);
  } catch (err) {
    return failure(err);
  }
}

/** The members of a GroupInfo with its ratchet tree; undefined when it does not verify. */
export function publicMembers(client: MlsClient, groupInfo: Uint8Array): PublicLeaf[] | undefined {
  try {
    return client.publicGroupMembers(groupInfo);
  } catch {
    return undefined;
  }
}

/**
 * The client id of a leaf: the AS's binding of its credential (identity and
 * signature key); without an AS, the identity as UTF-8. Undefined when the
 * AS knows no such binding. A key its client rotated away (revoked alone,
 * docs/PROTOCOL.md §8.4) still names that client here — the leaf is still
 * the client's until it updates — but it opens no session, so nobody posts
 * with it; a revoked client names no one.
 */
export async function clientOfLeaf(auth: CredentialCheck | undefined, leaf: PublicLeaf): Promise<string | undefined> {
  if (!auth) return utf8(leaf.identity);
  if (auth.holderOf) return (await auth.holderOf(leaf.identity, leaf.signatureKey))?.clientId;
  return (await auth.validate(leaf.identity, leaf.signatureKey))?.clientId;
}

/** The Welcome's recipients (KeyPackageRefs) are exactly the added KeyPackages. */
export function welcomeMatches(recipients: Uint8Array[], added: Uint8Array[]): boolean {
  return recipients.length === added.length && recipients.every((r) => added.some((a) => bytesEqual(a, r)));
}
