import { once } from 'node:events';
import { status, type ServerUnaryCall, type ServerWritableStream, type UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  batches,
  canRun,
  canTakeNow,
  DEFAULT_JOB_LIMITS,
  explainWaiting,
  InvalidJobSpecError,
  isTerminalJobState,
  plan,
  PlanError,
  retryPlan,
  taskKindInfo,
  validateJobSpec,
  type JobInputSpec,
  type JobSpec,
  type PlanInput,
  type TaskGraph,
} from '@mmgrid/core';
import {
  type CancelJobRequest,
  type ExplainJobRequest,
  type ExplainJobResponse,
  type JobState,
  type RetryJobRequest,
  type TaskExplanation,
  type GetJobRequest,
  type Job,
  type JobEvent,
  type JobServiceServer,
  type ListJobsRequest,
  type ListJobsResponse,
  type SubmitJobRequest,
  type SubmitJobResponse,
  type WatchJobRequest,
} from '@mmgrid/proto';
import { blobTenantOf, type Authenticator, type Principal } from '../auth.js';
import type { BlobGrants } from '../blob-grants.js';
import type { BlobStore } from '../blob-store.js';
import { BadRequestError, CoordinatorError, JobNotFoundError, LimitExceededError } from '../errors.js';
import type { EventHub } from '../event-hub.js';
import { toServiceError, unary } from '../grpc-errors.js';
import { jobSummaryToProto, jobToProto, specFromProto } from '../job-mapping.js';
import { checkSpecLimits, type RawSpecSizes, type SpecLimits } from '../limits.js';
import { JobStore, type JobListCursor, type JobRecord, type TaskRecord } from '../job-store.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { detectMedia, probeBlob, PROBE_HEAD_BYTES } from '../media-probe.js';
import { jobStateFromProto, taskStateToProto } from '../proto-mapping.js';
import type { Dispatcher } from '../dispatcher.js';
import { bullJobIdOf } from '../lease.js';
import type { SubmitRateLimiter } from '../submit-rate-limiter.js';
import { queueOfTask, type FlowSource, type TaskQueues } from '../task-queues.js';
import type { WorkerDirectory } from '../worker-directory.js';

export interface JobServiceDeps {
  readonly jobs: JobStore;
  readonly queues: TaskQueues;
  readonly blobs: BlobStore;
  readonly auth: Authenticator;
  readonly hub: EventHub;
  readonly logger: Logger;
  readonly now: () => number;
  readonly newJobId: () => string;
  /** Stops a job's running tasks on whichever replica holds their workers. */
  readonly cancelRunning: (jobId: string) => Promise<void>;
  readonly dispatcher: Dispatcher;
  readonly directory: WorkerDirectory;
  readonly metrics: Metrics;
  /** Which tenants may use which blobs as inputs. */
  readonly grants: BlobGrants;
  /** How many inputs, and how much text, one job may have. */
  readonly limits: SpecLimits;
  /** Each tenant's rate of submissions. */
  readonly submitRate: SubmitRateLimiter;
}

/** A submission's job as stored (see JobServiceImpl.store). */
interface StoredJob {
  readonly id: string;
  readonly storedId: string;
  readonly resolved: JobSpec;
  readonly graph: TaskGraph;
}

const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.:-]{1,128}$/;
const WATCH_POLL_MS = 5_000;
const WATCH_BATCH = 1_000;
/** Shards removed at once when their job is cancelled. */
const SHARD_REMOVE_BATCH = 500;

/** Submitters' API: submit, get, watch, cancel and list jobs. */
export class JobServiceImpl {
  /** Open WatchJob streams, ended with UNAVAILABLE when this replica shuts down. */
  private readonly watchers = new Set<ServerWritableStream<WatchJobRequest, JobEvent>>();

  constructor(private readonly deps: JobServiceDeps) {}

  /**
   * Ends every open watch with UNAVAILABLE, which clients take as "resume elsewhere": they
   * reconnect (to another replica, or to this one once it is back) after the last event they
   * saw. A watch that was simply cut would end in CANCELLED, and a graceful shutdown would
   * wait for streams that end only with their jobs.
   */
  endWatches(): void {
    for (const call of this.watchers) {
      call.emit('error', { code: status.UNAVAILABLE, details: 'this coordinator replica is shutting down; resume the watch on another replica' });
    }
    this.watchers.clear();
  }

