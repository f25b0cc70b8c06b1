/**
 * How media is cut into shards: overlapping audio windows, video frame sample times, text
 * chunks on sentence boundaries and plain batches. Pure; the inverse (putting shard outputs
 * back together) is in stitching.ts.
 *
 * Times are seconds, rounded to milliseconds. Text offsets are UTF-16 code units, like
 * `String.prototype.slice`.
 */
import { InvalidOptionError } from './errors.js';

/** How a pipeline cuts media into shards (pipeline parameters, with these defaults). */
export interface ShardSettings {
  readonly windowSec: number;
  readonly overlapSec: number;
  /** Rate of the audio windows given to per-window tasks. */
  readonly sampleRate: number;
  readonly fps: number;
  readonly maxFrames: number;
  readonly frameMaxPx: number;
  readonly chunkChars: number;
}

export const DEFAULT_SHARDING: ShardSettings = {
  windowSec: 30,
  overlapSec: 2,
  sampleRate: 16_000,
  fps: 1,
  maxFrames: 600,
  frameMaxPx: 768,
  chunkChars: 4_000,
};

/** One shard of a timeline: `[startSec, endSec]`, `index` counting from 0 in time order. */
export interface WindowPlan {
  readonly index: number;
  readonly startSec: number;
  readonly endSec: number;
}

/** `0 <= overlapSec < windowSec`. */
export interface AudioWindowOptions {
  readonly windowSec: number;
  readonly overlapSec: number;
}

/** Rounds seconds to milliseconds (and never returns -0). */
export function roundMs(sec: number): number {
  return Math.round(sec * 1000) / 1000 + 0;
}

function finiteNonNegative(option: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) throw new InvalidOptionError(option, 'a finite number >= 0', value);
}

function positiveInteger(option: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new InvalidOptionError(option, 'an integer >= 1', value);
}

/**
 * Overlapping windows over `durationSec` seconds of audio. Windows start every
 * `windowSec - overlapSec` seconds and last `windowSec`; the last one is cut to end exactly at
 * `durationSec`. When that last window would add less than `overlapSec` of audio beyond the
 * end of the one before it, the one before it is stretched to the end instead (so no window
 * is a sliver). A duration up to `windowSec` gives one window `[0, duration]`; 0 gives none.
 *
 * The arithmetic is done in whole milliseconds, so windows line up exactly: window i+1 starts
 * `overlapSec` before window i ends (the stretched last window aside, which only gets longer).
 *
 * @throws InvalidOptionError when `windowSec <= 0`, `overlapSec < 0`, `overlapSec >= windowSec`
 *   (after rounding to ms), or the duration is negative or not finite.
 */
export function audioWindows(durationSec: number, options: AudioWindowOptions): WindowPlan[] {
  const { windowSec, overlapSec } = options;
  if (!Number.isFinite(windowSec) || windowSec <= 0) throw new InvalidOptionError('windowSec', 'a finite number > 0', windowSec);
  finiteNonNegative('overlapSec', overlapSec);
  finiteNonNegative('durationSec', durationSec);
  const winMs = Math.round(windowSec * 1000);
  const overlapMs = Math.round(overlapSec * 1000);
  if (winMs < 1) throw new InvalidOptionError('windowSec', 'at least 0.001 s', windowSec);
  if (overlapMs >= winMs) throw new InvalidOptionError('overlapSec', `less than windowSec (${windowSec})`, overlapSec);
  const durMs = Math.round(durationSec * 1000);
  if (durMs === 0) return [];
  if (durMs <= winMs) return [{ index: 0, startSec: 0, endSec: durMs / 1000 }];

  const stepMs = winMs - overlapMs;
  const spans: [number, number][] = [];
  let start = 0;
  while (start + winMs < durMs) {
    spans.push([start, start + winMs]);
    start += stepMs;
  }
  // The window that reaches the end: [start, durMs]. The previous one ends at start + overlapMs.
  const previous = spans[spans.length - 1];
  if (previous !== undefined && durMs - previous[1] < overlapMs) previous[1] = durMs;
  else spans.push([start, durMs]);
  return spans.map(([s, e], index) => ({ index, startSec: s / 1000, endSec: e / 1000 }));
}

