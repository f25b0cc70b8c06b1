import { Job as BullJob, UnrecoverableError, type ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  InvalidTaskOutputError,
  isBuiltinWorkerKind,
  isTerminalJobState,
  parseTaskOutput,
  type JsonValue,
} from '@mmgrid/core';
import type { Lease, TaskAssignment, TaskFailure, TaskResult, UpstreamOutput } from '@mmgrid/proto';
import type { ControlHandler, ControlMessage } from './event-hub.js';
import type { JobStore, RecordedError } from './job-store.js';
import type { Keys } from './keys.js';
import { KindDispatcher } from './kind-dispatcher.js';
import { leaseToProto, lockTokenOf, parseBullJobId, parseTaskRef, taskRefOf, type LeaseGrant } from './lease.js';
import type { Logger } from './logger.js';
import { readChildOutcomes } from './outcomes.js';
import { blobRefToProto } from './proto-mapping.js';
import type { TaskData } from './task-queues.js';
import type { WorkerRegistry } from './worker-registry.js';
import type { ActiveLease, WorkerSession } from './worker-session.js';

export interface DispatcherDeps {
  readonly redis: Redis;
  readonly keys: Keys;
  readonly connection: ConnectionOptions;
  readonly registry: WorkerRegistry;
  readonly jobs: JobStore;
  readonly logger: Logger;
  readonly leaseMs: number;
  readonly stalledCheckIntervalMs: number;
  readonly heartbeatIntervalMs: number;
  readonly maxStalledCount: number;
  readonly now: () => number;
}

export interface DispatchCounters {
  dispatched: number;
  committed: number;
  failed: number;
  staleRejected: number;
  leasesLapsed: number;
}

/**
 * Hands tasks to connected workers and commits what they send back. Every commit goes through
 * BullMQ with the lease's lock token, so a result whose lease lapsed is rejected, whichever
 * replica it reaches and however late it comes.
 */
export class Dispatcher implements ControlHandler {
  private readonly kinds = new Map<string, KindDispatcher>();
  readonly counters: DispatchCounters = { dispatched: 0, committed: 0, failed: 0, staleRejected: 0, leasesLapsed: 0 };

  constructor(private readonly deps: DispatcherDeps) {}

  /** Starts (once) the dispatch loop of each kind a worker offers. */
  ensureKinds(kinds: Iterable<string>): void {
    for (const kind of kinds) this.kindDispatcher(kind);
  }

  private kindDispatcher(kind: string): KindDispatcher {
    let kd = this.kinds.get(kind);
    if (!kd) {
      kd = new KindDispatcher(kind, {
        redis: this.deps.redis,
        keys: this.deps.keys,
        connection: this.deps.connection,
        registry: this.deps.registry,
        logger: this.deps.logger,
        leaseMs: this.deps.leaseMs,
        stalledCheckIntervalMs: this.deps.stalledCheckIntervalMs,
        maxStalledCount: this.deps.maxStalledCount,
        dispatch: (k, job, grant) => this.dispatch(k, job, grant),
        onStalled: (k, id) => void this.onStalled(k, id),
        onFailedByBroker: (k, job, err) => void this.onFailedByBroker(k, job, err),
      });
      this.kinds.set(kind, kd);
      kd.start();
    }
    return kd;
  }

