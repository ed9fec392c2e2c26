/**
 * Delivery Service (MLS architecture §5; docs/PROTOCOL.md §8), in-process:
 * KeyPackage directory, per-group ordered delivery with "first commit for
 * an epoch wins" (§5.2.1), Welcomes released to new members only for the
 * winning commit, GroupInfo kept in step with the epoch, a pairing registry
 * for Paired MLS (fan-out to an anchor's devices) and an external-sender
 * identity (LeafOperationIntents). An "eventual" group skips the ordering.
 */
import { MlsClient, type Identity } from '../mls/client.js';
import type { Ciphersuite } from '../mls/types.js';
import { MlsError } from '../mls/errors.js';
import { DsError, type DsRejection } from './ds-error.js';
export { DS_ERROR_CODES, DsError, type DsRejection } from './ds-error.js';
import { bytesEqual, fromHex, sha256, toHex } from '../mls/bytes.js';
import { CodecError } from '../codec/tls.js';
import { readAddProposalKeyPackage, readMlsHeader, readUpdateProposalLeaf } from '../codec/mls-header.js';
import { ExternalSender } from '../intents/external-sender.js';
import { IntentError } from '../intents/intent-error.js';
import { validateIntentPublic } from '../intents/intent-operations.js';
import { LEAF_OPERATION_PROPOSAL_TYPE, type LeafOperationIntent } from '../intents/leaf-operation-intent.js';
import type { LeafAssociation } from '../intents/leaf-association.js';
import { countProposal, EpochProposalsFullError, GroupIdTakenError, InboxFullError, MemoryDeliveryStore, ProposalKeyTakenError, isReserved, StorageQuotaError, type CommitUpdate, type DeliveryStore, type EpochProposalBudget, type ProposalLimit, type GroupRecord, type KeyPackageGrant, type LoggedMessage, type PendingWelcome, type StorageQuota, type StoredKeyPackage } from './delivery-store.js';
import { DELETED_IDS_KEPT, isDeleted, isRetired } from './delivery-store.js';
import type { CredentialCheck } from './credential-check.js';
export type { CredentialCheck } from './credential-check.js';
import { externalCommitTbs, externalSenderKeysOf, groupContextOf, groupInfoFits, isWelcome, readExternalCommit, requiresProposalType, treeLeafOf, welcomeRecipients } from './ds-checks.js';
import { clientOfLeaf, publicMembers, verifyCommit, welcomeMatches, type PublicLeaf, type VerifiedCommit } from './verified-commit.js';
import { externalRemoveOf, revokedClientOf } from './revoked-leaves.js';
import { alreadyProposed, removalKey } from './ds-own-proposals.js';

/** Largest epoch the DS accepts: JavaScript numbers are exact up to 2^53 - 1. */
const MAX_EPOCH = Number.MAX_SAFE_INTEGER - 1;

/** KeyPackages of a revoked key deleted per client per fetch, at most (each one deleted is gone for good). */
const STALE_KEY_PACKAGES = 16;

/** Log sender name of what the DS proposes itself, and its external sender's identity: reserved, no client's (§8.4). */
export const DS_SENDER = 'delivery-service';

/**
 * How many times `#submit` takes again what the store refused (a post or a strong group's device commit whose sender's
 * membership or pairing moved, an eventual commit whose group moved): the try after the last of these is final.
 */
const SUBMIT_RETRIES = 16;
/** A post, or a strong group's device commit, the store refused on each of `tries` (its sender's membership or pairing moving, `postsFor`). */
const membershipMoved = (tries: number): DsError =>
  new DsError('stale', `the sender's membership moved while the message was checked (${tries} tries); send it again`);
/** A commit whose sender had not read a proposal of its epoch (`SubmitExtras.readTo`). */
const unread = (epoch: number, readTo: number): DsError =>
  new DsError('unread-proposal', `a proposal of epoch ${epoch} was logged after ${readTo}: process the group's messages and commit again`);
/** The refusal of what is sent to a retired group. */
const retired = (reason: 'invalid-commit' | 'unverifiable-intent' | 'stale'): DsError => new DsError(reason, 'this group was reinitialized (ReInit): continue in its successor');

/** A leaf of a verified commit's new tree whose client the AS revoked (§8.5). */
type RevokedLeaf = PublicLeaf & { client: string };

/** A leaf of a verified commit's new tree whose credential the AS does not know (nor knew, for a client since revoked). */
const unknownLeaf = (leafIndex: number): DsError => new DsError('unknown-client', `leaf ${leafIndex} has a credential the AS does not know`);

/** A ReInit naming an id the DS has (another group's, or one reserved for another successor): its successor could never be registered here. */
const successorTaken = (): DsError => new DsError('invalid-commit', 'the ReInit names a successor group id this DS already has: commit one with another id');
/** The grant holder of a group's epoch (§8.5): no client id has a control character; the epoch first, so no two pairs share one. */
const heldGrants = (groupId: string, epoch: number): string => `\u0001${epoch}\u0001${groupId}`;

const unknownGroup = (): DsError => new DsError('unknown-group', 'no such group');
/** A reader's group was deleted since it began (its id perhaps registered again: another group, another log). */
const deletedSince = (): DsError => new DsError('unknown-group', 'the group was deleted');
/** A group's registration id (`GroupRecord.registration`): 128 random bits, so never given twice. */
const newRegistration = (): string => toHex(crypto.getRandomValues(new Uint8Array(16)));

/** A session whose key a rotation revoked after its request was authenticated (docs/PROTOCOL.md §8.4). */
export const revokedMeanwhile = (): DsError => new DsError('unauthenticated', 'the key this session was proven with was revoked meanwhile');

/** A member's share of an epoch's proposals is never less than this fraction of the members' (docs/PROTOCOL.md §8.6). */
const MEMBER_SHARE_FLOOR = 32;

/** `write`, with a store's refusals as the DS's: StorageQuotaError `quota-exceeded`, EpochProposalsFullError `too-many-proposals`, InboxFullError `inbox-full`. */
export async function withinQuota<T>(write: Promise<T>): Promise<T> {
  try {
    return await write;
  } catch (err) {
    if (err instanceof StorageQuotaError) {
      throw new DsError('quota-exceeded', err.message);
    }
    if (err instanceof EpochProposalsFullError) throw new DsError('too-many-proposals', err.message);
    if (err instanceof InboxFullError) throw new DsError('inbox-full', err.message);
    if (err instanceof GroupIdTakenError) throw successorTaken();
    throw err;
  }
}

/** Operational parameters (architecture §7) with their defaults. */
export interface DeliveryOptions {
  store?: DeliveryStore;
  /** Validates credentials of uploaded KeyPackages (and clients named in `added`) when given. */
  authentication?: CredentialCheck;
  /** How long a fetched one-time KeyPackage stays leased to its fetcher before it may go to another (seconds; default 600). */
  keyPackageLease?: number;
  /** Application messages are accepted this many epochs behind the group (out-of-order tolerance). */
  epochTolerance?: number;
  /** Messages per poll (default 500, at least 2); also bounds an epoch's proposals (docs/PROTOCOL.md §8.6). */
  pageSize?: number;
  /**
   * Message bytes per poll (default 8 MiB; a single larger message is still
   * returned alone): a page of `pageSize` messages of a few MiB each would
   * otherwise be read into memory, and base64ed into one reply, at once.
   * Also bounds an epoch's proposals: a member's over its share of 7/8 of
   * it is refused.
   */
  pageBytes?: number;
  /** Clock in seconds (KeyPackage expiry). */
  now?: () => number;
  /** KeyPackages valid for longer than this are refused (seconds; default 90 days). */
  maxKeyPackageLifetime?: number;
  /** Messages kept per group log; older ones are pruned (default 100,000). */
  retention?: number;
  /**
   * Verify every commit of strongly consistent groups (docs/PROTOCOL.md
   * §8.5): groups are created with a GroupInfo carrying the ratchet tree,
   * commits are PublicMessages checked with openmls' PublicGroup and carry
   * the new epoch's GroupInfo, and the member list follows the verified tree.
   */
  verifyCommits?: boolean;
  /**
   * Each client a commit adds must match a KeyPackage this DS handed to the
   * committer (a grant, spent by the commit) whose ref is a recipient of the
   * Welcome (docs/PROTOCOL.md §8.1). The networked server turns it on; the
   * in-process DS, whose `fetchKeyPackages` has no requester, leaves it off.
   */
  requireGrants?: boolean;
  /** How long a handed-out KeyPackage may be added by its requester (seconds; default 1 day). */
  grantSeconds?: number;
  /** Welcomes waiting per recipient before commits adding it are refused (`inbox-full`; default 1000; a whole number, or `Infinity`: none). */
  maxPendingWelcomes?: number;
  /** A pairing request the other side did not answer is forgotten after this long (seconds; default 600). */
  pairingRequestSeconds?: number;
  /** Bytes stored for one client (docs/PROTOCOL.md §8.6; default 256 MiB, `Infinity`: none); beyond: `quota-exceeded`. */
  maxStoredBytesPerClient?: number;
  /** KeyPackages held for one client (default 1000); beyond: `quota-exceeded`. */
  maxKeyPackagesPerClient?: number;
  /** Active signature keys of one client (a whole number from 1, or `Infinity`; default 16); a further one: `quota-exceeded`. */
  maxKeysPerClient?: number;
  /** Bytes of one KeyPackage (default 64 KiB); beyond: `too-large`. */
  maxKeyPackageBytes?: number;
  /**
   * The members' association rule for `remove_associated_members` (the
   * one they pass to `MlsClient.open`, e.g. `AuthenticationService.association()`;
   * default: same credential identity). The DS removes by it when it checks
   * an intent and when it verifies a commit: with another rule it refused
   * the members' commits of a user's leave, and took a commit removing by
   * its rule, which every member refused (docs/PROTOCOL.md §5.4, §8.5).
   */
  association?: LeafAssociation;
  /**
   * The DS's external-sender key pairs (`MlsClient.exportSignatureKeyPair`
   * of an Ed25519 identity and of a P-256 one; wiped once imported). Groups
   * pin the key they list, so a DS that restarts, or several sharing one
   * database, must hold the same ones; default: new keys at every `create`,
   * with which groups listing the old ones refuse `proposeIntent`
   * (docs/PROTOCOL.md §5.4, §8.2).
   */
  externalSenderKeys?: { ed25519?: Uint8Array; p256?: Uint8Array };
}

/** What a commit brings beside it: Welcome, GroupInfo, added clients. */
export interface SubmitExtras {
  /** Welcome of this commit, for the clients in `added` only. */
  welcome?: Uint8Array;
  added?: string[];
  removed?: string[];
  /** GroupInfo of the epoch this commit creates (for external joins). */
  groupInfo?: Uint8Array;
  /** The sender joins by this external commit. */
  externalJoin?: boolean;
  /**
   * A commit's sender has read the group's log up to this sequence number:
   * a proposal of the commit's epoch logged after it refuses the commit
   * (`unread-proposal`; docs/PROTOCOL.md §4.5, §8.1).
   */
  readTo?: number;
  /** A verifying DS's charge (the server's per-address budget, §8.6): the signature checks a commit's verification will make, in the group's ciphersuite, before it makes them; throws to refuse. */
  spend?: (checks: number, ciphersuite: number) => void;
}

/** Which registration of a group a reader follows (`DeliveryService.reader`; undefined: the store keeps none). */
export interface Reading {
  registration: string | undefined;
}

