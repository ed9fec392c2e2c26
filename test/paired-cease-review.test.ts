/**
 * Review of Paired MLS CeasePair and a passive device that fell behind
 * (docs/PROTOCOL.md §4.9, §4.14) against the attacker of §4.0: the stolen
 * copy of the phone's state, which still holds the anchor leaf (and its
 * key) in a group where alice's cease lost at the DS. Each test asserts
 * the exact refusal or outcome and that the honest parties go on.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, bytesEqual, toHex, utf8, type Group } from 'paired-mls';
import { PairedDevice, WebCryptoSeedVault, decodePairingMessage, encodePairingMessage, generateSeed, type CeaseCommit } from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError } from './helpers.js';
import { aliceAndBob, applyShareRand, deliverPaired, device, invited, pairedWorld, refused, stolen } from './paired-helpers.js';
import { inSync, anchorKeyOf, catchUp, ceaseLostInG1, ceaseSend, dsWorld, honestGoOn, aliceRejoins, lockedOut, submit, type DsGroup } from './paired-ds-helpers.js';

type World = Awaited<ReturnType<typeof dsWorld>>;

const RENAME_RULE = "a leaf's credential may change only within its type and identity (RFC 9420 §5.3.1)";

/** The copy's view of `g`, caught up with the DS log from `from`. */
async function copyCatchesUp(w: World, copy: MlsClient, g: DsGroup, from: number): Promise<Group> {
  const view = copy.group(g.id);
  for (const m of await w.ds.poll('carol', g.id, from)) {
    const r = await view.process(m.bytes);
    if (r.kind === 'commit') await r.staged.merge();
  }
  return view;
}

async function lastSeq(w: World, g: DsGroup): Promise<number> {
  return (await w.ds.poll('carol', g.id, 0)).at(-1)!.seq;
}

/**
 * The copy, still on the anchor leaf with its key (alice's rekey lost), moves
 * that leaf with a resync external commit (hidden mode: the anchor key and an
 * emulation epoch of the copy's own pairing group, no vault), posted with the
 * anchor's DS account. Returns the commit.
 */
async function copyResyncs(w: World, copy: MlsClient, view: Group): Promise<Uint8Array> {
  const epochId = await copy.group(w.passiveDevice.pairingGroup.id).registerEmulationEpoch();
  const { commit } = await view.resyncAsVirtualClient(epochId);
  await submit(w.ds, view.id, 'alice', commit, { externalJoin: true });
  if (view.state().pendingCommit) await view.mergePendingCommit();
  return commit;
}




