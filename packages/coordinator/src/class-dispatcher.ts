import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import type { Job as BullJob } from 'bullmq';
import type { TaskRequirements } from '@mmgrid/core';
import { grantLease, type LeaseGrant } from './lease.js';
import type { Keys } from './keys.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { TaskQueue } from './task-queue.js';
import type { TaskData } from './task-queues.js';
import type { WorkerRegistry } from './worker-registry.js';
import type { Redis } from 'ioredis';

export interface ClassDispatcherDeps {
  readonly redis: Redis;
  readonly keys: Keys;
  readonly registry: WorkerRegistry;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Hands a fetched task to a worker; false when none could take it (it went back). */
  readonly dispatch: (queue: TaskQueue, job: BullJob<TaskData>, grant: LeaseGrant) => Promise<boolean>;
}

/** With nothing marked ready, every queue is tried again after this long. */
const SAFETY_POLL_MS = 2_000;

/**
 * Tasks of one class being fetched and handed out at once, at most (and never more than the
 * free slots that could take them). Each task costs a few Redis round trips before its worker
 * has it; overlapping them keeps slots busy when tasks are short.
 */
const MAX_IN_FLIGHT = 8;

/**
 * The dispatch loop for one class of tasks (one kind, one requirement set) on this replica.
 * Each tenant has its own queue of the class; when a worker that can run the class has a
 * free slot, the loop takes one task from the next tenant in turn that may have one ready,
 * so a tenant with a long backlog cannot starve a tenant that submits later: the late
 * tenant's tasks start at the next free slot. Queues are marked ready by wake-ups (a
 * submission, a finished input, a retry coming due, a lapsed lease) from any replica, with a
 * slow poll as a safety net, so idle queues cost no Redis calls. Up to MAX_IN_FLIGHT tasks
 * are on their way to workers at once, one per free slot.
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
  private safety: NodeJS.Timeout | undefined;
  /** Rounds (fetch, checks, assignment of one task) under way. */
  private readonly rounds = new Set<Promise<void>>();
  private inFlight = 0;

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

  /** Every queue may have tasks ready (a wake-up may have been lost). */
  markAllReady(): void {
    for (const q of this.queues) {
      this.ready.add(q.name);
      // Counted as a wake-up, so a round whose fetch began before it cannot clear it.
      this.wakes.set(q.name, (this.wakes.get(q.name) ?? 0) + 1);
    }
    this.wake?.();
  }

  start(): void {
    this.loop ??= this.run();
    // The safety net runs whatever else happens, so a busy queue cannot hide a lost wake-up.
    this.safety ??= setInterval(() => this.markAllReady(), SAFETY_POLL_MS);
    this.safety.unref();
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

  /** Waits for a wake-up (or until the loop stops). */
  private async sleep(): Promise<void> {
    if (this.abort.signal.aborted) return;
    await new Promise<void>((resolve) => {
      this.wake = resolve;
    });
    this.wake = undefined;
  }

  private async run(): Promise<void> {
    const { registry } = this.deps;
    const signal = this.abort.signal;
    while (!signal.aborted) {
      const free = this.inFlight >= MAX_IN_FLIGHT ? 0 : registry.freeSlots(this.kind, this.requirements, this.inFlight + 1);
      if (free <= this.inFlight) {
        // Every free slot already has a task on its way (or none is free): wait for a round to
        // end, or for a slot to free up.
        if (this.inFlight > 0) await this.sleep();
        else await registry.waitForSlot(this.kind, signal);
        continue;
      }
      const queue = this.nextReady();
      if (!queue) {
        await this.sleep();
        continue;
      }
      // Rounds overlap: while one waits on Redis for its task, the next fetches another. Each
      // task still goes through fetch, checks and assignment in order within its round.
      this.inFlight += 1;
      const round = this.round(queue).finally(() => {
        this.inFlight -= 1;
        this.rounds.delete(round);
        this.wake?.();
      });
      this.rounds.add(round);
    }
    await Promise.all(this.rounds);
  }

  /** Takes one task from `queue` and hands it to a worker. Never rejects. */
  private async round(queue: TaskQueue): Promise<void> {
    const { registry, logger } = this.deps;
    const signal = this.abort.signal;
    const wakesBefore = this.wakes.get(queue.name) ?? 0;
    let grant: LeaseGrant;
    let fetched: Awaited<ReturnType<TaskQueue['fetch']>>;
    try {
      grant = await grantLease(this.deps.redis, this.deps.keys);
      const start = performance.now();
      fetched = await queue.fetch(grant.lockToken);
      this.deps.metrics.redisCommand('fetch', start);
    } catch (err) {
      if (signal.aborted) return;
      logger.warn({ queue: queue.name, err: String(err) }, 'fetching a task failed; retrying in 1 s');
      await delay(1000, undefined, { signal }).catch(() => undefined);
      return;
    }
    if (!fetched.job) {
      if ((this.wakes.get(queue.name) ?? 0) === wakesBefore) this.ready.delete(queue.name);
      if (fetched.nextDelayedAt !== undefined) this.markReadyAt(queue.name, fetched.nextDelayedAt);
      return;
    }
    let placed = true;
    try {
      placed = await this.deps.dispatch(queue, fetched.job, grant);
    } catch (err) {
      logger.error(
        { jobId: fetched.job.data.jobId, taskId: fetched.job.data.taskId, queue: queue.name, task: fetched.job.id, err: String(err) },
        'dispatch failed; the task goes back when its lease lapses',
      );
    }
    if (!placed) {
      // No worker could take the task after all: this round waits for a slot to change rather
      // than letting the loop fetch it again at once.
      const ac = new AbortController();
      const stop = (): void => ac.abort();
      signal.addEventListener('abort', stop, { once: true });
      await Promise.race([registry.waitForSlot(this.kind, ac.signal), delay(SAFETY_POLL_MS, undefined, { signal: ac.signal }).catch(() => undefined)]);
      ac.abort();
      signal.removeEventListener('abort', stop);
      // The task went back to its queue, and another round's empty fetch may have cleared the
      // queue's ready mark meanwhile: mark it again so the task is not left to the safety poll.
      this.markReady(queue.name);
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
    if (this.safety) clearInterval(this.safety);
    this.wake?.();
    for (const timer of this.timers.values()) clearTimeout(timer);
    await this.loop;
  }
}