/**
 * When to sample frames of a video `durationSec` long: every `1 / fps` seconds from 0
 * (`i / fps`), all strictly before the end, at most `maxFrames`. When that would be more than
 * `maxFrames`, `maxFrames` times spread evenly instead: `i * durationSec / maxFrames`.
 * Rounded to ms (a time that rounds up to the duration is dropped).
 *
 * @throws InvalidOptionError for a negative or non-finite duration, `fps <= 0` or a
 *   `maxFrames` that is not an integer >= 1.
 */
export function frameTimes(durationSec: number, fps: number, maxFrames: number): number[] {
  finiteNonNegative('durationSec', durationSec);
  if (!Number.isFinite(fps) || fps <= 0) throw new InvalidOptionError('fps', 'a finite number > 0', fps);
  positiveInteger('maxFrames', maxFrames);
  let count = 0;
  while (count <= maxFrames && count / fps < durationSec) count += 1;
  const times: number[] = [];
  if (count <= maxFrames) {
    for (let i = 0; i < count; i += 1) times.push(roundMs(i / fps));
  } else {
    for (let i = 0; i < maxFrames; i += 1) times.push(roundMs((i * durationSec) / maxFrames));
  }
  return times.filter((t, i) => t < durationSec && (i === 0 || t !== times[i - 1]));
}

/** A piece of a text: `text === whole.slice(start, end)`. */
export interface TextChunk {
  readonly index: number;
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

const sentenceSegmenter = new Intl.Segmenter(undefined, { granularity: 'sentence' });
const wordSegmenter = new Intl.Segmenter(undefined, { granularity: 'word' });
const graphemeSegmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });
const whitespaceOnly = /^\s+$/u;

type Span = readonly [start: number, end: number];

/** Segments are looked for this many code units at a time (see `segments`). */
const SEGMENT_BLOCK = 16_384;
/** A boundary closer than this to the end of a block is looked at again in the next block. */
const SEGMENT_LOOKAHEAD = 512;

/** A segment of a text: `text.slice(start, end)`. */
export interface Segment {
  readonly start: number;
  readonly end: number;
  readonly wordLike: boolean;
}

/**
 * `segmenter.segment(text.slice(start, end))`, as segments with absolute offsets, in blocks.
 *
 * V8's `Intl.Segmenter` takes time quadratic in the length of the string it is given (about
 * 12 s for a 900 KB text), so long spans are segmented a block at a time. Segment boundaries
 * depend only on nearby characters, so every boundary found at least `SEGMENT_LOOKAHEAD` code
 * units before the end of a block is kept and the next block starts at the last of them. A
 * block with no such boundary (one segment longer than the block) is retried twice as long.
 */
export function segments(segmenter: Intl.Segmenter, text: string, start = 0, end = text.length): Segment[] {
  const spans: Segment[] = [];
  let from = start;
  let block = SEGMENT_BLOCK;
  while (from < end) {
    const to = Math.min(end, from + block);
    const found: Segment[] = [];
    for (const s of segmenter.segment(text.slice(from, to))) {
      found.push({ start: from + s.index, end: from + s.index + s.segment.length, wordLike: s.isWordLike === true });
    }
    if (to === end) {
      spans.push(...found);
      break;
    }
    let keep = found.length - 1; // the last segment always reaches the end of the block
    while (keep > 0 && (found[keep] as Segment).start > to - SEGMENT_LOOKAHEAD) keep -= 1;
    if (keep === 0) {
      block *= 2;
      continue;
    }
    for (let i = 0; i < keep; i += 1) spans.push(found[i] as Segment);
    from = (found[keep] as Segment).start;
    block = SEGMENT_BLOCK;
  }
  return spans;
}

/**
 * Sentences, each with the whitespace after it (the segmenter already attaches trailing
 * spaces; blank lines, which it gives as sentences of their own, are attached here too).
 */
function sentenceSpans(text: string, start: number, end: number): Span[] {
  const spans: [number, number][] = [];
  for (const { start: segStart, end: segEnd } of segments(sentenceSegmenter, text, start, end)) {
    const previous = spans[spans.length - 1];
    if (previous !== undefined && whitespaceOnly.test(text.slice(segStart, segEnd))) previous[1] = segEnd;
    else spans.push([segStart, segEnd]);
  }
  return spans;
}

/**
 * Word-sized pieces: a word with the punctuation and whitespace after it. A piece may begin
 * only at a non-whitespace segment that follows whitespace, or at a word right after a word
 * (scripts written without spaces), so whitespace always stays with what comes before it.
 */
