/**
 * Ending a pairing (docs/PROTOCOL.md §4.9): the CeasePair, then route
 * `rekey` (a derivation step the partners cannot follow, and a rekey per
 * group) or route `rejoin` (`cease-rejoin.ts`), each group's commit merged
 * once the DS took it.
 */
import { fromHex, toHex } from '../mls/bytes.js';
import type { Identity } from '../mls/client.js';
import { invalidArgument } from '../mls/errors.js';
import type { Group } from '../mls/group.js';
import type { CommitOptions, CommitResult } from '../mls/types.js';
import { rejoinGroups } from './cease-rejoin.js';
import { keepCeaseEpoch, retainsCeaseSecret } from './cease-race.js';
import { LOST_IN_CEASE, PENDING_IN_CEASE, ceaseStage, ceasedBy, markCeased, ownKey } from './cease-stage.js';
import { settle } from './commit-settle.js';
import type { DeviceSession, Queue } from './device-session.js';
import { PAIRED_DEVICES_COMPONENT, signedAnchorCommit } from './device-signature.js';
import type { CeasePairResult, CeaseSend, CeasedGroup } from './paired-types.js';
import { PairingError } from './pairing-error.js';
import type { CeaseRoute } from './pairing-messages.js';
import { type CeasingGroup, savePairingState, withoutAnchorKeys } from './pairing-state.js';
import { derivationStep, sendProven } from './vault-derivations.js';

/** `PairedDevice.ceasePair` once its route is checked: begins the cease (or finishes an earlier one), then the groups. */
export async function ceasePair(device: DeviceSession, route: CeaseRoute, send: CeaseSend | undefined): Promise<CeasePairResult> {
  const queued: Queue = (fn) => device.serially(fn);
  const begun = await device.serially(async (): Promise<CeasePairResult | Uint8Array[]> => {
    if (send !== undefined && typeof send !== 'function') throw invalidArgument('send must be a function');
    const unfinished = device.state.ceasing;
    if (device.state.ceased && unfinished) {
      if (unfinished.route !== route) throw new PairingError('PAIRING_STATE', `the cease of this pairing runs by route ${unfinished.route}: finish it with that route`);
      return [];
    }
    device.requireEstablished();
    const anchor = device.requireAnchor();
    if (device.state.ceased) throw new PairingError('PAIRING_STATE', 'the pairing has already ended');
    if (send) return device.atomically(() => ceaseBegin(device, route, anchor));
    // Without send: all of it in this turn and one atomic block, each commit merged as made.
    return device.atomically(async () => {
      const pairing = await ceaseBegin(device, route, anchor);
      return { route, pairing, groups: await ceaseGroups(device, route, async () => undefined, true, (fn) => fn()), identity: device.requireAnchor() };
    });
  });
  if (!Array.isArray(begun)) return begun;
  // A call finishing a cease without send merges each commit as if its send resolved.
  const groups = await ceaseGroups(device, route, send ?? (async () => undefined), begun.length > 0, queued);
  return { route, pairing: begun, groups, identity: device.requireAnchor() };
}

/** `ceasePair`, its second part: the groups still to cease (`fresh`: in the call that made the cease step). */
function ceaseGroups(device: DeviceSession, route: CeaseRoute, send: CeaseSend, fresh: boolean, queue: Queue): Promise<CeasedGroup[]> {
  return route === 'rekey' ? rekeyGroups(device, send, fresh, queue) : rejoinGroups(device, send, queue);
}

/**
 * `ceasePair`, its first part: the CeasePair, the new identity, route
 * `rekey` the step removing the partners, route `rejoin` the pairing
 * group deleted; the pairing is recorded as ended with every enrolled
 * group still to cease (`ceasing`, with its anchor leaf as it is now).
 * Returns the pairing messages.
 */
async function ceaseBegin(device: DeviceSession, route: CeaseRoute, anchor: Identity): Promise<Uint8Array[]> {
  const identity = await device.client.createIdentity(anchor.identity, anchor.ciphersuite);
  const groups: CeasingGroup[] = device.state.groups.map((hex) => {
    const group = device.client.group(fromHex(hex));
    const leaf = group.ownLeaf()!;
    return { groupId: hex, anchorLeaf: leaf.leafIndex, anchorKey: toHex(leaf.signatureKey) };
  });
  return ceaseMade(device, route, identity, groups);
}

/**
 * `ceaseBegin` once the cease's identity and groups are known; also the
 * cease made again after a raced step (`cease-race.ts`, with the first
 * cease's identity). A device in the passive role first keeps the pairing
 * group of the CeasePair's epoch: the active device's step of that epoch
 * may have raced it (docs/PROTOCOL.md §4.9).
 */
