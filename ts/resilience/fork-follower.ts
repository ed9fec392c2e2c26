/**
 * The hook by which a layer's records follow the fork resolver's switches
 * (docs/PROTOCOL.md §7.1), apart from the resolver so that a layer can
 * implement it without importing the resolver that lists it.
 */
import type { Group } from '../mls/group.js';

/**
 * A layer's records of a group that a switch must take back with the group
 * (they are not part of the state `retainState` keeps): `keep` as each
 * optimistic window opens (before its commit), `restore` when a switch goes
 * back there. Before, a switch left them as the losing branch wrote them
 * (the recovery registry, docs/PROTOCOL.md §7.2).
 */
export interface ForkFollower {
  keep(group: Group): unknown;
  /**
   * `left`, on a switch to another branch: what `keep` returned on the
   * branch left, what it returned where the two branches part (`base`:
   * what the branch left did since is what differs from it), and the last
   * epoch the two share (what the left branch took from messages of that
   * epoch or before may hold on both).
   */
  restore(group: Group, kept: unknown, left?: { kept: unknown; base: unknown; shared: number }): Promise<void>;
}
