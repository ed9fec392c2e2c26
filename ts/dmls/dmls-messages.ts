/**
 * What a DMember sends as application messages in its own send group
 * (docs/PROTOCOL.md §6.3). Every application message of a send group is a
 * DmlsMessage, so control messages and user data cannot be confused:
 *
 *   enum { announce(1), rejoin_request(2), data(3), (255) } DmlsMessageType;
 *   struct {
 *     uint16 version = 1;
 *     DmlsMessageType msg_type;
 *     select (msg_type) {
 *       case announce:       uint8 profile; opaque universe_id<V>; uint16 export_length; uint16 ciphersuites<V>; opaque members<V> (list of opaque identity<V>);
 *       case rejoin_request: RejoinEntry entries<V>;   struct { opaque send_group_id<V>; opaque key_package<V>; } RejoinEntry;
 *       case data:           opaque data<V>;
 *     };
 *   } DmlsMessage;
 */
import { CodecError, Reader, Writer } from '../codec/tls.js';
import { toHex } from '../mls/bytes.js';

/**
 * The universe definition (seed 003 §6.1): sent by every owner after its
 * Welcome. The founder's defines the universe (its `universeId` is the
 * founder's send group id under `multi-mls`); the others' repeat it.
 */
export interface Announce {
  type: 'announce';
  /** DMLS profile code (`DMLS_PROFILE_CODES`). */
  profile: number;
  universeId: Uint8Array;
  exportLength: number;
  ciphersuites: number[];
  members: Uint8Array[];
}

export interface RejoinRequest {
  type: 'rejoinRequest';
  entries: { sendGroupId: Uint8Array; keyPackage: Uint8Array }[];
}

export interface Data {
  type: 'data';
  data: Uint8Array;
}

/** Any DMLS message, told apart by `type`. */
export type DmlsMessage = Announce | RejoinRequest | Data;

const CODES = { announce: 1, rejoinRequest: 2, data: 3 } as const;

/** Encode a DMLS message (docs/PROTOCOL.md §6.3). */
export function encodeDmlsMessage(m: DmlsMessage): Uint8Array {
  const w = new Writer().u16(1).u8(CODES[m.type]);
  switch (m.type) {
    case 'announce':
      w.u8(m.profile).vector(m.universeId).u16(m.exportLength).list(m.ciphersuites, (x, cs) => x.u16(cs)).list(m.members, (x, id) => x.vector(id));
      break;
    case 'rejoinRequest':
      w.list(m.entries, (x, e) => x.vector(e.sendGroupId).vector(e.keyPackage));
      break;
    case 'data':
      w.vector(m.data);
      break;
  }
  return w.finish();
}

/** Decode a DMLS message; throws `CodecError` on malformed bytes. */
export function decodeDmlsMessage(bytes: Uint8Array): DmlsMessage {
  const r = new Reader(bytes);
  if (r.u16() !== 1) throw new CodecError('unsupported DMLS message version');
  const code = r.u8();
  let m: DmlsMessage;
  if (code === CODES.announce) {
    m = { type: 'announce', profile: r.u8(), universeId: r.vector(), exportLength: r.u16(), ciphersuites: r.list((x) => x.u16()), members: r.list((x) => x.vector()) };
  } else if (code === CODES.rejoinRequest) {
    m = { type: 'rejoinRequest', entries: r.list((x) => ({ sendGroupId: x.vector(), keyPackage: x.vector() })) };
  } else if (code === CODES.data) {
    m = { type: 'data', data: r.vector() };
  } else {
    throw new CodecError(`unknown DMLS message type ${code}`);
  }
  r.end();
  return m;
}

/** PSK id of a send group's epoch: `psk_group_id = uint64(epoch) || group_id` (seed 003 §5 COMMIT; same in both profiles). */
export function pskGroupId(epoch: bigint | number, groupId: Uint8Array): Uint8Array {
  return new Writer().u64(epoch).raw(groupId).finish();
}

/** Inverse of `pskGroupId`: `epoch = id[0..8]`, `groupId = id[8..]` (seed 003 §5). */
export function parsePskGroupId(id: Uint8Array): { epoch: bigint; groupId: Uint8Array } {
  if (id.length <= 8) throw new CodecError('PSK id too short');
  return { epoch: new DataView(id.buffer, id.byteOffset, 8).getBigUint64(0), groupId: id.slice(8) };
}

/** SafeAAD component of the epoch checks a DMLS commit carries (private use; docs/PROTOCOL.md §6.11). */
export const DMLS_EPOCH_CHECKS_COMPONENT = 0xf1b4;

/** An epoch check: the PSK id of an imported epoch and its check value (docs/PROTOCOL.md §6.11). */
export interface EpochCheck {
  pskId: Uint8Array;
  check: Uint8Array;
}

/** SignWithLabel label of the owner's signature over a commit's epoch checks (docs/PROTOCOL.md §6.11). */
export const EPOCH_CHECKS_LABEL = 'DMLS EpochChecks';

/**
 * The epoch checks of a commit's PSK imports, as the SafeAAD item's data
 * (docs/PROTOCOL.md §6.11), signed by the send group's owner (leaf 0, its
 * key in the epoch the commit is made in) over `epochChecksTbs`:
 *
 *   struct { opaque psk_id<V>; opaque check[16]; } EpochCheck;
 *   struct { uint8 version = 1; EpochCheck checks<V>; opaque signature<V>; } EpochChecks;
 */
export function encodeEpochChecks(checks: EpochCheck[], signature: Uint8Array): Uint8Array {
  return new Writer().u8(1).list(checks, (w, c) => w.vector(c.pskId).raw(c.check)).vector(signature).finish();
}

/**
 * What the owner signs (`EPOCH_CHECKS_LABEL`): the send group and epoch
 * the commit is made in, and the checks, so that no other member's commit
 * (its sender is not known when it fails) nor another epoch's carries them:
 *
 *   struct { opaque group_id<V>; uint64 epoch; EpochCheck checks<V>; } EpochChecksTBS;
 */
export function epochChecksTbs(groupId: Uint8Array, epoch: number | bigint, checks: EpochCheck[]): Uint8Array {
  return new Writer().vector(groupId).u64(epoch).list(checks, (w, c) => w.vector(c.pskId).raw(c.check)).finish();
}

/**
 * Inverse of `encodeEpochChecks`, strictly: version 1, at least one check,
 * each PSK id an epoch and a group id (over 8 bytes) and named once, a
 * signature, no trailing bytes; throws `CodecError` otherwise.
 */
export function decodeEpochChecks(data: Uint8Array): { checks: EpochCheck[]; signature: Uint8Array } {
  const r = new Reader(data);
  if (r.u8() !== 1) throw new CodecError('epoch checks of an unknown version');
  const checks = r.list((x) => ({ pskId: x.vector(), check: x.raw(16) }));
  const signature = r.vector();
  r.end();
  if (checks.length === 0) throw new CodecError('no epoch checks');
  const ids = new Set(checks.map((c) => toHex(c.pskId)));
  if (ids.size < checks.length) throw new CodecError('two epoch checks for one PSK');
  for (const c of checks) parsePskGroupId(c.pskId);
  if (signature.length === 0) throw new CodecError('unsigned epoch checks');
  return { checks, signature };
}
