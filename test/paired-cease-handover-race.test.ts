/**
 * A passive device's CeasePair racing the active device's hand-over
 * (docs/PROTOCOL.md §4.9, "A CeasePair behind on hand-overs"): the phone ends
 * the pairing in the pairing epoch in which the laptop handed it the active
 * role, before the RoleChange reached it. The laptop's counter has moved
 * with its hand-over, the phone's CeasePair carries the one before. It used
 * to be refused (`replay`), and its removal step after it (`no-proof`): the
 * laptop stayed in the pairing, passive, waiting for an active device that
 * had ended it. Now it is taken (any counter of the epoch up to the
 * receiver's, test/paired-cease-missed-handovers); the thief of §4.0 (the
 * phone's stored state and traffic, not its vault) still gets every
 * CeasePair it can make and every replayed RoleChange refused.
 */
import { describe, expect, it } from 'vitest';
import { PairedDevice, WebCryptoSeedVault, encodePairingMessage, generateSeed, pairingProofTbs, provenContent, type CeasePairResult, type PairingMode, type ProvenMessage, type SeedVault } from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError } from './helpers.js';
import { deliverPaired, pairedWorld, read, refused, stolen, updateFollowed, type PairedWorld } from './paired-helpers.js';

type Route = 'rekey' | 'rejoin';

/** A paired world after one paired update (a hand-over needs the partner to hold an anchor key, §4.12). */
async function world(mode: PairingMode): Promise<PairedWorld> {
  const w = await pairedWorld(['bob'], mode);
  await updateFollowed(w.activeDevice, w.a, w.passiveDevice, w.others);
  return w;
}

/** `body` with the proof the vault `vault` makes for it as sent by the phone in the current pairing epoch. */
async function provenByPhone(w: PairedWorld, vault: SeedVault, body: ProvenMessage): Promise<Uint8Array> {
  const pairing = w.passiveDevice.pairingGroup;
  const proof = await vault.derive('proof', pairingProofTbs(pairing.id, BigInt(pairing.epoch), pairing.ownLeafIndex, provenContent(body)), 32);
  return encodePairingMessage({ ...body, proof });
}

/** The phone, having ended the pairing, refuses the RoleChange that raced it, and stays as it was. */
async function phoneRefusesRoleChange(w: PairedWorld, route: Route, roleChange: Uint8Array): Promise<void> {
  const before = { ceased: w.passiveDevice.ceased, role: w.passiveDevice.role, counter: w.passiveDevice.counter };
  const err = await mlsError(() => w.passiveDevice.receive(roleChange));
  // Route rekey moved its pairing group past the RoleChange's epoch; route rejoin deleted it.
  const expected = route === 'rekey'
    ? { code: 'WRONG_EPOCH', message: 'message from an epoch whose secrets this member no longer has' }
    : { code: 'UNKNOWN_GROUP', message: 'this client has no such group' };
  expect({ code: err.code, message: err.message }).toEqual(expected);
  expect({ ceased: w.passiveDevice.ceased, role: w.passiveDevice.role, counter: w.passiveDevice.counter }).toEqual(before);
}

/** The laptop takes the phone's CeasePair (and route rekey's removal step): the pairing has ended there too. */
async function laptopTakesCease(w: PairedWorld, route: Route, cease: CeasePairResult): Promise<void> {
  expect(await w.activeDevice.receive(cease.pairing[0]!)).toEqual({ type: 'pairingCeased', route });
  if (route === 'rekey') {
    // The step is taken from the CeasePair's sender (ceaseFrom); it removes the laptop.
    expect((await w.activeDevice.receive(cease.pairing[1]!)).type).toBe('pairingGroupChanged');
    expect(w.activeDevice.pairingGroup.state().active).toBe(false);
  }
  expect(w.activeDevice.ceased).toBe(true);
}

/**
 * After the cease the group goes on: the phone's group commits reach bob
 * (and, route rejoin, the laptop, which the removal of the anchor leaf
 * takes out); the laptop joins again with its own key (§4.9) and all three
 * commit and read each other.
 */
