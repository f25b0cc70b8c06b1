import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../errors.js';
import { audioWindows, textChunks, type WindowPlan } from '../sharding.js';
import {
  buildTimeline,
  ownedInterval,
  stitchAudioAnalysis,
  stitchTextStats,
  stitchWords,
  toSrt,
  toVtt,
  wordsToCues,
  type Cue,
  type Gap,
  type ShardOutcome,
  type TimedWord,
  type TimelineEntry,
} from '../stitching.js';
import {
  audioAnalyzeOutputSchema,
  textStatsOutputSchema,
  type AudioAnalyzeOutput,
  type AudioSegment,
  type TextStatsOutput,
} from '../task-outputs.js';
import { textStats } from '../text-stats.js';

/** Seconds from whole milliseconds, the way times come out of the functions under test. */
const ms = (x: number): number => Math.round(x * 1000) / 1000 + 0;

/** A small deterministic PRNG (mulberry32), so the "true" recordings are the same every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const DURATION = 300;
const WINDOWS = audioWindows(DURATION, { windowSec: 30, overlapSec: 5 });

/** 40 alternating silence/speech segments covering [0, 300], at whole milliseconds. */
function trueSegments(): AudioSegment[] {
  const next = random(7);
  const cuts = new Set<number>();
  while (cuts.size < 39) cuts.add(1 + Math.floor(next() * (DURATION * 1000 - 1)));
  const bounds = [0, ...[...cuts].sort((a, b) => a - b), DURATION * 1000];
  return bounds.slice(1).map((end, i) => ({
    kind: i % 2 === 0 ? 'silence' : 'speech',
    startSec: (bounds[i] ?? 0) / 1000,
    endSec: end / 1000,
  }));
}

/** What a per-window analysis sees: the truth clipped to the window, in window-local time. */
function localSegments(truth: readonly AudioSegment[], w: WindowPlan): AudioSegment[] {
  return truth
    .filter((s) => s.endSec > w.startSec && s.startSec < w.endSec)
    .map((s) => ({
      kind: s.kind,
      startSec: ms(Math.max(s.startSec, w.startSec) - w.startSec),
      endSec: ms(Math.min(s.endSec, w.endSec) - w.startSec),
    }));
}

const levelOf = (w: WindowPlan): number => -20 - w.index;
const peakOf = (w: WindowPlan): number => -3 - w.index / 10;

function analyseWindow(truth: readonly AudioSegment[], w: WindowPlan): AudioAnalyzeOutput {
  const segments = localSegments(truth, w);
  const total = (kind: AudioSegment['kind']): number =>
    ms(segments.filter((s) => s.kind === kind).reduce((sum, s) => sum + s.endSec - s.startSec, 0));
  return {
    format: 'wav/pcm_s16le',
    decoder: 'native',
    sampleRate: 16_000,
    channels: 1,
    durationSec: ms(w.endSec - w.startSec),
    rmsDbfs: levelOf(w),
    peakDbfs: peakOf(w),
    speechSec: total('speech'),
    silenceSec: total('silence'),
    segments,
  };
}

const META = { durationSec: DURATION, sampleRate: 16_000, channels: 1, format: 'wav/pcm_s16le', decoder: 'native' } as const;

type Failure = { readonly index: number; readonly message?: string };

function audioShards(truth: readonly AudioSegment[], failures: readonly Failure[] = []): ShardOutcome<AudioAnalyzeOutput>[] {
  return WINDOWS.map((window) => {
    const failure = failures.find((f) => f.index === window.index);
    if (failure === undefined) return { window, output: analyseWindow(truth, window) };
    return failure.message === undefined ? { window } : { window, error: { code: 'TASK_FAILED', message: failure.message } };
  });
}

/** The truth with the gaps cut out of it. */
function withoutGaps<T extends { readonly startSec: number; readonly endSec: number }>(items: readonly T[], gaps: readonly Gap[]): T[] {
  let pieces = [...items];
  for (const gap of gaps) {
    pieces = pieces.flatMap((p) => {
      const out: T[] = [];
      if (p.startSec < gap.startSec) out.push({ ...p, endSec: Math.min(p.endSec, gap.startSec) });
      if (p.endSec > gap.endSec) out.push({ ...p, startSec: Math.max(p.startSec, gap.endSec) });
      return out.filter((o) => o.endSec > o.startSec);
    });
  }
  return pieces;
}

const sumOf = (segments: readonly AudioSegment[], kind: AudioSegment['kind']): number =>
  ms(segments.filter((s) => s.kind === kind).reduce((sum, s) => sum + s.endSec - s.startSec, 0));

