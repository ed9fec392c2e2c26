/**
 * PostgreSQL hashtextextended(text, 0) (Jenkins lookup3, hash_bytes_extended, little-endian) and hashtext (its low 32 bits),
 * with second preimages of each, for the review tests of the inbox lock (test/ds-inbox-review) and of the AS and pairing
 * locks (test/ds-lock-collision).
 */
const rot = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;
function mix(s: number[]): number[] {
  let [a, b, c] = s as [number, number, number];
  a = (a - c) >>> 0; a = (a ^ rot(c, 4)) >>> 0; c = (c + b) >>> 0;
  b = (b - a) >>> 0; b = (b ^ rot(a, 6)) >>> 0; a = (a + c) >>> 0;
  c = (c - b) >>> 0; c = (c ^ rot(b, 8)) >>> 0; b = (b + a) >>> 0;
  a = (a - c) >>> 0; a = (a ^ rot(c, 16)) >>> 0; c = (c + b) >>> 0;
  b = (b - a) >>> 0; b = (b ^ rot(a, 19)) >>> 0; a = (a + c) >>> 0;
  c = (c - b) >>> 0; c = (c ^ rot(b, 4)) >>> 0; b = (b + a) >>> 0;
  return [a, b, c]; }
/** mix run backwards: unmix(mix(s)) = s. */
function unmix(s: number[]): number[] {
  let [a, b, c] = s as [number, number, number];
  b = (b - a) >>> 0; c = (c ^ rot(b, 4)) >>> 0; c = (c + b) >>> 0;
  a = (a - c) >>> 0; b = (b ^ rot(a, 19)) >>> 0; b = (b + a) >>> 0;
  c = (c - b) >>> 0; a = (a ^ rot(c, 16)) >>> 0; a = (a + c) >>> 0;
  b = (b - a) >>> 0; c = (c ^ rot(b, 8)) >>> 0; c = (c + b) >>> 0;
  a = (a - c) >>> 0; b = (b ^ rot(a, 6)) >>> 0; b = (b + a) >>> 0;
  c = (c - b) >>> 0; a = (a ^ rot(c, 4)) >>> 0; a = (a + c) >>> 0;
  return [a, b, c]; }
function fin(s: number[]): number[] {
  let [a, b, c] = s as [number, number, number];
  c = (c ^ b) >>> 0; c = (c - rot(b, 14)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 11)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 25)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 16)) >>> 0;
  a = (a ^ c) >>> 0; a = (a - rot(c, 4)) >>> 0;
  b = (b ^ a) >>> 0; b = (b - rot(a, 14)) >>> 0;
  c = (c ^ b) >>> 0; c = (c - rot(b, 24)) >>> 0;
  return [a, b, c]; }
function unfin(s: number[]): number[] {
  let [a, b, c] = s as [number, number, number];
  c = (c + rot(b, 24)) >>> 0; c = (c ^ b) >>> 0;
  b = (b + rot(a, 14)) >>> 0; b = (b ^ a) >>> 0;
  a = (a + rot(c, 4)) >>> 0; a = (a ^ c) >>> 0;
  c = (c + rot(b, 16)) >>> 0; c = (c ^ b) >>> 0;
  b = (b + rot(a, 25)) >>> 0; b = (b ^ a) >>> 0;
  a = (a + rot(c, 11)) >>> 0; a = (a ^ c) >>> 0;
  c = (c + rot(b, 14)) >>> 0; c = (c ^ b) >>> 0;
  return [a, b, c]; }
