/**
 * Node's native X25519 and Ed25519 (OpenSSL), handed to the wasm core for
 * the curve operations it runs faster (crates/core/src/native_crypto.rs is
 * the other side of this contract, and decides what it routes here: X25519
 * DH and HPKE Encaps; Ed25519 signatures, AES-GCM and SHA-256 for long
 * messages only; every Ed25519 verification stays in wasm.
 * Public keys from secrets are derived in wasm: a fixed-base
 * multiplication there costs less than an import here, bench/README.md
 * "Curve routing (round 2c)"). Only used in Node; browsers keep the core's
 * pure-Rust curves.
 *
 * Why the caches: importing a raw private key into OpenSSL derives its
 * public key, a scalar multiplication as costly as the operation itself.
 * A member signs every message with the same key and decrypts path secrets
 * with keys it reuses, so the imported key objects are kept in small LRU
 * maps. Private keys are looked up by a SHA-256 of the key, never by the
 * key itself, so the maps hold no secret strings; the key objects keep
 * their secret inside OpenSSL, out of reach of JS code that lacks them.
 */
import type * as NodeCrypto from 'node:crypto';
import type * as WorkerThreads from 'node:worker_threads';
import type { EncapBatchRunner } from './encap-batch.js';
import { CallingThreadEncaps, encapInto } from './x25519-encap.js';
import { WorkerPoolEncaps, type PoolStats } from './x25519-pool.js';

type KeyObject = NodeCrypto.KeyObject;

/** The object the wasm core calls (method names fixed by the Rust import). */
export interface NativeCurves {
  /**
   * X25519(secretKey, publicKey) (32) || the public key of `secretKey` (32)
   * (the import derived it, and HPKE Decap needs it next), written into
   * `out` when given (exactly 64 bytes; the core passes a view of its
   * memory, which it wipes), else into a new array; returns it. Throws on a
   * low-order point. `secretDigest`, when given, is SHA-256(secretKey),
   * the key cache's id (the core hashes it far cheaper than a host call).
   * It is trusted, not checked: a digest that is not the secret's selects
   * whichever cached key has it. Only the core calls this, with the digest
   * of the same secret; the host object is never exported.
   */
  x25519(secretKey: Uint8Array, publicKey: Uint8Array, out?: Uint8Array, secretDigest?: Uint8Array): Uint8Array;
  /** HPKE Encap's DH with a fresh ephemeral key that never leaves OpenSSL, written into `out` (the core's memory): enc (32) || DH(skE, publicKey) (32). */
  x25519Encap(publicKey: Uint8Array, out: Uint8Array): void;
  /** Start a batch of Encaps (32 bytes per public key); see x25519-encap.ts. */
  x25519EncapBegin(publicKeys: Uint8Array): void;
  /** The batch's next `out.length / 64` Encaps, in order, written into `out`. */
  x25519EncapTake(out: Uint8Array): void;
  /** End the batch and wipe the host's copies. */
  x25519EncapEnd(): void;
  ed25519Sign(seed: Uint8Array, message: Uint8Array): Uint8Array;
  /**
   * AES-GCM (16- or 32-byte key, 12-byte nonce): ciphertext || 16-byte tag,
   * written into `out` when given (exactly that long; the core passes a
   * view of its memory), else into a new array; returns it.
   */
  aesGcmSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out?: Uint8Array): Uint8Array;
  /** AES-GCM open of ciphertext || tag into `out` as for sealing; throws (and wipes `out`) when the tag does not verify. */
  aesGcmOpen(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ciphertextAndTag: Uint8Array, out?: Uint8Array): Uint8Array;
  /** SHA-256 of a long input (a commit's transcript hash input). */
  sha256(data: Uint8Array): Uint8Array;
}

type Curve = 'X25519' | 'Ed25519';

/** A Map that forgets its least recently used entry beyond `limit`. */
class Lru<V> {
  readonly #map = new Map<string, V>();
  constructor(readonly limit: number) {}
  get(key: string): V | undefined {
    const value = this.#map.get(key);
    if (value !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, value);
    }
    return value;
  }
  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.limit) this.#map.delete(this.#map.keys().next().value as string);
  }
}

const base64url = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
const fromBase64url = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'base64url'));

function aesGcm(key: Uint8Array): 'aes-128-gcm' | 'aes-256-gcm' {
  if (key.length === 16) return 'aes-128-gcm';
  if (key.length === 32) return 'aes-256-gcm';
  throw new RangeError('a 16- or 32-byte AES-GCM key is expected');
}

/** `out` when it is exactly `length` bytes long (else a RangeError), or a new array. */
function outputFor(length: number, out: Uint8Array | undefined): Uint8Array {
  if (out === undefined) return new Uint8Array(length);
  if (out.length !== length) throw new RangeError(`an output of ${length} bytes is expected`);
  return out;
}

/** Copy `pieces` one after another into `out`, then zero each piece. */
function copyThenWipe(pieces: Uint8Array[], out: Uint8Array): void {
  let at = 0;
  for (const piece of pieces) {
    out.set(piece, at);
    at += piece.length;
    piece.fill(0);
  }
}

/** Node's curves plus the choice of threads for a path's Encaps. */
export interface NodeNativeCurves extends NativeCurves {
  /** Worker threads besides the calling thread for large Encap batches (0: the calling thread only). */
  setThreads(threads: number): void;
  /** The worker threads set (not necessarily started yet). */
  threads(): number;
  /** What the current pool did, and how many workers run now; undefined without a pool. */
  poolStats(): (PoolStats & { running: number }) | undefined;
}

/**
 * The host object the core calls in Node (installed by `init()`), over
 * `crypto`; `workerThreads` enables `setThreads` for large Encap batches.
 */
