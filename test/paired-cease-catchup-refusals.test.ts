/**
 * What the catch-up of a raced cease refuses (docs/PROTOCOL.md §4.9, "A
 * CeasePair racing a paired update"): the phone (passive) ended the pairing
 * a step behind; `applyNotify` (or `receive` of the step alone) of a
 * pairing-group commit of exactly the kept epoch puts the pairing back as it
 * stood then and processes step and Notify as a passive device does. What
 * that step and Notify may not be, each built for real here:
 * - a step that removes the phone: NOTIFY_REJECTED `unexpected` (alone:
 *   PAIRING_REJECTED `unexpected`, as after any end);
 * - a proven add to the pairing group: NOTIFY_REJECTED `counter` (not a
 *   derivation step; alone: PAIRING_REJECTED `unexpected`);
 * - an enrolment: NOTIFY_REJECTED `unknown-group`;
 * - a paired update of a group whose cease already landed (not a group
 *   still to cease): NOTIFY_REJECTED `unknown-group`.
 * Each refusal changes nothing at the phone (stored state, its kept
 * cease-race record, group and pairing epochs), and the honest catch-up
 * still works afterwards: both devices end the pairing, the phone's cease
 * lands, everyone talks.
 *
 * Who can make the first two: the laptop makes ONE step in the kept
 * pairing epoch; the honest one here is its paired update (the race). A
 * second, different step of that epoch (a removal of the phone, an add)
 * needs a vault holder on another fork of the laptop: the laptop's own
 * older copy (a restored backup, `stolen(w.a)` taken before the update,
 * reopened with the laptop's vault), as the attacker of a stolen laptop
 * AND its vault would (out of scope in §4.0; the thief of the phone's
 * state cannot: without the vault it has neither PSK(counter) nor a proof,
 * and it sends only as the phone's own leaf, INVALID_COMMIT,
 * test/paired-cease-update-race). The DS hands the phone the fork's step
 * with the honest update's Notify and commit. The last two are honest
 * runs: the laptop's one step in the kept epoch is an enrolment, or an
 * update of the group whose cease landed, while bob's own commit won the
 * epoch in the group still to cease.
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, toHex } from 'paired-mls';
import { PairedDevice, type PairedCommit, type PairingMode } from 'paired-mls/paired';
import { type Member, deliverCommit, expectInSync, newMember } from './helpers.js';
import { type CeaseRaceWorld as World, ENDED, type Route, ceaseRaceWorld as world, dsOf as ds } from './cease-race-world.js';
import { allTalk, device, deviceSnapshot, refused, rejoinOwnKey, stolen } from './paired-helpers.js';
import { rejectionOf } from './unenrol-helpers.js';

const RACE = 'paired-mls/cease-race';

const REMOVES_PHONE = { code: 'NOTIFY_REJECTED', reason: 'unexpected', message: 'Notify rejected: the pairing has ended (unexpected)' };
const PROVEN_ADD = { code: 'NOTIFY_REJECTED', reason: 'counter', message: 'Notify rejected: the pairing-group commit is not a derivation step (counter)' };
const NOT_TO_CEASE = { code: 'NOTIFY_REJECTED', reason: 'unknown-group', message: 'Notify rejected: the Notify names a group this device does not follow (unknown-group)' };

/** Everything the phone holds that a refusal must leave alone: its storage (the kept cease-race record in it), device, group and pairing epochs. */
async function phoneState(w: World, groupId: Uint8Array) {
  return { snapshot: await deviceSnapshot(w.p, w.phone, groupId), race: toHex(w.p.client.record(RACE)!), ceaseMessages: w.phone.ceaseMessages().map(toHex) };
}

/** The laptop takes the renewed CeasePair (route rekey: and its removal step): ended too. */
async function laptopTakes(w: World, route: Route, pairing: Uint8Array[]): Promise<void> {
  expect(await w.laptop.receive(pairing[0]!)).toEqual({ type: 'pairingCeased', route });
  if (route === 'rekey') expect((await w.laptop.receive(pairing[1]!)).type).toBe('derivationStep');
  expect(w.laptop.ceased).toBe(true);
}

/** The phone finishes its cease in bob's group; the laptop rejoins with its own key; everyone talks. */
async function finishAndTalk(w: World, route: Route, label: string): Promise<void> {
  if (w.phone.ceasingGroups().length > 0) {
    const finish = await w.phone.ceasePair(route, { send: ds(w.bob) });
    expect(finish.groups.map((g) => g.ceased)).toEqual([true]);
  }
  expect({ ceased: w.phone.ceased, ceasing: w.phone.ceasingGroups() }).toEqual({ ceased: true, ceasing: [] });
  w.p.group = w.p.client.group(w.bob.group.id);
  expectInSync([w.p, w.bob]);
  await rejoinOwnKey(w.a, w.bob, [w.p, w.bob]);
  await allTalk([w.a, w.p, w.bob], label);
}

