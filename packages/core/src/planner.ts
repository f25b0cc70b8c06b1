import { checkDeclaredSteps, type CheckedStep } from './declared-pipeline.js';
import { InvalidJobSpecError, PlanError } from './errors.js';
import { PROMPT_INPUT_NAME } from './job-spec.js';
import type { JsonObject } from './json.js';
import type { Modality } from './modality.js';
import { pipelineInfo } from './pipelines.js';
import { DEFAULT_SHARDING, type ShardSettings } from './sharding.js';
import { ASSEMBLE_KIND, taskKindInfo } from './task-kinds.js';
import { NO_REQUIREMENTS, validateTaskGraph, type TaskGraph, type TaskNode, type TaskRequirements } from './task-graph.js';

/** An input as the planner sees it: its modality was detected from its bytes. */
export interface PlanInput {
  readonly name: string;
  readonly modality: Modality;
  readonly mediaType: string;
  /** Length of a recording or video, when the coordinator could probe it. */
  readonly durationSec?: number | undefined;
  /** Size in bytes (a long text is split into chunks). */
  readonly bytes?: number | undefined;
}

export interface PlanRequest {
  readonly pipeline: string;
  readonly inputs: readonly PlanInput[];
  readonly prompt: string;
  /** Pipeline parameters as given in the job spec. */
  readonly params?: Readonly<Record<string, string>>;
  /** The steps of a declared pipeline (job file `steps:`), unchecked. */
  readonly steps?: unknown;
  /**
   * Task kinds some connected worker offers now. With `fusion.llm` among them, pipelines that
   * fuse also ask a language model to answer the prompt from the deterministic report.
   */
  readonly offered?: ReadonlySet<string>;
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
  if (pipeline.name !== 'declared') {
    for (const input of request.inputs) {
      if (!pipeline.modalities.includes(input.modality)) {
        throw new PlanError(
          `input "${input.name}" is ${input.modality} (${input.mediaType}); the ${pipeline.name} pipeline takes ${pipeline.modalities.length > 0 ? pipeline.modalities.join(', ') : 'no inputs'}`,
        );
      }
    }
  }
  const graph = planners[pipeline.name]?.(request);
  if (!graph) throw new PlanError(`the ${pipeline.name} pipeline has no planner`);
  validateTaskGraph(graph);
  return graph;
}

type Extra = { requirements?: TaskRequirements; timeoutMs?: number; intermediate?: boolean; label?: string };

type AddTask = (kind: string, inputNames: string[], params: JsonObject, dependsOn: string[], optional: boolean, extra?: Extra) => string;

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
      ...(extra.intermediate ? { intermediate: true } : {}),
      ...(extra.label !== undefined ? { label: extra.label } : {}),
    });
    return id;
  };
  return { tasks, add };
}

/** Reads a number parameter in [min, max]; names the parameter when it is not one. */
function numParam(params: Readonly<Record<string, string>>, name: string, fallback: number, min: number, max: number, integer = true): number {
  const raw = params[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
    throw new InvalidJobSpecError(`params.${name}`, `must be a ${integer ? 'whole ' : ''}number from ${min} to ${max} (got "${raw}")`);
  }
  return value;
}

function shardSettings(params: Readonly<Record<string, string>> = {}): ShardSettings {
  const windowSec = numParam(params, 'windowSec', DEFAULT_SHARDING.windowSec, 1, 3600, false);
  const overlapSec = numParam(params, 'overlapSec', DEFAULT_SHARDING.overlapSec, 0, 600, false);
  if (overlapSec >= windowSec) throw new InvalidJobSpecError('params.overlapSec', `must be shorter than windowSec (${windowSec} s)`);
  return {
    windowSec,
    overlapSec,
    sampleRate: DEFAULT_SHARDING.sampleRate,
    fps: numParam(params, 'fps', DEFAULT_SHARDING.fps, 0.01, 30, false),
    maxFrames: numParam(params, 'maxFrames', DEFAULT_SHARDING.maxFrames, 1, 10_000),
    frameMaxPx: DEFAULT_SHARDING.frameMaxPx,
    chunkChars: numParam(params, 'chunkChars', DEFAULT_SHARDING.chunkChars, 100, 1_000_000),
  };
}

/**
 * The task(s) for a recording: one task when it is known to fit in one window, otherwise a
 * split on a worker and a stitch in the coordinator that runs `shardKind` on every window
 * (the number of windows is known only once the split has probed the file). Returns the
 * task whose output stands for the recording.
 */
function audioTasks(
  add: AddTask,
  input: PlanInput,
  shardKind: string,
  s: ShardSettings,
  optional: boolean,
  extra: Extra = {},
  forceShard = false,
  params: JsonObject = {},
): string {
  const shardParams: JsonObject = shardKind === 'audio.analyze' ? { frameMs: 20, ...params } : { ...params };
  if (!forceShard && input.durationSec !== undefined && input.durationSec <= s.windowSec) {
    return add(shardKind, [input.name], shardParams, [], optional, extra);
  }
  const split = add('audio.split', [input.name], { windowSec: s.windowSec, overlapSec: s.overlapSec, sampleRate: s.sampleRate }, [], optional, {
    intermediate: true,
  });
  return add(
    'audio.stitch',
    [input.name],
    {
      shardKind,
      outputAs: shardKind,
      shardParams,
      shardRequirements: shardRequirements(extra.requirements),
      windowSec: s.windowSec,
      overlapSec: s.overlapSec,
    },
    [split],
    optional,
    extra.label !== undefined ? { label: extra.label } : {},
  );
}

