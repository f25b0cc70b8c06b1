import { readFile, stat } from 'node:fs/promises';
import sharp from 'sharp';
import {
  checkTaskParams,
  fusionReportOutputSchema,
  type FusionLlmOutput,
  type FusionReportOutput,
  type ImageCaptionOutput,
  type JsonObject,
  type TextGenerateOutput,
} from '@mmgrid/core';
import { InputDecodeError, TaskFailedError } from '../../errors.js';
import type { ChatBackendConfig } from '../../worker-config.js';
import type { TaskContext, TaskHandler } from '../backend.js';
import { streamChat, type ChatMessage, type ChatServer } from './chat-client.js';
import type { ChatAnswer } from './chat-stream.js';
import { fusionMessages } from './fusion-prompt.js';

/** Largest image sent to the model: servers refuse far smaller ones, and the request holds it as base64. */
export const MAX_CAPTION_IMAGE_BYTES = 20 * 1024 * 1024;

/** Image types chat servers take as they are; others are sent as PNG. */
const SENT_AS_IS = new Set(['image/png', 'image/jpeg', 'image/webp', 'image/gif']);

export const DEFAULT_INSTRUCTION = 'Summarise this text.';
export const DEFAULT_QUESTION = 'Describe this image in one or two sentences.';

/** The parameters of the chat kinds (core's task-params checks them). */
interface ChatParams {
  readonly instruction?: string;
  readonly system?: string;
  readonly question?: string;
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly model?: string;
}

function paramsOf(kind: string, params: JsonObject): ChatParams {
  const problem = checkTaskParams(kind, params);
  if (problem !== '') throw new TaskFailedError('INVALID_PARAMS', `${kind} parameters: ${problem}`, false);
  // Checked just above against the kind's schema.
  return params;
}

/** What every chat handler shares: the server, the model and the defaults of one backend. */
abstract class ChatHandler implements TaskHandler {
  abstract readonly kind: string;
  readonly description: string;
  readonly models: readonly string[];
  protected readonly server: ChatServer;

  constructor(
    protected readonly config: ChatBackendConfig,
    root: string,
    what: string,
  ) {
    this.server = { root, apiKey: config.apiKey };
    this.models = [config.model];
    this.description = `${what} (${config.model} at ${root})`;
  }

  abstract run(ctx: TaskContext): Promise<unknown>;

  /** Sends the messages and streams the answer, reporting progress as tokens arrive. */
  protected async ask(ctx: TaskContext, params: ChatParams, messages: readonly ChatMessage[]): Promise<ChatAnswer> {
    const maxTokens = params.maxTokens ?? this.config.maxTokens;
    ctx.progress(0, 'asking the model');
    return streamChat(
      this.server,
      { model: params.model ?? this.config.model, messages, maxTokens, temperature: params.temperature ?? this.config.temperature },
      ctx.signal,
      (tokens) => ctx.progress(Math.min(0.99, tokens / maxTokens), `${tokens} token${tokens === 1 ? '' : 's'}`),
    );
  }
}

/** `text.generate`: a text input and an instruction to the model. */
export class TextGenerateHandler extends ChatHandler {
  readonly kind = 'text.generate';

  constructor(config: ChatBackendConfig, root: string) {
    super(config, root, 'answers an instruction about a text');
  }

  async run(ctx: TaskContext): Promise<TextGenerateOutput> {
    const params = paramsOf(this.kind, ctx.params);
    const text = await textInput(ctx);
    const messages: ChatMessage[] = [
      ...(params.system !== undefined && params.system.trim() !== '' ? [{ role: 'system' as const, content: params.system }] : []),
      { role: 'user', content: `${params.instruction ?? DEFAULT_INSTRUCTION}\n\n${text}` },
    ];
    return this.ask(ctx, params, messages);
  }
}

/** `image.caption`: an image and a question (or a request to describe it) to a vision model. */
export class ImageCaptionHandler extends ChatHandler {
  readonly kind = 'image.caption';

  constructor(config: ChatBackendConfig, root: string) {
    super(config, root, 'describes an image or answers a question about it');
  }

