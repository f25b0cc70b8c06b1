import type { Redis } from 'ioredis';
import type { TaskOutcome } from '@mmgrid/core';
import type { JobRecord, TaskRecord } from './job-store.js';
import type { Keys } from './keys.js';
import { bullJobIdOf, parseBullJobId } from './lease.js';
import { queueOfTask } from './task-queues.js';

/** What was committed about a child task, by child task id. */
export type ChildOutcome = { readonly status: 'succeeded'; readonly outputJson: string } | { readonly status: 'failed'; readonly reason: string };

/**
 * The outcomes of a parent task's children: the values BullMQ committed for those that ran
 * in the parent's generation (its `processed` hash), the failures it was told to ignore (its
 * `failed` hash), and, for children that did not run again after a retry, the outcomes kept
 * from before (the job's `carried` hash).
 */
export async function readChildOutcomes(
  redis: Redis,
  keys: Keys,
  parent: { readonly queue: string; readonly jobId: string; readonly taskId: string; readonly generation: number },
): Promise<Map<string, ChildOutcome>> {
  const parentKey = `${keys.prefix}:${parent.queue}:${bullJobIdOf(parent.jobId, parent.taskId, parent.generation)}`;
  const [processed, failed, carried] = await Promise.all([
    redis.hgetall(`${parentKey}:processed`),
    redis.hgetall(`${parentKey}:failed`),
    parent.generation > 0 ? redis.hgetall(keys.carried(parent.jobId)) : Promise.resolve<Record<string, string>>({}),
  ]);
  const out = new Map<string, ChildOutcome>();
  for (const [childKey, value] of Object.entries(processed)) {
    const taskId = taskIdOfKey(keys.prefix, childKey);
    if (taskId) out.set(taskId, { status: 'succeeded', outputJson: value });
  }
  for (const [childKey, reason] of Object.entries(failed)) {
    const taskId = taskIdOfKey(keys.prefix, childKey);
    if (taskId && !out.has(taskId)) out.set(taskId, { status: 'failed', reason });
  }
  for (const [taskId, json] of Object.entries(carried)) {
    if (!out.has(taskId)) out.set(taskId, JSON.parse(json) as ChildOutcome);
  }
  return out;
}

/** Child job keys look like "<prefix>:<queue>:<bull job id>". */
function taskIdOfKey(prefix: string, key: string): string | undefined {
  if (!key.startsWith(`${prefix}:`)) return undefined;
  const rest = key.slice(prefix.length + 1);
  const colon = rest.indexOf(':');
  if (colon < 0) return undefined;
  return parseBullJobId(rest.slice(colon + 1))?.taskId;
}

/**
 * Turns a child outcome into the assembler's TaskOutcome, preferring the recorded error (which
 * has a code) over BullMQ's plain failure text.
 */
export function toTaskOutcome(outcome: ChildOutcome | undefined, record: TaskRecord | undefined): TaskOutcome {
  if (outcome?.status === 'succeeded') return { status: 'succeeded', outputJson: outcome.outputJson };
  if (record?.error) return { status: 'failed', error: { code: record.error.code, message: record.error.message } };
  if (outcome?.status === 'failed') return { status: 'failed', error: { code: 'TASK_FAILED', message: outcome.reason } };
  return { status: 'failed', error: { code: 'NO_OUTCOME', message: 'the task ended without a recorded outcome' } };
}

/** Every task's committed outcome (but the root's), read through each parent in the graph. */
export async function collectJobOutcomes(
  redis: Redis,
  keys: Keys,
  job: JobRecord,
  records: ReadonlyMap<string, TaskRecord>,
): Promise<Map<string, { child: ChildOutcome | undefined; outcome: TaskOutcome }>> {
  const parents = job.graph.tasks.filter((t) => t.dependsOn.length > 0);
  const found = await Promise.all(
    parents.map((p) =>
      readChildOutcomes(redis, keys, { queue: queueOfTask(p, job.tenant), jobId: job.id, taskId: p.id, generation: records.get(p.id)?.generation ?? 0 }),
    ),
  );
  const outcomes = new Map<string, { child: ChildOutcome | undefined; outcome: TaskOutcome }>();
  parents.forEach((parent, i) => {
    for (const childId of parent.dependsOn) {
      const child = found[i]?.get(childId);
      outcomes.set(childId, { child, outcome: toTaskOutcome(child, records.get(childId)) });
    }
  });
  return outcomes;
}
