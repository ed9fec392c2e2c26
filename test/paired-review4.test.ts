/**
 * Fourth review of the Paired MLS layer, of 98bb98f (one paired operation
 * at a time), 853aeb9 (ShareRand's vault proof), a349b4b (no second invite
 * before the first Accept; reset of an initiator that never paired),
 * 112647c / 3e5a2a1 (an enroll Notify's sealed group state), against the
 * attacker of docs/PROTOCOL.md §4.0 (a stolen copy of a passive device's
 * storage without its vault, with its traffic), hostile members and a
 * hostile DS. Each test asserts the exact refusal and that the honest
 * devices keep working.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient, sha256 } from 'paired-mls';
import {
  PairedDevice,
  decodePairingMessage,
  encodePairingMessage,
  pairingProofTbs,
  provenContent,
  type Notify,
  type PairingMode,
  type SeedVault,
} from 'paired-mls/paired';
import { openGroupState, sealGroupState } from '../ts/paired/pairing-proof.js';
import { deliverCommit, expectInSync, mlsError, type Member } from './helpers.js';
import {
  applyShareRand,
  device,
  invited,
  pairedBeforeEnrolment,
  pairedWorld,
  read,
  refused,
  stolen,
  updateFollowed,
  updateWaitingOnSend,
  type PairedWorld,
} from './paired-helpers.js';

/**
 * A seed vault that answers late (a hardware key store, a prompt for the
 * user's consent): `hold(label)` makes the next derivation with `label`
 * wait until `release()`; the outputs are the real vault's.
 */
function slowVault(inner: SeedVault) {
  const holds: { label: string; taken: boolean; reached: () => void; gate: Promise<void>; release: () => void }[] = [];
  const vault: SeedVault = {
    async derive(label, context, length) {
      const hold = holds.find((h) => h.label === label && !h.taken);
      if (hold) {
        hold.taken = true;
        hold.reached();
        await hold.gate;
      }
      return inner.derive(label, context, length);
    },
  };
  const hold = (label: string) => {
    let reached!: () => void;
    let release!: () => void;
    const atVault = new Promise<void>((r) => (reached = r));
    const gate = new Promise<void>((r) => (release = r));
    holds.push({ label, taken: false, reached, gate, release });
    /** `reached`: the derivation is waiting; `release()`: let it go on. */
    return { reached: atVault, release };
  };
  return { vault, hold };
}

/** `d` opened again on `m`'s client with its vault made slow: the device and `hold` (the two race tests and the duplicate test start so). */
function onSlowVault(m: Member, d: PairedDevice) {
  const slow = slowVault(d.vault!);
  return { device: PairedDevice.open(m.client, slow.vault), hold: slow.hold };
}

/** The junk of a stolen copy of the phone in the pairing group: a CeasePair it cannot prove (it has no vault). */
async function junkFromCopy(w: PairedWorld): Promise<Uint8Array> {
  const copy = PairedDevice.open(await stolen(w.p), undefined);
  return copy.pairingGroup.encrypt(encodePairingMessage({ type: 'ceasePair', route: 'rekey', counter: w.passiveDevice.counter, proof: new Uint8Array(32).fill(7) }));
}

const BUSY = 'another paired operation of this device is still running (a commit waiting on its send): wait until it settled';