describe('ownedInterval', () => {
  const w = (index: number, startSec: number, endSec: number): WindowPlan => ({ index, startSec, endSec });

  it.each<[string, WindowPlan[], [number, number][]]>([
    ['one window', [w(0, 0, 10)], [[0, 10]]],
    ['overlaps split at the midpoint', [w(0, 0, 30), w(1, 25, 55), w(2, 50, 70)], [[0, 27.5], [27.5, 52.5], [52.5, 70]]],
    ['touching windows keep their edges', [w(0, 0, 30), w(1, 30, 60)], [[0, 30], [30, 60]]],
    ['a hole between windows is nobody’s', [w(0, 0, 10), w(1, 12, 20)], [[0, 10], [12, 20]]],
    ['stretched last window', [w(0, 0, 30), w(1, 25, 55), w(2, 50, 82)], [[0, 27.5], [27.5, 52.5], [52.5, 82]]],
    ['midpoints rounded to ms', [w(0, 0, 1.001), w(1, 0.9, 2)], [[0, 0.951], [0.951, 2]]],
  ])('%s', (_name, windows, expected) => {
    expect(windows.map((_, i) => ownedInterval(windows, i)).map((o) => [o.fromSec, o.toSec])).toEqual(expected);
  });

  it.each([-1, 3, 0.5])('rejects index %s', (i) => {
    expect(() => ownedInterval([w(0, 0, 1), w(1, 1, 2), w(2, 2, 3)], i)).toThrow(InvalidOptionError);
  });
});

describe('stitchAudioAnalysis', () => {
  const truth = trueSegments();

  it('the test recording has speech straddling seams, and windows that cut segments', () => {
    expect(WINDOWS).toHaveLength(12);
    const straddling = truth.filter(
      (s) => s.kind === 'speech' && WINDOWS.some((w, i) => i > 0 && s.startSec < ownedInterval(WINDOWS, i).fromSec && s.endSec > ownedInterval(WINDOWS, i).fromSec),
    );
    expect(straddling.length).toBeGreaterThanOrEqual(3);
  });

  it('rebuilds the true segments exactly: nothing doubled, nothing lost, segments across seams whole', () => {
    const { output, coverage, gaps } = stitchAudioAnalysis(audioShards(truth), META);
    expect(output.segments).toEqual(truth);
    expect(output.speechSec).toBe(sumOf(truth, 'speech'));
    expect(output.silenceSec).toBe(sumOf(truth, 'silence'));
    expect(ms(output.speechSec + output.silenceSec)).toBe(DURATION);
    expect(coverage).toBe(1);
    expect(gaps).toEqual([]);
    expect(audioAnalyzeOutputSchema.parse(output)).toEqual(output);
  });

  it('does not depend on the order the shards come back in', () => {
    const shards = audioShards(truth);
    expect(stitchAudioAnalysis([...shards].reverse(), META)).toEqual(stitchAudioAnalysis(shards, META));
  });

  it('takes format, decoder, rate, channels and duration from meta', () => {
    const meta = { durationSec: DURATION, sampleRate: 44_100, channels: 2, format: 'mp3', decoder: 'ffmpeg' } as const;
    const { output } = stitchAudioAnalysis(audioShards(truth), meta);
    expect([output.format, output.decoder, output.sampleRate, output.channels, output.durationSec]).toEqual(['mp3', 'ffmpeg', 44_100, 2, 300]);
  });

  it.each<[string, Failure[], Gap[]]>([
    ['nothing failed', [], []],
    [
      'an error and a missing output',
      [{ index: 3, message: 'CUDA out of memory' }, { index: 7 }],
      [
        { startSec: 77.5, endSec: 102.5, reason: 'CUDA out of memory' },
        { startSec: 177.5, endSec: 202.5, reason: 'no output' },
      ],
    ],
    [
      'the first and the last window',
      [{ index: 0, message: 'decoder crashed' }, { index: 11, message: 'timed out' }],
      [
        { startSec: 0, endSec: 27.5, reason: 'decoder crashed' },
        { startSec: 277.5, endSec: 300, reason: 'timed out' },
      ],
    ],
    [
      'two neighbours',
      [{ index: 4, message: 'a' }, { index: 5, message: 'b' }],
      [
        { startSec: 102.5, endSec: 127.5, reason: 'a' },
        { startSec: 127.5, endSec: 152.5, reason: 'b' },
      ],
    ],
  ])('failed windows leave gaps: %s', (_name, failures, expectedGaps) => {
    const { output, coverage, gaps } = stitchAudioAnalysis(audioShards(truth, failures), META);
    expect(gaps).toEqual(expectedGaps);
    const gapSec = expectedGaps.reduce((sum, g) => sum + g.endSec - g.startSec, 0);
    expect(coverage).toBeCloseTo((DURATION - gapSec) / DURATION, 12);
    const expected = withoutGaps(truth, expectedGaps);
    expect(output.segments).toEqual(expected);
    expect(output.speechSec).toBe(sumOf(expected, 'speech'));
    expect(output.silenceSec).toBe(sumOf(expected, 'silence'));
    expect(ms(output.speechSec + output.silenceSec + gapSec)).toBe(DURATION);
    expect(audioAnalyzeOutputSchema.safeParse(output).success).toBe(true);
  });

  it('with every window failed: no segments, no coverage, silent levels', () => {
    const failures = WINDOWS.map((w) => ({ index: w.index, message: 'down' }));
    const { output, coverage, gaps } = stitchAudioAnalysis(audioShards(truth, failures), META);
    expect(output).toMatchObject({ segments: [], speechSec: 0, silenceSec: 0, rmsDbfs: -120, peakDbfs: -120 });
    expect(coverage).toBe(0);
    expect(gaps).toHaveLength(12);
    expect(audioAnalyzeOutputSchema.safeParse(output).success).toBe(true);
  });

  it('with no shards at all, the whole recording is one gap', () => {
    const { output, coverage, gaps } = stitchAudioAnalysis([], META);
    expect(gaps).toEqual([{ startSec: 0, endSec: 300, reason: 'no shard covers this part' }]);
    expect(coverage).toBe(0);
    expect(output.segments).toEqual([]);
  });

  it('an empty recording is fully covered', () => {
    const { coverage, gaps, output } = stitchAudioAnalysis([], { ...META, durationSec: 0 });
    expect([coverage, gaps, output.durationSec]).toEqual([1, [], 0]);
  });

  const twoWindows = audioWindows(50, { windowSec: 30, overlapSec: 10 }); // [0,30] [20,50]: each owns 25 s
  const levels = (rms: [number, number], peak: [number, number], failed?: number): ShardOutcome<AudioAnalyzeOutput>[] =>
    twoWindows.map((window, i) => {
      if (i === failed) return { window, error: { code: 'X', message: 'failed' } };
      const base = analyseWindow([{ kind: 'speech', startSec: 0, endSec: 50 }], window);
      return { window, output: { ...base, rmsDbfs: rms[i] ?? 0, peakDbfs: peak[i] ?? 0 } };
    });

  it.each<[string, ShardOutcome<AudioAnalyzeOutput>[], number, number]>([
    ['equal levels', levels([-20, -20], [-1, -2]), -20, -1],
    ['energy mean, not the mean of dB', levels([-10, -20], [-6, -3]), ms(Math.round(10 * Math.log10((0.1 + 0.01) / 2) * 100) / 100), -3],
    ['only the windows that succeeded', levels([-10, -20], [-6, -3], 0), -20, -3],
  ])('levels: %s', (_name, shards, rms, peak) => {
    const { output } = stitchAudioAnalysis(shards, { ...META, durationSec: 50 });
    expect(output.rmsDbfs).toBeCloseTo(rms, 10);
    expect(output.peakDbfs).toBe(peak);
  });

  it('weights each window by the time it owns', () => {
    const { output } = stitchAudioAnalysis(audioShards(truth), META);
    const owned = WINDOWS.map((_, i) => ownedInterval(WINDOWS, i));
    const power = WINDOWS.reduce((sum, w, i) => sum + 10 ** (levelOf(w) / 10) * ((owned[i]?.toSec ?? 0) - (owned[i]?.fromSec ?? 0)), 0);
    expect(output.rmsDbfs).toBeCloseTo(10 * Math.log10(power / DURATION), 2);
    expect(output.peakDbfs).toBe(-3);
  });
});

