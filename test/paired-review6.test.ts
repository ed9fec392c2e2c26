/**
 * Sixth review of the Paired MLS layer: an attacker's look at f323e9e (one
 * `PairedDevice` object per client) and 4d544da (`ceasePair` / `reenroll`
 * with `send`, docs/PROTOCOL.md §4.5, §4.9, §4.14). Attackers: the stolen
 * copy of the phone's state (§4.0), which still holds the anchor leaf in a
 * group whose cease lost at the DS; a DS that says "refused" of a commit it
 * took; and an application whose calls overlap (an object replaced, or the
 * pairing reset, while a `receive` / `applyNotify` of the live object runs),
 * passes a route it does not know, or crashes while `reenroll` waits.
 * Each test asserts the exact refusal and that the honest devices go on.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, bytesEqual, toHex, type Group } from 'paired-mls';
import { PairedDevice, PairingError, signedAnchorCommit, type CeaseCommit, type PairingMode, type SeedVault } from 'paired-mls/paired';
import { DsError } from 'paired-mls/services';
import { deliverCommit, expectInSync, mlsError } from './helpers.js';
import { device, pairedWorld, refused, stolen, updateFollowed } from './paired-helpers.js';
import { UNFINISHED, anchorKeyOf, bobWins, catchUp, ceaseLostInG1, ceaseSend, dsWorld, epochTaken, honestGoOn, aliceRejoins, inSync, lockedOut, submit, wrapped, type DsGroup } from './paired-ds-helpers.js';

const RUNNING = 'a call of this device (receive, applyNotify, propose) is still running: wait until it settled';
const LOST = "removed from the group while the anchor leaf stays: rejoin it with a key other than the cease's and ceasePair again, or delete it to give it up";

/**
 * `vault`, whose next derivation for `label` waits until `open()` (inside
 * `applyNotify`: `psk` before the step is processed, `proof` after, in its
 * open transaction): `inside` resolves once a call is held there.
 */
function heldVault(vault: SeedVault, label: 'psk' | 'proof') {
  let hold = false;
  let entered!: () => void;
  let open!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const gate = new Promise<void>((r) => (open = r));
  const held: SeedVault = {
    derive: async (l, context, length) => {
      if (hold && l === label) {
        hold = false;
        entered();
        await gate;
      }
      return vault.derive(l, context, length);
    },
  };
  return { held, inside, open, hold: () => (hold = true) };
}

describe.each(['hidden', 'standard'] as const)('Paired MLS review 6: the object replaced, or the pairing reset, while a call of it runs (%s mode)', (mode: PairingMode) => {
  it('open with another vault is refused while applyNotify runs (before: the new object read the counter mid-call, and refused the next update, counter); once it settled, it replaces and follows', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const vault = w.passiveDevice.vault!;
    const gate = heldVault(vault, 'psk');
    const phone = PairedDevice.open(w.p.client, gate.held);
    const u = await w.activeDevice.update(w.a.group!, { send: async () => undefined });
    await deliverCommit(u.commit, [bob]);
    gate.hold();
    const applying = phone.applyNotify(u);
    await gate.inside;
    const other = wrapped(vault);
    await refused(async () => PairedDevice.open(w.p.client, other), 'PAIRING_STATE', undefined, RUNNING);
    expect(PairedDevice.open(w.p.client, undefined)).toBe(phone);
    gate.open();
    expect((await applying).kind).toBe('update');
    const replacement = PairedDevice.open(w.p.client, other);
    expect(replacement.counter).toBe(w.activeDevice.counter);
    await updateFollowed(w.activeDevice, w.a, replacement, [bob]);
    expectInSync([w.a, w.p, bob]);
  });

  it('reset is refused while applyNotify runs (before: it resolved, but its deletion joined the call’s transaction and was rolled back with it, the Notify refused as forged); once it settled, reset forgets the pairing', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const gate = heldVault(w.passiveDevice.vault!, 'proof');
    const phone = PairedDevice.open(w.p.client, gate.held);
    const u = await w.activeDevice.update(w.a.group!, { send: async () => undefined });
    await deliverCommit(u.commit, [bob]);
    gate.hold();
    const applying = phone.applyNotify(u);
    await gate.inside;
    await refused(() => PairedDevice.reset(w.p.client), 'PAIRING_STATE', undefined, RUNNING);
    gate.open();
    expect((await applying).kind).toBe('update');
    expectInSync([w.a, w.p, bob]);
    await PairedDevice.reset(w.p.client);
    expect(w.p.client.record('paired-mls/pairing')).toBeUndefined();
    expect(w.p.client.groupIds().some((id) => bytesEqual(id, w.a.group!.id))).toBe(false);
    await refused(() => phone.receive(u.pairing[0]!), 'PAIRING_STATE', undefined, 'this PairedDevice was replaced on its client, or reset: use the one PairedDevice.open returns');
  });
});

