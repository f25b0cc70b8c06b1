import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { checkDeclaredSteps, intOption, issueParts, issuePathText, parseYamlSource, YamlSyntaxError, type YamlSource } from '@mmgrid/core';
import type { SubmitInput, SubmitOptions } from '@mmgrid/client';
import { CliError } from './errors.js';
import { ExitCode } from './exit-codes.js';

/** Largest job file read, in bytes, unless MMGRID_MAX_JOB_FILE_BYTES says otherwise. */
export const MAX_JOB_FILE_BYTES = 1024 * 1024;
/** The environment variable that sets the largest job file the CLI reads. */
export const MAX_JOB_FILE_BYTES_ENV = 'MMGRID_MAX_JOB_FILE_BYTES';

/** The largest job file to read, from the environment (MMGRID_MAX_JOB_FILE_BYTES) or the default. */
export function maxJobFileBytes(env: Readonly<Record<string, string | undefined>>): number {
  const raw = env[MAX_JOB_FILE_BYTES_ENV];
  if (raw === undefined || raw.trim() === '') return MAX_JOB_FILE_BYTES;
  return intOption(MAX_JOB_FILE_BYTES_ENV, Number(raw), 1, 1024 * MAX_JOB_FILE_BYTES);
}

/** Label and param values: YAML scalars, sent as strings (`4471` → "4471", `true` → "true"). */
const scalarValue = z.union([z.string(), z.number(), z.boolean()]);

const inputSchema = z.union([
  z.string().min(1, 'must name a file'),
  z.object({ file: z.string().min(1, 'must name a file') }).strict(),
  z.object({ text: z.string().min(1, 'must not be empty') }).strict(),
]);

/** A job file (YAML): inputs, prompt, and a built-in pipeline or declared steps. */
export const jobFileSchema = z
  .object({
    inputs: z.record(z.string(), inputSchema).default({}),
    prompt: z.string().default(''),
    pipeline: z.string().optional(),
    params: z.record(z.string(), scalarValue).default({}),
    priority: z.number().int().min(-10).max(10).default(0),
    labels: z.record(z.string(), scalarValue).default({}),
    steps: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export interface LoadedJobFile {
  readonly inputs: SubmitInput[];
  readonly options: SubmitOptions;
  /** Finds the line of a field ("steps.ocr.input") for messages: "job.yaml:12:5". */
  where(fieldPath: string): string;
}

function fail(where: string, message: string): never {
  throw new CliError(`${where}: ${message}`, ExitCode.USAGE);
}

/**
 * Reads and checks a job file: YAML syntax, the file's shape, and (as far as it can before
 * the inputs are uploaded and their types detected) its declared steps. Every problem names
 * the file, line and column, and what is allowed. A file over `maxBytes` is refused before it
 * is read (exit code LIMIT).
 */
export async function loadJobFile(file: string, maxBytes = MAX_JOB_FILE_BYTES): Promise<LoadedJobFile> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch {
    throw new CliError(`no such job file: ${file}`, ExitCode.USAGE);
  }
  const tooLarge = (bytes: number): CliError =>
    new CliError(`${file} has ${bytes} bytes; job files are at most ${maxBytes} bytes (${MAX_JOB_FILE_BYTES_ENV} sets it)`, ExitCode.LIMIT);
  if (size > maxBytes) throw tooLarge(size);
  const bytes = await readFile(file);
  // It may have grown since.
  if (bytes.length > maxBytes) throw tooLarge(bytes.length);
  const text = bytes.toString('utf8');
  let source: YamlSource;
  try {
    source = parseYamlSource(text, file);
  } catch (err) {
    if (err instanceof YamlSyntaxError) fail(err.where, `not valid YAML: ${err.reason}`);
    throw err;
  }
  const where = (fieldPath: string): string => source.wherePath(fieldPath);
  // For keys that may hold "." (input names such as "receipt.png"), by path elements.
  const whereIn = (...parts: (string | number)[]): string => source.where(parts);
  const parsed = jobFileSchema.safeParse(source.value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const fieldPath = issuePathText(issue?.path ?? []);
    const fieldParts = issueParts(issue?.path ?? []);
    if (issue?.code === 'unrecognized_keys') {
      // Point at the first unknown key itself, not at the object holding it (for the top
      // level that object has no line at all).
      const takes = issue.path.length === 2 && issue.path[0] === 'inputs' ? 'an input takes file or text (one of them)' : 'a job file takes inputs, prompt, pipeline, params, priority, labels, steps';
      fail(whereIn(...fieldParts, issue.keys[0] ?? ''), `${fieldPath === '' ? '' : `${fieldPath}: `}unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}; ${takes}`);
    }
    if (issue?.code === 'invalid_union' && issue.path.length === 2 && issue.path[0] === 'inputs') {
      // Neither form fits (both file and text, say): zod only says "Invalid input".
      fail(whereIn(...fieldParts), `${fieldPath}: an input is a file path, { file: PATH } or { text: TEXT }`);
    }
    fail(whereIn(...fieldParts), `${fieldPath || 'the job'}: ${issue?.message ?? 'is not a job file'}`);
  }
  const job = parsed.data;
  const base = path.dirname(path.resolve(file));
  const inputs: SubmitInput[] = [];
  for (const [name, value] of Object.entries(job.inputs)) {
    if (typeof value === 'object' && 'text' in value) {
      inputs.push({ name, text: value.text });
      continue;
    }
    const relative = typeof value === 'string' ? value : value.file;
    const full = path.resolve(base, relative);
    try {
      await stat(full);
    } catch {
      fail(whereIn('inputs', name), `input "${name}": no such file ${relative} (paths are relative to the job file)`);
    }
    inputs.push({ name, path: full });
  }
  if (job.steps !== undefined) {
    try {
      checkDeclaredSteps(job.steps, new Map(Object.keys(job.inputs).map((n) => [n, undefined])));
    } catch (err) {
      const p = err instanceof Error && 'path' in err && typeof err.path === 'string' ? err.path : 'steps';
      fail(where(p), err instanceof Error ? err.message : String(err));
    }
  }
  return {
    inputs,
    options: {
      prompt: job.prompt,
      ...(job.pipeline !== undefined ? { pipeline: job.pipeline } : {}),
      params: Object.fromEntries(Object.entries(job.params).map(([k, v]) => [k, String(v)])),
      priority: job.priority,
      labels: Object.fromEntries(Object.entries(job.labels).map(([k, v]) => [k, String(v)])),
      ...(job.steps !== undefined ? { steps: job.steps } : {}),
    },
    where,
  };
}

/** Points an error from the coordinator about a field ("steps.ocr.input: …") at its line. */
export function locateServerError(job: LoadedJobFile, message: string): string {
  const match = /^((?:steps|inputs|params|labels|prompt|pipeline|priority)(?:\.[\w-]+|\[\d+\])*): /.exec(message);
  return match?.[1] ? `${job.where(match[1])}: ${message}` : message;
}
