/**
 * The core's X25519/Ed25519 run in Node's OpenSSL (native) or in Rust
 * compiled to wasm (browsers, or `setCurveBackend('wasm')`). These tests
 * load two copies of the package, one per backend, each with its own wasm
 * instance, and check that they are interchangeable on the wire, that the
 * native side meets the RFC test vectors, and that forged signatures and
 * bad curve points are refused without harming the instance.
 */
import * as nodeCrypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { nodeNativeCurves } from '../ts/mls/native-curves.js';
import { libraryWith } from './curve-backends.js';

/** The error `fn` throws: an MlsError of whichever copy of the package threw it. */
async function mlsError(fn: () => Promise<unknown>): Promise<{ code: string }> {
  try {
    await fn();
  } catch (err) {
    expect((err as Error).name).toBe('MlsError');
    return err as { code: string };
  }
  throw new Error('expected an MlsError');
}

const hex = (text: string) => new Uint8Array(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
const toHex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

/** The X25519 base point (u = 9): X25519(sk, base) is the public key of sk. */
const X25519_BASE = Uint8Array.from({ length: 32 }, (_, i) => (i === 0 ? 9 : 0));

/** OpenSSL's verification (the host verifies nothing since round 2e: the core verifies in wasm). */
const opensslVerify = (publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean =>
  signature.length === 64 &&
  nodeCrypto.verify(null, message, nodeCrypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(publicKey).toString('base64url') }, format: 'jwk' }), signature);

/** The Ed25519 public key of `seed`, from Node directly (the core derives its own in wasm). */
function ed25519Public(seed: Uint8Array): Uint8Array {
  const key = nodeCrypto.createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: Buffer.from(seed).toString('base64url'), x: '' }, format: 'jwk' });
  return new Uint8Array(Buffer.from((key.export({ format: 'jwk' }) as { x: string }).x, 'base64url'));
}

