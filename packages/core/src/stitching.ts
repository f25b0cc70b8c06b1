/**
 * Putting shard outputs back together: audio analyses and timed words from overlapping
 * windows, text statistics from text chunks, plus subtitles (SRT, WebVTT) and a combined
 * timeline. Pure; the cutting is in sharding.ts.
 *
 * The rule for overlapping windows: every instant of the timeline belongs to exactly one
 * window, its *owned interval* (an overlap is split at its midpoint). A window's output is
 * trusted only inside its owned interval, so nothing in an overlap is counted twice and
 * nothing is lost. A failed window leaves its owned interval as a gap.
 *
 * Times are seconds, rounded to milliseconds.
 */
import { InvalidOptionError } from './errors.js';
import { roundMs, type WindowPlan } from './sharding.js';
import type { AudioAnalyzeOutput, AudioSegment, TextStatsOutput } from './task-outputs.js';
import { finalLineBreak as finalLineBreakOf, type FinalLineBreak } from './text-stats.js';

/** What came back for one shard: an output, or an error (a shard with neither counts as failed). */
export interface ShardOutcome<T> {
  readonly window: WindowPlan;
  readonly output?: T | undefined;
  readonly error?: { readonly code: string; readonly message: string } | undefined;
}

/** A stretch of the timeline no shard speaks for, and why. */
export interface Gap {
  readonly startSec: number;
  readonly endSec: number;
  readonly reason: string;
}

/** Reason of a gap that no window covers at all. */
const NO_SHARD = 'no shard covers this part';
/** Reason of a shard that has neither output nor error. */
const NO_OUTPUT = 'no output';
/** dBFS used where there is no audio to measure. */
const SILENT_DBFS = -120;

function succeeded<T>(shard: ShardOutcome<T>): shard is ShardOutcome<T> & { readonly output: T } {
  return shard.output !== undefined && shard.error === undefined;
}

function failureReason(shard: ShardOutcome<unknown>): string {
  return shard.error?.message ?? NO_OUTPUT;
}

/** Shards in time order (start, then index): the order ownedInterval expects. */
function inTimeOrder<S extends ShardOutcome<unknown>>(shards: readonly S[]): S[] {
  return [...shards].sort((a, b) => a.window.startSec - b.window.startSec || a.window.index - b.window.index);
}

/**
 * The part of the timeline window `i` speaks for. `windows` must be in time order (starts
 * non-decreasing, as audioWindows makes them). Where two neighbours overlap, the overlap is
 * split at its midpoint (rounded to ms); where they merely touch or leave a hole, each keeps
 * its own edge. The first window's interval starts at its start, the last one's ends at its
 * end. Consecutive owned intervals of overlapping or touching windows share their boundary,
 * so they partition the windows' span: each instant is owned by exactly one window (taking
 * intervals as half-open `[fromSec, toSec)`, the last one closed).
 *
 * @throws InvalidOptionError when `i` is not an index of `windows`.
 */
export function ownedInterval(windows: readonly WindowPlan[], i: number): { readonly fromSec: number; readonly toSec: number } {
  const window = windows[i];
  if (!Number.isInteger(i) || window === undefined) {
    throw new InvalidOptionError('i', `an index of the ${windows.length} windows`, i);
  }
  const previous = windows[i - 1];
  const next = windows[i + 1];
  const fromSec = previous === undefined ? window.startSec : seam(previous, window).startOfNext;
  const toSec = next === undefined ? window.endSec : seam(window, next).endOfFirst;
  return { fromSec: roundMs(fromSec), toSec: roundMs(Math.max(fromSec, toSec)) };
}

function seam(first: WindowPlan, next: WindowPlan): { endOfFirst: number; startOfNext: number } {
  if (next.startSec < first.endSec) {
    // In whole milliseconds, so the midpoint rounds the same way on every platform.
    const mid = Math.round((Math.round(next.startSec * 1000) + Math.round(first.endSec * 1000)) / 2) / 1000;
    return { endOfFirst: mid, startOfNext: mid };
  }
  return { endOfFirst: first.endSec, startOfNext: next.startSec };
}

interface Owned<T> {
  readonly shard: ShardOutcome<T>;
  readonly fromSec: number;
  readonly toSec: number;
}

function owned<T>(ordered: readonly ShardOutcome<T>[]): Owned<T>[] {
  const windows = ordered.map((s) => s.window);
  return ordered.map((shard, i) => ({ shard, ...ownedInterval(windows, i) }));
}

