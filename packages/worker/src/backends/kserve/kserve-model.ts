import { TaskFailedError } from '../../errors.js';
import type { ImageTensorConfig } from '../../worker-config.js';
import { BackendUnavailableError } from '../backend.js';
import { flatNumbers, FLOAT_DATATYPES, shapeText, type ModelMetadata, type ResponseOutput, type TensorMetadata } from './kserve-protocol.js';

/** How the grid talks to one model, as its metadata and the worker's config settled it. */
export interface KservePlan {
  /** The model's input and the shape each request gives it (the model's rank, no -1 left). */
  readonly input: { readonly name: string; readonly shape: readonly number[]; readonly declared: readonly number[] };
  /** The output read as scores, or undefined when the metadata lists none (then each answer's is chosen the same way). */
  readonly output: ChosenOutput | undefined;
}

export interface ChosenOutput {
  readonly name: string;
  /** Scores per image when the metadata fixes it. */
  readonly classes: number | undefined;
  /** Why this one: "its only output", "the first FP32 of 3 outputs". */
  readonly why: string;
}

/** The tensor the config makes, [1,3,H,W] or [1,H,W,3]. */
export function configuredShape(spec: ImageTensorConfig): [number, number, number, number] {
  return spec.layout === 'NCHW' ? [1, 3, spec.height, spec.width] : [1, spec.height, spec.width, 3];
}

/** Whether a declared shape (-1: any size) takes `want`. */
function fits(declared: readonly number[], want: readonly number[]): boolean {
  return declared.length === want.length && declared.every((d, i) => d === -1 || d === want[i]);
}

/** The shape to send: the model's own rank, [1,…] with a batch dimension or without one. */
function requestShape(declared: readonly number[], spec: ImageTensorConfig): number[] | undefined {
  const full = configuredShape(spec);
  if (fits(declared, full)) return full;
  // A model that takes one image without a batch dimension (Triton with max_batch_size 0).
  if (fits(declared, full.slice(1))) return full.slice(1);
  return undefined;
}

/** What the config would have to say for a shape: a layout and a size, where one fits. */
function hintFor(declared: readonly number[], spec: ImageTensorConfig): string {
  const dims = declared.length === 4 ? declared.slice(1) : declared.length === 3 ? declared : undefined;
  if (!dims) return `it takes a tensor of rank ${declared.length}; an image is [1,3,H,W] (NCHW) or [1,H,W,3] (NHWC)`;
  const batch = declared.length === 4 ? (declared[0] ?? -1) : -1;
  if (batch !== -1 && batch !== 1) return `it takes a fixed batch of ${batch} images; the grid sends one at a time`;
  const [a, b, c] = dims as [number, number, number];
  const layout = a === 3 ? 'NCHW' : c === 3 ? 'NHWC' : undefined;
  if (!layout) return 'it has no dimension of 3 colour channels where NCHW or NHWC puts one';
  const [h, w] = layout === 'NCHW' ? [b, c] : [a, b];
  const size = h > 0 && w > 0 ? `input.width: ${w} and input.height: ${h}` : '';
  const wants = [layout !== spec.layout ? `input.layout: ${layout}` : '', size !== '' && (w !== spec.width || h !== spec.height) ? size : ''].filter(Boolean);
  return wants.length > 0 ? `set ${wants.join(' and ')} in the worker config` : 'the shapes differ';
}

/**
 * The model's single output when it holds scores, else its first FP32 output (a model may
 * also give, say, an INT64 arg-max). `outputs` are the metadata's or an answer's.
 *
 * @returns the choice, or what is wrong with the outputs
 */
export function chooseOutput(outputs: readonly Pick<TensorMetadata, 'name' | 'datatype' | 'shape'>[]): ChosenOutput | string {
  const only = outputs.length === 1 ? outputs[0] : undefined;
  if (only) {
    return FLOAT_DATATYPES.includes(only.datatype)
      ? { name: only.name, classes: classesOf(only.shape), why: 'its only output' }
      : `its only output '${only.name}' is ${only.datatype}; image.classify reads scores from a floating-point output (FP32)`;
  }
  const first = outputs.find((o) => o.datatype === 'FP32');
  if (first) return { name: first.name, classes: classesOf(first.shape), why: `the first FP32 of ${outputs.length} outputs` };
  return `none of its outputs (${outputs.map((o) => `'${o.name}' ${o.datatype}`).join(', ')}) is FP32; image.classify reads scores from an FP32 output`;
}

