/**
 * A passive device's CeasePair racing a paired update (docs/PROTOCOL.md
 * §4.9, "A CeasePair racing a paired update"): the laptop (active) makes a
 * paired update, the DS takes its commit and bob merges it; before the
 * phone took the step, it ends the pairing. Its CeasePair (and route
 * rekey's removal step) are of the pairing epoch the laptop's step left
 * (`WRONG_EPOCH` there), its group commit of the epoch the update left
 * (refused by the DS). It used to stay so: the laptop kept the pairing and
 * made paired updates for a leaf the phone no longer followed, the phone
 * refused them ("the pairing has ended") and stayed behind in the group,
 * its cease never landing. Now the phone keeps the pairing group of its
 * CeasePair's epoch, takes the raced step (with its Notify and commit, or
 * alone when the update lost at the DS) only to catch up, and makes its
 * cease again in the epoch the step created; the laptop takes that, both
 * have ended, the phone finishes its groups with `ceasePair` again, the
 * laptop rejoins with its own key, and all talk. The thief of §4.0 (the
 * phone's stored state and traffic, not its vault) gains nothing.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, toHex, utf8, type Group } from 'paired-mls';
import {
  PairedDevice,
  WebCryptoSeedVault,
  encodePairingMessage,
  generateSeed,
  pairingProofTbs,
  provenContent,
  type CeasePairResult,
  type PairedCommit,
  type PairedUpdateApplied,
  type PairingMode,
  type ProvenMessage,
  type SeedVault,
} from 'paired-mls/paired';
import { expectInSync, mlsError } from './helpers.js';
import { ENDED, RACE_GROUP, type Route, dsOf as ds } from './cease-race-world.js';
import { allTalk, deviceSnapshot, pairedWorld, refused, rejoinOwnKey, stolen, type PairedWorld } from './paired-helpers.js';

const PAST_EPOCH = { code: 'WRONG_EPOCH', message: 'message from an epoch whose secrets this member no longer has' };
const GONE = { code: 'NOT_A_MEMBER', message: 'this client is no longer a member of the group' };

/** The laptop's paired update, taken by the DS (bob merged it), before the phone got its step and Notify. */
async function updateTaken(w: PairedWorld): Promise<PairedCommit> {
  return w.activeDevice.update(w.a.group!, { send: ds(w.others[0]!) });
}

/** The phone ends the pairing, a step behind: its group commit loses at the DS (the update took the epoch), the group stays to cease. */
async function phoneCeasesBehind(w: PairedWorld, route: Route): Promise<CeasePairResult> {
  const bob = w.others[0]!;
  const before = w.p.client.group(bob.group!.id).epoch;
  const cease = await w.passiveDevice.ceasePair(route, { send: ds(bob) });
  expect(cease.pairing.length).toBe(route === 'rekey' ? 2 : 1);
  const [g] = cease.groups;
  expect({ ceased: g!.ceased, code: (g!.error as { code?: string }).code }).toEqual({ ceased: false, code: 'WRONG_EPOCH' });
  expect(w.passiveDevice.ceasingGroups()).toEqual([toHex(bob.group!.id)]);
  // Nothing of the refused commit is left: the phone is on the anchor leaf in the epoch before the update.
  const group = w.p.client.group(bob.group!.id);
  expect({ epoch: group.epoch, pending: group.state().pendingCommit }).toEqual({ epoch: before, pending: false });
  // No group state is kept for the race (route rekey: the refused commit kept only its own handshake secret).
  expect(w.p.client.groupRecord(bob.group!.id, RACE_GROUP)).toBeUndefined();
  return cease;
}

/** What the laptop answers to a pairing message it cannot take: an MLS error, exactly. */
async function laptopRefuses(w: PairedWorld, message: Uint8Array, expected: { code: string; message: string }): Promise<void> {
  const err = await mlsError(() => w.activeDevice.receive(message));
  expect({ code: err.code, message: err.message }).toEqual(expected);
}

/** The laptop takes the phone's CeasePair made again (route rekey: and its removal step): the pairing has ended there too. */
async function laptopTakes(w: PairedWorld, route: Route, pairing: Uint8Array[]): Promise<void> {
  expect(await w.activeDevice.receive(pairing[0]!)).toEqual({ type: 'pairingCeased', route });
  if (route === 'rekey') {
    expect((await w.activeDevice.receive(pairing[1]!)).type).toBe('derivationStep'); // its counter's PSK: the laptop checks it
    expect(w.activeDevice.pairingGroup.state().active).toBe(false);
  }
  expect({ ceased: w.activeDevice.ceased, role: w.activeDevice.role }).toEqual({ ceased: true, role: 'active' });
}

