import { performance } from 'node:perf_hooks';
import { UnrecoverableError, type Job as BullJob } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  InvalidTaskOutputError,
  isBuiltinWorkerKind,
  isTerminalJobState,
  parseTaskOutput,
  parseTaskQueueName,
  pickGpu,
  requirementsSignature,
  type JsonValue,
} from '@mmgrid/core';
import type { Lease, TaskAssignment, TaskFailure, TaskResult, UpstreamOutput } from '@mmgrid/proto';
import { ClassDispatcher } from './class-dispatcher.js';
import { CoordinatorError } from './errors.js';
import type { ControlHandler, ControlMessage, EventHub } from './event-hub.js';
import type { JobStore, RecordedError } from './job-store.js';
import type { Keys } from './keys.js';
import { leaseToProto, lockTokenOf, parseBullJobId, parseTaskRef, taskRefOf, type LeaseGrant } from './lease.js';
import type { Logger } from './logger.js';
import { secondsSince, type Metrics } from './metrics.js';
import { readChildOutcomes } from './outcomes.js';
import { blobRefToProto } from './proto-mapping.js';
import type { TaskQueue } from './task-queue.js';
import type { Canaries } from './canaries.js';
import type { Settlement, Verifier } from './verifier.js';
import type { QueueInfo, TaskData, TaskQueues } from './task-queues.js';
import type { WorkerRegistry } from './worker-registry.js';
import type { ActiveLease, WorkerSession } from './worker-session.js';

export interface DispatcherDeps {
  readonly redis: Redis;
  readonly keys: Keys;
  readonly queues: TaskQueues;
  readonly registry: WorkerRegistry;
  readonly jobs: JobStore;
  readonly hub: EventHub;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly leaseMs: number;
  readonly stalledCheckIntervalMs: number;
  readonly heartbeatIntervalMs: number;
  readonly maxStalledCount: number;
  readonly now: () => number;
  /** Result verification; undefined when off (results are committed as they come). */
  readonly verifier?: Verifier | undefined;
  /** Canary tasks sent to workers on their heartbeats; undefined when off. */
  readonly canaries?: Canaries | undefined;
}

export interface DispatchCounters {
  dispatched: number;
  committed: number;
  failed: number;
  staleRejected: number;
  leasesLapsed: number;
  /** Results kept as verification candidates while another worker checks the task. */
  replicated: number;
}

/**
 * Hands tasks to connected workers and commits what they send back. Every commit goes through
 * BullMQ with the lease's lock token, so a result whose lease lapsed is rejected, whichever
 * replica it reaches and however late it comes.
 */
export class Dispatcher implements ControlHandler {
  /** One dispatch loop per task class (kind and requirement set). */
  private readonly classes = new Map<string, ClassDispatcher>();
  private readonly queueClass = new Map<string, ClassDispatcher>();
  private stalledTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  /** Jobs cancelled lately (any replica), for a cancel that races a dispatch on this one. */
  private readonly recentlyCancelled = new Map<string, number>();
  readonly counters: DispatchCounters = { dispatched: 0, committed: 0, failed: 0, staleRejected: 0, leasesLapsed: 0, replicated: 0 };

  constructor(private readonly deps: DispatcherDeps) {}

  /**
   * Lifts a worker's quarantine and clears its trust record (every replica hears of it).
   * Returns whether it was quarantined; throws when result verification is off.
   */
  async releaseWorker(workerId: string): Promise<boolean> {
    const verifier = this.deps.verifier;
    if (!verifier) throw new CoordinatorError('FAILED_PRECONDITION', 'result verification is off on this grid (see --verify and --canary-rate): no worker is quarantined');
    const was = (await verifier.record(workerId)).quarantinedAt > 0;
    await verifier.release(workerId);
    await this.deps.hub.broadcast({ type: 'worker-trust-changed', workerId });
    return was;
  }

  /** Reads a connecting worker's verification record (quarantined workers get no tasks). */
  async loadTrust(session: WorkerSession): Promise<void> {
    await this.deps.verifier?.load(session);
  }

  /** Learns the grid's queues and starts looking for lapsed leases. */
  async start(): Promise<void> {
    await this.refreshQueues();
    this.stalledTimer = setInterval(() => void this.checkStalled(), this.deps.stalledCheckIntervalMs);
    // A queue added while a notice was lost is found within this long.
    this.refreshTimer = setInterval(() => void this.refreshQueues(), QUEUE_REFRESH_MS);
  }

