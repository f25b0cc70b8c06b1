import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  audioSplitOutputSchema,
  buildTimeline,
  imageOcrOutputSchema,
  NO_REQUIREMENTS,
  parseTaskOutput,
  stitchAudioAnalysis,
  stitchTextStats,
  stitchWords,
  taskKindInfo,
  textSplitOutputSchema,
  toSrt,
  toVtt,
  videoSplitOutputSchema,
  wordsToCues,
  type AudioAnalyzeOutput,
  type AudioSplitOutput,
  type AudioStitchOutput,
  type BlobRef,
  type JsonObject,
  type ShardOutcome,
  type TaskRequirements,
  type TextStatsOutput,
  type TranscriptStitchOutput,
  type VideoStitchOutput,
  type WindowPlan,
} from '@mmgrid/core';
import type { BlobStore } from './blob-store.js';
import type { ChildOutcome } from './outcomes.js';
import type { TaskData, TaskInput } from './task-queues.js';

/** One task a stitch step adds at run time, for one window, frame or chunk. */
export interface ShardSpec {
  readonly index: number;
  readonly kind: string;
  readonly inputs: readonly TaskInput[];
  readonly params: JsonObject;
  readonly requirements: TaskRequirements;
  readonly timeoutMs: number;
}

export interface StitchTools {
  /** Stores bytes (subtitles…) in the blob store. */
  putBlob(bytes: Uint8Array, name: string, mediaType: string): Promise<BlobRef>;
}

/**
 * A coordinator step that fans a split input out into shards and stitches their outputs:
 * `plan` turns the split's output into shards; `stitch` puts the shards' outcomes (by
 * shard index; missing for shards that did not end well) back together.
 */
export interface Stitcher {
  readonly kind: string;
  plan(splitJson: string, step: TaskData): ShardSpec[];
  /** The step's output (plain JSON data, stored by BullMQ as the step's value). */
  stitch(splitJson: string, outcomes: ReadonlyMap<number, ChildOutcome>, step: TaskData, tools: StitchTools): Promise<unknown>;
}

/** The sound part of a split: its windows and what they were cut from. */
type AudioWindows = Pick<AudioSplitOutput, 'durationSec' | 'sourceSampleRate' | 'channels' | 'format' | 'windows'>;

/** Index offset of sound windows among a video's shards (frames come first). */
const AUDIO_SHARD_OFFSET = 1_000_000;

function str(params: JsonObject, name: string, fallback: string): string {
  const v = params[name];
  return typeof v === 'string' ? v : fallback;
}

function obj(params: JsonObject, name: string): JsonObject {
  const v = params[name];
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {};
}

function requirementsOf(params: JsonObject): TaskRequirements {
  const r = obj(params, 'shardRequirements');
  return {
    model: typeof r['model'] === 'string' ? r['model'] : NO_REQUIREMENTS.model,
    minVramBytes: typeof r['minVramBytes'] === 'number' ? r['minVramBytes'] : NO_REQUIREMENTS.minVramBytes,
    minComputeCapability: typeof r['minComputeCapability'] === 'string' ? r['minComputeCapability'] : NO_REQUIREMENTS.minComputeCapability,
    cpuAllowed: typeof r['cpuAllowed'] === 'boolean' ? r['cpuAllowed'] : NO_REQUIREMENTS.cpuAllowed,
  };
}

function timeoutOf(kind: string): number {
  return taskKindInfo(kind)?.timeoutMs ?? 60_000;
}

/** A shard's outcome as the core stitchers take it: the parsed output, or why there is none. */
function shardOutcome<T>(window: WindowPlan, outcome: ChildOutcome | undefined, parse: (json: string) => T): ShardOutcome<T> {
  if (outcome?.status === 'succeeded') {
    try {
      return { window, output: parse(outcome.outputJson) };
    } catch (err) {
      return { window, error: { code: 'INVALID_TASK_OUTPUT', message: err instanceof Error ? err.message : String(err) } };
    }
  }
  return { window, error: { code: 'SHARD_FAILED', message: outcome?.status === 'failed' ? outcome.reason : 'no output' } };
}

function audioShards(split: Pick<AudioSplitOutput, 'windows'>, step: TaskData, kind: string, offset: number): ShardSpec[] {
  const inputName = step.inputs[0]?.name ?? '';
  const shardParams = obj(step.params, 'shardParams');
  const requirements = requirementsOf(step.params);
  return split.windows.map((w) => ({
    index: offset + w.index,
    kind,
    inputs: [{ name: inputName, blob: w.blob }],
    params: shardParams,
    requirements,
    timeoutMs: timeoutOf(kind),
  }));
}

function windowsOf(split: Pick<AudioSplitOutput, 'windows'>): WindowPlan[] {
  return split.windows.map((w) => ({ index: w.index, startSec: w.startSec, endSec: w.endSec }));
}