/** 40 words over 300 s, some on purpose across window edges and right on the seams. */
function trueWords(): TimedWord[] {
  const next = random(11);
  const special: [number, number][] = [
    [24.9, 25.3], // crosses the start of window 1
    [27.3, 27.7], // midpoint exactly on the seam 27.5
    [29.8, 30.4], // crosses the end of window 0
    [52.3, 52.7], // midpoint on the seam 52.5
    [104.6, 105.4], // crosses the end of window 3
    [299.5, 300], // ends with the recording
  ];
  const words: [number, number][] = [...special];
  while (words.length < 40) {
    const start = Math.floor(next() * 299_000) / 1000;
    const end = ms(start + 0.2 + Math.floor(next() * 700) / 1000);
    if (words.every(([s, e]) => end <= s || start >= e)) words.push([start, end]);
  }
  return words.sort((a, b) => a[0] - b[0]).map(([startSec, endSec], i) => ({ text: `w${i}`, startSec, endSec }));
}

/** What a per-window transcript sees: words that overlap the window, clipped to it, in window-local time. */
function transcribeWindow(truth: readonly TimedWord[], w: WindowPlan): { words: TimedWord[] } {
  return {
    words: truth
      .filter((t) => t.endSec > w.startSec && t.startSec < w.endSec)
      .map((t) => ({
        text: t.text,
        startSec: ms(Math.max(t.startSec, w.startSec) - w.startSec),
        endSec: ms(Math.min(t.endSec, w.endSec) - w.startSec),
      })),
  };
}

