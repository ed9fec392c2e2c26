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
 *
 * A group's registry and expected transfer are group records of that
 * group, and its proofs PSKs bound to it (`client.psks.store(…, { group })`):
 * `deleteGroup` deletes them all in its batch. An earlier release kept them
 * in two client-wide records, which the next call here moves (`migrate`).
 */
import type { Identity, MlsClient } from '../mls/client.js';
import type { ApplicationMessage, Group, StagedCommit } from '../mls/group.js';
import type { JoinOptions, Member } from '../mls/types.js';
import { MlsError, invalidArgument } from '../mls/errors.js';
import type { ProcessCheck } from '../mls/checks.js';
import { bytesEqual, fromHex, toHex } from '../mls/bytes.js';
import { CodecError, Reader, Writer } from '../codec/tls.js';
import type { ForkFollower } from './fork-follower.js';

const LABEL = 'paired-mls recovery';
/** Group record: the group's registry, psk id (hex) → value (hex); before, a client-wide record of every group's (same name). */
const RECORD = 'paired-mls/recovery-psks';
/** Group record: `<leaf>:<signature key hex>` of the member a transfer is expected from; before, client-wide, group hex → that. */
const TRANSFER_RECORD = 'paired-mls/recovery-transfer';
/**
 * Group record: `<epoch>:<count>`, the epoch of the transfer message last
 * taken (a fork switch keeps a transfer of an epoch both branches share)
 * and how many takes this is (before, the epoch alone: two takes of
 * messages of one epoch left the same record, and a switch took the second
 * for no take). An earlier release stored the epoch alone.
 */
const TAKEN_RECORD = 'paired-mls/recovery-transfer-taken';
/** Message kinds (version 2; version 1 is refused). */
const REGISTRATION = 1;
const TRANSFER = 2;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** What the member keeps apart from its group state (e.g. in a backup or a vault). */
export interface RecoveryRecord {
  groupId: Uint8Array;
  identity: Uint8Array;
  pskId: Uint8Array;
  secret: Uint8Array;
}

/** Why a recovery commit (code `INVALID_COMMIT`) or a recovery message (the last three, `INVALID_MESSAGE`) was refused (docs/PROTOCOL.md §7.2). */
export type RecoveryRejection =
  | 'no-proof'
  | 'unknown-proof'
  | 'identity-mismatch'
  | 'stale-proof'
  | 'policy'
  | 'forged-registration'
  | 'stale-registration'
  | 'malformed';

/** A refused recovery or recovery message, with the reason (docs/PROTOCOL.md §7.2). */
export class RecoveryError extends MlsError {
  readonly reason: RecoveryRejection;
  constructor(reason: RecoveryRejection, message = 'recovery refused') {
    super(/registration|malformed/.test(reason) ? 'INVALID_MESSAGE' : 'INVALID_COMMIT', `${message} (${reason})`);
    this.name = 'RecoveryError';
    this.reason = reason;
  }
}

/** The fields of a recovery PSK id: the issuer's leaf (index, encryption key) when the proof was issued. */
export interface RecoveryPskFields {
  groupId: Uint8Array;
  identity: Uint8Array;
  epoch: bigint;
  leafIndex: number;
  encryptionKey: Uint8Array;
}

/** The PSK id of a recovery PSK (docs/PROTOCOL.md §7.2). */
export function recoveryPskId(groupId: Uint8Array, identity: Uint8Array, epoch: number | bigint, leafIndex: number, encryptionKey: Uint8Array): Uint8Array {
  return new Writer().vector(enc.encode(LABEL)).vector(groupId).vector(identity).u64(epoch).u32(leafIndex).vector(encryptionKey).finish();
}

