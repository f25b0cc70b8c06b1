import { readFile } from 'node:fs/promises';
import { wordsOf, type TextStatsOutput } from '@mmgrid/core';
import { InputDecodeError, TaskFailedError } from '../../errors.js';
import type { TaskContext, TaskHandler } from '../backend.js';

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
    graphemes: count(graphemes.segment(text)),
    words: words.length,
    sentences: count(sentences.segment(text), (s) => s.segment.trim() !== ''),
    // A line ends at a line break or at the end of the text; a final line break ends the last line.
    lines: text === '' ? 0 : text.split(/\r\n|\r|\n/).length - (/(\r\n|\r|\n)$/.test(text) ? 1 : 0),
    scripts: [...byScript]
      .sort((a, b) => b[1] - a[1])
      .map(([script, n]) => ({ script, fraction: Math.round((n / letters) * 1000) / 1000 })),
    topTerms: [...termCounts]
      .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
      .slice(0, TOP_TERMS)
      .map(([term, n]) => ({ term, count: n })),
    excerpt: chars.slice(0, EXCERPT_CHARS).join(''),
    truncated: chars.length > EXCERPT_CHARS,
  };
}

/** `text.stats`: statistics of a text input or of the prompt. */
export class TextStatsHandler implements TaskHandler {
  readonly kind = 'text.stats';
  readonly description = 'words, sentences, scripts, frequent terms (Unicode segmentation)';

  async run(ctx: TaskContext): Promise<TextStatsOutput> {
    const source = ctx.params['source'] === 'prompt' ? 'prompt' : 'input';
    const [textName, inline] = [...ctx.texts][0] ?? [];
    if (textName !== undefined && inline !== undefined) return textStats(inline, source);
    const [name, file] = [...ctx.files][0] ?? [];
    if (!name || !file) throw new TaskFailedError('INPUT_MISSING', 'text.stats needs one text input', false);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(await readFile(file));
    } catch (err) {
      throw new InputDecodeError(`"${name}" is not valid UTF-8 text`, { cause: err });
    }
    return textStats(text, source);
  }
}