  handlers(): JobServiceServer & UntypedServiceImplementation {
    const { logger } = this.deps;
    return {
      submitJob: unary(logger, 'SubmitJob', (call: ServerUnaryCall<SubmitJobRequest, SubmitJobResponse>) => this.counted(this.submit(call))),
      getJob: unary(logger, 'GetJob', (call: ServerUnaryCall<GetJobRequest, Job>) => this.getJob(call)),
      cancelJob: unary(logger, 'CancelJob', (call: ServerUnaryCall<CancelJobRequest, Job>) => this.cancel(call)),
      listJobs: unary(logger, 'ListJobs', (call: ServerUnaryCall<ListJobsRequest, ListJobsResponse>) => this.list(call)),
      retryJob: unary(logger, 'RetryJob', (call: ServerUnaryCall<RetryJobRequest, Job>) => this.counted(this.retry(call))),
      explainJob: unary(logger, 'ExplainJob', (call: ServerUnaryCall<ExplainJobRequest, ExplainJobResponse>) => this.explain(call)),
      watchJob: (call: ServerWritableStream<WatchJobRequest, JobEvent>) => {
        // An 'error' event makes grpc-js end the call with the error's status; destroy(err) would
        // drop the stream without sending one, and the client would wait for ever.
        this.watch(call).catch((err: unknown) => call.emit('error', toServiceError(err, logger, 'WatchJob')));
      },
    };
  }

  /** Counts a refusal for a limit by the limit (mmgrid_limit_refusals_total). */
  private async counted<T>(answer: Promise<T>): Promise<T> {
    try {
      return await answer;
    } catch (err) {
      if (err instanceof LimitExceededError) this.deps.metrics.limitRefused(err.limit);
      throw err;
    }
  }

  private async submit(call: ServerUnaryCall<SubmitJobRequest, SubmitJobResponse>): Promise<SubmitJobResponse> {
    const { jobs, logger, limits } = this.deps;
    const principal = await this.deps.auth.authenticate(call.metadata, 'submitter');
    const request = call.request;
    const key = request.idempotencyKey;
    if (key !== '' && !IDEMPOTENCY_KEY.test(key)) {
      throw new BadRequestError('idempotency_key must be 1 to 128 letters, digits, "_", ".", ":" or "-"');
    }
    const raw = specFromProto(request.spec) as RawSpecSizes;
    // Too many inputs, or too much text, is a limit (RESOURCE_EXHAUSTED), told before the
    // spec's shape is checked; the validation below then never meets one.
    checkSpecLimits(raw, limits);
    raw.inputs.forEach((input, i) => {
      if (input.source === undefined) throw new InvalidJobSpecError(`inputs[${i}]`, 'give the input either a blob (uploaded bytes) or text');
    });
    const spec = validateJobSpec(raw, { ...DEFAULT_JOB_LIMITS, maxInputs: limits.maxInputsPerJob, maxPromptChars: limits.maxPromptChars, maxInlineTextChars: limits.maxTextInputChars });
    // A retried submission (its answer was lost, or it met UNAVAILABLE) is answered from the
    // job the key already names, before the inputs are stat'ed and probed again (and without
    // counting against the tenant's rate: it submits nothing new).
    const knownId = await jobs.jobOfIdempotencyKey(principal.tenant, key);
    const known = knownId === undefined ? undefined : await jobs.get(knownId);
    if (known) return { job: await this.resubmitted(known, principal) };
    // A tenant at its quota is told so before it spends any of its rate.
    await jobs.checkRoom(principal.tenant);
    const allowance = await this.deps.submitRate.take(principal.tenant);
    let stored: StoredJob;
    try {
      stored = await this.store(spec, principal, key);
    } catch (err) {
      // Refused after all (bad inputs, a full quota): the submission used none of the rate.
      await allowance.giveBack().catch(() => undefined);
      throw err;
    }
    const { id, storedId, resolved, graph } = stored;
    const earlier = storedId === id ? undefined : await jobs.get(storedId);
    if (earlier) return { job: await this.resubmitted(earlier, principal) };
    await this.enqueue({ id, tenant: principal.tenant, spec: resolved, graph, generation: 0, rerun: undefined });
    // The acceptance and the answer's reads go to Redis together (one round trip).
    const [accepted, job] = await Promise.all([jobs.accepted(storedId), this.load(storedId, principal)]);
    // Counted by whichever takes the job off the acceptance list: this call, or a sweep that
    // finished an interrupted submission meanwhile.
    if (accepted) this.deps.metrics.jobSubmitted(resolved.pipeline, principal.tenant);
    logger.info({ jobId: id, tenant: principal.tenant, tasks: graph.tasks.length, pipeline: spec.pipeline }, 'job accepted');
    return { job };
  }

