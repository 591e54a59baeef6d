/**
 * Token buckets by key (a client id, a source address): `ratePerSecond` sustained, `burst` at
 * once. In memory: a limit protects this gateway process, which is what a flood hits.
 *
 * At most `maxKeys` buckets are kept, the least recently used one making room for a new key, so
 * that keys a caller makes up (source addresses: an IPv6 client has 2^64 of them) cost bounded
 * memory and cannot empty the table of the buckets in use. A bucket dropped for room comes back
 * full, which is what it would be after `burst / ratePerSecond` seconds of quiet anyway.
 */
export class RateLimiter {
  /** In order of last use (a Map keeps insertion order; a used key is moved to the end). */
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly maxKeys = 100_000,
  ) {}

  /** Takes a token for `key`; false when the bucket is empty. */
  take(key: string, now = Date.now()): boolean {
    let b = this.buckets.get(key);
    if (b) this.buckets.delete(key);
    else {
      b = { tokens: this.burst, at: now };
      if (this.buckets.size >= this.maxKeys) this.buckets.delete(this.buckets.keys().next().value!);
    }
    this.buckets.set(key, b);
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.ratePerSecond);
    b.at = now;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
