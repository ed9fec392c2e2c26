/**
 * The DS's own proposals of an epoch, one per leaf (docs/PROTOCOL.md §5.4,
 * §8.6): each names the leaf it removes as a `once` key of the store's
 * epoch budget, so that a second one for the leaf is refused in the
 * store's transaction, also when two servers on one database race.
 */
import { DsError } from './ds-error.js';

/**
 * The key of a proposal of `epoch` removing `leaf`: alone (the DS's
 * Remove, or a `sender_removal_only` intent) or with its associated
 * members (a `remove_associated_members` intent). Two keys, so that
 * neither kind holds back the other: a wide intent after a narrow one (or
 * a Remove) is the user's whole leave, and a Remove or narrow intent after
 * a wide one is what removes the leaf when the wide one is left out (it
 * would remove its committer). The epoch the proposal is for: an eventual
 * group's is logged in whatever epoch the store holds when it arrives,
 * and one of an epoch a commit left meanwhile took the leaf's key of the
 * next (members refuse it there), so the leaf's own proposal of that epoch
 * was refused. No client id holds a control character.
 */
export const removalKey = (leaf: number, wide: boolean, epoch: number): string => `\u0001removes leaf ${leaf}${wide ? ' with its associated members' : ''} in epoch ${epoch}`;

/** An intent for a leaf whose removal (of that kind) this epoch already holds. */
export const alreadyProposed = (leaf: number, wide: boolean, epoch: number): DsError =>
  new DsError(
    'duplicate',
    `the removal of leaf ${leaf}${wide ? ' with its associated members' : ''} is already proposed in epoch ${epoch}: this DS proposes one a leaf an epoch, and the one logged stands`,
  );
