/**
 * Paired MLS standard mode (docs/PROTOCOL.md §4.12): the anchor leaf lists
 * the paired devices, every anchor handshake message carries a signature
 * by the device that sent it, and every member checks it. Attacks use a
 * copy of an anchor device's storage: it holds the anchor's shared
 * signature key and the group state, which is what stealing the anchor
 * key gives; what differs per attack is the device key it has.
 */
import { describe, expect, it } from 'vitest';
import { MemoryStorageAdapter, MlsClient, TlsWriter, bytesEqual, decodeSafeAad, encodeSafeAad, utf8, type Group, type ProcessResult } from 'paired-mls';
import { DEVICE_SIGNATURE_COMPONENT, DEVICE_SIGNATURES_CAPABILITY, PairedDevice, decodePairedDevices, listedDevices, signedAnchorProposal } from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError, newMember, type Member } from './helpers.js';
import { pairedWorld, type PairedWorld } from './paired-helpers.js';
import { TsActor } from './interop-actors.js';

const name = (identity: Uint8Array) => utf8(identity);

/** A copy of `m`'s client (its storage at this moment), as an attacker who stole it has it. */
async function stolenCopy(m: Member): Promise<MlsClient> {
  return MlsClient.open({ storage: await MemoryStorageAdapter.copyOf(m.storage!) });
}

async function paired(mode: 'standard' = 'standard'): Promise<PairedWorld> {
  const w = await pairedWorld(['bob', 'carol'], mode);
  expectInSync([w.a, w.p, ...w.others]);
  return w;
}

function commitOf(r: ProcessResult) {
  if (r.kind !== 'commit') throw new Error(`expected a commit, got ${r.kind}`);
  return r;
}

/** The active side's paired update, delivered to everyone; returns what bob saw. */
async function pairedUpdate(w: PairedWorld, activeIsA = true): Promise<ProcessResult> {
  const [active, passive] = activeIsA ? [w.a, w.passiveDevice] : [w.p, w.activeDevice];
  const device = activeIsA ? w.activeDevice : w.passiveDevice;
  const update = await device.update(active.group!);
  await active.group!.mergePendingCommit();
  const [bob, carol] = w.others as [Member, Member];
  const seen = await bob.group!.process(update.commit);
  await commitOf(seen).staged.merge();
  await deliverCommit(update.commit, [carol]);
  await passive.applyNotify(update);
  return seen;
}

describe('Paired MLS standard mode: device keys on the anchor leaf', () => {
  it('the anchor leaf lists both devices (identity and key), as every member sees it', async () => {
    const w = await paired();
    const anchorLeaf = w.a.group!.ownLeafIndex;
    const devices = w.activeDevice.pairedDevices();
    expect(devices).toHaveLength(2);
    for (const m of [w.a, w.p, ...w.others]) {
      const listed = listedDevices(m.group!, anchorLeaf)!;
      expect(listed.map((d) => name(d.identity))).toEqual(devices.map((d) => name(d.identity)));
      expect(listed.every((d, i) => bytesEqual(d.signatureKey, devices[i]!.signatureKey))).toBe(true);
    }
    // The device keys are the devices' own, not the shared anchor key.
    expect(devices.some((d) => bytesEqual(d.signatureKey, w.a.identity.signaturePublicKey))).toBe(false);
    // Ordinary members' leaves list nothing.
    const bob = w.others[0]!;
    expect(listedDevices(bob.group!, bob.group!.ownLeafIndex)).toBeUndefined();
  });

  it('traceability: after each paired update members report which device committed, across a hand-over', async () => {
    const w = await paired();
    const laptop = name(w.activeDevice.deviceIdentity.identity);
    const phone = name(w.passiveDevice.deviceIdentity.identity);
    expect(laptop).not.toBe(phone);

    for (let i = 0; i < 2; i++) {
      const seen = commitOf(await pairedUpdate(w, true));
      expect(name(seen.device!.identity)).toBe(laptop);
    }
    // The phone takes the active role and commits.
    const handOver = await w.activeDevice.handOver();
    expect(await w.passiveDevice.receive(handOver)).toEqual({ type: 'roleChanged', role: 'active' });
    const seen = commitOf(await pairedUpdate(w, false));
    expect(name(seen.device!.identity)).toBe(phone);
    expectInSync([w.a, w.p, ...w.others]);

    // A device-signed proposal names its device too.
    const carolLeaf = w.others[1]!.group!.ownLeafIndex;
    const proposal = await w.passiveDevice.propose(w.p.group!, { type: 'remove', leafIndex: carolLeaf });
    const atBob = await w.others[0]!.group!.process(proposal);
    expect(atBob.kind === 'proposal' && name(atBob.device!.identity)).toBe(phone);
  });
});