  /**
   * Detects the inputs' types, plans the job and stores it (throwing LimitExceededError, with
   * nothing stored, when the tenant's quota of live jobs is full). `storedId` is another
   * job's id when the idempotency key named one meanwhile.
   */
  private async store(spec: JobSpec, principal: Principal, key: string): Promise<StoredJob> {
    const { resolved, planInputs } = await this.resolveInputs(spec, principal);
    const offered = await this.deps.directory.offeredKinds();
    const graph = plan({ pipeline: spec.pipeline, inputs: planInputs, prompt: spec.prompt, params: spec.params, steps: spec.steps, offered });
    const id = this.deps.newJobId();
    const storedId = await this.deps.jobs.create({ id, tenant: principal.tenant, spec: resolved, inputs: planInputs, graph, createdAt: this.deps.now(), idempotencyKey: key });
    return { id, storedId, resolved, graph };
  }

  /**
   * The answer to a submission whose idempotency key names an earlier job. Adding the flow is
   * idempotent, so a retried submission finishes what a failed one began.
   */
  private async resubmitted(earlier: JobRecord, principal: Principal): Promise<Job> {
    if (!isTerminalJobState(earlier.state)) {
      await this.enqueue(earlier);
      // The first submission never got this far: this one completes its acceptance.
      if ((await this.deps.jobs.accepted(earlier.id)) && earlier.generation === 0) this.deps.metrics.jobSubmitted(earlier.pipeline, earlier.tenant);
    }
    return this.load(earlier.id, principal);
  }

  /** Adds a job's tasks to their queues and wakes the dispatchers of every replica. */
  private async enqueue(job: FlowSource): Promise<void> {
    const fresh = await this.deps.queues.addJob(job);
    // Both are publishes on one connection: sent together, delivered in this order.
    await Promise.all([
      fresh.length > 0 ? this.deps.hub.broadcast({ type: 'queues-added' }) : undefined,
      this.deps.dispatcher.wake(job.graph.tasks.map((t) => queueOfTask(t, job.tenant))),
    ]);
  }

  /** Checks every blob input exists, detects its media type from its bytes, and fixes its size. */
  private async resolveInputs(spec: JobSpec, principal: Principal): Promise<{ resolved: JobSpec; planInputs: PlanInput[] }> {
    const { blobs } = this.deps;
    // A blob another tenant uploaded is, to this one, a blob not uploaded.
    const tenant = blobTenantOf(principal);
    const shas = spec.inputs.flatMap((i) => (i.source.type === 'blob' ? [i.source.blob.sha256] : []));
    const readable = tenant === undefined ? undefined : await this.deps.grants.held(tenant, shas);
    const inputs: JobInputSpec[] = [];
    const planInputs: PlanInput[] = [];
    for (const [i, input] of spec.inputs.entries()) {
      if (input.source.type === 'text') {
        inputs.push(input);
        planInputs.push({ name: input.name, modality: 'text', mediaType: 'text/plain', bytes: Buffer.byteLength(input.source.text) });
        continue;
      }
      const declared = input.source.blob;
      const stat = readable === undefined || readable.has(declared.sha256) ? await blobs.stat(declared.sha256) : undefined;
      if (!stat) {
        throw new CoordinatorError('FAILED_PRECONDITION', `inputs[${i}] "${input.name}": blob ${declared.sha256} is not uploaded; upload it with BlobService.PutBlob first`);
      }
      if (declared.size !== 0 && declared.size !== stat.size) {
        throw new InvalidJobSpecError(`inputs[${i}].blob.size`, `declared ${declared.size} bytes but blob ${declared.sha256} has ${stat.size}`);
      }
      const detected = await detectMedia(input.name, await blobs.readHead(declared.sha256, PROBE_HEAD_BYTES));
      let modality = detected.modality;
      let durationSec: number | undefined;
      if (modality === 'audio' || modality === 'video') {
        // ffprobe settles what magic numbers cannot: a WebM or MP4 with only sound is a
        // recording; a damaged file is refused here rather than failing on a worker. A store
        // without local files (S3) has the blob copied to a temporary file for it.
        const av = await probeBlob(blobs, stat.sha256, input.name, detected.mediaType, { logger: this.deps.logger });
        if (av) {
          durationSec = av.durationSec;
          if (modality === 'video' && !av.hasVideo && av.hasAudio) modality = 'audio';
        }
      }
      inputs.push({ name: input.name, source: { type: 'blob', blob: { sha256: stat.sha256, size: stat.size, mediaType: detected.mediaType, name: input.name } } });
      planInputs.push({ name: input.name, modality, mediaType: detected.mediaType, durationSec, bytes: stat.size });
    }
    return { resolved: { ...spec, inputs }, planInputs };
  }

