import { describe, expect, it } from 'vitest';
import { ChatStreamReader, parseCompletion } from '../backends/openai-chat/chat-stream.js';
import { SseParser } from '../backends/openai-chat/sse.js';
import { TaskFailedError } from '../errors.js';

/** Reads a whole stream as a server would send it; returns the answer and the tokens seen at each step. */
function read(stream: string): { answer: ReturnType<ChatStreamReader['answer']>; tokens: number[] } {
  const parser = new SseParser();
  const reader = new ChatStreamReader('asked-model');
  const tokens: number[] = [];
  for (const event of [...parser.push(stream), ...parser.end()]) {
    if (reader.push(event)) break;
    tokens.push(reader.tokens);
  }
  return { answer: reader.answer(), tokens };
}

function failure(fn: () => unknown): TaskFailedError {
  try {
    fn();
  } catch (err) {
    if (err instanceof TaskFailedError) return err;
    throw err;
  }
  throw new Error('it did not fail');
}

const chunk = (delta: object, finish: string | null = null, extra: object = {}): string =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model: 'served-model', choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
const usage = (prompt: number, completion: number): string =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', model: 'served-model', choices: [], usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion } })}\n\n`;
const DONE = 'data: [DONE]\n\n';

describe('ChatStreamReader', () => {
  it('puts the deltas together, with the finish reason, the usage and the served model', () => {
    const { answer, tokens } = read(chunk({ role: 'assistant', content: '' }) + chunk({ content: ' A red' }) + chunk({ content: ' square.\n' }) + chunk({}, 'stop') + usage(12, 3) + DONE);
    expect(answer).toEqual({ text: 'A red square.', model: 'served-model', finishReason: 'stop', usage: { promptTokens: 12, completionTokens: 3 } });
    expect(tokens).toEqual([0, 1, 2, 2, 2]);
  });

  it('counts reasoning deltas as progress but keeps them out of the answer', () => {
    const { answer, tokens } = read(chunk({ reasoning_content: 'hmm' }) + chunk({ reasoning: 'so' }) + chunk({ content: 'Yes.' }, 'stop') + DONE);
    expect(answer.text).toBe('Yes.');
    expect(tokens).toEqual([1, 2, 3]);
  });

  it('takes usage sent on the last content chunk (Ollama, llama.cpp) and null content deltas', () => {
    const { answer } = read(chunk({ content: null }) + chunk({ content: 'ok' }, 'length', { usage: { prompt_tokens: 5, completion_tokens: 1 } }) + DONE);
    expect(answer).toMatchObject({ text: 'ok', finishReason: 'length', usage: { promptTokens: 5, completionTokens: 1 } });
  });

  it('reads only choice 0, and keeps the asked model when the chunks name none', () => {
    const line = (index: number, content: string): string => `data: ${JSON.stringify({ choices: [{ index, delta: { content } }] })}\n\n`;
    const { answer } = read(line(1, 'other') + line(0, 'mine') + `data: ${JSON.stringify({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n` + DONE);
    expect(answer).toEqual({ text: 'mine', model: 'asked-model', finishReason: 'stop', usage: null });
  });

  it('without usage the answer has usage null, and without a finish reason "unknown"', () => {
    expect(read(chunk({ content: 'x' }) + DONE).answer).toMatchObject({ finishReason: 'unknown', usage: null });
  });

  it('a stream cut before [DONE] and before any finish reason fails, retryably', () => {
    const err = failure(() => read(chunk({ content: 'Half an ans' })));
    expect(err).toMatchObject({ code: 'BACKEND_UNAVAILABLE', retryable: true });
    expect(err.message).toBe("the chat server's stream ended before the answer was complete (after 1 tokens, no finish_reason and no [DONE])");
  });

  it('a stream that ends after a finish reason without [DONE] is complete', () => {
    expect(read(chunk({ content: 'All.' }, 'stop')).answer).toMatchObject({ text: 'All.', finishReason: 'stop' });
  });

  describe('errors in the stream', () => {
    const cases: [string, string, string, boolean][] = [
      ['OpenAI / vLLM, no code', 'data: {"error":{"message":"engine died","type":"InternalServerError"}}\n\n', 'engine died', true],
      ['vLLM with a 400 code', 'data: {"error":{"message":"prompt too long","type":"BadRequestError","code":400}}\n\n', 'prompt too long', false],
      ["vLLM's older ErrorResponse", 'data: {"object":"error","message":"bad","type":"BadRequestError","code":400}\n\n', 'bad', false],
      ['a 503 code is busy, not refused', 'data: {"error":{"message":"overloaded","code":503}}\n\n', 'overloaded', true],
      ['a 429 code as a string', 'data: {"error":{"message":"slow down","code":"429"}}\n\n', 'slow down', true],
      ['a string error', 'data: {"error":"out of memory"}\n\n', 'out of memory', true],
      ["llama.cpp's error line", 'error: {"code":400,"message":"the request exceeds the available context size","type":"exceed_context_size_error"}\n\n', 'the request exceeds the available context size', false],
      ['an error event of another shape', 'event: error\ndata: {"detail":"nope"}\n\n', '{"detail":"nope"}', true],
    ];
    it.each(cases)('%s', (_name, line, message, retryable) => {
      const err = failure(() => read(chunk({ content: 'Start' }) + line + DONE));
      expect(err.message).toBe(`the chat server reported an error: ${message}`);
      expect(err).toMatchObject({ code: retryable ? 'BACKEND_UNAVAILABLE' : 'BACKEND_REFUSED', retryable });
    });
  });

  it('a chunk that is not JSON, or not a chunk, fails retryably', () => {
    expect(failure(() => read('data: {"choices": [\n\n'))).toMatchObject({ code: 'BACKEND_UNAVAILABLE', retryable: true, message: expect.stringMatching(/^the chat server sent a chunk that is not JSON/) as string });
    expect(failure(() => read('data: {"choices": "none"}\n\n')).message).toMatch(/not a chat\.completion\.chunk/);
  });
});

describe('parseCompletion', () => {
  it('reads a whole chat.completion (a server that did not stream)', () => {
    const body = JSON.stringify({
      object: 'chat.completion',
      model: 'm',
      choices: [{ index: 0, message: { role: 'assistant', content: ' Done. ' }, finish_reason: 'stop' }],
      usage: { prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 },
    });
    expect(parseCompletion(body, 'asked')).toEqual({ text: 'Done.', model: 'm', finishReason: 'stop', usage: { promptTokens: 4, completionTokens: 2 } });
  });

  it('fails for an error document, or for something else', () => {
    expect(failure(() => parseCompletion('{"error":{"message":"no","code":404}}', 'asked'))).toMatchObject({ code: 'BACKEND_REFUSED', message: 'the chat server reported an error: no' });
    expect(failure(() => parseCompletion('{"choices":[]}', 'asked'))).toMatchObject({ code: 'BACKEND_UNAVAILABLE', retryable: true });
  });
});
