/**
 * A passive device that missed several hand-overs ends the pairing
 * (docs/PROTOCOL.md §4.9, "A CeasePair behind on hand-overs"): laptop,
 * phone and watch share one pairing; the laptop and the phone hand the
 * active role back and forth (two or three times, one pairing epoch) while
 * the watch reads none of it, then the watch ends the pairing. Its
 * CeasePair carries the counter the watch had; the others are two or three
 * ahead. It used to be refused (`replay`, and the removal step
 * `wrong-sender`: test/review61a showed the limit); now any counter of the
 * current pairing epoch up to the receiver's is taken, as sent. The thief
 * of §4.0 (a device's stored state and traffic, not its vault) still gets
 * every CeasePair and RoleChange it could send refused, exactly.
 */
import { describe, expect, it } from 'vitest';
import { PairedDevice, WebCryptoSeedVault, encodePairingMessage, generateSeed, pairingProofTbs, provenContent, type CeasePairResult, type PairingMode, type ProvenMessage, type SeedVault } from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError } from './helpers.js';
import { pairedTrio, read, refused, rejoinOwnKey, stolen } from './paired-helpers.js';

type Route = 'rekey' | 'rejoin';
type Trio = Awaited<ReturnType<typeof pairedTrio>>;

const state = (d: PairedDevice) => ({ ceased: d.ceased, role: d.role, counter: d.counter });

/** `n` hand-overs laptop → phone → laptop …, each taken by its target, none by the watch; returns the counter before them and the RoleChanges. */
async function handOversTheWatchMisses(t: Trio, n: number): Promise<{ k: bigint; roleChanges: Uint8Array[] }> {
  const k = t.laptop.counter;
  const pairingEpoch = t.laptop.pairingGroup.epoch;
  const pair = [t.laptop, t.phoneDevice];
  const roleChanges: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const [from, to] = [pair[i % 2]!, pair[(i + 1) % 2]!];
    const roleChange = await from.handOver(to.pairingGroup.ownLeafIndex);
    expect(await to.receive(roleChange)).toEqual({ type: 'roleChanged', role: 'active' });
    roleChanges.push(roleChange);
  }
  // All of it inside one pairing epoch: only the hand-overs moved the counter.
  expect(t.laptop.pairingGroup.epoch).toBe(pairingEpoch);
  expect([t.laptop.counter, t.phoneDevice.counter, t.watchDevice.counter]).toEqual([k + BigInt(n), k + BigInt(n), k]);
  return { k, roleChanges };
}

/** `body` with the proof `vault` makes for it as sent by the watch's leaf in the current pairing epoch. */
async function provenByWatch(t: Trio, vault: SeedVault, body: ProvenMessage): Promise<Uint8Array> {
  const pairing = t.laptop.pairingGroup;
  const proof = await vault.derive('proof', pairingProofTbs(pairing.id, BigInt(pairing.epoch), t.watchDevice.pairingGroup.ownLeafIndex, provenContent(body)), 32);
  return encodePairingMessage({ ...body, proof });
}

/**
 * After the cease the group goes on: the watch's group commits reach bob
 * (route rejoin: the laptop and the phone too, whom the removal of the
 * anchor leaf takes out); the laptop and the phone join again with their
 * own keys; all four commit and read each other.
 */
async function groupGoesOn(t: Trio, route: Route, cease: CeasePairResult): Promise<void> {
  const groupId = t.a.group!.id;
  for (const g of cease.groups) {
    expect(g.ceased).toBe(true);
    for (const c of g.commits) await deliverCommit(c, route === 'rekey' ? [t.bob] : [t.a, t.phone, t.bob]);
  }
  t.watch.group = t.watch.client.group(groupId);
  expectInSync([t.watch, t.bob]);
  await rejoinOwnKey(t.a, t.watch, [t.watch, t.bob]);
  await rejoinOwnKey(t.phone, t.watch, [t.watch, t.bob, t.a]);
  const { commit } = await t.bob.group!.selfUpdate();
  await t.bob.group!.mergePendingCommit();
  await deliverCommit(commit, [t.a, t.phone, t.watch]);
  expectInSync([t.a, t.phone, t.watch, t.bob]);
  for (const sender of [t.bob, t.a, t.phone, t.watch]) {
    const text = `${sender.name} after the cease`;
    const message = await sender.group!.encrypt(text);
    for (const m of [t.a, t.phone, t.watch, t.bob].filter((x) => x !== sender)) expect(await read(m, message)).toBe(text);
  }
}