function wordSpans(text: string, start: number, end: number): Span[] {
  const spans: [number, number][] = [];
  let previous: { space: boolean; wordLike: boolean } | undefined;
  for (const { start: segStart, end: segEnd, wordLike } of segments(wordSegmenter, text, start, end)) {
    const space = whitespaceOnly.test(text.slice(segStart, segEnd));
    const current = spans[spans.length - 1];
    const breakHere = previous !== undefined && !space && (previous.space || (previous.wordLike && wordLike));
    if (current === undefined || breakHere) spans.push([segStart, segEnd]);
    else current[1] = segEnd;
    previous = { space, wordLike };
  }
  return spans;
}

function graphemeSpans(text: string, start: number, end: number): Span[] {
  return segments(graphemeSegmenter, text, start, end).map((g) => [g.start, g.end]);
}

function codePointSpans(text: string, start: number, end: number): Span[] {
  const spans: Span[] = [];
  let at = start;
  for (const cp of text.slice(start, end)) {
    spans.push([at, at + cp.length]);
    at += cp.length;
  }
  return spans;
}

function codeUnitSpans(_text: string, start: number, end: number): Span[] {
  const spans: Span[] = [];
  for (let at = start; at < end; at += 1) spans.push([at, at + 1]);
  return spans;
}

/** Ever finer ways to cut a span: the next one is used only for a piece that is still too long. */
const LEVELS = [sentenceSpans, wordSpans, graphemeSpans, codePointSpans, codeUnitSpans] as const;

/** A piece to pack; `fresh`: it begins a word that is cut hard, so it begins a chunk. */
interface Atom {
  readonly end: number;
  readonly fresh: boolean;
}

function atoms(text: string, span: Span, level: number, maxChars: number, out: Atom[], fresh = false): void {
  const cut = LEVELS[level];
  if (span[1] - span[0] <= maxChars || cut === undefined) {
    out.push({ end: span[1], fresh });
    return;
  }
  // Below word level (graphemes and finer) a word is cut hard: its pieces start a new chunk.
  const hard = level >= 2;
  cut(text, span[0], span[1]).forEach((piece, i) => atoms(text, piece, level + 1, maxChars, out, i === 0 && (fresh || hard)));
}

/**
 * Cuts a text into chunks of at most `maxChars` UTF-16 code units, for per-chunk analysis.
 *
 * Whole sentences (`Intl.Segmenter` 'sentence', trailing whitespace and blank lines included) are packed
 * greedily, in order, into each chunk. A sentence longer than `maxChars` is cut into
 * word-sized pieces (a word with the punctuation and whitespace after it), which are packed
 * greedily too (so the start of a long sentence may share a chunk with the sentence before,
 * and its tail with the next). A word-sized piece still longer than `maxChars` is cut hard:
 * it starts a new chunk and is cut every `maxChars` units (on grapheme boundaries; on code
 * points or code units only when `maxChars` is smaller than one grapheme or code point), and
 * its last piece may be followed by what comes next.
 *
 * Guarantees: chunks are non-empty, in order, contiguous (`chunks.map(c => c.text).join('')`
 * is the text; chunk i+1 starts where chunk i ends) and no longer than `maxChars`. Chunk
 * boundaries fall on sentence boundaries where the sentences allow it, and inside words only
 * for words longer than `maxChars`. Empty text gives `[]`.
 *
 * @throws InvalidOptionError when `maxChars` is not an integer >= 1.
 */
export function textChunks(text: string, maxChars: number): TextChunk[] {
  positiveInteger('maxChars', maxChars);
  if (text === '') return [];
  const pieces: Atom[] = [];
  atoms(text, [0, text.length], 0, maxChars, pieces);
  const chunks: TextChunk[] = [];
  let start = 0;
  let end = 0;
  const flush = (): void => {
    if (end > start) chunks.push({ index: chunks.length, start, end, text: text.slice(start, end) });
    start = end;
  };
  for (const piece of pieces) {
    if (piece.fresh || piece.end - start > maxChars) flush();
    end = piece.end;
  }
  flush();
  return chunks;
}

/**
 * Items in batches of `size`, in order; the last batch may be smaller. `[]` gives `[]`.
 *
 * @throws InvalidOptionError when `size` is not an integer >= 1.
 */
export function batches<T>(items: readonly T[], size: number): T[][] {
  positiveInteger('size', size);
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
