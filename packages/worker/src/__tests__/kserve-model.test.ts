import { describe, expect, it } from 'vitest';
import { BackendUnavailableError } from '../backends/backend.js';
import { chooseOutput, planModel, scoresOf } from '../backends/kserve/kserve-model.js';
import { flatNumbers, float32Json, modelPath, type ModelMetadata } from '../backends/kserve/kserve-protocol.js';
import { TaskFailedError } from '../errors.js';
import type { ImageTensorConfig } from '../worker-config.js';

const nchw: ImageTensorConfig = { width: 224, height: 224, layout: 'NCHW', scale: 255, mean: [0, 0, 0], std: [1, 1, 1] };
const nhwc: ImageTensorConfig = { ...nchw, layout: 'NHWC' };

function metadata(inputs: ModelMetadata['inputs'], outputs: ModelMetadata['outputs'] = [{ name: 'logits', datatype: 'FP32', shape: [-1, 1000] }]): ModelMetadata {
  return { name: 'm', versions: ['1'], platform: 'onnxruntime_onnx', inputs, outputs };
}

describe('planModel: the input shape the model takes against the configured tensor', () => {
  it.each([
    { declared: [-1, 3, 224, 224], spec: nchw, sends: [1, 3, 224, 224] },
    { declared: [1, 3, 224, 224], spec: nchw, sends: [1, 3, 224, 224] },
    { declared: [-1, 3, -1, -1], spec: nchw, sends: [1, 3, 224, 224] },
    { declared: [-1, 224, 224, 3], spec: nhwc, sends: [1, 224, 224, 3] },
    // Triton with max_batch_size 0: one image, no batch dimension.
    { declared: [3, 224, 224], spec: nchw, sends: [3, 224, 224] },
    { declared: [224, 224, 3], spec: nhwc, sends: [224, 224, 3] },
    { declared: [1, 3, 32, 48], spec: { ...nchw, width: 48, height: 32 }, sends: [1, 3, 32, 48] },
  ])('$declared with $spec.layout sends $sends', ({ declared, spec, sends }) => {
    const plan = planModel(metadata([{ name: 'x', datatype: 'FP32', shape: declared }]), spec, 'm');
    expect(plan.input).toEqual({ name: 'x', shape: sends, declared });
  });

  it.each([
    { declared: [-1, 224, 224, 3], spec: nchw, message: "model m expects input 'x' [-1,224,224,3] FP32; the config makes [1,3,224,224] FP32 (NCHW, 224×224): set input.layout: NHWC in the worker config" },
    { declared: [-1, 3, 224, 224], spec: nhwc, message: "model m expects input 'x' [-1,3,224,224] FP32; the config makes [1,224,224,3] FP32 (NHWC, 224×224): set input.layout: NCHW in the worker config" },
    { declared: [-1, 3, 299, 299], spec: nchw, message: "model m expects input 'x' [-1,3,299,299] FP32; the config makes [1,3,224,224] FP32 (NCHW, 224×224): set input.width: 299 and input.height: 299 in the worker config" },
    { declared: [-1, 299, 299, 3], spec: nchw, message: 'set input.layout: NHWC and input.width: 299 and input.height: 299 in the worker config' },
    { declared: [8, 3, 224, 224], spec: nchw, message: 'it takes a fixed batch of 8 images; the grid sends one at a time' },
    { declared: [-1, 1, 224, 224], spec: nchw, message: 'it has no dimension of 3 colour channels' },
    { declared: [-1, 150528], spec: nchw, message: 'it takes a tensor of rank 2' },
  ])('refuses $declared with $spec.layout, saying what the model expects', ({ declared, spec, message }) => {
    expect(() => planModel(metadata([{ name: 'x', datatype: 'FP32', shape: declared }]), spec, 'm')).toThrow(BackendUnavailableError);
    expect(() => planModel(metadata([{ name: 'x', datatype: 'FP32', shape: declared }]), spec, 'm')).toThrow(message);
  });

  it.each([
    { inputs: [{ name: 'x', datatype: 'FP16', shape: [-1, 3, 224, 224] }], message: "model m expects input 'x' [-1,3,224,224] FP16; the kserve backend sends FP32 only" },
    { inputs: [{ name: 'x', datatype: 'UINT8', shape: [-1, 224, 224, 3] }], message: 'set input.layout: NHWC' },
    {
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [-1, 3, 224, 224] },
        { name: 'scale', datatype: 'FP32', shape: [1] },
      ],
      message: "model m has 2 inputs ('x' [-1,3,224,224] FP32, 'scale' [1] FP32); image.classify sends one image tensor, so the model must take one input",
    },
    { inputs: [], message: "model m's metadata lists no inputs" },
  ])('refuses inputs it cannot fill: $message', ({ inputs, message }) => {
    expect(() => planModel(metadata(inputs), nchw, 'm')).toThrow(message);
  });
});

