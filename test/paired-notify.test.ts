/**
 * Notify is the only thing the passive device acts on after a paired
 * update, so it must not be forgeable, replayable or mismatchable. Every
 * attack below is rejected with NOTIFY_REJECTED and a reason, leaves the
 * passive device's stored state byte for byte as it was, and the device
 * then still follows the group.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, sha256, toHex, type StorageAdapter } from 'paired-mls';
import { PairedDevice, PairingError, encodePairingMessage, pairingProofTbs, provenContent, type Notify, type PairedCommit } from 'paired-mls/paired';
import { deliverCommit, expectInSync } from './helpers.js';
import { pairedWorld, type PairedWorld } from './paired-helpers.js';

const snapshot = (storage: StorageAdapter) => MemoryStorageAdapter.copyOf(storage);

async function dump(storage: StorageAdapter): Promise<string> {
  const entries = await storage.entries();
  return entries
    .map(([k, v]) => `${toHex(k)}=${toHex(v)}`)
    .sort()
    .join('\n');
}

/** Expect `attempt` to be rejected with `reason` and to change nothing. */
async function expectRejected(w: PairedWorld, attempt: () => Promise<unknown>, reason: string): Promise<void> {
  const before = await dump(w.p.storage!);
  const epoch = w.p.group!.epoch;
  const counter = w.passiveDevice.counter;
  let error: unknown;
  try {
    await attempt();
  } catch (err) {
    error = err;
  }
  expect(error).toBeInstanceOf(PairingError);
  expect((error as PairingError).code).toBe('NOTIFY_REJECTED');
  expect((error as PairingError).reason).toBe(reason);
  expect(await dump(w.p.storage!)).toBe(before);
  expect(w.p.group!.epoch).toBe(epoch);
  expect(w.passiveDevice.counter).toBe(counter);
}

/** A paired update, delivered to the active side and the other members only. */
async function update(w: PairedWorld): Promise<PairedCommit> {
  const u = await w.activeDevice.update(w.a.group!);
  await w.a.group!.mergePendingCommit();
  await deliverCommit(u.commit, w.others);
  return u;
}

async function followsAfterwards(w: PairedWorld, u: PairedCommit): Promise<void> {
  await w.passiveDevice.applyNotify(u);
  expectInSync([w.a, w.p, ...w.others]);
}

