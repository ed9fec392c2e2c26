/**
 * Token buckets keyed by client id or IP address (docs/PROTOCOL.md §8.6):
 * `rate` tokens a second up to `burst`; idle buckets are forgotten so an
 * attacker cycling keys cannot grow the map without bound.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    readonly rate: number,
    readonly burst: number,
    readonly maxKeys = 100_000,
  ) {}

  /** Take `cost` tokens for `key`; false when there are not enough (the request is refused). */
  take(key: string, cost = 1): boolean {
    const now = performance.now() / 1000;
    let b = this.#buckets.get(key);
    if (!b) {
      if (this.#buckets.size >= this.maxKeys) this.#sweep(now);
      b = { tokens: this.burst, at: now };
      this.#buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + (now - b.at) * this.rate);
    b.at = now;
    if (b.tokens < cost) return false;
    b.tokens -= cost;
    return true;
  }

  /** Drop full buckets (idle keys); if still too many, drop the oldest. */
  #sweep(now: number): void {
    for (const [k, b] of this.#buckets) if (b.tokens + (now - b.at) * this.rate >= this.burst) this.#buckets.delete(k);
    while (this.#buckets.size >= this.maxKeys) this.#buckets.delete(this.#buckets.keys().next().value!);
  }
}
