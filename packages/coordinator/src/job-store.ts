import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import {
  NO_REQUIREMENTS,
  type BlobRef,
  type JobResultDoc,
  type JobSpec,
  type JobStateName,
  type PlanInput,
  type TaskError,
  type TaskGraph,
  type TaskNode,
  type TaskRequirements,
  type TaskStateName,
} from '@mmgrid/core';
import { JobEvent, type JobStateChanged, type TaskProgressed, type TaskStateChanged } from '@mmgrid/proto';
import type { Keys } from './keys.js';
import { liveJobsFull } from './limits.js';
import { COUNT_LIVE_JOBS, CREATE_JOB, FINISH_JOB, RETRY_JOB, UPDATE_TASK } from './lua.js';
import type { JobOutcome, Metrics, TaskOutcome } from './metrics.js';
import { jobStateToProto, taskStateToProto } from './proto-mapping.js';

/** What went wrong with a task, as recorded. */
export interface RecordedError extends TaskError {
  readonly retryable: boolean;
}

/** A task's bookkeeping for people (GetJob, watch); the task itself lives in BullMQ. */
export interface TaskRecord {
  readonly kind: string;
  readonly state: TaskStateName;
  readonly attempts: number;
  readonly workerId: string;
  readonly workerName: string;
  readonly leaseId: string;
  readonly fencingToken: number;
  readonly error: RecordedError | null;
  readonly queuedAt: number;
  readonly startedAt: number;
  readonly finishedAt: number;
  /** When a retry waits out its backoff: when it may run again (0 otherwise). */
  readonly nextAttemptAt: number;
  /**
   * When the task last went back to its queue ready to run (a failed attempt's retry after
   * its backoff, a lapsed lease, a hand-back); absent before any. For the queueing metric.
   */
  readonly readyAt?: number;
  /** The job generation the task last ran in (see RetryJob). */
  readonly generation: number;
  /** Attempts made in earlier generations. */
  readonly priorAttempts?: number;
  /** How many times a result of this task was committed; anything but 0 or 1 is a bug. */
  readonly commits: number;
  /** For a shard added at run time: the planned task it belongs to, its position and inputs. */
  readonly shardOf?: string;
  readonly shardIndex?: number;
  readonly inputNames?: readonly string[];
  /** For a shard: the BullMQ queue it was added to (its kind, requirements and tenant). */
  readonly queue?: string;
}

/**
 * Task record fields left out of the stored JSON while they have these values: a queued
 * task's record is then its kind, state and queue time, not all fourteen fields, which
 * matters when a backlog holds a million of them. UPDATE_TASK and RETRY_JOB leave them out
 * the same way (TASK_RECORD_DEFAULTS_LUA).
 */
const TASK_RECORD_DEFAULTS = {
  attempts: 0,
  workerId: '',
  workerName: '',
  leaseId: '',
  fencingToken: 0,
  error: null,
  startedAt: 0,
  finishedAt: 0,
  nextAttemptAt: 0,
  generation: 0,
  commits: 0,
} as const satisfies Partial<TaskRecord>;

/** A task record as stored: without the fields that have their default. */
export function packTaskRecord(record: TaskRecord | Omit<TaskRecord, 'kind'>): string {
  const defaults: Readonly<Record<string, unknown>> = TASK_RECORD_DEFAULTS;
  return JSON.stringify(record, (key, value: unknown) => (key !== '' && key in defaults && defaults[key] === value ? undefined : value));
}

/** A stored task record, whole again. */
export function parseTaskRecord(json: string): TaskRecord {
  return { ...TASK_RECORD_DEFAULTS, ...(JSON.parse(json) as Partial<TaskRecord>) } as TaskRecord;
}

/**
 * A job's graph as stored: each task without the fields that have their default (no inputs,
 * no parameters, no dependencies, not optional, requirements that match NO_REQUIREMENTS), so
 * a 10,000-shard job's record holds what differs between its tasks.
 */