/**
 * Gaps over `[spanStart, spanEnd]`: each failed shard's owned interval (one gap per shard,
 * with its error message), plus the parts no window owns.
 */
function gapsOf<T>(parts: readonly Owned<T>[], spanStart: number, spanEnd: number): Gap[] {
  const gaps: Gap[] = [];
  let covered = spanStart;
  const add = (startSec: number, endSec: number, reason: string): void => {
    const from = roundMs(Math.max(startSec, spanStart));
    const to = roundMs(Math.min(endSec, spanEnd));
    if (to > from) gaps.push({ startSec: from, endSec: to, reason });
  };
  for (const part of parts) {
    if (part.fromSec > covered) add(covered, part.fromSec, NO_SHARD);
    if (!succeeded(part.shard)) add(part.fromSec, part.toSec, failureReason(part.shard));
    covered = Math.max(covered, part.toSec);
  }
  if (spanEnd > covered) add(covered, spanEnd, NO_SHARD);
  return gaps;
}

function coverageOf(gaps: readonly Gap[], spanSec: number): number {
  if (spanSec <= 0) return 1;
  const missing = gaps.reduce((sum, g) => sum + (g.endSec - g.startSec), 0);
  return Math.min(1, Math.max(0, (spanSec - missing) / spanSec));
}

/** A stitched audio analysis, how much of the recording it speaks for and where it does not. */
export interface StitchedAudio {
  readonly output: AudioAnalyzeOutput;
  /** Fraction of the duration covered by windows that succeeded, 0..1 (1 for an empty recording). */
  readonly coverage: number;
  readonly gaps: readonly Gap[];
}

/**
 * One `audio.analyze` output for a whole recording from the outputs of its windows.
 *
 * Each window's segments are in window-local time (0 = the window's start): they are shifted
 * by the window's start, clipped to its owned interval (and to `[0, durationSec]`),
 * concatenated in time order, and neighbouring segments of the same kind that touch (within
 * 1 ms) are merged — so a speech segment that straddles a seam comes out whole.
 *
 * A failed window (an error, or no output) leaves its owned interval as a gap (reason: the
 * error message, or 'no output') with no segments in it; parts of `[0, durationSec]` that no
 * window covers are gaps too ('no shard covers this part'). `coverage` is
 * `(durationSec - gap time) / durationSec`. `speechSec` and `silenceSec` add up the stitched
 * segments, so gaps count as neither.
 *
 * `rmsDbfs` is the energy mean over the owned intervals of the windows that succeeded (each
 * window's level turned into power, weighted by its owned duration, turned back into dB, to
 * 0.01 dB); `peakDbfs` is the highest peak of those windows; both are -120 when no window
 * succeeded. Format, decoder, sample rate, channels and duration come from `meta`.
 */
export function stitchAudioAnalysis(
  shards: readonly ShardOutcome<AudioAnalyzeOutput>[],
  meta: {
    readonly durationSec: number;
    readonly sampleRate: number;
    readonly channels: number;
    readonly format: string;
    readonly decoder: 'native' | 'ffmpeg';
  },
): StitchedAudio {
  const durationSec = roundMs(meta.durationSec);
  const parts = owned(inTimeOrder(shards));
  const pieces: AudioSegment[] = [];
  let power = 0;
  let weight = 0;
  let peak = Number.NEGATIVE_INFINITY;
  for (const { shard, fromSec, toSec } of parts) {
    if (!succeeded(shard)) continue;
    const lo = Math.max(fromSec, 0);
    const hi = Math.min(toSec, durationSec);
    const offset = shard.window.startSec;
    for (const seg of shard.output.segments) {
      const startSec = roundMs(Math.max(seg.startSec + offset, lo));
      const endSec = roundMs(Math.min(seg.endSec + offset, hi));
      if (endSec > startSec) pieces.push({ kind: seg.kind, startSec, endSec });
    }
    const ownedSec = toSec - fromSec;
    if (ownedSec > 0) {
      power += 10 ** (shard.output.rmsDbfs / 10) * ownedSec;
      weight += ownedSec;
    }
    peak = Math.max(peak, shard.output.peakDbfs);
  }
  const segments = mergeSegments(pieces);
  const total = (kind: AudioSegment['kind']): number =>
    roundMs(segments.filter((s) => s.kind === kind).reduce((sum, s) => sum + (s.endSec - s.startSec), 0));
  const gaps = gapsOf(parts, 0, durationSec);
  const rms = weight > 0 && power > 0 ? Math.max(SILENT_DBFS, 10 * Math.log10(power / weight)) : SILENT_DBFS;
  return {
    output: {
      format: meta.format,
      decoder: meta.decoder,
      sampleRate: meta.sampleRate,
      channels: meta.channels,
      durationSec,
      rmsDbfs: Math.round(rms * 100) / 100 + 0,
      peakDbfs: Number.isFinite(peak) ? peak : SILENT_DBFS,
      speechSec: total('speech'),
      silenceSec: total('silence'),
      segments,
    },
    coverage: coverageOf(gaps, durationSec),
    gaps,
  };
}

