/**
 * The clear header of an MLSMessage (RFC 9420 §6): wire format and, for
 * Public/PrivateMessages, group id and epoch — enough to route a message
 * or to tell a past epoch from a future one without processing it.
 */
import { Reader } from './tls.js';

/** Wire format of an MLSMessage as `readMlsHeader` names it. */
export type MlsWireFormat = 'public' | 'private' | 'welcome' | 'group_info' | 'key_package' | 'other';

const WIRE_FORMATS: Record<number, MlsWireFormat> = { 1: 'public', 2: 'private', 3: 'welcome', 4: 'group_info', 5: 'key_package' };

/** The unencrypted header fields of an MLSMessage. */
export interface MlsHeader {
  wireFormat: MlsWireFormat;
  /** Public/PrivateMessage only. */
  groupId?: Uint8Array;
  epoch?: bigint;
  /** Public/PrivateMessage only: 1 application, 2 proposal, 3 commit. */
  contentType?: number;
  /** PublicMessage only: 1 member, 2 external, 3 new_member_proposal, 4 new_member_commit (RFC 9420 §6). */
  senderType?: number;
  /** Public/PrivateMessage only: the `authenticated_data`, in the clear in both (authenticated only when the message is processed). */
  authenticatedData?: Uint8Array;
  /** A PublicMessage proposal only: its type (RFC 9420 §12.1: 5 ReInit), when the bytes hold one. */
  proposalType?: number;
}

/** Undefined when the bytes are not an mls10 MLSMessage. */
export function readMlsHeader(bytes: Uint8Array): MlsHeader | undefined {
  try {
    const r = new Reader(bytes);
    if (r.u16() !== 1) return undefined;
    const wireFormat = WIRE_FORMATS[r.u16()] ?? 'other';
    if (wireFormat !== 'public' && wireFormat !== 'private') return { wireFormat };
    const groupId = r.vector();
    const epoch = r.u64();
    let senderType: number | undefined;
    let authenticatedData: Uint8Array | undefined;
    if (wireFormat === 'public') {
      // FramedContent: sender, then authenticated_data (RFC 9420 §6).
      senderType = r.u8();
      if (senderType === 1 || senderType === 2) r.u32();
      authenticatedData = r.vector();
    }
    const contentType = r.u8();
    let proposalType: number | undefined;
    // PrivateMessage: content_type, then authenticated_data (RFC 9420 §6.3); bytes cut or broken there still have a header, as before.
    // PublicMessage: a proposal's type follows content_type (§6, §12.1); a verifying DS refuses some types when posted (§1.6 item 7).
    try {
      authenticatedData ??= r.vector();
      if (senderType !== undefined && contentType === 2) proposalType = r.u16();
    } catch {
      /* no authenticated data or proposal type to read */
    }
    return { wireFormat, groupId, epoch, contentType, authenticatedData, ...(senderType === undefined ? {} : { senderType }), ...(proposalType === undefined ? {} : { proposalType }) };
  } catch {
    return undefined;
  }
}

/**
 * The KeyPackage an Add proposal in a PublicMessage carries, as an MLSMessage
 * (for `inspectKeyPackage`, which names its KeyPackageRef); undefined for any
 * other message or what does not parse (RFC 9420 §6, §10, §12.1.1).
 */
export function readAddProposalKeyPackage(bytes: Uint8Array): Uint8Array | undefined {
  try {
    const r = new Reader(bytes);
    if (r.u16() !== 1 || r.u16() !== 1) return undefined;
    r.vector(); // group_id
    r.u64();
    const senderType = r.u8();
    if (senderType === 1 || senderType === 2) r.u32();
    r.vector(); // authenticated_data
    if (r.u8() !== 2 || r.u16() !== 1) return undefined;
    const start = r.offset;
    r.u16(); // version
    r.u16(); // cipher_suite
    r.vector(); // init_key
    // LeafNode: keys, credential (type, content), capabilities (5 lists), source, extensions, signature.
    r.vector();
    r.vector();
    r.u16();
    r.vector();
    for (let i = 0; i < 5; i++) r.vector();
    const source = r.u8();
    if (source === 1) r.raw(16);
    else if (source === 3) r.vector();
    else if (source !== 2) return undefined;
    r.vector();
    r.vector();
    // KeyPackage extensions, signature.
    r.vector();
    r.vector();
    const kp = bytes.subarray(start, r.offset);
    const out = new Uint8Array(4 + kp.length);
    out.set([0, 1, 0, 5]);
    out.set(kp, 4);
    return out;
  } catch {
    return undefined;
  }
}

/**
 * The sender's leaf index and the new leaf's credential (a basic
 * credential's identity; empty for another type, as the core's PublicLeaf)
 * and signature key of a member's Update proposal in a PublicMessage;
 * undefined for any other message or what does not parse (RFC 9420 §6,
 * §7.2, §12.1.2).
 */
export function readUpdateProposalLeaf(bytes: Uint8Array): { leafIndex: number; identity: Uint8Array; signatureKey: Uint8Array } | undefined {
  try {
    const r = new Reader(bytes);
    if (r.u16() !== 1 || r.u16() !== 1) return undefined;
    r.vector(); // group_id
    r.u64();
    if (r.u8() !== 1) return undefined;
    const leafIndex = r.u32();
    r.vector(); // authenticated_data
    if (r.u8() !== 2 || r.u16() !== 2) return undefined;
    // LeafNode: encryption_key, signature_key, credential (type, content).
    r.vector();
    const signatureKey = r.vector();
    const type = r.u16();
    const content = r.vector();
    return { leafIndex, identity: type === 1 ? content : new Uint8Array(0), signatureKey };
  } catch {
    return undefined;
  }
}
