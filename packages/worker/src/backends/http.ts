import { z } from 'zod';
import { TaskFailedError } from '../errors.js';
import { BackendUnavailableError } from './backend.js';

/** The message of an error, with its cause's (fetch puts "ECONNREFUSED …" in the cause). */
export function causeOf(err: unknown): string {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return `${err.message}${cause}`;
  }
  return String(err);
}

const errorBodySchema = z.union([
  // OpenAI and the servers that copy it
  z.object({ error: z.object({ message: z.string() }) }),
  // KServe v2, llama.cpp and others
  z.object({ error: z.string() }),
  // older vLLM
  z.object({ object: z.literal('error'), message: z.string() }),
]);

/** The message of an error body (`{"error": {"message": …}}` or `{"error": "…"}`), or the body's start. */
export function errorMessageOf(body: string): string {
  try {
    const parsed = errorBodySchema.safeParse(JSON.parse(body));
    if (parsed.success) {
      const data = parsed.data;
      if ('message' in data) return data.message;
      return typeof data.error === 'string' ? data.error : data.error.message;
    }
  } catch {
    // not JSON: fall through
  }
  return body.slice(0, 300).replace(/\s+/g, ' ').trim() || '(no body)';
}

/** `url` without trailing slashes, so paths can be appended. */
export function baseUrl(url: string): string {
  return url.replace(/\/+$/, '');
}

export function bearer(apiKey: string | undefined): Record<string, string> {
  return apiKey ? { authorization: `Bearer ${apiKey}` } : {};
}

/**
 * Sends a request for a task. A server that cannot be reached fails the attempt retryably
 * (BACKEND_UNAVAILABLE: another try, or another worker, may do); an answer that is not 2xx
 * fails it retryably for 408, 429 and 5xx (busy or broken), and for good otherwise
 * (BACKEND_REFUSED: the same request would be refused again). Returns the body of a 2xx.
 */
export async function taskRequest(what: string, url: string, init: RequestInit & { signal: AbortSignal }): Promise<string> {
  const response = await taskStream(what, url, init);
  return response.text();
}

/**
 * taskRequest for an answer that is read as it comes (a stream of server-sent events):
 * resolves with a 2xx response whose body is not read yet; fails the attempt as taskRequest
 * does for a server that cannot be reached or an answer that is not 2xx.
 */
export async function taskStream(what: string, url: string, init: RequestInit & { signal: AbortSignal }): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    if (init.signal.aborted) throw err;
    throw new TaskFailedError('BACKEND_UNAVAILABLE', `${what} at ${url} cannot be reached: ${causeOf(err)}`, true, { cause: err });
  }
  if (!response.ok) {
    const body = await response.text();
    const retryable = isRetryableStatus(response.status);
    throw new TaskFailedError(retryable ? 'BACKEND_UNAVAILABLE' : 'BACKEND_REFUSED', `${what} answered ${response.status}: ${errorMessageOf(body)}`, retryable);
  }
  return response;
}

/** Whether an HTTP status means "busy or broken, try again" (408, 429, 5xx) rather than "refused". */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/**
 * A start-up check's request: resolves with the status and body of any answer (a 404 still
 * shows the server is there); throws BackendUnavailableError when nothing answers.
 */
export async function checkRequest(what: string, url: string, init: RequestInit & { signal: AbortSignal }): Promise<{ status: number; body: string }> {
  try {
    const response = await fetch(url, init);
    return { status: response.status, body: await response.text() };
  } catch (err) {
    const why = init.signal.aborted ? 'no answer in time' : causeOf(err);
    throw new BackendUnavailableError(`${what} at ${url} cannot be reached (${why}); is it running, and is the URL right?`, { cause: err });
  }
}
