import { Worker as BullWorker, type ConnectionOptions, type Job as BullJob } from 'bullmq';
import type { Redis } from 'ioredis';
import { ASSEMBLE_KIND, assembleJobResult, isTerminalJobState, type TaskOutcome } from '@mmgrid/core';
import type { BlobGrants } from './blob-grants.js';
import type { JobRecord, JobStore, TaskRecord } from './job-store.js';
import type { Keys } from './keys.js';
import type { Logger } from './logger.js';
import { collectJobOutcomes } from './outcomes.js';
import { coordinatorStepWorkerOptions, type CoordinatorStepLease } from './task-queue.js';
import type { TaskData } from './task-queues.js';

export interface AssemblyRunnerDeps extends CoordinatorStepLease {
  readonly redis: Redis;
  readonly keys: Keys;
  readonly connection: ConnectionOptions;
  readonly jobs: JobStore;
  /** The result's blobs become readable by the job's tenant. */
  readonly grants: BlobGrants;
  readonly logger: Logger;
  readonly concurrency: number;
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
    this.bull = new BullWorker<TaskData>(ASSEMBLE_KIND, (job) => this.process(job), coordinatorStepWorkerOptions(ASSEMBLE_KIND, { ...deps, prefix: deps.keys.prefix }));
    this.bull.on('error', (err: Error) => deps.logger.warn({ err: err.message }, 'assembly queue error'));
    this.bull.on('failed', (job: BullJob<TaskData> | undefined, err: Error) => {
      if (!job) return;
      const final = job.attemptsMade >= (job.opts.attempts ?? 1) || err.name === 'UnrecoverableError';
      deps.logger.error({ jobId: job.data.jobId, err: err.message, final }, 'assembly failed');
      // Out of attempts: the job must still end, or watchers would wait forever.
      if (final) void this.failJob(job.data.jobId, err.message);
    });
  }

  start(): void {
    void this.bull.run().catch((err: unknown) => this.deps.logger.error({ err: String(err) }, 'assembly worker stopped'));
  }

  private async process(job: BullJob<TaskData>): Promise<void> {
    const { jobs } = this.deps;
    const jobId = job.data.jobId;
    const record = await jobs.get(jobId);
    if (!record || isTerminalJobState(record.state)) return;
    try {
      await this.assemble(record);
    } catch (err) {
      // The last attempt ends the job here, in the step itself: a replica dying between
      // BullMQ failing the step and a handler noticing would leave the job running forever.
      if (job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) {
        await this.failJob(jobId, err instanceof Error ? err.message : String(err));
        return;
      }
      throw err;
    }
  }

  private async assemble(record: JobRecord): Promise<void> {
    const { jobs, now, logger } = this.deps;
    const jobId = record.id;
    const records = await jobs.tasks(jobId);
    const collected = await collectJobOutcomes(this.deps.redis, this.deps.keys, record, records);
    const outcomes = new Map([...collected].map(([id, c]) => [id, c.outcome]));
    await this.settleRecords(record, records, outcomes);
    // Kept with the job (BullMQ drops them with its jobs): a retry reuses what succeeded.
    const kept = new Map<string, string>();
    for (const [taskId, { child }] of collected) if (child) kept.set(taskId, JSON.stringify(child));
    await jobs.keepOutcomes(jobId, kept);
    const assembled = assembleJobResult(record.graph, record.inputs, record.spec.prompt, outcomes);
    const at = now();
    if (assembled.ok) {
      await jobs.updateTask(jobId, record.graph.rootId, { kind: ASSEMBLE_KIND, state: 'succeeded', startedAt: at, finishedAt: at, attempts: 1 }, at);
      // Before the job ends: whoever sees the result may fetch its blobs.
      await this.deps.grants.grant(record.tenant, assembled.blobs.map((b) => b.sha256));
      await jobs.finish(jobId, 'completed', { result: { doc: assembled.doc, blobs: assembled.blobs } }, at);
      logger.info({ jobId, coverage: assembled.doc.coverage, partial: assembled.doc.partial }, 'job completed');
    } else {
      await jobs.updateTask(jobId, record.graph.rootId, { kind: ASSEMBLE_KIND, state: 'failed', error: { ...assembled.error, retryable: false }, finishedAt: at }, at);
      await jobs.finish(jobId, 'failed', { error: assembled.error }, at);
      logger.info({ jobId, error: assembled.error.message }, 'job failed');
    }
  }

  /**
   * Task records lag behind BullMQ when a replica died between committing a result and
   * recording it; the committed outcome is the truth, so records are brought in line.
   * `records` were read before the outcomes: one that has ended since is left as it is.
   */
  private async settleRecords(record: JobRecord, records: ReadonlyMap<string, TaskRecord>, outcomes: ReadonlyMap<string, TaskOutcome>): Promise<void> {
    const at = this.deps.now();
    for (const [taskId, outcome] of outcomes) {
      const r = records.get(taskId);
      if (!r || r.state === 'succeeded' || r.state === 'failed' || r.state === 'cancelled') continue;
      await this.deps.jobs.updateTask(
        record.id,
        taskId,
        outcome.status === 'succeeded'
          ? { kind: r.kind, state: 'succeeded', error: null, finishedAt: at }
          : { kind: r.kind, state: 'failed', error: { ...outcome.error, retryable: false }, finishedAt: at },
        at,
        { onlyIfLive: true },
      );
    }
  }

  private async failJob(jobId: string, reason: string): Promise<void> {
    const { jobs, now, logger } = this.deps;
    const at = now();
    try {
      await jobs.finish(jobId, 'failed', { error: { code: 'ASSEMBLY_FAILED', message: `the result could not be assembled: ${reason}` } }, at);
    } catch (err) {
      logger.error({ jobId, err: String(err) }, 'could not record the failed assembly');
    }
  }

  async close(): Promise<void> {
    await this.bull.close();
  }
}
