/**
 * The epochs' PSKs (seed 003 §5, docs/PROTOCOL.md §6.5): which are kept,
 * which are pending imports, which the own send group can import now, and
 * which epochs an owner's commit acknowledges.
 */
import { fromHex, toHex } from '../mls/bytes.js';
import type { Group } from '../mls/group.js';
import { parsePskGroupId, pskGroupId } from './dmls-messages.js';
import { storeEpochPsk } from './dmls-profile.js';
import type { MemberSession } from './member-session.js';
import { noteOwnerKey } from './member-credentials.js';

/** Exporter label of an epoch's check value (docs/PROTOCOL.md §6.11); context: the epoch's PSK id; 16 bytes. */
const CHECK_LABEL = 'dmls epoch check';

/**
 * Export and keep the PSK of a send group's current epoch (one core call);
 * a foreign one with fresh randomness becomes a pending import. Epochs
 * with fresh randomness (importable) and the others (named only by REJOIN
 * acks) have separate budgets of `pskRetention`, so a run of partial
 * commits cannot evict a PSK someone may still import.
 */
export async function storePsk(member: MemberSession, group: Group, pending = true, fresh = true): Promise<void> {
  const hex = toHex(group.id);
  const epoch = group.epoch;
  const { pskId } = await storeEpochPsk(group, member.params());
  // Bound to the send group: an application's deleteGroup deletes it too (§6.10).
  await member.client.psks.bind(pskId, group.id);
  // The epoch's public check value, kept with its PSK (§6.11).
  member.state.checks[toHex(pskId)] = toHex(group.exportSecret(CHECK_LABEL, pskId, 16));
  const list = ((fresh ? member.state.stored : member.state.ackOnly)[hex] ??= []);
  if (!list.includes(epoch)) list.push(epoch);
  while (list.length > member.options.pskRetention) await member.deletePsk(pskGroupId(list.shift()!, group.id));
  if (pending) member.state.pending[hex] = epoch;
}

/**
 * Whether every other member of the own send group (but the leaves in
 * `leaving`) is a member of send group `hex` too, so holds its PSKs. A
 * PSK import of a send group someone lacks makes the importing commit
 * unprocessable for them (PSK_NOT_FOUND, buffered for good): one owner
 * leaving a member out of its send group, or removing it earlier than
 * the others, would stall every send group that imports it.
 */
export function followable(member: MemberSession, hex: string, leaving: number[] = []): boolean {
  const own = member.sendGroup;
  const there = new Set(member.client.group(fromHex(hex)).members().map((m) => toHex(m.credential.identity)));
  return own.members().every((m) => m.leafIndex === own.ownLeafIndex || leaving.includes(m.leafIndex) || there.has(toHex(m.credential.identity)));
}

/** The pending imports the own send group can take now (`followable`); the others stay pending. */
export function importable(member: MemberSession, leaving: number[] = []): [string, number][] {
  return Object.entries(member.state.pending).filter(([hex, epoch]) => followable(member, hex, leaving) && !withheld(member, hex, epoch));
}

/**
 * An epoch of send group `hex` this member neither imports nor acknowledges (§6.11): the disputed one, and
 * while that send group is being rejoined every later one too (the owner may go on with this member's branch).
 */
export function withheld(member: MemberSession, hex: string, epoch: number): boolean {
  const disputed = member.state.disputed[hex];
  return disputed !== undefined && (epoch === disputed || (epoch > disputed && member.state.rejoining.includes(hex)));
}

/** These pending imports went into a commit of the own send group. */
export function markImported(member: MemberSession, imports: [string, number][]): void {
  for (const [hex, epoch] of imports) {
    member.state.imported[hex] = epoch;
    if (member.state.pending[hex] === epoch) delete member.state.pending[hex];
  }
}

/** The newest epoch of the own send group among a commit's PSK imports (its owner's ack). */
export function ackedEpoch(member: MemberSession, psks: readonly { pskType: string; pskId: Uint8Array }[]): number | undefined {
  let newest: number | undefined;
  for (const psk of psks) {
    if (psk.pskType !== 'external' || psk.pskId.length <= 8) continue;
    const { epoch, groupId } = parsePskGroupId(psk.pskId);
    if (toHex(groupId) === member.state.ownGroupId) newest = Math.max(newest ?? 0, Number(epoch));
  }
  return newest;
}

/**
 * A send group joined (or rejoined) by Welcome, from its first epoch: its
 * owner's key from then on, and that epoch's PSK (others may import it);
 * the state saved.
 */
export async function followFromWelcome(member: MemberSession, group: Group): Promise<void> {
  noteOwnerKey(member, group);
  await storePsk(member, group, false);
  await member.save();
}
