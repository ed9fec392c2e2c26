/**
 * What a Delivery Service keeps (docs/PROTOCOL.md §8): KeyPackages, groups
 * with their epoch and members, each group's ordered log, Welcomes per
 * recipient, the latest GroupInfo, and pairings. One interface, so the
 * in-process memory store and database stores are interchangeable; every
 * method that changes several things is atomic.
 */
import { bytesEqual, toHex } from '../mls/bytes.js';

/** A KeyPackage the DS holds for a client. */
export interface StoredKeyPackage {
  clientId: string;
  /** KeyPackageRef, hex. */
  ref: string;
  bytes: Uint8Array;
  lastResort: boolean;
  /** Seconds since the epoch. */
  notAfter: number;
}

/** A message in a group's log, with its sequence number and sender. */
export interface LoggedMessage {
  groupId: string;
  seq: number;
  sender: string;
  bytes: Uint8Array;
  /** SHA-256 of `bytes`, hex: a retried submission is recognised, not logged twice. */
  digest?: string;
}

/**
 * A message `append` is asked to log: with `registration`, the registration of its group (`GroupRecord.registration`) the
 * DS checked it against (membership, epoch). A store that keeps registrations logs it only while the group still has
 * that one, checked in the append's transaction (docs/PROTOCOL.md §8.3): the group deleted meanwhile and its id
 * registered again, the message was checked against another group, and goes into no log. Not stored with the message.
 */
export type MessageToLog = Omit<LoggedMessage, 'seq'> & {
  registration?: string;
  /**
   * A member's proposal or application message, and a paired device's commit (not a member's own commit: its removal
   * or the ReInit moves the epoch or the member list, which the commit's checks see; not the DS's own): the member its
   * sender posts for, as the DS checked it (the sender itself, or the anchor it is a paired device of). A store logs it only while the group
   * still takes it from that sender (`takesPost`), checked in the append's transaction after a retry's digest is
   * looked up: `postsFor` still on the member list, the sender that member or still paired to it, and the group not
   * retired by a ReInit (`isRetired`); else undefined, nothing written or counted (docs/PROTOCOL.md §8.1). The DS checks
   * it before the append too, but a post held between that check and its append while its sender's removal, the end of
   * its pairing or the ReInit commit was logged went in after it. A custom store that ignores it keeps that race. Not
   * stored with the message.
   */
  postsFor?: string;
};

/**
 * What `deleteGroup` is asked besides the id and member: `held(epoch)`, the grants the group held; `keep`, how many
 * deleted ids a member keeps; `registration`, the registration the DS checked the deletion against (a store that keeps
 * registrations deletes nothing, 'unknown', when the group has another: deleted meanwhile, registered again);
 * `reserved`, the DS checked a reserved id (`reservedGroup`, which has no registration): nothing deleted, 'unknown',
 * unless the id is still reserved (its member's registration claimed it meanwhile: that group is not the one asked for).
 */
export interface DeleteGroupOptions {
  held: (epoch: number) => string[];
  keep: number;
  registration?: string;
  reserved?: boolean;
}

/** What the DS knows of a group: epoch, members, consistency mode, GroupInfo. */
export interface GroupRecord {
  groupId: string;
  epoch: number;
  members: string[];
  /** Strongly consistent (ordered, first commit per epoch wins) or eventually consistent. */
  consistency: 'strong' | 'eventual';
  groupInfo?: Uint8Array;
  /** Open to external joins (GroupInfo readable by all). */
  externalJoin?: boolean;
  /** Sequence number of the commit that began the current epoch (0: none yet); the epoch's proposals follow it. */
  epochStart?: number;
  /**
   * Which registration of the id this group is (docs/PROTOCOL.md §8.3): random, given by the DS when it registers the
   * group (`insertGroup`, `claimReserved`, `claimDeleted`), kept as the other fields while the group lives, none on a
   * reserved or deleted id's row. A stream takes it when it opens and ends once its group has another (deleted and
   * registered again under the id). Optional: a store that keeps none (a custom adapter of an earlier release) has
   * its streams checked by the message at their position instead, with that check's limits.
   */
  registration?: string;
}

/** What `registerBinding` is asked besides the binding (docs/PROTOCOL.md §8.4). */
export interface RegisterOptions {
  newClient?: boolean;
  replacing?: Uint8Array;
  quota?: StorageQuota;
  guard?: GuardChange;
}

/** A credential the Authentication Service registered (docs/PROTOCOL.md §8.4). */
export interface StoredBinding {
  clientId: string;
  userId: string;
  /** Basic credential identity (RFC 9420 §5.3.1). */
  identity: Uint8Array;
  signatureKey: Uint8Array;
  ciphersuite: number;
  revoked: boolean;
}

/**
 * Why the AS refused a registration (docs/PROTOCOL.md §8.4). `not-active`:
 * the key a rotation replaces is no active key of the client (revoked
 * meanwhile: another rotation won). `guard`: the client's rotation guard is
 * not the one the request opened.
 */
export type BindingRefusal = 'key-taken' | 'revoked' | 'client-taken' | 'identity-taken' | 'not-active' | 'guard';

/**
 * A registration's or revocation's word on the client's rotation guard
 * (docs/PROTOCOL.md §8.4), hex SHA-256 commitments. `opens`: the guard the
 * client holds now (undefined: none). `next` (a rotation only): the guard
 * after it (undefined: none).
 */
export interface GuardChange {
  opens?: string;
  next?: string;
}

/** A KeyPackage the DS handed to a requester: what lets that requester's commit send a Welcome to its owner (§8.1). */
export interface KeyPackageGrant {
  requester: string;
  clientId: string;
  /** KeyPackageRef, hex. */
  ref: string;
  /** Seconds since the epoch. */
  until: number;
}

/** A Welcome waiting for its recipient's acknowledgement. */
export interface PendingWelcome {
  id: number;
  groupId: string;
  welcome: Uint8Array;
}

/** What a commit changes beside its log entry, written in the same transaction. */
export interface CommitUpdate {
  expectEpoch: number;
  setEpoch: number;
  members?: string[];
  /**
   * The member list `members` was computed from (an eventual group's commit,
   * docs/PROTOCOL.md §8.1): undefined, nothing written, unless the group's
   * list is still exactly this one, checked in the transaction. Its epoch
   * check alone let two racing commits that leave the epoch where it is
   * both in, the later one writing a list from before the first (a member's
   * junk commit put back a client another's had removed); the DS takes a
   * refused one again against the new list. A custom store that ignores it
   * keeps that race.
   */
  expectMembers?: string[];
  groupInfo?: Uint8Array;
  /**
   * The Welcome of this commit, stored once, and the clients it adds: a
   * reference each, until acknowledged (§8.1), counting for `payers[i]`
   * (the holder of the grant that added `recipients[i]`; default: the sender).
   * With `max`, the store refuses it (`InboxFullError`, nothing written)
   * when a recipient has `max` waiting, counted in its transaction.
   */
  welcome?: { recipients: string[]; welcome: Uint8Array; payers?: string[]; max?: number };
  /**
   * A verified ReInit's successor id, reserved for the retired group's
   * `members` (docs/PROTOCOL.md §1.6): a row `reservedGroup` makes, counting
   * for the sender. A group under that id: `GroupIdTakenError`, nothing written.
   */
  reserve?: { groupId: string; members: string[] };
  /**
   * Requesters whose grants all end with this commit (a group's held grants,
   * docs/PROTOCOL.md §8.5), dropped in its transaction. Given only to a store
   * that has `dropGrants`.
   */
  dropGrants?: string[];
  /**
   * The sequence number of the group's last logged message when the DS
   * checked what the committer had not read (`SubmitExtras.readTo`): a
   * message logged since refuses the commit as a changed epoch does
   * (undefined, nothing written), and the DS checks the new messages.
   */
  lastSeq?: number;
}

