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

const pipelines: readonly PipelineInfo[] = [
  {
    name: 'describe',
    description: 'analyses every input by its modality, then fuses the findings with the prompt into one report',
    modalities: ['image', 'audio', 'text'],
    needsInput: true,
    params: [],
    steps: [
      'image: image.ocr (text in the image) and image.inspect (size, colours, thumbnail)',
      'audio: audio.analyze (duration, loudness, speech/silence)',
      'text and the prompt: text.stats',
      'fusion.report over all of the above',
      'job.assemble (in the coordinator)',
    ],
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
