/**
 * What the Delivery Service can check in the bytes it relays without
 * group secrets (docs/PROTOCOL.md §8.5): that a GroupInfo is a GroupInfo of
 * this group at the epoch the commit creates, that a Welcome is a
 * well-formed Welcome, and the clear header of handshake messages.
 */
import { Reader } from '../codec/tls.js';
import { bytesEqual } from '../mls/bytes.js';

/** A GroupInfo MLSMessage's group id and epoch; undefined when the bytes are not exactly one GroupInfo. */
export function readGroupInfoHeader(bytes: Uint8Array): { groupId: Uint8Array; epoch: bigint } | undefined {
  try {
    const r = new Reader(bytes);
    if (r.u16() !== 1 || r.u16() !== 4) return undefined;
    // GroupContext (RFC 9420 §8.1), then GroupInfo's own fields (§12.4.3).
    if (r.u16() !== 1) return undefined;
    r.u16();
    const groupId = r.vector();
    const epoch = r.u64();
    r.vector(); // tree_hash
    r.vector(); // confirmed_transcript_hash
    r.vector(); // group context extensions
    r.vector(); // extensions
    r.vector(); // confirmation_tag
    r.u32(); // signer
    r.vector(); // signature
    return r.done ? { groupId, epoch } : undefined;
  } catch {
    return undefined;
  }
}

/** The recipients (KeyPackageRefs) of exactly one Welcome MLSMessage (RFC 9420 §12.4.3.1); undefined when the bytes are not one, or it has none. */
export function welcomeRecipients(bytes: Uint8Array): Uint8Array[] | undefined {
  try {
    const r = new Reader(bytes);
    if (r.u16() !== 1 || r.u16() !== 3) return undefined;
    r.u16(); // cipher_suite
    const secrets = r.list((x) => [x.vector(), x.vector(), x.vector()]);
    r.vector(); // encrypted_group_info
    return r.done && secrets.length > 0 ? secrets.map(([newMember]) => newMember!) : undefined;
  } catch {
    return undefined;
  }
}

/** True when `bytes` is exactly one Welcome MLSMessage with at least one recipient. */
export function isWelcome(bytes: Uint8Array): boolean {
  return welcomeRecipients(bytes) !== undefined;
}

/** A GroupInfo fit to publish after a commit: this group, the epoch the commit creates. */
export function groupInfoFits(bytes: Uint8Array, groupId: Uint8Array, epoch: number): boolean {
  const header = readGroupInfoHeader(bytes);
  return header !== undefined && bytesEqual(header.groupId, groupId) && header.epoch === BigInt(epoch);
}

/**
 * A Reader of a GroupInfo MLSMessage at its GroupContext's extensions (RFC
 * 9420 §8.1, §12.4.3), with the GroupContext fields read before them.
 */
function readContextHead(groupInfo: Uint8Array): { r: Reader; body: Uint8Array; ciphersuite: number; epoch: bigint } {
  const body = groupInfo.subarray(4);
  const r = new Reader(body);
  r.u16(); // version
  const ciphersuite = r.u16();
  r.vector(); // group_id
  const epoch = r.u64();
  r.vector(); // tree_hash
  r.vector(); // confirmed_transcript_hash
  return { r, body, ciphersuite, epoch };
}

/** The GroupContext extensions of a GroupInfo MLSMessage (RFC 9420 §8.1, §12.4.3), as type and data; undefined when unreadable. */
function contextExtensionsOf(groupInfo: Uint8Array): { type: number; data: Uint8Array }[] | undefined {
  try {
    return readContextHead(groupInfo).r.list((x) => ({ type: x.u16(), data: x.vector() }));
  } catch {
    return undefined;
  }
}

/**
 * The signature keys of a GroupInfo MLSMessage's external_senders extension
 * (RFC 9420 §12.1.8.1), in order; [] without one, undefined when unreadable.
 * A credential is read as one vector (basic and X.509 are, RFC 9420 §5.3).
 */
export function externalSenderKeysOf(groupInfo: Uint8Array): Uint8Array[] | undefined {
  try {
    const extensions = contextExtensionsOf(groupInfo);
    const listed = extensions?.find((e) => e.type === 5);
    if (!listed) return extensions && [];
    return new Reader(listed.data).list((x) => {
      const key = x.vector();
      x.u16();
      x.vector();
      return key;
    });
  } catch {
    return undefined;
  }
}

/**
 * Whether a GroupInfo MLSMessage's required_capabilities extension (RFC 9420
 * §11.1) lists proposal type `type`: members take an external sender's
 * custom proposal only then (docs/ENGINE.md change 8).
 */
export function requiresProposalType(groupInfo: Uint8Array, type: number): boolean {
  try {
    const required = contextExtensionsOf(groupInfo)?.find((e) => e.type === 3);
    if (!required) return false;
    const r = new Reader(required.data);
    r.vector(); // extension_types
    return r.list((x) => x.u16()).includes(type);
  } catch {
    return false;
  }
}