/** Sorts segments and merges neighbours of the same kind that touch or overlap (1 ms slack). */
function mergeSegments(pieces: readonly AudioSegment[]): AudioSegment[] {
  const sorted = [...pieces].sort((a, b) => a.startSec - b.startSec || a.endSec - b.endSec);
  const merged: AudioSegment[] = [];
  for (const seg of sorted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && last.kind === seg.kind && seg.startSec - last.endSec <= 0.001 + 1e-9) {
      merged[merged.length - 1] = { kind: last.kind, startSec: last.startSec, endSec: Math.max(last.endSec, seg.endSec) };
    } else {
      merged.push(seg);
    }
  }
  return merged;
}

/** A word heard at `[startSec, endSec]`. */
export interface TimedWord {
  readonly text: string;
  readonly startSec: number;
  readonly endSec: number;
}

/**
 * All the words of a recording from per-window transcripts. Each window's words are in
 * window-local time: they are shifted by the window's start, and a word is kept only from the
 * window whose owned interval contains the word's midpoint (half-open intervals; before the
 * first window counts as the first's, after the last as the last's). So a word heard in both
 * windows of an overlap is kept exactly once, provided both windows time it the same way (a
 * word timed differently on either side of a seam can still come out twice or not at all).
 *
 * Words come out sorted by start (then end). Gaps and coverage as in stitchAudioAnalysis,
 * over the span of the windows (first start to last end).
 */
export function stitchWords(shards: readonly ShardOutcome<{ readonly words: readonly TimedWord[] }>[]): {
  readonly words: TimedWord[];
  readonly coverage: number;
  readonly gaps: readonly Gap[];
} {
  const parts = owned(inTimeOrder(shards));
  const words: TimedWord[] = [];
  parts.forEach(({ shard, fromSec, toSec }, i) => {
    if (!succeeded(shard)) return;
    const first = i === 0;
    const last = i === parts.length - 1;
    const offset = shard.window.startSec;
    for (const word of shard.output.words) {
      const startSec = roundMs(word.startSec + offset);
      const endSec = roundMs(word.endSec + offset);
      const mid = (startSec + endSec) / 2;
      if ((first || mid >= fromSec) && (last || mid < toSec)) words.push({ text: word.text, startSec, endSec });
    }
  });
  words.sort((a, b) => a.startSec - b.startSec || a.endSec - b.endSec);
  const spanStart = parts.length === 0 ? 0 : Math.min(...parts.map((p) => p.shard.window.startSec));
  const spanEnd = parts.length === 0 ? 0 : Math.max(...parts.map((p) => p.shard.window.endSec));
  const gaps = gapsOf(parts, spanStart, spanEnd);
  return { words, coverage: coverageOf(gaps, spanEnd - spanStart), gaps };
}

/** A subtitle: text shown from `startSec` to `endSec`. */
export interface Cue {
  readonly startSec: number;
  readonly endSec: number;
  readonly text: string;
}