// ---------------------------------------------------------------------------
// The phone's stolen copy in a group whose cease lost at the DS.

/** The copy's view of `g`, caught up on what the DS logged after `from`. */
async function copyCatchesUp(w: Awaited<ReturnType<typeof dsWorld>>, copy: MlsClient, g: DsGroup, from: number): Promise<Group> {
  const view = copy.group(g.id);
  for (const m of await w.ds.poll('carol', g.id, from)) {
    const r = await view.process(m.bytes);
    if (r.kind === 'commit') await r.staged.merge();
  }
  return view;
}

/**
 * A commit of the copy as the anchor, taken by the DS. Standard mode: signed
 * with the phone's device key, which the copy holds; its path from an
 * emulation epoch of the copy's own pairing group, so its two builds match.
 */
async function copyCommits(w: Awaited<ReturnType<typeof dsWorld>>, mode: PairingMode, copy: MlsClient, view: Group, spec: { remove?: number[]; selfUpdate?: boolean }): Promise<Uint8Array> {
  let commit: Uint8Array;
  if (mode === 'standard') {
    const vcEpochId = await copy.group(w.passiveDevice.pairingGroup.id).registerEmulationEpoch();
    ({ commit } = await signedAnchorCommit(view, w.p.identity, { ...spec, vcEpochId, vcDetached: true }));
  } else ({ commit } = await view.commit(spec));
  await submit(w.ds, view.id, 'alice', commit);
  await view.mergePendingCommit();
  return commit;
}

/** The DS's last sequence number in `g` now. */
async function lastSeq(w: Awaited<ReturnType<typeof dsWorld>>, g: DsGroup): Promise<number> {
  return (await w.ds.poll('carol', g.id, 0)).at(-1)!.seq;
}


