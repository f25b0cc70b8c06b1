import { z } from 'zod';
import { TaskFailedError } from '../../errors.js';
import { isRetryableStatus } from '../http.js';
import type { SseEvent } from './sse.js';

/** What a chat completion came to. */
export interface ChatAnswer {
  readonly text: string;
  /** The model that answered, as the server names it. */
  readonly model: string;
  /** "stop", "length"…, as the server says; "unknown" when it said nothing. */
  readonly finishReason: string;
  readonly usage: { readonly promptTokens: number; readonly completionTokens: number } | null;
}

const count = z.number().int().nonnegative();
const usageSchema = z.object({ prompt_tokens: count, completion_tokens: count }).nullish();

/** The parts of a `chat.completion.chunk` used here; servers add fields of their own. */
const chunkSchema = z.object({
  model: z.string().optional(),
  choices: z
    .array(
      z.object({
        index: z.number().int().optional(),
        delta: z
          .object({
            content: z.string().nullish(),
            // Reasoning models (vLLM, Ollama, llama.cpp) stream their thinking apart from the answer.
            reasoning_content: z.string().nullish(),
            reasoning: z.string().nullish(),
          })
          .nullish(),
        finish_reason: z.string().nullish(),
      }),
    )
    .nullish(),
  usage: usageSchema,
});

/** A whole `chat.completion` (a server that answers `stream: true` without streaming). */
const completionSchema = z.object({
  model: z.string().optional(),
  choices: z
    .array(
      z.object({
        index: z.number().int().optional(),
        message: z.object({ content: z.string().nullish() }),
        finish_reason: z.string().nullish(),
      }),
    )
    .min(1),
  usage: usageSchema,
});

/**
 * The shapes of an error a server sends instead of a chunk (or as a whole answer):
 * `{"error": {"message", "code"?}}` (OpenAI, vLLM), `{"error": "…"}`, vLLM's older
 * `{"object": "error", "message", "code"}`, and the data of llama.cpp's `error:` line
 * (`{"code": 400, "message", "type"}`).
 */
const errorCode = z.union([z.number(), z.string()]).nullish();
const errorSchema = z.union([
  z.object({ error: z.object({ message: z.string(), code: errorCode, type: z.string().nullish() }) }),
  z.object({ error: z.string() }),
  z.object({ object: z.literal('error'), message: z.string(), code: errorCode, type: z.string().nullish() }),
]);
const bareErrorSchema = z.object({ message: z.string(), code: errorCode, type: z.string().nullish() });

const WHAT = 'the chat server';

/**
 * Fails the attempt for an error a server reported. An HTTP-like 4xx code (other than 408
 * and 429) says the request itself is refused, and so would be the next time; anything else
 * (an engine that died, no code at all) may pass on another try.
 */
function serverError(message: string, code: unknown): TaskFailedError {
  const status = typeof code === 'number' ? code : typeof code === 'string' && /^\d{3}$/.test(code) ? Number(code) : undefined;
  const refused = status !== undefined && status >= 400 && status < 500 && !isRetryableStatus(status);
  return new TaskFailedError(refused ? 'BACKEND_REFUSED' : 'BACKEND_UNAVAILABLE', `${WHAT} reported an error: ${message}`, !refused);
}

function errorOf(value: unknown, isErrorEvent: boolean): TaskFailedError | undefined {
  const parsed = errorSchema.safeParse(value);
  if (parsed.success) {
    const e = parsed.data;
    if ('object' in e) return serverError(e.message, e.code);
    return typeof e.error === 'string' ? serverError(e.error, undefined) : serverError(e.error.message, e.error.code);
  }
  if (isErrorEvent) {
    const bare = bareErrorSchema.safeParse(value);
    return bare.success ? serverError(bare.data.message, bare.data.code) : serverError(JSON.stringify(value).slice(0, 300), undefined);
  }
  return undefined;
}