function clock(sec: number, separator: ',' | '.'): string {
  const totalMs = Math.max(0, Math.round(sec * 1000));
  const h = Math.floor(totalMs / 3_600_000);
  const m = Math.floor(totalMs / 60_000) % 60;
  const s = Math.floor(totalMs / 1000) % 60;
  const ms = totalMs % 1000;
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(h)}:${two(m)}:${two(s)}${separator}${String(ms).padStart(3, '0')}`;
}

/** Cue text with line breaks normalised and blank lines removed (a blank line ends a cue). */
function cueLines(text: string): string {
  return text
    .split(/\r\n|\r|\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join('\n');
}

function printable(cues: readonly Cue[]): Cue[] {
  return cues.map((c) => ({ ...c, text: cueLines(c.text) })).filter((c) => c.text !== '');
}

/**
 * SubRip: for each cue, its number (from 1), `HH:MM:SS,mmm --> HH:MM:SS,mmm`, its text and a
 * blank line. Cues whose text is blank are left out (and not numbered); blank lines inside a
 * text are removed, since they would end the cue. No cues give ''.
 */
export function toSrt(cues: readonly Cue[]): string {
  return printable(cues)
    .map((c, i) => `${i + 1}\n${clock(c.startSec, ',')} --> ${clock(c.endSec, ',')}\n${c.text}\n\n`)
    .join('');
}

/**
 * WebVTT: `WEBVTT`, a blank line, then for each cue `HH:MM:SS.mmm --> HH:MM:SS.mmm`, its text
 * and a blank line. Text is escaped (`&`, `<`, `>` as entities, which also keeps `-->` out of
 * it); blank cues and blank lines are dropped as in toSrt.
 */
export function toVtt(cues: readonly Cue[]): string {
  const escape = (text: string): string => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
  return `WEBVTT\n\n${printable(cues)
    .map((c) => `${clock(c.startSec, '.')} --> ${clock(c.endSec, '.')}\n${escape(c.text)}\n\n`)
    .join('')}`;
}

/** A pause between words longer than this starts a new cue. */
const CUE_PAUSE_SEC = 1;

/**
 * Groups consecutive words (sorted by start) into cues: text = the words joined by single
 * spaces, from the first word's start to the last word's end. A word starts a new cue when
 * adding it would make the cue longer than `maxCueSec` or its text longer than `maxChars`, or
 * when it follows a pause of more than 1 s. A single word over either limit is a cue on its
 * own. Blank words are skipped.
 *
 * @throws InvalidOptionError when `maxCueSec <= 0` or `maxChars` is not an integer >= 1.
 */
export function wordsToCues(words: readonly TimedWord[], maxCueSec: number, maxChars: number): Cue[] {
  if (!Number.isFinite(maxCueSec) || maxCueSec <= 0) throw new InvalidOptionError('maxCueSec', 'a finite number > 0', maxCueSec);
  if (!Number.isSafeInteger(maxChars) || maxChars < 1) throw new InvalidOptionError('maxChars', 'an integer >= 1', maxChars);
  const sorted = words
    .map((w) => ({ text: w.text.trim(), startSec: w.startSec, endSec: w.endSec }))
    .filter((w) => w.text !== '')
    .sort((a, b) => a.startSec - b.startSec || a.endSec - b.endSec);
  const cues: Cue[] = [];
  let current: { startSec: number; endSec: number; text: string } | undefined;
  for (const word of sorted) {
    if (current !== undefined) {
      const endSec = Math.max(current.endSec, word.endSec);
      const text = `${current.text} ${word.text}`;
      const fits = endSec - current.startSec <= maxCueSec + 1e-9 && text.length <= maxChars;
      if (fits && word.startSec - current.endSec <= CUE_PAUSE_SEC) {
        current = { startSec: current.startSec, endSec, text };
        continue;
      }
      cues.push(current);
    }
    current = { ...word };
  }
  if (current !== undefined) cues.push(current);
  return cues.map((c) => ({ startSec: roundMs(c.startSec), endSec: roundMs(c.endSec), text: c.text }));
}

/** One line of a combined timeline. `index`: the frame's index, or the speech segment's ordinal. */
export interface TimelineEntry {
  readonly startSec: number;
  readonly endSec: number;
  readonly source: 'frame' | 'speech' | 'words';
  readonly text: string;
  readonly index?: number;
}

const SOURCE_ORDER: Record<TimelineEntry['source'], number> = { frame: 0, speech: 1, words: 2 };

/**
 * One timeline of what was seen and heard, sorted by start (ties: frame, then speech, then
 * words; then by end and index):
 *
 * - a `frame` entry per frame, from its time for `frameIntervalSec`, text = what was read in
 *   it ('' allowed), index = the frame's index;
 * - a `speech` entry per speech segment (silence is left out), text '', index = its ordinal
 *   among the speech segments (0, 1, …);
 * - a `words` entry per speech segment that any words fall in: a word belongs to the first
 *   speech segment containing its midpoint, or else to the first one it overlaps; the entry
 *   spans its words (first start to last end), text = the words joined by spaces (in time
 *   order), index = the segment's ordinal;
 * - a `words` entry (no index) for each word that overlaps no speech segment, so no word is
 *   lost.
 *
 * @throws InvalidOptionError when `frameIntervalSec` is negative or not finite.
 */
export function buildTimeline(
  frames: readonly { readonly index: number; readonly timeSec: number; readonly text: string }[],
  frameIntervalSec: number,
  speech: readonly AudioSegment[],
  words: readonly TimedWord[],
): TimelineEntry[] {
  if (!Number.isFinite(frameIntervalSec) || frameIntervalSec < 0) {
    throw new InvalidOptionError('frameIntervalSec', 'a finite number >= 0', frameIntervalSec);
  }
  const entries: TimelineEntry[] = frames.map((f) => ({
    startSec: roundMs(f.timeSec),
    endSec: roundMs(f.timeSec + frameIntervalSec),
    source: 'frame',
    text: f.text,
    index: f.index,
  }));
  const segments = speech.filter((s) => s.kind === 'speech').sort((a, b) => a.startSec - b.startSec || a.endSec - b.endSec);
  segments.forEach((s, index) => entries.push({ startSec: roundMs(s.startSec), endSec: roundMs(s.endSec), source: 'speech', text: '', index }));

  const perSegment = new Map<number, TimedWord[]>();
  const sortedWords = [...words].sort((a, b) => a.startSec - b.startSec || a.endSec - b.endSec);
  for (const word of sortedWords) {
    const mid = (word.startSec + word.endSec) / 2;
    let home = segments.findIndex((s) => mid >= s.startSec && mid <= s.endSec);
    if (home < 0) home = segments.findIndex((s) => word.startSec < s.endSec && word.endSec > s.startSec);
    if (home < 0) {
      entries.push({ startSec: roundMs(word.startSec), endSec: roundMs(word.endSec), source: 'words', text: word.text });
      continue;
    }
    const list = perSegment.get(home) ?? [];
    list.push(word);
    perSegment.set(home, list);
  }
  for (const [index, list] of perSegment) {
    entries.push({
      startSec: roundMs(Math.min(...list.map((w) => w.startSec))),
      endSec: roundMs(Math.max(...list.map((w) => w.endSec))),
      source: 'words',
      text: list.map((w) => w.text).join(' '),
      index,
    });
  }
  return entries.sort(
    (a, b) =>
      a.startSec - b.startSec ||
      SOURCE_ORDER[a.source] - SOURCE_ORDER[b.source] ||
      a.endSec - b.endSec ||
      (a.index ?? -1) - (b.index ?? -1),
  );
}

const EXCERPT_CHARS = 2_000;
const TOP_TERMS = 10;

/**
 * The line break a chunk's text ends with: its `finalLineBreak`, else read from its excerpt
 * when that holds the whole chunk; undefined when it cannot be known.
 */
function endingOf(o: TextStatsOutput): FinalLineBreak | undefined {
  if (o.finalLineBreak !== undefined) return o.finalLineBreak;
  return o.truncated ? undefined : finalLineBreakOf(o.excerpt);
}

/**
 * One `text.stats` output for a text from the outputs of its chunks (`window.index` = the
 * chunk's index; chunks as textChunks cuts them, contiguous and in order).
 *
 * - characters, graphemes, words, sentences: summed over the chunks that succeeded (exact for
 *   textChunks chunks, except that a sentence or word cut across chunks counts once per
 *   chunk);
 * - lines: summed, minus one for each join between consecutive succeeded non-empty chunks
 *   where the earlier chunk does not end with a line break (its last line goes on in the
 *   next chunk), and minus one where it ends with a lone CR and the next chunk begins with
 *   LF (the two are one CR LF break in the whole text; textChunks cuts there only when
 *   maxChars is 1). A chunk's ending is its `finalLineBreak`; for outputs without it (older
 *   workers) it is read from the excerpt, and a truncated excerpt (chunk over 2,000
 *   characters) is taken to end mid-line. Exact (the lines of the whole text) when every
 *   chunk succeeded and reports `finalLineBreak`;
 * - finalLineBreak: that of the last succeeded non-empty chunk ('none' when there is none;
 *   'crlf' when that chunk is a lone LF after a chunk ending with CR), absent when that
 *   chunk's ending is not known;
 * - scripts: each chunk's fractions weighted by its characters, renormalised over the chunks
 *   that have letters, rounded to 0.001, most used first (ties by name);
 * - topTerms: counts summed over the chunks' own top terms (so approximate when a chunk had
 *   more than 10 terms), sorted by count (desc) then term (code-point order), cut to 10;
 * - excerpt: the first 2,000 characters (code points) of the chunks' excerpts joined in
 *   order; truncated when the summed characters exceed 2,000.
 *
 * Gaps: the chunks that failed (no output, or an error), by index. Coverage: chunks that
 * succeeded / all chunks (1 when there are none).
 */
export function stitchTextStats(
  shards: readonly ShardOutcome<TextStatsOutput>[],
  source: 'prompt' | 'input',
): {
  readonly output: TextStatsOutput;
  readonly coverage: number;
  readonly gaps: readonly { readonly index: number; readonly reason: string }[];
} {
  const ordered = [...shards].sort((a, b) => a.window.index - b.window.index);
  const gaps = ordered.filter((s) => !succeeded(s)).map((s) => ({ index: s.window.index, reason: failureReason(s) }));
  const outputs = ordered.filter(succeeded).map((s) => s.output);

  const sum = (pick: (o: TextStatsOutput) => number): number => outputs.reduce((n, o) => n + pick(o), 0);
  const characters = sum((o) => o.characters);
  let lines = sum((o) => o.lines);
  // An empty chunk has no lines and does not separate its neighbours.
  const filled = outputs.filter((o) => o.characters > 0);
  filled.forEach((o, i) => {
    const next = filled[i + 1];
    if (next === undefined) return;
    const end = endingOf(o);
    // Its last line goes on in the next chunk (an unknown ending is taken to be mid-line).
    if (end === 'none' || end === undefined) lines -= 1;
    // CR | LF: one line break in the whole text, counted once on either side.
    else if (end === 'cr' && next.excerpt.startsWith('\n')) lines -= 1;
  });
  const last = filled[filled.length - 1];
  const beforeLast = filled[filled.length - 2];
  let finalLineBreak = last === undefined ? 'none' : endingOf(last);
  // A last chunk of just LF after one ending with CR: the text ends with CR LF.
  if (finalLineBreak === 'lf' && last?.characters === 1 && beforeLast !== undefined && endingOf(beforeLast) === 'cr') finalLineBreak = 'crlf';

  const scriptWeight = new Map<string, number>();
  let letterWeight = 0;
  for (const o of outputs) {
    if (o.scripts.length === 0) continue;
    letterWeight += o.characters;
    for (const s of o.scripts) scriptWeight.set(s.script, (scriptWeight.get(s.script) ?? 0) + s.fraction * o.characters);
  }
  const scripts = [...scriptWeight]
    .map(([script, w]) => ({ script, fraction: letterWeight > 0 ? Math.min(1, Math.round((w / letterWeight) * 1000) / 1000) : 0 }))
    .sort((a, b) => b.fraction - a.fraction || compareText(a.script, b.script));

  const termCounts = new Map<string, number>();
  for (const o of outputs) for (const t of o.topTerms) termCounts.set(t.term, (termCounts.get(t.term) ?? 0) + t.count);
  const topTerms = [...termCounts]
    .sort((a, b) => b[1] - a[1] || compareText(a[0], b[0]))
    .slice(0, TOP_TERMS)
    .map(([term, count]) => ({ term, count }));

  const excerpt = joinedExcerpt(outputs);
  return {
    output: {
      source,
      characters,
      graphemes: sum((o) => o.graphemes),
      words: sum((o) => o.words),
      sentences: sum((o) => o.sentences),
      lines: Math.max(0, lines),
      scripts,
      topTerms,
      excerpt,
      truncated: characters > EXCERPT_CHARS,
      ...(finalLineBreak === undefined ? {} : { finalLineBreak }),
    },
    coverage: ordered.length === 0 ? 1 : outputs.length / ordered.length,
    gaps,
  };
}

/**
 * The first EXCERPT_CHARS code points of the outputs' excerpts joined in order, reading only
 * the excerpts it needs (a 20,000-chunk text must not be joined and spread whole). The
 * first EXCERPT_CHARS code points take at most twice as many UTF-16 code units, so joining
 * until one more than that is held decides them all, including a surrogate pair split across
 * two excerpts; the result is that of `[...joinedAll].slice(0, EXCERPT_CHARS).join('')`.
 */
function joinedExcerpt(outputs: readonly TextStatsOutput[]): string {
  const enough = 2 * EXCERPT_CHARS + 1;
  let head = '';
  for (const o of outputs) {
    if (head.length >= enough) break;
    head += o.excerpt;
  }
  let excerpt = '';
  let count = 0;
  for (const c of head) {
    if (count === EXCERPT_CHARS) break;
    excerpt += c;
    count += 1;
  }
  return excerpt;
}

/** Code-point order: the same everywhere, unlike localeCompare. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