describe.each(['hidden', 'standard'] as const)('Paired MLS review 6: the phone’s copy in a group still to cease (%s mode)', (mode: PairingMode) => {
  it('rejoin: the copy removes alice’s new leaf where her removal of the anchor leaf lost; the group stays to cease (before: ceased, dropped from the list, the copy still on the anchor leaf); alice rejoins and ceasePair removes the anchor leaf', async () => {
    const w = await dsWorld(mode);
    const [g1, g2] = w.groups;
    const phoneKeys = [anchorKeyOf(g1.phone), anchorKeyOf(g2.phone)];
    const anchorLeaf = g1.alice.ownLeafIndex;
    const copy = await stolen(w.p);
    const from = await lastSeq(w, g1);
    const e1 = g1.alice.epoch;
    const seen: CeaseCommit[] = [];
    const send = ceaseSend(w.ds, seen);
    const result = await w.activeDevice.ceasePair('rejoin', {
      send: async (c) => {
        if (bytesEqual(c.groupId, g1.id) && c.kind === 'remove') {
          await catchUp(g1.bob, g1.inbox.bob); // alice's join
          await bobWins(w.ds, g1);
        }
        await send(c);
      },
    });
    epochTaken(result.groups[0]!.error, e1 + 1, e1 + 2);
    expect(result.groups.map((g) => g.ceased)).toEqual([false, true]);
    // The copy, still on the anchor leaf with its key, follows alice's join and bob's commit and removes alice's new leaf.
    const view = await copyCatchesUp(w, copy, g1, from);
    g1.alice = w.a.client.group(g1.id);
    const aliceLeaf = g1.alice.ownLeafIndex;
    const removal = await copyCommits(w, mode, copy, view, { remove: [aliceLeaf] });
    await catchUp(g1.alice, g1.inbox.alice); // bob's
    const r = await g1.alice.process(removal);
    if (r.kind !== 'commit') throw new Error('expected the copy’s commit');
    await r.staged.merge();
    expect(g1.alice.state().active).toBe(false);
    await catchUp(g1.carol, g1.inbox.carol);
    expect(g1.carol.members().some((m) => m.leafIndex === anchorLeaf && bytesEqual(m.signatureKey, phoneKeys[0]!))).toBe(true);

    // Not ceased: the anchor leaf is still there, held by the copy; the group stays listed.
    const again = await w.activeDevice.ceasePair('rejoin', { send });
    expect(again.groups.map((g) => [toHex(g.groupId), g.ceased, g.commits])).toEqual([[toHex(g1.id), false, []]]);
    refusal(again.groups[0]!.error, 'PAIRING_STATE', LOST);
    expect(w.activeDevice.ceasingGroups()).toEqual([toHex(g1.id)]);
    await refused(() => PairedDevice.reset(w.a.client), 'PAIRING_STATE', undefined, UNFINISHED(1));

    // alice rejoins g1 with the cease's key: the DS's yes to the cease's own join went with the
    // group she deleted (a group record) and says nothing of this join, so no removal is made
    // (before: that yes counted for her join; test/review-round-u3 for a join with none).
    await aliceRejoins(w, g1, result.identity);
    const unconfirmed = await w.activeDevice.ceasePair('rejoin', { send });
    expect(unconfirmed.groups.map((g) => [g.ceased, g.commits, (g.error as PairingError).reason])).toEqual([[false, [], 'join-unconfirmed']]);
    // Rejoined with another key, ceasePair again removes the anchor leaf there.
    const other = await w.a.client.createIdentity(result.identity.identity, result.identity.ciphersuite);
    await aliceRejoins(w, g1, other);
    const last = await w.activeDevice.ceasePair('rejoin', { send });
    expect(seen.slice(-1).map((c) => [toHex(c.groupId), c.kind, bytesEqual(c.signatureKey, other.signaturePublicKey)])).toEqual([[toHex(g1.id), 'remove', true]]);
    expect(last.groups).toEqual([{ groupId: g1.id, commits: [seen.at(-1)!.commit], ceased: true }]);
    expect(w.activeDevice.ceasingGroups()).toEqual([]);
    await honestGoOn(w.ds, g1, 'after the copy is removed');
    await lockedOut(w.ds, g1, phoneKeys[0]!);
    await expect(copy.group(g1.id).process(await g1.carol.encrypt('not for the copy'))).rejects.toMatchObject({ code: 'WRONG_EPOCH' });
    await honestGoOn(w.ds, g2, 'the other group');
    await lockedOut(w.ds, g2, phoneKeys[1]!);
  });

  it('rekey: the copy commits as the anchor where alice’s rekey lost; alice cannot follow it (INVALID_COMMIT) and the group stays to cease; once she rejoined on a new leaf, ceasePair removes the anchor leaf (before: ceased, the copy still on it)', async () => {
    const w = await dsWorld(mode);
    const [g1] = w.groups;
    const phoneKey = anchorKeyOf(g1.phone);
    const anchorLeaf = g1.alice.ownLeafIndex;
    const copy = await stolen(w.p);
    const from = await lastSeq(w, g1);
    const e1 = g1.alice.epoch;
    const seen: CeaseCommit[] = [];
    const { result, send } = await ceaseLostInG1(w, seen);
    // The copy follows bob's commit and commits on the anchor leaf before alice caught up.
    const copyCommit = await copyCommits(w, mode, copy, await copyCatchesUp(w, copy, g1, from), { selfUpdate: true });
    await catchUp(g1.alice, g1.inbox.alice); // bob's
    const err = await mlsError(() => g1.alice.process(copyCommit));
    expect({ code: err.code, message: err.message }).toEqual({
      code: 'INVALID_COMMIT',
      message: 'processing message: The Commit was created by this client but does not match the pending commit.',
    });
    expect(bytesEqual((await w.ds.poll('carol', g1.id, from)).at(-1)!.bytes, copyCommit)).toBe(true);
    // Retrying only loses again (the copy took the epoch); the group stays listed, reset is refused.
    const retry = await w.activeDevice.ceasePair('rekey', { send });
    expect(retry.groups.map((g) => [g.ceased, g.commits])).toEqual([[false, []]]);
    epochTaken(retry.groups[0]!.error, e1 + 1, e1 + 2);
    expect(w.activeDevice.ceasingGroups()).toEqual([toHex(g1.id)]);
    await refused(() => PairedDevice.reset(w.a.client), 'PAIRING_STATE', undefined, UNFINISHED(1));

    // alice rejoins g1 on a new leaf; ceasePair removes the anchor leaf the copy holds.
    await aliceRejoins(w, g1, result.identity);
    expect(g1.alice.members().some((m) => m.leafIndex === anchorLeaf && bytesEqual(m.signatureKey, phoneKey))).toBe(true);
    const last = await w.activeDevice.ceasePair('rekey', { send });
    expect(seen.slice(-1).map((c) => [toHex(c.groupId), c.kind])).toEqual([[toHex(g1.id), 'remove']]);
    expect(last.groups).toEqual([{ groupId: g1.id, commits: [seen.at(-1)!.commit], ceased: true }]);
    expect(w.activeDevice.ceasingGroups()).toEqual([]);
    await honestGoOn(w.ds, g1, 'after the copy is removed');
    await lockedOut(w.ds, g1, phoneKey);
  });
});

