import { PlanError } from './errors.js';
import { PROMPT_INPUT_NAME } from './job-spec.js';
import type { JsonObject } from './json.js';
import type { Modality } from './modality.js';
import { pipelineInfo } from './pipelines.js';
import { ASSEMBLE_KIND } from './task-kinds.js';
import { NO_REQUIREMENTS, validateTaskGraph, type TaskGraph, type TaskNode } from './task-graph.js';

/** An input as the planner sees it: its modality was detected from its bytes. */
export interface PlanInput {
  readonly name: string;
  readonly modality: Modality;
  readonly mediaType: string;
}

export interface PlanRequest {
  readonly pipeline: string;
  readonly inputs: readonly PlanInput[];
  readonly prompt: string;
}

/** Parameters of the fusion step: the prompt and what each input was. */
export interface FusionParams extends JsonObject {
  prompt: string;
  inputs: { name: string; modality: Modality }[];
}

/** Turns a job into its task graph. Pure: same request, same graph. */
export function plan(request: PlanRequest): TaskGraph {
  const pipeline = pipelineInfo(request.pipeline);
  if (!pipeline) throw new PlanError(`unknown pipeline "${request.pipeline}"`);
  for (const input of request.inputs) {
    if (!pipeline.modalities.includes(input.modality)) {
      throw new PlanError(
        `input "${input.name}" is ${input.modality} (${input.mediaType}); the ${pipeline.name} pipeline takes ${pipeline.modalities.join(', ')}`,
      );
    }
  }
  return planDescribe(request);
}

function planDescribe(request: PlanRequest): TaskGraph {
  const tasks: TaskNode[] = [];
  const add = (kind: string, inputNames: string[], params: JsonObject, dependsOn: string[], optional: boolean): string => {
    const id = `t${tasks.length + 1}`;
    tasks.push({ id, kind, inputNames, params, dependsOn, optional, requirements: NO_REQUIREMENTS });
    return id;
  };
  const modalityTasks: string[] = [];
  for (const input of request.inputs) {
    switch (input.modality) {
      case 'image':
        modalityTasks.push(add('image.ocr', [input.name], { language: 'eng' }, [], true));
        modalityTasks.push(add('image.inspect', [input.name], { thumbnailMaxPx: 256, colours: 5 }, [], true));
        break;
      case 'audio':
        modalityTasks.push(add('audio.analyze', [input.name], { frameMs: 20 }, [], true));
        break;
      case 'text':
        modalityTasks.push(add('text.stats', [input.name], { source: 'input' }, [], true));
        break;
      case 'video':
        throw new PlanError(`input "${input.name}" is video, which the describe pipeline does not take`);
    }
  }
  if (request.prompt.trim() !== '') {
    modalityTasks.push(add('text.stats', [PROMPT_INPUT_NAME], { source: 'prompt' }, [], true));
  }
  if (modalityTasks.length === 0) throw new PlanError('the job has nothing to analyse');
  const fusionParams: FusionParams = {
    prompt: request.prompt,
    inputs: request.inputs.map((i) => ({ name: i.name, modality: i.modality })),
  };
  const fusion = add('fusion.report', [], fusionParams, modalityTasks, false);
  const root = add(ASSEMBLE_KIND, [], {}, [fusion], false);
  const graph: TaskGraph = { pipeline: 'describe', rootId: root, tasks };
  validateTaskGraph(graph);
  return graph;
}
