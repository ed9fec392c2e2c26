/**
 * review61d: an attacker's review of the CeasePair allowance (PROTOCOL
 * §4.9, "A CeasePair behind on hand-overs": a CeasePair of the receiver's
 * current pairing epoch is taken for any counter up to its own).
 *
 * The soundness claim rests on "a proven CeasePair of the current pairing
 * epoch exists only where its sender ended the pairing". Tried here:
 *
 * 1. A storage failure at the cease's write (both routes, both modes): the
 *    stored state (what the thief copies) holds no CeasePair and the
 *    pairing not ended, the call returned no message, the device reopened
 *    goes on in the pairing (a hand-over, a paired update) and its later
 *    real cease is taken. Holds.
 * 2. The thief's older copy (same pairing epoch, counter superseded by
 *    hand-overs the watch took): without the vault it makes nothing
 *    (`no seed vault`); the honest watch restored from that backup, with
 *    its vault, ends the pairing for its old counter and the others take
 *    it (by design: the user ended it; before the change it was `replay`).
 * 3. An honest CeasePair the network held back while the others handed
 *    over (one pairing epoch), delivered late: taken (the watch ended it);
 *    the thief's copy of the watch (taken before the cease) replaces the
 *    removal step with its own commit from the watch's leaf: taken at the
 *    receiver it removes, as the watch's own would be, nothing more
 *    (a commit from that leaf that does not remove the receiver is
 *    `wrong-sender`); after a paired update the late CeasePair is
 *    `WRONG_EPOCH`. Holds (the network may delay; the cease is the
 *    sender's own).
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, type StorageBatch } from 'paired-mls';
import { PairedDevice, type PairingMode } from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError } from './helpers.js';
import { pairedTrio, read, refused, stolen, takeRekeyCease } from './paired-helpers.js';

type Trio = Awaited<ReturnType<typeof pairedTrio>>;
const state = (d: PairedDevice) => ({ ceased: d.ceased, role: d.role, counter: d.counter });

/** Laptop → phone → laptop, taken by the devices in `takers` besides the target. */
async function twoHandOvers(t: Trio, takers: PairedDevice[]): Promise<void> {
  const laptopLeaf = t.laptop.pairingGroup.ownLeafIndex;
  const phoneLeaf = t.phoneDevice.pairingGroup.ownLeafIndex;
  const first = await t.laptop.handOver(phoneLeaf);
  for (const d of [t.phoneDevice, ...takers]) expect((await d.receive(first)).type).toBe('roleChanged');
  const second = await t.phoneDevice.handOver(laptopLeaf);
  for (const d of [t.laptop, ...takers]) expect((await d.receive(second)).type).toBe('roleChanged');
}

