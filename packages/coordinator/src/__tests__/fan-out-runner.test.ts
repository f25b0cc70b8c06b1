import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  plan,
  textChunks,
  textStats,
  validateJobSpec,
  type AudioSplitOutput,
  type AudioTranscribeOutput,
  type BlobRef,
  type JobSpec,
  type PlanInput,
  type TaskGraph,
  type TaskNode,
  type TextSplitOutput,
  type TextStitchOutput,
} from '@mmgrid/core';
import { FsBlobStore, type BlobStore } from '../blob-store.js';
import { EventHub } from '../event-hub.js';
import { FanOutRunner } from '../fan-out-runner.js';
import { JobStore, type TaskRecord } from '../job-store.js';
import { Keys } from '../keys.js';
import { readChildOutcomes } from '../outcomes.js';
import { queueOfTask, TaskQueues, type TaskData } from '../task-queues.js';
import { HAS_REDIS_SERVER, startTestRedis, type TestRedis } from './redis-server.js';

const TENANT = 'default';
const LEASE_MS = 30_000;
const logger = pino({ level: 'silent' });

/**
 * The stitch steps' runner on a real Redis and BullMQ, with the coordinator's own stores and
 * queues; a test stands in for the workers, completing tasks through BullMQ as the
 * dispatcher would.
 */