describe('Paired MLS standard mode: the anchor key alone is not enough', () => {
  it('no device signature: a commit and a proposal made with only the anchor key are rejected (and the proposal is not queued)', async () => {
    const w = await paired();
    const [bob, carol] = w.others as [Member, Member];
    const thief = await stolenCopy(w.a);
    const group = thief.group(w.a.group!.id);

    const { commit } = await group.selfUpdate();
    const err = await mlsError(() => bob.group!.process(commit));
    expect(err.code).toBe('DEVICE_SIGNATURE');
    expect(err.message).toMatch(/no device signature/);

    await group.clearPendingCommit();
    const proposal = await group.propose({ type: 'remove', leafIndex: carol.group!.ownLeafIndex });
    const perr = await mlsError(() => bob.group!.process(proposal));
    expect(perr.code).toBe('DEVICE_SIGNATURE');
    expect(bob.group!.state().pendingProposals).toBe(0);
    // Bob is unharmed and in sync. (The thief's proposal used up handshake
    // generations of the anchor's ratchet at bob, which the devices share
    // with the stolen copy: an old copy can always burn generations, in
    // either mode; see PROTOCOL §4.8.)
    const fromCarol = await carol.group!.encrypt('still here');
    const read = await bob.group!.process(fromCarol);
    expect(read.kind === 'application' && utf8(read.data)).toBe('still here');
    expectInSync([w.a, w.p, ...w.others]);
  });

  it('nor can the anchor key shed the device list: a resync external commit replacing the anchor leaf needs a listed device too', async () => {
    const w = await paired();
    const bob = w.others[0]!;
    const thief = await stolenCopy(w.a);
    const pairingCopy = PairedDevice.open(thief, undefined).pairingGroup;
    const epochId = await pairingCopy.registerEmulationEpoch();
    const { commit } = await thief.group(w.a.group!.id).resyncAsVirtualClient(epochId);
    const err = await mlsError(() => bob.group!.process(commit));
    expect(err.code).toBe('DEVICE_SIGNATURE');
    expect(err.message).toMatch(/no device signature/);
  });

  it('a forged device signature, and a valid one moved onto other content, are rejected', async () => {
    const w = await paired();
    const bob = w.others[0]!;
    const carolLeaf = w.others[1]!.group!.ownLeafIndex;
    const thief = await stolenCopy(w.a);
    const group = thief.group(w.a.group!.id);
    const laptopKey = w.activeDevice.deviceIdentity.signaturePublicKey;

    // Forged: the laptop's device key with a made-up signature.
    const forgedItem = new TlsWriter().vector(laptopKey).vector(new Uint8Array(64).fill(7)).finish();
    const forgedAad = encodeSafeAad([{ componentId: DEVICE_SIGNATURE_COMPONENT, data: forgedItem }]);
    const forged = await group.selfUpdate({ aad: forgedAad });
    const ferr = await mlsError(() => bob.group!.process(forged.commit));
    expect(ferr.code).toBe('DEVICE_SIGNATURE');
    expect(ferr.message).toMatch(/does not verify/);
    await group.clearPendingCommit();

    // A genuine paired update (device-signed), seen by bob but not applied.
    const genuine = await w.activeDevice.update(w.a.group!);
    const seen = commitOf(await bob.group!.process(genuine.commit));
    expect(decodeSafeAad(seen.aad)!.map((i) => i.componentId)).toEqual([DEVICE_SIGNATURE_COMPONENT]);
    seen.staged.discard();
    // Its signature on another commit of the same epoch (removing carol).
    const moved = await group.commit({ remove: [carolLeaf], aad: seen.aad });
    const merr = await mlsError(() => bob.group!.process(moved.commit));
    expect(merr.code).toBe('DEVICE_SIGNATURE');
    expect(merr.message).toMatch(/does not verify/);
    // The genuine one still applies.
    commitOf(await bob.group!.process(genuine.commit)).staged.discard();
  });

  it("a removed device's key is rejected: unlisted by a paired update, the phone can no longer act for the anchor", async () => {
    const w = await paired();
    const [bob, carol] = w.others as [Member, Member];
    const laptopOnly = w.activeDevice.pairedDevices().filter((d) => bytesEqual(d.signatureKey, w.activeDevice.deviceIdentity.signaturePublicKey));
    expect(laptopOnly).toHaveLength(1);
    const update = await w.activeDevice.commit(w.a.group!, { listedDevices: laptopOnly });
    await w.a.group!.mergePendingCommit();
    await deliverCommit(update.commit, w.others);
    await w.passiveDevice.applyNotify(update);
    expect(listedDevices(bob.group!, w.a.group!.ownLeafIndex)!.map((d) => name(d.identity))).toEqual([name(laptopOnly[0]!.identity)]);

    // The phone still holds the anchor key, the group state and its own
    // device key, and signs properly with it: rejected as unlisted.
    const proposal = await signedAnchorProposal(w.p.group!, w.passiveDevice.deviceIdentity, { type: 'remove', leafIndex: carol.group!.ownLeafIndex });
    const err = await mlsError(() => bob.group!.process(proposal));
    expect(err.code).toBe('DEVICE_SIGNATURE');
    expect(err.message).toMatch(/does not list/);
    // The laptop still can (shown at carol: the two devices share the
    // anchor's handshake ratchet, and the phone's message used the same
    // generations at bob).
    const ok = await w.activeDevice.propose(w.a.group!, { type: 'remove', leafIndex: bob.group!.ownLeafIndex });
    const atCarol = await carol.group!.process(ok);
    expect(atCarol.kind === 'proposal' && name(atCarol.device!.identity)).toBe(name(laptopOnly[0]!.identity));
  });
});