describe('NativeCurves (Node OpenSSL) against the RFC test vectors', () => {
  const curves = nodeNativeCurves(nodeCrypto);
  /** The DH half of the host's answer (DH || public key of the secret). */
  const dh = (secret: Uint8Array, publicKey: Uint8Array) => curves.x25519(secret, publicKey).subarray(0, 32);
  const x25519Public = (secret: Uint8Array) => dh(secret, X25519_BASE);

  it('X25519: RFC 7748 §6.1 key pairs and shared secret; the answer carries the public key of the secret', () => {
    const aliceSecret = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const bobSecret = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    const alicePublic = '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
    const bobPublic = 'de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f';
    expect(toHex(x25519Public(aliceSecret))).toBe(alicePublic);
    expect(toHex(x25519Public(bobSecret))).toBe(bobPublic);
    const shared = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742';
    // DH || the caller's own public key (what HPKE Decap needs next: the
    // core takes it from here instead of deriving it again).
    expect(toHex(curves.x25519(aliceSecret, hex(bobPublic)))).toBe(shared + alicePublic);
    // Written into the caller's buffer (the core passes a view of its memory).
    const out = new Uint8Array(64);
    expect(curves.x25519(bobSecret, hex(alicePublic), out)).toBe(out);
    expect(toHex(out)).toBe(shared + bobPublic);
    expect(() => curves.x25519(bobSecret, hex(alicePublic), new Uint8Array(32))).toThrow(RangeError);
  });

  it("X25519: the core's SHA-256 of the secret is the cache id; same answer as hashing here, a wrong length refused", () => {
    // A fresh host: its cache starts empty, so the first call imports.
    const fresh = nodeNativeCurves(nodeCrypto);
    const aliceSecret = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    const bobPublic = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const expected = '4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742' + '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a';
    const digest = new Uint8Array(createHash('sha256').update(aliceSecret).digest());
    expect(toHex(fresh.x25519(aliceSecret, bobPublic, new Uint8Array(64), digest))).toBe(expected);
    // Again from the cache, then without a digest (hashed here): the same bytes.
    expect(toHex(fresh.x25519(aliceSecret, bobPublic, new Uint8Array(64), digest))).toBe(expected);
    expect(toHex(fresh.x25519(aliceSecret, bobPublic))).toBe(expected);
    expect(() => fresh.x25519(aliceSecret, bobPublic, new Uint8Array(64), digest.subarray(0, 31))).toThrow(RangeError);
    // A low-order point is still refused with a digest given.
    expect(() => fresh.x25519(aliceSecret, new Uint8Array(32), new Uint8Array(64), digest)).toThrow();
  });

  it('X25519: a low-order public key is refused (the all-zero shared secret of RFC 7748 §6.1)', () => {
    const secret = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a');
    expect(() => curves.x25519(secret, new Uint8Array(32))).toThrow();
    expect(() => curves.x25519(secret, new Uint8Array(31))).toThrow(RangeError);
  });

  it('X25519 Encap: the recipient derives the same DH from enc, each call has a fresh ephemeral key, low-order keys are refused', () => {
    const bobSecret = hex('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb');
    const bobPublic = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f');
    const encap = (publicKey: Uint8Array): Uint8Array => {
      const out = new Uint8Array(64);
      curves.x25519Encap(publicKey, out);
      return out;
    };
    const first = encap(bobPublic);
    const second = encap(bobPublic);
    // DH(skE, pkR) = DH(skR, pkE): what the recipient's Decap computes.
    expect(toHex(dh(bobSecret, first.subarray(0, 32)))).toBe(toHex(first.subarray(32)));
    expect(toHex(dh(bobSecret, second.subarray(0, 32)))).toBe(toHex(second.subarray(32)));
    expect(toHex(first.subarray(0, 32))).not.toBe(toHex(second.subarray(0, 32)));
    expect(() => encap(new Uint8Array(32))).toThrow();
    expect(() => encap(new Uint8Array(31))).toThrow(RangeError);
    expect(() => curves.x25519Encap(bobPublic, new Uint8Array(32))).toThrow(RangeError);
  });

  // The batch contract of engine change 17 (x25519EncapBegin/Take/End), on
  // the calling thread and on a pool (x25519-pool.ts): every result is an
  // Encap to its own public key, in order, whatever thread made it; a
  // low-order key anywhere fails the batch on both; end() wipes.
  it.each([0, 2])('X25519 Encap batches with %i worker threads: results in order, low-order keys refused', async (threads) => {
    const batchCurves = nodeNativeCurves(nodeCrypto, await import('node:worker_threads'));
    batchCurves.setThreads(threads);
    try {
      const secrets = Array.from({ length: 300 }, (_, i) => createHash('sha256').update(`recipient ${i}`).digest());
      const publicKeys = new Uint8Array(32 * secrets.length);
      secrets.forEach((secret, i) => publicKeys.set(x25519Public(secret), 32 * i));
      for (let round = 0; round < 3; round++) {
        batchCurves.x25519EncapBegin(publicKeys);
        const out = new Uint8Array(64 * secrets.length);
        // Taken in uneven pieces, as the core may.
        for (const [from, to] of [[0, 1], [1, 100], [100, 129], [129, 300]]) batchCurves.x25519EncapTake(out.subarray(64 * from!, 64 * to!));
        batchCurves.x25519EncapEnd();
        secrets.forEach((secret, i) => {
          expect(toHex(dh(secret, out.subarray(64 * i, 64 * i + 32)))).toBe(toHex(out.subarray(64 * i + 32, 64 * i + 64)));
        });
        // Every Encap has its own ephemeral key (the randomness is drawn once per take or chunk and sliced).
        const encs = new Set(secrets.map((_, i) => toHex(out.subarray(64 * i, 64 * i + 32))));
        expect(encs.size).toBe(secrets.length);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const withLowOrder = publicKeys.slice();
      withLowOrder.fill(0, 32 * 250, 32 * 251);
      // Several times: with workers, the calling thread often waits on the
      // very chunk a worker then FAILs at index 250, and must redo it (and
      // throw), not take the chunk's unwritten rest as made.
      for (let round = 0; round < 6; round++) {
        batchCurves.x25519EncapBegin(withLowOrder);
        const out = new Uint8Array(64 * secrets.length);
        expect(() => batchCurves.x25519EncapTake(out)).toThrow();
        batchCurves.x25519EncapEnd();
      }
      expect(() => batchCurves.x25519EncapTake(new Uint8Array(64))).toThrow(RangeError);
      if (threads > 0) expect(batchCurves.poolStats()!.workerEncaps).toBeGreaterThan(0);
    } finally {
      batchCurves.setThreads(0);
    }
  });

  it('Ed25519: RFC 8032 §7.1 test 2 (one-byte message)', () => {
    const seed = hex('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb');
    const message = hex('72');
    const expected = hex(`92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da
      085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00`);
    const publicKey = ed25519Public(seed);
    expect(toHex(publicKey)).toBe('3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c');
    expect(toHex(curves.ed25519Sign(seed, message))).toBe(toHex(expected));
    expect(opensslVerify(publicKey, message, expected)).toBe(true);
  });

  it('Ed25519: the host signs what OpenSSL verifies; forged, truncated and re-targeted signatures fail', () => {
    const seed = createHash('sha256').update('signer').digest();
    const message = new TextEncoder().encode('a handshake message');
    const publicKey = ed25519Public(seed);
    const signature = curves.ed25519Sign(seed, message);
    const flipped = signature.slice();
    flipped[10] ^= 1;
    expect(opensslVerify(publicKey, message, flipped)).toBe(false);
    expect(opensslVerify(publicKey, message, signature.subarray(0, 63))).toBe(false);
    expect(opensslVerify(publicKey, new TextEncoder().encode('another message'), signature)).toBe(false);
    const other = ed25519Public(createHash('sha256').update('someone else').digest());
    expect(opensslVerify(other, message, signature)).toBe(false);
  });
});

describe('native and wasm curves are interchangeable', () => {
  it('a group split across a native-curve copy and a wasm-curve copy works both ways', async () => {
    const native = await libraryWith('native');
    const wasm = await libraryWith('wasm');
    expect(native.curveBackend()).toBe('native');
    expect(wasm.curveBackend()).toBe('wasm');

    const alice = await native.MlsClient.open();
    const bob = await wasm.MlsClient.open();
    const carol = await native.MlsClient.open();
    const aliceId = await alice.createIdentity('alice');
    const bobId = await bob.createIdentity('bob');
    const carolId = await carol.createIdentity('carol');

    // alice (native) adds bob (wasm): bob's KeyPackage was signed in wasm,
    // the Welcome HPKE-encrypted natively to his wasm-made init key.
    const aliceGroup = await alice.createGroup(aliceId);
    const { welcome } = await aliceGroup.commit({ add: [await bob.createKeyPackage(bobId)] });
    await aliceGroup.mergePendingCommit();
    const bobGroup = await bob.joinFromWelcome(welcome!);

    // bob (wasm) adds carol (native) and updates his path: carol's init key
    // is native, alice decrypts a path secret HPKE-sealed in wasm.
    const added = await bobGroup.commit({ add: [await carol.createKeyPackage(carolId)], selfUpdate: true });
    await bobGroup.mergePendingCommit();
    const staged = await aliceGroup.process(added.commit);
    if (staged.kind !== 'commit') throw new Error('expected a commit');
    await staged.staged.merge();
    const carolGroup = await carol.joinFromWelcome(added.welcome!);

    // carol (native) self-updates; both others process it.
    const update = await carolGroup.selfUpdate();
    await carolGroup.mergePendingCommit();
    for (const group of [aliceGroup, bobGroup]) {
      const result = await group.process(update.commit);
      if (result.kind !== 'commit') throw new Error('expected a commit');
      await result.staged.merge();
    }

    const authenticators = [aliceGroup, bobGroup, carolGroup].map((g) => toHex(g.epochAuthenticator()));
    expect(new Set(authenticators).size).toBe(1);
    for (const [sender, receivers] of [
      [aliceGroup, [bobGroup, carolGroup]],
      [bobGroup, [aliceGroup, carolGroup]],
    ] as const) {
      const ciphertext = await sender.encrypt('across backends');
      for (const receiver of receivers) {
        const received = await receiver.process(ciphertext);
        expect(received.kind).toBe('application');
        if (received.kind === 'application') expect(new TextDecoder().decode(received.data)).toBe('across backends');
      }
    }
  });

  it('a commit whose signature was altered is rejected by both backends, and the genuine one still applies', async () => {
    const native = await libraryWith('native');
    const wasm = await libraryWith('wasm');
    const alice = await native.MlsClient.open();
    const bob = await wasm.MlsClient.open();
    const aliceId = await alice.createIdentity('alice');
    const bobId = await bob.createIdentity('bob');
    // PublicMessage handshakes, so the signature is in the clear.
    const aliceGroup = await alice.createGroup(aliceId, { wireFormat: 'plaintext' });
    const { welcome } = await aliceGroup.commit({ add: [await bob.createKeyPackage(bobId)] });
    await aliceGroup.mergePendingCommit();
    const bobGroup = await bob.joinFromWelcome(welcome!, { wireFormat: 'plaintext' });

    for (const [sender, receiver] of [
      [aliceGroup, bobGroup],
      [bobGroup, aliceGroup],
    ] as const) {
      const { commit } = await sender.selfUpdate();
      // PublicMessage ends with signature<V> (1 + 64 bytes), confirmation_tag<V>
      // (1 + 32) and membership_tag<V> (1 + 32): byte length-100 is in the signature.
      const forged = commit.slice();
      forged[forged.length - 100] ^= 0x01;
      const err = await mlsError(() => receiver.process(forged));
      expect(err.code).not.toBe('WASM_POISONED');
      const genuine = await receiver.process(commit);
      if (genuine.kind !== 'commit') throw new Error('expected a commit');
      await genuine.staged.merge();
      await sender.mergePendingCommit();
      expect(toHex(receiver.epochAuthenticator())).toBe(toHex(sender.epochAuthenticator()));
    }
  });

  it('a KeyPackage whose init key was replaced by a low-order point is refused, natively and in wasm', async () => {
    for (const backend of ['native', 'wasm'] as const) {
      const lib = await libraryWith(backend);
      const alice = await lib.MlsClient.open();
      const mallory = await lib.MlsClient.open();
      const aliceId = await alice.createIdentity('alice');
      const malloryId = await mallory.createIdentity('mallory');
      const keyPackage = await mallory.createKeyPackage(malloryId);
      // The init key is the first HPKE public key: after version (2),
      // ciphersuite (2) and its 1-byte length prefix (0x20), at byte 5 of
      // the KeyPackage, which follows the 4-byte MLSMessage header.
      expect(keyPackage[8]).toBe(0x20);
      const lowOrder = keyPackage.slice();
      lowOrder.fill(0, 9, 41);
      const group = await alice.createGroup(aliceId);
      // Refused (its signature no longer covers it) before any DH is tried.
      const err = await mlsError(() => group.commit({ add: [lowOrder] }));
      expect(err.code).not.toBe('WASM_POISONED');
      // The instance is unharmed.
      const ok = await group.commit({ add: [await mallory.createKeyPackage(malloryId)] });
      expect(ok.welcome).toBeDefined();
    }
  });

  // HPKE Decap on the receiving side: with native curves the DH runs in
  // OpenSSL and the public key of the init key comes back with it (no
  // second derivation); in wasm both run in Rust. A Welcome whose
  // kem_output is a low-order point, or the wrong length, must fail the
  // same typed way on both, and leave the joiner able to join.
  it('a Welcome whose kem_output was replaced by a low-order point is refused alike natively and in wasm', async () => {
    const codes: Record<string, string[]> = {};
    for (const backend of ['native', 'wasm'] as const) {
      const lib = await libraryWith(backend);
      const alice = await lib.MlsClient.open();
      const bob = await lib.MlsClient.open();
      const aliceId = await alice.createIdentity('alice');
      const bobId = await bob.createIdentity('bob');
      const group = await alice.createGroup(aliceId);
      const { welcome } = await group.commit({ add: [await bob.createKeyPackage(bobId)] });
      const kemOutput = kemOutputOffset(welcome!);
      const lowOrder = welcome!.slice();
      lowOrder.fill(0, kemOutput, kemOutput + 32);
      // Another low-order point: u = 1 (order 4).
      const orderFour = welcome!.slice();
      orderFour.fill(0, kemOutput, kemOutput + 32);
      orderFour[kemOutput] = 1;
      codes[backend] = [];
      for (const bad of [lowOrder, orderFour]) {
        const err = await mlsError(() => bob.joinFromWelcome(bad));
        expect(err.code).not.toBe('WASM_POISONED');
        codes[backend]!.push(err.code);
      }
      // The genuine Welcome still joins, and the two talk.
      const bobGroup = await bob.joinFromWelcome(welcome!);
      await group.mergePendingCommit();
      const received = await bobGroup.process(await group.encrypt('after the bad Welcomes'));
      expect(received.kind).toBe('application');
    }
    expect(codes.native).toEqual(codes.wasm);
  });
});

/**
 * Offset of the first EncryptedGroupSecrets' kem_output in an MLSMessage
 * Welcome (RFC 9420 §12.4.3.1): header (4), cipher_suite (2), secrets<V>
 * (a varint), new_member<V> (1 + 32), kem_output<V> (1 + 32).
 */
function kemOutputOffset(welcome: Uint8Array): number {
  let at = 6;
  const varint = (): number => {
    const prefix = welcome[at]! >> 6;
    const length = 1 << prefix;
    let value = welcome[at]! & 0x3f;
    for (let i = 1; i < length; i++) value = (value << 8) | welcome[at + i]!;
    at += length;
    return value;
  };
  varint(); // secrets
  expect(varint()).toBe(32); // new_member: a SHA-256 KeyPackageRef
  at += 32;
  expect(varint()).toBe(32); // kem_output: an X25519 public key
  return at;
}