  private async dispatch(kind: string, job: BullJob<TaskData>, grant: LeaseGrant): Promise<void> {
    const { jobs, registry, now } = this.deps;
    const data = job.data;
    const jobState = await jobs.state(data.jobId);
    if (jobState === undefined || isTerminalJobState(jobState)) {
      await job.moveToFailed(new UnrecoverableError(`job ${data.jobId} has already ended`), grant.lockToken, false);
      await jobs.updateTask(data.jobId, data.taskId, { kind, state: 'cancelled', finishedAt: now() }, now());
      return;
    }

    let upstream: UpstreamOutput[] = [];
    if (data.upstream.length > 0) {
      upstream = await this.upstreamOf(kind, data);
      const broken = data.upstream.find((u) => !u.optional && upstream.find((o) => o.taskId === u.taskId)?.error);
      if (broken) {
        const cause = upstream.find((o) => o.taskId === broken.taskId)?.error?.message ?? 'failed';
        const error: RecordedError = { code: 'UPSTREAM_FAILED', message: `required input ${broken.kind} (${broken.taskId}) failed: ${cause}`, retryable: false };
        await job.moveToFailed(new UnrecoverableError(error.message), grant.lockToken, false);
        await jobs.updateTask(data.jobId, data.taskId, { kind, state: 'failed', error, finishedAt: now() }, now());
        return;
      }
    }

    const session = registry.reserve(kind);
    if (!session) {
      // The worker whose free slot started this fetch went away meanwhile.
      await job.moveToWait(grant.lockToken);
      return;
    }
    const taskRef = taskRefOf(kind, job.id ?? '');
    const attempt = Math.max(1, job.attemptsStarted);
    const lease: ActiveLease = {
      leaseId: grant.leaseId,
      fencingToken: grant.fencingToken,
      lockToken: grant.lockToken,
      kind,
      taskRef,
      job,
      attempt,
      startedAt: now(),
      durationMs: this.deps.leaseMs,
    };
    session.leases.set(lease.leaseId, lease);
    try {
      await this.assign(session, lease, upstream);
    } catch (err) {
      // Nothing reached the worker: give the slot back and the task to its queue.
      this.finishLease(session, lease);
      await job.moveToWait(grant.lockToken).catch(() => undefined);
      throw err;
    }
  }

  private async assign(session: WorkerSession, lease: ActiveLease, upstream: UpstreamOutput[]): Promise<void> {
    const { jobs, registry, logger, now } = this.deps;
    const { job, kind, taskRef, attempt } = lease;
    const data = job.data;
    const assignment: TaskAssignment = {
      lease: leaseToProto(lease, taskRef, this.deps.leaseMs),
      jobId: data.jobId,
      taskId: data.taskId,
      kind,
      paramsJson: JSON.stringify(data.params),
      blobs: data.inputs.flatMap((i) => (i.blob ? [{ name: i.name, blob: blobRefToProto(i.blob) }] : [])),
      texts: Object.fromEntries(data.inputs.flatMap((i) => (i.blob ? [] : [[i.name, i.text ?? '']]))),
      upstream,
      requirements: { ...data.requirements },
      attempt,
      timeoutMs: data.timeoutMs,
    };
    await jobs.updateTask(
      data.jobId,
      data.taskId,
      { kind, state: 'running', attempts: attempt, workerId: session.workerId, workerName: session.name, leaseId: lease.leaseId, fencingToken: lease.fencingToken, startedAt: lease.startedAt },
      lease.startedAt,
    );
    if (!session.send({ msg: { $case: 'assign', assign: assignment } })) {
      session.leases.delete(lease.leaseId);
      registry.release(session, kind);
      await job.moveToWait(lease.lockToken);
      await jobs.updateTask(data.jobId, data.taskId, { kind, state: 'queued', workerId: '', workerName: '' }, now());
      return;
    }
    this.counters.dispatched += 1;
    logger.debug({ jobId: data.jobId, taskId: data.taskId, kind, worker: session.name, fencingToken: lease.fencingToken }, 'task dispatched');
  }

  /** The outputs (or failures) of the tasks a task consumes. */
  private async upstreamOf(kind: string, data: TaskData): Promise<UpstreamOutput[]> {
    const [outcomes, records] = await Promise.all([
      readChildOutcomes(this.deps.redis, this.deps.keys.prefix, kind, data.jobId, data.taskId),
      this.deps.jobs.tasks(data.jobId),
    ]);
    return data.upstream.map((u) => {
      const outcome = outcomes.get(u.taskId);
      const record = records.get(u.taskId);
      if (outcome?.status === 'succeeded') {
        return { taskId: u.taskId, kind: u.kind, outputJson: outcome.outputJson, error: undefined, inputNames: [...u.inputNames] };
      }
      const error = record?.error ?? { code: 'TASK_FAILED', message: outcome?.status === 'failed' ? outcome.reason : 'no outcome', retryable: false };
      return { taskId: u.taskId, kind: u.kind, outputJson: '', error: { code: error.code, message: error.message, retryable: false }, inputNames: [...u.inputNames] };
    });
  }

