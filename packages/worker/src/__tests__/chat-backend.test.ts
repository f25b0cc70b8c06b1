import { describe, expect, it } from 'vitest';
import { InvalidOptionError, type FusionReportOutput, type JsonObject } from '@mmgrid/core';
import type { UpstreamOutput } from '@mmgrid/proto';
import type { TaskContext, TaskHandler } from '../backends/backend.js';
import { ChatBackend, chatServerRoot } from '../backends/openai-chat/chat-backend.js';
import { fusionMessages } from '../backends/openai-chat/fusion-prompt.js';
import { TaskFailedError } from '../errors.js';
import { chatBackendSchema } from '../worker-config.js';

const config = (fields: Record<string, unknown>) => chatBackendSchema.parse({ url: 'http://127.0.0.1:8000', model: 'qwen', ...fields });

describe('ChatBackend', () => {
  it.each([
    [{}, ['text.generate', 'fusion.llm']],
    [{ vision: true }, ['text.generate', 'fusion.llm', 'image.caption']],
    [{ vision: true, kinds: ['image.caption'] }, ['image.caption']],
    [{ kinds: ['fusion.llm', 'fusion.llm'] }, ['fusion.llm']],
  ])('with %j serves %j, each handler announcing the model', (fields, kinds) => {
    const backend = new ChatBackend(config(fields));
    expect(backend.kinds).toEqual(kinds);
    expect(backend.handlers().map((h) => [h.kind, h.models])).toEqual(kinds.map((k) => [k, ['qwen']]));
  });

  it('refuses image.caption for a model without vision, saying how to fix it', () => {
    const create = (): ChatBackend => new ChatBackend(config({ name: 'local', kinds: ['text.generate', 'image.caption'] }));
    expect(create).toThrow(InvalidOptionError);
    expect(create).toThrow('option backends.chat "local" kinds must be text.generate and fusion.llm only: image.caption needs a model that takes images; if this one does, add "vision: true"');
  });

  it.each([
    ['http://h:8000', 'http://h:8000'],
    ['http://h:8000/', 'http://h:8000'],
    ['http://h:11434/v1', 'http://h:11434'],
    ['http://h/llm/v1/', 'http://h/llm'],
    ['http://h/v1beta', 'http://h/v1beta'],
  ])('takes %s as the server at %s', (url, root) => {
    expect(chatServerRoot(url)).toBe(root);
  });
});

describe('fusionMessages', () => {
  const report: FusionReportOutput = {
    prompt: 'Is the shop open at night?',
    summary: 'unused here',
    sections: [
      { input: 'sign', modality: 'image', kinds: ['image.ocr'], lines: ['text reads "OPEN 24 HOURS" (3 words, 95% confidence)'] },
      { input: 'memo', modality: 'audio', kinds: ['audio.analyze'], lines: ['audio.analyze failed: cannot decode'] },
    ],
    matchedTerms: [{ term: 'open', foundIn: ['sign'] }],
    missing: [{ input: 'memo', kind: 'audio.analyze', reason: 'cannot decode' }],
    coverage: 0.5,
  };

  it('gives the model the question, every section, the matched terms and what is missing', () => {
    const [system, user] = fusionMessages(report);
    expect(system?.role).toBe('system');
    expect(system?.content).toContain('say so plainly');
    expect(user).toEqual({
      role: 'user',
      content: [
        'Question: Is the shop open at night?',
        '',
        'Findings:',
        '- sign (image):',
        '  - text reads "OPEN 24 HOURS" (3 words, 95% confidence)',
        '- memo (audio):',
        '  - audio.analyze failed: cannot decode',
        '',
        'Words of the question found in the inputs: "open" in sign.',
        '',
        'Missing (50% of the analyses succeeded):',
        '- audio.analyze of memo: cannot decode',
        '',
        'Answer the question in a few sentences from these findings. If they do not answer it, say so plainly.',
      ].join('\n'),
    });
  });

  it('without a prompt asks for a summary of the inputs', () => {
    const user = fusionMessages({ ...report, prompt: ' ', matchedTerms: [], missing: [], coverage: 1 })[1];
    expect(user?.content).toMatch(/^Task: summarise what the inputs contain\.\n/);
    expect(user?.content).toMatch(/\nSummarise what the inputs contain in a few sentences\.$/);
    expect(user?.content).not.toContain('Missing');
  });
});

