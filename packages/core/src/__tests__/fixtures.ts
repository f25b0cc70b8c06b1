/**
 * Small task outputs that satisfy the schemas in task-outputs.ts, shared by the assembler
 * and fusion-report tests, and a helper for expected spec errors.
 */
import { expect } from 'vitest';
import type { BlobRef } from '../blob-ref.js';
import { InvalidJobSpecError } from '../errors.js';
import type {
  AudioAnalyzeOutput,
  AudioSplitOutput,
  AudioStitchOutput,
  ImageInspectOutput,
  ImageOcrOutput,
  TextSplitOutput,
  TextStatsOutput,
  TextStitchOutput,
  TranscriptStitchOutput,
  VideoSplitOutput,
  VideoStitchOutput,
} from '../task-outputs.js';

export function thumbnailRef(seed: string, name = 'thumbnail.webp'): BlobRef {
  return { sha256: seed.repeat(64).slice(0, 64), size: 2048, mediaType: 'image/webp', name };
}

export function ocrOutput(text: string, confidence = 91.4): ImageOcrOutput {
  const words = text
    .split(/\s+/)
    .filter((w) => w !== '')
    .map((w, i) => ({ text: w, confidence, bbox: { x0: i * 40, y0: 10, x1: i * 40 + 36, y1: 24 } }));
  return {
    text,
    confidence,
    language: 'eng',
    width: 640,
    height: 480,
    lines: words.length === 0 ? [] : [{ text, confidence, bbox: { x0: 0, y0: 10, x1: words.length * 40, y1: 24 } }],
    words,
  };
}

export function inspectOutput(thumbnail: BlobRef = thumbnailRef('a')): ImageInspectOutput {
  return {
    width: 640,
    height: 480,
    format: 'png',
    channels: 3,
    hasAlpha: false,
    bytes: 53_211,
    colours: [
      { hex: '#ffffff', name: 'white', fraction: 0.61 },
      { hex: '#1a1a1a', name: 'black', fraction: 0.3 },
      { hex: '#d03030', name: 'red', fraction: 0.05 },
      { hex: '#3050d0', name: 'blue', fraction: 0.02 },
    ],
    thumbnail,
  };
}

export function audioOutput(): AudioAnalyzeOutput {
  return {
    format: 'wav/pcm_s16le',
    decoder: 'native',
    sampleRate: 16_000,
    channels: 1,
    durationSec: 3,
    rmsDbfs: -20.04,
    peakDbfs: -3.01,
    speechSec: 2,
    silenceSec: 1,
    segments: [
      { kind: 'silence', startSec: 0, endSec: 0.5 },
      { kind: 'speech', startSec: 0.5, endSec: 2.5 },
      { kind: 'silence', startSec: 2.5, endSec: 3 },
    ],
  };
}

export function textStatsOutput(source: 'prompt' | 'input', text: string): TextStatsOutput {
  const words = text.split(/\s+/).filter((w) => w !== '');
  const counts = new Map<string, number>();
  for (const w of words) {
    const term = w.toLowerCase().replace(/[^\p{L}\p{N}]/gu, '');
    if (term.length >= 3) counts.set(term, (counts.get(term) ?? 0) + 1);
  }
  return {
    source,
    characters: text.length,
    graphemes: text.length,
    words: words.length,
    sentences: Math.max(1, text.split(/[.!?]+\s*/).filter((s) => s.trim() !== '').length),
    lines: text.split('\n').length,
    scripts: [{ script: 'Latin', fraction: 1 }],
    topTerms: [...counts].map(([term, count]) => ({ term, count })),
    excerpt: text,
    truncated: false,
  };
}

/** A blob reference for a shard (window, frame, subtitles). */
export function shardRef(seed: string, name: string, mediaType = 'audio/wav'): BlobRef {
  return { sha256: seed.repeat(64).slice(0, 64), size: 4096, mediaType, name };
}

