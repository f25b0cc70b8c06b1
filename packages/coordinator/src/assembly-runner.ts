import { Worker as BullWorker, type ConnectionOptions, type Job as BullJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { ASSEMBLE_KIND, assembleJobResult, isTerminalJobState, type TaskOutcome } from '@mmgrid/core';
import type { JobRecord, JobStore } from './job-store.js';
import type { Keys } from './keys.js';
import type { Logger } from './logger.js';
import { readChildOutcomes, toTaskOutcome } from './outcomes.js';
import type { TaskData } from './task-queues.js';

export interface AssemblyRunnerDeps {
  readonly redis: Redis;
  readonly keys: Keys;
  readonly connection: ConnectionOptions;
  readonly jobs: JobStore;
  readonly logger: Logger;
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly now: () => number;
}

/**
 * Runs each job's root step inside the coordinator: when every task has ended, BullMQ moves
 * the root to the ready queue and one replica assembles the result from the committed
 * outcomes. A replica that dies mid-assembly loses nothing: BullMQ's lock lapses and another
 * picks the step up; ending a job is idempotent.
 */
export class AssemblyRunner {
  private readonly bull: BullWorker<TaskData>;

  constructor(private readonly deps: AssemblyRunnerDeps) {
    this.bull = new BullWorker<TaskData>(ASSEMBLE_KIND, (job) => this.process(job), {
      connection: deps.connection,
      prefix: deps.keys.prefix,
      concurrency: deps.concurrency,
      lockDuration: deps.leaseMs,
      autorun: false,
    });
    this.bull.on('error', (err: Error) => deps.logger.warn({ err: err.message }, 'assembly queue error'));
    this.bull.on('failed', (job: BullJob<TaskData> | undefined, err: Error) => {
      if (job) deps.logger.error({ jobId: job.data.jobId, err: err.message }, 'assembly failed');
    });
  }

  start(): void {
    void this.bull.run().catch((err: unknown) => this.deps.logger.error({ err: String(err) }, 'assembly worker stopped'));
  }

  private async process(job: BullJob<TaskData>): Promise<void> {
    const { jobs, now, logger } = this.deps;
    const jobId = job.data.jobId;
    const record = await jobs.get(jobId);
    if (!record || isTerminalJobState(record.state)) return;
    const outcomes = await this.collectOutcomes(record);
    const assembled = assembleJobResult(record.graph, record.inputs, record.spec.prompt, outcomes);
    const at = now();
    if (assembled.ok) {
      await jobs.updateTask(jobId, record.graph.rootId, { kind: ASSEMBLE_KIND, state: 'succeeded', startedAt: at, finishedAt: at, attempts: 1 }, at);
      await jobs.finish(jobId, 'completed', { result: { doc: assembled.doc, blobs: assembled.blobs } }, at);
      logger.info({ jobId, coverage: assembled.doc.coverage, partial: assembled.doc.partial }, 'job completed');
    } else {
      await jobs.updateTask(jobId, record.graph.rootId, { kind: ASSEMBLE_KIND, state: 'failed', error: { ...assembled.error, retryable: false }, finishedAt: at }, at);
      await jobs.finish(jobId, 'failed', { error: assembled.error }, at);
      logger.info({ jobId, error: assembled.error.message }, 'job failed');
    }
  }

  /** Every task's outcome, read from the BullMQ records of each parent in the graph. */
  private async collectOutcomes(record: JobRecord): Promise<Map<string, TaskOutcome>> {
    const { redis, keys, jobs } = this.deps;
    const records = await jobs.tasks(record.id);
    const outcomes = new Map<string, TaskOutcome>();
    const parents = record.graph.tasks.filter((t) => t.dependsOn.length > 0);
    const children = await Promise.all(parents.map((p) => readChildOutcomes(redis, keys.prefix, p.kind, record.id, p.id)));
    parents.forEach((parent, i) => {
      const found = children[i];
      for (const childId of parent.dependsOn) {
        outcomes.set(childId, toTaskOutcome(found?.get(childId), records.get(childId)));
      }
    });
    return outcomes;
  }

  async close(): Promise<void> {
    await this.bull.close();
  }
}
