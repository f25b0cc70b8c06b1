import { z } from 'zod';
import { InvalidJobSpecError } from './errors.js';
import type { JsonObject } from './json.js';
import type { Modality } from './modality.js';
import { DEFAULT_SHARDING } from './sharding.js';
import { checkTaskParams } from './task-params.js';
import { taskKindInfo, builtinTaskKinds } from './task-kinds.js';
import type { TaskRequirements } from './task-graph.js';

/** Step ids: lower-case letters, digits and "_", starting with a letter. */
export const STEP_ID_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

const GiB = 1024 ** 3;

const jsonValue: z.ZodType<unknown> = z.lazy(() => z.union([z.string(), z.number(), z.boolean(), z.null(), z.array(jsonValue), z.record(z.string(), jsonValue)]));

const shardOptions = z
  .object({
    windowSec: z.number().min(1).max(3600).optional(),
    overlapSec: z.number().min(0).max(600).optional(),
    chunkChars: z.number().int().min(100).max(1_000_000).optional(),
  })
  .strict();

/** One step of a declared pipeline, as written in a job file (`steps:` in YAML). */
export const declaredStepSchema = z
  .object({
    kind: z.string().min(1, 'must name a task kind'),
    /** The job input the step reads (for kinds that read an image, recording or text). */
    input: z.string().min(1).optional(),
    /** The steps whose outputs the step reads (for kinds that combine outputs). */
    from: z.array(z.string().min(1)).min(1, 'must name at least one step').optional(),
    params: z.record(z.string(), jsonValue).default({}),
    requires: z
      .object({
        model: z.string().min(1).max(256).optional(),
        vramGiB: z.number().positive().max(4096).optional(),
        computeCapability: z
          .string()
          .regex(/^\d{1,2}\.\d{1,2}$/, 'must look like 8.0')
          .optional(),
        gpu: z.boolean().optional(),
      })
      .strict()
      .default({}),
    /**
     * The step may fail without failing the job: its failure makes the result partial. The
     * job fails only when every optional step failed and the job has no required steps (a
     * failed required step always fails it).
     */
    optional: z.boolean().default(false),
    /** Cut the input into shards run in parallel (recordings into windows, long texts into chunks). */
    shard: z.union([z.boolean(), shardOptions]).optional(),
  })
  .strict();

export const declaredStepsSchema = z.record(z.string(), declaredStepSchema);

export type DeclaredStep = z.infer<typeof declaredStepSchema>;
export type DeclaredSteps = Readonly<Record<string, DeclaredStep>>;

/** A validated step, ready for the planner. */
export interface CheckedStep {
  readonly id: string;
  readonly kind: string;
  readonly input: string | undefined;
  readonly from: readonly string[];
  readonly params: JsonObject;
  readonly requirements: TaskRequirements;
  readonly optional: boolean;
  readonly shard: { readonly windowSec?: number | undefined; readonly overlapSec?: number | undefined; readonly chunkChars?: number | undefined } | undefined;
}

function fail(path: string, message: string): never {
  throw new InvalidJobSpecError(path, message);
}

function zodPath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
}

/**
 * Checks a declared pipeline against the job's inputs (name → detected modality, or
 * undefined before detection): every kind known, every reference resolved, inputs of the
 * right type, no cycles, each step feeding at most one other. Throws InvalidJobSpecError
 * whose path names the step and field (`steps.ocr.input`), so a job file's line can be found.
 */
