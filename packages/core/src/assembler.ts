import { z } from 'zod';
import { blobRefSchema, type BlobRef } from './blob-ref.js';
import { PROMPT_INPUT_NAME } from './job-spec.js';
import type { JsonValue } from './json.js';
import type { PlanInput } from './planner.js';
import type { TaskGraph } from './task-graph.js';
import { fusionLlmOutputSchema, fusionReportOutputSchema, type FusionReportOutput } from './task-outputs.js';

export interface TaskError {
  readonly code: string;
  readonly message: string;
}

/** How a task ended, as committed. */
export type TaskOutcome =
  | { readonly status: 'succeeded'; readonly outputJson: string }
  | { readonly status: 'failed'; readonly error: TaskError };

export interface ResultFailure {
  readonly taskId: string;
  /** The step's name, in a declared pipeline. */
  readonly step?: string;
  readonly kind: string;
  readonly input: string | null;
  readonly code: string;
  readonly message: string;
}

export interface ResultInput {
  readonly name: string;
  readonly modality: string;
  readonly mediaType: string;
  /** Outputs by task kind (or by step name, in a declared pipeline). */
  readonly outputs: Record<string, JsonValue>;
}

/** The assembled result of a job, as stored and as `mmgrid result --json` prints it. */
export interface JobResultDoc {
  readonly pipeline: string;
  readonly prompt: string;
  readonly summary: string;
  /** Fraction of the job's optional tasks (those reading inputs) whose output is in the result, 0..1. */
  readonly coverage: number;
  readonly partial: boolean;
  readonly inputs: readonly ResultInput[];
  readonly fusion: FusionReportOutput | null;
  /**
   * Outputs of declared steps that read no job input (a fusion, an exec command run without
   * an input), by step name; outputs of steps that read an input are under that input.
   */
  readonly steps: Readonly<Record<string, JsonValue>>;
  readonly failures: readonly ResultFailure[];
}

export type AssembledJob =
  | { readonly ok: true; readonly doc: JobResultDoc; readonly blobs: readonly BlobRef[] }
  | { readonly ok: false; readonly error: TaskError; readonly failures: readonly ResultFailure[] };

/**
 * Builds a job's result from its tasks' outcomes. A required task that failed (or never ran)
 * fails the job; a failed optional task makes the result partial, never silently shorter.
 * When every optional task failed the job fails too (nothing was learnt about any input),
 * except in a declared pipeline with required steps, whose outputs are then the result.
 */