/** A stitch runs in the coordinator; what its shards need from a worker travels in its parameters. */
function shardRequirements(r: TaskRequirements = NO_REQUIREMENTS): JsonObject {
  return { model: r.model, minVramBytes: r.minVramBytes, minComputeCapability: r.minComputeCapability, cpuAllowed: r.cpuAllowed };
}

/** The tasks for a video: a split (frames + sound windows) and a stitch that puts them on one timeline. */
function videoTasks(add: AddTask, input: PlanInput, s: ShardSettings, frameKind: string | null, audioKind: string | null, optional: boolean): string {
  const split = add(
    'video.split',
    [input.name],
    {
      fps: frameKind ? s.fps : 0,
      maxFrames: frameKind ? s.maxFrames : 0,
      frameMaxPx: s.frameMaxPx,
      audio: audioKind !== null,
      windowSec: s.windowSec,
      overlapSec: s.overlapSec,
      sampleRate: s.sampleRate,
    },
    [],
    optional,
    { intermediate: true },
  );
  return add(
    'video.stitch',
    [input.name],
    { frameKind, audioKind, fps: s.fps, windowSec: s.windowSec, overlapSec: s.overlapSec, outputAs: 'video.stitch' },
    [split],
    optional,
  );
}

/** The task(s) for a text: one, or a split and a stitch for a long one. */
function textTasks(add: AddTask, input: PlanInput, s: ShardSettings, optional: boolean, source: 'input' | 'prompt', extra: Extra = {}, forceShard = false): string {
  if (!forceShard && (input.bytes === undefined || input.bytes <= s.chunkChars)) return add('text.stats', [input.name], { source }, [], optional, extra);
  const split = add('text.split', [input.name], { maxChars: s.chunkChars }, [], optional, { intermediate: true });
  return add(
    'text.stitch',
    [input.name],
    { shardKind: 'text.stats', outputAs: 'text.stats', source, shardRequirements: shardRequirements(extra.requirements) },
    [split],
    optional,
    extra.label !== undefined ? { label: extra.label } : {},
  );
}

function finish(add: AddTask, tasks: TaskNode[], pipeline: string, feeds: string[]): TaskGraph {
  const root = add(ASSEMBLE_KIND, [], {}, feeds, false);
  return { pipeline, rootId: root, tasks };
}

/**
 * The fusion of a pipeline: the deterministic report (required), and, when a worker offers a
 * language model for it, `fusion.llm` answering the prompt from that report (optional: if it
 * fails, the report stands). Returns the task that feeds the assembly.
 */
function fusion(add: AddTask, request: PlanRequest, feeds: string[]): string {
  const params: FusionParams = { prompt: request.prompt, inputs: request.inputs.map((i) => ({ name: i.name, modality: i.modality })) };
  const report = add('fusion.report', [], params, feeds, false);
  if (!request.offered?.has('fusion.llm')) return report;
  return add('fusion.llm', [], {}, [report], true);
}

function promptTask(add: AddTask, request: PlanRequest): string[] {
  return request.prompt.trim() === '' ? [] : [add('text.stats', [PROMPT_INPUT_NAME], { source: 'prompt' }, [], true)];
}

function planDescribe(request: PlanRequest): TaskGraph {
  const s = shardSettings(request.params);
  const { tasks, add } = builder();
  const modalityTasks: string[] = [];
  for (const input of request.inputs) {
    switch (input.modality) {
      case 'image':
        modalityTasks.push(add('image.ocr', [input.name], { language: 'eng' }, [], true));
        modalityTasks.push(add('image.inspect', [input.name], { thumbnailMaxPx: 256, colours: 5 }, [], true));
        break;
      case 'audio':
        modalityTasks.push(audioTasks(add, input, 'audio.analyze', s, true));
        break;
      case 'text':
        modalityTasks.push(textTasks(add, input, s, true, 'input'));
        break;
      case 'video':
        modalityTasks.push(videoTasks(add, input, s, 'image.ocr', 'audio.analyze', true));
        break;
    }
  }
  modalityTasks.push(...promptTask(add, request));
  if (modalityTasks.length === 0) throw new PlanError('the job has nothing to analyse');
  return finish(add, tasks, 'describe', [fusion(add, request, modalityTasks)]);
}

function planTranscribe(request: PlanRequest): TaskGraph {
  const s = shardSettings(request.params);
  const { tasks, add } = builder();
  const feeds = request.inputs.map((input) => audioTasks(add, input, 'audio.transcribe', s, true, {}, true));
  if (feeds.length === 0) throw new PlanError('the transcribe pipeline needs at least one recording');
  return finish(add, tasks, 'transcribe', feeds);
}