/** The phone's key in `group` (its own leaf). */
function ownKey(group: Group): Uint8Array {
  return group.members().find((m) => m.leafIndex === group.ownLeafIndex)!.signatureKey;
}

/**
 * The end state: the phone finishes its groups (`ceasePair` again, its commits to the DS), each device is a
 * member under a key of its own (the phone: the cease's identity; the laptop: rejoined with its own), no key
 * of the pairing left on a leaf, the laptop no longer updates for anyone, and bob talks with both.
 */
async function bothEndedAndTalk(w: PairedWorld, route: Route, derivedKeys: Uint8Array[]): Promise<void> {
  const bob = w.others[0]!;
  const groupId = bob.group!.id;
  if (w.passiveDevice.ceasingGroups().length > 0) {
    const finish = await w.passiveDevice.ceasePair(route, { send: ds(bob) });
    expect(finish.pairing).toEqual([]);
    expect(finish.groups.map((g) => g.ceased)).toEqual([true]);
  }
  expect({ ceased: w.passiveDevice.ceased, ceasing: w.passiveDevice.ceasingGroups() }).toEqual({ ceased: true, ceasing: [] });
  w.p.group = w.p.client.group(groupId);
  expectInSync([w.p, bob]);
  await rejoinOwnKey(w.a, bob, [w.p, bob]);
  await allTalk([w.a, w.p, bob], 'after the cease');
  const phoneKey = ownKey(w.p.group);
  expect(bytesEqual(phoneKey, w.passiveDevice.anchor!.signaturePublicKey)).toBe(true);
  expect(bytesEqual(ownKey(w.a.group!), w.a.identity.signaturePublicKey)).toBe(true);
  const keys = bob.group!.members().map((m) => toHex(m.signatureKey));
  expect(keys.length).toBe(3);
  for (const k of derivedKeys) expect(keys).not.toContain(toHex(k));
  // The laptop no longer updates on anyone's behalf.
  const err = await mlsError(() => w.activeDevice.update(w.a.group!));
  expect({ code: err.code, message: err.message }).toEqual({ code: 'PAIRING_STATE', message: 'the pairing has ended' });
  // What the phone kept for a race: no group state at any point; the pairing group of its CeasePair's epoch
  // goes with the pairing (reset); the group stays, and bob reads the phone.
  expect(w.p.client.groupRecord(groupId, RACE_GROUP)).toBeUndefined();
  expect(w.p.client.record('paired-mls/cease-race')).toBeDefined();
  await PairedDevice.reset(w.p.client);
  expect(w.p.client.record('paired-mls/cease-race')).toBeUndefined();
  const last = await w.p.group.encrypt('after the reset');
  const r = await bob.group!.process(last);
  expect(r.kind === 'application' && utf8(r.data)).toBe('after the reset');
}