describe.skipIf(!HAS_REDIS_SERVER)('FanOutRunner', () => {
  let server: TestRedis;
  let redis: Redis;
  let scratch: string;
  let prefixes = 0;

  beforeAll(async () => {
    server = await startTestRedis();
    redis = new Redis({ host: '127.0.0.1', port: server.port, maxRetriesPerRequest: null });
    scratch = await mkdtemp(path.join(tmpdir(), 'mmgrid-fanout-'));
  });

  afterAll(async () => {
    redis?.disconnect();
    await server?.stop();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  /** A coordinator's parts under a key prefix of their own, and a runner whose `wake` runs shards at once. */
  function grid(options: { blobs: BlobStore; runShard: (data: TaskData) => unknown }) {
    const keys = new Keys(`fanout${prefixes++}`);
    const jobs = new JobStore(redis, keys, 3_600_000);
    const queues = new TaskQueues(redis, keys, { leaseMs: LEASE_MS, stalledIntervalMs: LEASE_MS, maxStalledCount: 2 });
    /** Completes every ready task in `queue` with what `output` makes of it. */
    const complete = async (queue: string, output: (data: TaskData) => unknown): Promise<number> => {
      let done = 0;
      for (;;) {
        const fetched = await queues.queue(queue).fetch('test-worker');
        if (!fetched.job) return done;
        await fetched.job.moveToCompleted(output(fetched.job.data), 'test-worker', false);
        done += 1;
      }
    };
    const runner = new FanOutRunner({
      redis,
      keys,
      connection: { host: '127.0.0.1', port: server.port, maxRetriesPerRequest: null },
      queues,
      jobs,
      blobs: options.blobs,
      hub: new EventHub(redis, keys, logger),
      // A very fast worker: every shard is done before the step is parked to wait for them.
      wake: async (names) => {
        for (const name of names) await complete(name, options.runShard);
      },
      logger,
      concurrency: 1,
      leaseMs: LEASE_MS,
      stalledIntervalMs: LEASE_MS,
      maxStalledCount: 2,
      maxShards: 20_000,
      now: () => Date.now(),
    });
    return {
      keys,
      jobs,
      queues,
      runner,
      complete,
      /** Stores and queues a job as SubmitJob does. */
      async submit(id: string, spec: JobSpec, inputs: PlanInput[], graph: TaskGraph): Promise<void> {
        await jobs.create({ id, tenant: TENANT, spec, inputs, graph, createdAt: Date.now(), idempotencyKey: '' });
        await queues.addJob({ id, tenant: TENANT, spec, graph, generation: 0 });
      },
      /** The record of `taskId` once it has ended (or as it is after `ms`). */
      async ended(jobId: string, taskId: string, ms = 20_000): Promise<TaskRecord | undefined> {
        const deadline = Date.now() + ms;
        for (;;) {
          const record = await jobs.task(jobId, taskId);
          if (record && ['succeeded', 'failed', 'cancelled'].includes(record.state)) return record;
          if (Date.now() > deadline) return record;
          await delay(50);
        }
      },
      async close(): Promise<void> {
        await runner.close();
        await queues.close();
      },
    };
  }

  function only(graph: TaskGraph, kind: string): TaskNode {
    const task = graph.tasks.find((t) => t.kind === kind);
    if (!task) throw new Error(`no ${kind} in ${graph.tasks.map((t) => t.kind).join(', ')}`);
    return task;
  }

  function consumerOf(graph: TaskGraph, taskId: string): TaskNode {
    const task = graph.tasks.find((t) => t.dependsOn.includes(taskId));
    if (!task) throw new Error(`nothing consumes ${taskId}`);
    return task;
  }

  it('stitches shards that all ended before the step could wait for them (moveToWaitingChildren false)', async () => {
    const text = 'One sentence here. Another one follows it. '.repeat(20);
    const g = grid({ blobs: new FsBlobStore(path.join(scratch, 'unused'), 1024), runShard: (data) => textStats(data.inputs[0]?.text ?? '', 'input') });
    try {
      const spec = validateJobSpec({ inputs: [{ name: 'notes', source: { type: 'text', text } }], prompt: '', pipeline: 'describe', params: { chunkChars: '300' } });
      const inputs: PlanInput[] = [{ name: 'notes', modality: 'text', mediaType: 'text/plain', bytes: text.length }];
      const graph = plan({ pipeline: 'describe', inputs, prompt: '', params: spec.params });
      const split = only(graph, 'text.split');
      const stitch = only(graph, 'text.stitch');
      await g.submit('race', spec, inputs, graph);
      const chunks = textChunks(text, 300).map(({ index, start, end }) => ({ index, start, end }));
      expect(chunks.length).toBeGreaterThan(1);
      const splitOutput: TextSplitOutput = { characters: text.length, maxChars: 300, chunks };
      expect(await g.complete(queueOfTask(split, TENANT), () => splitOutput)).toBe(1);

      g.runner.start();
      const record = await g.ended('race', stitch.id);
      expect({ state: record?.state, error: record?.error ?? null }).toEqual({ state: 'succeeded', error: null });
      const shards = [...(await g.jobs.tasks('race'))].filter(([, r]) => r.shardOf === stitch.id);
      expect(shards).toHaveLength(chunks.length);

      const parent = consumerOf(graph, stitch.id);
      const committed = (await readChildOutcomes(redis, g.keys, { queue: queueOfTask(parent, TENANT), jobId: 'race', taskId: parent.id, generation: 0 })).get(stitch.id);
      expect(committed?.status).toBe('succeeded');
      const output = JSON.parse(committed?.status === 'succeeded' ? committed.outputJson : '{}') as TextStitchOutput;
      const whole = textStats(text, 'input');
      expect({ shards: output.shards, coverage: output.coverage, gaps: output.gaps, characters: output.characters, words: output.words }).toEqual({
        shards: chunks.length,
        coverage: 1,
        gaps: [],
        characters: whole.characters,
        words: whole.words,
      });
    } finally {
      await g.close();
    }
  });

  it('records a step that failed its last attempt (the blob store down while storing subtitles) as failed', async () => {
    // A store whose folder does not exist: every put fails, as with a store that is down.
    const blobs = new FsBlobStore(path.join(scratch, 'no-such-folder'), 1024 * 1024);
    const transcript = (data: TaskData): AudioTranscribeOutput => {
      const at = data.inputs[0]?.blob?.name === 'w1.wav' ? 0 : 1;
      return {
        text: `window ${at} speaks`,
        language: 'en',
        words: [
          { text: 'window', startSec: 1, endSec: 1.4 },
          { text: String(at), startSec: 1.5, endSec: 1.8 },
        ],
        segments: [{ text: `window ${at}`, startSec: 1, endSec: 1.8 }],
      };
    };
    const g = grid({ blobs, runShard: transcript });
    try {
      const recording: BlobRef = { sha256: 'ab'.repeat(32), size: 1_920_044, mediaType: 'audio/wav', name: 'talk.wav' };
      const spec = validateJobSpec({ inputs: [{ name: 'talk.wav', source: { type: 'blob', blob: recording } }], prompt: '', pipeline: 'transcribe', params: {} });
      const inputs: PlanInput[] = [{ name: 'talk.wav', modality: 'audio', mediaType: 'audio/wav', durationSec: 60, bytes: recording.size }];
      const graph = plan({ pipeline: 'transcribe', inputs, prompt: '', params: {} });
      const split = only(graph, 'audio.split');
      const stitch = only(graph, 'audio.stitch');
      await g.submit('down', spec, inputs, graph);
      const window = (index: number, startSec: number, endSec: number): AudioSplitOutput['windows'][number] => ({
        index,
        startSec,
        endSec,
        blob: { sha256: String(index + 1).repeat(64), size: 100, mediaType: 'audio/wav', name: `w${index + 1}.wav` },
      });
      const splitOutput: AudioSplitOutput = {
        sampleRate: 16_000,
        sourceSampleRate: 16_000,
        channels: 1,
        format: 'wav/pcm_s16le',
        windowSec: 32,
        overlapSec: 4,
        windows: [window(0, 0, 32), window(1, 28, 60)],
        durationSec: 60,
      };
      expect(await g.complete(queueOfTask(split, TENANT), () => splitOutput)).toBe(1);

      g.runner.start();
      // Three attempts, about 1 s and 2 s apart (the stitch kind's retry policy).
      const record = await g.ended('down', stitch.id);
      expect(record?.state).toBe('failed');
      expect(record?.error?.code).toBe('STITCH_FAILED');
      expect(record?.error?.message).toMatch(/^audio\.stitch failed after 3 attempts: .*ENOENT/);
      expect(record?.attempts).toBe(3);
    } finally {
      await g.close();
    }
  });
});
