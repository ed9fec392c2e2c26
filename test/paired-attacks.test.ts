/**
 * Paired MLS against an active attacker who holds a stolen copy of the
 * passive device's stored state (everything in its storage adapter) and
 * its past traffic, but not its seed vault (docs/PROTOCOL.md §4.6). Each
 * attack is run with such a copy, opened as an `MlsClient`; each asserts
 * the exact refusal, and that the real devices keep healing afterwards:
 * after the next paired update the copy reads nothing new.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, bytesEqual, utf8 } from 'paired-mls';
import { PairedDevice, WebCryptoSeedVault, decodePairingMessage, encodePairingMessage, generateSeed, pairingProofTbs, provenContent, type PairingMode, type ProvenMessage } from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError } from './helpers.js';
import { TsActor, TsExternalJoiner } from './interop-actors.js';
import { deliverPaired, pairedWorld, refused, type PairedWorld } from './paired-helpers.js';

/** The attacker's copy of the passive device: its storage, reopened, with no vault. */
async function stolenCopy(w: PairedWorld): Promise<{ client: MlsClient; storage: MemoryStorageAdapter }> {
  const storage = await MemoryStorageAdapter.copyOf(w.p.storage!);
  return { client: await MlsClient.open({ storage }), storage };
}

/**
 * The real devices heal the copy out: one paired update, applied by the
 * real passive device; a member's next message is read by both real
 * devices and not by the copy, which cannot even reach the new epoch.
 */
async function expectHealedOut(w: PairedWorld, copy: MlsClient, roles: 'as-paired' | 'swapped' = 'as-paired'): Promise<void> {
  const [active, activeMember, passive] = roles === 'as-paired' ? [w.activeDevice, w.a, w.passiveDevice] : [w.passiveDevice, w.p, w.activeDevice];
  // A copy still in the pairing epoch of the step fails on the step's PSK;
  // one left further behind cannot even place the step.
  const inStep = PairedDevice.open(copy, undefined).pairingGroup.epoch === active.pairingGroup.epoch;
  const update = await active.update(activeMember.group!);
  await deliverPaired(update, activeMember, passive, w.others);
  expectInSync([w.a, w.p, ...w.others]);
  const secret = await w.others[0]!.group!.encrypt('after healing');
  for (const real of [w.a, w.p]) {
    const r = await real.group!.process(secret);
    expect(r.kind === 'application' && utf8(r.data)).toBe('after healing');
  }
  // The copy, with a vault of its own, tries to follow the update: the
  // derivation step needs the real PSK.
  const guess = PairedDevice.open(copy, await WebCryptoSeedVault.import(generateSeed()));
  // (After a hand-over the step comes from the copy's own leaf: MLS reports
  // it as this client's own commit, which the pairing does not take.)
  if (guess.role === 'active') {
    // A copy stolen while its device was active does not even take a Notify.
    expect((await mlsError(() => guess.applyNotify(update))).code).toBe('PAIRING_STATE');
  } else {
    const reason = roles === 'swapped' ? 'unexpected' : inStep ? 'forged' : 'out-of-order';
    await refused(() => guess.applyNotify(update), 'NOTIFY_REJECTED', reason);
  }
  expect((await mlsError(() => copy.group(w.a.group!.id).process(secret))).code).toBe('WRONG_EPOCH');
}

/** A vault proof as the real device holding `vault` makes it (for crafting messages in tests). */
async function prove(vault: WebCryptoSeedVault, device: PairedDevice, message: ProvenMessage, senderLeaf: number): Promise<Uint8Array> {
  const tbs = pairingProofTbs(device.pairingGroup.id, BigInt(device.pairingGroup.epoch), senderLeaf, provenContent(message));
  return vault.derive('proof', tbs, 32);
}

