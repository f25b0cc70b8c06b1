import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { EXEC_KIND_PATTERN, issueParts, issuePathText, parseYamlSource, YamlSyntaxError, type YamlSource } from '@mmgrid/core';
import { parseBytes } from './worker-options.js';
import { CommandTemplateError, parseCommandTemplate } from './backends/exec/command-template.js';

/** Largest worker config file read, in bytes. */
export const MAX_CONFIG_BYTES = 256 * 1024;

const url = z.url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' });
const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'names are letters, digits, "_", "." and "-"');
const seconds = (max: number) => z.number().positive().max(max);
const size = z.union([z.number().int().nonnegative(), z.string()]).transform((v, ctx) => {
  const bytes = typeof v === 'number' ? v : parseBytes(v);
  if (bytes === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${String(v)}" is not a size (for example 12GiB, 512MiB or a number of bytes)` });
    return z.NEVER;
  }
  return bytes;
});

/** A speech-to-text server speaking the OpenAI transcription API: serves audio.transcribe. */
export const transcribeBackendSchema = z
  .object({
    name: name.default('transcribe'),
    url,
    model: z.string().min(1).default('whisper-1'),
    apiKey: z.string().optional(),
  })
  .strict();

const chatKinds = z.enum(['text.generate', 'image.caption', 'fusion.llm']);

/** An OpenAI-compatible chat server (vLLM, Ollama, llama.cpp's server, LM Studio). */
export const chatBackendSchema = z
  .object({
    name: name.default('chat'),
    url,
    model: z.string().min(1),
    apiKey: z.string().optional(),
    /** The model takes images (image parts in messages): then it serves image.caption too. */
    vision: z.boolean().default(false),
    /** Which of its kinds to offer. @default text.generate and fusion.llm, and image.caption with vision */
    kinds: z.array(chatKinds).min(1).optional(),
    maxTokens: z.number().int().min(1).max(32_768).default(1024),
    temperature: z.number().min(0).max(2).default(0.2),
  })
  .strict();

/** How an image becomes a tensor: resized to width × height, scaled, normalised per channel. */
export const imageTensorSchema = z
  .object({
    width: z.number().int().min(1).max(8192),
    height: z.number().int().min(1).max(8192),
    /** NCHW (most PyTorch exports) or NHWC (most TensorFlow ones). */
    layout: z.enum(['NCHW', 'NHWC']).default('NCHW'),
    /** Pixel values are divided by this first (255 gives 0..1). */
    scale: z.number().positive().default(255),
    mean: z.tuple([z.number(), z.number(), z.number()]).default([0, 0, 0]),
    std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]).default([1, 1, 1]),
  })
  .strict();

/** A model file run in the worker by ONNX Runtime: serves image.classify. */
export const onnxBackendSchema = z
  .object({
    name,
    /** The .onnx file (relative paths are relative to the config file). */
    model: z.string().min(1),
    kind: z.literal('image.classify').default('image.classify'),
    input: imageTensorSchema,
    /** A text file with one label per line, in the order of the model's outputs. */
    labels: z.string().min(1).optional(),
    /** Apply softmax to the output (for models that output logits). */
    softmax: z.boolean().default(true),
    /** "auto": CUDA when ONNX Runtime has it here, else CPU. */
    device: z.enum(['auto', 'cpu', 'cuda']).default('auto'),
  })
  .strict();

/** A model on a KServe v2 / Open Inference Protocol server (Triton and others): serves image.classify. */
export const kserveBackendSchema = z
  .object({
    name,
    url,
    model: z.string().min(1),
    version: z.string().min(1).optional(),
    kind: z.literal('image.classify').default('image.classify'),
    input: imageTensorSchema,
    labels: z.string().min(1).optional(),
    softmax: z.boolean().default(true),
  })
  .strict();