describe.each(['hidden', 'standard'] as const)('Paired MLS review 4: pairing messages received while a paired operation runs (%s mode)', (mode: PairingMode) => {
  it("a refused message (the copy's junk) arriving first does not roll back the paired update made meanwhile: the update stands, the partner follows it and the next one", async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const { device: active, hold } = onSlowVault(w.a, w.activeDevice);
    const junk = await junkFromCopy(w);

    // The junk arrives and alice's app hands it to receive; its proof check waits on the vault.
    const checking = hold('proof');
    const received = active.receive(junk);
    await checking.reached;
    // Meanwhile the app runs a paired update, which the DS takes. Before: it ran inside the
    // transaction receive had opened (a call made while one is open joins it) and resolved;
    // the junk's refusal then rolled the whole transaction back, the update included, after
    // its commit had gone to the DS and its Notify to the phone: alice stayed in the old epoch.
    const sent: number[] = [];
    const update = active.update(w.a.group!, { send: async () => void sent.push(w.a.group!.epoch) });
    checking.release();
    await refused(() => received, 'PAIRING_REJECTED', 'no-proof');
    const out = await update;
    expect(sent).toHaveLength(1);
    await deliverCommit(out.commit, [bob]);
    expect((await w.passiveDevice.applyNotify(out)).kind).toBe('update');
    expectInSync([w.a, w.p, bob]);
    const m = await bob.group!.encrypt('after the update');
    for (const d of [w.a, w.p]) expect(await read(d, m)).toBe('after the update');
    await updateFollowed(active, w.a, w.passiveDevice, [bob]);
    expectInSync([w.a, w.p, bob]);
  });

  it("a refused message (the copy's junk) received during a paired update does not take the device's counter back: the next update is still followed", async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const { device: active, hold } = onSlowVault(w.a, w.activeDevice);
    const junk = await junkFromCopy(w);

    // The update starts first and waits on the vault for its step's PSK.
    const stepping = hold('psk');
    const update = active.update(w.a.group!);
    await stepping.reached;
    // The junk arrives meanwhile. Before: receive joined the update's transaction, noted the
    // device's pairing state as it was then (counter n), and, refused once the update had made
    // its step (counter n + 1, stored), put that old state back in memory: alice's next update
    // made its step with PSK(n) again, which the phone refuses (counter), desynchronised.
    // Now it waits for the update to settle, and is then from a pairing epoch alice has left.
    const checking = hold('proof');
    const received = active.receive(junk);
    stepping.release();
    checking.release();
    const err = await mlsError(() => received);
    expect({ code: err.code, message: err.message }).toEqual({ code: 'WRONG_EPOCH', message: 'message from an epoch whose secrets this member no longer has' });
    const out = await update;
    await w.a.group!.mergePendingCommit();
    await deliverCommit(out.commit, [bob]);
    expect((await w.passiveDevice.applyNotify(out)).kind).toBe('update');
    expect(active.counter).toBe(w.passiveDevice.counter);
    await updateFollowed(active, w.a, w.passiveDevice, [bob]);
    expectInSync([w.a, w.p, bob]);
    const m = await bob.group!.encrypt('two updates later');
    for (const d of [w.a, w.p]) expect(await read(d, m)).toBe('two updates later');
  });
});

describe.each(['hidden', 'standard'] as const)('Paired MLS review 4: a duplicate from the DS at the passive device (%s mode)', (mode: PairingMode) => {
  it('received while the device follows a paired update does not undo it: the Notify applied stays applied, and the next one follows', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const { device: passive, hold } = onSlowVault(w.p, w.passiveDevice);
    const u = await w.activeDevice.update(w.a.group!, { send: async () => undefined });
    await deliverCommit(u.commit, [bob]);
    // The DS hands the phone the enrolment's step again; the phone offers it the PSK of its
    // counter, which waits on the vault.
    const deriving = hold('psk');
    const duplicate = passive.receive(w.enrolment.pairing[0]!);
    await deriving.reached;
    // The real update arrives meanwhile. Before: applyNotify joined the transaction receive had
    // opened, resolved (pairedUpdateApplied), and the duplicate's refusal then rolled it all
    // back: the phone was in the old epoch again, having reported the update applied.
    const applied = passive.applyNotify(u);
    deriving.release();
    const err = await mlsError(() => duplicate);
    expect({ code: err.code, message: err.message }).toEqual({ code: 'WRONG_EPOCH', message: "processing message: Message epoch differs from the group's epoch." });
    expect((await applied).kind).toBe('update');
    expectInSync([w.a, w.p, bob]);
    const m = await bob.group!.encrypt('after the duplicate');
    for (const d of [w.a, w.p]) expect(await read(d, m)).toBe('after the duplicate');
    await updateFollowed(w.activeDevice, w.a, passive, [bob]);
    expectInSync([w.a, w.p, bob]);
  });
});

