/**
 * Review of the Paired MLS layer against the attacker of docs/PROTOCOL.md
 * §4.0 (a stolen copy of a passive device's storage, no vault) and against
 * malicious members: attacks the other paired-* tests do not cover. Each
 * asserts the exact refusal and that the honest devices keep working.
 */
import { describe, expect, it } from 'vitest';
import { PairedDevice, encodePairingMessage, generateSeed, type PairingMode } from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError } from './helpers.js';
import { applyShareRand, deliverPaired, device, enrolPaired, invited, pairedWorld, read, refused, seededTrio, stolen } from './paired-helpers.js';

describe.each(['hidden', 'standard'] as const)('Paired MLS review (%s mode)', (mode: PairingMode) => {
  it("a stolen passive device's ShareRand to a device joining later is refused (wrong-sender); the real one pairs it", async () => {
    // alice's laptop (active), phone (passive, robbed) and watch (joining later); preinstalled seed.
    const { a, phone, watch, bob, active, phoneDevice, watchVault: vw } = await seededTrio(mode);

    // The thief copies the phone's storage (no vault) …
    const copy = await stolen(phone);
    const copyPairing = PairedDevice.open(copy, undefined).pairingGroup;
    // … alice invites her watch; the copy follows the add (plain MLS, no PSK) …
    const inv2 = await active.invite(await PairedDevice.createKeyPackage(watch.client, watch.identity));
    expect((await phoneDevice.receive(inv2.pairingCommit)).type).toBe('pairingGroupChanged');
    const seen = await copyPairing.process(inv2.pairingCommit);
    if (seen.kind !== 'commit') throw new Error('expected the add');
    await seen.staged.merge();
    // … and races alice's ShareRand with its own: its seed, its anchor, itself as the active device.
    const forged = await copyPairing.encrypt(
      encodePairingMessage({ type: 'shareRand', mode, seed: generateSeed(), anchorIdentity: new TextEncoder().encode('mallory'), ciphersuite: 1, anchorKeyPair: new Uint8Array(0), counter: 0n, proof: new Uint8Array(0) }),
    );
    const watchDevice = await PairedDevice.join(watch.client, inv2.initPairing, { vault: vw });
    await refused(() => watchDevice.receive(forged), 'PAIRING_REJECTED', 'wrong-sender');
    expect(watchDevice.established).toBe(false);

    // The real ShareRand pairs the watch; all three follow the enrolment and updates.
    const s2 = await applyShareRand(watchDevice, inv2.shareRand);
    expect(new TextDecoder().decode(s2.anchor.identity)).toBe('alice');
    expect(await active.receive(s2.accept)).toEqual({ type: 'paired' });
    await enrolPaired(active, a, [[phone, phoneDevice], [watch, watchDevice]], [bob]);
    const u = await active.update(a.group);
    await a.group.mergePendingCommit();
    await deliverCommit(u.commit, [bob]);
    for (const d of [phoneDevice, watchDevice]) expect((await d.applyNotify(u)).kind).toBe('update');
    expectInSync([a, phone, watch, bob]);
    const m = await bob.group.encrypt('to all three');
    for (const d of [a, phone, watch]) expect(await read(d, m)).toBe('to all three');
  });

  it('a ShareRand sent back to the initiating device is refused (unexpected); the pairing completes', async () => {
    const a = await device('alice');
    const p = await device('alice-phone');
    const { active, joiner: passive, shareRand } = await invited(a, p, { mode });
    // A copy of the joiner (taken before it took ShareRand) sends one back before the Accept.
    const copy = await stolen(p);
    const back = await PairedDevice.open(copy, undefined).pairingGroup.encrypt(
      encodePairingMessage({ type: 'shareRand', mode, seed: generateSeed(), anchorIdentity: new TextEncoder().encode('mallory'), ciphersuite: 1, anchorKeyPair: new Uint8Array(0), counter: 0n, proof: new Uint8Array(0) }),
    );
    await refused(() => active.receive(back), 'PAIRING_REJECTED', 'unexpected');
    expect(active.role).toBe('active');
    const applied = await applyShareRand(passive, shareRand);
    expect(await active.receive(applied.accept)).toEqual({ type: 'paired' });
    expect([active.role, passive.role]).toEqual(['active', 'passive']);
  });
});

