/**
 * docs/ENGINE.md R3: the core's repetition tests of the random source
 * (in the spirit of NIST SP 800-90B §4.4). Before R3 a source that
 * returned nothing was refused (review 64), but one that filled every
 * byte with one non-zero value, or wrote the same 32 bytes on every
 * call, seeded every client alike: one signing key for all (the residual
 * test/review64b.test.ts recorded). Now a seed draw whose bytes are all
 * equal, or equal to the instance's previous seed draw (kept as a
 * SHA-256 digest only), is refused with the typed error of a source that
 * wrote nothing, and so is a path Encap's all-equal ephemeral secret;
 * the instance stays usable (no `WASM_POISONED`). Since review 66b an
 * instance's first seed is preceded by a start-up sample from the same
 * source (its digest the "previous seed"), so a source returning the same
 * bytes on every call is refused at the first client of a fresh instance,
 * and an Encap secret equal to the one drawn before it is refused too. On the browsers' path
 * (test/browsers-path.ts), the source replaced as test/random-source.ts
 * does.
 */
import { describe, expect, it } from 'vitest';
import { loadOnBrowsersPath } from './browsers-path.js';
import { NO_RANDOMNESS, SEAL_FAILED, codeOf, honestUpdate, pairWithBob, random, useRandomSource } from './random-source.js';

useRandomSource();

describe('a broken random source is refused, and the same client and instance work once it is honest again (R3)', () => {
  it('every byte 0x41: a new client is refused (INTERNAL, the no-randomness message), and so is a self-update (its Encap); then the same client commits, and the instance opens clients', async () => {
    const { lib } = await loadOnBrowsersPath();
    const alice = await lib.MlsClient.open();
    const { group, bobs } = await pairWithBob(lib, alice);
    random.mode = 'constant';
    expect(await codeOf(() => lib.MlsClient.open())).toBe(NO_RANDOMNESS);
    expect(await codeOf(() => group.selfUpdate())).toBe(SEAL_FAILED);
    expect(await codeOf(() => lib.MlsClient.open())).toBe(NO_RANDOMNESS);
    random.mode = 'real';
    expect(lib.coreInfo().ciphersuites).toContain(1);
    await honestUpdate(group, bobs);
    const [carol, dave] = [await lib.MlsClient.open(), await lib.MlsClient.open()];
    const keys = [carol, dave].map(async (client, i) => Buffer.from(client.exportSignatureKeyPair(await client.createIdentity(`c${i}`, 1))).toString('hex'));
    expect(new Set(await Promise.all(keys)).size).toBe(2);
  });

  it('the same 32 bytes on every call: the first client opened cannot be known to repeat, the next are refused (INTERNAL, the no-randomness message); then the instance opens a client with another key, and the first client and the group go on', async () => {
    const { lib } = await loadOnBrowsersPath();
    const alice = await lib.MlsClient.open();
    const { group, bobs } = await pairWithBob(lib, alice);
    random.mode = 'repeat';
    const first = await lib.MlsClient.open();
    expect(await codeOf(() => lib.MlsClient.open())).toBe(NO_RANDOMNESS);
    expect(await codeOf(() => lib.MlsClient.open())).toBe(NO_RANDOMNESS);
    random.mode = 'real';
    const second = await lib.MlsClient.open();
    const [firstId, secondId] = [await first.createIdentity('first', 1), await second.createIdentity('second', 1)];
    expect(Buffer.from(firstId.signaturePublicKey).equals(Buffer.from(secondId.signaturePublicKey))).toBe(false);
    await honestUpdate(group, bobs);
    // The first client works: it joins the group and follows a commit.
    const added = await group.commit({ add: [await first.createKeyPackage(firstId)] });
    await group.mergePendingCommit();
    const seen = await bobs.process(added.commit);
    if (seen.kind === 'commit') await seen.staged.merge();
    const firsts = await first.joinFromWelcome(added.welcome!);
    await honestUpdate(group, firsts);
    expect(firsts.epochAuthenticator()).toEqual(group.epochAuthenticator());
  });

  it('one client per fresh instance under the same 32 bytes on every call (review 66b): refused at open with the exact INTERNAL no-randomness error, one extra 32-byte draw (the start-up sample) and only at the instance’s first seed; a failed start-up is retried; once honest the same instance opens clients with distinct keys that commit', async () => {
    const keys: string[] = [];
    for (let i = 0; i < 2; i++) {
      const { lib } = await loadOnBrowsersPath();
      // A start-up draw that fails: the typed refusal, and not started.
      random.mode = 'throw';
      random.drawn = [];
      expect(await codeOf(() => lib.MlsClient.open())).toBe(NO_RANDOMNESS);
      expect(random.drawn).toEqual([32]);
      // Retried at the next seed: the sample passes (not all one value),
      // and the seed, the same bytes, is refused.
      random.mode = 'repeat';
      random.drawn = [];
      expect(await codeOf(() => lib.MlsClient.open())).toBe(NO_RANDOMNESS);
      expect(random.drawn).toEqual([32, 32]);
      // Started: no start-up draw again, and an honest source is accepted.
      random.mode = 'real';
      random.drawn = [];
      const alice = await lib.MlsClient.open();
      expect(random.drawn).toEqual([32]);
      random.drawn = [];
      const carol = await lib.MlsClient.open();
      expect(random.drawn).toEqual([32]);
      random.drawn = undefined;
      keys.push(Buffer.from(alice.exportSignatureKeyPair(await alice.createIdentity('alice', 1))).toString('hex'));
      keys.push(Buffer.from(carol.exportSignatureKeyPair(await carol.createIdentity('carol', 1))).toString('hex'));
      const { group, bobs } = await pairWithBob(lib, alice);
      await honestUpdate(group, bobs);
    }
    expect(new Set(keys).size).toBe(4);
  });

  it('path Encap secrets that repeat (review 66b): a self-update whose Encaps draw the same 32 bytes is refused with the exact seal error, and again; the group then commits once honest and the member follows', async () => {
    const { lib } = await loadOnBrowsersPath();
    const alice = await lib.MlsClient.open();
    const { group, bobs } = await pairWithBob(lib, alice);
    const carol = await lib.MlsClient.open();
    const added = await group.commit({ add: [await carol.createKeyPackage(await carol.createIdentity('carol', 1))] });
    await group.mergePendingCommit();
    const seen = await bobs.process(added.commit);
    if (seen.kind === 'commit') await seen.staged.merge();
    const carols = await carol.joinFromWelcome(added.welcome!);
    random.mode = 'repeat';
    expect(await codeOf(() => group.selfUpdate())).toBe(SEAL_FAILED);
    expect(await codeOf(() => group.selfUpdate())).toBe(SEAL_FAILED);
    random.mode = 'real';
    const commit = await honestUpdate(group, bobs);
    const processed = await carols.process(commit);
    expect(processed.kind).toBe('commit');
    if (processed.kind === 'commit') await processed.staged.merge();
    expect(carols.epochAuthenticator()).toEqual(group.epochAuthenticator());
  });
});
