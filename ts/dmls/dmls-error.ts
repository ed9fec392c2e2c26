/** Errors of the Distributed MLS layer: its code set and error class. */
import { MlsError, registerErrorCodes } from '../mls/errors.js';

/** The codes of this layer. */
export const DMLS_ERROR_CODES = ['DMLS_POLICY'] as const;
export type DmlsErrorCode = (typeof DMLS_ERROR_CODES)[number];

/**
 * - `not-owner`: a commit or application message in a send group from
 *   anyone but its owner (leaf 0);
 * - `proposal-type`: a proposal other than Update in a send group;
 * - `universe`: an announcement for another universe or a non-member;
 * - `malformed`: an undecodable DMLS message.
 */
export type DmlsRejection = 'not-owner' | 'proposal-type' | 'universe' | 'malformed';

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
