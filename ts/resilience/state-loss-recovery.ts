/**
 * Recovery after state loss (MLS architecture §6.6; docs/PROTOCOL.md §7.2).
 * A member that lost its group state rejoins as a new member (external
 * commit) and removes its old leaf. It proves prior membership with a
 * *recovery PSK* it exported while a member and kept apart from its group
 * state; the group accepts the rejoin only with that proof (a policy hook).
 *
 *   struct { opaque label<V> = "paired-mls recovery"; opaque group_id<V>;
 *            opaque identity<V>; uint64 epoch; } RecoveryPskId;
 *   value = MLS-Exporter("paired-mls recovery", RecoveryPskId, 32) at `epoch`.
 *
 * The issuer sends the value to the group (encrypted, so only members of
 * that epoch learn it); members joining later get it from the member who
 * adds them (`transferRecoveryPsks`).
 */
import type { Identity, MlsClient } from '../mls/client.js';
import type { Group, StagedCommit } from '../mls/group.js';
import { MlsError } from '../mls/errors.js';
import type { ProcessCheck } from '../mls/checks.js';
import { bytesEqual, fromHex, toHex } from '../mls/bytes.js';
import { CodecError, Reader, Writer } from '../codec/tls.js';

const LABEL = 'paired-mls recovery';
const RECORD = 'paired-mls/recovery-psks';
const enc = new TextEncoder();

/** What the member keeps apart from its group state (e.g. in a backup or a vault). */
export interface RecoveryRecord {
  groupId: Uint8Array;
  identity: Uint8Array;
  pskId: Uint8Array;
  secret: Uint8Array;
}

/** Why a recovery was refused. */
export type RecoveryRejection = 'no-proof' | 'unknown-proof' | 'identity-mismatch' | 'policy';

/** A refused recovery (docs/PROTOCOL.md §7.2), with the reason. */
export class RecoveryError extends MlsError {
  readonly reason: RecoveryRejection;
  constructor(reason: RecoveryRejection, message: string) {
    super('INVALID_COMMIT', `${message} (${reason})`);
    this.name = 'RecoveryError';
    this.reason = reason;
  }
}

/** The PSK id of a recovery PSK for `identity` in `groupId` at `epoch`. */
export function recoveryPskId(groupId: Uint8Array, identity: Uint8Array, epoch: number | bigint): Uint8Array {
  return new Writer().vector(enc.encode(LABEL)).vector(groupId).vector(identity).u64(BigInt(epoch)).finish();
}

/** The fields of a recovery PSK id, or undefined when `id` is not one. */
export function parseRecoveryPskId(id: Uint8Array): { groupId: Uint8Array; identity: Uint8Array; epoch: bigint } | undefined {
  try {
    const r = new Reader(id);
    if (new TextDecoder().decode(r.vector()) !== LABEL) return undefined;
    const out = { groupId: r.vector(), identity: r.vector(), epoch: r.u64() };
    r.end();
    return out;
  } catch {
    return undefined;
  }
}

/** `struct { uint16 version = 1; RecoveryEntry entries<V>; }` with `RecoveryEntry { opaque psk_id<V>; opaque secret<V>; }` */
function encodeEntries(entries: { pskId: Uint8Array; secret: Uint8Array }[]): Uint8Array {
  return new Writer().u16(1).vector(enc.encode(LABEL)).list(entries, (w, e) => w.vector(e.pskId).vector(e.secret)).finish();
}

function decodeEntries(bytes: Uint8Array): { pskId: Uint8Array; secret: Uint8Array }[] | undefined {
  try {
    const r = new Reader(bytes);
    if (r.u16() !== 1 || new TextDecoder().decode(r.vector()) !== LABEL) return undefined;
    const entries = r.list((x) => ({ pskId: x.vector(), secret: x.vector() }));
    r.end();
    return entries;
  } catch (err) {
    if (err instanceof CodecError) return undefined;
    throw err;
  }
}

function known(client: MlsClient): Record<string, string> {
  const raw = client.record(RECORD);
  return raw ? (JSON.parse(new TextDecoder().decode(raw)) as Record<string, string>) : {};
}

async function remember(client: MlsClient, entries: { pskId: Uint8Array; secret: Uint8Array }[]): Promise<void> {
  const all = known(client);
  for (const e of entries) {
    await client.psks.store(e.pskId, e.secret);
    all[toHex(e.pskId)] = toHex(e.secret);
  }
  await client.putRecord(RECORD, enc.encode(JSON.stringify(all)));
}

/**
 * Issue a recovery PSK for this member at the current epoch. Keep `record`
 * apart from the group state; send `registration` to the group.
 */
