/**
 * Review of "no proposal of the anchor leaf by reference" (5750555): attack
 * paths around the paired commits that the change's own test does not
 * take — a hand-over (the formerly passive device commits), a re-enrolment,
 * and proposals meant to make the healing commit fail (denial of heal).
 */
import { describe, expect, it } from 'vitest';
import { utf8, type Group } from 'paired-mls';
import { PairedDevice } from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError, newMember, type Member } from './helpers.js';
import { asAnchor, deliverProposal, pairedWorld, read, stagedBy as staged, stolen } from './paired-helpers.js';

const names = (g: Group) => g.members().map((m) => utf8(m.credential.identity)).sort();

describe.each(['hidden', 'standard'] as const)('review 5750555 (%s mode): proposals sent as the anchor by the copy', (mode) => {
  it('after a hand-over the new active device (the one whose state was copied) leaves them out too', async () => {
    const w = await pairedWorld(['bob', 'carol'], mode);
    const [bob, carol] = w.others as [Member, Member];
    const copy = await stolen(w.p);
    const eve = await newMember('eve');
    const thiefGroup = copy.group(w.a.group!.id);
    const thiefAdd = await asAnchor(w, mode, thiefGroup, { type: 'add', keyPackage: await eve.client.createKeyPackage(eve.identity) });
    const thiefRemove = await asAnchor(w, mode, thiefGroup, { type: 'remove', leafIndex: carol.group!.ownLeafIndex });
    for (const p of [thiefAdd, thiefRemove]) await deliverProposal(p, [w.a, w.p, bob, carol]);

    // The laptop hands over: the phone (whose state the thief holds) is active now.
    const handOver = await w.activeDevice.handOver();
    expect(await w.passiveDevice.receive(handOver)).toEqual({ type: 'roleChanged', role: 'active' });
    const update = await w.passiveDevice.update(w.p.group!);
    await w.p.group!.mergePendingCommit();
    expect(await staged(bob, update.commit)).toEqual({ adds: [], removes: [], proposals: 0 });
    await deliverCommit(update.commit, [carol]);
    expect((await w.activeDevice.applyNotify(update)).kind).toBe('update');
    expectInSync([w.a, w.p, bob, carol]);
    expect(names(bob.group!)).toEqual(['alice', 'bob', 'carol']);
    const m = await carol.group!.encrypt('healed');
    for (const reader of [w.a, w.p]) expect(await read(reader, m)).toBe('healed');
    expect((await mlsError(() => thiefGroup.process(m))).code).toBe('WRONG_EPOCH');
  });

  it('reenroll: the enrolment commit of a re-enrolled device leaves them out', async () => {
    const w = await pairedWorld(['bob'], mode);
    const [bob] = w.others as [Member];
    const copy = await stolen(w.p);
    const eve = await newMember('eve');
    const thiefAdd = await asAnchor(w, mode, copy.group(w.a.group!.id), { type: 'add', keyPackage: await eve.client.createKeyPackage(eve.identity) });
    await deliverProposal(thiefAdd, [w.a, bob]);
    const staleLeaf = w.passiveDevice.pairingGroup.ownLeafIndex;
    const vault = w.passiveDevice.vault!;
    await PairedDevice.reset(w.p.client);
    const back = await w.activeDevice.reenroll(staleLeaf, await PairedDevice.createKeyPackage(w.p.client, w.p.identity));
    expect(back.groups).toHaveLength(1);
    expect(await staged(bob, back.groups[0]!.commit)).toEqual({ adds: [], removes: [], proposals: 0 });
    const passive = await PairedDevice.join(w.p.client, back.initPairing, { vault });
    expect((await passive.receive(back.shareRand)).type).toBe('shareRandApplied');
    expect((await passive.applyNotify(back.groups[0]!)).kind).toBe('enroll');
    w.p.group = w.p.client.group(w.a.group!.id);
    expectInSync([w.a, w.p, bob]);
    expect(names(bob.group!)).toEqual(['alice', 'bob']);
  });

  it('denial of heal: proposals meant to make the paired update fail (GroupContextExtensions, an unknown PSK, an unsupported custom type, an Update) are left out; the update heals', async () => {
    const w = await pairedWorld(['bob'], mode);
    const [bob] = w.others as [Member];
    const copy = await stolen(w.p);
    const thiefGroup = copy.group(w.a.group!.id);
    const attempts: Parameters<Group['propose']>[0][] = [
      { type: 'externalPsk', pskId: new Uint8Array([7, 7, 7]) },
      { type: 'custom', proposalType: 0xf0f0, payload: new Uint8Array([1]) },
      { type: 'groupContextExtensions', extensions: { requiredCapabilities: { proposals: [0xf0f1] } } },
      { type: 'update' },
    ];
    const delivered: string[] = [];
    for (const request of attempts) {
      const made = await asAnchor(w, mode, thiefGroup, request).catch((e: Error) => e);
      if (made instanceof Error) continue; // not even sendable
      // Each member that takes it (bob, and the active device) queues it.
      let taken = true;
      for (const m of [w.a, bob]) {
        const r = await m.group!.process(made).catch(() => undefined);
        if (r?.kind !== 'proposal') taken = false;
      }
      if (taken) delivered.push(request.type);
    }
    // What the library lets the copy make and every member queues (standard
    // mode: a PSK proposal's nonce and an Update's key are fresh, so the
    // library's two-build device signature refuses them; a hand-made one would pass).
    expect(delivered).toEqual(mode === 'hidden' ? ['externalPsk', 'custom', 'update'] : ['custom']);
    const update = await w.activeDevice.update(w.a.group!);
    await w.a.group!.mergePendingCommit();
    expect(await staged(bob, update.commit)).toEqual({ adds: [], removes: [], proposals: 0 });
    expect((await w.passiveDevice.applyNotify(update)).kind).toBe('update');
    expectInSync([w.a, w.p, bob]);
    const m = await bob.group!.encrypt('healed');
    expect((await mlsError(() => thiefGroup.process(m))).code).toBe('WRONG_EPOCH');
  });
});