describe.each(['hidden', 'standard'] as const)('review61d (%s mode): a cease whose write failed leaves no CeasePair behind', (mode: PairingMode) => {
  for (const route of ['rekey', 'rejoin'] as const) {
    it(`route ${route}: the watch's storage refuses the cease's write; the stored state (the thief's copy) holds no CeasePair, the pairing goes on, and the watch's later real cease is taken`, async () => {
      const t = await pairedTrio(mode);
      const k = t.laptop.counter;
      const groupId = t.a.group!.id;
      const storage = t.watch.storage as MemoryStorageAdapter;
      const apply = storage.apply.bind(storage);
      let writes = 0;
      storage.apply = async (_batch: StorageBatch) => {
        writes++;
        throw new Error('disk full');
      };
      const err = await mlsError(() => t.watchDevice.ceasePair(route));
      expect(err.code).toBe('STORAGE');
      expect(writes).toBe(1);
      storage.apply = apply;
      // What is stored (the thief's copy): the pairing not ended, no CeasePair kept.
      const thief = PairedDevice.open(await stolen(t.watch), undefined);
      expect({ ...state(thief), kept: thief.ceaseMessages().length }).toEqual({ ceased: false, role: 'passive', counter: k, kept: 0 });
      await refused(() => thief.ceasePair(route), 'PAIRING_STATE', undefined, 'no seed vault');
      // The watch reopened from its storage: in the pairing, as before.
      t.watch.client.free();
      const client = await MlsClient.open({ storage });
      t.watch.client = client;
      const watch = PairedDevice.open(client, t.watchVault);
      expect({ ...state(watch), kept: watch.ceaseMessages().length }).toEqual({ ceased: false, role: 'passive', counter: k, kept: 0 });
      // The pairing goes on: the laptop hands over to the phone (the watch takes it), the phone updates, both follow.
      const roleChange = await t.laptop.handOver(t.phoneDevice.pairingGroup.ownLeafIndex);
      expect(await t.phoneDevice.receive(roleChange)).toEqual({ type: 'roleChanged', role: 'active' });
      expect(await watch.receive(roleChange)).toEqual({ type: 'roleChanged', role: 'passive' });
      const u = await t.phoneDevice.update(t.phone.group!, { send: async () => undefined });
      await deliverCommit(u.commit, [t.bob]);
      for (const d of [t.laptop, watch]) expect((await d.applyNotify(u)).kind).toBe('update');
      t.watch.group = client.group(groupId);
      expectInSync([t.a, t.phone, t.watch, t.bob]);
      expect([state(t.laptop), state(t.phoneDevice), state(watch)]).toEqual([
        { ceased: false, role: 'passive', counter: k + 2n },
        { ceased: false, role: 'active', counter: k + 2n },
        { ceased: false, role: 'passive', counter: k + 2n },
      ]);
      // The thief's copy is a step behind now: whatever it sends in the pairing group is of a past epoch.
      const junk = await thief.pairingGroup.encrypt(new Uint8Array([0, 5, 5, 1]));
      expect((await mlsError(() => t.laptop.receive(junk))).code).toBe('WRONG_EPOCH');
      // The watch's real cease, now: taken by both.
      const cease = await watch.ceasePair(route);
      for (const d of [t.laptop, t.phoneDevice]) {
        expect(await d.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route });
        // Not behind: the step injects the PSK the receiver expects (a removal step like any, §4.9).
        if (route === 'rekey') {
          expect(await d.receive(cease.pairing[1]!)).toEqual({ type: 'derivationStep', counter: k + 2n });
          expect(d.pairingGroup.state().active).toBe(false);
        }
        expect(d.ceased).toBe(true);
      }
      if (route === 'rekey') {
        for (const g of cease.groups) for (const c of g.commits) await deliverCommit(c, [t.bob]);
        t.watch.group = client.group(groupId);
        expectInSync([t.watch, t.bob]);
        const hello = await t.bob.group!.encrypt('after the cease');
        expect(await read(t.watch, hello)).toBe('after the cease');
      }
    });
  }
});

describe.each(['hidden', 'standard'] as const)('review61d (%s mode): an older copy of the watch, same pairing epoch, counter superseded', (mode: PairingMode) => {
  it("the thief's older copy makes nothing (no seed vault); the honest watch restored from that backup ends the pairing for its old counter and both take it (the user's cease)", async () => {
    const t = await pairedTrio(mode);
    const k = t.laptop.counter;
    const backup = await MemoryStorageAdapter.copyOf(t.watch.storage!);
    const thiefCopy = await MemoryStorageAdapter.copyOf(t.watch.storage!);
    await twoHandOvers(t, [t.watchDevice]);
    expect([t.laptop.counter, t.phoneDevice.counter, t.watchDevice.counter]).toEqual([k + 2n, k + 2n, k + 2n]);
    const thief = PairedDevice.open(await MlsClient.open({ storage: thiefCopy }), undefined);
    expect(state(thief)).toEqual({ ceased: false, role: 'passive', counter: k });
    await refused(() => thief.ceasePair('rekey'), 'PAIRING_STATE', undefined, 'no seed vault');
    await refused(() => thief.ceasePair('rejoin'), 'PAIRING_STATE', undefined, 'no seed vault');
    // The watch restored from the backup (its vault is its own): counter k, in the same pairing epoch.
    const client = await MlsClient.open({ storage: backup });
    const restored = PairedDevice.open(client, t.watchVault);
    expect(state(restored)).toEqual({ ceased: false, role: 'passive', counter: k });
    expect(restored.pairingGroup.epoch).toBe(t.laptop.pairingGroup.epoch);
    const cease = await restored.ceasePair('rekey');
    await takeRekeyCease([t.laptop, t.phoneDevice], cease);
    expect([state(t.laptop), state(t.phoneDevice)]).toEqual([
      { ceased: true, role: 'active', counter: k + 2n },
      { ceased: true, role: 'passive', counter: k + 2n },
    ]);
    for (const g of cease.groups) for (const c of g.commits) await deliverCommit(c, [t.bob]);
    t.watch.client = client;
    t.watch.group = client.group(t.a.group!.id);
    expectInSync([t.watch, t.bob]);
    const hello = await t.watch.group.encrypt('restored watch after the cease');
    expect(await read(t.bob, hello)).toBe('restored watch after the cease');
  });
});

