// A per-user limit on requests that reach other people (issue 18), one for each kind: stage 07's
// TEXT and OFFER (each notifies the whole room) and stage 08's LOOKUP (it reveals who is online)
// and INVITE (it rings someone's terminal). A token bucket, and a count of refusals in a row: a
// request that finds no token is REFUSED rate_limited and the connection stays; the maxRefused-th
// refusal in a row (none let through in between) is ERROR rate_limited and closes it, since a
// client that ignores refusals is flooding.
import { ProtocolError } from '#shared/protocol-error.ts';
import { TokenBucket } from '#shared/token-bucket.ts';
import { ErrorCode } from './protocol.ts';

export interface RequestLimitOptions {
  /**
   * How the refusal counts the requests: "at most 10 messages at once" (stage 07's TEXT and OFFER
   * words, kept as they were). Without it the refusal names the type: "too many INVITE: at most 5 at once".
   */
  plural?: string;
  /** A monotonic clock in milliseconds (tests pass a fake one). */
  now?: () => number;
}

export class RequestLimit {
  private readonly bucket: TokenBucket;
  private readonly plural: string | undefined;
  private refusedInARow = 0;

  /**
   * @param what the request's type in messages ("INVITE")
   * @param burst requests at once (the bucket starts full)
   * @param refillMs one more every refillMs
   * @param maxRefused the refusal in a row that closes the connection
   */
  constructor(
    private readonly what: string,
    private readonly burst: number,
    private readonly refillMs: number,
    private readonly maxRefused: number,
    { plural, now = () => performance.now() }: RequestLimitOptions = {},
  ) {
    this.bucket = new TokenBucket(refillMs, burst, now);
    this.plural = plural;
  }

  /**
   * Takes a token: true lets the request through. False: the caller sends REFUSED rate_limited
   * with refusal() as its message. Throws ProtocolError rate_limited on the maxRefused-th refusal in a row.
   */
  take(): boolean {
    if (this.bucket.tryTake()) {
      this.refusedInARow = 0;
      return true;
    }
    if (++this.refusedInARow >= this.maxRefused) {
      throw new ProtocolError(ErrorCode.rateLimited, `${this.maxRefused} ${this.what} in a row were refused for coming too often; you kept sending them regardless`);
    }
    return false;
  }

  /** Why the last take() said no, with when to try again. */
  refusal(): string {
    const atMost = this.plural === undefined ? `too many ${this.what}: at most ${this.burst}` : `at most ${this.burst} ${this.plural}`;
    const every = this.refillMs >= 1000 ? `${this.refillMs / 1000} s` : `${this.refillMs} ms`;
    return `${atMost} at once, then 1 every ${every}; try again in ${Math.ceil(this.bucket.msUntilNextToken())} ms`;
  }
}
