/**
 * LeafOperationIntent wire formats (draft-kohbrok-mls-leaf-operation-intents,
 * §2; code points in docs/PROTOCOL.md §5.2):
 *
 *   enum { reserved(0), sender_removal_only(1), remove_associated_members(2), (255) } RemovalMode;
 *   struct { opaque group_id<V>; uint32 sender_index; LeafNodeRef sender_leaf_ref; RemovalMode removal_mode; } LeafOperationIntentTBS;
 *   struct { <TBS fields>; opaque signature<V>; } LeafOperationIntent;
 *   struct { LeafOperationIntent intent; } LeafOperationProposal;
 *
 * LeafNodeRef is a HashReference (RFC 9420 §5.2: `opaque HashReference<V>`).
 */
import { CodecError, Reader, Writer } from '../codec/tls.js';

/** Proposal type of LeafOperationProposal (private use, RFC 9420 §17.4). */
export const LEAF_OPERATION_PROPOSAL_TYPE = 0xf1a0;
/** Wire format mls_leaf_operation_intent (private use, RFC 9420 §17.2). */
export const LEAF_OPERATION_INTENT_WIRE_FORMAT = 0xf1a0;
/** SignWithLabel label of the intent. */
export const INTENT_SIGNATURE_LABEL = 'LeafOperationIntentTBS';
/** RefHash label of LeafNodeRef. */
export const LEAF_NODE_REF_LABEL = 'MLS 1.0 LeafNode Reference';

/** Remove only the sender's leaf, or also the leaves associated with it. */
export type RemovalMode = 'senderRemovalOnly' | 'removeAssociatedMembers';
const MODE_CODES: Record<RemovalMode, number> = { senderRemovalOnly: 1, removeAssociatedMembers: 2 };

/** The signed content of a LeafOperationIntent: group, sender leaf index, its LeafNodeRef and the removal mode. */
export interface LeafOperationIntentTbs {
  groupId: Uint8Array;
  senderIndex: number;
  senderLeafRef: Uint8Array;
  removalMode: RemovalMode;
}

/** A signed LeafOperationIntent. */
export interface LeafOperationIntent extends LeafOperationIntentTbs {
  signature: Uint8Array;
}

/** The draft's code of a removal mode; never reserved(0): a mode this API does not name (a JavaScript caller's string) is refused, not written as 0. */
export function removalModeCode(mode: RemovalMode): number {
  const code = Object.hasOwn(MODE_CODES, mode) ? MODE_CODES[mode] : undefined;
  if (code === undefined) throw new CodecError(`unknown removal mode ${String(mode)}`);
  return code;
}

function writeTbs(w: Writer, tbs: LeafOperationIntentTbs): Writer {
  return w.vector(tbs.groupId).u32(tbs.senderIndex).vector(tbs.senderLeafRef).u8(removalModeCode(tbs.removalMode));
}

function readTbs(r: Reader): LeafOperationIntentTbs {
  const groupId = r.vector();
  const senderIndex = r.u32();
  const senderLeafRef = r.vector();
  const code = r.u8();
  const removalMode = (Object.keys(MODE_CODES) as RemovalMode[]).find((m) => MODE_CODES[m] === code);
  if (!removalMode) throw new CodecError(`unknown removal mode ${code}`);
  return { groupId, senderIndex, senderLeafRef, removalMode };
}

/** Encode LeafOperationIntentTBS, what the member signs. */
export function encodeIntentTbs(tbs: LeafOperationIntentTbs): Uint8Array {
  return writeTbs(new Writer(), tbs).finish();
}

/** Encode a signed LeafOperationIntent. */
export function encodeIntent(intent: LeafOperationIntent): Uint8Array {
  return writeTbs(new Writer(), intent).vector(intent.signature).finish();
}

function readIntent(r: Reader): LeafOperationIntent {
  const tbs = readTbs(r);
  return { ...tbs, signature: r.vector() };
}

/** Strict decoding of a LeafOperationIntent (also the LeafOperationProposal body). */
export function decodeIntent(bytes: Uint8Array): LeafOperationIntent {
  const r = new Reader(bytes);
  const intent = readIntent(r);
  r.end();
  return intent;
}

/** `MLSMessage { version = mls10; wire_format = mls_leaf_operation_intent; LeafOperationIntent }`. */
export function encodeIntentMessage(intent: LeafOperationIntent): Uint8Array {
  return new Writer().u16(1).u16(LEAF_OPERATION_INTENT_WIRE_FORMAT).raw(encodeIntent(intent)).finish();
}

/** Decode a LeafOperationIntent carried as an MLSMessage; throws `CodecError` on malformed bytes. */
export function decodeIntentMessage(bytes: Uint8Array): LeafOperationIntent {
  const r = new Reader(bytes);
  if (r.u16() !== 1) throw new CodecError('not an mls10 message');
  if (r.u16() !== LEAF_OPERATION_INTENT_WIRE_FORMAT) throw new CodecError('not a mls_leaf_operation_intent message');
  const intent = readIntent(r);
  r.end();
  return intent;
}
