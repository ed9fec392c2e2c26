/**
 * Second review of the Paired MLS layer (after 7a73553, 1343769, 8bf827c,
 * 3c57d90) against the attacker of docs/PROTOCOL.md §4.0 — a stolen copy
 * of a passive device's storage (no vault) with its traffic — and against
 * malicious members. Each test asserts the exact refusal and that the
 * honest devices keep working.
 */
import { describe, expect, it } from 'vitest';
import { toHex } from 'paired-mls';
import {
  PairedDevice,
  PairingError,
  decodePairingMessage,
  encodePairingMessage,
  generateSeed,
  type PairedCommit,
  type PairingMode,
} from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError } from './helpers.js';
import { aliceAndBob, applyShareRand, device, enrolPaired, invited, inviteNext, pairedBeforeEnrolment, pairedWorld, read, refused, seededTrio, stolen } from './paired-helpers.js';

/** `fn` must reject; its error (any kind: the application's own from `send`). */
async function rejection(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, but the call succeeded');
}

describe.each(['hidden', 'standard'] as const)('Paired MLS review 2: the generated seed (%s mode)', (mode: PairingMode) => {
  it('travels in one ShareRand only: no second invite before the first Accept, and a later ShareRand read by a copy of the first device has none', async () => {
    const { a, bob } = await aliceAndBob();
    const phone = await device('alice-phone');
    const watch = await device('alice-watch');

    // alice pairs her phone with a generated seed; the phone's Accept is still on its way …
    const { active, joiner: phoneDevice, shareRand } = await invited(a, phone, { mode });
    const s1 = await applyShareRand(phoneDevice, shareRand);
    // … when the phone's state is stolen (it is paired on its side) and alice invites her watch.
    // That ShareRand would be readable by the copy (it follows the add as plain MLS): had it
    // carried the seed too, the copy would hold the vault. The invite is refused, nothing changes.
    const copy = await stolen(phone);
    const copyPairing = PairedDevice.open(copy, undefined).pairingGroup;
    const watchKeyPackage = await PairedDevice.createKeyPackage(watch.client, watch.identity);
    const epoch = active.pairingGroup.epoch;
    const err = await mlsError(() => active.invite(watchKeyPackage));
    expect(err).toBeInstanceOf(PairingError);
    expect({ code: err.code, message: err.message }).toEqual({
      code: 'PAIRING_STATE',
      message: 'the device invited first has not sent its Accept yet: wait for it (or reset the pairing and initiate again)',
    });
    expect(active.pairingGroup.epoch).toBe(epoch);

    // The phone's Accept pairs it; the watch invited now gets no seed, not even via the copy.
    expect(await active.receive(s1.accept)).toEqual({ type: 'paired' });
    const inv2 = await active.invite(watchKeyPackage);
    const added = await copyPairing.process(inv2.pairingCommit);
    if (added.kind !== 'commit') throw new Error('expected the add');
    await added.staged.merge();
    const seen = await copyPairing.process(inv2.shareRand);
    if (seen.kind !== 'application') throw new Error('expected the ShareRand');
    const shared = decodePairingMessage(seen.data);
    if (shared.type !== 'shareRand') throw new Error('expected a ShareRand');
    expect(shared.seed.length).toBe(0);
    // So the watch, without a preinstalled vault, cannot take it.
    const watchDevice = await PairedDevice.join(watch.client, inv2.initPairing);
    await refused(() => watchDevice.receive(inv2.shareRand), 'PAIRING_REJECTED', 'unexpected');

    // The pairing runs on and the copy is healed out.
    expect((await phoneDevice.receive(inv2.pairingCommit)).type).toBe('pairingGroupChanged');
    await enrolPaired(active, a, [[phone, phoneDevice]], [bob]);
    const u = await active.update(a.group);
    await a.group.mergePendingCommit();
    await deliverCommit(u.commit, [bob]);
    expect((await phoneDevice.applyNotify(u)).kind).toBe('update');
    expectInSync([a, phone, bob]);
    const m = await bob.group.encrypt('after the update');
    for (const d of [a, phone]) expect(await read(d, m)).toBe('after the update');
  });
});

