import { describe, expect, it } from 'vitest';
import { checkImageInput, classCount, configShape, formatShape, scoresOutput, type TensorInfo } from '../backends/onnx/model-signature.js';

const NCHW_224 = { width: 224, height: 224, layout: 'NCHW' } as const;
const f32 = (name: string, shape: (number | string)[]): TensorInfo => ({ name, type: 'float32', shape });

describe('configShape', () => {
  it.each([
    { spec: { width: 224, height: 224, layout: 'NCHW' as const }, shape: [1, 3, 224, 224] },
    { spec: { width: 320, height: 240, layout: 'NCHW' as const }, shape: [1, 3, 240, 320] },
    { spec: { width: 320, height: 240, layout: 'NHWC' as const }, shape: [1, 240, 320, 3] },
  ])('$spec.layout $spec.width×$spec.height → $shape', ({ spec, shape }) => {
    expect(configShape(spec)).toEqual(shape);
  });
});

describe('checkImageInput', () => {
  it.each([
    { what: 'the same fixed shape', shape: [1, 3, 224, 224] },
    { what: 'a named batch dimension', shape: ['batch', 3, 224, 224] },
    { what: 'named height and width', shape: ['N', 3, 'H', 'W'] },
  ])('takes $what', ({ shape }) => {
    const input = f32('input', shape);
    expect(checkImageInput([input], NCHW_224)).toEqual({ input });
  });

  it.each([
    {
      what: 'another size',
      inputs: [f32('input', [1, 3, 256, 256])],
      problem: "the model's input 'input' has shape [1,3,256,256] (NCHW 256×256), but the config gives it NCHW 224×224 ([1,3,224,224]); set input.width, input.height and input.layout to what the model expects",
    },
    {
      what: 'the other layout',
      inputs: [f32('pixels', ['batch', 224, 224, 3])],
      problem: "the model's input 'pixels' has shape [batch,224,224,3] (NHWC 224×224), but the config gives it NCHW 224×224 ([1,3,224,224]); set input.width, input.height and input.layout to what the model expects",
    },
    {
      what: 'a batch of more than one',
      inputs: [f32('input', [8, 3, 224, 224])],
      problem: "the model's input 'input' has shape [8,3,224,224] (NCHW 224×224), but the config gives it NCHW 224×224 ([1,3,224,224]); set input.width, input.height and input.layout to what the model expects",
    },
    {
      what: 'a non-image',
      inputs: [f32('x', [1, 784])],
      problem: "the model's input 'x' has shape [1,784], which is not an image ([1,3,H,W] or [1,H,W,3]); this backend classifies images",
    },
    { what: 'uint8 pixels', inputs: [{ name: 'x', type: 'uint8', shape: [1, 224, 224, 3] }], problem: "the model's input 'x' is a uint8 tensor; images are given as float32 tensors" },
    { what: 'a non-tensor', inputs: [{ name: 'x', type: 'non-tensor', shape: [] }], problem: "the model's input 'x' is not a tensor; images are given as float32 tensors" },
    { what: 'no input', inputs: [], problem: 'the model has no inputs' },
    {
      what: 'two inputs',
      inputs: [f32('image', [1, 3, 224, 224]), f32('mask', [1, 1, 224, 224])],
      problem: "the model takes 2 inputs ('image', 'mask'); an image classifier here takes one image tensor",
    },
  ])('refuses $what, saying what the model expects', ({ inputs, problem }) => {
    expect(checkImageInput(inputs, NCHW_224)).toEqual({ problem });
  });
});

describe('scoresOutput', () => {
  it('takes the first output of a score type', () => {
    const logits = f32('logits', [1, 1000]);
    expect(scoresOutput([{ name: 'ids', type: 'int64', shape: [1, 5] }, logits, f32('features', [1, 2048])])).toEqual({ output: logits });
  });

  it.each([
    { outputs: [], problem: 'the model has no outputs' },
    {
      outputs: [{ name: 'ids', type: 'int64', shape: [1] }],
      problem: "none of the model's outputs holds scores ('ids' is int64; scores are float32 or float64)",
    },
  ])('refuses outputs without scores: $problem', ({ outputs, problem }) => {
    expect(scoresOutput(outputs)).toEqual({ problem });
  });
});

describe('classCount', () => {
  it.each([
    { shape: [1, 1000], count: 1000 },
    { shape: ['batch', 1000], count: 1000 },
    { shape: [1, 1000, 1, 1], count: 1000 },
    { shape: [1001], count: 1001 },
    { shape: [1, 'classes'], count: undefined },
  ])('$shape → $count', ({ shape, count }) => {
    expect(classCount(f32('out', shape))).toBe(count);
  });
});

describe('formatShape', () => {
  it('writes named dimensions by name', () => {
    expect(formatShape(['batch', 3, 224, 224])).toBe('[batch,3,224,224]');
  });
});
