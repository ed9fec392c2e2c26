/**
 * review64e: attacker review of a271490 — `CommitOptions.retainOwnSecret`
 * (a commit's own handshake secret not confirmed at creation), engine change
 * 49 (an epoch's own handshake secrets still awaiting confirmation dropped
 * at every merge, before the epoch goes to the past-epoch store), and the
 * passive device's route-rekey cease commit using the option
 * (docs/PROTOCOL.md §4.9, "A CeasePair racing a paired update").
 *
 * Held (asserted below): the option's type is checked (typed
 * INVALID_ARGUMENT, nothing staged); a retained, cleared commit replayed to
 * its maker after a false refusal is a typed error either way; an
 * unconfirmed application message keeps its secret across a merge (change
 * 49 touches the handshake ratchet only) and a later confirm succeeds; a
 * retainState snapshot taken while the secret was retained, restored after
 * the epoch ended, gets it back only with maxPastEpochs 0 (the snapshot held
 * the whole epoch; with a past epoch kept, engine change 28 drops it); a
 * thief's copy taken between the refused cease commit and the catch-up
 * makes of the raced update exactly what a copy from before the send does;
 * a retry of the cease before the catch-up and a restart between refusal
 * and catch-up still resolve the race. Rust: the next commit after a
 * retained, cleared commit and a restart takes the next generation
 * (crates/core virtual_client.rs, review64e_…).
 *
 * FINDING (docs only, §4.9 "A limit: a hand-over before the raced step";
 * the sentence "the laptop and the watch, still paired, rejoin as a device
 * removed from a group does" is replaced by this test's outcome, named a
 * limit there): after the phone removes the anchor leaf, the watch's paired
 * update is NOT_A_MEMBER, both keep the group in enrolledGroups(), and a
 * group the watch rejoins (joinExternal, its own key) cannot be enrolled
 * (then PAIRING_STATE 'the group is already enrolled'; since the unenrol
 * fix, §4.4, INVALID_ARGUMENT: a leaf of the watch's own identity cannot
 * become the anchor leaf, and `forgetGroup` takes the dead entry off on
 * each device): they rejoin only as two unpaired members.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, MlsError, toHex, utf8, type Group, type WireFormat } from 'paired-mls';
import { PairedDevice, type PairedCommit, type PairingMode } from 'paired-mls/paired';
import { type Member, deliverCommit, expectInSync, mlsError, newMember } from './helpers.js';
import { ceaseRaceWorld as world, dsOf as ds } from './cease-race-world.js';
import { allTalk, pairedTrio, rejoinOwnKey, stolen, type InGroup } from './paired-helpers.js';

type Two = { alice: InGroup; bob: InGroup };

/** What `group` makes of `message`: its kind (an application message: with its text), or the error code. */
async function outcome(group: Group, message: Uint8Array): Promise<string> {
  try {
    const r = await group.process(message);
    return r.kind === 'application' ? `application:${utf8(r.data)}` : r.kind;
  } catch (err) {
    if (err instanceof MlsError) return err.code;
    throw err;
  }
}

async function twoMembers(maxPastEpochs = 0, wireFormat: WireFormat = 'ciphertext'): Promise<Two> {
  const alice = await newMember('alice');
  const bob = await newMember('bob');
  alice.group = await alice.client.createGroup(alice.identity, { maxPastEpochs, wireFormat });
  const { welcome } = await alice.group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
  await alice.group.mergePendingCommit();
  bob.group = await bob.client.joinFromWelcome(welcome!, { maxPastEpochs, wireFormat });
  return { alice: alice as InGroup, bob: bob as InGroup };
}

/** A copy of `m`'s stored state, reopened (a restart, or the thief). */
async function reopen(m: Member): Promise<MlsClient> {
  return MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(m.storage as MemoryStorageAdapter) });
}

