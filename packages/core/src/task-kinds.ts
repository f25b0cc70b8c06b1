import type { Modality } from './modality.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from './retry-policy.js';

/** Where a kind runs: on a worker over gRPC, or inside the coordinator (assembly). */
export type TaskPlacement = 'worker' | 'coordinator';

/**
 * What a kind reads: one job input of a modality, the outputs of other steps, nothing, or
 * (owner-defined exec kinds) one job input of any modality or nothing.
 */
export type TaskInputKind = Modality | 'outputs' | 'none' | 'any';

export interface TaskKindInfo {
  readonly kind: string;
  /** The modality the task reads; undefined for steps that combine others. */
  readonly modality: Modality | undefined;
  readonly reads: TaskInputKind;
  /** Whether declared pipelines may name it (internal steps such as stitches may not). */
  readonly declarable: boolean;
  readonly placement: TaskPlacement;
  readonly description: string;
  /** A run longer than this is given up and counts as a failed attempt. */
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
}

/** The kind of the coordinator-side root of every job: it assembles the job's result. */
export const ASSEMBLE_KIND = 'job.assemble';

const kinds: readonly TaskKindInfo[] = [
  {
    kind: 'image.ocr',
    modality: 'image',
    reads: 'image',
    declarable: true,
    placement: 'worker',
    description: 'reads the text in an image (Tesseract OCR, English)',
    timeoutMs: 120_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: 'image.inspect',
    modality: 'image',
    reads: 'image',
    declarable: true,
    placement: 'worker',
    description: 'size, format and dominant colours of an image, and a thumbnail',
    timeoutMs: 60_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: 'audio.analyze',
    modality: 'audio',
    reads: 'audio',
    declarable: true,
    placement: 'worker',
    description: 'duration, sample rate, channels, loudness, and speech/silence segments of a recording',
    timeoutMs: 300_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: 'text.stats',
    modality: 'text',
    reads: 'text',
    declarable: true,
    placement: 'worker',
    description: 'language-agnostic counts of a text: words, sentences, scripts, frequent terms',
    timeoutMs: 30_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: 'fusion.report',
    modality: undefined,
    reads: 'outputs',
    declarable: true,
    placement: 'worker',
    description: "one deterministic report combining every modality's output with the prompt",
    timeoutMs: 30_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: 'selftest.sleep',
    modality: undefined,
    reads: 'none',
    declarable: true,
    placement: 'worker',
    description: 'waits the given time and succeeds (or fails on purpose): for checking and measuring a grid',
    timeoutMs: 660_000,
    retry: { ...DEFAULT_RETRY_POLICY, initialDelayMs: 200, maxDelayMs: 5_000 },
  },
  {
    kind: 'audio.transcribe',
    modality: 'audio',
    reads: 'audio',
    declarable: true,
    placement: 'worker',
    description: 'transcribes speech with word timestamps (a Whisper-compatible server on the worker)',
    timeoutMs: 600_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: 'text.generate',
    modality: 'text',
    reads: 'text',
    declarable: true,
    placement: 'worker',
    description: "answers an instruction about a text with a language model (an OpenAI-compatible chat server on the worker)",
    timeoutMs: 600_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: 'image.caption',
    modality: 'image',
    reads: 'image',
    declarable: true,
    placement: 'worker',
    description: 'describes an image, or answers a question about it, with a vision language model (an OpenAI-compatible chat server)',
    timeoutMs: 600_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: 'image.classify',
    modality: 'image',
    reads: 'image',
    declarable: true,
    placement: 'worker',
    description: 'labels an image with a classifier (ONNX Runtime in the worker, or a KServe v2 / Triton server)',
    timeoutMs: 120_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: 'fusion.llm',
    modality: undefined,
    reads: 'outputs',
    declarable: true,
    placement: 'worker',
    description: "answers the prompt from the deterministic report of every modality's findings, with a language model",
    timeoutMs: 600_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: 'audio.split',
    modality: 'audio',
    reads: 'audio',
    declarable: false,
    placement: 'worker',
    description: 'cuts a recording into overlapping windows, resampled for the backend (ffmpeg)',
    timeoutMs: 600_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: 'video.split',
    modality: 'video',
    reads: 'video',
    declarable: false,
    placement: 'worker',
    description: 'samples frames of a video at a rate and cuts its sound track into windows (ffmpeg)',
    timeoutMs: 900_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: 'text.split',
    modality: 'text',
    reads: 'text',
    declarable: false,
    placement: 'worker',
    description: 'cuts a long text into chunks on sentence boundaries',
    timeoutMs: 120_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: 'audio.stitch',
    modality: undefined,
    reads: 'outputs',
    declarable: false,
    placement: 'coordinator',
    description: "runs a recording's windows and stitches their results into one",
    timeoutMs: 120_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: 'video.stitch',
    modality: undefined,
    reads: 'outputs',
    declarable: false,
    placement: 'coordinator',
    description: "runs a video's frames and sound windows and puts their results on one timeline",
    timeoutMs: 120_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: 'text.stitch',
    modality: undefined,
    reads: 'outputs',
    declarable: false,
    placement: 'coordinator',
    description: "runs a long text's chunks and adds their statistics up",
    timeoutMs: 120_000,
    retry: DEFAULT_RETRY_POLICY,
  },
  {
    kind: ASSEMBLE_KIND,
    modality: undefined,
    reads: 'outputs',
    declarable: false,
    placement: 'coordinator',
    description: "assembles the job's result from its tasks' outputs",
    timeoutMs: 60_000,
    retry: DEFAULT_RETRY_POLICY,
  },
];

const byKind = new Map(kinds.map((k) => [k.kind, k]));

/**
 * Kinds a worker owner defines (`exec.NAME`: a command run per task). The grid knows nothing
 * of them but their name: they read one job input of any type, or none, take any parameters,
 * and return any JSON object.
 */
export const EXEC_KIND_PATTERN = /^exec\.[a-z][a-z0-9-]{0,62}$/;

function execKindInfo(kind: string): TaskKindInfo {
  return {
    kind,
    modality: undefined,
    reads: 'any',
    declarable: true,
    placement: 'worker',
    description: "a command the worker's owner set up, run once per task",
    // The worker's own timeout for the command (timeoutSec, up to a day) is the one that bites.
    timeoutMs: 24 * 3_600_000 + 60_000,
    retry: DEFAULT_RETRY_POLICY,
  };
}

/** Every built-in task kind, in a stable order. */
export function builtinTaskKinds(): readonly TaskKindInfo[] {
  return kinds;
}

export function taskKindInfo(kind: string): TaskKindInfo | undefined {
  return byKind.get(kind) ?? (EXEC_KIND_PATTERN.test(kind) ? execKindInfo(kind) : undefined);
}

/** Kind names run by workers (the ones a worker may offer). */
export function workerTaskKinds(): string[] {
  return kinds.filter((k) => k.placement === 'worker').map((k) => k.kind);
}

/** Kind names are lower-case dotted words, e.g. "image.ocr"; they name BullMQ queues. */
export const TASK_KIND_PATTERN = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/;
