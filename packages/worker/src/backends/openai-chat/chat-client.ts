import { TaskFailedError } from '../../errors.js';
import { bearer, causeOf, taskStream } from '../http.js';
import { ChatStreamReader, parseCompletion, type ChatAnswer } from './chat-stream.js';
import { sseEvents } from './sse.js';

export type ContentPart = { readonly type: 'text'; readonly text: string } | { readonly type: 'image_url'; readonly image_url: { readonly url: string } };

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string | readonly ContentPart[];
}

export interface ChatRequest {
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly maxTokens: number;
  readonly temperature: number;
}

/** Where the server is: its root URL (no trailing slash, no /v1) and its key. */
export interface ChatServer {
  readonly root: string;
  readonly apiKey?: string | undefined;
}

/**
 * Asks the server for a chat completion, streamed (`POST /v1/chat/completions` with
 * `stream: true`), and reads the answer as it comes, calling `onTokens` with the tokens so
 * far. Aborting `signal` closes the connection, which makes vLLM, llama.cpp and Ollama stop
 * generating.
 *
 * @throws TaskFailedError: BACKEND_UNAVAILABLE (retryable) when the server cannot be reached,
 * is busy (408, 429, 5xx), breaks off the stream or reports an engine error; BACKEND_REFUSED
 * when it refuses the request (another 4xx, or an error with such a code in the stream).
 */
export async function streamChat(server: ChatServer, request: ChatRequest, signal: AbortSignal, onTokens: (tokens: number) => void): Promise<ChatAnswer> {
  const url = `${server.root}/v1/chat/completions`;
  const response = await taskStream('the chat server', url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', ...bearer(server.apiKey) },
    body: JSON.stringify({
      model: request.model,
      messages: request.messages,
      max_tokens: request.maxTokens,
      temperature: request.temperature,
      stream: true,
      stream_options: { include_usage: true },
    }),
    signal,
  });
  try {
    if (!(response.headers.get('content-type') ?? '').includes('text/event-stream')) {
      return parseCompletion(await response.text(), request.model);
    }
    if (!response.body) throw new TaskFailedError('BACKEND_UNAVAILABLE', 'the chat server answered with no body', true);
    const reader = new ChatStreamReader(request.model);
    let reported = 0;
    for await (const event of sseEvents(response.body)) {
      if (reader.push(event)) break;
      if (reader.tokens !== reported) {
        reported = reader.tokens;
        onTokens(reported);
      }
    }
    return reader.answer();
  } catch (err) {
    if (err instanceof TaskFailedError || signal.aborted) throw err;
    // The connection broke while the answer was coming (the server died, a proxy cut it).
    throw new TaskFailedError('BACKEND_UNAVAILABLE', `the chat server's stream broke off: ${causeOf(err)}`, true, { cause: err });
  } finally {
    // Breaking out of the loop (or an error) closes the body; a body left unread holds the socket.
    if (!response.bodyUsed) await response.body?.cancel().catch(() => undefined);
  }
}
