import { describe, expect, it } from 'vitest';
import { parseExpiry } from '../commands/tokens.js';
import { CliError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';

describe('parseExpiry', () => {
  const good: [string, number][] = [
    ['30d', 30 * 86_400_000],
    ['12h', 12 * 3_600_000],
    ['90m', 90 * 60_000],
    ['3600s', 3_600_000],
    ['2w', 14 * 86_400_000],
    [' 7D ', 7 * 86_400_000],
    ['never', 0],
    ['3650d', 3650 * 86_400_000],
  ];
  for (const [text, ms] of good) {
    it(`reads "${text}"`, () => expect(parseExpiry(text)).toBe(ms));
  }

  for (const text of ['', '30', 'd', '0d', '-1d', '1.5h', '3 days', '1y', '3651d', '99999999999999999999w']) {
    it(`refuses "${text}", naming the forms allowed`, () => {
      let caught: unknown;
      try {
        parseExpiry(text);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(CliError);
      const err = caught as CliError;
      expect(err.exitCode).toBe(ExitCode.USAGE);
      expect(err.message).toContain('30d, 12h, 90m, 3600s or 2w');
    });
  }
});
