import { env, InferenceSession, Tensor } from 'onnxruntime-node';
import type { OnnxBackendConfig } from '../../worker-config.js';
import { BackendUnavailableError } from '../backend.js';
import type { TensorInfo } from './model-signature.js';

export type OnnxDevice = OnnxBackendConfig['device'];
/** Where ONNX Runtime runs the model: its CPU or its CUDA execution provider. */
export type OnnxProvider = 'cpu' | 'cuda';

/** What a loaded model takes and gives, and where it runs. */
export interface SessionInfo {
  readonly provider: OnnxProvider;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  /** With device "auto" on CPU: why CUDA was not used. */
  readonly cudaProblem?: string;
}

/** A float32 tensor: values in row-major order, and its shape. */
export interface FloatTensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

/** A model loaded into ONNX Runtime. */
export interface OnnxSession {
  readonly info: SessionInfo;
  /**
   * Runs the model on one input tensor and returns one output, as float32. `signal` stops the
   * wait, not the run (ONNX Runtime finishes it, and its answer is dropped).
   */
  run(input: string, tensor: FloatTensor, output: string, signal?: AbortSignal): Promise<FloatTensor>;
  close(): Promise<void>;
}

/**
 * Opens a model file on `device` within `signal`. The worker opens it in a thread of its own
 * (openSessionInThread); openOnnxSession opens it on the calling thread.
 */
export type OpenSession = (model: string, device: OnnxDevice, signal?: AbortSignal) => Promise<OnnxSession>;

// CUDA's absence is reported through the session's error; ONNX Runtime would also print it,
// in colour, on the worker's stderr, on every machine without the CUDA provider.
env.logLevel = 'fatal';

/**
 * Loads `model` into ONNX Runtime. "cuda" uses the CUDA execution provider or fails; "auto"
 * tries CUDA, then the CPU; "cpu" uses the CPU.
 *
 * @throws BackendUnavailableError saying whether the model or CUDA is the problem.
 */
export const openOnnxSession: OpenSession = async (model, device) => {
  let cudaProblem: string | undefined;
  if (device !== 'cpu') {
    try {
      return wrap(await InferenceSession.create(model, { executionProviders: ['cuda'] }), 'cuda');
    } catch (err) {
      cudaProblem = messageOf(err);
    }
  }
  let session: InferenceSession;
  try {
    session = await InferenceSession.create(model, { executionProviders: ['cpu'] });
  } catch (err) {
    throw new BackendUnavailableError(`ONNX Runtime cannot load ${model}: ${messageOf(err)}`, { cause: err });
  }
  if (device === 'cuda') {
    // The model loads on the CPU: CUDA alone is missing.
    await session.release();
    throw new BackendUnavailableError(
      `device is cuda but ONNX Runtime cannot use CUDA here (${cudaProblem ?? 'unknown reason'}). Its CUDA provider is a separate download: ` +
        `run "ONNXRUNTIME_NODE_INSTALL=cuda12 pnpm -r rebuild --config.dangerously-allow-all-builds=true onnxruntime-node" (it needs CUDA 12 and cuDNN 9), or set device: auto or cpu`,
    );
  }
  return wrap(session, 'cpu', cudaProblem);
};

function wrap(session: InferenceSession, provider: OnnxProvider, cudaProblem?: string): OnnxSession {
  return {
    info: {
      provider,
      inputs: session.inputMetadata.map(tensorInfo),
      outputs: session.outputMetadata.map(tensorInfo),
      ...(cudaProblem !== undefined ? { cudaProblem } : {}),
    },
    async run(input, tensor, output) {
      const results = await session.run({ [input]: new Tensor('float32', tensor.data, [...tensor.dims]) }, [output]);
      const value = results[output];
      if (!value) throw new Error(`the model gave no output '${output}'`);
      try {
        if (value.type !== 'float32' && value.type !== 'float64') throw new Error(`the model's output '${output}' is ${value.type}, not float32 or float64`);
        // A copy the caller owns (it may be transferred to another thread).
        return { data: Float32Array.from(value.data as Float32Array | Float64Array), dims: [...value.dims] };
      } finally {
        value.dispose();
      }
    },
    close: () => session.release(),
  };
}

function tensorInfo(meta: InferenceSession.ValueMetadata): TensorInfo {
  return meta.isTensor ? { name: meta.name, type: meta.type, shape: [...meta.shape] } : { name: meta.name, type: 'non-tensor', shape: [] };
}

function messageOf(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').trim();
}
