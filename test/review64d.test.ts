/**
 * review64d: attacker review of commit 13dbccc, "a CeasePair racing a paired
 * update" (docs/PROTOCOL.md §4.9): the phone (passive) keeps the pairing
 * group of its CeasePair's epoch (route rekey: its cease commits keep their
 * handshake secret); the laptop's step of that epoch catches it up and it
 * ceases again. The thief of §4.0 holds the phone's stored state (the
 * kept copies too) and its traffic, not its vault; a DS reorders, drops,
 * replays and injects.
 *
 * Findings of the review (marked FINDING, asserted as they were at
 * ca9da92; attacks 1, 1b and 2 now assert the fix):
 * - attack 2 (fixed): in a group that keeps past epochs (maxPastEpochs >= 1)
 *   a message of the raced epoch that the phone read before the catch-up
 *   was taken a SECOND time after it: the group state kept from before the
 *   cease commit (then route rekey's way to read the raced update) was put
 *   back with its secret tree from before the read. Now refused
 *   MESSAGE_REPLAYED, as in the control without a race.
 * - attacks 1, 1b (fixed): forward secrecy. That kept group state held the
 *   epoch's whole secret tree: a thief copying the phone later read
 *   messages the phone had already read and deleted the keys of, in that
 *   epoch and, following later commits from the traffic, in the epochs
 *   after it. The kept state is gone: the cease commit keeps only its own
 *   handshake generation's secret (`retainOwnSecret`, docs/ENGINE.md
 *   change 49), dropped when the epoch ends; no group record
 *   `paired-mls/cease-race-group` is written any more.
 * - attack 6 (a named limit, docs/PROTOCOL.md §4.9): a hand-over before the
 *   raced step (three devices) is not covered: the phone cannot catch up,
 *   nobody takes its CeasePair, the pairing of the other two goes on.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, bytesEqual, toHex, utf8, type Group } from 'paired-mls';
import { PairedDevice, type PairedCommit, type PairingMode } from 'paired-mls/paired';
import { type Member, deliverCommit, expectInSync, mlsError, newMember } from './helpers.js';
import { type CeaseRaceWorld as World, ENDED, RACE_GROUP, type Route, ceaseRaceWorld as world, dsOf as ds } from './cease-race-world.js';
import { allTalk, deviceSnapshot, refused, rejoinOwnKey, stolen } from './paired-helpers.js';

const RACE = 'paired-mls/cease-race';




/** The laptop's update the DS took (bob merged it); then the phone ceases a step behind (its group commit refused). */
async function race(w: World, route: Route): Promise<{ u: PairedCommit; cease: Uint8Array[] }> {
  const u = await w.laptop.update(w.a.group, { send: ds(w.bob) });
  const cease = await w.phone.ceasePair(route, { send: ds(w.bob) });
  expect(cease.groups.map((g) => g.ceased)).toEqual([false]);
  return { u, cease: cease.pairing };
}

async function finishAndTalk(w: World, route: Route): Promise<void> {
  if (w.phone.ceasingGroups().length > 0) {
    const finish = await w.phone.ceasePair(route, { send: ds(w.bob) });
    expect(finish.groups.map((g) => g.ceased)).toEqual([true]);
  }
  w.p.group = w.p.client.group(w.bob.group.id);
  expectInSync([w.p, w.bob]);
  await rejoinOwnKey(w.a, w.bob, [w.p, w.bob]);
  await allTalk([w.a, w.p, w.bob], 'after the cease');
}

