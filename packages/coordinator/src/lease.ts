import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Lease } from '@mmgrid/proto';
import type { Keys } from './keys.js';

/**
 * A dispatch's lease. The BullMQ lock token of the task is `<fencingToken>.<leaseId>`, so the
 * lock that BullMQ checks on completion is the lease itself: a result is committed only while
 * its lease is the current one, whichever replica receives it. The fencing token increases
 * grid-wide with every dispatch; the lease id is random so a token cannot be guessed.
 */
export interface LeaseGrant {
  readonly leaseId: string;
  readonly fencingToken: number;
  readonly lockToken: string;
}

export async function grantLease(redis: Redis, keys: Keys): Promise<LeaseGrant> {
  const fencingToken = await redis.incr(keys.fence());
  const leaseId = randomBytes(12).toString('base64url');
  return { leaseId, fencingToken, lockToken: lockTokenOf(leaseId, fencingToken) };
}

export function lockTokenOf(leaseId: string, fencingToken: number): string {
  return `${fencingToken}.${leaseId}`;
}

/** "<queue>/<bull job id>" names where a task lives. */
export function taskRefOf(queue: string, bullJobId: string): string {
  return `${queue}/${bullJobId}`;
}

export function parseTaskRef(ref: string): { queue: string; bullJobId: string } | undefined {
  const slash = ref.indexOf('/');
  if (slash <= 0 || slash === ref.length - 1) return undefined;
  return { queue: ref.slice(0, slash), bullJobId: ref.slice(slash + 1) };
}

/**
 * BullMQ job id of a task: "<job id>-<task id>", with ".<generation>" for the runs that
 * RetryJob starts (each generation is a new BullMQ job).
 */
export function bullJobIdOf(jobId: string, taskId: string, generation = 0): string {
  return generation === 0 ? `${jobId}-${taskId}` : `${jobId}-${taskId}.${generation}`;
}

export function parseBullJobId(bullJobId: string): { jobId: string; taskId: string; generation: number } | undefined {
  const match = /^([^-]+)-([^-.]+)(?:\.(\d+))?$/.exec(bullJobId);
  if (!match?.[1] || !match[2]) return undefined;
  return { jobId: match[1], taskId: match[2], generation: match[3] ? Number(match[3]) : 0 };
}

export function leaseToProto(grant: LeaseGrant, taskRef: string, durationMs: number): Lease {
  return { leaseId: grant.leaseId, fencingToken: grant.fencingToken, taskRef, durationMs };
}