describe('Paired MLS cease review: the copy on the anchor leaf of a group whose cease lost (hidden mode)', () => {
  it('the copy moves the anchor leaf by a resync external commit (anchor key, its own emulation epoch, the anchor\'s DS account): alice follows it on her leaf, the group stays listed, and ceasePair again re-keys it and locks the copy out', async () => {
    const w = await dsWorld('hidden');
    const [g1] = w.groups;
    const phoneKey = anchorKeyOf(g1.phone);
    const anchorLeaf = g1.alice.ownLeafIndex;
    const copy = await stolen(w.p);
    const from = await lastSeq(w, g1);
    const seen: CeaseCommit[] = [];
    const { send } = await ceaseLostInG1(w, seen);

    const resync = await copyResyncs(w, copy, await copyCatchesUp(w, copy, g1, from));
    await catchUp(g1.alice, g1.inbox.alice); // bob's
    // Posted with alice's own account, so not in her inbox: she reads it from the log.
    const seenByAlice = await g1.alice.process(resync);
    if (seenByAlice.kind !== 'commit') throw new Error('expected the resync');
    await seenByAlice.staged.merge();
    await catchUp(g1.carol, g1.inbox.carol);
    await catchUp(g1.bob, g1.inbox.bob);
    // The engine follows a resync of the own leaf with its key: alice stays on it, in step with the others and the copy.
    expect([g1.alice.state().active, g1.alice.ownLeafIndex, bytesEqual(anchorKeyOf(g1.alice), phoneKey)]).toEqual([true, anchorLeaf, true]);
    inSync([g1.alice, g1.bob, g1.carol, copy.group(g1.id)]);
    // Still listed (her leaf has the anchor key of the cease's start); ceasePair again re-keys it.
    expect(w.activeDevice.ceasingGroups()).toEqual([toHex(g1.id)]);
    const again = await w.activeDevice.ceasePair('rekey', { send });
    expect(seen.at(-1)!.kind).toBe('rekey');
    expect(again.groups).toEqual([{ groupId: g1.id, commits: [seen.at(-1)!.commit], ceased: true }]);
    expect(w.activeDevice.ceasingGroups()).toEqual([]);
    await honestGoOn(w.ds, g1, 'after the rekey');
    await lockedOut(w.ds, g1, phoneKey);
    const secret = await g1.carol.encrypt('not for the copy');
    expect((await mlsError(() => copy.group(g1.id).process(secret))).code).toBe('WRONG_EPOCH');
  });

  it('the copy can no longer rename the anchor leaf (was a LIMIT): its client refuses a newSigner of another identity (INVALID_ARGUMENT), members refuse one built elsewhere (CREDENTIAL_CHANGED, test/credential-succession); ceasePair again re-keys g1 and locks the copy out', async () => {
    const w = await dsWorld('hidden');
    const [g1] = w.groups;
    const phoneKey = anchorKeyOf(g1.phone);
    const anchorLeaf = g1.alice.ownLeafIndex;
    const copy = await stolen(w.p);
    const from = await lastSeq(w, g1);
    const seen: CeaseCommit[] = [];
    const { send } = await ceaseLostInG1(w, seen);

    const view = await copyCatchesUp(w, copy, g1, from);
    const mallory = await copy.createIdentity('mallory', 1);
    const err = await mlsError(() => view.commit({ selfUpdate: true, newSigner: mallory }));
    expect([err.code, err.message]).toEqual(['INVALID_ARGUMENT', `the new credential has another identity than this member's leaf ${anchorLeaf}: ${RENAME_RULE}`]);
    expect(view.state().pendingCommit).toBeFalsy();
    await catchUp(g1.alice, g1.inbox.alice); // bob's
    // Nothing changed: g1 is still listed, and ceasePair again re-keys it.
    expect(w.activeDevice.ceasingGroups()).toEqual([toHex(g1.id)]);
    const again = await w.activeDevice.ceasePair('rekey', { send });
    expect(seen.at(-1)!.kind).toBe('rekey');
    expect(again.groups).toEqual([{ groupId: g1.id, commits: [seen.at(-1)!.commit], ceased: true }]);
    expect(w.activeDevice.ceasingGroups()).toEqual([]);
    await honestGoOn(w.ds, g1, 'after the rekey');
    await lockedOut(w.ds, g1, phoneKey);
  });

  it("the rename a verifying DS still takes (another key of the anchor's account, so the anchor's credential identity: §8.5) is recognised: alice rejoins, and ceasePair removes the renamed leaf, locking the copy out", async () => {
    const w = await dsWorld('hidden');
    const [g1] = w.groups;
    const anchorLeaf = g1.alice.ownLeafIndex;
    const anchorIdentity = g1.alice.members().find((m) => m.leafIndex === anchorLeaf)!.credential.identity;
    const copy = await stolen(w.p);
    const from = await lastSeq(w, g1);
    const seen: CeaseCommit[] = [];
    const { result, send } = await ceaseLostInG1(w, seen);
    const view = await copyCatchesUp(w, copy, g1, from);
    // A further key the copy registered for the account (same identity: the AS keeps a client's credential identity).
    const further = await copy.createIdentity(new TextDecoder().decode(anchorIdentity), 1);
    const { commit } = await view.commit({ selfUpdate: true, newSigner: further });
    await submit(w.ds, g1.id, 'alice', commit);
    await view.mergePendingCommit();
    await catchUp(g1.alice, g1.inbox.alice); // bob's
    expect((await mlsError(() => g1.alice.process(commit))).code).toBe('INVALID_COMMIT');
    await aliceRejoins(w, g1, await w.a.client.createIdentity(result.identity.identity, result.identity.ciphersuite));
    const again = await w.activeDevice.ceasePair('rekey', { send });
    // Known by the anchor's credential at its index: removed, not counted ceased blindly.
    expect(seen.at(-1)!.kind).toBe('remove');
    expect(again.groups).toEqual([{ groupId: g1.id, commits: [seen.at(-1)!.commit], ceased: true }]);
    expect(w.activeDevice.ceasingGroups()).toEqual([]);
    expect(g1.alice.members().some((m) => m.leafIndex === anchorLeaf)).toBe(false);
    await honestGoOn(w.ds, g1, 'the renamed copy removed');
    const secret = await g1.carol.encrypt('not for the copy');
    await submit(w.ds, g1.id, 'carol', secret);
    expect((await mlsError(() => view.process(secret))).code).toBe('WRONG_EPOCH');
  });
});

