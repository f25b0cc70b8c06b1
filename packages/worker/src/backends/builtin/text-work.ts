// The CPU-heavy part of the text kinds, as plain functions of plain data: they run on the
// worker's text threads (text-thread.ts), never on the thread that talks to the coordinator.
import { textChunks, textStats, type TextStatsOutput } from '@mmgrid/core';

/** Work for a text thread. */
export type TextJob =
  | { readonly op: 'split'; readonly text: string; readonly maxChars: number }
  | { readonly op: 'stats'; readonly text: string; readonly source: 'input' | 'prompt' };

/**
 * A text cut into chunks: chunk i runs from `ends[i - 1]` (0 for the first) to `ends[i]`, in
 * UTF-16 code units (chunks are contiguous). Offsets travel as one array, not as an object a
 * chunk, so a text of a million chunks crosses between threads in one copy.
 */
export interface SplitSpans {
  readonly characters: number;
  readonly ends: Uint32Array;
}

/** Code points in `text` (as `[...text].length`, without an array of millions of strings). */
export function codePoints(text: string): number {
  let n = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    // A high surrogate followed by a low one is one code point in two code units.
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n -= 1;
        i += 1;
      }
    }
  }
  return n;
}

/** `text` in chunks of at most `maxChars` on sentence boundaries (see textChunks), as offsets. */
export function splitSpans(text: string, maxChars: number): SplitSpans {
  const chunks = textChunks(text, maxChars);
  const ends = new Uint32Array(chunks.length);
  chunks.forEach((c, i) => (ends[i] = c.end));
  return { characters: codePoints(text), ends };
}

/** Does `job` (on whichever thread calls it). */
export function doTextJob(job: TextJob): SplitSpans | TextStatsOutput {
  switch (job.op) {
    case 'split':
      return splitSpans(job.text, job.maxChars);
    case 'stats':
      return textStats(job.text, job.source);
  }
}
