/** Public types of the MLS API. Numbers are RFC 9420 code points. */

/**
 * Results the wasm core returns, declared from their Rust structs
 * (crates/core/src/inspect.rs, ext/reinit.rs, public_group.rs; tsify) and
 * used here as they are.
 */
import type * as Core from '../../pkg/paired_mls_core.js';

/** A credential as the library shows it (`credentialType` 1 = basic, RFC 9420 §5.3). */
export type CredentialInfo = Core.CredentialInfo;
/** A member of a group: its leaf index, credential, signature and encryption keys. */
export type Member = Core.Member;
/** What `inspectKeyPackage` reads from a KeyPackage (ciphersuite, credential, keys, KeyPackageRef, lifetime). */
export type KeyPackageInfo = Core.KeyPackageInfo;
/** A commit to send, with the Welcome for added members (and a `vcDetached` commit's derivation info). */
export type CommitResult = Core.CommitResult;
/** A pending request to remove this member that a commit did not carry (`CommitResult.askedToLeave`, `StagedCommit.askedToLeave`; docs/PROTOCOL.md §5.4). */
export type AskedToLeave = Core.AskedToLeave;
/** A snapshot of a group's public state (id, epoch, ciphersuite, own leaf, members, pending work). */
export type GroupState = Core.GroupState;
/** Wire format of an MLSMessage (RFC 9420 §6) as `inspectMessage` reports it: 'public' | 'private' | 'welcome' | 'group_info' | 'key_package' (| 'other', one the engine does not name); a wasm-bindgen string enum in crates/core/src/client.rs. */
export type MessageWireFormat = Core.InspectedWireFormat;

/** RFC 9420 §17.1: 1 = X25519/AES-128-GCM/SHA-256/Ed25519, 2 = P-256/AES-128-GCM/SHA-256/P-256, 3 = X25519/ChaCha20-Poly1305/SHA-256/Ed25519. */
export type Ciphersuite = number;

/** The ciphersuites this library runs, by their RFC 9420 §17.1 names. */
export const Ciphersuites = {
  MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519: 1,
  MLS_128_DHKEMP256_AES128GCM_SHA256_P256: 2,
  MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519: 3,
} as const;

/** Wire-format policy (RFC 9420 §6; openmls' outgoing/incoming pairs). */
export type WireFormat = 'ciphertext' | 'plaintext' | 'mixed-ciphertext' | 'mixed-plaintext';

/** A leaf's capabilities (RFC 9420 §7.2): extension, proposal and credential types it supports. */
export interface Capabilities {
  extensions?: number[];
  proposals?: number[];
  credentials?: number[];
  /**
   * The leaf may be shared by virtual-client siblings (Paired MLS): it
   * lists AppDataDictionary and advertises the virtual-clients component.
   */
  virtualClient?: boolean;
}

/** An external sender of a group (RFC 9420 §12.1.8.1): its credential identity and signature key. */
export interface ExternalSenderSpec {
  identity: Uint8Array;
  signatureKey: Uint8Array;
}

/** Group-context extensions a commit or a new group sets. */
export interface GroupContextExtensions {
  requiredCapabilities?: Capabilities;
  externalSenders?: ExternalSenderSpec[];
  custom?: { extensionType: number; data: Uint8Array }[];
}

/** Options for the way this member treats the group (creation and join). */
export interface JoinOptions {
  wireFormat?: WireFormat;
  /** Put the ratchet tree into Welcomes and GroupInfos (default true). */
  ratchetTreeExtension?: boolean;
  /**
   * Out-of-order window per sender (default 5): after generation n, the
   * generations n-1 … n-(T-1) still decrypt (openmls' SenderRatchetConfiguration).
   */
  outOfOrderTolerance?: number;
  /** How far ahead of the newest generation a message may be (default 1000). */
  maximumForwardDistance?: number;
  paddingSize?: number;
  /** Past epochs whose secrets are kept to decrypt late messages (default 0). */
  maxPastEpochs?: number;
  numberOfResumptionPsks?: number;
  /** This member's leaf capabilities (SelfRemove is always included). */
  capabilities?: Capabilities;
}

/** Options of `createGroup`. */
export interface GroupOptions extends JoinOptions {
  groupId?: Uint8Array;
  ciphersuite?: Ciphersuite;
  extensions?: GroupContextExtensions;
}

/** Who sent a message (RFC 9420 §6). */
export type Sender = Core.SenderView;

/** A proposal as the library shows it (in a staged commit or the proposal queue). */
export type ProposalInfo = Core.ProposalView;