describe('Paired MLS cease review: a passive device that fell behind re-enrols (§4.14)', () => {
  it("the copy's KeyPackage (reset keeps the device's identity, which the copy holds) re-enrolled instead of the device's: the copy joins the pairing group but takes no ShareRand (unexpected / no-proof) and reads nothing new; the real device re-enrols naming the copy's leaf", async () => {
    const w = await pairedWorld(['bob']);
    const bob = w.others[0]!;
    const copy = await stolen(w.p);
    // The device loses a step and its Notify for good.
    const lost = await w.activeDevice.update(w.a.group!);
    await w.a.group!.mergePendingCommit();
    await deliverCommit(lost.commit, w.others);
    const staleLeaf = w.passiveDevice.pairingGroup.ownLeafIndex;
    const vault = w.passiveDevice.vault!;
    await PairedDevice.reset(w.p.client);

    // The copy resets its own copy and signs a pairing KeyPackage with the device's identity; it reaches the active device first.
    await PairedDevice.reset(copy);
    const forged = await PairedDevice.createKeyPackage(copy, w.p.identity);
    const back = await w.activeDevice.reenroll(staleLeaf, forged);
    for (const g of back.groups) await deliverCommit(g.commit, w.others);
    const copyDevice = await PairedDevice.join(copy, back.initPairing);
    await refused(() => copyDevice.receive(back.shareRand), 'PAIRING_REJECTED', 'unexpected', 'ShareRand carries no seed and no vault was preinstalled (unexpected)');
    const guessed = PairedDevice.open(copy, await WebCryptoSeedVault.import(generateSeed()));
    await refused(() => guessed.receive(back.shareRand), 'PAIRING_REJECTED', 'no-proof', 'ShareRand without a valid vault proof (no-proof)');
    await refused(() => guessed.applyNotify(back.groups[0]!), 'PAIRING_STATE', undefined, 'the pairing is not established yet');
    // It holds no state of the group (reset forgot it, the enrolment's is sealed under the vault): it reads nothing.
    expect(copy.groupIds().some((id) => bytesEqual(id, w.a.group!.id))).toBe(false);

    // The real device's KeyPackage comes; the active device re-enrols it, naming the leaf the copy took.
    const copyLeaf = copyDevice.pairingGroup.ownLeafIndex;
    const real = await w.activeDevice.reenroll(copyLeaf, await PairedDevice.createKeyPackage(w.p.client, w.p.identity));
    for (const g of real.groups) await deliverCommit(g.commit, w.others);
    const passive = await PairedDevice.join(w.p.client, real.initPairing, { vault });
    expect((await passive.receive(real.shareRand)).type).toBe('shareRandApplied');
    for (const g of real.groups) expect((await passive.applyNotify(g)).kind).toBe('enroll');
    w.p.group = w.p.client.group(w.a.group!.id);
    expectInSync([w.a, w.p, ...w.others]);
    const again = await w.activeDevice.update(w.a.group!);
    await deliverPaired(again, w.a, passive, w.others);
    const later = await bob.group!.encrypt('back in step');
    const read = await w.p.group.process(later);
    expect(read.kind === 'application' && utf8(read.data)).toBe('back in step');
  });
});

