import { z } from 'zod';
import { blobRefSchema } from './blob-ref.js';
import { InvalidTaskOutputError } from './errors.js';

const bbox = z.object({ x0: z.number(), y0: z.number(), x1: z.number(), y1: z.number() });
const percent = z.number().min(0).max(100);
const seconds = z.number().nonnegative();

const ocrSpan = z.object({ text: z.string(), confidence: percent, bbox });

/** `image.ocr`: the text Tesseract reads in an image. Confidences are 0..100. */
export const imageOcrOutputSchema = z.object({
  text: z.string(),
  confidence: percent,
  language: z.string(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  lines: z.array(ocrSpan),
  words: z.array(ocrSpan),
});
export type ImageOcrOutput = z.infer<typeof imageOcrOutputSchema>;

/** `image.inspect`: what an image is made of (size, format, dominant colours) and a thumbnail. */
export const imageInspectOutputSchema = z.object({
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  format: z.string(),
  channels: z.number().int().positive(),
  hasAlpha: z.boolean(),
  bytes: z.number().int().nonnegative(),
  /** Most common colours, most common first; fractions of the pixels, summing to at most 1. */
  colours: z.array(z.object({ hex: z.string().regex(/^#[0-9a-f]{6}$/), name: z.string(), fraction: z.number().min(0).max(1) })),
  thumbnail: blobRefSchema,
});
export type ImageInspectOutput = z.infer<typeof imageInspectOutputSchema>;

const audioSegment = z.object({ kind: z.enum(['speech', 'silence']), startSec: seconds, endSec: seconds });

/** `audio.analyze`: format, duration, loudness and where the speech is. */
export const audioAnalyzeOutputSchema = z.object({
  /** Container and sample format, for example "wav/pcm_s16le". */
  format: z.string(),
  decoder: z.enum(['native', 'ffmpeg']),
  sampleRate: z.number().int().positive(),
  channels: z.number().int().positive(),
  durationSec: seconds,
  /** Root-mean-square level over the whole recording, in dB relative to full scale. */
  rmsDbfs: z.number(),
  peakDbfs: z.number(),
  speechSec: seconds,
  silenceSec: seconds,
  /** Alternating speech and silence, in order, covering the whole recording. */
  segments: z.array(audioSegment),
});
export type AudioAnalyzeOutput = z.infer<typeof audioAnalyzeOutputSchema>;
export type AudioSegment = z.infer<typeof audioSegment>;

/** `text.stats`: language-agnostic counts of a text (the prompt or a text input). */
export const textStatsOutputSchema = z.object({
  source: z.enum(['prompt', 'input']),
  characters: z.number().int().nonnegative(),
  graphemes: z.number().int().nonnegative(),
  words: z.number().int().nonnegative(),
  sentences: z.number().int().nonnegative(),
  lines: z.number().int().nonnegative(),
  /** Unicode scripts of the letters, most used first. */
  scripts: z.array(z.object({ script: z.string(), fraction: z.number().min(0).max(1) })),
  topTerms: z.array(z.object({ term: z.string(), count: z.number().int().positive() })),
  /** The text itself, up to 2,000 characters. */
  excerpt: z.string(),
  truncated: z.boolean(),
  /**
   * The line break the text ends with ('none' also for an empty text), so that the lines of
   * chunks add up to those of the whole text. Absent from the outputs of older workers.
   */
  finalLineBreak: z.enum(['none', 'lf', 'cr', 'crlf']).exactOptional(),
});
export type TextStatsOutput = z.infer<typeof textStatsOutputSchema>;

/** `fusion.report`: one deterministic report over every modality's output and the prompt. */
export const fusionReportOutputSchema = z.object({
  prompt: z.string(),
  summary: z.string(),
  sections: z.array(
    z.object({
      input: z.string(),
      modality: z.string(),
      kinds: z.array(z.string()),
      lines: z.array(z.string()),
    }),
  ),
  /** Words of the prompt found in the inputs' contents (OCR text, text inputs). */
  matchedTerms: z.array(z.object({ term: z.string(), foundIn: z.array(z.string()) })),
  missing: z.array(z.object({ input: z.string(), kind: z.string(), reason: z.string() })),
  coverage: z.number().min(0).max(1),
});
export type FusionReportOutput = z.infer<typeof fusionReportOutputSchema>;

/** `selftest.sleep`: how long the task waited, on which attempt. */
export const selftestSleepOutputSchema = z.object({
  sleptMs: z.number().nonnegative(),
  attempt: z.number().int().positive(),
  index: z.number().int().nonnegative(),
});
export type SelftestSleepOutput = z.infer<typeof selftestSleepOutputSchema>;

const timedWord = z.object({ text: z.string(), startSec: seconds, endSec: seconds });

/** `audio.transcribe`: what was said, with word and segment timestamps (for stitching). */
export const audioTranscribeOutputSchema = z.object({
  text: z.string(),
  language: z.string(),
  words: z.array(timedWord),
  segments: z.array(z.object({ text: z.string(), startSec: seconds, endSec: seconds })),
});
export type AudioTranscribeOutput = z.infer<typeof audioTranscribeOutputSchema>;

const windowShard = z.object({
  index: z.number().int().nonnegative(),
  startSec: seconds,
  endSec: seconds,
  blob: blobRefSchema,
});

const audioWindows = z.object({
  /** Rate of the window files (resampled for the backend). */
  sampleRate: z.number().int().positive(),
  sourceSampleRate: z.number().int().positive(),
  channels: z.number().int().positive(),
  /** Container and codec of the source, e.g. "wav/pcm_s16le". */
  format: z.string(),
  windowSec: seconds,
  overlapSec: seconds,
  windows: z.array(windowShard),
});

/** `audio.split`: a recording cut into overlapping windows, each a WAV blob. */
export const audioSplitOutputSchema = audioWindows.extend({ durationSec: seconds });
export type AudioSplitOutput = z.infer<typeof audioSplitOutputSchema>;

/** `video.split`: frames sampled at a rate (image blobs) and the sound track in windows. */
export const videoSplitOutputSchema = z.object({
  durationSec: seconds,
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  format: z.string(),
  fps: z.number().positive(),
  frames: z.array(z.object({ index: z.number().int().nonnegative(), timeSec: seconds, blob: blobRefSchema })),
  audio: audioWindows.nullable(),
});
export type VideoSplitOutput = z.infer<typeof videoSplitOutputSchema>;

/**
 * `text.split`: a long text in chunks that end on sentence boundaries. A chunk is only its
 * span, `start` to `end` in UTF-16 code units of the text (as `textChunks` gives them): the
 * text itself stays in the input, so the output stays small however long the text is.
 */
export const textSplitOutputSchema = z.object({
  characters: z.number().int().nonnegative(),
  maxChars: z.number().int().positive(),
  chunks: z.array(z.object({ index: z.number().int().nonnegative(), start: z.number().int().nonnegative(), end: z.number().int().nonnegative() })),
});
export type TextSplitOutput = z.infer<typeof textSplitOutputSchema>;

const timeGap = z.object({ startSec: seconds, endSec: seconds, reason: z.string() });

/** `audio.stitch`: the analysis of a whole recording put together from its windows. */
export const audioStitchOutputSchema = audioAnalyzeOutputSchema.extend({
  coverage: z.number().min(0).max(1),
  gaps: z.array(timeGap),
  shards: z.number().int().nonnegative(),
});
export type AudioStitchOutput = z.infer<typeof audioStitchOutputSchema>;

/** A transcript stitched from its windows, with subtitles as SRT and WebVTT blobs. */
export const transcriptStitchOutputSchema = audioTranscribeOutputSchema.extend({
  coverage: z.number().min(0).max(1),
  gaps: z.array(timeGap),
  shards: z.number().int().nonnegative(),
  subtitles: z.object({ srt: blobRefSchema, vtt: blobRefSchema }).nullable(),
});
export type TranscriptStitchOutput = z.infer<typeof transcriptStitchOutputSchema>;

/** `text.stitch`: the statistics of a long text put together from its chunks. */
export const textStitchOutputSchema = textStatsOutputSchema.extend({
  coverage: z.number().min(0).max(1),
  gaps: z.array(z.object({ index: z.number().int().nonnegative(), reason: z.string() })),
  shards: z.number().int().nonnegative(),
});
export type TextStitchOutput = z.infer<typeof textStitchOutputSchema>;

/** `video.stitch`: what was read in the frames and heard in the sound, on one timeline. */
export const videoStitchOutputSchema = z.object({
  durationSec: seconds,
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  format: z.string(),
  frames: z.array(
    z.object({ index: z.number().int().nonnegative(), timeSec: seconds, blob: blobRefSchema, text: z.string(), confidence: percent.nullable() }),
  ),
  speech: audioStitchOutputSchema.nullable(),
  timeline: z.array(
    z.object({
      startSec: seconds,
      endSec: seconds,
      source: z.enum(['frame', 'speech', 'words']),
      text: z.string(),
      index: z.number().int().nonnegative().optional(),
    }),
  ),
  /** Frame text as WebVTT cues, a blob. */
  subtitles: blobRefSchema.nullable(),
  coverage: z.number().min(0).max(1),
  gaps: z.array(timeGap),
});
export type VideoStitchOutput = z.infer<typeof videoStitchOutputSchema>;

const tokenUsage = z.object({ promptTokens: z.number().int().nonnegative(), completionTokens: z.number().int().nonnegative() }).nullable();

/** `text.generate`: a language model's answer to an instruction about a text. */
export const textGenerateOutputSchema = z.object({
  text: z.string(),
  /** The model that answered, as the server names it. */
  model: z.string(),
  /** Why the model stopped: "stop", "length" (hit maxTokens)… as the server says. */
  finishReason: z.string(),
  usage: tokenUsage,
});
export type TextGenerateOutput = z.infer<typeof textGenerateOutputSchema>;

/** `image.caption`: what a vision language model says of an image (or its answer to `question`). */
export const imageCaptionOutputSchema = textGenerateOutputSchema.extend({
  question: z.string().nullable(),
});
export type ImageCaptionOutput = z.infer<typeof imageCaptionOutputSchema>;

/** `image.classify`: a classifier's best labels for an image, most likely first. */
export const imageClassifyOutputSchema = z.object({
  model: z.string(),
  /** What ran it: "onnxruntime (cpu)", "onnxruntime (cuda)", "kserve v2 (http://…)". */
  runtime: z.string(),
  labels: z.array(z.object({ label: z.string(), index: z.number().int().nonnegative(), score: z.number() })),
});
export type ImageClassifyOutput = z.infer<typeof imageClassifyOutputSchema>;

/**
 * `fusion.llm`: the deterministic report it was given, with the language model's answer to
 * the prompt as the summary (so a result reads the same whichever fusion ran).
 */
export const fusionLlmOutputSchema = fusionReportOutputSchema.extend({
  model: z.string(),
  /** The deterministic report's own summary, kept. */
  reportSummary: z.string(),
});
export type FusionLlmOutput = z.infer<typeof fusionLlmOutputSchema>;

export interface TaskOutputs {
  'image.ocr': ImageOcrOutput;
  'image.inspect': ImageInspectOutput;
  'audio.analyze': AudioAnalyzeOutput;
  'text.stats': TextStatsOutput;
  'fusion.report': FusionReportOutput;
  'selftest.sleep': SelftestSleepOutput;
  'audio.split': AudioSplitOutput;
  'video.split': VideoSplitOutput;
  'text.split': TextSplitOutput;
  'audio.transcribe': AudioTranscribeOutput;
  'text.generate': TextGenerateOutput;
  'image.caption': ImageCaptionOutput;
  'image.classify': ImageClassifyOutput;
  'fusion.llm': FusionLlmOutput;
}

export type BuiltinWorkerKind = keyof TaskOutputs;

const schemas: { [K in BuiltinWorkerKind]: z.ZodType<TaskOutputs[K]> } = {
  'image.ocr': imageOcrOutputSchema,
  'image.inspect': imageInspectOutputSchema,
  'audio.analyze': audioAnalyzeOutputSchema,
  'text.stats': textStatsOutputSchema,
  'fusion.report': fusionReportOutputSchema,
  'selftest.sleep': selftestSleepOutputSchema,
  'audio.split': audioSplitOutputSchema,
  'video.split': videoSplitOutputSchema,
  'text.split': textSplitOutputSchema,
  'audio.transcribe': audioTranscribeOutputSchema,
  'text.generate': textGenerateOutputSchema,
  'image.caption': imageCaptionOutputSchema,
  'image.classify': imageClassifyOutputSchema,
  'fusion.llm': fusionLlmOutputSchema,
};

export function isBuiltinWorkerKind(kind: string): kind is BuiltinWorkerKind {
  return Object.hasOwn(schemas, kind);
}

/**
 * Parses a task's JSON output and checks it against its kind's schema.
 * Throws InvalidTaskOutputError naming the first offending field.
 */
export function parseTaskOutput<K extends BuiltinWorkerKind>(kind: K, json: string): TaskOutputs[K] {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (err) {
    throw new InvalidTaskOutputError(kind, `not JSON (${(err as Error).message})`);
  }
  const parsed = schemas[kind].safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? issue.path.join('.') : '(root)';
    throw new InvalidTaskOutputError(kind, `${where}: ${issue?.message ?? 'does not match the schema'}`);
  }
  return parsed.data;
}