export async function issueRecoveryPsk(group: Group, identity: Identity): Promise<{ record: RecoveryRecord; registration: Uint8Array }> {
  const pskId = recoveryPskId(group.id, identity.identity, group.epoch);
  const secret = group.exportSecret(LABEL, pskId, 32);
  return group.client.atomically(async () => {
    await remember(group.client, [{ pskId, secret }]);
    const registration = await group.encrypt(encodeEntries([{ pskId, secret }]));
    return { record: { groupId: group.id, identity: identity.identity, pskId, secret: secret.slice() }, registration };
  });
}

/** Members: store the recovery PSKs an application message carries; false if it is not one. */
export async function acceptRecoveryPsks(group: Group, data: Uint8Array): Promise<boolean> {
  const entries = decodeEntries(data);
  if (!entries) return false;
  const mine = entries.filter((e) => bytesEqual(parseRecoveryPskId(e.pskId)?.groupId ?? new Uint8Array(0), group.id));
  if (mine.length > 0) await group.client.atomically(() => remember(group.client, mine));
  return true;
}

/** The member who added others sends them the group's recovery PSKs (an application message). */
export function transferRecoveryPsks(group: Group): Promise<Uint8Array> {
  const entries = Object.entries(known(group.client))
    .map(([id, secret]) => ({ pskId: fromHex(id), secret: fromHex(secret) }))
    .filter((e) => bytesEqual(parseRecoveryPskId(e.pskId)?.groupId ?? new Uint8Array(0), group.id));
  return group.encrypt(encodeEntries(entries));
}

/**
 * After state loss: rejoin by external commit with the recovery PSK (on a
 * fresh client with a new signature key), then remove the old leaf(s) of
 * the same identity. Returns both commits, in order.
 */
export async function recoverMembership(client: MlsClient, identity: Identity, groupInfo: Uint8Array, record: RecoveryRecord): Promise<{ group: Group; commits: Uint8Array[] }> {
  if (!bytesEqual(identity.identity, record.identity)) throw new RecoveryError('identity-mismatch', 'the record belongs to another identity');
  return client.atomically(async () => {
    await client.psks.store(record.pskId, record.secret);
    const { group, commit } = await client.joinExternal(groupInfo, identity, { psks: [record.pskId] });
    if (group.state().pendingCommit) await group.mergePendingCommit();
    await client.psks.delete(record.pskId);
    const old = group
      .members()
      .filter((m) => m.leafIndex !== group.ownLeafIndex && bytesEqual(m.credential.identity, identity.identity))
      .map((m) => m.leafIndex);
    const commits = [commit];
    if (old.length > 0) {
      const removal = await group.commit({ remove: old });
      await group.mergePendingCommit();
      commits.push(removal.commit);
    }
    return { group, commits };
  });
}

/** Application policy on top of the proof (default: the proof's identity must be the joiner's). */
export type RecoveryPolicy = (joiner: Uint8Array, proof: { identity: Uint8Array; issuedAtEpoch: bigint }) => boolean;

/**
 * Receivers: an external commit (a new member joining) is accepted only as
 * a recovery with a valid proof: a PSK proposal naming a recovery PSK this
 * member knows, issued for the joiner's identity. (A wrong PSK value never
 * gets here: the commit does not process.) Throws `RecoveryError`.
 */
function checkRecoveryCommit(group: Group, staged: StagedCommit, policy: RecoveryPolicy = (j, p) => bytesEqual(j, p.identity)): void {
  if (staged.committer.type !== 'newMemberCommit') return;
  const joiner = staged.pathCredential?.identity;
  const proofs = staged.psks.map((p) => ({ p, id: parseRecoveryPskId(p.pskId) })).filter((x) => x.id && bytesEqual(x.id.groupId, group.id));
  if (!joiner || proofs.length === 0) throw new RecoveryError('no-proof', 'an external join without a recovery proof');
  const registry = known(group.client);
  for (const { p, id } of proofs) {
    if (!registry[toHex(p.pskId)]) throw new RecoveryError('unknown-proof', 'the recovery PSK is not one this group issued');
    if (!policy(joiner, { identity: id!.identity, issuedAtEpoch: id!.epoch })) throw new RecoveryError('identity-mismatch', 'the proof was issued to someone else');
  }
}

/**
 * The process check of state-loss recovery (`admit` stage; docs/PROTOCOL.md
 * §7.2, §1.3): an external commit is accepted only as a recovery with a
 * valid proof (`checkRecoveryCommit`). Use it per group
 * (`group.useChecks([recoveryPolicy()])`), per client or per call;
 * a refused commit is discarded (`RecoveryError`).
 */
export function recoveryPolicy(policy?: RecoveryPolicy): ProcessCheck {
  return { name: 'resilience/recovery-policy', stage: 'admit', commit: ({ group, staged }) => checkRecoveryCommit(group, staged, policy) };
}