/** The fields of a recovery PSK id, or undefined when `id` is not one. */
export function parseRecoveryPskId(id: Uint8Array): RecoveryPskFields | undefined {
  try {
    const r = new Reader(id);
    if (dec.decode(r.vector()) !== LABEL) return undefined;
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

/** `struct { uint16 version = 2; opaque label<V>; uint8 kind; RecoveryEntry entries<V>; }`, `RecoveryEntry { opaque psk_id<V>; opaque secret<V>; }`. */
function encodeMessage(kind: number, entries: Entry[]): Uint8Array {
  return new Writer().u16(2).vector(enc.encode(LABEL)).u8(kind).list(entries, (w, e) => w.vector(e.pskId).vector(e.secret)).finish();
}

/** Undefined: not a recovery message; 'malformed': ours (the label), but it does not decode, or another version or kind. */
function decodeMessage(bytes: Uint8Array): { kind: number; entries: Entry[] } | 'malformed' | undefined {
  const r = new Reader(bytes);
  let ours = false;
  try {
    const version = r.u16();
    if (dec.decode(r.vector()) !== LABEL) return undefined;
    ours = true;
    const kind = version === 2 ? r.u8() : 0;
    const entries = r.list((x) => ({ pskId: x.vector(), secret: x.vector() }));
    r.end();
    return kind === REGISTRATION || kind === TRANSFER ? { kind, entries } : 'malformed';
  } catch (err) {
    if (err instanceof CodecError) return ours ? 'malformed' : undefined;
    throw err;
  }
}

function readJson(raw: Uint8Array | undefined, name: string): Record<string, string> {
  try {
    return raw ? { ...JSON.parse(dec.decode(raw)) } : {};
  } catch {
    throw new MlsError('STORAGE_FORMAT', `record ${name} does not decode`);
  }
}

/** The group of a registry entry of the earlier client-wide record (hex), if it is a proof. */
const groupOfEntry = (pskHex: string) => {
  const f = parseRecoveryPskId(fromHex(pskHex));
  return f && toHex(f.groupId);
};

/**
 * The group's registry: psk id (hex) → value (hex), with the group's
 * entries an earlier release's client-wide record still holds (until
 * `migrate` moved them: a process check reads, it cannot write).
 */
function known(group: Group): Record<string, string> {
  const gid = toHex(group.id);
  const legacy = Object.entries(readJson(group.client.record(RECORD), RECORD)).filter(([id]) => groupOfEntry(id) === gid);
  return { ...Object.fromEntries(legacy), ...readJson(group.client.groupRecord(group.id, RECORD), RECORD) };
}

/** Whom the group's member expects a transfer from (`<leaf>:<key hex>`), if anyone; also from the earlier client-wide record. */
function expectedSender(group: Group): string | undefined {
  const raw = group.client.groupRecord(group.id, TRANSFER_RECORD);
  return raw ? dec.decode(raw) : readJson(group.client.record(TRANSFER_RECORD), TRANSFER_RECORD)[toHex(group.id)];
}

/**
 * Move what an earlier release kept in the two client-wide records into
 * group records, once (the records are deleted): entries of a group the
 * client holds become its group records and their PSKs are bound to it;
 * those of a group no longer held (deleted meanwhile) go, their PSKs
 * deleted from the core's store; those of a group set aside at open
 * (§2.6) stay in the old record until it can be read again.
 */
async function migrate(client: MlsClient): Promise<void> {
  const oldPsks = client.record(RECORD);
  const oldTransfers = client.record(TRANSFER_RECORD);
  if (!oldPsks && !oldTransfers) return;
  const held = new Set(client.groupIds().map(toHex));
  const usable = (hex: string) => {
    if (!held.has(hex)) return false;
    try {
      client.group(fromHex(hex));
      return true;
    } catch {
      return undefined; // set aside: kept for later
    }
  };
  const keep: [Record<string, string>, Record<string, string>] = [{}, {}];
  const registries = new Map<string, Record<string, string>>();
  for (const [id, secret] of Object.entries(readJson(oldPsks, RECORD))) {
    const hex = groupOfEntry(id);
    const ok = hex === undefined ? false : usable(hex);
    if (ok === undefined) keep[0][id] = secret;
    else if (ok) registries.set(hex!, { ...registries.get(hex!), [id]: secret });
    else await client.psks.delete(fromHex(id));
  }
  for (const [hex, entries] of registries) {
    const groupId = fromHex(hex);
    const now = { ...entries, ...readJson(client.groupRecord(groupId, RECORD), RECORD) };
    for (const id of Object.keys(entries)) await client.psks.store(fromHex(id), fromHex(entries[id]!), { group: groupId });
    await client.putGroupRecord(groupId, RECORD, enc.encode(JSON.stringify(now)));
  }
  for (const [hex, from] of Object.entries(readJson(oldTransfers, TRANSFER_RECORD))) {
    const ok = usable(hex);
    if (ok === undefined) keep[1][hex] = from;
    else if (ok && !client.groupRecord(fromHex(hex), TRANSFER_RECORD)) await client.putGroupRecord(fromHex(hex), TRANSFER_RECORD, enc.encode(from));
  }
  const rest = (o: Record<string, string>) => (Object.keys(o).length > 0 ? enc.encode(JSON.stringify(o)) : undefined);
  await client.putRecord(RECORD, rest(keep[0]));
  await client.putRecord(TRANSFER_RECORD, rest(keep[1]));
}

/**
 * The registry (its PSKs with it) and the expected transfer are not part of
 * the group state a fork switch restores: a `ForkResolver` keeps them as each
 * window opens and puts them back on a switch there, so what a losing
 * branch stored or pruned is undone (§7.2), except a transfer it took:
 * in an epoch both branches share, its proofs of those epochs stay. Before, a registration taken
 * there pruned proofs the winner kept; then the layer refused recovery
 * messages while a window was open, which a member committing more often
 * than the window kept refused for good.
 */
type Records = { registry: Record<string, string>; transfer: string | undefined; takenAt: string | undefined };
const takenAt = (group: Group) => {
  const raw = group.client.groupRecord(group.id, TAKEN_RECORD);
  return raw && dec.decode(raw);
};
/** The epoch a transfer-taken record names. */
const takenEpoch = (taken: string) => Number(taken.split(':')[0]);
/** The record of a take of a message of `epoch`, after the one stored (each take's differs from the one before). */
const nextTaken = (group: Group, epoch: number) => `${epoch}:${Number(takenAt(group)?.split(':')[1] ?? 0) + 1}`;
export const recoveryRecords: ForkFollower = {
  keep: (group): Records => ({ registry: known(group), transfer: expectedSender(group), takenAt: takenAt(group) }),
  restore: async (group, kept, left) => {
    let { registry, transfer, takenAt: taken } = kept as Records;
    // The transfer the branch left took in an epoch both branches share:
    // its proofs (of that epoch or before) are the same values here, and
    // its message, read there, is not readable again (engine change 28).
    // Before, the switch put back the empty registry and the expected
    // transfer: the new member refused every recovery for good
    // (PSK_NOT_FOUND). One taken in a later epoch is undone: its sender
    // sends the winner's proofs again.
    // A take on the branch left is one since the branches parted: a record
    // of an earlier take (the branch left restored to before an expectation
    // this branch set) passed for one, and this branch's was dropped.
    const from = left?.kept as Records | undefined;
    const base = left?.base as Records | undefined;
    const took = left !== undefined && transfer !== undefined && from!.transfer === undefined && from!.takenAt !== undefined && from!.takenAt !== base!.takenAt && takenEpoch(from!.takenAt) <= left.shared;
    if (took) {
      const shared = Object.entries(from!.registry).filter(([hex]) => (parseRecoveryPskId(fromHex(hex))?.epoch ?? BigInt(left.shared) + 1n) <= BigInt(left.shared));
      registry = { ...Object.fromEntries(shared), ...registry };
      [transfer, taken] = [undefined, from!.takenAt];
    }
    const { client } = group;
    // Nothing stored since (the common case, and junk that failed): no write.
    if (JSON.stringify(known(group)) === JSON.stringify(registry) && expectedSender(group) === transfer && takenAt(group) === taken) return;
    await client.atomically(async () => {
      const now = known(group);
      for (const hex of Object.keys(now)) if (!(hex in registry)) await client.psks.delete(fromHex(hex));
      for (const [hex, value] of Object.entries(registry)) if (now[hex] !== value) await client.psks.store(fromHex(hex), fromHex(value), { group: group.id });
      await client.putGroupRecord(group.id, RECORD, Object.keys(registry).length > 0 ? enc.encode(JSON.stringify(registry)) : undefined);
      await client.putGroupRecord(group.id, TRANSFER_RECORD, transfer === undefined ? undefined : enc.encode(transfer));
      await client.putGroupRecord(group.id, TAKEN_RECORD, taken === undefined ? undefined : enc.encode(taken));
      // What the transfer brought, pruned against this branch (a leaf it removed or changed, the newest proof per leaf).
      if (took) await remember(group, []);
    });
  },
};

/** The fields of `pskId` if it is a proof of `group` naming a leaf of `members` as it is (index, identity, encryption key). */
function liveProof(group: Group, members: readonly Member[], pskId: Uint8Array): RecoveryPskFields | undefined {
  const f = parseRecoveryPskId(pskId);
  const leaf = f && members.find((m) => m.leafIndex === f.leafIndex);
  return leaf && bytesEqual(f.groupId, group.id) && bytesEqual(leaf.credential.identity, f.identity) && bytesEqual(leaf.encryptionKey, f.encryptionKey) ? f : undefined;
}

/**
 * Store `entries` (proofs of `group`) and prune this group's registry:
 * proofs whose leaf is no longer in the group as named are dropped, and of
 * the proofs of one leaf only the newest is kept. Other groups' proofs stay.
 */
async function remember(group: Group, entries: Entry[]): Promise<void> {
  const { client } = group;
  await migrate(client);
  const all = known(group);
  for (const e of entries) all[toHex(e.pskId)] = toHex(e.secret);
  const members = group.members();
  const newest = new Map<number, [string, bigint]>();
  const drop: string[] = [];
  for (const hex of Object.keys(all)) {
    const f = parseRecoveryPskId(fromHex(hex));
    if (!f || !liveProof(group, members, fromHex(hex))) {
      drop.push(hex); // dead, or of an earlier version
      continue;
    }
    const seen = newest.get(f.leafIndex);
    if (seen && seen[1] >= f.epoch) drop.push(hex);
    else {
      if (seen) drop.push(seen[0]);
      newest.set(f.leafIndex, [hex, f.epoch]);
    }
  }
  for (const hex of drop) {
    delete all[hex];
    await client.psks.delete(fromHex(hex));
  }
  // Bound to the group: deleteGroup deletes them with it.
  for (const e of entries) if (all[toHex(e.pskId)]) await client.psks.store(e.pskId, e.secret, { group: group.id });
  await client.putGroupRecord(group.id, RECORD, Object.keys(all).length > 0 ? enc.encode(JSON.stringify(all)) : undefined);
}

/**
 * Issue a recovery PSK for this member's own leaf (`identity` is its
 * identity); keep `record` apart from the group state, send
 * `registration`. Issue again after each change of its leaf (§7.2).
 */
export async function issueRecoveryPsk(group: Group, identity: Identity): Promise<{ record: RecoveryRecord; registration: Uint8Array }> {
  const own = group.ownLeaf();
  if (!own || !bytesEqual(own.credential.identity, identity.identity)) throw new RecoveryError('identity-mismatch');
  const pskId = recoveryPskId(group.id, own.credential.identity, group.epoch, own.leafIndex, own.encryptionKey);
  const secret = group.exportSecret(LABEL, pskId, 32);
  return group.client.atomically(async () => {
    await remember(group, [{ pskId, secret }]);
    const registration = await group.encrypt(encodeMessage(REGISTRATION, [{ pskId, secret }]));
    return { record: { groupId: group.id, identity: own.credential.identity, pskId, secret }, registration };
  });
}

/**
 * A member that just joined takes the group's proofs only from the member
 * at leaf `from`: its adder (`welcomeSender`), or after a recovery a member
 * it chooses; once (docs/PROTOCOL.md §7.2).
 */
export async function expectRecoveryTransfer(group: Group, from: number): Promise<void> {
  const adder = Number.isInteger(from) && from >= 0 && from <= 0xffffffff ? group.member(from) : undefined;
  if (!adder || from === group.ownLeafIndex) throw invalidArgument('from: not another member');
  const { client } = group;
  await client.atomically(async () => {
    await migrate(client);
    await client.putGroupRecord(group.id, TRANSFER_RECORD, enc.encode(`${from}:${toHex(adder.signatureKey)}`));
  });
}

/**
 * Members: handle a processed application message; false if it is not a
 * recovery message. A registration is stored only if it is its sender's
 * own proof of this epoch (else `RecoveryError`); a transfer only by a
 * member expecting it from the sender (docs/PROTOCOL.md §7.2).
 */
export async function acceptRecoveryPsks(group: Group, message: ApplicationMessage): Promise<boolean> {
  if (ArrayBuffer.isView(message) || !message) throw invalidArgument('pass the processed message');
  const decoded = message.kind === 'application' ? decodeMessage(message.data) : undefined;
  if (!decoded) return false;
  if (decoded === 'malformed') throw new RecoveryError('malformed');
  const { sender, epoch } = message;
  if (sender.type !== 'member') throw new RecoveryError('forged-registration');
  const senderMember = group.member(sender.leafIndex);
  const from = senderMember ? [senderMember] : [];
  const client = group.client;
  if (decoded.kind === TRANSFER) {
    if (from[0] && expectedSender(group) === `${sender.leafIndex}:${toHex(from[0].signatureKey)}`) {
      const members = group.members();
      await client.atomically(async () => {
        await migrate(client);
        await client.putGroupRecord(group.id, TRANSFER_RECORD, undefined);
        await client.putGroupRecord(group.id, TAKEN_RECORD, enc.encode(nextTaken(group, epoch)));
        await remember(
          group,
          // An entry of a later epoch than this one cannot be genuine, and as the newest it would keep out the issuer's next proof.
          decoded.entries.filter((e) => e.secret.length === 32 && (liveProof(group, members, e.pskId)?.epoch ?? BigInt(group.epoch) + 1n) <= BigInt(group.epoch)),
        );
      });
    }
    return true; // a transfer for someone else is ignored
  }
  if (epoch !== group.epoch) throw new RecoveryError('stale-registration');
  for (const e of decoded.entries) {
    const f = liveProof(group, from, e.pskId);
    if (!f || f.epoch !== BigInt(epoch) || !bytesEqual(e.secret, group.exportSecret(LABEL, e.pskId, 32))) throw new RecoveryError('forged-registration');
  }
  await client.atomically(() => remember(group, decoded.entries));
  return true;
}

/** The group's live recovery PSKs, for members that joined (an application message). */
export function transferRecoveryPsks(group: Group): Promise<Uint8Array> {
  const members = group.members();
  const entries = Object.entries(known(group))
    .map(([id, secret]) => ({ pskId: fromHex(id), secret: fromHex(secret) }))
    .filter((e) => liveProof(group, members, e.pskId));
  return group.encrypt(encodeMessage(TRANSFER, entries));
}

/**
 * After state loss, on a fresh client with a new signature key: rejoin by
 * external commit with the proof, then remove the leaf it names. Send both
 * commits in order (docs/PROTOCOL.md §7.2). `options`: the group's join
 * options (its wire format, the leaf's capabilities), which the lost state
 * held; without them the defaults.
 */
export async function recoverMembership(
  client: MlsClient,
  identity: Identity,
  groupInfo: Uint8Array,
  record: RecoveryRecord,
  options: JoinOptions = {},
): Promise<{ group: Group; commits: Uint8Array[] }> {
  if (!bytesEqual(identity.identity, record.identity)) throw new RecoveryError('identity-mismatch');
  if (!parseRecoveryPskId(record.pskId)) throw invalidArgument('not a recovery record');
  return client.atomically(async () => {
    await client.psks.store(record.pskId, record.secret);
    const { group, commit } = await client.joinExternal(groupInfo, identity, { ...options, psks: [record.pskId] });
    if (group.state().pendingCommit) await group.mergePendingCommit();
    await client.psks.delete(record.pskId);
    const old = liveProof(group, group.members(), record.pskId);
    if (!old || old.leafIndex === group.ownLeafIndex || !bytesEqual(old.identity, record.identity)) throw new RecoveryError('stale-proof');
    const removal = await group.commit({ remove: [old.leafIndex] });
    await group.mergePendingCommit();
    return { group, commits: [commit, removal.commit] };
  });
}

/** Application policy on top of the proof checks (it cannot relax them): false refuses (`policy`). */
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
  const proofs = staged.psks.filter((p) => bytesEqual(parseRecoveryPskId(p.pskId)?.groupId ?? enc.encode(''), group.id));
  if (!joiner || proofs.length === 0) throw new RecoveryError('no-proof');
  const registry = known(group);
  const members = group.members();
  // A joiner whose external commit removes a leaf (the core's resync: a leaf with the joiner's own signature key) holds that leaf's key: it is that leaf, or a copy of its state. It may present only that leaf's proof. Before, the copy of a healed leaf presented the live proof of another leaf of its identity (the same user's other device) and was in again, both leaves out (docs/PROTOCOL.md §7.2).
  const removed = staged.removes.map((r) => r.leafIndex);
  for (const { pskId } of proofs) {
    const id = parseRecoveryPskId(pskId)!;
    if (!registry[toHex(pskId)]) throw new RecoveryError('unknown-proof');
    if (!bytesEqual(joiner, id.identity) || (removed.length > 0 && !removed.includes(id.leafIndex))) throw new RecoveryError('identity-mismatch');
    if (!liveProof(group, members, pskId)) throw new RecoveryError('stale-proof');
    if (policy && !policy(joiner, { identity: id.identity, issuedAtEpoch: id.epoch, leafIndex: id.leafIndex })) throw new RecoveryError('policy');
  }
}

/**
 * The process check of state-loss recovery (`admit` stage; docs/PROTOCOL.md
 * §7.2, §1.3): an external commit is accepted only as a recovery with a
 * valid proof, then only if `policy` agrees (`RecoveryError` otherwise).
 */
export function recoveryPolicy(policy?: RecoveryPolicy): ProcessCheck {
  return { name: 'resilience/recovery-policy', stage: 'admit', commit: ({ group, staged }) => checkRecoveryCommit(group, staged, policy) };
}
