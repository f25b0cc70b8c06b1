import type { TextStatsOutput } from './task-outputs.js';
import { segments } from './sharding.js';
import { wordsOf } from './words.js';

/**
 * The counts of `text.stats`, in core so that the worker's handler and the stitching of
 * chunked texts (and its tests) count the same way.
 */

const EXCERPT_CHARS = 2_000;
const TOP_TERMS = 10;
const SCRIPTS = [
  'Latin', 'Cyrillic', 'Greek', 'Armenian', 'Georgian', 'Hebrew', 'Arabic', 'Devanagari', 'Bengali', 'Gurmukhi', 'Gujarati',
  'Tamil', 'Telugu', 'Kannada', 'Malayalam', 'Sinhala', 'Thai', 'Lao', 'Tibetan', 'Myanmar', 'Khmer', 'Ethiopic', 'Hangul',
  'Hiragana', 'Katakana', 'Han',
] as const;
const scriptPatterns = SCRIPTS.map((s) => [s, new RegExp(`\\p{Script=${s}}`, 'u')] as const);
const letter = /\p{L}/u;

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
const sentences = new Intl.Segmenter(undefined, { granularity: 'sentence' });

/** A line break: CR LF, a lone CR or a lone LF. */
const LINE_BREAK = /\r\n|\r|\n/;

export type FinalLineBreak = NonNullable<TextStatsOutput['finalLineBreak']>;

/**
 * Lines of a text: a line ends at a line break (CR LF, CR or LF) or at the end of the text,
 * and a final line break ends the last line (it does not begin another). '' has 0 lines.
 */
export function lineCount(text: string): number {
  return text === '' ? 0 : text.split(LINE_BREAK).length - (finalLineBreak(text) === 'none' ? 0 : 1);
}

/** The line break a text ends with: 'crlf', 'cr', 'lf', or 'none' (also for ''). */
export function finalLineBreak(text: string): FinalLineBreak {
  if (text.endsWith('\r\n')) return 'crlf';
  if (text.endsWith('\r')) return 'cr';
  if (text.endsWith('\n')) return 'lf';
  return 'none';
}

function count<T>(iterable: Iterable<T>, keep: (t: T) => boolean = () => true): number {
  let n = 0;
  for (const t of iterable) if (keep(t)) n += 1;
  return n;
}

/** Counts of a text that do not depend on knowing its language (Unicode segmentation and scripts). */
export function textStats(text: string, source: 'prompt' | 'input'): TextStatsOutput {
  const words = wordsOf(text);
  const byScript = new Map<string, number>();
  let letters = 0;
  for (const ch of text) {
    if (!letter.test(ch)) continue;
    letters += 1;
    const found = scriptPatterns.find(([, re]) => re.test(ch));
    const script = found ? found[0] : 'Other';
    byScript.set(script, (byScript.get(script) ?? 0) + 1);
  }
  const termCounts = new Map<string, number>();
  for (const w of words) {
    // Very short Latin-script words are mostly function words; other scripts keep every word.
    if (/^[a-z0-9]{1,2}$/.test(w)) continue;
    termCounts.set(w, (termCounts.get(w) ?? 0) + 1);
  }
  const chars = [...text];
  return {
    source,
    characters: chars.length,
    // Segmented in blocks: V8's segmenter is quadratic in the length of the string it is given.
    graphemes: segments(graphemes, text).length,
    words: words.length,
    sentences: count(segments(sentences, text), (s) => text.slice(s.start, s.end).trim() !== ''),
    lines: lineCount(text),
    scripts: [...byScript]
      .sort((a, b) => b[1] - a[1])
      .map(([script, n]) => ({ script, fraction: Math.round((n / letters) * 1000) / 1000 })),
    topTerms: [...termCounts]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, TOP_TERMS)
      .map(([term, n]) => ({ term, count: n })),
    excerpt: chars.slice(0, EXCERPT_CHARS).join(''),
    truncated: chars.length > EXCERPT_CHARS,
    finalLineBreak: finalLineBreak(text),
  };
}
