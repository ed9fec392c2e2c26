/**
 * Long messages (commits with a path, Welcomes, GroupInfos: at least
 * NATIVE_BULK_MIN = 2048 bytes) have their AES-GCM and Ed25519 done by
 * Node's OpenSSL when native curves are installed; shorter ones stay in
 * wasm (crates/core/src/native_crypto.rs). These tests check the AES-GCM
 * glue against the GCM specification's test case, that a tampered tag is
 * refused, and that groups split across a native and a wasm copy of the
 * package exchange such long messages both ways, refusing a tampered one
 * with the exact error and applying the genuine one after it.
 */
import * as nodeCrypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { nodeNativeCurves } from '../ts/mls/native-curves.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { libraryWith, type Lib } from './curve-backends.js';

const hex = (text: string) => new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const toHex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

describe('native AES-GCM (Node OpenSSL)', () => {
  const curves = nodeNativeCurves(nodeCrypto);
  // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 4 (AES-128, with AAD).
  const key = hex('feffe9928665731c6d6a8f9467308308');
  const nonce = hex('cafebabefacedbaddecaf888');
  const aad = hex('feedfacedeadbeeffeedfacedeadbeefabaddad2');
  const plaintext = hex(`d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
    1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39`);
  const ciphertext = `42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e
    21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091`.replace(/\s+/g, '');
  const tag = '5bc94fbc3221a5db94fae95ae7121a47';

  it('seals to ciphertext || tag and opens it (GCM test case 4)', () => {
    expect(toHex(curves.aesGcmSeal(key, nonce, aad, plaintext))).toBe(ciphertext + tag);
    expect(toHex(curves.aesGcmOpen(key, nonce, aad, hex(ciphertext + tag)))).toBe(toHex(plaintext));
  });

  it('refuses a flipped ciphertext bit, a flipped tag bit, other AAD and a short input', () => {
    const sealed = hex(ciphertext + tag);
    for (const at of [0, sealed.length - 1]) {
      const bad = sealed.slice();
      bad[at] ^= 1;
      expect(() => curves.aesGcmOpen(key, nonce, aad, bad)).toThrow(/unable to authenticate/);
    }
    expect(() => curves.aesGcmOpen(key, nonce, new Uint8Array(0), sealed)).toThrow(/unable to authenticate/);
    expect(() => curves.aesGcmOpen(key, nonce, aad, sealed.subarray(0, 15))).toThrow(RangeError);
    expect(() => curves.aesGcmSeal(key.subarray(0, 15), nonce, aad, plaintext)).toThrow(RangeError);
  });
});