/** The row of a reserved successor id: no group yet, epoch -1, an empty GroupInfo (no schema change); `claimReserved` turns it into the group. */
export const reservedGroup = (r: { groupId: string; members: string[] }): GroupRecord => ({ groupId: r.groupId, epoch: -1, members: [...r.members], consistency: 'strong', groupInfo: new Uint8Array(0) });

/** Whether `g` is a reserved successor id (`reservedGroup`), which is no group: only its members may register it. */
export const isReserved = (g: GroupRecord): boolean => g.epoch === -1 && g.groupInfo?.length === 0;

/** The row a deleted group's id keeps (§8.3): epoch -2, an empty GroupInfo, its last member, who alone may register it again; it counts for nobody. */
export const deletedGroup = (groupId: string, member: string): GroupRecord => ({ groupId, epoch: -2, members: [member], consistency: 'strong', groupInfo: new Uint8Array(0) });

/** Whether `g` is a deleted group's id (`deletedGroup`): no group. */
export const isDeleted = (g: GroupRecord): boolean => g.epoch === -2 && g.groupInfo?.length === 0;

/** A group a ReInit retired (docs/PROTOCOL.md §1.6): a verifying DS marks it with an empty GroupInfo; eventual groups are never marked. */
export const isRetired = (g: Pick<GroupRecord, 'consistency' | 'groupInfo'>): boolean => retiredRow(g.consistency, g.groupInfo?.length);

/** `isRetired` from a stored row's consistency and GroupInfo length (null or undefined: none), as the SQL stores read them. */
export const retiredRow = (consistency: GroupRecord['consistency'], groupInfoBytes: number | null | undefined): boolean => consistency === 'strong' && groupInfoBytes === 0;

/**
 * Whether a group (its member list, and whether it is retired, `isRetired`) still takes `message`, a member's post or a
 * paired device's commit (`MessageToLog.postsFor`; none given: any message). `paired(anchor)`: whether the sender is still a paired device of
 * `anchor`, asked only when it posts for another client. Synchronous, so that a store calls it in its transaction.
 */
export const takesPost = (group: { members: string[]; retired: boolean }, message: MessageToLog, paired: (anchor: string) => boolean): boolean => {
  const member = message.postsFor;
  return member === undefined || (!group.retired && group.members.includes(member) && (member === message.sender || paired(member)));
};

/** Whether `g` is the registration `expected` a request was checked against (none expected: any, a custom store's way). */
export const sameRegistration = (g: GroupRecord, expected: string | undefined): boolean => expected === undefined || g.registration === expected;

/** Deleted ids a client's deletions keep (`deletedGroup`) at most; past it a deletion frees the id. */
export const DELETED_IDS_KEPT = 1000;

/** A commit's `reserve` names an id a group already has; nothing was written. */
export class GroupIdTakenError extends Error {
  constructor(groupId: string) {
    super(`group ${groupId} exists`);
    this.name = 'GroupIdTakenError';
  }
}

/** What one client may have stored (docs/PROTOCOL.md §8.6); undefined: no bound. */
export interface StorageQuota {
  bytes?: number;
  keyPackages?: number;
  /** Active signature keys (AS bindings). */
  keys?: number;
}

/** What a client has stored: the counters a `StorageQuota` bounds. */
export interface StorageUsage {
  bytes: number;
  keyPackages: number;
}

/** What each stored record counts beside its own bytes. */
export const STORED_RECORD_BYTES = 256;

/** The bytes a record of `rows` rows counts against its client's quota. */
export function storedBytes(bytes: number, rows = 1): number {
  return bytes + rows * STORED_RECORD_BYTES;
}

/** What a key's binding counts for its client, for good (revoked keys are kept). */
export const bindingBytes = (b: { identity: Uint8Array; signatureKey: Uint8Array }): number => storedBytes(b.identity.length + b.signatureKey.length);

/**
 * What each of a Welcome's `n` references counts: 256, and its part of the
 * Welcome's bytes and record (in all `storedBytes(bytes, 1 + n)`), given back
 * when its recipient acknowledges it.
 */
export function welcomeShares(bytes: number, n: number): number[] {
  const total = storedBytes(bytes);
  return Array.from({ length: n }, (_, i) => STORED_RECORD_BYTES + Math.floor(total / n) + (i < total % n ? 1 : 0));
}

/**
 * What a commit's Welcome counts for each client: its references' parts,
 * per payer (the sender when `payers` is not given).
 */
export function welcomeCharges(sender: string, welcome: CommitUpdate['welcome']): Map<string, number> {
  const out = new Map<string, number>();
  if (!welcome) return out;
  const shares = welcomeShares(welcome.welcome.length, welcome.recipients.length);
  shares.forEach((n, i) => {
    const payer = welcome.payers?.[i] ?? sender;
    out.set(payer, (out.get(payer) ?? 0) + n);
  });
  return out;
}

/** Thrown by a store for a write past its client's `StorageQuota` (nothing of it stored); the DS answers `quota-exceeded`. */
export class StorageQuotaError extends Error {
  readonly clientId: string;
  readonly kind: keyof StorageQuota;
  constructor(clientId: string, kind: keyof StorageQuota) {
    super(`${clientId} is at its quota of ${kind}`);
    this.name = 'StorageQuotaError';
    this.clientId = clientId;
    this.kind = kind;
  }
}

/** Whether a group's stored member list is `expected` (`CommitUpdate.expectMembers`; none expected: any), the same clients in the same order. */
export const sameMembers = (members: string[], expected: string[] | undefined): boolean =>
  expected === undefined || (members.length === expected.length && members.every((m, i) => m === expected[i]));

/** A commit's Welcome for a recipient whose inbox is full (`CommitUpdate.welcome.max`); nothing was written. */
export class InboxFullError extends Error {
  readonly recipient: string;
  constructor(recipient: string, max: number) {
    super(`${recipient} has ${max} Welcomes waiting; it must take them first`);
    this.name = 'InboxFullError';
    this.recipient = recipient;
  }
}

/** Seconds a spent proof's nonce is kept past its expiry; servers sharing a store must have clocks closer than this (docs/PROTOCOL.md §8.2). */
export const SPENT_PROOF_MARGIN_SECONDS = 300;

/** How many proposals, and `bytes` of them, may be held (docs/PROTOCOL.md §8.6). */
export interface ProposalLimit {
  count: number;
  bytes: number;
}