describe('stitchWords', () => {
  const truth = trueWords();
  const shards = (failures: readonly Failure[] = []): ShardOutcome<{ readonly words: readonly TimedWord[] }>[] =>
    WINDOWS.map((window) => {
      const failure = failures.find((f) => f.index === window.index);
      if (failure === undefined) return { window, output: transcribeWindow(truth, window) };
      return failure.message === undefined ? { window } : { window, error: { code: 'TASK_FAILED', message: failure.message } };
    });

  it('the test transcript hears words twice in overlaps', () => {
    const heard = WINDOWS.reduce((n, w) => n + transcribeWindow(truth, w).words.length, 0);
    expect(truth).toHaveLength(40);
    expect(heard).toBeGreaterThan(truth.length);
  });

  it('keeps every word exactly once, in order, with its true times', () => {
    const { words, coverage, gaps } = stitchWords(shards());
    expect(words).toEqual(truth);
    expect(coverage).toBe(1);
    expect(gaps).toEqual([]);
  });

  it('does not depend on shard order', () => {
    expect(stitchWords([...shards()].reverse())).toEqual(stitchWords(shards()));
  });

  it.each<[string, Failure[], Gap[]]>([
    ['one window failed', [{ index: 3, message: 'OOM' }], [{ startSec: 77.5, endSec: 102.5, reason: 'OOM' }]],
    [
      'first and last missing',
      [{ index: 0 }, { index: 11, message: 'lost' }],
      [
        { startSec: 0, endSec: 27.5, reason: 'no output' },
        { startSec: 277.5, endSec: 300, reason: 'lost' },
      ],
    ],
  ])('failed windows: %s', (_name, failures, expectedGaps) => {
    const { words, coverage, gaps } = stitchWords(shards(failures));
    expect(gaps).toEqual(expectedGaps);
    const inGap = (w: TimedWord): boolean => {
      const mid = (w.startSec + w.endSec) / 2;
      return expectedGaps.some((g) => mid >= g.startSec && (mid < g.endSec || g.endSec === DURATION));
    };
    expect(words).toEqual(truth.filter((w) => !inGap(w)));
    expect(words.length).toBeLessThan(truth.length);
    const gapSec = expectedGaps.reduce((sum, g) => sum + g.endSec - g.startSec, 0);
    expect(coverage).toBeCloseTo((DURATION - gapSec) / DURATION, 12);
  });

  it('gives nothing for nothing', () => {
    expect(stitchWords([])).toEqual({ words: [], coverage: 1, gaps: [] });
  });
});

describe('subtitles', () => {
  const cues: Cue[] = [
    { startSec: 0, endSec: 1.5, text: 'Hello world' },
    { startSec: 3661.001, endSec: 3662.25, text: 'Second\nline' },
  ];

  it('toSrt writes SubRip', () => {
    expect(toSrt(cues)).toBe('1\n00:00:00,000 --> 00:00:01,500\nHello world\n\n2\n01:01:01,001 --> 01:01:02,250\nSecond\nline\n\n');
  });

  it('toVtt writes WebVTT', () => {
    expect(toVtt(cues)).toBe('WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello world\n\n01:01:01.001 --> 01:01:02.250\nSecond\nline\n\n');
  });

  it.each<[string, Cue[], string, string]>([
    ['no cues', [], '', 'WEBVTT\n\n'],
    [
      'blank cues are dropped and the rest renumbered',
      [
        { startSec: 0, endSec: 1, text: '  ' },
        { startSec: 1, endSec: 2, text: 'kept' },
      ],
      '1\n00:00:01,000 --> 00:00:02,000\nkept\n\n',
      'WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nkept\n\n',
    ],
    [
      'blank lines inside a cue are removed',
      [{ startSec: 59.9995, endSec: 61, text: 'one\r\n\r\ntwo\n' }],
      '1\n00:01:00,000 --> 00:01:01,000\none\ntwo\n\n',
      'WEBVTT\n\n00:01:00.000 --> 00:01:01.000\none\ntwo\n\n',
    ],
    [
      'markup is escaped in WebVTT only',
      [{ startSec: 0, endSec: 1, text: 'a < b & c --> d' }],
      '1\n00:00:00,000 --> 00:00:01,000\na < b & c --> d\n\n',
      'WEBVTT\n\n00:00:00.000 --> 00:00:01.000\na &lt; b &amp; c --&gt; d\n\n',
    ],
  ])('%s', (_name, input, srt, vtt) => {
    expect(toSrt(input)).toBe(srt);
    expect(toVtt(input)).toBe(vtt);
  });
});

