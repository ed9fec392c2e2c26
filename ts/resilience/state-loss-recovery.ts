/**
 * Recovery after state loss (MLS architecture §6.6; docs/PROTOCOL.md §7.2).
 * A member that lost its group state rejoins as a new member (external
 * commit) and removes its old leaf. It proves prior membership with a
 * *recovery PSK* it exported while a member and kept apart from its group
 * state; the group accepts the rejoin only with that proof (a policy hook).
 *
 *   struct { opaque label<V> = "paired-mls recovery"; opaque group_id<V>;
 *            opaque identity<V>; uint64 epoch; uint32 leaf_index;
 *            opaque encryption_key<V>; } RecoveryPskId;
 *   value = MLS-Exporter("paired-mls recovery", RecoveryPskId, 32) at `epoch`.
 *
 * A proof names the issuer's leaf as it was (index and HPKE encryption
 * key): it is good only while that leaf is in the group unchanged, so a
 * removal, an update of the leaf (a commit with a path, an Update) or the
 * recovery itself (which removes the leaf) retires it.
 *
 * The issuer sends the proof to the group (a *registration*, encrypted, so
 * only members of that epoch learn it); every member checks it names the
 * sender's own leaf and is the exporter value. Members joining later get
 * the group's proofs from the member who added them (a *transfer*, taken
 * only from that member: `expectRecoveryTransfer`).
 */
import type { Identity, MlsClient } from '../mls/client.js';
import type { ApplicationMessage, Group, StagedCommit } from '../mls/group.js';
import type { Member } from '../mls/types.js';
import { MlsError, invalidArgument } from '../mls/errors.js';
import type { ProcessCheck } from '../mls/checks.js';
import { bytesEqual, fromHex, toHex } from '../mls/bytes.js';
import { CodecError, Reader, Writer } from '../codec/tls.js';

const LABEL = 'paired-mls recovery';
const RECORD = 'paired-mls/recovery-psks';
const TRANSFER_RECORD = 'paired-mls/recovery-transfer';
/** Version of the recovery message (2: kinds, proofs bound to a leaf; 1 is refused). */
const MESSAGE_VERSION = 2;
const REGISTRATION = 1;
const TRANSFER = 2;
const enc = new TextEncoder();

/** What the member keeps apart from its group state (e.g. in a backup or a vault). */
export interface RecoveryRecord {
  groupId: Uint8Array;
  identity: Uint8Array;
  pskId: Uint8Array;
  secret: Uint8Array;
}

/**
 * Why a recovery (or a recovery message) was refused.
 *
 * Recovery commits (code `INVALID_COMMIT`): `no-proof`, `unknown-proof`,
 * `identity-mismatch` (the proof is another identity's), `stale-proof` (the
 * leaf the proof names is no longer in the group as it was: removed,
 * updated, or already recovered), `policy` (the application's policy).
 * Recovery messages (code `INVALID_MESSAGE`): `forged-registration` (a
 * registration that does not name its sender's own current leaf, or whose
 * value is not the exporter's), `stale-registration` (sent in another epoch
 * than the receiver's current one: it cannot be checked), `malformed`.
 */
export type RecoveryRejection =
  | 'no-proof'
  | 'unknown-proof'
  | 'identity-mismatch'
  | 'stale-proof'
  | 'policy'
  | 'forged-registration'
  | 'stale-registration'
  | 'malformed';

const MESSAGE_REJECTIONS: ReadonlySet<RecoveryRejection> = new Set(['forged-registration', 'stale-registration', 'malformed']);

/**
 * A refused recovery or recovery message (docs/PROTOCOL.md §7.2), with the
 * reason: code `INVALID_COMMIT` for a recovery commit, `INVALID_MESSAGE`
 * for a registration (see `RecoveryRejection`).
 */
export class RecoveryError extends MlsError {
  readonly reason: RecoveryRejection;
  constructor(reason: RecoveryRejection, message: string) {
    super(MESSAGE_REJECTIONS.has(reason) ? 'INVALID_MESSAGE' : 'INVALID_COMMIT', `${message} (${reason})`);
    this.name = 'RecoveryError';
    this.reason = reason;
  }
}

