/**
 * Seed vault: where the randomness two paired devices share lives
 * (draft "PCS in Limited Modes" §3, §4.2 "Security of Shared Randomness").
 * A vault derives values from the seed and never returns the seed itself;
 * hardware-backed vaults (secure enclave, TPM, HSM) implement the same
 * interface.
 *
 * Healing relies on the vault (docs/PROTOCOL.md §4.6): an attacker who
 * copies a device's ordinary state but cannot use its vault cannot follow
 * a paired update.
 */
import { Writer } from '../codec/tls.js';
import { MlsError } from '../mls/errors.js';

/** Holds the pairing seed and derives from it without releasing it (docs/PROTOCOL.md §4.6). */
export interface SeedVault {
  /**
   * PRF(seed, label, context) of `length` bytes (1..255·32). Deterministic:
   * both devices of a pairing get the same output. Each call returns a new
   * buffer, which the caller wipes after use.
   */
  derive(label: string, context: Uint8Array, length: number): Promise<Uint8Array>;
}

/** Bytes of a generated seed, and the fewest a vault imports. */
export const SEED_LENGTH = 32;
const HASH_LENGTH = 32;
const enc = new TextEncoder();

function subtle(): SubtleCrypto {
  const s = globalThis.crypto?.subtle;
  if (!s) throw new Error('WebCrypto (crypto.subtle) is not available in this environment');
  return s;
}

/** Fresh seed randomness, for a pairing that shares its seed with ShareRand. */
export function generateSeed(): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(SEED_LENGTH));
}

/**
 * Default vault: the seed as a non-extractable WebCrypto HMAC-SHA-256 key.
 * Works in Node (≥ 20) and browsers. A browser can persist `key` in
 * IndexedDB (structured clone keeps it non-extractable); in Node the key
 * lives for the process, so a long-lived device plugs in its platform's
 * key store behind `SeedVault` instead.
 *
 * derive() is HKDF-Expand (RFC 5869 §2.3) with the seed as PRK and
 * info = TLS-encoded `struct { opaque label<V> = "paired-mls vault " ‖ label;
 * opaque context<V>; }`.
 */
export class WebCryptoSeedVault implements SeedVault {
  readonly key: CryptoKey;

  private constructor(key: CryptoKey) {
    this.key = key;
  }

  /** Import a seed; the caller's copy is wiped once imported. */
  static async import(seed: Uint8Array): Promise<WebCryptoSeedVault> {
    try {
      if (seed.length < SEED_LENGTH) throw new MlsError('INVALID_ARGUMENT', `a seed has at least ${SEED_LENGTH} bytes`);
      const key = await subtle().importKey('raw', seed as Uint8Array<ArrayBuffer>, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
      return new WebCryptoSeedVault(key);
    } finally {
      seed.fill(0);
    }
  }

  /** A vault around a key kept elsewhere (e.g. read back from IndexedDB). */
  static fromKey(key: CryptoKey): WebCryptoSeedVault {
    if (key.extractable) throw new MlsError('INVALID_ARGUMENT', 'a vault key must be non-extractable');
    return new WebCryptoSeedVault(key);
  }

  async derive(label: string, context: Uint8Array, length: number): Promise<Uint8Array> {
    if (!Number.isInteger(length) || length < 1 || length > 255 * HASH_LENGTH) throw new MlsError('INVALID_ARGUMENT', 'length must be 1..8160');
    const info = new Writer().vector(enc.encode(`paired-mls vault ${label}`)).vector(context).finish();
    const out = new Uint8Array(length);
    let previous = new Uint8Array(0);
    for (let i = 1, offset = 0; offset < length; i++) {
      const input = new Uint8Array(previous.length + info.length + 1);
      input.set(previous, 0);
      input.set(info, previous.length);
      input[input.length - 1] = i;
      const block = new Uint8Array(await subtle().sign('HMAC', this.key, input));
      out.set(block.subarray(0, Math.min(block.length, length - offset)), offset);
      offset += block.length;
      previous.fill(0);
      previous = block;
    }
    previous.fill(0);
    return out;
  }
}
