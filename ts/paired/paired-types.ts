/**
 * The shapes `PairedDevice` takes and returns (docs/PROTOCOL.md §4): roles,
 * paired commits and what they send, events of the pairing messages, and
 * the results of `ceasePair` and `reenroll`.
 */
import type { Identity } from '../mls/client.js';
import type { CommitOptions, CommitResult } from '../mls/types.js';
import type { CeaseRoute, NotifyKind } from './pairing-messages.js';
import type { PairedDeviceKey } from './device-signature.js';

/** Whether the device commits for the pairing (active) or follows (passive). */
export type PairingRole = 'active' | 'passive';

/** What the active device sends after a paired commit. */
export interface PairedCommit {
  groupId: Uint8Array;
  /** The higher-level commit: to the Delivery Service (pending until `group.mergePendingCommit()`). */
  commit: Uint8Array;
  /** Pairing-group messages for the partner, in order: derivation commit, Notify. */
  pairing: Uint8Array[];
  /**
   * The anchor's new signature public key, which the commit puts on the
   * anchor leaf (e.g. to register it with the Authentication Service and
   * retire the previous one).
   */
  anchorSignatureKey: Uint8Array;
  /** As `CommitResult.askedToLeave`: requests to remove the anchor this commit left out (docs/PROTOCOL.md §5.4). */
  askedToLeave?: CommitResult['askedToLeave'];
  /** For the members the commit adds. */
  welcome?: Uint8Array;
  /** With `groupInfo: true`: the new epoch's GroupInfo. */
  groupInfo?: Uint8Array;
}

/**
 * The application's call to the Delivery Service for a paired commit
 * (`enroll`, `commit`, `update` with `send`): it posts `update.commit` and
 * resolves once the DS accepted it (and may then forward `update.pairing`
 * to the partner), or throws when the DS refused it (another commit won
 * the epoch, or `unread-proposal`). Read the group's log to its end first
 * and post with `readTo` (docs/PROTOCOL.md §4.4, §4.5).
 */
export type PairedSend = (update: PairedCommit) => Promise<void>;

/** Options of `PairedDevice.commit`. */
export type PairedCommitOptions = Omit<CommitOptions, 'vcEpochId' | 'aad' | 'leafAppData' | 'send' | 'skipProposalsFrom'> & {
  listedDevices?: PairedDeviceKey[];
  /** Send the commit and merge it once `send` resolves; clear it when `send` throws. */
  send?: PairedSend;
};

/** Result of `applyNotify` on the passive device. */
export interface PairedUpdateApplied {
  type: 'pairedUpdateApplied';
  kind: NotifyKind;
  groupId: Uint8Array;
  epoch: number;
  counter: bigint;
  /** The anchor's signature public key the commit put on the anchor leaf. */
  anchorSignatureKey: Uint8Array;
  /**
   * Set when the update was the one this device's own CeasePair raced
   * (docs/PROTOCOL.md §4.9, "A CeasePair racing a paired update"): the
   * device took it only to catch up and has made its cease again in the
   * pairing epoch the update's step created. Send `pairing` to the partner
   * (also kept in `ceaseMessages()`), then call `ceasePair(route)` again to
   * finish the groups. The pairing stays ended.
   */
  ceasePair?: { route: CeaseRoute; pairing: Uint8Array[] };
}

/** Result of `receive` for the other pairing messages. */
export type PairingEvent =
  | { type: 'shareRandApplied'; anchor: Identity; accept: Uint8Array }
  | { type: 'paired' }
  | { type: 'derivationStep'; counter: bigint }
  | { type: 'pairingGroupChanged'; epoch: number }
  | { type: 'roleChanged'; role: PairingRole }
  | { type: 'pairingCeased'; route: CeaseRoute }
  /**
   * The derivation step this device's own CeasePair raced, taken alone to
   * catch up: the cease is made again in the epoch it created (as
   * `PairedUpdateApplied.ceasePair`): send `pairing` to the partner, then
   * `ceasePair(route)` again finishes the groups (docs/PROTOCOL.md §4.9).
   */
  | { type: 'ceaseRenewed'; route: CeaseRoute; pairing: Uint8Array[] };

/** Result of `ceasePair` on the initiating device. */
export interface CeasePairResult {
  route: CeaseRoute;
  /** Pairing-group messages for the (former) partner: CeasePair first. None when the call finishes an earlier cease. */
  pairing: Uint8Array[];
  /** Per higher-level group, in order. */
  groups: CeasedGroup[];
  /** The identity the initiator acts with from now on. */
  identity: Identity;
}

/** One group of `ceasePair` (docs/PROTOCOL.md §4.9). */
export interface CeasedGroup {
  groupId: Uint8Array;
  /** Its commits merged by this call, in order (without `send`: to send). */
  commits: Uint8Array[];
  /** Done: the anchor leaf is gone or rekeyed here (or the group was deleted). Else `error` says why, and the group stays in `ceasingGroups()`. */
  ceased: boolean;
  error?: unknown;
  /** As `CommitResult.askedToLeave`, of this call's commit that merged (docs/PROTOCOL.md §5.4). */
  askedToLeave?: CommitResult['askedToLeave'];
}

/** One commit of `ceasePair` for its `send` (docs/PROTOCOL.md §4.9); a `join` is an external join. */
export interface CeaseCommit {
  groupId: Uint8Array;
  commit: Uint8Array;
  kind: 'rekey' | 'join' | 'remove';
  /** The leaf's new signature key (for the AS). */
  signatureKey: Uint8Array;
}

/** The app's call to the DS for one commit of `ceasePair`: resolves once accepted, throws if refused. A `rekey`: read the log first, post with `readTo` (§4.5). */
export type CeaseSend = (commit: CeaseCommit) => Promise<void>;

/** Result of `reenroll`: `pairing` for the devices already paired, `initPairing` and `shareRand` for the new one. */
export interface ReenrollResult {
  pairing: Uint8Array[];
  initPairing: Uint8Array;
  shareRand: Uint8Array;
  /** Per enrolled group, in order. */
  groups: ReenrolledGroup[];
}

/**
 * One group of `reenroll` (docs/PROTOCOL.md §4.14). Not `enrolled`
 * (`error`): the group left the pairing; the device takes `pairing[0]`
 * alone, and `enroll` hands the group over again.
 */
export interface ReenrolledGroup extends PairedCommit {
  enrolled: boolean;
  error?: unknown;
}
