/**
 * The active device's commits on behalf of both devices in an enrolled
 * group (docs/PROTOCOL.md §4.5, §4.13): each preceded by a derivation
 * step and followed by a Notify for the passive devices; and its
 * standalone proposals for the anchor.
 */
import { sha256, toHex } from '../mls/bytes.js';
import { MlsError, invalidArgument } from '../mls/errors.js';
import type { Group } from '../mls/group.js';
import type { CommitOptions, ProposalRequest } from '../mls/types.js';
import { sendThenMerge } from './commit-settle.js';
import type { DeviceSession } from './device-session.js';
import { signedAnchorCommit, signedAnchorProposal } from './device-signature.js';
import type { PairedCommit, PairedCommitOptions } from './paired-types.js';
import { PairingError } from './pairing-error.js';
import type { Notify, NotifyKind } from './pairing-messages.js';
import { sealGroupState } from './pairing-proof.js';
import { savePairingState, withAnchorKey, withPendingAnchorKey } from './pairing-state.js';
import { derivationStep, deriveAnchorKey, sendProven } from './vault-derivations.js';

/** `PairedDevice.commit`, with `send` merged once the DS took it. */
export async function pairedCommit(device: DeviceSession, group: Group, options: PairedCommitOptions): Promise<PairedCommit> {
  const { send, ...commitOptions } = options;
  const { out, sent } = await device.serially(async () => {
    device.requireRole('active');
    device.requireEstablished();
    device.requireEnrolled(group.id);
    requireFollowed(device, group);
    if (send !== undefined && typeof send !== 'function') throw invalidArgument('send must be a function');
    const out = await device.atomically(async (): Promise<PairedCommit> => {
      const step = await derivationStep(device);
      const epoch = BigInt(group.epoch) + 1n;
      const leafKey = group.ownLeaf()?.signatureKey;
      const { commit, derivationInfo, anchorSignatureKey, askedToLeave, welcome, groupInfo } = await anchorCommit(device, group, step, commitOptions);
      // Pending until merged (by `send`'s settle below, or the application): `pairingLeft` takes it once the leaf carries it.
      device.state = withPendingAnchorKey(device.state, toHex(group.id), leafKey, anchorSignatureKey);
      await savePairingState(device.client, device.state);
      const notify = await sendNotify(device, { kind: 'update', counter: step.counter, group, commit, groupState: new Uint8Array(0), derivationInfo, epoch });
      return { groupId: group.id, commit, pairing: [step.commit, notify], anchorSignatureKey, ...(askedToLeave && { askedToLeave }), ...(welcome && { welcome }), ...(groupInfo && { groupInfo }) };
    });
    return { out, sent: send ? group.pendingCommitDigest() : undefined };
  });
  // Recorded at the merge, in its write; a commit refused and cleared leaves the recorded key as it was.
  const merged = async () => {
    device.state = withAnchorKey(device.state, toHex(group.id), out.anchorSignatureKey);
    await savePairingState(device.client, device.state);
  };
  return send && sent ? sendThenMerge(device, group, out, sent, send, merged) : out;
}

/**
 * A listed group held anew (the anchor re-added, or rejoined) is not the one
 * the partner follows: `enroll` it again (docs/PROTOCOL.md §4.4). A group
 * this client was removed from is left to the core (`NOT_A_MEMBER`).
 */
function requireFollowed(device: DeviceSession, group: Group): void {
  // A retired group (ReInit) is left to the core too (`GROUP_REINITIALIZED`).
  if (group.state().active && group.reinitState() === undefined && device.pairingLeft(group.id)) {
    throw new PairingError('PAIRING_STATE', 'the pairing has left this group (the leaf here is not the anchor leaf it enrolled): enroll it again');
  }
}

/**
 * The anchor's commit from derivation `step`: its UpdatePath derived from
 * the step's emulation epoch, the derivation info kept out of the leaf
 * (it goes to the partner in the Notify, so the leaf stays an ordinary
 * member's, docs/PROTOCOL.md §4.13), and the anchor key of the step.
 * Standard mode: the leaf lists the devices and this device signs.
 */
export async function anchorCommit(
  device: DeviceSession,
  group: Group,
  step: { counter: bigint; epochId: Uint8Array },
  options: Omit<PairedCommitOptions, 'send'>,
): Promise<Omit<PairedCommit, 'groupId' | 'pairing'> & { derivationInfo: Uint8Array }> {
  const { listedDevices, ...commitOptions } = options;
  const newSigner = await deriveAnchorKey(device, step.counter);
  // No proposal of the anchor leaf by reference: a copy of the passive
  // device signs them as this device does (docs/PROTOCOL.md §4.5).
  const spec: CommitOptions = { selfUpdate: true, ...commitOptions, vcEpochId: step.epochId, vcDetached: true, newSigner, skipProposalsFrom: group.ownLeafIndex };
  const { commit, vcDerivationInfo, askedToLeave, welcome, groupInfo } =
    device.mode === 'standard'
      ? await signedAnchorCommit(group, device.deviceIdentity, { ...spec, leafAppData: [device.deviceListEntry(listedDevices)] })
      : await group.commit(spec);
  if (!vcDerivationInfo) throw new MlsError('INTERNAL', 'a detached virtual-client commit returned no derivation info');
  return { commit, derivationInfo: vcDerivationInfo, anchorSignatureKey: newSigner.signaturePublicKey, askedToLeave, welcome, groupInfo };
}

/** `PairedDevice.propose` (no Update proposals: the anchor leaf changes only by a paired commit), in the device's turn. */
export async function proposeForAnchor(device: DeviceSession, group: Group, request: ProposalRequest): Promise<Uint8Array> {
  return device.serially(async () => {
    device.requireRole('active');
    device.requireEstablished();
    device.requireEnrolled(group.id);
    requireFollowed(device, group);
    if (request.type === 'update') throw invalidArgument('the anchor leaf changes only by a paired commit (update()), not by an Update proposal');
    return device.atomically(() => (device.mode === 'standard' ? signedAnchorProposal(group, device.deviceIdentity, request) : group.propose(request)));
  });
}

/** The Notify of a paired commit for the passive devices, proven and encrypted in the pairing group (the enrolment's group state sealed under the vault). */
export async function sendNotify(device: DeviceSession, n: { kind: NotifyKind; counter: bigint; group: Group; commit: Uint8Array; groupState: Uint8Array; derivationInfo: Uint8Array; epoch: bigint }): Promise<Uint8Array> {
  // The enrolment's state is sealed under the vault: a partner that takes
  // this step alone (the DS refused the commit) keeps the pairing epoch's
  // key of this Notify, which it never processes (docs/PROTOCOL.md §4.4).
  const groupState =
    n.kind === 'enroll' ? await sealGroupState(device.requireVault(), device.state.pairingGroupId, n.counter, n.group.id, n.groupState) : n.groupState;
  const body: Notify = {
    type: 'notify',
    counter: n.counter,
    kind: n.kind,
    groupId: n.group.id,
    epoch: n.epoch,
    commitRef: await sha256(n.commit),
    groupState,
    derivationInfo: n.derivationInfo,
    proof: new Uint8Array(0),
  };
  try {
    return await sendProven(device, body);
  } finally {
    body.groupState.fill(0);
  }
}