describe('wordsToCues', () => {
  const w = (text: string, startSec: number, endSec: number): TimedWord => ({ text, startSec, endSec });
  const sentence = [
    w('The', 0, 0.4),
    w('quick', 0.5, 0.9),
    w('brown', 1, 1.4),
    w('fox', 1.5, 1.9),
    w('jumps', 2, 2.4),
    w('over', 4, 4.4), // after a pause of 1.6 s
    w('the', 4.5, 4.9),
    w('lazy', 5, 5.4),
    w('dog.', 5.5, 5.9),
  ];

  it.each<[string, TimedWord[], number, number, Cue[]]>([
    [
      'limits on characters and pauses',
      sentence,
      2,
      20,
      [
        { startSec: 0, endSec: 1.9, text: 'The quick brown fox' },
        { startSec: 2, endSec: 2.4, text: 'jumps' },
        { startSec: 4, endSec: 5.9, text: 'over the lazy dog.' },
      ],
    ],
    [
      'limit on duration',
      sentence,
      1,
      80,
      [
        { startSec: 0, endSec: 0.9, text: 'The quick' },
        { startSec: 1, endSec: 1.9, text: 'brown fox' },
        { startSec: 2, endSec: 2.4, text: 'jumps' },
        { startSec: 4, endSec: 4.9, text: 'over the' },
        { startSec: 5, endSec: 5.9, text: 'lazy dog.' },
      ],
    ],
    ['a word over both limits is a cue of its own', [w('a', 0, 0.1), w('Supercalifragilistic', 0.2, 3), w('b', 3.1, 3.2)], 2, 10, [
      { startSec: 0, endSec: 0.1, text: 'a' },
      { startSec: 0.2, endSec: 3, text: 'Supercalifragilistic' },
      { startSec: 3.1, endSec: 3.2, text: 'b' },
    ]],
    ['unsorted words, blank words skipped', [w('two', 1, 1.5), w(' ', 0.6, 0.7), w(' one ', 0, 0.5)], 5, 40, [{ startSec: 0, endSec: 1.5, text: 'one two' }]],
    ['no words', [], 5, 40, []],
  ])('%s', (_name, words, maxCueSec, maxChars, expected) => {
    const cues = wordsToCues(words, maxCueSec, maxChars);
    expect(cues).toEqual(expected);
  });

  it('feeds toSrt', () => {
    expect(toSrt(wordsToCues(sentence.slice(0, 2), 5, 40))).toBe('1\n00:00:00,000 --> 00:00:00,900\nThe quick\n\n');
  });

  it.each<[number, number]>([
    [0, 10],
    [2, 0],
    [2, 1.5],
  ])('rejects maxCueSec %s, maxChars %s', (maxCueSec, maxChars) => {
    expect(() => wordsToCues(sentence, maxCueSec, maxChars)).toThrow(InvalidOptionError);
  });
});

describe('buildTimeline', () => {
  it('merges frames, speech and words into one ordered timeline', () => {
    const frames = [
      { index: 0, timeSec: 0, text: 'TITLE' },
      { index: 1, timeSec: 2, text: '' },
      { index: 2, timeSec: 4, text: 'Slide 2' },
    ];
    const speech: AudioSegment[] = [
      { kind: 'silence', startSec: 0, endSec: 1 },
      { kind: 'speech', startSec: 1, endSec: 3.5 },
      { kind: 'silence', startSec: 3.5, endSec: 5 },
      { kind: 'speech', startSec: 5, endSec: 7 },
    ];
    const words: TimedWord[] = [
      { text: 'hello', startSec: 1.2, endSec: 1.6 },
      { text: 'there', startSec: 1.7, endSec: 2.1 },
      { text: 'um', startSec: 4, endSec: 4.2 }, // in silence: its own entry
      { text: 'bye', startSec: 4.9, endSec: 5.3 }, // midpoint in speech 1
    ];
    const expected: TimelineEntry[] = [
      { startSec: 0, endSec: 2, source: 'frame', text: 'TITLE', index: 0 },
      { startSec: 1, endSec: 3.5, source: 'speech', text: '', index: 0 },
      { startSec: 1.2, endSec: 2.1, source: 'words', text: 'hello there', index: 0 },
      { startSec: 2, endSec: 4, source: 'frame', text: '', index: 1 },
      { startSec: 4, endSec: 6, source: 'frame', text: 'Slide 2', index: 2 },
      { startSec: 4, endSec: 4.2, source: 'words', text: 'um' },
      { startSec: 4.9, endSec: 5.3, source: 'words', text: 'bye', index: 1 },
      { startSec: 5, endSec: 7, source: 'speech', text: '', index: 1 },
    ];
    expect(buildTimeline(frames, 2, speech, words)).toEqual(expected);
  });

  it('breaks ties: frame, then speech, then words', () => {
    const timeline = buildTimeline(
      [{ index: 0, timeSec: 1, text: 'x' }],
      1,
      [{ kind: 'speech', startSec: 1, endSec: 2 }],
      [{ text: 'a', startSec: 1, endSec: 1.5 }],
    );
    expect(timeline.map((e) => e.source)).toEqual(['frame', 'speech', 'words']);
  });

  it('rejects a negative frame interval', () => {
    expect(() => buildTimeline([], -1, [], [])).toThrow(InvalidOptionError);
  });
});