export function checkDeclaredSteps(raw: unknown, inputs: ReadonlyMap<string, Modality | undefined>): CheckedStep[] {
  const parsed = declaredStepsSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = `steps${zodPath(issue?.path ?? [])}`;
    if (issue?.code === 'unrecognized_keys') {
      const where = issue.path[issue.path.length - 1];
      const takes = where === 'requires' ? 'requires takes model, vramGiB, computeCapability, gpu' : where === 'shard' ? 'shard takes windowSec, overlapSec, chunkChars' : 'a step takes kind, input, from, params, requires, optional, shard';
      fail(path, `has no field ${issue.keys.map((k) => `"${k}"`).join(', ')}; ${takes}`);
    }
    if (issue?.code === 'invalid_union' && issue.path[issue.path.length - 1] === 'shard') {
      // `shard` is true/false or an object: report what is wrong inside the object, if it is one.
      const inner = shardOptions.safeParse((raw as Record<string, Record<string, unknown>>)[String(issue.path[0])]?.['shard']);
      const innerIssue = inner.success ? undefined : inner.error.issues[0];
      if (innerIssue && innerIssue.code !== 'invalid_type') fail(`${path}${zodPath(innerIssue.path)}`, innerIssue.message);
      fail(path, 'must be true, false or { windowSec, overlapSec, chunkChars }');
    }
    fail(path, issue?.message ?? 'is not a list of steps');
  }
  const steps = parsed.data;
  const ids = Object.keys(steps);
  if (ids.length === 0) fail('steps', 'a declared pipeline needs at least one step');
  const declarable = builtinTaskKinds()
    .filter((k) => k.declarable)
    .map((k) => k.kind);
  const checked: CheckedStep[] = [];
  const consumerOf = new Map<string, string>();
  for (const id of ids) {
    const step = steps[id];
    if (!step) continue;
    const at = `steps.${id}`;
    if (!STEP_ID_PATTERN.test(id)) fail(at, 'step names are lower-case letters, digits and "_", starting with a letter');
    const info = taskKindInfo(step.kind);
    if (!info || !info.declarable) fail(`${at}.kind`, `unknown kind "${step.kind}"; kinds: ${declarable.join(', ')}, or exec.NAME for a command a worker's owner set up`);
    if (step.shard !== undefined && step.shard !== false && step.kind !== 'audio.analyze' && step.kind !== 'audio.transcribe' && step.kind !== 'text.stats') {
      fail(`${at}.shard`, `${step.kind} cannot be sharded; audio.analyze, audio.transcribe and text.stats can`);
    }
    if (typeof step.shard === 'object') {
      const windowSec = step.shard.windowSec ?? DEFAULT_SHARDING.windowSec;
      if (step.shard.overlapSec !== undefined && step.shard.overlapSec >= windowSec) {
        fail(`${at}.shard.overlapSec`, `must be shorter than windowSec (${windowSec} s)`);
      }
    }
    const reads = info.reads;
    if (reads === 'outputs') {
      if (step.input !== undefined) fail(`${at}.input`, `${step.kind} reads the outputs of other steps (use from:), not a job input`);
      if (!step.from) fail(`${at}.from`, `${step.kind} reads the outputs of other steps: name them in from:`);
    } else if (reads === 'none') {
      if (step.input !== undefined || step.from !== undefined) fail(at, `${step.kind} reads nothing: give it neither input nor from`);
    } else if (reads === 'any') {
      if (step.from !== undefined) fail(`${at}.from`, `${step.kind} reads a job input (use input:) or nothing, not other steps' outputs`);
      if (step.input !== undefined && !inputs.has(step.input)) fail(`${at}.input`, `no job input is named "${step.input}"; inputs: ${[...inputs.keys()].join(', ') || 'none'}`);
    } else {
      if (step.from !== undefined) fail(`${at}.from`, `${step.kind} reads a job input (use input:), not other steps' outputs`);
      if (step.input === undefined) fail(`${at}.input`, `${step.kind} reads ${article(reads)}: name the job input in input:`);
      if (!inputs.has(step.input)) fail(`${at}.input`, `no job input is named "${step.input}"; inputs: ${[...inputs.keys()].join(', ') || 'none'}`);
      const modality = inputs.get(step.input);
      if (modality !== undefined && modality !== reads) fail(`${at}.input`, `${step.kind} reads ${article(reads)}, but "${step.input}" is ${article(modality)}`);
    }
    for (const [i, dep] of (step.from ?? []).entries()) {
      if (!steps[dep]) fail(`${at}.from[${i}]`, `no step is named "${dep}"; steps: ${ids.join(', ')}`);
      if (dep === id) fail(`${at}.from[${i}]`, 'a step cannot read its own output');
      if ((step.from ?? []).indexOf(dep) !== i) fail(`${at}.from[${i}]`, `"${dep}" is named twice`);
      const other = consumerOf.get(dep);
      if (other !== undefined && other !== id) fail(`${at}.from[${i}]`, `step "${dep}" already feeds "${other}"; a step's output goes to one step (declare the step twice to use it twice)`);
      consumerOf.set(dep, id);
    }
    const paramProblem = checkTaskParams(step.kind, step.params);
    if (paramProblem !== '') fail(`${at}.params`, `${step.kind} ${paramProblem}`);
    const r = step.requires;
    checked.push({
      id,
      kind: step.kind,
      input: step.input,
      from: step.from ?? [],
      params: step.params as JsonObject,
      requirements: {
        model: r.model ?? '',
        minVramBytes: Math.round((r.vramGiB ?? 0) * GiB),
        minComputeCapability: r.computeCapability ?? '',
        cpuAllowed: !(r.gpu === true || r.vramGiB !== undefined || r.computeCapability !== undefined),
      },
      optional: step.optional,
      shard: step.shard === undefined || step.shard === false ? undefined : step.shard === true ? {} : step.shard,
    });
  }
  const cycle = findCycle(checked);
  if (cycle) fail(`steps.${cycle[0] ?? ''}.from`, `steps ${cycle.join(' → ')} form a cycle`);
  return checked;
}

/** A modality as messages name it: "reads an image", "is a recording", "is text". */
function article(what: string): string {
  switch (what) {
    case 'image':
      return 'an image';
    case 'audio':
      return 'a recording';
    case 'video':
      return 'a video';
    case 'text':
      return 'text';
    default:
      return /^[aeiou]/.test(what) ? `an ${what}` : `a ${what}`;
  }
}

/** A cycle through `from` references, as step ids (first repeated at the end), or undefined. */
function findCycle(steps: readonly CheckedStep[]): string[] | undefined {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (id: string): string[] | undefined => {
    if (state.get(id) === 'done') return undefined;
    if (state.get(id) === 'visiting') return [...stack.slice(stack.indexOf(id)), id];
    state.set(id, 'visiting');
    stack.push(id);
    for (const dep of byId.get(id)?.from ?? []) {
      const found = visit(dep);
      if (found) return found;
    }
    stack.pop();
    state.set(id, 'done');
    return undefined;
  };
  for (const s of steps) {
    const found = visit(s.id);
    if (found) return found;
  }
  return undefined;
}