export function packGraph(graph: TaskGraph): string {
  return JSON.stringify({
    ...graph,
    tasks: graph.tasks.map((t) => {
      const requirements = Object.fromEntries(Object.entries(t.requirements).filter(([k, v]) => NO_REQUIREMENTS[k as keyof TaskRequirements] !== v));
      return {
        id: t.id,
        kind: t.kind,
        ...(t.inputNames.length > 0 ? { inputNames: t.inputNames } : {}),
        ...(Object.keys(t.params).length > 0 ? { params: t.params } : {}),
        ...(t.dependsOn.length > 0 ? { dependsOn: t.dependsOn } : {}),
        ...(t.optional ? { optional: true } : {}),
        ...(Object.keys(requirements).length > 0 ? { requirements } : {}),
        timeoutMs: t.timeoutMs,
        ...(t.intermediate !== undefined ? { intermediate: t.intermediate } : {}),
        ...(t.label !== undefined ? { label: t.label } : {}),
      };
    }),
  });
}

/** A stored graph, whole again (a graph stored whole reads the same). */
export function parseGraph(json: string): TaskGraph {
  const stored = JSON.parse(json) as Omit<TaskGraph, 'tasks'> & { tasks?: (Pick<TaskNode, 'id' | 'kind' | 'timeoutMs'> & Partial<TaskNode>)[] };
  return {
    ...stored,
    tasks: (stored.tasks ?? []).map((t) => ({
      ...t,
      inputNames: t.inputNames ?? [],
      params: t.params ?? {},
      dependsOn: t.dependsOn ?? [],
      optional: t.optional ?? false,
      requirements: { ...NO_REQUIREMENTS, ...t.requirements },
    })),
  };
}

/** The record of a task that has not run yet. */
export function newTaskRecord(kind: string, state: 'queued' | 'blocked', queuedAt: number, generation: number): TaskRecord {
  return { ...TASK_RECORD_DEFAULTS, kind, state, queuedAt, generation };
}

export interface JobRecord {
  readonly id: string;
  readonly tenant: string;
  readonly state: JobStateName;
  readonly pipeline: string;
  readonly priority: number;
  readonly createdAt: number;
  readonly finishedAt: number;
  readonly spec: JobSpec;
  readonly inputs: readonly PlanInput[];
  readonly graph: TaskGraph;
  readonly result: { readonly doc: JobResultDoc; readonly blobs: readonly BlobRef[] } | null;
  readonly error: TaskError | null;
  /** How many times the job was retried. */
  readonly generation: number;
  /** The tasks the latest retry runs again (undefined: every task, the first run). */
  readonly rerun: readonly string[] | undefined;
}

/** The summary fields ListJobs reads, without spec, plan or result. */
export type JobSummary = Pick<JobRecord, 'id' | 'tenant' | 'state' | 'pipeline' | 'priority' | 'createdAt' | 'finishedAt' | 'error' | 'inputs'>;

/** A position in a job index: a job's creation time (the index's score) and id. */
export interface JobListCursor {
  readonly createdAt: number;
  readonly id: string;
}

export interface JobListQuery {
  /** Start after this job (exclusive); undefined: at the newest. */
  readonly after: JobListCursor | undefined;
  readonly limit: number;
  readonly accept: (job: JobSummary) => boolean;
}

export interface StoredEvent {
  readonly id: string;
  readonly event: JobEvent;
}

export interface NewJob {
  readonly id: string;
  readonly tenant: string;
  readonly spec: JobSpec;
  readonly inputs: readonly PlanInput[];
  readonly graph: TaskGraph;
  readonly createdAt: number;
  readonly idempotencyKey: string;
}

type EventBody = { $case: 'jobState'; jobState: JobStateChanged } | { $case: 'taskState'; taskState: TaskStateChanged } | { $case: 'taskProgress'; taskProgress: TaskProgressed };

/** A tenant's quota of live jobs: how many, and whether it is the tenant's own (not the grid's). */
export interface LiveJobsQuota {
  readonly maxLiveJobs: number;
  readonly own: boolean;
}

const NO_QUOTA: LiveJobsQuota = { maxLiveJobs: Number.MAX_SAFE_INTEGER, own: false };
const MAX_EVENTS_PER_JOB = 100_000;
const IDEMPOTENCY_TTL_SEC = 24 * 3600;
/** Task states a record never leaves (until RetryJob starts another generation). */
const ENDED_TASK_STATES: ReadonlySet<string> = new Set<TaskStateName>(['succeeded', 'failed', 'cancelled']);
const SUMMARY_FIELDS = ['id', 'tenant', 'state', 'pipeline', 'priority', 'createdAt', 'finishedAt', 'error', 'inputs'] as const;
/** Index entries a list call reads per round trip, and at most in all before it returns a short page. */
const LIST_CHUNK_MIN = 20;
const LIST_CHUNK_MAX = 500;
const SCAN_BUDGET = 2000;

