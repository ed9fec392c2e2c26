/**
 * The pairing-group messages a device receives (docs/PROTOCOL.md §4.3,
 * §4.5, §4.7, §4.9): commits (derivation steps, proven adds, the cease
 * step), ShareRand and Accept, RoleChange and CeasePair. Who may send what
 * and with which vault proof is checked here, before anything changes.
 */
import { readMlsHeader } from '../codec/mls-header.js';
import { CodecError } from '../codec/tls.js';
import { bytesEqual } from '../mls/bytes.js';
import type { Identity } from '../mls/client.js';
import type { DeviceSession } from './device-session.js';
import type { PairingEvent } from './paired-types.js';
import { notifyRejected, pairingRejected } from './pairing-error.js';
import { type PairingMessage, decodePairingMessage, encodePairingMessage, pairingCommitContent, shareRandProvenContent } from './pairing-messages.js';
import { addedDigest } from './pairing-proof.js';
import { savePairingState, withoutAnchorKeys } from './pairing-state.js';
import { ceaseMade } from './cease.js';
import { catchUp, racedCease, renewCease, requireCaughtUp } from './cease-race.js';
import { SEED_LENGTH, WebCryptoSeedVault } from './seed-vault.js';
import { deriveSeedConfirmation, proofMatches, storePsk, usedOnce, verifyProof } from './vault-derivations.js';

/** `PairedDevice.receive`: one pairing-group message other than a Notify, atomically, in the device's turn. */
export async function receivePairingMessage(device: DeviceSession, message: Uint8Array): Promise<PairingEvent> {
  return device.serially(() =>
    device.atomically(async () => {
      // The step this device's own CeasePair raced, alone: caught up, and the cease made again (docs/PROTOCOL.md §4.9).
      const race = racedCease(device, message);
      if (race) {
        const caught = await catchUp(device, race, []);
        const step = await processPairing(device, message);
        requireCaughtUp(device, step.kind === 'commit' ? step.counter : undefined);
        const pairing = await renewCease(device, caught, undefined, (route, groups) => ceaseMade(device, route, device.requireAnchor(), groups));
        return { type: 'ceaseRenewed', route: caught.route, pairing };
      }
      const result = await processPairing(device, message);
      if (result.kind === 'commit') {
        return result.counter === undefined
          ? { type: 'pairingGroupChanged', epoch: device.pairingGroup.epoch }
          : { type: 'derivationStep', counter: result.counter };
      }
      try {
        return await onPairingMessage(device, result.message, result.senderLeaf, result.epoch);
      } finally {
        wipeCarried(result.message);
      }
    }),
  );
}

/**
 * What a received pairing message carries of the seed or of a vault
 * output, wiped once the message was taken or refused (docs/PROTOCOL.md
 * §4.2): a refusal before the seed was imported (`wrong-sender`, an
 * established pairing, a key pair in it) left the decoded seed in memory.
 */
function wipeCarried(message: PairingMessage): void {
  if (message.type === 'shareRand') {
    message.seed.fill(0);
    message.anchorKeyPair.fill(0);
  }
  if (message.type === 'accept') message.seedConfirmation.fill(0);
  else message.proof.fill(0);
}

