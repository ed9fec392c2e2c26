/**
 * This client's own leaf in a group: in an enrolled group, the anchor leaf
 * the pairing acts on (docs/PROTOCOL.md §4.4). One lookup for the paired
 * layer's checks of its key and credential.
 */
import type { Group } from '../mls/group.js';
import type { Member } from '../mls/types.js';

/** The member at this client's own leaf index; undefined when the group no longer lists it. */
export function ownLeaf(group: Group): Member | undefined {
  const index = group.ownLeafIndex;
  return group.members().find((m) => m.leafIndex === index);
}
