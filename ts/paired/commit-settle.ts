/**
 * A paired operation's commit handed to the application's `send` and
 * merged only once the Delivery Service took it (docs/PROTOCOL.md §2.5,
 * §4.14). The commit has left by then, so nothing made for it is rolled
 * back when the DS refuses it: it is cleared, and the partner takes the
 * derivation step alone.
 */
import { bytesEqual, toHex } from '../mls/bytes.js';
import type { Group } from '../mls/group.js';
import type { DeviceSession, Queue } from './device-session.js';
import type { PairedCommit, PairedSend } from './paired-types.js';
import { PairingError } from './pairing-error.js';
import { savePairingState, withPendingSettled, withoutAnchorKey } from './pairing-state.js';

const NOT_PENDING = 'the commit sent is no longer the pending commit of the group (another commit was merged or made while send ran): nothing merged';

/**
 * `send` the paired commit `out`, pending in `group` (`settle`); rethrows
 * what refused it. Refused, the commit's pending anchor key goes with it
 * (`withPendingSettled`, in the write that clears the commit; kept as the
 * recorded key when the application merged the commit itself meanwhile;
 * the entry of a group not listed goes whole).
 */
export async function sendThenMerge(device: DeviceSession, group: Group, out: PairedCommit, sent: Uint8Array, send: PairedSend, then?: () => Promise<void>): Promise<PairedCommit> {
  const refused = async (pending: boolean) => {
    if (pending) await group.clearPendingCommit();
    const hex = toHex(group.id);
    // A group not listed (a refused enrolment of a new group, even one the application merged itself meanwhile) keeps no entry.
    const settledState = device.state.groups.includes(hex)
      ? withPendingSettled(device.state, hex, group.state().active ? group.ownLeaf()?.signatureKey : undefined)
      : withoutAnchorKey(device.state, hex);
    if (settledState === device.state) return;
    device.state = settledState;
    await savePairingState(device.client, device.state);
  };
  const settled = await settle(device, group, sent, () => send(out), { merged: then, refused });
  if (!settled.merged) throw settled.error;
  return out;
}

/** Whether `group`'s pending commit is still the one whose digest is `sent`. */
function stillPending(group: Group, sent: Uint8Array): boolean {
  return group.state().pendingCommit && bytesEqual(group.pendingCommitDigest(), sent);
}

/**
 * `post` a commit pending in `group` (the application's `send`; `sent`:
 * its digest, read when it was made); once it resolved, merge it, and
 * `merged`, in one write. When it threw, or the commit is no longer the
 * group's pending one (the application merged or made another meanwhile:
 * only the one sent is merged), `refused(stillPending)` (default: clear
 * it if still pending) and return the reason: `reenroll` and
 * `ceasePair` go on with their other groups. Outside any transaction,
 * and out of the client's queue (`DeviceSession.serially`: pairing messages are
 * received meanwhile): the commit has left, so nothing made before
 * `send` is rolled back (docs/PROTOCOL.md §2.5); a derivation step made
 * for it stays, and the partner takes it alone. `queue`: how the steps
 * after `post` run (`serially`, or in the caller's turn, `ceasePair`
 * without `send`).
 */
export async function settle(
  device: DeviceSession,
  group: Group,
  sent: Uint8Array,
  post: () => Promise<void>,
  hooks: { merged?: () => Promise<void>; refused?: (stillPending: boolean) => Promise<void> } = {},
  queue: Queue = (fn) => device.serially(fn),
): Promise<{ merged: true } | { merged: false; error: unknown }> {
  let accepted = true;
  let error: unknown;
  try {
    await post();
  } catch (err) {
    accepted = false;
    error = err;
  }
  return queue(async () => {
    const pending = stillPending(group, sent);
    if (accepted && pending) {
      await device.atomically(async () => {
        await group.mergePendingCommit();
        await hooks.merged?.();
      });
      return { merged: true };
    }
    if (accepted) error = new PairingError('PAIRING_STATE', NOT_PENDING);
    await device.atomically(async () => {
      if (hooks.refused) await hooks.refused(pending);
      else if (pending) await group.clearPendingCommit();
    });
    return { merged: false, error };
  });
}