describe.each(['hidden', 'standard'] as const)('Paired MLS review 4: a send that never settles (%s mode)', (mode: PairingMode) => {
  it('refuses paired operations meanwhile (PAIRING_STATE) but still receives; a restart gets the device back, and the stale send settling later changes nothing', async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const { update: stuck, out: lost, release } = await updateWaitingOnSend(w);
    await refused(() => w.activeDevice.update(w.a.group!), 'PAIRING_STATE', undefined, BUSY);
    // Pairing messages are not held up by the send: the copy's junk (from the pairing epoch
    // before the update's step) is refused as ever.
    const junk = await junkFromCopy(w);
    const wrongEpoch = await mlsError(() => w.activeDevice.receive(junk));
    expect(wrongEpoch.code).toBe('WRONG_EPOCH');

    // The way out: the app frees the client and opens it again on its storage (a restart).
    const vault = w.activeDevice.vault;
    w.a.client.free();
    w.a.client = await MlsClient.open({ storage: w.a.storage });
    const active = PairedDevice.open(w.a.client, vault);
    w.a.group = w.a.client.group(w.a.group!.id);
    // The DS never took the commit: the app clears it, the phone takes the step alone (§4.14).
    expect(w.a.group.state().pendingCommit).toBe(true);
    await w.a.group.clearPendingCommit();
    expect((await w.passiveDevice.receive(lost.pairing[0]!)).type).toBe('derivationStep');
    await updateFollowed(active, w.a, w.passiveDevice, [bob]);
    expectInSync([w.a, w.p, bob]);

    // The old send answers at last: the freed client changes nothing.
    release();
    const err = await mlsError(() => stuck);
    expect(err.code).toBe('RELEASED');
    expectInSync([w.a, w.p, bob]);
    const m = await bob.group!.encrypt('after the restart');
    for (const d of [w.a, w.p]) expect(await read(d, m)).toBe('after the restart');
  });
});

describe.each(['hidden', 'standard'] as const)('Paired MLS review 4: an enroll Notify whose sealed group state does not open (%s mode)', (mode: PairingMode) => {
  it('is refused at the passive device (NOTIFY_REJECTED no-proof) whatever was done to it — a bit flipped, cut below a nonce, sealed for another group or counter — and the real one then enrols it', async () => {
    const { a, p, others: [bob], activeDevice, passiveDevice } = await pairedBeforeEnrolment(['bob'], mode);
    const other = await a.client.createGroup(a.identity); // another group of alice's
    // Only a holder of the vault can make a Notify the phone takes (its proof covers the
    // sealed state): alice's device itself, here a twin of it (its storage copied while the
    // enrolment waits on the DS, so in the pairing epoch of the step), with the vault.
    let twin: MlsClient | undefined;
    const enrolled = await activeDevice.enroll(a.group, {
      send: async () => {
        twin = await stolen(a);
      },
    });
    const vault = activeDevice.vault!;
    const pairingId = activeDevice.pairingGroup.id;
    const aliceLeaf = activeDevice.pairingGroup.ownLeafIndex;
    const twinPairing = twin!.group(pairingId);
    // The real Notify, as the phone would read it (from a copy of the phone that took the step).
    const reader = PairedDevice.open(await stolen(p), passiveDevice.vault);
    expect((await reader.receive(enrolled.pairing[0]!)).type).toBe('derivationStep');
    const seen = await reader.pairingGroup.process(enrolled.pairing[1]!);
    if (seen.kind !== 'application') throw new Error('expected the Notify');
    const real = decodePairingMessage(seen.data) as Notify;
    expect({ type: real.type, kind: real.kind, commitRef: real.commitRef }).toEqual({ type: 'notify', kind: 'enroll', commitRef: await sha256(enrolled.commit) });
    const state = await openGroupState(vault, pairingId, real.counter, real.groupId, real.groupState);
    if (!state) throw new Error('the real sealed state opens');

    /** The real Notify with `groupState` replaced, proven and sent by alice's twin. */
    const withState = async (groupState: Uint8Array): Promise<Uint8Array> => {
      const notify: Notify = { ...real, groupState, proof: new Uint8Array(0) };
      const tbs = pairingProofTbs(pairingId, BigInt(twinPairing.epoch), aliceLeaf, provenContent(notify));
      return twinPairing.encrypt(encodePairingMessage({ ...notify, proof: await vault.derive('proof', tbs, 32) }));
    };
    const flipped = (bytes: Uint8Array, at: number) => {
      const out = bytes.slice();
      out[at]! ^= 1;
      return out;
    };
    const tampered: [string, Uint8Array][] = [
      ['a bit flipped in the nonce', flipped(real.groupState, 0)],
      ['a bit flipped in the ciphertext', flipped(real.groupState, 40)],
      ['a bit flipped in the tag', flipped(real.groupState, real.groupState.length - 1)],
      ['cut below the nonce', real.groupState.slice(0, 11)],
      ['the nonce alone', real.groupState.slice(0, 12)],
      ['empty', new Uint8Array(0)],
      ['sealed for another group', await sealGroupState(vault, pairingId, real.counter, other.id, state)],
      ['sealed for the next counter', await sealGroupState(vault, pairingId, real.counter + 1n, real.groupId, state)],
      // (mod 2^64: at counter 0 the one before is 2^64 - 1; the writer no longer wraps -1 itself)
      ['sealed for the previous counter', await sealGroupState(vault, pairingId, BigInt.asUintN(64, real.counter - 1n), real.groupId, state)],
      ['sealed for another pairing group', await sealGroupState(vault, other.id, real.counter, real.groupId, state)],
    ];
    state.fill(0);
    const epoch = passiveDevice.pairingGroup.epoch;
    for (const [what, groupState] of tampered) {
      const notify = await withState(groupState);
      await refused(
        () => passiveDevice.applyNotify({ pairing: [enrolled.pairing[0]!, notify], commit: enrolled.commit }),
        'NOTIFY_REJECTED',
        'no-proof',
        'Notify rejected: the group state is not sealed with this vault (no-proof)',
      ).catch((err: unknown) => {
        throw new Error(`${what}: ${String(err)}`);
      });
      expect({ what, epoch: passiveDevice.pairingGroup.epoch, groups: passiveDevice.enrolledGroups() }).toEqual({ what, epoch, groups: [] });
      expect(p.client.groupIds()).toHaveLength(1); // the pairing group only
    }
    // The real Notify, after all of them.
    await deliverCommit(enrolled.commit, [bob]);
    expect((await passiveDevice.applyNotify(enrolled)).kind).toBe('enroll');
    p.group = p.client.group(a.group.id);
    expectInSync([a, p, bob]);
    const m = await bob.group.encrypt('enrolled after all');
    for (const d of [a, p]) expect(await read(d, m)).toBe('enrolled after all');
    await updateFollowed(activeDevice, a, passiveDevice, [bob]);
    expectInSync([a, p, bob]);
  });
});

