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
 * the instance stays usable (no `WASM_POISONED`). On the browsers' path
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
});
