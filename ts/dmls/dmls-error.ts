/** Errors of the Distributed MLS layer: its code set and error class. */
import { MlsError, registerErrorCodes } from '../mls/errors.js';

/** The codes of this layer. */
export const DMLS_ERROR_CODES = ['DMLS_POLICY', 'DMLS_EQUIVOCATION'] as const;
export type DmlsErrorCode = (typeof DMLS_ERROR_CODES)[number];

/**
 * - `not-owner`: a commit or application message in a send group from
 *   anyone but its owner (leaf 0), a rejoin Welcome into a send group
 *   led by anyone but its owner, or a commit's epoch checks not signed by
 *   its owner (docs/PROTOCOL.md §6.11);
 * - `proposal-type`: a proposal other than Update in a send group;
 * - `universe`: an announcement for another universe or a non-member; a
 *   founder's definition whose members are not its send group's, or whose
 *   export length the derivations cannot use (also refused by `found` and
 *   `init`); a Welcome into a group whose owner is not in the universe or
 *   already owns a followed send group, or whose id and owner key are not
 *   those the founder's send group binds to its owner, or into a send
 *   group (a rejoined one included) of a ciphersuite the universe does
 *   not accept;
 * - `malformed`: an undecodable DMLS message, or a commit whose epoch
 *   checks (docs/PROTOCOL.md §6.11) do not decode, repeat a PSK, or name
 *   a PSK the commit does not import;
 * - `rejoin`: a rejoin request whose KeyPackage is not its sender's;
 * - `identity`: an Update proposal or an owner's UpdatePath that changes
 *   a member's identity (a new signature key keeps it);
 * - `credential`: a credential the application's Authentication Service
 *   (`DmlsOptions.credentialCheck`) does not bind to its signature key — a
 *   send group's owner or another leaf of a Welcome (founding, joining,
 *   rejoining), an owner's UpdatePath to a new key, an Update proposal (in
 *   the own send group any, elsewhere one to a new key), a leaf an owner's
 *   commit adds, a rejoin request's KeyPackage, the key an owner signed a
 *   message of an epoch before its latest rotation with, a KeyPackage
 *   or new credential of this member's own (docs/PROTOCOL.md §6.10);
 * - `reentrant-check`: a DMember call made from inside the credential check
 *   of its client (thrown at once: it would wait for the check, which
 *   waits for it; §6.10);
 * - `check-timeout`: the credential check did not answer within
 *   `credentialCheckTimeoutMs` (a check failure: a message it held stays
 *   buffered, §6.10).
 */
export type DmlsRejection = 'not-owner' | 'proposal-type' | 'universe' | 'malformed' | 'rejoin' | 'identity' | 'credential' | 'reentrant-check' | 'check-timeout';

/** A DMLS rule was broken (`DMLS_POLICY`), with the reason. */
export class DmlsError extends MlsError<DmlsErrorCode> {
  readonly reason: DmlsRejection;

  constructor(reason: DmlsRejection, message: string) {
    super('DMLS_POLICY', `${message} (${reason})`);
    this.name = 'DmlsError';
    this.reason = reason;
  }
}

registerErrorCodes(DMLS_ERROR_CODES);

/**
 * `DMLS_EQUIVOCATION` (docs/PROTOCOL.md §6.11): a commit imports an epoch
 * of a send group whose epoch check (carried in its authenticated data)
 * differs from the one this member holds for that epoch. The importer's
 * view of the epoch is not this member's: either the send group's owner
 * sent different commits for that epoch (it equivocated) or the importer
 * is faulty; this member cannot tell which. Final: the commit is refused,
 * not buffered, and changes nothing.
 */
export class DmlsEquivocationError extends MlsError<DmlsErrorCode> {
  /** The send group whose epoch is disputed. */
  readonly sendGroupId: Uint8Array;
  /** The disputed epoch. */
  readonly epoch: number;
  /** The send group of the refused commit (its owner imported the epoch). */
  readonly importerGroupId: Uint8Array;
  /** The identity of that send group's owner, as this member knows it (empty if unknown). */
  readonly importer: Uint8Array;

  constructor(sendGroupId: Uint8Array, epoch: number, importerGroupId: Uint8Array, importer: Uint8Array) {
    super('DMLS_EQUIVOCATION', `a commit importing epoch ${epoch} of a send group that differs from this member's`);
    this.name = 'DmlsEquivocationError';
    this.sendGroupId = sendGroupId;
    this.epoch = epoch;
    this.importerGroupId = importerGroupId;
    this.importer = importer;
  }
}
