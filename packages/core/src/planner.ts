import { InvalidJobSpecError, PlanError } from './errors.js';
import { PROMPT_INPUT_NAME } from './job-spec.js';
import type { JsonObject } from './json.js';
import type { Modality } from './modality.js';
import { pipelineInfo } from './pipelines.js';
import { ASSEMBLE_KIND, taskKindInfo } from './task-kinds.js';
import { NO_REQUIREMENTS, validateTaskGraph, type TaskGraph, type TaskNode, type TaskRequirements } from './task-graph.js';

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
  /** Pipeline parameters as given in the job spec. */
  readonly params?: Readonly<Record<string, string>>;
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
  const graph = pipeline.name === 'selftest' ? planSelftest(request) : planDescribe(request);
  validateTaskGraph(graph);
  return graph;
}

type AddTask = (
  kind: string,
  inputNames: string[],
  params: JsonObject,
  dependsOn: string[],
  optional: boolean,
  extra?: { requirements?: TaskRequirements; timeoutMs?: number },
) => string;

function builder(): { tasks: TaskNode[]; add: AddTask } {
  const tasks: TaskNode[] = [];
  const add: AddTask = (kind, inputNames, params, dependsOn, optional, extra = {}) => {
    const id = `t${tasks.length + 1}`;
    tasks.push({
      id,
      kind,
      inputNames,
      params,
      dependsOn,
      optional,
      requirements: extra.requirements ?? NO_REQUIREMENTS,
      timeoutMs: extra.timeoutMs ?? taskKindInfo(kind)?.timeoutMs ?? 60_000,
    });
    return id;
  };
  return { tasks, add };
}

function planDescribe(request: PlanRequest): TaskGraph {
  const { tasks, add } = builder();
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
  return { pipeline: 'describe', rootId: root, tasks };
}

const MiB = 1024 * 1024;

/** Reads an integer parameter in [min, max]; names the parameter when it is not one. */
function intParam(params: Readonly<Record<string, string>>, name: string, fallback: number, min: number, max: number): number {
  const raw = params[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidJobSpecError(`params.${name}`, `must be a whole number from ${min} to ${max} (got "${raw}")`);
  }
  return value;
}

/** selftest: N sleep tasks with the given requirements, all feeding the assembly. */
function planSelftest(request: PlanRequest): TaskGraph {
  const params = request.params ?? {};
  const count = intParam(params, 'tasks', 1, 1, 10_000);
  const taskMs = intParam(params, 'taskMs', 100, 0, 600_000);
  const failAttempts = intParam(params, 'failAttempts', 0, 0, 100);
  const minVramMiB = intParam(params, 'minVramMiB', 0, 0, 16 * 1024 * 1024);
  const capability = params['minComputeCapability'] ?? '';
  if (capability !== '' && !/^\d{1,2}\.\d$/.test(capability)) {
    throw new InvalidJobSpecError('params.minComputeCapability', `must look like 8.0 (got "${capability}")`);
  }
  const gpu = params['gpu'] ?? 'false';
  if (gpu !== 'true' && gpu !== 'false') throw new InvalidJobSpecError('params.gpu', `must be true or false (got "${gpu}")`);
  const requirements: TaskRequirements = {
    model: params['model'] ?? '',
    minVramBytes: minVramMiB * MiB,
    minComputeCapability: capability,
    cpuAllowed: gpu !== 'true' && minVramMiB === 0 && capability === '',
  };
  const { tasks, add } = builder();
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(add('selftest.sleep', [], { ms: taskMs, failAttempts, index: i }, [], true, { requirements, timeoutMs: taskMs + 60_000 }));
  }
  const root = add(ASSEMBLE_KIND, [], {}, ids, false);
  return { pipeline: 'selftest', rootId: root, tasks };
}
