import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  audioWindows,
  frameTimes,
  type AudioSplitOutput,
  type BlobRef,
  type TextSplitOutput,
  type VideoSplitOutput,
} from '@mmgrid/core';
import { InputDecodeError, TaskFailedError } from '../../errors.js';
import { probeMedia, runTool, type Probed, type ProbedStream } from '../../media/ffmpeg.js';
import type { TaskContext, TaskHandler } from '../backend.js';
import { textThreads, type TextThreads } from './text-threads.js';

function numParam(ctx: TaskContext, name: string, fallback: number, min: number, max: number): number {
  const value = ctx.params[name] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new TaskFailedError('INVALID_PARAMS', `${ctx.kind} parameter ${name} must be a number from ${min} to ${max}`, false);
  }
  return value;
}

function theFile(ctx: TaskContext): { name: string; file: string } {
  const [name, file] = [...ctx.files][0] ?? [];
  if (!name || !file) throw new TaskFailedError('INPUT_MISSING', `${ctx.kind} needs one file input`, false);
  return { name, file };
}

function stemOf(name: string): string {
  return name.replace(/\.[^.]+$/, '');
}

/** A scratch folder for one task, removed afterwards whatever happens. */
async function withScratch<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-split-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface WindowSettings {
  readonly windowSec: number;
  readonly overlapSec: number;
  readonly sampleRate: number;
}

function windowSettings(ctx: TaskContext): WindowSettings {
  const windowSec = numParam(ctx, 'windowSec', 30, 1, 3600);
  const overlapSec = numParam(ctx, 'overlapSec', 2, 0, 600);
  if (overlapSec >= windowSec) throw new TaskFailedError('INVALID_PARAMS', `${ctx.kind}: overlapSec must be shorter than windowSec`, false);
  return { windowSec, overlapSec, sampleRate: numParam(ctx, 'sampleRate', 16_000, 8_000, 96_000) };
}

/**
 * Cuts the sound of `file` into overlapping windows, each a mono WAV at the backend's rate,
 * stored as blobs. ffmpeg seeks to each window's start, so an hour of audio never sits in
 * memory.
 */
async function cutWindows(
  ctx: TaskContext,
  file: string,
  name: string,
  probed: Probed,
  s: WindowSettings,
  progress: (done: number, total: number) => void,
): Promise<AudioSplitOutput['windows']> {
  const plans = audioWindows(probed.durationSec, { windowSec: s.windowSec, overlapSec: s.overlapSec });
  return withScratch(async (dir) => {
    const windows: AudioSplitOutput['windows'] = [];
    for (const w of plans) {
      const out = path.join(dir, `w${w.index}.wav`);
      await runTool(
        'ffmpeg',
        ['-v', 'error', '-nostdin', '-ss', String(w.startSec), '-t', String(w.endSec - w.startSec), '-i', file, '-map', '0:a:0', '-ac', '1', '-ar', String(s.sampleRate), '-c:a', 'pcm_s16le', '-y', out],
        ctx.signal,
        `the sound of "${name}"`,
      );
      const blob: BlobRef = await ctx.putBlob(await readFile(out), `${stemOf(name)}.w${String(w.index).padStart(4, '0')}.wav`, 'audio/wav');
      await rm(out, { force: true });
      windows.push({ index: w.index, startSec: w.startSec, endSec: w.endSec, blob });
      progress(w.index + 1, plans.length);
    }
    return windows;
  });
}

function formatOf(mediaType: string, codec: string | undefined): string {
  return `${mediaType.split('/')[1] ?? 'media'}/${codec ?? 'unknown'}`;
}

/** `audio.split`: a recording in overlapping windows, resampled for the backend (ffmpeg). */
export class AudioSplitHandler implements TaskHandler {
  readonly kind = 'audio.split';
  readonly description = 'cuts recordings into overlapping windows (ffmpeg)';

  async run(ctx: TaskContext): Promise<AudioSplitOutput> {
    const { name, file } = theFile(ctx);
    const s = windowSettings(ctx);
    const probed = await probeMedia(file, ctx.signal, `"${name}"`);
    if (!probed.audio) throw new InputDecodeError(`"${name}" has no audio stream`);
    const windows = await cutWindows(ctx, file, name, probed, s, (done, total) => ctx.progress(done / total, `${done}/${total} windows`));
    return { durationSec: probed.durationSec, ...soundTrack(ctx, name, probed.audio, s, 'audio/unknown'), windows };
  }
}