/** What `DeliveryService.subscribe` follows, and how it tells its end. */
export interface SubscribeOptions {
  /** The registration to follow (`DeliveryService.reader`'s, its reader checked); default: the group's at the call. */
  reading?: Reading;
  /**
   * Called once when the subscription ends by itself: unknown-group "the group was deleted" (its group deleted, its id
   * perhaps registered again) or "no such group" (none under the id at the call), or, without `reading`, unavailable when
   * the store failed the lookup made at the call (subscribe again). Not called on unsubscribe.
   */
  onEnd?: (error: DsError) => void;
}

/** Whether the DS accepted a message, and its sequence number or the reason. */
export type SubmitResult = { accepted: true; seq: number } | { accepted: false; reason: DsRejection; message: string; leaves?: number[]; proposed?: boolean };

/** The Delivery Service in process (docs/PROTOCOL.md §8): KeyPackages, ordered group logs, Welcomes, pairings. */
export class DeliveryService {
  readonly store: DeliveryStore;
  readonly #client: MlsClient;
  /** The DS's external-sender identities: Ed25519 (ciphersuites 1 and 3), P-256 (ciphersuite 2). */
  readonly #externals: { ed25519: Identity; p256: Identity };
  readonly #auth: CredentialCheck | undefined;
  readonly #lease: number;
  #takes = 0;
  readonly #tolerance: number;
  readonly #pageSize: number;
  readonly #pageBytes: number;
  /** How many proposals, and bytes of them, an epoch may hold: the DS's own, members' (docs/PROTOCOL.md §8.6). */
  readonly #ownProposals: EpochProposalBudget;
  readonly #membersProposals: ProposalLimit;
  readonly #now: () => number;
  readonly #maxLifetime: number;
  readonly #retention: number;
  readonly #verify: boolean;
  readonly #requireGrants: boolean;
  readonly #grantSeconds: number;
  readonly #maxWelcomes: number;
  readonly #pairingSeconds: number;
  readonly #quota: StorageQuota;
  readonly #maxKeyPackageBytes: number;

