import { z } from 'zod';
import { InvalidOptionError } from '@mmgrid/core';
import type { ChatBackendConfig } from '../../worker-config.js';
import { BackendUnavailableError, type Backend, type BackendCheck, type BackendContext, type TaskHandler } from '../backend.js';
import { baseUrl, bearer, checkRequest, errorMessageOf } from '../http.js';
import { FusionLlmHandler, ImageCaptionHandler, TextGenerateHandler } from './chat-handlers.js';

type ChatKind = NonNullable<ChatBackendConfig['kinds']>[number];

/** `GET /v1/models`, as the OpenAI API, vLLM, Ollama, llama.cpp and LM Studio answer it. */
const modelListSchema = z.object({ data: z.array(z.object({ id: z.string() })) });

/**
 * The server's root URL. The OpenAI clients' convention is a base URL ending in /v1, so that
 * is taken too (and the /v1 dropped, as the paths here add it).
 */
export function chatServerRoot(url: string): string {
  return baseUrl(url).replace(/\/v1$/, '');
}

/** Whether the server lists the model; Ollama lists "llama3.2:latest" for "llama3.2". */
function listed(ids: readonly string[], model: string): boolean {
  return ids.includes(model) || (!model.includes(':') && ids.includes(`${model}:latest`));
}

/**
 * An OpenAI-compatible chat server (vLLM, Ollama, llama.cpp's server, LM Studio) and one of
 * its models: serves text.generate and fusion.llm, and image.caption when the model takes
 * images (`vision: true`).
 */
export class ChatBackend implements Backend {
  readonly type = 'openai-chat';
  readonly name: string;
  readonly kinds: readonly ChatKind[];
  private readonly root: string;

  /** @throws InvalidOptionError for image.caption in `kinds` of a model without `vision: true`. */
  constructor(private readonly config: ChatBackendConfig) {
    this.name = config.name;
    this.root = chatServerRoot(config.url);
    const kinds: ChatKind[] = config.kinds ?? ['text.generate', 'fusion.llm', ...(config.vision ? (['image.caption'] as const) : [])];
    if (kinds.includes('image.caption') && !config.vision) {
      throw new InvalidOptionError(
        `backends.chat "${config.name}" kinds`,
        'text.generate and fusion.llm only: image.caption needs a model that takes images; if this one does, add "vision: true"',
        kinds,
      );
    }
    this.kinds = [...new Set(kinds)];
  }

  async check(signal: AbortSignal): Promise<BackendCheck> {
    const url = `${this.root}/v1/models`;
    const { status, body } = await checkRequest('the chat server', url, { signal, headers: bearer(this.config.apiKey) });
    if (status === 401 || status === 403) {
      const key = this.config.apiKey === undefined ? 'a request without an API key; set apiKey' : 'the API key; check apiKey';
      throw new BackendUnavailableError(`the chat server at ${this.root} refused ${key} (${status}: ${errorMessageOf(body)})`);
    }
    if (status < 200 || status >= 300) {
      throw new BackendUnavailableError(`the chat server at ${url} answered ${status}: ${errorMessageOf(body)}; is the URL that of an OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio)?`);
    }
    let ids: string[];
    try {
      ids = modelListSchema.parse(JSON.parse(body)).data.map((m) => m.id);
    } catch {
      throw new BackendUnavailableError(`the chat server at ${url} answered with no model list (${errorMessageOf(body)}); is it an OpenAI-compatible server?`);
    }
    if (!listed(ids, this.config.model)) {
      throw new BackendUnavailableError(
        ids.length === 0
          ? `the chat server at ${this.root} has no models; load or pull "${this.config.model}" there`
          : `the chat server at ${this.root} has no model "${this.config.model}"; it has ${ids.map((id) => `"${id}"`).join(', ')} (set model to one of them, or load "${this.config.model}" there)`,
      );
    }
    return { models: [this.config.model], note: `chat at ${this.root}, model ${this.config.model}${this.config.vision ? ' (vision)' : ''}` };
  }

  handlers(): TaskHandler[] {
    return this.kinds.map((kind) => {
      switch (kind) {
        case 'text.generate':
          return new TextGenerateHandler(this.config, this.root);
        case 'image.caption':
          return new ImageCaptionHandler(this.config, this.root);
        case 'fusion.llm':
          return new FusionLlmHandler(this.config, this.root);
      }
    });
  }
}

/**
 * The backend of a `backends.chat` entry of a worker config.
 * @throws InvalidOptionError for a config that cannot work (see ChatBackend).
 */
export function createChatBackend(config: ChatBackendConfig, _ctx: BackendContext): Backend {
  return new ChatBackend(config);
}