  async run(ctx: TaskContext): Promise<ImageCaptionOutput> {
    const params = paramsOf(this.kind, ctx.params);
    const url = await imageDataUrl(ctx);
    const answer = await this.ask(ctx, params, [
      {
        role: 'user',
        content: [
          { type: 'text', text: params.question ?? DEFAULT_QUESTION },
          { type: 'image_url', image_url: { url } },
        ],
      },
    ]);
    return { ...answer, question: params.question ?? null };
  }
}

/** `fusion.llm`: the model's answer to the prompt, from the deterministic fusion report it reads. */
export class FusionLlmHandler extends ChatHandler {
  readonly kind = 'fusion.llm';

  constructor(config: ChatBackendConfig, root: string) {
    super(config, root, "answers the prompt from the fusion report's findings");
  }

  async run(ctx: TaskContext): Promise<FusionLlmOutput> {
    const params = paramsOf(this.kind, ctx.params);
    const report = reportOf(ctx);
    const answer = await this.ask(ctx, params, fusionMessages(report));
    return { ...report, summary: answer.text, model: answer.model, reportSummary: report.summary };
  }
}

/** The text a task reads: its inline text, or its file (UTF-8). */
async function textInput(ctx: TaskContext): Promise<string> {
  const [, inline] = [...ctx.texts][0] ?? [];
  if (inline !== undefined) return inline;
  const [name, file] = [...ctx.files][0] ?? [];
  if (name === undefined || file === undefined) throw new TaskFailedError('INPUT_MISSING', `${ctx.kind} needs one text input`, false);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(await readFile(file));
  } catch (err) {
    throw new InputDecodeError(`"${name}" is not valid UTF-8 text`, { cause: err });
  }
}

/** The image a task reads, as a `data:` URL (PNG, JPEG, WebP and GIF as they are, others converted to PNG). */
async function imageDataUrl(ctx: TaskContext): Promise<string> {
  const [name, file] = [...ctx.files][0] ?? [];
  if (name === undefined || file === undefined) throw new TaskFailedError('INPUT_MISSING', 'image.caption needs one image input', false);
  const tooLarge = (bytes: number): TaskFailedError =>
    new TaskFailedError('INPUT_TOO_LARGE', `"${name}" is ${bytes} bytes; image.caption sends images of at most 20 MiB (${MAX_CAPTION_IMAGE_BYTES} bytes) to the model`, false);
  const { size } = await stat(file);
  if (size > MAX_CAPTION_IMAGE_BYTES) throw tooLarge(size);
  let mediaType = ctx.mediaTypes.get(name) ?? '';
  let bytes: Buffer;
  if (SENT_AS_IS.has(mediaType)) {
    bytes = await readFile(file);
  } else {
    try {
      bytes = await sharp(file, { failOn: 'error' }).png().toBuffer();
    } catch (err) {
      throw new InputDecodeError(`the image cannot be decoded (${err instanceof Error ? err.message.trim() : String(err)})`, { cause: err });
    }
    mediaType = 'image/png';
    if (bytes.length > MAX_CAPTION_IMAGE_BYTES) throw tooLarge(bytes.length);
  }
  return `data:${mediaType};base64,${bytes.toString('base64')}`;
}

/** The one fusion.report output among the task's upstream outputs. */
function reportOf(ctx: TaskContext): FusionReportOutput {
  const reports = ctx.upstream.filter((u) => u.kind === 'fusion.report');
  if (reports.length !== 1) {
    const given = ctx.upstream.map((u) => u.kind).join(', ') || 'nothing';
    throw new TaskFailedError('INPUT_MISSING', `fusion.llm reads the output of one fusion.report step (from: [report]); it was given ${given}`, false);
  }
  const [upstream] = reports;
  if (!upstream || upstream.error) {
    throw new TaskFailedError('UPSTREAM_FAILED', `the fusion report failed, so there is nothing to answer from: ${upstream?.error?.message ?? 'no output'}`, false);
  }
  try {
    return fusionReportOutputSchema.parse(JSON.parse(upstream.outputJson));
  } catch (err) {
    throw new TaskFailedError('UPSTREAM_FAILED', `the fusion report's output is not a fusion report: ${err instanceof Error ? err.message.slice(0, 300) : String(err)}`, false);
  }
}
