// `npm run demo -- paired`: Paired MLS (hidden mode) end to end.
// alice has a laptop (active) and a phone that cannot send updates
// (passive). They pair, the phone is compromised (an attacker copies its
// storage), the laptop updates on the phone's behalf, and the phone heals:
// the attacker's copy can no longer read, the phone can. The copy's attempt
// to cease the pairing first (to stop the healing) is refused: it lacks the
// vault's proof. Then the phone ends the pairing and the laptop is locked out.
import { MemoryStorageAdapter, MlsClient, toHex, utf8 } from 'paired-mls';
import { PairedDevice, WebCryptoSeedVault, generateSeed } from 'paired-mls/paired';

async function person(name) {
  const storage = new MemoryStorageAdapter();
  const client = await MlsClient.open({ storage });
  return { name, storage, client, identity: await client.createIdentity(name, 1), group: undefined };
}

async function tryRead(group, message) {
  try {
    const r = await group.process(message);
    return r.kind === 'application' ? `reads "${utf8(r.data)}"` : `got a ${r.kind}`;
  } catch (err) {
    return `cannot read (${err.code ?? err.message})`;
  }
}

async function deliver(commit, members) {
  for (const m of members) {
    const r = await m.group.process(commit);
    await r.staged.merge();
  }
}

export async function run(log) {
  const laptop = await person('alice'); // the anchor identity lives on the laptop
  const phone = await person('alice-phone');
  const bob = await person('bob');
  const carol = await person('carol');

  laptop.group = await laptop.client.createGroup(laptop.identity);
  const add = await laptop.group.commit({ add: [await bob.client.createKeyPackage(bob.identity), await carol.client.createKeyPackage(carol.identity)] });
  await laptop.group.mergePendingCommit();
  bob.group = await bob.client.joinFromWelcome(add.welcome);
  carol.group = await carol.client.joinFromWelcome(add.welcome);
  log(`1. alice (laptop) created a group with bob and carol (epoch ${laptop.group.epoch})`);

  // Pairing over a direct channel (draft Figure 1b).
  const active = await PairedDevice.initiate(laptop.client, laptop.identity);
  const { initPairing, shareRand } = await active.invite(await PairedDevice.createKeyPackage(phone.client, phone.identity));
  const passive = await PairedDevice.join(phone.client, initPairing);
  const shared = await passive.receive(shareRand);
  await active.receive(shared.accept);
  log(`2. paired: InitPairing ${initPairing.length} B, ShareRand ${shareRand.length} B (seed now only in non-extractable vaults), Accept ${shared.accept.length} B`);

  const enrolled = await active.enroll(laptop.group);
  await deliver(enrolled.commit, [bob, carol]);
  await passive.applyNotify(enrolled);
  phone.group = phone.client.group(laptop.group.id);
  log(`3. enrolled: the phone got the group's state inside the pairing group and followed the laptop's self-update of leaf ${laptop.group.ownLeafIndex} (to the group an ordinary ${enrolled.commit.length} B commit)`);
  log(`   epoch ${phone.group.epoch}; authenticators equal: ${toHex(phone.group.epochAuthenticator()) === toHex(bob.group.epochAuthenticator())}`);

  // Compromise of the phone: the attacker copies its whole storage (not the vault).
  const stolen = await MemoryStorageAdapter.copyOf(phone.storage);
  const attacker = await MlsClient.open({ storage: stolen });
  const beforeHeal = await bob.group.encrypt('before the paired update');
  log(`4. the phone is compromised; the attacker's copy ${await tryRead(attacker.group(laptop.group.id), beforeHeal)}`);
  await tryRead(laptop.group, beforeHeal);
  await tryRead(phone.group, beforeHeal);
  await tryRead(carol.group, beforeHeal);

  // The attacker tries to stop the healing: it runs ceasePair() on its copy
  // (with a vault of its own: it never had the phone's) and sends the
  // CeasePair and the removal step to the laptop.
  const forger = PairedDevice.open(await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(stolen) }), await WebCryptoSeedVault.import(generateSeed()));
  const forged = await forger.ceasePair('rekey');
  const verdicts = [];
  for (const message of forged.pairing) {
    verdicts.push(await active.receive(message).then((e) => `accepted (${e.type}) (!)`, (err) => `${err.code}: ${err.reason}`));
  }
  log(`   the attacker's copy sends a forged CeasePair and its removal step: the laptop refuses them (${verdicts.join('; ')});`);
  log(`   the pairing is still on (laptop ceased: ${active.ceased}, role ${active.role})`);

  // The laptop updates on the phone's behalf and sends Notify.
  const update = await active.update(laptop.group);
  await laptop.group.mergePendingCommit();
  await deliver(update.commit, [bob, carol]);
  const applied = await passive.applyNotify(update);
  log(`5. paired update: commit ${update.commit.length} B to the group, derivation step + Notify ${update.pairing.map((m) => m.length).join(' + ')} B to the phone`);
  log(`   the phone applied it: ${applied.type}, epoch ${applied.epoch}, counter ${applied.counter}`);

  const afterHeal = await bob.group.encrypt('after the paired update');
  const attackerDevice = PairedDevice.open(attacker, await WebCryptoSeedVault.import(generateSeed()));
  let attackerFollow;
  try {
    await attackerDevice.applyNotify(update);
    attackerFollow = 'followed the update (!)';
  } catch (err) {
    attackerFollow = `could not follow the update (${err.code}${err.reason ? `: ${err.reason}` : ''})`;
  }
  log(`6. healed: the attacker's copy ${attackerFollow} and ${await tryRead(attacker.group(laptop.group.id), afterHeal)};`);
  log(`   the phone ${await tryRead(phone.group, afterHeal)}; the laptop ${await tryRead(laptop.group, afterHeal)}`);
  const anchorKey = (g) => toHex(g.member(laptop.group.ownLeafIndex).signatureKey);
  log(`   the anchor's signature key was rotated to one both devices derive from the vault; the copy holds it: ${attacker.identities().some((i) => toHex(i.signaturePublicKey) === anchorKey(bob.group))}`);
  await tryRead(carol.group, afterHeal);

  // A forged or replayed Notify is refused and changes nothing.
  try {
    await passive.applyNotify(update);
  } catch (err) {
    log(`7. replaying the same Notify: ${err.code} (${err.reason})`);
  }

  // The phone ends the pairing; the laptop is locked out.
  const cease = await passive.ceasePair('rekey');
  for (const c of cease.groups[0].commits) await deliver(c, [bob, carol]);
  await active.receive(cease.pairing[0]);
  const laptopFollows = await laptop.group.process(cease.groups[0].commits[0]).then(
    () => 'followed it (!)',
    (err) => `cannot follow it (${err.code})`,
  );
  const afterCease = await carol.group.encrypt('after CeasePair');
  log(`8. the phone sent CeasePair and re-keyed the leaf with a new signature key; the laptop ${laptopFollows}`);
  log(`   the laptop ${await tryRead(laptop.group, afterCease)}; the phone ${await tryRead(phone.group, afterCease)}; bob ${await tryRead(bob.group, afterCease)}`);
}
