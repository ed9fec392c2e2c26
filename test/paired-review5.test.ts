/**
 * Fifth review of the Paired MLS layer: one `PairedDevice` object per
 * client (docs/PROTOCOL.md §4.5), against the attacker of
 * docs/PROTOCOL.md §4.0 (a stolen copy of a passive device's storage
 * without its vault, with its traffic), hostile members racing commits
 * and a hostile DS. Each test asserts the exact refusal and that the
 * honest devices keep working.
 */
import { describe, expect, it } from 'vitest';
import { PairedDevice, type PairingMode, type SeedVault } from 'paired-mls/paired';
import { deliverCommit, expectInSync } from './helpers.js';
import { device, pairedWorld, read, refused, updateFollowed, updateWaitingOnSend } from './paired-helpers.js';

const BUSY = 'another paired operation of this device is still running (a commit waiting on its send): wait until it settled';

const CLOSED =
  'this PairedDevice object was closed (another one replaced it on its client, or its pairing was reset or replaced): use the one PairedDevice.open returns';

/** A vault that derives as `inner` does (the same seed) but is another object: a second `open` with it replaces the device. */
function wrapped(inner: SeedVault): SeedVault {
  return { derive: (label, context, length) => inner.derive(label, context, length) };
}

describe.each(['hidden', 'standard'] as const)('Paired MLS review 5: a second PairedDevice object on the same client (%s mode)', (mode: PairingMode) => {
  it('open gives the live object again, so no derivation step is taken twice: the partner follows every update', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    // Before one object per client was enforced (b54f3b8 showed it) this opened a second object
    // holding its own counter: once the first had made a paired update, the second's step
    // injected PSK(n) again, the phone refused it (NOTIFY_REJECTED counter) and then every
    // later step (out-of-order): the pair was broken.
    const second = PairedDevice.open(w.a.client, w.activeDevice.vault);
    expect(second).toBe(w.activeDevice);
    expect(PairedDevice.open(w.a.client, undefined)).toBe(w.activeDevice);
    await updateFollowed(w.activeDevice, w.a, w.passiveDevice, [bob]);
    await updateFollowed(second, w.a, w.passiveDevice, [bob]);
    expect(w.activeDevice.counter).toBe(w.passiveDevice.counter);
    expectInSync([w.a, w.p, bob]);
    const m = await bob.group!.encrypt('one device object');
    for (const d of [w.a, w.p]) expect(await read(d, m)).toBe('one device object');
  });

  it('open with another vault replaces the object: the earlier one is closed (PAIRING_STATE) and changes nothing; the new one goes on in step', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const first = w.activeDevice;
    const replacement = PairedDevice.open(w.a.client, wrapped(first.vault!));
    expect(replacement).not.toBe(first);
    const epoch = w.a.group!.epoch;
    const pairingEpoch = replacement.pairingGroup.epoch;
    await refused(() => first.update(w.a.group!, { send: async () => undefined }), 'PAIRING_STATE', undefined, CLOSED);
    await refused(() => first.receive(w.enrolment.pairing[0]!), 'PAIRING_STATE', undefined, CLOSED);
    await refused(() => first.ceasePair(), 'PAIRING_STATE', undefined, CLOSED);
    expect({ epoch: w.a.group!.epoch, pairingEpoch: replacement.pairingGroup.epoch, pending: w.a.group!.state().pendingCommit }).toEqual({ epoch, pairingEpoch, pending: false });
    await updateFollowed(replacement, w.a, w.passiveDevice, [bob]);
    await updateFollowed(replacement, w.a, w.passiveDevice, [bob]);
    expectInSync([w.a, w.p, bob]);
    // The passive side too: the phone's object replaced, the old one refuses, the new one follows.
    const phone = PairedDevice.open(w.p.client, wrapped(w.passiveDevice.vault!));
    const u = await replacement.update(w.a.group!, { send: async () => undefined });
    await deliverCommit(u.commit, [bob]);
    await refused(() => w.passiveDevice.applyNotify(u), 'PAIRING_STATE', undefined, CLOSED);
    expect((await phone.applyNotify(u)).kind).toBe('update');
    expectInSync([w.a, w.p, bob]);
  });

  it('is not opened over a paired operation still running (PAIRING_STATE); once it settled, it is', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const { update, out, release } = await updateWaitingOnSend(w);
    const other = wrapped(w.activeDevice.vault!);
    await refused(async () => PairedDevice.open(w.a.client, other), 'PAIRING_STATE', undefined, BUSY);
    expect(PairedDevice.open(w.a.client, undefined)).toBe(w.activeDevice);
    release();
    expect(await update).toBe(out);
    await deliverCommit(out.commit, [bob]);
    expect((await w.passiveDevice.applyNotify(out)).kind).toBe('update');
    const replacement = PairedDevice.open(w.a.client, other);
    await updateFollowed(replacement, w.a, w.passiveDevice, [bob]);
    expectInSync([w.a, w.p, bob]);
  });

  it('initiate and join are refused while the pairing runs; reset closes the object, and the device re-enrols with a new one', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    await refused(() => PairedDevice.initiate(w.a.client, w.a.identity, { mode }), 'PAIRING_STATE', undefined, 'this client already has a pairing');
    const invite = await PairedDevice.initiate((await device('mallory')).client, w.p.identity);
    const { initPairing } = await invite.invite(await PairedDevice.createKeyPackage(w.p.client, w.p.identity));
    await refused(() => PairedDevice.join(w.p.client, initPairing), 'PAIRING_STATE', undefined, 'this client already has a pairing');
    expect(PairedDevice.open(w.p.client, undefined)).toBe(w.passiveDevice);

    // The phone resets (it fell behind, say): its object is closed with the pairing.
    const staleLeaf = w.passiveDevice.pairingGroup.ownLeafIndex;
    const vault = w.passiveDevice.vault!;
    await PairedDevice.reset(w.p.client);
    await refused(() => w.passiveDevice.receive(w.enrolment.pairing[0]!), 'PAIRING_STATE', undefined, CLOSED);
    const back = await w.activeDevice.reenroll(staleLeaf, await PairedDevice.createKeyPackage(w.p.client, w.p.identity));
    for (const g of back.groups) await deliverCommit(g.commit, [bob]);
    const phone = await PairedDevice.join(w.p.client, back.initPairing, { vault });
    expect((await phone.receive(back.shareRand)).type).toBe('shareRandApplied');
    for (const g of back.groups) expect((await phone.applyNotify(g)).kind).toBe('enroll');
    w.p.group = w.p.client.group(w.a.group!.id);
    expect(PairedDevice.open(w.p.client, vault)).toBe(phone);
    await updateFollowed(w.activeDevice, w.a, phone, [bob]);
    expectInSync([w.a, w.p, bob]);
  });
});