describe('native SHA-256 (Node OpenSSL)', () => {
  const curves = nodeNativeCurves(nodeCrypto);
  it('hashes the FIPS 180-4 "abc" example and a 3 KB input like @noble/hashes', () => {
    expect(toHex(curves.sha256(new TextEncoder().encode('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const long = new Uint8Array(3000).map((_, i) => i * 7);
    expect(toHex(curves.sha256(long))).toBe(toHex(sha256(long)));
    // A view into a larger buffer hashes only its own bytes (wasm passes views of its memory).
    expect(toHex(curves.sha256(long.subarray(1000, 2500)))).toBe(toHex(sha256(long.slice(1000, 2500))));
  });
});

describe('native AES-GCM leaves no plaintext in Buffers of its own (review F4)', () => {
  /** Node's crypto, with every Buffer its ciphers return recorded in `made`. */
  function recording(made: Buffer[]): typeof nodeCrypto {
    const record = <C extends nodeCrypto.Cipher | nodeCrypto.Decipher>(cipher: C): C => {
      const update = cipher.update.bind(cipher) as (data: Uint8Array) => Buffer;
      const final = cipher.final.bind(cipher) as () => Buffer;
      Object.assign(cipher, {
        update: (data: Uint8Array) => (made.push(update(data)), made.at(-1)!),
        final: () => (made.push(final()), made.at(-1)!),
      });
      return cipher;
    };
    return {
      ...nodeCrypto,
      createCipheriv: ((...args: Parameters<typeof nodeCrypto.createCipheriv>) => record(nodeCrypto.createCipheriv(...args))) as typeof nodeCrypto.createCipheriv,
      createDecipheriv: ((...args: Parameters<typeof nodeCrypto.createDecipheriv>) => record(nodeCrypto.createDecipheriv(...args))) as typeof nodeCrypto.createDecipheriv,
    };
  }
  const key = nodeCrypto.randomBytes(16);
  const nonce = nodeCrypto.randomBytes(12);
  const aad = new TextEncoder().encode('aad');
  const plaintext = new Uint8Array(5000).fill(0x61);
  const allZero = (bytes: Uint8Array) => bytes.every((b) => b === 0);

  it('seals and opens into the given output and wipes every Buffer the cipher returned', () => {
    const made: Buffer[] = [];
    const curves = nodeNativeCurves(recording(made));
    const sealed = new Uint8Array(plaintext.length + 16);
    expect(curves.aesGcmSeal(key, nonce, aad, plaintext, sealed)).toBe(sealed);
    expect(toHex(sealed)).toBe(toHex(nodeNativeCurves(nodeCrypto).aesGcmSeal(key, nonce, aad, plaintext)));
    const opened = new Uint8Array(plaintext.length);
    expect(curves.aesGcmOpen(key, nonce, aad, sealed, opened)).toBe(opened);
    expect(toHex(opened)).toBe(toHex(plaintext));
    expect(made.length).toBe(4); // seal: update, final; open: update, final
    expect(made.some((piece) => piece.length >= plaintext.length)).toBe(true);
    expect(made.every(allZero)).toBe(true);
  });

  it('a tampered ciphertext is refused and its unauthenticated plaintext wiped, from the output too', () => {
    const made: Buffer[] = [];
    const curves = nodeNativeCurves(recording(made));
    const sealed = curves.aesGcmSeal(key, nonce, aad, plaintext);
    sealed[10] ^= 1;
    const opened = new Uint8Array(plaintext.length).fill(0xee);
    expect(() => curves.aesGcmOpen(key, nonce, aad, sealed, opened)).toThrow(/unable to authenticate/);
    expect(allZero(opened)).toBe(true);
    expect(made.every(allZero)).toBe(true);
    expect(() => curves.aesGcmOpen(key, nonce, aad, sealed, new Uint8Array(3))).toThrow(RangeError);
    // The genuine ciphertext still opens.
    sealed[10] ^= 1;
    expect(toHex(curves.aesGcmOpen(key, nonce, aad, sealed))).toBe(toHex(plaintext));
  });
});

describe('long messages across a native and a wasm copy', () => {
  /** `count` KeyPackages of fresh members, each its own identity. */
  async function keyPackages(lib: Lib, count: number): Promise<Uint8Array[]> {
    const filler = await lib.MlsClient.open();
    const out = [];
    for (let i = 0; i < count; i++) out.push(await filler.createKeyPackage(await filler.createIdentity(`member-${i}`)));
    return out;
  }

  it('a 40-member Welcome and path commits (> 2 KB) go both ways; a tampered commit is refused with DECRYPTION_FAILED', async () => {
    const native = await libraryWith('native');
    const wasm = await libraryWith('wasm');
    const alice = await native.MlsClient.open();
    const bob = await wasm.MlsClient.open();
    const aliceGroup = await alice.createGroup(await alice.createIdentity('alice'));
    const bobKeyPackage = await bob.createKeyPackage(await bob.createIdentity('bob'));
    // Add-only, so every parent is blank and a path commit carries ~n HPKE ciphertexts.
    const { welcome } = await aliceGroup.commit({ add: [bobKeyPackage, ...(await keyPackages(native, 38))] });
    await aliceGroup.mergePendingCommit();
    // The Welcome's GroupInfo (with the ratchet tree) is sealed and signed natively, opened and verified in wasm.
    expect(welcome!.length).toBeGreaterThan(4096);
    const bobGroup = await bob.joinFromWelcome(welcome!);
    expect(bobGroup.state().memberCount).toBe(40);

    for (const [sender, receiver] of [
      [bobGroup, aliceGroup],
      [aliceGroup, bobGroup],
    ] as const) {
      const { commit } = await sender.selfUpdate();
      expect(commit.length).toBeGreaterThan(2048);
      // A byte inside the encrypted content (past the PrivateMessage header):
      // the AEAD tag no longer verifies.
      const tampered = commit.slice();
      tampered[commit.length - 200] ^= 0x01;
      await expect(receiver.process(tampered)).rejects.toMatchObject({ name: 'MlsError', code: 'DECRYPTION_FAILED' });
      const genuine = await receiver.process(commit);
      if (genuine.kind !== 'commit') throw new Error('expected a commit');
      await genuine.staged.merge();
      await sender.mergePendingCommit();
      expect(toHex(receiver.epochAuthenticator())).toBe(toHex(sender.epochAuthenticator()));
    }
    const message = await aliceGroup.encrypt('after the long commits');
    const received = await bobGroup.process(message);
    expect(received.kind === 'application' && new TextDecoder().decode(received.data)).toBe('after the long commits');
    // Long application messages (sealed and opened natively on one side, in
    // wasm on the other) both ways; a tampered one refused, the next one read.
    const long = new Uint8Array(6000).fill(0x62);
    for (const [sender, receiver] of [
      [aliceGroup, bobGroup],
      [bobGroup, aliceGroup],
    ] as const) {
      const sent = await sender.encrypt(long);
      const tampered = sent.slice();
      tampered[sent.length - 100] ^= 0x01;
      await expect(receiver.process(tampered)).rejects.toMatchObject({ name: 'MlsError', code: 'DECRYPTION_FAILED' });
      const next = await receiver.process(await sender.encrypt(long));
      expect(next.kind === 'application' && toHex(next.data)).toBe(toHex(long));
    }
  });
});