describe.each(['hidden', 'standard'] as const)('Paired MLS (%s mode): Notify attacks', (mode) => {
  it('forged: tampered ciphertext, or a Notify not sent by the active device', async () => {
    const w = await pairedWorld(['bob'], mode);
    const u = await update(w);
    const tampered = u.pairing[1]!.slice();
    tampered[tampered.length - 5]! ^= 0x01;
    await expectRejected(w, () => w.passiveDevice.applyNotify({ pairing: [u.pairing[0]!, tampered], commit: u.commit }), 'forged');
    const tamperedStep = u.pairing[0]!.slice();
    tamperedStep[tamperedStep.length - 5]! ^= 0x01;
    await expectRejected(w, () => w.passiveDevice.applyNotify({ pairing: [tamperedStep, u.pairing[1]!], commit: u.commit }), 'forged');

    // An attacker holding a copy of the passive device's state writes its
    // own Notify into the pairing group: it can only send as the passive
    // device's leaf, which the passive device does not accept.
    const copy = await MlsClient.open({ storage: await snapshot(w.p.storage!) });
    const pairingCopy = copy.group(w.passiveDevice.pairingGroup.id);
    const { commit: fakeStep } = await pairingCopy.commit({ selfUpdate: true });
    await pairingCopy.mergePendingCommit();
    const forged = await pairingCopy.encrypt(
      encodePairingMessage({ type: 'notify', counter: w.passiveDevice.counter, kind: 'update', groupId: w.a.group!.id, epoch: 99n, commitRef: new Uint8Array(32), groupState: new Uint8Array(0), derivationInfo: new Uint8Array(0), proof: new Uint8Array(32) }),
    );
    await expectRejected(w, () => w.passiveDevice.applyNotify({ pairing: [fakeStep, forged], commit: u.commit }), 'forged');
    await followsAfterwards(w, u);
  });

  it('replayed: the same update twice, or an old Notify with a new step', async () => {
    const w = await pairedWorld(['bob'], mode);
    const u1 = await update(w);
    await w.passiveDevice.applyNotify(u1);
    await expectRejected(w, () => w.passiveDevice.applyNotify(u1), 'replay');
    const u2 = await update(w);
    await expectRejected(w, () => w.passiveDevice.applyNotify({ pairing: [u2.pairing[0]!, u1.pairing[1]!], commit: u2.commit }), 'replay');
    await followsAfterwards(w, u2);
  });

  it('for an unknown group or a mismatching commit', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    // bob's commit for the same epoch, which loses the race to the paired update.
    const { commit: bobsCommit } = await bob.group!.selfUpdate();
    await bob.group!.clearPendingCommit();
    const u = await update(w);
    const pairing = w.a.client.group(w.passiveDevice.pairingGroup.id);
    // A (buggy or compromised) active device's Notify naming another group.
    // It holds the vault, so its Notify carries a valid proof.
    const proven = async (n: Notify) => {
      const tbs = pairingProofTbs(pairing.id, BigInt(pairing.epoch), pairing.ownLeafIndex, provenContent(n));
      return pairing.encrypt(encodePairingMessage({ ...n, proof: await w.activeDevice.vault!.derive('proof', tbs, 32) }));
    };
    const unknown = await proven({ type: 'notify', counter: w.passiveDevice.counter, kind: 'update', groupId: new Uint8Array(16).fill(7), epoch: BigInt(w.a.group!.epoch), commitRef: await sha256(u.commit), groupState: new Uint8Array(0), derivationInfo: new Uint8Array(0), proof: new Uint8Array(0) });
    await expectRejected(w, () => w.passiveDevice.applyNotify({ pairing: [u.pairing[0]!, unknown], commit: u.commit }), 'unknown-group');
    // The real Notify with another commit (bob's, of the same epoch).
    await expectRejected(w, () => w.passiveDevice.applyNotify({ pairing: u.pairing, commit: bobsCommit }), 'commit-mismatch');
    // A Notify whose epoch disagrees with the commit it names.
    const wrongEpoch = await proven({ type: 'notify', counter: w.passiveDevice.counter, kind: 'update', groupId: w.a.group!.id, epoch: 1000n, commitRef: await sha256(u.commit), groupState: new Uint8Array(0), derivationInfo: new Uint8Array(0), proof: new Uint8Array(0) });
    await expectRejected(w, () => w.passiveDevice.applyNotify({ pairing: [u.pairing[0]!, wrongEpoch], commit: u.commit }), 'commit-mismatch');
    // The right Notify from the active leaf, but without the vault's proof.
    const unproven = await pairing.encrypt(
      encodePairingMessage({ type: 'notify', counter: w.passiveDevice.counter, kind: 'update', groupId: w.a.group!.id, epoch: BigInt(w.a.group!.epoch), commitRef: await sha256(u.commit), groupState: new Uint8Array(0), derivationInfo: new Uint8Array(0), proof: new Uint8Array(32) }),
    );
    await expectRejected(w, () => w.passiveDevice.applyNotify({ pairing: [u.pairing[0]!, unproven], commit: u.commit }), 'no-proof');
    await followsAfterwards(w, u);
  });

  it('out of order: a later update first, the parts swapped, a skipped counter', async () => {
    const w = await pairedWorld(['bob'], mode);
    const u1 = await update(w);
    const u2 = await update(w);
    await expectRejected(w, () => w.passiveDevice.applyNotify(u2), 'out-of-order');
    await expectRejected(w, () => w.passiveDevice.applyNotify({ pairing: [u1.pairing[1]!, u1.pairing[0]!], commit: u1.commit }), 'out-of-order');
    await expectRejected(w, () => w.passiveDevice.applyNotify({ pairing: [u1.pairing[0]!], commit: u1.commit }), 'out-of-order');
    await w.passiveDevice.applyNotify(u1);
    await followsAfterwards(w, u2);
    expect(w.passiveDevice.counter).toBe(w.activeDevice.counter);
  });

  it('only a passive device applies a Notify, and garbage is rejected without harm', async () => {
    const w = await pairedWorld(['bob'], mode);
    const u = await update(w);
    await expect(w.activeDevice.applyNotify(u)).rejects.toMatchObject({ code: 'PAIRING_STATE' });
    await expectRejected(w, () => w.passiveDevice.applyNotify({ pairing: [new Uint8Array([1, 2, 3]), u.pairing[1]!], commit: u.commit }), 'malformed');
    await followsAfterwards(w, u);
  });
});
void PairedDevice;