/**
 * What a proposal may take of its epoch (docs/PROTOCOL.md §8.6): `count`
 * and `bytes`, the members' part (absent: not in it, the DS's own);
 * `member`, one member's share; `epoch`, logged only while the group is
 * still at it.
 */
export interface EpochProposalBudget extends Partial<ProposalLimit> {
  member?: ProposalLimit & { id: string };
  /**
   * A key the epoch takes once (kept beside the members' shares, and
   * cleared with them): a second proposal with it in the same epoch is
   * refused, `ProposalKeyTakenError`. The DS's own proposals name the leaf
   * they remove, so that racing servers cannot each log one (§8.6).
   */
  once?: string;
  epoch?: number;
}

/** A proposal whose budget's `once` key its epoch already took (docs/PROTOCOL.md §8.6); nothing stored. */
export class ProposalKeyTakenError extends Error {
  readonly groupId: string;
  readonly key: string;
  constructor(groupId: string, key: string) {
    super(`the epoch of group ${groupId} already holds a proposal of this key`);
    this.name = 'ProposalKeyTakenError';
    this.groupId = groupId;
    this.key = key;
  }
}

/** A proposal past its epoch's budget (`scope` `epoch`) or its member's share (`member`, `memberId`); nothing stored. */
export class EpochProposalsFullError extends Error {
  readonly groupId: string;
  readonly scope: 'epoch' | 'member';
  readonly memberId: string | undefined;
  constructor(groupId: string, memberId?: string) {
    super(
      memberId === undefined
        ? `the epoch of group ${groupId} holds all the proposals it may; commit first`
        : `${memberId} holds its share of the proposals of group ${groupId}'s epoch; commit first`,
    );
    this.name = 'EpochProposalsFullError';
    this.groupId = groupId;
    this.scope = memberId === undefined ? 'epoch' : 'member';
    this.memberId = memberId;
  }
}

/** A group's proposal count as a store keeps it: for which epoch, how many, their bytes. */
export interface ProposalCount {
  epoch: number;
  count: number;
  bytes: number;
}

/**
 * The count after one more proposal of `size` bytes in the group's `epoch`:
 * a `stored` count of another epoch starts again (whoever moved the epoch).
 * Throws `EpochProposalsFullError` when it leaves no room within `limit`
 * (the epoch's, or with `memberId` that member's share).
 */
export function countProposal(groupId: string, epoch: number, stored: ProposalCount | undefined, size: number, limit: ProposalLimit, memberId?: string): ProposalCount {
  const held = stored?.epoch === epoch ? stored : { count: 0, bytes: 0 };
  if (held.count >= limit.count || held.bytes + size > limit.bytes) throw new EpochProposalsFullError(groupId, memberId);
  return { epoch, count: held.count + 1, bytes: held.bytes + size };
}

/** The counts after one more proposal within `budget`: the group's, when the budget limits it, and its member's, when the budget has a share (see `countProposal`). */
export function countProposalWithShare(
  groupId: string,
  epoch: number,
  stored: { epoch: ProposalCount | undefined; member: ProposalCount | undefined; once?: ProposalCount | undefined },
  size: number,
  budget: EpochProposalBudget,
): { epoch: ProposalCount | undefined; member: ProposalCount | undefined; once: ProposalCount | undefined } {
  // A key taken is asked first: what it stands for is proposed, whatever room is left.
  if (budget.once !== undefined && stored.once?.epoch === epoch) throw new ProposalKeyTakenError(groupId, budget.once);
  const member = budget.member && countProposal(groupId, epoch, stored.member, size, budget.member, budget.member.id);
  const shared = budget.count !== undefined && budget.bytes !== undefined ? { count: budget.count, bytes: budget.bytes } : undefined;
  const once = budget.once === undefined ? undefined : { epoch, count: 1, bytes: size };
  return { epoch: shared && countProposal(groupId, epoch, stored.epoch, size, shared), member, once };
}

/** Throws `StorageQuotaError` when `usage` (after adding `delta`) is past `quota`; a change that adds nothing is never refused. */
export function checkQuota(clientId: string, usage: StorageUsage, delta: StorageUsage, quota: StorageQuota | undefined): void {
  if (!quota) return;
  if (delta.bytes > 0 && quota.bytes !== undefined && usage.bytes > quota.bytes) throw new StorageQuotaError(clientId, 'bytes');
  if (delta.keyPackages > 0 && quota.keyPackages !== undefined && usage.keyPackages > quota.keyPackages) throw new StorageQuotaError(clientId, 'keyPackages');
}

/**
 * Where a Delivery Service keeps its state (in memory, SQLite or
 * PostgreSQL). It counts what each client has stored (`usage`; what counts
 * for whom: docs/PROTOCOL.md §8.6, each row its bytes + 256); a write past
 * its `quota` throws `StorageQuotaError`.
 */
export interface DeliveryStore {
  /**
   * Store KeyPackages (a ref once), all or none; with `now`, their owners' expired ones are deleted first. `key` (the
   * uploading session's): 'not-active', nothing stored, unless it is an active key of their owner (§8.4).
   */
  putKeyPackages(kps: StoredKeyPackage[], options?: { quota?: StorageQuota; now?: number; key?: Uint8Array }): Promise<void | 'not-active'>;
  /**
   * Lease one KeyPackage of `clientId` to `requester` until `leaseUntil`
   * (docs/PROTOCOL.md §8.1), atomically: one already leased to it, else the
   * oldest free one-time one (not with `lastResortOnly`), else the newest
   * last-resort one (not leased, never consumed).
   */
  leaseKeyPackage(clientId: string, requester: string, now: number, leaseUntil: number, options?: { lastResortOnly?: boolean }): Promise<StoredKeyPackage | undefined>;
  /** Record that `requester` obtained a KeyPackage (drops its expired grants). */
  grantKeyPackage(grant: KeyPackageGrant, now: number): Promise<void>;
  /** The unexpired KeyPackages granted to `requester`. */
  grants(requester: string, now: number): Promise<KeyPackageGrant[]>;
  /** Spend these grants of `requester` (a commit used them). */
  spendGrants(requester: string, refs: string[]): Promise<void>;
  /**
   * Drop every grant of these requesters, in one statement. A store that has
   * it also drops `CommitUpdate.dropGrants` in the commit's transaction; one
   * without it (an older interface) is given none, and the DS reads and
   * spends a commit's held grants after it instead (§8.5).
   */
  dropGrants?(requesters: string[]): Promise<void>;
  /** Delete these KeyPackages (refs) if leased to `requester`; returns how many. */
  ackKeyPackages(requester: string, refs: string[]): Promise<number>;
  countKeyPackages(clientId: string): Promise<number>;

