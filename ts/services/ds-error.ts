/**
 * The Delivery Service's refusal (`DsError`, code `DS_REJECTED`) and its
 * reasons, apart from the service so that the modules it uses can raise it
 * without an import cycle.
 */
import { MlsError, registerErrorCodes } from '../mls/errors.js';

/** Why the DS refused: stable codes (docs/PROTOCOL.md §8.3). */
export type DsRejection =
  | 'malformed'
  | 'unknown-group'
  | 'not-a-member'
  | 'epoch-taken'
  // a commit with readTo: a proposal of its epoch was logged after it (§8.1)
  | 'unread-proposal'
  | 'stale'
  | 'invalid-key-package'
  | 'group-exists'
  | 'external-join-closed'
  | 'invalid-group-info'
  | 'invalid-welcome'
  | 'invalid-commit'
  | 'unverifiable-commit'
  // basic mode: the DS holds no usable GroupInfo, or the intent fails against it, which is the last committer's word (retryable; §5.4)
  | 'unverifiable-intent'
  | 'unknown-client'
  | 'unauthenticated'
  | 'forbidden'
  | 'rate-limited'
  | 'too-large'
  | 'not-found'
  | 'registration-refused'
  | 'inbox-full'
  | 'not-granted'
  | 'quota-exceeded'
  | 'too-many-proposals'
  // a key change or revocation of a client with a rotation guard, without its secret (§8.4)
  | 'guard-refused'
  // verified mode: a commit keeps a leaf of a revoked client; `DsError.leaves`, and whether the DS proposed their removal (§8.5)
  | 'revoked-leaf'
  // proposeIntent: the epoch already holds the DS's proposal removing that leaf (of that kind; §5.4)
  | 'duplicate'
  // POST /v1/groups: the id of a group its last member deleted, which only that client registers again (§8.3)
  | 'group-deleted'
  // the client's own: the DS did not answer in time, or could not be reached; in-process, `subscribe`'s onEnd when the
  // store failed its lookup at the call (docs/PROTOCOL.md §8.6). No server route sends it.
  | 'unavailable';

/** The codes of the services layer. */
export const DS_ERROR_CODES = ['DS_REJECTED'] as const;
registerErrorCodes(DS_ERROR_CODES);

/** A refusal of the Delivery Service (`DS_REJECTED`), with the reason. */
export class DsError extends MlsError<(typeof DS_ERROR_CODES)[number]> {
  readonly reason: DsRejection;
  /** `revoked-leaf`: the leaves (indexes) of revoked clients the refused commit keeps. */
  readonly leaves?: number[];
  /**
   * `revoked-leaf`: true when the DS proposed their removal itself (as the
   * group's external sender): process the group's messages and commit
   * again; false: commit their removal (`commit({ remove: leaves })`).
   */
  readonly proposed?: boolean;
  constructor(reason: DsRejection, message: string, revoked?: { leaves: number[]; proposed: boolean }) {
    super('DS_REJECTED', message.endsWith(`(${reason})`) ? message : `${message} (${reason})`);
    this.name = 'DsError';
    this.reason = reason;
    if (revoked) {
      this.leaves = revoked.leaves;
      this.proposed = revoked.proposed;
    }
  }
}
