/**
 * TLS presentation language encoding (RFC 8446 §3) with MLS' variable-size
 * vector lengths (RFC 9420 §2.1.2), for the project's own messages (Paired
 * MLS pairing messages and the like). Decoding is strict: every read is
 * bounds-checked, lengths use the minimal varint form, and `Reader.end()`
 * rejects trailing bytes, so one value has exactly one encoding.
 */

/**
 * Thrown by `Reader` on malformed input (truncated, an invalid or
 * non-minimal length prefix, trailing bytes) and by `Writer` on a length
 * its varint cannot carry. A plain `Error`, not an `MlsError`: the
 * decoders (`decodeIntent`, the pairing and DMLS message decoders, …)
 * throw it, and the operations that take a received message
 * (`PairedDevice.receive`, `DMember.unprotect`, …) turn it into their own
 * typed error with code `malformed`.
 */
export class CodecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CodecError';
  }
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

  u8(value: number): this {
    return this.#push(Uint8Array.of(value & 0xff));
  }

  u16(value: number): this {
    return this.#push(Uint8Array.of((value >>> 8) & 0xff, value & 0xff));
  }

  u32(value: number): this {
    const out = new Uint8Array(4);
    new DataView(out.buffer).setUint32(0, value >>> 0);
    return this.#push(out);
  }

  u64(value: bigint | number): this {
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, BigInt(value));
    return this.#push(out);
  }

  /** Fixed-size bytes (`opaque x[n]`). */
  raw(bytes: Uint8Array): this {
    return this.#push(bytes.slice());
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
    return this.#take(n).slice();
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