  private constructor(client: MlsClient, externals: { ed25519: Identity; p256: Identity }, options: DeliveryOptions) {
    this.#client = client;
    this.#externals = externals;
    this.store = options.store ?? new MemoryDeliveryStore();
    this.#auth = options.authentication;
    this.#tolerance = options.epochTolerance ?? 5;
    this.#pageSize = options.pageSize ?? 500;
    this.#pageBytes = options.pageBytes ?? 8 * 1024 * 1024;
    // An epoch holds no more proposals than a verified commit reads (#epochProposals); an eighth of that is the DS's own.
    if (!(this.#pageSize >= 2 && this.#pageBytes >= 2)) throw new MlsError('INVALID_ARGUMENT', 'pageSize and pageBytes must be at least 2');
    const membersShare = (n: number) => n - Math.max(1, Math.floor(n / 8));
    this.#membersProposals = { count: membersShare(this.#pageSize), bytes: membersShare(this.#pageBytes) };
    // The DS's own are counted apart, under its name: they never take the members' part, nor members' theirs.
    this.#ownProposals = { member: { id: DS_SENDER, count: this.#pageSize - this.#membersProposals.count, bytes: this.#pageBytes - this.#membersProposals.bytes } };
    this.#now = options.now ?? (() => Math.floor(Date.now() / 1000));
    this.#maxLifetime = options.maxKeyPackageLifetime ?? 90 * 24 * 3600;
    this.#retention = options.retention ?? 100_000;
    this.#lease = options.keyPackageLease ?? 600;
    this.#verify = options.verifyCommits ?? false;
    // Without it a revoked client's leaf is one the AS never knew, and every commit keeping it `unknown-client` for good (§8.5).
    if (this.#verify && this.#auth && typeof this.#auth.revokedClientOf !== 'function') {
      throw new MlsError('INVALID_ARGUMENT', 'a verifying DS needs authentication.revokedClientOf (an AS that never revokes answers undefined)');
    }
    this.#requireGrants = options.requireGrants ?? false;
    this.#grantSeconds = options.grantSeconds ?? 24 * 3600;
    this.#maxWelcomes = options.maxPendingWelcomes ?? 1000;
    // A count (the stores compare it with theirs; PostgreSQL as a bigint), or Infinity: no cap.
    if (!(Number.isSafeInteger(this.#maxWelcomes) && this.#maxWelcomes >= 0) && this.#maxWelcomes !== Infinity) throw new MlsError('INVALID_ARGUMENT', 'maxPendingWelcomes must be a whole number from 0, or Infinity');
    this.#pairingSeconds = options.pairingRequestSeconds ?? 600;
    const bound = (n: number) => (Number.isFinite(n) ? n : undefined);
    const keys = options.maxKeysPerClient ?? 16;
    if (!(Number.isInteger(keys) && keys >= 1) && keys !== Infinity) throw new MlsError('INVALID_ARGUMENT', 'maxKeysPerClient must be a whole number from 1, or Infinity');
    this.#quota = { bytes: bound(options.maxStoredBytesPerClient ?? 256 * 1024 * 1024), keyPackages: bound(options.maxKeyPackagesPerClient ?? 1000), keys: bound(keys) };
    this.#maxKeyPackageBytes = options.maxKeyPackageBytes ?? 64 * 1024;
  }

  static async create(options: DeliveryOptions = {}): Promise<DeliveryService> {
    const client = await MlsClient.open({ association: options.association });
    // One key per signature scheme: members verify an external sender's proposal with the group's (RFC 9420 §6.1).
    const keys = options.externalSenderKeys ?? {};
    const ed25519 = await externalIdentity(client, 1, keys.ed25519);
    const p256 = await externalIdentity(client, 2, keys.p256);
    return new DeliveryService(client, { ed25519, p256 }, options);
  }

  /** What one client may store (undefined: no bound). */
  get quota(): StorageQuota {
    return { ...this.#quota };
  }

  /** The DS's external-sender entry for a group's external_senders extension, in ciphersuite 1 or 3 (Ed25519; `externalSenderSpecFor` for another). */
  get externalSenderSpec(): { identity: Uint8Array; signatureKey: Uint8Array } {
    return this.externalSenderSpecFor(1);
  }

  /** The DS's external-sender entry for a group of `ciphersuite` (its key is of the suite's signature scheme). */
  externalSenderSpecFor(ciphersuite: Ciphersuite): { identity: Uint8Array; signatureKey: Uint8Array } {
    const external = this.#externalOf(ciphersuite);
    return { identity: external.identity, signatureKey: external.signaturePublicKey };
  }

  /** Signs external proposals (e.g. LeafOperationProposals) as this DS, in ciphersuite 1 or 3 (`proposeIntent` signs in each group's). */
  get externalSender(): ExternalSender {
    return new ExternalSender(this.#client, this.#externals.ed25519);
  }

  #externalOf(ciphersuite: Ciphersuite): Identity {
    if (ciphersuite === 1 || ciphersuite === 3) return { ...this.#externals.ed25519, ciphersuite };
    if (ciphersuite === 2) return this.#externals.p256;
    throw new MlsError('INVALID_ARGUMENT', `no external-sender key for ciphersuite ${ciphersuite}`);
  }

  /**
   * Propose `intent` as this external sender (index `senderIndex`), appended
   * to the group's log. The DS is a recipient of the intent and checks it
   * first (draft §2.3, docs/PROTOCOL.md §5.4): its group id (`IntentError`
   * `wrong-group`), then, against the group's stored GroupInfo of the
   * current epoch with its ratchet tree, the leaf, its LeafNodeRef, the
   * signature and the KeyPackage-leaf rule (`IntentError`). Without that
   * GroupInfo (only a basic-mode DS can lack it: a committer gave none, or
   * none with the tree) it cannot check, so it proposes nothing
   * (`unverifiable-intent`: the intent may be good; ask again after a
   * commit that hands the DS its GroupInfo, or have a member propose it).
   * Members' engines check again on receipt. Only in verified mode
   * (`verifyCommits`) is that GroupInfo the DS's own check of the group's
   * state; in the basic mode it is the last submitter's word, so a failed
   * check there is not final: `DsError` `unverifiable-intent` (a member can
   * still propose the intent, or the DS after a later commit), not the
   * engine's `IntentError` (docs/PROTOCOL.md §5.4, §8.5). An epoch that
   * holds all the proposals it may: `too-many-proposals` (§8.6). A group
   * whose external sender `senderIndex` is not this DS's key of the group's
   * ciphersuite (new keys after a restart, another server's): `forbidden`
   * (basic mode: `unverifiable-intent`), before the intent is checked; a
   * strongly consistent group that a commit moved past the epoch meanwhile:
   * `stale` (nothing logged; ask again). One proposal a leaf an epoch of
   * each kind (alone: an intent `sender_removal_only` or the DS's Remove;
   * `remove_associated_members`): another is `duplicate`, an exact retry
   * gets its first answer; both answered, like a full share, before the
   * check (docs/PROTOCOL.md §5.4, §8.6).
   */
  async proposeIntent(groupId: Uint8Array, intent: LeafOperationIntent, senderIndex = 0): Promise<{ seq: number; proposal: Uint8Array }> {
    const id = toHex(groupId);
    const group = await this.#group(id);
    if (!group) throw new DsError('unknown-group', 'no such group');
    if (!bytesEqual(intent.groupId, groupId)) throw new IntentError('wrong-group', 'the intent is for another group');
    const info = group.groupInfo;
    // Without the group's current public state the DS cannot check: not the
    // intent's fault, and it passes once a commit hands the DS its GroupInfo.
    const unchecked = (why: string) => new DsError('unverifiable-intent', `the DS ${why}, so it cannot check the intent; ask again after a commit that gives it the GroupInfo, or have a member propose it`);
    if (info?.length === 0) throw retired('unverifiable-intent');
    if (!info || !groupInfoFits(info, groupId, group.epoch)) throw unchecked(`holds no GroupInfo of epoch ${group.epoch}`);
    // Members take an external proposal only from the key their group lists (RFC 9420 §12.1.8.1): a DS that
    // restarted with new keys, or another server's, signed proposals every member refused, and logged them.
    const suite = groupContextOf(info)?.ciphersuite ?? 1;
    const external = suite >= 1 && suite <= 3 ? this.#externalOf(suite as Ciphersuite) : undefined;
    const listed = externalSenderKeysOf(info)?.[senderIndex];
    if (!external || !listed || !bytesEqual(listed, external.signaturePublicKey)) {
      const why = `the group's external sender ${senderIndex} is not this DS's key for ciphersuite ${suite} (a DS must keep its keys across restarts and servers: externalSenderKeys), so every member would refuse its proposal`;
      // In the basic mode the GroupInfo is the last submitter's word (as for the checks below).
      throw this.#verify ? new DsError('forbidden', why) : new DsError('unverifiable-intent', `${why}, by the GroupInfo the last committer gave this DS`);
    }
    // Nor a custom proposal of a type their group does not require (engine change 8): logged, one took the leaf's key of
    // the epoch, and the DS's Remove of that leaf, its client revoked, was never logged: proposed, yet refused for ever.
    if (!requiresProposalType(info, LEAF_OPERATION_PROPOSAL_TYPE)) {
      const why = "the group's required_capabilities do not list the LeafOperationProposal type (0xF1A0), so every member would refuse this DS's proposal";
      throw this.#verify ? new DsError('forbidden', why) : new DsError('unverifiable-intent', `${why}, by the GroupInfo the last committer gave this DS`);
    }
    // An intent this API cannot encode is the engine check's `malformed` (below), as it was when that check came first.
    const checked = <T>(check: () => T): T => {
      try {
        return check();
      } catch (err) {
        // A GroupInfo without its ratchet tree (or one that does not verify): the DS cannot check either.
        if (err instanceof MlsError && err.code === 'INVALID_GROUP_INFO') throw unchecked(`cannot use its GroupInfo (${err.message})`);
        const refused = err instanceof CodecError ? new IntentError('malformed', `unencodable intent: ${err.message}`) : err;
        if (refused instanceof IntentError && !this.#verify) {
          throw new DsError('unverifiable-intent', `the intent fails (${refused.reason}) against the GroupInfo the last committer gave this DS, which it cannot verify; a member can still propose it`);
        }
        throw refused;
      }
    };
    // Signed with the key of the group's signature scheme: an Ed25519 signature in a P-256 group was refused by every member.
    // Both schemes sign deterministically (RFC 8032, RFC 6979), so a retry of an intent makes the same bytes.
    const proposal = checked(() => new ExternalSender(this.#client, external).proposeIntent({ groupId, epoch: group.epoch, senderIndex }, intent));
    const digest = toHex(await sha256(proposal));
    // The cheap answers first, before the check rebuilds the group's public state (every leaf's signature):
    // a retry gets its first answer; a leaf whose removal (of this kind) is proposed, or a full share, is refused.
    const retried = await this.store.seqOf(id, digest);
    if (retried !== undefined) return { seq: retried, proposal };
    const wide = intent.removalMode === 'removeAssociatedMembers';
    const once = removalKey(intent.senderIndex, wide, group.epoch);
    const held = await this.store.proposalCounts?.(id, [once, DS_SENDER]);
    if (held?.get(once)?.epoch === group.epoch) throw alreadyProposed(intent.senderIndex, wide, group.epoch);
    await withinQuota(Promise.resolve().then(() => countProposal(id, group.epoch, held?.get(DS_SENDER), proposal.length, this.#ownProposals.member!, DS_SENDER)));
    checked(() => validateIntentPublic(this.#client, info, intent));
    // Logged only in the epoch it was made for (a commit may have moved the group meanwhile), and once a leaf and kind an
    // epoch (racing calls, and servers, each passed the check above; the store's transaction decides).
    const budget = { ...this.#ownProposals, once, ...(group.consistency === 'strong' ? { epoch: group.epoch } : {}) };
    const seq = await withinQuota(this.store.append({ groupId: id, sender: DS_SENDER, bytes: proposal, digest, registration: group.registration }, undefined, undefined, budget)).catch((err: unknown) => {
      throw err instanceof ProposalKeyTakenError ? alreadyProposed(intent.senderIndex, wide, group.epoch) : err;
    });
    // Deleted meanwhile (perhaps registered again: the proposal names the old group's epoch and tree), or moved on.
    if (seq === undefined) await this.#notGone(group);
    if (seq === undefined) throw new DsError('stale', `the group moved past epoch ${group.epoch} while the intent was proposed; ask again`);
    return { seq, proposal };
  }

  // --- KeyPackage directory --------------------------------------------------

  /** Upload KeyPackages of `clientId` (validated: signature, lifetime, credential, size, quota), all or none; `key`: its session's. */
  async uploadKeyPackages(clientId: string, keyPackages: Uint8Array[], key?: Uint8Array): Promise<void> {
    for (const bytes of keyPackages) {
      if (bytes.length > this.#maxKeyPackageBytes) throw new DsError('too-large', 'KeyPackage too large');
    }
    const infos = keyPackages.map((bytes) => {
      let info;
      try {
        info = this.#client.inspectKeyPackage(bytes);
      } catch (err) {
        throw new DsError('invalid-key-package', `KeyPackage rejected: ${(err as Error).message}`);
      }
      return info;
    });
    const stored = [];
    for (const [i, info] of infos.entries()) {
      if (this.#auth) {
        const binding = await this.#auth.validate(info.credential.identity, info.signatureKey);
        if (!binding || binding.clientId !== clientId) throw new DsError('invalid-key-package', 'the KeyPackage credential is not registered for this client');
      }
      if (info.notAfter - this.#now() > this.#maxLifetime) throw new DsError('invalid-key-package', 'the KeyPackage lifetime is longer than this DS accepts');
      if (info.notAfter < this.#now()) throw new DsError('invalid-key-package', 'the KeyPackage has expired');
      stored.push({ clientId, ref: toHex(info.keyPackageRef), bytes: keyPackages[i]!.slice(), lastResort: info.lastResort, notAfter: info.notAfter });
    }
    if ((await withinQuota(this.store.putKeyPackages(stored, { quota: this.#quota, now: this.#now(), key }))) === 'not-active') throw revokedMeanwhile();
  }

  /** One KeyPackage per client (the minimal set), each handed out once; last-resort ones only when nothing else is left. */
  async fetchKeyPackages(clientIds: string[]): Promise<Map<string, Uint8Array>> {
    const out = new Map<string, Uint8Array>();
    // Taken: leased to a one-off requester (no client id has a NUL) and acknowledged at once.
    const taker = `\u0000take-${++this.#takes}`;
    for (const id of new Set(clientIds)) {
      const kp = await this.#leaseValid(id, taker, this.#now(), {});
      if (!kp) continue;
      if (!kp.lastResort) await this.store.ackKeyPackages(taker, [kp.ref]);
      out.set(id, kp.bytes);
    }
    return out;
  }

  /**
   * One KeyPackage per client, leased to `requester` until acknowledged, and
   * granted to it (docs/PROTOCOL.md §8.1). `oneTime(id)` false: only a lease
   * the requester already holds, or the last-resort KeyPackage (the
   * per-target limit of the networked server).
   */
  async leaseKeyPackages(
    requester: string,
    clientIds: string[],
    oneTime: (clientId: string) => boolean = () => true,
  ): Promise<Map<string, { ref: string; keyPackage: Uint8Array }>> {
    const out = new Map<string, { ref: string; keyPackage: Uint8Array }>();
    const now = this.#now();
    for (const id of new Set(clientIds)) {
      // An id with no KeyPackage stored (made up) takes no token: made-up ids cannot fill the target limiter for every client.
      if ((await this.store.usage(id)).keyPackages === 0) continue;
      const kp = await this.#leaseValid(id, requester, now, { lastResortOnly: !oneTime(id) });
      if (!kp) continue;
      await this.store.grantKeyPackage({ requester, clientId: id, ref: kp.ref, until: now + this.#grantSeconds }, now);
      out.set(id, { ref: kp.ref, keyPackage: kp.bytes });
    }
    return out;
  }

  /**
   * Lease a KeyPackage of `clientId` whose credential the AS still binds to
   * it. One signed with a key revoked since the upload (a rotation after a
   * theft, a retired client) is never handed out: a one-time one is deleted
   * and the next tried (at most STALE_KEY_PACKAGES a call, the rest on
   * later calls; then the client's last-resort one, so a long line of
   * stale ones does not leave a fetch empty); a last-resort one is skipped
   * (it expires; the store offers the newest last-resort one first, so a
   * client's new one is not shadowed by one of its rotated-away key).
   */
  async #leaseValid(clientId: string, requester: string, now: number, options: { lastResortOnly?: boolean }): Promise<StoredKeyPackage | undefined> {
    for (let i = 0; i <= STALE_KEY_PACKAGES; i++) {
      const kp = await this.store.leaseKeyPackage(clientId, requester, now, now + this.#lease, i < STALE_KEY_PACKAGES ? options : { lastResortOnly: true });
      if (!kp || (await this.#stillBound(kp))) return kp;
      if (kp.lastResort || i === STALE_KEY_PACKAGES) return undefined;
      await this.store.ackKeyPackages(requester, [kp.ref]);
    }
    return undefined;
  }

  /** Whether the AS (if any) still binds this KeyPackage's credential to its client. */
  async #stillBound(kp: StoredKeyPackage): Promise<boolean> {
    if (!this.#auth) return true;
    const info = this.#client.inspectKeyPackage(kp.bytes);
    return (await this.#auth.validate(info.credential.identity, info.signatureKey))?.clientId === kp.clientId;
  }

  /** Delete KeyPackages (refs) leased to `requester`; returns how many. */
  ackKeyPackages(requester: string, refs: string[]): Promise<number> {
    return this.store.ackKeyPackages(requester, refs);
  }

  // --- groups and delivery ------------------------------------------------------

  /** Register a group; `creator` is its only member. */
  async createGroup(
    groupId: Uint8Array,
    creator: string,
    options: { epoch?: number; consistency?: 'strong' | 'eventual'; groupInfo?: Uint8Array; externalJoin?: boolean } = {},
  ): Promise<void> {
    if (groupId.length === 0 || groupId.length > 255) throw new DsError('malformed', 'a group id is 1..255 bytes');
    const epoch = options.epoch ?? 0;
    if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH) throw new DsError('malformed', 'epoch must be a natural number below 2^53');
    if (options.groupInfo && !groupInfoFits(options.groupInfo, groupId, epoch)) throw new DsError('invalid-group-info', 'the GroupInfo is not one of this group at this epoch');
    const consistency = options.consistency ?? 'strong';
    // Verified mode is the DS's, not a creator's choice (docs/PROTOCOL.md
    // §8.5): an eventual group is never verified and its member list is the
    // committer's word, invisibly to members who joined expecting the checks.
    if (this.#verify && consistency === 'eventual') throw new DsError('forbidden', 'this DS verifies commits: its groups are strongly consistent');
    if (this.#verify) await this.#checkFirstState(creator, options.groupInfo);
    const id = toHex(groupId);
    const record: GroupRecord = { groupId: id, epoch, members: [creator], consistency, groupInfo: options.groupInfo, externalJoin: options.externalJoin ?? false, registration: newRegistration() };
    // One atomic insert, not a look then a write: two creations racing (on two servers) must not both succeed, the second overwriting the first.
    if (await withinQuota(this.store.insertGroup(record, this.#quota))) return;
    // A verified ReInit's successor id (§1.6): only a member of the group it retired registers it (an outsider who read the id
    // took it first, and the members' successor could not be registered). The first member wins, atomically.
    const held = await this.store.getGroup(id);
    if (held && isReserved(held)) {
      if (!held.members.includes(creator)) throw new DsError('forbidden', 'this group id is reserved for the successor of a group a ReInit retired: only its members may register it');
      // A store that cannot claim (another package's, on a database other servers reserve in): group-exists, as at an earlier release.
      if (this.store.claimReserved && (await withinQuota(this.store.claimReserved(record, this.#quota)))) return;
    }
    // A deleted group's id (§8.3) is its last member's alone: anyone else's group under it would meet a former member's
    // state, a ReInit naming it or a DMLS member's derived id.
    if (held && isDeleted(held)) {
      if (held.members[0] !== creator) throw new DsError('group-deleted', 'this group id was deleted by its last member: only that client may register it again');
      if (this.store.claimDeleted && (await withinQuota(this.store.claimDeleted(record, this.#quota)))) return;
    }
    throw new DsError('group-exists', 'a group with this id exists');
  }

  /**
   * Delete a group whose member list is exactly `client`, or a reserved id of `client` alone (docs/PROTOCOL.md §8.3): its
   * log, GroupInfo, Welcomes and held grants go in one transaction, each part given back to whom it counted for. A group
   * with other members is theirs too, and a paired device is no member: `forbidden`. A reserved id its member's
   * registration claimed meanwhile deletes nothing: unknown-group "the id is no longer reserved…" (the group is not the one
   * asked for; `DeleteGroupOptions.reserved`).
   */
  async deleteGroup(groupId: Uint8Array, client: string): Promise<void> {
    const id = toHex(groupId);
    const group = await this.store.getGroup(id);
    if (!group || isDeleted(group)) throw unknownGroup();
    if (!this.store.deleteGroup) throw new DsError('not-found', "this DS's store cannot delete groups");
    const others = () => new DsError('forbidden', 'this group has other members: it is theirs too');
    if (!group.members.includes(client)) throw new DsError('forbidden', "only a group's only member may delete it (a paired device is no member)");
    if (group.members.length !== 1) throw others();
    // Checked again in the transaction: a commit or an external join adding a member meanwhile wins.
    // And the registration this request was checked against: a group registered again under the id meanwhile is another's
    // deletion to ask for (its sole member's, maybe this very client's, which did not mean it).
    // A reserved id has no registration: the store is told it was one, and deletes nothing once its member's registration
    // claimed it (before, one order of that member's two requests deleted the group it had just registered).
    const reserved = isReserved(group);
    const done = await this.store.deleteGroup(id, client, { held: (epoch) => [heldGrants(id, epoch), heldGrants(id, epoch - 1)], keep: DELETED_IDS_KEPT, registration: group.registration, reserved });
    if (done === 'unknown' && reserved) throw new DsError('unknown-group', 'the id is no longer reserved: its group was registered, or the id deleted, meanwhile');
    if (done === 'unknown') await this.#notGone(group);
    if (done === 'unknown') throw unknownGroup();
    if (done === 'not-sole') throw others();
  }

  /** Ids (hex, ascending) of the groups and reserved ids whose only member is `client`, after `after`: at most `limit` (§8.3). */
  async soleGroups(client: string, after = '', limit = 100): Promise<string[]> {
    if (!this.store.soleGroups) throw new DsError('not-found', "this DS's store cannot list groups");
    return this.store.soleGroups(client, after, limit);
  }

  /** The group under `id`; undefined for none, for an id reserved for a ReInit's successor (no group yet), and for a deleted one. */
  async #group(id: string): Promise<GroupRecord | undefined> {
    const group = await this.store.getGroup(id);
    return group && !isReserved(group) && !isDeleted(group) ? group : undefined;
  }

  /**
   * The group under `checked`'s id if it is still that registration of it (`GroupRecord.registration`, §8.3); undefined
   * when it was deleted since, also when its id was registered again (another group, another log). A store without
   * registrations tells only the first.
   */
  async #still(checked: Pick<GroupRecord, 'groupId' | 'registration'>): Promise<GroupRecord | undefined> {
    const now = await this.#group(checked.groupId);
    return now && now.registration === checked.registration ? now : undefined;
  }

  /**
   * After the store wrote nothing for a request checked against `checked` (an append, a deletion): unknown-group when
   * the group is gone ("no such group") or is another registration of its id ("the group was deleted"); else the
   * request's own refusal follows (the epoch moved on, the group gained a member).
   */
  async #notGone(checked: GroupRecord): Promise<GroupRecord> {
    const now = await this.#group(checked.groupId);
    if (!now) throw unknownGroup();
    if (now.registration !== checked.registration) throw deletedSince();
    return now;
  }

  /** Submit a handshake or application message of a group. */
  async submit(groupId: Uint8Array, sender: string, message: Uint8Array, extras: SubmitExtras = {}): Promise<SubmitResult> {
    try {
      return { accepted: true, seq: await this.#submit(toHex(groupId), sender, message, extras) };
    } catch (err) {
      if (err instanceof DsError) return { accepted: false, reason: err.reason, message: err.message, ...(err.leaves ? { leaves: err.leaves, proposed: err.proposed } : {}) };
      throw err;
    }
  }

  /**
   * What the store refused on try `tries` (0 the first) as no longer its sender's to send (`postsFor`), taken again
   * against `checked` (up to SUBMIT_RETRIES times); after the last, `stale` (`membershipMoved`).
   */
  #submitAgain(id: string, sender: string, message: Uint8Array, extras: SubmitExtras, tries: number, checked: GroupRecord): Promise<number> {
    if (tries < SUBMIT_RETRIES) return this.#submit(id, sender, message, extras, tries + 1, checked);
    throw membershipMoved(tries + 1);
  }

  /** `checked`: an eventual commit's retry, the registration its first try was checked against (it must still be that group). */
  async #submit(id: string, sender: string, message: Uint8Array, extras: SubmitExtras, tries = 0, checked?: GroupRecord): Promise<number> {
    // The DS's own name (a binding from before it was reserved, an `authenticate` hook): its log entries would pass for the DS's.
    if (sender === DS_SENDER) throw new DsError('forbidden', `${DS_SENDER} is the DS's own sender name`);
    const header = readMlsHeader(message);
    if (!header || header.epoch === undefined || header.groupId === undefined || header.contentType === undefined) {
      throw new DsError('malformed', 'not an MLS group message');
    }
    if (toHex(header.groupId) !== id) throw new DsError('malformed', 'the message belongs to another group');
    if (header.epoch > BigInt(MAX_EPOCH)) throw new DsError('malformed', 'the epoch is out of range');
    const group = await this.#group(id);
    if (!group) throw new DsError('unknown-group', 'no such group');
    if (checked && group.registration !== checked.registration) throw deletedSince();
    // An external join is checked as one whenever the sender is not on the
    // member list: a paired device reads through its anchor but is no member,
    // and must not join a closed group (and outlive its pairing) by the flag.
    const joining = extras.externalJoin === true && !group.members.includes(sender);
    /** The member the sender acts for: itself, or the anchor it is a paired device of. */
    const member = joining ? undefined : await this.#actsFor(group, sender);
    if (!joining && member === undefined) throw new DsError('not-a-member', 'the sender is not a member of the group');
    // A paired device posts for its anchor and is no member: an external
    // commit of its own (a new member's, sender type 4) without the flag
    // would move the group's epoch unchecked as one (default mode: its leaf
    // then in the tree, off the member list, outliving the pairing there).
    if (!joining && member !== sender && header.senderType === 4) throw new DsError('forbidden', 'a paired device cannot make itself a member');
    // Nor a new member's proposal (sender type 3, an Add signed by the
    // KeyPackage it carries): members would queue it and commit it by
    // reference, adding whatever it names.
    if (!joining && member !== sender && header.senderType === 3) throw new DsError('forbidden', "a paired device cannot post a new member's proposal");
    if (joining) {
      // A non-member may only send an external commit (a PublicMessage from
      // a new member, RFC 9420 §12.4.3.2), and only to a group open to them.
      if (!group.externalJoin) throw new DsError('external-join-closed', 'this group does not take external joins');
      if (header.wireFormat !== 'public' || header.senderType !== 4 || header.contentType !== 3) throw new DsError('malformed', 'an external join is a PublicMessage commit from a new member');
      if (extras.added?.length || extras.removed?.length || extras.welcome) throw new DsError('malformed', 'an external joiner adds and removes no one');
      await this.#verifyExternalCommit(group, sender, message, header.epoch);
    }
    // A retried submission (same bytes) gets its first answer, so a client
    // that lost the reply can retry without the message being logged twice.
    const digest = toHex(await sha256(message));
    const already = await this.store.seqOf(id, digest);
    // The first answer only while the group is the one checked (a group registered again since may hold these bytes too).
    if (already !== undefined && (await this.#still(group))) return already;
    if (already !== undefined) throw deletedSince();
    const epoch = Number(header.epoch);
    /**
     * Who holds the grants of the Add proposals logged in the group's epoch, until its commit (§8.5): no client id has a
     * control character (and PostgreSQL takes no NUL). Per epoch: a proposal of the next epoch, posted as soon as a commit
     * is logged, moved its grant before that commit cleared its own epoch's, and the clear took it too (the jam again).
     */
    const held = heldGrants(id, epoch);
    let seq: number | undefined;
    if (header.contentType === 3) {
      // Eventual: a commit for an epoch no logged commit made is junk (one for 2^53 - 2 pinned the DS's epoch there for good).
      if (group.consistency === 'strong' ? epoch !== group.epoch : epoch > group.epoch) throw this.#epochTaken(epoch, group);
      // Not an outsider's (it reads no log): its refusals told it the log's length and where proposals were.
      const readTo = group.consistency === 'strong' && !joining ? extras.readTo : undefined;
      if (readTo !== undefined && !(Number.isSafeInteger(readTo) && readTo >= 0)) throw new DsError('malformed', 'readTo is a sequence number');
      let lastSeq = readTo !== undefined ? await this.#unreadProposals(group, readTo, Math.max(readTo, group.epochStart ?? 0)) : undefined;
      const setEpoch = Math.max(group.epoch, epoch + 1);
      if (extras.groupInfo && !groupInfoFits(extras.groupInfo, header.groupId, epoch + 1)) {
        throw new DsError('invalid-group-info', `the GroupInfo is not one of this group at epoch ${epoch + 1}`);
      }
      if (extras.welcome && !isWelcome(extras.welcome)) throw new DsError('invalid-welcome', 'the Welcome is not a well-formed Welcome');
      let members: Set<string>;
      let added = extras.added ?? [];
      if (new Set(added).size !== added.length) throw new DsError('malformed', 'added names each client once');
      /** Grants the commit spends: [holder, ref, client added]. */
      let spent: [string, string, string?][] = [];
      /** Verified mode: the epoch's logged proposals (who posted an Add proposal pays for its Welcome). */
      let proposals: LoggedMessage[] = [];
      /** Verified mode: the commit retires the group (a ReInit): an empty GroupInfo marks it (§1.6), which no later commit or join passes. */
      let groupInfo = extras.groupInfo;
      /** Verified mode: a ReInit's successor id, reserved in the commit's transaction (§1.6). */
      let reserve: CommitUpdate['reserve'];
      /** Verified mode: leaves of revoked clients the commit adds by reference, whose removal the DS proposes once it is logged (§8.5). */
      let removeNext: number[] = [];
      // A group a ReInit retired (an empty GroupInfo, §1.6) takes no commit: refused before it is verified or charged. In
      // either mode: only a verifying server sets the mark, but a default-mode one on the same database took the retired
      // group's commits, and one with a GroupInfo replaced the mark, so a verifying server took its commits again.
      if (isRetired(group)) throw retired('invalid-commit');
      if (this.#verify && group.consistency === 'strong') {
        // Rebuilding the public group checks every leaf's signature, and the new GroupInfo's tree again: charged first. An
        // outsider replayed one external commit with a junk GroupInfo (charged 40): ~100 ms of checks a request at 300 members.
        // Its leaves, not its clients: one client's many leaves (a key each) counted once, its tree was checked ~16x past the charge.
        // A leaf and its parent node take over 200 bytes of a GroupInfo: a leaf per 256 (honest groups of 6+: members still counts).
        const suite = group.groupInfo && groupContextOf(group.groupInfo)?.ciphersuite;
        const leaves = Math.max(group.members.length, Math.ceil((group.groupInfo?.length ?? 0) / 256));
        // And the epoch's logged proposals, each verified again (an Add: 3 checks): a member's 500 of them were ~1,500 checks a
        // request, uncharged, behind any commit refused and sent again.
        const epochProposals = await this.#epochProposals(group);
        if (suite !== undefined) extras.spend?.(2 * leaves + 3 + 3 * epochProposals.length, suite);
        // The commit itself says who is in the group; the submitter's lists are ignored.
        const derived = await this.#verifiedMembers(group, sender, message, extras, epochProposals);
        members = derived.members;
        added = derived.added;
        proposals = derived.proposals;
        removeNext = derived.removeNext;
        // A ReInit retires the group: the empty GroupInfo marks it. One naming an id this DS has: nobody could register the
        // successor (another member's group, say, which then kept its member out of the continuation). Refused before it is
        // logged; else the id is reserved for these members.
        if (derived.successor !== undefined) {
          groupInfo = new Uint8Array(0);
          if (await this.store.getGroup(derived.successor)) throw successorTaken();
          if (this.store.claimReserved) reserve = { groupId: derived.successor, members: [...derived.members] };
        }
        // The group's first: the KeyPackage of an Add proposal that passed the checks when posted (#proposedAdd), whoever fetched it again since.
        if (this.#requireGrants) spent = await this.#grantedRefs([held, sender, ...group.members], derived.addedRefs);
      } else {
        if (extras.welcome && !extras.added?.length) throw new DsError('malformed', 'a Welcome needs the clients it is for (added)');
        if (this.#auth && extras.added?.length) for (const a of extras.added) await this.#registered(a);
        if (this.#requireGrants && added.length > 0) spent = await this.#grantedClients(sender, added, extras.welcome);
        members = new Set(group.members);
        for (const r of extras.removed ?? []) members.delete(r);
        for (const a of added) members.add(a);
        if (extras.externalJoin) members.add(sender);
        // No committer removes itself (RFC 9420 §12.2): a copy's group left with no member was unlisted and undeletable (§8.3).
        if (member !== undefined && !members.has(member)) throw new DsError('forbidden', 'a commit cannot take the member it is sent for off the member list');
      }
      // A paired device posts for its anchor and is no member: a commit of
      // its (its own external commit without the flag, or one naming itself
      // in `added`) must not put it on the member list, where it would
      // outlive its pairing. Joining itself is an external join, checked as
      // an outsider's (open groups only).
      if (!joining && !group.members.includes(sender) && members.has(sender)) {
        throw new DsError('forbidden', 'a paired device cannot make itself a member');
      }
      // Commit, GroupInfo and Welcomes in one transaction: a crash keeps all or none.
      // The Welcome is stored once for all the clients it adds (one reference each), each
      // counting for whoever the DS handed that client's KeyPackage to: another member's
      // Adds, covered by reference, do not count for the committer (§8.6).
      // Only a holder that posted the Add proposal of that KeyPackage itself: a member who
      // merely fetched a KeyPackage (the committer adding it inline, or proposing it) pays nothing.
      // The group holds the grant of an Add proposal logged in the epoch: its proposer pays.
      const payer = (a: string) => {
        const grant = spent.find(([, , client]) => client === a);
        if (!grant || grant[0] === sender) return sender;
        const [holder, ref] = grant;
        return proposals.find((m) => (m.sender === holder || holder === held) && this.#addProposalRef(m.bytes) === ref)?.sender ?? sender;
      };
      // The epoch's proposals end with its commit, and so do the grants the group held for them; and one moved after its
      // epoch's commit had cleared them (its post raced that commit), now with no proposal of its own. Dropped in the
      // commit's transaction by a store that can (dropGrants); one of an older interface has them read and spent below.
      const dropGrants = this.#verify && this.store.dropGrants ? [held, heldGrants(id, epoch - 1)] : undefined;
      // Eventual: the epoch check lets a racing commit that leaves the epoch where it is in, so the store also checks that
      // the member list is still the one read (a junk commit logged after a removal put the removed client back). Refused,
      // the commit is taken again below against the new list, and the checks above (no committer off the list, no paired
      // device on it) hold for the list written. Strong: the exact epoch serialises commits already.
      const expectMembers = group.consistency === 'eventual' ? [...group.members] : undefined;
      // A paired device's commit, as a post (`postsFor`, its anchor): logged only while the device is still paired to it.
      // Neither check above sees the pairing's end (ceased, or the anchor's key rotated or revoked; no commit, so neither
      // the epoch nor the member list moved): a commit held before its append meanwhile went in after it (review63a).
      // A member's own commit needs none: its removal or the ReInit is a commit, which the epoch (strong) or the member
      // list (eventual) checks already refuse.
      const postsFor = !joining && member !== undefined && member !== sender ? member : undefined;
      /** The commit's sender still posts for the member it was checked for (its pairing not ended since): asked after a refusal. */
      const stillFor = async (now: GroupRecord | undefined): Promise<boolean> => postsFor === undefined || (now !== undefined && (await this.#actsFor(now, sender)) === postsFor);
      const update = { expectEpoch: group.consistency === 'strong' ? epoch : group.epoch, setEpoch, members: [...members], expectMembers, groupInfo, reserve, dropGrants, lastSeq };
      // The inbox cap is counted in the store's transaction (racing commits cannot pass it). An Add the group's grant covers
      // passed it when proposed: its client's inbox full since, the commit goes in without that Welcome; refused, it held
      // every honest commit until its committer dropped the proposal (§8.5).
      const append = (to: string[]): Promise<number | undefined> =>
        this.store
          .append(
            { groupId: id, sender, bytes: message.slice(), digest, registration: group.registration, postsFor },
            { ...update, welcome: extras.welcome && to.length > 0 ? { recipients: to, welcome: extras.welcome.slice(), payers: to.map(payer), max: this.#maxWelcomes === Infinity ? undefined : this.#maxWelcomes } : undefined },
            this.#quota,
          )
          .catch((err) => {
            if (err instanceof InboxFullError && spent.some(([holder, , client]) => holder === held && client === err.recipient)) return append(to.filter((a) => a !== err.recipient));
            throw err;
          });
      seq = await withinQuota(append(added));
      // readTo: messages were logged since the log was checked, the epoch still open: the commit goes in if none is a proposal.
      // Not a device's commit refused as its pairing ended (`postsFor`): that is answered below, not as an unread log.
      const logMoved = async () => {
        const now = await this.#still(group);
        return now?.epoch === epoch && (await stillFor(now));
      };
      for (let n = 0; seq === undefined && lastSeq !== undefined && n < 16 && (await logMoved()); n++) {
        // A device's commit may have been refused with the log where it was: its pairing ended and began again before
        // `logMoved` looked (audit63). That is no unread log (nor `malformed`): it is taken again from the start, below.
        const moved = postsFor === undefined ? new DsError('malformed', 'readTo is past the end of the log') : undefined;
        const last = await this.#unreadProposals(group, readTo!, lastSeq, moved);
        if (last === lastSeq) break;
        update.lastSeq = lastSeq = last;
        seq = await withinQuota(append(added));
        if (seq === undefined && n === 15 && (await logMoved())) throw new DsError('unread-proposal', "the group's log moved on while the commit was checked: process its messages and commit again");
      }
      // One read: a deletion between two answered the deleted mark's epoch (-2), or with no row left a TypeError (500).
      // Deleted, or registered again since (the commit was checked against another group): unknown-group.
      if (seq === undefined) {
        const now = await this.#notGone(group);
        // Eventual: another commit went in since the group was read; this one is taken too, against the new state.
        if (group.consistency === 'eventual' && tries < SUBMIT_RETRIES) return this.#submit(id, sender, message, extras, tries + 1, group);
        // Strong: a device's commit refused in its epoch (its pairing ended, `postsFor`), taken again as a post is, so the
        // checks above answer (not-a-member); paired again meanwhile, it goes in. At most 16 times.
        if (group.consistency === 'strong' && postsFor !== undefined && now.epoch === epoch) return this.#submitAgain(id, sender, message, extras, tries, group);
        // Eventual, every try lost to a commit that moved only the member list (expectMembers; a late one leaves the epoch
        // where it was): the epoch is still this commit's, and #epochTaken answered `stale` "a commit for epoch 2; the group
        // is at 2" (test/review62a). The same as a lost epoch race: process the log and commit again.
        if (group.consistency === 'eventual' && epoch >= now.epoch) {
          throw new DsError('epoch-taken', `the group's member list moved on while the commit was checked (${tries + 1} tries); process the group's messages and commit again`);
        }
        throw this.#epochTaken(epoch, now);
      }
      // A grant adds its client once: one more Welcome needs one more KeyPackage from the DS (the group's went with the commit).
      for (const [holder, ref] of spent) if (!dropGrants?.includes(holder)) await this.store.spendGrants(holder, [ref]);
      // Leaves of revoked clients this commit added (Add proposals logged before the revocation): removed in the epoch it made.
      if (removeNext.length > 0 && groupInfo?.length) await this.#proposeRemovals(group, setEpoch, groupInfo, removeNext, []).catch(() => false);
      if (this.#verify && !dropGrants) for (const h of [held, heldGrants(id, epoch - 1)]) await this.store.spendGrants(h, (await this.store.grants(h, 0)).map((g) => g.ref));
    } else {
      let grant: KeyPackageGrant | undefined;
      // A proposal or application message into a group a ReInit retired (§1.6) reaches nobody: every member
      // that merged the ReInit refuses it. Refused, so that a sender yet to read the ReInit learns it (`stale`: read the log)
      // instead of losing the message, and nobody fills a log no member reads any more. In either mode, as a commit above.
      if (isRetired(group)) throw retired('stale');
      // Verified mode: no proposal that honest members queue and commit by reference in their next commit (a selfUpdate too)
      // which this DS then refuses: the epoch took no commit until each committer dropped it (clearPendingProposals), and
      // one naming a free ReInit id retired the group (§1.6 item 7). Neither a ReInit (it goes in a commit of its own,
      // commitReInit) nor a PrivateMessage (unread: no commit covering it verifies; a 'mixed-plaintext' member queues it).
      if (this.#verify && group.consistency === 'strong' && header.contentType === 2) {
        if (header.wireFormat !== 'public') throw new DsError('forbidden', 'a verifying DS takes only PublicMessage proposals');
        if (header.proposalType === undefined) throw new DsError('malformed', 'not an MLS group message');
        if (header.proposalType === 5) throw new DsError('forbidden', 'a verifying DS takes a ReInit only in a commit of its own (commitReInit), not as a proposal');
        // Nor an Add it would refuse in that commit (§8.5): its grant and the inbox cap are checked now.
        if (this.#requireGrants && header.proposalType === 1) grant = await this.#proposedAdd(sender, message);
        // Nor an Update of another member's leaf, or moving the sender's to a credential of no client, or of another (a
        // client it revokes then). One of another epoch is refused stale below: the tree the DS holds is this epoch's.
        if (header.proposalType === 2 && epoch === group.epoch) await this.#proposedUpdate(group, member ?? sender, message);
      }
      if (group.consistency === 'strong') {
        const stale = header.contentType === 2 ? epoch !== group.epoch : epoch > group.epoch || epoch < group.epoch - this.#tolerance;
        if (stale) throw new DsError('stale', `a message for epoch ${epoch}; the group is at ${group.epoch}`);
      }
      // A proposal is counted in the epoch it is for, against that epoch's member list: a commit that moved the epoch meanwhile makes it stale.
      const strongEpoch = group.consistency === 'strong' ? { epoch } : {};
      const budget = header.contentType === 2 ? { ...this.#membersProposals, member: this.#memberShare(group, member ?? sender), ...strongEpoch } : undefined;
      // Logged only in the registration of the group it was checked against (§8.3): deleted and registered again meanwhile,
      // the store writes nothing, and it is unknown-group. And only while the sender may still post (`postsFor`, checked
      // in the append's transaction, §8.1): checked only above, a post held before its append while its sender's removal
      // or the ReInit commit was logged went in after it.
      const posted = { groupId: id, sender, bytes: message.slice(), digest, registration: group.registration, postsFor: member ?? sender };
      const logged = await withinQuota(this.store.append(posted, undefined, this.#quota, budget));
      if (logged === undefined) {
        const now = await this.#notGone(group);
        if (header.contentType === 2 && group.consistency === 'strong' && now.epoch !== epoch) throw new DsError('stale', `a proposal for epoch ${epoch}; the group has moved past it`);
        // Refused as no longer the sender's to make (its member removed, its pairing ended, the group retired): taken again,
        // so the checks above answer as they answer any such post (not-a-member; stale, retired). Its member removed and
        // added back (or paired again) meanwhile, it goes in; at most 16 times, as an eventual commit.
        return this.#submitAgain(id, sender, message, extras, tries, group);
      }
      seq = logged;
      // The grant goes from the proposer to the group until its epoch's commit (#grantedRefs): it neither expires in the epoch
      // nor adds the client elsewhere. Not in the append's transaction, as a commit's spending (§8.1).
      if (grant) {
        await this.store.spendGrants(sender, [grant.ref]);
        await this.store.grantKeyPackage({ ...grant, requester: held, until: MAX_EPOCH }, 0);
        // Deleted since the post (its deletion dropped the group's grants before this one came): none stays behind, also not
        // held for a group registered again under the id (its epoch's commit would have added the client by it).
        if (!(await this.#still(group))) await this.store.spendGrants(held, [grant.ref]);
      }
    }
    // Prune now and then (every min(1000, retention) messages), not on every append.
    if (seq > this.#retention && seq % Math.max(1, Math.min(1000, this.#retention)) === 0) await this.store.prune(id, this.#retention);
    return seq;
  }

  #epochTaken(epoch: number, group: GroupRecord): DsError {
    return epoch < group.epoch
      ? new DsError('epoch-taken', `epoch ${epoch} already has a commit; process the group's messages up to epoch ${group.epoch} and commit again`)
      : new DsError('stale', `a commit for epoch ${epoch}; the group is at ${group.epoch}`);
  }

  /**
   * An external commit from a non-member (docs/PROTOCOL.md §8.5): signed
   * with the key of its own UpdatePath leaf over the current GroupContext
   * (from the stored GroupInfo), and that leaf's credential is the AS's
   * binding of the posting client.
   */
  async #verifyExternalCommit(group: GroupRecord, sender: string, message: Uint8Array, epoch: bigint): Promise<void> {
    if (epoch < BigInt(group.epoch)) throw this.#epochTaken(Number(epoch), group);
    const context = group.groupInfo && groupContextOf(group.groupInfo);
    if (!context || context.epoch !== epoch || epoch !== BigInt(group.epoch)) throw new DsError('stale', 'the DS has no GroupInfo of this epoch to check the external commit against');
    const commit = readExternalCommit(message);
    if (!commit) throw new DsError('malformed', 'not an external commit with an UpdatePath');
    const tbs = externalCommitTbs(commit, context.context);
    let valid = false;
    try {
      valid = this.#client.verifyWithLabel(context.ciphersuite, commit.signatureKey, 'FramedContentTBS', tbs, commit.signature);
    } catch {
      valid = false;
    }
    if (!valid) throw new DsError('invalid-commit', 'the external commit is not signed by its joiner over the current group context');
    if (this.#auth) {
      const binding = await this.#auth.validate(commit.identity, commit.signatureKey);
      if (!binding || binding.clientId !== sender) throw new DsError('invalid-commit', "the joiner's credential is not the AS's binding of the posting client");
    }
  }

  /** A verified group's first public state: a GroupInfo with its tree, whose only member is the creator. */
  async #checkFirstState(creator: string, groupInfo: Uint8Array | undefined): Promise<void> {
    const leaves = groupInfo && publicMembers(this.#client, groupInfo);
    if (!leaves) throw new DsError('invalid-group-info', 'this DS verifies commits: a group is created with a GroupInfo carrying its ratchet tree');
    if (leaves.length !== 1 || (await clientOfLeaf(this.#auth, leaves[0]!)) !== creator) {
      throw new DsError('invalid-group-info', "the GroupInfo's only member must be the creator");
    }
  }

  /**
   * A commit of a verified group (docs/PROTOCOL.md §8.5): verified against
   * the stored GroupInfo, signed by the posting client's own leaf (or a
   * leaf of the anchor it is a paired device of), the new GroupInfo the
   * state it creates, the Welcome for exactly the added KeyPackages; the
   * members are the clients the AS binds to the new tree's leaves.
   */
  async #verifiedMembers(
    group: GroupRecord,
    sender: string,
    message: Uint8Array,
    extras: SubmitExtras,
    proposals: LoggedMessage[],
  ): Promise<{ members: Set<string>; added: string[]; addedRefs: string[]; proposals: LoggedMessage[]; successor?: string; removeNext: number[] }> {
    if (!group.groupInfo) throw new DsError('invalid-commit', 'the DS has no public state of this group to verify against');
    if (!extras.groupInfo) throw new DsError('invalid-group-info', "a verified group's commit carries the GroupInfo of the epoch it creates");
    const verified = verifyCommit(
      this.#client,
      group.groupInfo,
      message,
      extras.groupInfo,
      proposals.map((m) => m.bytes),
    );
    if ('reason' in verified) throw new DsError(verified.reason, verified.message);
    // Every leaf of the new tree must be a client the AS knows (unknown-client), the committer's included, or one it revoked.
    const { members, revoked } = await this.#clientsOf(verified.membersAfter);
    await this.#checkCommitter(group, sender, verified);
    if (extras.welcome && !welcomeMatches(welcomeRecipients(extras.welcome) ?? [], verified.addedKeyPackages)) {
      throw new DsError('invalid-welcome', 'the Welcome is not for exactly the KeyPackages the commit adds');
    }
    const removeNext = revoked.length > 0 ? await this.#revokedLeaves(group, verified, revoked, proposals) : [];
    const before = new Set(group.members);
    // Set for a ReInit (the core's `reinit`), which retires the group.
    const successor = verified.reinitGroupId && toHex(verified.reinitGroupId);
    return { members, added: [...members].filter((m) => !before.has(m)), addedRefs: verified.addedKeyPackages.map(toHex), proposals, successor, removeNext };
  }

  /**
   * Whose a verified commit is (docs/PROTOCOL.md §8.5). A member's commit is signed with its leaf of the current tree, and its
   * UpdatePath may put another credential there (RFC 9420): it must be one the AS binds to the client of the leaf it replaces
   * (a further or rotated key of it), else 403 forbidden, as for an Update proposal's leaf. Only the new leaf was asked: a
   * member that was also a paired device of another client moved its leaf to that client, which came onto the member list
   * with no Add, grant or Welcome. That client must be the poster or the anchor it is a paired device of. An external
   * commit's new leaf is its joiner's, the poster's own client: a paired device's anchor joined a closed group through it.
   */
  async #checkCommitter(group: GroupRecord, sender: string, verified: VerifiedCommit): Promise<void> {
    const committer = await clientOfLeaf(this.#auth, verified.committer);
    if (verified.external) {
      if (committer !== sender) throw new DsError('invalid-commit', "the joiner's credential is not the AS's binding of the posting client");
      return;
    }
    if (committer === undefined) throw new DsError('invalid-commit', 'the commit is not signed by the posting client');
    const replaced = verified.membersBefore.find((l) => l.leafIndex === verified.committer.leafIndex);
    const owner = replaced && (await this.#ownerOfReplaced(group, replaced, verified.committer, committer));
    if (committer !== owner) throw new DsError('forbidden', "a commit's UpdatePath leaf must carry a credential the AS binds to the member it is sent for");
    if (committer !== sender && !(await this.store.devicesOf(committer)).includes(sender)) throw new DsError('invalid-commit', 'the commit is not signed by the posting client');
  }

  /**
   * The client a commit's UpdatePath may keep the committer's leaf with (docs/PROTOCOL.md §8.5): the AS's binding of the leaf
   * it replaces; a revoked client's, which no commit moves (only its removal takes it off). Taking the new leaf's client when
   * the old one named none, a member holding a revoked client's key (its thief), or with a check without holderOf the key a
   * member rotated away, moved that leaf to itself: the victim off the member list with no Remove. Without holderOf a rotated
   * key names no one: then the new leaf's client, if a member whose credential identity the old leaf carries (its own rotation).
   */
  async #ownerOfReplaced(group: GroupRecord, replaced: PublicLeaf, now: PublicLeaf, committer: string): Promise<string | undefined> {
    const holder = (await clientOfLeaf(this.#auth, replaced)) ?? (await revokedClientOf(this.#auth, replaced));
    if (holder !== undefined) return holder;
    return group.members.includes(committer) && bytesEqual(replaced.identity, now.identity) ? committer : undefined;
  }

  /**
   * A verified group's Add proposal, checked when posted as a commit covering it would be (docs/PROTOCOL.md §8.5), so that
   * no honest commit is refused for it later: its KeyPackage granted to the proposer itself (so also bound by the AS when
   * handed out), its client's inbox not full. Returns that grant.
   */
  async #proposedAdd(sender: string, message: Uint8Array): Promise<KeyPackageGrant> {
    const ref = this.#addProposalRef(message);
    const grant = (await this.store.grants(sender, this.#now())).find((g) => g.ref === ref);
    if (!grant) throw new DsError('not-granted', 'the Add proposal is of a KeyPackage this DS did not hand to its proposer');
    if ((await this.store.countWelcomes(grant.clientId)) >= this.#maxWelcomes) throw new DsError('inbox-full', new InboxFullError(grant.clientId, this.#maxWelcomes).message);
    return grant;
  }

  /**
   * An Update proposal of a verified group (docs/PROTOCOL.md §8.5): its sender must be a leaf the current tree holds for
   * the member it is posted for, and its new leaf's credential one the AS binds to that member. Before, one naming a key
   * the AS did not know (any member makes one with a fresh key pair), or a client of the member's it then revoked, made
   * every honest commit covering it `unknown-client` until its committer dropped it (`clearPendingProposals`): the jam that
   * `revoked-leaf` closes for a member's own leaf, at no cost. The sender leaf too: a member holding the keys of two
   * clients' leaves (two devices of one user) moved the other's leaf to a key of its own, then revoked its own client.
   */
  async #proposedUpdate(group: GroupRecord, member: string, message: Uint8Array): Promise<void> {
    const leaf = readUpdateProposalLeaf(message);
    if (!leaf) throw new DsError('malformed', "not a member's Update proposal with a leaf node");
    const from = group.groupInfo && treeLeafOf(group.groupInfo, leaf.leafIndex);
    if (!from || (await clientOfLeaf(this.#auth, from)) !== member) throw new DsError('forbidden', 'an Update proposal must come from a leaf of the member it is sent for');
    if ((await clientOfLeaf(this.#auth, leaf)) !== member) throw new DsError('forbidden', "an Update proposal's leaf must carry a credential the AS binds to the member it is sent for");
  }

  /** The KeyPackageRef (hex) an Add proposal adds; undefined for anything else. */
  #addProposalRef(bytes: Uint8Array): string | undefined {
    const kp = readAddProposalKeyPackage(bytes);
    if (!kp) return undefined;
    try {
      return toHex(this.#client.inspectKeyPackage(kp).keyPackageRef);
    } catch {
      return undefined;
    }
  }

  /**
   * The PublicMessage proposals logged in the group's current epoch (after
   * the commit that began it): the first ones, at most a page of them
   * (pageSize, pageBytes; at least one). Any member can post header-valid
   * junk "proposals" of a few MiB each, and every commit read all of the
   * epoch's into memory at once; those beyond the bound are left out like
   * ones that do not verify (a commit covering them: `invalid-commit`). Read by the store's index of proposals when it
   * has one: a member's application messages (up to its quota) were all read before each commit was checked.
   */
  async #epochProposals(group: GroupRecord): Promise<LoggedMessage[]> {
    const out: LoggedMessage[] = [];
    let bytes = 0;
    for await (const m of this.#logAfter(group.groupId, group.epochStart ?? 0, true)) {
      const h = readMlsHeader(m.bytes);
      if (h?.wireFormat !== 'public' || h.contentType !== 2 || h.epoch !== BigInt(group.epoch)) continue;
      if (out.length >= this.#pageSize || (out.length > 0 && bytes + m.bytes.length > this.#pageBytes)) break;
      out.push(m);
      bytes += m.bytes.length;
    }
    return out;
  }

  /**
   * A commit's `readTo` (docs/PROTOCOL.md §4.5, §8.1): `unread-proposal` when a
   * proposal of the group's epoch was logged after it; else the last
   * sequence number logged, which the commit's append expects. `moved`: the
   * caller's refusal when the log is no longer than `from` (its loop's).
   * Each refusal is unknown-group instead when the group is no longer
   * `group`'s registration (§8.3): the log read was a group's registered
   * again under the id meanwhile, not this one's (review61c).
   */
  async #unreadProposals(group: GroupRecord, readTo: number, from: number, moved?: DsError): Promise<number> {
    const refuse = async (err: DsError): Promise<never> => {
      await this.#notGone(group);
      throw err;
    };
    // One page at most, as a poll: a readTo far behind had each request read the epoch's whole log (members fill it freely).
    const { messages: page, last } = await this.#mayBeProposals(group.groupId, from);
    for (const m of page) {
      const h = readMlsHeader(m.bytes);
      if (h?.contentType === 2 && h.epoch === BigInt(group.epoch)) return refuse(unread(group.epoch, readTo));
    }
    if (page.length > 0 && (await this.#mayBeProposals(group.groupId, page.at(-1)!.seq, 1)).messages.length > 0) {
      return refuse(new DsError('unread-proposal', `more than a page of the log follows ${readTo}: process the group's messages and commit again`));
    }
    if (moved && Math.max(last, from) === from) return refuse(moved);
    return Math.max(last, from);
  }

  /**
   * A page of the group's messages after `after` that may be proposals, by the store's index (`readProposals`), and the
   * log's last sequence number; without the index, a page of the log and its last.
   */
  async #mayBeProposals(groupId: string, after: number, limit = this.#pageSize): Promise<{ messages: LoggedMessage[]; last: number }> {
    if (this.store.readProposals) return this.store.readProposals(groupId, after, limit, this.#pageBytes);
    const messages = await this.store.readLog(groupId, after, limit, this.#pageBytes);
    return { messages, last: messages.at(-1)?.seq ?? after };
  }

  /** A group's logged messages after sequence number `after` (those that may be proposals: `#mayBeProposals`), read a page at a time. */
  async *#logAfter(groupId: string, after: number, proposals = false): AsyncGenerator<LoggedMessage> {
    for (;;) {
      // A page short of pageSize may only have met the byte budget: the end is an empty page.
      const page = proposals ? (await this.#mayBeProposals(groupId, after)).messages : await this.store.readLog(groupId, after, this.#pageSize, this.#pageBytes);
      yield* page;
      if (page.length === 0) return;
      after = page.at(-1)!.seq;
    }
  }

  /** The clients of the new tree's leaves, and the leaves of revoked clients (off the member list); unknown-client for any other leaf. */
  async #clientsOf(leaves: VerifiedCommit['membersAfter']): Promise<{ members: Set<string>; revoked: RevokedLeaf[] }> {
    const members = new Set<string>();
    const revoked: RevokedLeaf[] = [];
    for (const leaf of leaves) {
      const client = await clientOfLeaf(this.#auth, leaf);
      if (client !== undefined) members.add(client);
      else {
        const gone = await revokedClientOf(this.#auth, leaf);
        if (gone === undefined) throw unknownLeaf(leaf.leafIndex);
        revoked.push({ ...leaf, client: gone });
      }
    }
    return { members, revoked };
  }

  /**
   * Leaves of revoked clients in a verified commit's new tree (docs/PROTOCOL.md §8.5). One the current tree holds for the same
   * revoked client (kept, or updated by a proposal it posted before): its removal is proposed in this epoch, as the group's external
   * sender, and the commit refused (`revoked-leaf`), so that no new epoch's path secrets reach the revoked client's keys; the
   * committer processes the log and commits again, covering the Remove. One the commit adds by reference (an Add proposal logged
   * before its client was revoked): the commit goes in (that client gets no Welcome, and the leaf no path secret) and the
   * removal is proposed in the epoch it makes; returned. One the committer added itself, or another client's in a revoked
   * leaf's place: unknown-client, as before.
   */
  async #revokedLeaves(group: GroupRecord, verified: VerifiedCommit, revoked: RevokedLeaf[], proposals: LoggedMessage[]): Promise<number[]> {
    const kept: number[] = [];
    const later: number[] = [];
    // The signature keys of the KeyPackages this commit adds by reference: logged Add proposals whose KeyPackageRef it adds.
    const added = new Set(verified.addedKeyPackages.map(toHex));
    const addedKeys = proposals.flatMap((m) => {
      const kp = readAddProposalKeyPackage(m.bytes);
      try {
        const info = kp && this.#client.inspectKeyPackage(kp);
        return info && added.has(toHex(info.keyPackageRef)) ? [info.signatureKey] : [];
      } catch {
        return [];
      }
    });
    for (const leaf of revoked) {
      const now = verified.membersBefore.find((l) => l.leafIndex === leaf.leafIndex);
      // Added first: a leaf this commit adds takes the lowest free index, that of a revoked leaf it removes too (the DS's
      // Remove). Read as kept, that Remove, already logged, refused every retry, each one adding the leaf there again.
      if (addedKeys.some((k) => bytesEqual(k, leaf.signatureKey))) later.push(leaf.leafIndex);
      else if (now && (await revokedClientOf(this.#auth, now)) === leaf.client) kept.push(leaf.leafIndex);
      else throw unknownLeaf(leaf.leafIndex);
    }
    if (kept.length === 0) return later;
    const proposed = await this.#proposeRemovals(group, group.epoch, group.groupInfo!, kept, proposals);
    const which = kept.length > 1 ? `leaves ${kept.join(', ')} are of revoked clients` : `leaf ${kept[0]} is of a revoked client`;
    throw new DsError(
      'revoked-leaf',
      proposed
        ? `${which}; this DS proposed ${kept.length > 1 ? 'their' : 'its'} removal: process the group's messages and commit again`
        : `${which}: commit ${kept.length > 1 ? 'their' : 'its'} removal (this DS cannot propose it: the group lists no external-sender key of this DS, or its proposals of the epoch are full)`,
      { leaves: kept, proposed },
    );
  }

  /**
   * Propose, as the group's external sender, the removal of `leaves` in `epoch` (docs/PROTOCOL.md §8.5): each once (the
   * epoch's `logged` proposals are read for the DS's own), counted in the DS's own share of the epoch's proposals (§8.6).
   * False when the group lists no key of this DS, the share is full, or the group moved past `epoch`.
   */
  async #proposeRemovals(group: GroupRecord, epoch: number, groupInfo: Uint8Array, leaves: number[], logged: LoggedMessage[]): Promise<boolean> {
    const groupId = group.groupId;
    const suite = groupContextOf(groupInfo)?.ciphersuite;
    if (suite === undefined || suite < 1 || suite > 3) return false;
    const external = this.#externalOf(suite as Ciphersuite);
    const senderIndex = (externalSenderKeysOf(groupInfo) ?? []).findIndex((k) => bytesEqual(k, external.signaturePublicKey));
    if (senderIndex < 0) return false;
    const already = new Set(logged.filter((m) => m.sender === DS_SENDER).map((m) => externalRemoveOf(m.bytes)));
    const sender = new ExternalSender(this.#client, external);
    const todo = leaves.filter((l) => !already.has(l));
    // No more signatures than the DS's share of the epoch can take (a tree of many revoked leaves).
    const share = this.#ownProposals.member!.count;
    for (const leaf of todo.slice(0, share)) {
      const proposal = sender.removeProposal({ groupId: fromHex(groupId), epoch, senderIndex }, leaf);
      try {
        const once = removalKey(leaf, false, epoch);
        // Only in the registration of the group whose commit made `epoch` (§8.3): one registered again since is another group.
        const seq = await this.store.append({ groupId, sender: DS_SENDER, bytes: proposal, digest: toHex(await sha256(proposal)), registration: group.registration }, undefined, undefined, { ...this.#ownProposals, once, epoch });
        if (seq === undefined) return false;
      } catch (err) {
        // Taken: the epoch holds this leaf's removal already (a sender_removal_only intent of it, or another server's Remove).
        if (err instanceof ProposalKeyTakenError) continue;
        if (err instanceof EpochProposalsFullError) return false;
        throw err;
      }
    }
    return todo.length <= share;
  }

  /**
   * Default mode: each added client has a KeyPackage granted to `sender`
   * whose ref is a recipient of the Welcome; returns the refs to spend.
   */
  async #grantedClients(sender: string, added: string[], welcome: Uint8Array | undefined): Promise<[string, string][]> {
    if (!welcome) throw new DsError('malformed', 'added clients need the Welcome of the commit');
    const recipients = new Set((welcomeRecipients(welcome) ?? []).map(toHex));
    const grants = await this.store.grants(sender, this.#now());
    return added.map((a) => {
      const g = grants.find((x) => x.clientId === a && recipients.has(x.ref));
      if (!g) throw new DsError('not-granted', `no KeyPackage of ${a} that this DS handed to the committer is a recipient of the Welcome`);
      return [sender, g.ref];
    });
  }

  /**
   * Verified mode: every KeyPackage the commit adds was granted to the
   * committer or to a member, or is held by the group for an Add proposal
   * of the epoch (its proposer's grant, taken when it was posted);
   * returns [holder, ref, client] to spend (who pays for its Welcome: `payer`).
   */
  async #grantedRefs(holders: string[], refs: string[]): Promise<[string, string, string][]> {
    const out: [string, string, string][] = [];
    let left = refs;
    for (const holder of new Set(holders)) {
      if (left.length === 0) break;
      const granted = new Map((await this.store.grants(holder, this.#now())).map((g) => [g.ref, g.clientId]));
      out.push(...left.filter((r) => granted.has(r)).map((r): [string, string, string] => [holder, r, granted.get(r)!]));
      left = left.filter((r) => !granted.has(r));
    }
    if (left.length > 0) throw new DsError('not-granted', `the commit adds a KeyPackage (${left[0]!.slice(0, 16)}…) this DS handed to no member`);
    return out;
  }

  /** Refuse clients the AS does not know (or revoked): they could never read what is addressed to them. */
  async #registered(clientId: string): Promise<void> {
    const auth = this.#auth as CredentialCheck & { activeBindingsOf?: (c: string, limit: number) => Promise<unknown[]> };
    if (auth.activeBindingsOf && (await auth.activeBindingsOf(clientId, 1)).length === 0) throw new DsError('unknown-client', `no registered client ${clientId}`);
  }

  /** Whether `client` may read and post in the group: a member, or a paired device of one. */
  async isReader(groupId: Uint8Array, client: string): Promise<boolean> {
    return (await this.reader(groupId, client)) !== undefined;
  }

  /**
   * As `isReader`, for a reader that follows the group (a stream): undefined when `client` may not read it, else the
   * group's registration (`GroupRecord.registration`; undefined: its store keeps none), which it passes to each `poll`.
   */
  async reader(groupId: Uint8Array, client: string): Promise<Reading | undefined> {
    const group = await this.#group(toHex(groupId));
    return group !== undefined && (await this.#mayAct(group, client)) ? { registration: group.registration } : undefined;
  }

  /** Members, and the registered devices of members (paired anchors). */
  async #mayAct(group: GroupRecord, client: string): Promise<boolean> {
    return (await this.#actsFor(group, client)) !== undefined;
  }

  /** The member `client` acts for in the group: itself, or the first member on the list it is a registered device of. */
  async #actsFor(group: GroupRecord, client: string): Promise<string | undefined> {
    if (group.members.includes(client)) return client;
    // One lookup: asking each member's devices made every request of a
    // non-member (any registered client) cost a query per member.
    if (this.store.anchorsOf) {
      const anchors = new Set(await this.store.anchorsOf(client));
      return group.members.find((m) => anchors.has(m));
    }
    for (const m of group.members) if ((await this.store.devicesOf(m)).includes(client)) return m;
    return undefined;
  }

  /**
   * The share of the members' proposals of an epoch that member `id` may
   * hold, with its paired devices (docs/PROTOCOL.md §8.6): an
   * equal part for each member on the list, and never less than
   * 1/MEMBER_SHARE_FLOOR of them (nor less than one), so that one member's
   * flood no longer holds back the others' proposals.
   */
  #memberShare(group: GroupRecord, id: string): EpochProposalBudget['member'] {
    const members = Math.max(1, group.members.length);
    // Rounded down, so that up to MEMBER_SHARE_FLOOR members the shares fit in the members' part together.
    const part = (n: number) => Math.max(1, Math.floor(n / members), Math.floor(n / MEMBER_SHARE_FLOOR));
    return { id, count: part(this.#membersProposals.count), bytes: part(this.#membersProposals.bytes) };
  }

  /**
   * Messages of a group after `afterSeq`, in order (for a member or a device of one). `reading` (`reader`'s): the group
   * must still be that registration of its id, else unknown-group, also when it changed while the page was read.
   */
  async poll(client: string, groupId: Uint8Array, afterSeq = 0, reading?: Reading): Promise<LoggedMessage[]> {
    const group = await this.#group(toHex(groupId));
    if (!group) throw new DsError('unknown-group', 'no such group');
    if (reading && group.registration !== reading.registration) throw deletedSince();
    const member = await this.#actsFor(group, client);
    if (member === undefined) throw new DsError('not-a-member', 'not a member of the group');
    const page = await this.store.readLog(group.groupId, afterSeq, this.#pageSize, this.#pageBytes);
    // Read again once the page is: the id may have been deleted and registered again between the two reads, the page of
    // the new log. The same registration after it was the same throughout (a registration is never given twice).
    if (reading?.registration !== undefined && page.length > 0 && !(await this.#still({ groupId: group.groupId, registration: reading.registration }))) throw deletedSince();
    // A device's pairing is looked up again once the page is read: one dropped meanwhile (its anchor's rotation, §8.4)
    // let it read what was posted after. Its own key was never rotated, so the session's check after the read passes.
    if (member !== client && page.length > 0 && !(await this.#mayAct(group, client))) throw new DsError('not-a-member', 'the pairing this device reads by ended meanwhile');
    return page;
  }

  /**
   * A reading position of `client` in a group's log, starting after
   * `afterSeq`: each `next()` returns what others sent since the last call
   * (up to one page), in order, and moves past it. `client`'s own messages
   * are skipped.
   */
  inbox(client: string, groupId: Uint8Array, afterSeq = 0): { next(): Promise<Uint8Array[]> } {
    let seq = afterSeq;
    return {
      next: async () => {
        const logged = await this.poll(client, groupId, seq);
        if (logged.length > 0) seq = logged.at(-1)!.seq;
        return logged.filter((m) => m.sender !== client).map((m) => m.bytes);
      },
    };
  }

  /**
   * Push: `listener` sees every message appended to the group (through the
   * store's notifications, so also those accepted by other servers on a
   * shared database). Returns an unsubscribe function. Messages are read
   * from the log in order, in pages, from the one after the last pushed,
   * so none is pushed twice and none is skipped once the first
   * notification set the start: also not after a gap in the store's
   * notifications (`DeliveryStore.watchGaps`) or a failed read (the next
   * notification reads again). A listener that throws does not stop the
   * delivery of later messages.
   *
   * It follows one registration of the group (docs/PROTOCOL.md §8.3), as a
   * stream does: `options.reading` (`reader`'s), else the group's when it is
   * called. Each read checks the group still has it, the page included, and
   * once it has not (the group deleted, its id perhaps registered again:
   * another group, another log) the subscription ends by itself, nothing of
   * that page pushed: `options.onEnd` is told unknown-group "the group was
   * deleted", once ("no such group": none was registered under the id when
   * it was called; unavailable when the store failed that lookup, without
   * `options.reading`; "the group was deleted" too when a deletion was
   * announced before that lookup answered). Unsubscribing calls no `onEnd`. A store that keeps no
   * registrations ends it only when a read finds no group: a deletion and a
   * registration again between two reads go unseen there.
   */
  subscribe(groupId: Uint8Array, listener: (m: LoggedMessage) => void, options: SubscribeOptions = {}): () => void {
    const id = toHex(groupId);
    let last: number | undefined;
    let busy = false;
    let dirty = false;
    let stopped = false;
    /** The registration followed: undefined until the lookup at the call has answered (if it failed, the subscription ends). */
    let followed: Reading | undefined = options.reading;
    /** A deletion of the group (seq 0) was announced before the lookup at the call answered (review62c). */
    let deletedEarly = false;
    const end = (error: DsError) => {
      if (stopped) return;
      stop();
      try {
        options.onEnd?.(error);
      } catch {
        // The callback's own failure: the subscription has ended all the same.
      }
    };
    /** The lookup at the call (its only caller, without `options.reading`): the group's registration, taken as the one followed, or the end. */
    const lookUp = async (): Promise<void> => {
      const group = await this.#group(id);
      if (!group) return end(unknownGroup());
      // Deleted after the call, before this lookup answered: what it found may be the id registered again (another group,
      // another log), which was pushed from the position a notification of the old group had set (review62c).
      if (deletedEarly) return end(deletedSince());
      followed = { registration: group.registration };
    };
    /** Whether the group is still the registration followed; ends the subscription when not. */
    const stillFollowed = async (): Promise<boolean> => {
      if ((await this.#still({ groupId: id, registration: followed!.registration })) === undefined) return end(deletedSince()), false;
      return true;
    };
    // One reader at a time; notifications while it reads only mark it dirty.
    const drain = async () => {
      if (busy) {
        dirty = true;
        return;
      }
      busy = true;
      try {
        await begun;
        do {
          dirty = false;
          if (last === undefined || stopped) return;
          if (!(await stillFollowed())) return;
          for (;;) {
            // A page short of pageSize may only have met the byte budget: the end is an empty page.
            const page = await this.store.readLog(id, last, this.#pageSize, this.#pageBytes);
            if (page.length === 0 || stopped) break;
            // Checked again once read: the id may have been deleted and registered again meanwhile, the page of the new log.
            if (followed!.registration !== undefined && !(await stillFollowed())) return;
            for (const m of page) {
              if (stopped) return;
              last = m.seq;
              try {
                listener(m);
              } catch {
                // The listener's own failure; later messages still reach it.
              }
            }
          }
        } while (dirty && !stopped);
      } catch {
        // The store failed (e.g. its database is away): the next notification or gap reads from `last` again.
      } finally {
        busy = false;
      }
    };
    const unwatch = this.store.watch((group, seq) => {
      if (group !== id) return;
      if (seq === 0 && followed === undefined) deletedEarly = true;
      last ??= seq - 1;
      void drain();
    });
    const unwatchGaps =
      this.store.watchGaps?.(() => {
        if (last !== undefined) void drain();
      }) ?? (() => undefined);
    function stop() {
      stopped = true;
      unwatch();
      unwatchGaps();
    }
    // The registration at the call (unless given). A failed lookup ends the subscription: taken later, by the first read,
    // it was the registration then, and a deletion and a registration again in between went unseen (the new group's log
    // pushed from the old position on, review61c). `reader` throws instead; an application subscribes again.
    const begun = followed
      ? Promise.resolve()
      : lookUp().catch(() => end(new DsError('unavailable', 'the store failed to look the group up when subscribing: subscribe again')));
    return stop;
  }

  /** Welcomes waiting for `client`, taken (read and acknowledged). */
  async welcomes(client: string): Promise<{ groupId: Uint8Array; welcome: Uint8Array }[]> {
    const pending = await this.store.pendingWelcomes(client);
    await this.store.ackWelcomes(
      client,
      pending.map((w) => w.id),
    );
    return pending.map((w) => ({ groupId: fromHex(w.groupId), welcome: w.welcome }));
  }

  /** Welcomes waiting for `client`, kept until `ackWelcomes`: with an id above `afterId`, at most `limit` and `pageBytes` of them (at least one). */
  pendingWelcomes(client: string, afterId?: number, limit?: number): Promise<PendingWelcome[]> {
    return this.store.pendingWelcomes(client, afterId, limit, this.#pageBytes);
  }

  /** Delete `client`'s Welcomes with these ids. */
  ackWelcomes(client: string, ids: number[]): Promise<void> {
    return this.store.ackWelcomes(client, ids);
  }

  /** The current GroupInfo; with `requester`, only for a reader or in an open group. */
  async groupInfo(groupId: Uint8Array, requester?: string): Promise<Uint8Array | undefined> {
    const group = await this.#group(toHex(groupId));
    if (!group) return undefined;
    if (requester !== undefined && !group.externalJoin && !(await this.#mayAct(group, requester))) throw new DsError('not-a-member', 'the GroupInfo of this group is for its members');
    return group.groupInfo?.length ? group.groupInfo : undefined;
  }

  async epoch(groupId: Uint8Array): Promise<number | undefined> {
    return (await this.#group(toHex(groupId)))?.epoch;
  }

  // --- pairing registry (Paired MLS, draft Figure 1a) ---------------------------

  /**
   * InitPairing(anchor, device) from one side; when both sides have sent it,
   * the DS registers the pairing and answers Accept (true) to both. `key`: `from`'s session's.
   */
  async initPairing(from: string, anchor: string, device: string, key?: Uint8Array): Promise<boolean> {
    if (from !== anchor && from !== device) throw new DsError('forbidden', 'only the anchor or the device can ask to pair them');
    if (this.#auth) for (const id of [anchor, device]) await this.#registered(id);
    const now = this.#now();
    const accepted = await this.store.requestPairing(anchor, device, from === anchor ? 'anchor' : 'device', now, now - this.#pairingSeconds, key);
    if (accepted === 'not-active') throw revokedMeanwhile();
    return accepted;
  }

  /** Cease a pairing; `from` must be its anchor or its device. */
  async ceasePairing(from: string, anchor: string, device: string): Promise<void> {
    if (from !== anchor && from !== device) throw new DsError('forbidden', 'only the anchor or the device can cease their pairing');
    await this.store.removePairing(anchor, device);
  }

  devicesOf(anchor: string): Promise<string[]> {
    return this.store.devicesOf(anchor);
  }
}

/** The DS's external-sender identity of `ciphersuite`'s scheme: `keyPair` imported (and wiped), else a new one. */
async function externalIdentity(client: MlsClient, ciphersuite: 1 | 2, keyPair: Uint8Array | undefined): Promise<Identity> {
  if (!keyPair) return client.createIdentity(DS_SENDER, ciphersuite);
  const identity = await client.importIdentity(new TextEncoder().encode(DS_SENDER), keyPair, ciphersuite);
  // The length of the public key tells the scheme: a pair of the other one would sign what no member verifies.
  if (identity.signaturePublicKey.length !== (ciphersuite === 1 ? 32 : 65)) throw new MlsError('INVALID_ARGUMENT', `externalSenderKeys.${ciphersuite === 1 ? 'ed25519' : 'p256'} is not a key pair of that scheme`);
  return identity;
}