describe.each(['hidden', 'standard'] as const)('Paired MLS review 6: a DS that says "refused" of the external join it took (%s mode)', (mode: PairingMode) => {
  it('rejoin: the state from before the join is put back; alice processes her own join from the DS log and ceasePair again converges (no fork, the lost leaf replaced, the anchor leaf removed)', async () => {
    const w = await dsWorld(mode);
    const [g1, g2] = w.groups;
    const phoneKeys = [anchorKeyOf(g1.phone), anchorKeyOf(g2.phone)];
    const e1 = g1.alice.epoch;
    const anchorLeaf = g1.alice.ownLeafIndex;
    const from = await lastSeq(w, g1);
    const seen: CeaseCommit[] = [];
    const send = ceaseSend(w.ds, seen);
    const result = await w.activeDevice.ceasePair('rejoin', {
      send: async (c) => {
        await send(c);
        if (bytesEqual(c.groupId, g1.id) && c.kind === 'join') throw new DsError('epoch-taken', 'a lie');
      },
    });
    expect(result.groups.map((g) => g.ceased)).toEqual([false, true]);
    expect(result.groups[0]!.error).toMatchObject({ code: 'DS_REJECTED', reason: 'epoch-taken' });
    g1.alice = w.a.client.group(g1.id);
    expect({ epoch: g1.alice.epoch, leaf: g1.alice.ownLeafIndex }).toEqual({ epoch: e1, leaf: anchorLeaf });
    // The DS log holds alice's join: her restored state (the anchor leaf) follows it like any member's.
    const logged = await w.ds.poll('alice', g1.id, from);
    expect(logged.map((m) => bytesEqual(m.bytes, seen[0]!.commit))).toEqual([true]);
    const r = await g1.alice.process(logged[0]!.bytes);
    if (r.kind !== 'commit') throw new Error('expected the join');
    await r.staged.merge();
    await catchUp(g1.bob, g1.inbox.bob);
    await catchUp(g1.carol, g1.inbox.carol);
    inSync([g1.alice, g1.bob, g1.carol]);
    const again = await w.activeDevice.ceasePair('rejoin', { send });
    expect(seen.slice(-2).map((c) => c.kind)).toEqual(['join', 'remove']);
    expect(again.groups.map((g) => [g.ceased, g.commits.length])).toEqual([[true, 2]]);
    g1.alice = w.a.client.group(g1.id);
    expect(g1.alice.members().filter((m) => bytesEqual(m.signatureKey, result.identity.signaturePublicKey)).map((m) => m.leafIndex)).toEqual([g1.alice.ownLeafIndex]);
    expect(g1.alice.members().some((m) => m.leafIndex === anchorLeaf)).toBe(false);
    for (const [i, g] of [g1, g2].entries()) {
      await honestGoOn(w.ds, g, `group ${i + 1} after the lie`);
      await lockedOut(w.ds, g, phoneKeys[i]!);
    }
  });
});