describe.each(['hidden', 'standard'] as const)('Paired MLS (%s mode) against a stolen copy of the passive device', (mode: PairingMode) => {
  it('a forged CeasePair (and its removal step) is refused; the pairing goes on and heals the copy out', async () => {
    const w = await pairedWorld(['bob'], mode);
    const { client: copy } = await stolenCopy(w);
    const fakeVault = await WebCryptoSeedVault.import(generateSeed());
    const forger = PairedDevice.open(copy, fakeVault);
    const pairing = forger.pairingGroup;
    const activeLeaf = w.activeDevice.pairingGroup.ownLeafIndex;
    // The CeasePair as the real code would make it, with the copy's own vault.
    const body = { type: 'ceasePair', route: 'rekey', counter: forger.counter, proof: new Uint8Array(0) } as const;
    const ceaseMessage = await pairing.encrypt(encodePairingMessage({ ...body, proof: await prove(fakeVault, forger, body, pairing.ownLeafIndex) }));
    await refused(() => w.activeDevice.receive(ceaseMessage), 'PAIRING_REJECTED', 'no-proof');
    // The step that would remove the active device comes from the passive leaf.
    const { commit: step } = await pairing.commit({ remove: [activeLeaf], selfUpdate: true });
    await refused(() => w.activeDevice.receive(step), 'PAIRING_REJECTED', 'wrong-sender');
    // The real passive device sees a commit signed as itself that it never made.
    expect((await mlsError(() => w.passiveDevice.receive(step))).code).toBe('INVALID_COMMIT');
    expect(w.activeDevice.ceased).toBe(false);
    expect(w.activeDevice.role).toBe('active');
    await expectHealedOut(w, copy);
  });

  it('ceasePair() run on the copy with a guessed vault is refused as a whole', async () => {
    const w = await pairedWorld(['bob'], mode);
    const { client: copy } = await stolenCopy(w);
    // The forger runs on a second copy: ceasePair() changes the copy it runs on.
    const forger = PairedDevice.open((await stolenCopy(w)).client, await WebCryptoSeedVault.import(generateSeed()));
    // The copy holds the anchor key of the enrolment's paired update (in
    // standard mode also its device key), so it builds the whole cease; the
    // active device refuses its parts.
    const cease = await forger.ceasePair('rekey');
    await refused(() => w.activeDevice.receive(cease.pairing[0]!), 'PAIRING_REJECTED', 'no-proof');
    await refused(() => w.activeDevice.receive(cease.pairing[1]!), 'PAIRING_REJECTED', 'wrong-sender');
    expect(w.activeDevice.ceased).toBe(false);
    await expectHealedOut(w, copy);
  });

  it('a CeasePair with no proof at all is refused', async () => {
    const w = await pairedWorld(['bob'], mode);
    const { client: copy } = await stolenCopy(w);
    const pairing = PairedDevice.open(copy, undefined).pairingGroup;
    const bare = await pairing.encrypt(encodePairingMessage({ type: 'ceasePair', route: 'rejoin', counter: w.activeDevice.counter, proof: new Uint8Array(0) }));
    await refused(() => w.activeDevice.receive(bare), 'PAIRING_REJECTED', 'no-proof');
    await expectHealedOut(w, copy);
  });

  it('an injected pairing-group commit is refused by both devices, which stay in step', async () => {
    const w = await pairedWorld(['bob'], mode);
    const { client: copy } = await stolenCopy(w);
    const pairing = PairedDevice.open(copy, undefined).pairingGroup;
    const { commit } = await pairing.selfUpdate();
    expect((await mlsError(() => w.passiveDevice.receive(commit))).code).toBe('INVALID_COMMIT');
    await refused(() => w.activeDevice.receive(commit), 'PAIRING_REJECTED', 'wrong-sender');
    // A proposal is refused too (nobody but the active device changes the pairing group).
    await pairing.clearPendingCommit();
    const proposal = await pairing.propose({ type: 'remove', leafIndex: w.activeDevice.pairingGroup.ownLeafIndex });
    await refused(() => w.passiveDevice.receive(proposal), 'PAIRING_REJECTED', 'unexpected');
    expect(w.passiveDevice.pairingGroup.state().pendingProposals).toBe(0);
    await expectHealedOut(w, copy);
  });

  it('a forged RoleChange is refused; a proven one naming no device, or for another counter, too', async () => {
    const w = await pairedWorld(['bob'], mode);
    const { client: copy } = await stolenCopy(w);
    const copyPairing = PairedDevice.open(copy, undefined).pairingGroup;
    const ownLeaf = copyPairing.ownLeafIndex;
    const forged = await copyPairing.encrypt(
      encodePairingMessage({ type: 'roleChange', newActiveLeaf: ownLeaf, counter: w.activeDevice.counter, proof: new Uint8Array(32) }),
    );
    await refused(() => w.activeDevice.receive(forged), 'PAIRING_REJECTED', 'wrong-sender');

    // Crafted by the real active device (with its vault): a target leaf that does not exist …
    const vault = w.activeDevice.vault as WebCryptoSeedVault;
    const activeLeaf = w.activeDevice.pairingGroup.ownLeafIndex;
    const nowhere = { type: 'roleChange', newActiveLeaf: 7, counter: w.activeDevice.counter, proof: new Uint8Array(0) } as const;
    const bad = await w.activeDevice.pairingGroup.encrypt(encodePairingMessage({ ...nowhere, proof: await prove(vault, w.activeDevice, nowhere, activeLeaf) }));
    await refused(() => w.passiveDevice.receive(bad), 'PAIRING_REJECTED', 'no-such-leaf');
    // … and one for a counter that is not the current one (stale).
    const old = { type: 'roleChange', newActiveLeaf: ownLeaf, counter: w.activeDevice.counter + 3n, proof: new Uint8Array(0) } as const;
    const stale = await w.activeDevice.pairingGroup.encrypt(encodePairingMessage({ ...old, proof: await prove(vault, w.activeDevice, old, activeLeaf) }));
    await refused(() => w.passiveDevice.receive(stale), 'PAIRING_REJECTED', 'stale');
    expect(w.passiveDevice.role).toBe('passive');
    // handOver() itself refuses a target that is not a device of the pairing.
    expect((await mlsError(() => w.activeDevice.handOver(9))).code).toBe('PAIRING_STATE');
    await expectHealedOut(w, copy);
  });

  it('after a hand-over to the robbed device the copy signs as the active leaf, and still cannot prove the vault', async () => {
    const w = await pairedWorld(['bob'], mode);
    // One paired update first: in standard mode the partner holds an anchor key only from then on (§4.12).
    await deliverPaired(await w.activeDevice.update(w.a.group!), w.a, w.passiveDevice, w.others);
    const { client: copy } = await stolenCopy(w);
    expect(await w.passiveDevice.receive(await w.activeDevice.handOver())).toEqual({ type: 'roleChanged', role: 'active' });
    const pairing = PairedDevice.open(copy, undefined).pairingGroup;
    // A plain commit from the (now active) stolen leaf: no PSK, no proof.
    const { commit } = await pairing.selfUpdate();
    await refused(() => w.activeDevice.receive(commit), 'PAIRING_REJECTED', 'no-proof');
    await pairing.clearPendingCommit();
    // An add with a made-up proof in its authenticated data.
    const stranger = await MlsClient.open({ storage: new MemoryStorageAdapter() });
    const keyPackage = await PairedDevice.createKeyPackage(stranger, await stranger.createIdentity('mallory', 1));
    const { commit: add } = await pairing.commit({ add: [keyPackage], aad: new Uint8Array(32).fill(1) });
    await refused(() => w.activeDevice.receive(add), 'PAIRING_REJECTED', 'no-proof');
    await pairing.clearPendingCommit();
    // A RoleChange back to itself and a CeasePair, both without the vault's proof.
    const counter = w.activeDevice.counter;
    const roleChange = await pairing.encrypt(encodePairingMessage({ type: 'roleChange', newActiveLeaf: pairing.ownLeafIndex, counter, proof: new Uint8Array(32) }));
    await refused(() => w.activeDevice.receive(roleChange), 'PAIRING_REJECTED', 'no-proof');
    const cease = await pairing.encrypt(encodePairingMessage({ type: 'ceasePair', route: 'rekey', counter, proof: new Uint8Array(32) }));
    await refused(() => w.activeDevice.receive(cease), 'PAIRING_REJECTED', 'no-proof');
    // A ShareRand to the established pairing.
    const shareRand = await pairing.encrypt(
      encodePairingMessage({ type: 'shareRand', mode, seed: new Uint8Array(32), anchorIdentity: new Uint8Array([1]), ciphersuite: 1, anchorKeyPair: new Uint8Array(0), counter, proof: new Uint8Array(0) }),
    );
    await refused(() => w.activeDevice.receive(shareRand), 'PAIRING_REJECTED', 'unexpected');
    expect(w.activeDevice.role).toBe('passive');
    expect(w.activeDevice.ceased).toBe(false);
    await expectHealedOut(w, copy, 'swapped');
  });

  it("a group enrolled after the theft stays out of the copy's reach: its state travels only in the step's pairing epoch", async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const { client: copy } = await stolenCopy(w);
    // A second group of alice's with bob, enrolled after the theft.
    const second = await w.a.client.createGroup(w.a.identity);
    const { welcome } = await second.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
    await second.mergePendingCommit();
    const bobsSecond = await bob.client.joinFromWelcome(welcome!);
    const enrolled = await w.activeDevice.enroll(second);
    const seen = await bobsSecond.process(enrolled.commit);
    if (seen.kind !== 'commit') throw new Error('expected a commit');
    await seen.staged.merge();
    // The copy, with a vault of its own, cannot open the step, so neither the
    // Notify with the group's state: refused, and it holds no such group.
    const guess = PairedDevice.open(copy, await WebCryptoSeedVault.import(generateSeed()));
    await refused(() => guess.applyNotify(enrolled), 'NOTIFY_REJECTED', 'forged');
    expect(copy.groupIds().some((id) => bytesEqual(id, second.id))).toBe(false);
    // The real passive device enrols and reads the group.
    expect((await w.passiveDevice.applyNotify(enrolled)).kind).toBe('enroll');
    const secret = await bobsSecond.encrypt('second group');
    const read = await w.p.client.group(second.id).process(secret);
    expect(read.kind === 'application' && utf8(read.data)).toBe('second group');
    await expectHealedOut(w, copy);
  });

  it("a RoleChange replayed after a hand-over and a hand-back in one pairing epoch is refused (replay); roles stay, updates go on", async () => {
    const w = await pairedWorld(['bob'], mode);
    // One paired update first: in standard mode the partner holds an anchor key only from then on (§4.12).
    await deliverPaired(await w.activeDevice.update(w.a.group!), w.a, w.passiveDevice, w.others);
    const pairingEpoch = w.activeDevice.pairingGroup.epoch;
    expect(await w.passiveDevice.receive(await w.activeDevice.handOver())).toEqual({ type: 'roleChanged', role: 'active' });
    // P hands the role to A (the RoleChange the thief will replay) and A hands it back.
    const before = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(w.a.storage!) });
    const first = await w.passiveDevice.handOver();
    expect(await w.activeDevice.receive(first)).toEqual({ type: 'roleChanged', role: 'active' });
    expect(await w.passiveDevice.receive(await w.activeDevice.handOver())).toEqual({ type: 'roleChanged', role: 'active' });
    expect(w.activeDevice.pairingGroup.epoch).toBe(pairingEpoch); // no step in between: the proof's epoch is the same
    // The thief has P's state (stolen now, so its sender ratchet is past P's
    // messages) and the plaintext of P's first RoleChange from past traffic
    // (here read with a copy of A from before A processed it).
    const { client: copy } = await stolenCopy(w);
    const seen = await before.group(w.activeDevice.pairingGroup.id).process(first);
    if (seen.kind !== 'application') throw new Error(`expected the RoleChange, got ${seen.kind}`);
    const plaintext = seen.data.slice();
    const copyPairing = PairedDevice.open(copy, undefined).pairingGroup;
    await refused(async () => w.activeDevice.receive(await copyPairing.encrypt(plaintext)), 'PAIRING_REJECTED', 'replay');
    // Moving its counter forward breaks the vault proof.
    const replayed = decodePairingMessage(plaintext);
    if (replayed.type !== 'roleChange') throw new Error('expected a RoleChange');
    const bumped = encodePairingMessage({ ...replayed, counter: w.activeDevice.counter });
    await refused(async () => w.activeDevice.receive(await copyPairing.encrypt(bumped)), 'PAIRING_REJECTED', 'no-proof');
    // Roles intact: exactly one active device, P.
    expect([w.activeDevice.role, w.passiveDevice.role]).toEqual(['passive', 'active']);
    // A second copy acts as the active device it was stolen as, with a guessed vault: its step is refused.
    const actor = PairedDevice.open((await stolenCopy(w)).client, await WebCryptoSeedVault.import(generateSeed()));
    const fake = await actor.update(actor.client.group(w.a.group!.id));
    await refused(() => w.activeDevice.applyNotify(fake), 'NOTIFY_REJECTED', 'forged');
    await expectHealedOut(w, copy, 'swapped');
  });

  it('a replayed Accept, and after an update a replayed step + Notify or any message of the copy, are refused', async () => {
    const w = await pairedWorld(['bob'], mode);
    const { client: copy } = await stolenCopy(w);
    const copyPairing = PairedDevice.open(copy, undefined).pairingGroup;
    const accept = await copyPairing.encrypt(encodePairingMessage({ type: 'accept', seedConfirmation: new Uint8Array(32) }));
    await refused(() => w.activeDevice.receive(accept), 'PAIRING_REJECTED', 'unexpected');
    const first = await w.activeDevice.update(w.a.group!);
    await deliverPaired(first, w.a, w.passiveDevice, w.others);
    await refused(() => w.passiveDevice.applyNotify(first), 'NOTIFY_REJECTED', 'replay');
    // The copy is left in the pairing epoch before the step: what it sends there is from a past epoch.
    const late = await copyPairing.encrypt(encodePairingMessage({ type: 'accept', seedConfirmation: new Uint8Array(32) }));
    expect((await mlsError(() => w.activeDevice.receive(late))).code).toBe('WRONG_EPOCH');
    await expectHealedOut(w, copy);
  });

  it("the anchor's signature key heals: rotated by each paired update to a vault-derived key the copy does not hold", async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const { client: copy } = await stolenCopy(w);
    const anchorLeaf = w.a.group!.ownLeafIndex;
    const keyAt = (m: typeof bob) => m.group!.members().find((x) => x.leafIndex === anchorLeaf)!.signatureKey;
    const before = keyAt(bob);
    await expectHealedOut(w, copy);
    const after = keyAt(bob);
    expect(bytesEqual(before, after)).toBe(false);
    // Both real devices hold the new key (derived, not sent); the copy does not.
    expect(w.a.client.identities().some((i) => bytesEqual(i.signaturePublicKey, after))).toBe(true);
    expect(w.p.client.identities().some((i) => bytesEqual(i.signaturePublicKey, after))).toBe(true);
    expect(copy.identities().some((i) => bytesEqual(i.signaturePublicKey, after))).toBe(false);
    // The copy joins from a current GroupInfo with every key it holds: the
    // old anchor key no longer matches the anchor leaf, so no resync
    // replaces it; the join (if any) is a new leaf and the anchor leaf stays.
    const groupInfo = await w.a.group!.exportGroupInfo();
    for (const identity of copy.identities()) {
      const attempt = await copy.joinExternal(groupInfo, identity).catch(() => undefined);
      if (!attempt) continue;
      const seen = await bob.group!.process(attempt.commit);
      expect(seen.kind === 'commit' && seen.staged.removes).toEqual([]);
      if (seen.kind === 'commit') seen.staged.discard();
    }
    expect(bytesEqual(keyAt(bob), after)).toBe(true);
    // The anchor key is never handed to a partner (PROTOCOL §4.3): the
    // passive device's copy does not hold the key the anchor had at pairing
    // (with which it signs in groups not enrolled).
    expect(copy.identities().some((i) => bytesEqual(i.signaturePublicKey, w.a.identity.signaturePublicKey))).toBe(false);
  });

  it("an external commit that removes the anchor's leaf under another key is refused by every member; all keep working", async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const { client: copy } = await stolenCopy(w);
    const anchorLeaf = w.a.group!.ownLeafIndex;
    const anchorKey = bob.group!.members().find((x) => x.leafIndex === anchorLeaf)!.signatureKey;
    // openmls' builder only removes a leaf with the joiner's own key; ts-mls
    // (an independent RFC 9420 implementation) removes whichever leaf its
    // comparator names, so the attacker builds a valid external commit that
    // removes the anchor leaf and joins under the anchor's name, own key.
    const attacker = await TsActor.create('alice');
    const hostile = await TsExternalJoiner.join(attacker, await bob.group!.exportGroupInfo({ ratchetTree: true }), true, (leaf) =>
      bytesEqual(leaf.signaturePublicKey, anchorKey),
    );
    for (const member of [bob, w.a, w.p]) {
      const err = await mlsError(() => member.group!.process(hostile));
      expect({ code: err.code, message: err.message }).toEqual({
        code: 'INVALID_COMMIT',
        message: "an external commit may only remove a leaf with the joiner's own signature key (resync)",
      });
    }
    // Nobody moved; the pairing heals on (and the copy is healed out).
    expectInSync([w.a, w.p, bob]);
    await expectHealedOut(w, copy);
  });

  it('the real CeasePair takes effect (proven, from the partner); the receiver rejoins with its own key; the devices can pair again', async () => {
    const w = await pairedWorld(['bob'], mode);
    const { client: copy } = await stolenCopy(w);
    await expectHealedOut(w, copy);
    const cease = await w.activeDevice.ceasePair('rekey');
    for (const c of cease.groups[0]!.commits) await deliverCommit(c, w.others);
    const [ceaseMessage, step] = cease.pairing as [Uint8Array, Uint8Array];
    expect(await w.passiveDevice.receive(ceaseMessage)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    await w.passiveDevice.receive(step);
    expect(w.passiveDevice.ceased).toBe(true);
    // The receiver lost the anchor leaf; it re-keys by joining again with its own key (draft §3.1.3).
    const groupId = w.a.group!.id;
    await w.p.client.deleteGroup(groupId);
    const rejoin = await w.p.client.joinExternal(await w.a.group!.exportGroupInfo(), w.p.identity);
    if (rejoin.group.state().pendingCommit) await rejoin.group.mergePendingCommit();
    await deliverCommit(rejoin.commit, [w.a, ...w.others]);
    w.p.group = rejoin.group;
    expectInSync([w.a, w.p, ...w.others]);
    // Both can pair again (a fresh pairing over the ended one).
    const again = await PairedDevice.initiate(w.a.client, cease.identity, { mode });
    const { initPairing, shareRand } = await again.invite(await PairedDevice.createKeyPackage(w.p.client, w.p.identity));
    const rejoined = await PairedDevice.join(w.p.client, initPairing);
    const shared = await rejoined.receive(shareRand);
    expect(shared.type).toBe('shareRandApplied');
    if (shared.type === 'shareRandApplied') expect(await again.receive(shared.accept)).toEqual({ type: 'paired' });
  });
});