describe('review64e: retainOwnSecret in the MLS base', () => {
  it('attack A1 (conversion): a retainOwnSecret of the wrong type is a typed INVALID_ARGUMENT, nothing is staged; the group then commits', async () => {
    const { alice, bob } = await twoMembers();
    const expected: [unknown, string][] = [
      ['yes', 'commit spec: Error: invalid type: string "yes", expected a boolean'],
      [1, 'commit spec: Error: invalid type: floating point `1.0`, expected a boolean'],
      [{}, 'commit spec: Error: invalid type: JsValue(object), expected a boolean'],
      [null, 'commit spec: Error: invalid type: unit value, expected a boolean'],
    ];
    for (const [bad, message] of expected) {
      const e = await mlsError(() => alice.group.commit({ selfUpdate: true, retainOwnSecret: bad as boolean }));
      expect({ code: e.code, message: e.message }).toEqual({ code: 'INVALID_ARGUMENT', message });
      expect(alice.group.state().pendingCommit).toBe(false);
    }
    const c = await alice.group.commit({ selfUpdate: true, retainOwnSecret: true });
    await alice.group.mergePendingCommit();
    await deliverCommit(c.commit, [bob]);
    await allTalk([alice, bob], 'after a retained commit merged');
  });

  for (const retain of [false, true]) {
    it(`attack A2 (DS lies "refused", retain ${retain}): the commit bob merged, cleared by alice, then handed to her: a typed outcome (${retain ? 'INVALID_COMMIT: the kept secret decrypts her own commit, which she cannot process' : 'ownMessage'}), the same on a replay; alice is forked either way and rejoins`, async () => {
      const { alice, bob } = await twoMembers();
      const c = await alice.group.commit({ selfUpdate: true, retainOwnSecret: retain });
      await deliverCommit(c.commit, [bob]);
      await alice.group.clearPendingCommit();
      const want = retain ? 'INVALID_COMMIT' : 'ownMessage';
      expect(await outcome(alice.group, c.commit)).toBe(want);
      expect(await outcome(alice.group, c.commit)).toBe(want);
      expect(alice.group.epoch).toBe(bob.group.epoch - 1);
      await rejoinOwnKey(alice, bob, [bob]);
      await allTalk([alice, bob], 'after the rejoin');
    });

    for (const past of [0, 1]) {
      it(`attack A3 (retainState, retain ${retain}, maxPastEpochs ${past}): a snapshot taken after the refused commit, restored after bob's commit ended the epoch: the cleared commit ${retain && past === 0 ? 'decrypts again (INVALID_COMMIT: the snapshot held the secret when taken)' : 'is not decrypted (ownMessage)'}`, async () => {
        const { alice, bob } = await twoMembers(past);
        const c1 = await alice.group.commit({ selfUpdate: true, retainOwnSecret: retain });
        await alice.group.clearPendingCommit();
        const kept = alice.group.retainState();
        const c2 = await bob.group.commit({ selfUpdate: true });
        await bob.group.mergePendingCommit();
        await deliverCommit(c2.commit, [alice]);
        // Change 49: a copy after the merge has nothing of the ended epoch's handshake to use.
        expect(await outcome((await reopen(alice)).group(alice.group.id), c1.commit)).toBe('WRONG_EPOCH');
        await alice.group.restoreState(kept);
        kept.free();
        expect(alice.group.epoch).toBe(1);
        expect(await outcome(alice.group, c1.commit)).toBe(retain && past === 0 ? 'INVALID_COMMIT' : 'ownMessage');
      });
    }

    it(`attack A4 (application ratchet untouched, retain ${retain}): an unconfirmed application message of alice keeps its secret across bob's commit (maxPastEpochs 1): a copy of alice still reads it, confirm() later succeeds, bob reads it`, async () => {
      const { alice, bob } = await twoMembers(1);
      if (retain) {
        await alice.group.commit({ selfUpdate: true, retainOwnSecret: true });
        await alice.group.clearPendingCommit();
      }
      const m = await alice.group.encryptUnconfirmed('unconfirmed');
      const c = await bob.group.commit({ selfUpdate: true });
      await bob.group.mergePendingCommit();
      await deliverCommit(c.commit, [alice]);
      expect(await outcome((await reopen(alice)).group(alice.group.id), m.message)).toBe('application:unconfirmed');
      await m.confirm();
      expect(await outcome((await reopen(alice)).group(alice.group.id), m.message)).toBe('ownMessage');
      expect(await outcome(bob.group, m.message)).toBe('application:unconfirmed');
    });
  }
});