/** What a decoded pairing message (not a Notify) does to the pairing, once its sender is known. */
async function onPairingMessage(device: DeviceSession, message: PairingMessage, senderLeaf: number, epoch: bigint): Promise<PairingEvent> {
  switch (message.type) {
    case 'shareRand': {
      if (device.state.established) throw pairingRejected('unexpected', 'ShareRand for an established pairing');
      // Only the device that invited this one (InitPairing's sender) shares
      // the pairing: another member of the pairing group (a stolen copy of
      // a passive device, say) would otherwise plant its own seed, anchor
      // and active leaf in a joining device (docs/PROTOCOL.md §4.3).
      if (device.state.inviter === undefined) throw pairingRejected('unexpected', 'ShareRand to a device that was not invited');
      if (senderLeaf !== device.state.inviter) throw pairingRejected('wrong-sender', `ShareRand from leaf ${senderLeaf}, not the inviting device`);
      // The anchor's key is never handed over (docs/PROTOCOL.md §4.2).
      if (message.anchorKeyPair.length > 0) throw pairingRejected('unexpected', 'ShareRand carries an anchor key pair');
      // Its proof covers the pairing epoch it was sent in, by its authenticator, which this device
      // holds for its current epoch only: sent in the epoch of the invite, it is read there.
      const current = BigInt(device.pairingGroup.epoch);
      if (epoch !== current) throw pairingRejected('out-of-order', `ShareRand of pairing epoch ${epoch}, read at epoch ${current}: read it before later pairing commits`);
      // Its proof covers the seed it carries: taken before the import wipes it.
      const content = shareRandProvenContent(message, device.pairingGroup.epochAuthenticator());
      try {
        if (message.seed.length > 0) {
          // A preinstalled seed is never replaced: a ShareRand with a seed of
          // its own would hand the device to whoever made its InitPairing.
          // (The seed is wiped on every path by `wipeCarried`, in the caller.)
          if (device.vault) throw pairingRejected('unexpected', 'ShareRand carries a seed, but this device has a preinstalled one');
          if (message.seed.length < SEED_LENGTH) {
            throw pairingRejected('malformed', `ShareRand carries a seed of ${message.seed.length} bytes, a vault needs at least ${SEED_LENGTH}`);
          }
          device.vault = await WebCryptoSeedVault.import(message.seed); // wipes the plaintext seed
        } else if (!device.vault) {
          throw pairingRejected('unexpected', 'ShareRand carries no seed and no vault was preinstalled');
        }
        // With a preinstalled seed, only a holder of it shares the pairing:
        // the inviter may be a stolen copy of a device already paired, which
        // signed the InitPairing of a fork of its own (docs/PROTOCOL.md §4.3).
        // (With a seed, the proof only shows the sender holds that seed.)
        if (!(await proofMatches(device, content, epoch, senderLeaf, message.proof))) {
          throw pairingRejected('no-proof', 'ShareRand without a valid vault proof');
        }
      } finally {
        content.fill(0);
      }
      const anchor: Identity = { identity: message.anchorIdentity, signaturePublicKey: new Uint8Array(0), ciphersuite: message.ciphersuite };
      device.state = { ...device.state, mode: message.mode, anchor, counter: message.counter, activeLeaf: senderLeaf, established: true };
      await savePairingState(device.client, device.state);
      const accept = await usedOnce(deriveSeedConfirmation(device), (seedConfirmation) => usedOnce(encodePairingMessage({ type: 'accept', seedConfirmation }), (body) => device.pairingGroup.encrypt(body)));
      return { type: 'shareRandApplied', anchor, accept };
    }
    case 'accept': {
      if (device.role !== 'active') throw pairingRejected('unexpected', 'Accept received by a passive device');
      // An invited device's Accept completes a pairing that goes on: after the end there is none (§4.9).
      device.requireNotEnded();
      const awaiting = device.state.awaitingAccept ?? [];
      if (!awaiting.includes(senderLeaf)) throw pairingRejected('unexpected', 'Accept from a device that was not invited, or twice');
      if (!(await usedOnce(message.seedConfirmation, (theirs) => usedOnce(deriveSeedConfirmation(device), (ours) => bytesEqual(theirs, ours))))) {
        // The confirmation is the Accept's vault proof.
        throw pairingRejected('no-proof', 'the partner holds another seed');
      }
      device.state = { ...device.state, established: true, awaitingAccept: awaiting.filter((l) => l !== senderLeaf) };
      await savePairingState(device.client, device.state);
      return { type: 'paired' };
    }
    case 'roleChange': {
      device.requireEstablishedPairing();
      if (senderLeaf !== device.state.activeLeaf) throw pairingRejected('wrong-sender', 'RoleChange from a device that is not active');
      await verifyProof(device, message, epoch, senderLeaf);
      const target = message.newActiveLeaf;
      if (target === senderLeaf || device.pairingGroup.member(target) === undefined) {
        throw pairingRejected('no-such-leaf', `RoleChange names leaf ${target}, which is not another device of the pairing`);
      }
      device.state = { ...device.state, activeLeaf: target, counter: device.state.counter + 1n };
      await savePairingState(device.client, device.state);
      return { type: 'roleChanged', role: device.role };
    }
    case 'ceasePair': {
      device.requireEstablishedPairing();
      await verifyProof(device, message, epoch, senderLeaf, ceasePairCounter(device, message.counter, epoch));
      device.state = { ...withoutAnchorKeys(device.state), ceased: true, ...(message.route === 'rekey' ? { ceaseFrom: senderLeaf } : {}) };
      await savePairingState(device.client, device.state);
      return { type: 'pairingCeased', route: message.route };
    }
    case 'notify':
      throw notifyRejected('out-of-order', 'a Notify must be applied with its commits (applyNotify)');
  }
}

/**
 * The counter a CeasePair sent in pairing epoch `epoch` must carry
 * (docs/PROTOCOL.md §4.9, "A CeasePair behind on hand-overs"): sent in an
 * earlier pairing epoch, this device's (MLS refuses it first, `WRONG_EPOCH`);
 * sent in the current one, any counter up to this device's, as sent.
 * Why that is sound: the proof covers pairing group, epoch, sender leaf,
 * route and counter, and only a vault holder makes it. Inside one pairing
 * epoch only hand-overs move the counter (a derivation step, a proven add
 * start a new epoch; ShareRand sets the joiner's counter in the add's
 * epoch, to the one every member entered it with), so a lower counter
 * only means the sender had not taken this device's latest hand-overs
 * (with three or more devices, any number of them). A device makes a
 * CeasePair only in `ceaseMade` (from `ceaseBegin`, or from the catch-up
 * after a raced update, `cease-race.ts`), which records the pairing as
 * ended in the same atomic block (a failure there discards the message; a DS that
 * refuses the group commits after it leaves the device ended, with the
 * groups still to cease): taking one ends nothing its sender did not end.
 * No lower bound is needed: every member entered the current epoch with
 * the same counter and none moves back, so no proof of this epoch names a
 * counter below it. A later counter is `stale` (read the RoleChange
 * first). A RoleChange gets no such allowance (the pairing goes on after a
 * hand-over, and a RoleChange taken again would leave two active devices,
 * §4.7).
 */