  /** A job the principal may see; another tenant's job is NOT_FOUND, not a hint that it exists. */
  private async visible(jobId: string, principal: Principal): Promise<JobRecord> {
    if (jobId === '') throw new BadRequestError('job_id is required');
    const record = await this.deps.jobs.get(jobId);
    if (!record || (record.tenant !== principal.tenant && !principal.roles.includes('admin'))) throw new JobNotFoundError(jobId);
    return record;
  }

  private async load(jobId: string, principal: Principal): Promise<Job> {
    // Read together; the tasks are only used once the job is known to be the caller's.
    const [record, tasks] = await Promise.all([this.visible(jobId, principal), this.deps.jobs.tasks(jobId)]);
    return jobToProto(record, tasks);
  }

  private async getJob(call: ServerUnaryCall<GetJobRequest, Job>): Promise<Job> {
    const principal = await this.deps.auth.authenticate(call.metadata, 'submitter');
    return this.load(call.request.jobId, principal);
  }

  private async cancel(call: ServerUnaryCall<CancelJobRequest, Job>): Promise<Job> {
    const { jobs, queues, now, logger } = this.deps;
    const principal = await this.deps.auth.authenticate(call.metadata, 'submitter');
    const record = await this.visible(call.request.jobId, principal);
    if (isTerminalJobState(record.state)) return this.load(record.id, principal);
    const reason = call.request.reason.trim() || 'cancelled by the submitter';
    const at = now();
    const changed = await jobs.finish(record.id, 'cancelled', { error: { code: 'CANCELLED', message: reason } }, at);
    if (changed) {
      // Queued tasks are removed, leaves first (the shards stitch steps added at run time, then
      // the graph's tasks in order); running ones are told to stop wherever they run.
      const tasks = await jobs.tasks(record.id);
      await this.removeShards(record.id, tasks);
      for (const task of record.graph.tasks) {
        const generation = tasks.get(task.id)?.generation ?? 0;
        await queues
          .queue(queueOfTask(task, record.tenant))
          .queue.remove(bullJobIdOf(record.id, task.id, generation))
          .catch(() => 0);
      }
      await this.deps.cancelRunning(record.id);
      for (const [taskId, t] of tasks) {
        if (t.state === 'queued' || t.state === 'blocked') await jobs.updateTask(record.id, taskId, { kind: t.kind, state: 'cancelled', finishedAt: at }, at, { onlyIfLive: true });
      }
      logger.info({ jobId: record.id, reason }, 'job cancelled');
    }
    return this.load(record.id, principal);
  }

  /**
   * Removes the queued shards of a cancelled job (they are not in its graph). Running ones are
   * locked, so BullMQ keeps them: cancelRunning stops them like any running task. Without
   * this, one running shard keeps BullMQ from removing its stitch step with the step's
   * children, and every other shard would stay queued only to be fetched and failed.
   */
  private async removeShards(jobId: string, tasks: ReadonlyMap<string, TaskRecord>): Promise<void> {
    const live = [...tasks].filter(([, t]) => t.shardOf !== undefined && t.queue !== undefined && (t.state === 'queued' || t.state === 'blocked' || t.state === 'running'));
    for (const batch of batches(live, SHARD_REMOVE_BATCH)) {
      await Promise.all(
        batch.map(([taskId, t]) =>
          this.deps.queues
            .queue(t.queue ?? '')
            .queue.remove(bullJobIdOf(jobId, taskId, t.generation), { removeChildren: false })
            .catch(() => 0),
        ),
      );
    }
  }

