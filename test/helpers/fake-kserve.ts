import type { IncomingMessage, ServerResponse } from 'node:http';
import { freePort } from '@mmgrid/cli';
import { startHttpServer } from './http-server.js';

/**
 * A model server for tests that speaks the KServe v2 / Open Inference Protocol over HTTP as
 * Triton does (health, model readiness, metadata, JSON inference, `{"error": "…"}` answers),
 * serving models whose "inference" a test can work out by hand: the logits are a fixed
 * linear layer over the mean of each colour channel, `logits[k] = Σc weights[k][c]·mean[c]
 * + bias[k]`. An image of one solid colour has exact channel means, so a test knows the
 * exact scores and labels a classifier should report.
 */
export interface FakeKserveModel {
  readonly name: string;
  /** @default ["1"] */
  readonly versions?: readonly string[];
  /** The one input: its shape as metadata gives it (-1: any size); NCHW when a channel dimension of 3 comes first. */
  readonly input: { readonly name: string; readonly shape: readonly number[]; readonly datatype?: string };
  /** The FP32 output that holds the logits, [-1, classes]. */
  readonly logits: string;
  /** Also an INT64 output of the best class, [-1, 1], listed before the logits (so a client must choose). */
  readonly argmax?: string;
  /** One row of 3 weights (red, green, blue) per class. */
  readonly weights: readonly (readonly [number, number, number])[];
  readonly bias: readonly number[];
}

/** A colour classifier: red, green, blue, or grey when no channel stands out. */
export const COLOUR_MODEL: FakeKserveModel = {
  name: 'colours',
  versions: ['1'],
  input: { name: 'pixels', shape: [-1, 3, 32, 32] },
  logits: 'logits',
  argmax: 'best',
  weights: [
    [2, -1, -1],
    [-1, 2, -1],
    [-1, -1, 2],
    [0, 0, 0],
  ],
  bias: [0, 0, 0, 0.5],
};

/** Its labels, one per class in order (what a labels file for it holds). */
export const COLOUR_LABELS = ['red', 'green', 'blue', 'grey'] as const;

/** The logits a model gives for an image whose channels have these means. */
export function logitsOf(model: FakeKserveModel, mean: readonly [number, number, number]): number[] {
  return model.weights.map((w, k) => w[0] * mean[0] + w[1] * mean[1] + w[2] * mean[2] + (model.bias[k] ?? 0));
}

/** A request the fake received: method, path, and the parsed JSON body of a POST. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
}

export interface FakeKserve {
  /** Base URL (no trailing slash) for a kserve backend's `url`. */
  readonly url: string;
  /** Every request so far, in order. */
  readonly requests: readonly RecordedRequest[];
  /** The bodies of the inference requests so far. */
  inferRequests(): InferBody[];
  /** Answers the next `times` inference requests with `status` and `{"error": message}`. */
  failNext(status: number, times: number, message?: string): void;
  /** Whether /v2/health/ready says ready (200) or not (503). */
  setReady(ready: boolean): void;
  stop(): Promise<void>;
}

/** An inference request's body, as the protocol has it. */
export interface InferBody {
  readonly id?: string;
  readonly inputs: { readonly name: string; readonly shape: number[]; readonly datatype: string; readonly data: number[] }[];
  readonly outputs?: { readonly name: string }[];
}

class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const shapeText = (shape: readonly number[]): string => `[${shape.join(',')}]`;