describe.each(['hidden', 'standard'] as const)('review64d (%s mode): what a cease commit keeps (its own handshake secret, no group state)', (mode: PairingMode) => {
  it('attack 1 (forward secrecy): a message bob sent in the raced epoch, read by the phone before the catch-up, is not read again by a thief copying the phone afterwards', async () => {
    const w = await world(mode);
    const groupId = w.bob.group.id;
    // bob writes in the epoch before the update; the phone has not read it yet.
    const m1 = await w.bob.group.encrypt('bob in the raced epoch');
    const { u } = await race(w, 'rekey');
    expect(w.p.client.groupRecord(groupId, RACE_GROUP)).toBeUndefined();
    // The phone reads bob's message in that epoch (it is still there): its key is used and gone from the phone's group.
    const r = await w.p.client.group(groupId).process(m1);
    expect(r.kind === 'application' && utf8(r.data)).toBe('bob in the raced epoch');
    const again = await mlsError(() => w.p.client.group(groupId).process(m1));
    expect(again.code).toBe('MESSAGE_REPLAYED');
    // The thief copies the phone now: nothing it stored opens the message (was FINDING: the kept group state did).
    const copy = await stolen(w.p);
    expect(await outcome(copy.group(groupId), m1)).toBe('MESSAGE_REPLAYED');
    expect(copy.groupRecord(groupId, RACE_GROUP)).toBeUndefined();
    // The honest parties go on: the phone still reads the update its refused commit raced (the one kept generation).
    const applied = await w.phone.applyNotify(u);
    expect(applied.ceasePair?.route).toBe('rekey');
    expect(w.p.client.groupRecord(groupId, RACE_GROUP)).toBeUndefined();
    // A copy taken after the catch-up does not read bob's message either: the epoch's secrets are gone (no past epochs kept).
    expect(await outcome((await stolen(w.p)).group(groupId), m1)).toBe('WRONG_EPOCH');
    for (const m of applied.ceasePair!.pairing) await w.laptop.receive(m);
    expect(w.laptop.ceased).toBe(true);
    await finishAndTalk(w, 'rekey');
  });

  it('attack 2 (replay, maxPastEpochs 1): a message of the raced epoch the phone read before the catch-up is refused as a replay after it, as without a race', async () => {
    const w = await world(mode, 1);
    const groupId = w.bob.group.id;
    const m1 = await w.bob.group.encrypt('bob once');
    const { u } = await race(w, 'rekey');
    const r = await w.p.client.group(groupId).process(m1);
    expect(r.kind === 'application' && utf8(r.data)).toBe('bob once');
    const applied = await w.phone.applyNotify(u);
    expect(applied.ceasePair?.route).toBe('rekey');
    // The DS replays bob's message of the past epoch: refused, as in the control below (was FINDING: taken a
    // second time, the group state put back from before the cease commit had its key).
    expect(await outcome(w.p.client.group(groupId), m1)).toBe('MESSAGE_REPLAYED');
    expect(w.p.client.groupRecord(groupId, RACE_GROUP)).toBeUndefined();
    for (const m of applied.ceasePair!.pairing) await w.laptop.receive(m);
    await finishAndTalk(w, 'rekey');
  });

  it('attack 1b (forward secrecy across epochs, no paired update at all): the phone\'s cease commit loses to a commit of bob; the phone follows bob and reads bob\'s next message; a thief copying it then has nothing to replay bob\'s commit on and does not read that message', async () => {
    const w = await world(mode);
    const groupId = w.bob.group.id;
    const { commit: bobCommit } = await w.bob.group.commit({ selfUpdate: true });
    await w.bob.group.mergePendingCommit();
    await deliverCommit(bobCommit, [w.a]);
    const cease = await w.phone.ceasePair('rekey', { send: ds(w.bob) });
    expect(cease.groups.map((g) => g.ceased)).toEqual([false]);
    expect(w.p.client.groupRecord(groupId, RACE_GROUP)).toBeUndefined();
    for (const m of cease.pairing) await w.laptop.receive(m);
    expect(w.laptop.ceased).toBe(true);
    // The phone follows what won at the DS, and reads bob's next message (its key used and gone).
    await deliverCommit(bobCommit, [{ ...w.p, group: w.p.client.group(groupId) }]);
    const m2 = await w.bob.group.encrypt('bob after his commit');
    expect(await outcome(w.p.client.group(groupId), m2)).toBe('read: bob after his commit');
    expect(await outcome(w.p.client.group(groupId), m2)).toBe('MESSAGE_REPLAYED');
    // The thief copies the phone now: no state of the epoch before bob's commit is stored (was FINDING: the kept
    // group state, on which it replayed bob's commit from the traffic and read m2).
    const copy = await stolen(w.p);
    expect(await outcome(copy.group(groupId), m2)).toBe('MESSAGE_REPLAYED');
    expect(copy.groupRecord(groupId, RACE_GROUP)).toBeUndefined();
    expect((await mlsError(() => copy.group(groupId).process(bobCommit))).code).toBe('WRONG_EPOCH');
    // The honest parties: the phone ceases again from bob's epoch.
    const again = await w.phone.ceasePair('rekey', { send: ds(w.bob) });
    expect(again.groups.map((g) => g.ceased)).toEqual([true]);
    expect(w.p.client.groupRecord(groupId, RACE_GROUP)).toBeUndefined();
    w.p.group = w.p.client.group(groupId);
    await rejoinOwnKey(w.a, w.bob, [w.p, w.bob]);
    await allTalk([w.a, w.p, w.bob], 'after the cease');
  });

  it('attack 2, control (no race, maxPastEpochs 1): a message of the past epoch read before the update is refused as a replay after it', async () => {
    const w = await world(mode, 1);
    const groupId = w.bob.group.id;
    const m1 = await w.bob.group.encrypt('bob once');
    const u = await w.laptop.update(w.a.group, { send: ds(w.bob) });
    expect(await outcome(w.p.client.group(groupId), m1)).toBe('read: bob once');
    expect((await w.phone.applyNotify(u)).kind).toBe('update');
    expect(await outcome(w.p.client.group(groupId), m1)).toBe('MESSAGE_REPLAYED');
  });
});

