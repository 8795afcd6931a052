// Rate limiting with a token bucket: tokens drip in at a steady rate up to a
// small capacity, and each thing let through (an audio frame, a request) costs
// one token. A steady stream at the nominal rate always finds a token; short
// bursts (a sound card that hands over two buffers at once, a user clicking
// through rooms) use the stored tokens; anything faster than the rate for
// longer than the burst finds the bucket empty.

export class TokenBucket {
  private tokens: number;
  private lastRefill: number;

  /**
   * @param msPerToken one token drips in every msPerToken milliseconds
   * @param capacity the most tokens stored, i.e. the largest burst; starts full
   * @param now a monotonic clock in milliseconds (tests pass a fake one)
   */
  constructor(
    private readonly msPerToken: number,
    private readonly capacity: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = capacity;
    this.lastRefill = now();
  }

  /** Takes a token if one is available. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until tryTake() will succeed (0 if it would now). */
  msUntilNextToken(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : (1 - this.tokens) * this.msPerToken;
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.lastRefill) / this.msPerToken);
    this.lastRefill = now;
  }
}
