import { z } from 'zod';

/*
 * The KServe v2 / Open Inference Protocol over HTTP, as far as the grid speaks it (Triton,
 * KServe's own servers, MLServer, OpenVINO Model Server…):
 *
 *   GET  /v2/health/ready                               200 when the server is ready
 *   GET  /v2/models/{model}[/versions/{v}]/ready        200 when the model is ready
 *   GET  /v2/models/{model}[/versions/{v}]              the model's metadata
 *   POST /v2/models/{model}[/versions/{v}]/infer        an inference request → response
 *
 * Errors are `{"error": "…"}` with a 4xx or 5xx status. Tensors travel as JSON: `data` is the
 * tensor's values in row-major order (a flat array; servers may also nest it by shape).
 */

/** A tensor as a model's metadata describes it; -1 in `shape` is a size that varies (the batch, mostly). */
export const tensorMetadataSchema = z.object({
  name: z.string().min(1),
  datatype: z.string().min(1),
  shape: z.array(z.number().int().min(-1)),
});
export type TensorMetadata = z.infer<typeof tensorMetadataSchema>;

/** `GET /v2/models/{model}[/versions/{v}]`. Some servers leave out what they do not know. */
export const modelMetadataSchema = z.object({
  name: z.string(),
  versions: z.array(z.string()).optional(),
  platform: z.string().optional(),
  inputs: z.array(tensorMetadataSchema).default([]),
  outputs: z.array(tensorMetadataSchema).default([]),
});
export type ModelMetadata = z.infer<typeof modelMetadataSchema>;

/** `POST …/infer`: one FP32 input; `outputs` asks for just the tensors named. */
export interface InferRequest {
  readonly id?: string;
  readonly inputs: readonly { readonly name: string; readonly shape: readonly number[]; readonly datatype: 'FP32'; readonly data: readonly number[] }[];
  readonly outputs?: readonly { readonly name: string }[];
}

/** `POST …/infer`'s answer. `data` is checked (numbers, as many as the shape holds) where it is used. */
export const inferResponseSchema = z.object({
  model_name: z.string().optional(),
  model_version: z.string().optional(),
  id: z.string().optional(),
  outputs: z
    .array(
      z.object({
        name: z.string(),
        shape: z.array(z.number().int().nonnegative()),
        datatype: z.string(),
        data: z.array(z.unknown()),
      }),
    )
    .min(1),
});
export type InferResponse = z.infer<typeof inferResponseSchema>;
export type ResponseOutput = InferResponse['outputs'][number];

/** The datatypes whose values are scores a classifier can give (BF16 travels as numbers in JSON too). */
export const FLOAT_DATATYPES: readonly string[] = ['FP16', 'BF16', 'FP32', 'FP64'];

/** `/v2/models/{model}` or `/v2/models/{model}/versions/{version}`, names escaped for the path. */
export function modelPath(model: string, version: string | undefined): string {
  const base = `/v2/models/${encodeURIComponent(model)}`;
  return version === undefined ? base : `${base}/versions/${encodeURIComponent(version)}`;
}

/** "[1,3,224,224]" */
export function shapeText(shape: readonly number[]): string {
  return `[${shape.join(',')}]`;
}

/** The values of a tensor's `data` in row-major order (nested arrays flattened), or undefined when one is not a finite number. */
export function flatNumbers(data: readonly unknown[]): number[] | undefined {
  const out: number[] = [];
  const walk = (values: readonly unknown[]): boolean => {
    for (const value of values) {
      if (Array.isArray(value)) {
        if (!walk(value)) return false;
      } else if (typeof value === 'number' && Number.isFinite(value)) {
        out.push(value);
      } else {
        return false;
      }
    }
    return true;
  };
  return walk(data) ? out : undefined;
}

/**
 * A float32 tensor's values as JSON numbers: 9 significant digits bring each float32 back
 * exactly, where its full double form needs up to 17 (a 224×224 image is ~40% smaller).
 */
export function float32Json(values: Float32Array): number[] {
  return Array.from(values, (v) => Number(v.toPrecision(9)));
}