/** Checks an inference request against a model's metadata as a strict server would; returns its one input. */
function checkInfer(model: FakeKserveModel, body: unknown): { shape: number[]; data: number[]; outputs: string[] | undefined } {
  const bad = (message: string): RequestError => new RequestError(400, message);
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { inputs?: unknown }).inputs)) throw bad('the request has no "inputs" array');
  const { inputs, outputs } = body as { inputs: unknown[]; outputs?: unknown };
  if (inputs.length !== 1) throw bad(`expected 1 inputs but got ${inputs.length} inputs for model '${model.name}'`);
  const input = inputs[0] as { name?: unknown; shape?: unknown; datatype?: unknown; data?: unknown };
  if (input.name !== model.input.name) throw bad(`unexpected inference input '${String(input.name)}' for model '${model.name}'`);
  const datatype = model.input.datatype ?? 'FP32';
  if (input.datatype !== datatype) throw bad(`inference input '${model.input.name}' data-type is '${String(input.datatype)}', but model '${model.name}' expects '${datatype}'`);
  const shape = input.shape;
  const declared = model.input.shape;
  if (!Array.isArray(shape) || shape.length !== declared.length || shape.some((d, i) => typeof d !== 'number' || !Number.isInteger(d) || d < 1 || (declared[i] !== -1 && declared[i] !== d))) {
    throw bad(`unexpected shape for input '${model.input.name}' for model '${model.name}'. Expected ${shapeText(declared)}, got ${Array.isArray(shape) ? shapeText(shape as number[]) : String(shape)}`);
  }
  const size = (shape as number[]).reduce((a, b) => a * b, 1);
  const data = input.data;
  if (!Array.isArray(data) || data.some((v) => typeof v !== 'number')) throw bad(`input '${model.input.name}': data must be a flat array of numbers`);
  if (data.length !== size) throw bad(`input '${model.input.name}': shape ${shapeText(shape as number[])} holds ${size} values, the request has ${data.length}`);
  let wanted: string[] | undefined;
  if (outputs !== undefined) {
    if (!Array.isArray(outputs)) throw bad('"outputs" must be an array');
    wanted = outputs.map((o) => String((o as { name?: unknown }).name));
    const known = [model.argmax, model.logits].filter((n) => n !== undefined);
    const unknown = wanted.find((n) => !known.includes(n));
    if (unknown !== undefined) throw bad(`unexpected inference output '${unknown}' for model '${model.name}'`);
  }
  return { shape: shape as number[], data: data as number[], outputs: wanted };
}

/** The mean of each colour channel of each image in a batch, by the layout the model's metadata declares. */
function channelMeans(model: FakeKserveModel, shape: readonly number[], data: readonly number[]): [number, number, number][] {
  const batched = model.input.shape.length === 4;
  const images = batched ? (shape[0] ?? 1) : 1;
  const dims = batched ? shape.slice(1) : shape;
  const declared = batched ? model.input.shape.slice(1) : model.input.shape;
  const channelsFirst = declared[0] === 3;
  const perImage = dims.reduce((a, b) => a * b, 1);
  const pixels = perImage / 3;
  const means: [number, number, number][] = [];
  for (let n = 0; n < images; n++) {
    const sums = [0, 0, 0];
    for (let p = 0; p < pixels; p++) {
      for (let c = 0; c < 3; c++) sums[c]! += data[n * perImage + (channelsFirst ? c * pixels + p : p * 3 + c)] ?? 0;
    }
    means.push([sums[0]! / pixels, sums[1]! / pixels, sums[2]! / pixels]);
  }
  return means;
}

