/**
 * A cursor over bytes, reading RFC 9420 §2.1.2 variable-length vectors by
 * hand, so that a test checks the bytes sent rather than what the engine
 * reads back (test/intents-framing, test/seed003-wire).
 */
export class Cursor {
  at = 0;
  constructor(readonly bytes: Uint8Array) {}
  u8(): number {
    if (this.at >= this.bytes.length) throw new Error('truncated');
    return this.bytes[this.at++]!;
  }
  /** A big-endian unsigned integer of `n` bytes (n ≤ 6). */
  uint(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + this.u8();
    return v;
  }
  take(n: number): Uint8Array {
    if (this.at + n > this.bytes.length) throw new Error('truncated');
    const out = this.bytes.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  /** An `opaque<V>`: a 1-, 2- or 4-byte length (its top two bits say which), then that many bytes. */
  vector(): Uint8Array {
    const first = this.u8();
    const prefix = 1 << (first >> 6);
    if (prefix === 8) throw new Error('bad vector length');
    let len = first & 0x3f;
    for (let i = 1; i < prefix; i++) len = len * 256 + this.u8();
    return this.take(len);
  }
  get done(): boolean {
    return this.at === this.bytes.length;
  }
}