  private async list(call: ServerUnaryCall<ListJobsRequest, ListJobsResponse>): Promise<ListJobsResponse> {
    const principal = await this.deps.auth.authenticate(call.metadata, 'submitter');
    const req = call.request;
    const pageSize = req.pageSize === 0 ? 50 : Math.min(req.pageSize, 500);
    const after = req.pageToken === '' ? undefined : decodePageToken(req.pageToken);
    let tenant: string | undefined = principal.tenant;
    if (req.tenant !== '' && req.tenant !== principal.tenant) {
      // The same answer whether or not the tenant exists.
      if (!principal.roles.includes('admin')) throw new CoordinatorError('NOT_FOUND', `tenant ${req.tenant} not found`);
      tenant = req.tenant;
    }
    const states = new Set(req.states.map((s: JobState) => jobStateFromProto(s)));
    const page = await this.deps.jobs.list(tenant, {
      after,
      limit: pageSize,
      accept: (j) => (states.size === 0 || states.has(j.state)) && (req.pipeline === '' || j.pipeline === req.pipeline),
    });
    return { jobs: page.jobs.map(jobSummaryToProto), nextPageToken: page.next === undefined ? '' : encodePageToken(page.next) };
  }

  /** Runs the failed tasks of an ended job again, and the steps that consume them. */
  private async retry(call: ServerUnaryCall<RetryJobRequest, Job>): Promise<Job> {
    const { jobs, logger, now } = this.deps;
    const principal = await this.deps.auth.authenticate(call.metadata, 'submitter');
    const record = await this.visible(call.request.jobId, principal);
    if (record.state === 'cancelled') throw new CoordinatorError('FAILED_PRECONDITION', `job ${record.id} was cancelled; submit it again instead`);
    if (!isTerminalJobState(record.state)) throw new CoordinatorError('FAILED_PRECONDITION', `job ${record.id} is still ${record.state}; retry it once it has ended`);
    const records = await jobs.tasks(record.id);
    let rerun: Set<string>;
    try {
      rerun = retryPlan(record.graph, new Map([...records].map(([id, r]) => [id, r.state])));
    } catch (err) {
      if (err instanceof PlanError) throw new CoordinatorError('FAILED_PRECONDITION', `job ${record.id}: ${err.message}`);
      throw err;
    }
    // The outcomes of the tasks that do not run again were kept with the job when it was
    // assembled; the retry drops those of the tasks that do.
    if (!(await jobs.retry(record, rerun, now()))) throw new CoordinatorError('FAILED_PRECONDITION', `job ${record.id} changed meanwhile; look at it again`);
    const updated = await jobs.get(record.id);
    if (updated) {
      await this.enqueue({ ...updated, priorAttempts: JobStore.priorAttempts(await jobs.tasks(record.id)) });
      await jobs.accepted(record.id);
    }
    logger.info({ jobId: record.id, generation: record.generation + 1, tasks: rerun.size }, 'job retried');
    return this.load(record.id, principal);
  }