/** The fields of a recovery PSK id. */
export interface RecoveryPskFields {
  groupId: Uint8Array;
  identity: Uint8Array;
  epoch: bigint;
  /** The issuer's leaf and its HPKE encryption key when the proof was issued. */
  leafIndex: number;
  encryptionKey: Uint8Array;
}

/** The PSK id of a recovery PSK for `identity`'s leaf `leafIndex` (with `encryptionKey`) in `groupId` at `epoch`. */
export function recoveryPskId(groupId: Uint8Array, identity: Uint8Array, epoch: number | bigint, leafIndex: number, encryptionKey: Uint8Array): Uint8Array {
  if (!Number.isInteger(leafIndex) || leafIndex < 0 || leafIndex > 0xffffffff) throw invalidArgument('leafIndex must be a leaf index');
  return new Writer().vector(enc.encode(LABEL)).vector(groupId).vector(identity).u64(BigInt(epoch)).u32(leafIndex).vector(encryptionKey).finish();
}

/** The fields of a recovery PSK id, or undefined when `id` is not one (of this version). */
export function parseRecoveryPskId(id: Uint8Array): RecoveryPskFields | undefined {
  try {
    const r = new Reader(id);
    if (new TextDecoder().decode(r.vector()) !== LABEL) return undefined;
    const out = { groupId: r.vector(), identity: r.vector(), epoch: r.u64(), leafIndex: r.u32(), encryptionKey: r.vector() };
    r.end();
    return out;
  } catch {
    return undefined;
  }
}

interface Entry {
  pskId: Uint8Array;
  secret: Uint8Array;
}

/** `struct { uint16 version = 2; opaque label<V>; uint8 kind; RecoveryEntry entries<V>; }` with `RecoveryEntry { opaque psk_id<V>; opaque secret<V>; }`; kind 1 registration, 2 transfer. */
function encodeMessage(kind: number, entries: Entry[]): Uint8Array {
  return new Writer().u16(MESSAGE_VERSION).vector(enc.encode(LABEL)).u8(kind).list(entries, (w, e) => w.vector(e.pskId).vector(e.secret)).finish();
}

/** Undefined: not a recovery message; 'malformed': one that does not decode (or of another version). */
function decodeMessage(bytes: Uint8Array): { kind: number; entries: Entry[] } | 'malformed' | undefined {
  try {
    const r = new Reader(bytes);
    const version = r.u16();
    if (new TextDecoder().decode(r.vector()) !== LABEL) return undefined;
    if (version !== MESSAGE_VERSION) return 'malformed';
    const kind = r.u8();
    const entries = r.list((x) => ({ pskId: x.vector(), secret: x.vector() }));
    r.end();
    return kind === REGISTRATION || kind === TRANSFER ? { kind, entries } : 'malformed';
  } catch (err) {
    if (err instanceof CodecError) return undefined;
    throw err;
  }
}

function readJson<T>(client: MlsClient, name: string): Record<string, T> {
  const raw = client.record(name);
  if (!raw) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(raw));
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new MlsError('STORAGE_FORMAT', `the record ${name} does not decode`);
  return parsed as Record<string, T>;
}

const HEX = /^(?:[0-9a-f]{2})+$/;

/** The registry: psk id (hex) → value (hex). */
function known(client: MlsClient): Record<string, string> {
  const all = readJson<unknown>(client, RECORD);
  for (const [id, secret] of Object.entries(all)) {
    if (!HEX.test(id) || typeof secret !== 'string' || !HEX.test(secret)) throw new MlsError('STORAGE_FORMAT', `the record ${RECORD} does not decode`);
  }
  return all as Record<string, string>;
}

/** The member at `leafIndex` if it still is the leaf `fields` names (same identity and encryption key). */
function liveLeaf(members: readonly Member[], fields: RecoveryPskFields): Member | undefined {
  const leaf = members.find((m) => m.leafIndex === fields.leafIndex);
  return leaf && bytesEqual(leaf.credential.identity, fields.identity) && bytesEqual(leaf.encryptionKey, fields.encryptionKey) ? leaf : undefined;
}

