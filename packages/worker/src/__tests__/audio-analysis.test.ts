import { describe, expect, it } from 'vitest';
import type { AudioSegment } from '@mmgrid/core';
import { AudioAnalyzer, DEFAULT_AUDIO_ANALYSIS, SILENCE_DBFS, type AudioAnalysisOptions, type AudioStats } from '../audio/audio-analysis.js';

const RATE = 16_000;
const FRAME_SEC = DEFAULT_AUDIO_ANALYSIS.frameMs / 1000;
/** Segment boundaries are rounded to the millisecond. */
const EPS = 1e-9;

/** Deterministic uniform noise (mulberry32), so every run sees the same samples. */
function noiseSource(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

type Part =
  | { readonly kind: 'tone'; readonly sec: number; readonly amplitude?: number; readonly hz?: number }
  | { readonly kind: 'silence'; readonly sec: number }
  | { readonly kind: 'noise'; readonly sec: number; readonly amplitude?: number };

interface Built {
  readonly samples: Float32Array;
  /** Where each tone starts and ends, in seconds. */
  readonly tones: { readonly startSec: number; readonly endSec: number }[];
}

/** A mono signal made of tone bursts, digital silence and low noise, in the given order. */
function build(parts: readonly Part[], rate = RATE): Built {
  const lengths = parts.map((p) => Math.round(p.sec * rate));
  const samples = new Float32Array(lengths.reduce((a, b) => a + b, 0));
  const tones: { startSec: number; endSec: number }[] = [];
  const noise = noiseSource(42);
  let at = 0;
  parts.forEach((part, i) => {
    const length = lengths[i] ?? 0;
    if (part.kind === 'tone') {
      const amplitude = part.amplitude ?? 0.3;
      const hz = part.hz ?? 500;
      for (let n = 0; n < length; n++) samples[at + n] = amplitude * Math.sin((2 * Math.PI * hz * n) / rate);
      tones.push({ startSec: at / rate, endSec: (at + length) / rate });
    } else if (part.kind === 'noise') {
      const amplitude = part.amplitude ?? 0.001;
      for (let n = 0; n < length; n++) samples[at + n] = amplitude * noise();
    }
    at += length;
  });
  return { samples, tones };
}

function analyse(samples: Float32Array | Float64Array, rate = RATE, options?: AudioAnalysisOptions): AudioStats {
  const analyzer = new AudioAnalyzer(rate, options);
  analyzer.push(samples);
  return analyzer.finish();
}

function speechOf(stats: AudioStats): AudioSegment[] {
  return stats.segments.filter((s) => s.kind === 'speech');
}

/** The invariants every result keeps: alternating kinds, in order, from 0 to the end, consistent totals. */
function expectWellFormed(stats: AudioStats): void {
  const { segments, durationSec } = stats;
  // Boundaries are whole milliseconds, so a recording under half of one has no segment.
  if (Math.round(durationSec * 1000) === 0) {
    expect(segments).toEqual([]);
    return;
  }
  expect(segments.length).toBeGreaterThan(0);
  expect(segments[0]?.startSec).toBe(0);
  segments.forEach((segment, i) => {
    expect(segment.endSec).toBeGreaterThan(segment.startSec);
    const previous = segments[i - 1];
    if (previous) {
      expect(segment.kind).not.toBe(previous.kind);
      expect(segment.startSec).toBe(previous.endSec);
    }
  });
  expect(Math.abs((segments[segments.length - 1]?.endSec ?? 0) - durationSec)).toBeLessThanOrEqual(0.0005 + EPS);
  const speech = speechOf(stats).reduce((sum, s) => sum + (s.endSec - s.startSec), 0);
  expect(stats.speechSec).toBeCloseTo(speech, 3);
  expect(stats.silenceSec).toBeCloseTo(durationSec - speech, 3);
}

describe('AudioAnalyzer levels', () => {
  const cases: { name: string; parts: Part[]; rms: number; peak: number }[] = [
    // A sine's RMS is its amplitude / sqrt(2): 20·log10(1/√2) = −3.01 dBFS.
    { name: 'a full-scale sine', parts: [{ kind: 'tone', sec: 1, amplitude: 1 }], rms: -3.01, peak: 0 },
    // 20·log10(0.5) = −6.02; the RMS is 3.01 dB lower.
    { name: 'a half-scale sine', parts: [{ kind: 'tone', sec: 1, amplitude: 0.5 }], rms: -9.03, peak: -6.02 },
    // 20·log10(0.3) = −10.46; −10.46 − 3.01 = −13.47.
    { name: 'a 0.3 amplitude sine', parts: [{ kind: 'tone', sec: 1, amplitude: 0.3 }], rms: -13.47, peak: -10.46 },
    // Half the time at mean square 0.5, half at 0: RMS = 0.5 → −6.02 dBFS.
    {
      name: 'a full-scale sine then as much silence',
      parts: [
        { kind: 'tone', sec: 1, amplitude: 1 },
        { kind: 'silence', sec: 1 },
      ],
      rms: -6.02,
      peak: 0,
    },
    // Mean square 0.5 / 4 = 0.125 → RMS 0.354 → −9.03 dBFS.
    {
      name: 'a full-scale sine in a quarter of the time',
      parts: [
        { kind: 'silence', sec: 0.5 },
        { kind: 'tone', sec: 0.5, amplitude: 1 },
        { kind: 'silence', sec: 1 },
      ],
      rms: -9.03,
      peak: 0,
    },
  ];

  it.each(cases)('measures $name', ({ parts, rms, peak }) => {
    const stats = analyse(build(parts).samples);
    expect(stats.rmsDbfs).toBeCloseTo(rms, 2);
    expect(stats.peakDbfs).toBeCloseTo(peak, 2);
  });

  it('measures a constant level exactly (0.1 → −20 dBFS)', () => {
    const stats = analyse(new Float64Array(RATE).fill(0.1));
    expect(stats.rmsDbfs).toBe(-20);
    expect(stats.peakDbfs).toBe(-20);
  });

  it('takes the peak from negative samples too', () => {
    const samples = new Float64Array(RATE);
    samples[100] = -0.5;
    samples[200] = 0.25;
    expect(analyse(samples).peakDbfs).toBe(-6.02);
  });

  it('reports low noise alone near its level, and as silence', () => {
    // Uniform noise in [−a, a] has RMS a/√3: 0.001/√3 → −64.77 dBFS; its peak stays under −60 dBFS.
    const stats = analyse(build([{ kind: 'noise', sec: 2 }]).samples);
    expect(stats.rmsDbfs).toBeGreaterThan(-65.5);
    expect(stats.rmsDbfs).toBeLessThan(-64);
    expect(stats.peakDbfs).toBeLessThanOrEqual(-60);
    expect(stats.peakDbfs).toBeGreaterThan(-61);
    expect(stats.segments).toEqual([{ kind: 'silence', startSec: 0, endSec: 2 }]);
    expect(stats.speechSec).toBe(0);
    expect(stats.silenceSec).toBe(2);
  });
});

describe('AudioAnalyzer duration', () => {
  const cases: { samples: number; rate: number; durationSec: number }[] = [
    { samples: 16_000, rate: 16_000, durationSec: 1 },
    { samples: 24_000, rate: 16_000, durationSec: 1.5 },
    { samples: 8_000, rate: 8_000, durationSec: 1 },
    { samples: 44_100 * 3, rate: 44_100, durationSec: 3 },
    { samples: 16_100, rate: 16_000, durationSec: 1.00625 },
    { samples: 1, rate: 16_000, durationSec: 1 / 16_000 },
    { samples: 9, rate: 16_000, durationSec: 9 / 16_000 },
  ];
  it.each(cases)('$samples samples at $rate Hz last $durationSec s', ({ samples, rate, durationSec }) => {
    const stats = analyse(new Float32Array(samples), rate);
    expect(stats.durationSec).toBeCloseTo(durationSec, 9);
    expectWellFormed(stats);
  });

  it('covers a last, partial frame of speech up to the end', () => {
    const { samples } = build([
      { kind: 'silence', sec: 0.5 },
      { kind: 'tone', sec: 0.50625 },
    ]);
    const stats = analyse(samples);
    expect(stats.durationSec).toBeCloseTo(1.00625, 9);
    expectWellFormed(stats);
    expect(stats.segments.map((s) => s.kind)).toEqual(['silence', 'speech']);
  });
});

describe('AudioAnalyzer speech and silence', () => {
  interface Case {
    name: string;
    parts: Part[];
    rate?: number;
    /** The speech expected, in seconds; segment boundaries may differ by one frame. */
    speech: [number, number][];
  }
  const cases: Case[] = [
    {
      name: 'frame-aligned bursts in digital silence',
      parts: [
        { kind: 'silence', sec: 0.5 },
        { kind: 'tone', sec: 1 },
        { kind: 'silence', sec: 0.5 },
        { kind: 'tone', sec: 0.4 },
        { kind: 'silence', sec: 0.3 },
      ],
      speech: [
        [0.5, 1.5],
        [2, 2.4],
      ],
    },
    {
      name: 'unaligned bursts in low noise',
      parts: [
        { kind: 'noise', sec: 0.513 },
        { kind: 'tone', sec: 0.777 },
        { kind: 'noise', sec: 0.409 },
        { kind: 'tone', sec: 0.351 },
        { kind: 'noise', sec: 0.6 },
      ],
      speech: [
        [0.513, 1.29],
        [1.699, 2.05],
      ],
    },
    {
      name: 'speech at both ends',
      parts: [
        { kind: 'tone', sec: 0.5 },
        { kind: 'silence', sec: 0.5 },
        { kind: 'tone', sec: 0.5 },
      ],
      speech: [
        [0, 0.5],
        [1, 1.5],
      ],
    },
    {
      name: 'a 100 ms pause, bridged',
      parts: [
        { kind: 'silence', sec: 0.4 },
        { kind: 'tone', sec: 0.5 },
        { kind: 'silence', sec: 0.1 },
        { kind: 'tone', sec: 0.5 },
        { kind: 'silence', sec: 0.4 },
      ],
      speech: [[0.4, 1.5]],
    },
    {
      name: 'a 237 ms pause in noise, bridged',
      parts: [
        { kind: 'noise', sec: 0.41 },
        { kind: 'tone', sec: 0.5 },
        { kind: 'noise', sec: 0.237 },
        { kind: 'tone', sec: 0.5 },
        { kind: 'noise', sec: 0.4 },
      ],
      speech: [[0.41, 1.647]],
    },
    {
      name: 'a 300 ms pause, kept',
      parts: [
        { kind: 'silence', sec: 0.4 },
        { kind: 'tone', sec: 0.5 },
        { kind: 'silence', sec: 0.3 },
        { kind: 'tone', sec: 0.5 },
        { kind: 'silence', sec: 0.4 },
      ],
      speech: [
        [0.4, 0.9],
        [1.2, 1.7],
      ],
    },
    {
      name: 'a 40 ms burst, dropped',
      parts: [
        { kind: 'silence', sec: 0.5 },
        { kind: 'tone', sec: 0.04 },
        { kind: 'silence', sec: 0.5 },
        { kind: 'tone', sec: 0.5 },
        { kind: 'silence', sec: 0.3 },
      ],
      speech: [[1.04, 1.54]],
    },
    {
      name: 'a 50 ms unaligned burst in noise, dropped',
      parts: [
        { kind: 'noise', sec: 0.505 },
        { kind: 'tone', sec: 0.05 },
        { kind: 'noise', sec: 0.6 },
      ],
      speech: [],
    },
    {
      name: 'a 100 ms burst, kept',
      parts: [
        { kind: 'silence', sec: 0.5 },
        { kind: 'tone', sec: 0.1 },
        { kind: 'silence', sec: 0.5 },
      ],
      speech: [[0.5, 0.6]],
    },
    {
      name: 'bursts at 44.1 kHz',
      rate: 44_100,
      parts: [
        { kind: 'noise', sec: 0.3 },
        { kind: 'tone', sec: 0.6, hz: 441 },
        { kind: 'noise', sec: 0.5 },
        { kind: 'tone', sec: 0.2, hz: 441 },
        { kind: 'noise', sec: 0.3 },
      ],
      speech: [
        [0.3, 0.9],
        [1.4, 1.6],
      ],
    },
    {
      name: 'bursts at 8 kHz',
      rate: 8_000,
      parts: [
        { kind: 'silence', sec: 0.25 },
        { kind: 'tone', sec: 0.333, hz: 400 },
        { kind: 'silence', sec: 0.4 },
        { kind: 'tone', sec: 0.25, hz: 400 },
      ],
      speech: [
        [0.25, 0.583],
        [0.983, 1.233],
      ],
    },
  ];

  it.each(cases)('segments $name', ({ parts, rate, speech }) => {
    const stats = analyse(build(parts, rate).samples, rate);
    expectWellFormed(stats);
    const found = speechOf(stats);
    expect(found.map((s) => [s.startSec, s.endSec])).toHaveLength(speech.length);
    speech.forEach(([start, end], i) => {
      const segment = found[i];
      expect(Math.abs((segment?.startSec ?? NaN) - start)).toBeLessThanOrEqual(FRAME_SEC + EPS);
      expect(Math.abs((segment?.endSec ?? NaN) - end)).toBeLessThanOrEqual(FRAME_SEC + EPS);
    });
  });

  it('places frame-aligned bursts exactly', () => {
    const { samples, tones } = build([
      { kind: 'silence', sec: 0.5 },
      { kind: 'tone', sec: 1 },
      { kind: 'silence', sec: 0.5 },
      { kind: 'tone', sec: 0.4 },
      { kind: 'silence', sec: 0.3 },
    ]);
    const stats = analyse(samples);
    expect(tones).toEqual([
      { startSec: 0.5, endSec: 1.5 },
      { startSec: 2, endSec: 2.4 },
    ]);
    expect(stats.segments).toEqual([
      { kind: 'silence', startSec: 0, endSec: 0.5 },
      { kind: 'speech', startSec: 0.5, endSec: 1.5 },
      { kind: 'silence', startSec: 1.5, endSec: 2 },
      { kind: 'speech', startSec: 2, endSec: 2.4 },
      { kind: 'silence', startSec: 2.4, endSec: 2.7 },
    ]);
    expect(stats.durationSec).toBeCloseTo(2.7, 9);
    expect(stats.speechSec).toBe(1.4);
    expect(stats.silenceSec).toBe(1.3);
  });

  it('puts an unaligned burst in the frames it touches', () => {
    const { samples, tones } = build([
      { kind: 'noise', sec: 0.513 },
      { kind: 'tone', sec: 0.777 },
      { kind: 'noise', sec: 0.71 },
    ]);
    const [tone] = tones;
    const [speech] = speechOf(analyse(samples));
    // Starts at or before the burst, ends at or after it, never by a whole frame.
    expect(speech?.startSec).toBeLessThanOrEqual((tone?.startSec ?? 0) + EPS);
    expect(speech?.startSec).toBeGreaterThan((tone?.startSec ?? 0) - FRAME_SEC);
    expect(speech?.endSec).toBeGreaterThanOrEqual((tone?.endSec ?? 0) - EPS);
    expect(speech?.endSec).toBeLessThan((tone?.endSec ?? 0) + FRAME_SEC);
  });

  it('keeps a short pause as silence with a shorter minSilenceMs', () => {
    const { samples } = build([
      { kind: 'silence', sec: 0.4 },
      { kind: 'tone', sec: 0.5 },
      { kind: 'silence', sec: 0.1 },
      { kind: 'tone', sec: 0.5 },
      { kind: 'silence', sec: 0.4 },
    ]);
    const stats = analyse(samples, RATE, { ...DEFAULT_AUDIO_ANALYSIS, minSilenceMs: 60 });
    expectWellFormed(stats);
    expect(speechOf(stats)).toEqual([
      { kind: 'speech', startSec: 0.4, endSec: 0.9 },
      { kind: 'speech', startSec: 1, endSec: 1.5 },
    ]);
  });

  it('does not bridge leading or trailing silence, however short', () => {
    const stats = analyse(
      build([
        { kind: 'silence', sec: 0.1 },
        { kind: 'tone', sec: 1 },
        { kind: 'silence', sec: 0.1 },
      ]).samples,
    );
    expect(stats.segments).toEqual([
      { kind: 'silence', startSec: 0, endSec: 0.1 },
      { kind: 'speech', startSec: 0.1, endSec: 1.1 },
      { kind: 'silence', startSec: 1.1, endSec: 1.2 },
    ]);
  });

  it('finds only speech in a recording without pauses', () => {
    const stats = analyse(build([{ kind: 'tone', sec: 1.5 }]).samples);
    expect(stats.segments).toEqual([{ kind: 'speech', startSec: 0, endSec: 1.5 }]);
    expect(stats.speechSec).toBe(1.5);
    expect(stats.silenceSec).toBe(0);
  });
});

describe('AudioAnalyzer silence and empty input', () => {
  it.each([0.02, 0.5, 1, 2.345])('gives %s s of digital silence one silence segment at SILENCE_DBFS', (sec) => {
    const samples = new Float32Array(Math.round(sec * RATE));
    const stats = analyse(samples);
    expect(stats).toEqual({
      durationSec: samples.length / RATE,
      rmsDbfs: SILENCE_DBFS,
      peakDbfs: SILENCE_DBFS,
      speechSec: 0,
      silenceSec: sec,
      segments: [{ kind: 'silence', startSec: 0, endSec: sec }],
    });
  });

  const empty: AudioStats = { durationSec: 0, rmsDbfs: SILENCE_DBFS, peakDbfs: SILENCE_DBFS, speechSec: 0, silenceSec: 0, segments: [] };

  it('reports nothing for no samples', () => {
    expect(new AudioAnalyzer(RATE).finish()).toEqual(empty);
  });

  it('reports nothing for empty chunks', () => {
    const analyzer = new AudioAnalyzer(RATE);
    analyzer.push(new Float32Array(0));
    analyzer.push(new Float64Array(0));
    expect(analyzer.finish()).toEqual(empty);
  });

  it('stays finite below the silence floor', () => {
    const stats = analyse(new Float64Array(RATE).fill(1e-9));
    expect(stats.rmsDbfs).toBe(SILENCE_DBFS);
    expect(stats.peakDbfs).toBe(SILENCE_DBFS);
  });
});

describe('AudioAnalyzer chunking', () => {
  const { samples } = build([
    { kind: 'noise', sec: 0.513 },
    { kind: 'tone', sec: 0.777 },
    { kind: 'noise', sec: 0.109 },
    { kind: 'tone', sec: 0.351 },
    { kind: 'noise', sec: 0.6 },
    { kind: 'tone', sec: 0.03 },
    { kind: 'noise', sec: 0.4017 },
  ]);
  const whole = analyse(samples);

  it('has speech in the reference result', () => {
    expect(speechOf(whole).length).toBeGreaterThan(0);
    expectWellFormed(whole);
  });

  it.each([1, 7, 319, 320, 321, 1_000, 4_096, samples.length])('gives the same result in chunks of %i samples', (size) => {
    const analyzer = new AudioAnalyzer(RATE);
    for (let at = 0; at < samples.length; at += size) analyzer.push(samples.subarray(at, at + size));
    expect(analyzer.finish()).toEqual(whole);
  });

  it('gives the same result in uneven chunks, empty ones included', () => {
    const sizes = [0, 1, 2, 3, 5, 8, 13, 0, 21, 34, 55, 89, 144, 233, 377, 610, 987];
    const analyzer = new AudioAnalyzer(RATE);
    let at = 0;
    for (let i = 0; at < samples.length; i++) {
      const size = sizes[i % sizes.length] ?? 1;
      analyzer.push(samples.subarray(at, at + size));
      at += size;
    }
    expect(analyzer.finish()).toEqual(whole);
  });

  it('gives the same result for the same values as Float64Array', () => {
    expect(analyse(Float64Array.from(samples))).toEqual(whole);
  });
});
