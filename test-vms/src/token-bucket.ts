/**
 * Bytes may leave at `bytesPerSecond`, with bursts up to `burstBytes`. reserve(n, nowMs) takes n tokens
 * (the balance may go negative: a reservation) and returns how many ms the caller must wait before sending
 * them. Pure: the clock is the caller's. One bucket shared by every connection is one link.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    readonly bytesPerSecond: number,
    readonly burstBytes: number,
    nowMs = 0,
  ) {
    if (!(bytesPerSecond > 0) || !(burstBytes > 0)) throw new RangeError('rate and burst must be > 0');
    this.tokens = burstBytes;
    this.last = nowMs;
  }
  reserve(bytes: number, nowMs: number): number {
    const elapsed = Math.max(0, nowMs - this.last);
    this.last = Math.max(this.last, nowMs);
    this.tokens = Math.min(this.burstBytes, this.tokens + (elapsed * this.bytesPerSecond) / 1000);
    this.tokens -= bytes;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.bytesPerSecond) * 1000;
  }
}

/** Megabits per second → bytes per second. */
export const mbps = (megabits: number) => (megabits * 1e6) / 8;
