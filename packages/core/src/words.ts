import { segments } from './sharding.js';

const wordSegmenter = new Intl.Segmenter(undefined, { granularity: 'word' });

/** Word-like segments of a text, lower-cased, in any script (Unicode word boundaries). */
export function wordsOf(text: string): string[] {
  const words: string[] = [];
  // In blocks: V8's segmenter is quadratic in the length of the string it is given.
  for (const segment of segments(wordSegmenter, text)) {
    if (segment.wordLike) words.push(text.slice(segment.start, segment.end).toLocaleLowerCase());
  }
  return words;
}