/** What `group` makes of `message`: `read: text`, another kind, or the error code. */
function outcome(group: Group, message: Uint8Array): Promise<string | undefined> {
  return group
    .process(message)
    .then((x) => (x.kind === 'application' ? `read: ${utf8(x.data)}` : x.kind))
    .catch((e: { code?: string }) => e.code);
}

describe.each(['hidden', 'standard'] as const)('review64d (%s mode): the catch-up path under a hostile DS, a restart and a hand-over', (mode: PairingMode) => {
  for (const route of ['rekey', 'rejoin'] as const) {
    it(`attack 3, route ${route}: the raced step with its body corrupted or cut (its header still of the kept epoch) is refused with a typed MLS error, nothing stored changes; the honest update then catches up`, async () => {
      const w = await world(mode);
      const groupId = w.bob.group.id;
      const { u } = await race(w, route);
      const before = await deviceSnapshot(w.p, w.phone, groupId);
      const step = u.pairing[0]!;
      const flipped = step.slice();
      flipped[flipped.length - 1]! ^= 1;
      const cut = step.slice(0, step.length - 20);
      for (const bad of [flipped, cut]) {
        const e = await mlsError(() => w.phone.receive(bad));
        expect({ code: e.code, message: e.message }).toEqual(
          bad === flipped
            ? { code: 'DECRYPTION_FAILED', message: 'processing message: An error occurred during AEAD decryption.' }
            : { code: 'MALFORMED', message: 'malformed MLS message: EndOfStream' },
        );
        expect(await deviceSnapshot(w.p, w.phone, groupId)).toEqual(before);
        // With the Notify: NOTIFY_REJECTED, nothing changes.
        const n = await mlsError(() => w.phone.applyNotify({ pairing: [bad, u.pairing[1]!], commit: u.commit }));
        expect({ code: n.code, reason: (n as { reason?: string }).reason }).toEqual({ code: 'NOTIFY_REJECTED', reason: bad === flipped ? 'forged' : 'malformed' });
        expect(await deviceSnapshot(w.p, w.phone, groupId)).toEqual(before);
      }
      // A Notify swapped in for the step: not a commit, not the race; refused as after any end.
      await refused(() => w.phone.applyNotify({ pairing: [u.pairing[1]!, u.pairing[0]!], commit: u.commit }), ...ENDED);
      expect(await deviceSnapshot(w.p, w.phone, groupId)).toEqual(before);
      const applied = await w.phone.applyNotify(u);
      expect(applied.ceasePair?.route).toBe(route);
      for (const m of applied.ceasePair!.pairing) await w.laptop.receive(m);
      expect(w.laptop.ceased).toBe(true);
      await finishAndTalk(w, route);
    });

    it(`attack 4, route ${route}: a crash right after the catch-up: reopened from storage with its vault, the phone has the renewed CeasePair in ceaseMessages(), the group still to cease, and finishes; the laptop takes the renewed messages`, async () => {
      const w = await world(mode);
      const groupId = w.bob.group.id;
      const { u } = await race(w, route);
      const applied = await w.phone.applyNotify(u);
      // The application crashed before sending anything: reopen from the stored state.
      const client = await MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(w.p.storage as MemoryStorageAdapter) });
      const phone = PairedDevice.open(client, w.phoneVault);
      expect(phone.ceaseMessages().map(toHex)).toEqual(applied.ceasePair!.pairing.map(toHex));
      expect({ ceased: phone.ceased, ceasing: phone.ceasingGroups() }).toEqual({ ceased: true, ceasing: [toHex(groupId)] });
      // The update is not taken again by the reopened phone, nor by the old object.
      await refused(() => phone.applyNotify(u), ...ENDED);
      for (const m of phone.ceaseMessages()) await w.laptop.receive(m);
      expect(w.laptop.ceased).toBe(true);
      const finish = await phone.ceasePair(route, { send: ds(w.bob) });
      expect(finish.groups.map((g) => g.ceased)).toEqual([true]);
      const p2: Member = { ...w.p, client, group: client.group(groupId) };
      expectInSync([p2, w.bob]);
      await rejoinOwnKey(w.a, w.bob, [p2, w.bob]);
      await allTalk([w.a, p2, w.bob], 'after the restart');
      expect(client.groupRecord(groupId, RACE_GROUP)).toBeUndefined();
    });
  }

  it("attack 10 (DS replay): the phone's own CeasePair and removal step replayed to it: the step, a commit of the kept epoch, reaches the catch-up and is refused by MLS (its own leaf, no pending commit in the kept state), nothing changes; the race then resolves", async () => {
    const w = await world(mode);
    const groupId = w.bob.group.id;
    const { u, cease } = await race(w, 'rekey');
    const before = await deviceSnapshot(w.p, w.phone, groupId);
    const c0 = await mlsError(() => w.phone.receive(cease[0]!));
    expect({ code: c0.code, message: c0.message }).toEqual({ code: 'WRONG_EPOCH', message: 'message from an epoch whose secrets this member no longer has' });
    const c1 = await mlsError(() => w.phone.receive(cease[1]!));
    expect({ code: c1.code, message: c1.message }).toEqual({ code: 'INVALID_COMMIT', message: 'processing message: The Commit was created by this client but does not match the pending commit.' });
    const n = await mlsError(() => w.phone.applyNotify({ pairing: [cease[1]!, u.pairing[1]!], commit: u.commit }));
    expect({ code: n.code, reason: (n as { reason?: string }).reason }).toEqual({ code: 'NOTIFY_REJECTED', reason: 'forged' });
    expect(await deviceSnapshot(w.p, w.phone, groupId)).toEqual(before);
    const applied = await w.phone.applyNotify(u);
    for (const m of applied.ceasePair!.pairing) await w.laptop.receive(m);
    expect(w.laptop.ceased).toBe(true);
    await finishAndTalk(w, 'rekey');
  });

  it('attack 5 (both cease at once, route rekey): the laptop ceases in the same epoch; its removal step (of the kept epoch, from the active leaf, with its PSK) reaches the catch-up and is refused ENDED, nothing changes; both have ended', async () => {
    const w = await world(mode);
    const groupId = w.bob.group.id;
    const mine = await w.phone.ceasePair('rekey');
    const theirs = await w.laptop.ceasePair('rekey');
    const before = await deviceSnapshot(w.p, w.phone, groupId);
    // Its CeasePair: of the epoch the phone's own removal step left. Its removal step: of the kept epoch, so the
    // catch-up runs, processes it (from the active leaf, its PSK) and refuses it (it removes the phone), rolled back.
    const e = await mlsError(() => w.phone.receive(theirs.pairing[0]!));
    expect({ code: e.code, message: e.message }).toEqual({ code: 'WRONG_EPOCH', message: 'message from an epoch whose secrets this member no longer has' });
    await refused(() => w.phone.receive(theirs.pairing[1]!), ...ENDED);
    expect(await deviceSnapshot(w.p, w.phone, groupId)).toEqual(before);
    const l0 = await mlsError(() => w.laptop.receive(mine.pairing[0]!));
    expect({ code: l0.code, message: l0.message }).toEqual({ code: 'WRONG_EPOCH', message: 'message from an epoch whose secrets this member no longer has' });
    const l1 = await mlsError(() => w.laptop.receive(mine.pairing[1]!));
    expect({ code: l1.code, message: l1.message }).toEqual({ code: 'WRONG_EPOCH', message: "processing message: Message epoch differs from the group's epoch." });
    expect({ phone: w.phone.ceased, laptop: w.laptop.ceased }).toEqual({ phone: true, laptop: true });
  });

  it('attack 6 (three devices): the laptop hands over to the watch in the epoch of the phone\'s CeasePair and the watch makes a paired update: the phone cannot catch up (wrong-sender: the kept active leaf is the laptop), and nobody takes its CeasePair (WRONG_EPOCH): the race stays unresolved (a named limit, docs/PROTOCOL.md §4.9: the phone rejoins)', async () => {
    const { pairedTrio } = await import('./paired-helpers.js');
    const t = await pairedTrio(mode);
    const groupId = t.bob.group!.id;
    const watchLeaf = t.watchDevice.pairingGroup.ownLeafIndex;
    const rc = await t.laptop.handOver(watchLeaf);
    // The watch takes the hand-over and updates (the DS takes the commit) before anyone has the phone's cease.
    expect((await t.watchDevice.receive(rc)).type).toBe('roleChanged');
    const u = await t.watchDevice.update(t.watch.group!, { send: async ({ commit }) => deliverCommit(commit, [t.bob]) });
    // The laptop (now passive) follows the watch's update before the phone's CeasePair reaches it.
    expect((await t.laptop.applyNotify(u)).kind).toBe('update');
    const cease = await t.phoneDevice.ceasePair('rekey', { send: async ({ commit }) => deliverCommit(commit, [t.bob]) });
    expect(cease.groups.map((g) => g.ceased)).toEqual([false]);
    const rcErr = await mlsError(() => t.phoneDevice.receive(rc));
    expect({ code: rcErr.code, message: rcErr.message }).toEqual({ code: 'WRONG_EPOCH', message: 'message from an epoch whose secrets this member no longer has' });
    const before = await deviceSnapshot(t.phone, t.phoneDevice, groupId);
    const e = await mlsError(() => t.phoneDevice.applyNotify(u));
    expect({ code: e.code, reason: (e as { reason?: string }).reason, message: e.message }).toEqual({
      code: 'NOTIFY_REJECTED',
      reason: 'counter',
      message: 'Notify rejected: processing message: The PSK could not be found in the store. (counter)',
    });
    const s = await mlsError(() => t.phoneDevice.receive(u.pairing[0]!));
    // The watch's step injects PSK(counter + 1) (the hand-over moved the counter), which the catch-up (at the
    // kept counter) has not stored; sent from the watch's leaf, not the kept active leaf, either way refused.
    expect({ code: s.code, message: s.message }).toEqual({ code: 'PSK_NOT_FOUND', message: 'processing message: The PSK could not be found in the store.' });
    expect(await deviceSnapshot(t.phone, t.phoneDevice, groupId)).toEqual(before);
    for (const d of [t.laptop, t.watchDevice]) {
      const w = await mlsError(() => d.receive(cease.pairing[0]!));
      expect({ code: w.code, message: w.message }).toEqual({ code: 'WRONG_EPOCH', message: 'message from an epoch whose secrets this member no longer has' });
      expect(d.ceased).toBe(false);
    }
    // LIMIT (§4.9, "A hand-over before the raced step"): the laptop and the watch keep the pairing; the phone has
    // ended and its group cease never lands (the watch's update won at the DS). The catch-up covers only a step of
    // the kept active leaf at the kept counter; a hand-over (or a proven add) before the step is not covered.
    expect(t.phoneDevice.ceasingGroups()).toEqual([toHex(groupId)]);
    const again = await t.phoneDevice.ceasePair('rekey', { send: async ({ commit }) => deliverCommit(commit, [t.bob]) });
    expect(again.groups.map((g) => g.ceased)).toEqual([false]);
    // The honest trio minus the phone goes on: the watch updates again, the laptop follows it.
    const u2 = await t.watchDevice.update(t.watch.group!, { send: async ({ commit }) => deliverCommit(commit, [t.bob]) });
    expect((await t.laptop.applyNotify(u2)).kind).toBe('update');
    expectInSync([t.a, t.watch, t.bob]);
    // What the phone's application does then (§4.9): it rejoins the group with a key of its own (deletes its copy,
    // MlsClient.joinExternal from a current GroupInfo) and calls ceasePair again, which removes the anchor leaf.
    const anchorKey = toHex(t.a.group!.members().find((m) => m.leafIndex === t.a.group!.ownLeafIndex)!.signatureKey);
    await rejoinOwnKey(t.phone, t.bob, [t.bob]);
    const done = await t.phoneDevice.ceasePair('rekey', { send: async ({ commit }) => deliverCommit(commit, [t.bob]) });
    expect(done.groups.map((g) => g.ceased)).toEqual([true]);
    expect(t.phoneDevice.ceasingGroups()).toEqual([]);
    t.phone.group = t.phone.client.group(groupId);
    expect(t.bob.group!.members().map((m) => toHex(m.signatureKey))).not.toContain(anchorKey);
    await allTalk([t.phone, t.bob], 'after the phone rejoined');
  });
});

