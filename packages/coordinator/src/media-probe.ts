import { execFile, type ExecFileException } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileTypeFromBuffer } from 'file-type';
import { describeSupportedMedia, modalityOf, normaliseMediaType, UnsupportedMediaError, type Modality } from '@mmgrid/core';
import type { BlobStore } from './blob-store.js';
import type { Logger } from './logger.js';

/** Bytes from the start of a blob that detection looks at. */
export const PROBE_HEAD_BYTES = 64 * 1024;

export interface DetectedMedia {
  readonly mediaType: string;
  readonly modality: Modality;
}

/**
 * Detects an input's media type from its bytes (never its name): a maintained magic-number
 * library first, then UTF-8 text. Throws UnsupportedMediaError naming what is supported.
 */
export async function detectMedia(inputName: string, head: Uint8Array): Promise<DetectedMedia> {
  if (head.byteLength === 0) {
    throw new UnsupportedMediaError(inputName, 'empty', `input "${inputName}" is empty; supported: ${describeSupportedMedia()}`);
  }
  const detected = await fileTypeFromBuffer(head);
  if (detected) {
    // Parameters are not part of the type: Ogg Opus is "audio/ogg; codecs=opus".
    const mediaType = normaliseMediaType(detected.mime.split(';')[0] ?? detected.mime);
    const modality = modalityOf(mediaType);
    // Some signatures are short enough for plain text to match ("BM" of BMP, "ID3" of MP3);
    // real image, audio and video headers hold NUL bytes or invalid UTF-8, never text.
    if (modality && modality !== 'text' && looksLikeText(head)) return { mediaType: 'text/plain', modality: 'text' };
    if (modality) return { mediaType, modality };
    throw new UnsupportedMediaError(
      inputName,
      mediaType,
      `input "${inputName}" is ${mediaType} (.${detected.ext}), which mmgrid does not take; supported: ${describeSupportedMedia()}`,
    );
  }
  if (looksLikeText(head)) return { mediaType: 'text/plain', modality: 'text' };
  throw new UnsupportedMediaError(
    inputName,
    'application/octet-stream',
    `input "${inputName}" is not a recognised file type; supported: ${describeSupportedMedia()}`,
  );
}

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Valid UTF-8 (a trailing partial character allowed) with no NUL and few control characters. */
function looksLikeText(head: Uint8Array): boolean {
  let text: string;
  try {
    text = decoder.decode(head, { stream: true });
  } catch {
    return false;
  }
  // Reset the decoder's streaming state for the next call.
  try {
    decoder.decode();
  } catch {
    // A truncated trailing sequence is expected at the head boundary.
  }
  let control = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0) return false;
    if (c < 32 && c !== 9 && c !== 10 && c !== 13 && c !== 12) control += 1;
  }
  return control <= Math.max(1, text.length / 1000);
}

/** What ffprobe says of a recording or video. */
export interface AvProbe {
  readonly durationSec: number | undefined;
  readonly hasVideo: boolean;
  readonly hasAudio: boolean;
}

interface FfprobeJson {
  streams?: { codec_type?: string; duration?: string }[];
  format?: { duration?: string };
}

export interface ProbeOptions {
  /** Told when a probe says nothing (ffprobe timed out or was killed). */
  readonly logger?: Logger;
  /** How long ffprobe may take. @default 30 s */
  readonly timeoutMs?: number;
}

const PROBE_TIMEOUT_MS = 30_000;

/**
 * Asks ffprobe what a media file holds. Resolves undefined when ffprobe is not installed, or
 * when it timed out or was killed (a slow disk or bucket, a loaded host: nothing is known
 * about the file then, which is not the same as the file being bad); the grid then trusts the
 * magic-number detection. Throws UnsupportedMediaError when ffprobe read the file and could
 * not make sense of it (it is damaged or not what its first bytes claim).
 */
export async function probeAv(inputName: string, mediaType: string, file: string, options: ProbeOptions = {}): Promise<AvProbe | undefined> {
  const timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
  const result = await new Promise<{ stdout: string; error: ExecFileException | null; stderr: string }>((resolve) => {
    execFile('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', file], { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) =>
      resolve({ stdout, stderr, error }),
    );
  });
  if (result.error?.code === 'ENOENT') return undefined;
  const killed = result.error && (result.error.killed === true || result.error.signal) ? result.error : undefined;
  if (killed) {
    // Killed by the timeout, or by someone else (the OOM killer…): no verdict on the file.
    const why = killed.killed === true ? `no answer within ${timeoutMs} ms` : `killed by ${killed.signal ?? 'a signal'}`;
    options.logger?.warn({ input: inputName, mediaType, signal: killed.signal ?? null, timeoutMs }, `ffprobe said nothing about input "${inputName}" (${why}); going by its detected type`);
    return undefined;
  }
  const probe = result.error ? undefined : (JSON.parse(result.stdout) as FfprobeJson);
  const streams = probe?.streams ?? [];
  if (!probe || streams.length === 0) {
    // ffprobe names the file by its path in the blob store: not something to show a submitter.
    const why = result.stderr.trim().split('\n').pop()?.trim().split(`${file}: `).join('').split(file).join(inputName) || 'no audio or video stream in it';
    throw new UnsupportedMediaError(inputName, mediaType, `input "${inputName}" looks like ${mediaType} but cannot be read (${why})`);
  }
  const duration = Number(probe.format?.duration ?? streams.find((s) => s.duration)?.duration ?? NaN);
  return {
    durationSec: Number.isFinite(duration) && duration >= 0 ? duration : undefined,
    hasVideo: streams.some((s) => s.codec_type === 'video'),
    hasAudio: streams.some((s) => s.codec_type === 'audio'),
  };
}

let ffprobeFound: Promise<boolean> | undefined;

/** Whether ffprobe can be run here (asked once per process). */
function ffprobeInstalled(): Promise<boolean> {
  ffprobeFound ??= new Promise((resolve) => {
    execFile('ffprobe', ['-version'], { timeout: 30_000 }, (error) => resolve(error?.code !== 'ENOENT'));
  });
  return ffprobeFound;
}

/**
 * probeAv for a blob of any store. ffprobe reads the store's own file where the store keeps
 * blobs as files; otherwise (an S3 bucket) the blob is streamed into a private temporary
 * folder under the system's temporary directory (TMPDIR), probed there and always removed.
 * Nothing is copied when ffprobe is not installed. A blob is at most maxBlobBytes (the
 * store refuses larger ones): the most disk one probe takes, and only while it runs.
 */
export async function probeBlob(blobs: BlobStore, sha256: string, inputName: string, mediaType: string, options: ProbeOptions = {}): Promise<AvProbe | undefined> {
  const file = blobs.localPath?.(sha256);
  if (file) return probeAv(inputName, mediaType, file, options);
  if (!(await ffprobeInstalled())) return undefined;
  // mkdtemp makes the folder readable by this user only.
  const dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-probe-'));
  try {
    const copy = path.join(dir, 'blob');
    await pipeline(await blobs.read(sha256), createWriteStream(copy, { flags: 'wx', mode: 0o600 }));
    return await probeAv(inputName, mediaType, copy, options);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