  /** Finds the lease a worker message refers to, checking its fencing token. */
  private leaseOf(session: WorkerSession, ref: Lease | undefined): ActiveLease | undefined {
    if (!ref) return undefined;
    const lease = session.leases.get(ref.leaseId);
    if (!lease || lease.fencingToken !== ref.fencingToken) return undefined;
    return lease;
  }

  private finishLease(session: WorkerSession, lease: ActiveLease): void {
    if (session.leases.delete(lease.leaseId)) this.deps.registry.release(session, lease.kind);
  }

  /** Commits a task's result if its lease is current; answers the worker either way. */
  async complete(session: WorkerSession, result: TaskResult): Promise<void> {
    const { jobs, now, logger } = this.deps;
    const lease = this.leaseOf(session, result.lease);
    if (!lease) {
      this.reject(session, result.lease, 'the lease is not current (it lapsed or was never granted to this worker)');
      return;
    }
    const data = lease.job.data;
    let output: JsonValue;
    try {
      output = this.validateOutput(lease.kind, result.outputJson);
    } catch (err) {
      const message = err instanceof InvalidTaskOutputError ? err.message : `output is not valid JSON: ${String(err)}`;
      await this.fail(session, { lease: result.lease, error: { code: 'INVALID_TASK_OUTPUT', message, retryable: true }, stats: result.stats });
      return;
    }
    try {
      await retryTransient(() => lease.job.moveToCompleted(output, lease.lockToken, false));
    } catch (err) {
      if (!isStaleLockError(err)) {
        // Redis is unreachable: keep the lease; the worker sends the result again later.
        logger.warn({ jobId: data.jobId, taskId: data.taskId, err: String(err) }, 'could not commit a result yet');
        return;
      }
      this.finishLease(session, lease);
      if (await this.alreadyCommitted(data, lease)) {
        session.send({ msg: { $case: 'ack', ack: { lease: result.lease, accepted: true, reason: 'already committed' } } });
        return;
      }
      this.reject(session, result.lease, 'the lease lapsed before the result arrived; the task ran elsewhere');
      return;
    }
    this.finishLease(session, lease);
    this.counters.committed += 1;
    const finishedAt = now();
    await retryTransient(() => jobs.updateTask(data.jobId, data.taskId, { kind: lease.kind, state: 'succeeded', workerId: session.workerId, workerName: session.name, error: null, finishedAt, attempts: lease.attempt }, finishedAt));
    session.send({ msg: { $case: 'ack', ack: { lease: result.lease, accepted: true, reason: '' } } });
    logger.debug({ jobId: data.jobId, taskId: data.taskId, kind: lease.kind, worker: session.name }, 'task result committed');
  }

  /** Records a failed attempt: back to the queue with backoff, or failed for good. */
  async fail(session: WorkerSession, failure: TaskFailure): Promise<void> {
    const { jobs, now } = this.deps;
    const lease = this.leaseOf(session, failure.lease);
    if (!lease) {
      this.reject(session, failure.lease, 'the lease is not current');
      return;
    }
    const data = lease.job.data;
    const detail = failure.error ?? { code: 'TASK_FAILED', message: 'the worker reported a failure without details', retryable: true };
    const error: RecordedError = { code: detail.code || 'TASK_FAILED', message: detail.message, retryable: detail.retryable };
    if (error.code === 'WORKER_DRAINING') {
      await this.handBack(session, lease, failure.lease);
      return;
    }
    const maxAttempts = lease.job.opts.attempts ?? 1;
    const willRetry = error.retryable && lease.job.attemptsMade + 1 < maxAttempts;
    try {
      await retryTransient(() =>
        lease.job.moveToFailed(error.retryable ? new Error(error.message) : new UnrecoverableError(error.message), lease.lockToken, false),
      );
    } catch (err) {
      if (!isStaleLockError(err)) {
        this.deps.logger.warn({ jobId: data.jobId, taskId: data.taskId, err: String(err) }, 'could not record a failure yet');
        return;
      }
      this.finishLease(session, lease);
      this.reject(session, failure.lease, 'the lease lapsed before the failure arrived');
      return;
    }
    this.finishLease(session, lease);
    this.counters.failed += 1;
    const at = now();
    await retryTransient(() => jobs.updateTask(
      data.jobId,
      data.taskId,
      willRetry
        ? { kind: lease.kind, state: 'queued', error, attempts: lease.attempt, workerId: session.workerId, workerName: session.name }
        : { kind: lease.kind, state: error.code === 'CANCELLED' ? 'cancelled' : 'failed', error, attempts: lease.attempt, workerId: session.workerId, workerName: session.name, finishedAt: at },
      at,
    ));
    session.send({ msg: { $case: 'ack', ack: { lease: failure.lease, accepted: true, reason: willRetry ? 'will retry' : 'failed for good' } } });
  }

