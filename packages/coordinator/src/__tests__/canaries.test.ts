import { describe, expect, it } from 'vitest';
import { checkKnownAnswer, outputsAgree, parseTaskOutput, textStats, validatorFor, type JsonValue } from '@mmgrid/core';
import { canaryText, makeCanary } from '../canaries.js';

/** mulberry32: repeatable randomness. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('canary tasks', () => {
  it('text.stats: the expected output is core textStats of the inline text, and a valid output', () => {
    const random = seeded(1);
    for (let i = 0; i < 50; i += 1) {
      const canary = makeCanary('text.stats', random);
      const texts = Object.values(canary.texts);
      expect(texts).toHaveLength(1);
      const text = texts[0] ?? '';
      expect(canary.params).toEqual({ source: 'input' });
      expect(canary.expected).toEqual(textStats(text, 'input'));
      expect(parseTaskOutput('text.stats', JSON.stringify(canary.expected))).toEqual(canary.expected);
      // A lie (one word more) does not pass.
      const lie = { ...(canary.expected as Record<string, JsonValue>), words: Number((canary.expected as { words: number }).words) + 1 };
      expect(outputsAgree(validatorFor('text.stats'), canary.expected, lie)).toBe(false);
    }
  });

  it('texts vary in length and content, so a canary is not recognisable by its text', () => {
    const random = seeded(2);
    const texts = Array.from({ length: 40 }, () => canaryText(random));
    expect(new Set(texts).size).toBe(40);
    const lengths = texts.map((t) => t.length);
    expect(Math.max(...lengths)).toBeGreaterThan(3 * Math.min(...lengths));
  });

  it('selftest.sleep: the expected output is its known answer', () => {
    const canary = makeCanary('selftest.sleep', seeded(3));
    expect(canary.texts).toEqual({});
    expect(checkKnownAnswer('selftest.sleep', canary.params, canary.expected)).toBe(true);
    const right = { sleptMs: 12345, attempt: 1, index: (canary.params as { index: number }).index };
    expect(outputsAgree(validatorFor('selftest.sleep'), canary.expected, right)).toBe(true);
  });
});