  /** Per task: why it waits, or where it runs. */
  private async explain(call: ServerUnaryCall<ExplainJobRequest, ExplainJobResponse>): Promise<ExplainJobResponse> {
    const principal = await this.deps.auth.authenticate(call.metadata, 'submitter');
    const record = await this.visible(call.request.jobId, principal);
    const [records, fleet] = await Promise.all([this.deps.jobs.tasks(record.id), this.deps.directory.capabilities()]);
    const now = this.deps.now();
    const tasks: TaskExplanation[] = [];
    for (const task of record.graph.tasks) {
      const r = records.get(task.id);
      const state = r?.state ?? 'queued';
      const capable = fleet.filter((w) => !w.draining && canRun(w, task.kind, task.requirements).ok);
      const free = capable.filter((w) => canTakeNow(w, task.kind, task.requirements));
      let reason: string;
      let position = 0;
      switch (state) {
        case 'blocked': {
          const waiting = task.dependsOn.filter((d) => !['succeeded', 'failed', 'cancelled'].includes(records.get(d)?.state ?? ''));
          reason = `waiting for its inputs: ${waiting.map((d) => `${d} (${records.get(d)?.state ?? 'queued'})`).join(', ') || 'all ended; it runs next'}`;
          break;
        }
        case 'queued': {
          if (taskKindInfo(task.kind)?.placement === 'coordinator') {
            reason = 'runs in the coordinator once its inputs end';
            break;
          }
          const queue = this.deps.queues.queue(queueOfTask(task, record.tenant)).queue;
          const counts = await queue.getJobCounts('waiting', 'prioritized');
          position = (counts['waiting'] ?? 0) + (counts['prioritized'] ?? 0);
          if (r && r.nextAttemptAt > now) {
            reason = `retrying in ${((r.nextAttemptAt - now) / 1000).toFixed(1)} s after attempt ${r.attempts} failed: ${r.error?.message ?? 'unknown error'}`;
          } else {
            reason = explainWaiting(task.kind, task.requirements, fleet);
            if (position > 0 && free.length === 0 && capable.length > 0) reason += `; ${position} task${position === 1 ? '' : 's'} waiting in its queue`;
          }
          break;
        }
        case 'running':
          reason = `running on ${r?.workerName || r?.workerId || 'a worker'} (attempt ${r?.attempts ?? 1}) for ${(((now - (r?.startedAt ?? now)) || 0) / 1000).toFixed(1)} s`;
          break;
        case 'succeeded':
          reason = `succeeded on ${r?.workerName || r?.workerId || 'the coordinator'}`;
          break;
        case 'failed':
          reason = `failed after ${r?.attempts ?? 0} attempt${r?.attempts === 1 ? '' : 's'}: ${r?.error ? `${r.error.code}: ${r.error.message}` : 'no reason recorded'}`;
          break;
        case 'cancelled':
          reason = 'cancelled';
          break;
      }
      tasks.push({
        taskId: task.id,
        kind: task.kind,
        state: taskStateToProto(state),
        reason,
        requirements: { ...task.requirements },
        capableWorkers: capable.length,
        freeCapableWorkers: free.length,
        queuePosition: position,
      });
    }
    return { jobId: record.id, tasks };
  }

  /** Replays a job's events, then follows new ones until the job ends. */
  private async watch(call: ServerWritableStream<WatchJobRequest, JobEvent>): Promise<void> {
    const { jobs, hub } = this.deps;
    const principal = await this.deps.auth.authenticate(call.metadata, 'submitter');
    const record = await this.visible(call.request.jobId, principal);
    let after = call.request.afterEventId;
    let pending = true;
    let wake: (() => void) | undefined;
    let stopped = false;
    const gone = new Promise<void>((resolve) => {
      const stop = (): void => {
        stopped = true;
        wake?.();
        resolve();
      };
      call.once('cancelled', stop);
      call.once('close', stop);
    });
    const unlisten = hub.listen(record.id, () => {
      pending = true;
      wake?.();
    });
    this.watchers.add(call);
    try {
      while (!stopped) {
        if (!pending) {
          // A plain timer, not an aborted delay: a busy job wakes its watchers thousands of
          // times a second, and each abort would build an AbortError.
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, WATCH_POLL_MS);
            wake = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wake = undefined;
          // Notices that arrived together (one read from the subscriber's socket) are read
          // together.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        pending = false;
        const { state, events } = await jobs.stateAndEvents(record.id, after, WATCH_BATCH);
        for (const { id, event } of events) {
          if (stopped) return;
          after = id;
          if (!call.write(event)) await Promise.race([once(call, 'drain'), gone]);
        }
        if (events.length === WATCH_BATCH) {
          pending = true;
          continue;
        }
        // Ended (or expired from Redis): every event has been sent.
        if (state === undefined || isTerminalJobState(state)) break;
      }
      if (!stopped) call.end();
    } finally {
      this.watchers.delete(call);
      unlisten();
    }
  }
}

/** A ListJobs page token: where the next page starts in the job index, opaque to callers. */
function encodePageToken(cursor: JobListCursor): string {
  return Buffer.from(`${cursor.createdAt}:${cursor.id}`).toString('base64url');
}

function decodePageToken(token: string): JobListCursor {
  const match = /^(\d{1,15}):([0-9A-Za-z_-]{1,128})$/.exec(Buffer.from(token, 'base64url').toString());
  if (!match?.[1] || !match[2]) throw new BadRequestError('page_token is not one this server issued');
  return { createdAt: Number(match[1]), id: match[2] };
}