  /**
   * A draining worker hands a task back: it goes straight back to its queue without using up
   * an attempt or waiting out a backoff (the task did not fail).
   */
  private async handBack(session: WorkerSession, lease: ActiveLease, ref: Lease | undefined): Promise<void> {
    const data = lease.job.data;
    try {
      await retryTransient(() => lease.job.moveToWait(lease.lockToken));
    } catch (err) {
      if (!isStaleLockError(err)) return;
    }
    this.finishLease(session, lease);
    await this.deps.jobs.updateTask(data.jobId, data.taskId, { kind: lease.kind, state: 'queued', workerId: '', workerName: '' }, this.deps.now());
    session.send({ msg: { $case: 'ack', ack: { lease: ref, accepted: true, reason: 'handed back' } } });
  }

  /** Whether this very lease already committed the task (a result sent twice). */
  private async alreadyCommitted(data: TaskData, lease: ActiveLease): Promise<boolean> {
    const record = (await this.deps.jobs.tasks(data.jobId)).get(data.taskId);
    return record?.state === 'succeeded' && record.leaseId === lease.leaseId;
  }

  private reject(session: WorkerSession, lease: Lease | undefined, reason: string): void {
    this.counters.staleRejected += 1;
    this.deps.logger.info({ worker: session.name, fencingToken: lease?.fencingToken, taskRef: lease?.taskRef, reason }, 'result rejected');
    session.send({ msg: { $case: 'ack', ack: { lease, accepted: false, reason } } });
  }

  private validateOutput(kind: string, json: string): JsonValue {
    if (isBuiltinWorkerKind(kind)) return parseTaskOutput(kind, json);
    return JSON.parse(json) as JsonValue;
  }

  /**
   * Renews the leases a worker says it is running (heartbeat). Returns those that could not be
   * renewed: their task went back to the queue, so the worker should stop them.
   */
  async renew(session: WorkerSession, running: readonly Lease[]): Promise<Lease[]> {
    const reported = new Set(running.map((l) => l.leaseId));
    const byKind = new Map<string, ActiveLease[]>();
    const lost: Lease[] = [];
    for (const lease of session.leases.values()) {
      if (!reported.has(lease.leaseId)) {
        // Sent just now, the worker may not have reported it yet; otherwise the worker does
        // not know the task (the assignment was lost): let its lease lapse.
        if (this.deps.now() - lease.startedAt >= this.deps.heartbeatIntervalMs * 2) {
          this.finishLease(session, lease);
          lost.push(leaseToProto(lease, lease.taskRef, lease.durationMs));
        }
        continue;
      }
      const list = byKind.get(lease.kind) ?? [];
      list.push(lease);
      byKind.set(lease.kind, list);
    }
    for (const [kind, leases] of byKind) {
      const kd = this.kindDispatcher(kind);
      const failed = new Set<string>(
        await kd.bull.extendJobLocks(
          leases.map((l) => l.job.id ?? ''),
          leases.map((l) => l.lockToken),
          this.deps.leaseMs,
        ),
      );
      for (const lease of leases) {
        if (failed.has(lease.job.id ?? '')) {
          this.finishLease(session, lease);
          this.counters.leasesLapsed += 1;
          lost.push(leaseToProto(lease, lease.taskRef, lease.durationMs));
        }
      }
    }
    return lost;
  }

