/**
 * Audit of PROTOCOL §4 (Paired MLS) against the code: the §4.0 attacker
 * claims that had no test of their own. The attacker holds a copy of the
 * passive device's stored state and its traffic, not its vault.
 */
import { describe, expect, it } from 'vitest';
import { sha256, utf8 } from 'paired-mls';
import { PairedDevice, encodePairingMessage, pairingProofTbs, pairingPskId, provenContent } from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError } from './helpers.js';
import { deliverPaired, pairedWorld, refused, stolen, updateFollowed } from './paired-helpers.js';

describe.each(['hidden', 'standard'] as const)('PROTOCOL §4.0 audit (%s mode): the copy cannot stop the pairing', (mode) => {
  it.each(['rekey', 'rejoin'] as const)(
    "the copy's refused pairing messages, sent at the passive leaf's next generations, leave the real passive device's CeasePair (route %s) taken",
    async (route) => {
      const w = await pairedWorld(['bob'], mode);
      const copy = await stolen(w.p);
      // The copy's pairing group holds the passive leaf's sender ratchet as
      // the real device does: what it sends goes out at the generations the
      // real device's next messages will use.
      const copyPairing = PairedDevice.open(copy, undefined).pairingGroup;
      const counter = w.activeDevice.counter;
      const junk = [
        encodePairingMessage({ type: 'ceasePair', route: 'rekey', counter, proof: new Uint8Array(32) }),
        encodePairingMessage({ type: 'roleChange', newActiveLeaf: copyPairing.ownLeafIndex, counter, proof: new Uint8Array(32) }),
        encodePairingMessage({ type: 'accept', seedConfirmation: new Uint8Array(32) }),
        new Uint8Array([0, 5, 9]),
      ];
      const sent: Uint8Array[] = [];
      for (const body of junk) sent.push(await copyPairing.encrypt(body));
      await refused(() => w.activeDevice.receive(sent[0]!), 'PAIRING_REJECTED', 'no-proof');
      await refused(() => w.activeDevice.receive(sent[1]!), 'PAIRING_REJECTED', 'wrong-sender');
      await refused(() => w.activeDevice.receive(sent[2]!), 'PAIRING_REJECTED', 'unexpected');
      await refused(() => w.activeDevice.receive(sent[3]!), 'PAIRING_REJECTED', 'malformed');
      expect(w.activeDevice.ceased).toBe(false);
      expect(w.activeDevice.role).toBe('active');

      // The real passive device ends the pairing: its CeasePair goes out at
      // the generation of the copy's first message, which the refusal left
      // unused at the active device, so it is taken.
      const cease = await w.passiveDevice.ceasePair(route);
      expect(await w.activeDevice.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route });
      if (route === 'rekey') {
        expect((await w.activeDevice.receive(cease.pairing[1]!)).type).toBe('derivationStep');
      }
      expect(w.activeDevice.ceased).toBe(true);
      for (const g of cease.groups) {
        expect(g.ceased).toBe(true);
        // Route rekey re-keys the anchor leaf the active device shares (it has
        // lost it and rejoins, §4.9); route rejoin's commits are a new leaf's.
        for (const c of g.commits) await deliverCommit(c, route === 'rekey' ? w.others : [w.a, ...w.others]);
      }
      // The group goes on: the phone and bob are in step and read each other.
      expectInSync([w.p, ...w.others]);
      const hello = await w.others[0]!.group!.encrypt('after the cease');
      const seen = await w.p.client.group(w.a.group!.id).process(hello);
      expect(seen.kind === 'application' && utf8(seen.data)).toBe('after the cease');
    },
  );

  it("the copy's refused messages leave the real passive device's hand-back taken, and the pairing heals on", async () => {
    const w = await pairedWorld(['bob'], mode);
    // The passive device becomes active, then the thief copies its state
    // (now the active leaf's) and sends at its next generations.
    await updateFollowed(w.activeDevice, w.a, w.passiveDevice, w.others);
    expect(await w.passiveDevice.receive(await w.activeDevice.handOver())).toEqual({ type: 'roleChanged', role: 'active' });
    const copy = await stolen(w.p);
    const copyPairing = PairedDevice.open(copy, undefined).pairingGroup;
    const forged = await copyPairing.encrypt(
      encodePairingMessage({ type: 'roleChange', newActiveLeaf: w.activeDevice.pairingGroup.ownLeafIndex, counter: w.activeDevice.counter, proof: new Uint8Array(32) }),
    );
    await refused(() => w.activeDevice.receive(forged), 'PAIRING_REJECTED', 'no-proof');
    // The real device's hand-back, at the same generation, is taken.
    expect(await w.activeDevice.receive(await w.passiveDevice.handOver())).toEqual({ type: 'roleChanged', role: 'active' });
    expect([w.activeDevice.role, w.passiveDevice.role]).toEqual(['active', 'passive']);
    await deliverPaired(await w.activeDevice.update(w.a.group!), w.a, w.passiveDevice, w.others);
    expectInSync([w.a, w.p, ...w.others]);
  });
});