function encodeEvent(jobId: string, atMs: number, event: EventBody): Buffer {
  return Buffer.from(JobEvent.encode({ id: '', jobId, atMs, event }).finish());
}

/** Job records, task records and job events in Redis. */
export class JobStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly retentionMs: number,
    /** Counts the jobs this store ends and times its scripts. */
    private readonly metrics?: Metrics,
    /** Most jobs of a tenant not yet ended (its quota; see CREATE_JOB), and whether that is its own. @default no limit */
    private readonly quotaOf: (tenant: string) => LiveJobsQuota = () => NO_QUOTA,
  ) {}

  /**
   * Stores a new job; returns the id of the job now stored (an earlier one for a repeated
   * idempotency key). Throws LimitExceededError, having stored nothing, when the tenant has
   * as many jobs queued or running as its quota allows.
   */
  async create(job: NewJob): Promise<string> {
    const quota = this.quotaOf(job.tenant);
    const fields: Record<string, string> = {
      id: job.id,
      tenant: job.tenant,
      state: 'queued',
      pipeline: job.spec.pipeline,
      priority: String(job.spec.priority),
      createdAt: String(job.createdAt),
      updatedAt: String(job.createdAt),
      finishedAt: '0',
      spec: JSON.stringify(job.spec),
      inputs: JSON.stringify(job.inputs),
      graph: packGraph(job.graph),
    };
    const tasks: Record<string, string> = {};
    for (const task of job.graph.tasks) {
      const record = newTaskRecord(task.kind, task.dependsOn.length > 0 ? 'blocked' : 'queued', job.createdAt, 0);
      tasks[task.id] = packTaskRecord(record);
    }
    const event = encodeEvent(job.id, job.createdAt, { $case: 'jobState', jobState: { state: jobStateToProto('queued'), error: undefined } });
    const keys = [
      this.keys.job(job.id),
      this.keys.tasks(job.id),
      this.keys.events(job.id),
      this.keys.jobs(),
      this.keys.tenantJobs(job.tenant),
      this.keys.accepting(),
      this.keys.tenantLive(job.tenant),
    ];
    if (job.idempotencyKey !== '') keys.push(this.keys.idempotency(job.tenant, job.idempotencyKey));
    const start = performance.now();
    const stored = await CREATE_JOB.run(this.redis, keys, [
      job.id,
      String(job.createdAt),
      JSON.stringify(fields),
      JSON.stringify(tasks),
      event,
      this.keys.eventsChannel(),
      String(IDEMPOTENCY_TTL_SEC),
      String(quota.maxLiveJobs),
      this.keys.job(''),
    ]);
    this.metrics?.redisCommand('create_job', start);
    if (Array.isArray(stored)) throw liveJobsFull(job.tenant, Number(stored[1]), quota.maxLiveJobs, 'submit', quota.own);
    return String(stored);
  }

  /**
   * The job's tasks are all in their queues: it no longer needs the acceptance sweep. Returns
   * whether this call took it off the list (of racing replicas, exactly one does).
   */
  async accepted(id: string): Promise<boolean> {
    return (await this.redis.zrem(this.keys.accepting(), id)) === 1;
  }

  /** Jobs stored before `before` (ms) whose tasks may never have been queued (the submitting replica died). */
  async unaccepted(before: number, limit = 100): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.accepting(), '-inf', before, 'LIMIT', 0, limit);
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const raw = await this.redis.hgetall(this.keys.job(id));
    if (!raw['id']) return undefined;
    return {
      ...parseSummary(raw),
      spec: JSON.parse(raw['spec'] ?? '{}') as JobSpec,
      graph: parseGraph(raw['graph'] ?? '{}'),
      result: raw['result'] ? (JSON.parse(raw['result']) as JobRecord['result']) : null,
      generation: Number(raw['generation'] ?? 0),
      rerun: raw['rerun'] ? (JSON.parse(raw['rerun']) as string[]) : undefined,
    };
  }

  async state(id: string): Promise<JobStateName | undefined> {
    const state = await this.redis.hget(this.keys.job(id), 'state');
    return (state as JobStateName | null) ?? undefined;
  }

  /** One task's record (undefined when the job or the task is unknown). */
  async task(jobId: string, taskId: string): Promise<TaskRecord | undefined> {
    const json = await this.redis.hget(this.keys.tasks(jobId), taskId);
    return json === null ? undefined : parseTaskRecord(json);
  }

  /** The job a tenant's idempotency key was first used for, if the key is still remembered. */
  async jobOfIdempotencyKey(tenant: string, key: string): Promise<string | undefined> {
    if (key === '') return undefined;
    return (await this.redis.get(this.keys.idempotency(tenant, key))) ?? undefined;
  }

  async tasks(id: string): Promise<Map<string, TaskRecord>> {
    const raw = await this.redis.hgetall(this.keys.tasks(id));
    return new Map(Object.entries(raw).map(([taskId, json]) => [taskId, parseTaskRecord(json)]));
  }

  /** The records of some of a job's tasks (those it has), without reading the others. */
  async someTasks(id: string, taskIds: readonly string[]): Promise<Map<string, TaskRecord>> {
    const out = new Map<string, TaskRecord>();
    if (taskIds.length === 0) return out;
    const raw = await this.redis.hmget(this.keys.tasks(id), ...taskIds);
    raw.forEach((json, i) => {
      const taskId = taskIds[i];
      if (json !== null && taskId !== undefined) out.set(taskId, parseTaskRecord(json));
    });
    return out;
  }

  /**
   * A page of the tenant's jobs (every tenant's without one), newest first: up to `limit` of
   * those after `query.after` that `query.accept` lets through. `next` is where the following
   * page starts, undefined at the end. Pages follow the index by position (creation time, then
   * id, as Redis orders it), so a job created or expired between two pages does not move the
   * others: each job is listed once. A page that scanned `SCAN_BUDGET` jobs without filling up
   * is returned short, with its `next`.
   */
  async list(tenant: string | undefined, query: JobListQuery): Promise<{ jobs: JobSummary[]; next: JobListCursor | undefined }> {
    const index = tenant === undefined ? this.keys.jobs() : this.keys.tenantJobs(tenant);
    const { after, limit, accept } = query;
    const jobs: JobSummary[] = [];
    const expired: string[] = [];
    const seen = new Set<string>();
    let last: JobListCursor | undefined = after;
    let skip = 0;
    let scanned = 0;
    try {
      for (;;) {
        const want = Math.min(LIST_CHUNK_MAX, Math.max(limit - jobs.length + 1, LIST_CHUNK_MIN));
        const flat = await this.redis.zrevrangebyscore(index, after === undefined ? '+inf' : after.createdAt, '-inf', 'WITHSCORES', 'LIMIT', skip, want);
        skip += flat.length / 2;
        const entries: JobListCursor[] = [];
        for (let i = 0; i + 1 < flat.length; i += 2) {
          const id = flat[i] ?? '';
          const createdAt = Number(flat[i + 1]);
          // Jobs of the cursor's millisecond that sort before it were on earlier pages; a job
          // created during this call can shift the window by one, hence `seen`.
          if (after !== undefined && createdAt === after.createdAt && id >= after.id) continue;
          if (seen.has(id)) continue;
          seen.add(id);
          entries.push({ createdAt, id });
        }
        const summaries = await this.summaries(entries.map((e) => e.id));
        for (const entry of entries) {
          if (jobs.length === limit) return { jobs, next: last };
          last = entry;
          scanned += 1;
          const summary = summaries.get(entry.id);
          if (summary === undefined) expired.push(entry.id);
          else if (accept(summary)) jobs.push(summary);
        }
        if (flat.length / 2 < want) return { jobs, next: undefined };
        if (scanned >= SCAN_BUDGET) return { jobs, next: last };
      }
    } finally {
      if (expired.length > 0) await this.redis.zrem(index, ...expired);
    }
  }

  /** The summaries of these jobs, by id; a job whose record has expired is missing. */
  private async summaries(ids: readonly string[]): Promise<Map<string, JobSummary>> {
    const out = new Map<string, JobSummary>();
    if (ids.length === 0) return out;
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(this.keys.job(id), ...SUMMARY_FIELDS);
    const rows = (await pipeline.exec()) ?? [];
    rows.forEach(([err, values], i) => {
      const list = values as (string | null)[] | undefined;
      const id = ids[i];
      if (err || !list || list[0] === null || id === undefined) return;
      const raw: Record<string, string> = {};
      SUMMARY_FIELDS.forEach((f, j) => {
        const v = list[j];
        if (v !== null && v !== undefined) raw[f] = v;
      });
      out.set(id, parseSummary(raw));
    });
    return out;
  }

  /**
   * Starts another run of an ended job for the tasks in `rerun` (see retryPlan), keeping the
   * outcomes of the others in `carried`. Returns false when the job had not ended or was
   * cancelled meanwhile (nothing changed then). Throws LimitExceededError, changing nothing,
   * when the job's tenant has as many jobs queued or running as its quota allows.
   */
  async retry(job: JobRecord, rerun: ReadonlySet<string>, now: number): Promise<boolean> {
    const quota = this.quotaOf(job.tenant);
    const generation = job.generation + 1;
    const previous = await this.tasks(job.id);
    const records: Record<string, string> = {};
    for (const task of job.graph.tasks) {
      if (!rerun.has(task.id)) continue;
      const blocked = task.dependsOn.some((d) => rerun.has(d));
      const before = previous.get(task.id);
      records[task.id] = JSON.stringify({
        state: blocked ? 'blocked' : 'queued',
        // Attempts keep counting across runs; commits count this run's.
        attempts: 0,
        priorAttempts: before?.attempts ?? 0,
        commits: 0,
        workerId: '',
        workerName: '',
        leaseId: '',
        fencingToken: 0,
        error: null,
        queuedAt: now,
        startedAt: 0,
        finishedAt: 0,
        nextAttemptAt: 0,
        generation,
      } satisfies Omit<TaskRecord, 'kind'>);
    }
    const event = encodeEvent(job.id, now, { $case: 'jobState', jobState: { state: jobStateToProto('queued'), error: undefined } });
    const changed = await RETRY_JOB.run(
      this.redis,
      [this.keys.job(job.id), this.keys.tasks(job.id), this.keys.events(job.id), this.keys.carried(job.id), this.keys.accepting(), this.keys.tenantLive(job.tenant)],
      [
        job.id,
        String(generation),
        JSON.stringify([...rerun]),
        JSON.stringify(records),
        event,
        String(now),
        this.keys.eventsChannel(),
        String(quota.maxLiveJobs),
        this.keys.job(''),
      ],
    );
    if (Array.isArray(changed)) throw liveJobsFull(job.tenant, Number(changed[1]), quota.maxLiveJobs, 'retry', quota.own);
    return changed === 1;
  }

  /**
   * Merges `patch` into a task's record and appends the matching event. With `onlyIfLive`,
   * a record that has already ended is left alone (for repairs made from an older read).
   * Returns the record's readyAt before the patch (0 when none).
   *
   * A task's end is counted here, by the one call (of any replica) whose patch moved its record
   * from a live state to an ended one: a retried write, a repair or a late report of the same
   * end finds the record ended already and counts nothing.
   */
  async updateTask(jobId: string, taskId: string, patch: Partial<TaskRecord>, now: number, options: { onlyIfLive?: boolean } = {}): Promise<number> {
    const reply = await this.writeTask(jobId, taskId, patch, now, { onlyIfLive: options.onlyIfLive === true, onlyIfJobLive: false });
    return reply === 'job-ended' ? 0 : reply;
  }

  /**
   * Marks a dispatched task running, unless its job has ended (or is gone): then nothing
   * changes and the answer is 'job-ended'. Otherwise returns when the task last became ready
   * (0 when it never went back to its queue). One round trip for both.
   */
  async startTask(jobId: string, taskId: string, patch: Partial<TaskRecord> & { state: 'running' }, now: number): Promise<number | 'job-ended'> {
    return this.writeTask(jobId, taskId, patch, now, { onlyIfLive: false, onlyIfJobLive: true });
  }

  private async writeTask(
    jobId: string,
    taskId: string,
    patch: Partial<TaskRecord>,
    now: number,
    options: { readonly onlyIfLive: boolean; readonly onlyIfJobLive: boolean },
  ): Promise<number | 'job-ended'> {
    const state = patch.state;
    const event =
      state === undefined
        ? Buffer.alloc(0)
        : encodeEvent(jobId, now, {
            $case: 'taskState',
            taskState: {
              taskId,
              kind: patch.kind ?? '',
              state: taskStateToProto(state),
              workerId: patch.workerId ?? '',
              workerName: patch.workerName ?? '',
              attempt: patch.attempts ?? 0,
              error: patch.error ? { code: patch.error.code, message: patch.error.message, retryable: patch.error.retryable } : undefined,
            },
          });
    const running = state === 'running' ? encodeEvent(jobId, now, { $case: 'jobState', jobState: { state: jobStateToProto('running'), error: undefined } }) : '';
    const start = performance.now();
    const reply = await UPDATE_TASK.run(this.redis, [this.keys.job(jobId), this.keys.tasks(jobId), this.keys.events(jobId)], [
      jobId,
      taskId,
      JSON.stringify(patch),
      event,
      running,
      String(now),
      this.keys.eventsChannel(),
      String(MAX_EVENTS_PER_JOB),
      options.onlyIfLive ? '1' : '',
      options.onlyIfJobLive ? '1' : '',
    ]);
    this.metrics?.redisCommand('update_task', start);
    if (!Array.isArray(reply)) return options.onlyIfJobLive ? 'job-ended' : 0;
    const [, readyAt, previous, kind] = reply as [number, number, string, string];
    if (state !== undefined && ENDED_TASK_STATES.has(state) && !ENDED_TASK_STATES.has(previous)) {
      this.metrics?.taskFinished(kind, state as Exclude<TaskOutcome, 'retried'>);
    }
    return readyAt;
  }

  /** Appends a progress event (no record change). */
  async progress(jobId: string, taskId: string, fraction: number, message: string, now: number): Promise<void> {
    const event = encodeEvent(jobId, now, { $case: 'taskProgress', taskProgress: { taskId, fraction, message } });
    await this.redis
      .multi()
      .xadd(this.keys.events(jobId), 'MAXLEN', '~', MAX_EVENTS_PER_JOB, '*', 'e', event)
      .publish(this.keys.eventsChannel(), jobId)
      .exec();
  }

  /**
   * Ends a job once. Returns false when it had already ended (or does not exist). The call
   * that ends it counts the job's end and its duration (submit to end) in the metrics.
   */
  async finish(
    jobId: string,
    state: 'completed' | 'failed' | 'cancelled',
    fields: { result?: JobRecord['result']; error?: TaskError },
    now: number,
  ): Promise<boolean> {
    const flat: Record<string, string> = {};
    if (fields.result) flat['result'] = JSON.stringify(fields.result);
    if (fields.error) flat['error'] = JSON.stringify(fields.error);
    const event = encodeEvent(jobId, now, {
      $case: 'jobState',
      jobState: {
        state: jobStateToProto(state),
        error: fields.error ? { code: fields.error.code, message: fields.error.message, retryable: false } : undefined,
      },
    });
    const start = performance.now();
    const changed = await FINISH_JOB.run(this.redis, [this.keys.job(jobId), this.keys.tasks(jobId), this.keys.events(jobId), this.keys.carried(jobId)], [
      jobId,
      state,
      JSON.stringify(flat),
      event,
      String(now),
      String(this.retentionMs),
      this.keys.eventsChannel(),
      ...this.keys.tenantLiveParts(),
    ]);
    this.metrics?.redisCommand('finish', start);
    if (!Array.isArray(changed)) return false;
    const [, pipeline, tenant, runStartedAt] = changed as [number, string, string, string];
    const outcome: JobOutcome = state === 'completed' && fields.result?.doc.partial ? 'partial' : state;
    this.metrics?.jobFinished(pipeline, tenant, outcome, (now - Number(runStartedAt)) / 1000);
    return true;
  }

  /**
   * Throws LimitExceededError when the tenant has as many jobs queued or running as its quota
   * allows: a quick look before a submission does any work (create() makes the check that counts).
   */
  async checkRoom(tenant: string): Promise<void> {
    const quota = this.quotaOf(tenant);
    const live = Number(await COUNT_LIVE_JOBS.run(this.redis, [this.keys.tenantLive(tenant)], [String(quota.maxLiveJobs), this.keys.job('')]));
    if (live >= quota.maxLiveJobs) throw liveJobsFull(tenant, live, quota.maxLiveJobs, 'submit', quota.own);
  }

  /** Records shards a stitch step added at run time, and tells watchers how many there are. */
  async addShards(jobId: string, stepId: string, records: ReadonlyMap<string, TaskRecord>, total: number, now: number): Promise<void> {
    if (records.size === 0) return;
    const event = encodeEvent(jobId, now, { $case: 'taskProgress', taskProgress: { taskId: stepId, fraction: 0, message: `${total} shards` } });
    await this.redis
      .multi()
      .hset(this.keys.tasks(jobId), Object.fromEntries([...records].map(([id, r]) => [id, packTaskRecord(r)])))
      .xadd(this.keys.events(jobId), 'MAXLEN', '~', MAX_EVENTS_PER_JOB, '*', 'e', event)
      .publish(this.keys.eventsChannel(), jobId)
      .exec();
  }

  /**
   * Keeps every task's outcome with the job when it is assembled: BullMQ drops them with its
   * jobs, and a later retry still needs the outputs of the tasks it does not run again.
   */
  async keepOutcomes(jobId: string, outcomes: ReadonlyMap<string, string>): Promise<void> {
    if (outcomes.size === 0) return;
    await this.redis.hset(this.keys.carried(jobId), Object.fromEntries(outcomes));
  }

  /** Attempts each task made before the job's current run (for queueing a retried job). */
  static priorAttempts(records: ReadonlyMap<string, TaskRecord>): Map<string, number> {
    return new Map([...records].map(([id, r]) => [id, r.priorAttempts ?? 0]));
  }

  /**
   * The job's state, then its events after `afterId` (exclusive; "" for the start, oldest
   * first), in one round trip: what a watcher reads each time the job may have changed. The
   * state is read first: if it was final then, its event is among the events.
   */
  async stateAndEvents(jobId: string, afterId: string, count = 1000): Promise<{ state: JobStateName | undefined; events: StoredEvent[] }> {
    const start = afterId === '' ? '-' : `(${afterId}`;
    const replies = await this.redis.pipeline().hget(this.keys.job(jobId), 'state').xrangeBuffer(this.keys.events(jobId), start, '+', 'COUNT', count).exec();
    const [stateReply, eventsReply] = replies ?? [];
    const err = stateReply?.[0] ?? eventsReply?.[0];
    if (err) throw err;
    const state = stateReply?.[1] as JobStateName | null | undefined;
    return { state: state ?? undefined, events: decodeEvents((eventsReply?.[1] ?? []) as [Buffer, Buffer[]][]) };
  }
}

function decodeEvents(entries: readonly [Buffer, readonly Buffer[]][]): StoredEvent[] {
  const out: StoredEvent[] = [];
  for (const [idBuf, fields] of entries) {
    const id = idBuf.toString();
    for (let i = 0; i + 1 < fields.length; i += 2) {
      if (fields[i]?.toString() === 'e') {
        const bytes = fields[i + 1];
        if (bytes && bytes.length > 0) out.push({ id, event: { ...JobEvent.decode(bytes), id } });
      }
    }
  }
  return out;
}

function parseSummary(raw: Record<string, string>): JobSummary {
  return {
    id: raw['id'] ?? '',
    tenant: raw['tenant'] ?? '',
    state: (raw['state'] ?? 'queued') as JobStateName,
    pipeline: raw['pipeline'] ?? '',
    priority: Number(raw['priority'] ?? 0),
    createdAt: Number(raw['createdAt'] ?? 0),
    finishedAt: Number(raw['finishedAt'] ?? 0),
    error: raw['error'] ? (JSON.parse(raw['error']) as TaskError) : null,
    inputs: JSON.parse(raw['inputs'] ?? '[]') as PlanInput[],
  };
}
