import { setTimeout as delay } from 'node:timers/promises';
import { Worker as BullWorker, type ConnectionOptions, type Job as BullJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { DEFAULT_RETRY_POLICY, retryDelayMs, taskKindInfo } from '@mmgrid/core';
import type { Keys } from './keys.js';
import { grantLease, type LeaseGrant } from './lease.js';
import type { Logger } from './logger.js';
import { BACKOFF_TYPE, type TaskData } from './task-queues.js';
import type { WorkerRegistry } from './worker-registry.js';

export interface KindDispatcherDeps {
  readonly redis: Redis;
  readonly keys: Keys;
  readonly connection: ConnectionOptions;
  readonly registry: WorkerRegistry;
  readonly logger: Logger;
  readonly leaseMs: number;
  readonly stalledCheckIntervalMs: number;
  readonly maxStalledCount: number;
  /** Hands a fetched task to a worker (or back to the queue). */
  readonly dispatch: (kind: string, job: BullJob<TaskData>, grant: LeaseGrant) => Promise<void>;
  readonly onStalled: (kind: string, bullJobId: string) => void;
  readonly onFailedByBroker: (kind: string, job: BullJob<TaskData>, error: Error) => void;
}

/**
 * The dispatch loop of one task kind on this replica. It takes a task out of Redis only when
 * a connected worker has a free slot for the kind, so no task sits assigned to nobody. The
 * BullMQ worker here fetches manually (the task's lock token is its lease) and runs BullMQ's
 * stalled check, which puts tasks whose lease lapsed back in the queue.
 */
export class KindDispatcher {
  readonly bull: BullWorker<TaskData>;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;

  constructor(
    readonly kind: string,
    private readonly deps: KindDispatcherDeps,
  ) {
    const retry = taskKindInfo(kind)?.retry ?? DEFAULT_RETRY_POLICY;
    this.bull = new BullWorker<TaskData>(kind, null, {
      connection: deps.connection,
      prefix: deps.keys.prefix,
      autorun: false,
      lockDuration: deps.leaseMs,
      stalledInterval: deps.stalledCheckIntervalMs,
      maxStalledCount: deps.maxStalledCount,
      drainDelay: 5,
      settings: {
        backoffStrategy: (attemptsMade: number, type?: string) =>
          type === BACKOFF_TYPE ? retryDelayMs(retry, attemptsMade, Math.random) : 0,
      },
    });
    this.bull.on('stalled', (jobId: string) => deps.onStalled(kind, jobId));
    this.bull.on('failed', (job: BullJob<TaskData> | undefined, error: Error) => {
      if (job) deps.onFailedByBroker(kind, job, error);
    });
    this.bull.on('error', (err: Error) => deps.logger.warn({ kind, err: err.message }, 'task queue error'));
  }

  start(): void {
    if (this.loop) return;
    this.loop = this.run();
    void this.bull.startStalledCheckTimer().catch((err: unknown) => {
      this.deps.logger.warn({ kind: this.kind, err: String(err) }, 'stalled checker did not start');
    });
  }

  private async run(): Promise<void> {
    const { registry, logger } = this.deps;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      if (!registry.hasFreeSlot(this.kind)) {
        await registry.waitForSlot(this.kind, signal);
        continue;
      }
      let job: BullJob<TaskData> | undefined;
      let grant: LeaseGrant;
      try {
        grant = await grantLease(this.deps.redis, this.deps.keys);
        job = await this.bull.getNextJob(grant.lockToken, { block: true });
      } catch (err) {
        if (signal.aborted) break;
        logger.warn({ kind: this.kind, err: String(err) }, 'fetching a task failed; retrying in 1 s');
        await delay(1000, undefined, { signal }).catch(() => undefined);
        continue;
      }
      if (!job || signal.aborted) continue;
      try {
        await this.deps.dispatch(this.kind, job, grant);
      } catch (err) {
        logger.error({ kind: this.kind, task: job.id, err: String(err) }, 'dispatch failed; the task goes back when its lease lapses');
      }
    }
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.bull.close();
    await this.loop;
  }
}