  /**
   * Takes over leases a reconnecting worker still runs (its old stream may have ended on any
   * replica). Returns the leases that are no longer current.
   */
  async adopt(session: WorkerSession, running: readonly Lease[]): Promise<Lease[]> {
    const lost: Lease[] = [];
    for (const ref of running) {
      const parsed = parseTaskRef(ref.taskRef);
      if (!parsed || !parseBullJobId(parsed.bullJobId) || !session.slots.has(parsed.kind)) {
        lost.push(ref);
        continue;
      }
      const kd = this.kindDispatcher(parsed.kind);
      const job = await BullJob.fromId<TaskData>(kd.bull, parsed.bullJobId);
      const lockToken = lockTokenOf(ref.leaseId, ref.fencingToken);
      const failed = job ? await kd.bull.extendJobLocks([parsed.bullJobId], [lockToken], this.deps.leaseMs) : [parsed.bullJobId];
      if (!job || failed.length > 0) {
        lost.push(ref);
        continue;
      }
      const slot = session.slots.get(parsed.kind);
      if (slot) slot.busy += 1;
      session.leases.set(ref.leaseId, {
        leaseId: ref.leaseId,
        fencingToken: ref.fencingToken,
        lockToken,
        kind: parsed.kind,
        taskRef: ref.taskRef,
        job,
        attempt: Math.max(1, job.attemptsStarted),
        startedAt: this.deps.now(),
        durationMs: this.deps.leaseMs,
      });
      await this.deps.jobs.updateTask(job.data.jobId, job.data.taskId, { kind: parsed.kind, state: 'running', workerId: session.workerId, workerName: session.name }, this.deps.now());
    }
    return lost;
  }

  /** BullMQ's stalled check put a task back: its lease lapsed. */
  private async onStalled(kind: string, bullJobId: string): Promise<void> {
    const ids = parseBullJobId(bullJobId);
    this.counters.leasesLapsed += 1;
    for (const session of this.deps.registry.all()) {
      for (const lease of session.leases.values()) {
        if (lease.kind === kind && lease.job.id === bullJobId) {
          this.finishLease(session, lease);
          session.send({ msg: { $case: 'cancel', cancel: { lease: leaseToProto(lease, lease.taskRef, lease.durationMs), reason: 'lease lapsed' } } });
        }
      }
    }
    if (!ids) return;
    this.deps.logger.warn({ jobId: ids.jobId, taskId: ids.taskId, kind }, 'lease lapsed; task back in the queue');
    const error: RecordedError = { code: 'LEASE_EXPIRED', message: 'the worker stopped renewing its lease (it died, froze or lost its connection)', retryable: true };
    await this.deps.jobs.updateTask(ids.jobId, ids.taskId, { kind, state: 'queued', workerId: '', workerName: '', error }, this.deps.now()).catch(() => undefined);
  }

  /** BullMQ failed a task itself (it stalled more often than maxStalledCount). */
  private async onFailedByBroker(kind: string, job: BullJob<TaskData>, err: Error): Promise<void> {
    const error: RecordedError = {
      code: 'WORKER_LOST',
      message: `the task's worker vanished more than ${this.deps.maxStalledCount} times; it is treated as poison (${err.message})`,
      retryable: false,
    };
    this.deps.logger.warn({ jobId: job.data.jobId, taskId: job.data.taskId, kind }, error.message);
    await this.deps.jobs.updateTask(job.data.jobId, job.data.taskId, { kind, state: 'failed', error, finishedAt: this.deps.now() }, this.deps.now()).catch(() => undefined);
  }

  /** A job was cancelled (on any replica): tell workers here running its tasks to stop. */
  onControl(message: ControlMessage): void {
    if (message.type !== 'cancel-job') return;
    for (const session of this.deps.registry.all()) {
      for (const lease of session.leases.values()) {
        if (lease.job.data.jobId !== message.jobId) continue;
        session.send({ msg: { $case: 'cancel', cancel: { lease: leaseToProto(lease, lease.taskRef, lease.durationMs), reason: 'the job was cancelled' } } });
      }
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.kinds.values()].map((kd) => kd.close()));
  }
}

/** Redis errors worth retrying: the connection, not the command, failed. */
function isTransient(err: unknown): boolean {
  return err instanceof Error && /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection is closed|Stream isn't writeable|LOADING|READONLY/.test(err.message);
}

/** Runs `fn`, retrying a few times over about three seconds while Redis is unreachable. */
async function retryTransient<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err) || attempt >= 5) throw err;
      await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt));
    }
  }
}

/** BullMQ's answer when a lock token is not the current one (the only place that reads its text). */
function isStaleLockError(err: unknown): boolean {
  return err instanceof Error && /Missing lock for job|Lock mismatch for job|Missing key for job|is not in the active state/.test(err.message);
}
