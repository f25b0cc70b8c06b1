import { FlowProducer, type FlowJob, type JobsOptions, type ParentOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  ASSEMBLE_KIND,
  builtinTaskKinds,
  DEFAULT_RETRY_POLICY,
  parseTaskQueueName,
  PROMPT_INPUT_NAME,
  retryDelayMs,
  taskKindInfo,
  taskQueueName,
  type BlobRef,
  type JobSpec,
  type TaskGraph,
  type TaskNode,
} from '@mmgrid/core';
import type { Keys } from './keys.js';
import { bullJobIdOf } from './lease.js';
import type { QueueDepth } from './metrics.js';
import { BACKOFF_TYPE, TaskQueue } from './task-queue.js';
import { COMPLETED_TASK_RETENTION, FAILED_TASK_RETENTION, packTaskData, type QueueInfo, type StoredTaskData, type TaskData, type TaskInput, type TaskUpstream } from './task-data.js';

export type { QueueInfo, StoredTaskData, TaskData, TaskInput, TaskUpstream };

export interface TaskQueuesOptions {
  readonly leaseMs: number;
  readonly stalledIntervalMs: number;
  readonly maxStalledCount: number;
}

/** The job as the flow is built from it. */
export interface FlowSource {
  readonly id: string;
  readonly tenant: string;
  readonly spec: JobSpec;
  readonly graph: TaskGraph;
  readonly generation: number;
  /** Tasks to run in this generation; every task when undefined. */
  readonly rerun?: readonly string[] | undefined;
  /** Attempts each task made in earlier generations. */
  readonly priorAttempts?: ReadonlyMap<string, number>;
}

/** A task as BullMQ takes it: its name (the kind), its data and its job options. */
export interface TaskJob {
  readonly name: string;
  /** Packed for a worker's queue (StoredTaskData); whole for a coordinator step's queue. */
  readonly data: TaskData | StoredTaskData;
  readonly opts: JobsOptions;
}

/**
 * The one way a task becomes a BullMQ job, for the tasks of a job's graph and for the shards
 * a stitch step adds at run time alike: its id (from job id, task id and generation), its
 * kind's retry policy, how long its outcome is kept, and whether its parent runs when it
 * fails. Only the root (`root: true`, which has no parent) is removed once it completes; every
 * other task's failure is left to the task graph (required vs optional), so its parent
 * always runs. `parent` is for a child added on its own (a shard), not within a flow.
 */
export function taskJob(data: TaskData, options: { readonly priority: number; readonly root?: boolean; readonly parent?: ParentOptions }): TaskJob {
  const retry = taskKindInfo(data.kind)?.retry ?? DEFAULT_RETRY_POLICY;
  const root = options.root === true;
  // A worker's task is packed, and how long its outcome is kept is its queue's setting (see
  // TaskQueue), not repeated in every task; a coordinator step (its queue is its kind) keeps
  // both, for BullMQ's Worker that runs it.
  const worker = data.queue !== data.kind;
  return {
    name: data.kind,
    // The assembly reads its inputs from the job's graph: a list of every task of the job in
    // its data would only take space.
    data: worker ? packTaskData(data) : data.kind === ASSEMBLE_KIND ? { ...data, upstream: [] } : data,
    opts: {
      jobId: bullJobIdOf(data.jobId, data.taskId, data.generation),
      ...(options.parent ? { parent: options.parent } : {}),
      priority: options.priority,
      attempts: retry.maxAttempts,
      backoff: { type: BACKOFF_TYPE },
      ...(worker ? {} : { removeOnComplete: root ? true : COMPLETED_TASK_RETENTION, removeOnFail: FAILED_TASK_RETENTION }),
      ...(root ? {} : { ignoreDependencyOnFailure: true }),
    },
  };
}

/**
 * The queue of one task of a job. Steps that run inside the coordinator (the assembly) share
 * one queue: they are quick, and the tenants' turns are taken when tasks go to workers.
 */