describe.each(['hidden', 'standard'] as const)('Paired MLS (%s mode): a CeasePair racing a paired update', (mode: PairingMode) => {
  for (const route of ['rekey', 'rejoin'] as const) {
    for (const order of ['old cease first', 'old cease after the renewed one'] as const) {
      it(`route ${route}, ${order}: the phone catches up with the update it raced, ceases again in the new epoch, the laptop takes that; both ended, both members on their own keys`, async () => {
        const w = await pairedWorld(['bob'], mode);
        const bob = w.others[0]!;
        const counter = w.activeDevice.counter;
        const u = await updateTaken(w);
        const cease = await phoneCeasesBehind(w, route);
        if (order === 'old cease first') {
          // As before: of the pairing epoch the laptop's step left.
          await laptopRefuses(w, cease.pairing[0]!, PAST_EPOCH);
          if (route === 'rekey') await laptopRefuses(w, cease.pairing[1]!, { code: 'WRONG_EPOCH', message: "processing message: Message epoch differs from the group's epoch." });
          expect({ ceased: w.activeDevice.ceased, counter: w.activeDevice.counter }).toEqual({ ceased: false, counter: counter + 1n });
        }
        // The phone takes the update it raced (the step of its CeasePair's epoch), only to cease again.
        const applied: PairedUpdateApplied = await w.passiveDevice.applyNotify(u);
        expect({ kind: applied.kind, counter: applied.counter, route: applied.ceasePair?.route, messages: applied.ceasePair?.pairing.length }).toEqual({ kind: 'update', counter, route, messages: route === 'rekey' ? 2 : 1 });
        expect({ ceased: w.passiveDevice.ceased, ceasing: w.passiveDevice.ceasingGroups() }).toEqual({ ceased: true, ceasing: [toHex(bob.group!.id)] });
        // It is in the group's epoch again (on the anchor leaf, with the update's key, until its cease commit).
        w.p.group = w.p.client.group(bob.group!.id);
        expectInSync([w.p, bob]);
        expect(w.passiveDevice.ceaseMessages().map(toHex)).toEqual(applied.ceasePair!.pairing.map(toHex));
        await laptopTakes(w, route, applied.ceasePair!.pairing);
        if (order === 'old cease after the renewed one') {
          // Route rekey took the laptop out of the pairing group; route rejoin left it in the epoch after the old one.
          for (const m of cease.pairing) await laptopRefuses(w, m, route === 'rekey' ? GONE : PAST_EPOCH);
        }
        // The update is not taken twice: the phone's kept epoch has moved on.
        await refused(() => w.passiveDevice.applyNotify(u), ...ENDED);
        await bothEndedAndTalk(w, route, [u.anchorSignatureKey]);
      });
    }

    it(`route ${route}, the update lost at the DS (the phone's cease commit won): the phone takes the step alone and ceases again; the laptop takes that`, async () => {
      const w = await pairedWorld(['bob'], mode);
      const bob = w.others[0]!;
      const u = await w.activeDevice.update(w.a.group!);
      const cease = await w.passiveDevice.ceasePair(route, { send: ds(bob) });
      expect(cease.groups.map((g) => g.ceased)).toEqual([true]);
      await w.a.group!.clearPendingCommit(); // the DS refused the update
      await laptopRefuses(w, cease.pairing[0]!, PAST_EPOCH);
      expect(w.activeDevice.ceased).toBe(false);
      // No group is left to follow: the whole update is refused as after any end (test/paired-ceased-notify) …
      await refused(() => w.passiveDevice.applyNotify(u), ...ENDED);
      // … and the step alone is taken to catch up, the cease made again.
      const renewed = await w.passiveDevice.receive(u.pairing[0]!);
      if (renewed.type !== 'ceaseRenewed') throw new Error(`expected ceaseRenewed, got ${renewed.type}`);
      expect({ route: renewed.route, messages: renewed.pairing.length, ceased: w.passiveDevice.ceased }).toEqual({ route, messages: route === 'rekey' ? 2 : 1, ceased: true });
      await laptopTakes(w, route, renewed.pairing);
      // A duplicate of the step from the DS: not of the kept epoch any more.
      const dup = await mlsError(() => w.passiveDevice.receive(u.pairing[0]!));
      expect({ code: dup.code, message: dup.message }).toEqual(route === 'rekey' ? { code: 'WRONG_EPOCH', message: "processing message: Message epoch differs from the group's epoch." } : { code: 'UNKNOWN_GROUP', message: 'this client has no such group' });
      await bothEndedAndTalk(w, route, [u.anchorSignatureKey]);
    });

    it(`route ${route}, two updates raced: the CeasePair two epochs back and the one made again after the first are refused by the laptop; after the second, it takes the third`, async () => {
      const w = await pairedWorld(['bob'], mode);
      const bob = w.others[0]!;
      const u1 = await updateTaken(w);
      const u2 = await updateTaken(w);
      const cease = await phoneCeasesBehind(w, route);
      await laptopRefuses(w, cease.pairing[0]!, PAST_EPOCH);
      const first = await w.passiveDevice.applyNotify(u1);
      await laptopRefuses(w, first.ceasePair!.pairing[0]!, PAST_EPOCH);
      expect(w.activeDevice.ceased).toBe(false);
      // Its groups' cease from the first update's epoch loses again (the second took the next one).
      const again = await w.passiveDevice.ceasePair(route, { send: ds(bob) });
      expect({ pairing: again.pairing.length, ceased: again.groups.map((g) => g.ceased) }).toEqual({ pairing: 0, ceased: [false] });
      const second = await w.passiveDevice.applyNotify(u2);
      await laptopTakes(w, route, second.ceasePair!.pairing);
      await bothEndedAndTalk(w, route, [u1.anchorSignatureKey, u2.anchorSignatureKey]);
    });
  }
});

/** `body` with the proof `vault` makes for it as sent by the phone's leaf in the epoch of `pairing`. */
async function proven(pairing: Group, vault: SeedVault, body: ProvenMessage): Promise<Uint8Array> {
  const proof = await vault.derive('proof', pairingProofTbs(pairing.id, BigInt(pairing.epoch), pairing.ownLeafIndex, provenContent(body)), 32);
  return encodePairingMessage({ ...body, proof });
}