/** What a commit contains: adds, removes, a path update, PSKs, extensions, custom proposals. */
export interface CommitOptions {
  /** KeyPackages (serialized MLSMessages) to add. */
  add?: Uint8Array[];
  /** Leaf indices to remove. */
  remove?: number[];
  /** Ids of external PSKs (from the PSK registry) to inject. */
  psks?: Uint8Array[];
  groupContextExtensions?: GroupContextExtensions;
  /** Custom proposals by value; every member must list the type in its capabilities. */
  custom?: { proposalType: number; payload: Uint8Array }[];
  /** Include an UpdatePath even when no proposal needs one. */
  selfUpdate?: boolean;
  /** Commit proposals received earlier (default true). */
  includePending?: boolean;
  /** Leave out those the leaf of this index sent (Paired MLS, PROTOCOL §4.5). */
  skipProposalsFrom?: number;
  /** Also return a GroupInfo for the new epoch. */
  groupInfo?: boolean;
  aad?: Uint8Array;
  /**
   * Commit as a virtual client: derive the UpdatePath from this emulation
   * epoch (`Group.registerEmulationEpoch()` of the pairing group), so
   * sibling devices follow the commit without receiving key material.
   */
  vcEpochId?: Uint8Array;
  /**
   * With `vcEpochId`: return the derivation info (`CommitResult.vcDerivationInfo`)
   * for the siblings instead of writing it into the leaf, so the leaf stays
   * an ordinary member's (openmls `vc_emulation_detached`, docs/ENGINE.md).
   */
  vcDetached?: boolean;
  /**
   * For a leaf whose sender ratchet a sibling shares (virtual clients): the
   * handshake secret of the generation this commit uses is kept, so a
   * sibling's commit at the same generation that wins at the DS still
   * decrypts once this one is cleared. It goes when the epoch ends (this
   * commit merged, or another); every other commit deletes it at once
   * (RFC 9420 §9.2). docs/ENGINE.md change 49.
   */
  retainOwnSecret?: boolean;
  /**
   * Rotate the leaf's signature key (a key pair of this client) in the
   * commit's UpdatePath. The credential keeps the leaf's identity: the core's
   * credential-succession policy (RFC 9420 §5.3.1, docs/PROTOCOL.md §8.4)
   * lets a leaf's credential change only within its type and identity, so
   * `identity` must be the leaf's current one; another is INVALID_ARGUMENT
   * before anything is built, and members refuse a commit that renames a
   * leaf (CREDENTIAL_CHANGED). The default cannot be relaxed yet: to change
   * identity, remove the leaf and add the new credential, or join externally
   * as a new leaf and remove the old one by a commit (a resync removing it
   * under the new identity is refused like a rename).
   */
  newSigner?: { identity: Uint8Array; signaturePublicKey: Uint8Array };
  /**
   * Set these AppDataDictionary entries in this member's leaf (implies an
   * UpdatePath; the leaf then lists AppDataDictionary in its capabilities).
   */
  leafAppData?: AppDataEntry[];
  /**
   * Hand the commit to the Delivery Service and merge it once `send`
   * resolves, in one storage write; when it throws, the commit is cleared
   * (its ratchet step is kept: the commit may have reached the DS). A crash
   * after the DS accepted and before the write loses the commit (rejoin).
   * Without `send`: pending until `mergePendingCommit()`. docs/PROTOCOL.md §2.5.
   */
  send?: (commit: CommitResult) => Promise<void>;
}

/** One entry of a leaf's AppDataDictionary (draft-ietf-mls-extensions). */
export interface AppDataEntry {
  componentId: number;
  data: Uint8Array;
}

/** A proposal to send by reference (`group.propose`). */
export type ProposalRequest =
  | { type: 'add'; keyPackage: Uint8Array }
  | { type: 'remove'; leafIndex: number }
  | { type: 'update' }
  | { type: 'externalPsk'; pskId: Uint8Array }
  | { type: 'groupContextExtensions'; extensions: GroupContextExtensions }
  | { type: 'selfRemove' }
  | { type: 'custom'; proposalType: number; payload: Uint8Array };

/** What a ReInit commit sets up (RFC 9420 §11.2); see `Group.commitReInit`. */
export interface ReInitOptions {
  /** The successor's ciphersuite; every member's leaf must list it. */
  ciphersuite: Ciphersuite;
  /** The successor's group id (random 16 bytes when absent). */
  groupId?: Uint8Array;
  /** Protocol version (1 = MLS 1.0, the only one defined). */
  version?: number;
  /** The successor's GroupContext extensions. */
  extensions?: GroupContextExtensions;
  aad?: Uint8Array;
}

/** A group retired by a merged ReInit commit. */
export type ReInitState = Core.ReInitState;

/**
 * A member of a ReInit successor as its Welcome shows it: leaf index in
 * the successor, basic credential identity, signature key there, whether
 * it created the successor (signed its GroupInfo), and `oldKey`, whether
 * the old group had that signature key for that identity (absent when the
 * member's ReInit record, of an earlier release, kept no keys;
 * docs/PROTOCOL.md §1.6 item 4).
 */
export type SuccessorMember = Core.SuccessorMember;
/**
 * A successor's Welcome read without joining it
 * (`MlsClient.inspectReInitSuccessor`): its group id, the old leaf its
 * creator ranks by, whether joining would replace the successor this
 * member is in, and its members in leaf order.
 */
export type SuccessorInspection = Core.SuccessorInspection;

/**
 * Asks the application's Authentication Service about one member of a
 * ReInit successor before `joinReInitSuccessor` takes it: does this
 * identity own this signature key? Only `true` accepts; anything else (or
 * a rejected promise, whose error reaches the caller) refuses, and the join
 * changes nothing (docs/PROTOCOL.md §1.6 item 5). `credentialAuthenticator`
 * in `paired-mls/services` makes one from an AS.
 */
export type SuccessorAuthenticator = (member: SuccessorMember) => boolean | Promise<boolean>;

/**
 * Which members a `remove_associated_members` LeafOperationProposal takes
 * along (the Authentication Service's answer; the engine calls it, see
 * `MlsClient.setLeafAssociation`; `sameIdentityAssociation` in
 * `paired-mls/intents` is the default rule).
 */
export interface LeafAssociation {
  /**
   * Leaf indices of the members associated with `leafIndex` (the sender,
   * whose credential and signature key are in `members`). Synchronous and
   * deterministic; must not call into the client that runs it.
   */
  associatedLeaves(members: readonly Member[], leafIndex: number): number[];
}

/** A leaf of a publicly verified tree. */
export type PublicLeaf = Core.LeafView;

/** A commit verified against a GroupInfo without group secrets (`MlsClient.verifyPublicCommit`, openmls PublicGroup). */
export type VerifiedCommit = Core.VerifiedCommit;