describe('Paired MLS standard mode: optional or mandatory', () => {
  it('every client of this library advertises the device-signature capability; a group can require it, which keeps a ts-mls member out', async () => {
    const alice = await newMember('alice');
    const bob = await newMember('bob');
    const ts = await TsActor.create('ts-member');
    const group: Group = await alice.client.createGroup(alice.identity, {
      extensions: { requiredCapabilities: { extensions: [DEVICE_SIGNATURES_CAPABILITY] } },
    });
    const tsKeyPackage = await ts.keyPackage();
    const err = await mlsError(() => group.commit({ add: [tsKeyPackage] }));
    expect(err.code).not.toBe('WASM_POISONED');
    // A paired-mls KeyPackage lists the capability, so bob gets in.
    const { welcome } = await group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
    await group.mergePendingCommit();
    const bobGroup = await bob.client.joinFromWelcome(welcome!);
    expect(bobGroup.members()).toHaveLength(2);
    // Without the requirement the same ts-mls KeyPackage is welcome.
    const open = await alice.client.createGroup(alice.identity);
    const added = await open.commit({ add: [tsKeyPackage] });
    expect(added.welcome).toBeDefined();
  });
});

describe('Paired MLS standard mode: malformed input', () => {
  it('garbage AAD, device lists and core arguments give typed errors or nothing, never a broken instance', async () => {
    const w = await paired();
    const bob = w.others[0]!;
    const group = bob.group!;
    let seed = 12345;
    const random = (n: number) => Uint8Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff);
    for (let i = 0; i < 200; i++) {
      const bytes = random(i % 70);
      const items = decodeSafeAad(bytes);
      if (items) expect(encodeSafeAad(items)).toBeInstanceOf(Uint8Array);
      expect(() => decodePairedDevices(bytes)).not.toThrow(TypeError);
    }
    for (const call of [
      () => group.removePendingProposal(random(32)),
      () => group.client.read((core) => core.pendingCommitDigest(group.id)),
      () => group.client.read((core) => core.leafAppData(group.id, 9999, 1)),
      () => group.client.read((core) => core.leafAppData(random(8), 0, 1)),
    ]) {
      const err = await mlsError(async () => call());
      expect(err.code).not.toBe('WASM_POISONED');
    }
    expect(group.leafAppData(group.ownLeafIndex, 0xf1b1)).toBeUndefined();
    // Still fine afterwards.
    const seen = commitOf(await pairedUpdate(w));
    expect(seen.device).toBeDefined();
  });
});
