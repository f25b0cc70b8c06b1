import type { Redis } from 'ioredis';
import type { Keys } from './keys.js';
import { submitRateExceeded } from './limits.js';
import { RETURN_SUBMIT_TOKEN, TAKE_SUBMIT_TOKEN } from './lua.js';

/** A tenant's rate: submissions a second on average (may be fractional), and at once (the bucket's size). */
export interface SubmitRate {
  readonly submitRate: number;
  readonly submitBurst: number;
  /** The tenant's own rate (from --tenant-limits), not the grid's. */
  readonly own: boolean;
}

/**
 * Each tenant's rate of submissions, as a token bucket in Redis (TAKE_SUBMIT_TOKEN), so the
 * limit holds for the whole grid however many replicas take submissions.
 *
 * @example
 * ```ts
 * const limiter = new SubmitRateLimiter(redis, keys, () => ({ submitRate: 20, submitBurst: 100, own: false }));
 * const token = await limiter.take('acme'); // throws LimitExceededError when over the rate
 * // … the submission is refused after all:
 * await token.giveBack();
 * ```
 */
export class SubmitRateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** Each tenant's rate. */
    private readonly rateOf: (tenant: string) => SubmitRate,
  ) {}

  /**
   * Takes one submission of the tenant's allowance, or throws LimitExceededError (with
   * retryAfterMs) when there is none left right now.
   */
  async take(tenant: string): Promise<{ giveBack(): Promise<void> }> {
    const { submitRate, submitBurst, own } = this.rateOf(tenant);
    const key = this.keys.tenantSubmits(tenant);
    const reply = (await TAKE_SUBMIT_TOKEN.run(this.redis, [key], [String(submitRate), String(submitBurst)])) as [number, number];
    if (reply[0] !== 1) throw submitRateExceeded(tenant, submitRate, submitBurst, Number(reply[1]), own);
    let given = false;
    return {
      giveBack: async () => {
        if (given) return;
        given = true;
        await RETURN_SUBMIT_TOKEN.run(this.redis, [key], [String(submitBurst)]);
      },
    };
  }
}
