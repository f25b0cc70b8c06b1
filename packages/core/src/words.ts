const wordSegmenter = new Intl.Segmenter(undefined, { granularity: 'word' });

/** Word-like segments of a text, lower-cased, in any script (Unicode word boundaries). */
export function wordsOf(text: string): string[] {
  const words: string[] = [];
  for (const segment of wordSegmenter.segment(text)) {
    if (segment.isWordLike) words.push(segment.segment.toLocaleLowerCase());
  }
  return words;
}