/**
 * A toy Delivery Service for one group: it takes the first commit of each
 * epoch and refuses every other (what a DS does, docs/PROTOCOL.md §8.1).
 */
function toyDs(startEpoch: number) {
  let epoch = startEpoch;
  return {
    /** A member's commit reaches the DS. */
    accept(commit: Uint8Array, sentIn: number): void {
      if (sentIn !== epoch) throw new Error(`DS: epoch ${sentIn} is taken`);
      epoch++;
      void commit;
    },
  };
}

describe.each(['hidden', 'standard'] as const)('Paired MLS review 2: a hostile member wins the epoch at the DS (%s mode)', (mode: PairingMode) => {
  it('enroll({ send }): the refused enrolment is cleared, the group not enrolled, the active device follows the winner and enrols again', async () => {
    const { a, p, others: [bob], activeDevice, passiveDevice } = await pairedBeforeEnrolment(['bob'], mode);
    const ds = toyDs(a.group.epoch);

    // bob sees alice about to enrol (or just commits often) and gets his commit in first.
    const epoch = a.group.epoch;
    const { commit: bobs } = await bob.group.selfUpdate();
    ds.accept(bobs, epoch);
    await bob.group.mergePendingCommit();
    let refused: PairedCommit | undefined;
    const err = await rejection(() =>
      activeDevice.enroll(a.group!, {
        send: async (out) => {
          refused = out;
          ds.accept(out.commit, epoch);
        },
      }),
    );
    expect(err).toEqual(new Error(`DS: epoch ${epoch} is taken`));
    // Nothing of the refused commit stays: no pending commit, same epoch, not enrolled.
    expect(activeDevice.enrolledGroups()).toEqual([]);
    expect(a.group.state().pendingCommit).toBe(false);
    expect(a.group.epoch).toBe(epoch);
    // So alice follows bob's commit (merged at once, she would be on her own fork: WRONG_EPOCH).
    await deliverCommit(bobs, [a]);
    expectInSync([a, bob]);
    // The derivation step was made: the partner takes it alone.
    const lost = passiveDevice.counter;
    expect(await passiveDevice.receive(refused!.pairing[0]!)).toEqual({ type: 'derivationStep', counter: lost });
    expect(passiveDevice.counter).toBe(activeDevice.counter);

    // Enrolling again goes through; the pairing follows the group and its updates.
    const enrolled = await activeDevice.enroll(a.group, { send: async (out) => ds.accept(out.commit, a.group!.epoch) });
    expect(activeDevice.enrolledGroups()).toEqual([toHex(a.group.id)]);
    expect(a.group.state().pendingCommit).toBe(false);
    await deliverCommit(enrolled.commit, [bob]);
    expect((await passiveDevice.applyNotify(enrolled)).kind).toBe('enroll');
    p.group = p.client.group(a.group.id);
    expectInSync([a, p, bob]);
    const u = await activeDevice.update(a.group, { send: async (out) => ds.accept(out.commit, a.group!.epoch) });
    await deliverCommit(u.commit, [bob]);
    expect((await passiveDevice.applyNotify(u)).kind).toBe('update');
    expectInSync([a, p, bob]);
    const m = await bob.group.encrypt('enrolled after all');
    for (const d of [a, p]) expect(await read(d, m)).toBe('enrolled after all');
  });

  it('update({ send }): sent once, merged only when the DS took it, cleared when bob won; the partner takes the lost step alone', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const ds = toyDs(w.a.group!.epoch);
    const epoch = w.a.group!.epoch;
    const { commit: bobs } = await bob.group!.selfUpdate();
    ds.accept(bobs, epoch);
    await bob.group!.mergePendingCommit();
    const sent: PairedCommit[] = [];
    const send = async (out: PairedCommit) => {
      sent.push(out);
      ds.accept(out.commit, epoch);
    };
    expect(await rejection(() => w.activeDevice.update(w.a.group!, { send }))).toEqual(new Error(`DS: epoch ${epoch} is taken`));
    expect(sent.length).toBe(1);
    expect(w.a.group!.state().pendingCommit).toBe(false);
    expect(w.a.group!.epoch).toBe(epoch);
    await deliverCommit(bobs, [w.a, w.p]);
    const counter = w.passiveDevice.counter;
    expect(await w.passiveDevice.receive(sent[0]!.pairing[0]!)).toEqual({ type: 'derivationStep', counter });
    // Accepted: sent once and merged by the call.
    const u = await w.activeDevice.update(w.a.group!, { send: async (out) => void sent.push(out) });
    expect(sent.length).toBe(2);
    expect(sent[1]).toBe(u);
    expect(w.a.group!.state().pendingCommit).toBe(false);
    expect(w.a.group!.epoch).toBe(epoch + 2);
    await deliverCommit(u.commit, [bob]);
    expect((await w.passiveDevice.applyNotify(u)).kind).toBe('update');
    expectInSync([w.a, w.p, bob]);
  });
});

