import { ASSEMBLE_KIND, taskKindInfo, type BlobRef, type JsonObject, type TaskRequirements } from '@mmgrid/core';
import { parseBullJobId } from './lease.js';

/** One input a task reads: a blob, or inline text. */
export interface TaskInput {
  readonly name: string;
  readonly blob?: BlobRef;
  readonly text?: string;
}

/** The upstream tasks a task consumes, for building its assignment. */
export interface TaskUpstream {
  readonly taskId: string;
  readonly kind: string;
  readonly inputNames: readonly string[];
  readonly optional: boolean;
}

/** What BullMQ holds for each task: references and parameters, never media bytes. */
export interface TaskData {
  readonly jobId: string;
  readonly taskId: string;
  readonly kind: string;
  readonly tenant: string;
  /** The queue this task is in, and the one its consumer is in ("" for the root). */
  readonly queue: string;
  readonly parentQueue: string;
  /** Which run of the job this is (0, then one more per RetryJob). */
  readonly generation: number;
  /** Attempts the task made in earlier runs of the job. */
  readonly priorAttempts?: number;
  readonly inputs: readonly TaskInput[];
  readonly params: JsonObject;
  readonly requirements: TaskRequirements;
  readonly optional: boolean;
  readonly upstream: readonly TaskUpstream[];
  readonly timeoutMs: number;
}

/** What a queue holds: its kind, requirement set and tenant. */
export interface QueueInfo {
  readonly name: string;
  readonly kind: string;
  readonly tenant: string;
  readonly requirements: TaskRequirements;
}

/** How long a task's outcome is kept once it completed, or failed for good (seconds, count). */
export const COMPLETED_TASK_RETENTION = { age: 3600, count: 100_000 };
export const FAILED_TASK_RETENTION = { age: 7 * 24 * 3600 };

/**
 * A task's data as a worker queue's BullMQ job stores it: only what its queue and its BullMQ
 * job id do not already say, and nothing that has its default. A backlog of a million tasks
 * is a million of these, so every byte counts: the job id, task id and generation are in the
 * BullMQ job id; the kind, tenant and requirements are the queue's; an empty list, a zero and
 * the kind's usual timeout are left out. `unpackTaskData` makes the whole TaskData again.
 */
export interface StoredTaskData {
  /** params, when not empty */
  readonly p?: JsonObject;
  /** inputs, when any */
  readonly i?: readonly TaskInput[];
  /** upstream tasks, when any */
  readonly u?: readonly TaskUpstream[];
  /** 1 when optional */
  readonly o?: 1;
  /** the consumer's queue, when not the assembly */
  readonly c?: string;
  /** attempts in earlier generations, when any */
  readonly a?: number;
  /** timeout (ms), when not the kind's default */
  readonly m?: number;
}

function defaultTimeoutMs(kind: string): number {
  return taskKindInfo(kind)?.timeoutMs ?? 60_000;
}

export function packTaskData(data: TaskData): StoredTaskData {
  return {
    ...(Object.keys(data.params).length > 0 ? { p: data.params } : {}),
    ...(data.inputs.length > 0 ? { i: data.inputs } : {}),
    ...(data.upstream.length > 0 ? { u: data.upstream } : {}),
    ...(data.optional ? { o: 1 as const } : {}),
    ...(data.parentQueue !== ASSEMBLE_KIND ? { c: data.parentQueue } : {}),
    ...((data.priorAttempts ?? 0) > 0 ? { a: data.priorAttempts } : {}),
    ...(data.timeoutMs !== defaultTimeoutMs(data.kind) ? { m: data.timeoutMs } : {}),
  };
}

/**
 * The whole TaskData of a task in `queue` with BullMQ job id `bullJobId`. Data written whole
 * (by a coordinator before packing existed) is returned as it is.
 */
export function unpackTaskData(stored: StoredTaskData | TaskData, queue: QueueInfo, bullJobId: string): TaskData {
  if ('jobId' in stored) return stored;
  const ids = parseBullJobId(bullJobId);
  if (!ids) throw new Error(`task ${bullJobId} in ${queue.name}: its id is not <job id>-<task id>[.<generation>]`);
  return {
    jobId: ids.jobId,
    taskId: ids.taskId,
    generation: ids.generation,
    kind: queue.kind,
    tenant: queue.tenant,
    queue: queue.name,
    requirements: queue.requirements,
    parentQueue: stored.c ?? ASSEMBLE_KIND,
    priorAttempts: stored.a ?? 0,
    inputs: stored.i ?? [],
    params: stored.p ?? {},
    optional: stored.o === 1,
    upstream: stored.u ?? [],
    timeoutMs: stored.m ?? defaultTimeoutMs(queue.kind),
  };
}