describe('chooseOutput: where the scores are', () => {
  it.each([
    { outputs: [{ name: 'prob', datatype: 'FP32', shape: [-1, 1000] }], chosen: { name: 'prob', classes: 1000, why: 'its only output' } },
    { outputs: [{ name: 'prob', datatype: 'FP16', shape: [1000] }], chosen: { name: 'prob', classes: 1000, why: 'its only output' } },
    { outputs: [{ name: 'prob', datatype: 'FP32', shape: [1, 1000, 1, 1] }], chosen: { name: 'prob', classes: 1000, why: 'its only output' } },
    { outputs: [{ name: 'prob', datatype: 'FP32', shape: [-1, -1] }], chosen: { name: 'prob', classes: undefined, why: 'its only output' } },
    {
      outputs: [
        { name: 'best', datatype: 'INT64', shape: [-1, 1] },
        { name: 'logits', datatype: 'FP32', shape: [-1, 10] },
        { name: 'features', datatype: 'FP32', shape: [-1, 512] },
      ],
      chosen: { name: 'logits', classes: 10, why: 'the first FP32 of 3 outputs' },
    },
    { outputs: [{ name: 'best', datatype: 'INT64', shape: [-1, 1] }], chosen: "its only output 'best' is INT64; image.classify reads scores from a floating-point output (FP32)" },
    {
      outputs: [
        { name: 'best', datatype: 'INT64', shape: [-1, 1] },
        { name: 'name', datatype: 'BYTES', shape: [-1, 1] },
      ],
      chosen: "none of its outputs ('best' INT64, 'name' BYTES) is FP32; image.classify reads scores from an FP32 output",
    },
  ])('$outputs.0.name of $outputs.length', ({ outputs, chosen }) => {
    expect(chooseOutput(outputs)).toEqual(chosen);
  });

  it('planModel refuses a model with no output to read scores from, and decides later when the metadata lists none', () => {
    const input = [{ name: 'x', datatype: 'FP32', shape: [-1, 3, 224, 224] }];
    expect(() => planModel(metadata(input, [{ name: 'best', datatype: 'INT64', shape: [-1, 1] }]), nchw, 'm')).toThrow("model m cannot classify: its only output 'best' is INT64");
    expect(planModel(metadata(input, []), nchw, 'm').output).toBeUndefined();
  });
});

describe('scoresOf: the scores in an answer', () => {
  const logits = { name: 'logits', classes: 3, why: 'its only output' };

  it.each([
    { name: 'flat', outputs: [{ name: 'logits', datatype: 'FP32', shape: [1, 3], data: [0.5, 1, -2] }], planned: logits, scores: [0.5, 1, -2] },
    { name: 'nested by shape', outputs: [{ name: 'logits', datatype: 'FP32', shape: [1, 3], data: [[0.5, 1, -2]] }], planned: logits, scores: [0.5, 1, -2] },
    {
      name: 'by name among several',
      outputs: [
        { name: 'best', datatype: 'INT64', shape: [1, 1], data: [1] },
        { name: 'logits', datatype: 'FP32', shape: [1, 3], data: [0.5, 1, -2] },
      ],
      planned: logits,
      scores: [0.5, 1, -2],
    },
    {
      name: 'chosen from the answer when the metadata listed none',
      outputs: [
        { name: 'best', datatype: 'INT64', shape: [1, 1], data: [1] },
        { name: 'scores', datatype: 'FP32', shape: [2], data: [3, 4] },
      ],
      planned: undefined,
      scores: [3, 4],
    },
  ])('reads $name', ({ outputs, planned, scores }) => {
    expect(scoresOf(outputs, planned)).toEqual(scores);
  });

  it.each([
    { outputs: [{ name: 'other', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }], message: "the KServe server's answer has no output 'logits' (it has 'other')" },
    { outputs: [{ name: 'logits', datatype: 'FP32', shape: [1, 3], data: [1, 2] }], message: "output 'logits' has shape [1,3] but 2 values" },
    { outputs: [{ name: 'logits', datatype: 'FP32', shape: [1, 3], data: [1, '2', 3] }], message: "output 'logits' holds values that are not numbers" },
    { outputs: [{ name: 'logits', datatype: 'FP32', shape: [0, 3], data: [] }], message: "output 'logits' has shape [0,3] but 0 values" },
    { outputs: [{ name: 'logits', datatype: 'FP32', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }], message: "output 'logits' has 6 scores where the model's metadata says 3" },
  ])('fails INVALID_OUTPUT, retryable: $message', ({ outputs, message }) => {
    let err: unknown;
    try {
      scoresOf(outputs, logits);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TaskFailedError);
    expect(err).toMatchObject({ code: 'INVALID_OUTPUT', retryable: true });
    expect((err as Error).message).toContain(message);
  });
});

describe('the wire format', () => {
  it.each([
    { model: 'resnet50', version: undefined, path: '/v2/models/resnet50' },
    { model: 'resnet50', version: '2', path: '/v2/models/resnet50/versions/2' },
    { model: 'a b/c', version: 'v 1', path: '/v2/models/a%20b%2Fc/versions/v%201' },
  ])('model $model version $version is at $path', ({ model, version, path }) => {
    expect(modelPath(model, version)).toBe(path);
  });

  it('writes float32 values in 9 digits, each read back as the same float32', () => {
    const fixed = [0, 1, -1, 0.1, 1 / 3, -2.1179039478302, 2.640000104904175, 1e-38, 3.4e38, 0.48627451062202454];
    const values = new Float32Array(fixed.length + 1000);
    values.set(fixed);
    for (let i = 0; i < 1000; i++) values[fixed.length + i] = (Math.sin(i) * 1000) / (i + 1);
    const json = float32Json(values);
    expect(json.map((v) => Math.fround(v))).toEqual(Array.from(values));
    expect(JSON.stringify(json).length).toBeLessThan(JSON.stringify(Array.from(values)).length * 0.7);
  });

  it('flattens nested data and refuses what is not a finite number', () => {
    expect(flatNumbers([[1, 2], [3, [4]]])).toEqual([1, 2, 3, 4]);
    expect(flatNumbers([1, null])).toBeUndefined();
    expect(flatNumbers([1, 'NaN'])).toBeUndefined();
  });
});
