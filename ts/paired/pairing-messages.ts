/**
 * The pairing messages of Paired MLS (docs/PROTOCOL.md §4.2), carried as
 * MLS application messages of the pairing group, so they are encrypted,
 * signed by the sending device and replay-protected by MLS itself:
 *
 *   enum { share_rand(1), accept(2), notify(3), role_change(4), cease_pair(5), (255) } PairingMessageType;
 *   struct {
 *     uint16 version = 5;
 *     PairingMessageType msg_type;
 *     select (msg_type) { case share_rand: ShareRand; case accept: Accept; … };
 *   } PairingMessage;
 *
 * InitPairing is the pairing group's Welcome (an MLSMessage) and needs no
 * wrapper of its own.
 */
import { CodecError, Reader, Writer } from '../codec/tls.js';
import { invalidArgument } from '../mls/errors.js';

/**
 * 3: Notify carries the group state (enrol) and the detached derivation info;
 * 4: ShareRand carries a vault proof, Notify's group state is sealed under
 * the vault; 5: ShareRand's proof also covers the pairing epoch's
 * authenticator (`ShareRandProven`), so it holds in that epoch only, not
 * in a fork with the same group id and epoch number (docs/PROTOCOL.md §4.2).
 */
export const PAIRING_MESSAGE_VERSION = 5;

/** hidden: the devices look like one member; standard: the anchor leaf lists them and they sign (docs/PROTOCOL.md §4.12). */
export type PairingMode = 'hidden' | 'standard';

/** struct { PairingMode mode; opaque seed<V>; opaque anchor_identity<V>; uint16 ciphersuite; opaque anchor_key_pair<V>; uint64 counter; opaque proof<V>; } */
export interface ShareRand {
  type: 'shareRand';
  mode: PairingMode;
  /** Empty when the seed was preinstalled on both devices. */
  seed: Uint8Array;
  anchorIdentity: Uint8Array;
  ciphersuite: number;
  /** Always empty since version 3 (the anchor's key is never handed over; a non-empty one is refused). */
  anchorKeyPair: Uint8Array;
  /** Next derivation counter. */
  counter: bigint;
  /**
   * Vault proof (`pairingProofTbs`, made with the seed the ShareRand shares
   * or the preinstalled one); empty while it is being computed.
   */
  proof: Uint8Array;
}

/** struct { opaque seed_confirmation<V>; } — vault PRF "accept" over the pairing group id. */
export interface Accept {
  type: 'accept';
  seedConfirmation: Uint8Array;
}

/** What a Notify reports: an enrolment or a paired update. */
export type NotifyKind = 'enroll' | 'update';

/** struct { uint64 counter; NotifyKind kind; opaque group_id<V>; uint64 epoch; opaque commit_ref<V>; opaque group_state<V>; opaque derivation_info<V>; opaque proof<V>; } */
export interface Notify {
  type: 'notify';
  /** Derivation counter of the pairing-group commit the update is derived from. */
  counter: bigint;
  kind: NotifyKind;
  groupId: Uint8Array;
  /** Epoch the higher-level commit creates. */
  epoch: bigint;
  /** SHA-256 of the higher-level commit (MLSMessage bytes). */
  commitRef: Uint8Array;
  /**
   * enroll: the group's whole stored state before the commit
   * (`MlsClient.exportSiblingGroupState`), sealed under the vault
   * (`sealGroupState`); empty otherwise.
   */
  groupState: Uint8Array;
  /** The commit's detached virtual-clients DerivationInfo (`CommitResult.vcDerivationInfo`). */
  derivationInfo: Uint8Array;
  /** Vault proof (`pairingProofTbs`); empty while it is being computed. */
  proof: Uint8Array;
}

/** struct { uint32 new_active_leaf; uint64 counter; opaque proof<V>; } — pairing-group leaf index of the device taking the active role. */
export interface RoleChange {
  type: 'roleChange';
  newActiveLeaf: number;
  /** The sender's counter (moved by every derivation step and every hand-over): a RoleChange for a passed one is a replay. */
  counter: bigint;
  proof: Uint8Array;
}

/** How a CeasePair ends the pairing: rekey in place, or rejoin. */
export type CeaseRoute = 'rekey' | 'rejoin';

/** struct { CeaseRoute route; uint64 counter; opaque proof<V>; } */
export interface CeasePair {
  type: 'ceasePair';
  route: CeaseRoute;
  /** rekey: the counter of the derivation step that removes the partner; rejoin: the next counter. */
  counter: bigint;
  proof: Uint8Array;
}

/** Any pairing message, told apart by `type`. */
export type PairingMessage = ShareRand | Accept | Notify | RoleChange | CeasePair;

const TYPE_CODES = { shareRand: 1, accept: 2, notify: 3, roleChange: 4, ceasePair: 5 } as const;
const MODE_CODES: Record<PairingMode, number> = { hidden: 1, standard: 2 };
const KIND_CODES: Record<NotifyKind, number> = { enroll: 1, update: 2 };
const ROUTE_CODES: Record<CeaseRoute, number> = { rekey: 1, rejoin: 2 };

/** The code of `value`, which a caller may pass unchecked from JavaScript: an unknown one is refused, not encoded as 0. */
function encodeEnum<T extends string>(codes: Record<T, number>, value: T, what: string): number {
  if (!Object.prototype.hasOwnProperty.call(codes, value)) throw invalidArgument(`unknown ${what} ${String(value)}`);
  return codes[value];
}

function decodeEnum<T extends string>(codes: Record<T, number>, value: number, what: string): T {
  for (const [name, code] of Object.entries(codes) as [T, number][]) if (code === value) return name;
  throw new CodecError(`unknown ${what} ${value}`);
}

