import { InvalidOptionError } from './errors.js';

/** How a failed task is retried. Pure data; see retryDelayMs for the math. */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Each retry waits this many times longer than the one before. */
  readonly multiplier: number;
  /** Spread of the random jitter as a fraction of the delay, 0..1 (0.2: ±20 %). */
  readonly jitter: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 3,
  initialDelayMs: 1_000,
  maxDelayMs: 60_000,
  multiplier: 2,
  jitter: 0.2,
};

export function validateRetryPolicy(policy: RetryPolicy, name = 'retry'): RetryPolicy {
  const check = (field: keyof RetryPolicy, ok: boolean, allowed: string): void => {
    if (!ok) throw new InvalidOptionError(`${name}.${field}`, allowed, policy[field]);
  };
  check('maxAttempts', Number.isInteger(policy.maxAttempts) && policy.maxAttempts >= 1 && policy.maxAttempts <= 100, 'an integer from 1 to 100');
  check('initialDelayMs', Number.isFinite(policy.initialDelayMs) && policy.initialDelayMs >= 0, 'a duration of 0 ms or more');
  check('maxDelayMs', Number.isFinite(policy.maxDelayMs) && policy.maxDelayMs >= policy.initialDelayMs, `a duration of at least initialDelayMs (${policy.initialDelayMs} ms)`);
  check('multiplier', Number.isFinite(policy.multiplier) && policy.multiplier >= 1, 'a number of 1 or more');
  check('jitter', Number.isFinite(policy.jitter) && policy.jitter >= 0 && policy.jitter <= 1, 'a fraction from 0 to 1');
  return policy;
}

/**
 * Delay before the retry that follows failed attempt `attempt` (1-based): exponential growth
 * capped at maxDelayMs, then spread by ±jitter. `random` returns a number in [0, 1).
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number, random: () => number): number {
  const exponent = Math.max(0, attempt - 1);
  const growth = policy.multiplier ** exponent;
  const base = policy.initialDelayMs === 0 ? 0 : Math.min(policy.maxDelayMs, policy.initialDelayMs * growth);
  const spread = 1 - policy.jitter + 2 * policy.jitter * random();
  return Math.max(0, Math.round(Math.min(policy.maxDelayMs * (1 + policy.jitter), base * spread)));
}

/** Whether a task that has failed `attemptsMade` times should run again. */
export function shouldRetry(policy: RetryPolicy, attemptsMade: number, retryable: boolean): boolean {
  return retryable && attemptsMade < policy.maxAttempts;
}