/**
 * A command run once per task (how an owner plugs in any script, e.g. PyTorch): serves an
 * `exec.NAME` kind. `command` is an argument list, never a shell line: `{input}` (the input's
 * file), `{outdir}` (a folder for output files), `{params.NAME}` and the others listed in
 * backends/exec/command-template.ts are replaced inside arguments, each value as one
 * argument's text, so no parameter can inject a command. How a run goes (environment,
 * result, exit codes) is in backends/exec/exec-backend.ts.
 */
export const execBackendSchema = z
  .object({
    kind: z.string().regex(EXEC_KIND_PATTERN, 'must be exec.NAME (NAME: a lower-case letter, then lower-case letters, digits and "-")'),
    command: z
      .array(z.string().min(1))
      .min(1)
      .superRefine((command, ctx) => {
        try {
          parseCommandTemplate(command);
        } catch (err) {
          if (!(err instanceof CommandTemplateError)) throw err;
          ctx.addIssue({ code: 'custom', message: err.message, path: [err.index] });
        }
      }),
    /**
     * Working directory (relative to the config file). @default the task's own folder (made
     * for each task under the worker's work folder, removed after it)
     */
    cwd: z.string().min(1).optional(),
    /** "on-failure" keeps a failed task's folder (its path is logged), for debugging. @default "never" */
    keepTaskDir: z.enum(['never', 'on-failure']).default('never'),
    env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).default({}),
    timeoutSec: seconds(24 * 3600).default(600),
    /** Most bytes of JSON the command may print on stdout (its result). */
    maxOutputBytes: size.default(1024 * 1024),
    /** Output files (in {outdir}) larger than this fail the task. */
    maxFileBytes: size.default(512 * 1024 * 1024),
    /** All output files (in {outdir}) together larger than this fail the task. */
    maxTotalFileBytes: size.default(2 * 1024 * 1024 * 1024),
    description: z.string().max(200).optional(),
  })
  .strict();

export const backendsSchema = z
  .object({
    transcribe: z.array(transcribeBackendSchema).default([]),
    chat: z.array(chatBackendSchema).default([]),
    onnx: z.array(onnxBackendSchema).default([]),
    kserve: z.array(kserveBackendSchema).default([]),
    exec: z.array(execBackendSchema).default([]),
  })
  .strict();

/** `mmgrid worker --config worker.yaml`: the command line's options, and the backends. */
export const workerConfigSchema = z
  .object({
    coordinator: z.string().min(1).optional(),
    token: z.string().min(1).optional(),
    name: z.string().min(1).optional(),
    stateDir: z.string().min(1).optional(),
    kinds: z.array(z.string().min(1)).min(1).optional(),
    slots: z.record(z.string(), z.number().int().min(1).max(1024)).optional(),
    drainGraceSec: z.number().min(0).max(3600).optional(),
    vramBudget: size.optional(),
    cpuOnly: z.boolean().optional(),
    nvidiaSmi: z.string().min(1).optional(),
    /** "HOST:PORT" for /metrics and /healthz, or "off" (checked with the other options). */
    metricsListen: z.string().min(1).optional(),
    /** true: TLS to the coordinator (as --tls); the default is TLS to any address but a loopback one. */
    tls: z.boolean().optional(),
    /** true: plaintext even to another machine (as --insecure). */
    insecure: z.boolean().optional(),
    /** PEM CA certificates to trust (as --ca; relative to the config file). */
    ca: z.string().min(1).optional(),
    /** PEM client certificate and its key, for mutual TLS (as --cert and --key; relative to the config file). */
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    /** Name the coordinator's certificate carries, when it is not the address's host (as --tls-server-name). */
    tlsServerName: z.string().min(1).optional(),
    backends: backendsSchema.default({ transcribe: [], chat: [], onnx: [], kserve: [], exec: [] }),
  })
  .strict();

