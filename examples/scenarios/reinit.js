// ReInit (RFC 9420 §11.2): a three-member group moves from ciphersuite 1
// to ciphersuite 3. bob commits the ReInit; the old group is retired;
// bob goes offline, so carol creates the successor (keyed with the reinit
// PSK); alice joins from the Welcome, and bob joins when he is back. Each
// joiner asks the Authentication Service about every member of the
// successor first: identities alone would let one old member sign a
// successor under another's name (docs/PROTOCOL.md §1.6 item 5).
import { MlsClient, MlsError, bytesEqual, toHex, utf8 } from 'paired-mls';
import { AuthenticationService, credentialAuthenticator } from 'paired-mls/services';

const short = (bytes) => toHex(bytes).slice(0, 16);

export async function run(log) {
  const people = {};
  for (const name of ['alice', 'bob', 'carol']) {
    const client = await MlsClient.open();
    people[name] = { name, client, identity: await client.createIdentity(name, 1), group: undefined };
  }
  const { alice, bob, carol } = people;
  alice.group = await alice.client.createGroup(alice.identity);
  const add = await alice.group.commit({
    add: [await bob.client.createKeyPackage(bob.identity), await carol.client.createKeyPackage(carol.identity)],
  });
  await alice.group.mergePendingCommit();
  for (const m of [bob, carol]) m.group = await m.client.joinFromWelcome(add.welcome);
  log(`1. alice, bob and carol share group ${short(alice.group.id)} in ciphersuite ${alice.group.state().ciphersuite}, epoch ${alice.group.epoch}`);

  // bob commits the ReInit (after the core checked every leaf lists suite 3).
  const newGroupId = new TextEncoder().encode('the team, suite 3');
  const { commit } = await bob.group.commitReInit({ ciphersuite: 3, groupId: newGroupId });
  await bob.group.mergePendingCommit();
  for (const m of [alice, carol]) {
    const r = await m.group.process(commit);
    log(`2. ${m.name} sees a commit by leaf ${r.sender.leafIndex}: ${JSON.stringify(r.staged.proposals.map((p) => ({ ...p.proposal, groupId: utf8(p.proposal.groupId) })))}`);
    await r.staged.merge();
  }
  const old = { alice: alice.group, bob: bob.group, carol: carol.group };
  const state = old.carol.reinitState();
  log(`3. the old group is retired at epoch ${state.epoch}; successor "${utf8(state.newGroupId)}" in ciphersuite ${state.ciphersuite}`);
  try {
    await old.alice.encrypt('one more in the old group?');
  } catch (err) {
    if (!(err instanceof MlsError)) throw err;
    log(`   alice tries to send in the old group: [${err.code}] ${err.message}`);
  }

  // Suite-3 identities and KeyPackages (a DS would hold these); bob is offline.
  const id3 = {};
  const as = new AuthenticationService();
  for (const m of [alice, bob, carol]) {
    id3[m.name] = await m.client.createIdentity(m.name, 3);
    as.register({ clientId: m.name, userId: m.name, identity: id3[m.name].identity, signatureKey: id3[m.name].signaturePublicKey });
  }
  const authenticate = credentialAuthenticator(as);
  const bobKp = await bob.client.createKeyPackage(id3.bob);
  log('4. bob (the proposer) goes offline; carol creates the successor instead');
  const created = await carol.client.createReInitSuccessor(old.carol, id3.carol, [
    await alice.client.createKeyPackage(id3.alice),
    bobKp,
  ]);
  await created.group.mergePendingCommit();
  carol.group = created.group;
  const aliceJoin = await alice.client.joinReInitSuccessor(old.alice, created.welcome, { authenticate });
  alice.group = aliceJoin.group;
  log(`   alice joined from carol's Welcome, the AS having vouched for its ${created.group.state().memberCount} members (creator: old leaf ${aliceJoin.creatorLeaf})`);
  const hello = await alice.group.encrypt('hello in suite 3');
  const got = await carol.group.process(hello);
  log(`   carol <- alice: "${utf8(got.data)}"`);

  const bobJoin = await bob.client.joinReInitSuccessor(old.bob, created.welcome, { authenticate });
  bob.group = bobJoin.group;
  log('5. bob is back and joins from the same Welcome');
  const same = [alice, bob, carol].every((m) => bytesEqual(m.group.epochAuthenticator(), carol.group.epochAuthenticator()));
  const s = carol.group.state();
  log(`   successor ${short(carol.group.id)}: ciphersuite ${s.ciphersuite}, epoch ${s.epoch}, ${s.memberCount} members, same epoch authenticator everywhere: ${same}`);
  if (!same) throw new Error('members disagree');
}
