import { stat } from 'node:fs/promises';
import type { ImageInspectOutput } from '@mmgrid/core';
import { TaskFailedError } from '../../errors.js';
import type { TaskContext, TaskHandler } from '../backend.js';
import { dominantColours } from './colours.js';
import { openImage } from './image-decode.js';

function intParam(ctx: TaskContext, name: string, fallback: number, min: number, max: number): number {
  const value = ctx.params[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new TaskFailedError('INVALID_PARAMS', `${ctx.kind} parameter ${name} must be an integer from ${min} to ${max}`, false);
  }
  return value;
}

/** `image.inspect`: size, format, dominant colours and a WebP thumbnail (sharp). */
export class ImageInspectHandler implements TaskHandler {
  readonly kind = 'image.inspect';
  readonly description = 'size, format, dominant colours, thumbnail (sharp)';

  async run(ctx: TaskContext): Promise<ImageInspectOutput> {
    const [name, file] = [...ctx.files][0] ?? [];
    if (!name || !file) throw new TaskFailedError('INPUT_MISSING', 'image.inspect needs one image input', false);
    const maxPx = intParam(ctx, 'thumbnailMaxPx', 256, 16, 4096);
    const count = intParam(ctx, 'colours', 5, 1, 32);
    const { image, metadata } = await openImage(file);
    const oriented = image.clone().rotate();
    const sample = await oriented
      .clone()
      .flatten({ background: '#ffffff' })
      .resize(64, 64, { fit: 'inside' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer();
    ctx.progress(0.5, 'colours measured');
    const thumbnail = await oriented.clone().resize(maxPx, maxPx, { fit: 'inside', withoutEnlargement: true }).webp({ quality: 80 }).toBuffer();
    const stem = name.replace(/\.[^.]+$/, '');
    const ref = await ctx.putBlob(thumbnail, `${stem}.thumbnail.webp`, 'image/webp');
    return {
      width: metadata.autoOrient?.width ?? metadata.width ?? 1,
      height: metadata.autoOrient?.height ?? metadata.height ?? 1,
      format: metadata.format ?? 'unknown',
      channels: metadata.channels ?? 3,
      hasAlpha: metadata.hasAlpha ?? false,
      bytes: (await stat(file)).size,
      colours: dominantColours(sample, count),
      thumbnail: ref,
    };
  }
}
