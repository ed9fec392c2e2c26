/**
 * Where the cease of one group stands (docs/PROTOCOL.md §4.9), for both
 * routes: what is done, what still needs a commit, and the groups left in
 * `ceasing`.
 */
import { narrowedReport } from '../mls/asked-to-leave.js';
import { bytesEqual, fromHex } from '../mls/bytes.js';
import { MlsError } from '../mls/errors.js';
import type { Group } from '../mls/group.js';
import type { CommitResult } from '../mls/types.js';
import type { DeviceSession } from './device-session.js';
import type { CeasedGroup } from './paired-types.js';
import type { CeaseRoute } from './pairing-messages.js';
import { type CeasingGroup, savePairingState } from './pairing-state.js';

// A rejoin with the cease's key cannot be told from the cease's own join, whose yes went with the deleted group: join-unconfirmed.
/** A group the device was removed from while the anchor leaf stays: nothing this device can commit there ceases it. */
export const LOST_IN_CEASE = "removed from the group while the anchor leaf stays: rejoin it with a key other than the cease's and ceasePair again, or delete it to give it up";

/** A group with a commit pending that the cease did not make: it waits for the application's merge or clear. */
export const PENDING_IN_CEASE = 'a commit is pending in the group: merge it if the DS took it, else clear it; then ceasePair again';

/**
 * A group ceased by `commits`, the last `made` here and merged: with what it
 * left out of the requests to remove this device. One that removed the
 * anchor leaf (`removedAnchor`) withholds the requests bound to that leaf:
 * the holder of the anchor key, whom the cease shuts out, can sign them,
 * and answered they would become this device's own (docs/PROTOCOL.md §5.4).
 */
export function ceasedBy(groupId: Uint8Array, commits: Uint8Array[], made: CommitResult, removedAnchor?: number): CeasedGroup {
  const asked = removedAnchor === undefined ? made.askedToLeave : (narrowedReport(made.askedToLeave, (r) => r.boundLeaf !== removedAnchor) as CommitResult['askedToLeave']);
  return { groupId, commits, ceased: true, ...(asked && { askedToLeave: asked }) };
}

/** The signature key of the device's own leaf in `group` (as the tree is now: a pending commit not counted). */
export function ownKey(group: Group): Uint8Array {
  const own = group.ownLeaf();
  if (!own) throw new MlsError('INTERNAL', 'the own leaf is not in the group');
  return own.signatureKey;
}

/**
 * Where the cease of `entry`'s group stands: `done` (the group is gone
 * from this device, or the device is not on the anchor leaf and that leaf
 * is gone; route `rekey`, the anchor leaf carries another key), `lost`
 * (removed from the group, the anchor leaf still there), `busy` (a commit
 * this call did not make is pending), `remove` (the device is on another
 * leaf: route `rejoin`'s join, or the application rejoined; the anchor
 * leaf still there), else the commit still to make.
 */
export function ceaseStage(device: DeviceSession, route: CeaseRoute, entry: CeasingGroup): 'done' | 'lost' | 'busy' | 'rekey' | 'join' | 'remove' {
  const id = fromHex(entry.groupId);
  if (!device.client.groupIds().some((g) => bytesEqual(g, id))) return 'done';
  const group = device.client.group(id);
  const state = group.state();
  // Off the anchor leaf, the device's leaf says nothing of the anchor leaf:
  // a holder of the anchor key (the partner's copy) may still sit there.
  const anchorRemains = state.ownLeafIndex !== entry.anchorLeaf && anchorLeafRemains(device, group, entry);
  if (!state.active) return anchorRemains ? 'lost' : 'done';
  if (state.pendingCommit) return 'busy';
  if (anchorRemains) return 'remove';
  const own = group.member(state.ownLeafIndex);
  const moved = own !== undefined && !bytesEqual(own.signatureKey, fromHex(entry.anchorKey));
  if (route === 'rekey') return moved ? 'done' : 'rekey';
  return moved ? 'done' : 'join';
}

/**
 * Route `rejoin`, joined again: the anchor leaf is still in the group
 * (at its index, with its key or the anchor's credential: a holder of
 * the anchor key may have rotated it meanwhile).
 */
export function anchorLeafRemains(device: DeviceSession, group: Group, entry: CeasingGroup): boolean {
  const leaf = group.member(entry.anchorLeaf);
  if (!leaf || leaf.leafIndex === group.ownLeafIndex) return false;
  const anchor = device.requireAnchor();
  return bytesEqual(leaf.signatureKey, fromHex(entry.anchorKey)) || bytesEqual(leaf.credential.identity, anchor.identity);
}

/** The groups of `hexes` are ceased: no longer listed in `ceasing`. */
export async function markCeased(device: DeviceSession, hexes: string[]): Promise<void> {
  const left = (device.state.ceasing?.groups ?? []).filter((g) => !hexes.includes(g.groupId));
  const { ceasing, ...rest } = device.state;
  device.state = left.length > 0 && ceasing ? { ...rest, ceasing: { route: ceasing.route, groups: left } } : rest;
  await savePairingState(device.client, device.state);
}
