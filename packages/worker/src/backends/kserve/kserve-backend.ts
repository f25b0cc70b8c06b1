import { z } from 'zod';
import type { ImageClassifyOutput } from '@mmgrid/core';
import { InputDecodeError, TaskFailedError } from '../../errors.js';
import type { KserveBackendConfig } from '../../worker-config.js';
import { BackendUnavailableError, type Backend, type BackendCheck, type BackendContext, type TaskContext, type TaskHandler } from '../backend.js';
import { imageToTensor, loadLabels, softmax, topLabels } from '../classify.js';
import { baseUrl, causeOf, checkRequest, errorMessageOf, taskRequest } from '../http.js';
import { planModel, scoresOf, type KservePlan } from './kserve-model.js';
import { float32Json, inferResponseSchema, modelMetadataSchema, modelPath, shapeText, type InferRequest, type ModelMetadata } from './kserve-protocol.js';

const JSON_HEADERS = { accept: 'application/json' };
const SERVER = 'the KServe server';

/** Labels returned when a task's `top` parameter is absent. */
const DEFAULT_TOP = 5;

/** A KServe answer to a readiness check: some servers say `{"ready": false}` with a 200. */
const readyBodySchema = z.object({ ready: z.boolean() });

/** A model on a KServe v2 / Open Inference Protocol server, serving image.classify. */
export function createKserveBackend(config: KserveBackendConfig, ctx: BackendContext): Backend {
  return new KserveBackend(config, ctx);
}

/** What a passing check found, for the handler. */
interface Checked {
  readonly plan: KservePlan;
  readonly labels: readonly string[];
}

class KserveBackend implements Backend {
  readonly type = 'kserve';
  readonly kinds: readonly string[];
  readonly name: string;
  private readonly server: string;
  private readonly modelUrl: string;
  private checked: Checked | undefined;

  constructor(
    private readonly config: KserveBackendConfig,
    private readonly ctx: BackendContext,
  ) {
    this.name = config.name;
    this.kinds = [config.kind];
    this.server = baseUrl(config.url);
    this.modelUrl = `${this.server}${modelPath(config.model, config.version)}`;
  }

  /** "model resnet50" or "model resnet50 version 2". */
  private get modelText(): string {
    return `model ${this.config.model}${this.config.version !== undefined ? ` version ${this.config.version}` : ''}`;
  }

  async check(signal: AbortSignal): Promise<BackendCheck> {
    const health = await checkRequest(SERVER, `${this.server}/v2/health/ready`, { signal, headers: JSON_HEADERS });
    if (!isOk(health.status)) {
      const hint = health.status === 404 ? '; does it speak the KServe v2 / Open Inference Protocol, and is the URL its root?' : '';
      throw new BackendUnavailableError(`${SERVER} at ${this.server} is not ready: GET /v2/health/ready answered ${health.status}: ${errorMessageOf(health.body)}${hint}`);
    }

    const ready = await checkRequest(SERVER, `${this.modelUrl}/ready`, { signal, headers: JSON_HEADERS });
    if (!isOk(ready.status) || readyBodySchema.safeParse(safeJson(ready.body)).data?.ready === false) {
      const why = isOk(ready.status) ? 'it says it is not ready' : `GET ${modelPath(this.config.model, this.config.version)}/ready answered ${ready.status}: ${errorMessageOf(ready.body)}`;
      throw new BackendUnavailableError(`${SERVER} at ${this.server} has no ready ${this.modelText} (${why}); is the model loaded, and its name right?`);
    }

    const meta = await checkRequest(SERVER, this.modelUrl, { signal, headers: JSON_HEADERS });
    if (!isOk(meta.status)) {
      throw new BackendUnavailableError(`${SERVER} at ${this.server} gives no metadata for ${this.modelText}: GET ${modelPath(this.config.model, this.config.version)} answered ${meta.status}: ${errorMessageOf(meta.body)}`);
    }
    let metadata: ModelMetadata;
    try {
      metadata = modelMetadataSchema.parse(JSON.parse(meta.body));
    } catch (err) {
      throw new BackendUnavailableError(`${SERVER} at ${this.server} answered with metadata for ${this.modelText} that is not KServe v2 model metadata: ${causeOf(err).slice(0, 300)}`, { cause: err });
    }

    const plan = planModel(metadata, this.config.input, this.config.model);
    const labels = await loadLabels(this.config.labels, this.ctx.baseDir);
    const classes = plan.output?.classes;
    if (labels.length > 0 && classes !== undefined && labels.length !== classes) {
      throw new BackendUnavailableError(`the labels file ${this.config.labels ?? ''} has ${labels.length} labels, but model ${this.config.model}'s output '${plan.output?.name ?? ''}' has ${classes} scores; they must be in the model's order, one a line`);
    }
    this.checked = { plan, labels };

    const versions = this.config.version !== undefined ? [this.config.version] : (metadata.versions ?? []);
    const output = plan.output ? `output '${plan.output.name}' (${plan.output.why})` : 'output chosen from each answer (the metadata lists none)';
    return {
      models: [this.config.model],
      note: `KServe v2 model ${this.config.model}${versions.length > 0 ? ` (version${versions.length > 1 ? 's' : ''} ${versions.join(', ')})` : ''} at ${this.server}, input '${plan.input.name}' ${shapeText(plan.input.shape)} FP32, ${output}, ${labels.length > 0 ? `${labels.length} labels` : 'no labels file'}`,
    };
  }

