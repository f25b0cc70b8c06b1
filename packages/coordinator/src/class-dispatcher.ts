import { setTimeout as delay } from 'node:timers/promises';
import type { Job as BullJob } from 'bullmq';
import type { TaskRequirements } from '@mmgrid/core';
import { grantLease, type LeaseGrant } from './lease.js';
import type { Keys } from './keys.js';
import type { Logger } from './logger.js';
import type { TaskQueue } from './task-queue.js';
import type { TaskData } from './task-queues.js';
import type { WorkerRegistry } from './worker-registry.js';
import type { Redis } from 'ioredis';

export interface ClassDispatcherDeps {
  readonly redis: Redis;
  readonly keys: Keys;
  readonly registry: WorkerRegistry;
  readonly logger: Logger;
  /** Hands a fetched task to a worker (or back to its queue). */
  readonly dispatch: (queue: TaskQueue, job: BullJob<TaskData>, grant: LeaseGrant) => Promise<void>;
}

/** With nothing marked ready, every queue is tried again after this long. */
const SAFETY_POLL_MS = 2_000;

/**
 * The dispatch loop for one class of tasks (one kind, one requirement set) on this replica.
 * Each tenant has its own queue of the class; when a worker that can run the class has a
 * free slot, the loop takes one task from the next tenant in turn that may have one ready,
 * so a tenant with a long backlog cannot starve a tenant that submits later: the late
 * tenant's tasks start at the next free slot. Queues are marked ready by wake-ups (a
 * submission, a finished input, a retry coming due, a lapsed lease) from any replica, with a
 * slow poll as a safety net, so idle queues cost no Redis calls.
 */
export class ClassDispatcher {
  private readonly queues: TaskQueue[] = [];
  private readonly ready = new Set<string>();
  /** Wake-ups per queue, so a wake-up that races an empty fetch is not lost. */
  private readonly wakes = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly abort = new AbortController();
  private cursor = 0;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    readonly kind: string,
    readonly requirements: TaskRequirements,
    private readonly deps: ClassDispatcherDeps,
  ) {}

  has(queue: string): boolean {
    return this.queues.some((q) => q.name === queue);
  }

  addQueue(queue: TaskQueue): void {
    if (this.has(queue.name)) return;
    this.queues.push(queue);
    this.markReady(queue.name);
  }

  /** The queue may have tasks ready now. */
  markReady(queue: string): void {
    if (!this.has(queue)) return;
    this.ready.add(queue);
    this.wakes.set(queue, (this.wakes.get(queue) ?? 0) + 1);
    this.wake?.();
  }

  start(): void {
    this.loop ??= this.run();
  }

  private nextReady(): TaskQueue | undefined {
    for (let i = 0; i < this.queues.length; i++) {
      const index = (this.cursor + i) % this.queues.length;
      const queue = this.queues[index];
      if (queue && this.ready.has(queue.name)) {
        // The queue after this one has the next turn.
        this.cursor = (index + 1) % this.queues.length;
        return queue;
      }
    }
    return undefined;
  }

  private async sleep(ms: number): Promise<boolean> {
    const signal = this.abort.signal;
    let woken = false;
    await Promise.race([
      new Promise<void>((resolve) => {
        this.wake = () => {
          woken = true;
          resolve();
        };
      }),
      delay(ms, undefined, { signal }).catch(() => undefined),
    ]);
    this.wake = undefined;
    return woken;
  }

  private async run(): Promise<void> {
    const { registry, logger } = this.deps;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      if (!registry.hasFreeSlot(this.kind, this.requirements)) {
        await registry.waitForSlot(this.kind, signal);
        continue;
      }
      const queue = this.nextReady();
      if (!queue) {
        if (!(await this.sleep(SAFETY_POLL_MS))) for (const q of this.queues) this.ready.add(q.name);
        continue;
      }
      const wakesBefore = this.wakes.get(queue.name) ?? 0;
      let grant: LeaseGrant;
      let fetched: Awaited<ReturnType<TaskQueue['fetch']>>;
      try {
        grant = await grantLease(this.deps.redis, this.deps.keys);
        fetched = await queue.fetch(grant.lockToken);
      } catch (err) {
        if (signal.aborted) break;
        logger.warn({ queue: queue.name, err: String(err) }, 'fetching a task failed; retrying in 1 s');
        await delay(1000, undefined, { signal }).catch(() => undefined);
        continue;
      }
      if (!fetched.job) {
        if ((this.wakes.get(queue.name) ?? 0) === wakesBefore) this.ready.delete(queue.name);
        if (fetched.nextDelayedAt !== undefined) this.markReadyAt(queue.name, fetched.nextDelayedAt);
        continue;
      }
      try {
        await this.deps.dispatch(queue, fetched.job, grant);
      } catch (err) {
        logger.error({ queue: queue.name, task: fetched.job.id, err: String(err) }, 'dispatch failed; the task goes back when its lease lapses');
      }
    }
  }

  /** A retry waiting out its backoff becomes ready at `at` (ms since the epoch). */
  private markReadyAt(queue: string, at: number): void {
    const existing = this.timers.get(queue);
    if (existing) clearTimeout(existing);
    const timer = setTimeout(
      () => {
        this.timers.delete(queue);
        this.markReady(queue);
      },
      Math.max(0, at - Date.now()),
    );
    timer.unref();
    this.timers.set(queue, timer);
  }

  async close(): Promise<void> {
    this.abort.abort();
    this.wake?.();
    for (const timer of this.timers.values()) clearTimeout(timer);
    await this.loop;
  }
}
