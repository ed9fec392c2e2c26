/**
 * review62b: attacks on "a device whose pairing has ended follows no
 * Notify" (49ed97b, docs/PROTOCOL.md §4.9 "After the end", "`ceaseFrom`
 * and the pairing epoch"). Each asserts the exact outcome, the refusing
 * device's stored state unchanged, and the honest parties going on.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import { PairedDevice, type PairingMode } from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError } from './helpers.js';
import { allTalk, applyShareRand, device, deviceSnapshot, inviteNext, pairedTrio, pairedWorld, refused, rejoinOwnKey, seededTrio, stolen } from './paired-helpers.js';

const ENDED = ['PAIRING_REJECTED', 'unexpected', 'the pairing has ended (unexpected)'] as const;

describe.each(['hidden', 'standard'] as const)('review62b (%s mode): after the end', (mode: PairingMode) => {
  it("route rejoin sets no ceaseFrom: the laptop's older copy (with its vault) makes a proven step removing the phone (its own ceasePair('rekey')): refused ENDED, nothing changes; before 49ed97b it was taken", async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const groupId = w.a.group!.id;
    const older = await stolen(w.a);
    const cease = await w.activeDevice.ceasePair('rejoin');
    expect(await w.passiveDevice.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rejoin' });
    const before = await deviceSnapshot(w.p, w.passiveDevice, groupId);
    expect(before.pairing).toMatchObject({ active: true, members: 2 });
    // The copy's own cease: a proven CeasePair and a proven derivation step removing the phone, from the active leaf.
    const copyCease = await PairedDevice.open(older, w.activeDevice.vault).ceasePair('rekey');
    await refused(() => w.passiveDevice.receive(copyCease.pairing[0]!), ...ENDED);
    await refused(() => w.passiveDevice.receive(copyCease.pairing[1]!), ...ENDED);
    expect(await deviceSnapshot(w.p, w.passiveDevice, groupId)).toEqual(before);
    // The real cease goes on: bob and the phone take the laptop's join and removal; the phone rejoins with its own key.
    for (const g of cease.groups) for (const c of g.commits) await deliverCommit(c, [w.p, bob]);
    expectInSync([w.a, bob]);
    await rejoinOwnKey(w.p, w.a, [w.a, bob]);
    await allTalk([w.a, w.p, bob], 'after the attack');
  });

  it("route rekey (ceaseFrom = the laptop): a commit from the laptop's older copy that removes the phone AND adds a device (no PSK, no proof) is taken in place of the step: the phone only leaves; an add alone, or a step not removing it, from that leaf is refused", async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const groupId = w.a.group!.id;
    const pairingId = w.activeDevice.pairingGroup.id;
    const phoneLeaf = w.passiveDevice.pairingGroup.ownLeafIndex;
    const older = await stolen(w.a);
    const olderDevice = PairedDevice.open(older, w.activeDevice.vault);
    const tablet = await device('mallory-tablet');
    const tabletKp = () => PairedDevice.createKeyPackage(tablet.client, tablet.identity);
    const raw = async (options: Parameters<ReturnType<typeof older.group>['commit']>[0]) => {
      const { commit } = await older.group(pairingId).commit(options);
      await older.group(pairingId).clearPendingCommit();
      return commit;
    };
    const older2 = await stolen(w.a);
    const raw2 = async (options: Parameters<ReturnType<typeof older.group>['commit']>[0]) => (await older2.group(pairingId).commit(options)).commit;
    const cease = await w.activeDevice.ceasePair('rekey');
    expect(await w.passiveDevice.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    const before = await deviceSnapshot(w.p, w.passiveDevice, groupId);
    // From ceaseFrom's leaf but not removing the phone: an unproven add, a self-update: refused as from any active leaf.
    await refused(async () => w.passiveDevice.receive(await raw({ add: [await tabletKp()] })), 'PAIRING_REJECTED', 'no-proof');
    await refused(async () => w.passiveDevice.receive(await raw({ selfUpdate: true })), 'PAIRING_REJECTED', 'no-proof');
    // A proven step of the copy that does not remove the phone (its paired update): refused, ended.
    const u = await olderDevice.update(older.group(groupId));
    await refused(() => w.passiveDevice.receive(u.pairing[0]!), ...ENDED);
    await refused(() => w.passiveDevice.applyNotify(u), ...ENDED);
    expect(await deviceSnapshot(w.p, w.passiveDevice, groupId)).toEqual(before);
    // A second copy from before the cease removes the phone and adds mallory's tablet in one commit (no PSK, no proof):
    // taken (the ceaseFrom rule), and the phone only leaves the pairing group; nothing else of it changes.
    const both = await raw2({ remove: [phoneLeaf], add: [await tabletKp()] });
    expect(await w.passiveDevice.receive(both)).toEqual({ type: 'pairingGroupChanged', epoch: before.pairing!.epoch + 1 });
    expect(w.passiveDevice.pairingGroup.state().active).toBe(false);
    const after = await deviceSnapshot(w.p, w.passiveDevice, groupId);
    expect(after.device).toEqual(before.device);
    expect(after.group).toEqual(before.group);
    // The real step then finds no group; the laptop's older copy's later steps, likewise refused.
    expect((await mlsError(() => w.passiveDevice.receive(cease.pairing[1]!))).code).toBe('NOT_A_MEMBER');
    await refused(() => w.passiveDevice.applyNotify(u), ...ENDED);
    for (const g of cease.groups) for (const c of g.commits) await deliverCommit(c, [bob]);
    await rejoinOwnKey(w.p, w.a, [w.a, bob]);
    await allTalk([w.a, w.p, bob], 'after the attack');
  });

  it("three devices, route rekey (ceaseFrom = the watch at the phone): the watch's older copy removes only the laptop (or the laptop and adds a device): refused wrong-sender at the phone, nothing changes; its removal of the phone is the one commit taken", async () => {
    const t = await pairedTrio(mode);
    const groupId = t.a.group!.id;
    const pairingId = t.phoneDevice.pairingGroup.id;
    const laptopLeaf = t.laptop.pairingGroup.ownLeafIndex;
    const phoneLeaf = t.phoneDevice.pairingGroup.ownLeafIndex;
    const watchLeaf = t.watchDevice.pairingGroup.ownLeafIndex;
    const copy = await stolen(t.watch);
    const tablet = await device('mallory-tablet');
    const raw = async (options: Parameters<ReturnType<typeof copy.group>['commit']>[0]) => {
      const { commit } = await copy.group(pairingId).commit(options);
      await copy.group(pairingId).clearPendingCommit();
      return commit;
    };
    const cease = await t.watchDevice.ceasePair('rekey');
    expect(await t.phoneDevice.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    const before = await deviceSnapshot(t.phone, t.phoneDevice, groupId);
    const notActive = `a pairing-group commit from leaf ${watchLeaf}, not the active device (wrong-sender)`;
    await refused(async () => t.phoneDevice.receive(await raw({ remove: [laptopLeaf] })), 'PAIRING_REJECTED', 'wrong-sender', notActive);
    await refused(
      async () => t.phoneDevice.receive(await raw({ remove: [laptopLeaf], add: [await PairedDevice.createKeyPackage(tablet.client, tablet.identity)] })),
      'PAIRING_REJECTED',
      'wrong-sender',
      notActive,
    );
    expect(await deviceSnapshot(t.phone, t.phoneDevice, groupId)).toEqual(before);
    // Removing only the phone (the copy's own removal, no PSK): taken; the real step then NOT_A_MEMBER.
    expect((await t.phoneDevice.receive(await raw({ remove: [phoneLeaf] }))).type).toBe('pairingGroupChanged');
    expect(t.phoneDevice.pairingGroup.state().active).toBe(false);
    expect((await mlsError(() => t.phoneDevice.receive(cease.pairing[1]!))).code).toBe('NOT_A_MEMBER');
    // The laptop takes the real cease; the group goes on with both rejoined on their own keys.
    expect(await t.laptop.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    expect((await t.laptop.receive(cease.pairing[1]!)).type).toBe('derivationStep');
    for (const g of cease.groups) for (const c of g.commits) await deliverCommit(c, [t.bob]);
    t.watch.group = t.watch.client.group(groupId);
    await rejoinOwnKey(t.phone, t.watch, [t.watch, t.bob]);
    await rejoinOwnKey(t.a, t.watch, [t.watch, t.bob, t.phone]);
    await allTalk([t.a, t.phone, t.watch, t.bob], 'after the attack');
  });

  it("three devices, the laptop's paired update WINS at the DS over the watch's cease (its group commit refused): the phone takes the CeasePair and refuses the Notify; it is not stranded: it rejoins with its own key and all read each other", async () => {
    const t = await pairedTrio(mode);
    const groupId = t.a.group!.id;
    const u = await t.laptop.update(t.a.group!, { send: async () => undefined });
    await deliverCommit(u.commit, [t.bob]);
    const lost = await t.watchDevice.ceasePair('rekey', {
      send: async () => {
        throw new Error('409: the epoch was taken');
      },
    });
    expect(lost.groups.map((g) => g.ceased)).toEqual([false]);
    expect(t.watchDevice.ceasingGroups()).toEqual([toHex(groupId)]);
    expect(await t.phoneDevice.receive(lost.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    const before = await deviceSnapshot(t.phone, t.phoneDevice, groupId);
    await refused(() => t.phoneDevice.applyNotify(u), ...ENDED);
    expect(await deviceSnapshot(t.phone, t.phoneDevice, groupId)).toEqual(before);
    // The winner on the anchor leaf cannot be followed without the Notify: the phone's group stays where it was.
    const direct = await mlsError(() => t.phone.group!.process(u.commit));
    expect({ code: direct.code, message: direct.message }).toEqual({
      code: 'INVALID_COMMIT',
      message: 'processing message: The Commit was created by this client but does not match the pending commit.',
    });
    expect(await deviceSnapshot(t.phone, t.phoneDevice, groupId)).toEqual(before);
    // The laptop made its step: the CeasePair is of a pairing epoch it left; it stays active on the anchor leaf.
    expect((await mlsError(() => t.laptop.receive(lost.pairing[0]!))).code).toBe('WRONG_EPOCH');
    // The phone rejoins with its own key from bob's GroupInfo; laptop, phone and bob read each other.
    await t.phone.client.deleteGroup(groupId);
    const phoneJoin = await t.phone.client.joinExternal(await t.bob.group!.exportGroupInfo(), t.phone.identity);
    if (phoneJoin.group.state().pendingCommit) await phoneJoin.group.mergePendingCommit();
    await deliverCommit(phoneJoin.commit, [t.a, t.bob]);
    t.phone.group = phoneJoin.group;
    await allTalk([t.a, t.phone, t.bob], 'after the attack');
    // The laptop's next paired update is for nobody: the phone refuses it, nothing changes, and the group goes on.
    const next = await t.laptop.update(t.a.group!, { send: async () => undefined });
    await deliverCommit(next.commit, [t.phone, t.bob]);
    await refused(() => t.phoneDevice.applyNotify(next), ...ENDED);
    await allTalk([t.a, t.phone, t.bob], 'after the attack');
    // The watch, whose cease lost in the group, is not stranded either. Was: it refused the update ENDED, could not
    // follow the winner (its own cleared rekey commit had used the anchor leaf's handshake generation the laptop's commit
    // used: MESSAGE_REPLAYED), rejoined by hand, and the laptop kept the pairing (the limit of §4.9). Now its cease raced
    // the update: it takes the update only to catch up and ceases again (§4.9 "A CeasePair racing a paired update").
    const caught = await t.watchDevice.applyNotify(u);
    expect({ route: caught.ceasePair?.route, ceased: t.watchDevice.ceased }).toEqual({ route: 'rekey', ceased: true });
    // The laptop has stepped on since (next): that CeasePair is of a pairing epoch it left.
    expect((await mlsError(() => t.laptop.receive(caught.ceasePair!.pairing[0]!))).code).toBe('WRONG_EPOCH');
    // The watch reads the group's log on (the phone's join), and takes the next update too, ceasing again; the laptop takes that.
    t.watch.group = t.watch.client.group(groupId);
    await deliverCommit(phoneJoin.commit, [t.watch]);
    const again = await t.watchDevice.applyNotify(next);
    expect(await t.laptop.receive(again.ceasePair!.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    expect((await t.laptop.receive(again.ceasePair!.pairing[1]!)).type).toBe('derivationStep');
    expect({ ceased: t.laptop.ceased, inPairingGroup: t.laptop.pairingGroup.state().active }).toEqual({ ceased: true, inPairingGroup: false });
    // Its cease of the group now lands (the anchor leaf under the watch's new key); the laptop rejoins with its own.
    const finish = await t.watchDevice.ceasePair('rekey');
    expect(finish.groups.map((g) => ({ ceased: g.ceased, commits: g.commits.length, error: g.error }))).toEqual([{ ceased: true, commits: 1, error: undefined }]);
    expect(t.watchDevice.ceasingGroups()).toEqual([]);
    await deliverCommit(finish.groups[0]!.commits[0]!, [t.phone, t.bob]);
    t.watch.group = t.watch.client.group(groupId);
    await rejoinOwnKey(t.a, t.bob, [t.phone, t.watch, t.bob]);
    await allTalk([t.a, t.phone, t.watch, t.bob], 'after the attack');
  });

  it("the thief's replay: a Notify the phone already applied, sent again after the phone took the laptop's CeasePair, is refused ENDED before anything is read (no error loop: the same each time), nothing changes; a stolen copy (no vault) cannot cease; all go on", async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const groupId = w.a.group!.id;
    const u0 = await w.activeDevice.update(w.a.group!, { send: async () => undefined });
    await deliverCommit(u0.commit, [bob]);
    expect((await w.passiveDevice.applyNotify(u0)).kind).toBe('update');
    // Before the end the replay is refused as a replay; the device is unchanged.
    const live = await deviceSnapshot(w.p, w.passiveDevice, groupId);
    await refused(() => w.passiveDevice.applyNotify(u0), 'NOTIFY_REJECTED', 'replay', "Notify rejected: processing message: Message epoch differs from the group's epoch. (replay)");
    expect(await deviceSnapshot(w.p, w.passiveDevice, groupId)).toEqual(live);
    const thief = await stolen(w.p);
    const cease = await w.activeDevice.ceasePair('rekey');
    expect(await w.passiveDevice.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    const before = await deviceSnapshot(w.p, w.passiveDevice, groupId);
    for (let i = 0; i < 3; i++) {
      await refused(() => w.passiveDevice.applyNotify(u0), ...ENDED);
      // The step alone through receive: of a pairing epoch the phone left, MLS refuses it first.
      const old = await mlsError(() => w.passiveDevice.receive(u0.pairing[0]!));
      expect(old.code).toBe('WRONG_EPOCH');
    }
    expect(await deviceSnapshot(w.p, w.passiveDevice, groupId)).toEqual(before);
    // The copy (still paired in its own eyes, no vault) can end nothing.
    const copy = PairedDevice.open(thief, undefined);
    expect({ ceased: copy.ceased, role: copy.role }).toEqual({ ceased: false, role: 'passive' });
    const noVault = await mlsError(() => copy.ceasePair('rekey'));
    expect({ code: noVault.code, message: noVault.message }).toEqual({ code: 'PAIRING_STATE', message: 'no seed vault' });
    // The real removal step is still taken; the phone rejoins; all read each other.
    expect((await w.passiveDevice.receive(cease.pairing[1]!)).type).toBe('derivationStep');
    for (const g of cease.groups) for (const c of g.commits) await deliverCommit(c, [bob]);
    await rejoinOwnKey(w.p, w.a, [w.a, bob]);
    await allTalk([w.a, w.p, bob], 'after the attack');
  });

  for (const route of ['rekey', 'rejoin'] as const) {
    it(`route ${route}: the invited watch whose Accept the laptop refuses after the phone's cease is not stranded: it takes the phone's CeasePair (and route rekey its removal step) itself, has ended too, and pairs again`, async () => {
      const t = await seededTrio(mode);
      const { joiner: watchDevice, shareRand } = await inviteNext(t.active, t.phoneDevice, t.watch, t.watchVault);
      const { accept } = await applyShareRand(watchDevice, shareRand);
      expect({ established: watchDevice.established, role: watchDevice.role }).toEqual({ established: true, role: 'passive' });
      const cease = await t.phoneDevice.ceasePair(route);
      expect(await t.active.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route });
      await refused(() => t.active.receive(accept), ...ENDED);
      // The watch learns the end from the phone itself.
      expect(await watchDevice.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route });
      if (route === 'rekey') {
        expect((await watchDevice.receive(cease.pairing[1]!)).type).toBe('derivationStep');
        expect(watchDevice.pairingGroup.state().active).toBe(false);
        expect((await t.active.receive(cease.pairing[1]!)).type).toBe('derivationStep');
      }
      expect(watchDevice.ceased).toBe(true);
      // Nothing holds the watch: it pairs again (here with the laptop, which initiates anew).
      expect(cease.groups).toEqual([]); // (the phone was enrolled in no group here)
      const again = await PairedDevice.initiate(t.watch.client, t.watch.identity, { mode, vault: t.watchVault });
      expect({ ceased: again.ceased, established: again.established, role: again.role }).toEqual({ ceased: false, established: false, role: 'active' });
      await allTalk([t.a, t.bob], 'after the attack');
    });
  }

  it("route rejoin, the phone's own cease loses its join to the laptop's paired update at the DS: the phone takes that update to catch up (was: refused ENDED, the laptop kept the pairing) and ceases again; the laptop takes it; the phone's next ceasePair joins and removes the anchor leaf; all go on", async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const groupId = w.a.group!.id;
    const u = await w.activeDevice.update(w.a.group!, { send: async () => undefined });
    await deliverCommit(u.commit, [bob]);
    const lost = await w.passiveDevice.ceasePair('rejoin', {
      send: async () => {
        throw new Error('409: the epoch was taken');
      },
    });
    expect(lost.groups.map((g) => g.ceased)).toEqual([false]);
    expect(w.passiveDevice.ceasingGroups()).toEqual([toHex(groupId)]);
    // The laptop cannot take the CeasePair (route rejoin: no step; its pairing group is at its own step's epoch).
    const atLaptop = await mlsError(() => w.activeDevice.receive(lost.pairing[0]!));
    expect(atLaptop.code).toBe('WRONG_EPOCH');
    // The phone takes the update its cease raced, only to catch up (§4.9 "A CeasePair racing a paired update"), and ceases again.
    const caught = await w.passiveDevice.applyNotify(u);
    expect({ route: caught.ceasePair?.route, messages: caught.ceasePair?.pairing.length, ceased: w.passiveDevice.ceased }).toEqual({ route: 'rejoin', messages: 1, ceased: true });
    expect(await w.activeDevice.receive(caught.ceasePair!.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rejoin' });
    expect(w.activeDevice.ceased).toBe(true);
    // Its next ceasePair joins from the update's epoch and removes the anchor leaf.
    const finish = await w.passiveDevice.ceasePair('rejoin');
    expect(finish.groups.map((g) => ({ ceased: g.ceased, commits: g.commits.length, error: g.error }))).toEqual([{ ceased: true, commits: 2, error: undefined }]);
    for (const c of finish.groups[0]!.commits) await deliverCommit(c, [w.a, bob]);
    w.p.group = w.p.client.group(groupId);
    await rejoinOwnKey(w.a, bob, [w.p, bob]);
    await allTalk([w.a, w.p, bob], 'after the attack');
    // The laptop updates for nobody any more.
    expect((await mlsError(() => w.activeDevice.update(w.a.group!))).code).toBe('PAIRING_STATE');
  });
});
