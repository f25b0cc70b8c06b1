import type { Redis } from 'ioredis';
import type { TaskOutcome } from '@mmgrid/core';
import { bullJobIdOf, parseBullJobId } from './lease.js';
import type { TaskRecord } from './job-store.js';

/** What BullMQ recorded about the children of one parent task, by child task id. */
export type ChildOutcome = { readonly status: 'succeeded'; readonly outputJson: string } | { readonly status: 'failed'; readonly reason: string };

/**
 * Reads the outcomes BullMQ committed for the children of a parent task: values of completed
 * children (the parent's `processed` hash) and failures it was told to ignore (`failed`).
 */
export async function readChildOutcomes(
  redis: Redis,
  prefix: string,
  parentKind: string,
  jobId: string,
  parentTaskId: string,
): Promise<Map<string, ChildOutcome>> {
  const parentKey = `${prefix}:${parentKind}:${bullJobIdOf(jobId, parentTaskId)}`;
  const [processed, failed] = await Promise.all([redis.hgetall(`${parentKey}:processed`), redis.hgetall(`${parentKey}:failed`)]);
  const out = new Map<string, ChildOutcome>();
  for (const [childKey, value] of Object.entries(processed)) {
    const taskId = taskIdOfKey(prefix, childKey);
    if (taskId) out.set(taskId, { status: 'succeeded', outputJson: value });
  }
  for (const [childKey, reason] of Object.entries(failed)) {
    const taskId = taskIdOfKey(prefix, childKey);
    if (taskId && !out.has(taskId)) out.set(taskId, { status: 'failed', reason });
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
