import path from 'node:path';
import onnxProto from 'onnx-proto';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageClassifyOutput } from '@mmgrid/core';
import { jobOf, runCli } from '../helpers/cli.js';
import { removeDir, tempDir, writeIn } from '../helpers/files.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';

const { onnx } = onnxProto;

// The classifier: Flatten → Gemm → 3 logits, over a 2×2 RGB image normalised to -1..1.
// cat: half the first value; dog: the sixth; fox: a tenth of the sum.
const WEIGHTS = [[0.5, ...Array<number>(11).fill(0)], [0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0], Array<number>(12).fill(0.1)];
const BIAS = [0.25, -0.5, 2];

/** An ONNX model (no softmax in it) taking `[1,3,side,side]` floats; its weights repeat WEIGHTS' pattern. */
function classifierModel(side: number): Uint8Array {
  const features = 3 * side * side;
  const weights = WEIGHTS.map((row) => Array.from({ length: features }, (_, i) => row[i % 12] ?? 0));
  const tensorType = (shape: number[]): onnxProto.onnx.ITypeProto => ({ tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: shape.map((dimValue) => ({ dimValue })) } } });
  const int = (name: string, i: number): onnxProto.onnx.IAttributeProto => ({ name, type: onnx.AttributeProto.AttributeType.INT, i });
  return onnx.ModelProto.encode(
    onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 13 }],
      graph: {
        name: 'tiny',
        node: [
          { opType: 'Flatten', input: ['image'], output: ['flat'], attribute: [int('axis', 1)] },
          { opType: 'Gemm', input: ['flat', 'weights', 'bias'], output: ['logits'], attribute: [int('transB', 1)] },
        ],
        initializer: [
          { name: 'weights', dataType: onnx.TensorProto.DataType.FLOAT, dims: [3, features], floatData: weights.flat() },
          { name: 'bias', dataType: onnx.TensorProto.DataType.FLOAT, dims: [3], floatData: BIAS },
        ],
        input: [{ name: 'image', type: tensorType([1, 3, side, side]) }],
        output: [{ name: 'logits', type: tensorType([1, 3]) }],
      },
    }),
  ).finish();
}

/** One onnx backend's config section (YAML), for a 2×2 NCHW input scaled to -1..1. */
function onnxSection(name: string, model: string): string {
  return `    - name: ${name}
      model: ${model}
      labels: labels.txt
      device: cpu
      input: { width: 2, height: 2, layout: NCHW, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] }
`;
}

/** The messages of a worker's JSON log lines. */
function messages(log: string): string[] {
  return log
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => (JSON.parse(line) as { msg?: string }).msg ?? '');
}

describe('an ONNX Runtime backend on a worker (mmgrid worker --config)', () => {
  let tg: TestGrid;
  let dir: string;

  beforeAll(async () => {
    dir = await tempDir('mmgrid-onnx-e2e-');
    await writeIn(dir, 'tiny.onnx', classifierModel(2));
    await writeIn(dir, 'big.onnx', classifierModel(4));
    await writeIn(dir, 'labels.txt', 'cat\ndog\nfox\n');
    // Red, green / blue, white: exactly 2×2, so nothing is resampled.
    await sharp(Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]), { raw: { width: 2, height: 2, channels: 3 } })
      .png()
      .toFile(path.join(dir, 'photo.png'));
    const good = await writeIn(dir, 'good.yaml', `backends:\n  onnx:\n${onnxSection('tiny', 'tiny.onnx')}`);
    const broken = await writeIn(dir, 'broken.yaml', `backends:\n  onnx:\n${onnxSection('gone', 'gone.onnx')}${onnxSection('big', 'big.onnx')}`);
    tg = await startTestGrid({ workers: 0, env: { MMGRID_LOG_FORMAT: 'json' } });
    await tg.grid.addWorker(['--config', good]);
    await tg.grid.addWorker(['--config', broken]);
  });

  afterAll(async () => {
    await tg?.stop();
    await removeDir(dir);
  });

  it('classifies an image in a declared step: the labels and scores worked out by hand', async () => {
    const file = await writeIn(
      dir,
      'job.yaml',
      `inputs:
  photo: photo.png
steps:
  labels:
    kind: image.classify
    input: photo
    params: { top: 3 }
    requires: { model: tiny }
`,
    );
    const cli = await runCli(['submit', '-f', file, '--wait', '--json', '-q'], tg.cliEnv);
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    const job = jobOf(cli);
    expect(job.state).toBe('completed');
    const output = job.result?.doc.inputs.find((i) => i.name === 'photo')?.outputs['labels'] as unknown as ImageClassifyOutput;
    expect(output.model).toBe('tiny');
    expect(output.runtime).toBe('onnxruntime (cpu)');
    // The NCHW input is R [1,-1,-1,1], G [-1,1,-1,1], B [-1,-1,1,1]: logits cat 0.5 + 0.25 = 0.75,
    // dog 1 - 0.5 = 0.5, fox 0 + 2 = 2, then softmax.
    const sum = Math.exp(0.75) + Math.exp(0.5) + Math.exp(2);
    const expected = [
      { label: 'fox', index: 2, score: Math.exp(2) / sum },
      { label: 'cat', index: 0, score: Math.exp(0.75) / sum },
      { label: 'dog', index: 1, score: Math.exp(0.5) / sum },
    ];
    expect(output.labels.map(({ label, index }) => ({ label, index }))).toEqual(expected.map(({ label, index }) => ({ label, index })));
    output.labels.forEach((l, i) => expect(l.score).toBeCloseTo(expected[i]!.score, 5));
  });

  it('the worker with the model says so at start and offers image.classify with it', async () => {
    const log = messages(await tg.log('worker-1'));
    expect(log).toContainEqual("onnx tiny: tiny.onnx on CPU (input [1,3,2,2] 'image', output 'logits', 3 labels)");
    const { workers } = await tg.client.listWorkers();
    const worker = workers.find((w) => w.name === 'worker-1');
    expect(worker?.slots.find((s) => s.kind === 'image.classify')?.models).toEqual(['tiny']);
  });

  it('a worker whose models cannot be used leaves them out, saying why, and does not offer image.classify', async () => {
    const log = messages(await tg.log('worker-2'));
    expect(log).toContainEqual(`backend gone (onnx) is left out: the model file ${path.join(dir, 'gone.onnx')} does not exist; its kinds (image.classify) are not offered`);
    expect(log).toContainEqual(
      "backend big (onnx) is left out: big.onnx: the model's input 'image' has shape [1,3,4,4] (NCHW 4×4), but the config gives it NCHW 2×2 ([1,3,2,2]); " +
        'set input.width, input.height and input.layout to what the model expects; its kinds (image.classify) are not offered',
    );
    const { workers } = await tg.client.listWorkers();
    const worker = workers.find((w) => w.name === 'worker-2');
    expect(worker).toBeDefined();
    expect(worker?.slots.map((s) => s.kind)).not.toContain('image.classify');
  });
});
