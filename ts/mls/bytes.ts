/** Small byte helpers shared by the TS layer. */
import { MlsError } from './errors.js';

/**
 * Bytes, or a string taken as its UTF-8 encoding (`toBytes`): what the API
 * accepts for plaintexts, identities, exporter contexts and PSK ids.
 */
export type BytesLike = Uint8Array | string;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Strings are taken as UTF-8. */
export function toBytes(value: BytesLike): Uint8Array {
  return typeof value === 'string' ? encoder.encode(value) : value;
}

/**
 * Whether `s` is well-formed UTF-16 (no lone surrogate). UTF-8 has no lone
 * surrogate: `TextEncoder` writes one as U+FFFD, so two strings that differ
 * only there encode alike. (`String.prototype.isWellFormed` where the engine has it.)
 */
export function isWellFormedUtf16(s: string): boolean {
  const native = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;
  if (native) return native.call(s);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    const next = s.charCodeAt(i + 1); // NaN past the end
    if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return false;
    i++;
  }
  return true;
}

/** Decode UTF-8 bytes to a string. */
export function utf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

const HEX_DIGITS = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));
const HIGH = Uint8Array.from(HEX_DIGITS, (hex) => hex.charCodeAt(0));
const LOW = Uint8Array.from(HEX_DIGITS, (hex) => hex.charCodeAt(1));
/** Bytes hexed per `String.fromCharCode` call (its arguments are bounded). */
const CHUNK = 4096;

/**
 * Lower-case hexadecimal of `bytes`. Storage keys are hexed on every
 * message (the adapter's map, the group's check lookup): character codes
 * from a table turned into one flat string, about half the cost of
 * concatenating two-digit strings, whose rope the map then flattens.
 */
export function toHex(bytes: Uint8Array): string {
  if (bytes.length > CHUNK) {
    let out = '';
    for (let start = 0; start < bytes.length; start += CHUNK) out += toHex(bytes.subarray(start, start + CHUNK));
    return out;
  }
  const codes = new Array<number>(2 * bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    codes[2 * i] = HIGH[b]!;
    codes[2 * i + 1] = LOW[b]!;
  }
  return String.fromCharCode.apply(null, codes);
}

/** Whether `text` is hexadecimal as `toHex` writes it (lower case, whole bytes): stored names read back are checked with it. */
export function isToHex(text: unknown): text is string {
  return typeof text === 'string' && /^(?:[0-9a-f]{2})*$/.test(text);
}

/** The bytes of a hexadecimal string (even length, hex digits only). */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) throw new MlsError('INVALID_ARGUMENT', 'invalid hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** The byte strings one after the other, in a new array. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Whether two byte strings are equal, in time independent of where they differ. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** SHA-256 (WebCrypto; Node ≥ 20 and browsers). */
export async function sha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
}