const w32 = (k: Uint8Array, o: number): number => (k[o]! | (k[o + 1]! << 8) | (k[o + 2]! << 16) | (k[o + 3]! << 24)) >>> 0;
/** PostgreSQL's hash_bytes_extended(k, seed 0): hashtextextended(text, 0) as a signed 64-bit. */
export function pgHash(str: string): bigint {
  const k = Buffer.from(str, 'utf8');
  let len = k.length, o = 0;
  const init = (0x9e3779b9 + len + 3923095) >>> 0;
  let s = [init, init, init];
  while (len >= 12) { s = mix([(s[0] + w32(k, o)) >>> 0, (s[1] + w32(k, o + 4)) >>> 0, (s[2] + w32(k, o + 8)) >>> 0]); o += 12; len -= 12; }
  let [a, b, c] = s as [number, number, number];
  const t = (i: number): number => k[o + i]!;
  switch (len) {
    case 11: c = (c + (t(10) << 24)) >>> 0; // fall through
    case 10: c = (c + (t(9) << 16)) >>> 0;
    case 9: c = (c + (t(8) << 8)) >>> 0;
    case 8: b = (b + (t(7) << 24)) >>> 0;
    case 7: b = (b + (t(6) << 16)) >>> 0;
    case 6: b = (b + (t(5) << 8)) >>> 0;
    case 5: b = (b + t(4)) >>> 0;
    case 4: a = (a + (t(3) << 24)) >>> 0;
    case 3: a = (a + (t(2) << 16)) >>> 0;
    case 2: a = (a + (t(1) << 8)) >>> 0;
    case 1: a = (a + t(0)) >>> 0;
  }
  [a, b, c] = fin([a, b, c]);
  return BigInt.asIntN(64, (BigInt(b) << 32n) | BigInt(c));
}
/** An id x (14 printable ASCII characters starting with `lead`, 3 chars) with pgHash(prefix + x) === pgHash(prefix + target); prefix is 9 bytes. */
export function collide(prefix: string, target: string, lead: string): string {
  const h = BigInt.asUintN(64, pgHash(prefix + target));
  const bf = Number(h >> 32n), cf = Number(h & 0xffffffffn);
  const k = Buffer.from(prefix + lead, 'utf8');
  if (k.length !== 12) throw new Error('prefix + lead must be 12 bytes');
  const len = 23;
  const init = (0x9e3779b9 + len + 3923095) >>> 0;
  const [a0, b0, c0] = mix([(init + w32(k, 0)) >>> 0, (init + w32(k, 4)) >>> 0, (init + w32(k, 8)) >>> 0]);
  const ok = (x: number) => x >= 0x20 && x <= 0x7e;
  for (let af = 0; af < 2 ** 32; af++) {
    const [a1, b1, c1] = unfin([af >>> 0, bf, cf]);
    const dc = (c1 - c0) >>> 0;
    if ((dc & 0xff) !== 0) continue;
    const da = (a1 - a0) >>> 0, db = (b1 - b0) >>> 0;
    const bytes = [da & 255, (da >>> 8) & 255, (da >>> 16) & 255, da >>> 24, db & 255, (db >>> 8) & 255, (db >>> 16) & 255, db >>> 24, (dc >>> 8) & 255, (dc >>> 16) & 255, dc >>> 24];
    if (bytes.every(ok)) return lead + Buffer.from(bytes).toString('latin1');
  }
  throw new Error('none');
}
/** PostgreSQL's hashtext(text) (hash_bytes: the low 32 bits of hashtextextended(text, 0)), a signed 32-bit. */
export const pgHash32 = (str: string): number => Number(BigInt.asIntN(32, pgHash(str)));
/**
 * A string x (24 bytes in all with `prefix`, printable ASCII) with pgHash32(prefix + x) === target: the state before the last
 * of two 12-byte blocks is known (no seed), so the last block is solved for (final and mix run backwards), a random
 * choice of the free words until its bytes are printable (~150,000 tries). `prefix` is at most 12 bytes.
 */
export function preimage32(prefix: string, target: number): string {
  const head = Buffer.from(prefix, 'utf8');
  if (head.length > 12) throw new Error('prefix of at most 12 bytes');
  const lead = Buffer.alloc(12 - head.length, 0x5f); // '_'
  const k = Buffer.concat([head, lead]);
  const init = (0x9e3779b9 + 24 + 3923095) >>> 0;
  const s1 = mix([(init + w32(k, 0)) >>> 0, (init + w32(k, 4)) >>> 0, (init + w32(k, 8)) >>> 0]);
  const ok = (x: number) => x >= 0x20 && x <= 0x7e;
  const random = () => (Math.random() * 2 ** 32) >>> 0;
  for (let i = 0; i < 1e8; i++) {
    const before = unmix(unfin([random(), random(), target >>> 0]));
    const words = before.map((w, j) => (w - s1[j]!) >>> 0);
    const block = Buffer.alloc(12);
    words.forEach((w, j) => block.writeUInt32LE(w, 4 * j));
    if (block.every(ok)) return lead.toString('latin1') + block.toString('latin1');
  }
  throw new Error('none');
}
