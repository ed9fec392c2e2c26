/**
 * An external sender (RFC 9420 §12.1.8.1, e.g. the Delivery Service)
 * proposing a LeafOperationIntent. openmls accepts only Add, Remove and
 * GroupContextExtensions proposals from external senders, so the external
 * sender proposes the Removes the intent implies, each carrying the intent
 * (as an mls_leaf_operation_intent MLSMessage) in its authenticated data,
 * which the signature covers. Members check it (`processWithIntents`);
 * the committer then commits the intent by value with those Removes.
 *
 * The PublicMessage is built here (RFC 9420 §6.2):
 *   MLSMessage { uint16 version = 1; uint16 wire_format = 1 (public);
 *     FramedContent { opaque group_id<V>; uint64 epoch;
 *       Sender { uint8 sender_type = 2 (external); uint32 sender_index; };
 *       opaque authenticated_data<V>; uint8 content_type = 2 (proposal);
 *       Proposal { uint16 proposal_type = 3 (remove); uint32 removed; } };
 *     opaque signature<V>; }
 * signature = SignWithLabel(., "FramedContentTBS",
 *   FramedContentTBS { version; wire_format; FramedContent })  (no group
 *   context for external senders, §6.1).
 */
import type { Identity, MlsClient } from '../mls/client.js';
import { Reader, Writer } from '../codec/tls.js';
import { encodeIntentMessage, type LeafOperationIntent } from './leaf-operation-intent.js';

const MLS10 = 1;
const WIRE_PUBLIC = 1;
const SENDER_EXTERNAL = 2;
const CONTENT_PROPOSAL = 2;
const PROPOSAL_REMOVE = 3;

export interface ExternalTarget {
  groupId: Uint8Array;
  epoch: bigint | number;
  /** This sender's index in the group's external_senders extension. */
  senderIndex: number;
}

function framedRemove(target: ExternalTarget, removed: number, aad: Uint8Array): Uint8Array {
  return new Writer()
    .vector(target.groupId)
    .u64(BigInt(target.epoch))
    .u8(SENDER_EXTERNAL)
    .u32(target.senderIndex)
    .vector(aad)
    .u8(CONTENT_PROPOSAL)
    .u16(PROPOSAL_REMOVE)
    .u32(removed)
    .finish();
}

/** Signs as an external sender of groups that list `identity`'s key in their external_senders extension. */
export class ExternalSender {
  constructor(
    readonly client: MlsClient,
    readonly identity: Identity,
  ) {}

  /** One Remove proposal per leaf in `removed`, each carrying `intent`. */
  proposeIntentRemovals(target: ExternalTarget, intent: LeafOperationIntent, removed: number[]): Uint8Array[] {
    const aad = encodeIntentMessage(intent);
    return removed.map((leaf) => this.removeProposal(target, leaf, aad));
  }

  /** A signed external Remove proposal (RFC 9420 §12.1.3) with authenticated data. */
  removeProposal(target: ExternalTarget, removed: number, authenticatedData: Uint8Array = new Uint8Array(0)): Uint8Array {
    const content = framedRemove(target, removed, authenticatedData);
    const tbs = new Writer().u16(MLS10).u16(WIRE_PUBLIC).raw(content).finish();
    const signature = this.client.read((core) => core.signWithLabel(this.identity.signaturePublicKey, this.identity.ciphersuite, 'FramedContentTBS', tbs));
    return new Writer().u16(MLS10).u16(WIRE_PUBLIC).raw(content).vector(signature).finish();
  }
}

/** The fields of an external Remove proposal (PublicMessage), or undefined for any other message. */
export function readExternalRemove(message: Uint8Array): { authenticatedData: Uint8Array; removed: number } | undefined {
  try {
    const r = new Reader(message);
    if (r.u16() !== MLS10 || r.u16() !== WIRE_PUBLIC) return undefined;
    r.vector(); // group_id
    r.u64(); // epoch
    if (r.u8() !== SENDER_EXTERNAL) return undefined;
    r.u32();
    const authenticatedData = r.vector();
    if (r.u8() !== CONTENT_PROPOSAL || r.u16() !== PROPOSAL_REMOVE) return undefined;
    return { authenticatedData, removed: r.u32() };
  } catch {
    return undefined;
  }
}
