/** Small byte helpers shared by the TS layer. */

export type BytesLike = Uint8Array | string;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Strings are taken as UTF-8. */
export function toBytes(value: BytesLike): Uint8Array {
  return typeof value === 'string' ? encoder.encode(value) : value;
}

/** Decode UTF-8 bytes to a string. */
export function utf8(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

const HEX_DIGITS = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** Lower-case hexadecimal of `bytes`. (A table: storage keys are hexed on every message.) */
export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i++) out += HEX_DIGITS[bytes[i]!]!;
  return out;
}

/** The bytes of a hexadecimal string (even length, hex digits only). */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) throw new Error('invalid hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
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
