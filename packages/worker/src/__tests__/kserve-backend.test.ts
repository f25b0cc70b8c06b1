import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { JsonObject } from '@mmgrid/core';
import { BackendUnavailableError, type Backend, type TaskContext } from '../backends/backend.js';
import { createKserveBackend } from '../backends/kserve/kserve-backend.js';
import type { InferRequest, ModelMetadata } from '../backends/kserve/kserve-protocol.js';
import { TaskFailedError } from '../errors.js';
import { kserveBackendSchema, type KserveBackendConfig } from '../worker-config.js';
import { classifyTask } from './classify-task.js';

const URL_BASE = 'http://kserve.test:8000';

/** A server's answers by "METHOD path"; anything else is a 404 with a KServe error. */
type Routes = Record<string, () => Response>;

const json = (status: number, body: unknown): Response => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
const ok = (): Response => new Response(null, { status: 200 });

const METADATA: ModelMetadata = {
  name: 'resnet',
  versions: ['1', '2'],
  platform: 'onnxruntime_onnx',
  inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 3, 4, 4] }],
  outputs: [{ name: 'logits', datatype: 'FP32', shape: [-1, 3] }],
};

/** Routes of a healthy server with `resnet` (versions 1 and 2) ready. */
function healthy(metadata: unknown = METADATA, version = ''): Routes {
  const model = `/v2/models/resnet${version}`;
  return {
    'GET /v2/health/ready': ok,
    [`GET ${model}/ready`]: ok,
    [`GET ${model}`]: () => json(200, metadata),
  };
}

let calls: { method: string; url: string; body: string | undefined; headers: Record<string, string> }[] = [];

/** Makes the global fetch answer from `routes` (no network), recording each request. */
function serve(routes: Routes): void {
  calls = [];
  vi.stubGlobal('fetch', (input: string | URL, init: RequestInit = {}) => {
    const url = new URL(String(input));
    const method = init.method ?? 'GET';
    calls.push({ method, url: String(input), body: typeof init.body === 'string' ? init.body : undefined, headers: { ...(init.headers as Record<string, string>) } });
    const route = routes[`${method} ${url.pathname}`];
    return Promise.resolve(route ? route() : json(404, { error: `no route ${method} ${url.pathname}` }));
  });
}

let dir: string;

function config(overrides: Partial<Record<keyof KserveBackendConfig, unknown>> = {}): KserveBackendConfig {
  return kserveBackendSchema.parse({ name: 'cls', url: `${URL_BASE}/`, model: 'resnet', input: { width: 4, height: 4, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }, ...overrides });
}

function backend(c: KserveBackendConfig = config()): Backend {
  return createKserveBackend(c, { baseDir: dir, logger: pino({ level: 'silent' }) });
}

function taskContext(params: JsonObject = {}, file = path.join(dir, 'red.png')): TaskContext {
  return classifyTask(file, params);
}