/**
 * Store `entries` (proofs of `group`) and prune this group's registry:
 * proofs whose leaf is no longer in the group as issued are dropped, and of
 * the proofs of one leaf only the newest is kept, so the registry holds at
 * most one proof per leaf. Proofs of other groups are left alone.
 */
async function remember(group: Group, entries: Entry[]): Promise<void> {
  const client = group.client;
  const all = known(client);
  for (const e of entries) all[toHex(e.pskId)] = toHex(e.secret);
  const members = group.members();
  const newest = new Map<number, { hex: string; epoch: bigint }>();
  const drop: string[] = [];
  for (const hex of Object.keys(all)) {
    const fields = parseRecoveryPskId(fromHex(hex));
    if (!fields) {
      drop.push(hex); // an id of an earlier version: no longer accepted
      continue;
    }
    if (!bytesEqual(fields.groupId, group.id)) continue;
    if (!liveLeaf(members, fields)) {
      drop.push(hex);
      continue;
    }
    const seen = newest.get(fields.leafIndex);
    if (!seen || fields.epoch > seen.epoch) {
      if (seen) drop.push(seen.hex);
      newest.set(fields.leafIndex, { hex, epoch: fields.epoch });
    } else drop.push(hex);
  }
  for (const hex of drop) {
    delete all[hex];
    await client.psks.delete(fromHex(hex));
  }
  for (const hex of Object.keys(all)) {
    if (entries.some((e) => toHex(e.pskId) === hex)) await client.psks.store(fromHex(hex), fromHex(all[hex]!));
  }
  await client.putRecord(RECORD, enc.encode(JSON.stringify(all)));
}

/**
 * Issue a recovery PSK for this member's own leaf at the current epoch.
 * Keep `record` apart from the group state; send `registration` to the
 * group. The proof names the leaf as it is now: issue a new one after
 * every commit of your own with a path (or an Update), which retires it.
 * `identity` must be the identity of this member's leaf.
 */
export async function issueRecoveryPsk(group: Group, identity: Identity): Promise<{ record: RecoveryRecord; registration: Uint8Array }> {
  const own = group.members().find((m) => m.leafIndex === group.ownLeafIndex);
  if (!own || !bytesEqual(own.credential.identity, identity.identity)) throw new RecoveryError('identity-mismatch', "a proof is issued for the identity of the member's own leaf");
  const pskId = recoveryPskId(group.id, own.credential.identity, group.epoch, own.leafIndex, own.encryptionKey);
  const secret = group.exportSecret(LABEL, pskId, 32);
  return group.client.atomically(async () => {
    await remember(group, [{ pskId, secret }]);
    const registration = await group.encrypt(encodeMessage(REGISTRATION, [{ pskId, secret }]));
    return { record: { groupId: group.id, identity: own.credential.identity, pskId, secret: secret.slice() }, registration };
  });
}

/**
 * A member that just joined takes the group's recovery proofs from the
 * member at leaf `from`, and from nobody else: after a Welcome, the member
 * that added it (`welcomeSender` of `MlsClient.joinFromWelcomeWithSender`);
 * after a recovery, a member it chooses. Call it right after joining; the
 * first transfer from that member (as it is now: same leaf, same signature
 * key) is then taken by `acceptRecoveryPsks`. Until then the member refuses
 * a recovery commit with `PSK_NOT_FOUND`, and may process it again later.
 */
export async function expectRecoveryTransfer(group: Group, from: number): Promise<void> {
  const adder = group.members().find((m) => m.leafIndex === from);
  if (!adder || from === group.ownLeafIndex) throw invalidArgument('from must be the leaf of another member of the group');
  const all = readJson<{ leaf: number; key: string }>(group.client, TRANSFER_RECORD);
  all[toHex(group.id)] = { leaf: from, key: toHex(adder.signatureKey) };
  await group.client.putRecord(TRANSFER_RECORD, enc.encode(JSON.stringify(all)));
}

/**
 * Members: handle a recovery message (`message`: the processed application
 * message, whose sender is checked; the bytes alone are refused with
 * `INVALID_ARGUMENT`). Returns false if it is not a recovery message (or
 * not an application message).
 *
 * - A registration is stored only if it is the sender's own proof: it
 *   names this group, the sender's current leaf (index, identity,
 *   encryption key) and the current epoch, and its value is the exporter's
 *   (`RecoveryError` `forged-registration`; one sent in another epoch:
 *   `stale-registration`; code `INVALID_MESSAGE`).
 * - A transfer is taken only by a member expecting one from its sender
 *   (`expectRecoveryTransfer`), once, and only its proofs of leaves in the
 *   group as named; any other member ignores it (returns true).
 */
