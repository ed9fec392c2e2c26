/** Errors of the Paired MLS layer: an `MlsError` with a finer reason. */
import { MlsError, type MlsErrorCode } from '../mls/errors.js';

/**
 * Why a Notify (with its pairing-group commit) was rejected. In every case
 * the device's state is left as it was, so it keeps following the group.
 * - `forged`: not authentic (signature or decryption failed).
 * - `replay`: an epoch or message generation already processed.
 * - `counter`: the derivation counter is not the one expected (skipped,
 *   repeated or out of order).
 * - `out-of-order`: a Notify without its pairing commit, or the parts in
 *   the wrong order.
 * - `unknown-group`: the Notify names a group the device has not enrolled.
 * - `commit-mismatch`: the higher-level commit is not the one the Notify
 *   names, not from the anchor, or creates another epoch.
 * - `malformed`: undecodable.
 */
export type NotifyRejection = 'forged' | 'replay' | 'counter' | 'out-of-order' | 'unknown-group' | 'commit-mismatch' | 'malformed';

export class PairingError extends MlsError {
  readonly reason: NotifyRejection | undefined;

  constructor(code: Extract<MlsErrorCode, 'PAIRING_STATE' | 'PAIRING_REJECTED' | 'NOTIFY_REJECTED'>, message: string, reason?: NotifyRejection, options?: { cause?: unknown }) {
    super(code, reason ? `${message} (${reason})` : message, options);
    this.name = 'PairingError';
    this.reason = reason;
  }
}

export function notifyRejected(reason: NotifyRejection, message: string, cause?: unknown): PairingError {
  return new PairingError('NOTIFY_REJECTED', `Notify rejected: ${message}`, reason, cause === undefined ? undefined : { cause });
}

/** Classify an MLS failure while processing pairing traffic. */
export function rejectionFor(err: unknown): NotifyRejection {
  if (err instanceof PairingError && err.reason) return err.reason;
  const code = err instanceof MlsError ? err.code : undefined;
  switch (code) {
    case 'PSK_NOT_FOUND':
      return 'counter';
    case 'WRONG_EPOCH':
    case 'MESSAGE_REPLAYED':
    case 'MESSAGE_TOO_OLD':
      return 'replay';
    case 'MESSAGE_TOO_FAR_AHEAD':
      return 'out-of-order';
    case 'INVALID_SIGNATURE':
    case 'DECRYPTION_FAILED':
    case 'INVALID_MESSAGE':
      return 'forged';
    case 'MALFORMED':
      return 'malformed';
    default:
      return 'forged';
  }
}
