import type { AudioSegment } from '@mmgrid/core';

/** Level of digital silence, used instead of -Infinity so results stay finite JSON. */
export const SILENCE_DBFS = -120;

export interface AudioAnalysisOptions {
  /** Analysis frame length. */
  readonly frameMs: number;
  /** Pauses shorter than this inside speech are kept as speech. */
  readonly minSilenceMs: number;
  /** Bursts shorter than this are not counted as speech. */
  readonly minSpeechMs: number;
}

export const DEFAULT_AUDIO_ANALYSIS: AudioAnalysisOptions = { frameMs: 20, minSilenceMs: 250, minSpeechMs: 80 };

export interface AudioStats {
  readonly durationSec: number;
  readonly rmsDbfs: number;
  readonly peakDbfs: number;
  readonly speechSec: number;
  readonly silenceSec: number;
  readonly segments: AudioSegment[];
}

function toDb(amplitude: number): number {
  return amplitude > 0 ? Math.max(SILENCE_DBFS, 20 * Math.log10(amplitude)) : SILENCE_DBFS;
}

/**
 * Streaming loudness and speech/silence analysis of a mono signal in [-1, 1]. Feed samples
 * with push() in any chunk sizes, then call finish(). Memory grows with the number of frames
 * (one number per frame), not with the number of samples.
 */
export class AudioAnalyzer {
  private readonly frameSize: number;
  private readonly frameDb: number[] = [];
  private frameSumSq = 0;
  private frameFill = 0;
  private totalSumSq = 0;
  private samples = 0;
  private peak = 0;

  constructor(
    readonly sampleRate: number,
    private readonly options: AudioAnalysisOptions = DEFAULT_AUDIO_ANALYSIS,
  ) {
    this.frameSize = Math.max(1, Math.round((sampleRate * options.frameMs) / 1000));
  }

  push(samples: Float32Array | Float64Array): void {
    for (let i = 0; i < samples.length; i++) {
      const s = samples[i] ?? 0;
      const sq = s * s;
      this.frameSumSq += sq;
      this.totalSumSq += sq;
      const abs = Math.abs(s);
      if (abs > this.peak) this.peak = abs;
      this.frameFill += 1;
      if (this.frameFill === this.frameSize) this.endFrame();
    }
    this.samples += samples.length;
  }

  private endFrame(): void {
    if (this.frameFill === 0) return;
    this.frameDb.push(toDb(Math.sqrt(this.frameSumSq / this.frameFill)));
    this.frameSumSq = 0;
    this.frameFill = 0;
  }

  finish(): AudioStats {
    this.endFrame();
    const durationSec = this.samples / this.sampleRate;
    const segments = this.segment(durationSec);
    const speechSec = segments.filter((s) => s.kind === 'speech').reduce((sum, s) => sum + (s.endSec - s.startSec), 0);
    return {
      durationSec,
      rmsDbfs: round(this.samples > 0 ? toDb(Math.sqrt(this.totalSumSq / this.samples)) : SILENCE_DBFS, 2),
      peakDbfs: round(toDb(this.peak), 2),
      speechSec: round(speechSec, 3),
      silenceSec: round(Math.max(0, durationSec - speechSec), 3),
      segments,
    };
  }

  /**
   * Frames louder than an adaptive threshold are speech: 12 dB over the noise floor (the 10th
   * percentile of frame levels), never below -50 dBFS, never above 6 dB under the loud
   * frames (90th percentile). Short pauses are bridged and short bursts dropped.
   */
  private segment(durationSec: number): AudioSegment[] {
    const frames = this.frameDb;
    if (frames.length === 0) return durationSec > 0 ? [{ kind: 'silence', startSec: 0, endSec: round(durationSec, 3) }] : [];
    const sorted = [...frames].sort((a, b) => a - b);
    const pct = (p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? SILENCE_DBFS;
    const threshold = Math.max(-50, Math.min(pct(0.1) + 12, pct(0.9) - 6));
    const frameSec = this.frameSize / this.sampleRate;
    const voiced = frames.map((db) => db > threshold);

    // Runs of equal voicing, then bridge short pauses and drop short bursts.
    let runs = toRuns(voiced);
    const minSilence = this.options.minSilenceMs / 1000 / frameSec;
    const minSpeech = this.options.minSpeechMs / 1000 / frameSec;
    runs = mergeRuns(runs.map((r, i) => (!r.voiced && i > 0 && i < runs.length - 1 && r.length < minSilence ? { ...r, voiced: true } : r)));
    runs = mergeRuns(runs.map((r) => (r.voiced && r.length < minSpeech ? { ...r, voiced: false } : r)));

    const segments: AudioSegment[] = [];
    let frame = 0;
    for (const run of runs) {
      const startSec = round(frame * frameSec, 3);
      frame += run.length;
      const endSec = round(Math.min(durationSec, frame * frameSec), 3);
      if (endSec > startSec) segments.push({ kind: run.voiced ? 'speech' : 'silence', startSec, endSec });
    }
    return segments;
  }
}

interface Run {
  readonly voiced: boolean;
  readonly length: number;
}

function toRuns(flags: readonly boolean[]): Run[] {
  const runs: Run[] = [];
  for (const f of flags) {
    const last = runs[runs.length - 1];
    if (last && last.voiced === f) runs[runs.length - 1] = { voiced: f, length: last.length + 1 };
    else runs.push({ voiced: f, length: 1 });
  }
  return runs;
}

function mergeRuns(runs: readonly Run[]): Run[] {
  const out: Run[] = [];
  for (const r of runs) {
    const last = out[out.length - 1];
    if (last && last.voiced === r.voiced) out[out.length - 1] = { voiced: r.voiced, length: last.length + r.length };
    else out.push(r);
  }
  return out;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}