export async function acceptRecoveryPsks(group: Group, message: ApplicationMessage): Promise<boolean> {
  if (ArrayBuffer.isView(message) || typeof message !== 'object' || message === null) {
    throw invalidArgument('pass the processed application message (group.process result): its sender is checked');
  }
  if (message.kind !== 'application') return false;
  const decoded = decodeMessage(message.data);
  if (decoded === undefined) return false;
  if (decoded === 'malformed') throw new RecoveryError('malformed', 'a recovery message that does not decode');
  if (message.sender.type !== 'member') throw new RecoveryError('forged-registration', 'a recovery message from a non-member');
  const senderLeaf = message.sender.leafIndex;
  if (decoded.kind === TRANSFER) return acceptTransfer(group, senderLeaf, decoded.entries);
  if (message.epoch !== group.epoch) throw new RecoveryError('stale-registration', 'a registration of another epoch cannot be checked; the issuer issues again');
  const sender = group.members().find((m) => m.leafIndex === senderLeaf);
  for (const e of decoded.entries) {
    const fields = parseRecoveryPskId(e.pskId);
    const own =
      fields !== undefined &&
      sender !== undefined &&
      bytesEqual(fields.groupId, group.id) &&
      fields.epoch === BigInt(message.epoch) &&
      fields.leafIndex === senderLeaf &&
      liveLeaf([sender], fields) !== undefined &&
      bytesEqual(e.secret, group.exportSecret(LABEL, e.pskId, 32));
    if (!own) throw new RecoveryError('forged-registration', "a registration that is not its sender's own proof of this epoch");
  }
  await group.client.atomically(() => remember(group, decoded.entries));
  return true;
}

async function acceptTransfer(group: Group, senderLeaf: number, entries: Entry[]): Promise<boolean> {
  const expected = readJson<{ leaf: number; key: string }>(group.client, TRANSFER_RECORD);
  const from = expected[toHex(group.id)];
  const sender = group.members().find((m) => m.leafIndex === senderLeaf);
  if (!from || from.leaf !== senderLeaf || !sender || toHex(sender.signatureKey) !== from.key) return true; // not for this member
  const members = group.members();
  const live = entries.filter((e) => {
    const fields = parseRecoveryPskId(e.pskId);
    return fields !== undefined && bytesEqual(fields.groupId, group.id) && liveLeaf(members, fields) !== undefined && e.secret.length === 32;
  });
  delete expected[toHex(group.id)];
  await group.client.atomically(async () => {
    await group.client.putRecord(TRANSFER_RECORD, enc.encode(JSON.stringify(expected)));
    await remember(group, live);
  });
  return true;
}

/** The member who added others sends them the group's recovery PSKs (an application message; only the new members take it). */
export function transferRecoveryPsks(group: Group): Promise<Uint8Array> {
  const members = group.members();
  const entries = Object.entries(known(group.client))
    .map(([id, secret]) => ({ pskId: fromHex(id), secret: fromHex(secret), fields: parseRecoveryPskId(fromHex(id)) }))
    .filter((e) => e.fields !== undefined && bytesEqual(e.fields.groupId, group.id) && liveLeaf(members, e.fields) !== undefined)
    .map(({ pskId, secret }) => ({ pskId, secret }));
  return group.encrypt(encodeMessage(TRANSFER, entries));
}

/**
 * After state loss: rejoin by external commit with the recovery PSK (on a
 * fresh client with a new signature key), then remove the old leaf the
 * proof names (and no other). Returns both commits, in order; send them in
 * that order. (The core lets an external commit remove only a leaf with
 * the joiner's own signature key, so the removal is a second commit.)
 * Refused locally (`RecoveryError` `stale-proof`, nothing kept) when the
 * leaf the proof names is no longer in the group as it was. Afterwards the
 * recovered member holds no proofs of the others: it takes them by transfer
 * from a member it chooses (`expectRecoveryTransfer`; that member sends
 * `transferRecoveryPsks`) and issues a proof of its own.
 */
