import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { credentials, status, type ClientDuplexStream, type ServiceError } from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BlobServiceClient,
  JobServiceClient,
  WorkerServiceClient,
  type CoordinatorMessage,
  JobState,
  type GpuStats,
  type Job,
  type Lease,
  type PutBlobResponse,
  type SubmitJobRequest,
  type SubmitJobResponse,
  type TaskAssignment,
  type WorkerMessage,
} from '@mmgrid/proto';
import { textChunks, textStats, type TextSplitOutput } from '@mmgrid/core';
import { Coordinator } from '../coordinator.js';
import { HAS_REDIS_SERVER, startTestRedis, type TestRedis } from './redis-server.js';

interface Sample {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}

/** The value of one series (matching every given label) of a coordinator's metrics, or undefined. */
async function sample(c: Coordinator, name: string, labels: Record<string, string> = {}, metricName = name): Promise<number | undefined> {
  const metric = (await c.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const found = (metric?.values as Sample[] | undefined)?.find(
    (s) => (s.metricName ?? name) === metricName && Object.entries(labels).every(([k, v]) => String(s.labels[k]) === v),
  );
  return found?.value;
}

/** The sum of one series over several replicas (a series a replica lacks counts 0). */
async function total(cs: readonly Coordinator[], name: string, labels: Record<string, string> = {}, metricName = name): Promise<number> {
  let sum = 0;
  for (const c of cs) sum += (await sample(c, name, labels, metricName)) ?? 0;
  return sum;
}

/**
 * Polls until `read` gives what `ok` accepts, for up to `withinMs` (metrics of calls that end
 * asynchronously, queue depths read every few seconds). Polling a scrape is cheap: it reads
 * Redis at most once per refresh interval however often it is called.
 */
async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, what: string, withinMs = 5_000): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${String(value)} after ${withinMs} ms`);
    await delay(25);
  }
}

/** Coordinator options every replica of these tests shares. */
const REPLICA = { listen: '127.0.0.1:0', metricsListen: '127.0.0.1:0' } as const;
/** Queue depths are read at most every 5 s (Metrics' default queueRefreshMs), and a little more. */
const QUEUE_REFRESH_WAIT_MS = 8_000;

function unary<Req, Res>(fn: (req: Req, cb: (err: ServiceError | null, res?: Res) => void) => unknown, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    fn(req, (err, res) => (err ? reject(err) : resolve(res as Res)));
  });
}

const GPU: GpuStats = { uuid: 'GPU-test-1', utilizationPercent: 40, memoryUsedBytes: 2e9, memoryTotalBytes: 16e9, temperatureCelsius: 55, powerWatts: 70 };

/** What a fake worker does with an assignment: send messages back on `send`. */
type Answer = (assign: TaskAssignment, send: (msg: WorkerMessage['msg']) => void) => void;

/**
 * A worker speaking the Connect protocol in this process: a T4 named `name` offering `kinds`,
 * heartbeating every 500 ms (reporting no running task) and answering assignments as `answer` says.
 */
function connectWorker(address: string, name: string, kinds: readonly string[], answer: Answer) {
  const client = new WorkerServiceClient(address, credentials.createInsecure());
  const stream: ClientDuplexStream<WorkerMessage, CoordinatorMessage> = client.connect();
  const send = (msg: WorkerMessage['msg']): void => void stream.write({ msg });
  let seq = 0;
  const heartbeat = (): void => send({ $case: 'heartbeat', heartbeat: { seq: seq++, gpus: [GPU], warmModels: [], running: [] } });
  let beat: NodeJS.Timeout | undefined;
  const welcomed = new Promise<void>((resolve, reject) => {
    stream.on('data', (message: CoordinatorMessage) => {
      const msg = message.msg;
      if (msg?.$case === 'welcome') {
        heartbeat();
        beat = setInterval(heartbeat, 500);
        resolve();
      } else if (msg?.$case === 'assign') {
        answer(msg.assign, send);
      }
    });
    stream.on('error', reject);
  });
  send({
    $case: 'hello',
    hello: {
      workerId: `metrics-test-${name}`,
      name,
      version: 'test',
      host: undefined,
      gpus: [{ uuid: GPU.uuid, name: 'Tesla T4', memoryTotalBytes: 16e9, memoryFreeBytes: 14e9, computeCapability: '7.5', driverVersion: '', cudaVersion: '' }],
      kinds: kinds.map((kind) => ({ kind, slots: 2, models: [] })),
      warmModels: [],
      vramBudgetBytes: 8e9,
      running: [],
    },
  });
  return {
    welcomed,
    close: () => {
      if (beat) clearInterval(beat);
      stream.on('error', () => undefined);
      stream.end();
      client.close();
    },
  };
}

/**
 * What the selftest worker does with a task's first attempt: fail it (retryably), or forget it
 * (never report it running, never answer) so its lease lapses. Either way it answers the next
 * attempt with a result, and sends a forgotten attempt's result late, just before that one.
 */
type FirstAttempt = 'fail' | 'forget';

/** A worker running selftest.sleep that spoils each task's first attempt as `first` says. */
function fakeWorker(address: string, first: FirstAttempt = 'fail', name = 'rig-7') {
  /** The lease of each forgotten first attempt, by task. */
  const forgotten = new Map<string, Lease>();
  return connectWorker(address, name, ['selftest.sleep'], ({ lease, attempt, paramsJson }, send) => {
    const index = (JSON.parse(paramsJson) as { index: number }).index;
    const result = (l: Lease | undefined): WorkerMessage['msg'] => ({
      $case: 'result',
      result: { lease: l, outputJson: JSON.stringify({ sleptMs: 0, attempt, index }), blobs: [], stats: undefined },
    });
    const task = lease?.taskRef ?? '';
    if (attempt === 1 && first === 'fail') {
      send({ $case: 'failure', failure: { lease, error: { code: 'TASK_FAILED', message: 'first attempt fails on purpose', retryable: true }, stats: undefined } });
    } else if (attempt === 1 && lease) {
      forgotten.set(task, lease);
    } else {
      const late = forgotten.get(task);
      if (late) send(result(late));
      send(result(lease));
    }
  });
}

/** A worker that splits texts into chunks and counts the words of each chunk. */
function textWorker(address: string) {
  return connectWorker(address, 'rig-9', ['text.split', 'text.stats'], ({ lease, kind, paramsJson, texts }, send) => {
    const text = Object.values(texts)[0] ?? '';
    let output: unknown;
    if (kind === 'text.split') {
      const maxChars = (JSON.parse(paramsJson) as { maxChars: number }).maxChars;
      const split: TextSplitOutput = { characters: text.length, maxChars, chunks: textChunks(text, maxChars).map(({ index, start, end }) => ({ index, start, end })) };
      output = split;
    } else {
      output = textStats(text, 'input');
    }
    send({ $case: 'result', result: { lease, outputJson: JSON.stringify(output), blobs: [], stats: undefined } });
  });
}

/**
 * One coordinator replica in this process, on a private Redis, with its metrics endpoint on a
 * free port; a fake worker and plain gRPC clients drive it.
 */
describe.skipIf(!HAS_REDIS_SERVER)('Coordinator metrics', () => {
  let server: TestRedis;
  let blobDir: string;
  let coordinator: Coordinator;
  let address: string;
  let metricsUrl: string;
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });

  beforeAll(async () => {
    server = await startTestRedis();
    blobDir = await mkdtemp(path.join(tmpdir(), 'mmgrid-metrics-'));
    coordinator = new Coordinator({ ...REPLICA, redisUrl: server.url, keyPrefix: 'metrics', blobDir }, { logger });
    const started = await coordinator.start();
    address = started.address;
    expect(started.metricsAddress).toBe(coordinator.metricsAddress);
    metricsUrl = `http://${started.metricsAddress ?? ''}`;
  });

  afterAll(async () => {
    await coordinator?.stop();
    await server?.stop();
    if (blobDir) await rm(blobDir, { recursive: true, force: true });
  });

  it('serves /metrics in the Prometheus text format and /healthz while Redis answers', async () => {
    const res = await fetch(`${metricsUrl}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(coordinator.metrics.contentType);
    const text = await res.text();
    expect(text).toContain('# TYPE mmgrid_jobs_submitted_total counter');
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    const health = await fetch(`${metricsUrl}/healthz`);
    expect([health.status, await health.text()]).toEqual([200, 'ok\n']);
    expect((await fetch(`${metricsUrl}/nothing`)).status).toBe(404);
  });

  it('counts gRPC calls by final status and times unary ones', async () => {
    const jobs = new JobServiceClient(address, credentials.createInsecure());
    try {
      await expect(unary(jobs.getJob.bind(jobs), { jobId: 'no-such-job' })).rejects.toMatchObject({ code: status.NOT_FOUND });
      const labels = { service: 'JobService', method: 'GetJob', code: 'NOT_FOUND' };
      expect(await sample(coordinator, 'mmgrid_grpc_requests_total', labels)).toBe(1);
      expect(await sample(coordinator, 'mmgrid_grpc_request_seconds', { service: 'JobService', method: 'GetJob' }, 'mmgrid_grpc_request_seconds_count')).toBe(1);
      // A stream that fails is counted with its status when it ends, and is not timed.
      const watch = jobs.watchJob({ jobId: 'no-such-job', afterEventId: '' });
      await new Promise<void>((resolve) => watch.on('error', () => resolve()));
      await eventually(() => sample(coordinator, 'mmgrid_grpc_requests_total', { service: 'JobService', method: 'WatchJob', code: 'NOT_FOUND' }), (v) => v === 1, 'WatchJob NOT_FOUND');
      expect(await sample(coordinator, 'mmgrid_grpc_request_seconds', { method: 'WatchJob' }, 'mmgrid_grpc_request_seconds_count')).toBeUndefined();
    } finally {
      jobs.close();
    }
  });

  it('counts blob bytes in and out and uploads the store already had', async () => {
    const blobs = new BlobServiceClient(address, credentials.createInsecure());
    const bytes = Buffer.from('metrics test blob '.repeat(1000));
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const put = (): Promise<PutBlobResponse> =>
      new Promise((resolve, reject) => {
        const call = blobs.putBlob((err, res) => (err ? reject(err) : resolve(res)));
        call.write({ part: { $case: 'header', header: { sha256, size: bytes.length, name: 'b.txt', mediaType: 'text/plain' } } });
        call.write({ part: { $case: 'chunk', chunk: bytes } });
        call.end();
      });
    try {
      const before = (await sample(coordinator, 'mmgrid_blob_bytes_total', { direction: 'in' })) ?? 0;
      expect((await put()).deduplicated).toBe(false);
      expect((await put()).deduplicated).toBe(true);
      expect(await sample(coordinator, 'mmgrid_blob_bytes_total', { direction: 'in' })).toBe(before + 2 * bytes.length);
      expect(await sample(coordinator, 'mmgrid_blob_uploads_deduplicated_total')).toBe(1);
      const download = blobs.getBlob({ sha256, offset: 0 });
      download.on('data', () => undefined);
      await new Promise<void>((resolve, reject) => download.on('end', resolve).on('error', reject));
      expect(await sample(coordinator, 'mmgrid_blob_bytes_total', { direction: 'out' })).toBe(bytes.length);
      expect(await sample(coordinator, 'mmgrid_grpc_requests_total', { service: 'BlobService', method: 'PutBlob', code: 'OK' })).toBe(2);
      // A download of a blob the store lacks ends NOT_FOUND (and sends no bytes).
      const missing = blobs.getBlob({ sha256: 'f'.repeat(64), offset: 0 });
      missing.on('data', () => undefined);
      await expect(new Promise((resolve, reject) => missing.on('end', resolve).on('error', reject))).rejects.toMatchObject({ code: status.NOT_FOUND });
      await eventually(() => sample(coordinator, 'mmgrid_grpc_requests_total', { service: 'BlobService', method: 'GetBlob', code: 'NOT_FOUND' }), (v) => v === 1, 'GetBlob NOT_FOUND');
      expect(await sample(coordinator, 'mmgrid_blob_bytes_total', { direction: 'out' })).toBe(bytes.length);
    } finally {
      blobs.close();
    }
  });

  it('counts a submitted job, the tasks it queued, and its cancellation once', async () => {
    const jobs = new JobServiceClient(address, credentials.createInsecure());
    try {
      const spec = { inputs: [], prompt: '', pipeline: 'selftest', priority: 0, labels: {}, params: { tasks: '3' }, stepsJson: '' };
      const submitted = await unary<SubmitJobRequest, SubmitJobResponse>(jobs.submitJob.bind(jobs), { spec, idempotencyKey: 'metrics-cancel' });
      const jobId = submitted.job?.id ?? '';
      expect(await sample(coordinator, 'mmgrid_jobs_submitted_total', { pipeline: 'selftest', tenant: 'default' })).toBe(1);
      // The same submission again (a client retry) is the same job: not counted twice.
      await unary<SubmitJobRequest, SubmitJobResponse>(jobs.submitJob.bind(jobs), { spec, idempotencyKey: 'metrics-cancel' });
      expect(await sample(coordinator, 'mmgrid_jobs_submitted_total', { pipeline: 'selftest', tenant: 'default' })).toBe(1);
      // No worker offers selftest.sleep yet: its three tasks wait; the assembly waits for them.
      // Depths are read from Redis at most every few seconds, so a scrape shows them within that.
      await eventually(() => sample(coordinator, 'mmgrid_queue_tasks', { kind: 'selftest.sleep', state: 'waiting' }), (v) => v === 3, 'selftest.sleep waiting', QUEUE_REFRESH_WAIT_MS);
      expect(await sample(coordinator, 'mmgrid_queue_tasks', { kind: 'job.assemble', state: 'waiting_children' })).toBe(1);
      expect(await sample(coordinator, 'mmgrid_queue_tasks', { kind: 'selftest.sleep', state: 'active' })).toBe(0);

      const cancelled = await unary<{ jobId: string; reason: string }, Job>(jobs.cancelJob.bind(jobs), { jobId, reason: 'test' });
      expect(cancelled.state).toBe(JobState.JOB_STATE_CANCELLED);
      await unary(jobs.cancelJob.bind(jobs), { jobId, reason: 'again' });
      expect(await sample(coordinator, 'mmgrid_jobs_finished_total', { pipeline: 'selftest', tenant: 'default', outcome: 'cancelled' })).toBe(1);
      expect(await sample(coordinator, 'mmgrid_job_duration_seconds', { pipeline: 'selftest', outcome: 'cancelled' }, 'mmgrid_job_duration_seconds_count')).toBe(1);
      // Its queued tasks ended with it, each counted once.
      expect(await sample(coordinator, 'mmgrid_tasks_finished_total', { kind: 'selftest.sleep', outcome: 'cancelled' })).toBe(3);
      expect(await sample(coordinator, 'mmgrid_tasks_finished_total', { kind: 'job.assemble', outcome: 'cancelled' })).toBe(1);
      expect(await sample(coordinator, 'mmgrid_grpc_requests_total', { method: 'CancelJob', code: 'OK' })).toBe(2);
      expect(await sample(coordinator, 'mmgrid_redis_command_seconds', { operation: 'create_job' }, 'mmgrid_redis_command_seconds_count')).toBeGreaterThanOrEqual(1);
      expect(await sample(coordinator, 'mmgrid_redis_command_seconds', { operation: 'finish' }, 'mmgrid_redis_command_seconds_count')).toBeGreaterThanOrEqual(1);
      await eventually(() => sample(coordinator, 'mmgrid_queue_tasks', { kind: 'selftest.sleep', state: 'waiting' }), (v) => v === 0, 'queue emptied', QUEUE_REFRESH_WAIT_MS);
    } finally {
      jobs.close();
    }
  });

  it('measures a worker’s tasks from queue to result, with a retry, and its GPU while it is connected', async () => {
    const kind = { kind: 'selftest.sleep' };
    const count = (name: string, labels: Record<string, string> = {}): Promise<number> => total([coordinator], name, labels, name.endsWith('_seconds') ? `${name}_count` : name);
    const before = {
      retried: await count('mmgrid_tasks_finished_total', { ...kind, outcome: 'retried' }),
      succeeded: await count('mmgrid_tasks_finished_total', { ...kind, outcome: 'succeeded' }),
      dispatched: await count('mmgrid_task_dispatch_seconds', kind),
      queued: await count('mmgrid_task_queued_seconds', kind),
      commits: await count('mmgrid_redis_command_seconds', { operation: 'commit' }),
      fetches: await count('mmgrid_redis_command_seconds', { operation: 'fetch' }),
      finishes: await count('mmgrid_redis_command_seconds', { operation: 'finish' }),
      completed: await count('mmgrid_jobs_finished_total', { pipeline: 'selftest', outcome: 'completed' }),
    };
    const worker = fakeWorker(address);
    const jobs = new JobServiceClient(address, credentials.createInsecure());
    try {
      await worker.welcomed;
      const gpuLabels = { worker: 'rig-7', gpu: GPU.uuid, gpu_model: 'Tesla T4' };
      await eventually(() => sample(coordinator, 'mmgrid_gpu_utilization_ratio', gpuLabels), (v) => v === 0.4, 'GPU utilisation from the heartbeat');
      expect(await sample(coordinator, 'mmgrid_gpu_memory_used_bytes', gpuLabels)).toBe(2e9);
      expect(await sample(coordinator, 'mmgrid_gpu_memory_total_bytes', gpuLabels)).toBe(16e9);
      expect(await sample(coordinator, 'mmgrid_gpu_temperature_celsius', gpuLabels)).toBe(55);
      expect(await sample(coordinator, 'mmgrid_gpu_power_watts', gpuLabels)).toBe(70);
      expect(await sample(coordinator, 'mmgrid_workers_connected', { gpu_model: 'Tesla T4' })).toBe(1);
      expect(await sample(coordinator, 'mmgrid_worker_slots', { ...kind, state: 'total' })).toBe(2);
      expect(await sample(coordinator, 'mmgrid_worker_slots', { ...kind, state: 'busy' })).toBe(0);
      expect(await sample(coordinator, 'mmgrid_worker_vram_budget_bytes', { worker: 'rig-7' })).toBe(8e9);

      const spec = { inputs: [], prompt: '', pipeline: 'selftest', priority: 0, labels: {}, params: { tasks: '2' }, stepsJson: '' };
      const submitted = await unary<SubmitJobRequest, SubmitJobResponse>(jobs.submitJob.bind(jobs), { spec, idempotencyKey: 'metrics-selftest' });
      const jobId = submitted.job?.id ?? '';
      await eventually(() => unary<{ jobId: string }, Job>(jobs.getJob.bind(jobs), { jobId }).then((j) => j.state), (s) => s === JobState.JOB_STATE_COMPLETED, 'job completed');

      // Two tasks, each failed once and then succeeded: two retries, two ends, four dispatches.
      expect((await count('mmgrid_tasks_finished_total', { ...kind, outcome: 'retried' })) - before.retried).toBe(2);
      expect((await count('mmgrid_tasks_finished_total', { ...kind, outcome: 'succeeded' })) - before.succeeded).toBe(2);
      expect(await sample(coordinator, 'mmgrid_tasks_finished_total', { kind: 'job.assemble', outcome: 'succeeded' })).toBe(1);
      expect(await count('mmgrid_task_run_seconds', { ...kind, outcome: 'retried' })).toBe(2);
      expect(await count('mmgrid_task_run_seconds', { ...kind, outcome: 'succeeded' })).toBe(2);
      expect((await count('mmgrid_task_dispatch_seconds', kind)) - before.dispatched).toBe(4);
      expect((await count('mmgrid_task_queued_seconds', kind)) - before.queued).toBe(4);
      // A retry waits out a backoff of about a second; its queueing counts from when it was due.
      expect(await sample(coordinator, 'mmgrid_task_queued_seconds', kind, 'mmgrid_task_queued_seconds_sum')).toBeLessThan(0.75);
      // End to end, a task's time covers both its runs and the backoff between them.
      expect(await count('mmgrid_task_latency_seconds', { ...kind, outcome: 'succeeded' })).toBe(2);
      const runs =
        ((await sample(coordinator, 'mmgrid_task_run_seconds', { ...kind, outcome: 'retried' }, 'mmgrid_task_run_seconds_sum')) ?? 0) +
        ((await sample(coordinator, 'mmgrid_task_run_seconds', { ...kind, outcome: 'succeeded' }, 'mmgrid_task_run_seconds_sum')) ?? 0);
      expect(await sample(coordinator, 'mmgrid_task_latency_seconds', { ...kind, outcome: 'succeeded' }, 'mmgrid_task_latency_seconds_sum')).toBeGreaterThanOrEqual(runs);
      await eventually(() => count('mmgrid_jobs_finished_total', { pipeline: 'selftest', outcome: 'completed' }), (v) => v === before.completed + 1, 'job counted');
      expect(await sample(coordinator, 'mmgrid_job_duration_seconds', { pipeline: 'selftest', outcome: 'completed' }, 'mmgrid_job_duration_seconds_count')).toBe(1);
      expect((await count('mmgrid_redis_command_seconds', { operation: 'commit' })) - before.commits).toBe(2);
      expect((await count('mmgrid_redis_command_seconds', { operation: 'fail' }))).toBe(2);
      expect((await count('mmgrid_redis_command_seconds', { operation: 'finish' })) - before.finishes).toBe(1);
      expect((await count('mmgrid_redis_command_seconds', { operation: 'fetch' })) - before.fetches).toBeGreaterThanOrEqual(4);
      expect(await count('mmgrid_redis_command_seconds', { operation: 'update_task' })).toBeGreaterThanOrEqual(8);
    } finally {
      jobs.close();
      worker.close();
    }
    // The worker left: its GPU series go, and its stream is counted as it ended.
    await eventually(() => sample(coordinator, 'mmgrid_gpu_utilization_ratio', { worker: 'rig-7' }), (v) => v === undefined, 'GPU series removed');
    expect(await sample(coordinator, 'mmgrid_workers_connected', { gpu_model: 'Tesla T4' })).toBeUndefined();
    expect(await sample(coordinator, 'mmgrid_worker_slots', { ...kind, state: 'total' })).toBeUndefined();
    await eventually(() => sample(coordinator, 'mmgrid_grpc_requests_total', { service: 'WorkerService', method: 'Connect' }), (v) => v === 1, 'Connect counted');
    expect(await count('mmgrid_lease_expiries_total')).toBe(0);
    expect(await count('mmgrid_stale_results_rejected_total')).toBe(0);
  });

  it('records how many shards a step fanned out to', async () => {
    const worker = textWorker(address);
    const jobs = new JobServiceClient(address, credentials.createInsecure());
    try {
      await worker.welcomed;
      const text = 'One sentence here. Another one follows it. '.repeat(20);
      const shards = textChunks(text, 300).length;
      expect(shards).toBeGreaterThan(1);
      const spec = { inputs: [{ name: 'notes', source: { $case: 'text' as const, text } }], prompt: '', pipeline: 'describe', priority: 0, labels: {}, params: { chunkChars: '300' }, stepsJson: '' };
      const submitted = await unary<SubmitJobRequest, SubmitJobResponse>(jobs.submitJob.bind(jobs), { spec, idempotencyKey: '' });
      await eventually(() => sample(coordinator, 'mmgrid_fanout_shards', { kind: 'text.stitch' }, 'mmgrid_fanout_shards_count'), (v) => v === 1, 'fan-out recorded');
      expect(await sample(coordinator, 'mmgrid_fanout_shards', { kind: 'text.stitch' }, 'mmgrid_fanout_shards_sum')).toBe(shards);
      await eventually(() => sample(coordinator, 'mmgrid_tasks_finished_total', { kind: 'text.stats', outcome: 'succeeded' }), (v) => v === shards, 'shards counted');
      expect(await sample(coordinator, 'mmgrid_tasks_finished_total', { kind: 'text.split', outcome: 'succeeded' })).toBe(1);
      await eventually(() => sample(coordinator, 'mmgrid_tasks_finished_total', { kind: 'text.stitch', outcome: 'succeeded' }), (v) => v === 1, 'stitch counted');
      // Nothing here runs fusion.report: the job waits for it until cancelled.
      await unary(jobs.cancelJob.bind(jobs), { jobId: submitted.job?.id ?? '', reason: 'done with it' });
      expect(await sample(coordinator, 'mmgrid_tasks_finished_total', { kind: 'fusion.report', outcome: 'cancelled' })).toBe(1);
    } finally {
      jobs.close();
      worker.close();
    }
  });

  it('times Redis round trips with a ping every few seconds', async () => {
    await eventually(() => sample(coordinator, 'mmgrid_redis_command_seconds', { operation: 'ping' }, 'mmgrid_redis_command_seconds_count'), (v) => (v ?? 0) >= 1, 'ping timed', 7_000);
  });

  it('counts each event once across two replicas sharing Redis: a submission on one, a worker on the other, a lapsed lease and its late result', async () => {
    const options = { ...REPLICA, redisUrl: server.url, keyPrefix: 'metrics-ha', blobDir, metricsListen: 'off', leaseMs: 1_000, heartbeatIntervalMs: 200, stalledCheckIntervalMs: 200 };
    const a = new Coordinator({ ...options, coordinatorId: 'replica-a' }, { logger });
    const b = new Coordinator({ ...options, coordinatorId: 'replica-b' }, { logger });
    const both = [a, b];
    const kind = { kind: 'selftest.sleep' };
    let worker: ReturnType<typeof fakeWorker> | undefined;
    let jobs: JobServiceClient | undefined;
    try {
      const atA = (await a.start()).address;
      const atB = (await b.start()).address;
      // The worker forgets its first attempt: the lease lapses, the task runs again, and the
      // forgotten attempt's result arrives late.
      worker = fakeWorker(atB, 'forget', 'rig-8');
      await worker.welcomed;
      jobs = new JobServiceClient(atA, credentials.createInsecure());
      const spec = { inputs: [], prompt: '', pipeline: 'selftest', priority: 0, labels: {}, params: { tasks: '1' }, stepsJson: '' };
      const submitted = await unary<SubmitJobRequest, SubmitJobResponse>(jobs.submitJob.bind(jobs), { spec, idempotencyKey: '' });
      const client = jobs;
      const jobId = submitted.job?.id ?? '';
      await eventually(() => unary<{ jobId: string }, Job>(client.getJob.bind(client), { jobId }).then((j) => j.state), (s) => s === JobState.JOB_STATE_COMPLETED, 'job completed', 15_000);

      // Submitted on A; its end counted by whichever replica ended it, once in all.
      expect(await sample(a, 'mmgrid_jobs_submitted_total', { pipeline: 'selftest', tenant: 'default' })).toBe(1);
      expect(await sample(b, 'mmgrid_jobs_submitted_total', { pipeline: 'selftest', tenant: 'default' })).toBeUndefined();
      await eventually(() => total(both, 'mmgrid_jobs_finished_total', { pipeline: 'selftest', tenant: 'default', outcome: 'completed' }), (v) => v === 1, 'job end counted');
      expect(await total(both, 'mmgrid_job_duration_seconds', { pipeline: 'selftest', outcome: 'completed' }, 'mmgrid_job_duration_seconds_count')).toBe(1);
      // One lapsed lease, counted by the replica whose stalled check put the task back.
      expect(await total(both, 'mmgrid_lease_expiries_total', kind)).toBe(1);
      // Named by the worker that held it, as its task's record says.
      expect(await total(both, 'mmgrid_lease_expiries_total', { ...kind, worker: 'rig-8' })).toBe(1);
      // The late result is refused by the replica the worker talks to.
      expect(await sample(b, 'mmgrid_stale_results_rejected_total')).toBe(1);
      expect(await sample(a, 'mmgrid_stale_results_rejected_total')).toBe(0);
      // The task ended once, on its second dispatch; a lapsed lease is not a failed attempt.
      expect(await total(both, 'mmgrid_tasks_finished_total', { ...kind, outcome: 'succeeded' })).toBe(1);
      expect(await total(both, 'mmgrid_tasks_finished_total', { ...kind, outcome: 'retried' })).toBe(0);
      expect(await total(both, 'mmgrid_tasks_finished_total', { kind: 'job.assemble', outcome: 'succeeded' })).toBe(1);
      expect(await sample(b, 'mmgrid_task_dispatch_seconds', kind, 'mmgrid_task_dispatch_seconds_count')).toBe(2);
      expect(await sample(a, 'mmgrid_task_dispatch_seconds', kind, 'mmgrid_task_dispatch_seconds_count')).toBeUndefined();
      expect(await total(both, 'mmgrid_task_latency_seconds', { ...kind, outcome: 'succeeded' }, 'mmgrid_task_latency_seconds_count')).toBe(1);
      // Workers and their GPUs are shown by the replica they are connected to.
      expect(await sample(b, 'mmgrid_workers_connected', { gpu_model: 'Tesla T4' })).toBe(1);
      expect(await sample(a, 'mmgrid_workers_connected', { gpu_model: 'Tesla T4' })).toBeUndefined();
      expect(await sample(a, 'mmgrid_grpc_requests_total', { method: 'SubmitJob', code: 'OK' })).toBe(1);
      expect(await sample(b, 'mmgrid_grpc_requests_total', { method: 'SubmitJob', code: 'OK' })).toBeUndefined();
    } finally {
      jobs?.close();
      worker?.close();
      await a.stop();
      await b.stop();
    }
  });

  it('runs without metrics when their port is taken, saying so, and serves none when turned off', async () => {
    warnings.length = 0;
    const taken = coordinator.metricsAddress ?? '';
    const second = new Coordinator({ redisUrl: server.url, keyPrefix: 'metrics', listen: '127.0.0.1:0', blobDir, metricsListen: taken }, { logger });
    const off = new Coordinator({ redisUrl: server.url, keyPrefix: 'metrics', listen: '127.0.0.1:0', blobDir, metricsListen: 'off' }, { logger });
    try {
      const started = await second.start();
      expect(started.metricsAddress).toBeUndefined();
      expect(started.port).toBeGreaterThan(0);
      const warning = warnings.map((l) => JSON.parse(l) as { msg: string }).find((l) => l.msg.includes('cannot listen for metrics'));
      expect(warning?.msg).toContain(`cannot listen for metrics on ${taken} (EADDRINUSE)`);
      expect((await off.start()).metricsAddress).toBeUndefined();
    } finally {
      await second.stop();
      await off.stop();
    }
  });
});
