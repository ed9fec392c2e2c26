/**
 * Review of the ShareRand epoch rule (pairing messages version 5,
 * docs/PROTOCOL.md §4.3, §4.14): a ShareRand's proof covers the pairing
 * epoch's authenticator and it is taken only in the epoch it was sent in.
 * The honest flows it must not refuse (a third device invited while the
 * active device goes on committing, a re-enrolled device that sees an
 * enrolment step before its ShareRand, a restart between the join and the
 * ShareRand, both modes, both kinds of seed), and the attacker's try at
 * denying a joiner its pairing by moving its pairing epoch first: a joiner
 * takes no pairing-group commit before its ShareRand (it knows no active
 * leaf yet), so its epoch stays the one its ShareRand was sent in.
 */
import { describe, expect, it } from 'vitest';
import { MlsClient } from 'paired-mls';
import { PairedDevice, WebCryptoSeedVault, encodePairingMessage, generateSeed, type SeedVault } from 'paired-mls/paired';
import { deliverCommit, expectInSync, mlsError } from './helpers.js';
import { applyShareRand, device, enrolPaired, inviteNext, pairedWorld, read, refused, seededTrio, stolen } from './paired-helpers.js';

const modes = ['hidden', 'standard'] as const;

describe('ShareRand epoch review: a third device invited while the active device goes on', () => {
  it.each(modes)('%s mode: a copy of the phone cannot move the watch past its ShareRand\'s epoch (its commit and its ShareRand are wrong-sender); the active device\'s paired update before the ShareRand is not taken there either (PSK_NOT_FOUND), then taken after it', async (mode) => {
    const { a, phone, watch, bob, active, phoneDevice, watchVault } = await seededTrio(mode);
    await enrolPaired(active, a, [[phone, phoneDevice]], [bob]);
    const { joiner: watchDevice, shareRand } = await inviteNext(active, phoneDevice, watch, watchVault);
    const pairingId = active.pairingGroup.id;
    const sentIn = watchDevice.pairingGroup.epoch;
    expect(sentIn).toBe(active.pairingGroup.epoch);

    // The attacker: a copy of the phone, a member of the pairing group in the watch's epoch.
    const copy = await stolen(phone);
    const copyPairing = copy.group(pairingId);
    const phoneLeaf = copyPairing.ownLeafIndex;
    const { commit: junkCommit } = await copyPairing.commit({ selfUpdate: true });
    await refused(() => watchDevice.receive(junkCommit), 'PAIRING_REJECTED', 'wrong-sender', `a pairing-group commit from leaf ${phoneLeaf}, not the active device (wrong-sender)`);
    await copyPairing.clearPendingCommit();
    const junkShareRand = await copyPairing.encrypt(
      encodePairingMessage({ type: 'shareRand', mode, seed: new Uint8Array(0), anchorIdentity: a.identity.identity, ciphersuite: 1, anchorKeyPair: new Uint8Array(0), counter: 0n, proof: new Uint8Array(32) }),
    );
    await refused(() => watchDevice.receive(junkShareRand), 'PAIRING_REJECTED', 'wrong-sender', `ShareRand from leaf ${phoneLeaf}, not the inviting device (wrong-sender)`);
    expect(watchDevice.pairingGroup.epoch).toBe(sentIn);

    // The active device does not wait for the watch's Accept (the pairing is established): a paired update.
    const stepCounter = active.counter;
    const u = await active.update(a.group!, { send: async () => undefined });
    await deliverCommit(u.commit, [bob]);
    expect((await phoneDevice.applyNotify(u)).kind).toBe('update');
    // Its step reaches the watch first: not taken (the watch's counter is not the pairing's yet), nothing moves.
    await beforeItsShareRand(() => watchDevice.receive(u.pairing[0]!));
    expect(watchDevice.pairingGroup.epoch).toBe(sentIn);
    // The ShareRand, read in the epoch it was sent in, then the step.
    const applied = await applyShareRand(watchDevice, shareRand);
    expect(await watchDevice.receive(u.pairing[0]!)).toEqual({ type: 'derivationStep', counter: stepCounter });
    expect({ epoch: watchDevice.pairingGroup.epoch, counter: watchDevice.counter, role: watchDevice.role }).toEqual({ epoch: active.pairingGroup.epoch, counter: active.counter, role: 'passive' });
    expect(bytesOf(watchDevice.pairingGroup.epochAuthenticator())).toEqual(bytesOf(active.pairingGroup.epochAuthenticator()));
    // Its Accept is of the epoch before the step: the active device, one epoch on, cannot read it (it needs none, established).
    const late = await mlsError(() => active.receive(applied.accept));
    expect({ code: late.code, message: late.message }).toEqual({ code: 'WRONG_EPOCH', message: 'message from an epoch whose secrets this member no longer has' });
    expect(active.established).toBe(true);

    // The pair (and bob) go on: the next paired update is followed by the phone; the watch takes its step.
    const next = await active.update(a.group!, { send: async () => undefined });
    await deliverCommit(next.commit, [bob]);
    expect((await phoneDevice.applyNotify(next)).kind).toBe('update');
    expect((await watchDevice.receive(next.pairing[0]!)).type).toBe('derivationStep');
    expectInSync([a, phone, bob]);
    const m = await bob.group.encrypt('after the watch joined');
    for (const d of [a, phone]) expect(await read(d, m)).toBe('after the watch joined');
  });
});