describe('Paired MLS review: the anchor leaf changes only by paired commits', () => {
  it("propose(update) is refused (INVALID_ARGUMENT): its random leaf key would lock the partner out once a member commits it", async () => {
    const w = await pairedWorld(['bob'], 'hidden');
    const bob = w.others[0]!;
    const err = await mlsError(() => w.activeDevice.propose(w.a.group!, { type: 'update' }));
    expect({ code: err.code, message: err.message }).toEqual({
      code: 'INVALID_ARGUMENT',
      message: 'the anchor leaf changes only by a paired commit (update()), not by an Update proposal',
    });
    expect(w.a.group!.state().pendingProposals).toBe(0);
    // Other proposals still go (a PSK proposal; bob commits it) and both devices follow bob's commit.
    await w.a.client.psks.store(new Uint8Array([9]), new Uint8Array(32).fill(9));
    await w.p.client.psks.store(new Uint8Array([9]), new Uint8Array(32).fill(9));
    await bob.client.psks.store(new Uint8Array([9]), new Uint8Array(32).fill(9));
    const proposal = await w.activeDevice.propose(w.a.group!, { type: 'externalPsk', pskId: new Uint8Array([9]) });
    for (const m of [bob, w.p]) expect((await m.group!.process(proposal)).kind).toBe('proposal');
    const { commit } = await bob.group!.commit({});
    await bob.group!.mergePendingCommit();
    await deliverCommit(commit, [w.a, w.p]);
    await deliverPaired(await w.activeDevice.update(w.a.group!), w.a, w.passiveDevice, w.others);
    expectInSync([w.a, w.p, bob]);
    const m = await bob.group!.encrypt('still both');
    for (const d of [w.a, w.p]) expect(await read(d, m)).toBe('still both');
  });
});

describe('Paired MLS review: malformed or misdirected pairing messages from the copy', () => {
  it('are PAIRING_REJECTED with a reason (malformed, unexpected, no-proof), change nothing, and the pairing goes on', async () => {
    const w = await pairedWorld(['bob'], 'hidden');
    const copyPairing = PairedDevice.open(await stolen(w.p), undefined).pairingGroup;
    const epoch = w.activeDevice.pairingGroup.epoch;
    // Content that is no PairingMessage (a wrong version, then trailing bytes).
    const garbage = await copyPairing.encrypt(new Uint8Array([0, 9, 4, 0]));
    await refused(() => w.activeDevice.receive(garbage), 'PAIRING_REJECTED', 'malformed');
    const accept = encodePairingMessage({ type: 'accept', seedConfirmation: new Uint8Array(32) });
    const trailing = await copyPairing.encrypt(new Uint8Array([...accept, 0]));
    await refused(() => w.activeDevice.receive(trailing), 'PAIRING_REJECTED', 'malformed');
    // An Accept reaching a passive device.
    const fromActive = await w.activeDevice.pairingGroup.encrypt(accept);
    await refused(() => w.passiveDevice.receive(fromActive), 'PAIRING_REJECTED', 'unexpected');
    // In a Notify's place, the same garbage is a Notify refusal with the same reason.
    const u = await w.activeDevice.update(w.a.group!);
    await w.a.group!.mergePendingCommit();
    await deliverCommit(u.commit, w.others);
    expect(w.activeDevice.pairingGroup.epoch).toBe(epoch + 1);
    const late = await w.activeDevice.pairingGroup.encrypt(new Uint8Array([0, 3, 3]));
    await refused(() => w.passiveDevice.applyNotify({ pairing: [u.pairing[0]!, late], commit: u.commit }), 'NOTIFY_REJECTED', 'malformed');
    expect((await w.passiveDevice.applyNotify(u)).kind).toBe('update');
    expectInSync([w.a, w.p, ...w.others]);
  });

  it('an Accept with another seed is PAIRING_REJECTED no-proof; the right one still pairs', async () => {
    const a = await device('alice');
    const p = await device('alice-phone');
    const { active, joiner: passive, shareRand } = await invited(a, p);
    const applied = await applyShareRand(passive, shareRand);
    // A copy of the joiner's state (no vault) answers with a made-up confirmation.
    const copyPairing = PairedDevice.open(await stolen(p), undefined).pairingGroup;
    const made = await copyPairing.encrypt(encodePairingMessage({ type: 'accept', seedConfirmation: new Uint8Array(32).fill(7) }));
    await refused(() => active.receive(made), 'PAIRING_REJECTED', 'no-proof');
    expect(active.established).toBe(false);
    expect(await active.receive(applied.accept)).toEqual({ type: 'paired' });
  });
});

describe('Paired MLS review: a member wins the epoch against a paired update', () => {
  it.each(['hidden', 'standard'] as const)('%s mode: the passive device takes the lost update\'s step alone and follows the next one', async (mode) => {
    const w = await pairedWorld(['bob'], mode);
    const bob = w.others[0]!;
    const lost = await w.activeDevice.update(w.a.group!);
    // bob's commit of the same epoch reaches the DS first; alice's is refused and cleared.
    const { commit: bobs } = await bob.group!.selfUpdate();
    await bob.group!.mergePendingCommit();
    await w.a.group!.clearPendingCommit();
    await deliverCommit(bobs, [w.a, w.p]);
    // The Notify names a commit the group never took: refused, nothing changed.
    await refused(() => w.passiveDevice.applyNotify(lost), 'NOTIFY_REJECTED', 'replay');
    // Its derivation step still moved the pairing on: the partner takes it alone.
    const counter = w.passiveDevice.counter;
    expect(await w.passiveDevice.receive(lost.pairing[0]!)).toEqual({ type: 'derivationStep', counter });
    expect(w.passiveDevice.counter).toBe(w.activeDevice.counter);
    await deliverPaired(await w.activeDevice.update(w.a.group!), w.a, w.passiveDevice, w.others);
    expectInSync([w.a, w.p, bob]);
  });
});
