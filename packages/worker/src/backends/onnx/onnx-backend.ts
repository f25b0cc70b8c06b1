import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { ImageClassifyOutput } from '@mmgrid/core';
import { InputDecodeError, TaskFailedError } from '../../errors.js';
import type { OnnxBackendConfig } from '../../worker-config.js';
import { BackendUnavailableError, type Backend, type BackendCheck, type BackendContext, type TaskContext, type TaskHandler } from '../backend.js';
import { imageToTensor, loadLabels, softmax, topLabels, type ImageTensor } from '../classify.js';
import { checkImageInput, classCount, configShape, formatShape, scoresOutput, type TensorInfo } from './model-signature.js';
import type { OnnxSession, OpenSession } from './onnx-session.js';
import { openSessionInThread } from './threaded-session.js';

/** How many labels a task gets when it does not say (`params.top`). */
export const DEFAULT_TOP = 5;

interface Loaded {
  readonly session: OnnxSession;
  readonly input: TensorInfo;
  readonly output: TensorInfo;
  readonly labels: readonly string[];
  readonly runtime: string;
}

/**
 * A model file run in the worker by ONNX Runtime (onnxruntime-node), serving `image.classify`.
 * The check loads the model and holds it: the file must exist, load, and take one image tensor
 * of the configured shape, and the labels file must name every class. Runs happen in a thread
 * of the backend's own (see openSessionInThread).
 *
 * @param open How the model is loaded; tests load it on their own thread.
 */
export function createOnnxBackend(config: OnnxBackendConfig, ctx: BackendContext, open: OpenSession = openSessionInThread): Backend {
  return new OnnxBackend(config, ctx, open);
}

class OnnxBackend implements Backend {
  readonly type = 'onnx';
  readonly kinds: readonly string[];
  private loaded: Loaded | undefined;

  constructor(
    private readonly config: OnnxBackendConfig,
    private readonly ctx: BackendContext,
    private readonly open: OpenSession,
  ) {
    this.kinds = [config.kind];
  }

  get name(): string {
    return this.config.name;
  }

  async check(signal: AbortSignal): Promise<BackendCheck> {
    const { config } = this;
    const file = path.resolve(this.ctx.baseDir, config.model);
    await modelFile(file);
    const labels = await loadLabels(config.labels, this.ctx.baseDir);
    const session = await this.open(file, config.device, signal);
    let loaded: Loaded;
    try {
      loaded = { session, labels, runtime: `onnxruntime (${session.info.provider})`, ...signature(session, config, labels) };
    } catch (err) {
      await session.close();
      throw err;
    }
    await this.loaded?.session.close();
    this.loaded = loaded;
    const { provider, cudaProblem } = session.info;
    if (cudaProblem !== undefined) this.ctx.logger.info({ backend: config.name, cudaProblem }, `onnx ${config.name}: CUDA cannot be used here, so the model runs on the CPU (${cudaProblem})`);
    const note = `${config.model} on ${provider.toUpperCase()} (input ${formatShape(configShape(config.input))} '${loaded.input.name}', output '${loaded.output.name}'${labels.length > 0 ? `, ${labels.length} labels` : ''})`;
    this.ctx.logger.info({ backend: config.name, provider, model: file }, `onnx ${config.name}: ${note}`);
    return { models: [config.name], note };
  }

  handlers(): TaskHandler[] {
    const { config } = this;
    return [
      {
        kind: config.kind,
        description: `${config.name}, ONNX Runtime on ${this.loaded?.session.info.provider.toUpperCase() ?? 'CPU'}`,
        models: [config.name],
        run: (ctx) => this.classify(ctx),
        close: () => this.close(),
      },
    ];
  }

  async close(): Promise<void> {
    const loaded = this.loaded;
    this.loaded = undefined;
    await loaded?.session.close();
  }

  private async classify(ctx: TaskContext): Promise<ImageClassifyOutput> {
    const { config } = this;
    const loaded = this.loaded;
    if (!loaded) throw new TaskFailedError('BACKEND_UNAVAILABLE', `the ONNX model ${config.name} is not loaded on this worker`, true);
    const requested = ctx.params['model'];
    if (typeof requested === 'string' && requested !== '' && requested !== config.name) {
      throw new TaskFailedError('INVALID_PARAMS', `this worker classifies images with the model "${config.name}", not "${requested}"`, true);
    }
    const top = typeof ctx.params['top'] === 'number' ? ctx.params['top'] : DEFAULT_TOP;
    const file = [...ctx.files.values()][0];
    if (file === undefined) throw new TaskFailedError('INPUT_MISSING', 'image.classify needs one image input', false);
    let tensor: ImageTensor;
    try {
      tensor = await imageToTensor(file, config.input);
    } catch (err) {
      throw new InputDecodeError(`the image cannot be decoded (${err instanceof Error ? err.message.trim() : String(err)})`, { cause: err });
    }
    ctx.progress(0.3, 'image decoded');
    let scores: Float32Array;
    try {
      ({ data: scores } = await loaded.session.run(loaded.input.name, { data: tensor.data, dims: tensor.shape }, loaded.output.name, ctx.signal));
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      throw new TaskFailedError('TASK_FAILED', `ONNX Runtime could not run ${config.model}: ${err instanceof Error ? err.message : String(err)}`, true, { cause: err });
    }
    if (loaded.labels.length > 0 && scores.length !== loaded.labels.length) {
      throw new TaskFailedError('TASK_FAILED', `${config.model} gave ${scores.length} scores but its labels file has ${loaded.labels.length} labels`, true);
    }
    return {
      model: config.name,
      runtime: loaded.runtime,
      labels: topLabels(config.softmax ? softmax(scores) : scores, loaded.labels, top),
    };
  }
}

/** @throws BackendUnavailableError when `file` is not a readable file. */
async function modelFile(file: string): Promise<void> {
  try {
    if (!(await stat(file)).isFile()) throw new BackendUnavailableError(`the model ${file} is not a file`);
  } catch (err) {
    if (err instanceof BackendUnavailableError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new BackendUnavailableError(code === 'ENOENT' ? `the model file ${file} does not exist` : `the model file ${file} cannot be read (${code ?? String(err)})`, { cause: err });
  }
}

/** The model's image input and scores output, checked against the config and the labels. */
function signature(session: OnnxSession, config: OnnxBackendConfig, labels: readonly string[]): { input: TensorInfo; output: TensorInfo } {
  const input = checkImageInput(session.info.inputs, config.input);
  if ('problem' in input) throw new BackendUnavailableError(`${config.model}: ${input.problem}`);
  const output = scoresOutput(session.info.outputs);
  if ('problem' in output) throw new BackendUnavailableError(`${config.model}: ${output.problem}`);
  const classes = classCount(output.output);
  if (labels.length > 0 && classes !== undefined && classes !== labels.length) {
    throw new BackendUnavailableError(
      `the labels file ${config.labels ?? ''} has ${labels.length} labels but ${config.model} scores ${classes} classes (output '${output.output.name}' ${formatShape(output.output.shape)}); give one label per class, in the model's order`,
    );
  }
  return { input: input.input, output: output.output };
}