describe('Paired MLS cease review: the phone ends the pairing, its copy shares its leaf', () => {
  it("the laptop takes an unproven removal of itself from the phone's leaf once the phone's proven CeasePair came: the copy's commit is taken in place of the real step (harmless: the laptop was leaving), and before the CeasePair it is refused (wrong-sender)", async () => {
    const w = await pairedWorld(['bob']);
    const copy = await stolen(w.p);
    const pairingId = w.activeDevice.pairingGroup.id;
    const laptopLeaf = w.activeDevice.pairingGroup.ownLeafIndex;
    const forgedRemoval = async () => {
      const { commit } = await copy.group(pairingId).commit({ remove: [laptopLeaf] });
      await copy.group(pairingId).clearPendingCommit();
      return commit;
    };
    // Before any CeasePair: refused, nothing changes.
    await refused(async () => w.activeDevice.receive(await forgedRemoval()), 'PAIRING_REJECTED', 'wrong-sender');
    const cease = await w.passiveDevice.ceasePair('rekey');
    const [ceaseMessage, step] = cease.pairing as [Uint8Array, Uint8Array];
    expect(await w.activeDevice.receive(ceaseMessage)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    // The copy's commit (no PSK, no proof) removing the laptop is now taken: the ceaseFrom rule.
    expect((await w.activeDevice.receive(await forgedRemoval())).type).toBe('pairingGroupChanged');
    expect([w.activeDevice.ceased, w.activeDevice.pairingGroup.state().active]).toEqual([true, false]);
    // The real step then finds no group to process; the laptop rejoins the group with its own key as after any cease.
    const late = await mlsError(() => w.activeDevice.receive(step));
    expect({ code: late.code, message: late.message }).toEqual({ code: 'NOT_A_MEMBER', message: 'this client is no longer a member of the group' });
    for (const c of cease.groups[0]!.commits) await deliverCommit(c, w.others);
    await w.a.client.deleteGroup(w.a.group!.id);
    const rejoin = await w.a.client.joinExternal(await w.p.group!.exportGroupInfo(), w.a.identity);
    if (rejoin.group.state().pendingCommit) await rejoin.group.mergePendingCommit();
    await deliverCommit(rejoin.commit, [w.p, ...w.others]);
    w.a.group = rejoin.group;
    expectInSync([w.a, w.p, ...w.others]);
  });
});

describe('Paired MLS cease review: reset after a finished cease', () => {
  it("on the device that ended the pairing by route rekey keeps its groups (re-keyed to its new key; before: reset deleted every one of them as if followed); the group goes on", async () => {
    const w = await pairedWorld(['bob']);
    const cease = await w.activeDevice.ceasePair('rekey');
    for (const c of cease.groups[0]!.commits) await deliverCommit(c, w.others);
    expect(w.activeDevice.ceasingGroups()).toEqual([]);
    await PairedDevice.reset(w.a.client);
    expect(w.a.client.groupIds().map(toHex)).toEqual([toHex(w.a.group!.id)]);
    w.a.group = w.a.client.group(w.a.group!.id);
    const secret = await w.others[0]!.group!.encrypt('still in the group');
    const read = await w.a.group.process(secret);
    expect(read.kind === 'application' && utf8(read.data)).toBe('still in the group');
    await refused(async () => PairedDevice.open(w.a.client, undefined), 'PAIRING_STATE', undefined, 'this client has no pairing');
  });
});

describe('Paired MLS cease review: a crash before ceasePair returned (route rekey)', () => {
  it('keeps the CeasePair and the removal step (ceaseMessages()): the next call finishes the groups, the app sends them again and the phone learns the pairing ended; it is locked out of the groups as well', async () => {
    const w = await dsWorld('hidden');
    const [g1, g2] = w.groups;
    const phoneKeys = [anchorKeyOf(g1.phone), anchorKeyOf(g2.phone)];
    let reached!: () => void;
    const atSend = new Promise<void>((r) => (reached = r));
    void w.activeDevice
      .ceasePair('rekey', {
        send: async () => {
          reached();
          await new Promise<void>(() => undefined);
        },
      })
      .catch(() => undefined);
    await atSend;
    const vault = w.activeDevice.vault;
    w.a.client.free();
    w.a.client = await (await import('paired-mls')).MlsClient.open({ storage: w.a.storage });
    const active = PairedDevice.open(w.a.client, vault);
    expect({ ceased: active.ceased, ceasing: active.ceasingGroups() }).toEqual({ ceased: true, ceasing: [toHex(g1.id), toHex(g2.id)] });
    // Route rekey made every group's commit first: the app settles them (the DS got none: cleared), then ceases again.
    for (const g of [g1, g2]) await w.a.client.group(g.id).clearPendingCommit();
    const seen: CeaseCommit[] = [];
    const again = await active.ceasePair('rekey', { send: ceaseSend(w.ds, seen) });
    expect(again.pairing).toEqual([]);
    expect(again.groups.map((g) => g.ceased)).toEqual([true, true]);
    expect(active.ceasingGroups()).toEqual([]);
    // The phone got nothing yet: the app sends what the cease kept (it used to be lost with the crash).
    expect({ ceased: w.passiveDevice.ceased, role: w.passiveDevice.role }).toEqual({ ceased: false, role: 'passive' });
    const [cease, removal, ...rest] = active.ceaseMessages();
    expect(rest).toEqual([]);
    expect(await w.passiveDevice.receive(cease!)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    expect(w.passiveDevice.ceased).toBe(true);
    expect(await w.passiveDevice.receive(removal!)).toEqual({ type: 'derivationStep', counter: 2n });
    // Sent twice (the app did send them before the crash): the copy is refused, harmlessly (the removal step took the phone out).
    const twice = await mlsError(() => w.passiveDevice.receive(cease!));
    expect({ name: twice.name, code: twice.code, message: twice.message }).toEqual({ name: 'MlsError', code: 'NOT_A_MEMBER', message: 'this client is no longer a member of the group' });
    // Kept until reset, so a second crash loses nothing either; a copy is handed out each time.
    expect(active.ceaseMessages().map(toHex)).toEqual([cease, removal].map((m) => toHex(m!)));
    // Locked out all the same: the anchor key it holds is gone from both groups.
    for (const [i, g] of [g1, g2].entries()) {
      g.alice = w.a.client.group(g.id);
      await honestGoOn(w.ds, g, 'after the crash');
      await lockedOut(w.ds, g, phoneKeys[i]!);
    }
    // A reset and a new KeyPackage bring it nowhere: the laptop's pairing has ended.
    await refused(() => active.reenroll(1, new Uint8Array(0)), 'PAIRING_STATE', undefined, 'the pairing has ended');
  });
});

describe('Paired MLS cease review: the kept cease messages (ceaseMessages())', () => {
  for (const [route, who] of [['rekey', 'active'], ['rekey', 'passive'], ['rejoin', 'active'], ['rejoin', 'passive']] as const) {
    it(`route ${route}, ceased by the ${who} device: the app wiping and extending result.pairing leaves them whole; a second copy is refused MESSAGE_REPLAYED before the removal step, NOT_A_MEMBER after it; a restart keeps them, a new pairing drops them`, async () => {
      const w = await pairedWorld(['bob']);
      const [ceaser, other, m] = who === 'active' ? [w.activeDevice, w.passiveDevice, w.a] : [w.passiveDevice, w.activeDevice, w.p];
      const result = await ceaser.ceasePair(route);
      const kept = ceaser.ceaseMessages().map(toHex);
      expect(kept).toEqual(result.pairing.map(toHex));
      expect(kept.length).toBe(route === 'rekey' ? 2 : 1);
      // The app's copies are its own (before: the state's array, so a wipe or transfer after sending emptied what a re-send needs).
      for (const msg of result.pairing) msg.fill(0);
      result.pairing.push(new Uint8Array([1]));
      expect(ceaser.ceaseMessages().map(toHex)).toEqual(kept);
      const [cease, removal] = ceaser.ceaseMessages();
      expect(await other.receive(cease!)).toEqual({ type: 'pairingCeased', route });
      const replayed = await mlsError(() => other.receive(cease!));
      expect({ code: replayed.code, message: replayed.message }).toEqual({ code: 'MESSAGE_REPLAYED', message: 'processing message: The requested secret was deleted to preserve forward secrecy.' });
      expect(other.ceased).toBe(true);
      if (removal) {
        expect(await other.receive(removal)).toEqual({ type: 'derivationStep', counter: 1n });
        for (const again of [cease!, removal]) {
          const refusedCopy = await mlsError(() => other.receive(again));
          expect({ code: refusedCopy.code, message: refusedCopy.message }).toEqual({ code: 'NOT_A_MEMBER', message: 'this client is no longer a member of the group' });
        }
      }
      // Saved with the cease: a restart reads them back.
      const vault = ceaser.vault;
      m.client.free();
      m.client = await MlsClient.open({ storage: m.storage });
      expect(PairedDevice.open(m.client, vault).ceaseMessages().map(toHex)).toEqual(kept);
      expect(other.ceaseMessages()).toEqual([]);
      // A new pairing on the client replaces the ended one's state: nothing of its cease is kept.
      const next = await PairedDevice.initiate(m.client, m.identity);
      expect(next.ceaseMessages()).toEqual([]);
      expect(PairedDevice.open(m.client, undefined).ceaseMessages()).toEqual([]);
    });
  }
});

describe('Paired MLS cease review: a device with a preinstalled seed that re-enrols (§4.14)', () => {
  it('the ShareRand of its first pairing, read by a copy taken before it was applied, replayed in a fork the copy builds (same pairing group id, epoch and inviter leaf) for the new KeyPackage, is refused (no-proof: the proof covers the epoch authenticator); the device resets and pairs with the real re-enrolment', async () => {
    const seed = generateSeed();
    const [va, vp] = await Promise.all([0, 1].map(() => WebCryptoSeedVault.import(seed.slice())));
    seed.fill(0);
    const { a } = await aliceAndBob();
    const phone = await device('alice-phone');
    const { active, joiner, shareRand } = await invited(a, phone, { vault: va, joinerVault: vp });
    const pairingId = active.pairingGroup.id;
    const inviterLeaf = active.pairingGroup.ownLeafIndex;
    const epoch = active.pairingGroup.epoch;
    // The copy, taken after the join and before the ShareRand, reads it (its proof is not secret).
    const copy = await stolen(phone);
    const read = await copy.group(pairingId).process(shareRand);
    if (read.kind !== 'application') throw new Error('expected the ShareRand');
    const replayed = decodePairingMessage(read.data);
    expect(replayed.type).toBe('shareRand');
    const applied = await applyShareRand(joiner, shareRand);
    expect(await active.receive(applied.accept)).toEqual({ type: 'paired' });

    // Later the phone falls behind and re-enrols: reset, and a new KeyPackage over the pairing channel.
    const staleLeaf = joiner.pairingGroup.ownLeafIndex;
    await PairedDevice.reset(phone.client);
    const keyPackage = await PairedDevice.createKeyPackage(phone.client, phone.identity);
    // The attacker builds the fork: the pairing group's id, the inviter at the same leaf, the device added in the same epoch.
    const mallory = await device('mallory');
    const fork = await mallory.client.createGroup(mallory.identity, { groupId: pairingId, capabilities: { virtualClient: true }, wireFormat: 'ciphertext' });
    const { welcome } = await fork.commit({ add: [keyPackage] });
    await fork.mergePendingCommit();
    expect([fork.epoch, fork.ownLeafIndex]).toEqual([epoch, inviterLeaf]);
    const forked = await PairedDevice.join(phone.client, welcome!, { vault: vp });
    // Before (version 4, the proof bound the epoch's number only): taken, the device paired with the fork, a dead end.
    const replay = await fork.encrypt(encodePairingMessage(replayed));
    await refused(() => forked.receive(replay), 'PAIRING_REJECTED', 'no-proof', 'ShareRand without a valid vault proof (no-proof)');
    expect(forked.established).toBe(false);
    // The device drops the refused pairing and re-enrols for real (the active device names its stale leaf).
    await PairedDevice.reset(phone.client);
    const again = await active.reenroll(staleLeaf, await PairedDevice.createKeyPackage(phone.client, phone.identity));
    const real = await PairedDevice.join(phone.client, again.initPairing, { vault: vp });
    expect((await real.receive(again.shareRand)).type).toBe('shareRandApplied');
    expect({ established: real.established, role: real.role, counter: real.pairingGroup.epoch }).toEqual({ established: true, role: 'passive', counter: active.pairingGroup.epoch });
  });
});

describe('Paired MLS cease review: the phone ends the pairing while a step behind', () => {
  // Was: the laptop refused the CeasePair and its step (WRONG_EPOCH) and kept the pairing, making paired updates the
  // phone refused ("the pairing has ended"), while the phone's group commit never landed (the limit of docs/PROTOCOL.md §4.9).
  // Now the phone catches up with the update its cease raced and ceases again in the new epoch (test/paired-cease-update-race).
  it('its CeasePair and step are from a pairing epoch the laptop left (WRONG_EPOCH), its group commit from an epoch the group left (the DS refuses it); taking the update it raced, it ceases again, the laptop takes that, and all go on with their own keys', async () => {
    const w = await pairedWorld(['bob']);
    const bob = w.others[0]!;
    const toDs = async ({ commit }: { commit: Uint8Array }) => deliverCommit(commit, [bob]);
    const u = await w.activeDevice.update(w.a.group!, { send: toDs });
    // The phone has not got [step, Notify] yet and ends the pairing; the DS refuses its group commit (bob: WRONG_EPOCH).
    const cease = await w.passiveDevice.ceasePair('rekey', { send: toDs });
    const [ceaseMessage, step] = cease.pairing as [Uint8Array, Uint8Array];
    const e1 = await mlsError(() => w.activeDevice.receive(ceaseMessage));
    expect({ code: e1.code, message: e1.message }).toEqual({ code: 'WRONG_EPOCH', message: 'message from an epoch whose secrets this member no longer has' });
    const e2 = await mlsError(() => w.activeDevice.receive(step));
    expect({ code: e2.code, message: e2.message }).toEqual({ code: 'WRONG_EPOCH', message: "processing message: Message epoch differs from the group's epoch." });
    const e3 = cease.groups[0]!.error as { code?: string; message?: string };
    expect({ ceased: cease.groups[0]!.ceased, code: e3.code, message: e3.message }).toEqual({ ceased: false, code: 'WRONG_EPOCH', message: "processing message: Message epoch differs from the group's epoch." });
    expect({ ceased: w.activeDevice.ceased, role: w.activeDevice.role }).toEqual({ ceased: false, role: 'active' });
    // The phone takes the update it raced, only to catch up, and makes its cease again in the epoch the step created.
    const applied = await w.passiveDevice.applyNotify(u);
    expect({ ceased: w.passiveDevice.ceased, route: applied.ceasePair?.route }).toEqual({ ceased: true, route: 'rekey' });
    const [again, removal] = applied.ceasePair!.pairing as [Uint8Array, Uint8Array];
    expect(await w.activeDevice.receive(again)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    expect((await w.activeDevice.receive(removal)).type).toBe('derivationStep');
    expect({ ceased: w.activeDevice.ceased, inPairingGroup: w.activeDevice.pairingGroup.state().active }).toEqual({ ceased: true, inPairingGroup: false });
    // Its groups: ceasePair again, from the update's epoch; the laptop joins again with its own key.
    const finish = await w.passiveDevice.ceasePair('rekey', { send: toDs });
    expect({ pairing: finish.pairing, ceased: finish.groups.map((g) => g.ceased) }).toEqual({ pairing: [], ceased: [true] });
    w.p.group = w.p.client.group(bob.group!.id);
    expectInSync([w.p, bob]);
    await w.a.client.deleteGroup(bob.group!.id);
    const rejoin = await w.a.client.joinExternal(await bob.group!.exportGroupInfo(), w.a.identity);
    if (rejoin.group.state().pendingCommit) await rejoin.group.mergePendingCommit();
    await deliverCommit(rejoin.commit, [w.p, bob]);
    w.a.group = rejoin.group;
    const secret = await bob.group!.encrypt('both read on');
    for (const m of [w.a, w.p]) {
      const r = await m.group!.process(secret);
      expect(r.kind === 'application' && utf8(r.data)).toBe('both read on');
    }
    // The laptop updates for nobody any more; the update is not taken twice at the phone.
    expect((await mlsError(() => w.activeDevice.update(w.a.group!))).code).toBe('PAIRING_STATE');
    await refused(() => w.passiveDevice.applyNotify(u), 'PAIRING_REJECTED', 'unexpected', 'the pairing has ended (unexpected)');
  });
});

describe('Paired MLS cease review: a cease right after a hand-over, reordered', () => {
  it('the new active device ends the pairing before the phone took the RoleChange: the CeasePair arriving first is refused (stale) and changes nothing; after the RoleChange the same message is taken, then the step', async () => {
    const w = await pairedWorld(['bob']);
    const bob = w.others[0]!;
    // A paired update first: the phone then holds an anchor key for the group (a hand-over needs one).
    const u = await w.activeDevice.update(w.a.group!);
    await deliverPaired(u, w.a, w.passiveDevice, w.others);
    const roleChange = await w.activeDevice.handOver();
    // The phone is the active device from the laptop's view; the laptop — now passive — ends the pairing (rekey).
    const cease = await w.activeDevice.ceasePair('rekey');
    const [ceaseMessage, step] = cease.pairing as [Uint8Array, Uint8Array];
    await refused(() => w.passiveDevice.receive(ceaseMessage), 'PAIRING_REJECTED', 'stale', 'ceasePair for counter 3, expected 2 (stale)');
    expect({ ceased: w.passiveDevice.ceased, role: w.passiveDevice.role }).toEqual({ ceased: false, role: 'passive' });
    expect(await w.passiveDevice.receive(roleChange)).toEqual({ type: 'roleChanged', role: 'active' });
    // The refusal rolled the decryption back: the same CeasePair is taken now, then the step that removes the phone.
    expect(await w.passiveDevice.receive(ceaseMessage)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    expect((await w.passiveDevice.receive(step)).type).toBe('derivationStep');
    expect([w.passiveDevice.ceased, w.passiveDevice.pairingGroup.state().active]).toEqual([true, false]);
    // The laptop's re-key of the group goes through at bob; the phone is shut out of it.
    for (const c of cease.groups[0]!.commits) await deliverCommit(c, [bob]);
    const secret = await bob.group!.encrypt('after the cease');
    const r = await w.a.group!.process(secret);
    expect(r.kind === 'application' && utf8(r.data)).toBe('after the cease');
    expect((await mlsError(() => w.p.group!.process(secret))).code).toBe('WRONG_EPOCH');
  });
});

describe('Paired MLS cease review: the copy tries to rename the anchor leaf before route rejoin removes it (hidden mode)', () => {
  it('was a LIMIT: its client refuses the rename (INVALID_ARGUMENT), nothing is posted, and alice\'s removal of the anchor leaf goes through', async () => {
    const w = await dsWorld('hidden');
    const [g1] = w.groups;
    const anchorLeaf = g1.alice.ownLeafIndex;
    const copy = await stolen(w.p);
    const from = await lastSeq(w, g1);
    const seen: CeaseCommit[] = [];
    const send = ceaseSend(w.ds, seen);
    let refusal: [string, string] | undefined;
    const result = await w.activeDevice.ceasePair('rejoin', {
      send: async (c) => {
        if (bytesEqual(c.groupId, g1.id) && c.kind === 'remove') {
          // The copy follows alice's join and tries to rename the anchor leaf first.
          const view = await copyCatchesUp(w, copy, g1, from);
          const mallory = await copy.createIdentity('mallory', 1);
          const err = await mlsError(() => view.commit({ selfUpdate: true, newSigner: mallory }));
          refusal = [err.code, err.message];
        }
        await send(c);
      },
    });
    expect(refusal).toEqual(['INVALID_ARGUMENT', `the new credential has another identity than this member's leaf ${anchorLeaf}: ${RENAME_RULE}`]);
    expect(result.groups.map((g) => g.ceased)).toEqual([true, true]);
    expect(w.activeDevice.ceasingGroups()).toEqual([]);
    // The anchor leaf is gone from g1: the copy is out.
    g1.alice = w.a.client.group(g1.id);
    expect(g1.alice.members().some((m) => m.leafIndex === anchorLeaf && bytesEqual(m.signatureKey, anchorKeyOf(g1.phone)))).toBe(false);
  });
});
