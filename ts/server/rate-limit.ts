import { SocketAddress, isIP } from 'node:net';

/**
 * The key of an address's budgets (docs/PROTOCOL.md §8.6): an IPv4 address,
 * also IPv4-mapped or embedded (NAT64 64:ff9b::/96, 6to4, Teredo), is its
 * first `v4` bits; an IPv6 address its first `prefix` bits (one holder has
 * a whole /64), zone kept; anything else itself.
 */
export function addressKey(address: string | undefined, prefix = 64, v4 = 32): string {
  if (address === undefined) return 'unknown';
  const family = isIP(address);
  if (family === 0) return address;
  const zone = family === 6 ? address.indexOf('%') : -1;
  let a = family === 4 ? `::ffff:${address}` : zone < 0 ? address : address.slice(0, zone);
  // A dotted tail (::ffff:1.2.3.4) as two groups.
  const dots = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (dots) a = a.slice(0, dots.index) + (+dots[1]! * 256 + +dots[2]!).toString(16) + ':' + (+dots[3]! * 256 + +dots[4]!).toString(16);
  const [head, tail] = a.split('::').map((h) => (h ? h.split(':').map((g) => parseInt(g, 16)) : []));
  const g = tail ? [...head!, ...Array<number>(8 - head!.length - tail.length).fill(0), ...tail] : head!;
  const zero = (from: number, to: number) => g.slice(from, to).every((x) => x === 0);
  // Replies to these reach the IPv4 address they embed (Teredo's inverted): it holds them.
  const ipv4 =
    (zero(0, 5) && g[5] === 0xffff) || (g[0] === 0x64 && g[1] === 0xff9b && zero(2, 6)) ? g[6]! * 65536 + g[7]!
    : g[0] === 0x2002 ? g[1]! * 65536 + g[2]!
    : g[0] === 0x2001 && g[1] === 0 ? (g[6]! * 65536 + g[7]!) ^ -1
    : undefined;
  if (ipv4 !== undefined) {
    const u = ipv4 >>> 0;
    const n = u - (u % 2 ** (32 - v4));
    return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.') + (v4 < 32 ? `/${v4}` : '');
  }
  const masked = g.map((x, i) => x & (0xffff << Math.max(0, Math.min(16, 16 * (i + 1) - prefix))) & 0xffff);
  return `${new SocketAddress({ address: masked.map((x) => x.toString(16)).join(':'), family: 'ipv6' }).address}/${prefix}${zone < 0 ? '' : address.slice(zone)}`;
}

/**
 * Token buckets keyed by client id or IP address (docs/PROTOCOL.md §8.6):
 * `rate` tokens a second up to `burst`. The map holds at most `maxKeys`
 * buckets. Only full buckets (idle keys: forgetting one changes nothing)
 * are ever dropped; a bucket that has been drawn on is kept until it has
 * refilled, so a client cannot reset its own bucket by making the limiter
 * forget it (churning other keys). While the map is full of partly used
 * buckets, new keys draw from one shared overflow bucket.
 */
interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #overflow: Bucket;
  #sweptAt = -Infinity;

  constructor(
    readonly rate: number,
    readonly burst: number,
    readonly maxKeys = 100_000,
  ) {
    this.#overflow = { tokens: burst, at: performance.now() / 1000 };
  }

  /** Take `cost` tokens for `key`; false when there are not enough (the request is refused). While the map is full, `overflow` answers for a new key instead of the shared bucket. */
  take(key: string, cost = 1, overflow?: () => boolean): boolean {
    const now = performance.now() / 1000;
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size >= this.maxKeys) this.#sweep(now);
      if (this.#buckets.size >= this.maxKeys) return overflow ? overflow() : this.#draw(this.#overflow, now, cost);
      b = { tokens: this.burst, at: now };
      this.#buckets.set(key, b);
    }
    return this.#draw(b, now, cost);
  }

  #draw(b: Bucket, now: number, cost: number): boolean {
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.rate);
    b.at = now;
    if (b.tokens < cost) return false;
    b.tokens -= cost;
    return true;
  }

  /** Drop full buckets (idle keys) only; at most once a second (a sweep walks the whole map). */
  #sweep(now: number): void {
    if (now - this.#sweptAt < 1) return;
    this.#sweptAt = now;
    for (const [k, b] of this.#buckets) if (b.tokens + (now - b.at) * this.rate >= this.burst) this.#buckets.delete(k);
  }
}