describe.each(['hidden', 'standard'] as const)('review64e (%s mode): the raced cease commit and its kept secret', (mode: PairingMode) => {
  it('attack B1 (thief between refusal and catch-up; retry; restart): a copy taken after the refused cease commit makes of the raced update what a copy from before the send makes (INVALID_COMMIT, no vault); the phone retries the cease (refused again), restarts from storage, and the reopened phone still catches up; a copy after it has nothing (WRONG_EPOCH); the pairing ends and the group talks', async () => {
    const w = await world(mode);
    const groupId = w.bob.group.id;
    const before = await stolen(w.p);
    const u: PairedCommit = await w.laptop.update(w.a.group, { send: ds(w.bob) });
    const cease = await w.phone.ceasePair('rekey', { send: ds(w.bob) });
    expect(cease.groups.map((g) => g.ceased)).toEqual([false]);
    const between = await stolen(w.p);
    expect(await outcome(before.group(groupId), u.commit)).toBe('INVALID_COMMIT');
    expect(await outcome(between.group(groupId), u.commit)).toBe('INVALID_COMMIT');
    // A retry before the catch-up: a second retained commit at the next generation, refused as well.
    const again = await w.phone.ceasePair('rekey', { send: ds(w.bob) });
    expect(again.groups.map((g) => g.ceased)).toEqual([false]);
    // A restart between the refusal and the catch-up: the kept secret was stored.
    const client = await reopen(w.p);
    const phone = PairedDevice.open(client, w.phoneVault);
    const applied = await phone.applyNotify(u);
    expect(applied.ceasePair?.route).toBe('rekey');
    expect(await outcome((await reopen({ ...w.p, client, storage: client.storage })).group(groupId), u.commit)).toBe('WRONG_EPOCH');
    for (const m of applied.ceasePair!.pairing) await w.laptop.receive(m);
    expect(w.laptop.ceased).toBe(true);
    const finish = await phone.ceasePair('rekey', { send: ds(w.bob) });
    expect(finish.groups.map((g) => g.ceased)).toEqual([true]);
    const p2: Member = { ...w.p, client, group: client.group(groupId) };
    expectInSync([p2, w.bob]);
    await rejoinOwnKey(w.a, w.bob, [p2, w.bob]);
    await allTalk([w.a, p2, w.bob], 'after the restart');
  });

  it('attack B2 (the hand-over limit, §4.9): after the phone removes the anchor leaf, the laptop and the watch do not "rejoin as a removed device does" as a pair — FINDING: the watch\'s paired update is NOT_A_MEMBER, the dead group stays enrolled until forgetGroup, a group rejoined with the watch\'s own key cannot be enrolled (INVALID_ARGUMENT, credential identity); they rejoin only as unpaired members', async () => {
    const t = await pairedTrio(mode);
    const groupId = t.bob.group!.id;
    const rc = await t.laptop.handOver(t.watchDevice.pairingGroup.ownLeafIndex);
    expect((await t.watchDevice.receive(rc)).type).toBe('roleChanged');
    const u = await t.watchDevice.update(t.watch.group!, { send: async ({ commit }) => deliverCommit(commit, [t.bob]) });
    expect((await t.laptop.applyNotify(u)).kind).toBe('update');
    const cease = await t.phoneDevice.ceasePair('rekey', { send: async ({ commit }) => deliverCommit(commit, [t.bob]) });
    expect(cease.groups.map((g) => g.ceased)).toEqual([false]);
    // The phone's way out (§4.9): rejoin with its own key, cease again: the anchor leaf is removed.
    await rejoinOwnKey(t.phone, t.bob, [t.bob, t.watch, t.a]);
    let removal: Uint8Array | undefined;
    const done = await t.phoneDevice.ceasePair('rekey', {
      send: async ({ commit }) => {
        removal = commit;
        await deliverCommit(commit, [t.bob]);
      },
    });
    expect(done.groups.map((g) => g.ceased)).toEqual([true]);
    for (const m of [t.watch, t.a]) {
      const r = await m.group!.process(removal!);
      expect(r.kind === 'commit' && r.staged.removes.map((x) => x.leafIndex)).toEqual([0]);
      if (r.kind === 'commit') await r.staged.merge();
      expect(m.group!.state().active).toBe(false);
    }
    for (const d of [t.watchDevice, t.laptop]) expect(d.enrolledGroups()).toEqual([toHex(groupId)]);
    const up = await mlsError(() => t.watchDevice.update(t.watch.group!, { send: async () => undefined }));
    expect({ code: up.code, message: up.message }).toEqual({ code: 'NOT_A_MEMBER', message: 'this client is no longer a member of the group' });
    // "As a removed device does": each rejoins with its own key; the pairing cannot take the group back.
    await rejoinOwnKey(t.watch, t.bob, [t.bob, t.phone]);
    // Since the unenrol fix (§4.4, "When the pairing leaves a group"): the dead entry no longer blocks `enroll`;
    // a leaf of the watch's own identity still cannot become the anchor leaf (RFC 9420 §5.3.1), nothing changes.
    const counter = t.watchDevice.counter;
    const en = await mlsError(() => t.watchDevice.enroll(t.watch.group!, { send: async () => undefined }));
    expect({ code: en.code, message: en.message }).toEqual({
      code: 'INVALID_ARGUMENT',
      message: "the new credential has another identity than this member's leaf 0: a leaf's credential may change only within its type and identity (RFC 9420 §5.3.1)",
    });
    expect(t.watchDevice.counter).toBe(counter);
    // The dead entry can be taken off the list on each device (its own client shows the pairing left the group).
    for (const d of [t.watchDevice, t.laptop]) {
      await d.forgetGroup(groupId);
      expect(d.enrolledGroups()).toEqual([]);
    }
    await rejoinOwnKey(t.a, t.bob, [t.bob, t.phone, t.watch]);
    await allTalk([t.a, t.watch, t.phone, t.bob], 'as unpaired members');
    expect(t.watchDevice.ceased).toBe(false);
    expect(t.laptop.ceased).toBe(false);
  });
});