describe.each(['hidden', 'standard'] as const)('Paired MLS (%s mode): a CeasePair behind on hand-overs', (mode: PairingMode) => {
  for (const route of ['rekey', 'rejoin'] as const) {
    for (const missed of [2, 3]) {
      it(`route ${route}, ${missed} hand-overs missed: the laptop and the phone take the watch's CeasePair (and its removal step, from the watch's leaf only); the group goes on`, async () => {
        const t = await pairedTrio(mode);
        const { k, roleChanges } = await handOversTheWatchMisses(t, missed);
        const watchLeaf = t.watchDevice.pairingGroup.ownLeafIndex;
        // Copies of the laptop and the phone, to commit a removal of the other from a leaf that is not the watch's.
        const thiefOf = { laptop: PairedDevice.open(await stolen(t.a), undefined).pairingGroup, phone: PairedDevice.open(await stolen(t.phone), undefined).pairingGroup };
        const cease = await t.watchDevice.ceasePair(route);
        expect(cease.pairing.length).toBe(route === 'rekey' ? 2 : 1);
        const roles = [t.laptop.role, t.phoneDevice.role];
        for (const [d, other] of [[t.laptop, thiefOf.phone], [t.phoneDevice, thiefOf.laptop]] as const) {
          expect(await d.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route });
          if (route === 'rejoin') continue;
          // Only the CeasePair's sender may remove: the other leaf's removal (no PSK, no proof) is refused.
          const ownLeaf = d.pairingGroup.ownLeafIndex;
          const removal = (await other.commit({ remove: [ownLeaf] })).commit;
          await other.clearPendingCommit();
          const otherLeaf = other.ownLeafIndex;
          const theirsActive = d.role === 'passive';
          const expected = theirsActive
            ? { reason: 'no-proof', message: 'a pairing-group commit that is neither a derivation step nor a proven add (no-proof)' }
            : { reason: 'wrong-sender', message: `a pairing-group commit from leaf ${otherLeaf}, not the active device (wrong-sender)` };
          await refused(() => d.receive(removal), 'PAIRING_REJECTED', expected.reason, expected.message);
          expect(otherLeaf).not.toBe(watchLeaf);
          expect((await d.receive(cease.pairing[1]!)).type).toBe('pairingGroupChanged');
          expect(d.pairingGroup.state().active).toBe(false);
        }
        // Both ended the pairing in the roles they had, at the counters they had.
        expect([state(t.laptop), state(t.phoneDevice)]).toEqual(roles.map((role) => ({ ceased: true, role, counter: k + BigInt(missed) })));
        // The watch, gone on alone, reads none of the hand-overs it missed.
        const late = await mlsError(() => t.watchDevice.receive(roleChanges[0]!));
        expect(late.code).toBe(route === 'rekey' ? 'WRONG_EPOCH' : 'UNKNOWN_GROUP');
        expect(t.watchDevice.ceased).toBe(true);
        await groupGoesOn(t, route, cease);
      });
    }
  }
});

