import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ImageClassifyOutput, JsonObject } from '@mmgrid/core';
import { BackendUnavailableError, type Backend } from '../backends/backend.js';
import { createOnnxBackend } from '../backends/onnx/onnx-backend.js';
import { openOnnxSession } from '../backends/onnx/onnx-session.js';
import { InputDecodeError, TaskFailedError } from '../errors.js';
import { onnxBackendSchema } from '../worker-config.js';
import { classifyTask } from './classify-task.js';
import { linearClassifier, rgbPng } from './onnx-fixtures.js';

// A 2×2 image: red, green / blue, white. With scale 255, mean 0.5 and std 0.5 every value is
// -1 or 1, so the NCHW input is R [1,-1,-1,1], G [-1,1,-1,1], B [-1,-1,1,1].
const PIXELS = [
  [255, 0, 0],
  [0, 255, 0],
  [0, 0, 255],
  [255, 255, 255],
] as const;
const INPUT = { width: 2, height: 2, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
// cat: half the first value (red of the top-left pixel); dog: the sixth (NCHW: green of the
// top-right pixel; NHWC: blue of the top-right pixel); fox: a tenth of the sum (0 here).
const WEIGHTS = [
  [0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
  [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0],
  Array<number>(12).fill(0.1),
];
const BIAS = [0.25, -0.5, 2];
const LABELS = ['cat', 'dog', 'fox'];

function softmaxOf(logits: number[]): number[] {
  const sum = logits.reduce((s, l) => s + Math.exp(l), 0);
  return logits.map((l) => Math.exp(l) / sum);
}

describe('the ONNX Runtime backend', () => {
  let dir: string;
  let image: string;
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
  const opened: Backend[] = [];

  /** A backend for `model.onnx` in the test folder (written from `model`), loaded on this thread. */
  async function backend(config: Record<string, unknown> = {}, model: Uint8Array | undefined = linearClassifier({ weights: WEIGHTS, bias: BIAS })): Promise<Backend> {
    if (model) await writeFile(path.join(dir, 'model.onnx'), model);
    const b = createOnnxBackend(onnxBackendSchema.parse({ name: 'tiny', model: 'model.onnx', labels: 'labels.txt', device: 'cpu', input: INPUT, ...config }), { baseDir: dir, logger }, openOnnxSession);
    opened.push(b);
    return b;
  }

  async function classify(b: Backend, file = image, params: JsonObject = {}): Promise<ImageClassifyOutput> {
    const [handler] = b.handlers();
    return (await handler!.run(classifyTask(file, params))) as ImageClassifyOutput;
  }

  async function failure(b: Backend): Promise<string> {
    const err: unknown = await b.check(AbortSignal.timeout(10_000)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BackendUnavailableError);
    return (err as Error).message;
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-onnx-'));
    image = path.join(dir, 'photo.png');
    await writeFile(image, await rgbPng(2, 2, PIXELS));
    await writeFile(path.join(dir, 'labels.txt'), `${LABELS.join('\n')}\n`);
  });

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((b) => b.close?.() ?? Promise.resolve()));
    lines.length = 0;
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads the model at its check, says what it found, and offers image.classify with the model', async () => {
    const b = await backend();
    const check = await b.check(AbortSignal.timeout(10_000));
    expect(check).toEqual({ models: ['tiny'], note: "model.onnx on CPU (input [1,3,2,2] 'image', output 'logits', 3 labels)" });
    expect(b.kinds).toEqual(['image.classify']);
    expect(b.handlers().map((h) => ({ kind: h.kind, models: h.models }))).toEqual([{ kind: 'image.classify', models: ['tiny'] }]);
    expect(lines.join('')).toContain("onnx tiny: model.onnx on CPU (input [1,3,2,2] 'image', output 'logits', 3 labels)");
  });

  it('classifies an image: the scores are the softmax of the logits worked out by hand, best first', async () => {
    const b = await backend();
    await b.check(AbortSignal.timeout(10_000));
    // cat 0.5·1 + 0.25 = 0.75; dog 1·1 - 0.5 = 0.5; fox 0.1·0 + 2 = 2
    const [cat, dog, fox] = softmaxOf([0.75, 0.5, 2]);
    const output = await classify(b);
    expect(output.model).toBe('tiny');
    expect(output.runtime).toBe('onnxruntime (cpu)');
    expect(output.labels.map((l) => [l.label, l.index])).toEqual([
      ['fox', 2],
      ['cat', 0],
      ['dog', 1],
    ]);
    expect(output.labels[0]!.score).toBeCloseTo(fox!, 5);
    expect(output.labels[1]!.score).toBeCloseTo(cat!, 5);
    expect(output.labels[2]!.score).toBeCloseTo(dog!, 5);
  });

  it('gives the raw scores with softmax: false, and at most `top` labels', async () => {
    const b = await backend({ softmax: false });
    await b.check(AbortSignal.timeout(10_000));
    const output = await classify(b, image, { top: 2 });
    expect(output.labels).toEqual([
      { label: 'fox', index: 2, score: 2 },
      { label: 'cat', index: 0, score: 0.75 },
    ]);
  });

  it('reads an NHWC model pixel by pixel', async () => {
    const model = linearClassifier({ input: { name: 'pixels', shape: [1, 2, 2, 3] }, weights: WEIGHTS, bias: BIAS });
    const b = await backend({ softmax: false, input: { ...INPUT, layout: 'NHWC' } }, model);
    await b.check(AbortSignal.timeout(10_000));
    // NHWC input: [1,-1,-1, -1,1,-1, -1,-1,1, 1,1,1]; dog reads the top-right pixel's blue, -1.
    expect((await classify(b)).labels).toEqual([
      { label: 'fox', index: 2, score: 2 },
      { label: 'cat', index: 0, score: 0.75 },
      { label: 'dog', index: 1, score: -1.5 },
    ]);
  });

  it('turns a photo upright before classifying it (EXIF orientation)', async () => {
    const b = await backend({ softmax: false });
    await b.check(AbortSignal.timeout(10_000));
    // Orientation 6 shows the image turned a quarter clockwise: blue, red / white, green, so
    // the NCHW input is R [-1,1,1,-1], G [-1,-1,1,1], B [1,-1,1,-1].
    const turned = path.join(dir, 'turned.png');
    await writeFile(turned, await sharp(await rgbPng(2, 2, PIXELS)).withMetadata({ orientation: 6 }).png().toBuffer());
    expect((await classify(b, turned)).labels).toEqual([
      { label: 'fox', index: 2, score: 2 },
      { label: 'cat', index: 0, score: -0.25 },
      { label: 'dog', index: 1, score: -1.5 },
    ]);
  });

  it('takes a model with a named batch dimension, and names classes without a labels file', async () => {
    const model = linearClassifier({ input: { name: 'image', shape: ['batch', 3, 2, 2] }, weights: WEIGHTS, bias: BIAS });
    const b = createOnnxBackend(onnxBackendSchema.parse({ name: 'bare', model: 'batch.onnx', device: 'cpu', softmax: false, input: INPUT }), { baseDir: dir, logger }, openOnnxSession);
    opened.push(b);
    await writeFile(path.join(dir, 'batch.onnx'), model);
    expect((await b.check(AbortSignal.timeout(10_000))).note).toBe("batch.onnx on CPU (input [1,3,2,2] 'image', output 'logits')");
    expect((await classify(b, image, { top: 1 })).labels).toEqual([{ label: 'class 2', index: 2, score: 2 }]);
  });

  it('leaves out a model file that does not exist', async () => {
    const b = await backend({ model: 'nowhere.onnx' });
    expect(await failure(b)).toBe(`the model file ${path.join(dir, 'nowhere.onnx')} does not exist`);
  });

  it('leaves out a file that is not an ONNX model', async () => {
    const b = await backend({}, new TextEncoder().encode('not a model'));
    expect(await failure(b)).toMatch(new RegExp(`^ONNX Runtime cannot load ${path.join(dir, 'model.onnx')}: .+`));
  });

  it('leaves out a model whose input disagrees with the config, naming both shapes', async () => {
    const model = linearClassifier({ input: { name: 'image', shape: [1, 3, 4, 4] }, weights: WEIGHTS.map((w) => [...w, ...w, ...w, ...w]), bias: BIAS });
    const b = await backend({}, model);
    expect(await failure(b)).toBe(
      "model.onnx: the model's input 'image' has shape [1,3,4,4] (NCHW 4×4), but the config gives it NCHW 2×2 ([1,3,2,2]); set input.width, input.height and input.layout to what the model expects",
    );
  });

  it('leaves out a labels file that does not name every class', async () => {
    await writeFile(path.join(dir, 'two.txt'), 'cat\ndog\n');
    const b = await backend({ labels: 'two.txt' });
    expect(await failure(b)).toBe("the labels file two.txt has 2 labels but model.onnx scores 3 classes (output 'logits' [1,3]); give one label per class, in the model's order");
  });

  it('leaves out a labels file that cannot be read', async () => {
    const b = await backend({ labels: 'missing.txt' });
    expect(await failure(b)).toBe(`the labels file ${path.join(dir, 'missing.txt')} cannot be read (ENOENT)`);
  });

  it('with device cuda, runs on CUDA or is left out saying why and what to do', async () => {
    const b = await backend({ device: 'cuda' });
    const result = await b.check(AbortSignal.timeout(10_000)).then(
      () => undefined,
      (err: unknown) => err,
    );
    if (result === undefined) {
      expect((await classify(b)).runtime).toBe('onnxruntime (cuda)');
    } else {
      expect(result).toBeInstanceOf(BackendUnavailableError);
      expect((result as Error).message).toMatch(/^device is cuda but ONNX Runtime cannot use CUDA here \(.+\)\. .*"ONNXRUNTIME_NODE_INSTALL=cuda12 pnpm -r rebuild .*onnxruntime-node" .*, or set device: auto or cpu$/);
    }
  });

  it('with device auto, uses CUDA where it can and the CPU elsewhere, logging why', async () => {
    const b = await backend({ device: 'auto' });
    await b.check(AbortSignal.timeout(10_000));
    const { runtime } = await classify(b);
    expect(['onnxruntime (cpu)', 'onnxruntime (cuda)']).toContain(runtime);
    if (runtime === 'onnxruntime (cpu)') expect(lines.join('')).toContain('onnx tiny: CUDA cannot be used here, so the model runs on the CPU');
  });

  it('fails a task for another model, a broken image, and after close', async () => {
    const b = await backend();
    await b.check(AbortSignal.timeout(10_000));
    await expect(classify(b, image, { model: 'resnet50' })).rejects.toMatchObject({ code: 'INVALID_PARAMS', message: 'this worker classifies images with the model "tiny", not "resnet50"' });
    expect((await classify(b, image, { model: 'tiny' })).labels).toHaveLength(3);
    const broken = path.join(dir, 'broken.png');
    await writeFile(broken, (await rgbPng(2, 2, PIXELS)).subarray(0, 30));
    await expect(classify(b, broken)).rejects.toBeInstanceOf(InputDecodeError);
    await b.close?.();
    const err: unknown = await classify(b).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TaskFailedError);
    expect(err).toMatchObject({ code: 'BACKEND_UNAVAILABLE', retryable: true });
  });
});