/**
 * The race, with the laptop's older copy (its vault, stolen before the update: a second fork of the kept epoch):
 * the laptop's update the DS took, then the phone's cease a step behind (its group commit refused).
 */
async function raceWithOlderLaptop(w: World, route: Route): Promise<{ u: PairedCommit; older: PairedDevice; phoneLeaf: number }> {
  const older = PairedDevice.open(await stolen(w.a), w.laptop.vault);
  const phoneLeaf = w.phone.pairingGroup.ownLeafIndex;
  const u = await w.laptop.update(w.a.group, { send: ds(w.bob) });
  const cease = await w.phone.ceasePair(route, { send: ds(w.bob) });
  expect(cease.groups.map((g) => g.ceased)).toEqual([false]);
  expect(w.phone.ceasingGroups()).toEqual([toHex(w.bob.group.id)]);
  return { u, older, phoneLeaf };
}

/** The honest catch-up after the refusals: the raced update taken, the cease made again, the laptop takes it, all end and talk. */
async function honestCatchUp(w: World, route: Route, u: PairedCommit, label: string): Promise<void> {
  const applied = await w.phone.applyNotify(u);
  expect({ kind: applied.kind, route: applied.ceasePair?.route }).toEqual({ kind: 'update', route });
  await laptopTakes(w, route, applied.ceasePair!.pairing);
  await finishAndTalk(w, route, label);
}

describe.each(['hidden', 'standard'] as const)('paired cease catch-up refusals (%s mode): a step of the kept epoch that is not a paired update', (mode: PairingMode) => {
  for (const route of ['rekey', 'rejoin'] as const) {
    it(`route ${route}: a step that removes the phone (the laptop's older fork re-enrols it away): with the honest Notify NOTIFY_REJECTED unexpected, alone PAIRING_REJECTED unexpected; nothing changes; the honest update then catches up`, async () => {
      const w = await world(mode);
      const groupId = w.bob.group.id;
      const { u, older, phoneLeaf } = await raceWithOlderLaptop(w, route);
      const watch = await device('alice-watch');
      const removal = (await older.reenroll(phoneLeaf, await PairedDevice.createKeyPackage(watch.client, watch.identity))).pairing[0]!;
      const before = await phoneState(w, groupId);
      expect(await rejectionOf(() => w.phone.applyNotify({ pairing: [removal, u.pairing[1]!], commit: u.commit }))).toEqual(REMOVES_PHONE);
      expect(await phoneState(w, groupId)).toEqual(before);
      await refused(() => w.phone.receive(removal), ...ENDED);
      expect(await phoneState(w, groupId)).toEqual(before);
      await honestCatchUp(w, route, u, 'after the removal step');
    });

    it(`route ${route}: a proven add to the pairing group (the laptop's older fork invites a watch): with the honest Notify NOTIFY_REJECTED counter, alone PAIRING_REJECTED unexpected; nothing changes; the honest update then catches up`, async () => {
      const w = await world(mode);
      const groupId = w.bob.group.id;
      const { u, older } = await raceWithOlderLaptop(w, route);
      const watch = await device('alice-watch');
      const { pairingCommit } = await older.invite(await PairedDevice.createKeyPackage(watch.client, watch.identity));
      const before = await phoneState(w, groupId);
      expect(await rejectionOf(() => w.phone.applyNotify({ pairing: [pairingCommit, u.pairing[1]!], commit: u.commit }))).toEqual(PROVEN_ADD);
      expect(await phoneState(w, groupId)).toEqual(before);
      await refused(() => w.phone.receive(pairingCommit), ...ENDED);
      expect(await phoneState(w, groupId)).toEqual(before);
      await honestCatchUp(w, route, u, 'after the proven add');
    });
  }
});

/** carol in a group of alice's anchor (not enrolled): its member, and the DS for it (carol merges what it takes). */
async function carolsGroup(w: World): Promise<{ carol: Member; g2Id: Uint8Array }> {
  const carol = await newMember('carol');
  const g2 = await w.a.client.createGroup(w.a.identity);
  const { welcome } = await g2.commit({ add: [await carol.client.createKeyPackage(carol.identity)] });
  await g2.mergePendingCommit();
  carol.group = await carol.client.joinFromWelcome(welcome!);
  return { carol, g2Id: g2.id };
}