describe.each(['hidden', 'standard'] as const)('review 5750555 (%s mode): a handshake generation burnt by the copy (pre-existing, not this change)', (mode) => {
  // Still a limit (PROTOCOL §4.0 (a)): delivered out of the DS's order. In its order the active device reads the
  // proposal first and posts with readTo (§4.5; test/paired-burnt-generation).
  it("GAP: a proposal the copy sends as the anchor, reaching bob before the paired update and the active device after it, leaves bob unable to process the heal (MESSAGE_REPLAYED) or send: he must rejoin", async () => {
    const w = await pairedWorld(['bob', 'carol'], mode);
    const [bob, carol] = w.others as [Member, Member];
    const copy = await stolen(w.p);
    const thiefGroup = copy.group(w.a.group!.id);
    // Any proposal will do; it is left out of the update (this change), but it
    // takes the anchor's next handshake generation at bob.
    const burn = await asAnchor(w, mode, thiefGroup, { type: 'custom', proposalType: 0xf0f0, payload: new Uint8Array([1]) });
    expect((await bob.group!.process(burn)).kind).toBe('proposal');
    // The active device commits before the copy's proposal reaches it.
    const update = await w.activeDevice.update(w.a.group!);
    await w.a.group!.mergePendingCommit();
    expect((await w.passiveDevice.applyNotify(update)).kind).toBe('update');
    await deliverCommit(update.commit, [carol]);
    expectInSync([w.a, w.p, carol]);
    const err = await mlsError(() => bob.group!.process(update.commit));
    expect({ code: err.code, message: err.message }).toEqual({
      code: 'MESSAGE_REPLAYED',
      message: 'processing message: The requested secret was deleted to preserve forward secrecy.',
    });
    // bob is left in the old epoch with the copy's proposal pending: he can
    // send nothing there (RFC 9420 §12.4.2: commit first), and a commit of
    // his for that epoch loses to the update at any DS; he has to rejoin.
    const sendErr = await mlsError(() => bob.group!.encrypt('after the heal'));
    expect({ code: sendErr.code, message: sendErr.message }).toEqual({ code: 'INVALID_STATE', message: "encrypting: Can't create message because a pending proposal exists." });
  });
});
