import type { Modality } from './modality.js';

export interface PipelineParam {
  readonly name: string;
  readonly description: string;
  /** The value used when the job does not give one. */
  readonly default: string;
}

export interface PipelineInfo {
  readonly name: string;
  readonly description: string;
  /** Modalities of input the pipeline accepts. */
  readonly modalities: readonly Modality[];
  /** False for pipelines that run without inputs (selftest). */
  readonly needsInput: boolean;
  /** The steps, in order, for people (`mmgrid pipelines`). */
  readonly steps: readonly string[];
  readonly params: readonly PipelineParam[];
}

export const DEFAULT_PIPELINE = 'describe';

const shardParams: readonly PipelineParam[] = [
  { name: 'windowSec', description: 'length of the windows a recording is cut into, in seconds', default: '30' },
  { name: 'overlapSec', description: 'overlap between consecutive windows, in seconds', default: '2' },
];

const frameParams: readonly PipelineParam[] = [
  { name: 'fps', description: 'video frames sampled per second', default: '1' },
  { name: 'maxFrames', description: 'most frames sampled from one video (spread evenly when more would be)', default: '600' },
];

const pipelines: readonly PipelineInfo[] = [
  {
    name: 'describe',
    description: 'analyses every input by its modality, then fuses the findings with the prompt into one report',
    modalities: ['image', 'audio', 'video', 'text'],
    needsInput: true,
    params: [
      ...shardParams,
      ...frameParams,
      { name: 'chunkChars', description: 'longest chunk a long text is cut into (on sentence boundaries)', default: '4000' },
    ],
    steps: [
      'image: image.ocr (text in the image) and image.inspect (size, colours, thumbnail)',
      'audio: audio.analyze; a recording longer than one window is split into overlapping windows (audio.split), analysed window by window and stitched (audio.stitch)',
      'video: frames sampled and the sound track windowed (video.split), image.ocr per frame and audio.analyze per window, on one timeline (video.stitch)',
      'text and the prompt: text.stats (a long text in chunks: text.split, text.stitch)',
      'fusion.report over all of the above',
      'fusion.llm: a language model answers the prompt from the report (when a worker offers it)',
      'job.assemble (in the coordinator)',
    ],
  },
  {
    name: 'transcribe',
    description: 'transcribes recordings window by window and stitches one transcript (with SRT and WebVTT subtitles)',
    modalities: ['audio'],
    needsInput: true,
    params: [...shardParams],
    steps: [
      'audio.split: overlapping windows, resampled to 16 kHz mono',
      'audio.transcribe per window (needs a worker started with --transcribe-url: a speech-to-text server with the OpenAI transcription API)',
      'audio.stitch: words kept once at the seams, subtitles',
      'job.assemble (in the coordinator)',
    ],
  },
  {
    name: 'ocr',
    description: 'reads the text in images, and in frames sampled from videos',
    modalities: ['image', 'video'],
    needsInput: true,
    params: [...frameParams],
    steps: ['image: image.ocr', 'video: frames sampled (video.split), image.ocr per frame, on a timeline (video.stitch)', 'job.assemble (in the coordinator)'],
  },
  {
    name: 'video-summary',
    description: 'what videos show and what is heard in them, on one timeline, fused with the prompt',
    modalities: ['video'],
    needsInput: true,
    params: [...shardParams, ...frameParams],
    steps: [
      'video.split: frames at a rate, the sound track in windows',
      'image.ocr per frame, audio.analyze per window',
      'video.stitch: one timeline, frame text as WebVTT',
      'fusion.report with the prompt',
      'fusion.llm: a language model answers the prompt from the report (when a worker offers it)',
      'job.assemble (in the coordinator)',
    ],
  },
  {
    name: 'declared',
    description: 'the steps a job file declares (mmgrid submit -f job.yaml; see docs/job-files.md)',
    modalities: ['image', 'audio', 'video', 'text'],
    needsInput: false,
    params: [],
    steps: ['as declared in the job file', 'job.assemble (in the coordinator)'],
  },
  {
    name: 'selftest',
    description: 'checks a grid dispatches and runs work: tasks that each wait a given time on a worker, with the requirements you give',
    modalities: [],
    needsInput: false,
    steps: ['selftest.sleep × tasks', 'job.assemble (in the coordinator)'],
    params: [
      { name: 'tasks', description: 'how many tasks, 1 to 10,000', default: '1' },
      { name: 'taskMs', description: 'how long each task waits, 0 to 600,000 ms', default: '100' },
      { name: 'failAttempts', description: 'each task fails (retryably) on its first N attempts, 0 to 100', default: '0' },
      { name: 'model', description: 'a model the worker must serve', default: '' },
      { name: 'minVramMiB', description: 'free GPU memory the worker must have, in MiB', default: '0' },
      { name: 'minComputeCapability', description: 'minimum CUDA compute capability, e.g. 8.0', default: '' },
      { name: 'gpu', description: '"true": the task needs a GPU', default: 'false' },
    ],
  },
];

export function pipelineNames(): string[] {
  return pipelines.map((p) => p.name);
}

export function pipelineInfo(name: string): PipelineInfo | undefined {
  return pipelines.find((p) => p.name === name);
}

export function builtinPipelines(): readonly PipelineInfo[] {
  return pipelines;
}
