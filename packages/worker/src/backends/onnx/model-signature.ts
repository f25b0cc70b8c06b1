import type { ImageTensorConfig } from '../../worker-config.js';

/**
 * One input or output of a model as ONNX Runtime describes it. `type` is ONNX Runtime's
 * tensor type name ("float32", "uint8"…) or "non-tensor"; a dimension is a size, or a name
 * for one fixed only when the model runs ("batch", "N").
 */
export interface TensorInfo {
  readonly name: string;
  readonly type: string;
  readonly shape: readonly (number | string)[];
}

/** The tensor types a classifier's scores may come in (read as 32-bit floats). */
export const SCORE_TYPES: readonly string[] = ['float32', 'float64'];

/** `[1,3,224,224]`; a named dimension is written as its name: `[batch,3,224,224]`. */
export function formatShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(',')}]`;
}

/** The shape of the tensor the config makes of one image: [1,3,H,W] (NCHW) or [1,H,W,3] (NHWC). */
export function configShape(spec: Pick<ImageTensorConfig, 'width' | 'height' | 'layout'>): [number, number, number, number] {
  return spec.layout === 'NCHW' ? [1, 3, spec.height, spec.width] : [1, spec.height, spec.width, 3];
}

function describeConfig(spec: Pick<ImageTensorConfig, 'width' | 'height' | 'layout'>): string {
  return `${spec.layout} ${spec.width}×${spec.height} (${formatShape(configShape(spec))})`;
}

/** What a 4-dimensional input's shape means, when it looks like an image: "NCHW 224×224". */
function describeImageShape(shape: readonly (number | string)[]): string | undefined {
  const [, c1, d2, d3] = shape;
  if (c1 === 3) return `NCHW ${String(d3)}×${String(d2)}`;
  const [, h, w, c3] = shape;
  if (c3 === 3) return `NHWC ${String(w)}×${String(h)}`;
  return undefined;
}

/**
 * The model's image input, checked against the config: one float32 tensor whose every fixed
 * dimension equals the config's (named ones take any size). Returns a sentence saying what
 * the model expects when it does not fit.
 */
export function checkImageInput(
  inputs: readonly TensorInfo[],
  spec: Pick<ImageTensorConfig, 'width' | 'height' | 'layout'>,
): { readonly input: TensorInfo } | { readonly problem: string } {
  const [input] = inputs;
  if (!input) return { problem: 'the model has no inputs' };
  if (inputs.length > 1) {
    return { problem: `the model takes ${inputs.length} inputs (${inputs.map((i) => `'${i.name}'`).join(', ')}); an image classifier here takes one image tensor` };
  }
  if (input.type !== 'float32') {
    return { problem: `the model's input '${input.name}' is ${input.type === 'non-tensor' ? 'not a tensor' : `a ${input.type} tensor`}; images are given as float32 tensors` };
  }
  if (input.shape.length !== 4) {
    return { problem: `the model's input '${input.name}' has shape ${formatShape(input.shape)}, which is not an image ([1,3,H,W] or [1,H,W,3]); this backend classifies images` };
  }
  const expected = configShape(spec);
  if (input.shape.every((dim, i) => typeof dim === 'string' || dim === expected[i])) return { input };
  const meaning = describeImageShape(input.shape);
  return {
    problem: `the model's input '${input.name}' has shape ${formatShape(input.shape)}${meaning ? ` (${meaning})` : ''}, but the config gives it ${describeConfig(spec)}; set input.width, input.height and input.layout to what the model expects`,
  };
}

/** The output that holds the scores: the first one of a score type. */
export function scoresOutput(outputs: readonly TensorInfo[]): { readonly output: TensorInfo } | { readonly problem: string } {
  const output = outputs.find((o) => SCORE_TYPES.includes(o.type));
  if (output) return { output };
  if (outputs.length === 0) return { problem: 'the model has no outputs' };
  return { problem: `none of the model's outputs holds scores (${outputs.map((o) => `'${o.name}' is ${o.type}`).join(', ')}; scores are ${SCORE_TYPES.join(' or ')})` };
}

/**
 * How many classes an output scores, when its shape fixes it: the product of its dimensions
 * after the batch one ([1,1000] → 1000, [batch,1000,1,1] → 1000; a lone dimension is the
 * count: [1000] → 1000); undefined when one of them is named.
 */
export function classCount(output: TensorInfo): number | undefined {
  const dims = output.shape.length > 1 ? output.shape.slice(1) : output.shape;
  let count = 1;
  for (const dim of dims) {
    if (typeof dim !== 'number') return undefined;
    count *= dim;
  }
  return count;
}