export function assembleJobResult(
  graph: TaskGraph,
  inputs: readonly PlanInput[],
  prompt: string,
  outcomes: ReadonlyMap<string, TaskOutcome>,
): AssembledJob {
  const failures: ResultFailure[] = [];
  const resultInputs = new Map<string, ResultInput>();
  for (const input of inputs) {
    resultInputs.set(input.name, { name: input.name, modality: input.modality, mediaType: input.mediaType, outputs: {} });
  }
  if (prompt.trim() !== '') {
    resultInputs.set(PROMPT_INPUT_NAME, { name: 'prompt', modality: 'text', mediaType: 'text/plain', outputs: {} });
  }

  let readers = 0;
  let required = 0;
  let readersSucceeded = 0;
  /** Optional tasks with an output (a partly covered stitch counts here whole, in the coverage by its part). */
  let readersWithOutput = 0;
  /** Every optional task, and those with an output: what counts when no task reads an input (selftest). */
  let optional = 0;
  let optionalWithOutput = 0;
  let fusion: FusionReportOutput | null = null;
  let requiredFailure: TaskError | undefined;
  const blobs = new Map<string, BlobRef>();
  const steps: Record<string, JsonValue> = {};

  for (const task of graph.tasks) {
    if (task.id === graph.rootId) continue;
    // A split only feeds its stitch; the stitch stands for the input.
    if (task.intermediate) continue;
    const recorded: TaskOutcome = outcomes.get(task.id) ?? {
      status: 'failed',
      error: { code: 'NO_OUTCOME', message: 'the task ended without a recorded outcome' },
    };
    const stitched = recorded.status === 'succeeded' ? stitchedCoverage(recorded.outputJson) : undefined;
    // A stitch none of whose shards produced anything has no answer: it counts as failed.
    const outcome: TaskOutcome =
      stitched !== undefined && stitched.coverage === 0 && stitched.shards > 0
        ? { status: 'failed', error: { code: 'SHARDS_FAILED', message: `all ${stitched.shards} shards failed; the first: ${stitched.firstReason}` } }
        : recorded;
    const inputName = task.inputNames[0];
    // Coverage counts the optional tasks that read inputs; an optional step over others'
    // outputs (fusion.llm over the report) is listed when it fails but covers no input.
    const reader = task.optional && task.inputNames.length > 0;
    if (reader) readers += 1;
    if (task.optional) optional += 1;
    if (!task.optional) required += 1;
    if (outcome.status === 'failed') {
      failures.push({
        taskId: task.id,
        ...(task.label !== undefined ? { step: task.label } : {}),
        kind: task.kind,
        input: inputName === undefined ? null : inputName === PROMPT_INPUT_NAME ? 'prompt' : inputName,
        code: outcome.error.code,
        message: outcome.error.message,
      });
      if (!task.optional && requiredFailure === undefined) {
        requiredFailure = { code: outcome.error.code, message: `${task.label ? `step ${task.label} (${task.kind})` : `${task.kind} (${task.id})`} failed: ${outcome.error.message}` };
      }
      continue;
    }
    const output = JSON.parse(outcome.outputJson) as JsonValue;
    collectBlobs(output, blobs);
    // A stitch some of whose shards failed is kept, and counted for the part it covers; its
    // gaps are listed with the failures so the answer is never silently shorter.
    const covered = stitched !== undefined && stitched.coverage < 1 ? stitched.coverage : 1;
    if (covered < 1 && stitched) {
      failures.push({
        taskId: task.id,
        ...(task.label !== undefined ? { step: task.label } : {}),
        kind: task.kind,
        input: inputName === undefined ? null : inputName === PROMPT_INPUT_NAME ? 'prompt' : inputName,
        code: 'SHARDS_FAILED',
        message: `shards failed, leaving ${stitched.gaps} gap${stitched.gaps === 1 ? '' : 's'} (${Math.round(covered * 100)}% of the input covered, ${stitched.shards} shards); the first: ${stitched.firstReason}`,
      });
    }
    if (reader) {
      readersSucceeded += covered;
      readersWithOutput += 1;
    }
    if (task.optional) optionalWithOutput += 1;
    if (task.inputNames.length > 0) {
      // A declared step's output is filed under the step's name. Otherwise a stitched output is
      // filed under the kind it stands for (audio.analyze for a recording analysed in windows),
      // so results look the same however the work was cut.
      const key = task.label ?? (typeof task.params['outputAs'] === 'string' ? task.params['outputAs'] : task.kind);
      for (const name of task.inputNames) {
        const target = resultInputs.get(name);
        if (target) target.outputs[key] = output;
      }
    }
    if (task.inputNames.length === 0 && task.label !== undefined) steps[task.label] = output;
    if (task.kind === 'fusion.report') {
      fusion = fusionReportOutputSchema.parse(output);
    } else if (task.kind === 'fusion.llm') {
      // The language model's answer, over the deterministic report (which comes first).
      fusion = fusionLlmOutputSchema.parse(output);
    }
  }

  if (requiredFailure) return { ok: false, error: requiredFailure, failures };
  // Every optional task failed: there is nothing to show, unless the job declared required
  // steps (which all succeeded): their outputs are the result, partial.
  // Coverage is over the optional tasks that read inputs; in a job where none does (selftest,
  // declared steps over no input), over all the optional tasks.
  const [counted, countedOk, countedWithOutput] = readers > 0 ? [readers, readersSucceeded, readersWithOutput] : [optional, optionalWithOutput, optionalWithOutput];
  if (counted > 0 && countedOk === 0 && !(graph.pipeline === 'declared' && required > 0)) {
    const first = failures[0];
    return {
      ok: false,
      error: {
        code: first?.code ?? 'TASK_FAILED',
        message: `every task failed${first ? `; the first: ${first.step !== undefined ? `step ${first.step} (${first.kind})` : `${first.kind} (${first.taskId})`}: ${first.message}` : ''}`,
      },
      failures,
    };
  }
  const coverage = counted === 0 ? 1 : countedOk / counted;
  const doc: JobResultDoc = {
    pipeline: graph.pipeline,
    prompt,
    summary: fusion?.summary ?? `${countedWithOutput} of ${counted} tasks succeeded${failures.length > 0 ? `; ${failures.length} failed` : ''}.`,
    coverage,
    partial: failures.length > 0,
    inputs: [...resultInputs.values()],
    fusion,
    steps,
    failures,
  };
  return { ok: true, doc, blobs: [...blobs.values()] };
}

/** Finds blob references anywhere in an output, so the result lists every blob it mentions. */
function collectBlobs(value: JsonValue, into: Map<string, BlobRef>): void {
  if (Array.isArray(value)) {
    for (const v of value) collectBlobs(v, into);
    return;
  }
  if (value === null || typeof value !== 'object') return;
  if (typeof value['sha256'] === 'string') {
    const ref = blobRefSchema.safeParse(value);
    if (ref.success) into.set(ref.data.sha256, ref.data);
  }
  for (const v of Object.values(value)) collectBlobs(v, into);
}

const stitchedSummarySchema = z.object({
  coverage: z.number().min(0).max(1),
  /** audio.stitch and text.stitch count their shards; video.stitch has frames and sound windows. */
  shards: z.number().int().nonnegative().optional(),
  frames: z.array(z.unknown()).optional(),
  speech: z.object({ shards: z.number().int().nonnegative() }).nullable().optional(),
  gaps: z.array(z.object({ reason: z.string() })),
});

/**
 * How much of its input a stitched output covers (outputs of audio.stitch, video.stitch,
 * text.stitch carry coverage, shards and gaps); undefined for any other output.
 */
function stitchedCoverage(outputJson: string): { coverage: number; shards: number; gaps: number; firstReason: string } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(outputJson);
  } catch {
    return undefined;
  }
  const summary = stitchedSummarySchema.safeParse(parsed);
  if (!summary.success) return undefined;
  const { coverage, gaps } = summary.data;
  const shards = summary.data.shards ?? (summary.data.frames?.length ?? 0) + (summary.data.speech?.shards ?? 0);
  return {
    coverage,
    shards,
    gaps: gaps.length,
    firstReason: gaps[0]?.reason ?? 'no reason given',
  };
}