function parseJson(data: string, what: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    throw new TaskFailedError('BACKEND_UNAVAILABLE', `${WHAT} sent ${what} that is not JSON: ${data.slice(0, 200)}`, true);
  }
}

function usageOf(usage: z.infer<typeof usageSchema>): ChatAnswer['usage'] {
  return usage ? { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens } : null;
}

/**
 * Puts a streamed chat completion together from its server-sent events: the content of
 * choice 0's deltas, the last finish_reason, and the usage of the final chunk (sent with
 * `stream_options.include_usage`). The stream ends with `data: [DONE]`.
 */
export class ChatStreamReader {
  private readonly parts: string[] = [];
  private model: string;
  private finishReason: string | undefined;
  private usage: ChatAnswer['usage'] = null;
  private done = false;
  /** Pieces of text received so far (answer and reasoning): a rough count of tokens. */
  tokens = 0;

  constructor(requestedModel: string) {
    this.model = requestedModel;
  }

  /**
   * Takes one event; returns true when the stream says it is complete.
   * @throws TaskFailedError for an error the server sent, or a chunk that is not JSON.
   */
  push(event: SseEvent): boolean {
    if (this.done) return true;
    const isErrorEvent = event.event === 'error';
    if (!isErrorEvent && event.data.trim() === '[DONE]') {
      this.done = true;
      return true;
    }
    const value = parseJson(event.data, isErrorEvent ? 'an error' : 'a chunk');
    const error = errorOf(value, isErrorEvent);
    if (error) throw error;
    const chunk = chunkSchema.safeParse(value);
    if (!chunk.success) throw new TaskFailedError('BACKEND_UNAVAILABLE', `${WHAT} sent a chunk that is not a chat.completion.chunk: ${event.data.slice(0, 200)}`, true);
    if (chunk.data.model) this.model = chunk.data.model;
    if (chunk.data.usage) this.usage = usageOf(chunk.data.usage);
    const choice = chunk.data.choices?.find((c) => (c.index ?? 0) === 0);
    if (choice) {
      const { content, reasoning_content: reasoning, reasoning: reasoningToo } = choice.delta ?? {};
      if (content) this.parts.push(content);
      if (content || reasoning || reasoningToo) this.tokens += 1;
      if (choice.finish_reason) this.finishReason = choice.finish_reason;
    }
    return false;
  }

  /**
   * The answer, once the stream has ended. A stream that closed after a finish_reason but
   * without `[DONE]` is taken as complete (some llama.cpp forks never send it); one that
   * closed with neither was cut short.
   * @throws TaskFailedError (retryable) for a stream cut short.
   */
  answer(): ChatAnswer {
    if (!this.done && this.finishReason === undefined) {
      throw new TaskFailedError('BACKEND_UNAVAILABLE', `${WHAT}'s stream ended before the answer was complete (after ${this.tokens} tokens, no finish_reason and no [DONE])`, true);
    }
    return { text: this.parts.join('').trim(), model: this.model, finishReason: this.finishReason ?? 'unknown', usage: this.usage };
  }
}

/**
 * The answer of a server that replied with one JSON document (it ignored `stream: true`, or
 * sent an error with a 200).
 */
export function parseCompletion(body: string, requestedModel: string): ChatAnswer {
  const value = parseJson(body, 'an answer');
  const error = errorOf(value, false);
  if (error) throw error;
  const parsed = completionSchema.safeParse(value);
  if (!parsed.success) throw new TaskFailedError('BACKEND_UNAVAILABLE', `${WHAT} sent an answer that is not a chat.completion: ${body.slice(0, 200)}`, true);
  const choice = parsed.data.choices.find((c) => (c.index ?? 0) === 0) ?? parsed.data.choices[0];
  return {
    text: (choice?.message.content ?? '').trim(),
    model: parsed.data.model ?? requestedModel,
    finishReason: choice?.finish_reason ?? 'unknown',
    usage: usageOf(parsed.data.usage),
  };
}
