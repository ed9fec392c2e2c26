/** Errors of the Paired MLS layer: an `MlsError` with a finer reason. */
import { MlsError, registerErrorCodes } from '../mls/errors.js';

/** The codes of the Paired MLS layer (`DEVICE_SIGNATURE` is also raised by the engine). */
export const PAIRED_ERROR_CODES = ['PAIRING_STATE', 'PAIRING_REJECTED', 'NOTIFY_REJECTED', 'DEVICE_SIGNATURE'] as const;
/** One of `PAIRED_ERROR_CODES`. */
export type PairedErrorCode = (typeof PAIRED_ERROR_CODES)[number];

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
 * - `no-proof`: the vault proof is missing or wrong (a sender without the
 *   seed vault, e.g. a stolen copy of a device's state).
 */
export type NotifyRejection = 'forged' | 'replay' | 'counter' | 'out-of-order' | 'unknown-group' | 'commit-mismatch' | 'malformed' | 'no-proof';

/**
 * Why another pairing message (RoleChange, CeasePair, Accept, a
 * pairing-group commit or proposal) was refused (`PAIRING_REJECTED`):
 * - `wrong-sender`: not from the leaf allowed to send it (the active
 *   device, or the device that announced a CeasePair).
 * - `no-proof`: its vault proof is missing or wrong (for an Accept: its
 *   seed confirmation is not this vault's; for a ShareRand to a device
 *   with a preinstalled seed: not made with that seed).
 * - `malformed`: its content is no PairingMessage (strict decoding).
 * - `replay` (RoleChange, CeasePair): made for a counter this device has
 *   already passed (every derivation step and every hand-over moves it);
 *   a CeasePair of the current pairing epoch is taken for any counter up
 *   to this device's (docs/PROTOCOL.md §4.9).
 * - `stale`: made for a later counter than this device's (a reordered step).
 * - `no-such-leaf`: a RoleChange naming a leaf that is not a device of the pairing.
 * - `unexpected`: a message the pairing's state does not allow now
 *   (ShareRand or Accept after pairing, ShareRand to a device nobody
 *   invited, a seed in ShareRand to a device with a preinstalled one,
 *   Accept at a passive device, a proposal, a second CeasePair; once the
 *   pairing has ended, a Notify, RoleChange, Accept, or pairing-group
 *   commit other than the cease step, docs/PROTOCOL.md §4.9).
 * - `snapshot-missing` (`PAIRING_STATE`, a `ceasePair` group's error): route
 *   `rejoin`'s record of the group's state from before its external join
 *   is missing or damaged (storage), so the join cannot be undone; nothing
 *   was dropped (docs/PROTOCOL.md §4.9).
 * - `join-unconfirmed` (`PAIRING_STATE`, a `ceasePair` group's error): the
 *   device is on the leaf of route `rejoin`'s join but holds no record that
 *   the DS took it (its records lost): no removal is made on what may be a
 *   fork (§4.9).
 */
export type PairingRejection = NotifyRejection | 'wrong-sender' | 'stale' | 'no-such-leaf' | 'unexpected' | 'snapshot-missing' | 'join-unconfirmed';

/** A refused pairing step or Notify, with the reason (`PAIRING_REJECTED`, `NOTIFY_REJECTED`, `PAIRING_STATE`, `DEVICE_SIGNATURE`). */
export class PairingError extends MlsError<PairedErrorCode> {
  readonly reason: PairingRejection | undefined;
  /** The message without the reason `message` ends with. */
  readonly detail: string;

  constructor(code: PairedErrorCode, message: string, reason?: PairingRejection, options?: { cause?: unknown }) {
    super(code, reason ? `${message} (${reason})` : message, options);
    this.name = 'PairingError';
    this.reason = reason;
    this.detail = message;
  }
}

registerErrorCodes(PAIRED_ERROR_CODES, (code, message) => new PairingError(code as PairedErrorCode, message));

export function notifyRejected(reason: PairingRejection, message: string, cause?: unknown): PairingError {
  return new PairingError('NOTIFY_REJECTED', `Notify rejected: ${message}`, reason, cause === undefined ? undefined : { cause });
}

export function pairingRejected(reason: PairingRejection, message: string): PairingError {
  return new PairingError('PAIRING_REJECTED', message, reason);
}

/** Classify an MLS failure while processing pairing traffic. */
export function rejectionFor(err: unknown): PairingRejection {
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
