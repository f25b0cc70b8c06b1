import { describe, expect, it } from 'vitest';
import { textStatsOutputSchema } from '@mmgrid/core';
import { textStats } from '../backends/builtin/text-stats.js';

describe('textStats counts', () => {
  const cases: {
    name: string;
    text: string;
    characters: number;
    graphemes: number;
    words: number;
    sentences: number;
    lines: number;
  }[] = [
    { name: 'empty text', text: '', characters: 0, graphemes: 0, words: 0, sentences: 0, lines: 0 },
    { name: 'whitespace only', text: '  \t ', characters: 4, graphemes: 4, words: 0, sentences: 0, lines: 1 },
    { name: 'one English word', text: 'hello', characters: 5, graphemes: 5, words: 1, sentences: 1, lines: 1 },
    {
      name: 'English sentences',
      text: 'The cat sat on the mat. The dog sat too! Is it a cat? Yes.',
      characters: 58,
      graphemes: 58,
      words: 15,
      sentences: 4,
      lines: 1,
    },
    {
      name: 'English on three lines',
      text: 'First line here.\nSecond line here.\nThird.',
      characters: 41,
      graphemes: 41,
      words: 7,
      sentences: 3,
      lines: 3,
    },
    { name: 'CRLF, CR and LF line ends', text: 'a\r\nb\rc\nd', characters: 8, graphemes: 7, words: 4, sentences: 4, lines: 4 },
    { name: 'a final line break', text: 'a\nb\n', characters: 4, graphemes: 4, words: 2, sentences: 2, lines: 2 },
    {
      name: 'Russian (Cyrillic)',
      text: 'Привет, мир! Как дела?',
      characters: 22,
      graphemes: 22,
      words: 4,
      sentences: 2,
      lines: 1,
    },
    {
      name: 'numbers and punctuation',
      text: 'It costs 3.50 dollars, or 350 cents.',
      characters: 36,
      graphemes: 36,
      words: 7,
      sentences: 1,
      lines: 1,
    },
    {
      // U+1F44D U+1F3FD: a thumbs-up with a skin tone is two code points, one grapheme.
      name: 'an emoji with a skin tone',
      text: '👍🏽',
      characters: 2,
      graphemes: 1,
      words: 0,
      sentences: 1,
      lines: 1,
    },
    {
      // A family (man ZWJ woman ZWJ girl) is five code points and one grapheme.
      name: 'emoji with words',
      text: 'ok 👍🏽 family 👨‍👩‍👧',
      characters: 18,
      graphemes: 13,
      words: 2,
      sentences: 1,
      lines: 1,
    },
    {
      // e + combining acute accent: two code points, one grapheme.
      name: 'a combining accent',
      text: 'cafe\u0301',
      characters: 5,
      graphemes: 4,
      words: 1,
      sentences: 1,
      lines: 1,
    },
  ];

  it.each(cases)('counts $name', ({ text, characters, graphemes, words, sentences, lines }) => {
    const stats = textStats(text, 'input');
    expect({
      characters: stats.characters,
      graphemes: stats.graphemes,
      words: stats.words,
      sentences: stats.sentences,
      lines: stats.lines,
    }).toEqual({ characters, graphemes, words, sentences, lines });
    expect(textStatsOutputSchema.safeParse(stats).success).toBe(true);
  });

  it('counts characters as code points, not UTF-16 units', () => {
    const text = '𝄞𝄞'; // two G clefs outside the BMP
    expect(text.length).toBe(4);
    expect(textStats(text, 'input').characters).toBe(2);
  });

  it('keeps the source it is given', () => {
    expect(textStats('hi', 'prompt').source).toBe('prompt');
    expect(textStats('hi', 'input').source).toBe('input');
  });

  it('splits Japanese into several words and two sentences', () => {
    const stats = textStats('日本語のテキストです。東京は大きい。', 'input');
    expect(stats.characters).toBe(18);
    expect(stats.sentences).toBe(2);
    // Dictionary-based segmentation: more than one word, fewer than one per character.
    expect(stats.words).toBeGreaterThan(2);
    expect(stats.words).toBeLessThan(16);
  });

  it('splits Chinese into several words and two sentences', () => {
    const stats = textStats('我们喜欢学习中文。你好！', 'input');
    expect(stats.characters).toBe(12);
    expect(stats.sentences).toBe(2);
    expect(stats.words).toBeGreaterThan(2);
    expect(stats.words).toBeLessThan(10);
    // CJK words are never skipped as short words.
    expect(stats.topTerms.reduce((sum, t) => sum + t.count, 0)).toBe(stats.words);
  });
});

