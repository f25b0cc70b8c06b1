import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';
import { submitRateExceeded } from './limits.js';
import { RETURN_SUBMIT_TOKEN, TAKE_SUBMIT_TOKEN } from './lua.js';

export interface SubmitRateLimiterOptions {
  /** Submissions per second one tenant may make on average (may be fractional). */
  readonly ratePerSec: number;
  /** Submissions one tenant may make at once (the bucket's size). */
  readonly burst: number;
}

/**
 * Each tenant's rate of submissions, as a token bucket in Redis (TAKE_SUBMIT_TOKEN), so the
 * limit holds for the whole grid however many replicas take submissions.
 *
 * @example
 * ```ts
 * const limiter = new SubmitRateLimiter(redis, keys, { ratePerSec: 20, burst: 100 });
 * const token = await limiter.take('acme'); // throws LimitExceededError when over the rate
 * // … the submission is refused after all:
 * await token.giveBack();
 * ```
 */
export class SubmitRateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: SubmitRateLimiterOptions,
  ) {}

  /**
   * Takes one submission of the tenant's allowance, or throws LimitExceededError (with
   * retryAfterMs) when there is none left right now.
   */
  async take(tenant: string): Promise<{ giveBack(): Promise<void> }> {
    const { ratePerSec, burst } = this.options;
    const key = this.keys.tenantSubmits(tenant);
    const reply = (await TAKE_SUBMIT_TOKEN.run(this.redis, [key], [String(ratePerSec), String(burst)])) as [number, number];
    if (reply[0] !== 1) throw submitRateExceeded(tenant, ratePerSec, burst, Number(reply[1]));
    let given = false;
    return {
      giveBack: async () => {
        if (given) return;
        given = true;
        await RETURN_SUBMIT_TOKEN.run(this.redis, [key], [String(burst)]);
      },
    };
  }
}