describe.each(['hidden', 'standard'] as const)('Paired MLS review 2: a device with a preinstalled seed (%s mode)', (mode: PairingMode) => {
  it("keeps it: the stolen copy's own add of the joining device and its ShareRand with a seed are refused (unexpected); the real invite pairs it", async () => {
    const { a, phone, watch, bob, active, phoneDevice, watchVault: vw } = await seededTrio(mode);

    // The thief's copy of the phone adds the watch's KeyPackage itself (a commit of its own: the
    // Welcome's GroupInfo is signed by the copy's leaf, so the watch takes it as its inviter) and
    // gets that InitPairing to the watch first, with a ShareRand carrying the thief's seed.
    const copy = await stolen(phone);
    const copyPairing = PairedDevice.open(copy, undefined).pairingGroup;
    const watchKeyPackage = await PairedDevice.createKeyPackage(watch.client, watch.identity);
    const fork = await copyPairing.commit({ add: [watchKeyPackage] });
    await copyPairing.mergePendingCommit();
    const planted = await copyPairing.encrypt(
      encodePairingMessage({ type: 'shareRand', mode, seed: generateSeed(), anchorIdentity: new TextEncoder().encode('mallory'), ciphersuite: 1, anchorKeyPair: new Uint8Array(0), counter: 0n, proof: new Uint8Array(0) }),
    );
    const fooled = await PairedDevice.join(watch.client, fork.welcome!, { vault: vw });
    await refused(() => fooled.receive(planted), 'PAIRING_REJECTED', 'unexpected');
    expect(fooled.established).toBe(false);
    // The real devices refuse the copy's commit.
    await refused(() => active.receive(fork.commit), 'PAIRING_REJECTED', 'wrong-sender');
    await refused(() => phoneDevice.receive(fork.commit), 'PAIRING_REJECTED', 'wrong-sender');

    // The watch drops the forked pairing and takes alice's real invite (of a new KeyPackage: the
    // first was spent on the fork); all three follow alice.
    await PairedDevice.reset(watch.client);
    const { joiner: watchDevice, shareRand } = await inviteNext(active, phoneDevice, watch, vw);
    const s2 = await applyShareRand(watchDevice, shareRand);
    expect(await active.receive(s2.accept)).toEqual({ type: 'paired' });
    await enrolPaired(active, a, [[phone, phoneDevice], [watch, watchDevice]], [bob]);
    expectInSync([a, phone, watch, bob]);
    const m = await bob.group.encrypt('to all three');
    for (const d of [a, phone, watch]) expect(await read(d, m)).toBe('to all three');
  });
});
