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

  /** Take `cost` tokens for `key`; false when there are not enough (the request is refused). */
  take(key: string, cost = 1): boolean {
    const now = performance.now() / 1000;
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size >= this.maxKeys) this.#sweep(now);
      if (this.#buckets.size >= this.maxKeys) return this.#draw(this.#overflow, now, cost);
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