describe('Paired MLS: a passive device that lost a step re-enrols', () => {
  it.each(['hidden', 'standard'] as const)('%s mode: it cannot follow after a lost [step, Notify]; reset + reenroll bring it back, and it heals again', async (mode) => {
    const w = await pairedWorld(['bob', 'carol'], mode);
    const { client: copy } = await stolenCopy(w);
    const lost = await w.activeDevice.update(w.a.group!);
    await w.a.group!.mergePendingCommit();
    await deliverCommit(lost.commit, w.others);
    const next = await w.activeDevice.update(w.a.group!);
    await w.a.group!.mergePendingCommit();
    await deliverCommit(next.commit, w.others);
    // The step of `next` is from a pairing epoch the device has not reached.
    await refused(() => w.passiveDevice.applyNotify(next), 'NOTIFY_REJECTED', 'out-of-order');

    // The defined way back: the device resets and sends a new pairing KeyPackage …
    const staleLeaf = w.passiveDevice.pairingGroup.ownLeafIndex;
    const vault = w.passiveDevice.vault!;
    await PairedDevice.reset(w.p.client);
    const keyPackage = await PairedDevice.createKeyPackage(w.p.client, w.p.identity);
    // … and the active device removes the stale leaf, invites the new one and re-enrols every group.
    const back = await w.activeDevice.reenroll(staleLeaf, keyPackage);
    if (mode === 'standard') {
      // The enrolment's paired update is device-signed like every other, and members name the device.
      const seen = await w.others[0]!.group!.process(back.groups[0]!.commit);
      expect(seen.kind === 'commit' && seen.device && bytesEqual(seen.device.signatureKey, w.activeDevice.deviceIdentity.signaturePublicKey)).toBe(true);
      if (seen.kind === 'commit') seen.staged.discard();
    }
    for (const g of back.groups) await deliverCommit(g.commit, w.others);
    const passive = await PairedDevice.join(w.p.client, back.initPairing, { vault });
    const shared = await passive.receive(back.shareRand);
    expect(shared.type).toBe('shareRandApplied');
    // No Accept is needed (the device kept its vault; following the steps
    // below needs it), and by now it is from a past pairing epoch anyway.
    for (const g of back.groups) expect((await passive.applyNotify(g)).kind).toBe('enroll');
    w.p.group = w.p.client.group(w.a.group!.id);
    expectInSync([w.a, w.p, ...w.others]);

    // It follows paired updates again; the old copy (of the stale leaf) does not.
    const again = await w.activeDevice.update(w.a.group!);
    await deliverPaired(again, w.a, passive, w.others);
    expectInSync([w.a, w.p, ...w.others]);
    const secret = await w.others[0]!.group!.encrypt('back in step');
    const read = await w.p.group.process(secret);
    expect(read.kind === 'application' && utf8(read.data)).toBe('back in step');
    expect((await mlsError(() => copy.group(w.a.group!.id).process(secret))).code).toBe('WRONG_EPOCH');
  });
});