  /**
   * The group's record, its `registration` as it was registered (none on a reserved or deleted id's row). A store that
   * keeps none, as one written before it (docs/PROTOCOL.md §8.3), still works: its streams are checked by the message at
   * their position, with that check's limits. One that keeps it must never return a registration once given for another
   * registration of the id (a deletion clears it; `insertGroup` and the claims store the one they are given).
   */
  getGroup(groupId: string): Promise<GroupRecord | undefined>;
  /**
   * Register a new group, atomically: false (and nothing written) when a
   * group with this id exists, also one another server created meanwhile.
   * It counts for its creator (`members[0]`).
   */
  insertGroup(group: GroupRecord, quota?: StorageQuota): Promise<boolean>;
  /**
   * Register `group` under an id a ReInit reserved (`CommitUpdate.reserve`),
   * atomically: false, nothing written, unless the id is still reserved.
   * Counts as `insertGroup`. A store without it reserves nothing.
   */
  claimReserved?(group: GroupRecord, quota?: StorageQuota): Promise<boolean>;
  /**
   * Delete the group (or reserved id) whose member list is exactly [member], atomically: its log, GroupInfo, Welcomes,
   * proposal counts and the grants `held(epoch)` names, each part given back to whom it counted for; the id then kept
   * as `deletedGroup` while `member` keeps fewer than `keep` such ids, else freed (docs/PROTOCOL.md §8.3).
   */
  deleteGroup?(groupId: string, member: string, options: DeleteGroupOptions): Promise<'deleted' | 'not-sole' | 'unknown'>;
  /** Ids of the groups and reserved ids whose member list is exactly [member], after `after`, ascending, at most `limit`. */
  soleGroups?(member: string, after: string, limit: number): Promise<string[]>;
  /** Register `group` under an id its creator deleted (`deletedGroup`), atomically: false unless still so. Counts as `insertGroup`. */
  claimDeleted?(group: GroupRecord, quota?: StorageQuota): Promise<boolean>;
  /**
   * Append to a group's log; with `expectEpoch`, only if the group is still
   * at that epoch, and then move it to `setEpoch` — atomically (the first
   * commit for an epoch wins). Returns the sequence number, or undefined
   * when the epoch check failed (`expectEpoch`, `budget.epoch`), the
   * member list moved (`expectMembers`), or a member's post or a paired
   * device's commit is no longer its sender's to make (`message.postsFor`).
   * It counts for its sender. A
   * proposal counts within `budget`, else
   * `EpochProposalsFullError` (a store that ignores it lets a member jam the
   * group); a commit that moves the epoch starts the counts again. A
   * Welcome passes `update.welcome.max` per recipient, else
   * `InboxFullError` (a store that ignores it has no inbox cap).
   * `message.registration` (`MessageToLog`): undefined, nothing written,
   * unless the group still has it, checked first (before a retry's digest
   * is looked up). A custom store that keeps no registration ignores it, and
   * keeps the race it closes: a post checked against a group deleted
   * meanwhile may be logged in a group registered again under its id.
   */
  append(message: MessageToLog, update?: CommitUpdate, quota?: StorageQuota, budget?: EpochProposalBudget): Promise<number | undefined>;
  /** Sequence number of the message with this digest in the group's log, if any. */
  seqOf(groupId: string, digest: string): Promise<number | undefined>;
  /**
   * The counts the group keeps under `ids` (members' shares, `once` keys of
   * `append`'s budget), each of the epoch it was last counted in. Optional:
   * the DS reads them to refuse what `append` would refuse before its
   * costlier checks (docs/PROTOCOL.md §5.4); `append` still decides.
   */
  proposalCounts?(groupId: string, ids: string[]): Promise<Map<string, ProposalCount>>;
  /**
   * Messages after `afterSeq`, in order: at most `limit`, and no more than
   * `maxBytes` of message bytes in all (but always the first one, whatever
   * its size), so one read never holds a whole log of large messages.
   */
  readLog(groupId: string, afterSeq: number, limit: number, maxBytes?: number): Promise<LoggedMessage[]>;
  /**
   * As `readLog`, by an index, only the messages `append` logged with a `budget` (proposals) and those logged unmarked
   * (before this release opened the database, or by a server of an older one); and the log's last sequence number, read
   * first (0: empty). Optional: without it the DS reads the whole log for them (docs/PROTOCOL.md §8.5).
   */
  readProposals?(groupId: string, afterSeq: number, limit: number, maxBytes?: number): Promise<{ messages: LoggedMessage[]; last: number }>;

  /** Welcomes waiting for `recipient`, oldest first: those with an id above `afterId`, at most `limit` and `maxBytes` of them (at least one). */
  pendingWelcomes(recipient: string, afterId?: number, limit?: number, maxBytes?: number): Promise<PendingWelcome[]>;
  countWelcomes(recipient: string): Promise<number>;
  /** Delete `recipient`'s Welcomes with these ids (a Welcome's bytes go with its last reference). */
  ackWelcomes(recipient: string, ids: number[]): Promise<void>;

  /**
   * AS: register a binding, atomically (refusals: docs/PROTOCOL.md §8.4):
   * the key must be new or this client's, neither revoked; the identity no
   * other user's client's; with `newClient`, the client id must have no binding;
   * with `replacing` (a key rotation), that key must be an active key of the
   * client, and is revoked in the same transaction: of two rotations from
   * one key, exactly one registers its key. A new key counts
   * `bindingBytes` for its client; with `quota`, StorageQuotaError (nothing
   * stored) past its bytes, or past its `keys` active keys (not a rotation).
   * `guard`, checked first: `guard` unless it opens the client's guard (none
   * given opens no guard). A rotation then sets the guard to `guard.next`
   * and, when a guard was held or is set, revokes every other key of the
   * client; and it drops the client's pairings as anchor (removePairing).
   */
  registerBinding(binding: Omit<StoredBinding, 'revoked'>, options?: RegisterOptions): Promise<BindingRefusal | undefined>;
  bindingByKey(signatureKey: Uint8Array): Promise<StoredBinding | undefined>;
  /** Every binding of a client, revoked ones included (unbounded: for administration, no request path). */
  bindingsOf(clientId: string): Promise<StoredBinding[]>;
  /** The first `limit` (default all) active bindings of a client, oldest first; revoked ones are not read. */
  activeBindingsOf(clientId: string, limit?: number): Promise<StoredBinding[]>;
  /**
   * Revoke a client id and all its keys, for good, and drop its pairings as
   * anchor. With `guard` (a request's, not the deployment's): false, and
   * nothing changed, unless it opens the client's rotation guard.
   */
  revokeClient(clientId: string, guard?: GuardChange): Promise<boolean>;
  /** The client's rotation guard: its step (0 when set, +1 each rotation that keeps one) and commitment (hex), undefined when none. */
  rotationGuard(clientId: string): Promise<{ step: number; commitment: string } | undefined>;
  /** Revoke one key of `clientId`, for good; false when it is not an active key of that client. */
  revokeKey(clientId: string, signatureKey: Uint8Array): Promise<boolean>;
  /** Mark a proof (challenge nonce) used until `expires` (+ `SPENT_PROOF_MARGIN_SECONDS`); false when it was used already (docs/PROTOCOL.md §8.2). */
  useProof(nonce: string, expires: number, now: number): Promise<boolean>;
  clientRevoked(clientId: string): Promise<boolean>;
  /** The stored secret `name`, or `fresh`, stored now. */
  secret(name: string, fresh: Uint8Array): Promise<Uint8Array>;

