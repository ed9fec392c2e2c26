// The default demo: a five-member MLS group on the wasm core.
// Members join, talk, one is removed, one updates its keys, and one device
// "crashes" and is reloaded from its storage adapter.
import { MlsClient, MemoryStorageAdapter, MlsError, bytesEqual, coreInfo, toHex, utf8 } from 'paired-mls';

const short = (bytes) => toHex(bytes).slice(0, 16);

export async function run(log) {
  const people = ['alice', 'bob', 'carol', 'dave', 'erin'];
  const members = {};
  for (const name of people) {
    const storage = new MemoryStorageAdapter(); // stands in for the device's disk
    const client = await MlsClient.open({ storage });
    const identity = await client.createIdentity(name, 1);
    members[name] = { name, storage, client, identity, group: undefined };
  }
  const info = coreInfo();
  log(`paired-mls core ${info.version}; ciphersuites ${info.ciphersuites.join(', ')}`);

  // Each member publishes a KeyPackage; alice creates the group and adds everyone in one commit.
  const { alice } = members;
  alice.group = await alice.client.createGroup(alice.identity);
  const others = people.slice(1).map((n) => members[n]);
  const keyPackages = await Promise.all(others.map((m) => m.client.createKeyPackage(m.identity)));
  const add = await alice.group.commit({ add: keyPackages });
  await alice.group.mergePendingCommit(); // the DS accepted the commit
  for (const m of others) m.group = await m.client.joinFromWelcome(add.welcome);
  log(`\n1. alice created the group and added ${others.map((m) => m.name).join(', ')} (epoch ${alice.group.epoch})`);
  showAgreement(log, members);

  // Everyone says hello; every other member decrypts it.
  log('\n2. messages');
  for (const sender of Object.values(members)) {
    const ciphertext = await sender.group.encrypt(`hi from ${sender.name}`);
    for (const receiver of Object.values(members)) {
      if (receiver === sender) continue;
      const result = await receiver.group.process(ciphertext);
      if (result.kind !== 'application') throw new Error('expected an application message');
      if (receiver.name === 'alice' || (sender.name === 'alice' && receiver.name === 'bob')) {
        log(`   ${receiver.name} <- leaf ${result.sender.leafIndex}: "${utf8(result.data)}" (${ciphertext.length} bytes on the wire)`);
      }
    }
  }

  // Carol removes dave.
  const daveLeaf = members.dave.group.ownLeafIndex;
  const removal = await members.carol.group.commit({ remove: [daveLeaf] });
  await members.carol.group.mergePendingCommit();
  for (const m of Object.values(members)) {
    if (m.name === 'carol') continue;
    const result = await m.group.process(removal.commit);
    if (m.name === 'dave') log(`\n3. carol removed dave (leaf ${daveLeaf}); dave sees selfRemoved = ${result.staged.selfRemoved}`);
    await result.staged.merge();
  }
  const dave = members.dave;
  delete members.dave;
  const afterRemoval = await members.alice.group.encrypt('dave cannot read this');
  try {
    await dave.group.process(afterRemoval);
    log('   !! dave could still read the group');
  } catch (err) {
    log(`   dave cannot read new messages: ${err instanceof MlsError ? err.code : err}`);
  }
  for (const m of Object.values(members)) if (m.name !== 'alice') await m.group.process(afterRemoval);
  showAgreement(log, members);

  // Bob updates his keys (post-compromise security).
  const before = members.alice.group.member(members.bob.group.ownLeafIndex).encryptionKey;
  const update = await members.bob.group.selfUpdate();
  await members.bob.group.mergePendingCommit();
  for (const m of Object.values(members)) {
    if (m.name === 'bob') continue;
    const result = await m.group.process(update.commit);
    await result.staged.merge();
  }
  const after = members.alice.group.member(members.bob.group.ownLeafIndex).encryptionKey;
  log(`\n4. bob updated his leaf: encryption key ${short(before)}… -> ${short(after)}…`);
  showAgreement(log, members);

  // Erin's device crashes; it reopens from its storage adapter and continues.
  const erin = members.erin;
  const groupId = erin.group.id;
  erin.client.free();
  erin.client = await MlsClient.open({ storage: erin.storage });
  erin.group = erin.client.group(groupId);
  log(`\n5. erin's client was dropped and reopened from storage (${erin.storage.size} entries): epoch ${erin.group.epoch}`);
  const fromErin = await erin.group.encrypt('back after a restart');
  const seen = await members.alice.group.process(fromErin);
  for (const m of Object.values(members)) if (m.name !== 'erin' && m.name !== 'alice') await m.group.process(fromErin);
  log(`   alice <- erin: "${utf8(seen.data)}"`);
  showAgreement(log, members);

  for (const m of [...Object.values(members), dave]) m.client.free();
}

function showAgreement(log, members) {
  const list = Object.values(members);
  const auth = list[0].group.epochAuthenticator();
  const same = list.every((m) => bytesEqual(m.group.epochAuthenticator(), auth));
  const exported = list.map((m) => m.group.exportSecret('demo', '', 16));
  const sameExport = exported.every((e) => bytesEqual(e, exported[0]));
  log(`   ${list.length} members at epoch ${list[0].group.epoch}; epoch authenticator ${short(auth)}… agreed: ${same}; exporter agreed: ${sameExport}`);
  if (!same || !sameExport) throw new Error('members disagree on the group state');
}
