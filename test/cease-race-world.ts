/**
 * The world of the CeasePair-racing-a-paired-update tests (docs/PROTOCOL.md
 * §4.9, "A CeasePair racing a paired update"): alice's laptop (active) and
 * phone (passive) on a preinstalled seed, a group with bob enrolled, and the
 * group's DS played by bob. Shared by test/paired-cease-update-race,
 * test/review64d and test/review64e.
 */
import { expect } from 'vitest';
import type { PairedDevice, PairingMode, WebCryptoSeedVault } from 'paired-mls/paired';
import { WebCryptoSeedVault as Vault, generateSeed } from 'paired-mls/paired';
import { type Member, deliverCommit, newMember } from './helpers.js';
import { applyShareRand, device, enrolPaired, invited, type InGroup } from './paired-helpers.js';

export type Route = 'rekey' | 'rejoin';

/** The refusal of a pairing message once the pairing has ended. */
export const ENDED = ['PAIRING_REJECTED', 'unexpected', 'the pairing has ended (unexpected)'] as const;

/** The group record of an earlier version of the race's fix (each group's whole state kept, removed for forward secrecy): never written. */
export const RACE_GROUP = 'paired-mls/cease-race-group';

export interface CeaseRaceWorld {
  a: InGroup;
  p: Member;
  bob: InGroup;
  laptop: PairedDevice;
  phone: PairedDevice;
  phoneVault: WebCryptoSeedVault;
}

/** alice's laptop (active) and phone (passive) on a preinstalled seed, a group with bob enrolled (`maxPastEpochs` for every member of it). */
export async function ceaseRaceWorld(mode: PairingMode, maxPastEpochs = 0): Promise<CeaseRaceWorld> {
  const seed = generateSeed();
  const [va, vp] = await Promise.all([0, 1].map(() => Vault.import(seed.slice())));
  seed.fill(0);
  const a = await device('alice');
  const p = await device('alice-phone');
  const bob = await newMember('bob');
  a.group = await a.client.createGroup(a.identity, { maxPastEpochs });
  const { welcome } = await a.group.commit({ add: [await bob.client.createKeyPackage(bob.identity)] });
  await a.group.mergePendingCommit();
  bob.group = await bob.client.joinFromWelcome(welcome!, { maxPastEpochs });
  const { active, joiner, shareRand } = await invited(a, p, { mode, vault: va, joinerVault: vp });
  expect(await active.receive((await applyShareRand(joiner, shareRand)).accept)).toEqual({ type: 'paired' });
  await enrolPaired(active, a, [[p, joiner]], [bob]);
  return { a: a as InGroup, p, bob: bob as InGroup, laptop: active, phone: joiner, phoneVault: vp! };
}

/** The DS of the group, played by bob: a commit is taken when bob can merge it (of the group's current epoch), else refused with bob's error. */
export function dsOf(bob: Member): (c: { commit: Uint8Array }) => Promise<void> {
  return async ({ commit }) => deliverCommit(commit, [bob]);
}
