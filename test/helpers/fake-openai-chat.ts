import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import sharp from 'sharp';
import { startHttpServer } from './http-server.js';

/** A model the fake serves. */
export interface FakeChatModel {
  readonly id: string;
  /** Takes image parts. */
  readonly vision: boolean;
}

export const FAKE_CHAT_MODELS: readonly FakeChatModel[] = [
  { id: 'fake-vision', vision: true },
  { id: 'fake-text', vision: false },
];

export interface RecordedChatRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  /** The JSON body of a POST. */
  readonly body: ChatCompletionRequest | undefined;
}

export interface ChatCompletionRequest {
  readonly model: string;
  readonly messages: readonly { readonly role: string; readonly content: string | readonly ContentPart[] }[];
  readonly max_tokens?: number;
  readonly temperature?: number;
  readonly stream?: boolean;
  readonly stream_options?: { readonly include_usage?: boolean };
}

type ContentPart = { readonly type: 'text'; readonly text: string } | { readonly type: 'image_url'; readonly image_url: { readonly url: string } };

/** How the next streams go wrong. */
export type StreamFault =
  /** Some chunks, then the connection is dropped: no [DONE]. */
  | { readonly type: 'break' }
  /** Some chunks, then an error event (`style` openai: `data: {"error": …}`; llama.cpp: an `error:` line), then [DONE]. */
  | { readonly type: 'error'; readonly message: string; readonly code?: number; readonly style?: 'openai' | 'llama.cpp' };

export interface FakeOpenAiChat {
  /** Base URL for a `backends.chat` entry. */
  readonly url: string;
  /** Every request, in order. */
  readonly requests: readonly RecordedChatRequest[];
  /** Chat completion requests only. */
  readonly completions: readonly ChatCompletionRequest[];
  /** Streams whose client closed the connection before the end. */
  readonly abandoned: number;
  /** Emits "stream-started" when a streamed answer starts, "abandoned" when a client leaves one. */
  readonly events: EventEmitter;
  /** Answers the next `times` chat completion requests with `status` and an error body. */
  failNext(status: number, times: number, message?: string): void;
  /** Spoils the next `times` streamed answers. */
  faultNext(fault: StreamFault, times: number): void;
  /** Waits this long between chunks (0: none). */
  setChunkDelay(ms: number): void;
  stop(): Promise<void>;
}

export interface FakeOpenAiChatOptions {
  readonly models?: readonly FakeChatModel[];
  /** When set, every request must carry `Authorization: Bearer <apiKey>`. */
  readonly apiKey?: string;
}

const COLOURS: readonly [string, number, number, number][] = [
  ['black', 0, 0, 0],
  ['white', 255, 255, 255],
  ['grey', 128, 128, 128],
  ['red', 220, 20, 20],
  ['green', 20, 180, 20],
  ['blue', 20, 20, 220],
  ['yellow', 240, 220, 20],
  ['cyan', 20, 220, 220],
  ['magenta', 220, 20, 220],
  ['orange', 250, 140, 0],
];