/** `audio.split` of a 75 s recording into three 30 s windows overlapping by 2 s. */
export function audioSplitOutput(): AudioSplitOutput {
  return {
    sampleRate: 16_000,
    sourceSampleRate: 44_100,
    channels: 1,
    format: 'wav/pcm_s16le',
    windowSec: 30,
    overlapSec: 2,
    durationSec: 75,
    windows: [
      { index: 0, startSec: 0, endSec: 30, blob: shardRef('1', 'w0.wav') },
      { index: 1, startSec: 28, endSec: 58, blob: shardRef('2', 'w1.wav') },
      { index: 2, startSec: 56, endSec: 75, blob: shardRef('3', 'w2.wav') },
    ],
  };
}

/** `audio.stitch` of the recording above: one analysis, whole. */
export function audioStitchOutput(): AudioStitchOutput {
  return {
    ...audioOutput(),
    sampleRate: 44_100,
    durationSec: 75,
    speechSec: 60,
    silenceSec: 15,
    segments: [
      { kind: 'speech', startSec: 0, endSec: 60 },
      { kind: 'silence', startSec: 60, endSec: 75 },
    ],
    coverage: 1,
    gaps: [],
    shards: 3,
  };
}

/** `audio.stitch` of a transcription, with subtitles. */
export function transcriptStitchOutput(text: string): TranscriptStitchOutput {
  const words = text
    .split(/\s+/)
    .filter((w) => w !== '')
    .map((w, i) => ({ text: w, startSec: i, endSec: i + 0.8 }));
  return {
    text,
    language: 'en',
    words,
    segments: [{ text, startSec: 0, endSec: words.length }],
    coverage: 1,
    gaps: [],
    shards: 2,
    subtitles: { srt: shardRef('5', 'memo.srt', 'application/x-subrip'), vtt: shardRef('6', 'memo.vtt', 'text/vtt') },
  };
}

export function textSplitOutput(text: string): TextSplitOutput {
  const half = Math.floor(text.length / 2);
  return {
    characters: text.length,
    maxChars: 4000,
    chunks: [
      { index: 0, start: 0, end: half },
      { index: 1, start: half, end: text.length },
    ],
  };
}

export function textStitchOutput(text: string): TextStitchOutput {
  return { ...textStatsOutput('input', text), coverage: 1, gaps: [], shards: 2 };
}

/** `video.split` of a 4 s clip: two frames and one sound window. */
export function videoSplitOutput(): VideoSplitOutput {
  return {
    durationSec: 4,
    width: 1280,
    height: 720,
    format: 'mp4/h264',
    fps: 0.5,
    frames: [
      { index: 0, timeSec: 0, blob: shardRef('7', 'f0.jpg', 'image/jpeg') },
      { index: 1, timeSec: 2, blob: shardRef('8', 'f1.jpg', 'image/jpeg') },
    ],
    audio: { sampleRate: 16_000, sourceSampleRate: 48_000, channels: 1, format: 'aac', windowSec: 30, overlapSec: 2, windows: [{ index: 0, startSec: 0, endSec: 4, blob: shardRef('9', 'a0.wav') }] },
  };
}

/** `video.stitch` of the clip above: frame text and speech on one timeline. */
export function videoStitchOutput(frameText: string): VideoStitchOutput {
  return {
    durationSec: 4,
    width: 1280,
    height: 720,
    format: 'mp4/h264',
    frames: [
      { index: 0, timeSec: 0, blob: shardRef('7', 'f0.jpg', 'image/jpeg'), text: frameText, confidence: 88 },
      { index: 1, timeSec: 2, blob: shardRef('8', 'f1.jpg', 'image/jpeg'), text: '', confidence: null },
    ],
    speech: { ...audioOutput(), coverage: 1, gaps: [], shards: 1 },
    timeline: [
      { startSec: 0, endSec: 2, source: 'frame', text: frameText, index: 0 },
      { startSec: 0.5, endSec: 2.5, source: 'speech', text: '' },
    ],
    subtitles: shardRef('a', 'clip.vtt', 'text/vtt'),
    coverage: 1,
    gaps: [],
  };
}

/** The error `fn` throws, which must be an InvalidJobSpecError. */
export function specError(fn: () => unknown): InvalidJobSpecError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidJobSpecError);
    if (err instanceof InvalidJobSpecError) return err;
  }
  throw new Error('expected an InvalidJobSpecError, nothing was thrown');
}