describe('textStats scripts', () => {
  const cases: { name: string; text: string; scripts: { script: string; fraction: number }[] }[] = [
    { name: 'English', text: 'Hello there, world.', scripts: [{ script: 'Latin', fraction: 1 }] },
    { name: 'Russian', text: 'Привет, мир!', scripts: [{ script: 'Cyrillic', fraction: 1 }] },
    { name: 'Chinese', text: '我们喜欢学习中文。', scripts: [{ script: 'Han', fraction: 1 }] },
    {
      name: 'Japanese',
      text: '日本語のテキストです。東京は大きい。',
      // Han: 日本語東京大 = 6; Hiragana: のですはきい = 6; Katakana: テキスト = 4. 16 letters.
      scripts: [
        { script: 'Han', fraction: 0.375 },
        { script: 'Hiragana', fraction: 0.375 },
        { script: 'Katakana', fraction: 0.25 },
      ],
    },
    {
      // 5 Latin, 3 Cyrillic, 2 Han letters: 10 in all.
      name: 'mixed scripts',
      text: 'Hello Мир 世界',
      scripts: [
        { script: 'Latin', fraction: 0.5 },
        { script: 'Cyrillic', fraction: 0.3 },
        { script: 'Han', fraction: 0.2 },
      ],
    },
    {
      // 2 Greek, 6 Latin, 1 Arabic letters; digits and punctuation are not letters.
      name: 'mostly Latin, with Greek and Arabic',
      text: 'αβ 123 abcdef! ب',
      scripts: [
        { script: 'Latin', fraction: 0.667 },
        { script: 'Greek', fraction: 0.222 },
        { script: 'Arabic', fraction: 0.111 },
      ],
    },
    { name: 'digits and emoji only', text: '123 456 👍🏽 !?', scripts: [] },
    { name: 'empty text', text: '', scripts: [] },
  ];

  it.each(cases)('finds the scripts of $name, largest first', ({ text, scripts }) => {
    const found = textStats(text, 'input').scripts;
    expect(found).toEqual(scripts);
    if (found.length > 0) expect(found.reduce((sum, s) => sum + s.fraction, 0)).toBeCloseTo(1, 2);
  });
});

describe('textStats top terms', () => {
  it('orders terms by count, then alphabetically', () => {
    const stats = textStats('pear apple pear banana apple pear cherry banana date', 'input');
    expect(stats.topTerms).toEqual([
      { term: 'pear', count: 3 },
      { term: 'apple', count: 2 },
      { term: 'banana', count: 2 },
      { term: 'cherry', count: 1 },
      { term: 'date', count: 1 },
    ]);
  });

  it('lower-cases terms before counting them', () => {
    expect(textStats('Apple APPLE apple', 'input').topTerms).toEqual([{ term: 'apple', count: 3 }]);
  });

  it('skips Latin words of one or two letters, and short numbers', () => {
    const stats = textStats('I am at an ox. Go to 42 and 7 or 123 the end of it', 'input');
    expect(stats.words).toBe(16);
    expect(stats.topTerms.map((t) => t.term).sort()).toEqual(['123', 'and', 'end', 'the']);
  });

  it('keeps short words of other scripts', () => {
    const stats = textStats('он и я мы', 'input');
    expect(stats.topTerms.map((t) => t.term).sort()).toEqual(['и', 'мы', 'он', 'я'].sort());
  });

  it('keeps at most ten terms', () => {
    const words = Array.from({ length: 15 }, (_, i) => `word${String.fromCharCode(97 + i)}`);
    const text = words.map((w, i) => Array.from({ length: 15 - i }, () => w).join(' ')).join(' ');
    const { topTerms } = textStats(text, 'input');
    expect(topTerms).toHaveLength(10);
    expect(topTerms[0]).toEqual({ term: 'worda', count: 15 });
    expect(topTerms[9]).toEqual({ term: 'wordj', count: 6 });
  });

  it('has no terms for text without words', () => {
    expect(textStats('... !!! ???', 'input').topTerms).toEqual([]);
  });
});

describe('textStats excerpt', () => {
  const cases: { name: string; text: string; excerptChars: number; truncated: boolean }[] = [
    { name: 'a short text', text: 'short', excerptChars: 5, truncated: false },
    { name: 'exactly 2,000 characters', text: 'a'.repeat(2_000), excerptChars: 2_000, truncated: false },
    { name: '2,001 characters', text: 'b'.repeat(2_001), excerptChars: 2_000, truncated: true },
    { name: '5,000 Cyrillic characters', text: 'ж'.repeat(5_000), excerptChars: 2_000, truncated: true },
    // 2,500 astral characters are 5,000 UTF-16 units; the cut is at 2,000 code points.
    { name: '2,500 astral characters', text: '𝄞'.repeat(2_500), excerptChars: 2_000, truncated: true },
  ];

  it.each(cases)('cuts $name', ({ text, excerptChars, truncated }) => {
    const stats = textStats(text, 'input');
    expect([...stats.excerpt]).toHaveLength(excerptChars);
    expect(text.startsWith(stats.excerpt)).toBe(true);
    expect(stats.truncated).toBe(truncated);
  });

  it('never cuts a surrogate pair in half', () => {
    const text = `${'x'.repeat(1_999)}😀tail`;
    const { excerpt, truncated } = textStats(text, 'input');
    expect(truncated).toBe(true);
    expect(excerpt.endsWith('😀')).toBe(true);
    expect(excerpt).toHaveLength(2_001);
  });

  it('counts the whole text, not only the excerpt', () => {
    const stats = textStats('word '.repeat(1_000), 'input');
    expect(stats.truncated).toBe(true);
    expect(stats.words).toBe(1_000);
    expect(stats.characters).toBe(5_000);
  });
});