function ceasePairCounter(device: DeviceSession, sent: bigint, epoch: bigint): bigint {
  const counter = device.state.counter;
  const behindOnHandOvers = epoch === BigInt(device.pairingGroup.epoch) && sent < counter;
  return behindOnHandOvers ? sent : counter;
}

/**
 * Process one pairing-group message. For a commit, PSK(counter) is
 * offered first: a commit that injects it is a derivation step and
 * advances the counter; one that needs another counter fails (PSK not
 * found), which is what makes skipped or replayed steps unprocessable.
 * A commit is accepted only from the active leaf (or from the partner
 * whose proven CeasePair removes this device) and only with a vault
 * proof: PSK(counter) itself, or for an add a proof in its authenticated
 * data. Proposals are refused: nobody else changes the pairing group.
 */
export async function processPairing(
  device: DeviceSession,
  message: Uint8Array,
): Promise<{ kind: 'commit'; counter: bigint | undefined } | { kind: 'message'; message: PairingMessage; senderLeaf: number; epoch: bigint }> {
  const pairing = device.pairingGroup;
  const counter = device.state.counter;
  // Only a commit can need the PSK (content_type is in the clear header).
  const isCommit = readMlsHeader(message)?.contentType === 3;
  const pskId = device.vault && isCommit ? await storePsk(device, counter) : undefined;
  try {
    const result = await pairing.process(message);
    if (result.kind === 'commit') {
      const { staged } = result;
      const injects = pskId !== undefined && staged.psks.some((p) => p.pskType === 'external' && bytesEqual(p.pskId, pskId));
      const removed = staged.selfRemoved;
      try {
        await authorizeCommit(device, staged, result.aad, { injects, removed, counter });
      } catch (err) {
        staged.discard();
        throw err;
      }
      await staged.merge();
      if (removed) {
        device.state = { ...withoutAnchorKeys(device.state), ceased: true };
      }
      if (injects) device.state = { ...device.state, counter: counter + 1n };
      await savePairingState(device.client, device.state);
      return { kind: 'commit', counter: injects ? counter : undefined };
    }
    if (result.kind !== 'application') throw pairingRejected('unexpected', `unexpected ${result.kind} in the pairing group`);
    if (result.sender.type !== 'member') throw pairingRejected('wrong-sender', 'pairing message from a non-member');
    let parsed: PairingMessage;
    try {
      parsed = decodePairingMessage(result.data);
    } catch (err) {
      // A PairingError of `receive`; applyNotify turns it into a Notify refusal with the same reason.
      if (err instanceof CodecError) throw pairingRejected('malformed', err.message);
      throw err;
    } finally {
      result.data.fill(0);
    }
    return { kind: 'message', message: parsed, senderLeaf: result.sender.leafIndex, epoch: BigInt(result.epoch) };
  } finally {
    if (pskId) await device.client.psks.delete(pskId);
  }
}

/** The sender and vault-proof rules for a pairing-group commit (see `processPairing`). */
async function authorizeCommit(
  device: DeviceSession,
  staged: { committer: { type: string; leafIndex?: number }; epoch: number; adds: { signatureKey: Uint8Array }[]; proposals: readonly unknown[] },
  aad: Uint8Array,
  c: { injects: boolean; removed: boolean; counter: bigint },
): Promise<void> {
  const sender = staged.committer.type === 'member' ? staged.committer.leafIndex : undefined;
  if (sender === undefined) throw pairingRejected('wrong-sender', 'a pairing-group commit from a non-member');
  // The partner's cease step: announced by a proven CeasePair; a removed
  // device cannot check the step's PSK (it cannot compute the new epoch).
  if (sender === device.state.ceaseFrom && c.removed) return;
  if (sender !== device.state.activeLeaf) throw pairingRejected('wrong-sender', `a pairing-group commit from leaf ${sender}, not the active device`);
  if (!c.injects) {
    const adds = staged.adds;
    if (adds.length === 0 || adds.length !== staged.proposals.length) {
      throw pairingRejected('no-proof', 'a pairing-group commit that is neither a derivation step nor a proven add');
    }
    const content = pairingCommitContent(c.counter, await addedDigest(adds.map((a) => a.signatureKey)));
    if (!(await proofMatches(device, content, BigInt(staged.epoch), sender, aad))) throw pairingRejected('no-proof', 'an add to the pairing group without a valid vault proof');
  }
  // Once the pairing has ended (a CeasePair made or taken), the former
  // active device's step or proven add is refused too, valid as it is: the
  // device follows nobody on the anchor leaf any more, and its pairing
  // group stays at the epoch of the CeasePair, where the cease step from
  // `ceaseFrom` (above) is the one commit it takes (docs/PROTOCOL.md §4.9).
  device.requireNotEnded();
}
