/**
 * review64f: attacks on "When the pairing leaves a group" (docs/PROTOCOL.md
 * §4.4; `pairingLeft`, `forgetGroup`, enroll of a left group). Each attack
 * looks for a live enrolled group that one device takes as left (false
 * positive), races at the passive device, replays, and bad arguments.
 */
import { describe, expect, it } from 'vitest';
import { PairedDevice, PairingError, type PairingMode } from 'paired-mls/paired';
import { toHex } from 'paired-mls';
import { deliverCommit, expectInSync, newMember } from './helpers.js';
import { ALREADY, HELD_ANEW, LIVE, bobAddsAliceBack, bobRemovesAlice, rejectionOf, resetAndReenrol } from './unenrol-helpers.js';
import { allTalk, device, enrolPaired, pair, pairedWorld, stolen, updateFollowed, type PairedWorld } from './paired-helpers.js';

const WRONG_EPOCH_REPLAY = { code: 'NOTIFY_REJECTED', message: "Notify rejected: processing message: Message epoch differs from the group's epoch. (replay)", reason: 'replay' };


/** The group is live on both devices: forget refused, enroll refused, a paired update followed, everyone talks. */
async function stillLive(w: PairedWorld, active: PairedDevice, passive: PairedDevice, activeM = w.a, passiveM = w.p): Promise<void> {
  const id = activeM.group!.id;
  for (const d of [active, passive]) {
    expect(await rejectionOf(() => d.forgetGroup(id))).toEqual(LIVE);
    expect(d.enrolledGroups()).toEqual([toHex(id)]);
  }
  expect(await rejectionOf(() => active.enroll(activeM.group!))).toEqual(ALREADY);
  await updateFollowed(active, activeM, passive, w.others);
  await allTalk([activeM, passiveM, ...w.others], 'live');
}



