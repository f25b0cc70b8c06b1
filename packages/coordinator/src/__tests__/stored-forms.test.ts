/**
 * What the grid keeps per task in Redis, in the compact forms that make a queued task cost
 * what docs/benchmarks.md says: a worker task's BullMQ data, its record and its job's graph
 * are stored without what their queue, their id or a default already says, and read back
 * whole. The record's Lua scripts leave defaults out the same way (checked on a real Redis).
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NO_REQUIREMENTS, plan, taskKindInfo, type TaskGraph, type TaskNode } from '@mmgrid/core';
import { JobStore, newTaskRecord, packGraph, packTaskRecord, parseGraph, parseTaskRecord, type TaskRecord } from '../job-store.js';
import { Keys } from '../keys.js';
import { packTaskData, unpackTaskData, type QueueInfo, type TaskData } from '../task-data.js';
import { taskJob } from '../task-queues.js';
import { HAS_REDIS_SERVER, startTestRedis, type TestRedis } from './redis-server.js';

const gpuRequirements = { model: 'whisper-small', minVramBytes: 4 * 2 ** 30, minComputeCapability: '8.0', cpuAllowed: false };
const queue: QueueInfo = { name: 'audio.transcribe@acme#3f2a', kind: 'audio.transcribe', tenant: 'acme', requirements: gpuRequirements };

const plain: TaskData = {
  jobId: '01JOBPLAIN',
  taskId: 't7',
  kind: 'audio.transcribe',
  tenant: 'acme',
  queue: queue.name,
  parentQueue: 'job.assemble',
  generation: 0,
  priorAttempts: 0,
  inputs: [],
  params: {},
  requirements: gpuRequirements,
  optional: false,
  upstream: [],
  timeoutMs: 900_000,
};

const everything: TaskData = {
  ...plain,
  jobId: '01JOBFULL',
  taskId: 't12',
  generation: 3,
  parentQueue: 'audio.stitch',
  priorAttempts: 2,
  inputs: [
    { name: 'complaint', blob: { sha256: 'a'.repeat(64), size: 48_000, mediaType: 'audio/wav', name: 'complaint.wav' } },
    { name: 'prompt', text: 'What is wrong with the product?' },
  ],
  params: { language: 'en', window: { start: 30, end: 60 } },
  optional: true,
  upstream: [{ taskId: 't3', kind: 'audio.split', inputNames: ['complaint'], optional: false }],
  timeoutMs: 1_234,
};

describe("a worker task's BullMQ data", () => {
  it('keeps nothing its queue, its id or a default says, and reads back whole', () => {
    const stored = packTaskData(plain);
    // A timeout other than the kind's usual one (audio.transcribe: 600,000 ms) is kept.
    expect(stored).toEqual({ m: 900_000 });
    expect(unpackTaskData(stored, queue, '01JOBPLAIN-t7')).toEqual(plain);
  });

  it('keeps every field that differs from its default, and reads back whole', () => {
    const stored = packTaskData(everything);
    expect(Object.keys(stored).sort()).toEqual(['a', 'c', 'i', 'm', 'o', 'p', 'u']);
    expect(unpackTaskData(JSON.parse(JSON.stringify(stored)) as typeof stored, queue, '01JOBFULL-t12.3')).toEqual(everything);
  });

  it("leaves out the kind's usual timeout", () => {
    const usualMs = taskKindInfo('audio.transcribe')?.timeoutMs;
    expect(usualMs).toBeGreaterThan(0);
    expect(packTaskData({ ...plain, timeoutMs: usualMs ?? 0 })).toEqual({});
    expect(unpackTaskData({}, queue, '01JOBPLAIN-t7').timeoutMs).toBe(usualMs);
  });

  it('reads data a coordinator wrote whole (before packing) as it is', () => {
    expect(unpackTaskData(everything, queue, 'whatever')).toBe(everything);
  });

  it('refuses a BullMQ id that does not name a job and a task, saying which and in what queue', () => {
    expect(() => unpackTaskData({}, queue, 'not-an-id-at-all')).toThrow(/not-an-id-at-all in audio\.transcribe@acme#3f2a.*<job id>-<task id>/);
  });

  it('is packed by taskJob for a worker queue only: a coordinator step keeps its data whole', () => {
    const worker = taskJob(everything, { priority: 11 });
    expect(worker.data).toEqual(packTaskData(everything));
    // How long outcomes are kept is the worker queue's setting, not repeated per task.
    expect(worker.opts.removeOnComplete).toBeUndefined();
    expect(worker.opts.removeOnFail).toBeUndefined();
    const stitch: TaskData = { ...everything, kind: 'audio.stitch', queue: 'audio.stitch', parentQueue: 'job.assemble' };
    const step = taskJob(stitch, { priority: 11 });
    expect(step.data).toEqual(stitch);
    expect(step.opts.removeOnComplete).toBeDefined();
  });

  it("drops the assembly's list of inputs (it reads them from the job's graph)", () => {
    const assembly: TaskData = { ...everything, kind: 'job.assemble', queue: 'job.assemble', parentQueue: '' };
    expect(taskJob(assembly, { priority: 11, root: true }).data).toEqual({ ...assembly, upstream: [] });
  });
});

describe('a task record', () => {
  it('is stored without its default fields and read back whole', () => {
    const queued = newTaskRecord('audio.transcribe', 'queued', 1_795_000_000_000, 0);
    const json = packTaskRecord(queued);
    expect(JSON.parse(json)).toEqual({ kind: 'audio.transcribe', state: 'queued', queuedAt: 1_795_000_000_000 });
    expect(parseTaskRecord(json)).toEqual(queued);
  });

  it('keeps what differs from the defaults, a zero shard index among it', () => {
    const record: TaskRecord = {
      ...newTaskRecord('audio.transcribe', 'queued', 5, 2),
      state: 'failed',
      attempts: 3,
      workerName: 'gpu-box',
      error: { code: 'TASK_FAILED', message: 'out of memory', retryable: false },
      shardOf: 't3',
      shardIndex: 0,
      inputNames: ['complaint'],
    };
    expect(parseTaskRecord(packTaskRecord(record))).toEqual(record);
    expect(JSON.parse(packTaskRecord(record))).toHaveProperty('shardIndex', 0);
  });
});

describe("a job's graph", () => {
  const node = (over: Partial<TaskNode> & Pick<TaskNode, 'id' | 'kind'>): TaskNode => ({
    inputNames: [],
    params: {},
    dependsOn: [],
    optional: false,
    requirements: NO_REQUIREMENTS,
    timeoutMs: 60_000,
    ...over,
  });
  const graph: TaskGraph = {
    pipeline: 'custom',
    rootId: 't4',
    tasks: [
      node({ id: 't1', kind: 'audio.split', inputNames: ['complaint'], intermediate: true, label: 'split' }),
      node({ id: 't2', kind: 'audio.transcribe', dependsOn: ['t1'], requirements: gpuRequirements, params: { language: 'en' }, optional: true }),
      node({ id: 't3', kind: 'image.caption', inputNames: ['photo'], requirements: { ...NO_REQUIREMENTS, cpuAllowed: false } }),
      node({ id: 't4', kind: 'job.assemble', dependsOn: ['t2', 't3'] }),
    ],
  };

  it('is stored without default fields and read back whole', () => {
    const json = packGraph(graph);
    expect(parseGraph(json)).toEqual(graph);
    const stored = JSON.parse(json) as { tasks: Record<string, unknown>[] };
    expect(stored.tasks[3]).toEqual({ id: 't4', kind: 'job.assemble', dependsOn: ['t2', 't3'], timeoutMs: 60_000 });
    expect(stored.tasks[2]?.['requirements']).toEqual({ cpuAllowed: false });
  });

  it("reads a planner's graph back whole, and a graph stored whole as it is", () => {
    const planned = plan({ pipeline: 'selftest', inputs: [], prompt: '', params: { tasks: '50', taskMs: '5' } });
    expect(parseGraph(packGraph(planned))).toEqual(planned);
    expect(parseGraph(JSON.stringify(planned))).toEqual(planned);
    expect(packGraph(planned).length).toBeLessThan(JSON.stringify(planned).length * 0.6);
  });
});

describe.skipIf(!HAS_REDIS_SERVER)("a task record's scripts on a real Redis", () => {
  let server: TestRedis;
  let redis: Redis;
  const keys = new Keys('stored');
  let store: JobStore;

  beforeAll(async () => {
    server = await startTestRedis();
    redis = new Redis(server.url);
    store = new JobStore(redis, keys, 60_000);
  });
  afterAll(async () => {
    redis.disconnect();
    await server?.stop();
  });

  const newJob = async (id: string): Promise<void> => {
    const graph = plan({ pipeline: 'selftest', inputs: [], prompt: '', params: { tasks: '2', taskMs: '0' } });
    await store.create({ id, tenant: 'default', spec: { inputs: [], prompt: '', pipeline: 'selftest', priority: 0, labels: {}, params: {} }, inputs: [], graph, createdAt: 1_000, idempotencyKey: '' });
  };
  const raw = async (jobId: string, taskId: string): Promise<Record<string, unknown>> => JSON.parse((await redis.hget(keys.tasks(jobId), taskId)) ?? 'null') as Record<string, unknown>;

  it('leaves defaults out after every update, and reads back whole', async () => {
    await newJob('01RECORDS');
    expect(await raw('01RECORDS', 't1')).toEqual({ kind: 'selftest.sleep', state: 'queued', queuedAt: 1_000 });
    await store.startTask('01RECORDS', 't1', { kind: 'selftest.sleep', state: 'running', attempts: 1, workerId: 'w1', workerName: 'box', leaseId: 'L1', fencingToken: 9, startedAt: 2_000, nextAttemptAt: 0 }, 2_000);
    expect(await raw('01RECORDS', 't1')).toMatchObject({ state: 'running', workerId: 'w1', fencingToken: 9 });
    expect(await raw('01RECORDS', 't1')).not.toHaveProperty('nextAttemptAt');
    // Back to its queue: the worker fields are cleared, so they leave the stored JSON.
    await store.updateTask('01RECORDS', 't1', { kind: 'selftest.sleep', state: 'queued', workerId: '', workerName: '', error: null, readyAt: 3_000 }, 3_000);
    const stored = await raw('01RECORDS', 't1');
    expect(stored).not.toHaveProperty('workerId');
    expect(stored).not.toHaveProperty('error');
    expect(await store.task('01RECORDS', 't1')).toMatchObject({ state: 'queued', workerId: '', workerName: '', error: null, leaseId: 'L1', fencingToken: 9, readyAt: 3_000, commits: 0 });
  });

  it('startTask changes nothing once the job has ended, and says so', async () => {
    await newJob('01ENDED');
    await store.finish('01ENDED', 'cancelled', {}, 1_500);
    const before = await raw('01ENDED', 't2');
    expect(await store.startTask('01ENDED', 't2', { kind: 'selftest.sleep', state: 'running', workerId: 'w1' }, 2_000)).toBe('job-ended');
    expect(await raw('01ENDED', 't2')).toEqual(before);
    expect(await store.startTask('01UNKNOWN', 't1', { kind: 'selftest.sleep', state: 'running' }, 2_000)).toBe('job-ended');
  });
});
