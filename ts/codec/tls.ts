/**
 * TLS presentation language encoding (RFC 8446 §3) with MLS' variable-size
 * vector lengths (RFC 9420 §2.1.2), for the project's own messages (Paired
 * MLS pairing messages and the like). Decoding is strict: every read is
 * bounds-checked, lengths use the minimal varint form, and `Reader.end()`
 * rejects trailing bytes, so one value has exactly one encoding.
 */

import { MlsError } from '../mls/errors.js';

/** Malformed input to a decoder, or a value an encoder's type cannot hold: an `MlsError` with code `MALFORMED`. */
export class CodecError extends MlsError<'MALFORMED'> {
  constructor(message: string) {
    super('MALFORMED', message);
    this.name = 'CodecError';
  }
}

/** `value` when it is a whole number from 0 to `max`, else CodecError. */
function uint(value: number, max: number, what: string): number {
  if (!Number.isInteger(value) || value < 0 || value > max) throw new CodecError(`${what} ${String(value)} out of range`);
  return value;
}

/** Largest length the 4-byte varint can carry (RFC 9420 §2.1.2). */
const MAX_VARINT = 0x3fffffff;

/** Writes the TLS presentation language (RFC 8446 §3) with MLS variable-length vectors (RFC 9420 §2.1.2). */
export class Writer {
  #chunks: Uint8Array[] = [];
  #length = 0;

  #push(bytes: Uint8Array): this {
    this.#chunks.push(bytes);
    this.#length += bytes.length;
    return this;
  }

  // The integer writers refuse what their type cannot hold (it used to be
  // masked: a leaf index of 2^32 + 1 or 1.5 was written as 1, and a
  // signature over the encoding then held for the value given).
  u8(value: number): this {
    return this.#push(Uint8Array.of(uint(value, 0xff, 'uint8')));
  }

  u16(value: number): this {
    const v = uint(value, 0xffff, 'uint16');
    return this.#push(Uint8Array.of(v >>> 8, v & 0xff));
  }

  u32(value: number): this {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, uint(value, 0xffffffff, 'uint32'));
    return this.#push(out);
  }

  u64(value: bigint | number): this {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new CodecError(`uint64 ${String(value)} is not a safe integer (pass a bigint)`);
    const v = BigInt(value);
    if (v < 0n || v > 0xffffffffffffffffn) throw new CodecError(`uint64 ${String(value)} out of range`);
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, v);
    return this.#push(out);
  }

  /** Fixed-size bytes (`opaque x[n]`). */
  raw(bytes: Uint8Array): this {
    // A copy of its own (a Node Buffer's slice() is a view): finish() wipes it.
    return this.#push(new Uint8Array(bytes));
  }

  /** `opaque x<V>`: varint length then the bytes. */
  vector(bytes: Uint8Array): this {
    return this.varint(bytes.length).raw(bytes);
  }

  varint(n: number): this {
    if (!Number.isInteger(n) || n < 0 || n > MAX_VARINT) throw new CodecError(`length ${n} out of range`);
    if (n < 0x40) return this.u8(n);
    if (n < 0x4000) return this.u16(0x4000 | n);
    return this.u32((0x80000000 | n) >>> 0);
  }

  /** `T x<V>` for a list of items, each written by `item`. */
  list<T>(items: readonly T[], item: (w: Writer, value: T) => void): this {
    const inner = new Writer();
    for (const value of items) item(inner, value);
    const body = inner.finish();
    try {
      return this.vector(body);
    } finally {
      body.fill(0);
    }
  }

  /**
   * The encoding, once: the writer's own copies of what it was given are
   * wiped and dropped (a message may carry a secret: a proof, a seed), so
   * it is empty afterwards.
   */
  finish(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let offset = 0;
    for (const chunk of this.#chunks) {
      out.set(chunk, offset);
      offset += chunk.length;
      chunk.fill(0);
    }
    this.#chunks = [];
    this.#length = 0;
    return out;
  }
}

/** Reads what `Writer` writes; throws `CodecError` on truncated, oversized or non-minimal input. */
export class Reader {
  readonly #bytes: Uint8Array;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  #take(n: number): Uint8Array {
    if (n > this.#bytes.length - this.#offset) throw new CodecError('truncated');
    const out = this.#bytes.subarray(this.#offset, this.#offset + n);
    this.#offset += n;
    return out;
  }

  u8(): number {
    return this.#take(1)[0]!;
  }

  u16(): number {
    const b = this.#take(2);
    return (b[0]! << 8) | b[1]!;
  }

  u32(): number {
    const b = this.#take(4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0);
  }

  u64(): bigint {
    const b = this.#take(8);
    return new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0);
  }

  raw(n: number): Uint8Array {
    // A copy (a Node Buffer's slice() is a view): a field wiped later leaves the input as it was.
    return new Uint8Array(this.#take(n));
  }

  varint(): number {
    const first = this.u8();
    const prefix = first >> 6;
    if (prefix === 0) return first;
    if (prefix === 1) {
      const n = ((first & 0x3f) << 8) | this.u8();
      if (n < 0x40) throw new CodecError('non-minimal length');
      return n;
    }
    if (prefix === 2) {
      const rest = this.#take(3);
      const n = (((first & 0x3f) << 24) | (rest[0]! << 16) | (rest[1]! << 8) | rest[2]!) >>> 0;
      if (n < 0x4000) throw new CodecError('non-minimal length');
      return n;
    }
    throw new CodecError('invalid length prefix');
  }

  vector(): Uint8Array {
    return this.raw(this.varint());
  }

  list<T>(item: (r: Reader) => T): T[] {
    const inner = new Reader(this.vector());
    const out: T[] = [];
    while (!inner.done) out.push(item(inner));
    return out;
  }

  get done(): boolean {
    return this.#offset === this.#bytes.length;
  }

  /** Bytes read so far (to slice out a structure that was just parsed). */
  get offset(): number {
    return this.#offset;
  }

  /** Require that every byte was read. */
  end(): void {
    if (!this.done) throw new CodecError('trailing bytes');
  }
}