  /**
   * Reads the grid's list of queues and starts a loop for each new task class. A call made
   * while a read is under way reads again afterwards, so no newly added queue is missed.
   */
  refreshQueues(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    const run = async (): Promise<void> => {
      do {
        this.refreshAgain = false;
        try {
          for (const info of await this.deps.queues.known()) this.addQueue(info);
        } catch (err) {
          this.deps.logger.warn({ err: String(err) }, 'could not read the list of queues');
        }
      } while (this.refreshAgain);
    };
    this.refreshing = run().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  /** After a lost subscription every wake-up may have been missed: look at every queue. */
  onResubscribed(): void {
    for (const cd of this.classes.values()) cd.markAllReady();
    void this.refreshQueues();
  }

  private addQueue(info: QueueInfo): void {
    if (this.queueClass.has(info.name)) return;
    const key = `${info.kind}#${requirementsSignature(info.requirements)}#${JSON.stringify(info.requirements)}`;
    let cd = this.classes.get(key);
    if (!cd) {
      cd = new ClassDispatcher(info.kind, info.requirements, {
        redis: this.deps.redis,
        keys: this.deps.keys,
        registry: this.deps.registry,
        logger: this.deps.logger,
        metrics: this.deps.metrics,
        dispatch: (queue, job, grant) => this.dispatch(queue, job, grant),
      });
      this.classes.set(key, cd);
      cd.start();
    }
    cd.addQueue(this.deps.queues.queue(info.name));
    this.queueClass.set(info.name, cd);
  }

  /** A queue may have tasks ready (a wake-up from any replica). */
  onWake(queue: string): void {
    const cd = this.queueClass.get(queue);
    if (cd) cd.markReady(queue);
    else if (parseTaskQueueName(queue)) void this.refreshQueues();
  }

  /** Tells every replica that these queues may have tasks ready. */
  async wake(queues: Iterable<string>): Promise<void> {
    // Only task queues (coordinator steps such as the assembly have their own BullMQ worker).
    const names = [...new Set(queues)].filter((q) => parseTaskQueueName(q) !== undefined);
    if (names.length === 0) return;
    await this.deps.hub.wake(names);
  }

  /**
   * Hands a fetched task to the best worker. Returns false when no worker could take it after
   * all (it went back to its queue), so the class loop waits for a slot to change.
   */
  private async dispatch(queue: TaskQueue, job: BullJob<TaskData>, grant: LeaseGrant): Promise<boolean> {
    const { jobs, registry, now } = this.deps;
    // The task has just been taken out of its queue.
    const taken = { at: now(), perf: performance.now(), readyAt: job.timestamp };
    const data = job.data;
    const kind = data.kind;
    if (job.deferredFailure) {
      // BullMQ's stalled check gave up on this task: its workers kept vanishing.
      await this.failForGood(job, grant.lockToken, {
        code: 'WORKER_LOST',
        message: `the task's worker vanished more than ${this.deps.maxStalledCount} times; it is treated as poison (${job.deferredFailure})`,
        retryable: false,
      });
      return true;
    }
    let upstream: UpstreamOutput[] = [];
    if (data.upstream.length > 0) {
      // A consumer's inputs are read only while its job is live. Any other task's job is
      // checked when its record is marked running (startTask), in the same round trip.
      const jobState = await jobs.state(data.jobId);
      if (jobState === undefined || isTerminalJobState(jobState)) {
        await this.dropEnded(job, grant.lockToken);
        return true;
      }
      let inputsEndedAt: number;
      ({ upstream, inputsEndedAt } = await this.upstreamOf(data));
      // A consumer becomes ready when its last input ends, not when its job was submitted.
      taken.readyAt = Math.max(taken.readyAt, inputsEndedAt);
      const broken = data.upstream.find((u) => !u.optional && upstream.find((o) => o.taskId === u.taskId)?.error);
      if (broken) {
        const cause = upstream.find((o) => o.taskId === broken.taskId)?.error?.message ?? 'failed';
        await this.failForGood(job, grant.lockToken, { code: 'UPSTREAM_FAILED', message: `required input ${broken.kind} (${broken.taskId}) failed: ${cause}`, retryable: false });
        return true;
      }
    }

    // Under verification, workers that already answered the task do not get it again.
    const exclude = this.deps.verifier ? await this.deps.verifier.exclusion(data.jobId, data.taskId) : undefined;
    const session = registry.reserve(kind, data.requirements, data.jobId, exclude);
    if (!session) {
      if (exclude) {
        // Only workers that already answered may be free: it waits a moment, out of the way of
        // the tasks behind it (at the head of the queue it would hold them up).
        await job.moveToDelayed(now() + REPLICA_RETRY_MS, grant.lockToken);
        return true;
      }
      // The worker whose free slot started this fetch went away (or was taken) meanwhile.
      await job.moveToWait(grant.lockToken);
      return false;
    }
    const lease: ActiveLease = {
      leaseId: grant.leaseId,
      fencingToken: grant.fencingToken,
      lockToken: grant.lockToken,
      kind,
      queue,
      taskRef: taskRefOf(queue.name, job.id ?? ''),
      job,
      attempt: attemptOf(job),
      startedAt: now(),
      readySince: taken.readyAt,
      durationMs: this.deps.leaseMs,
      vramBytes: data.requirements.minVramBytes,
      gpuIndex: pickGpu(session, data.requirements) ?? -1,
    };
    session.leases.set(lease.leaseId, lease);
    session.recentQueues.set(kind, queue.name);
    try {
      if (!(await this.assign(session, lease, upstream, taken))) {
        // Its job has ended meanwhile: the slot goes back, the task is dropped.
        this.finishLease(session, lease);
        await this.dropEnded(job, grant.lockToken);
        return true;
      }
    } catch (err) {
      // Nothing reached the worker: give the slot back and the task to its queue.
      this.finishLease(session, lease);
      await job.moveToWait(grant.lockToken).catch(() => undefined);
      throw err;
    }
    // A cancel that arrived while this task was being handed out found no lease to stop.
    if (this.recentlyCancelled.has(data.jobId)) this.sendCancel(session, lease, 'the job was cancelled');
    return true;
  }

  /** A fetched task whose job has already ended: it will not run. */
  private async dropEnded(job: BullJob<TaskData>, lockToken: string): Promise<void> {
    const { jobs, now } = this.deps;
    const data = job.data;
    await job.moveToFailed(new UnrecoverableError(`job ${data.jobId} has already ended`), lockToken, false);
    await jobs.updateTask(data.jobId, data.taskId, { kind: data.kind, state: 'cancelled', finishedAt: now() }, now(), { onlyIfLive: true });
  }

  private sendCancel(session: WorkerSession, lease: ActiveLease, reason: string): void {
    session.send({ msg: { $case: 'cancel', cancel: { lease: leaseToProto(lease, lease.taskRef, lease.durationMs), reason } } });
  }

  /**
   * Records the lease and sends the assignment. `taken` says when the task left its queue
   * (wall clock and performance.now()) and when it had become ready, for the metrics.
   * Returns false, having sent nothing, when the task's job has ended.
   */
  private async assign(session: WorkerSession, lease: ActiveLease, upstream: UpstreamOutput[], taken: { at: number; perf: number; readyAt: number }): Promise<boolean> {
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
      gpuUuid: lease.gpuIndex >= 0 ? (session.hello.gpus[lease.gpuIndex]?.uuid ?? '') : '',
    };
    // The record says when a retried task became ready again (BullMQ keeps only its first add).
    const readyAgainAt = await jobs.startTask(
      data.jobId,
      data.taskId,
      { kind, state: 'running', attempts: attempt, workerId: session.workerId, workerName: session.name, leaseId: lease.leaseId, fencingToken: lease.fencingToken, startedAt: lease.startedAt, nextAttemptAt: 0 },
      lease.startedAt,
    );
    if (readyAgainAt === 'job-ended') return false;
    if (!session.send({ msg: { $case: 'assign', assign: assignment } })) {
      session.leases.delete(lease.leaseId);
      registry.release(session, kind);
      await job.moveToWait(lease.lockToken);
      await jobs.updateTask(data.jobId, data.taskId, { kind, state: 'queued', workerId: '', workerName: '' }, now());
      await this.wake([lease.queue.name]);
      return true;
    }
    this.counters.dispatched += 1;
    this.deps.metrics.taskDispatched(kind, (taken.at - Math.max(taken.readyAt, readyAgainAt)) / 1000, secondsSince(taken.perf));
    logger.debug({ jobId: data.jobId, taskId: data.taskId, kind, worker: session.name, fencingToken: lease.fencingToken }, 'task dispatched');
    return true;
  }