/** bob's own commit wins the epoch in his group (the laptop follows it; the phone does not yet): the phone's cease there will lose. */
async function bobCommitsFirst(w: World): Promise<Uint8Array> {
  const { commit } = await w.bob.group.commit({ selfUpdate: true });
  await w.bob.group.mergePendingCommit();
  await deliverCommit(commit, [w.a]);
  return commit;
}

/** The honest end after the refusal: the step alone catches the phone up (ceaseRenewed), the laptop takes it, the phone follows bob's commit and finishes. */
async function stepAloneThenFinish(w: World, step: Uint8Array, bobCommit: Uint8Array, label: string): Promise<void> {
  const renewed = await w.phone.receive(step);
  if (renewed.type !== 'ceaseRenewed') throw new Error(`expected ceaseRenewed, got ${renewed.type}`);
  expect(renewed.route).toBe('rekey');
  await laptopTakes(w, 'rekey', renewed.pairing);
  await deliverCommit(bobCommit, [{ ...w.p, group: w.p.client.group(w.bob.group.id) }]);
  await finishAndTalk(w, 'rekey', label);
}

describe.each(['hidden', 'standard'] as const)('paired cease catch-up refusals (%s mode): a Notify that names no group still to cease (honest runs)', (mode: PairingMode) => {
  it("an enrolment: the laptop's one step of the kept epoch enrols carol's group, bob's commit won his group (the phone's cease there lost): NOTIFY_REJECTED unknown-group, nothing changes, the phone never holds carol's group; the step alone catches it up, both end, the cease lands", async () => {
    const w = await world(mode);
    const groupId = w.bob.group.id;
    const { carol, g2Id } = await carolsGroup(w);
    const bobCommit = await bobCommitsFirst(w);
    const enrolled = await w.laptop.enroll(w.a.client.group(g2Id), { send: async ({ commit }) => deliverCommit(commit, [carol]) });
    const cease = await w.phone.ceasePair('rekey', { send: ds(w.bob) });
    expect(cease.groups.map((g) => g.ceased)).toEqual([false]);
    const before = await phoneState(w, groupId);
    expect(await rejectionOf(() => w.phone.applyNotify(enrolled))).toEqual(NOT_TO_CEASE);
    expect(await phoneState(w, groupId)).toEqual(before);
    expect(w.p.client.groupIds().some((id) => bytesEqual(id, g2Id))).toBe(false);
    await stepAloneThenFinish(w, enrolled.pairing[0]!, bobCommit, 'after the enrolment');
    expect(w.p.client.groupIds().some((id) => bytesEqual(id, g2Id))).toBe(false);
  });

  it("a paired update of a group whose cease landed: carol's group enrolled, the laptop's update there lost to the phone's cease (cleared), bob's commit won his group: NOTIFY_REJECTED unknown-group, nothing changes; the step alone catches the phone up, both end, the cease lands in bob's group", async () => {
    const w = await world(mode);
    const groupId = w.bob.group.id;
    const { carol, g2Id } = await carolsGroup(w);
    const en = await w.laptop.enroll(w.a.client.group(g2Id), { send: async ({ commit }) => deliverCommit(commit, [carol]) });
    expect((await w.phone.applyNotify(en)).kind).toBe('enroll');
    const bobCommit = await bobCommitsFirst(w);
    // The laptop's update of carol's group (send-less: the DS answers after the phone's cease took the epoch).
    const u2 = await w.laptop.update(w.a.client.group(g2Id));
    const cease = await w.phone.ceasePair('rekey', { send: async ({ groupId: g, commit }) => deliverCommit(commit, [bytesEqual(g, g2Id) ? carol : w.bob]) });
    const ceased = Object.fromEntries(cease.groups.map((g) => [toHex(g.groupId), g.ceased]));
    expect(ceased).toEqual({ [toHex(groupId)]: false, [toHex(g2Id)]: true });
    await w.a.client.group(g2Id).clearPendingCommit(); // the DS refused the laptop's update
    expect(w.phone.ceasingGroups()).toEqual([toHex(groupId)]);
    const before = await phoneState(w, groupId);
    expect(await rejectionOf(() => w.phone.applyNotify(u2))).toEqual(NOT_TO_CEASE);
    expect(await phoneState(w, groupId)).toEqual(before);
    await stepAloneThenFinish(w, u2.pairing[0]!, bobCommit, 'after the update of a ceased group');
  });
});