describe.each(['hidden', 'standard'] as const)('review64d (%s mode): steps of the kept epoch that raced nothing, out of order, or enrol', (mode: PairingMode) => {
  it("attack 7: after a cease with no race (taken by the laptop, the group ceased), the laptop's older copy (with its vault) makes a paired update in the cease's epoch: the Notify is refused ENDED; its step alone is taken as a raced one (ceaseRenewed): the phone's groups are untouched, the laptop refuses the renewed CeasePair, and reset clears the kept copy", async () => {
    const w = await world(mode);
    const groupId = w.bob.group.id;
    const older = PairedDevice.open(await stolen(w.a), w.laptop.vault);
    const cease = await w.phone.ceasePair('rekey', { send: ds(w.bob) });
    expect(cease.groups.map((g) => g.ceased)).toEqual([true]);
    for (const m of cease.pairing) await w.laptop.receive(m);
    expect(w.laptop.ceased).toBe(true);
    const u = await older.update(older.client.group(groupId), { send: async () => undefined });
    await refused(() => w.phone.applyNotify(u), ...ENDED);
    const groupBefore = toHex(w.p.client.group(groupId).epochAuthenticator());
    const renewed = await w.phone.receive(u.pairing[0]!);
    // NOTE: not a step its CeasePair raced, but indistinguishable at the phone: taken (before 13dbccc: ENDED).
    expect({ type: renewed.type, ceased: w.phone.ceased, role: w.phone.role, ceasing: w.phone.ceasingGroups() }).toEqual({ type: 'ceaseRenewed', ceased: true, role: 'active', ceasing: [] });
    expect(toHex(w.p.client.group(groupId).epochAuthenticator())).toBe(groupBefore);
    if (renewed.type !== 'ceaseRenewed') throw new Error('unreachable');
    const l = await mlsError(() => w.laptop.receive(renewed.pairing[0]!));
    expect(l.code).toBe('NOT_A_MEMBER');
    // The same step again: the kept epoch moved on (the phone's pairing group is past it).
    const dup = await mlsError(() => w.phone.receive(u.pairing[0]!));
    expect(dup.code).toBe('WRONG_EPOCH');
    w.p.group = w.p.client.group(groupId);
    await rejoinOwnKey(w.a, w.bob, [w.p, w.bob]);
    await allTalk([w.a, w.p, w.bob], 'after the older copy');
    await PairedDevice.reset(w.p.client);
    expect(w.p.client.record(RACE)).toBeUndefined();
  });

  it('attack 8: two updates raced and the DS hands the phone the second one first: refused ENDED, nothing changes; then the first catches it up and the second catches it up again without a ceasePair between; the laptop takes the last', async () => {
    const w = await world(mode);
    const groupId = w.bob.group.id;
    const u1 = await w.laptop.update(w.a.group, { send: ds(w.bob) });
    const u2 = await w.laptop.update(w.a.group, { send: ds(w.bob) });
    await w.phone.ceasePair('rekey', { send: ds(w.bob) });
    const before = await deviceSnapshot(w.p, w.phone, groupId);
    await refused(() => w.phone.applyNotify(u2), ...ENDED);
    // Its step alone: of the epoch number the phone's own removal step made (another branch): not decryptable there.
    const s2 = await mlsError(() => w.phone.receive(u2.pairing[0]!));
    expect({ code: s2.code, message: s2.message }).toEqual({ code: 'DECRYPTION_FAILED', message: 'processing message: An error occurred during AEAD decryption.' });
    expect(await deviceSnapshot(w.p, w.phone, groupId)).toEqual(before);
    const first = await w.phone.applyNotify(u1);
    const second = await w.phone.applyNotify(u2);
    const past = await mlsError(() => w.laptop.receive(first.ceasePair!.pairing[0]!));
    expect(past.code).toBe('WRONG_EPOCH');
    for (const m of second.ceasePair!.pairing) await w.laptop.receive(m);
    expect(w.laptop.ceased).toBe(true);
    expect(w.phone.ceaseMessages().map(toHex)).toEqual(second.ceasePair!.pairing.map(toHex));
    await finishAndTalk(w, 'rekey');
  });

  it("attack 9: the laptop's step raced by the phone's cease is an enrolment of a new group: its Notify is refused (ENDED: no group left to follow); the step alone catches the phone up; the laptop takes the renewed cease; the phone never joins the new group", async () => {
    const w = await world(mode);
    const carol = await newMember('carol');
    const g2 = await w.a.client.createGroup(w.a.identity);
    const { welcome } = await g2.commit({ add: [await carol.client.createKeyPackage(carol.identity)] });
    await g2.mergePendingCommit();
    carol.group = await carol.client.joinFromWelcome(welcome!);
    const enrolled = await w.laptop.enroll(g2, { send: async ({ commit }) => deliverCommit(commit, [carol]) });
    const cease = await w.phone.ceasePair('rekey', { send: ds(w.bob) });
    expect(cease.groups.map((g) => g.ceased)).toEqual([true]);
    await refused(() => w.phone.applyNotify(enrolled), ...ENDED);
    const renewed = await w.phone.receive(enrolled.pairing[0]!);
    if (renewed.type !== 'ceaseRenewed') throw new Error(`expected ceaseRenewed, got ${renewed.type}`);
    for (const m of renewed.pairing) await w.laptop.receive(m);
    expect(w.laptop.ceased).toBe(true);
    expect(w.p.client.groupIds().some((id) => bytesEqual(id, g2.id))).toBe(false);
    expect(w.phone.enrolledGroups()).not.toContain(toHex(g2.id));
    w.p.group = w.p.client.group(w.bob.group.id);
    await rejoinOwnKey(w.a, w.bob, [w.p, w.bob]);
    await allTalk([w.a, w.p, w.bob], 'after the enrolment race');
  });
});
