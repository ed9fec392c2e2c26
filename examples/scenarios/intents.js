// `npm run demo -- intents`: LeafOperationIntents
// (draft-kohbrok-mls-leaf-operation-intents). A member makes an intent to
// leave and deletes its state; epochs later the Delivery Service proposes
// it as an external sender, and a commit holding only the intent removes
// the sender and its associated device. A second intent rides in an
// external commit. Stale intents and overlapping Removes are refused.
import { MlsClient } from 'paired-mls';
import { LEAF_OPERATION_PROPOSAL_TYPE, createIntent, commitIntents, intentProposal, intentsIn } from 'paired-mls/intents';
import { DeliveryService } from 'paired-mls/services';

const CAPS = { proposals: [LEAF_OPERATION_PROPOSAL_TYPE] };
const who = (g) => g.members().map((m) => `${new TextDecoder().decode(m.credential.identity)}@${m.leafIndex}`).join(', ');

async function person(name, identity = name) {
  const client = await MlsClient.open();
  return { name, client, identity: await client.createIdentity(identity, 1), group: undefined };
}

/** Every listed member processes `message`; commits are merged. Returns the last staged commit's summary. */
async function deliver(message, members) {
  let summary;
  for (const m of members) {
    const r = await m.group.process(message);
    if (r.kind === 'commit') {
      summary = `${intentsIn(r.staged).length} intent(s), ${r.staged.removes.length} Remove(s), leaves removed by the engine: [${r.staged.impliedRemoves.join(', ')}]`;
      await r.staged.merge();
    }
  }
  return summary;
}

export async function run(log) {
  const ds = await DeliveryService.create();
  const alice = await person('alice');
  const alicePhone = await person('alice-phone', 'alice');
  const bob = await person('bob');
  const carol = await person('carol');
  let members = [alice, alicePhone, bob, carol];
  alice.group = await alice.client.createGroup(alice.identity, {
    capabilities: CAPS,
    extensions: { externalSenders: [ds.externalSenderSpec], requiredCapabilities: CAPS },
  });
  const add = await alice.group.commit({ add: await Promise.all(members.slice(1).map((m) => m.client.createKeyPackage(m.identity, { capabilities: CAPS }))) });
  await alice.group.mergePendingCommit();
  for (const m of members.slice(1)) m.group = await m.client.joinFromWelcome(add.welcome, { capabilities: CAPS });
  for (const m of members) {
    const { commit } = await m.group.selfUpdate();
    await m.group.mergePendingCommit();
    await deliver(commit, members.filter((o) => o !== m));
  }
  log(`1. group: ${who(bob.group)}; the DS is its external sender and 0xF1A0 a required proposal type`);

  const intent = createIntent(alicePhone.group, 'removeAssociatedMembers');
  log(`2. alice-phone made an intent (remove_associated_members) in epoch ${alicePhone.group.epoch} and may now delete her state`);
  const dave = await person('dave');
  const join = await bob.group.commit({ add: [await dave.client.createKeyPackage(dave.identity, { capabilities: CAPS })] });
  await bob.group.mergePendingCommit();
  await deliver(join.commit, members.filter((m) => m !== bob));
  dave.group = await dave.client.joinFromWelcome(join.welcome, { capabilities: CAPS });
  members = [...members, dave];
  log(`3. unrelated traffic: dave joined (epoch ${bob.group.epoch})`);

  // The DS checks the intent as its recipient (draft §2.3) against the group's current GroupInfo with its tree.
  await ds.createGroup(bob.group.id, 'bob', { epoch: bob.group.epoch, groupInfo: await bob.group.exportGroupInfo() });
  const { proposal } = await ds.proposeIntent(bob.group.id, intent);
  for (const m of members) await m.group.process(proposal);
  log('4. the DS checked the intent and proposed it itself (an external LeafOperationProposal); every member validated it on receipt');
  const { commit } = await commitIntents(carol.group, []);
  await carol.group.mergePendingCommit();
  log(`5. carol committed it: ${await deliver(commit, members.filter((m) => m !== carol))}`);
  members = members.filter((m) => m !== alice && m !== alicePhone);
  log(`   group now: ${who(carol.group)}`);

  const bobIntent = createIntent(bob.group, 'senderRemovalOnly');
  const erin = await person('erin');
  const info = await carol.group.exportGroupInfo();
  try {
    await erin.client.joinExternal(info, erin.identity, { capabilities: CAPS, custom: [intentProposal(bobIntent)], remove: [bobIntent.senderIndex] });
  } catch (err) {
    log(`6. an external commit with bob's intent and a Remove of bob's leaf: refused [${err.code}] (${err.message.split(': ').pop()})`);
  }
  const ext = await erin.client.joinExternal(info, erin.identity, { capabilities: CAPS, custom: [intentProposal(bobIntent)] });
  erin.group = ext.group;
  log(`7. erin joined by an external commit carrying bob's intent and took leaf ${erin.group.ownLeafIndex} (the leftmost free one): ${await deliver(ext.commit, members)}`);
  members = [...members.filter((m) => m !== bob), erin];
  log(`   group now: ${who(carol.group)}`);

  const daveUpdate = async () => {
    const { commit: update } = await dave.group.selfUpdate();
    await dave.group.mergePendingCommit();
    await deliver(update, members.filter((m) => m !== dave));
  };
  await daveUpdate(); // a leaf still holding its KeyPackage LeafNode may not make intents (replay risk)
  const daveIntent = createIntent(dave.group, 'senderRemovalOnly');
  await daveUpdate();
  try {
    await carol.group.commit({ custom: [intentProposal(daveIntent)] });
  } catch (err) {
    log(`8. dave updated his leaf after making an intent; committing it is refused [${err.code}] reason ${err.reason}`);
  }
  const epochs = new Set(members.map((m) => m.group.epoch));
  log(`9. ${members.map((m) => m.name).join(', ')} agree on epoch ${[...epochs].join(', ')}`);
}