/** Starts the fake on a free port of 127.0.0.1 with these models. */
export async function startFakeKserve(models: readonly FakeKserveModel[] = [COLOUR_MODEL]): Promise<FakeKserve> {
  const requests: RecordedRequest[] = [];
  let failing = { status: 0, times: 0, message: '' };
  let ready = true;

  const reply = (res: ServerResponse, status: number, json?: unknown): void => {
    res.writeHead(status, json === undefined ? {} : { 'content-type': 'application/json' });
    res.end(json === undefined ? undefined : JSON.stringify(json));
  };

  /** The model and version a /v2/models/… path names, and what is asked of it ('' for metadata). */
  const route = (path: string): { model: FakeKserveModel; version: string | undefined; action: string } => {
    const m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(?:\/(ready|infer))?$/.exec(path);
    if (!m) throw new RequestError(404, `no route ${path}`);
    const name = decodeURIComponent(m[1] ?? '');
    const version = m[2] === undefined ? undefined : decodeURIComponent(m[2]);
    const model = models.find((x) => x.name === name);
    if (!model) throw new RequestError(404, `Request for unknown model: '${name}' is not found`);
    if (version !== undefined && !(model.versions ?? ['1']).includes(version)) {
      throw new RequestError(404, `Request for unknown model: '${name}' version ${version} is not found`);
    }
    return { model, version, action: m[3] ?? '' };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const text = method === 'POST' ? await readBody(req) : '';
    let body: unknown;
    if (method === 'POST') {
      try {
        body = JSON.parse(text);
      } catch (err) {
        requests.push({ method, path });
        throw new RequestError(400, `failed to parse the request JSON buffer: ${(err as Error).message}`);
      }
    }
    requests.push({ method, path, ...(body !== undefined ? { body } : {}) });

    if (method === 'GET' && path === '/v2/health/live') return reply(res, 200);
    if (method === 'GET' && path === '/v2/health/ready') return ready ? reply(res, 200) : reply(res, 503, { error: 'the server is starting' });
    if (method === 'GET' && path === '/v2') return reply(res, 200, { name: 'fake-kserve', version: '2.0', extensions: [] });

    const { model, version, action } = route(path);
    if (method === 'GET' && action === 'ready') return reply(res, 200);
    if (method === 'GET' && action === '') {
      const outputs = [
        ...(model.argmax !== undefined ? [{ name: model.argmax, datatype: 'INT64', shape: [-1, 1] }] : []),
        { name: model.logits, datatype: 'FP32', shape: [-1, model.weights.length] },
      ];
      return reply(res, 200, {
        name: model.name,
        versions: model.versions ?? ['1'],
        platform: 'fake_linear',
        inputs: [{ name: model.input.name, datatype: model.input.datatype ?? 'FP32', shape: model.input.shape }],
        outputs,
      });
    }
    if (method === 'POST' && action === 'infer') {
      if (failing.times > 0) {
        failing = { ...failing, times: failing.times - 1 };
        return reply(res, failing.status, { error: failing.message });
      }
      const { shape, data, outputs } = checkInfer(model, body);
      const means = channelMeans(model, shape, data);
      const logits = means.map((m) => logitsOf(model, m));
      const all = [
        ...(model.argmax !== undefined
          ? [{ name: model.argmax, datatype: 'INT64', shape: [means.length, 1], data: logits.map((l) => l.indexOf(Math.max(...l))) }]
          : []),
        // FP32 on the wire: each value as the float32 a real server would hold.
        { name: model.logits, datatype: 'FP32', shape: [means.length, model.weights.length], data: logits.flat().map((v) => Math.fround(v)) },
      ];
      return reply(res, 200, {
        model_name: model.name,
        model_version: version ?? (model.versions ?? ['1'])[0],
        ...(typeof (body as { id?: unknown }).id === 'string' ? { id: (body as { id: string }).id } : {}),
        outputs: outputs === undefined ? all : all.filter((o) => outputs.includes(o.name)),
      });
    }
    throw new RequestError(405, `${method} is not allowed on ${path}`);
  };

  const { url, stop } = await startHttpServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof RequestError) reply(res, err.status, { error: err.message });
      else reply(res, 500, { error: String(err) });
    });
  });
  return {
    url,
    requests,
    inferRequests: () => requests.filter((r) => r.method === 'POST' && r.path.endsWith('/infer') && r.body !== undefined).map((r) => r.body as InferBody),
    failNext(status, times, message = 'the server is overloaded') {
      failing = { status, times, message };
    },
    setReady(value) {
      ready = value;
    },
    stop,
  };
}

/** A URL where nothing listens (a port that was free a moment ago): a model server that is down. */
export async function deadUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}