export type TranscribeBackendConfig = z.infer<typeof transcribeBackendSchema>;
export type ChatBackendConfig = z.infer<typeof chatBackendSchema>;
export type ImageTensorConfig = z.infer<typeof imageTensorSchema>;
export type OnnxBackendConfig = z.infer<typeof onnxBackendSchema>;
export type KserveBackendConfig = z.infer<typeof kserveBackendSchema>;
export type ExecBackendConfig = z.infer<typeof execBackendSchema>;
export type BackendsConfig = z.infer<typeof backendsSchema>;
export type WorkerConfig = z.infer<typeof workerConfigSchema> & {
  /** The folder of the config file: relative paths in it are relative to this. */
  readonly baseDir: string;
};

/** A worker config file that cannot be used: `file:line:col: what is wrong`. */
export class WorkerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerConfigError';
  }
}

const TAKES: Readonly<Record<string, string>> = {
  '': 'coordinator, token, name, stateDir, kinds, slots, drainGraceSec, vramBudget, cpuOnly, nvidiaSmi, metricsListen, tls, insecure, ca, cert, key, tlsServerName, backends',
  backends: 'transcribe, chat, onnx, kserve, exec',
};

function describeIssue(source: YamlSource, issue: z.core.$ZodIssue): string {
  const parts = issueParts(issue.path);
  const fieldPath = issuePathText(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const takes = TAKES[fieldPath] ?? (parts[0] === 'backends' && parts.length >= 3 ? `a ${String(parts[1])} backend takes ${takesOf(String(parts[1]))}` : undefined);
    return `${source.where([...parts, issue.keys[0] ?? ''])}: ${fieldPath === '' ? '' : `${fieldPath}: `}unknown field ${issue.keys.map((k) => `"${k}"`).join(', ')}${takes ? `; ${takes.includes(' takes ') ? takes : `it takes ${takes}`}` : ''}`;
  }
  return `${source.where(parts)}: ${fieldPath || 'the config'}: ${issue.message}`;
}

function takesOf(type: string): string {
  const schema = (backendsSchema.shape as Record<string, z.ZodType>)[type];
  const element = schema instanceof z.ZodDefault ? schema.unwrap() : schema;
  if (element instanceof z.ZodArray && element.element instanceof z.ZodObject) return Object.keys(element.element.shape).join(', ');
  return '';
}

/**
 * Reads and checks a worker config file (YAML). Every problem names the file, line and column
 * and what is allowed.
 *
 * @throws WorkerConfigError
 */
export async function loadWorkerConfig(file: string): Promise<WorkerConfig> {
  let bytes: number;
  try {
    bytes = (await stat(file)).size;
  } catch {
    throw new WorkerConfigError(`no such config file: ${file}`);
  }
  if (bytes > MAX_CONFIG_BYTES) throw new WorkerConfigError(`${file}: a worker config is at most ${MAX_CONFIG_BYTES} bytes (this one has ${bytes})`);
  let source: YamlSource;
  try {
    source = parseYamlSource(await readFile(file, 'utf8'), file);
  } catch (err) {
    if (err instanceof YamlSyntaxError) throw new WorkerConfigError(err.message);
    throw err;
  }
  const parsed = workerConfigSchema.safeParse(source.value ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new WorkerConfigError(issue ? describeIssue(source, issue) : `${file}: not a worker config`);
  }
  const config = parsed.data;
  if (config.tls === true && config.insecure === true) throw new WorkerConfigError(`${source.where(['insecure'])}: insecure: true (plaintext) does not go with tls: true; leave one out`);
  const kinds = config.backends.exec.map((e) => e.kind);
  const twice = kinds.find((k, i) => kinds.indexOf(k) !== i);
  if (twice !== undefined) throw new WorkerConfigError(`${source.where(['backends', 'exec', kinds.lastIndexOf(twice), 'kind'])}: backends.exec: two commands serve ${twice}; give each its own kind`);
  return { ...config, baseDir: path.dirname(path.resolve(file)) };
}
