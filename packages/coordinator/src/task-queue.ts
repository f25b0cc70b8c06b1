import { Job as BullJob, Queue, type AdvancedOptions, type ConnectionOptions, type QueueOptions, type WorkerOptions } from 'bullmq';
import { DEFAULT_RETRY_POLICY, retryDelayMs, taskKindInfo } from '@mmgrid/core';
import type { Redis } from 'ioredis';
import { COMPLETED_TASK_RETENTION, FAILED_TASK_RETENTION, unpackTaskData, type QueueInfo, type StoredTaskData, type TaskData } from './task-data.js';

export interface TaskQueueOptions {
  readonly prefix: string;
  /** Lock (lease) length given to fetched tasks. */
  readonly leaseMs: number;
  readonly stalledIntervalMs: number;
  readonly maxStalledCount: number;
  /** Delay before retry `attemptsMade` (1-based) of a failed task. */
  readonly backoff: (attemptsMade: number) => number;
}

/** BullMQ's custom backoff type for mmgrid tasks. */
export const BACKOFF_TYPE = 'mmgrid';

/** How the coordinator's own steps hold and lose their tasks: as the workers' tasks do. */
export interface CoordinatorStepLease {
  /** Lock length; a replica renews it while the step runs. */
  readonly leaseMs: number;
  /** How often lapsed locks are looked for (--stalled-check-ms). */
  readonly stalledIntervalMs: number;
  /** Lapses a step survives before it fails (a step that keeps killing replicas). */
  readonly maxStalledCount: number;
}

/**
 * Options for a BullMQ Worker that runs one of the coordinator's own steps (assembly,
 * stitching): a lock as long as a lease, looked for lapsed as often as the workers' tasks are
 * (so a step whose replica died runs on another within a lease and a check, not BullMQ's
 * default of two 30 s checks), started by the caller, and the step kind's retry backoff.
 */
export function coordinatorStepWorkerOptions(
  kind: string,
  deps: CoordinatorStepLease & { readonly connection: ConnectionOptions; readonly prefix: string; readonly concurrency: number },
): WorkerOptions {
  const retry = taskKindInfo(kind)?.retry ?? DEFAULT_RETRY_POLICY;
  return {
    connection: deps.connection,
    prefix: deps.prefix,
    concurrency: deps.concurrency,
    lockDuration: deps.leaseMs,
    stalledInterval: deps.stalledIntervalMs,
    maxStalledCount: deps.maxStalledCount,
    autorun: false,
    settings: {
      backoffStrategy: (attemptsMade: number, type?: string) => (type === BACKOFF_TYPE ? retryDelayMs(retry, attemptsMade, Math.random) : 0),
    },
  };
}

export type FetchResult = { readonly job: BullJob<TaskData> } | { readonly job: undefined; readonly nextDelayedAt: number | undefined };

/**
 * One BullMQ queue of tasks, driven below BullMQ's Worker class: mmgrid fetches a task only
 * when a worker has a free slot for it, from whichever tenant's queue has its turn, so it
 * calls BullMQ's own Lua scripts (moveToActive with the lease as lock token, the stalled
 * check) on a Queue that shares one Redis connection with every other queue. A Worker per
 * queue would hold two connections each. This is the only module that uses BullMQ's
 * `scripts` directly; bullmq is pinned to an exact version in package.json.
 */
export class TaskQueue {
  /** BullMQ holds a worker task's data packed (StoredTaskData); fetch and job() unpack it. */
  readonly queue: Queue<TaskData | StoredTaskData>;

  constructor(
    readonly name: string,
    connection: Redis,
    /** What the queue holds (from the grid's list of queues), to unpack its tasks' data. */
    private readonly info: () => QueueInfo | undefined,
    options: TaskQueueOptions,
  ) {
    const settings: AdvancedOptions = {
      backoffStrategy: (attemptsMade: number, type?: string) => (type === BACKOFF_TYPE ? options.backoff(attemptsMade) : 0),
    };
    // Read by BullMQ's scripts from the queue's options (they are Worker options in its types).
    const queueOptions: QueueOptions &
      Pick<WorkerOptions, 'removeOnComplete' | 'removeOnFail'> & { lockDuration: number; stalledInterval: number; maxStalledCount: number; settings: AdvancedOptions } = {
      connection,
      prefix: options.prefix,
      lockDuration: options.leaseMs,
      stalledInterval: options.stalledIntervalMs,
      maxStalledCount: options.maxStalledCount,
      // Used when a task's own options do not say (a worker's tasks do not, to save space).
      removeOnComplete: COMPLETED_TASK_RETENTION,
      removeOnFail: FAILED_TASK_RETENTION,
      settings,
    };
    this.queue = new Queue<TaskData | StoredTaskData>(name, queueOptions);
  }

  /**
   * Takes the next task (priority order, then FIFO) and locks it with `lockToken`. When none
   * is ready, says when the next delayed one (a retry waiting out its backoff) will be.
   */
  async fetch(lockToken: string): Promise<FetchResult> {
    const client = await this.queue.client;
    const [jobData, id, , delayUntil] = (await this.queue.scripts.moveToActive(client, lockToken)) as [unknown, string | undefined, number, number];
    if (!jobData || !id) {
      return { job: undefined, nextDelayedAt: typeof delayUntil === 'number' && delayUntil > 0 ? delayUntil : undefined };
    }
    const job = this.unpacked(BullJob.fromJSON<TaskData>(this.queue, jobData as Parameters<typeof BullJob.fromJSON>[1], id));
    job.token = lockToken;
    return { job };
  }

  /** The job with its whole TaskData (BullMQ holds it packed, though typed whole here). */
  private unpacked(job: BullJob<TaskData>): BullJob<TaskData> {
    const info = this.info();
    if (!info) throw new Error(`queue ${this.name} is not in the grid's list of queues, so its tasks cannot be read`);
    job.data = unpackTaskData(job.data, info, job.id ?? '');
    return job;
  }

  /** Puts back tasks whose lock lapsed (BullMQ's stalled check); returns their ids. */
  async moveStalledToWait(): Promise<string[]> {
    return this.queue.scripts.moveStalledJobsToWait();
  }

  /** Renews locks; returns the ids whose lock was no longer the given token. */
  async extendLocks(jobIds: string[], tokens: string[], durationMs: number): Promise<string[]> {
    if (jobIds.length === 0) return [];
    return this.queue.scripts.extendLocks(jobIds, tokens, durationMs);
  }

  async job(id: string): Promise<BullJob<TaskData> | undefined> {
    const job = await BullJob.fromId<TaskData>(this.queue, id);
    return job ? this.unpacked(job) : undefined;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
