import { FlowProducer, Queue, type FlowJob, type ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  ASSEMBLE_KIND,
  DEFAULT_RETRY_POLICY,
  PROMPT_INPUT_NAME,
  taskKindInfo,
  type BlobRef,
  type JobSpec,
  type JsonObject,
  type TaskGraph,
  type TaskNode,
  type TaskRequirements,
} from '@mmgrid/core';
import type { Keys } from './keys.js';
import { bullJobIdOf } from './lease.js';

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
  readonly inputs: readonly TaskInput[];
  readonly params: JsonObject;
  readonly requirements: TaskRequirements;
  readonly optional: boolean;
  readonly upstream: readonly TaskUpstream[];
  readonly timeoutMs: number;
}

/** BullMQ's custom backoff type; the strategy lives in the dispatcher's BullMQ workers. */
export const BACKOFF_TYPE = 'mmgrid';

const COMPLETED_TASK_RETENTION = { age: 3600, count: 100_000 };
const FAILED_TASK_RETENTION = { age: 7 * 24 * 3600 };

/**
 * The BullMQ side of jobs: one queue per task kind, a job's graph added as one flow whose
 * parents wait on their children.
 */
export class TaskQueues {
  private readonly flows: FlowProducer;
  private readonly queues = new Map<string, Queue<TaskData>>();

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly connection: ConnectionOptions,
  ) {
    this.flows = new FlowProducer({ connection, prefix: keys.prefix });
  }

  get prefix(): string {
    return this.keys.prefix;
  }

  queue(kind: string): Queue<TaskData> {
    let queue = this.queues.get(kind);
    if (!queue) {
      queue = new Queue<TaskData>(kind, { connection: this.connection, prefix: this.keys.prefix });
      this.queues.set(kind, queue);
    }
    return queue;
  }

  /** Kinds that ever had a queue on this grid. */
  async knownKinds(): Promise<string[]> {
    return (await this.redis.smembers(this.keys.kinds())).sort();
  }

  /**
   * Adds a job's tasks. Idempotent: task ids are derived from the job id, and BullMQ keeps an
   * existing job when one with the same id is added again.
   */
  async addJob(job: { id: string; tenant: string; spec: JobSpec; graph: TaskGraph }): Promise<void> {
    const byId = new Map(job.graph.tasks.map((t) => [t.id, t]));
    const blobs = new Map<string, BlobRef>();
    const texts = new Map<string, string>();
    for (const input of job.spec.inputs) {
      if (input.source.type === 'blob') blobs.set(input.name, input.source.blob);
      else texts.set(input.name, input.source.text);
    }
    texts.set(PROMPT_INPUT_NAME, job.spec.prompt);
    // Priority 1 is BullMQ's highest; job priority 10 maps to 1 and -10 to 21.
    const priority = 11 - job.spec.priority;

    const toFlow = (task: TaskNode): FlowJob => {
      const info = taskKindInfo(task.kind);
      const retry = info?.retry ?? DEFAULT_RETRY_POLICY;
      const data: TaskData = {
        jobId: job.id,
        taskId: task.id,
        kind: task.kind,
        tenant: job.tenant,
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
          return { taskId: id, kind: dep?.kind ?? '', inputNames: dep?.inputNames ?? [], optional: dep?.optional ?? false };
        }),
        timeoutMs: info?.timeoutMs ?? 60_000,
      };
      const isRoot = task.id === job.graph.rootId;
      const children = task.dependsOn.map((id) => byId.get(id)).filter((t): t is TaskNode => t !== undefined);
      return {
        name: task.kind,
        queueName: task.kind,
        data,
        opts: {
          jobId: bullJobIdOf(job.id, task.id),
          priority,
          attempts: retry.maxAttempts,
          backoff: { type: BACKOFF_TYPE },
          removeOnComplete: isRoot ? true : COMPLETED_TASK_RETENTION,
          removeOnFail: FAILED_TASK_RETENTION,
          // The parent always runs; whether a failed input sinks the job is decided by the
          // task graph (required vs optional), when the parent is dispatched or assembled.
          ...(isRoot ? {} : { ignoreDependencyOnFailure: true }),
        },
        ...(children.length > 0 ? { children: children.map(toFlow) } : {}),
      };
    };

    const root = byId.get(job.graph.rootId);
    if (!root) throw new Error(`job ${job.id}: root task ${job.graph.rootId} missing from its graph`);
    const kinds = [...new Set(job.graph.tasks.map((t) => t.kind))];
    await this.redis.sadd(this.keys.kinds(), ...kinds);
    await this.flows.add(toFlow(root));
  }

  async close(): Promise<void> {
    await this.flows.close();
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }
}

export { ASSEMBLE_KIND };