/** What a split says about the sound it cut into windows. */
function soundTrack(ctx: TaskContext, name: string, audio: ProbedStream, s: WindowSettings, fallbackType: string): Omit<AudioSplitOutput, 'durationSec' | 'windows'> {
  return {
    sampleRate: s.sampleRate,
    sourceSampleRate: Number(audio.sample_rate ?? s.sampleRate) || s.sampleRate,
    channels: audio.channels ?? 1,
    format: formatOf(ctx.mediaTypes.get(name) ?? fallbackType, audio.codec_name),
    windowSec: s.windowSec,
    overlapSec: s.overlapSec,
  };
}

/** `video.split`: frames sampled at a rate (PNG blobs) and the sound track in windows (ffmpeg). */
export class VideoSplitHandler implements TaskHandler {
  readonly kind = 'video.split';
  readonly description = 'samples video frames and cuts the sound track into windows (ffmpeg)';

  async run(ctx: TaskContext): Promise<VideoSplitOutput> {
    const { name, file } = theFile(ctx);
    const fps = numParam(ctx, 'fps', 1, 0, 30);
    const maxFrames = numParam(ctx, 'maxFrames', 600, 0, 10_000);
    const frameMaxPx = numParam(ctx, 'frameMaxPx', 768, 16, 4096);
    const wantAudio = ctx.params['audio'] !== false;
    const s = windowSettings(ctx);
    const probed = await probeMedia(file, ctx.signal, `"${name}"`);
    if (!probed.video) throw new InputDecodeError(`"${name}" has no video stream`);
    const times = fps > 0 && maxFrames > 0 ? frameTimes(probed.durationSec, fps, maxFrames) : [];
    const frames = await withScratch(async (dir) => {
      const out: VideoSplitOutput['frames'] = [];
      for (const [index, timeSec] of times.entries()) {
        const png = path.join(dir, `f${index}.png`);
        const scale = `scale='min(${frameMaxPx},iw)':'min(${frameMaxPx},ih)':force_original_aspect_ratio=decrease`;
        await runTool('ffmpeg', ['-v', 'error', '-nostdin', '-ss', String(timeSec), '-i', file, '-frames:v', '1', '-vf', scale, '-y', png], ctx.signal, `"${name}"`);
        const blob = await ctx.putBlob(await readFile(png), `${stemOf(name)}.f${String(index).padStart(4, '0')}.png`, 'image/png');
        await rm(png, { force: true });
        out.push({ index, timeSec, blob });
        ctx.progress((index + 1) / (times.length + 1), `${index + 1}/${times.length} frames`);
      }
      return out;
    });
    const audio =
      wantAudio && probed.audio
        ? { ...soundTrack(ctx, name, probed.audio, s, 'video/unknown'), windows: await cutWindows(ctx, file, name, probed, s, () => undefined) }
        : null;
    return {
      durationSec: probed.durationSec,
      width: probed.video.width ?? 1,
      height: probed.video.height ?? 1,
      format: formatOf(ctx.mediaTypes.get(name) ?? 'video/unknown', probed.video.codec_name),
      fps,
      frames,
      audio,
    };
  }
}

/** `text.split`: a long text in chunks that end on sentence boundaries, as spans of the text. */
export class TextSplitHandler implements TaskHandler {
  readonly kind = 'text.split';
  readonly description = 'cuts long texts into chunks on sentence boundaries';

  /** `threads`: where the segmenting runs (it takes a thread for seconds on a long text). */
  constructor(private readonly threads: TextThreads = textThreads()) {}

  async run(ctx: TaskContext): Promise<TextSplitOutput> {
    const maxChars = numParam(ctx, 'maxChars', 4000, 100, 1_000_000);
    let text: string;
    const [, inline] = [...ctx.texts][0] ?? [];
    if (inline !== undefined) {
      text = inline;
    } else {
      const { name, file } = theFile(ctx);
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(await readFile(file));
      } catch (err) {
        throw new InputDecodeError(`"${name}" is not valid UTF-8 text`, { cause: err });
      }
    }
    // Only the spans: the shards read their chunk from the input itself, so the output stays
    // small (a few bytes a chunk) however long the text is.
    const { characters, ends } = await this.threads.split(text, maxChars, ctx.signal);
    const chunks = Array.from(ends, (end, index) => ({ index, start: index === 0 ? 0 : (ends[index - 1] as number), end }));
    return { characters, maxChars, chunks };
  }

  close(): Promise<void> {
    return this.threads.close();
  }
}
