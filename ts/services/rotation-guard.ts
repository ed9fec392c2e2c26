/**
 * Rotation guard (docs/PROTOCOL.md §8.4): the secrets that let a DS
 * account's keys change. The DS holds SHA-256 of the next one; the devices
 * that share a pairing's seed vault derive them, a copy of one device's
 * stored state cannot. So a thief holding the account's current key can
 * neither rotate it, nor add a key, nor revoke the account.
 */
import { Writer } from '../codec/tls.js';
import { isWellFormedUtf16 } from '../mls/bytes.js';
import { invalidArgument } from '../mls/errors.js';

/** Where a guard's secrets come from: step `step`'s, 32 bytes, the same on every device holding the guard; the caller wipes it. */
export interface RotationGuard {
  secret(step: number): Promise<Uint8Array>;
}

/** Bytes of a guard's secret (and of its SHA-256 commitment). */
export const GUARD_SECRET_BYTES = 32;

/** Options of `vaultRotationGuard`. */
export interface VaultRotationGuardOptions {
  /**
   * The DS the guard is for (its origin, say `https://ds.example`), 1 to 255
   * bytes of UTF-8, well-formed UTF-16 (no lone surrogate, which would be
   * encoded as U+FFFD, so `"x\ud800"` and `"x\ufffd"` named one DS): its
   * secrets then open this DS's guard only. Without it a
   * vault guarding one client id at two DSes has the same secrets at both,
   * and either DS, which learns each secret it verifies, could hand it to a
   * holder of the account's key at the other (docs/PROTOCOL.md §8.4).
   */
  ds?: string;
}

/**
 * The guard of the DS account `clientId` from a pairing's seed vault (a `SeedVault`):
 * secret n = `vault.derive("ds rotation", opaque clientId<V> ‖ uint64 n, 32)`, or with
 * `options.ds`, `vault.derive("ds rotation", opaque clientId<V> ‖ uint64 n ‖ opaque ds<V>, 32)`.
 * Both devices of the pairing get the same secrets (given the same `ds`); each account its own.
 */
export function vaultRotationGuard(
  vault: { derive(label: string, context: Uint8Array, length: number): Promise<Uint8Array> },
  clientId: string,
  options: VaultRotationGuardOptions = {},
): RotationGuard {
  // Both are taken as UTF-8: a lone surrogate (U+FFFD there) or a non-string (its String()) would give two names one context.
  if (typeof clientId !== 'string' || !isWellFormedUtf16(clientId)) throw invalidArgument("a rotation guard's client id is a well-formed string (no lone surrogate)");
  const named = (options ?? {}).ds;
  if (named !== undefined && (typeof named !== 'string' || !isWellFormedUtf16(named))) throw invalidArgument("a rotation guard's ds is a well-formed string (no lone surrogate)");
  const ds = named === undefined ? undefined : new TextEncoder().encode(named);
  if (ds && (ds.length === 0 || ds.length > 255)) throw invalidArgument("a rotation guard's ds is 1 to 255 bytes of UTF-8");
  return {
    async secret(step: number) {
      if (!Number.isSafeInteger(step) || step < 0) throw invalidArgument('a guard step is a whole number from 0');
      const context = new Writer().vector(new TextEncoder().encode(clientId)).u64(step);
      return vault.derive('ds rotation', (ds ? context.vector(ds) : context).finish(), GUARD_SECRET_BYTES);
    },
  };
}

/** Secret `step` of `guard`, checked for length, handed to `use` and wiped after. */
export async function withGuardSecret<T>(guard: RotationGuard, step: number, use: (secret: Uint8Array) => T | Promise<T>): Promise<T> {
  const secret = await guard.secret(step);
  try {
    if (secret.length !== GUARD_SECRET_BYTES) throw invalidArgument(`a rotation guard's secret is ${GUARD_SECRET_BYTES} bytes`);
    return await use(secret);
  } finally {
    secret.fill(0);
  }
}
