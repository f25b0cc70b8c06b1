import { once } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { ServerUnaryCall, ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  InvalidJobSpecError,
  isTerminalJobState,
  plan,
  validateJobSpec,
  type JobInputSpec,
  type JobSpec,
  type PlanInput,
} from '@mmgrid/core';
import {
  type CancelJobRequest,
  type JobState,
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
import type { Authenticator, Principal } from '../auth.js';
import type { BlobStore } from '../blob-store.js';
import { BadRequestError, CoordinatorError, JobNotFoundError } from '../errors.js';
import type { EventHub } from '../event-hub.js';
import { toServiceError, unary } from '../grpc-errors.js';
import { jobSummaryToProto, jobToProto, specFromProto } from '../job-mapping.js';
import type { JobRecord, JobStore } from '../job-store.js';
import type { Logger } from '../logger.js';
import { detectMedia, PROBE_HEAD_BYTES } from '../media-probe.js';
import { jobStateFromProto } from '../proto-mapping.js';
import type { TaskQueues } from '../task-queues.js';

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
}

const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.:-]{1,128}$/;
const WATCH_POLL_MS = 5_000;
const WATCH_BATCH = 1_000;

/** Submitters' API: submit, get, watch, cancel and list jobs. */
export class JobServiceImpl {
  constructor(private readonly deps: JobServiceDeps) {}

  handlers(): JobServiceServer & UntypedServiceImplementation {
    const { logger } = this.deps;
    return {
      submitJob: unary(logger, 'SubmitJob', (call: ServerUnaryCall<SubmitJobRequest, SubmitJobResponse>) => this.submit(call)),
      getJob: unary(logger, 'GetJob', (call: ServerUnaryCall<GetJobRequest, Job>) => this.getJob(call)),
      cancelJob: unary(logger, 'CancelJob', (call: ServerUnaryCall<CancelJobRequest, Job>) => this.cancel(call)),
      listJobs: unary(logger, 'ListJobs', (call: ServerUnaryCall<ListJobsRequest, ListJobsResponse>) => this.list(call)),
      watchJob: (call: ServerWritableStream<WatchJobRequest, JobEvent>) => {
        this.watch(call).catch((err: unknown) => call.destroy(toServiceError(err, logger, 'WatchJob')));
      },
    };
  }

  private async submit(call: ServerUnaryCall<SubmitJobRequest, SubmitJobResponse>): Promise<SubmitJobResponse> {
    const { jobs, queues, logger, now } = this.deps;
    const principal = await this.deps.auth.authenticate(call.metadata, 'submitter');
    const request = call.request;
    const key = request.idempotencyKey;
    if (key !== '' && !IDEMPOTENCY_KEY.test(key)) {
      throw new BadRequestError('idempotency_key must be 1 to 128 letters, digits, "_", ".", ":" or "-"');
    }
    const raw = specFromProto(request.spec) as { inputs: { source: unknown }[] };
    raw.inputs.forEach((input, i) => {
      if (input.source === undefined) throw new InvalidJobSpecError(`inputs[${i}]`, 'give the input either a blob (uploaded bytes) or text');
    });
    const spec = validateJobSpec(raw);
    const { resolved, planInputs } = await this.resolveInputs(spec);
    const graph = plan({ pipeline: spec.pipeline, inputs: planInputs, prompt: spec.prompt });
    const id = this.deps.newJobId();
    const createdAt = now();
    const storedId = await jobs.create({ id, tenant: principal.tenant, spec: resolved, inputs: planInputs, graph, createdAt, idempotencyKey: key });
    const earlier = storedId === id ? undefined : await jobs.get(storedId);
    if (!earlier || !isTerminalJobState(earlier.state)) {
      // Adding the flow is idempotent, so a retried submission finishes what a failed one began.
      await queues.addJob(earlier ?? { id, tenant: principal.tenant, spec: resolved, graph });
      await jobs.accepted(storedId);
    }
    if (!earlier) logger.info({ jobId: id, tenant: principal.tenant, tasks: graph.tasks.length, pipeline: spec.pipeline }, 'job accepted');
    return { job: await this.load(storedId, principal) };
  }