  /**
   * Record one side's InitPairing; when both the anchor and the device have
   * asked, register the pairing (atomically) and return true. Requests
   * made before `expiresBefore` (seconds) are forgotten first. `key`: as putKeyPackages', of the side's client.
   */
  requestPairing(anchor: string, device: string, side: 'anchor' | 'device', now: number, expiresBefore: number, key?: Uint8Array): Promise<boolean | 'not-active'>;
  putPairing(anchor: string, device: string): Promise<void>;
  /** A pairing and its unanswered requests; without `device`, every one of `anchor` (its key rotated, docs/PROTOCOL.md §4.0). */
  removePairing(anchor: string, device?: string): Promise<void>;
  /** Keep only the newest `keep` messages of a group's log (retention). */
  prune(groupId: string, keep: number): Promise<void>;
  /** What `clientId` has stored. */
  usage(clientId: string): Promise<StorageUsage>;
  devicesOf(anchor: string): Promise<string[]>;
  /** The anchors `device` is a device of (one lookup; without it the DS asks `devicesOf` of every member, docs/PROTOCOL.md §8.3). */
  anchorsOf?(device: string): Promise<string[]>;

  /**
   * Be told of every message appended to any group, also by other servers
   * sharing this store (a database server); `seq` 0: the group was deleted. Returns an unsubscribe function.
   */
  watch(listener: (groupId: string, seq: number) => void): () => void;

  /**
   * Stores whose notifications travel over a connection that can break (a
   * database server): be told when appends may have been missed, once the
   * notifications flow again, so as to re-read what is followed. Returns
   * an unsubscribe function. In-process stores miss nothing and omit it.
   */
  watchGaps?(listener: () => void): () => void;
}

/**
 * How many of a page's messages, of these sizes, fit in `maxBytes`: at
 * least one (a reader must get past a message larger than the budget).
 */
export function withinBytes(sizes: number[], maxBytes: number): number {
  let total = 0;
  for (const [i, size] of sizes.entries()) {
    total += size;
    if (total > maxBytes) return Math.max(1, i);
  }
  return sizes.length;
}

/** The messages of `log` after `afterSeq`: at most `limit`, and `maxBytes` of them (at least one). */
function pageOf(log: LoggedMessage[] = [], afterSeq: number, limit: number, maxBytes = Infinity): LoggedMessage[] {
  const page = log.filter((m) => m.seq > afterSeq).slice(0, limit);
  return page.slice(0, withinBytes(page.map((m) => m.bytes.length), maxBytes));
}