export async function recoverMembership(client: MlsClient, identity: Identity, groupInfo: Uint8Array, record: RecoveryRecord): Promise<{ group: Group; commits: Uint8Array[] }> {
  if (!bytesEqual(identity.identity, record.identity)) throw new RecoveryError('identity-mismatch', 'the record belongs to another identity');
  const fields = parseRecoveryPskId(record.pskId);
  if (!fields || !bytesEqual(fields.identity, record.identity)) throw invalidArgument('the record does not hold a recovery proof of this version');
  return client.atomically(async () => {
    await client.psks.store(record.pskId, record.secret);
    const { group, commit } = await client.joinExternal(groupInfo, identity, { psks: [record.pskId] });
    if (group.state().pendingCommit) await group.mergePendingCommit();
    await client.psks.delete(record.pskId);
    const old = liveLeaf(group.members(), fields);
    if (!old || old.leafIndex === group.ownLeafIndex) throw new RecoveryError('stale-proof', 'the leaf the proof names is no longer in the group as it was');
    const removal = await group.commit({ remove: [old.leafIndex] });
    await group.mergePendingCommit();
    return { group, commits: [commit, removal.commit] };
  });
}

/**
 * Application policy on top of the proof checks (which it cannot relax):
 * return false to refuse (`RecoveryError` `policy`). `proof` names the
 * proof's identity, the epoch it was issued in and the leaf it replaces.
 */
export type RecoveryPolicy = (joiner: Uint8Array, proof: { identity: Uint8Array; issuedAtEpoch: bigint; leafIndex: number }) => boolean;

/**
 * Receivers: an external commit (a new member joining) is accepted only as
 * a recovery with a valid proof: a PSK proposal naming a recovery PSK this
 * member knows, issued for the joiner's identity, for a leaf still in the
 * group as it was when the proof was issued; then the application's
 * policy. (A wrong PSK value never gets here: the commit does not
 * process.) Throws `RecoveryError`.
 */
function checkRecoveryCommit(group: Group, staged: StagedCommit, policy?: RecoveryPolicy): void {
  if (staged.committer.type !== 'newMemberCommit') return;
  const joiner = staged.pathCredential?.identity;
  const proofs = staged.psks.map((p) => ({ p, id: parseRecoveryPskId(p.pskId) })).filter((x) => x.id && bytesEqual(x.id.groupId, group.id));
  if (!joiner || proofs.length === 0) throw new RecoveryError('no-proof', 'an external join without a recovery proof');
  const registry = known(group.client);
  const members = group.members();
  for (const { p, id } of proofs) {
    if (!registry[toHex(p.pskId)]) throw new RecoveryError('unknown-proof', 'the recovery PSK is not one this group issued');
    if (!bytesEqual(joiner, id!.identity)) throw new RecoveryError('identity-mismatch', 'the proof was issued to someone else');
    if (!liveLeaf(members, id!)) throw new RecoveryError('stale-proof', 'the leaf the proof names is no longer in the group as it was');
    if (policy && !policy(joiner, { identity: id!.identity, issuedAtEpoch: id!.epoch, leafIndex: id!.leafIndex })) {
      throw new RecoveryError('policy', "the application's recovery policy refused the proof");
    }
  }
}

/**
 * The process check of state-loss recovery (`admit` stage; docs/PROTOCOL.md
 * §7.2, §1.3): an external commit is accepted only as a recovery with a
 * valid proof (`checkRecoveryCommit`), and then only if `policy` (when
 * given) agrees; `policy` adds to the proof checks and cannot relax them.
 * Use it per group (`group.useChecks([recoveryPolicy()])`), per client or
 * per call; a refused commit is discarded (`RecoveryError`).
 */
export function recoveryPolicy(policy?: RecoveryPolicy): ProcessCheck {
  if (policy !== undefined && typeof policy !== 'function') throw invalidArgument('policy must be a function');
  return { name: 'resilience/recovery-policy', stage: 'admit', commit: ({ group, staged }) => checkRecoveryCommit(group, staged, policy) };
}
