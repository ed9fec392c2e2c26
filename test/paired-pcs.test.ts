/**
 * Post-compromise security for the passive device (the point of Paired
 * MLS). An attacker copies all of the passive device's state except its
 * seed vault at epoch e and records every message on the network. After
 * one paired update by the active device, the copy cannot read the group.
 * Baselines in the same file: in plain MLS (the passive device never
 * updates) the same kind of copy keeps reading, and a copy that also has
 * the vault follows too — so it is the vault-derived derivation step that
 * heals.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, utf8, type MlsError, type StorageAdapter } from 'paired-mls';
import { PairedDevice, WebCryptoSeedVault, generateSeed, type PairingError } from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError, newMember } from './helpers.js';
import { device, pairedWorld } from './paired-helpers.js';

const snapshot = (storage: StorageAdapter) => MemoryStorageAdapter.copyOf(storage);

/** Plain MLS: the copy processes the recorded commit and then the message; what it reads. */
async function attackerReads(copy: MemoryStorageAdapter, groupId: Uint8Array, traffic: { commit: Uint8Array; message: Uint8Array }) {
  const client = await MlsClient.open({ storage: copy });
  const r = await client.group(groupId).process(traffic.commit);
  if (r.kind === 'commit') await r.staged.merge();
  const read = await client.group(groupId).process(traffic.message);
  return read.kind === 'application' ? utf8(read.data) : undefined;
}

describe.each(['hidden', 'standard'] as const)('Paired MLS (%s mode): PCS for the passive device', (mode) => {
  it('a copy of the passive device without its vault cannot read after one paired update', async () => {
    const w = await pairedWorld(['bob', 'carol'], mode);
    const [bob, carol] = w.others as [typeof w.a, typeof w.a];
    const groupId = w.a.group!.id;
    const epochE = w.p.group!.epoch;

    // Compromise: the attacker copies the passive device's storage (all MLS
    // and pairing state; the vault is not in it).
    const stolen = await snapshot(w.p.storage!);
    // Sanity: at epoch e the copy reads the group.
    const before = await bob.group!.encrypt('epoch e secret');
    const copyAtE = await MlsClient.open({ storage: await snapshot(stolen) });
    const r0 = await copyAtE.group(groupId).process(before);
    expect(r0.kind === 'application' && utf8(r0.data)).toBe('epoch e secret');
    for (const m of [w.a, w.p, carol]) await m.group!.process(before);

    // One paired update by the active device.
    const update = await w.activeDevice.update(w.a.group!);
    await w.a.group!.mergePendingCommit();
    await deliverCommit(update.commit, w.others);
    const applied = await w.passiveDevice.applyNotify(update);
    expect(applied.epoch).toBe(epochE + 1);
    expectInSync([w.a, w.p, ...w.others]);

    const secret = await bob.group!.encrypt('epoch e+1 secret');
    // The real passive device reads it.
    const real = await w.p.group!.process(secret);
    expect(real.kind === 'application' && utf8(real.data)).toBe('epoch e+1 secret');

    // The attacker, with the copy, a vault of its own and all traffic. It
    // fails exactly where the vault matters: the derivation step injects
    // PSK(counter), which only the real vault derives, so its key schedule
    // gives another epoch and the step's confirmation tag does not verify.
    const guessVault = await WebCryptoSeedVault.import(generateSeed());
    const attacker = await MlsClient.open({ storage: await snapshot(stolen) });
    const err = await mlsError(() => PairedDevice.open(attacker, guessVault).applyNotify(update));
    expect({ code: err.code, reason: (err as PairingError).reason }).toEqual({ code: 'NOTIFY_REJECTED', reason: 'forged' });
    expect((err.cause as MlsError).code).toBe('INVALID_COMMIT');
    expect((err.cause as MlsError).message).toMatch(/confirmation tag is invalid/);
    // The anchor's commit, through the copy's own leaf, is followed only
    // with its derivation info, which travels in the Notify (encrypted in
    // the step's pairing epoch) and with the step's emulation epoch; the
    // copy has neither …
    const ownLeaf = await mlsError(() => attacker.group(groupId).process(update.commit));
    expect({ code: ownLeaf.code, message: ownLeaf.message }).toEqual({ code: 'INVALID_COMMIT', message: expect.stringMatching(/created by this client but does not match the pending commit/) });
    // … so the copy stays in epoch e and cannot decrypt the first message after the update.
    expect(attacker.group(groupId).epoch).toBe(epochE);
    expect((await mlsError(() => attacker.group(groupId).process(secret))).code).toBe('WRONG_EPOCH');

    // Control, beside it: the same copy *with* the real vault follows the
    // update and reads that message — the vault is what heals.
    const control = await MlsClient.open({ storage: await snapshot(stolen) });
    const followed = await PairedDevice.open(control, w.passiveDevice.vault).applyNotify(update);
    expect(followed.epoch).toBe(epochE + 1);
    const read = await control.group(groupId).process(secret);
    expect(read.kind === 'application' && utf8(read.data)).toBe('epoch e+1 secret');
  });

  it('baseline: in plain MLS a copy of a member that never updates keeps reading', async () => {
    const alice = await device('alice');
    const phone = await device('alice-phone');
    const bob = await newMember('bob');
    alice.group = await alice.client.createGroup(alice.identity);
    const { welcome } = await alice.group.commit({
      add: [await phone.client.createKeyPackage(phone.identity), await bob.client.createKeyPackage(bob.identity)],
    });
    await alice.group.mergePendingCommit();
    phone.group = await phone.client.joinFromWelcome(welcome!);
    bob.group = await bob.client.joinFromWelcome(welcome!);
    const groupId = alice.group.id;

    const stolen = await snapshot(phone.storage!);
    // alice updates her own leaf; the phone (receive-only) never does.
    const { commit } = await alice.group.selfUpdate();
    await alice.group.mergePendingCommit();
    await deliverCommit(commit, [phone, bob]);
    expectInSync([alice, phone, bob]);
    const secret = await bob.group.encrypt('epoch e+1 secret');
    expect(await attackerReads(stolen, groupId, { commit, message: secret })).toBe('epoch e+1 secret');
  });
});
