/**
 * Small task outputs that satisfy the schemas in task-outputs.ts, shared by the assembler
 * and fusion-report tests.
 */
import type { BlobRef } from '../blob-ref.js';
import type { AudioAnalyzeOutput, ImageInspectOutput, ImageOcrOutput, TextStatsOutput } from '../task-outputs.js';

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
