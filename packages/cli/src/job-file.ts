import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument, type Document, type Node } from 'yaml';
import { z } from 'zod';
import { checkDeclaredSteps } from '@mmgrid/core';
import type { SubmitInput, SubmitOptions } from '@mmgrid/client';
import { CliError } from './errors.js';
import { ExitCode } from './exit-codes.js';

/** Largest job file read, in bytes. */
export const MAX_JOB_FILE_BYTES = 1024 * 1024;

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

/** "steps.ocr.from[0]" → ['steps', 'ocr', 'from', 0] */
function splitPath(fieldPath: string): (string | number)[] {
  const parts: (string | number)[] = [];
  for (const m of fieldPath.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) {
    if (m[1] !== undefined) parts.push(m[1]);
    else if (m[2] !== undefined) parts.push(Number(m[2]));
  }
  return parts;
}

function locate(doc: Document, lines: LineCounter, file: string, fieldParts: readonly (string | number)[]): string {
  // The deepest node of the path that exists in the file.
  let parts = [...fieldParts];
  while (parts.length > 0) {
    const node = doc.getIn(parts, true) as Node | undefined;
    const pair = parts.length > 0 ? findKey(doc, parts) : undefined;
    const range = pair?.range ?? node?.range;
    if (range) {
      const { line, col } = lines.linePos(range[0]);
      return `${file}:${line}:${col}`;
    }
    parts = parts.slice(0, -1);
  }
  return file;
}

/** The key node of the last path element (its line is where the field is written). */
function findKey(doc: Document, parts: readonly (string | number)[]): Node | undefined {
  const parent = parts.length > 1 ? doc.getIn(parts.slice(0, -1), true) : doc.contents;
  const last = parts[parts.length - 1];
  if (isMap(parent)) {
    const item = parent.items.find((p) => (p.key as { value?: unknown } | null)?.value === last);
    return (item?.key as Node | undefined) ?? undefined;
  }
  if (isSeq(parent) && typeof last === 'number') return parent.items[last] as Node | undefined;
  return undefined;
}

function fail(where: string, message: string): never {
  throw new CliError(`${where}: ${message}`, ExitCode.USAGE);
}

/**
 * Reads and checks a job file: YAML syntax, the file's shape, and (as far as it can before
 * the inputs are uploaded and their types detected) its declared steps. Every problem names
 * the file, line and column, and what is allowed.
 */
export async function loadJobFile(file: string): Promise<LoadedJobFile> {
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch {
    throw new CliError(`no such job file: ${file}`, ExitCode.USAGE);
  }
  if (size > MAX_JOB_FILE_BYTES) throw new CliError(`${file}: job files are at most ${MAX_JOB_FILE_BYTES} bytes (this one has ${size})`, ExitCode.LIMIT);
  const text = await readFile(file, 'utf8');
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const syntax = doc.errors[0];
  if (syntax) {
    const { line, col } = lines.linePos(syntax.pos[0]);
    fail(`${file}:${line}:${col}`, `not valid YAML: ${syntax.message.split('\n')[0] ?? syntax.code}`);
  }
  const where = (fieldPath: string): string => locate(doc, lines, file, splitPath(fieldPath));
  // For keys that may hold "." (input names such as "receipt.png"), by path elements.
  const whereIn = (...parts: (string | number)[]): string => locate(doc, lines, file, parts);
  const parsed = jobFileSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const fieldPath = (issue?.path ?? []).map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
    const fieldParts = (issue?.path ?? []).map((p) => (typeof p === 'number' ? p : String(p)));
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