export function queueOfTask(task: TaskNode, tenant: string): string {
  if (taskKindInfo(task.kind)?.placement === 'coordinator') return task.kind;
  return taskQueueName(task.kind, task.requirements, tenant);
}

/**
 * The BullMQ side of jobs: one queue per task kind, requirement set and tenant, a job's graph
 * added as one flow whose parents wait on their children, and the grid-wide list of queues.
 */
export class TaskQueues {
  private readonly flows: FlowProducer;
  private readonly queues = new Map<string, TaskQueue>();
  /** What each worker queue holds, as the grid's list of queues says (see known()). */
  private readonly infos = new Map<string, QueueInfo>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: TaskQueuesOptions,
  ) {
    this.flows = new FlowProducer({ connection: redis, prefix: keys.prefix });
  }

  get prefix(): string {
    return this.keys.prefix;
  }

  queue(name: string): TaskQueue {
    let queue = this.queues.get(name);
    if (!queue) {
      const kind = parseTaskQueueName(name)?.kind ?? name;
      const retry = taskKindInfo(kind)?.retry ?? DEFAULT_RETRY_POLICY;
      queue = new TaskQueue(name, this.redis, () => this.infos.get(name), {
        prefix: this.keys.prefix,
        leaseMs: this.options.leaseMs,
        stalledIntervalMs: this.options.stalledIntervalMs,
        maxStalledCount: this.options.maxStalledCount,
        backoff: (attemptsMade) => retryDelayMs(retry, attemptsMade, Math.random),
      });
      this.queues.set(name, queue);
    }
    return queue;
  }

  /** Every task queue on the grid (written when a job first uses it). */
  async known(): Promise<QueueInfo[]> {
    const raw = await this.redis.hgetall(this.keys.queues());
    const infos = Object.entries(raw)
      .map(([name, json]) => ({ name, ...(JSON.parse(json) as Omit<QueueInfo, 'name'>) }))
      .sort((a, b) => a.name.localeCompare(b.name));
    for (const info of infos) this.infos.set(info.name, info);
    return infos;
  }

  /**
   * Adds a job's tasks (or, after a retry, the ones to run again). Idempotent: task ids are
   * derived from the job id and generation, and BullMQ keeps an existing job when one with
   * the same id is added again. Returns the queues the job uses that the grid did not know.
   */
  async addJob(job: FlowSource): Promise<QueueInfo[]> {
    const byId = new Map(job.graph.tasks.map((t) => [t.id, t]));
    const rerun = job.rerun ? new Set(job.rerun) : undefined;
    const runs = (id: string): boolean => rerun === undefined || rerun.has(id);
    const consumerOf = new Map<string, TaskNode>();
    for (const task of job.graph.tasks) for (const dep of task.dependsOn) {
      const consumer = byId.get(task.id);
      if (consumer) consumerOf.set(dep, consumer);
    }
    const blobs = new Map<string, BlobRef>();
    const texts = new Map<string, string>();
    for (const input of job.spec.inputs) {
      if (input.source.type === 'blob') blobs.set(input.name, input.source.blob);
      else texts.set(input.name, input.source.text);
    }
    texts.set(PROMPT_INPUT_NAME, job.spec.prompt);
    // Priority 1 is BullMQ's highest; job priority 10 maps to 1 and -10 to 21.
    const priority = 11 - job.spec.priority;
    const queuesUsed = new Map<string, QueueInfo>();

    const toFlow = (task: TaskNode): FlowJob => {
      const queue = queueOfTask(task, job.tenant);
      const consumer = consumerOf.get(task.id);
      if (queue !== task.kind) queuesUsed.set(queue, { name: queue, kind: task.kind, tenant: job.tenant, requirements: task.requirements });
      const data: TaskData = {
        jobId: job.id,
        taskId: task.id,
        kind: task.kind,
        tenant: job.tenant,
        queue,
        parentQueue: consumer ? queueOfTask(consumer, job.tenant) : '',
        generation: job.generation,
        priorAttempts: job.priorAttempts?.get(task.id) ?? 0,
        inputs: task.inputNames.map((name) => {
          const blob = blobs.get(name);
          if (blob) return { name, blob };
          return { name, text: texts.get(name) ?? '' };
        }),
        params: task.params,
        requirements: task.requirements,
        optional: task.optional,
        upstream: task.dependsOn.map((id) => {
          const dep = byId.get(id);
          // A stitched output is read as the kind it stands for (audio.analyze…).
          const outputAs = dep?.params['outputAs'];
          const kind = typeof outputAs === 'string' ? outputAs : (dep?.kind ?? '');
          return { taskId: id, kind, inputNames: dep?.inputNames ?? [], optional: dep?.optional ?? false };
        }),
        timeoutMs: task.timeoutMs,
      };
      const isRoot = task.id === job.graph.rootId;
      const children = task.dependsOn
        .filter(runs)
        .map((id) => byId.get(id))
        .filter((t): t is TaskNode => t !== undefined);
      return {
        ...taskJob(data, { priority, root: isRoot }),
        queueName: queue,
        ...(children.length > 0 ? { children: children.map(toFlow) } : {}),
      };
    };

    const root = byId.get(job.graph.rootId);
    if (!root) throw new Error(`job ${job.id}: root task ${job.graph.rootId} missing from its graph`);
    // A flow is added in one MULTI: if its root exists, all of it does. Adding it again would
    // make BullMQ put children that already failed back among the root's dependencies, so a
    // second add (a retried submission, the acceptance sweep) stops here, and a claim keeps
    // two replicas from adding the same generation at once.
    const rootKey = `${this.keys.prefix}:${queueOfTask(root, job.tenant)}:${bullJobIdOf(job.id, root.id, job.generation)}`;
    if ((await this.redis.exists(rootKey)) === 1) return [];
    const claimKey = `${this.keys.job(job.id)}:adding:${job.generation}`;
    const claim = await this.redis.set(claimKey, '1', 'PX', 60_000, 'NX');
    if (claim !== 'OK') return [];
    const flow = toFlow(root);
    const fresh = await this.register([...queuesUsed.values()]);
    try {
      await this.flows.add(flow);
    } catch (err) {
      await this.redis.del(claimKey).catch(() => 0);
      throw err;
    }
    return fresh;
  }

  /**
   * Tasks by state in every queue of the grid: the workers' queues (one per kind,
   * requirement set and tenant) and the coordinator's own steps (assembly, stitching).
   */
  async depths(): Promise<QueueDepth[]> {
    const kinds = new Map((await this.known()).map((q) => [q.name, q.kind]));
    for (const info of builtinTaskKinds()) if (info.placement === 'coordinator') kinds.set(info.kind, info.kind);
    return Promise.all(
      [...kinds].map(async ([name, kind]) => {
        const c = await this.queue(name).queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'waiting-children', 'failed');
        return {
          kind,
          counts: {
            waiting: (c['waiting'] ?? 0) + (c['prioritized'] ?? 0),
            active: c['active'] ?? 0,
            delayed: c['delayed'] ?? 0,
            waiting_children: c['waiting-children'] ?? 0,
            failed: c['failed'] ?? 0,
          },
        };
      }),
    );
  }

  /** Adds queues to the grid's list; returns those it did not know. */
  async register(infos: readonly QueueInfo[]): Promise<QueueInfo[]> {
    if (infos.length === 0) return [];
    for (const info of infos) if (!this.infos.has(info.name)) this.infos.set(info.name, info);
    const pipeline = this.redis.pipeline();
    for (const info of infos) {
      pipeline.hsetnx(this.keys.queues(), info.name, JSON.stringify({ kind: info.kind, tenant: info.tenant, requirements: info.requirements }));
    }
    const results = (await pipeline.exec()) ?? [];
    return infos.filter((_, i) => results[i]?.[1] === 1);
  }

  async close(): Promise<void> {
    await this.flows.close();
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}

export { BACKOFF_TYPE };
