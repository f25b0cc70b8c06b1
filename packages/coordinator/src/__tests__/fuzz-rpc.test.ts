import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client, credentials, Metadata, status, type ServiceDefinition, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AdminServiceService,
  BlobServiceClient,
  BlobServiceService,
  JobServiceClient,
  JobServiceService,
  JobState,
  WorkerMessage,
  WorkerServiceService,
  type JobInput,
  type JobSpec,
  type PutBlobResponse,
  type SubmitJobRequest,
  type SubmitJobResponse,
} from '@mmgrid/proto';
import { Coordinator } from '../coordinator.js';
import { HAS_REDIS_SERVER, startTestRedis, type TestRedis } from './redis-server.js';

/**
 * Property-based fuzzing of a real coordinator (in this process, on a private Redis, gRPC on
 * port 0) through its real gRPC surface: random job specs to SubmitJob, random bytes as the
 * request message of every RPC, and random WorkerMessages on a Connect stream. Every call must
 * be answered with a status within its deadline (never a hang), never UNKNOWN, and INTERNAL
 * only where grpc-js itself could not decode the request bytes: grpc-js answers an
 * undecodable request message with INTERNAL "Error deserializing request" before any handler
 * runs (server-interceptors.js), which is what every gRPC server does. Afterwards the
 * coordinator still serves a normal job. Seeds are fixed; counts are printed.
 */

const SEED = 20_261_127;
const HAS_FFMPEG = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;
/** Long enough for a loaded CI machine; a call that takes longer counts as a hang. */
const DEADLINE_MS = 10_000;

/** The statuses a caller's mistake may get; anything else (INTERNAL, UNKNOWN, DEADLINE_EXCEEDED…) is a bug. */
const CALLER_MISTAKES = new Set([status.OK, status.INVALID_ARGUMENT, status.FAILED_PRECONDITION, status.NOT_FOUND, status.RESOURCE_EXHAUSTED, status.OUT_OF_RANGE, status.ALREADY_EXISTS]);

const identity = (b: Buffer): Buffer => b;
const deadline = (): { deadline: number } => ({ deadline: Date.now() + DEADLINE_MS });

function tally(counts: Map<string, number>, code: status): void {
  const name = status[code] ?? String(code);
  counts.set(name, (counts.get(name) ?? 0) + 1);
}

function show(counts: Map<string, number>): string {
  return [...counts].map(([k, v]) => `${k} ${v}`).join(', ');
}