describe.each(['hidden', 'standard'] as const)('PROTOCOL §4.0 audit (%s mode): after one paired update the copy cannot commit or propose', (mode) => {
  it('its commit and its proposal as the anchor, from the epoch it is left in, are refused by every member (WRONG_EPOCH); the group goes on', async () => {
    const w = await pairedWorld(['bob', 'carol'], mode);
    const copy = await stolen(w.p);
    await deliverPaired(await w.activeDevice.update(w.a.group!), w.a, w.passiveDevice, w.others);
    expectInSync([w.a, w.p, ...w.others]);
    const group = copy.group(w.a.group!.id);
    expect(group.epoch).toBe(w.a.group!.epoch - 1);
    // The copy's own commit as the anchor (a self-update with the anchor
    // key it holds, standard mode's device key included) …
    const { commit } = await group.commit({ selfUpdate: true });
    await group.clearPendingCommit();
    // … and a proposal removing bob.
    const proposal = await group.propose({ type: 'remove', leafIndex: w.others[0]!.group!.ownLeafIndex });
    for (const m of [w.a, w.p, ...w.others]) {
      expect((await mlsError(() => m.group!.process(commit))).code).toBe('WRONG_EPOCH');
      expect((await mlsError(() => m.group!.process(proposal))).code).toBe('WRONG_EPOCH');
    }
    expect(w.others[0]!.group!.state().pendingProposals).toBe(0);
    // Nothing moved: the next paired update is followed by everyone.
    await deliverPaired(await w.activeDevice.update(w.a.group!), w.a, w.passiveDevice, w.others);
    expectInSync([w.a, w.p, ...w.others]);
  });
});

describe.each(['hidden', 'standard'] as const)('PROTOCOL §4.5/§4.6 audit (%s mode): NOTIFY_REJECTED counter', (mode) => {
  it("a step that injects another counter's PSK, and a proven Notify for another counter, are refused (counter); nothing changes and the next update is followed", async () => {
    const w = await pairedWorld(['bob'], mode);
    const vault = w.activeDevice.vault!;
    const pgid = w.activeDevice.pairingGroup.id;
    const n = w.passiveDevice.counter;
    expect(w.activeDevice.counter).toBe(n);
    // A vault holder (a faulty active device, here a copy of it with the
    // real vault) skips a counter: its step injects PSK(n + 1).
    const skipper = await stolen(w.a);
    const context = new Uint8Array(pgid.length + 8);
    context.set(pgid);
    new DataView(context.buffer).setBigUint64(pgid.length, n + 1n);
    const pskId = pairingPskId(pgid, n + 1n);
    await skipper.psks.store(pskId, await vault.derive('psk', context, 32));
    const { commit: skippedStep } = await skipper.group(pgid).commit({ selfUpdate: true, psks: [pskId] });
    const real = await w.activeDevice.update(w.a.group!);
    await refused(() => w.passiveDevice.applyNotify({ pairing: [skippedStep, real.pairing[1]!], commit: real.commit }), 'NOTIFY_REJECTED', 'counter');
    expect(w.passiveDevice.counter).toBe(n);
    // The real step with a proven Notify for counter n + 1, made with the vault
    // in the step's pairing epoch (a copy of the active device taken now holds it).
    const after = await stolen(w.a);
    const pairing = after.group(pgid);
    const body = { type: 'notify', counter: n + 1n, kind: 'update', groupId: w.a.group!.id, epoch: BigInt(w.a.group!.epoch) + 1n, commitRef: await sha256(real.commit), groupState: new Uint8Array(0), derivationInfo: new Uint8Array(0), proof: new Uint8Array(0) } as const;
    const proof = await vault.derive('proof', pairingProofTbs(pgid, BigInt(pairing.epoch), pairing.ownLeafIndex, provenContent(body)), 32);
    const wrongCounter = await pairing.encrypt(encodePairingMessage({ ...body, proof }));
    await refused(() => w.passiveDevice.applyNotify({ pairing: [real.pairing[0]!, wrongCounter], commit: real.commit }), 'NOTIFY_REJECTED', 'counter');
    expect(w.passiveDevice.counter).toBe(n);
    // Nothing changed: the real update is followed, and the next one.
    await deliverPaired(real, w.a, w.passiveDevice, w.others);
    expectInSync([w.a, w.p, ...w.others]);
    await updateFollowed(w.activeDevice, w.a, w.passiveDevice, w.others);
    expectInSync([w.a, w.p, ...w.others]);
  });
});