async function groupGoesOn(w: PairedWorld, route: Route, cease: CeasePairResult): Promise<void> {
  const bob = w.others[0]!;
  const groupId = w.a.group!.id;
  for (const g of cease.groups) {
    expect(g.ceased).toBe(true);
    for (const c of g.commits) await deliverCommit(c, route === 'rekey' ? w.others : [w.a, ...w.others]);
  }
  w.p.group = w.p.client.group(groupId);
  expectInSync([w.p, bob]);
  await w.a.client.deleteGroup(groupId);
  const rejoin = await w.a.client.joinExternal(await w.p.group.exportGroupInfo(), w.a.identity);
  if (rejoin.group.state().pendingCommit) await rejoin.group.mergePendingCommit();
  await deliverCommit(rejoin.commit, [w.p, bob]);
  w.a.group = rejoin.group;
  const { commit } = await bob.group!.selfUpdate();
  await bob.group!.mergePendingCommit();
  await deliverCommit(commit, [w.a, w.p]);
  expectInSync([w.a, w.p, bob]);
  const hello = await bob.group!.encrypt('after the cease');
  for (const m of [w.a, w.p]) expect(await read(m, hello)).toBe('after the cease');
  const back = await w.a.group.encrypt('the laptop is back');
  for (const m of [w.p, bob]) expect(await read(m, back)).toBe('the laptop is back');
}

describe.each(['hidden', 'standard'] as const)('Paired MLS (%s mode): a CeasePair racing a hand-over', (mode) => {
  for (const route of ['rekey', 'rejoin'] as const) {
    for (const order of ['CeasePair first', 'RoleChange first'] as const) {
      it(`route ${route}, ${order}: the laptop takes the phone's CeasePair sent before the RoleChange reached it; both have ended the pairing and the group goes on`, async () => {
        const w = await world(mode);
        const counter = w.activeDevice.counter;
        const pairingEpoch = w.activeDevice.pairingGroup.epoch;
        const roleChange = await w.activeDevice.handOver();
        // The phone, not having the RoleChange yet, ends the pairing as the passive device it still is.
        const cease = await w.passiveDevice.ceasePair(route);
        expect({ laptop: w.activeDevice.counter, phone: w.passiveDevice.counter }).toEqual({ laptop: counter + 1n, phone: route === 'rekey' ? counter + 1n : counter });
        expect(w.activeDevice.pairingGroup.epoch).toBe(pairingEpoch); // the CeasePair is of the hand-over's pairing epoch
        if (order === 'RoleChange first') await phoneRefusesRoleChange(w, route, roleChange);
        await laptopTakesCease(w, route, cease);
        if (order === 'CeasePair first') await phoneRefusesRoleChange(w, route, roleChange);
        // The laptop keeps the role it handed over: passive, as a device whose partner ended the pairing.
        expect({ ceased: w.activeDevice.ceased, role: w.activeDevice.role }).toEqual({ ceased: true, role: 'passive' });
        await groupGoesOn(w, route, cease);
      });
    }
  }
});

