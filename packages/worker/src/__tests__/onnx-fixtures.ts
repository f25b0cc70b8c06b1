// Small, real ONNX models and images for the ONNX Runtime backend's tests, made here (no
// download): a linear classifier whose weights the tests choose, so every score is known.
import onnxProto from 'onnx-proto';
import sharp from 'sharp';

const { onnx } = onnxProto;

export interface LinearClassifier {
  /** The input's name and shape; a string is a named dimension ("batch"). */
  readonly input?: { readonly name: string; readonly shape: readonly (number | string)[] };
  /** One row of weights per class, over the flattened input. */
  readonly weights: readonly (readonly number[])[];
  readonly bias: readonly number[];
  readonly output?: string;
}

function valueInfo(name: string, shape: readonly (number | string)[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnx.TensorProto.DataType.FLOAT,
        shape: { dim: shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function floats(name: string, dims: number[], values: readonly number[]): onnxProto.onnx.ITensorProto {
  return { name, dataType: onnx.TensorProto.DataType.FLOAT, dims, floatData: [...values] };
}

/**
 * An ONNX model: input → Flatten → Gemm(weights, bias) → one score per class (no softmax),
 * so `scores[k] = bias[k] + Σ weights[k][i] · input[i]` over the input in memory order.
 */
export function linearClassifier(spec: LinearClassifier): Uint8Array {
  const input = spec.input ?? { name: 'image', shape: [1, 3, 2, 2] };
  const output = spec.output ?? 'logits';
  const classes = spec.weights.length;
  const features = spec.weights[0]?.length ?? 0;
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'mmgrid-tests',
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'linear-classifier',
      node: [
        { opType: 'Flatten', input: [input.name], output: ['flat'], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] },
        { opType: 'Gemm', input: ['flat', 'weights', 'bias'], output: [output], attribute: [{ name: 'transB', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] },
      ],
      initializer: [floats('weights', [classes, features], spec.weights.flat()), floats('bias', [classes], spec.bias)],
      input: [valueInfo(input.name, input.shape)],
      output: [valueInfo(output, [input.shape[0] ?? 1, classes])],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

/** A PNG of exactly these RGB pixels, row by row (no resizing happens at its own size). */
export function rgbPng(width: number, height: number, pixels: readonly (readonly [number, number, number])[]): Promise<Buffer> {
  return sharp(Buffer.from(pixels.flat()), { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}
