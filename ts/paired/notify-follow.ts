/**
 * The passive device follows the active device's paired commits
 * (docs/PROTOCOL.md §4.4, §4.5): the derivation step and its Notify, then
 * the higher-level commit, all or nothing, with a reason for every
 * refusal (`NOTIFY_REJECTED`).
 */
import { readMlsHeader } from '../codec/mls-header.js';
import { bytesEqual, sha256, toHex } from '../mls/bytes.js';
import { MlsError } from '../mls/errors.js';
import { type DeviceSession, ENVIRONMENT_FAILURES } from './device-session.js';
import type { PairedUpdateApplied } from './paired-types.js';
import { PairingError, type PairingRejection, notifyRejected, rejectionFor } from './pairing-error.js';
import { type Notify, provenContent } from './pairing-messages.js';
import { openGroupState } from './pairing-proof.js';
import { processPairing } from './pairing-receive.js';
import { savePairingState, withAnchorKey } from './pairing-state.js';
import { deriveAnchorKey, proofMatches } from './vault-derivations.js';
import { ceaseMade } from './cease.js';
import { catchUp, followableGroups, racedCease, renewCease, requireCaughtUp } from './cease-race.js';

/** `PairedDevice.applyNotify`, in the device's turn. */
export async function applyNotify(device: DeviceSession, update: { pairing: Uint8Array[]; commit: Uint8Array }): Promise<PairedUpdateApplied> {
  device.requireEstablished();
  // The one paired update taken after the end: the step of the epoch of this device's own CeasePair,
  // which raced it, to catch up and cease again (`cease-race.ts`, docs/PROTOCOL.md §4.9).
  const race = update.pairing.length === 2 ? racedCease(device, update.pairing[0]) : undefined;
  const followable = race ? followableGroups(device, race.route) : [];
  // After a CeasePair (made or taken) nobody acts for this device on the
  // anchor leaf any more: a Notify is refused before anything is read, as
  // `receive` refuses a RoleChange or a CeasePair then (docs/PROTOCOL.md
  // §4.9). Checked here, in the device's turn: a CeasePair taken by a call
  // queued before this one is seen.
  if (followable.length === 0) device.requireNotEnded();
  const raced = race && followable.length > 0 ? race : undefined;
  if (!raced && device.role !== 'passive') throw new PairingError('PAIRING_STATE', 'only a passive device applies a Notify');
  if (update.pairing.length !== 2) throw notifyRejected('out-of-order', 'expected the derivation commit and the Notify');
  const [stepMessage, notifyMessage] = update.pairing as [Uint8Array, Uint8Array];
  try {
    return await device.atomically(async () => {
      const caught = raced ? await catchUp(device, raced, followable) : undefined;
      const applied = await followPaired(device, stepMessage, notifyMessage, update.commit, caught !== undefined);
      if (!caught) return applied;
      const pairing = await renewCease(device, caught, toHex(applied.groupId), (route, groups) => ceaseMade(device, route, device.requireAnchor(), groups));
      return { ...applied, ceasePair: { route: caught.route, pairing } };
    });
  } catch (err) {
    if (err instanceof PairingError && err.code === 'NOTIFY_REJECTED') throw err;
    // Failures of the device itself are not verdicts on the Notify.
    if (err instanceof MlsError && ENVIRONMENT_FAILURES.has(err.code)) throw err;
    // A raced step is of the kept epoch, which the pairing group has left again (rolled back): no epoch verdict.
    const byEpoch = raced ? undefined : epochRejection(device, update.pairing);
    throw notifyRejected(byEpoch ?? rejectionFor(err), bareMessage(err), err);
  }
}

/** What `err` says, without the reason a `PairingError` appends (the Notify's refusal appends its own). */
function bareMessage(err: unknown): string {
  if (err instanceof PairingError) return err.detail;
  return err instanceof Error ? err.message : String(err);
}

/** The step, its Notify and the commit it names (`raced`: the step of a CeasePair's epoch, taken to catch up; an enrolment refused). */
async function followPaired(device: DeviceSession, stepMessage: Uint8Array, notifyMessage: Uint8Array, commit: Uint8Array, raced: boolean): Promise<PairedUpdateApplied> {
  const expected = device.state.counter;
  const step = await processPairing(device, stepMessage);
  if (step.kind !== 'commit') throw notifyRejected('out-of-order', 'the first message is not a pairing-group commit');
  if (step.counter === undefined) throw notifyRejected('counter', 'the pairing-group commit is not a derivation step');
  if (raced) requireCaughtUp(device, step.counter);
  await device.pairingGroup.registerEmulationEpoch();
  const parsed = await processPairing(device, notifyMessage);
  if (parsed.kind !== 'message' || parsed.message.type !== 'notify') throw notifyRejected('out-of-order', 'the second message is not a Notify');
  const notify = parsed.message;
  if (parsed.senderLeaf !== device.state.activeLeaf) throw notifyRejected('forged', 'the Notify is not from the active device');
  if (notify.counter !== expected) throw notifyRejected('counter', `Notify for counter ${notify.counter}, expected ${expected}`);
  if (!(await proofMatches(device, provenContent(notify), parsed.epoch, parsed.senderLeaf, notify.proof))) throw notifyRejected('no-proof', 'the Notify carries no valid vault proof');
  if (!bytesEqual(notify.commitRef, await sha256(commit))) throw notifyRejected('commit-mismatch', 'the commit is not the one the Notify names');
  // Several passive devices share the pairing (§4.7): an enrolment of a
  // group this device already follows is another device's (`reenroll`),
  // and here a paired update like any other (its state not imported) —
  // unless this device's own client shows the pairing has left the group
  // (`pairingLeft`, §4.4): then the enrolment is new and replaces it.
  const listed = device.state.groups.includes(toHex(notify.groupId));
  const replaces = notify.kind === 'enroll' && listed && device.pairingLeft(notify.groupId);
  const kind = notify.kind === 'enroll' && listed && !replaces ? 'update' : notify.kind;
  // Catching up, the device follows only the groups whose cease is still to make on the anchor leaf.
  if (raced && kind === 'enroll') throw notifyRejected('unknown-group', 'the Notify names a group this device does not follow');
  const followed = kind === 'enroll' ? await followEnroll(device, notify, commit, replaces) : await followUpdate(device, notify, commit);
  return { type: 'pairedUpdateApplied', kind, groupId: notify.groupId, counter: notify.counter, ...followed } as const;
}