describe.each(['hidden', 'standard'] as const)('Paired MLS (%s mode): the thief in the window of a hand-over', (mode) => {
  /**
   * The laptop hands the role to the phone, the phone hands it back, and the
   * laptop hands it over again (`inFlight`, not delivered yet): all in one
   * pairing epoch. The laptop now takes a CeasePair of the phone for any
   * counter of the epoch up to its own. The thief copies the phone's state now, and holds
   * the plaintext of the phone's hand-back from past traffic.
   */
  async function window(w: PairedWorld) {
    const k = w.activeDevice.counter;
    const pairingEpoch = w.activeDevice.pairingGroup.epoch;
    expect(await w.passiveDevice.receive(await w.activeDevice.handOver())).toEqual({ type: 'roleChanged', role: 'active' });
    const laptopBefore = await stolen(w.a); // reads the hand-back as past traffic
    const handBack = await w.passiveDevice.handOver();
    expect(await w.activeDevice.receive(handBack)).toEqual({ type: 'roleChanged', role: 'active' });
    const inFlight = await w.activeDevice.handOver();
    expect(w.activeDevice.pairingGroup.epoch).toBe(pairingEpoch);
    expect({ laptop: w.activeDevice.counter, phone: w.passiveDevice.counter }).toEqual({ laptop: k + 3n, phone: k + 2n });
    const seen = await laptopBefore.group(w.activeDevice.pairingGroup.id).process(handBack);
    if (seen.kind !== 'application') throw new Error(`expected the hand-back, got ${seen.kind}`);
    const thief = PairedDevice.open(await stolen(w.p), undefined).pairingGroup;
    return { k, inFlight, handBackPlaintext: seen.data.slice(), thief };
  }

  /** The thief's replays and forgeries at the laptop, each refused exactly; the laptop stays as it was. */
  async function thiefRefused(w: PairedWorld, win: Awaited<ReturnType<typeof window>>): Promise<void> {
    const { k, thief } = win;
    const send = async (body: Uint8Array) => w.activeDevice.receive(await thief.encrypt(body));
    // The phone's hand-back, replayed: the phone is the laptop's active leaf again, but its counter is long past.
    await refused(() => send(win.handBackPlaintext), 'PAIRING_REJECTED', 'replay', `roleChange for counter ${k + 1n}, already past (${k + 3n}) (replay)`);
    // No proven CeasePair of this epoch is in past traffic: the phone makes one only when it ends
    // the pairing (then any counter up to the laptop's is taken, §4.9). Without the vault, for every
    // counter of the epoch: no proof. With the vault's proof, one past the laptop's counter: stale.
    const guessed = await WebCryptoSeedVault.import(generateSeed());
    for (const counter of [k, k + 1n, k + 2n, k + 3n]) {
      const forged = await provenByPhone(w, guessed, { type: 'ceasePair', route: 'rekey', counter, proof: new Uint8Array(0) });
      await refused(() => send(forged), 'PAIRING_REJECTED', 'no-proof', 'ceasePair without a valid vault proof (no-proof)');
    }
    const ahead = await provenByPhone(w, w.passiveDevice.vault!, { type: 'ceasePair', route: 'rekey', counter: k + 4n, proof: new Uint8Array(0) });
    await refused(() => send(ahead), 'PAIRING_REJECTED', 'stale', `ceasePair for counter ${k + 4n}, expected ${k + 3n} (stale)`);
    expect({ ceased: w.activeDevice.ceased, role: w.activeDevice.role, counter: w.activeDevice.counter }).toEqual({ ceased: false, role: 'passive', counter: k + 3n });
  }

  it('its replayed hand-back is refused (replay), its CeasePairs without the vault have no proof (no-proof), one ahead of the laptop is stale; the hand-over completes and the pairing goes on', async () => {
    const w = await world(mode);
    const win = await window(w);
    await thiefRefused(w, win);
    expect(await w.passiveDevice.receive(win.inFlight)).toEqual({ type: 'roleChanged', role: 'active' });
    expect([w.activeDevice.role, w.passiveDevice.role]).toEqual(['passive', 'active']);
    await deliverPaired(await w.passiveDevice.update(w.p.group!), w.p, w.activeDevice, w.others);
    expectInSync([w.a, w.p, ...w.others]);
    const hello = await w.others[0]!.group!.encrypt('the pairing goes on');
    for (const m of [w.a, w.p]) expect(await read(m, hello)).toBe('the pairing goes on');
  });

  for (const route of ['rekey', 'rejoin'] as const) {
    it(`route ${route}: after the same refusals the phone's real CeasePair racing the hand-over is taken; replayed after, it and the hand-back are refused, and the group goes on`, async () => {
      const w = await world(mode);
      const win = await window(w);
      await thiefRefused(w, win);
      const laptopBefore = await stolen(w.a); // reads the phone's CeasePair as past traffic
      const cease = await w.passiveDevice.ceasePair(route);
      await laptopTakesCease(w, route, cease);
      await phoneRefusesRoleChange(w, route, win.inFlight);
      const seen = await laptopBefore.group(w.activeDevice.pairingGroup.id).process(cease.pairing[0]!);
      if (seen.kind !== 'application') throw new Error(`expected the CeasePair, got ${seen.kind}`);
      for (const plaintext of [seen.data.slice(), win.handBackPlaintext]) {
        const replayed = await win.thief.encrypt(plaintext);
        if (route === 'rejoin') {
          await refused(() => w.activeDevice.receive(replayed), 'PAIRING_REJECTED', 'unexpected', 'the pairing has ended (unexpected)');
        } else {
          // The removal step took the laptop out of the pairing group.
          const err = await mlsError(() => w.activeDevice.receive(replayed));
          expect({ code: err.code, message: err.message }).toEqual({ code: 'NOT_A_MEMBER', message: 'this client is no longer a member of the group' });
        }
      }
      await groupGoesOn(w, route, cease);
    });
  }
});