  /** Fails a fetched task without running it, and tells its consumer. */
  private async failForGood(job: BullJob<TaskData>, lockToken: string, error: RecordedError): Promise<void> {
    const data = job.data;
    await job.moveToFailed(new UnrecoverableError(error.message), lockToken, false);
    this.counters.failed += 1;
    await this.deps.jobs.updateTask(data.jobId, data.taskId, { kind: data.kind, state: 'failed', error, finishedAt: this.deps.now() }, this.deps.now());
    this.deps.logger.warn({ jobId: data.jobId, taskId: data.taskId, kind: data.kind, code: error.code }, error.message);
    await this.wake([data.parentQueue]);
  }

  /** The outputs (or failures) of the tasks a task consumes, and when the last of them ended. */
  private async upstreamOf(data: TaskData): Promise<{ upstream: UpstreamOutput[]; inputsEndedAt: number }> {
    const [outcomes, records] = await Promise.all([
      readChildOutcomes(this.deps.redis, this.deps.keys, { queue: data.queue, jobId: data.jobId, taskId: data.taskId, generation: data.generation }),
      // Only the inputs' records: a stitch step may consume thousands of shards of a job.
      this.deps.jobs.someTasks(
        data.jobId,
        data.upstream.map((u) => u.taskId),
      ),
    ]);
    const inputsEndedAt = data.upstream.reduce((latest, u) => Math.max(latest, records.get(u.taskId)?.finishedAt ?? 0), 0);
    const upstream = data.upstream.map((u) => {
      const outcome = outcomes.get(u.taskId);
      const record = records.get(u.taskId);
      if (outcome?.status === 'succeeded') {
        return { taskId: u.taskId, kind: u.kind, outputJson: outcome.outputJson, error: undefined, inputNames: [...u.inputNames] };
      }
      const error = record?.error ?? { code: 'TASK_FAILED', message: outcome?.status === 'failed' ? outcome.reason : 'no outcome', retryable: false };
      return { taskId: u.taskId, kind: u.kind, outputJson: '', error: { code: error.code, message: error.message, retryable: false }, inputNames: [...u.inputNames] };
    });
    return { upstream, inputsEndedAt };
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
    if (this.deps.canaries?.owns(session, result.lease)) {
      await this.deps.canaries.complete(session, result);
      return;
    }
    const lease = this.leaseOf(session, result.lease);
    if (!lease) {
      await this.rejectUnknown(session, result.lease);
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
    let settle: Settlement | undefined;
    const verifier = this.deps.verifier;
    if (verifier) {
      const task = { jobId: data.jobId, taskId: data.taskId, kind: lease.kind, params: data.params };
      let verdict: Awaited<ReturnType<Verifier['judge']>>;
      try {
        verdict = await retryTransient(() => verifier.judge(session, task, output));
      } catch (err) {
        // Redis is unreachable: keep the lease; the worker sends the result again later.
        logger.warn({ jobId: data.jobId, taskId: data.taskId, err: String(err) }, 'could not verify a result yet');
        return;
      }
      if (verdict.action === 'replicate') {
        await this.keepForVerification(session, lease, result.lease, verdict.reason);
        return;
      }
      if (verdict.action === 'fail') {
        this.deps.metrics.verificationFailed(lease.kind);
        await this.fail(session, { lease: result.lease, error: { code: 'VERIFICATION_FAILED', message: verdict.message, retryable: false }, stats: result.stats });
        await verifier.discard(task).catch(() => undefined);
        return;
      }
      output = verdict.output;
      settle = verdict.settle;
    }
    try {
      await retryTransient(() => this.deps.metrics.timeRedis('commit', () => lease.job.moveToCompleted(output, lease.lockToken, false)));
    } catch (err) {
      if (!isStaleLockError(err)) {
        // Redis is unreachable: keep the lease; the worker sends the result again later.
        logger.warn({ jobId: data.jobId, taskId: data.taskId, err: String(err) }, 'could not commit a result yet');
        return;
      }
      this.finishLease(session, lease);
      if (await this.alreadyCommitted(data, lease.leaseId)) {
        session.send({ msg: { $case: 'ack', ack: { lease: result.lease, accepted: true, reason: 'already committed' } } });
        return;
      }
      this.reject(session, result.lease, 'the lease lapsed before the result arrived; the task ran elsewhere');
      return;
    }
    this.finishLease(session, lease);
    this.counters.committed += 1;
    if (settle && verifier) {
      // After the commit, so that only the one lease that committed settles the task.
      const verdicts = settle;
      await retryTransient(() => verifier.settle({ jobId: data.jobId, taskId: data.taskId, kind: lease.kind, params: data.params }, verdicts)).catch((err: unknown) =>
        logger.warn({ jobId: data.jobId, taskId: data.taskId, err: String(err) }, 'could not record the verdicts of a verified task'),
      );
    }
    const finishedAt = now();
    // Its end is counted by updateTask below (once, whichever replica writes it first).
    this.deps.metrics.taskRan(lease.kind, 'succeeded', (finishedAt - lease.startedAt) / 1000);
    this.deps.metrics.taskLatency(lease.kind, 'succeeded', (finishedAt - lease.readySince) / 1000);
    await retryTransient(() =>
      jobs.updateTask(
        data.jobId,
        data.taskId,
        { kind: lease.kind, state: 'succeeded', workerId: session.workerId, workerName: session.name, leaseId: lease.leaseId, error: null, finishedAt, attempts: lease.attempt },
        finishedAt,
      ),
    );
    session.send({ msg: { $case: 'ack', ack: { lease: result.lease, accepted: true, reason: '' } } });
    await this.wake([data.parentQueue]);
    logger.debug({ jobId: data.jobId, taskId: data.taskId, kind: lease.kind, worker: session.name }, 'task result committed');
  }

  /** Records a failed attempt: back to the queue with backoff, or failed for good. */
  async fail(session: WorkerSession, failure: TaskFailure): Promise<void> {
    const { jobs, now } = this.deps;
    if (this.deps.canaries?.owns(session, failure.lease)) {
      this.deps.canaries.fail(session, failure);
      return;
    }
    const lease = this.leaseOf(session, failure.lease);
    if (!lease) {
      await this.rejectUnknown(session, failure.lease);
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
        this.deps.metrics.timeRedis('fail', () =>
          lease.job.moveToFailed(error.retryable ? new Error(error.message) : new UnrecoverableError(error.message), lease.lockToken, false),
        ),
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
    const ended = error.code === 'CANCELLED' ? 'cancelled' : 'failed';
    this.deps.metrics.taskRan(lease.kind, willRetry ? 'retried' : ended, (at - lease.startedAt) / 1000);
    // A retry is counted here, where its attempt's failure was committed (the lock makes that
    // one replica); an end is counted by updateTask below.
    if (willRetry) this.deps.metrics.taskFinished(lease.kind, 'retried');
    else this.deps.metrics.taskLatency(lease.kind, ended, (at - lease.readySince) / 1000);
    const nextAttemptAt = willRetry && lease.job.delay > 0 ? at + lease.job.delay : 0;
    await retryTransient(() =>
      jobs.updateTask(
        data.jobId,
        data.taskId,
        willRetry
          ? { kind: lease.kind, state: 'queued', error, attempts: lease.attempt, workerId: session.workerId, workerName: session.name, nextAttemptAt, readyAt: nextAttemptAt || at }
          : {
              kind: lease.kind,
              state: ended,
              error,
              attempts: lease.attempt,
              workerId: session.workerId,
              workerName: session.name,
              finishedAt: at,
            },
        at,
      ),
    );
    session.send({ msg: { $case: 'ack', ack: { lease: failure.lease, accepted: true, reason: willRetry ? 'will retry' : 'failed for good' } } });
    await this.wake([willRetry ? lease.queue.name : data.parentQueue]);
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
    const at = this.deps.now();
    await this.deps.jobs.updateTask(data.jobId, data.taskId, { kind: lease.kind, state: 'queued', workerId: '', workerName: '', readyAt: at }, at);
    session.send({ msg: { $case: 'ack', ack: { lease: ref, accepted: true, reason: 'handed back' } } });
    await this.wake([lease.queue.name]);
  }

  /**
   * A result kept as a verification candidate: the task goes back to its queue (at its head,
   * without using up an attempt) for a worker of another owner to run it again.
   */
  private async keepForVerification(session: WorkerSession, lease: ActiveLease, ref: Lease | undefined, reason: string): Promise<void> {
    const data = lease.job.data;
    try {
      await retryTransient(() => lease.job.moveToWait(lease.lockToken));
    } catch (err) {
      if (!isStaleLockError(err)) {
        // Redis is unreachable: keep the lease; the worker sends the result again later (the
        // candidate is stored under its worker's id, so it is not counted twice).
        this.deps.logger.warn({ jobId: data.jobId, taskId: data.taskId, err: String(err) }, 'could not re-queue a task for verification yet');
        return;
      }
      this.finishLease(session, lease);
      this.reject(session, ref, 'the lease lapsed before the result arrived; the task ran elsewhere');
      return;
    }
    this.finishLease(session, lease);
    this.counters.replicated += 1;
    const at = this.deps.now();
    this.deps.metrics.taskRan(lease.kind, 'succeeded', (at - lease.startedAt) / 1000);
    await retryTransient(() => this.deps.jobs.updateTask(data.jobId, data.taskId, { kind: lease.kind, state: 'queued', workerId: '', workerName: '', readyAt: at }, at, { onlyIfLive: true }));
    this.deps.logger.debug({ jobId: data.jobId, taskId: data.taskId, kind: lease.kind, worker: session.name, reason }, 'result kept for verification');
    session.send({ msg: { $case: 'ack', ack: { lease: ref, accepted: true, reason: `kept for verification: ${reason}` } } });
    await this.wake([lease.queue.name]);
  }

  /** A message about a lease this session does not hold: a duplicate, or a late answer. */
  private async rejectUnknown(session: WorkerSession, ref: Lease | undefined): Promise<void> {
    const ids = ref ? parseBullJobId(parseTaskRef(ref.taskRef)?.bullJobId ?? '') : undefined;
    if (ref && ids && (await this.alreadyCommitted({ jobId: ids.jobId, taskId: ids.taskId }, ref.leaseId))) {
      session.send({ msg: { $case: 'ack', ack: { lease: ref, accepted: true, reason: 'already committed' } } });
      return;
    }
    this.reject(session, ref, 'the lease is not current (it lapsed, or was never granted to this worker)');
  }

  /** Whether this very lease already committed the task (a result sent twice). */
  private async alreadyCommitted(task: { jobId: string; taskId: string }, leaseId: string): Promise<boolean> {
    const record = await this.deps.jobs.task(task.jobId, task.taskId);
    return record?.state === 'succeeded' && record.leaseId === leaseId;
  }

  private reject(session: WorkerSession, lease: Lease | undefined, reason: string): void {
    this.counters.staleRejected += 1;
    this.deps.metrics.staleResultRejected();
    const ids = lease ? parseBullJobId(parseTaskRef(lease.taskRef)?.bullJobId ?? '') : undefined;
    this.deps.logger.info(
      { ...(ids ? { jobId: ids.jobId, taskId: ids.taskId } : {}), worker: session.name, fencingToken: lease?.fencingToken, taskRef: lease?.taskRef, reason },
      'result rejected',
    );
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
    const byQueue = new Map<TaskQueue, ActiveLease[]>();
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
      const list = byQueue.get(lease.queue) ?? [];
      list.push(lease);
      byQueue.set(lease.queue, list);
    }
    for (const [queue, leases] of byQueue) {
      const failed = new Set(
        await queue.extendLocks(
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
    await this.deps.canaries?.tick(session).catch((err: unknown) => this.deps.logger.warn({ worker: session.name, err: String(err) }, 'could not send a canary'));
    return lost;
  }

  /**
   * Takes over leases a reconnecting worker still runs (its old stream may have ended on any
   * replica). Returns the leases that are no longer current.
   */
  async adopt(session: WorkerSession, running: readonly Lease[]): Promise<Lease[]> {
    const lost: Lease[] = [];
    const known = new Set((await this.deps.queues.known()).map((q) => q.name));
    for (const ref of running) {
      const parsed = parseTaskRef(ref.taskRef);
      if (!parsed || !parseBullJobId(parsed.bullJobId) || !known.has(parsed.queue)) {
        lost.push(ref);
        continue;
      }
      const queue = this.deps.queues.queue(parsed.queue);
      const job = await queue.job(parsed.bullJobId);
      const lockToken = lockTokenOf(ref.leaseId, ref.fencingToken);
      const failed = job ? await queue.extendLocks([parsed.bullJobId], [lockToken], this.deps.leaseMs) : [parsed.bullJobId];
      if (!job || failed.length > 0 || !session.slots.has(job.data.kind)) {
        lost.push(ref);
        continue;
      }
      job.token = lockToken;
      // When it became ready, for its end-to-end latency: added, or its last input ended.
      const records = await this.deps.jobs.someTasks(
        job.data.jobId,
        job.data.upstream.map((u) => u.taskId),
      );
      const readySince = job.data.upstream.reduce((latest, u) => Math.max(latest, records.get(u.taskId)?.finishedAt ?? 0), job.timestamp);
      const slot = session.slots.get(job.data.kind);
      if (slot) slot.busy += 1;
      session.leases.set(ref.leaseId, {
        leaseId: ref.leaseId,
        fencingToken: ref.fencingToken,
        lockToken,
        kind: job.data.kind,
        queue,
        taskRef: ref.taskRef,
        job,
        attempt: attemptOf(job),
        startedAt: this.deps.now(),
        readySince,
        durationMs: this.deps.leaseMs,
        vramBytes: job.data.requirements.minVramBytes,
        gpuIndex: pickGpu(session, job.data.requirements) ?? -1,
      });
      await this.deps.jobs.updateTask(job.data.jobId, job.data.taskId, { kind: job.data.kind, state: 'running', workerId: session.workerId, workerName: session.name }, this.deps.now());
    }
    return lost;
  }

  /** Runs BullMQ's stalled check on every queue: tasks whose lease lapsed go back. */
  private async checkStalled(): Promise<void> {
    for (const queue of this.queueClass.keys()) {
      try {
        const checkedAt = this.deps.now();
        const stalled = await this.deps.queues.queue(queue).moveStalledToWait();
        for (const id of stalled) await this.onStalled(queue, id, checkedAt);
        if (stalled.length > 0) await this.wake([queue]);
      } catch (err) {
        this.deps.logger.warn({ queue, err: String(err) }, 'stalled check failed');
      }
    }
  }

  private async onStalled(queue: string, bullJobId: string, checkedAt: number): Promise<void> {
    const ids = parseBullJobId(bullJobId);
    this.counters.leasesLapsed += 1;
    // The worker that held it, named by the task's record (read before it is put back).
    const held = ids ? await this.deps.jobs.task(ids.jobId, ids.taskId).catch(() => undefined) : undefined;
    this.deps.metrics.leaseExpired(parseTaskQueueName(queue)?.kind ?? queue, held?.workerName ?? '');
    for (const session of this.deps.registry.all()) {
      for (const lease of session.leases.values()) {
        // A lease granted after the check began is a new dispatch of the same task: keep it.
        if (lease.queue.name === queue && lease.job.id === bullJobId && lease.startedAt < checkedAt) {
          this.finishLease(session, lease);
          this.sendCancel(session, lease, 'lease lapsed');
        }
      }
    }
    if (!ids) return;
    this.deps.logger.warn({ jobId: ids.jobId, taskId: ids.taskId, queue }, 'lease lapsed; task back in the queue');
    const error: RecordedError = { code: 'LEASE_EXPIRED', message: 'the worker stopped renewing its lease (it died, froze or lost its connection)', retryable: true };
    const at = this.deps.now();
    await this.deps.jobs.updateTask(ids.jobId, ids.taskId, { state: 'queued', workerId: '', workerName: '', error, readyAt: at }, at).catch(() => undefined);
  }

  /** Control messages from any replica. */
  onControl(message: ControlMessage): void {
    switch (message.type) {
      case 'cancel-job': {
        const now = this.deps.now();
        this.recentlyCancelled.set(message.jobId, now);
        for (const [jobId, at] of this.recentlyCancelled) if (now - at > RECENT_CANCEL_MS) this.recentlyCancelled.delete(jobId);
        for (const session of this.deps.registry.all()) {
          for (const lease of session.leases.values()) {
            if (lease.job.data.jobId === message.jobId) this.sendCancel(session, lease, 'the job was cancelled');
          }
        }
        return;
      }
      case 'worker-connected':
        // The worker opened a newer stream on another replica: the one here is stale.
        for (const session of this.deps.registry.byWorkerId(message.workerId)) {
          if (session.sessionId !== message.sessionId) session.kick('replaced by a newer connection from the same worker');
        }
        return;
      case 'queues-added':
        void this.refreshQueues();
        return;
      case 'worker-trust-changed':
        for (const session of this.deps.registry.byWorkerId(message.workerId)) void this.deps.verifier?.load(session).catch(() => undefined);
        return;
      case 'token-revoked':
        for (const session of this.deps.registry.all()) {
          if (session.tokenId === message.tokenId && !session.closed) void this.revokeSession(session, `the worker's token ${message.tokenId} was revoked`);
        }
        return;
    }
  }

  /**
   * Disconnects a worker whose token is no longer valid: it is told to stop its tasks, its
   * stream ends with UNAUTHENTICATED, and its tasks go straight back to their queues (without
   * using up an attempt or waiting for their leases to lapse).
   */
  async revokeSession(session: WorkerSession, reason: string): Promise<void> {
    const leases = [...session.leases.values()];
    this.deps.logger.warn({ worker: session.name, workerId: session.workerId, session: session.sessionId, token: session.tokenId, running: leases.length }, `${reason}: disconnecting the worker and re-queueing its tasks`);
    // Sent before the stream ends, so the worker stops them rather than finishing for nothing.
    for (const lease of leases) this.sendCancel(session, lease, reason);
    session.kick(reason, 'UNAUTHENTICATED');
    for (const lease of leases) {
      try {
        await this.requeue(session, lease);
      } catch (err) {
        // Its lease lapses as it would for a lost worker, and BullMQ puts it back then.
        this.deps.logger.warn({ jobId: lease.job.data.jobId, taskId: lease.job.data.taskId, err: String(err) }, 'could not re-queue a task of a revoked worker');
      }
    }
  }

  /** Puts a leased task back in its queue at once; false when its lease had already lapsed. */
  private async requeue(session: WorkerSession, lease: ActiveLease): Promise<boolean> {
    const data = lease.job.data;
    try {
      await retryTransient(() => lease.job.moveToWait(lease.lockToken));
    } catch (err) {
      if (!isStaleLockError(err)) throw err;
      this.finishLease(session, lease);
      return false;
    }
    this.finishLease(session, lease);
    const at = this.deps.now();
    await this.deps.jobs.updateTask(data.jobId, data.taskId, { kind: lease.kind, state: 'queued', workerId: '', workerName: '', readyAt: at }, at, { onlyIfLive: true });
    await this.wake([lease.queue.name]);
    return true;
  }

  async close(): Promise<void> {
    if (this.stalledTimer) clearInterval(this.stalledTimer);
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    await Promise.all([...this.classes.values()].map((cd) => cd.close()));
  }
}

const QUEUE_REFRESH_MS = 10_000;
/** A replica that only workers that already answered could take is tried again after this long. */
const REPLICA_RETRY_MS = 250;
const RECENT_CANCEL_MS = 5 * 60_000;

/**
 * Which try of the task this is, counting across retries of the job: earlier runs' attempts,
 * the failed attempts of this run, and the times its worker vanished (hand-backs and
 * put-backs do not count).
 */
function attemptOf(job: BullJob<TaskData>): number {
  return (job.data.priorAttempts ?? 0) + job.attemptsMade + job.stalledCounter + 1;
}

/** Redis errors worth retrying: the connection, not the command, failed. */
function isTransient(err: unknown): boolean {
  return err instanceof Error && /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Connection is closed|Stream isn't writeable|LOADING|READONLY/.test(err.message);
}

/** Runs `fn`, retrying a few times over about three seconds while Redis is unreachable. */
export async function retryTransient<T>(fn: () => Promise<T>): Promise<T> {
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