function colourName(r: number, g: number, b: number): string {
  let best = COLOURS[0]?.[0] ?? 'black';
  let bestDistance = Infinity;
  for (const [name, cr, cg, cb] of COLOURS) {
    const d = (r - cr) ** 2 + (g - cg) ** 2 + (b - cb) ** 2;
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return best;
}

/** Words as the fake counts them: runs of letters and digits. */
export function fakeWords(text: string): string[] {
  return text.match(/[\p{L}\p{N}]+/gu) ?? [];
}

/** The fake's answer to a text: what a test expects. */
export function fakeTextAnswer(text: string): string {
  const words = fakeWords(text);
  const longest = words.reduce((a, w) => (w.length > a.length ? w : a), '');
  return `Read ${words.length} words; the longest is "${longest}".`;
}

class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function textOf(content: string | readonly ContentPart[]): string {
  return typeof content === 'string' ? content : content.flatMap((p) => (p.type === 'text' ? [p.text] : [])).join('\n');
}

/** Checks a request as vLLM does; throws RequestError with the status a real server gives. */
function checkRequest(value: unknown, models: readonly FakeChatModel[]): { request: ChatCompletionRequest; model: FakeChatModel } {
  if (value === null || typeof value !== 'object') throw new RequestError(400, 'the body is not a JSON object');
  const request = value as ChatCompletionRequest;
  if (typeof request.model !== 'string') throw new RequestError(400, 'model is required');
  const model = models.find((m) => m.id === request.model);
  if (!model) throw new RequestError(404, `model "${request.model}" not found`);
  const messages: unknown = request.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw new RequestError(400, 'messages must be a non-empty array');
  for (const [i, item] of (messages as unknown[]).entries()) {
    const message = item as { role?: unknown; content?: unknown };
    if (typeof message.role !== 'string' || !['system', 'user', 'assistant'].includes(message.role)) throw new RequestError(400, `messages[${i}].role must be system, user or assistant`);
    if (typeof message.content === 'string') continue;
    if (!Array.isArray(message.content)) throw new RequestError(400, `messages[${i}].content must be a string or an array of parts`);
    for (const element of message.content as unknown[]) {
      const part = element as { type?: unknown; text?: unknown; image_url?: { url?: unknown } };
      if (part.type === 'text' && typeof part.text === 'string') continue;
      const url = part.image_url?.url;
      if (part.type !== 'image_url' || typeof url !== 'string') throw new RequestError(400, `messages[${i}].content has a part that is neither text nor image_url`);
      if (!model.vision) throw new RequestError(400, `model "${model.id}" does not take images`);
      if (message.role !== 'user') throw new RequestError(400, 'only user messages may hold images');
      if (!/^data:image\/[\w.+-]+;base64,/.test(url)) throw new RequestError(400, 'image_url must be a data: URL with base64 image bytes');
    }
  }
  if (request.max_tokens !== undefined && (!Number.isInteger(request.max_tokens) || request.max_tokens < 1)) throw new RequestError(400, 'max_tokens must be a positive integer');
  if (request.temperature !== undefined && (typeof request.temperature !== 'number' || request.temperature < 0 || request.temperature > 2)) {
    throw new RequestError(400, 'temperature must be between 0 and 2');
  }
  if (request.stream_options !== undefined && request.stream !== true) throw new RequestError(400, 'stream_options is only allowed when stream is true');
  return { request, model };
}

async function answerOf(request: ChatCompletionRequest): Promise<string> {
  const last = [...request.messages].reverse().find((m) => m.role === 'user');
  if (!last) throw new RequestError(400, 'no user message');
  const image = typeof last.content === 'string' ? undefined : last.content.find((p) => p.type === 'image_url');
  if (image?.type !== 'image_url') return fakeTextAnswer(textOf(last.content));
  const bytes = Buffer.from(image.image_url.url.slice(image.image_url.url.indexOf(',') + 1), 'base64');
  try {
    const picture = sharp(bytes);
    const { width, height } = await picture.metadata();
    const { dominant } = await picture.stats();
    return `You asked: "${textOf(last.content)}". It is a ${width}×${height} image, mostly ${colourName(dominant.r, dominant.g, dominant.b)}.`;
  } catch (err) {
    throw new RequestError(400, `the image cannot be decoded: ${err instanceof Error ? err.message : String(err)}`);
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * A chat server for tests: it speaks the OpenAI chat completions API (`GET /v1/models`,
 * `POST /v1/chat/completions`, streamed as server-sent events or not) as vLLM, Ollama and
 * llama.cpp's server do, checks the requests as strictly as they do, and answers
 * deterministically, so a test knows the exact answer:
 *
 * - to a message with an image: `You asked: "<the text part>". It is a <w>×<h> image, mostly <colour>.`
 *   (the image decoded, its most common colour named);
 * - to text: `Read <n> words; the longest is "<word>".` (over the last user message; words
 *   are runs of letters and digits, the first of the longest wins).
 *
 * A token is a word of the answer with the spaces after it; a stream sends three tokens a
 * chunk. `max_tokens` cuts the answer (finish_reason "length"); usage counts the words of
 * every message as prompt tokens.
 */
export async function startFakeOpenAiChat(options: FakeOpenAiChatOptions = {}): Promise<FakeOpenAiChat> {
  const models = options.models ?? FAKE_CHAT_MODELS;
  const requests: RecordedChatRequest[] = [];
  const events = new EventEmitter();
  let abandoned = 0;
  let failing = { status: 0, times: 0, message: '' };
  let faults: { fault: StreamFault | undefined; times: number } = { fault: undefined, times: 0 };
  let chunkDelayMs = 0;
  let sequence = 0;

  const reply = (res: ServerResponse, status: number, json: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(json));
  };
  const refuse = (res: ServerResponse, status: number, message: string): void => reply(res, status, { error: { message, type: 'invalid_request_error', code: status } });

  async function complete(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = (await readBody(req)).toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch {
      value = undefined;
    }
    requests.push({ method: 'POST', path: req.url ?? '', authorization: req.headers.authorization, body: value as ChatCompletionRequest | undefined });
    if (failing.times > 0) {
      failing = { ...failing, times: failing.times - 1 };
      refuse(res, failing.status, failing.message);
      return;
    }
    const { request, model } = checkRequest(value, models);
    const answer = await answerOf(request);
    const all = answer.match(/\S+\s*/g) ?? [];
    const cut = request.max_tokens !== undefined && all.length > request.max_tokens;
    const tokens = cut ? all.slice(0, request.max_tokens) : all;
    const finishReason = cut ? 'length' : 'stop';
    const usage = {
      prompt_tokens: request.messages.reduce((n, m) => n + fakeWords(textOf(m.content)).length, 0),
      completion_tokens: tokens.length,
      total_tokens: 0,
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    sequence += 1;
    const id = `chatcmpl-${sequence}`;
    const created = Math.floor(Date.now() / 1000);
    if (request.stream !== true) {
      reply(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model: model.id,
        choices: [{ index: 0, message: { role: 'assistant', content: tokens.join('') }, finish_reason: finishReason }],
        usage,
      });
      return;
    }

    let fault: StreamFault | undefined;
    if (faults.times > 0) {
      fault = faults.fault;
      faults = { ...faults, times: faults.times - 1 };
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.on('close', () => {
      if (!res.writableFinished) {
        abandoned += 1;
        events.emit('abandoned');
      }
    });
    events.emit('stream-started');
    const chunk = (delta: object, finish: string | null): string =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: model.id, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
    const send = async (text: string): Promise<boolean> => {
      if (res.destroyed) return false;
      if (chunkDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, chunkDelayMs));
      if (res.destroyed) return false;
      res.write(text);
      return true;
    };
    if (!(await send(chunk({ role: 'assistant', content: '' }, null)))) return;
    for (let i = 0; i < tokens.length; i += 3) {
      if (!(await send(chunk({ content: tokens.slice(i, i + 3).join('') }, null)))) return;
      // A fault strikes after the first piece of the answer.
      if (fault) {
        if (fault.type === 'break') {
          res.destroy();
          return;
        }
        const error = { message: fault.message, type: 'BadRequestError', ...(fault.code !== undefined ? { code: fault.code } : {}) };
        res.end(fault.style === 'llama.cpp' ? `error: ${JSON.stringify(error)}\n\n` : `data: ${JSON.stringify({ error })}\n\ndata: [DONE]\n\n`);
        return;
      }
    }
    if (!(await send(chunk({}, finishReason)))) return;
    if (request.stream_options?.include_usage === true) {
      if (!(await send(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: model.id, choices: [], usage })}\n\n`))) return;
    }
    res.end('data: [DONE]\n\n');
  }

  const { url, stop } = await startHttpServer((req, res) => {
    void (async () => {
      if (options.apiKey !== undefined && req.headers.authorization !== `Bearer ${options.apiKey}`) {
        requests.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization, body: undefined });
        reply(res, 401, { error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key' } });
        return;
      }
      if (req.method === 'GET' && req.url === '/v1/models') {
        requests.push({ method: 'GET', path: req.url, authorization: req.headers.authorization, body: undefined });
        reply(res, 200, { object: 'list', data: models.map((m) => ({ id: m.id, object: 'model', created: 0, owned_by: 'fake' })) });
        return;
      }
      if (req.method === 'POST' && req.url === '/v1/chat/completions') {
        await complete(req, res);
        return;
      }
      requests.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization, body: undefined });
      refuse(res, 404, `no route ${req.method} ${req.url}`);
    })().catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof RequestError) refuse(res, err.status, err.message);
      else reply(res, 500, { error: { message: String(err) } });
    });
  });
  return {
    url,
    requests,
    get completions() {
      return requests.flatMap((r) => (r.path === '/v1/chat/completions' && r.body !== undefined ? [r.body] : []));
    },
    get abandoned() {
      return abandoned;
    },
    events,
    failNext(status, times, message = 'the server is overloaded') {
      failing = { status, times, message };
    },
    faultNext(fault, times) {
      faults = { fault, times };
    },
    setChunkDelay(ms) {
      chunkDelayMs = ms;
    },
    stop,
  };
}
