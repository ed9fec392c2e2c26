// `npm run demo -- paired-standard`: Paired MLS standard mode through the
// Delivery Service. alice's laptop and phone pair (InitPairing from both,
// Accept from the DS, then the pairing group's InitPairing/ShareRand/
// Accept through it), the anchor leaf lists both devices, bob sees which
// device made each paired update, and a thief holding the anchor's shared
// key (a copy of the laptop's storage) but signing with a key of its own
// gets nothing accepted.
import { MemoryStorageAdapter, MlsClient, bytesEqual, utf8 } from 'paired-mls';
import { PairedDevice, deviceSignedAad, listedDevices } from 'paired-mls/paired';
import { DeliveryService } from 'paired-mls/services';

async function person(name) {
  const storage = new MemoryStorageAdapter();
  const client = await MlsClient.open({ storage });
  return { name, storage, client, identity: await client.createIdentity(name, 1), group: undefined };
}

async function submit(ds, groupId, sender, message, extras = {}) {
  const r = await ds.submit(groupId, sender, message, extras);
  if (!r.accepted) throw new Error(`the DS refused a message: ${r.message}`);
  return r.seq;
}

export async function run(log) {
  const ds = await DeliveryService.create();
  const laptop = await person('alice');
  const phone = await person('alice-phone');
  const bob = await person('bob');

  laptop.group = await laptop.client.createGroup(laptop.identity);
  const groupId = laptop.group.id;
  await ds.createGroup(groupId, 'alice');
  const add = await laptop.group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
  const addSeq = await submit(ds, groupId, 'alice', add.commit, { added: ['bob'], welcome: add.welcome });
  await laptop.group.mergePendingCommit();
  bob.group = await bob.client.joinFromWelcome((await ds.welcomes('bob'))[0].welcome);
  const bobInbox = ds.inbox('bob', groupId, addSeq);
  log(`1. alice (laptop) and bob share a group on the DS (epoch ${laptop.group.epoch})`);

  // Figure 1a: both devices send InitPairing; the DS answers Accept.
  const first = await ds.initPairing('alice', 'alice', 'alice-phone');
  const accepted = await ds.initPairing('alice-phone', 'alice', 'alice-phone');
  log(`2. InitPairing from the laptop (accepted yet: ${first}) and from the phone: the DS accepts (${accepted}); devices of alice: ${(await ds.devicesOf('alice')).join(', ')}`);

  const active = await PairedDevice.initiate(laptop.client, laptop.identity, { mode: 'standard' });
  const pairingId = active.pairingGroup.id;
  await ds.createGroup(pairingId, 'alice');
  const invite = await active.invite(await PairedDevice.createKeyPackage(phone.client, phone.identity));
  const joinSeq = await submit(ds, pairingId, 'alice', invite.pairingCommit, { added: ['alice-phone'], welcome: invite.initPairing });
  await submit(ds, pairingId, 'alice', invite.shareRand);
  const initPairing = (await ds.welcomes('alice-phone')).find((w) => bytesEqual(w.groupId, pairingId));
  const passive = await PairedDevice.join(phone.client, initPairing.welcome);
  const phonePairing = ds.inbox('alice-phone', pairingId, joinSeq);
  const shared = await passive.receive((await phonePairing.next())[0]);
  await submit(ds, pairingId, 'alice-phone', shared.accept);
  const laptopPairing = ds.inbox('alice', pairingId, joinSeq + 1);
  await active.receive((await laptopPairing.next())[0]);
  log(`3. pairing group through the DS: InitPairing ${invite.initPairing.length} B, ShareRand ${invite.shareRand.length} B, Accept ${shared.accept.length} B; mode on the phone: ${passive.mode}`);

  const phoneGroup = ds.inbox('alice-phone', groupId, addSeq);
  const enrolled = await active.enroll(laptop.group);
  await submit(ds, groupId, 'alice', enrolled.commit, { externalJoin: true });
  for (const m of enrolled.pairing) await submit(ds, pairingId, 'alice', m);
  for (const m of await bobInbox.next()) await (await bob.group.process(m)).staged.merge();
  await passive.applyNotify({ pairing: await phonePairing.next(), commit: (await phoneGroup.next())[0] });
  phone.group = phone.client.group(groupId);
  const listed = listedDevices(bob.group, laptop.group.ownLeafIndex).map((d) => utf8(d.identity));
  log(`4. enrolled: bob sees the anchor leaf ${laptop.group.ownLeafIndex} listing the devices ${listed.join(' and ')}`);

  for (let i = 0; i < 2; i++) {
    const update = await active.update(laptop.group);
    await submit(ds, groupId, 'alice', update.commit);
    await laptop.group.mergePendingCommit();
    for (const m of update.pairing) await submit(ds, pairingId, 'alice', m);
    const [commit] = await bobInbox.next();
    const seen = await bob.group.process(commit);
    log(`5.${i + 1} paired update to epoch ${seen.staged.newEpoch}: bob's result names the device "${utf8(seen.device.identity)}"`);
    await seen.staged.merge();
    await passive.applyNotify({ pairing: await phonePairing.next(), commit: (await phoneGroup.next())[0] });
  }
  log(`   the phone followed through the DS; its epoch authenticator equals bob's: ${bytesEqual(phone.group.epochAuthenticator(), bob.group.epochAuthenticator())}`);

  // A thief copies the laptop's storage: the anchor key and the group
  // state, and signs with a device key of its own.
  const thief = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(laptop.storage) });
  const thiefKey = await thief.createIdentity('not-a-listed-device', 1);
  const stolenGroup = thief.group(groupId);
  const attempts = [
    ['without a device signature', {}],
    [
      'with a signature by its own key',
      {
        aad: deviceSignedAad(thief, thiefKey, {
          groupId,
          epoch: BigInt(stolenGroup.epoch),
          senderLeaf: stolenGroup.ownLeafIndex,
          contentType: 3,
          contentDigest: new Uint8Array(32),
        }),
      },
    ],
  ];
  for (const [i, [how, options]] of attempts.entries()) {
    const { commit } = await stolenGroup.commit({ remove: [bob.group.ownLeafIndex], ...options });
    await stolenGroup.clearPendingCommit();
    try {
      await bob.group.process(commit);
      log(`6.${i + 1} the thief's commit ${how} was ACCEPTED (unexpected)`);
    } catch (err) {
      log(`6.${i + 1} the thief's commit ${how}: rejected by bob [${err.code}] ${err.message}`);
    }
  }
}