  handlers(): TaskHandler[] {
    if (!this.checked) throw new Error(`kserve backend ${this.name}: handlers() asked for before a passing check`);
    return [new KserveClassifyHandler(this.config, this.modelUrl, this.server, this.checked)];
  }
}

/** image.classify on the server: the image as a tensor, one inference, the best labels. */
class KserveClassifyHandler implements TaskHandler {
  readonly kind = 'image.classify';
  readonly description: string;
  readonly models: readonly string[];

  constructor(
    private readonly config: KserveBackendConfig,
    private readonly modelUrl: string,
    private readonly server: string,
    private readonly checked: Checked,
  ) {
    this.models = [config.model];
    this.description = `image classification by model ${config.model} on the KServe server at ${server}`;
  }

  async run(ctx: TaskContext): Promise<ImageClassifyOutput> {
    const top = ctx.params['top'] ?? DEFAULT_TOP;
    const model = ctx.params['model'];
    if (typeof top !== 'number' || !Number.isInteger(top) || top < 1 || top > 100) {
      throw new TaskFailedError('INVALID_PARAMS', 'image.classify parameter top must be a whole number from 1 to 100', false);
    }
    if (model !== undefined && model !== this.config.model) {
      // The model decides the tensor (size, layout, normalisation), so this backend asks for no other.
      throw new TaskFailedError(
        'INVALID_PARAMS',
        `this worker classifies with model ${this.config.model}, not ${typeof model === 'string' ? model : JSON.stringify(model)}; to send the step to a worker that serves it, use requires: { model: … }`,
        false,
      );
    }
    const file = [...ctx.files.values()][0];
    if (file === undefined) throw new TaskFailedError('INPUT_MISSING', 'image.classify needs one image input', false);

    let data: number[];
    try {
      data = float32Json((await imageToTensor(file, this.config.input)).data);
    } catch (err) {
      throw new InputDecodeError(`the image cannot be decoded (${err instanceof Error ? err.message.trim() : String(err)})`, { cause: err });
    }
    const { plan, labels } = this.checked;
    const request: InferRequest = {
      id: ctx.taskId,
      inputs: [{ name: plan.input.name, shape: plan.input.shape, datatype: 'FP32', data }],
      ...(plan.output ? { outputs: [{ name: plan.output.name }] } : {}),
    };
    const body = await taskRequest(SERVER, `${this.modelUrl}/infer`, {
      method: 'POST',
      headers: { ...JSON_HEADERS, 'content-type': 'application/json' },
      body: JSON.stringify(request),
      signal: ctx.signal,
    });
    // A malformed answer is retryable (INVALID_OUTPUT): the server's fault, such as a model
    // being reloaded or a proxy's error page; another try or another worker may do.
    const json = safeJson(body);
    if (json === undefined) throw new TaskFailedError('INVALID_OUTPUT', `the KServe server's answer is not JSON: ${errorMessageOf(body)}`, true);
    const parsed = inferResponseSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const why = issue ? `${issue.path.join('.') || 'the body'}: ${issue.message}` : 'unknown';
      throw new TaskFailedError('INVALID_OUTPUT', `the KServe server's answer is not a KServe v2 inference response (${why})`, true);
    }
    const raw = scoresOf(parsed.data.outputs, plan.output);
    ctx.progress(1, 'classified');
    return {
      model: this.config.model,
      runtime: `kserve v2 (${this.server})`,
      labels: topLabels(this.config.softmax ? softmax(raw) : raw, labels, top),
    };
  }
}

/** A 2xx status: the protocol's "ready" and "here it is". */
function isOk(status: number): boolean {
  return status >= 200 && status < 300;
}

/** The body as JSON, or undefined when it is not JSON. */
function safeJson(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}