/** The GroupContext bytes (RFC 9420 §8.1) at the head of a GroupInfo MLSMessage, and its ciphersuite. */
export function groupContextOf(groupInfo: Uint8Array): { context: Uint8Array; ciphersuite: number; epoch: bigint } | undefined {
  try {
    const { r, body, ciphersuite, epoch } = readContextHead(groupInfo);
    r.vector(); // group context extensions
    return { context: body.slice(0, r.offset), ciphersuite, epoch };
  } catch {
    return undefined;
  }
}

/** What the DS can read from an external commit (a PublicMessage from new_member_commit). */
export interface ExternalCommit {
  /** FramedContent bytes, as signed (RFC 9420 §6.1). */
  framedContent: Uint8Array;
  signature: Uint8Array;
  /** The joiner's leaf in the commit's UpdatePath: its signature key and credential. */
  signatureKey: Uint8Array;
  credentialType: number;
  /** Basic credential identity (empty for other credential types). */
  identity: Uint8Array;
}

/** Skip a LeafNode (RFC 9420 §7.2) after its signature key and credential. */
function skipLeafNodeTail(r: Reader): void {
  for (let i = 0; i < 5; i++) r.vector(); // capabilities: versions, ciphersuites, extensions, proposals, credentials
  const source = r.u8();
  if (source === 1) {
    r.u64();
    r.u64();
  } else if (source === 3) r.vector();
  else if (source !== 2) throw new Error('bad leaf_node_source');
  r.vector(); // extensions
  r.vector(); // signature
}

/**
 * The credential (a basic credential's identity, empty for another type, as
 * the core's PublicLeaf) and signature key of leaf `leafIndex` in a GroupInfo
 * MLSMessage's ratchet_tree extension (RFC 9420 §7.8, §12.4.3.3); undefined
 * for a blank leaf, one past the tree, or bytes that do not parse. Read, not
 * verified: the DS reads only a GroupInfo it verified when it stored it.
 */
export function treeLeafOf(groupInfo: Uint8Array, leafIndex: number): { leafIndex: number; identity: Uint8Array; signatureKey: Uint8Array } | undefined {
  try {
    const { r } = readContextHead(groupInfo);
    r.vector(); // group context extensions
    const tree = new Reader(r.list((x) => ({ type: x.u16(), data: x.vector() })).find((e) => e.type === 2)?.data ?? new Uint8Array(0)).vector();
    const nodes = new Reader(tree);
    // Node 2i is leaf i; each node before it is skipped (blank, or a leaf or a parent node).
    for (let node = 0; !nodes.done; node++) {
      if (nodes.u8() === 0) {
        if (node === 2 * leafIndex) return undefined;
        continue;
      }
      if (nodes.u8() === 2) {
        for (let i = 0; i < 3; i++) nodes.vector(); // encryption_key, parent_hash, unmerged_leaves
        continue;
      }
      nodes.vector(); // encryption_key
      const signatureKey = nodes.vector();
      const type = nodes.u16();
      const content = nodes.vector();
      if (node === 2 * leafIndex) return { leafIndex, identity: type === 1 ? content : new Uint8Array(0), signatureKey };
      skipLeafNodeTail(nodes);
    }
    return undefined;
  } catch {
    return undefined;
  }
}

/** Parse an external commit; undefined when the bytes are not exactly one (with an UpdatePath). */
export function readExternalCommit(message: Uint8Array): ExternalCommit | undefined {
  try {
    const outer = new Reader(message);
    if (outer.u16() !== 1 || outer.u16() !== 1) return undefined;
    const body = message.subarray(4);
    const r = new Reader(body);
    r.vector(); // group_id
    r.u64(); // epoch
    if (r.u8() !== 4) return undefined; // sender: new_member_commit
    r.vector(); // authenticated_data
    if (r.u8() !== 3) return undefined; // content_type: commit
    r.vector(); // proposals
    if (r.u8() !== 1) return undefined; // an external commit has a path
    r.vector(); // encryption_key
    const signatureKey = r.vector();
    const credentialType = r.u16();
    const identity = credentialType === 1 ? r.vector() : new Uint8Array(0);
    if (credentialType !== 1) r.vector();
    skipLeafNodeTail(r);
    r.vector(); // UpdatePath nodes
    const framedContent = body.slice(0, r.offset);
    const signature = r.vector();
    r.vector(); // confirmation_tag
    return r.done ? { framedContent, signature, signatureKey, credentialType, identity } : undefined;
  } catch {
    return undefined;
  }
}

/** FramedContentTBS of a PublicMessage from new_member_commit (RFC 9420 §6.1): version, wire format, content, GroupContext. */
export function externalCommitTbs(commit: ExternalCommit, groupContext: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + commit.framedContent.length + groupContext.length);
  out.set([0, 1, 0, 1]);
  out.set(commit.framedContent, 4);
  out.set(groupContext, 4 + commit.framedContent.length);
  return out;
}