/** Encode a pairing message (docs/PROTOCOL.md §4.2). */
export function encodePairingMessage(message: PairingMessage): Uint8Array {
  const w = new Writer().u16(PAIRING_MESSAGE_VERSION).u8(TYPE_CODES[message.type]);
  switch (message.type) {
    case 'shareRand':
      w.u8(encodeEnum(MODE_CODES, message.mode, 'pairing mode')).vector(message.seed).vector(message.anchorIdentity).u16(message.ciphersuite);
      w.vector(message.anchorKeyPair).u64(message.counter).vector(message.proof);
      break;
    case 'accept':
      w.vector(message.seedConfirmation);
      break;
    case 'notify':
      w.u64(message.counter).u8(encodeEnum(KIND_CODES, message.kind, 'notify kind')).vector(message.groupId).u64(message.epoch);
      w.vector(message.commitRef).vector(message.groupState).vector(message.derivationInfo).vector(message.proof);
      break;
    case 'roleChange':
      w.u32(message.newActiveLeaf).u64(message.counter).vector(message.proof);
      break;
    case 'ceasePair':
      w.u8(encodeEnum(ROUTE_CODES, message.route, 'cease route')).u64(message.counter).vector(message.proof);
      break;
  }
  return w.finish();
}

/** Strict decoding; throws `CodecError` on anything malformed. */
export function decodePairingMessage(bytes: Uint8Array): PairingMessage {
  const r = new Reader(bytes);
  const version = r.u16();
  if (version !== PAIRING_MESSAGE_VERSION) throw new CodecError(`unsupported pairing message version ${version}`);
  const type = decodeEnum(TYPE_CODES, r.u8(), 'pairing message type');
  let message: PairingMessage;
  switch (type) {
    case 'shareRand':
      message = {
        type,
        mode: decodeEnum(MODE_CODES, r.u8(), 'pairing mode'),
        seed: r.vector(),
        anchorIdentity: r.vector(),
        ciphersuite: r.u16(),
        anchorKeyPair: r.vector(),
        counter: r.u64(),
        proof: r.vector(),
      };
      break;
    case 'accept':
      message = { type, seedConfirmation: r.vector() };
      break;
    case 'notify':
      message = {
        type,
        counter: r.u64(),
        kind: decodeEnum(KIND_CODES, r.u8(), 'notify kind'),
        groupId: r.vector(),
        epoch: r.u64(),
        commitRef: r.vector(),
        groupState: r.vector(),
        derivationInfo: r.vector(),
        proof: r.vector(),
      };
      break;
    case 'roleChange':
      message = { type, newActiveLeaf: r.u32(), counter: r.u64(), proof: r.vector() };
      break;
    case 'ceasePair':
      message = { type, route: decodeEnum(ROUTE_CODES, r.u8(), 'cease route'), counter: r.u64(), proof: r.vector() };
      break;
  }
  r.end();
  return message;
}

/** struct { opaque label<V> = "paired-mls psk"; opaque pairing_group_id<V>; uint64 counter; } PairingPskId */
export function pairingPskId(pairingGroupId: Uint8Array, counter: bigint): Uint8Array {
  return new Writer().vector(new TextEncoder().encode('paired-mls psk')).vector(pairingGroupId).u64(counter).finish();
}

/** Pairing messages that change the pairing's state and so carry a vault proof. */
export type ProvenMessage = ShareRand | Notify | RoleChange | CeasePair;

/**
 * What a vault proof covers (docs/PROTOCOL.md §4.2):
 *
 *   struct { opaque pairing_group_id<V>; uint64 pairing_epoch; uint32 sender_leaf;
 *            opaque content<V>; } PairingProofTBS;
 *   proof = vault.derive("proof", PairingProofTBS, 32)
 *
 * `content` is the PairingMessage encoded with an empty proof, or for a
 * pairing-group commit that is not a derivation step `PairingCommitContent`.
 */
export function pairingProofTbs(pairingGroupId: Uint8Array, pairingEpoch: bigint, senderLeaf: number, content: Uint8Array): Uint8Array {
  return new Writer().vector(pairingGroupId).u64(pairingEpoch).u32(senderLeaf).vector(content).finish();
}

/** The content a proof covers for `message`: its encoding with an empty proof. */
export function provenContent(message: ProvenMessage): Uint8Array {
  return encodePairingMessage({ ...message, proof: new Uint8Array(0) });
}

/**
 * struct { opaque share_rand<V>; opaque epoch_authenticator<V>; } ShareRandProven
 * — what a ShareRand's proof covers (version 5): its encoding with an empty
 * proof, and the epoch authenticator (RFC 9420 §8.7) of the pairing epoch
 * it is sent in. A copy of a joiner's state that read a ShareRand can build
 * a fork with the same pairing group id, inviter leaf and epoch number for
 * the device's next KeyPackage, but not that epoch: the replay fails.
 */
export function shareRandProvenContent(message: ShareRand, epochAuthenticator: Uint8Array): Uint8Array {
  const encoded = provenContent(message);
  try {
    return new Writer().vector(encoded).vector(epochAuthenticator).finish();
  } finally {
    encoded.fill(0);
  }
}

/**
 * struct { opaque label<V> = "paired-mls commit"; uint64 counter; opaque added<V>; } PairingCommitContent
 * — for a pairing-group commit without a PSK (adding a device); `added` is
 * SHA-256 over the added leaves' signature keys (each opaque<V>), so the
 * proof (carried in the commit's authenticated data) cannot vouch for
 * another device.
 */
export function pairingCommitContent(counter: bigint, addedDigest: Uint8Array): Uint8Array {
  return new Writer().vector(new TextEncoder().encode('paired-mls commit')).u64(counter).vector(addedDigest).finish();
}
