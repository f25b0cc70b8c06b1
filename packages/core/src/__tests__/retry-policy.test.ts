import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../errors.js';
import { DEFAULT_RETRY_POLICY, retryDelayMs, shouldRetry, validateRetryPolicy, type RetryPolicy } from '../retry-policy.js';

const POLICY: RetryPolicy = { maxAttempts: 5, initialDelayMs: 1_000, maxDelayMs: 10_000, multiplier: 2, jitter: 0.2 };
const fixed = (value: number) => (): number => value;
const ALMOST_ONE = 1 - Number.EPSILON;

describe('retryDelayMs', () => {
  const cases: { random: number; name: string; delays: number[] }[] = [
    // attempts 1..7: 1000, 2000, 4000, 8000, then capped at 10000
    { name: 'no jitter (random 0.5)', random: 0.5, delays: [1_000, 2_000, 4_000, 8_000, 10_000, 10_000, 10_000] },
    { name: 'lowest jitter (random 0)', random: 0, delays: [800, 1_600, 3_200, 6_400, 8_000, 8_000, 8_000] },
    { name: 'highest jitter (random ~1)', random: ALMOST_ONE, delays: [1_200, 2_400, 4_800, 9_600, 12_000, 12_000, 12_000] },
  ];
  it.each(cases)('$name: grows exponentially, then stays at the cap', ({ random, delays }) => {
    expect(delays.map((_, i) => retryDelayMs(POLICY, i + 1, fixed(random)))).toEqual(delays);
  });

  it('stays within ±jitter of the capped exponential delay for any random value', () => {
    for (let attempt = 1; attempt <= 8; attempt++) {
      const base = Math.min(POLICY.maxDelayMs, POLICY.initialDelayMs * 2 ** (attempt - 1));
      for (let r = 0; r < 1; r += 0.05) {
        const delay = retryDelayMs(POLICY, attempt, fixed(r));
        expect(delay).toBeGreaterThanOrEqual(Math.floor(base * 0.8));
        expect(delay).toBeLessThanOrEqual(Math.ceil(base * 1.2));
        expect(Number.isInteger(delay)).toBe(true);
      }
    }
  });

  const shapes: { name: string; policy: RetryPolicy; attempt: number; random: number; delay: number }[] = [
    { name: 'attempt 0 counts as the first', policy: POLICY, attempt: 0, random: 0.5, delay: 1_000 },
    { name: 'jitter 0 ignores random', policy: { ...POLICY, jitter: 0 }, attempt: 3, random: 0.99, delay: 4_000 },
    { name: 'multiplier 1 is a constant delay', policy: { ...POLICY, multiplier: 1 }, attempt: 5, random: 0.5, delay: 1_000 },
    { name: 'multiplier 3', policy: { ...POLICY, multiplier: 3, maxDelayMs: 100_000 }, attempt: 4, random: 0.5, delay: 27_000 },
    { name: 'zero delay', policy: { ...POLICY, initialDelayMs: 0 }, attempt: 4, random: 0.9, delay: 0 },
    { name: 'full jitter at random 0', policy: { ...POLICY, jitter: 1 }, attempt: 2, random: 0, delay: 0 },
    { name: 'many attempts stay at the cap', policy: POLICY, attempt: 5_000, random: 0.5, delay: 10_000 },
    { name: 'the default policy', policy: DEFAULT_RETRY_POLICY, attempt: 2, random: 0.5, delay: 2_000 },
  ];
  it.each(shapes)('$name', ({ policy, attempt, random, delay }) => {
    expect(retryDelayMs(policy, attempt, fixed(random))).toBe(delay);
  });
});

describe('shouldRetry', () => {
  const cases: { attemptsMade: number; retryable: boolean; expected: boolean }[] = [
    { attemptsMade: 1, retryable: true, expected: true },
    { attemptsMade: 2, retryable: true, expected: true },
    { attemptsMade: 3, retryable: true, expected: false },
    { attemptsMade: 4, retryable: true, expected: false },
    { attemptsMade: 1, retryable: false, expected: false },
  ];
  it.each(cases)('maxAttempts 3, $attemptsMade attempts made, retryable $retryable → $expected', ({ attemptsMade, retryable, expected }) => {
    expect(shouldRetry(DEFAULT_RETRY_POLICY, attemptsMade, retryable)).toBe(expected);
  });

  it('never retries when only one attempt is allowed', () => {
    expect(shouldRetry({ ...POLICY, maxAttempts: 1 }, 1, true)).toBe(false);
  });
});

describe('validateRetryPolicy', () => {
  it('returns a valid policy unchanged', () => {
    expect(validateRetryPolicy(POLICY)).toBe(POLICY);
    expect(validateRetryPolicy(DEFAULT_RETRY_POLICY)).toBe(DEFAULT_RETRY_POLICY);
    expect(validateRetryPolicy({ maxAttempts: 1, initialDelayMs: 0, maxDelayMs: 0, multiplier: 1, jitter: 0 })).toBeDefined();
  });

  const cases: { name: string; change: Partial<RetryPolicy>; field: keyof RetryPolicy; allowed: RegExp }[] = [
    { name: 'no attempts', change: { maxAttempts: 0 }, field: 'maxAttempts', allowed: /an integer from 1 to 100/ },
    { name: 'too many attempts', change: { maxAttempts: 101 }, field: 'maxAttempts', allowed: /an integer from 1 to 100/ },
    { name: 'fractional attempts', change: { maxAttempts: 2.5 }, field: 'maxAttempts', allowed: /an integer from 1 to 100/ },
    { name: 'negative initial delay', change: { initialDelayMs: -1 }, field: 'initialDelayMs', allowed: /0 ms or more/ },
    { name: 'NaN initial delay', change: { initialDelayMs: Number.NaN }, field: 'initialDelayMs', allowed: /0 ms or more/ },
    { name: 'max delay below the initial delay', change: { maxDelayMs: 999 }, field: 'maxDelayMs', allowed: /at least initialDelayMs \(1000 ms\)/ },
    { name: 'infinite max delay', change: { maxDelayMs: Number.POSITIVE_INFINITY }, field: 'maxDelayMs', allowed: /at least initialDelayMs/ },
    { name: 'shrinking multiplier', change: { multiplier: 0.5 }, field: 'multiplier', allowed: /1 or more/ },
    { name: 'negative jitter', change: { jitter: -0.1 }, field: 'jitter', allowed: /a fraction from 0 to 1/ },
    { name: 'jitter above 1', change: { jitter: 1.5 }, field: 'jitter', allowed: /a fraction from 0 to 1/ },
  ];
  it.each(cases)('refuses $name, naming the field', ({ change, field, allowed }) => {
    const bad: RetryPolicy = { ...POLICY, ...change };
    try {
      validateRetryPolicy(bad, 'worker.retry');
      expect.unreachable('the policy should be refused');
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidOptionError);
      if (!(err instanceof InvalidOptionError)) return;
      expect(err.option).toBe(`worker.retry.${field}`);
      expect(err.allowed).toMatch(allowed);
      expect(err.value).toBe(bad[field]);
      expect(err.message).toMatch(new RegExp(`^option worker\\.retry\\.${field} must be `));
    }
  });

  it('names the field under "retry" by default', () => {
    expect(() => validateRetryPolicy({ ...POLICY, jitter: 2 })).toThrow(/option retry\.jitter must be a fraction from 0 to 1 \(got 2\)/);
  });
});