/** Scores per image: the shape's size without a leading batch dimension; undefined while a size varies. */
function classesOf(shape: readonly number[]): number | undefined {
  const dims = shape.length >= 2 && (shape[0] === -1 || shape[0] === 1) ? shape.slice(1) : shape;
  return dims.some((d) => d < 0) ? undefined : dims.reduce((a, b) => a * b, 1);
}

/**
 * Matches a model's metadata against the worker's config: one FP32 input whose shape takes
 * the configured image tensor, and an output to read scores from.
 *
 * @throws BackendUnavailableError saying what the model expects and what to change
 */
export function planModel(metadata: ModelMetadata, spec: ImageTensorConfig, model: string): KservePlan {
  const configured = `the config makes ${shapeText(configuredShape(spec))} FP32 (${spec.layout}, ${spec.width}×${spec.height})`;
  const listed = (tensors: readonly TensorMetadata[]): string => tensors.map((t) => `'${t.name}' ${shapeText(t.shape)} ${t.datatype}`).join(', ');
  if (metadata.inputs.length === 0) {
    throw new BackendUnavailableError(`model ${model}'s metadata lists no inputs; the grid needs the input's name and shape (declare them in the model's settings on the server)`);
  }
  const [input] = metadata.inputs;
  if (metadata.inputs.length > 1 || !input) {
    throw new BackendUnavailableError(`model ${model} has ${metadata.inputs.length} inputs (${listed(metadata.inputs)}); image.classify sends one image tensor, so the model must take one input`);
  }
  const shape = requestShape(input.shape, spec);
  if (!shape) {
    throw new BackendUnavailableError(`model ${model} expects input '${input.name}' ${shapeText(input.shape)} ${input.datatype}; ${configured}: ${hintFor(input.shape, spec)}`);
  }
  if (input.datatype !== 'FP32') {
    throw new BackendUnavailableError(`model ${model} expects input '${input.name}' ${shapeText(input.shape)} ${input.datatype}; the kserve backend sends FP32 only`);
  }
  let output: ChosenOutput | undefined;
  if (metadata.outputs.length > 0) {
    const chosen = chooseOutput(metadata.outputs);
    if (typeof chosen === 'string') throw new BackendUnavailableError(`model ${model} cannot classify: ${chosen}`);
    output = chosen;
  }
  return { input: { name: input.name, shape, declared: input.shape }, output };
}

/**
 * The scores in an inference answer: the planned output (or, when the metadata listed none,
 * the one chooseOutput picks), its values flat, as many as its shape holds.
 *
 * @throws TaskFailedError INVALID_OUTPUT, retryable: a malformed answer is the server's fault
 *   (a model being reloaded, a proxy's error page), and another try or worker may get a good one
 */
export function scoresOf(outputs: readonly ResponseOutput[], planned: ChosenOutput | undefined): number[] {
  const invalid = (why: string): TaskFailedError => new TaskFailedError('INVALID_OUTPUT', `the KServe server's answer ${why}`, true);
  let name = planned?.name;
  if (name === undefined) {
    const chosen = chooseOutput(outputs);
    if (typeof chosen === 'string') throw invalid(`has no scores: ${chosen}`);
    name = chosen.name;
  }
  const output = outputs.find((o) => o.name === name);
  if (!output) throw invalid(`has no output '${name}' (it has ${outputs.map((o) => `'${o.name}'`).join(', ')})`);
  const values = flatNumbers(output.data);
  if (!values) throw invalid(`output '${name}' holds values that are not numbers`);
  const size = output.shape.reduce((a, b) => a * b, 1);
  if (values.length !== size || size === 0) throw invalid(`output '${name}' has shape ${shapeText(output.shape)} but ${values.length} values`);
  if (planned?.classes !== undefined && values.length !== planned.classes) {
    throw invalid(`output '${name}' has ${values.length} scores where the model's metadata says ${planned.classes}`);
  }
  return values;
}