describe.skipIf(!HAS_REDIS_SERVER)('fuzzing the coordinator over gRPC', () => {
  let server: TestRedis;
  let blobDir: string;
  let coordinator: Coordinator;
  let address: string;
  let jobs: JobServiceClient;
  let raw: Client;
  const errors: string[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => errors.push(line) });
  /** A small text blob the coordinator holds, so some fuzzed specs name a real blob. */
  const text = Buffer.from('a short note for the fuzzed jobs\n');
  const textSha = createHash('sha256').update(text).digest('hex');

  beforeAll(async () => {
    server = await startTestRedis();
    blobDir = await mkdtemp(path.join(tmpdir(), 'mmgrid-fuzz-'));
    coordinator = new Coordinator({ listen: '127.0.0.1:0', metricsListen: '127.0.0.1:0', redisUrl: server.url, keyPrefix: 'fuzz', blobDir }, { logger });
    address = (await coordinator.start()).address;
    jobs = new JobServiceClient(address, credentials.createInsecure());
    raw = new Client(address, credentials.createInsecure());
    blobs = new BlobServiceClient(address, credentials.createInsecure());
    await put(text, 'note.txt');
  });

  let blobs: BlobServiceClient;

  /** Uploads bytes (as a submitter would) and returns their hash. */
  async function put(bytes: Buffer, name: string): Promise<string> {
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await new Promise<PutBlobResponse>((resolve, reject) => {
      const call = blobs.putBlob((err, res) => (err ? reject(err) : resolve(res)));
      call.write({ part: { $case: 'header', header: { sha256, size: bytes.length, name, mediaType: '' } } });
      if (bytes.length > 0) call.write({ part: { $case: 'chunk', chunk: bytes } });
      call.end();
    });
    return sha256;
  }

  afterAll(async () => {
    jobs?.close();
    raw?.close();
    blobs?.close();
    await coordinator?.stop();
    await server?.stop();
    if (blobDir) await rm(blobDir, { recursive: true, force: true });
  });

  function submit(req: SubmitJobRequest): Promise<{ code: status; details: string; job?: SubmitJobResponse }> {
    return new Promise((resolve) => {
      jobs.submitJob(req, new Metadata(), deadline(), (err: ServiceError | null, res?: SubmitJobResponse) => {
        if (err) resolve({ code: err.code, details: err.details });
        else resolve({ code: status.OK, details: '', ...(res ? { job: res } : {}) });
      });
    });
  }

  /** Steps JSON: often nearly right (known kinds, inputs and step names), sometimes anything. */
  const stepsJson = fc.oneof(
    fc.constant(''),
    fc
      .dictionary(
        fc.constantFrom('a', 'b', 'stats', 'x'),
        fc.record(
          {
            kind: fc.oneof(fc.constantFrom('text.stats', 'text.split', 'fusion.report', 'image.ocr', 'exec.echo', 'no.such'), fc.string({ maxLength: 12 })),
            input: fc.constantFrom('note', 'photo', '@prompt', ''),
            from: fc.array(fc.constantFrom('a', 'b', 'stats', 'x'), { maxLength: 2 }),
            params: fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 2 }),
            optional: fc.boolean(),
            shard: fc.oneof(fc.boolean(), fc.record({ chunkChars: fc.integer({ min: -10, max: 2_000_000 }) })),
          },
          { requiredKeys: ['kind'] },
        ),
        { maxKeys: 3 },
      )
      .map((steps) => JSON.stringify(steps)),
    fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 40 }),
  );

  const jobSpec: fc.Arbitrary<JobSpec> = fc.record({
    inputs: fc.array(
      fc.record({
        name: fc.oneof(fc.constantFrom('note', 'photo', '@prompt', '', 'a\nb', 'x'.repeat(300)), fc.string({ maxLength: 20 })),
        source: fc.oneof(
          fc.constant(undefined),
          fc.record({ $case: fc.constant('text' as const), text: fc.oneof(fc.string({ maxLength: 200 }), fc.constant('')) }),
          fc.record({
            $case: fc.constant('blob' as const),
            blob: fc.record({
              sha256: fc.oneof(fc.constant(textSha), fc.stringMatching(/^[0-9a-f]{64}$/), fc.string({ maxLength: 70 })),
              size: fc.oneof(fc.constant(0), fc.constant(text.length), fc.nat({ max: 2 ** 40 })),
              mediaType: fc.oneof(fc.constant(''), fc.string({ maxLength: 20 })),
              name: fc.string({ maxLength: 20 }),
            }),
          }),
        ),
      }),
      { maxLength: 4 },
    ),
    prompt: fc.oneof(fc.string({ maxLength: 100 }), fc.constant('')),
    pipeline: fc.oneof(fc.constantFrom('', 'describe', 'declared', 'transcribe', 'nope'), fc.string({ maxLength: 12 })),
    priority: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
    labels: fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 3 }),
    params: fc.dictionary(fc.oneof(fc.constantFrom('language', 'windowSec'), fc.string({ maxLength: 10 })), fc.string({ maxLength: 20 }), { maxKeys: 2 }),
    stepsJson,
  });

  /** Specs that are right but for one or two fields, so the checks past the schema are reached. */
  const nearlyRight: fc.Arbitrary<JobSpec> = fc.record({
    inputs: fc.constantFrom<JobInput[][]>(
      [{ name: 'note', source: { $case: 'blob', blob: { sha256: textSha, size: text.length, mediaType: '', name: 'note.txt' } } }],
      [{ name: 'note', source: { $case: 'text', text: 'an inline note' } }],
      [{ name: 'note', source: { $case: 'blob', blob: { sha256: 'f'.repeat(64), size: 10, mediaType: '', name: 'gone.txt' } } }],
      [{ name: 'note', source: { $case: 'blob', blob: { sha256: textSha, size: text.length + 1, mediaType: '', name: 'note.txt' } } }],
      [],
    ),
    prompt: fc.oneof(fc.constant(''), fc.string({ maxLength: 40 })),
    pipeline: fc.constantFrom('', 'describe', 'declared'),
    priority: fc.integer({ min: -11, max: 11 }),
    labels: fc.dictionary(fc.constantFrom('team', 'run'), fc.string({ maxLength: 10 }), { maxKeys: 2 }),
    params: fc.constant({}),
    stepsJson: fc.oneof(fc.constant(''), fc.constant('{"stats":{"kind":"text.stats","input":"note"}}'), stepsJson),
  });

  it('answers every fuzzed SubmitJob with a caller-mistake status or a job, never INTERNAL or a hang', async () => {
    errors.length = 0;
    const counts = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(fc.oneof(jobSpec, nearlyRight), fc.oneof(fc.constant(''), fc.string({ maxLength: 20 })), async (spec, idempotencyKey) => {
        const answer = await submit({ spec, idempotencyKey });
        tally(counts, answer.code);
        if (!CALLER_MISTAKES.has(answer.code)) throw new Error(`SubmitJob answered ${status[answer.code]}: ${answer.details}\n${errors.join('')}`);
        if (answer.code === status.OK) expect(answer.job?.job?.id).toMatch(/\S/);
        else expect(answer.details).toMatch(/\S/);
      }),
      { seed: SEED, numRuns: 400 },
    );
    console.log(`SubmitJob fuzz: 400 specs, answers: ${show(counts)}`);
    expect(counts.get('OK')).toBeGreaterThan(0);
    expect(errors).toEqual([]);
  }, 120_000);

  /** Every RPC of every service, with its server's own request decoder. */
  const methods = Object.entries({ JobService: JobServiceService, BlobService: BlobServiceService, WorkerService: WorkerServiceService, AdminService: AdminServiceService } as Record<string, ServiceDefinition>).flatMap(
    ([service, def]) => Object.entries(def).map(([name, m]) => ({ service, name, path: m.path, requestStream: m.requestStream, responseStream: m.responseStream, decode: m.requestDeserialize })),
  );

  /** Sends `frames` as raw request messages (no encoding) and resolves with the call's final status. */
  function rawCall(method: (typeof methods)[number], frames: readonly Buffer[]): Promise<StatusObject> {
    return new Promise((resolve) => {
      const md = new Metadata();
      if (!method.requestStream && !method.responseStream) {
        raw.makeUnaryRequest(method.path, identity, identity, frames[0] ?? Buffer.alloc(0), md, deadline(), (err: ServiceError | null) =>
          resolve(err ? { code: err.code, details: err.details, metadata: err.metadata } : { code: status.OK, details: '', metadata: new Metadata() }),
        );
        return;
      }
      if (!method.requestStream) {
        const call = raw.makeServerStreamRequest(method.path, identity, identity, frames[0] ?? Buffer.alloc(0), md, deadline());
        call.on('data', () => undefined);
        call.on('error', () => undefined);
        call.on('status', resolve);
        return;
      }
      if (!method.responseStream) {
        const call = raw.makeClientStreamRequest(method.path, identity, identity, md, deadline(), () => undefined);
        call.on('status', resolve);
        call.on('error', () => undefined);
        for (const frame of frames) call.write(frame);
        call.end();
        return;
      }
      const call = raw.makeBidiStreamRequest(method.path, identity, identity, md, deadline());
      call.on('data', () => undefined);
      call.on('error', () => undefined);
      call.on('status', resolve);
      for (const frame of frames) call.write(frame);
      call.end();
    });
  }

  function decodes(method: (typeof methods)[number], frame: Buffer): boolean {
    try {
      method.decode(frame);
      return true;
    } catch {
      return false;
    }
  }

  it('answers random bytes sent as any RPC’s request messages with a status, INTERNAL only for undecodable bytes', async () => {
    errors.length = 0;
    expect(methods.map((m) => `${m.service}.${m.name}`)).toContain('WorkerService.connect');
    const counts = new Map<string, number>();
    let calls = 0;
    let undecodable = 0;
    // Protobuf-shaped bytes (length-delimited fields of random numbers and contents) decode
    // more often than noise, so handlers see odd but well-formed messages too.
    const field = fc.record({ no: fc.integer({ min: 1, max: 12 }), payload: fc.oneof(fc.string({ maxLength: 20 }).map((t) => Buffer.from(t)), fc.uint8Array({ maxLength: 20 })) });
    const protoish = fc.array(field, { maxLength: 5 }).map((fields) => Buffer.concat(fields.map(({ no, payload }) => Buffer.concat([Buffer.from([(no << 3) | 2, payload.length]), Buffer.from(payload)]))));
    const frame = fc.oneof(fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)), fc.uint8Array({ minLength: 200, maxLength: 4096 }).map((a) => Buffer.from(a)), protoish);
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...methods), fc.array(frame, { minLength: 1, maxLength: 4 }), async (method, frames) => {
        // A unary or server-streaming call carries exactly one message.
        const sent = method.requestStream ? frames : frames.slice(0, 1);
        const bad = sent.some((f) => !decodes(method, f));
        const answer = await rawCall(method, sent);
        calls += 1;
        if (bad) undecodable += 1;
        tally(counts, answer.code);
        const what = `${method.service}.${method.name} with ${sent.map((f) => f.toString('hex').slice(0, 80)).join(' | ')} answered ${status[answer.code]}: ${answer.details}`;
        if (answer.code === status.INTERNAL) {
          if (!bad || !/deserializ/i.test(answer.details)) throw new Error(`${what}\n${errors.join('')}`);
        } else if (!CALLER_MISTAKES.has(answer.code) && answer.code !== status.CANCELLED) {
          throw new Error(`${what}\n${errors.join('')}`);
        }
      }),
      { seed: SEED, numRuns: 600 },
    );
    console.log(`raw-frame fuzz: ${calls} calls over ${methods.length} RPCs (${undecodable} with undecodable bytes), answers: ${show(counts)}`);
    expect(errors).toEqual([]);
  }, 120_000);

  it('answers a Connect stream of random WorkerMessages, after a hello or without one', async () => {
    errors.length = 0;
    const connect = methods.find((m) => m.name === 'connect');
    if (!connect) throw new Error('no WorkerService.connect');
    const counts = new Map<string, number>();
    // Random bytes that decode are random WorkerMessages of every case, with random fields.
    const message = fc
      .uint8Array({ maxLength: 128 })
      .map((a) => Buffer.from(a))
      .filter((b) => decodes(connect, b));
    const hello = fc
      .record({ workerId: fc.string({ maxLength: 30 }), name: fc.string({ maxLength: 30 }), kind: fc.oneof(fc.constantFrom('text.stats', 'exec.echo'), fc.string({ maxLength: 20 })), slots: fc.nat({ max: 2000 }) })
      .map(({ workerId, name, kind, slots }) => Buffer.from(WorkerMessage.encode({ msg: { $case: 'hello', hello: { workerId, name, version: '0', host: undefined, gpus: [], kinds: [{ kind, slots, models: [] }], warmModels: [], vramBudgetBytes: 0, running: [] } } }).finish()));
    await fc.assert(
      fc.asyncProperty(fc.option(hello, { nil: undefined }), fc.array(message, { maxLength: 6 }), async (first, rest) => {
        const answer = await rawCall(connect, first ? [first, ...rest] : rest);
        tally(counts, answer.code);
        if (!CALLER_MISTAKES.has(answer.code) && answer.code !== status.CANCELLED) {
          throw new Error(`Connect answered ${status[answer.code]}: ${answer.details}\n${errors.join('')}`);
        }
      }),
      { seed: SEED, numRuns: 150 },
    );
    console.log(`Connect fuzz: 150 streams of random WorkerMessages, answers: ${show(counts)}`);
    expect(errors).toEqual([]);
  }, 120_000);

  it.skipIf(!HAS_FFMPEG)('answers jobs whose inputs are media with damaged headers: a job or INVALID_ARGUMENT, never INTERNAL', async () => {
    errors.length = 0;
    const make = (args: string[], ext: string): Promise<Buffer> => {
      const file = path.join(blobDir, `original${ext}`);
      execFileSync('ffmpeg', ['-v', 'error', '-y', ...args, file], { timeout: 60_000 });
      return readFile(file);
    };
    const originals = {
      'tone.wav': await make(['-f', 'lavfi', '-i', 'sine=frequency=440:duration=0.3', '-ac', '1', '-ar', '16000'], '.wav'),
      'clip.mp4': await make(['-f', 'lavfi', '-i', 'testsrc=size=32x32:rate=5:duration=0.4', '-pix_fmt', 'yuv420p', '-c:v', 'mpeg4'], '.mp4'),
      'red.png': await make(['-f', 'lavfi', '-i', 'color=c=red:s=16x16', '-frames:v', '1'], '.png'),
    };
    const counts = new Map<string, number>();
    const damage = fc.record({ flips: fc.array(fc.record({ at: fc.nat({ max: 63 }), xor: fc.integer({ min: 1, max: 255 }) }), { minLength: 1, maxLength: 4 }), cut: fc.option(fc.nat({ max: 200 }), { nil: undefined }) });
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...(Object.keys(originals) as (keyof typeof originals)[])), damage, async (name, d) => {
        const bytes = Buffer.from(originals[name]);
        for (const { at, xor } of d.flips) bytes[at] = (bytes[at] ?? 0) ^ xor;
        const damaged = d.cut === undefined ? bytes : bytes.subarray(0, d.cut);
        const sha256 = await put(damaged, name);
        const answer = await submit({
          spec: { inputs: [{ name, source: { $case: 'blob', blob: { sha256, size: damaged.length, mediaType: '', name } } }], prompt: 'what is it?', pipeline: '', priority: 0, labels: {}, params: {}, stepsJson: '' },
          idempotencyKey: '',
        });
        tally(counts, answer.code);
        if (answer.code !== status.OK && answer.code !== status.INVALID_ARGUMENT) throw new Error(`SubmitJob of a damaged ${name} answered ${status[answer.code]}: ${answer.details}\n${errors.join('')}`);
        if (answer.code === status.INVALID_ARGUMENT) expect(answer.details).toContain(`input "${name}"`);
      }),
      { seed: SEED, numRuns: 40 },
    );
    console.log(`damaged-media jobs: 40 submitted, answers: ${show(counts)}`);
    expect(errors).toEqual([]);
  }, 120_000);

  it('still serves a normal job afterwards', async () => {
    const answer = await submit({ spec: { inputs: [{ name: 'note', source: { $case: 'blob', blob: { sha256: textSha, size: text.length, mediaType: '', name: 'note.txt' } } }], prompt: '', pipeline: '', priority: 0, labels: {}, params: {}, stepsJson: '' }, idempotencyKey: '' });
    expect(answer.code).toBe(status.OK);
    const id = answer.job?.job?.id ?? '';
    const job = await new Promise<{ state: JobState }>((resolve, reject) =>
      jobs.getJob({ jobId: id }, new Metadata(), deadline(), (err, res) => (err ? reject(err) : resolve(res))),
    );
    expect([JobState.JOB_STATE_QUEUED, JobState.JOB_STATE_RUNNING]).toContain(job.state);
  });
});