describe.each(['hidden', 'standard'] as const)('Paired MLS review 6: a route or mode the API does not know, from JavaScript (%s mode)', (mode: PairingMode) => {
  it('ceasePair refuses it (INVALID_ARGUMENT) and changes nothing (before: taken as rejoin, the groups rejoined, with a CeasePair the partner refused as malformed: it never learnt the pairing had ended); initiate too', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    for (const send of [undefined, async () => undefined]) {
      const err = await mlsError(() => w.activeDevice.ceasePair('bogus' as unknown as 'rekey', { send }));
      expect({ code: err.code, message: err.message }).toEqual({ code: 'INVALID_ARGUMENT', message: "route must be 'rekey' or 'rejoin'" });
    }
    expect({ ceased: w.activeDevice.ceased, ceasing: w.activeDevice.ceasingGroups(), epoch: w.activeDevice.pairingGroup.epoch }).toEqual({ ceased: false, ceasing: [], epoch: w.passiveDevice.pairingGroup.epoch });
    await updateFollowed(w.activeDevice, w.a, w.passiveDevice, [bob]);
    expectInSync([w.a, w.p, bob]);
    const other = await device('alice-tablet');
    const err = await mlsError(() => PairedDevice.initiate(other.client, other.identity, { mode: 'bogus' as unknown as PairingMode }));
    expect({ code: err.code, message: err.message }).toEqual({ code: 'INVALID_ARGUMENT', message: "mode must be 'hidden' or 'standard'" });
    expect(other.client.record('paired-mls/pairing')).toBeUndefined();
  });
});

describe.each(['hidden', 'standard'] as const)('Paired MLS review 6: a crash while reenroll waits on a send (%s mode)', (mode: PairingMode) => {
  it('InitPairing never reached the app; after a restart alice settles the pending commits and re-enrols the device with a new KeyPackage, naming the leaf the lost invite added', async () => {
    const w = await dsWorld(mode);
    const [g1, g2] = w.groups;
    const staleLeaf = w.passiveDevice.pairingGroup.ownLeafIndex;
    await PairedDevice.reset(w.p.client);
    let reached!: () => void;
    const atSend = new Promise<void>((r) => (reached = r));
    let answer!: (err: Error) => void;
    const never = new Promise<void>((_, reject) => (answer = reject));
    const stuck = w.activeDevice.reenroll(staleLeaf, await PairedDevice.createKeyPackage(w.p.client, w.p.identity), {
      send: async () => {
        reached();
        await never;
      },
    });
    await atSend;
    const vault = w.activeDevice.vault;
    w.a.client.free();
    w.a.client = await MlsClient.open({ storage: w.a.storage });
    const active = PairedDevice.open(w.a.client, vault);
    // The DS never got a commit: alice clears them (she would merge one it took).
    for (const g of [g1, g2]) {
      g.alice = w.a.client.group(g.id);
      expect(g.alice.state().pendingCommit).toBe(true);
      await g.alice.clearPendingCommit();
    }
    const added = active.pairingGroup.members().find((m) => m.leafIndex !== active.pairingGroup.ownLeafIndex)!.leafIndex;
    const back = await active.reenroll(added, await PairedDevice.createKeyPackage(w.p.client, w.p.identity), {
      send: async (out) => void (await submit(w.ds, out.groupId, 'alice', out.commit)),
    });
    expect(back.groups.map((g) => g.enrolled)).toEqual([true, true]);
    const phone = await PairedDevice.join(w.p.client, back.initPairing, { vault: w.passiveDevice.vault! });
    expect((await phone.receive(back.shareRand)).type).toBe('shareRandApplied');
    for (const [i, g] of [g1, g2].entries()) {
      await catchUp(g.bob, g.inbox.bob);
      await catchUp(g.carol, g.inbox.carol);
      expect((await phone.applyNotify(back.groups[i]!)).kind).toBe('enroll');
      g.phone = w.p.client.group(g.id);
      inSync([g.alice, g.bob, g.carol, g.phone]);
    }
    // The old call's send answers at last: the freed client changes nothing.
    answer(new Error('DS: too late'));
    expect((await mlsError(() => stuck)).code).toBe('RELEASED');
  });
});

/** `err` (a group's outcome) is a PairingError of exactly `code` and `message`, no reason. */
function refusal(err: unknown, code: string, message: string): void {
  expect(err).toBeInstanceOf(PairingError);
  const e = err as PairingError;
  expect({ code: e.code, reason: e.reason, message: e.message }).toEqual({ code, reason: undefined, message });
}