function planOcr(request: PlanRequest): TaskGraph {
  const s = shardSettings(request.params);
  const { tasks, add } = builder();
  const feeds = request.inputs.map((input) =>
    input.modality === 'video' ? videoTasks(add, input, s, 'image.ocr', null, true) : add('image.ocr', [input.name], { language: 'eng' }, [], true),
  );
  if (feeds.length === 0) throw new PlanError('the ocr pipeline needs at least one image or video');
  return finish(add, tasks, 'ocr', feeds);
}

function planVideoSummary(request: PlanRequest): TaskGraph {
  const s = shardSettings(request.params);
  const { tasks, add } = builder();
  const feeds = request.inputs.map((input) => videoTasks(add, input, s, 'image.ocr', 'audio.analyze', true));
  if (feeds.length === 0) throw new PlanError('the video-summary pipeline needs at least one video');
  feeds.push(...promptTask(add, request));
  return finish(add, tasks, 'video-summary', [fusion(add, request, feeds)]);
}

const MiB = 1024 * 1024;

/** selftest: N sleep tasks with the given requirements, all feeding the assembly. */
function planSelftest(request: PlanRequest): TaskGraph {
  const params = request.params ?? {};
  const count = numParam(params, 'tasks', 1, 1, 10_000);
  const taskMs = numParam(params, 'taskMs', 100, 0, 600_000);
  const failAttempts = numParam(params, 'failAttempts', 0, 0, 100);
  const minVramMiB = numParam(params, 'minVramMiB', 0, 0, 16 * 1024 * 1024);
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
  return finish(add, tasks, 'selftest', ids);
}

/** A declared pipeline (job file `steps:`): the steps as written, sharded where asked. */
function planDeclared(request: PlanRequest): TaskGraph {
  const inputs = new Map(request.inputs.map((i) => [i.name, i.modality] as const));
  const steps = checkDeclaredSteps(request.steps ?? {}, inputs);
  const byName = new Map(request.inputs.map((i) => [i.name, i]));
  const { tasks, add } = builder();
  const taskOf = new Map<string, string>();
  const consumed = new Set(steps.flatMap((s) => s.from));
  // Steps are added after the steps they read, so every task comes after its inputs.
  const ordered = topological(steps);
  for (const step of ordered) {
    const extra: Extra = { requirements: step.requirements, label: step.id };
    const input = step.input !== undefined ? byName.get(step.input) : undefined;
    let id: string;
    if (step.shard && input && (step.kind === 'audio.analyze' || step.kind === 'audio.transcribe')) {
      id = audioTasks(add, input, step.kind, stepSharding(step.shard), step.optional, extra, true, step.params);
    } else if (step.shard && input && step.kind === 'text.stats') {
      id = textTasks(add, input, stepSharding(step.shard), step.optional, 'input', extra, true);
    } else {
      const params: JsonObject = step.kind === 'fusion.report' ? { prompt: request.prompt, inputs: request.inputs.map((i) => ({ name: i.name, modality: i.modality })), ...step.params } : step.params;
      id = add(step.kind, input ? [input.name] : [], params, step.from.map((f) => taskOf.get(f) ?? f), step.optional, {
        ...extra,
        ...(step.kind === 'selftest.sleep' ? { timeoutMs: Number(step.params['ms'] ?? 0) + 60_000 } : {}),
      });
    }
    taskOf.set(step.id, id);
  }
  const sinks = steps.filter((s) => !consumed.has(s.id)).map((s) => taskOf.get(s.id) ?? s.id);
  return finish(add, tasks, 'declared', sinks);
}

/** Shard settings of a declared step: its own values over the defaults. */
function stepSharding(shard: NonNullable<CheckedStep['shard']>): ShardSettings {
  const windowSec = shard.windowSec ?? DEFAULT_SHARDING.windowSec;
  // checkDeclaredSteps has made sure that overlapSec < windowSec.
  const overlapSec = shard.overlapSec ?? Math.min(DEFAULT_SHARDING.overlapSec, windowSec / 2);
  return { ...DEFAULT_SHARDING, windowSec, overlapSec, chunkChars: shard.chunkChars ?? DEFAULT_SHARDING.chunkChars };
}

function topological(steps: readonly CheckedStep[]): CheckedStep[] {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const out: CheckedStep[] = [];
  const seen = new Set<string>();
  const visit = (s: CheckedStep): void => {
    if (seen.has(s.id)) return;
    seen.add(s.id);
    for (const dep of s.from) {
      const d = byId.get(dep);
      if (d) visit(d);
    }
    out.push(s);
  };
  for (const s of steps) visit(s);
  return out;
}

const planners: Readonly<Record<string, (request: PlanRequest) => TaskGraph>> = {
  describe: planDescribe,
  transcribe: planTranscribe,
  ocr: planOcr,
  'video-summary': planVideoSummary,
  selftest: planSelftest,
  declared: planDeclared,
};