/** The error a promise rejects with. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('it did not fail');
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'kserve-unit-'));
  await sharp({ create: { width: 8, height: 6, channels: 3, background: { r: 255, g: 0, b: 0 } } })
    .png()
    .toFile(path.join(dir, 'red.png'));
  await writeFile(path.join(dir, 'not-an-image.png'), 'hello');
  await writeFile(path.join(dir, 'labels.txt'), 'cat\ndog\nbird\n');
  await writeFile(path.join(dir, 'two-labels.txt'), 'cat\ndog\n');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('kserve backend: the start-up check', () => {
  it('asks the server, then the model, then its metadata, and says what it found', async () => {
    serve(healthy());
    const b = backend(config({ labels: 'labels.txt' }));
    expect(b).toMatchObject({ name: 'cls', type: 'kserve', kinds: ['image.classify'] });
    const check = await b.check(AbortSignal.timeout(5000));
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      `GET ${URL_BASE}/v2/health/ready`,
      `GET ${URL_BASE}/v2/models/resnet/ready`,
      `GET ${URL_BASE}/v2/models/resnet`,
    ]);
    expect(check).toEqual({
      models: ['resnet'],
      note: `KServe v2 model resnet (versions 1, 2) at ${URL_BASE}, input 'input' [1,3,4,4] FP32, output 'logits' (its only output), 3 labels`,
    });
    expect(b.handlers().map((h) => ({ kind: h.kind, models: h.models }))).toEqual([{ kind: 'image.classify', models: ['resnet'] }]);
  });

  it('uses the configured version in every path', async () => {
    serve(healthy(METADATA, '/versions/2'));
    const check = await backend(config({ version: '2' })).check(AbortSignal.timeout(5000));
    expect(calls.map((c) => c.url)).toEqual([`${URL_BASE}/v2/health/ready`, `${URL_BASE}/v2/models/resnet/versions/2/ready`, `${URL_BASE}/v2/models/resnet/versions/2`]);
    expect(check.note).toMatch(/^KServe v2 model resnet \(version 2\) at /);
  });

  it.each([
    {
      name: 'a server that cannot be reached',
      setup: () =>
        vi.stubGlobal('fetch', () => Promise.reject(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:8000') }))),
      message: `the KServe server at ${URL_BASE}/v2/health/ready cannot be reached (fetch failed: connect ECONNREFUSED 127.0.0.1:8000); is it running, and is the URL right?`,
    },
    {
      name: 'a server that is not ready',
      setup: () => serve({ ...healthy(), 'GET /v2/health/ready': () => json(503, { error: 'loading models' }) }),
      message: `the KServe server at ${URL_BASE} is not ready: GET /v2/health/ready answered 503: loading models`,
    },
    {
      name: 'a server that does not speak the protocol',
      setup: () => serve({}),
      message: 'answered 404: no route GET /v2/health/ready; does it speak the KServe v2 / Open Inference Protocol, and is the URL its root?',
    },
    {
      name: 'an unknown model',
      setup: () => serve({ ...healthy(), 'GET /v2/models/resnet/ready': () => json(404, { error: "Request for unknown model: 'resnet' is not found" }) }),
      message: `the KServe server at ${URL_BASE} has no ready model resnet (GET /v2/models/resnet/ready answered 404: Request for unknown model: 'resnet' is not found); is the model loaded, and its name right?`,
    },
    {
      name: 'a model that says it is not ready',
      setup: () => serve({ ...healthy(), 'GET /v2/models/resnet/ready': () => json(200, { name: 'resnet', ready: false }) }),
      message: 'has no ready model resnet (it says it is not ready)',
    },
    {
      name: 'metadata that is not metadata',
      setup: () => serve(healthy({ name: 'resnet', inputs: 'none' })),
      message: 'answered with metadata for model resnet that is not KServe v2 model metadata',
    },
    {
      name: 'an input shape that does not take the configured tensor',
      setup: () => serve(healthy({ ...METADATA, inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 3, 224, 224] }] })),
      message: "model resnet expects input 'input' [-1,3,224,224] FP32; the config makes [1,3,4,4] FP32 (NCHW, 4×4): set input.width: 224 and input.height: 224 in the worker config",
    },
    {
      name: 'a layout that does not match',
      setup: () => serve(healthy({ ...METADATA, inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4, 4, 3] }] })),
      message: 'set input.layout: NHWC in the worker config',
    },
    {
      name: 'labels that do not match the outputs',
      setup: () => serve(healthy()),
      config: { labels: 'two-labels.txt' },
      message: `the labels file two-labels.txt has 2 labels, but model resnet's output 'logits' has 3 scores`,
    },
    {
      name: 'a labels file that is not there',
      setup: () => serve(healthy()),
      config: { labels: 'missing.txt' },
      message: `the labels file ${path.join('DIR', 'missing.txt')} cannot be read (ENOENT)`,
    },
  ])('fails for $name, saying what is wrong', async ({ setup, config: overrides, message }) => {
    setup();
    const b = backend(config(overrides));
    const err = await rejection(b.check(AbortSignal.timeout(5000)));
    expect(err).toBeInstanceOf(BackendUnavailableError);
    expect((err as Error).message).toContain(message.replace('DIR', dir));
    expect(() => b.handlers()).toThrow('before a passing check');
  });
});

describe('kserve backend: image.classify', () => {
  async function handler(c: KserveBackendConfig = config({ labels: 'labels.txt' }), extra: Routes = {}, metadata: unknown = METADATA) {
    serve({ ...healthy(metadata), ...extra });
    const b = backend(c);
    await b.check(AbortSignal.timeout(5000));
    const [h] = b.handlers();
    if (!h) throw new Error('no handler');
    return h;
  }

  const answer = (data: unknown[], extra: object = {}): (() => Response) => () =>
    json(200, { model_name: 'resnet', model_version: '1', id: 'task-1', outputs: [{ name: 'logits', datatype: 'FP32', shape: [1, 3], data }], ...extra });

  it('sends the image as one flat FP32 tensor and ranks the softmaxed scores', async () => {
    const h = await handler(undefined, { 'POST /v2/models/resnet/infer': answer([1, 3, 2]) });
    const output = await h.run(taskContext({ top: 2 }));
    const infer = calls.at(-1);
    expect(infer?.method).toBe('POST');
    expect(infer?.url).toBe(`${URL_BASE}/v2/models/resnet/infer`);
    expect(infer?.headers['content-type']).toBe('application/json');
    const body = JSON.parse(infer?.body ?? '') as InferRequest;
    expect(body.id).toBe('task-1');
    expect(body.outputs).toEqual([{ name: 'logits' }]);
    expect(body.inputs).toHaveLength(1);
    expect(body.inputs[0]).toMatchObject({ name: 'input', shape: [1, 3, 4, 4], datatype: 'FP32' });
    // A red image, NCHW, (v / 255 - 0.5) / 0.5: 16 ones, then 32 minus ones.
    expect(body.inputs[0]?.data).toEqual([...Array<number>(16).fill(1), ...Array<number>(32).fill(-1)]);
    const e = [Math.exp(1 - 3), 1, Math.exp(2 - 3)];
    const sum = e[0]! + e[1]! + e[2]!;
    expect(output).toEqual({
      model: 'resnet',
      runtime: `kserve v2 (${URL_BASE})`,
      labels: [
        { label: 'dog', index: 1, score: Math.round((1 / sum) * 1e6) / 1e6 },
        { label: 'bird', index: 2, score: Math.round((e[2]! / sum) * 1e6) / 1e6 },
      ],
    });
  });

  it('reports raw scores without softmax, five by default, and classes past the labels by number', async () => {
    const h = await handler(config({ softmax: false }), { 'POST /v2/models/resnet/infer': answer([[0.25, 0.5, 0.125]]) });
    expect(await h.run(taskContext())).toMatchObject({
      labels: [
        { label: 'class 1', index: 1, score: 0.5 },
        { label: 'class 0', index: 0, score: 0.25 },
        { label: 'class 2', index: 2, score: 0.125 },
      ],
    });
  });

  it('sends a model without a batch dimension a tensor without one, and picks the scores from the answer when the metadata lists no outputs', async () => {
    const metadata = { ...METADATA, inputs: [{ name: 'data_0', datatype: 'FP32', shape: [3, 4, 4] }], outputs: [] };
    const h = await handler(config({ softmax: false }), {
      'POST /v2/models/resnet/infer': () =>
        json(200, {
          model_name: 'resnet',
          outputs: [
            { name: 'best', datatype: 'INT64', shape: [1], data: [0] },
            { name: 'prob', datatype: 'FP32', shape: [3], data: [0.75, 0.125, 0.125] },
          ],
        }),
    }, metadata);
    const output = await h.run(taskContext({ top: 1 }));
    const body = JSON.parse(calls.at(-1)?.body ?? '') as InferRequest;
    expect(body.inputs[0]?.shape).toEqual([3, 4, 4]);
    expect(body.outputs).toBeUndefined();
    expect(output).toMatchObject({ labels: [{ label: 'class 0', index: 0, score: 0.75 }] });
  });

  it.each([
    { status: 503, body: { error: 'model is loading' }, code: 'BACKEND_UNAVAILABLE', retryable: true, message: 'the KServe server answered 503: model is loading' },
    { status: 429, body: { error: 'too many requests' }, code: 'BACKEND_UNAVAILABLE', retryable: true, message: 'the KServe server answered 429: too many requests' },
    {
      status: 400,
      body: { error: "unexpected shape for input 'input' for model 'resnet'. Expected [-1,3,4,4], got [1,3,5,5]" },
      code: 'BACKEND_REFUSED',
      retryable: false,
      message: "the KServe server answered 400: unexpected shape for input 'input' for model 'resnet'. Expected [-1,3,4,4], got [1,3,5,5]",
    },
    { status: 404, body: { error: "Request for unknown model: 'resnet' is not found" }, code: 'BACKEND_REFUSED', retryable: false, message: "the KServe server answered 404: Request for unknown model: 'resnet' is not found" },
  ])('maps a $status answer to $code (retryable: $retryable)', async ({ status, body, code, retryable, message }) => {
    const h = await handler(undefined, { 'POST /v2/models/resnet/infer': () => json(status, body) });
    const err = await rejection(h.run(taskContext()));
    expect(err).toBeInstanceOf(TaskFailedError);
    expect(err).toMatchObject({ code, retryable, message });
  });

  it.each([
    { name: 'not JSON', answer: () => new Response('<html>Bad gateway</html>', { status: 200 }), message: "the KServe server's answer is not JSON: <html>Bad gateway</html>" },
    { name: 'no outputs', answer: () => json(200, { model_name: 'resnet', outputs: [] }), message: "the KServe server's answer is not a KServe v2 inference response (outputs:" },
    { name: 'a missing shape', answer: () => json(200, { outputs: [{ name: 'logits', datatype: 'FP32', data: [1, 2, 3] }] }), message: 'not a KServe v2 inference response (outputs.0.shape:' },
    { name: 'too few values', answer: answer([1, 2]), message: "output 'logits' has shape [1,3] but 2 values" },
    { name: 'another output', answer: () => json(200, { outputs: [{ name: 'probs', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }), message: "has no output 'logits' (it has 'probs')" },
  ])('fails INVALID_OUTPUT, retryable, on an answer with $name', async ({ answer: reply, message }) => {
    const h = await handler(undefined, { 'POST /v2/models/resnet/infer': reply });
    const err = await rejection(h.run(taskContext()));
    expect(err).toMatchObject({ code: 'INVALID_OUTPUT', retryable: true });
    expect((err as Error).message).toContain(message);
  });

  it('refuses another model, a bad top and an image that does not decode, before asking the server', async () => {
    const h = await handler(undefined, { 'POST /v2/models/resnet/infer': answer([1, 2, 3]) });
    const before = calls.length;
    await expect(h.run(taskContext({ model: 'vit' }))).rejects.toMatchObject({
      code: 'INVALID_PARAMS',
      retryable: false,
      message: 'this worker classifies with model resnet, not vit; to send the step to a worker that serves it, use requires: { model: … }',
    });
    await expect(h.run(taskContext({ top: 0 }))).rejects.toMatchObject({ code: 'INVALID_PARAMS', retryable: false });
    await expect(h.run(taskContext({}, path.join(dir, 'not-an-image.png')))).rejects.toMatchObject({ code: 'INPUT_DECODE_FAILED', retryable: false });
    expect(calls.length).toBe(before);
    // The model it serves may be named.
    await expect(h.run(taskContext({ model: 'resnet', top: 1 }))).resolves.toMatchObject({ labels: [{ label: 'bird', index: 2 }] });
  });
});