describe.each(['hidden', 'standard'] as const)('Paired MLS (%s mode): what the allowance does not take', (mode: PairingMode) => {
  it("a CeasePair of a previous pairing epoch: the watch's, raced by the laptop's paired update, is WRONG_EPOCH at both; the laptop and the phone go on", async () => {
    const t = await pairedTrio(mode);
    await handOversTheWatchMisses(t, 2);
    const cease = await t.watchDevice.ceasePair('rekey');
    // The laptop, active again, updates before reading it; the phone follows the step.
    const u = await t.laptop.update(t.a.group!, { send: async () => undefined });
    await deliverCommit(u.commit, [t.bob]);
    expect((await t.phoneDevice.applyNotify(u)).kind).toBe('update');
    const before = [state(t.laptop), state(t.phoneDevice)];
    for (const d of [t.laptop, t.phoneDevice]) {
      const err = await mlsError(() => d.receive(cease.pairing[0]!));
      expect({ code: err.code, message: err.message }).toEqual({ code: 'WRONG_EPOCH', message: 'message from an epoch whose secrets this member no longer has' });
    }
    expect([state(t.laptop), state(t.phoneDevice)]).toEqual(before);
    expect(before.map((s) => s.ceased)).toEqual([false, false]);
    expectInSync([t.a, t.phone, t.bob]);
  });

  it("the watch's stored state without its vault: ceasePair fails (no seed vault); its CeasePairs for every counter of the window are no-proof, one above the receivers' counter stale; nothing changes and the pairing goes on", async () => {
    const t = await pairedTrio(mode);
    const { k } = await handOversTheWatchMisses(t, 2);
    const thief = PairedDevice.open(await stolen(t.watch), undefined);
    await refused(() => thief.ceasePair('rekey'), 'PAIRING_STATE', undefined, 'no seed vault');
    const before = [state(t.laptop), state(t.phoneDevice)];
    const guessed = await WebCryptoSeedVault.import(generateSeed());
    for (const d of [t.laptop, t.phoneDevice]) {
      for (const counter of [k, k + 1n, k + 2n]) {
        const forged = await provenByWatch(t, guessed, { type: 'ceasePair', route: 'rekey', counter, proof: new Uint8Array(0) });
        await refused(async () => d.receive(await thief.pairingGroup.encrypt(forged)), 'PAIRING_REJECTED', 'no-proof', 'ceasePair without a valid vault proof (no-proof)');
      }
      // Above the receiver's counter even with the vault's proof (a CeasePair no device made yet): stale.
      const ahead = await provenByWatch(t, t.watchVault, { type: 'ceasePair', route: 'rekey', counter: k + 3n, proof: new Uint8Array(0) });
      await refused(async () => d.receive(await thief.pairingGroup.encrypt(ahead)), 'PAIRING_REJECTED', 'stale', `ceasePair for counter ${k + 3n}, expected ${k + 2n} (stale)`);
    }
    expect([state(t.laptop), state(t.phoneDevice)]).toEqual(before);
    // The laptop (active again) updates; the phone follows.
    const u = await t.laptop.update(t.a.group!, { send: async () => undefined });
    await deliverCommit(u.commit, [t.bob]);
    expect((await t.phoneDevice.applyNotify(u)).kind).toBe('update');
    expectInSync([t.a, t.phone, t.bob]);
  });

  it('a RoleChange gets no allowance: a hand-over and a hand-back, replayed by copies after they were taken, are replay', async () => {
    const t = await pairedTrio(mode);
    const k = t.laptop.counter;
    const pairingId = t.laptop.pairingGroup.id;
    // Copies from before the RoleChanges were read: they hold their plaintext as past traffic.
    const phoneBefore = await stolen(t.phone);
    const laptopBefore = await stolen(t.a);
    const plaintext = async (client: Awaited<ReturnType<typeof stolen>>, m: Uint8Array) => {
      const seen = await client.group(pairingId).process(m);
      if (seen.kind !== 'application') throw new Error(`expected a RoleChange, got ${seen.kind}`);
      return seen.data.slice();
    };
    const { roleChanges } = await handOversTheWatchMisses(t, 2);
    // The laptop's hand-over (counter k), replayed at the phone, whose active leaf is the laptop again.
    const handOver = await plaintext(phoneBefore, roleChanges[0]!);
    const laptopThief = PairedDevice.open(await stolen(t.a), undefined).pairingGroup;
    await refused(async () => t.phoneDevice.receive(await laptopThief.encrypt(handOver)), 'PAIRING_REJECTED', 'replay', `roleChange for counter ${k}, already past (${k + 2n}) (replay)`);
    // A third hand-over makes the phone the laptop's active leaf: the phone's hand-back (counter k + 1), replayed there.
    expect(await t.phoneDevice.receive(await t.laptop.handOver(t.phoneDevice.pairingGroup.ownLeafIndex))).toEqual({ type: 'roleChanged', role: 'active' });
    const handBack = await plaintext(laptopBefore, roleChanges[1]!);
    const phoneThief = PairedDevice.open(await stolen(t.phone), undefined).pairingGroup;
    const before = [state(t.laptop), state(t.phoneDevice)];
    await refused(async () => t.laptop.receive(await phoneThief.encrypt(handBack)), 'PAIRING_REJECTED', 'replay', `roleChange for counter ${k + 1n}, already past (${k + 3n}) (replay)`);
    expect([state(t.laptop), state(t.phoneDevice)]).toEqual(before);
    expect(before).toEqual([
      { ceased: false, role: 'passive', counter: k + 3n },
      { ceased: false, role: 'active', counter: k + 3n },
    ]);
  });
});
