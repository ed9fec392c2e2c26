/**
 * Paired MLS roles and the end of a pairing: handing the active role over
 * while the group keeps talking, several passive devices, and CeasePair
 * from either side by both routes, after which the former partner is
 * locked out (cannot follow, cannot read, cannot act for the leaf).
 */
import { describe, expect, it } from 'vitest';
import { bytesEqual, utf8 } from 'paired-mls';
import { PairedDevice, WebCryptoSeedVault, generateSeed } from 'paired-mls/paired';
import { deliverCommit, expectInSync, newMember, type Member } from './helpers.js';
import { device, deliverPaired, pairedWorld } from './paired-helpers.js';

async function read(m: Member, message: Uint8Array): Promise<string | undefined> {
  const r = await m.group!.process(message).catch(() => undefined);
  return r?.kind === 'application' ? utf8(r.data) : undefined;
}

/** The former partner `gone` is locked out of `group` (as seen by `insider`, another member). */
async function expectLockedOut(gone: Member, insider: Member, oldAnchorKey: Uint8Array, pendingCommits: Uint8Array[]): Promise<void> {
  // It cannot follow the commits that ended the pairing into the new
  // epoch as a member (it fails to process one, or learns it was removed).
  let followed = true;
  for (const c of pendingCommits) {
    const r = await gone.group!.process(c).catch(() => undefined);
    if (r?.kind !== 'commit' || r.staged.selfRemoved) {
      followed = false;
      if (r?.kind === 'commit') await r.staged.merge();
      break;
    }
    await r.staged.merge();
  }
  expect(followed).toBe(false);
  // It cannot read the new epoch.
  const secret = await insider.group!.encrypt('after the pairing ended');
  expect(await read(gone, secret)).toBeUndefined();
  // Nobody in the group uses the old anchor signature key any more.
  expect(insider.group!.members().some((m) => bytesEqual(m.signatureKey, oldAnchorKey))).toBe(false);
  // What it can still sign is for an epoch the group has left.
  const stale = await gone.group!.encrypt('I am alice').catch(() => undefined);
  if (stale) expect(await insider.group!.process(stale).then(() => 'accepted', (e: { code?: string }) => e.code)).not.toBe('accepted');
}