export async function ceaseMade(device: DeviceSession, route: CeaseRoute, identity: Identity, groups: CeasingGroup[]): Promise<Uint8Array[]> {
  const pairing = device.pairingGroup;
  if (device.role === 'passive') await keepCeaseEpoch(device, route);
  const cease = await sendProven(device, { type: 'ceasePair', route, counter: device.state.counter, proof: new Uint8Array(0) });
  const messages = [cease];
  if (route === 'rekey') {
    const partners = pairing.members().map((m) => m.leafIndex).filter((l) => l !== device.state.ownLeaf);
    messages.push((await derivationStep(device, { remove: partners })).commit);
  }
  // Kept with the state that ends the pairing (a crash before the app sent them lost them): copies,
  // so what the app does with the returned messages (wipe, transfer) leaves them whole.
  const ceasing = { ceaseMessages: messages.map((m) => m.slice()), ...(groups.length > 0 ? { ceasing: { route, groups } } : {}) };
  // A cease made again lists only the groups still to cease. No paired commit follows the end: the
  // anchor keys recorded for `pairingLeft` go (its checks without them, as before they existed).
  const { ceasing: _earlier, ...before } = withoutAnchorKeys(device.state);
  if (route === 'rekey') {
    device.state = { ...before, anchor: identity, activeLeaf: device.state.ownLeaf, ceased: true, ...ceasing };
  } else {
    await device.client.deleteGroup(device.state.pairingGroupId);
    device.state = { ...before, anchor: identity, groups: [], ceased: true, ...ceasing };
  }
  await savePairingState(device.client, device.state);
  return messages;
}

/**
 * The cease commit of route `rekey` in `group`: a self-update from
 * emulation epoch `epochId` with the new signature key. The path comes
 * from the step (a standard-mode device signature needs two identical
 * builds); its derivation info is for nobody. Left pending. `retain`:
 * made by a device that made its CeasePair in the passive role, the commit
 * keeps its handshake secret, so a paired update from the active device at
 * the same generation of the anchor leaf's ratchet, winning at the DS,
 * still decrypts (docs/PROTOCOL.md §4.9, "A CeasePair racing a paired
 * update").
 */
async function rekeyCommit(device: DeviceSession, group: Group, epochId: Uint8Array, identity: Identity, retain: boolean): Promise<CommitResult> {
  const spec: CommitOptions = { selfUpdate: true, vcEpochId: epochId, vcDetached: true, newSigner: identity, skipProposalsFrom: group.ownLeafIndex, ...(retain && { retainOwnSecret: true }) };
  // Standard mode: with no partner left the leaf is an ordinary
  // member's again, so the device list is cleared (an empty value;
  // signed by this device, which the list still names).
  return device.mode === 'standard'
    ? signedAnchorCommit(group, device.deviceIdentity, { ...spec, leafAppData: [{ componentId: PAIRED_DEVICES_COMPONENT, data: new Uint8Array(0) }] })
    : group.commit(spec);
}

/**
 * Route `rekey`, the groups still to cease: their commits made in one
 * atomic block (from the cease step's epoch in the first call, `fresh`;
 * later from a new step), then each handed to `send` and merged once it
 * resolved.
 */
async function rekeyGroups(device: DeviceSession, send: CeaseSend, fresh: boolean, queue: Queue): Promise<CeasedGroup[]> {
  const identity = device.requireAnchor();
  type Planned = { result: CeasedGroup } | { hex: string; group: Group; made: CommitResult; kind: 'rekey' | 'remove'; sent: Uint8Array; anchorLeaf: number };
  const plan = await queue(() =>
    device.atomically(async () => {
      const planned: Planned[] = [];
      const done: string[] = [];
      let epochId: Uint8Array | undefined;
      for (const entry of device.state.ceasing?.groups ?? []) {
        const groupId = fromHex(entry.groupId);
        const stage = ceaseStage(device, 'rekey', entry);
        if (stage === 'done') {
          done.push(entry.groupId);
          planned.push({ result: { groupId, commits: [], ceased: true } });
        } else if (stage === 'busy' || stage === 'lost') {
          planned.push({ result: { groupId, commits: [], ceased: false, error: new PairingError('PAIRING_STATE', stage === 'busy' ? PENDING_IN_CEASE : LOST_IN_CEASE) } });
        } else if (stage === 'remove') {
          const group = device.client.group(groupId);
          const made = await group.commit({ remove: [entry.anchorLeaf], skipProposalsFrom: entry.anchorLeaf });
          planned.push({ hex: entry.groupId, group, made, kind: stage, sent: group.pendingCommitDigest(), anchorLeaf: entry.anchorLeaf });
        } else {
          epochId ??= fresh ? await device.pairingGroup.registerEmulationEpoch() : (await derivationStep(device)).epochId;
          const group = device.client.group(groupId);
          const made = await rekeyCommit(device, group, epochId, identity, retainsCeaseSecret(device));
          planned.push({ hex: entry.groupId, group, made, kind: 'rekey', sent: group.pendingCommitDigest(), anchorLeaf: entry.anchorLeaf });
        }
      }
      if (done.length > 0) await markCeased(device, done);
      return planned;
    }),
  );
  const results: CeasedGroup[] = [];
  for (const item of plan) {
    if ('result' in item) {
      results.push(item.result);
      continue;
    }
    const { hex, group, made, kind, sent, anchorLeaf } = item;
    const { commit } = made;
    const settled = await settle(device, group, sent, () => send({ groupId: group.id, commit, kind, signatureKey: kind === 'rekey' ? identity.signaturePublicKey : ownKey(group) }), { merged: () => markCeased(device, [hex]) }, queue);
    results.push(settled.merged ? ceasedBy(group.id, [commit], made, kind === 'remove' ? anchorLeaf : undefined) : { groupId: group.id, commits: [], ceased: false, error: settled.error });
  }
  return results;
}