  /** Checks every blob input exists, detects its media type from its bytes, and fixes its size. */
  private async resolveInputs(spec: JobSpec): Promise<{ resolved: JobSpec; planInputs: PlanInput[] }> {
    const { blobs } = this.deps;
    const inputs: JobInputSpec[] = [];
    const planInputs: PlanInput[] = [];
    for (const [i, input] of spec.inputs.entries()) {
      if (input.source.type === 'text') {
        inputs.push(input);
        planInputs.push({ name: input.name, modality: 'text', mediaType: 'text/plain' });
        continue;
      }
      const declared = input.source.blob;
      const stat = await blobs.stat(declared.sha256);
      if (!stat) {
        throw new CoordinatorError('FAILED_PRECONDITION', `inputs[${i}] "${input.name}": blob ${declared.sha256} is not uploaded; upload it with BlobService.PutBlob first`);
      }
      if (declared.size !== 0 && declared.size !== stat.size) {
        throw new InvalidJobSpecError(`inputs[${i}].blob.size`, `declared ${declared.size} bytes but blob ${declared.sha256} has ${stat.size}`);
      }
      const detected = await detectMedia(input.name, await blobs.readHead(declared.sha256, PROBE_HEAD_BYTES));
      inputs.push({ name: input.name, source: { type: 'blob', blob: { sha256: stat.sha256, size: stat.size, mediaType: detected.mediaType, name: input.name } } });
      planInputs.push({ name: input.name, modality: detected.modality, mediaType: detected.mediaType });
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
    const record = await this.visible(jobId, principal);
    return jobToProto(record, await this.deps.jobs.tasks(jobId));
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
      // Queued tasks are removed (leaves first); running ones are told to stop wherever they run.
      for (const task of record.graph.tasks) {
        await queues.queue(task.kind).remove(`${record.id}-${task.id}`).catch(() => 0);
      }
      await this.deps.cancelRunning(record.id);
      const tasks = await jobs.tasks(record.id);
      for (const [taskId, t] of tasks) {
        if (t.state === 'queued' || t.state === 'blocked') await jobs.updateTask(record.id, taskId, { kind: t.kind, state: 'cancelled', finishedAt: at }, at);
      }
      logger.info({ jobId: record.id, reason }, 'job cancelled');
    }
    return this.load(record.id, principal);
  }

  private async list(call: ServerUnaryCall<ListJobsRequest, ListJobsResponse>): Promise<ListJobsResponse> {
    const principal = await this.deps.auth.authenticate(call.metadata, 'submitter');
    const req = call.request;
    const pageSize = req.pageSize === 0 ? 50 : Math.min(req.pageSize, 500);
    const offset = req.pageToken === '' ? 0 : Number(req.pageToken);
    if (!Number.isInteger(offset) || offset < 0) throw new BadRequestError('page_token is not one this server issued');
    let tenant: string | undefined = principal.tenant;
    if (req.tenant !== '' && req.tenant !== principal.tenant) {
      if (!principal.roles.includes('admin')) throw new JobNotFoundError(`tenant ${req.tenant}`);
      tenant = req.tenant;
    }
    const states = new Set(req.states.map((s: JobState) => jobStateFromProto(s)));
    const page = await this.deps.jobs.list(tenant, offset, pageSize);
    const jobs = page.jobs.filter((j) => (states.size === 0 || states.has(j.state)) && (req.pipeline === '' || j.pipeline === req.pipeline));
    return { jobs: jobs.map(jobSummaryToProto), nextPageToken: page.next === undefined ? '' : String(page.next) };
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
    try {
      while (!stopped) {
        if (!pending) {
          const ac = new AbortController();
          await Promise.race([
            new Promise<void>((resolve) => {
              wake = resolve;
            }),
            delay(WATCH_POLL_MS, undefined, { signal: ac.signal }).catch(() => undefined),
          ]);
          ac.abort();
          wake = undefined;
        }
        pending = false;
        // The state is read before the events: if it was final then, its event is among them.
        const state = await jobs.state(record.id);
        const events = await jobs.events(record.id, after, WATCH_BATCH);
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
      unlisten();
    }
  }
}