function stitchAnalysis(split: AudioWindows, outcomes: ReadonlyMap<number, ChildOutcome>, offset: number): AudioStitchOutput {
  const shards = windowsOf(split).map((w) => shardOutcome(w, outcomes.get(offset + w.index), (json) => parseTaskOutput('audio.analyze', json)));
  const stitched = stitchAudioAnalysis(shards, {
    durationSec: split.durationSec,
    sampleRate: split.sourceSampleRate,
    channels: split.channels,
    format: split.format,
    decoder: 'ffmpeg',
  });
  return { ...stitched.output, coverage: stitched.coverage, gaps: [...stitched.gaps], shards: shards.length };
}

async function putText(tools: StitchTools, text: string, name: string, mediaType: string): Promise<BlobRef> {
  return tools.putBlob(Buffer.from(text, 'utf8'), name, mediaType);
}

function stem(step: TaskData): string {
  return (step.inputs[0]?.name ?? 'input').replace(/\.[^.]+$/, '');
}

/** `audio.stitch`: windows of a recording, analysed or transcribed, put back together. */
const audioStitcher: Stitcher = {
  kind: 'audio.stitch',
  plan(splitJson, step) {
    const split = audioSplitOutputSchema.parse(JSON.parse(splitJson));
    return audioShards(split, step, str(step.params, 'shardKind', 'audio.analyze'), 0);
  },
  async stitch(splitJson, outcomes, step, tools) {
    const split = audioSplitOutputSchema.parse(JSON.parse(splitJson));
    const shardKind = str(step.params, 'shardKind', 'audio.analyze');
    if (shardKind !== 'audio.transcribe') return stitchAnalysis(split, outcomes, 0);
    const shards = windowsOf(split).map((w) => shardOutcome(w, outcomes.get(w.index), (json) => parseTaskOutput('audio.transcribe', json)));
    const stitched = stitchWords(shards);
    const language = shards.find((s) => s.output)?.output?.language ?? '';
    const cues = wordsToCues(stitched.words, 6, 84);
    const subtitles =
      cues.length > 0
        ? {
            srt: await putText(tools, toSrt(cues), `${stem(step)}.srt`, 'application/x-subrip'),
            vtt: await putText(tools, toVtt(cues), `${stem(step)}.vtt`, 'text/vtt'),
          }
        : null;
    const output: TranscriptStitchOutput = {
      text: stitched.words.map((w) => w.text).join(' '),
      language,
      words: [...stitched.words],
      segments: cues.map((c) => ({ text: c.text, startSec: c.startSec, endSec: c.endSec })),
      coverage: stitched.coverage,
      gaps: [...stitched.gaps],
      shards: shards.length,
      subtitles,
    };
    return output;
  },
};

/**
 * What a text shard reads: the whole input blob and its span as params (the worker decodes
 * the blob and counts `text.slice(start, end)`), or, for an inline text, its chunk inline.
 * The split's output carries only spans, so nothing here grows with the text.
 */
function textShardInput(step: TaskData, chunk: { readonly start: number; readonly end: number }, source: string): Pick<ShardSpec, 'inputs' | 'params'> {
  const input = step.inputs[0];
  if (input?.blob) return { inputs: [{ name: input.name, blob: input.blob }], params: { source, start: chunk.start, end: chunk.end } };
  if (input?.text !== undefined) {
    if (chunk.start >= chunk.end || chunk.end > input.text.length) {
      throw new Error(`chunk ${chunk.start}-${chunk.end} is not within the text "${input.name}" (${input.text.length} UTF-16 code units)`);
    }
    return { inputs: [{ name: input.name, text: input.text.slice(chunk.start, chunk.end) }], params: { source } };
  }
  throw new Error(`the step has no text input to cut chunks from (${input ? `"${input.name}" has neither a blob nor a text` : 'no input'})`);
}

/** `text.stitch`: chunks of a long text, counted, added up. */
const textStitcher: Stitcher = {
  kind: 'text.stitch',
  plan(splitJson, step) {
    const split = textSplitOutputSchema.parse(JSON.parse(splitJson));
    const source = str(step.params, 'source', 'input');
    const requirements = requirementsOf(step.params);
    return split.chunks.map((c) => ({
      index: c.index,
      kind: 'text.stats',
      ...textShardInput(step, c, source),
      requirements,
      timeoutMs: timeoutOf('text.stats'),
    }));
  },
  stitch(splitJson, outcomes, step) {
    const split = textSplitOutputSchema.parse(JSON.parse(splitJson));
    // Chunks have no times; their character span stands in for one so gaps keep their order.
    const shards = split.chunks.map((c) =>
      shardOutcome<TextStatsOutput>({ index: c.index, startSec: c.start, endSec: c.end }, outcomes.get(c.index), (json) => parseTaskOutput('text.stats', json)),
    );
    const stitched = stitchTextStats(shards, str(step.params, 'source', 'input') === 'prompt' ? 'prompt' : 'input');
    return Promise.resolve({ ...stitched.output, coverage: stitched.coverage, gaps: [...stitched.gaps], shards: shards.length });
  },
};