describe.each(['hidden', 'standard'] as const)('review61d (%s mode): an honest CeasePair held back across hand-overs', (mode: PairingMode) => {
  it("delivered late in the same pairing epoch it is taken; the thief's copy of the watch replaces the removal step: taken only where it removes the receiver, as the watch's own", async () => {
    const t = await pairedTrio(mode);
    const k = t.laptop.counter;
    const laptopLeaf = t.laptop.pairingGroup.ownLeafIndex;
    const phoneLeaf = t.phoneDevice.pairingGroup.ownLeafIndex;
    // The thief copies the watch before it ends the pairing (same pairing epoch, the watch's leaf key).
    const thief = PairedDevice.open(await stolen(t.watch), undefined).pairingGroup;
    const cease = await t.watchDevice.ceasePair('rekey'); // held back by the network
    await twoHandOvers(t, []);
    expect([state(t.laptop), state(t.phoneDevice)]).toEqual([
      { ceased: false, role: 'active', counter: k + 2n },
      { ceased: false, role: 'passive', counter: k + 2n },
    ]);
    // Before the CeasePair, the thief's removal from the watch's leaf is refused (not the active device, no PSK).
    const early = (await thief.commit({ remove: [laptopLeaf] })).commit;
    await thief.clearPendingCommit();
    await refused(() => t.laptop.receive(early), 'PAIRING_REJECTED', 'wrong-sender');
    // The late CeasePair: taken by both (k, two hand-overs behind).
    for (const d of [t.laptop, t.phoneDevice]) expect(await d.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    // A commit from the watch's leaf that does not remove the receiver: refused.
    const sideways = (await thief.commit({ remove: [phoneLeaf] })).commit;
    await thief.clearPendingCommit();
    await refused(() => t.laptop.receive(sideways), 'PAIRING_REJECTED', 'wrong-sender');
    // The thief's own removal of the laptop: taken, as the watch's step would be (the laptop leaves the pairing group it ended).
    const forged = (await thief.commit({ remove: [laptopLeaf] })).commit;
    await thief.clearPendingCommit();
    expect((await t.laptop.receive(forged)).type).toBe('pairingGroupChanged');
    expect(t.laptop.pairingGroup.state().active).toBe(false);
    // The phone takes the watch's real step.
    expect((await t.phoneDevice.receive(cease.pairing[1]!)).type).toBe('pairingGroupChanged');
    expect([state(t.laptop), state(t.phoneDevice)]).toEqual([
      { ceased: true, role: 'active', counter: k + 2n },
      { ceased: true, role: 'passive', counter: k + 2n },
    ]);
    for (const g of cease.groups) for (const c of g.commits) await deliverCommit(c, [t.bob]);
    t.watch.group = t.watch.client.group(t.a.group!.id);
    expectInSync([t.watch, t.bob]);
  });

  it('held back past a paired update it is WRONG_EPOCH: the laptop and the phone stay paired and go on', async () => {
    const t = await pairedTrio(mode);
    const k = t.laptop.counter;
    const cease = await t.watchDevice.ceasePair('rejoin'); // held back
    await twoHandOvers(t, []);
    const u = await t.laptop.update(t.a.group!, { send: async () => undefined });
    await deliverCommit(u.commit, [t.bob]);
    expect((await t.phoneDevice.applyNotify(u)).kind).toBe('update');
    for (const d of [t.laptop, t.phoneDevice]) expect((await mlsError(() => d.receive(cease.pairing[0]!))).code).toBe('WRONG_EPOCH');
    expect([state(t.laptop), state(t.phoneDevice)]).toEqual([
      { ceased: false, role: 'active', counter: k + 3n },
      { ceased: false, role: 'passive', counter: k + 3n },
    ]);
    expectInSync([t.a, t.phone, t.bob]);
  });
});