describe.each(['hidden', 'standard'] as PairingMode[])('review64f (%s mode)', (mode) => {
  it('F1 hand-over: the new active device (no anchor key) and the old one (now passive) both see the group live', async () => {
    const w = await pairedWorld(['bob'], mode);
    const rc = await w.activeDevice.handOver();
    expect((await w.passiveDevice.receive(rc)).type).toBe('roleChanged');
    // phone active now
    await stillLive(w, w.passiveDevice, w.activeDevice, w.p, w.a);
    const back = await w.passiveDevice.handOver();
    expect((await w.activeDevice.receive(back)).type).toBe('roleChanged');
    await stillLive(w, w.activeDevice, w.passiveDevice);
  });

  it('F2 a paired update refused at the DS (cleared) and an enrol refused at the DS leave no false "left"', async () => {
    const w = await pairedWorld(['bob'], mode);
    let step: Uint8Array | undefined;
    const err = await rejectionOf(() => w.activeDevice.update(w.a.group!, { send: async (out) => { step = out.pairing[0]; throw new Error('DS refused'); } }));
    expect(err).toEqual({ code: 'plain Error', message: 'DS refused' });
    expect(w.a.group!.state().pendingCommit).toBeFalsy();
    // The partner takes the step alone (§4.4); the group is live on both devices.
    await w.passiveDevice.receive(step!);
    await stillLive(w, w.activeDevice, w.passiveDevice);
  });

  it('F3 a group the anchor joined by joinExternal before enrolment stays live once enrolled', async () => {
    const a = await device('alice');
    const p = await device('alice-phone');
    const bob = await newMember('bob');
    bob.group = await bob.client.createGroup(bob.identity);
    const { activeDevice, passiveDevice } = await pair(a, p, mode);
    const joined = await a.client.joinExternal(await bob.group.exportGroupInfo(), a.identity);
    if (joined.group.state().pendingCommit) await joined.group.mergePendingCommit();
    a.group = joined.group;
    await deliverCommit(joined.commit, [bob]);
    const enrolment = await enrolPaired(activeDevice, a, [[p, passiveDevice]], [bob]);
    const w: PairedWorld = { a, p, others: [bob], activeDevice, passiveDevice, enrolment };
    expectInSync([a, p, bob]);
    await stillLive(w, activeDevice, passiveDevice);
  });

  it('F4 enroll with send: refused at the DS lists nothing; while pending a forget waits its turn and then is refused LIVE', async () => {
    const { a, p, others, activeDevice, passiveDevice } = await (async () => {
      const w = await pairedWorld(['bob'], mode);
      await bobRemovesAlice(w);
      await bobAddsAliceBack(w);
      return w;
    })();
    const id = a.group!.id;
    let step: Uint8Array | undefined;
    const refusedEnrol = await rejectionOf(() => activeDevice.enroll(a.group!, { send: async (out) => { step = out.pairing[0]; throw new Error('DS said no'); } }));
    expect(refusedEnrol).toEqual({ code: 'plain Error', message: 'DS said no' });
    await passiveDevice.receive(step!); // the step alone
    // Still listed (old dead entry), still left: nothing recorded.
    expect(activeDevice.enrolledGroups()).toEqual([toHex(id)]);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const enrolling = activeDevice.enroll(a.group!, { send: async () => gate });
    await new Promise((r) => setTimeout(r, 20));
    const forgetting = activeDevice.forgetGroup(id).then(() => 'forgotten', (e: PairingError) => `${e.code}: ${e.message}`);
    await new Promise((r) => setTimeout(r, 20));
    release();
    const enrolled = await enrolling;
    // A forget while the enrolment waits on its send is BUSY; after it settled, the group is live: LIVE.
    expect(await forgetting).toBe('PAIRING_STATE: another paired operation of this device is still running (a commit waiting on its send): wait until it settled');
    expect(await rejectionOf(() => activeDevice.forgetGroup(id))).toEqual(LIVE);
    await deliverCommit(enrolled.commit, others);
    expect((await passiveDevice.applyNotify(enrolled)).kind).toBe('enroll');
    p.group = p.client.group(id);
    await stillLive({ a, p, others, activeDevice, passiveDevice, enrolment: enrolled }, activeDevice, passiveDevice);
  });

  it('F5 race: the passive device has not processed the removal when the new enrolment arrives (NOTIFY_REJECTED, nothing changed), then takes it', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    const removal = await bobRemovesAlice(w, [w.a]);
    await bobAddsAliceBack(w);
    const addCommit = w.others[0]!.group!; // bob's state (add already merged)
    expect(addCommit.epoch).toBe(w.a.group!.epoch);
    const enrolled = await w.activeDevice.enroll(w.a.group!, { send: async ({ commit }) => deliverCommit(commit, w.others) });
    const before = { epoch: w.p.group!.epoch, pairingEpoch: w.passiveDevice.pairingGroup.epoch, counter: w.passiveDevice.counter, groups: w.passiveDevice.enrolledGroups() };
    const rej = await rejectionOf(() => w.passiveDevice.applyNotify(enrolled));
    expect(rej).toEqual(WRONG_EPOCH_REPLAY);
    expect({ epoch: w.p.group!.epoch, pairingEpoch: w.passiveDevice.pairingGroup.epoch, counter: w.passiveDevice.counter, groups: w.passiveDevice.enrolledGroups() }).toEqual(before);
    // It processes the group's commits first: the removal (the add does not concern its dead copy), then the Notify is new.
    const r = await w.p.group!.process(removal);
    if (r.kind === 'commit') await r.staged.merge();
    expect(w.p.group!.state().active).toBe(false);
    expect((await w.passiveDevice.applyNotify(enrolled)).kind).toBe('enroll');
    w.p.group = w.p.client.group(id);
    expectInSync([w.a, w.p, ...w.others]);
    await stillLive(w, w.activeDevice, w.passiveDevice);
  });

  it('F6 the DS replays the OLD enrolment Notify: before re-enrolment (group left at the passive) and after', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    await updateFollowed(w.activeDevice, w.a, w.passiveDevice, w.others);
    await bobRemovesAlice(w);
    const early = await rejectionOf(() => w.passiveDevice.applyNotify(w.enrolment));
    expect(early).toEqual(WRONG_EPOCH_REPLAY);
    expect(w.p.client.group(id).state().active).toBe(false);
    await bobAddsAliceBack(w);
    const enrolled = await w.activeDevice.enroll(w.a.group!, { send: async ({ commit }) => deliverCommit(commit, w.others) });
    expect((await w.passiveDevice.applyNotify(enrolled)).kind).toBe('enroll');
    w.p.group = w.p.client.group(id);
    for (const old of [w.enrolment, enrolled]) {
      const late = await rejectionOf(() => w.passiveDevice.applyNotify(old));
      expect(late).toEqual(WRONG_EPOCH_REPLAY);
    }
    await stillLive(w, w.activeDevice, w.passiveDevice);
  });

  it('F7 malformed groupId to forgetGroup', async () => {
    const w = await pairedWorld(['bob'], mode);
    for (const bad of [undefined, null, 'abc', 5, {}, [1, 2]]) {
      const e = await rejectionOf(() => w.activeDevice.forgetGroup(bad as unknown as Uint8Array));
      expect(e).toEqual({ code: 'INVALID_ARGUMENT', message: 'groupId must be a Uint8Array' });
    }
    await stillLive(w, w.activeDevice, w.passiveDevice);
  });

  it('F8 handOver / ceasePair / reenroll with a listed group the app deleted (or held anew)', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    await bobRemovesAlice(w);
    await bobAddsAliceBack(w);
    const heldAnew = await rejectionOf(() => w.activeDevice.handOver());
    // Limit: the remedy the message names (a paired update) is itself refused for a group held anew (HELD_ANEW); enroll or forgetGroup is the way.
    expect(heldAnew).toEqual({ code: 'PAIRING_STATE', message: 'the partner holds no anchor key for an enrolled group yet: make a paired update there first' });
    await w.a.client.deleteGroup(id);
    const ho = await rejectionOf(() => w.activeDevice.handOver());
    expect(ho).toEqual({ code: 'UNKNOWN_GROUP', message: 'this client has no such group' });
    const kp = await PairedDevice.createKeyPackage(w.p.client, w.p.identity);
    const re = await rejectionOf(() => w.activeDevice.reenroll(1, kp));
    expect(re).toEqual({ code: 'UNKNOWN_GROUP', message: 'this client has no such group' });
    const copy = PairedDevice.open(await stolen(w.a), undefined);
    const cz = await rejectionOf(() => copy.ceasePair('rekey'));
    expect(cz).toEqual({ code: 'UNKNOWN_GROUP', message: 'this client has no such group' });
    await w.activeDevice.forgetGroup(id);
    expect(w.activeDevice.enrolledGroups()).toEqual([]);
    const rc = await w.activeDevice.handOver();
    expect((await w.passiveDevice.receive(rc)).type).toBe('roleChanged');
  });

  it('F9 the cease (rekey, no send): the ceasing device may forget the group (its leaf now has its own key); the ceased partner, not holding the new epoch, is refused LIVE until it deletes or rejoins', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    const cease = await w.activeDevice.ceasePair('rekey');
    for (const c of cease.groups[0]!.commits) await deliverCommit(c, w.others);
    expect(await w.passiveDevice.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    await w.passiveDevice.receive(cease.pairing[1]!);
    await w.activeDevice.forgetGroup(id);
    expect(w.activeDevice.enrolledGroups()).toEqual([]);
    // Limit (message inaccurate after the end): the partner's stale copy still looks live to it.
    expect(await rejectionOf(() => w.passiveDevice.forgetGroup(id))).toEqual(LIVE);
    await w.p.client.deleteGroup(id);
    await w.passiveDevice.forgetGroup(id);
    expect(w.passiveDevice.enrolledGroups()).toEqual([]);
    expect(await rejectionOf(() => w.activeDevice.enroll(w.a.group!))).toEqual({ code: 'PAIRING_STATE', message: 'the pairing has ended' });
    await allTalk([w.a, ...w.others], 'after cease');
  });

  it('F10 a ReInit of an enrolled group: the retired group is left on both devices (forgetGroup takes it off), its update GROUP_REINITIALIZED, enroll of it refused by the core', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    const bob = w.others[0]!;
    const reinit = await bob.group!.commitReInit({ ciphersuite: 1 });
    await bob.group!.mergePendingCommit();
    await deliverCommit(reinit.commit, [w.a, w.p]);
    const retired = { code: 'GROUP_REINITIALIZED', message: 'the group was reinitialized (ReInit); continue in its successor' };
    expect(await rejectionOf(() => w.activeDevice.update(w.a.group!))).toEqual(retired);
    const counter = w.activeDevice.counter;
    expect(await rejectionOf(() => w.activeDevice.enroll(w.a.group!))).toEqual(retired);
    expect(w.activeDevice.enrolledGroups()).toEqual([toHex(id)]);
    for (const d of [w.activeDevice, w.passiveDevice]) {
      await d.forgetGroup(id);
      expect(d.enrolledGroups()).toEqual([]);
    }
    expect(w.activeDevice.counter).toBe(counter);
    // The pairing goes on: a hand-over and back.
    const rc = await w.activeDevice.handOver();
    expect((await w.passiveDevice.receive(rc)).type).toBe('roleChanged');
  });

  it('F11 the thief copy of the passive device: enroll refused (role), forget of the live group refused, its copy changes nothing for the honest devices', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    const thiefClient = await stolen(w.p);
    const thief = PairedDevice.open(thiefClient, undefined);
    const en = await rejectionOf(() => thief.enroll(thiefClient.group(id)));
    expect(en).toEqual({ code: 'PAIRING_STATE', message: 'this device is passive, the operation needs the active role' });
    expect(await rejectionOf(() => thief.forgetGroup(id))).toEqual(LIVE);
    await thiefClient.deleteGroup(id);
    await thief.forgetGroup(id); // its copy only
    expect(thief.enrolledGroups()).toEqual([]);
    await stillLive(w, w.activeDevice, w.passiveDevice);
  });

  it('F12 a dead group held (anchor leaf removed, not re-added): enroll, handOver, reenroll, ceasePair', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    await bobRemovesAlice(w);
    const counter = w.activeDevice.counter;
    // Left, but a dead copy cannot be enrolled: the core's NOT_A_MEMBER, nothing changed (entry and counter kept).
    expect(await rejectionOf(() => w.activeDevice.enroll(w.a.group!))).toEqual({ code: 'NOT_A_MEMBER', message: 'this client is no longer a member of the group' });
    expect(w.activeDevice.enrolledGroups()).toEqual([toHex(id)]);
    expect(w.activeDevice.counter).toBe(counter);
    // A hand-over with the dead group listed works; both then forget it.
    const rc = await w.activeDevice.handOver();
    expect((await w.passiveDevice.receive(rc)).type).toBe('roleChanged');
    for (const d of [w.activeDevice, w.passiveDevice]) {
      await d.forgetGroup(id);
      expect(d.enrolledGroups()).toEqual([]);
    }
  });

  it('F13 §4.4: a passive device that forgot the dead group but still holds it refuses the later enrolment (commit-mismatch), nothing changed; after deleting it, takes it', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    await bobRemovesAlice(w);
    await w.passiveDevice.forgetGroup(id);
    await bobAddsAliceBack(w);
    const enrolled = await w.activeDevice.enroll(w.a.group!, { send: async ({ commit }) => deliverCommit(commit, w.others) });
    const counter = w.passiveDevice.counter;
    expect(await rejectionOf(() => w.passiveDevice.applyNotify(enrolled))).toEqual({
      code: 'NOTIFY_REJECTED',
      message: 'Notify rejected: this device already holds the group outside the pairing (commit-mismatch)',
      reason: 'commit-mismatch',
    });
    expect(w.passiveDevice.counter).toBe(counter);
    expect(w.passiveDevice.enrolledGroups()).toEqual([]);
    await w.p.client.deleteGroup(id);
    expect((await w.passiveDevice.applyNotify(enrolled)).kind).toBe('enroll');
    w.p.group = w.p.client.group(id);
    await stillLive(w, w.activeDevice, w.passiveDevice);
  });

  it('F14 after reenroll (the phone reset and taken back) the group is live on both devices', async () => {
    const w = await pairedWorld(['bob'], mode);
    const phone = await resetAndReenrol(w);
    await stillLive(w, w.activeDevice, phone);
  });

  it('F15 fixed: after a hand-over the new active device (no anchor key) rejoins a group it was removed from with a fresh key of the anchor credential: left (its leaf does not carry the key the pairing last put there); re-enrolled, the partner follows', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    const bob = w.others[0]!;
    const rc = await w.activeDevice.handOver();
    expect((await w.passiveDevice.receive(rc)).type).toBe('roleChanged');
    const phone = w.passiveDevice; // active now
    const laptop = w.activeDevice;
    await bobRemovesAlice(w);
    await w.p.client.deleteGroup(id);
    const fresh = await w.p.client.createIdentity(phone.anchor!.identity, 1);
    const rejoin = await w.p.client.joinExternal(await bob.group!.exportGroupInfo(), fresh);
    if (rejoin.group.state().pendingCommit) await rejoin.group.mergePendingCommit();
    await deliverCommit(rejoin.commit, [bob]);
    w.p.group = rejoin.group;
    // Held anew on the phone: its update is refused before anything is made, enroll enrols it again.
    expect(await rejectionOf(() => phone.update(w.p.group!))).toEqual(HELD_ANEW);
    const en = await phone.enroll(w.p.group!, { send: async ({ commit }) => deliverCommit(commit, [bob]) });
    // The laptop's copy is dead (removed): the proven enroll Notify is new for it.
    expect((await laptop.applyNotify(en)).kind).toBe('enroll');
    w.a.group = w.a.client.group(id);
    expect(phone.enrolledGroups()).toEqual([toHex(id)]);
    expect(laptop.enrolledGroups()).toEqual([toHex(id)]);
    await stillLive(w, phone, laptop, w.p, w.a);
  });

  it('F15 fixed (forget): the rejoined new active device forgets the group, as its partner with the dead copy', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    const bob = w.others[0]!;
    const rc = await w.activeDevice.handOver();
    expect((await w.passiveDevice.receive(rc)).type).toBe('roleChanged');
    const phone = w.passiveDevice;
    const laptop = w.activeDevice;
    await bobRemovesAlice(w);
    await w.p.client.deleteGroup(id);
    const rejoin = await w.p.client.joinExternal(await bob.group!.exportGroupInfo(), await w.p.client.createIdentity(phone.anchor!.identity, 1));
    if (rejoin.group.state().pendingCommit) await rejoin.group.mergePendingCommit();
    await deliverCommit(rejoin.commit, [bob]);
    await laptop.forgetGroup(id);
    await phone.forgetGroup(id);
    expect(laptop.enrolledGroups()).toEqual([]);
    expect(phone.enrolledGroups()).toEqual([]);
    // Its state stays with the client (only the list changed): an ordinary member now.
    expect(w.p.client.group(id).state().active).toBe(true);
  });

  it('F16 fixed, no hand-over: the active device rejoins with a fresh key of the anchor credential (not the anchor identity): left; update refused, enroll re-enrols, the passive device follows', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    const bob = w.others[0]!;
    await bobRemovesAlice(w);
    await w.a.client.deleteGroup(id);
    const fresh = await w.a.client.createIdentity(w.activeDevice.anchor!.identity, 1);
    const rejoin = await w.a.client.joinExternal(await bob.group!.exportGroupInfo(), fresh);
    if (rejoin.group.state().pendingCommit) await rejoin.group.mergePendingCommit();
    await deliverCommit(rejoin.commit, [bob]);
    w.a.group = rejoin.group;
    expect(await rejectionOf(() => w.activeDevice.update(w.a.group!, { send: async ({ commit }) => deliverCommit(commit, [bob]) }))).toEqual(HELD_ANEW);
    const en = await w.activeDevice.enroll(w.a.group!, { send: async ({ commit }) => deliverCommit(commit, [bob]) });
    expect((await w.passiveDevice.applyNotify(en)).kind).toBe('enroll');
    w.p.group = w.p.client.group(id);
    await stillLive(w, w.activeDevice, w.passiveDevice);
  });

  it('F16 fixed (forget): the rejoined active device forgets the group; the passive device (dead copy) too', async () => {
    const w = await pairedWorld(['bob'], mode);
    const id = w.a.group!.id;
    const bob = w.others[0]!;
    await bobRemovesAlice(w);
    await w.a.client.deleteGroup(id);
    const rejoin = await w.a.client.joinExternal(await bob.group!.exportGroupInfo(), await w.a.client.createIdentity(w.activeDevice.anchor!.identity, 1));
    if (rejoin.group.state().pendingCommit) await rejoin.group.mergePendingCommit();
    await deliverCommit(rejoin.commit, [bob]);
    await w.activeDevice.forgetGroup(id);
    await w.passiveDevice.forgetGroup(id);
    expect(w.activeDevice.enrolledGroups()).toEqual([]);
    expect(w.passiveDevice.enrolledGroups()).toEqual([]);
  });
});