describe('ShareRand epoch review: re-enrolment', () => {
  it.each(modes)('%s mode: the re-enrolled device gets an enrolment\'s step before its ShareRand: not taken (PSK_NOT_FOUND), its epoch stays; the ShareRand and the enrolments are taken after', async (mode) => {
    const w = await pairedWorld(['bob'], mode);
    const [bob] = w.others as [(typeof w.others)[0]];
    const lost = await w.activeDevice.update(w.a.group!, { send: async () => undefined });
    await deliverCommit(lost.commit, [bob]);
    const staleLeaf = w.passiveDevice.pairingGroup.ownLeafIndex;
    const vault = w.passiveDevice.vault!;
    await PairedDevice.reset(w.p.client);
    const back = await w.activeDevice.reenroll(staleLeaf, await PairedDevice.createKeyPackage(w.p.client, w.p.identity));
    for (const g of back.groups) await deliverCommit(g.commit, [bob]);
    const rejoined = await PairedDevice.join(w.p.client, back.initPairing, { vault });
    const joinedAt = rejoined.pairingGroup.epoch;
    // The enrolments moved the active device's pairing epoch past the ShareRand's (no Accept round in a re-enrolment).
    expect(w.activeDevice.pairingGroup.epoch).toBe(joinedAt + back.groups.length);
    await beforeItsShareRand(() => rejoined.receive(back.groups[0]!.pairing[0]!));
    expect(rejoined.pairingGroup.epoch).toBe(joinedAt);
    expect((await rejoined.receive(back.shareRand)).type).toBe('shareRandApplied');
    for (const g of back.groups) expect((await rejoined.applyNotify(g)).kind).toBe('enroll');
    w.p.group = w.p.client.group(w.a.group!.id);
    expectInSync([w.a, w.p, bob]);
    const next = await w.activeDevice.update(w.a.group!, { send: async () => undefined });
    await deliverCommit(next.commit, [bob]);
    expect((await rejoined.applyNotify(next)).kind).toBe('update');
    const m = await bob.group!.encrypt('re-enrolled');
    expect(await read(w.p, m)).toBe('re-enrolled');
  });
});

describe('ShareRand epoch review: a restart between the join and the ShareRand', () => {
  const cases = modes.flatMap((mode) => [
    { mode, seed: 'shared' as const },
    { mode, seed: 'preinstalled' as const },
  ]);
  it.each(cases)('$mode mode, $seed seed: the joiner reopened from its storage reads the ShareRand of the epoch it joined in, and the pairing establishes', async ({ mode, seed }) => {
    const a = await device('alice');
    const p = await device('alice-phone');
    let vaults: [SeedVault, SeedVault] | [undefined, undefined] = [undefined, undefined];
    if (seed === 'preinstalled') {
      const s = generateSeed();
      vaults = [await WebCryptoSeedVault.import(s.slice()), await WebCryptoSeedVault.import(s.slice())];
      s.fill(0);
    }
    const active = await PairedDevice.initiate(a.client, a.identity, { mode, vault: vaults[0] });
    const { initPairing, shareRand } = await active.invite(await PairedDevice.createKeyPackage(p.client, p.identity));
    await PairedDevice.join(p.client, initPairing, { vault: vaults[1] });
    p.client.free();
    p.client = await MlsClient.open({ storage: p.storage });
    const reopened = PairedDevice.open(p.client, vaults[1]);
    const applied = await applyShareRand(reopened, shareRand);
    expect(await active.receive(applied.accept)).toEqual({ type: 'paired' });
    expect({ established: reopened.established, mode: reopened.mode, epoch: reopened.pairingGroup.epoch }).toEqual({ established: true, mode, epoch: active.pairingGroup.epoch });
  });
});