/** `video.stitch`: frames read and sound analysed, on one timeline. */
const videoStitcher: Stitcher = {
  kind: 'video.stitch',
  plan(splitJson, step) {
    const split = videoSplitOutputSchema.parse(JSON.parse(splitJson));
    const inputName = step.inputs[0]?.name ?? '';
    const frameKind = typeof step.params['frameKind'] === 'string' ? step.params['frameKind'] : null;
    const audioKind = typeof step.params['audioKind'] === 'string' ? step.params['audioKind'] : null;
    const shards: ShardSpec[] = [];
    if (frameKind) {
      for (const f of split.frames) {
        shards.push({
          index: f.index,
          kind: frameKind,
          inputs: [{ name: inputName, blob: f.blob }],
          params: frameKind === 'image.ocr' ? { language: 'eng' } : {},
          requirements: NO_REQUIREMENTS,
          timeoutMs: timeoutOf(frameKind),
        });
      }
    }
    if (audioKind && split.audio) shards.push(...audioShards(split.audio, { ...step, params: { ...step.params, shardParams: audioKind === 'audio.analyze' ? { frameMs: 20 } : {} } }, audioKind, AUDIO_SHARD_OFFSET));
    return shards;
  },
  async stitch(splitJson, outcomes, step, tools) {
    const split = videoSplitOutputSchema.parse(JSON.parse(splitJson));
    const frameKind = typeof step.params['frameKind'] === 'string' ? step.params['frameKind'] : null;
    const frames = split.frames.map((f) => {
      const outcome = frameKind ? outcomes.get(f.index) : undefined;
      let text = '';
      let confidence: number | null = null;
      if (outcome?.status === 'succeeded') {
        const ocr = imageOcrOutputSchema.safeParse(JSON.parse(outcome.outputJson));
        if (ocr.success) {
          text = ocr.data.text.replace(/\s+/g, ' ').trim();
          confidence = ocr.data.confidence;
        }
      }
      return { index: f.index, timeSec: f.timeSec, blob: f.blob, text, confidence, ok: !frameKind || outcome?.status === 'succeeded' };
    });
    const audioKind = typeof step.params['audioKind'] === 'string' ? step.params['audioKind'] : null;
    const speech: AudioStitchOutput | null = audioKind === 'audio.analyze' && split.audio ? stitchAnalysis({ ...split.audio, durationSec: split.durationSec }, outcomes, AUDIO_SHARD_OFFSET) : null;
    const frameInterval = split.fps > 0 ? 1 / split.fps : split.durationSec;
    const segments: AudioAnalyzeOutput['segments'] = speech?.segments ?? [];
    const timeline = buildTimeline(
      frames.filter((f) => f.ok).map((f) => ({ index: f.index, timeSec: f.timeSec, text: f.text })),
      frameInterval,
      segments,
      [],
    );
    const cues = frames
      .filter((f) => f.text !== '')
      .map((f) => ({ startSec: f.timeSec, endSec: Math.min(split.durationSec, f.timeSec + frameInterval), text: f.text }));
    const subtitles = cues.length > 0 ? await putText(tools, toVtt(cues), `${stem(step)}.frames.vtt`, 'text/vtt') : null;
    const total = (frameKind ? frames.length : 0) + (speech ? speech.shards : 0);
    const good = (frameKind ? frames.filter((f) => f.ok).length : 0) + (speech ? speech.coverage * speech.shards : 0);
    const frameGaps = frames
      .filter((f) => !f.ok)
      .map((f) => ({
        startSec: f.timeSec,
        endSec: Math.min(split.durationSec, f.timeSec + frameInterval),
        reason: `frame ${f.index}: ${(() => {
          const o = outcomes.get(f.index);
          return o?.status === 'failed' ? o.reason : 'no output';
        })()}`,
      }));
    const output: VideoStitchOutput = {
      durationSec: split.durationSec,
      width: split.width,
      height: split.height,
      format: split.format,
      frames: frames.map(({ index, timeSec, blob, text, confidence }) => ({ index, timeSec, blob, text, confidence })),
      speech,
      timeline: timeline.map((e) => ({ ...e })),
      subtitles,
      coverage: total === 0 ? 1 : good / total,
      gaps: [...frameGaps, ...(speech?.gaps ?? [])].sort((a, b) => a.startSec - b.startSec),
    };
    return output;
  },
};

export const STITCHERS: readonly Stitcher[] = [audioStitcher, textStitcher, videoStitcher];

/** The BlobRef of bytes stored in `store`. */
export async function putBytes(store: BlobStore, bytes: Uint8Array, name: string, mediaType: string): Promise<BlobRef> {
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  await store.put({ sha256, size: bytes.byteLength }, Readable.from([bytes]));
  return { sha256, size: bytes.byteLength, mediaType, name };
}