describe('Paired MLS roles', () => {
  it('hands the active role over while group traffic continues, and back', async () => {
    const w = await pairedWorld(['bob', 'carol']);
    const [bob, carol] = w.others as [Member, Member];
    const everyone = [w.a, w.p, bob, carol];
    await deliverPaired(await w.activeDevice.update(w.a.group!), w.a, w.passiveDevice, w.others);

    // A hands over; before the RoleChange arrives, bob commits and carol talks.
    const roleChange = await w.activeDevice.handOver();
    expect(w.activeDevice.role).toBe('passive');
    const { commit } = await bob.group!.selfUpdate();
    await bob.group!.mergePendingCommit();
    await deliverCommit(commit, [w.a, w.p, carol]);
    const hello = await carol.group!.encrypt('during the hand-over');
    for (const m of [w.a, w.p, bob]) expect(await read(m, hello)).toBe('during the hand-over');
    const event = await w.passiveDevice.receive(roleChange);
    expect(event).toEqual({ type: 'roleChanged', role: 'active' });
    expectInSync(everyone);

    // The phone is active now; the laptop follows its paired updates.
    await expect(w.activeDevice.update(w.a.group!)).rejects.toMatchObject({ code: 'PAIRING_STATE' });
    for (let i = 0; i < 2; i++) {
      await deliverPaired(await w.passiveDevice.update(w.p.group!), w.p, w.activeDevice, w.others);
      expectInSync(everyone);
      const m = await bob.group!.encrypt(`round ${i}`);
      for (const d of [w.a, w.p, carol]) expect(await read(d, m)).toBe(`round ${i}`);
    }
    // And back.
    const back = await w.passiveDevice.handOver();
    expect((await w.activeDevice.receive(back)).type).toBe('roleChanged');
    await deliverPaired(await w.activeDevice.update(w.a.group!), w.a, w.passiveDevice, w.others);
    expectInSync(everyone);
  });

  it('one active device with two passive devices (preinstalled seed)', async () => {
    const seed = generateSeed();
    const vaults = await Promise.all([0, 1, 2].map(() => WebCryptoSeedVault.import(seed.slice())));
    seed.fill(0);
    const a = await device('alice');
    const phone = await device('alice-phone');
    const watch = await device('alice-watch');
    const bob = await newMember('bob');
    a.group = await a.client.createGroup(a.identity);
    const { welcome } = await a.group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
    await a.group.mergePendingCommit();
    bob.group = await bob.client.joinFromWelcome(welcome!);

    const active = await PairedDevice.initiate(a.client, a.identity, { vault: vaults[0] });
    const inv1 = await active.invite(await PairedDevice.createKeyPackage(phone.client, phone.identity));
    const phoneDevice = await PairedDevice.join(phone.client, inv1.initPairing, { vault: vaults[1] });
    const s1 = await phoneDevice.receive(inv1.shareRand);
    expect((await active.receive((s1 as { accept: Uint8Array }).accept)).type).toBe('paired');
    const inv2 = await active.invite(await PairedDevice.createKeyPackage(watch.client, watch.identity));
    // The phone sees the watch join the pairing group.
    const added = await phoneDevice.receive(inv2.pairingCommit);
    expect(added.type).toBe('pairingGroupChanged');
    const watchDevice = await PairedDevice.join(watch.client, inv2.initPairing, { vault: vaults[2] });
    const s2 = await watchDevice.receive(inv2.shareRand);
    expect((await active.receive((s2 as { accept: Uint8Array }).accept)).type).toBe('paired');
    await phoneDevice.receive((s2 as { accept: Uint8Array }).accept).catch(() => undefined);

    const enrolled = await active.enroll(a.group);
    await deliverCommit(enrolled.commit, [bob]);
    await phoneDevice.applyNotify(enrolled);
    await watchDevice.applyNotify(enrolled);
    phone.group = phone.client.group(a.group.id);
    watch.group = watch.client.group(a.group.id);
    for (let i = 0; i < 3; i++) {
      const u = await active.update(a.group);
      await a.group.mergePendingCommit();
      await deliverCommit(u.commit, [bob]);
      await phoneDevice.applyNotify(u);
      await watchDevice.applyNotify(u);
      expectInSync([a, phone, watch, bob]);
    }
    const m = await bob.group.encrypt('to all three devices');
    for (const d of [a, phone, watch]) expect(await read(d, m)).toBe('to all three devices');
  });
});

describe.each(['hidden', 'standard'] as const)('Paired MLS CeasePair (%s mode)', (mode) => {
  for (const route of ['rekey', 'rejoin'] as const) {
    for (const side of ['active', 'passive'] as const) {
      it(`${route} route, initiated by the ${side} device: the former partner is locked out`, async () => {
        const w = await pairedWorld(['bob', 'carol'], mode);
        const [bob, carol] = w.others as [Member, Member];
        await deliverPaired(await w.activeDevice.update(w.a.group!), w.a, w.passiveDevice, w.others);
        const [leaver, leaverDevice, partner, partnerDevice] =
          side === 'active' ? [w.a, w.activeDevice, w.p, w.passiveDevice] : [w.p, w.passiveDevice, w.a, w.activeDevice];
        const oldAnchorKey = w.a.identity.signaturePublicKey;

        const result = await leaverDevice.ceasePair(route);
        expect(result.groups).toHaveLength(1);
        const commits = result.groups[0]!.commits;
        for (const c of commits) await deliverCommit(c, [bob, carol]);
        leaver.group = leaver.client.group(w.a.group!.id);
        expectInSync([leaver, bob, carol]);
        expect(bytesEqual(result.identity.identity, w.a.identity.identity)).toBe(true);

        // The partner learns of it.
        expect(await partnerDevice.receive(result.pairing[0]!)).toEqual({ type: 'pairingCeased', route });
        expect(partnerDevice.ceased).toBe(true);
        await expectLockedOut(partner, bob, oldAnchorKey, commits);

        // The leaver goes on as an ordinary member with its new key.
        const m = await carol.group!.encrypt('still here?');
        expect(await read(leaver, m)).toBe('still here?');
        const { commit } = await leaver.group!.selfUpdate();
        await leaver.group!.mergePendingCommit();
        await deliverCommit(commit, [bob, carol]);
        expectInSync([leaver, bob, carol]);
      });
    }
  }
});
