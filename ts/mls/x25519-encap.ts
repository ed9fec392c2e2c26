/**
 * DHKEM(X25519)'s Encap DH (RFC 9180 §4.1) in Node's OpenSSL, one at a
 * time or in batches, on the calling thread or on a worker pool
 * (x25519-pool.ts). The wasm core hands over the public keys of an
 * UpdatePath's recipients (engine change 17, docs/ENGINE.md) and gets
 * `enc || DH` back written into its own memory, which it wipes; the
 * ephemeral secrets never leave OpenSSL.
 */
import type * as NodeCrypto from 'node:crypto';
import type { EncapBatchRunner } from './encap-batch.js';

type KeyObject = NodeCrypto.KeyObject;

/**
 * One Encap for `publicKey` (an imported X25519 public key), written into
 * `out[offset, offset + 64)`: enc (32) || DH(skE, publicKey) (32).
 *
 * Self-contained on purpose (no module-level names): x25519-pool.ts runs
 * its source text in the workers. The ephemeral key is made from random
 * bytes by a JWK import (which derives its public key), not
 * generateKeyPairSync: in Node 20 exporting a key fresh from
 * generateKeyPairSync can deadlock when a GC during the export finalizes
 * the key-generation job (bench/README.md, "n = 10,000 round 2"). Every
 * buffer here that held a secret is wiped before returning; the key object
 * keeps skE inside OpenSSL until it is collected. Throws on a low-order
 * point, and on a secret the repetition tests refuse (docs/ENGINE.md R3).
 */
export function encapInto(crypto: typeof NodeCrypto, publicKey: KeyObject, out: Uint8Array, offset: number, random?: Uint8Array): void {
  // `random`: 32 fresh random bytes drawn by a caller that makes many
  // Encaps (one draw per batch instead of one per Encap: a draw costs
  // ~4.5 µs, bench/README.md "Curve routing (round 2c)"); that caller wipes them.
  if (random !== undefined && random.length !== 32) throw new RangeError('32 random bytes are expected');
  const secret = random === undefined ? crypto.randomBytes(32) : Buffer.from(random.buffer, random.byteOffset, 32);
  let ephemeral: KeyObject;
  try {
    // The all-one-value test of docs/ENGINE.md R3 (review 66b), as the
    // core applies it to the secrets it draws (randomness.rs): a source that
    // did not write, or filled a constant. The repeat test is on the
    // ephemeral public key, below.
    let spread = 0;
    for (let i = 1; i < 32; i++) spread |= secret[i]! ^ secret[0]!;
    if (spread === 0) throw new RangeError('no randomness: an Encap secret all of one value');
    ephemeral = crypto.createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: secret.toString('base64url'), x: '' }, format: 'jwk' });
  } finally {
    if (random === undefined) secret.fill(0);
  }
  const enc = Buffer.from((ephemeral.export({ format: 'jwk' }) as { x: string }).x, 'base64url');
  // R3's repeat test: an ephemeral public key equal to the one this thread
  // made before it (a stub returning the same bytes on every call: every
  // recipient and every commit would get one ephemeral key; secrets that
  // differ only in the bits X25519 clamps give the same key too) is
  // refused, and the core then fails the seal. The public key is compared,
  // not the secret: nothing secret is kept and no hash is needed. Kept on
  // the thread's global, not in a module variable: the pool's workers run
  // this function from its source text (x25519-pool.ts), without its module.
  const kept = globalThis as unknown as Record<symbol, Buffer | undefined>;
  const slot = Symbol.for('paired-mls previous Encap key');
  const repeated = kept[slot]?.equals(enc) === true;
  kept[slot] = enc;
  if (repeated) throw new RangeError('no randomness: an Encap ephemeral key equal to the previous one');
  const shared = crypto.diffieHellman({ privateKey: ephemeral, publicKey });
  try {
    if (enc.length !== 32 || shared.length !== 32) throw new RangeError('X25519 output of unexpected length');
    out.set(enc, offset);
    out.set(shared, offset + 32);
  } finally {
    shared.fill(0);
  }
}

/** Looks up (and caches) the KeyObject of a 32-byte X25519 public key. */
export type PublicKeyImport = (publicKey: Uint8Array) => KeyObject;

/** Batches run on the calling thread, one Encap after the other. */
export class CallingThreadEncaps implements EncapBatchRunner {
  #publicKeys: Uint8Array | undefined;
  #taken = 0;

  constructor(
    private readonly crypto: typeof NodeCrypto,
    readonly importPublic: PublicKeyImport,
  ) {}

  begin(publicKeys: Uint8Array): void {
    if (publicKeys.length % 32 !== 0) throw new RangeError('32-byte public keys are expected');
    this.#publicKeys = publicKeys.slice();
    this.#taken = 0;
  }

  take(out: Uint8Array): void {
    const keys = this.#publicKeys;
    const count = out.length / 64;
    if (!keys || !Number.isInteger(count) || (this.#taken + count) * 32 > keys.length) throw new RangeError('no such Encaps in this batch');
    const random = this.crypto.randomBytes(32 * count);
    try {
      for (let i = 0; i < count; i++) {
        const index = this.#taken + i;
        encapInto(this.crypto, this.importPublic(keys.subarray(index * 32, index * 32 + 32)), out, i * 64, random.subarray(i * 32, i * 32 + 32));
      }
    } finally {
      random.fill(0);
    }
    this.#taken += count;
  }

  end(): void {
    this.#publicKeys = undefined;
    this.#taken = 0;
  }
}
