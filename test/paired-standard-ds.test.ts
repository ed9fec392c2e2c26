/**
 * Paired MLS standard mode through the Delivery Service (in process): the
 * pairing flow of the draft's Figure 1a (InitPairing from both devices,
 * Accept from the DS, then InitPairing/ShareRand/Accept of the pairing
 * group through it) and Figure 2 (the DS delivers the group's messages and
 * the Notify to every registered device of the anchor), with a paired
 * update that bob, reading only from the DS, attributes to the laptop.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, utf8, type Group } from 'paired-mls';
import { PairedDevice, listedDevices } from 'paired-mls/paired';
import { DeliveryService, DsError } from 'paired-mls/services';
import { newMember } from './helpers.js';
import { device } from './paired-helpers.js';

async function submit(ds: DeliveryService, groupId: Uint8Array, sender: string, message: Uint8Array, extras = {}): Promise<number> {
  const result = await ds.submit(groupId, sender, message, extras);
  if (!result.accepted) throw new Error(`DS refused: ${result.message}`);
  return result.seq;
}

async function applyCommits(group: Group, messages: Uint8Array[]) {
  const devices: (string | undefined)[] = [];
  for (const message of messages) {
    const r = await group.process(message);
    if (r.kind !== 'commit') throw new Error(`expected a commit, got ${r.kind}`);
    devices.push(r.device && utf8(r.device.identity));
    await r.staged.merge();
  }
  return devices;
}

describe('Paired MLS standard mode through the Delivery Service', () => {
  it('Figure 1a pairing and Figure 2 delivery: both devices follow, bob sees which device committed', async () => {
    const ds = await DeliveryService.create();
    const laptop = await device('alice');
    const phone = await device('alice-phone');
    const bob = await newMember('bob');

    // The group: alice (laptop) and bob, through the DS.
    laptop.group = await laptop.client.createGroup(laptop.identity);
    const groupId = laptop.group.id;
    await ds.createGroup(groupId, 'alice');
    const add = await laptop.group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
    const addSeq = await submit(ds, groupId, 'alice', add.commit, { added: ['bob'], welcome: add.welcome });
    await laptop.group.mergePendingCommit();
    const [bobWelcome] = await ds.welcomes('bob');
    bob.group = await bob.client.joinFromWelcome(bobWelcome!.welcome);
    const bobInbox = ds.inbox('bob', groupId, addSeq);

    // Figure 1a: InitPairing from both devices; the DS answers Accept.
    expect(await ds.initPairing('alice', 'alice', 'alice-phone')).toBe(false);
    expect(await ds.initPairing('alice-phone', 'alice', 'alice-phone')).toBe(true);
    expect(await ds.devicesOf('alice')).toEqual(['alice-phone']);
    // A third party cannot pair others; a device asking alone is never accepted.
    await expect(ds.initPairing('mallory', 'alice', 'alice-phone')).rejects.toBeInstanceOf(DsError);
    expect(await ds.initPairing('mallory', 'alice', 'mallory')).toBe(false);
    expect(await ds.devicesOf('alice')).toEqual(['alice-phone']);

    // The devices' pairing group and its messages travel through the DS too.
    const active = await PairedDevice.initiate(laptop.client, laptop.identity, { mode: 'standard' });
    const pairingId = active.pairingGroup.id;
    await ds.createGroup(pairingId, 'alice');
    const invite = await active.invite(await PairedDevice.createKeyPackage(phone.client, phone.identity));
    const joinSeq = await submit(ds, pairingId, 'alice', invite.pairingCommit, { added: ['alice-phone'], welcome: invite.initPairing });
    await submit(ds, pairingId, 'alice', invite.shareRand);
    const [initPairing] = (await ds.welcomes('alice-phone')).filter((w) => bytesEqual(w.groupId, pairingId));
    const passive = await PairedDevice.join(phone.client, initPairing!.welcome);
    const phonePairing = ds.inbox('alice-phone', pairingId, joinSeq);
    const [shareRand] = await phonePairing.next();
    const applied = await passive.receive(shareRand!);
    if (applied.type !== 'shareRandApplied') throw new Error(applied.type);
    expect(passive.mode).toBe('standard');
    await submit(ds, pairingId, 'alice-phone', applied.accept);
    const laptopPairing = ds.inbox('alice', pairingId, joinSeq + 1);
    const [accept] = await laptopPairing.next();
    expect(await active.receive(accept!)).toEqual({ type: 'paired' });

    // Enrolment: the resync commit to the group, derivation step + Notify
    // to the pairing group; the phone reads both from the DS as a
    // registered device of alice (Figure 2).
    const phoneGroup = ds.inbox('alice-phone', groupId, addSeq);
    const enrolled = await active.enroll(laptop.group);
    await submit(ds, groupId, 'alice', enrolled.commit, { externalJoin: true });
    for (const m of enrolled.pairing) await submit(ds, pairingId, 'alice', m);
    expect(await applyCommits(bob.group, await bobInbox.next())).toEqual([undefined]);
    const [enrollCommit] = await phoneGroup.next();
    await passive.applyNotify({ pairing: await phonePairing.next(), commit: enrollCommit! });
    phone.group = phone.client.group(groupId);
    const anchorLeaf = laptop.group.ownLeafIndex;
    expect(listedDevices(bob.group, anchorLeaf)!.map((d) => utf8(d.identity))).toEqual(active.pairedDevices().map((d) => utf8(d.identity)));

    // Paired updates through the DS: bob attributes each to the laptop.
    const laptopName = utf8(active.deviceIdentity.identity);
    for (let i = 0; i < 2; i++) {
      const update = await active.update(laptop.group);
      await submit(ds, groupId, 'alice', update.commit);
      await laptop.group.mergePendingCommit();
      for (const m of update.pairing) await submit(ds, pairingId, 'alice', m);
      expect(await applyCommits(bob.group, await bobInbox.next())).toEqual([laptopName]);
      const [commit] = await phoneGroup.next();
      const followed = await passive.applyNotify({ pairing: await phonePairing.next(), commit: commit! });
      expect(followed.kind).toBe('update');
    }
    const auth = bytesEqual(phone.group.epochAuthenticator(), bob.group.epochAuthenticator()) && bytesEqual(laptop.group.epochAuthenticator(), bob.group.epochAuthenticator());
    expect(auth).toBe(true);

    // The DS fans the group out to the registered device only.
    await expect(ds.poll('mallory', groupId)).rejects.toBeInstanceOf(DsError);
    const hello = await bob.group.encrypt('hello alice');
    await submit(ds, groupId, 'bob', hello);
    for (const [group, inbox] of [
      [phone.group, phoneGroup],
      [laptop.group, ds.inbox('alice', groupId)],
    ] as const) {
      const messages = await inbox.next();
      const last = await group.process(messages.at(-1)!);
      expect(last.kind === 'application' && utf8(last.data)).toBe('hello alice');
    }
  });
});
