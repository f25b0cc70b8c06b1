import { z } from 'zod';
import { blobRefSchema, type BlobRef } from './blob-ref.js';
import { InvalidJobSpecError } from './errors.js';
import { checkDeclaredSteps } from './declared-pipeline.js';
import { DEFAULT_PIPELINE, pipelineInfo, pipelineNames } from './pipelines.js';

/** Bounds on what one job may ask for. */
export interface JobLimits {
  readonly maxInputs: number;
  readonly maxPromptChars: number;
  readonly maxInlineTextChars: number;
  readonly maxLabels: number;
  readonly maxLabelChars: number;
}

export const DEFAULT_JOB_LIMITS: JobLimits = {
  maxInputs: 1_000,
  maxPromptChars: 32_768,
  maxInlineTextChars: 1_000_000,
  maxLabels: 32,
  maxLabelChars: 256,
};

/** Reserved input name under which the prompt is analysed as text. User inputs may not start with "@". */
export const PROMPT_INPUT_NAME = '@prompt';

export type JobInputSource = { readonly type: 'blob'; readonly blob: BlobRef } | { readonly type: 'text'; readonly text: string };

export interface JobInputSpec {
  readonly name: string;
  readonly source: JobInputSource;
}

/** A validated job: what the submitter asked for, before the planner looks at it. */
export interface JobSpec {
  readonly inputs: readonly JobInputSpec[];
  readonly prompt: string;
  readonly pipeline: string;
  /** -10..10; higher runs sooner among the same tenant's work. */
  readonly priority: number;
  readonly labels: Readonly<Record<string, string>>;
  /** Pipeline parameters; each pipeline checks its own (see pipelines.ts). */
  readonly params: Readonly<Record<string, string>>;
  /** The steps of a declared pipeline (see declared-pipeline.ts); absent otherwise. */
  readonly steps?: unknown;
}

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

function schemaFor(limits: JobLimits) {
  const inputName = z
    .string()
    .min(1, 'must not be empty')
    .max(255, 'must be at most 255 characters')
    .refine((s) => !CONTROL_CHARS.test(s), 'must not contain control characters')
    .refine((s) => !s.startsWith('@'), 'must not start with "@" (reserved)');
  const source = z.discriminatedUnion('type', [
    z.object({ type: z.literal('blob'), blob: blobRefSchema }),
    z.object({
      type: z.literal('text'),
      text: z
        .string()
        .min(1, 'must not be empty')
        .max(limits.maxInlineTextChars, `must be at most ${limits.maxInlineTextChars} characters`),
    }),
  ]);
  return z.object({
    inputs: z
      .array(z.object({ name: inputName, source }))
      .max(limits.maxInputs, `a job takes at most ${limits.maxInputs} inputs`),
    prompt: z.string().max(limits.maxPromptChars, `must be at most ${limits.maxPromptChars} characters`).default(''),
    pipeline: z
      .string()
      .default('')
      .transform((p) => (p === '' ? DEFAULT_PIPELINE : p))
      .refine((p) => pipelineNames().includes(p), {
        message: `must be one of: ${pipelineNames().join(', ')}`,
      }),
    priority: z.number().int('must be a whole number').min(-10, 'must be from -10 to 10').max(10, 'must be from -10 to 10').default(0),
    labels: z
      .record(
        z.string().min(1).max(limits.maxLabelChars, `label names must be at most ${limits.maxLabelChars} characters`),
        z.string().max(limits.maxLabelChars, `label values must be at most ${limits.maxLabelChars} characters`),
      )
      .default({})
      .refine((l) => Object.keys(l).length <= limits.maxLabels, `a job takes at most ${limits.maxLabels} labels`),
    params: z
      .record(
        z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/, 'parameter names are letters, digits, "_", "." or "-", starting with a letter'),
        z.string().max(limits.maxLabelChars, `parameter values must be at most ${limits.maxLabelChars} characters`),
      )
      .default({})
      .refine((p) => Object.keys(p).length <= limits.maxLabels, `a job takes at most ${limits.maxLabels} parameters`),
    steps: z.unknown().optional(),
  });
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out;
}

/**
 * Validates a job spec once, at the edge. Throws InvalidJobSpecError with the path of the
 * first problem and what is allowed there.
 */
export function validateJobSpec(raw: unknown, limits: JobLimits = DEFAULT_JOB_LIMITS): JobSpec {
  const parsed = schemaFor(limits).safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidJobSpecError(issue ? formatPath(issue.path) : '', issue?.message ?? 'is not a job spec');
  }
  const spec = parsed.data;
  const seen = new Map<string, number>();
  spec.inputs.forEach((input, i) => {
    const first = seen.get(input.name);
    if (first !== undefined) {
      throw new InvalidJobSpecError(`inputs[${i}].name`, `"${input.name}" is already the name of inputs[${first}]; input names must be unique`);
    }
    seen.set(input.name, i);
  });
  if (spec.steps !== undefined) {
    // A job with steps is a declared pipeline; they are checked as far as they can be before
    // the inputs' types are known (the planner checks the types).
    if (spec.pipeline !== DEFAULT_PIPELINE && spec.pipeline !== 'declared') {
      throw new InvalidJobSpecError('pipeline', `a job with steps is a declared pipeline; leave pipeline out (got "${spec.pipeline}")`);
    }
    spec.pipeline = 'declared';
    checkDeclaredSteps(spec.steps, new Map(spec.inputs.map((i) => [i.name, undefined])));
  } else if (spec.pipeline === 'declared') {
    throw new InvalidJobSpecError('steps', 'the declared pipeline needs steps');
  }
  const pipeline = pipelineInfo(spec.pipeline);
  if (pipeline?.needsInput !== false && spec.inputs.length === 0 && spec.prompt.trim() === '') {
    throw new InvalidJobSpecError('', 'the job is empty: give at least one input (an image, a recording, a text) or a prompt');
  }
  for (const name of Object.keys(spec.params)) {
    if (!pipeline?.params.some((p) => p.name === name)) {
      const known = pipeline?.params.map((p) => p.name) ?? [];
      throw new InvalidJobSpecError(`params.${name}`, `the ${spec.pipeline} pipeline has no such parameter${known.length > 0 ? `; it takes ${known.join(', ')}` : '; it takes none'}`);
    }
  }
  return spec;
}
