import { UnrecoverableError, WaitingChildrenError, Worker as BullWorker, type ConnectionOptions, type Job as BullJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { batches, isTerminalJobState, taskQueueName } from '@mmgrid/core';
import type { BlobStore } from './blob-store.js';
import type { EventHub } from './event-hub.js';
import { newTaskRecord, type JobStore, type RecordedError, type TaskRecord } from './job-store.js';
import type { Keys } from './keys.js';
import { bullJobIdOf } from './lease.js';
import { allows } from './limits.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { readChildOutcomes, type ChildOutcome } from './outcomes.js';
import { putBytes, STITCHERS, type ShardSpec, type Stitcher } from './stitchers.js';
import { coordinatorStepWorkerOptions, type CoordinatorStepLease } from './task-queue.js';
import { taskJob, type TaskData, type TaskQueues } from './task-queues.js';

export interface FanOutRunnerDeps extends CoordinatorStepLease {
  readonly redis: Redis;
  readonly keys: Keys;
  readonly connection: ConnectionOptions;
  readonly queues: TaskQueues;
  readonly jobs: JobStore;
  readonly blobs: BlobStore;
  readonly hub: EventHub;
  readonly wake: (queues: Iterable<string>) => Promise<void>;
  readonly logger: Logger;
  /** Records how many shards each step fans out to. */
  readonly metrics?: Metrics;
  readonly concurrency: number;
  /** Most shards one input may be cut into. */
  readonly maxShards: number;
  readonly now: () => number;
}

/** Step data the fan-out keeps between its two phases (in the BullMQ job's data). */
type StepData = TaskData & { readonly phase?: 'fanned-out' };

/** Shards are added to BullMQ this many at a time (one MULTI each). */
const SHARD_BATCH = 500;

/** Task id of shard `index` of step `taskId`: "t3s17". */
export function shardTaskId(taskId: string, index: number): string {
  return `${taskId}s${index}`;
}

/**
 * Runs the coordinator's stitch steps (audio.stitch, video.stitch, text.stitch) with BullMQ's
 * "process step jobs" pattern. When a step's split has ended, phase one reads how many
 * windows, frames or chunks it made and adds one task per shard as the step's own children
 * (in batches, so a 10,000-shard input is never one giant write), then parks the step in
 * waiting-children. When every shard has ended, BullMQ hands the step back and phase two
 * stitches the shards' outputs in order. A replica that dies in either phase loses nothing:
 * the step's lock lapses, another replica picks it up, and shards already added are kept.
 */
export class FanOutRunner {
  private readonly workers: BullWorker<StepData>[] = [];
  private readonly byKind = new Map<string, Stitcher>(STITCHERS.map((s) => [s.kind, s]));

  constructor(private readonly deps: FanOutRunnerDeps) {
    for (const stitcher of STITCHERS) {
      const worker = new BullWorker<StepData>(stitcher.kind, (job, token) => this.process(job, token), coordinatorStepWorkerOptions(stitcher.kind, { ...deps, prefix: deps.keys.prefix }));
      worker.on('error', (err: Error) => deps.logger.warn({ kind: stitcher.kind, err: err.message }, 'stitch queue error'));
      worker.on('failed', (job: BullJob<StepData> | undefined, err: Error) => {
        if (!job) return;
        const final = job.attemptsMade >= (job.opts.attempts ?? 1) || err.name === 'UnrecoverableError';
        deps.logger.warn({ jobId: job.data.jobId, taskId: job.data.taskId, kind: job.data.kind, attempt: job.attemptsMade, err: err.message, final }, 'stitch step failed');
        // Out of attempts: the record must say so, or status and explain show it running forever.
        if (final) void this.failedForGood(job, err);
      });
      this.workers.push(worker);
    }
  }

  start(): void {
    for (const worker of this.workers) {
      void worker.run().catch((err: unknown) => this.deps.logger.error({ err: String(err) }, 'stitch worker stopped'));
    }
  }

  private async process(job: BullJob<StepData>, token: string | undefined): Promise<unknown> {
    const { jobs, now } = this.deps;
    const data = job.data;
    const stitcher = this.byKind.get(data.kind);
    if (!stitcher) throw new UnrecoverableError(`no stitcher for ${data.kind}`);
    const state = await jobs.state(data.jobId);
    if (state === undefined || isTerminalJobState(state)) {
      // Cancelled (or ended otherwise) while its shards ran: the step ends with the job.
      const at = now();
      if (state !== undefined) await jobs.updateTask(data.jobId, data.taskId, { kind: data.kind, state: 'cancelled', finishedAt: at }, at, { onlyIfLive: true });
      return null;
    }

    const parent = { queue: data.queue, jobId: data.jobId, taskId: data.taskId, generation: data.generation };
    let children = await readChildOutcomes(this.deps.redis, this.deps.keys, parent);
    const splitId = data.upstream[0]?.taskId ?? '';
    const split = children.get(splitId);
    if (split?.status !== 'succeeded') {
      const record = await jobs.task(data.jobId, splitId);
      const cause = record?.error?.message ?? (split?.status === 'failed' ? split.reason : 'no output');
      await this.fail(data, { code: 'UPSTREAM_FAILED', message: `${data.upstream[0]?.kind ?? 'the split'} failed: ${cause}`, retryable: false });
      throw new UnrecoverableError(cause);
    }
    let shards: ShardSpec[];
    try {
      shards = stitcher.plan(split.outputJson, data);
    } catch (err) {
      await this.fail(data, { code: 'INVALID_TASK_OUTPUT', message: `the split's output cannot be used: ${err instanceof Error ? err.message : String(err)}`, retryable: false });
      throw new UnrecoverableError('bad split output');
    }
    if (shards.length > this.deps.maxShards) {
      // Known only once the split has run, so the job fails here rather than being refused at submit.
      const message = `the input would be cut into ${shards.length} shards; ${allows('maxShards', this.deps.maxShards, 'per input')}`;
      this.deps.metrics?.limitRefused('maxShards');
      await this.fail(data, { code: 'TOO_MANY_SHARDS', message, retryable: false });
      throw new UnrecoverableError(message);
    }

    if (data.phase !== 'fanned-out') {
      await jobs.updateTask(data.jobId, data.taskId, { kind: data.kind, state: 'running', workerName: 'coordinator', startedAt: now() }, now());
      await this.addShards(job, data, shards);
      await job.updateData({ ...data, phase: 'fanned-out' });
      this.deps.metrics?.fannedOut(data.kind, shards.length);
      if (token !== undefined && (await job.moveToWaitingChildren(token))) throw new WaitingChildrenError();
      // Not parked: every shard ended between being added and now (a fast worker, or shards
      // kept from an earlier try). What they committed came after the read above.
      children = await readChildOutcomes(this.deps.redis, this.deps.keys, parent);
    }

    const outcomes = new Map<number, ChildOutcome>();
    for (const shard of shards) {
      const outcome = children.get(shardTaskId(data.taskId, shard.index));
      if (outcome) outcomes.set(shard.index, outcome);
    }
    // Nothing to stitch: the step failed, so what reads it learns so (UPSTREAM_FAILED) and a
    // required step fails the job, instead of an empty answer standing for the input.
    if (shards.length > 0 && ![...outcomes.values()].some((o) => o.status === 'succeeded')) {
      const first = shards.map((s) => outcomes.get(s.index)).find((o) => o?.status === 'failed');
      const message = `all ${shards.length} shards failed; the first: ${first?.status === 'failed' ? first.reason : 'no outcome'}`;
      await this.fail(data, { code: 'SHARDS_FAILED', message, retryable: false });
      throw new UnrecoverableError(message);
    }
    const output = await stitcher.stitch(split.outputJson, outcomes, data, {
      putBlob: (bytes, name, mediaType) => putBytes(this.deps.blobs, bytes, name, mediaType),
    });
    const at = now();
    await jobs.updateTask(data.jobId, data.taskId, { kind: data.kind, state: 'succeeded', workerName: 'coordinator', error: null, finishedAt: at, attempts: 1 }, at);
    return output;
  }

  /**
   * Records a step that failed for good (out of attempts, or unrecoverable). A step that
   * already recorded why it failed (SHARDS_FAILED…) keeps that; a step of an earlier run of
   * the job (RetryJob started another since) leaves the new run's record alone.
   */
  private async failedForGood(job: BullJob<StepData>, err: Error): Promise<void> {
    const { jobs, now, logger } = this.deps;
    const data = job.data;
    try {
      const record = await jobs.task(data.jobId, data.taskId);
      if (!record || record.generation !== data.generation) return;
      const at = now();
      const message = `${data.kind} failed after ${job.attemptsMade} attempt${job.attemptsMade === 1 ? '' : 's'}: ${err.message}`;
      await jobs.updateTask(
        data.jobId,
        data.taskId,
        { kind: data.kind, state: 'failed', error: { code: 'STITCH_FAILED', message, retryable: false }, finishedAt: at, attempts: job.attemptsMade },
        at,
        { onlyIfLive: true },
      );
    } catch (recordErr) {
      logger.error({ jobId: data.jobId, taskId: data.taskId, err: String(recordErr) }, 'could not record the failed stitch step');
    }
  }

  private async fail(data: TaskData, error: RecordedError): Promise<void> {
    const at = this.deps.now();
    await this.deps.jobs.updateTask(data.jobId, data.taskId, { kind: data.kind, state: 'failed', error, finishedAt: at }, at);
  }

  /**
   * Adds the shards as children of the step, in batches. Shards that already exist (a replica
   * died mid-way and this is the second try) are skipped: adding one again would put a shard
   * that already failed back among the step's dependencies.
   */
  private async addShards(job: BullJob<StepData>, data: TaskData, shards: readonly ShardSpec[]): Promise<void> {
    const { redis, keys, queues, jobs, now } = this.deps;
    const parent = { id: job.id ?? '', queue: job.queueQualifiedName };
    const priority = job.opts.priority ?? 11;
    const touched = new Set<string>();
    for (const batch of batches(shards, SHARD_BATCH)) {
      const planned = batch.map((shard) => {
        const taskId = shardTaskId(data.taskId, shard.index);
        const queue = taskQueueName(shard.kind, shard.requirements, data.tenant);
        return { shard, taskId, queue, bullId: bullJobIdOf(data.jobId, taskId, data.generation) };
      });
      const exists = redis.pipeline();
      for (const p of planned) exists.exists(`${keys.prefix}:${p.queue}:${p.bullId}`);
      const found = (await exists.exec()) ?? [];
      const fresh = planned.filter((_, i) => found[i]?.[1] !== 1);
      const byQueue = new Map<string, typeof fresh>();
      for (const p of fresh) byQueue.set(p.queue, [...(byQueue.get(p.queue) ?? []), p]);
      const newQueues = await queues.register(
        [...byQueue.values()].map((ps) => {
          const first = ps[0];
          return { name: first?.queue ?? '', kind: first?.shard.kind ?? '', tenant: data.tenant, requirements: first?.shard.requirements ?? data.requirements };
        }),
      );
      if (newQueues.length > 0) await this.deps.hub.broadcast({ type: 'queues-added' });
      const at = now();
      const records = new Map<string, TaskRecord>();
      for (const p of fresh) {
        records.set(p.taskId, {
          ...newTaskRecord(p.shard.kind, 'queued', at, data.generation),
          shardOf: data.taskId,
          shardIndex: p.shard.index,
          inputNames: p.shard.inputs.map((i) => i.name),
          queue: p.queue,
        });
      }
      await jobs.addShards(data.jobId, data.taskId, records, shards.length, at);
      for (const [queue, ps] of byQueue) {
        await queues.queue(queue).queue.addBulk(
          ps.map((p) =>
            taskJob(
              {
                jobId: data.jobId,
                taskId: p.taskId,
                kind: p.shard.kind,
                tenant: data.tenant,
                queue,
                parentQueue: data.queue,
                generation: data.generation,
                inputs: p.shard.inputs,
                params: p.shard.params,
                requirements: p.shard.requirements,
                optional: true,
                upstream: [],
                timeoutMs: p.shard.timeoutMs,
              },
              { priority, parent },
            ),
          ),
        );
        touched.add(queue);
      }
      await this.deps.wake(touched);
    }
    this.deps.logger.info({ jobId: data.jobId, taskId: data.taskId, kind: data.kind, shards: shards.length }, 'fanned out');
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.close()));
  }
}
