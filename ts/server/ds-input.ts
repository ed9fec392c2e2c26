/**
 * Input checks of the networked DS: every field of every request is
 * validated here before it reaches the service, and every failure is an
 * `HttpError` with a stable reason (docs/PROTOCOL.md §8.3).
 */
import { fromHex } from '../mls/bytes.js';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export const b64 = (b: Uint8Array): string => Buffer.from(b).toString('base64');

export function unb64(value: unknown, field: string, options: { optional?: boolean; nonEmpty?: boolean } = {}): Uint8Array {
  if (value === undefined && options.optional) return undefined as unknown as Uint8Array;
  if (typeof value !== 'string' || value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new HttpError(400, 'malformed', `${field} must be base64`);
  const out = new Uint8Array(Buffer.from(value, 'base64'));
  if (options.nonEmpty !== false && out.length === 0) throw new HttpError(400, 'malformed', `${field} must not be empty`);
  return out;
}

export function optionalB64(value: unknown, field: string): Uint8Array | undefined {
  return value === undefined ? undefined : unb64(value, field);
}

/** A lone surrogate: a high one not followed by a low one, or a low one not after a high one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * A client or user id: 1..256 characters, no control characters, well-formed
 * UTF-16 (ids are compared exactly as sent in JSON). A lone surrogate is
 * refused: written as UTF-8 (a credential identity, a SQLite text) it
 * becomes U+FFFD, so `"x\ud800"` registered a credential identity that
 * squatted the real id `"x\ufffd"` (identity-taken for its owner), and on
 * SQLite a token that failed on its first use.
 */
export function clientId(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 256 || /[\u0000-\u001f\u007f]/.test(value) || LONE_SURROGATE.test(value)) {
    throw new HttpError(400, 'malformed', `${field} must be a string of 1..256 characters, well-formed UTF-16, without control characters`);
  }
  return value;
}

export function idList(value: unknown, field: string, max: number): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > max) throw new HttpError(400, 'malformed', `${field} must be a list of at most ${max}`);
  return value.map((v, i) => clientId(v, `${field}[${i}]`));
}

/** A natural number up to 2^53 - 2 (exact in JavaScript) in a JSON body: a JSON number; absent gives `fallback` (`null` or a string of digits is 400: they were taken for `fallback` and for that number). */
export function natural(value: unknown, field: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > Number.MAX_SAFE_INTEGER - 1) throw new HttpError(400, 'malformed', `${field} must be a natural number below 2^53`);
  return value;
}

/** The same in a query string (`URLSearchParams.get`): decimal digits; absent (`null`) gives `fallback`. */
export function naturalParam(value: string | null, field: string, fallback: number): number {
  if (value === null) return fallback;
  if (!/^\d{1,16}$/.test(value)) throw new HttpError(400, 'malformed', `${field} must be a natural number below 2^53`);
  return natural(Number(value), field, fallback);
}

/** A group id in a path or query: lower-case hex of 1..255 bytes. */
export function hexGroupId(value: string | null | undefined): Uint8Array {
  if (typeof value !== 'string' || !/^([0-9a-f]{2}){1,255}$/.test(value)) throw new HttpError(400, 'malformed', 'group id must be lower-case hex of 1..255 bytes');
  return fromHex(value);
}