function chunkShards(text: string, maxChars: number, failed: readonly number[] = []): ShardOutcome<TextStatsOutput>[] {
  return textChunks(text, maxChars).map(({ index, start, end }) => {
    const window = { index, startSec: start, endSec: end };
    return failed.includes(index) ? { window, error: { code: 'TASK_FAILED', message: `chunk ${index} failed` } } : { window, output: textStats(text.slice(start, end), 'input') };
  });
}

describe('stitchTextStats', () => {
  const paragraph =
    'The grid cuts media into shards. Every shard runs on a worker.\nThe worker sends the shard back.\n\n' +
    'Then the grid stitches the shards together. Nothing is lost, nothing is doubled! Is the grid fast? ' +
    'The grid is fast.\r\nNaïve café owners like the grid.\n';
  const long = Array.from({ length: 30 }, () => paragraph).join('');

  it.each<[string, string, number]>([
    ['one chunk', paragraph, 10_000],
    ['small chunks (the longest sentence has 44 characters)', paragraph, 45],
    ['chunks ending on line breaks', paragraph, 70],
    ['over 2,000 characters', long, 500],
    ['over 2,000 characters, small chunks', long, 64],
  ])('%s: equals the stats of the whole text', (_name, text, maxChars) => {
    const { output, coverage, gaps } = stitchTextStats(chunkShards(text, maxChars), 'input');
    const whole = textStats(text, 'input');
    expect(output).toEqual(whole);
    expect(coverage).toBe(1);
    expect(gaps).toEqual([]);
    expect(textStatsOutputSchema.parse(output)).toEqual(output);
  });

  it('counts a sentence cut across chunks once per chunk, and nothing else changes', () => {
    const { output } = stitchTextStats(chunkShards(paragraph, 20), 'input');
    const whole = textStats(paragraph, 'input');
    expect(output.sentences).toBeGreaterThan(whole.sentences);
    expect({ ...output, sentences: whole.sentences }).toEqual(whole);
  });

  it.each<[string[], number]>([
    [['abc', 'def'], 1],
    [['abc\n', 'def'], 2],
    [['abc', '\n', 'def'], 2],
    [['abc\n', '\n'], 2],
    [['a\nb', 'c\n', 'd'], 3],
    [['a\r\n', 'b\r', 'c'], 3],
    [['abc', ''], 1],
    [['abc', '', 'def'], 1],
    [['a\r', '\nb'], 2],
    [['a\r', '\n'], 1],
    [['a', '\r', '\n', 'b'], 2],
    [['\r', '\n', '\r', '\n'], 2],
    [['a\r', '\rb'], 3],
  ])('lines of contiguous chunks %j: %s', (chunks, lines) => {
    const shards = chunks.map((text, index) => ({ window: { index, startSec: 0, endSec: 0 }, output: textStats(text, 'prompt') }));
    const { output } = stitchTextStats(shards, 'prompt');
    const whole = textStats(chunks.join(''), 'prompt');
    expect(whole.lines).toBe(lines);
    expect(output.lines).toBe(lines);
    expect(output.finalLineBreak).toBe(whole.finalLineBreak);
  });

  describe('lines of textChunks chunks equal those of the whole text', () => {
    const numbered = (n: number, eol: string): string => Array.from({ length: n }, (_, i) => `Line ${i} of the file, with a few words in it.${eol}`).join('');
    // Chunks over 2,000 characters (truncated excerpts) that end with line breaks.
    const texts: [string, string][] = [
      ['400 LF lines (the 4,000-character default made 395 of them)', numbered(400, '\n')],
      ['400 CRLF lines', numbered(400, '\r\n')],
      ['400 CR lines', numbered(400, '\r')],
      ['no line break at the end', numbered(300, '\n') + 'and a last line without one'],
      ['blank lines at the end', `${numbered(300, '\n')}\n\n\n`],
      ['mixed line breaks and blank lines', Array.from({ length: 200 }, (_, i) => `Row ${i}.${['\n', '\r\n', '\r', '\n\n', '\r\n\r\n', ' '][i % 6]}`).join('')],
      ['one long line', 'word '.repeat(3000)],
      ['long lines without sentence ends', Array.from({ length: 8 }, (_, i) => `${String(i).repeat(2500)}\n`).join('')],
    ];
    const sizes = [100, 257, 1000, 2001, 4000, 10_000];

    it.each(texts)('%s', (_name, text) => {
      const whole = textStats(text, 'input');
      for (const maxChars of sizes) {
        const shards = chunkShards(text, maxChars);
        const { output } = stitchTextStats(shards, 'input');
        expect({ maxChars, lines: output.lines, characters: output.characters, finalLineBreak: output.finalLineBreak }).toEqual({
          maxChars,
          lines: whole.lines,
          characters: whole.characters,
          finalLineBreak: whole.finalLineBreak,
        });
      }
      // The text was really cut into chunks of over 2,000 characters.
      expect(chunkShards(text, 4000).some((s) => s.output?.truncated === true)).toBe(text.length > 4000);
    });

    const small: [string, string][] = [
      ['CRLF', 'ab\r\ncd\r\n\r\nef\r\n'],
      ['CR', 'ab\rcd\r\ref\r'],
      ['LF without an end', 'ab\ncd\n\nef'],
      ['line breaks only', '\r\n\r\n\r\r\n\n\n\r'],
      ['mixed', 'One. Two!\r\nThree?\rFour\n\nfive six\r\n'],
      ['one character', 'x'],
      ['one line break', '\n'],
    ];

    it.each(small)('%s, in chunks of 1 to 12 characters', (_name, text) => {
      const whole = textStats(text, 'input');
      for (let maxChars = 1; maxChars <= 12; maxChars += 1) {
        const { output } = stitchTextStats(chunkShards(text, maxChars), 'input');
        expect({ maxChars, lines: output.lines, finalLineBreak: output.finalLineBreak }).toEqual({ maxChars, lines: whole.lines, finalLineBreak: whole.finalLineBreak });
      }
    });

    it('textChunks cuts between CR and LF only in chunks of 1 character', () => {
      const text = 'ab\r\ncd\r\n\r\nef\r\n';
      const cutsInCrLf = (maxChars: number): number => textChunks(text, maxChars).filter((c) => c.text.endsWith('\r') && text[c.end] === '\n').length;
      expect(cutsInCrLf(1)).toBeGreaterThan(0);
      for (let maxChars = 2; maxChars <= 12; maxChars += 1) expect(cutsInCrLf(maxChars)).toBe(0);
    });

    it('the empty text: no chunks, no lines', () => {
      expect(chunkShards('', 100)).toEqual([]);
      expect(stitchTextStats([], 'input').output).toEqual(textStats('', 'input'));
    });

    it('outputs without finalLineBreak (older workers): exact while the excerpts hold the chunks, else a truncated chunk is taken to end mid-line', () => {
      const text = numbered(400, '\n');
      const older = (shards: ShardOutcome<TextStatsOutput>[]): ShardOutcome<TextStatsOutput>[] =>
        shards.map((s) => {
          if (!s.output) return s;
          const { finalLineBreak: _dropped, ...output } = s.output;
          return { ...s, output };
        });
      const short = stitchTextStats(older(chunkShards(text, 1000)), 'input').output;
      expect(short.lines).toBe(400);
      expect(short.finalLineBreak).toBe('lf');
      const chunks = chunkShards(text, 4000);
      const long = stitchTextStats(older(chunks), 'input').output;
      expect(long.lines).toBe(400 - (chunks.length - 1));
      expect(long.finalLineBreak).toBeUndefined();
    });

    it('a failed chunk leaves its lines out, and the joins of the others still count', () => {
      const text = numbered(400, '\n');
      const shards = chunkShards(text, 4000, [2]);
      const lost = textStats(text.slice(shards[2]?.window.startSec, shards[2]?.window.endSec), 'input').lines;
      expect(stitchTextStats(shards, 'input').output.lines).toBe(400 - lost);
    });
  });

  it('re-weights scripts by each chunk’s characters', () => {
    const latin = 'Alpha beta gamma delta. ';
    const greek = 'Άλφα βήτα γάμμα δέλτα. ';
    const text = latin.repeat(3) + greek;
    const { output } = stitchTextStats(chunkShards(text, latin.length), 'input');
    const whole = textStats(text, 'input');
    expect(output.scripts.map((s) => s.script)).toEqual(['Latin', 'Greek']);
    output.scripts.forEach((s, i) => expect(s.fraction).toBeCloseTo(whole.scripts[i]?.fraction ?? -1, 1));
    expect(output.scripts.reduce((sum, s) => sum + s.fraction, 0)).toBeCloseTo(1, 2);
  });

  it('sums top terms across chunks, sorted by count then term, cut to 10', () => {
    const shard = (index: number, topTerms: { term: string; count: number }[]): ShardOutcome<TextStatsOutput> => ({
      window: { index, startSec: 0, endSec: 0 },
      output: { ...textStats('x', 'input'), topTerms },
    });
    const { output } = stitchTextStats(
      [
        shard(0, [{ term: 'grid', count: 3 }, { term: 'shard', count: 1 }, ...'abcdefgh'.split('').map((c) => ({ term: `z${c}`, count: 1 }))]),
        shard(1, [{ term: 'shard', count: 3 }, { term: 'alpha', count: 2 }]),
      ],
      'input',
    );
    expect(output.topTerms).toEqual([
      { term: 'shard', count: 4 },
      { term: 'grid', count: 3 },
      { term: 'alpha', count: 2 },
      ...'abcdefg'.split('').map((c) => ({ term: `z${c}`, count: 1 })),
    ]);
  });

  it('failed chunks are gaps, by index, and lower the coverage', () => {
    const shards = chunkShards(paragraph, 40, [1, 4]);
    const total = shards.length;
    const { output, coverage, gaps } = stitchTextStats(shards, 'input');
    expect(gaps).toEqual([
      { index: 1, reason: 'chunk 1 failed' },
      { index: 4, reason: 'chunk 4 failed' },
    ]);
    expect(coverage).toBeCloseTo((total - 2) / total, 12);
    const kept = shards.flatMap((s) => (s.output === undefined ? [] : [s.output]));
    expect(output.characters).toBe(kept.reduce((n, o) => n + o.characters, 0));
    expect(output.words).toBe(kept.reduce((n, o) => n + o.words, 0));
    expect(textStatsOutputSchema.safeParse(output).success).toBe(true);
  });

  describe('excerpt', () => {
    /** What the excerpt was before it was built incrementally: every excerpt joined, then spread. */
    const joinedThenSpread = (excerpts: readonly string[]): string => [...excerpts.join('')].slice(0, 2000).join('');
    const base = textStats('x', 'input');
    const shardsWith = (excerpts: readonly string[], characters = (excerpt: string): number => [...excerpt].length): ShardOutcome<TextStatsOutput>[] =>
      excerpts.map((excerpt, index) => ({ window: { index, startSec: index, endSec: index + 1 }, output: { ...base, excerpt, characters: characters(excerpt) } }));

    it.each<[string, string[]]>([
      ['none', []],
      ['empty ones', ['', '', '']],
      ['short ones', ['abc', 'déf', '', 'ghi']],
      ['exactly 2,000', ['a'.repeat(1000), 'b'.repeat(1000)]],
      ['one over 2,000', ['a'.repeat(1000), 'b'.repeat(1001)]],
      ['a long first one', ['x'.repeat(5000), 'never read']],
      ['emoji (two UTF-16 units each)', ['😀'.repeat(1500), '🎉'.repeat(1500)]],
      ['a pair split across two excerpts at the 2,000th code point', ['a'.repeat(1999) + '\uD83D', '\uDE00tail']],
      ['a pair split across two excerpts after 4,000 units', ['😀'.repeat(1999) + '\uD83D', '\uDE00tail']],
      ['a pair split after many short excerpts', [...Array.from({ length: 3999 }, () => 'a'), '\uD83D', '\uDE00', 'b']],
      ['lone surrogates', ['\uDE00abc\uD83D', 'x', '\uD83D']],
    ])('%s: the first 2,000 code points of the excerpts joined', (_name, excerpts) => {
      expect(stitchTextStats(shardsWith(excerpts), 'input').output.excerpt).toBe(joinedThenSpread(excerpts));
    });

    it('random excerpts (astral characters, lone surrogates, empty ones): as joining them all gave', () => {
      const next = random(11);
      const alphabet = ['a', 'é', '\n', '😀', '\uD83D', '\uDE00', '中', ' '];
      for (let round = 0; round < 300; round += 1) {
        const excerpts = Array.from({ length: Math.floor(next() * 12) }, () =>
          Array.from({ length: Math.floor(next() * (next() < 0.3 ? 2500 : 400)) }, () => alphabet[Math.floor(next() * alphabet.length)] ?? 'a').join(''),
        );
        expect({ round, excerpt: stitchTextStats(shardsWith(excerpts), 'input').output.excerpt }).toEqual({ round, excerpt: joinedThenSpread(excerpts) });
      }
    });

    it('20,000 chunks with full 2,000-character excerpts: the start of the text, from the first chunks only', () => {
      // The excerpts of the largest text a job may have: joined and spread whole, they made an
      // array of 40 million strings (over a second and some 850 MB).
      const body = [...'Lorem ipsum 😀 dolor sit amet. '.repeat(100)].slice(0, 1993).join('');
      const excerpts = Array.from({ length: 20_000 }, (_, i) => `${String(i).padStart(5, '0')}: ${body}`);
      const { output, coverage } = stitchTextStats(
        shardsWith(excerpts, () => 2000),
        'input',
      );
      expect([...output.excerpt].length).toBe(2000);
      expect(output.excerpt).toBe(excerpts[0]);
      expect(output.characters).toBe(20_000 * 2000);
      expect(output.truncated).toBe(true);
      expect(coverage).toBe(1);
    });
  });

  it('no chunks: empty stats, full coverage; all failed: zero coverage', () => {
    const empty = stitchTextStats([], 'prompt');
    expect(empty.output).toEqual(textStats('', 'prompt'));
    expect(empty.coverage).toBe(1);
    const failed = stitchTextStats([{ window: { index: 0, startSec: 0, endSec: 0 } }], 'prompt');
    expect(failed.output).toEqual(textStats('', 'prompt'));
    expect(failed.coverage).toBe(0);
    expect(failed.gaps).toEqual([{ index: 0, reason: 'no output' }]);
  });
});
