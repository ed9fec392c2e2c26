/**
 * Fifth review of the Paired MLS layer, of f323e9e (one `PairedDevice`
 * object per client, docs/PROTOCOL.md §4.5; b54f3b8 showed the desync
 * before it) and 4d544da (`ceasePair` / `reenroll` with `send`, §4.9,
 * §4.14: each group commit merged only once the DS accepted it), against
 * the attackers of docs/PROTOCOL.md §4.0 that bear on them: a hostile
 * member whose commit a real in-process DS takes first for the same epoch
 * (its refusal, `epoch-taken`, is what `send` throws), and a DS that never
 * answers. Each test asserts the exact refusal and that the honest devices
 * keep working.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, bytesEqual, toHex, utf8 } from 'paired-mls';
import {
  PairedDevice,
  type CeaseCommit,
  type CeasedGroup,
  type PairedCommit,
  type PairingMode,
  type ReenrolledGroup,
} from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError } from './helpers.js';
import { device, pairedWorld, read, refused, updateFollowed, updateWaitingOnSend } from './paired-helpers.js';
import { JOIN_RECORD, SNAPSHOT_RECORD, UNFINISHED, joinIn, anchorKeyOf, bobWins, catchUp, ceaseSend, dsWorld, epochTaken, finishAfterRefusedJoin, honestGoOn, inSync, lockedOut, submit, wrapped } from './paired-ds-helpers.js';

const BUSY = 'another paired operation of this device is still running (a commit waiting on its send): wait until it settled';

const CLOSED = 'this PairedDevice was replaced on its client, or reset: use the one PairedDevice.open returns';

describe.each(['hidden', 'standard'] as const)('Paired MLS review 5: a second PairedDevice object on the same client (%s mode)', (mode: PairingMode) => {
  it('open gives the live object again, so no derivation step is taken twice: the partner follows every update', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    // Before one object per client was enforced (b54f3b8 showed it) this opened a second object
    // holding its own counter: once the first had made a paired update, the second's step
    // injected PSK(n) again, the phone refused it (NOTIFY_REJECTED counter) and then every
    // later step (out-of-order): the pair was broken.
    const second = PairedDevice.open(w.a.client, w.activeDevice.vault);
    expect(second).toBe(w.activeDevice);
    expect(PairedDevice.open(w.a.client, undefined)).toBe(w.activeDevice);
    await updateFollowed(w.activeDevice, w.a, w.passiveDevice, [bob]);
    await updateFollowed(second, w.a, w.passiveDevice, [bob]);
    expect(w.activeDevice.counter).toBe(w.passiveDevice.counter);
    expectInSync([w.a, w.p, bob]);
    const m = await bob.group!.encrypt('one device object');
    for (const d of [w.a, w.p]) expect(await read(d, m)).toBe('one device object');
  });

  it('open with another vault replaces the object: the earlier one is closed (PAIRING_STATE) and changes nothing; the new one goes on in step', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const first = w.activeDevice;
    const replacement = PairedDevice.open(w.a.client, wrapped(first.vault!));
    expect(replacement).not.toBe(first);
    const epoch = w.a.group!.epoch;
    const pairingEpoch = replacement.pairingGroup.epoch;
    await refused(() => first.update(w.a.group!, { send: async () => undefined }), 'PAIRING_STATE', undefined, CLOSED);
    await refused(() => first.receive(w.enrolment.pairing[0]!), 'PAIRING_STATE', undefined, CLOSED);
    await refused(() => first.ceasePair(), 'PAIRING_STATE', undefined, CLOSED);
    expect({ epoch: w.a.group!.epoch, pairingEpoch: replacement.pairingGroup.epoch, pending: w.a.group!.state().pendingCommit }).toEqual({ epoch, pairingEpoch, pending: false });
    await updateFollowed(replacement, w.a, w.passiveDevice, [bob]);
    await updateFollowed(replacement, w.a, w.passiveDevice, [bob]);
    expectInSync([w.a, w.p, bob]);
    // The passive side too: the phone's object replaced, the old one refuses, the new one follows.
    const phone = PairedDevice.open(w.p.client, wrapped(w.passiveDevice.vault!));
    const u = await replacement.update(w.a.group!, { send: async () => undefined });
    await deliverCommit(u.commit, [bob]);
    await refused(() => w.passiveDevice.applyNotify(u), 'PAIRING_STATE', undefined, CLOSED);
    expect((await phone.applyNotify(u)).kind).toBe('update');
    expectInSync([w.a, w.p, bob]);
  });

  it('is not opened over a paired operation still running (PAIRING_STATE); once it settled, it is', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const { update, out, release } = await updateWaitingOnSend(w);
    const other = wrapped(w.activeDevice.vault!);
    await refused(async () => PairedDevice.open(w.a.client, other), 'PAIRING_STATE', undefined, BUSY);
    expect(PairedDevice.open(w.a.client, undefined)).toBe(w.activeDevice);
    release();
    expect(await update).toBe(out);
    await deliverCommit(out.commit, [bob]);
    expect((await w.passiveDevice.applyNotify(out)).kind).toBe('update');
    const replacement = PairedDevice.open(w.a.client, other);
    await updateFollowed(replacement, w.a, w.passiveDevice, [bob]);
    expectInSync([w.a, w.p, bob]);
  });

  it('initiate and join are refused while the pairing runs; reset closes the object, and the device re-enrols with a new one', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    await refused(() => PairedDevice.initiate(w.a.client, w.a.identity, { mode }), 'PAIRING_STATE', undefined, 'this client already has a pairing');
    const invite = await PairedDevice.initiate((await device('mallory')).client, w.p.identity);
    const { initPairing } = await invite.invite(await PairedDevice.createKeyPackage(w.p.client, w.p.identity));
    await refused(() => PairedDevice.join(w.p.client, initPairing), 'PAIRING_STATE', undefined, 'this client already has a pairing');
    expect(PairedDevice.open(w.p.client, undefined)).toBe(w.passiveDevice);

    // The phone resets (it fell behind, say): its object is closed with the pairing.
    const staleLeaf = w.passiveDevice.pairingGroup.ownLeafIndex;
    const vault = w.passiveDevice.vault!;
    await PairedDevice.reset(w.p.client);
    await refused(() => w.passiveDevice.receive(w.enrolment.pairing[0]!), 'PAIRING_STATE', undefined, CLOSED);
    const back = await w.activeDevice.reenroll(staleLeaf, await PairedDevice.createKeyPackage(w.p.client, w.p.identity));
    for (const g of back.groups) await deliverCommit(g.commit, [bob]);
    const phone = await PairedDevice.join(w.p.client, back.initPairing, { vault });
    expect((await phone.receive(back.shareRand)).type).toBe('shareRandApplied');
    for (const g of back.groups) expect((await phone.applyNotify(g)).kind).toBe('enroll');
    w.p.group = w.p.client.group(w.a.group!.id);
    expect(PairedDevice.open(w.p.client, vault)).toBe(phone);
    await updateFollowed(w.activeDevice, w.a, phone, [bob]);
    expectInSync([w.a, w.p, bob]);
  });
});

// ---------------------------------------------------------------------------
// ceasePair and reenroll with `send`, against a member racing at a real DS.

describe.each(['hidden', 'standard'] as const)('Paired MLS review 5: ceasePair while bob races at the DS (%s mode)', (mode: PairingMode) => {
  it('without send (as before) every commit is merged at once: bob took the epoch first, and alice is left on her own fork', async () => {
    const w = await dsWorld(mode);
    const [g1] = w.groups;
    const epoch = g1.alice.epoch;
    const bobs = await bobWins(w.ds, g1);
    const cease = await w.activeDevice.ceasePair('rekey');
    expect(g1.alice.epoch).toBe(epoch + 1);
    epochTaken(await submit(w.ds, g1.id, 'alice', cease.groups[0]!.commits[0]!).catch((e: unknown) => e), epoch, epoch + 1);
    const err = await mlsError(() => g1.alice.process(bobs));
    expect(err.code).toBe('WRONG_EPOCH');
  });

  it('rekey with send: the group whose commit bob beat is not merged (epoch-taken) and stays to cease, the other is ceased; after catching up, ceasePair again finishes it and the phone is locked out of both', async () => {
    const w = await dsWorld(mode);
    const [g1, g2] = w.groups;
    const phoneKeys = [anchorKeyOf(g1.phone), anchorKeyOf(g2.phone)];
    const [e1, e2] = [g1.alice.epoch, g2.alice.epoch];
    const anchorLeaf = g1.alice.ownLeafIndex;
    const seen: CeaseCommit[] = [];
    const send = ceaseSend(w.ds, seen);
    let bobs: Uint8Array | undefined;
    // bob's commit of g1's epoch reaches the DS the moment before alice's.
    const result = await w.activeDevice.ceasePair('rekey', {
      send: async (c) => {
        if (bytesEqual(c.groupId, g1.id)) bobs = await bobWins(w.ds, g1);
        await send(c);
      },
    });
    expect(seen.map((c) => [toHex(c.groupId), c.kind])).toEqual([
      [toHex(g1.id), 'rekey'],
      [toHex(g2.id), 'rekey'],
    ]);
    for (const c of seen) expect(bytesEqual(c.signatureKey, result.identity.signaturePublicKey)).toBe(true);
    const [r1, r2] = result.groups as [CeasedGroup, CeasedGroup];
    expect({ ceased: r1.ceased, commits: r1.commits }).toEqual({ ceased: false, commits: [] });
    epochTaken(r1.error, e1, e1 + 1);
    expect({ ceased: r2.ceased, commits: r2.commits, error: r2.error }).toEqual({ ceased: true, commits: [seen[1]!.commit], error: undefined });
    // g1: nothing merged, nothing pending, the anchor leaf still carries the key the phone holds.
    expect({ epoch: g1.alice.epoch, pending: g1.alice.state().pendingCommit, leaf: g1.alice.ownLeafIndex }).toEqual({ epoch: e1, pending: false, leaf: anchorLeaf });
    expect(bytesEqual(anchorKeyOf(g1.alice), phoneKeys[0]!)).toBe(true);
    expect({ ceased: w.activeDevice.ceased, ceasing: w.activeDevice.ceasingGroups() }).toEqual({ ceased: true, ceasing: [toHex(g1.id)] });
    // g2: merged, with the new key.
    expect(g2.alice.epoch).toBe(e2 + 1);
    expect(bytesEqual(anchorKeyOf(g2.alice), result.identity.signaturePublicKey)).toBe(true);
    // The pairing has ended all the same: the phone accepts the CeasePair and is removed by the step.
    expect(await w.passiveDevice.receive(result.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rekey' });
    await w.passiveDevice.receive(result.pairing[1]!);
    expect(w.passiveDevice.ceased).toBe(true);
    // Until g1 is ceased the phone still reads there (it follows bob's commit on the anchor leaf),
    // and alice's client neither starts a new pairing nor resets, nor switches route.
    const bobsResult = await g1.phone.process(bobs!);
    if (bobsResult.kind !== 'commit') throw new Error('expected bob’s commit');
    await bobsResult.staged.merge();
    await refused(() => PairedDevice.initiate(w.a.client, result.identity), 'PAIRING_STATE', undefined, UNFINISHED(1));
    await refused(() => PairedDevice.reset(w.a.client), 'PAIRING_STATE', undefined, UNFINISHED(1));
    await refused(() => w.activeDevice.ceasePair('rejoin', { send }), 'PAIRING_STATE', undefined, 'the cease of this pairing runs by route rekey: finish it with that route');

    // alice processes what won (bob's commit) and runs ceasePair again: g1 only, no pairing messages.
    await catchUp(g1.alice, g1.inbox.alice);
    await catchUp(g1.carol, g1.inbox.carol);
    inSync([g1.alice, g1.bob, g1.carol, g1.phone]);
    const again = await w.activeDevice.ceasePair('rekey', { send });
    expect(seen.slice(2).map((c) => [toHex(c.groupId), c.kind])).toEqual([[toHex(g1.id), 'rekey']]);
    expect({ pairing: again.pairing, groups: again.groups }).toEqual({ pairing: [], groups: [{ groupId: g1.id, commits: [seen[2]!.commit], ceased: true }] });
    expect(bytesEqual(again.identity.signaturePublicKey, result.identity.signaturePublicKey)).toBe(true);
    expect(w.activeDevice.ceasingGroups()).toEqual([]);
    await refused(() => w.activeDevice.ceasePair('rekey', { send }), 'PAIRING_STATE', undefined, 'the pairing has already ended');
    // The phone cannot follow the cease commits (their path comes from a pairing epoch it was removed in).
    for (const [g, c] of [[g1, seen[2]!.commit], [g2, seen[1]!.commit]] as const) {
      const err = await mlsError(() => g.phone.process(c));
      expect(err.code).toBe('INVALID_COMMIT');
    }
    for (const [i, g] of [g1, g2].entries()) {
      await honestGoOn(w.ds, g, `group ${i + 1} after the cease`);
      await lockedOut(w.ds, g, phoneKeys[i]!);
    }
  });

  it('rejoin with send: a refused external join puts the group back as it was (the anchor leaf, readable, following what won); a refused removal leaves the new leaf joined; ceasePair again finishes both', async () => {
    const w = await dsWorld(mode);
    const [g1, g2] = w.groups;
    const phoneKeys = [anchorKeyOf(g1.phone), anchorKeyOf(g2.phone)];
    const [e1, e2] = [g1.alice.epoch, g2.alice.epoch];
    const anchorLeaves = [g1.alice.ownLeafIndex, g2.alice.ownLeafIndex];
    const seen: CeaseCommit[] = [];
    const send = ceaseSend(w.ds, seen);
    // bob beats alice's external join in g1, and her removal of the anchor leaf in g2.
    const result = await w.activeDevice.ceasePair('rejoin', {
      send: async (c) => {
        if (bytesEqual(c.groupId, g1.id) && c.kind === 'join') await bobWins(w.ds, g1);
        if (bytesEqual(c.groupId, g2.id) && c.kind === 'remove') {
          await catchUp(g2.bob, g2.inbox.bob); // alice's join
          await bobWins(w.ds, g2);
        }
        await send(c);
      },
    });
    expect(seen.map((c) => [toHex(c.groupId), c.kind])).toEqual([
      [toHex(g1.id), 'join'],
      [toHex(g2.id), 'join'],
      [toHex(g2.id), 'remove'],
    ]);
    const [r1, r2] = result.groups as [CeasedGroup, CeasedGroup];
    expect({ ceased: r1.ceased, commits: r1.commits }).toEqual({ ceased: false, commits: [] });
    epochTaken(r1.error, e1, e1 + 1);
    expect({ ceased: r2.ceased, commits: r2.commits }).toEqual({ ceased: false, commits: [seen[1]!.commit] });
    epochTaken(r2.error, e2 + 1, e2 + 2);
    expect(w.activeDevice.ceasingGroups()).toEqual([toHex(g1.id), toHex(g2.id)]);
    expect(result.pairing).toHaveLength(1);
    expect(await w.passiveDevice.receive(result.pairing[0]!)).toEqual({ type: 'pairingCeased', route: 'rejoin' });

    // g1: the join was refused, so the group is back as it was: the anchor leaf, its epoch,
    // nothing pending, no record of the old state left; it follows bob's commit and reads on.
    g1.alice = w.a.client.group(g1.id);
    expect({ epoch: g1.alice.epoch, leaf: g1.alice.ownLeafIndex, pending: g1.alice.state().pendingCommit }).toEqual({ epoch: e1, leaf: anchorLeaves[0], pending: false });
    expect(bytesEqual(anchorKeyOf(g1.alice), phoneKeys[0]!)).toBe(true);
    expect(w.a.client.groupRecord(g1.id, SNAPSHOT_RECORD)).toBeUndefined();
    await catchUp(g1.alice, g1.inbox.alice);
    await catchUp(g1.carol, g1.inbox.carol);
    inSync([g1.alice, g1.bob, g1.carol]);
    await submit(w.ds, g1.id, 'carol', await g1.carol.encrypt('to the anchor leaf, still'));
    expect(await catchUp(g1.alice, g1.inbox.alice)).toEqual(['to the anchor leaf, still']);
    // g2: joined with the new key (epoch e2 + 1), its removal refused: the anchor leaf is still there.
    g2.alice = w.a.client.group(g2.id);
    expect({ epoch: g2.alice.epoch, pending: g2.alice.state().pendingCommit }).toEqual({ epoch: e2 + 1, pending: false });
    expect(bytesEqual(anchorKeyOf(g2.alice), result.identity.signaturePublicKey)).toBe(true);
    expect(g2.alice.members().some((m) => m.leafIndex === anchorLeaves[1] && bytesEqual(m.signatureKey, phoneKeys[1]!))).toBe(true);
    for (const [g, box] of [[g2.alice, g2.inbox.alice], [g2.carol, g2.inbox.carol]] as const) await catchUp(g, box);
    inSync([g2.alice, g2.bob, g2.carol]);

    // Caught up: ceasePair again joins g1 and removes the anchor leaf there, and removes it in g2.
    const again = await w.activeDevice.ceasePair('rejoin', { send });
    expect(seen.slice(3).map((c) => [toHex(c.groupId), c.kind])).toEqual([
      [toHex(g1.id), 'join'],
      [toHex(g1.id), 'remove'],
      [toHex(g2.id), 'remove'],
    ]);
    expect({ pairing: again.pairing, groups: again.groups }).toEqual({
      pairing: [],
      groups: [
        { groupId: g1.id, commits: [seen[3]!.commit, seen[4]!.commit], ceased: true },
        { groupId: g2.id, commits: [seen[5]!.commit], ceased: true },
      ],
    });
    expect(w.activeDevice.ceasingGroups()).toEqual([]);
    for (const [i, g] of [g1, g2].entries()) {
      g.alice = w.a.client.group(g.id);
      expect(g.alice.members().some((m) => m.leafIndex === anchorLeaves[i])).toBe(false);
      await honestGoOn(w.ds, g, `group ${i + 1} after the rejoin`);
      await lockedOut(w.ds, g, phoneKeys[i]!);
    }
  });

  it('rejoin: a crash while the DS answers an external join keeps the state from before it; the next ceasePair sends the join again and, refused, puts the state back', async () => {
    const w = await dsWorld(mode);
    const [g1, g2] = w.groups;
    const phoneKeys = [anchorKeyOf(g1.phone), anchorKeyOf(g2.phone)];
    const e1 = g1.alice.epoch;
    const anchorLeaf = g1.alice.ownLeafIndex;
    // bob's commit takes g1's epoch; alice's join waits on a DS that never answers, and her app restarts.
    let reached!: () => void;
    const atSend = new Promise<void>((r) => (reached = r));
    let answer!: (err: Error) => void;
    const never = new Promise<void>((_, reject) => (answer = reject));
    const stuck = w.activeDevice.ceasePair('rejoin', {
      send: async () => {
        await bobWins(w.ds, g1);
        reached();
        await never;
      },
    });
    await atSend;
    const vault = w.activeDevice.vault;
    w.a.client.free();
    w.a.client = await MlsClient.open({ storage: w.a.storage });
    const active = PairedDevice.open(w.a.client, vault);
    expect({ ceased: active.ceased, ceasing: active.ceasingGroups() }).toEqual({ ceased: true, ceasing: [toHex(g1.id), toHex(g2.id)] });
    // Stored: g1 as the join made it (the engine merges an external join as it makes it), and
    // in records its state from before the join and the join itself (each after the authenticator of the epoch the join made).
    expect(bytesEqual(anchorKeyOf(w.a.client.group(g1.id)), active.anchor!.signaturePublicKey)).toBe(true);
    expect(w.a.client.groupRecord(g1.id, SNAPSHOT_RECORD)).toBeInstanceOf(Uint8Array);
    const join = joinIn(w.a.client.groupRecord(g1.id, JOIN_RECORD)!, w.a.client.group(g1.id));
    // ceasePair again sends that join again: the DS refuses it (bob's commit has the epoch),
    // so g1's state is put back; g2 is ceased.
    const seen: CeaseCommit[] = [];
    const next = await active.ceasePair('rejoin', { send: ceaseSend(w.ds, seen) });
    expect(seen.map((c) => [toHex(c.groupId), c.kind])).toEqual([
      [toHex(g1.id), 'join'],
      [toHex(g2.id), 'join'],
      [toHex(g2.id), 'remove'],
    ]);
    expect(seen[0]!.commit).toEqual(join);
    expect(next.groups.map((g) => g.ceased)).toEqual([false, true]);
    expect([SNAPSHOT_RECORD, JOIN_RECORD].map((r) => w.a.client.groupRecord(g1.id, r))).toEqual([undefined, undefined]);
    epochTaken(next.groups[0]!.error, e1, e1 + 1);
    await finishAfterRefusedJoin(w, active, { epoch: e1, leaf: anchorLeaf }, phoneKeys);
    // The old call's send answers at last: the freed client changes nothing.
    answer(new Error('DS: too late'));
    const err = await mlsError(() => stuck);
    expect(err.code).toBe('RELEASED');
  });
});

describe.each(['hidden', 'standard'] as const)('Paired MLS review 5: reenroll while bob races at the DS (%s mode)', (mode: PairingMode) => {
  it('the group whose enrolment bob beat is not merged (epoch-taken) and leaves the pairing; the phone takes its step alone, follows the other, and the group is enrolled again once alice caught up', async () => {
    const w = await dsWorld(mode);
    const [g1, g2] = w.groups;
    const sendAs = (extra?: (out: PairedCommit) => Promise<void>) => async (out: PairedCommit) => {
      await extra?.(out);
      await submit(w.ds, out.groupId, 'alice', out.commit);
    };
    // The phone loses a paired update of g2 (its step and Notify never come) and resets.
    await w.activeDevice.update(g2.alice, { send: sendAs() });
    for (const [g, box] of [[g2.bob, g2.inbox.bob], [g2.carol, g2.inbox.carol]] as const) await catchUp(g, box);
    const staleLeaf = w.passiveDevice.pairingGroup.ownLeafIndex;
    const vault = w.passiveDevice.vault!;
    await PairedDevice.reset(w.p.client);
    const keyPackage = await PairedDevice.createKeyPackage(w.p.client, w.p.identity);
    const e1 = g1.alice.epoch;
    const back = await w.activeDevice.reenroll(staleLeaf, keyPackage, {
      send: sendAs(async (out) => {
        if (bytesEqual(out.groupId, g1.id)) await bobWins(w.ds, g1);
      }),
    });
    const [r1, r2] = back.groups as [ReenrolledGroup, ReenrolledGroup];
    expect([r1.enrolled, r2.enrolled]).toEqual([false, true]);
    epochTaken(r1.error, e1, e1 + 1);
    expect(r2.error).toBeUndefined();
    expect({ epoch: g1.alice.epoch, pending: g1.alice.state().pendingCommit }).toEqual({ epoch: e1, pending: false });
    expect(w.activeDevice.enrolledGroups()).toEqual([toHex(g2.id)]);
    // A paired update of g1 now needs the group enrolled again.
    await refused(() => w.activeDevice.update(g1.alice), 'PAIRING_STATE', undefined, 'the group is not enrolled in the pairing');

    // The phone: in order, the step of g1's refused enrolment alone, then g2's enrolment.
    const phone = await PairedDevice.join(w.p.client, back.initPairing, { vault });
    expect((await phone.receive(back.shareRand)).type).toBe('shareRandApplied');
    expect((await phone.receive(r1.pairing[0]!)).type).toBe('derivationStep');
    await catchUp(g2.bob, g2.inbox.bob);
    await catchUp(g2.carol, g2.inbox.carol);
    expect((await phone.applyNotify(r2)).kind).toBe('enroll');
    g2.phone = w.p.client.group(g2.id);
    expect(w.p.client.groupIds().some((id) => bytesEqual(id, g1.id))).toBe(false);

    // alice processes what won in g1 and enrols it again; the phone follows.
    await catchUp(g1.alice, g1.inbox.alice);
    const enrolled = await w.activeDevice.enroll(g1.alice, { send: sendAs() });
    await catchUp(g1.bob, g1.inbox.bob);
    await catchUp(g1.carol, g1.inbox.carol);
    expect((await phone.applyNotify(enrolled)).kind).toBe('enroll');
    g1.phone = w.p.client.group(g1.id);
    // Paired updates of both groups through the DS, followed by the phone; carol's messages reach it.
    for (const [i, g] of [g1, g2].entries()) {
      const u = await w.activeDevice.update(g.alice, { send: sendAs() });
      await catchUp(g.bob, g.inbox.bob);
      await catchUp(g.carol, g.inbox.carol);
      expect((await phone.applyNotify(u)).kind).toBe('update');
      inSync([g.alice, g.bob, g.carol, g.phone]);
      const m = await g.carol.encrypt(`group ${i + 1}, re-enrolled`);
      await submit(w.ds, g.id, 'carol', m);
      const r = await g.phone.process(m);
      expect(r.kind === 'application' && utf8(r.data)).toBe(`group ${i + 1}, re-enrolled`);
      expect(await catchUp(g.alice, g.inbox.alice)).toEqual([`group ${i + 1}, re-enrolled`]);
    }
  });
});