describe.each(['hidden', 'standard'] as const)('Paired MLS (%s mode): the thief and a CeasePair racing a paired update', (mode: PairingMode) => {
  for (const route of ['rekey', 'rejoin'] as const) {
    it(`route ${route}: its CeasePairs of the raced epoch are past (WRONG_EPOCH), of the new epoch without the vault no-proof, its commits never catch the phone up, the honest replays are refused; the honest cease goes through`, async () => {
      const w = await pairedWorld(['bob'], mode);
      const counter = w.activeDevice.counter;
      // The thief copied the phone before the cease: the pairing group in the epoch the CeasePair will be made in.
      const early = PairedDevice.open(await stolen(w.p), undefined).pairingGroup;
      const u = await updateTaken(w);
      const cease = await phoneCeasesBehind(w, route);
      const guessed = await WebCryptoSeedVault.import(generateSeed());
      // A forged CeasePair of the epoch the phone's raced (no vault), and with a proof for the laptop's counter: past, as any.
      for (const c of [counter, counter + 1n]) {
        await laptopRefuses(w, await early.encrypt(await proven(early, guessed, { type: 'ceasePair', route: 'rekey', counter: c, proof: new Uint8Array(0) })), PAST_EPOCH);
      }
      // The thief's commit of that epoch (its own leaf's, the phone's) does not catch the phone up: refused, nothing changes.
      const groupId = w.others[0]!.group!.id;
      const before = await deviceSnapshot(w.p, w.passiveDevice, groupId);
      const { commit: forgedStep } = await early.commit({ selfUpdate: true });
      const e = await mlsError(() => w.passiveDevice.receive(forgedStep));
      expect({ code: e.code, message: e.message }).toEqual({ code: 'INVALID_COMMIT', message: 'processing message: The Commit was created by this client but does not match the pending commit.' });
      expect(await deviceSnapshot(w.p, w.passiveDevice, groupId)).toEqual(before);
      // The phone catches up; the thief copies it now (the kept pairing group is of the new epoch) and sees its CeasePair go out.
      const pairingId = early.id;
      const applied = await w.passiveDevice.applyNotify(u);
      const late = await stolen(w.p);
      const kept = await importKept(late, pairingId);
      const seen = await kept.process(applied.ceasePair!.pairing[0]!);
      if (seen.kind !== 'application') throw new Error(`expected the CeasePair, got ${seen.kind}`);
      // Its CeasePairs of the new epoch without the vault: no proof, for the laptop's counter and the one before.
      for (const c of [counter, counter + 1n]) {
        const forged = await kept.encrypt(await proven(kept, guessed, { type: 'ceasePair', route: 'rekey', counter: c, proof: new Uint8Array(0) }));
        await refused(() => w.activeDevice.receive(forged), 'PAIRING_REJECTED', 'no-proof', 'ceasePair without a valid vault proof (no-proof)');
      }
      // Its commit in the new epoch (the phone's leaf, no PSK, no proof): not from the active device.
      const { commit: forgedCommit } = await kept.commit({ selfUpdate: true });
      await refused(() => w.activeDevice.receive(forgedCommit), 'PAIRING_REJECTED', 'wrong-sender', `a pairing-group commit from leaf ${kept.ownLeafIndex}, not the active device (wrong-sender)`);
      expect({ ceased: w.activeDevice.ceased, role: w.activeDevice.role, counter: w.activeDevice.counter }).toEqual({ ceased: false, role: 'active', counter: counter + 1n });
      // The honest CeasePair made again is taken; replayed after (from the thief's copy), it and the old one are refused.
      await laptopTakes(w, route, applied.ceasePair!.pairing);
      const replay = await kept.encrypt(seen.data.slice());
      if (route === 'rejoin') await refused(() => w.activeDevice.receive(replay), ...ENDED);
      else await laptopRefuses(w, replay, GONE);
      await laptopRefuses(w, cease.pairing[0]!, route === 'rekey' ? GONE : PAST_EPOCH);
      await bothEndedAndTalk(w, route, [u.anchorSignatureKey]);
    });
  }
});

/** The thief's reading of the kept pairing group in a copy of the phone's storage (the record holds it as exported). */
async function importKept(copy: Awaited<ReturnType<typeof stolen>>, pairingGroupId: Uint8Array): Promise<Group> {
  const raw = copy.record('paired-mls/cease-race')!;
  // route (1), epoch (8), active leaf (4), counter (8), then the group's state.
  if (copy.groupIds().some((g) => bytesEqual(g, pairingGroupId))) await copy.deleteGroup(pairingGroupId);
  return copy.importSiblingGroupState(pairingGroupId, raw.slice(21));
}
