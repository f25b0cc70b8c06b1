import { Redis } from 'ioredis';
import type { JobView, MmgridClient } from '@mmgrid/client';

export interface Audit {
  readonly jobs: number;
  readonly completed: number;
  /** Jobs that did not complete. */
  readonly lost: number;
  readonly tasks: number;
  /** Tasks whose result was committed more than once. */
  readonly duplicates: number;
  /** Tasks that succeeded without a recorded commit. */
  readonly uncommitted: number;
}

interface TaskRecord {
  readonly state: string;
  readonly commits?: number;
  readonly kind: string;
}

/**
 * Checks a set of jobs after a fault: every job completed, and every task result was
 * committed exactly once (the coordinator counts commits in each task's record).
 */
export async function audit(redisUrl: string, jobs: readonly JobView[], prefix = 'mmgrid'): Promise<Audit & Record<string, number>> {
  const redis = new Redis(redisUrl);
  try {
    let tasks = 0;
    let duplicates = 0;
    let uncommitted = 0;
    for (const job of jobs) {
      const records = await redis.hgetall(`${prefix}:job:${job.id}:tasks`);
      for (const json of Object.values(records)) {
        const r = JSON.parse(json) as TaskRecord;
        if (r.kind === 'job.assemble') continue;
        tasks += 1;
        if ((r.commits ?? 0) > 1) {
          duplicates += 1;
          process.stdout.write(`[audit] task committed ${r.commits ?? 0} times: job ${job.id} ${json}\n`);
        }
        if (r.state === 'succeeded' && (r.commits ?? 0) !== 1) {
          uncommitted += 1;
          if ((r.commits ?? 0) === 0) process.stdout.write(`[audit] succeeded without a commit: job ${job.id} ${json}\n`);
        }
      }
    }
    const completed = jobs.filter((j) => j.state === 'completed').length;
    return { jobs: jobs.length, completed, lost: jobs.length - completed, tasks, duplicates, uncommitted };
  } finally {
    redis.disconnect();
  }
}

/** Submits `count` selftest jobs and returns them. */
export async function submitSelftests(client: MmgridClient, count: number, params: Record<string, string>): Promise<JobView[]> {
  const jobs: JobView[] = [];
  for (let i = 0; i < count; i++) jobs.push(await client.submit([], { pipeline: 'selftest', params }));
  return jobs;
}

/** Waits for every job to end (each through its own event stream) and returns them. */
export async function waitForAll(client: MmgridClient, jobs: readonly JobView[]): Promise<JobView[]> {
  return Promise.all(jobs.map((j) => client.waitForJob(j.id)));
}

/** Resolves with the first task of the job that starts running, and the worker running it. */
export async function firstRunningTask(client: MmgridClient, jobId: string): Promise<{ taskId: string; worker: string }> {
  for await (const event of client.watch(jobId)) {
    if (event.type === 'task' && event.state === 'running' && event.worker) return { taskId: event.taskId, worker: event.worker };
  }
  throw new Error(`job ${jobId} ended without a task running`);
}
