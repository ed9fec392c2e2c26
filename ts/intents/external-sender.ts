/**
 * An external sender (RFC 9420 §12.1.8.1, e.g. the Delivery Service)
 * proposing a LeafOperationIntent itself: a LeafOperationProposal framed
 * as a PublicMessage from an external sender. Groups accept it when the
 * sender is listed in their external_senders extension and the proposal
 * type is among their required capabilities (docs/ENGINE.md); the engine
 * validates the intent on receipt and when it is committed. This class
 * only signs: a recipient of an intent checks it before proposing it
 * (draft §2.3; `validateIntentPublic`, as `DeliveryService.proposeIntent`
 * does).
 *
 * The PublicMessage is built here (RFC 9420 §6.2):
 *   MLSMessage { uint16 version = 1; uint16 wire_format = 1 (public);
 *     FramedContent { opaque group_id<V>; uint64 epoch;
 *       Sender { uint8 sender_type = 2 (external); uint32 sender_index; };
 *       opaque authenticated_data<V>; uint8 content_type = 2 (proposal);
 *       Proposal { uint16 proposal_type; <body> } };
 *     opaque signature<V>; }
 * signature = SignWithLabel(., "FramedContentTBS",
 *   FramedContentTBS { version; wire_format; FramedContent })  (no group
 *   context for external senders, §6.1).
 */
import type { Identity, MlsClient } from '../mls/client.js';
import { Writer } from '../codec/tls.js';
import { encodeIntent, LEAF_OPERATION_PROPOSAL_TYPE, type LeafOperationIntent } from './leaf-operation-intent.js';

const MLS10 = 1;
const WIRE_PUBLIC = 1;
const SENDER_EXTERNAL = 2;
const CONTENT_PROPOSAL = 2;
const PROPOSAL_REMOVE = 3;

/** The group an external sender proposes into: its id, epoch and this sender's index in its external_senders. */
export interface ExternalTarget {
  groupId: Uint8Array;
  epoch: bigint | number;
  /** This sender's index in the group's external_senders extension. */
  senderIndex: number;
}

/** Signs as an external sender of groups that list `identity`'s key in their external_senders extension. */
export class ExternalSender {
  constructor(
    readonly client: MlsClient,
    readonly identity: Identity,
  ) {}

  /** A LeafOperationProposal of `intent` from this external sender (`0xF1A0` followed by the intent, PROTOCOL.md §5.1). */
  proposeIntent(target: ExternalTarget, intent: LeafOperationIntent, authenticatedData: Uint8Array = new Uint8Array(0)): Uint8Array {
    const body = new Writer().u16(LEAF_OPERATION_PROPOSAL_TYPE).raw(encodeIntent(intent)).finish();
    return this.#sign(target, body, authenticatedData);
  }

  /** A signed external Remove proposal (RFC 9420 §12.1.3) with authenticated data. */
  removeProposal(target: ExternalTarget, removed: number, authenticatedData: Uint8Array = new Uint8Array(0)): Uint8Array {
    return this.#sign(target, new Writer().u16(PROPOSAL_REMOVE).u32(removed).finish(), authenticatedData);
  }

  #sign(target: ExternalTarget, proposal: Uint8Array, aad: Uint8Array): Uint8Array {
    const content = new Writer()
      .vector(target.groupId)
      .u64(target.epoch)
      .u8(SENDER_EXTERNAL)
      .u32(target.senderIndex)
      .vector(aad)
      .u8(CONTENT_PROPOSAL)
      .raw(proposal)
      .finish();
    const tbs = new Writer().u16(MLS10).u16(WIRE_PUBLIC).raw(content).finish();
    const signature = this.client.signWithLabel(this.identity, 'FramedContentTBS', tbs);
    return new Writer().u16(MLS10).u16(WIRE_PUBLIC).raw(content).vector(signature).finish();
  }
}