describe('chat handlers refuse what no server could answer, before asking one', () => {
  // Every case fails before a request is made (nothing listens at this URL anyway).
  const backend = new ChatBackend(config({ url: 'http://127.0.0.1:9', vision: true }));
  const handler = (kind: string): TaskHandler => {
    const found = backend.handlers().find((h) => h.kind === kind);
    if (!found) throw new Error(`no ${kind} handler`);
    return found;
  };
  const context = (kind: string, params: JsonObject, upstream: UpstreamOutput[] = [], texts: [string, string][] = [['memo', 'hello']]): TaskContext => ({
    jobId: 'j1',
    taskId: 't1',
    kind,
    attempt: 1,
    params,
    files: new Map(),
    mediaTypes: new Map(),
    texts: new Map(texts),
    upstream,
    signal: new AbortController().signal,
    progress: () => undefined,
    putBlob: () => Promise.reject(new Error('chat tasks store no blobs')),
  });
  const failure = async (kind: string, ctx: TaskContext): Promise<TaskFailedError> => {
    const err: unknown = await handler(kind).run(ctx).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (!(err instanceof TaskFailedError)) throw new Error(`expected a TaskFailedError, got ${String(err)}`);
    return err;
  };
  const report = (error?: { code: string; message: string }): UpstreamOutput => ({
    taskId: 't2',
    kind: 'fusion.report',
    outputJson: error ? '' : JSON.stringify({ prompt: '', summary: '', sections: [], matchedTerms: [], missing: [], coverage: 1 }),
    error: error ? { ...error, retryable: false } : undefined,
    inputNames: [],
  });

  it('bad parameters', async () => {
    expect(await failure('text.generate', context('text.generate', { maxTokens: 0 }))).toMatchObject({ code: 'INVALID_PARAMS', retryable: false, message: expect.stringMatching(/^text\.generate parameters: maxTokens: /) as string });
    expect(await failure('image.caption', context('image.caption', { prompt: 'x' }))).toMatchObject({ code: 'INVALID_PARAMS', message: 'image.caption parameters: has no parameter "prompt"' });
  });

  it('a missing input', async () => {
    expect(await failure('text.generate', context('text.generate', {}, [], []))).toMatchObject({ code: 'INPUT_MISSING', retryable: false });
    expect(await failure('image.caption', context('image.caption', {}))).toMatchObject({ code: 'INPUT_MISSING', message: 'image.caption needs one image input' });
  });

  it('fusion.llm without exactly one fusion report, or with a failed one', async () => {
    const ocr: UpstreamOutput = { taskId: 't1', kind: 'image.ocr', outputJson: '{}', error: undefined, inputNames: ['sign'] };
    expect(await failure('fusion.llm', context('fusion.llm', {}, [ocr]))).toMatchObject({
      code: 'INPUT_MISSING',
      retryable: false,
      message: 'fusion.llm reads the output of one fusion.report step (from: [report]); it was given image.ocr',
    });
    expect((await failure('fusion.llm', context('fusion.llm', {}, [report(), report()]))).message).toMatch(/it was given fusion\.report, fusion\.report$/);
    expect(await failure('fusion.llm', context('fusion.llm', {}, [report({ code: 'TASK_FAILED', message: 'boom' })]))).toMatchObject({
      code: 'UPSTREAM_FAILED',
      message: 'the fusion report failed, so there is nothing to answer from: boom',
    });
  });
});