describe.each(['hidden', 'standard'] as const)('Paired MLS review 4: a DS that refuses a paired commit late (%s mode)', (mode: PairingMode) => {
  it("after delivering bob's commit of that epoch: send's own error comes back, nothing of the group is touched, the partner takes the step alone", async () => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const { update, out: lost, release: answer } = await updateWaitingOnSend(w);
    const { commit: bobs } = await bob.group!.selfUpdate();
    await bob.group!.mergePendingCommit();
    await deliverCommit(bobs, [w.a, w.p]);
    answer(new Error('DS: epoch taken'));
    expect(await update.then(() => 'merged', (err: unknown) => err)).toEqual(new Error('DS: epoch taken'));
    expectInSync([w.a, w.p, bob]);
    expect((await w.passiveDevice.receive(lost.pairing[0]!)).type).toBe('derivationStep');
    await updateFollowed(w.activeDevice, w.a, w.passiveDevice, [bob]);
    expectInSync([w.a, w.p, bob]);
  });
});

describe('Paired MLS review 4: a ShareRand with a seed too short for a vault', () => {
  it('is refused as malformed (PAIRING_REJECTED), not with a bare RangeError; the real ShareRand then pairs', async () => {
    const a = await device('alice');
    const p = await device('alice-phone');
    const { active, joiner, shareRand } = await invited(a, p);
    // From its inviter (a device with a bug, or one whose vault the joiner has no reason to trust).
    const short = await active.pairingGroup.encrypt(
      encodePairingMessage({ type: 'shareRand', mode: 'hidden', seed: new Uint8Array(16).fill(1), anchorIdentity: a.identity.identity, ciphersuite: 1, anchorKeyPair: new Uint8Array(0), counter: 0n, proof: new Uint8Array(0) }),
    );
    await refused(() => joiner.receive(short), 'PAIRING_REJECTED', 'malformed', 'ShareRand carries a seed of 16 bytes, a vault needs at least 32 (malformed)');
    expect({ established: joiner.established, vault: joiner.vault }).toEqual({ established: false, vault: undefined });
    const applied = await applyShareRand(joiner, shareRand);
    expect(await active.receive(applied.accept)).toEqual({ type: 'paired' });
  });
});
