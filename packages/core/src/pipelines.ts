import type { Modality } from './modality.js';

export interface PipelineInfo {
  readonly name: string;
  readonly description: string;
  /** Modalities of input the pipeline accepts. */
  readonly modalities: readonly Modality[];
  /** The steps, in order, for people (`mmgrid pipelines`). */
  readonly steps: readonly string[];
}

export const DEFAULT_PIPELINE = 'describe';

const pipelines: readonly PipelineInfo[] = [
  {
    name: 'describe',
    description: 'analyses every input by its modality, then fuses the findings with the prompt into one report',
    modalities: ['image', 'audio', 'text'],
    steps: [
      'image: image.ocr (text in the image) and image.inspect (size, colours, thumbnail)',
      'audio: audio.analyze (duration, loudness, speech/silence)',
      'text and the prompt: text.stats',
      'fusion.report over all of the above',
      'job.assemble (in the coordinator)',
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
