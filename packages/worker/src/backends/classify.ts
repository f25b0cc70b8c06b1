import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import type { ImageTensorConfig } from '../worker-config.js';
import { BackendUnavailableError } from './backend.js';

/** An image as a model input: float32 values in the configured layout, with its shape. */
export interface ImageTensor {
  readonly data: Float32Array;
  /** [1, 3, height, width] (NCHW) or [1, height, width, 3] (NHWC). */
  readonly shape: readonly [number, number, number, number];
}

/**
 * Decodes an image and turns it into a tensor: turned upright (EXIF orientation), resized to
 * width × height (cover, centred, the usual crop for classifiers), RGB, each value
 * `(pixel / scale - mean[c]) / std[c]`.
 */
export async function imageToTensor(file: string, spec: ImageTensorConfig): Promise<ImageTensor> {
  const { data } = await sharp(file)
    // As the image is shown: a photo's EXIF orientation turned into pixels.
    .autoOrient()
    .removeAlpha()
    .toColourspace('srgb')
    .resize(spec.width, spec.height, { fit: 'cover', position: 'centre' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const pixels = spec.width * spec.height;
  const out = new Float32Array(pixels * 3);
  for (let i = 0; i < pixels; i++) {
    for (let c = 0; c < 3; c++) {
      const value = ((data[i * 3 + c] ?? 0) / spec.scale - spec.mean[c]!) / spec.std[c]!;
      out[spec.layout === 'NCHW' ? c * pixels + i : i * 3 + c] = value;
    }
  }
  return { data: out, shape: spec.layout === 'NCHW' ? [1, 3, spec.height, spec.width] : [1, spec.height, spec.width, 3] };
}

/** Softmax of a vector (numerically stable). */
export function softmax(values: ArrayLike<number>): number[] {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) max = Math.max(max, values[i] ?? max);
  const exps = Array.from({ length: values.length }, (_, i) => Math.exp((values[i] ?? 0) - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** The `top` highest scores, best first, named from `labels` (or "class N" past its end). */
export function topLabels(scores: ArrayLike<number>, labels: readonly string[], top: number): { label: string; index: number; score: number }[] {
  return Array.from({ length: scores.length }, (_, index) => ({ index, score: scores[index] ?? 0 }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, top)
    .map(({ index, score }) => ({ label: labels[index] ?? `class ${index}`, index, score: Math.round(score * 1e6) / 1e6 }));
}

/** Reads a labels file (one per line; blank lines at the end ignored), relative to `baseDir`. */
export async function loadLabels(file: string | undefined, baseDir: string): Promise<string[]> {
  if (file === undefined) return [];
  const full = path.resolve(baseDir, file);
  try {
    return (await readFile(full, 'utf8')).replace(/\s+$/, '').split(/\r?\n/).map((l) => l.trim());
  } catch (err) {
    throw new BackendUnavailableError(`the labels file ${full} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
  }
}