describe('Paired MLS standard mode: the anchor key is never handed over', () => {
  it('the partner never gets the anchor key from before pairing; the enrolment gives it a derived one, so it can take over', async () => {
    const w = await pairedWorld(['bob'], 'standard');
    // The partner got no anchor key with ShareRand …
    expect(w.p.client.identities().some((i) => bytesEqual(i.signaturePublicKey, w.a.identity.signaturePublicKey))).toBe(false);
    // … the enrolment (a paired update, PROTOCOL §4.4) replaced the leaf's key by one both derive …
    const anchorKey = w.others[0]!.group!.members().find((m) => m.leafIndex === w.a.group!.ownLeafIndex)!.signatureKey;
    expect(bytesEqual(anchorKey, w.a.identity.signaturePublicKey)).toBe(false);
    expect(w.p.client.identities().some((i) => bytesEqual(i.signaturePublicKey, anchorKey))).toBe(true);
    // … so the hand-over works at once and the partner commits.
    expect(await w.passiveDevice.receive(await w.activeDevice.handOver())).toEqual({ type: 'roleChanged', role: 'active' });
    await deliverPaired(await w.passiveDevice.update(w.p.group!), w.p, w.activeDevice, w.others);
    expectInSync([w.a, w.p, ...w.others]);
  });

  it('a resync of the anchor leaf with the anchor key but no device signature is refused (DEVICE_SIGNATURE); the pairing goes on', async () => {
    const w = await pairedWorld(['bob'], 'standard');
    // A holder of the active device's state (anchor key included) resyncs
    // the anchor leaf onto a leaf listing nobody, without a device signature.
    const thief = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(w.a.storage!) });
    const epochId = await PairedDevice.open(thief, undefined).pairingGroup.registerEmulationEpoch();
    const { commit } = await thief.group(w.a.group!.id).resyncAsVirtualClient(epochId, { leafAppData: [] });
    for (const member of [w.others[0]!, w.p]) {
      const err = await mlsError(() => member.group!.process(commit));
      expect({ code: err.code, message: err.message }).toEqual({
        code: 'DEVICE_SIGNATURE',
        message: 'a handshake message from a standard-mode anchor carries no device signature',
      });
    }
    await deliverPaired(await w.activeDevice.update(w.a.group!), w.a, w.passiveDevice, w.others);
    expectInSync([w.a, w.p, ...w.others]);
  });
});