describe('ShareRand epoch review: what a refused pairing message carries is wiped', () => {
  it('the seed of a ShareRand refused before its import (a copy of the phone sends one to the watch: wrong-sender), and the Accept confirmation the phone decrypts and refuses (passive), leave no copy in memory', async () => {
    const { a, phone, watch, active, phoneDevice, watchVault } = await seededTrio('hidden');
    const { joiner: watchDevice, shareRand } = await inviteNext(active, phoneDevice, watch, watchVault);
    const pairingId = active.pairingGroup.id;
    const copy = (await stolen(phone)).group(pairingId);
    const seed = generateSeed();
    const planted = await copy.encrypt(encodePairingMessage({ type: 'shareRand', mode: 'hidden', seed: seed.slice(), anchorIdentity: a.identity.identity, ciphersuite: 1, anchorKeyPair: new Uint8Array(0), counter: 0n, proof: new Uint8Array(32) }));
    const seen = await copiesMadeBy(() => refused(() => watchDevice.receive(planted), 'PAIRING_REJECTED', 'wrong-sender', `ShareRand from leaf ${copy.ownLeafIndex}, not the inviting device (wrong-sender)`));
    // Before: the decoded seed stayed as received.
    expect(seen.filter((c) => bytesOf(c) === bytesOf(seed))).toEqual([]);
    expect(seen.length).toBeGreaterThan(0);

    // The watch's real Accept reaches the phone too (a member of the pairing group): refused, its confirmation wiped.
    const applied = await applyShareRand(watchDevice, shareRand);
    const confirmation = await watchVault.derive('accept', pairingId, 32);
    const atPhone = await copiesMadeBy(() => refused(() => phoneDevice.receive(applied.accept), 'PAIRING_REJECTED', 'unexpected', 'Accept received by a passive device (unexpected)'));
    expect(atPhone.filter((c) => bytesOf(c) === bytesOf(confirmation))).toEqual([]);
    expect(await active.receive(applied.accept)).toEqual({ type: 'paired' });
  });
});

/**
 * The 32-byte arrays made while `fn` runs (the codec copies each field it
 * decodes with `new Uint8Array`), to look at what was left in them after.
 */
async function copiesMadeBy(fn: () => Promise<unknown>): Promise<Uint8Array[]> {
  const copies: Uint8Array[] = [];
  const original = globalThis.Uint8Array;
  globalThis.Uint8Array = new Proxy(original, {
    construct(target, args, newTarget) {
      const made = Reflect.construct(target, args, newTarget === globalThis.Uint8Array ? target : newTarget) as Uint8Array;
      if (made.length === 32) copies.push(made);
      return made;
    },
  });
  try {
    await fn();
  } finally {
    globalThis.Uint8Array = original;
  }
  return copies;
}

/**
 * A derivation step reaching a joiner before its ShareRand: the joiner's
 * counter is not the pairing's yet, so the PSK the step injects is not the
 * one it offers (with a preinstalled vault it offers PSK(0)), and the
 * commit is not processed; had it been, it is from no active leaf known yet
 * (`wrong-sender`). Either way the joiner's epoch stays.
 */
async function beforeItsShareRand(fn: () => Promise<unknown>): Promise<void> {
  const err = await mlsError(fn);
  expect({ code: err.code, message: err.message }).toEqual({ code: 'PSK_NOT_FOUND', message: 'processing message: The PSK could not be found in the store.' });
}

function bytesOf(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}