/** In-process fan-out of appends, for stores that are not shared between processes. */
export class AppendNotifier {
  readonly #listeners = new Set<(groupId: string, seq: number) => void>();
  watch(listener: (groupId: string, seq: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  notify(groupId: string, seq: number): void {
    for (const l of this.#listeners) l(groupId, seq);
  }
}

/** The default store: everything in memory, for tests and the demo. */
export class MemoryDeliveryStore implements DeliveryStore {
  readonly #kps = new Map<string, (StoredKeyPackage & { leasedTo?: string; leaseUntil?: number })[]>();
  readonly #groups = new Map<string, GroupRecord>();
  readonly #logs = new Map<string, LoggedMessage[]>();
  /** Per recipient: its references to stored Welcomes, oldest first, each with what it counts for whom. */
  readonly #welcomes = new Map<string, { id: number; blob: number; payer: string; charge: number }[]>();
  /** Each Welcome's bytes once, with how many recipients still reference it. */
  readonly #welcomeBlobs = new Map<number, { groupId: string; welcome: Uint8Array; refs: number }>();
  #welcomeIds = 0;
  #welcomeBlobIds = 0;
  readonly #pairings = new Map<string, Set<string>>();
  readonly #notifier = new AppendNotifier();
  readonly #digests = new Map<string, Map<string, number>>();
  readonly #usage = new Map<string, StorageUsage>();
  /** Who stored each group's current GroupInfo (it counts for them). */
  readonly #groupInfoBy = new Map<string, string>();
  /** Who each group's (or reserved id's) record counts for: its creator, the ReInit's committer. */
  readonly #recordBy = new Map<string, string>();
  /** Per group, the proposals of an epoch: which, how many, their bytes. */
  readonly #epochProposals = new Map<string, ProposalCount>();
  /** Per group, each member's share of the epoch's proposals (cleared when the epoch moves). */
  readonly #memberProposals = new Map<string, Map<string, ProposalCount>>();
  /** Per group, its logged proposals (`readProposals`). */
  readonly #proposals = new Map<string, LoggedMessage[]>();

  async usage(clientId: string): Promise<StorageUsage> {
    return { ...(this.#usage.get(clientId) ?? { bytes: 0, keyPackages: 0 }) };
  }

  /** Refuse (before anything changes) a change of `delta` that takes `clientId` past `quota`. */
  #check(clientId: string, delta: StorageUsage, quota: StorageQuota | undefined): void {
    const u = this.#usage.get(clientId) ?? { bytes: 0, keyPackages: 0 };
    checkQuota(clientId, { bytes: u.bytes + delta.bytes, keyPackages: u.keyPackages + delta.keyPackages }, delta, quota);
  }

  /** Count `delta` (negative: given back) for `clientId`. */
  #count(clientId: string, bytes: number, keyPackages = 0): void {
    const u = this.#usage.get(clientId) ?? { bytes: 0, keyPackages: 0 };
    u.bytes = Math.max(0, u.bytes + bytes);
    u.keyPackages = Math.max(0, u.keyPackages + keyPackages);
    this.#usage.set(clientId, u);
  }

  watch(listener: (groupId: string, seq: number) => void): () => void {
    return this.#notifier.watch(listener);
  }

  async putKeyPackages(kps: StoredKeyPackage[], options: { quota?: StorageQuota; now?: number; key?: Uint8Array } = {}): Promise<void | 'not-active'> {
    const owners = new Set(kps.map((k) => k.clientId));
    if (options.key && [...owners].some((o) => this.#inactive(options.key!, o))) return 'not-active';
    if (options.now !== undefined) for (const owner of owners) this.#dropExpired(owner, options.now);
    // The new ones (a ref once), then the check per owner before anything is stored.
    const fresh: StoredKeyPackage[] = [];
    for (const kp of kps) if (!(this.#kps.get(kp.clientId) ?? []).some((k) => k.ref === kp.ref) && !fresh.some((k) => k.ref === kp.ref)) fresh.push(kp);
    for (const owner of owners) {
      const mine = fresh.filter((k) => k.clientId === owner);
      this.#check(owner, { bytes: mine.reduce((n, k) => n + storedBytes(k.bytes.length), 0), keyPackages: mine.length }, options.quota);
    }
    for (const kp of fresh) {
      this.#kps.set(kp.clientId, [...(this.#kps.get(kp.clientId) ?? []), kp]);
      this.#count(kp.clientId, storedBytes(kp.bytes.length), 1);
    }
  }

  /** Delete `clientId`'s expired KeyPackages. */
  #dropExpired(clientId: string, now: number): void {
    const list = this.#kps.get(clientId) ?? [];
    for (const k of list) if (k.notAfter < now) this.#count(clientId, -storedBytes(k.bytes.length), -1);
    this.#kps.set(
      clientId,
      list.filter((k) => k.notAfter >= now),
    );
  }

  async leaseKeyPackage(clientId: string, requester: string, now: number, leaseUntil: number, options: { lastResortOnly?: boolean } = {}): Promise<StoredKeyPackage | undefined> {
    this.#dropExpired(clientId, now);
    const list = this.#kps.get(clientId) ?? [];
    const held = list.find((k) => !k.lastResort && k.leasedTo === requester && (k.leaseUntil ?? 0) >= now);
    const free = held ?? (options.lastResortOnly ? undefined : list.find((k) => !k.lastResort && (k.leasedTo === undefined || (k.leaseUntil ?? 0) < now)));
    if (free) {
      free.leasedTo = requester;
      free.leaseUntil = leaseUntil;
      return { clientId: free.clientId, ref: free.ref, bytes: free.bytes, lastResort: false, notAfter: free.notAfter };
    }
    return list.filter((k) => k.lastResort).at(-1);
  }

  async ackKeyPackages(requester: string, refs: string[]): Promise<number> {
    let n = 0;
    for (const [client, list] of this.#kps) {
      const kept = list.filter((k) => k.lastResort || k.leasedTo !== requester || !refs.includes(k.ref));
      for (const k of list) if (!kept.includes(k)) this.#count(client, -storedBytes(k.bytes.length), -1);
      n += list.length - kept.length;
      this.#kps.set(client, kept);
    }
    return n;
  }

  async countKeyPackages(clientId: string): Promise<number> {
    return (this.#kps.get(clientId) ?? []).length;
  }

  readonly #grants = new Map<string, KeyPackageGrant[]>();

  async grantKeyPackage(grant: KeyPackageGrant, now: number): Promise<void> {
    const list = (this.#grants.get(grant.requester) ?? []).filter((g) => g.until >= now && g.ref !== grant.ref);
    list.push({ ...grant });
    this.#grants.set(grant.requester, list);
  }

  async grants(requester: string, now: number): Promise<KeyPackageGrant[]> {
    return (this.#grants.get(requester) ?? []).filter((g) => g.until >= now).map((g) => ({ ...g }));
  }

  async spendGrants(requester: string, refs: string[]): Promise<void> {
    this.#grants.set(
      requester,
      (this.#grants.get(requester) ?? []).filter((g) => !refs.includes(g.ref)),
    );
  }

  async dropGrants(requesters: string[]): Promise<void> {
    for (const r of requesters) this.#grants.delete(r);
  }

  readonly #bindings = new Map<string, StoredBinding>();
  readonly #revokedClients = new Set<string>();
  readonly #guards = new Map<string, { commitment: string; step: number }>();
  readonly #secrets = new Map<string, Uint8Array>();

  async registerBinding(b: Omit<StoredBinding, 'revoked'>, options: RegisterOptions = {}): Promise<BindingRefusal | undefined> {
    const key = toHex(b.signatureKey);
    const existing = this.#bindings.get(key);
    const held = this.#guards.get(b.clientId);
    if (held?.commitment !== options.guard?.opens) return 'guard';
    if (this.#revokedClients.has(b.clientId) || existing?.revoked) return 'revoked';
    if (existing && existing.clientId !== b.clientId) return 'key-taken';
    const all = [...this.#bindings.values()];
    if (all.some((x) => x.userId !== b.userId && bytesEqual(x.identity, b.identity))) return 'identity-taken';
    if (options.newClient && all.some((x) => x.clientId === b.clientId)) return 'client-taken';
    const replaced = options.replacing && this.#bindings.get(toHex(options.replacing));
    if (options.replacing && (!replaced || replaced.clientId !== b.clientId || replaced.revoked)) return 'not-active';
    const keys = options.quota?.keys;
    if (!existing) {
      if (!replaced && keys !== undefined && all.filter((x) => x.clientId === b.clientId && !x.revoked).length >= keys) throw new StorageQuotaError(b.clientId, 'keys');
      // A rotation is counted, never refused (sqlite-store.ts).
      if (!replaced) this.#check(b.clientId, { bytes: bindingBytes(b), keyPackages: 0 }, options.quota);
      this.#count(b.clientId, bindingBytes(b));
    }
    if (replaced) {
      replaced.revoked = true;
      const next = options.guard?.next;
      if (held || next) for (const x of all) if (x.clientId === b.clientId && x !== existing) x.revoked = true;
      // And its KeyPackages, all of revoked keys (sqlite-store.ts).
      if ((held || next) && !existing) this.#dropExpired(b.clientId, Number.MAX_SAFE_INTEGER);
      if (next) this.#guards.set(b.clientId, { commitment: next, step: held ? held.step + 1 : 0 });
      else this.#guards.delete(b.clientId);
      this.#dropPairings(b.clientId);
    }
    this.#bindings.set(key, { ...b, revoked: false });
    return undefined;
  }

  /** Whether `key` is no active key of `clientId`. */
  #inactive(key: Uint8Array, clientId: string): boolean {
    const b = this.#bindings.get(toHex(key));
    return !b || b.revoked || b.clientId !== clientId;
  }

  async rotationGuard(clientId: string): Promise<{ step: number; commitment: string } | undefined> {
    const g = this.#guards.get(clientId);
    return g && { ...g };
  }

  async bindingByKey(signatureKey: Uint8Array): Promise<StoredBinding | undefined> {
    const b = this.#bindings.get(toHex(signatureKey));
    return b && { ...b };
  }

  async bindingsOf(clientId: string): Promise<StoredBinding[]> {
    return [...this.#bindings.values()].filter((b) => b.clientId === clientId).map((b) => ({ ...b }));
  }

  async activeBindingsOf(clientId: string, limit?: number): Promise<StoredBinding[]> {
    return [...this.#bindings.values()]
      .filter((b) => b.clientId === clientId && !b.revoked)
      .slice(0, limit)
      .map((b) => ({ ...b }));
  }

  async revokeClient(clientId: string, guard?: GuardChange): Promise<boolean> {
    if (guard && this.#guards.get(clientId)?.commitment !== guard.opens) return false;
    this.#revokedClients.add(clientId);
    this.#guards.delete(clientId);
    for (const b of this.#bindings.values()) if (b.clientId === clientId) b.revoked = true;
    this.#dropPairings(clientId);
    return true;
  }

  async clientRevoked(clientId: string): Promise<boolean> {
    return this.#revokedClients.has(clientId);
  }

  async revokeKey(clientId: string, signatureKey: Uint8Array): Promise<boolean> {
    const b = this.#bindings.get(toHex(signatureKey));
    if (!b || b.clientId !== clientId || b.revoked) return false;
    b.revoked = true;
    return true;
  }

  readonly #proofs = new Map<string, number>();

  async useProof(nonce: string, expires: number, now: number): Promise<boolean> {
    for (const [n, until] of this.#proofs) if (until < now - SPENT_PROOF_MARGIN_SECONDS) this.#proofs.delete(n);
    if (this.#proofs.has(nonce)) return false;
    this.#proofs.set(nonce, expires);
    return true;
  }

  async secret(name: string, fresh: Uint8Array): Promise<Uint8Array> {
    if (!this.#secrets.has(name)) this.#secrets.set(name, fresh.slice());
    return this.#secrets.get(name)!;
  }

  async getGroup(groupId: string): Promise<GroupRecord | undefined> {
    const g = this.#groups.get(groupId);
    return g && { ...g, members: [...g.members] };
  }

  async insertGroup(group: GroupRecord, quota?: StorageQuota): Promise<boolean> {
    if (this.#groups.has(group.groupId)) return false;
    return this.#putGroup(group, quota);
  }

  async claimReserved(group: GroupRecord, quota?: StorageQuota): Promise<boolean> {
    const held = this.#groups.get(group.groupId);
    if (held === undefined || !isReserved(held)) return false;
    const by = this.#recordBy.get(group.groupId);
    this.#putGroup(group, quota);
    // One row, one record: the reservation's goes back to the committer, the group's counts for its creator.
    if (by !== undefined) this.#count(by, -STORED_RECORD_BYTES);
    return true;
  }

  async claimDeleted(group: GroupRecord, quota?: StorageQuota): Promise<boolean> {
    const held = this.#groups.get(group.groupId);
    return held !== undefined && isDeleted(held) && held.members[0] === group.members[0] && this.#putGroup(group, quota);
  }

  async deleteGroup(groupId: string, member: string, options: DeleteGroupOptions): Promise<'deleted' | 'not-sole' | 'unknown'> {
    const g = this.#groups.get(groupId);
    if (!g || isDeleted(g) || !sameRegistration(g, options.registration) || (options.reserved && !isReserved(g))) return 'unknown';
    if (g.members.length !== 1 || g.members[0] !== member) return 'not-sole';
    for (const m of this.#logs.get(groupId) ?? []) this.#count(m.sender, -storedBytes(m.bytes.length));
    for (const [recipient, list] of this.#welcomes) {
      const kept = list.filter((w) => this.#welcomeBlobs.get(w.blob)?.groupId !== groupId);
      for (const w of list) if (!kept.includes(w)) this.#count(w.payer, -w.charge);
      if (kept.length > 0) this.#welcomes.set(recipient, kept);
      else this.#welcomes.delete(recipient);
    }
    for (const [id, b] of this.#welcomeBlobs) if (b.groupId === groupId) this.#welcomeBlobs.delete(id);
    const by = this.#groupInfoBy.get(groupId);
    if (by !== undefined) this.#count(by, -(g.groupInfo?.length ?? 0));
    // A record from before its payer was kept: its only member's.
    this.#count(this.#recordBy.get(groupId) ?? member, -STORED_RECORD_BYTES);
    for (const m of [this.#logs, this.#digests, this.#groupInfoBy, this.#recordBy, this.#epochProposals, this.#memberProposals, this.#proposals]) m.delete(groupId);
    for (const h of options.held(g.epoch)) this.#grants.delete(h);
    const kept = [...this.#groups.values()].filter((x) => isDeleted(x) && x.members[0] === member).length;
    if (kept < options.keep) this.#groups.set(groupId, deletedGroup(groupId, member));
    else this.#groups.delete(groupId);
    // Its streams read again, find no group and end.
    this.#notifier.notify(groupId, 0);
    return 'deleted';
  }

  async soleGroups(member: string, after: string, limit: number): Promise<string[]> {
    const ids = [...this.#groups.values()].filter((g) => !isDeleted(g) && g.members.length === 1 && g.members[0] === member && g.groupId > after).map((g) => g.groupId);
    return ids.sort().slice(0, limit);
  }

  #putGroup(group: GroupRecord, quota?: StorageQuota): boolean {
    const creator = group.members[0];
    const charge = storedBytes(group.groupInfo?.length ?? 0);
    if (creator !== undefined) this.#check(creator, { bytes: charge, keyPackages: 0 }, quota);
    this.#groups.set(group.groupId, { ...group, members: [...group.members] });
    if (creator !== undefined) {
      this.#count(creator, charge);
      this.#recordBy.set(group.groupId, creator);
      if (group.groupInfo) this.#groupInfoBy.set(group.groupId, creator);
    }
    return true;
  }

  async seqOf(groupId: string, digest: string): Promise<number | undefined> {
    return this.#digests.get(groupId)?.get(digest);
  }

  async proposalCounts(groupId: string, ids: string[]): Promise<Map<string, ProposalCount>> {
    const shares = this.#memberProposals.get(groupId);
    return new Map(ids.flatMap((id) => (shares?.has(id) ? [[id, { ...shares.get(id)! }] as const] : [])));
  }

  async append(posted: MessageToLog, update?: CommitUpdate, quota?: StorageQuota, budget?: EpochProposalBudget): Promise<number | undefined> {
    // Neither is stored with the message (postsFor is read from `posted` below).
    const { registration, postsFor, ...message } = posted;
    const group = this.#groups.get(message.groupId);
    // A deleted group's id takes nothing (a post that read the group before its deletion), nor another registration of it.
    if (!group || isDeleted(group) || !sameRegistration(group, registration)) return undefined;
    const known = message.digest ? this.#digests.get(message.groupId)?.get(message.digest) : undefined;
    if (known !== undefined) return known;
    // Checked with the write, no turn of the event loop between: a removal, a pairing's end or a ReInit since the DS's check refuses it.
    if (!takesPost({ members: group.members, retired: isRetired(group) }, posted, (anchor) => this.#pairings.get(anchor)?.has(message.sender) === true)) return undefined;
    const log = this.#logs.get(message.groupId) ?? [];
    const seq = (log.at(-1)?.seq ?? 0) + 1;
    if (update && (group.epoch !== update.expectEpoch || !sameMembers(group.members, update.expectMembers) || (update.lastSeq !== undefined && update.lastSeq !== seq - 1))) return undefined;
    if (!update && budget?.epoch !== undefined && group.epoch !== budget.epoch) return undefined;
    const shares = this.#memberProposals.get(message.groupId);
    const stored = { epoch: this.#epochProposals.get(message.groupId), member: budget?.member && shares?.get(budget.member.id), once: budget?.once !== undefined ? shares?.get(budget.once) : undefined };
    const proposals = budget && !update ? countProposalWithShare(message.groupId, group.epoch, stored, message.bytes.length, budget) : undefined;
    // What the sender's quota is asked for, checked before anything changes.
    const w = update?.welcome && update.welcome.recipients.length > 0 ? update.welcome : undefined;
    const max = w?.max ?? Infinity;
    for (const r of w?.recipients ?? []) if ((this.#welcomes.get(r)?.length ?? 0) >= max) throw new InboxFullError(r, max);
    if (update?.reserve && this.#groups.has(update.reserve.groupId)) throw new GroupIdTakenError(update.reserve.groupId);
    const replaced = update?.groupInfo && group.groupInfo ? { by: this.#groupInfoBy.get(message.groupId), bytes: group.groupInfo.length } : undefined;
    // The Welcome's parts count for their payers; only the sender's quota is asked (another's never refuses this commit).
    const welcomeFor = welcomeCharges(message.sender, w);
    let charge = storedBytes(message.bytes.length) + (update?.groupInfo?.length ?? 0) + (welcomeFor.get(message.sender) ?? 0) + (update?.reserve ? STORED_RECORD_BYTES : 0);
    welcomeFor.delete(message.sender);
    if (replaced?.by === message.sender) charge -= replaced.bytes;
    this.#check(message.sender, { bytes: charge, keyPackages: 0 }, quota);
    if (update) {
      if (update.setEpoch !== group.epoch) this.#memberProposals.delete(message.groupId);
      group.epoch = update.setEpoch;
      group.epochStart = seq;
      if (update.members) group.members = [...update.members];
      if (update.groupInfo) {
        group.groupInfo = update.groupInfo;
        if (replaced?.by !== undefined && replaced.by !== message.sender) this.#count(replaced.by, -replaced.bytes);
        this.#groupInfoBy.set(message.groupId, message.sender);
      }
      if (w) this.#putWelcome(w, message.groupId, message.sender);
      for (const [payer, n] of welcomeFor) this.#count(payer, n);
      if (update.reserve) this.#groups.set(update.reserve.groupId, reservedGroup(update.reserve));
      if (update.reserve) this.#recordBy.set(update.reserve.groupId, message.sender);
      for (const r of update.dropGrants ?? []) this.#grants.delete(r);
    }
    this.#count(message.sender, charge);
    if (proposals) {
      if (proposals.epoch) this.#epochProposals.set(message.groupId, proposals.epoch);
      if (budget?.member && proposals.member) this.#memberProposals.set(message.groupId, (shares ?? new Map()).set(budget.member.id, proposals.member));
      if (budget?.once !== undefined && proposals.once) this.#memberProposals.set(message.groupId, (this.#memberProposals.get(message.groupId) ?? new Map()).set(budget.once, proposals.once));
    }
    log.push({ ...message, seq });
    this.#logs.set(message.groupId, log);
    if (proposals) this.#proposals.set(message.groupId, this.#proposals.get(message.groupId) ?? []).get(message.groupId)!.push(log.at(-1)!);
    if (message.digest) {
      const digests = this.#digests.get(message.groupId) ?? new Map<string, number>();
      digests.set(message.digest, seq);
      this.#digests.set(message.groupId, digests);
    }
    this.#notifier.notify(message.groupId, seq);
    return seq;
  }

  async readLog(groupId: string, afterSeq: number, limit: number, maxBytes?: number): Promise<LoggedMessage[]> {
    return pageOf(this.#logs.get(groupId), afterSeq, limit, maxBytes);
  }

  async readProposals(groupId: string, afterSeq: number, limit: number, maxBytes?: number): Promise<{ messages: LoggedMessage[]; last: number }> {
    return { messages: pageOf(this.#proposals.get(groupId), afterSeq, limit, maxBytes), last: this.#logs.get(groupId)?.at(-1)?.seq ?? 0 };
  }

  #putWelcome(w: NonNullable<CommitUpdate['welcome']>, groupId: string, sender: string): void {
    const blob = ++this.#welcomeBlobIds;
    this.#welcomeBlobs.set(blob, { groupId, welcome: w.welcome, refs: w.recipients.length });
    const shares = welcomeShares(w.welcome.length, w.recipients.length);
    for (const [i, recipient] of w.recipients.entries()) {
      const list = this.#welcomes.get(recipient) ?? [];
      list.push({ id: ++this.#welcomeIds, blob, payer: w.payers?.[i] ?? sender, charge: shares[i]! });
      this.#welcomes.set(recipient, list);
    }
  }

  async pendingWelcomes(recipient: string, afterId = 0, limit = Number.MAX_SAFE_INTEGER, maxBytes = Infinity): Promise<PendingWelcome[]> {
    const page = (this.#welcomes.get(recipient) ?? [])
      .filter((w) => w.id > afterId)
      .slice(0, limit)
      .map((w) => {
        const blob = this.#welcomeBlobs.get(w.blob)!;
        return { id: w.id, groupId: blob.groupId, welcome: blob.welcome };
      });
    return page.slice(0, withinBytes(page.map((w) => w.welcome.length), maxBytes));
  }

  async countWelcomes(recipient: string): Promise<number> {
    return (this.#welcomes.get(recipient) ?? []).length;
  }

  async ackWelcomes(recipient: string, ids: number[]): Promise<void> {
    const list = this.#welcomes.get(recipient) ?? [];
    const kept = list.filter((w) => !ids.includes(w.id));
    for (const w of list) {
      if (!ids.includes(w.id)) continue;
      // Each reference counts for its payer until acknowledged; the bytes go with the last one.
      this.#count(w.payer, -w.charge);
      const blob = this.#welcomeBlobs.get(w.blob)!;
      if (--blob.refs === 0) this.#welcomeBlobs.delete(w.blob);
    }
    if (kept.length > 0) this.#welcomes.set(recipient, kept);
    else this.#welcomes.delete(recipient);
  }

  readonly #requests = new Map<string, Map<string, number>>();

  async requestPairing(anchor: string, device: string, side: 'anchor' | 'device', now: number, expiresBefore: number, by?: Uint8Array): Promise<boolean | 'not-active'> {
    if (by && this.#inactive(by, side === 'anchor' ? anchor : device)) return 'not-active';
    for (const [k, sides] of this.#requests) {
      for (const [s, at] of sides) if (at < expiresBefore) sides.delete(s);
      if (sides.size === 0) this.#requests.delete(k);
    }
    const key = `${anchor}\u0000${device}`;
    const sides = this.#requests.get(key) ?? new Map<string, number>();
    sides.set(side, now);
    this.#requests.set(key, sides);
    if (sides.size < 2) return false;
    this.#requests.delete(key);
    await this.putPairing(anchor, device);
    return true;
  }

  async prune(groupId: string, keep: number): Promise<void> {
    const log = this.#logs.get(groupId);
    if (!log || log.length <= keep) return;
    for (const m of log.splice(0, log.length - keep)) {
      this.#count(m.sender, -storedBytes(m.bytes.length));
      if (m.digest) this.#digests.get(groupId)?.delete(m.digest);
    }
    this.#proposals.set(groupId, (this.#proposals.get(groupId) ?? []).filter((m) => m.seq >= (log[0]?.seq ?? Infinity)));
  }

  async putPairing(anchor: string, device: string): Promise<void> {
    const set = this.#pairings.get(anchor) ?? new Set();
    set.add(device);
    this.#pairings.set(anchor, set);
  }

  async removePairing(anchor: string, device?: string): Promise<void> {
    this.#dropPairings(anchor, device);
  }

  /** removePairing without a turn of the event loop: inside another method's change, as the databases' transactions. */
  #dropPairings(anchor: string, device?: string): void {
    if (device !== undefined) this.#pairings.get(anchor)?.delete(device);
    else this.#pairings.delete(anchor);
    for (const k of this.#requests.keys()) if (k === `${anchor}\u0000${device}` || (device === undefined && k.startsWith(`${anchor}\u0000`))) this.#requests.delete(k);
  }

  async devicesOf(anchor: string): Promise<string[]> {
    return [...(this.#pairings.get(anchor) ?? [])];
  }

  async anchorsOf(device: string): Promise<string[]> {
    return [...this.#pairings].filter(([, devices]) => devices.has(device)).map(([anchor]) => anchor).sort();
  }
}