/** A pairing message from a past epoch is a replay; from a future one, out of order. */
function epochRejection(device: DeviceSession, messages: Uint8Array[]): PairingRejection | undefined {
  const current = BigInt(device.pairingGroup.epoch);
  const first = messages[0] && readMlsHeader(messages[0])?.epoch;
  if (first === undefined) return undefined;
  if (first < current) return 'replay';
  if (first > current) return 'out-of-order';
  return undefined;
}

/**
 * Enrolment: take the group's state from the Notify (the active device's,
 * before its commit), then follow the commit like a paired update.
 */
async function followEnroll(device: DeviceSession, notify: Notify, commit: Uint8Array, replaces: boolean): Promise<{ epoch: number; anchorSignatureKey: Uint8Array }> {
  const hex = toHex(notify.groupId);
  const held = device.client.groupIds().some((id) => bytesEqual(id, notify.groupId));
  if (held && !replaces) {
    throw notifyRejected('commit-mismatch', 'this device already holds the group outside the pairing');
  }
  // Sealed under the vault (docs/PROTOCOL.md §4.4), not only the pairing epoch.
  const groupState = await openGroupState(device.requireVault(), device.state.pairingGroupId, notify.counter, notify.groupId, notify.groupState);
  if (!groupState) throw notifyRejected('no-proof', 'the group state is not sealed with this vault');
  // A group the pairing has left (only once the vault opened the new state): its dead state goes first.
  if (held) await device.client.deleteGroup(notify.groupId);
  await device.client.importSiblingGroupState(notify.groupId, groupState); // wipes it
  device.state = { ...device.state, groups: [...device.state.groups.filter((g) => g !== hex), hex] };
  await savePairingState(device.client, device.state);
  return followUpdate(device, notify, commit);
}

/** A paired update: the anchor's commit processed with the Notify's derivation info, and its new key checked. */
async function followUpdate(device: DeviceSession, notify: Notify, commit: Uint8Array): Promise<{ epoch: number; anchorSignatureKey: Uint8Array }> {
  if (!device.state.groups.includes(toHex(notify.groupId))) throw notifyRejected('unknown-group', 'the Notify names a group this device does not follow');
  const group = device.client.group(notify.groupId);
  // Checked before processing: the derivation info would be spent on a commit that is not the named one.
  const sentIn = readMlsHeader(commit)?.epoch;
  if (sentIn === undefined || sentIn + 1n !== notify.epoch) throw notifyRejected('commit-mismatch', 'the commit does not create the epoch the Notify names');
  const result = await group.process(commit, { vcDerivationInfo: notify.derivationInfo });
  if (result.kind !== 'commit') throw notifyRejected('commit-mismatch', 'the message is not a commit');
  const { staged } = result;
  const fromAnchor = staged.committer.type === 'member' && staged.committer.leafIndex === group.ownLeafIndex;
  if (!fromAnchor || BigInt(staged.newEpoch) !== notify.epoch) {
    staged.discard();
    throw notifyRejected('commit-mismatch', 'the commit is not the anchor commit the Notify names');
  }
  // The commit must put the anchor key of this step on the leaf: derive it
  // (from the vault) and check after merging (inside the caller's atomic block).
  const anchorKey = await deriveAnchorKey(device, notify.counter);
  await staged.merge();
  const leaf = group.ownLeaf();
  if (!leaf || !bytesEqual(leaf.signatureKey, anchorKey.signaturePublicKey)) {
    throw notifyRejected('commit-mismatch', 'the commit does not rotate the anchor key to the one of its derivation step');
  }
  // The key the pairing put on the leaf here, as of this commit (`pairingLeft`, docs/PROTOCOL.md §4.4).
  device.state = withAnchorKey(device.state, toHex(notify.groupId), anchorKey.signaturePublicKey);
  await savePairingState(device.client, device.state);
  return { epoch: group.epoch, anchorSignatureKey: anchorKey.signaturePublicKey };
}