export function nodeNativeCurves(crypto: typeof NodeCrypto, workerThreads?: typeof WorkerThreads): NodeNativeCurves {
  const privateKeys = new Lru<{ key: KeyObject; publicKey: string }>(512);
  const publicKeys = new Lru<KeyObject>(1 << 14);
  /** `secretDigest`: SHA-256(secret) from the core, else hashed here. */
  function importPrivate(curve: Curve, secret: Uint8Array, secretDigest?: Uint8Array): { key: KeyObject; publicKey: string } {
    if (secret.length !== 32) throw new RangeError('a 32-byte private key is expected');
    if (secretDigest !== undefined && secretDigest.length !== 32) throw new RangeError('a 32-byte digest is expected');
    const id = curve + (secretDigest ? base64url(secretDigest) : crypto.createHash('sha256').update(secret).digest('base64url'));
    let entry = privateKeys.get(id);
    if (!entry) {
      // JWK import: Node's DER (PKCS#8) import goes through OpenSSL's
      // decoder framework and costs ten times more. JWK needs some `x`;
      // OpenSSL derives the real public key from `d` and ignores it.
      const key = crypto.createPrivateKey({ key: { kty: 'OKP', crv: curve, d: base64url(secret), x: '' }, format: 'jwk' });
      entry = { key, publicKey: (key.export({ format: 'jwk' }) as { x: string }).x };
      privateKeys.set(id, entry);
    }
    return entry;
  }

  // X25519 only: Ed25519 verifications stay in wasm (native_crypto.rs).
  function importX25519(publicKey: Uint8Array): KeyObject {
    if (publicKey.length !== 32) throw new RangeError('a 32-byte public key is expected');
    const x = base64url(publicKey);
    let key = publicKeys.get(x);
    if (!key) {
      key = crypto.createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x }, format: 'jwk' });
      publicKeys.set(x, key);
    }
    return key;
  }

  const callingThread = new CallingThreadEncaps(crypto, importX25519);
  let batches: EncapBatchRunner = callingThread;
  let pool: WorkerPoolEncaps | undefined;

  return {
    setThreads(threads) {
      if (!Number.isInteger(threads) || threads < 0) throw new RangeError('threads must be a whole number >= 0');
      if (threads > 0 && !workerThreads) throw new RangeError('worker threads are not available');
      if (threads === (pool?.threads ?? 0)) return;
      pool?.close();
      pool = threads > 0 ? new WorkerPoolEncaps(crypto, importX25519, workerThreads!, threads) : undefined;
      batches = pool ?? callingThread;
    },
    threads() {
      return pool?.threads ?? 0;
    },
    poolStats() {
      return pool ? { ...pool.stats, running: pool.running } : undefined;
    },
    x25519(secretKey, publicKey, out, secretDigest) {
      const answer = outputFor(64, out);
      const privateKey = importPrivate('X25519', secretKey, secretDigest);
      const shared = crypto.diffieHellman({ privateKey: privateKey.key, publicKey: importX25519(publicKey) });
      try {
        if (shared.length !== 32) throw new RangeError('X25519 output of unexpected length');
        answer.set(shared, 0);
        answer.set(fromBase64url(privateKey.publicKey), 32);
        return answer;
      } finally {
        // Node's own Buffer of the shared secret; `answer` is the core's to wipe.
        shared.fill(0);
      }
    },
    x25519Encap(publicKey, out) {
      // Used once and dropped: the ephemeral secret never reaches the wasm
      // core (crates/core/src/native_crypto.rs, native_x25519_seal), and
      // the DH output is written straight into the core's memory.
      if (out.length !== 64) throw new RangeError('a 64-byte output is expected');
      encapInto(crypto, importX25519(publicKey), out, 0);
    },
    x25519EncapBegin(publicKeys) {
      batches.begin(publicKeys);
    },
    x25519EncapTake(out) {
      batches.take(out);
    },
    x25519EncapEnd() {
      batches.end();
    },
    ed25519Sign(seed, message) {
      const signature = crypto.sign(null, message, importPrivate('Ed25519', seed).key);
      return new Uint8Array(signature.buffer, signature.byteOffset, signature.byteLength);
    },
    aesGcmSeal(key, nonce, aad, plaintext, out) {
      const sealed = outputFor(plaintext.length + 16, out);
      const cipher = crypto.createCipheriv(aesGcm(key), key, nonce, { authTagLength: 16 });
      cipher.setAAD(aad);
      // Node returns each piece in a Buffer of its own: copied out, then wiped (review F4).
      const pieces = [cipher.update(plaintext), cipher.final(), cipher.getAuthTag()];
      copyThenWipe(pieces, sealed);
      return sealed;
    },
    aesGcmOpen(key, nonce, aad, ciphertextAndTag, out) {
      if (ciphertextAndTag.length < 16) throw new RangeError('AES-GCM ciphertext shorter than its tag');
      const split = ciphertextAndTag.length - 16;
      const opened = outputFor(split, out);
      const decipher = crypto.createDecipheriv(aesGcm(key), key, nonce, { authTagLength: 16 });
      decipher.setAAD(aad);
      decipher.setAuthTag(ciphertextAndTag.subarray(split));
      const pieces = [decipher.update(ciphertextAndTag.subarray(0, split))];
      try {
        // final() throws when the tag does not verify; the unauthenticated
        // plaintext update() gave is wiped either way, and so is `out`.
        pieces.push(decipher.final());
        copyThenWipe(pieces, opened);
      } catch (err) {
        for (const piece of pieces) piece.fill(0);
        opened.fill(0);
        throw err;
      }
      return opened;
    },
    sha256(data) {
      const digest = crypto.createHash('sha256').update(data).digest();
      return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
    },
  };
}
