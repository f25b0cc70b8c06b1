import type { Job as BullJob } from 'bullmq';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import { NEW_TRUST, type JsonValue, type TrustRecord, type TrustStanding, type WorkerCapability } from '@mmgrid/core';
import type { CoordinatorMessage, GpuStats, Hello, WorkerMessage } from '@mmgrid/proto';
import type { TaskQueue } from './task-queue.js';
import type { TaskData } from './task-queues.js';

/**
 * A canary running on a worker: a synthetic task only this replica knows of (it is in no
 * queue and no job), whose right output is known in advance. See canaries.ts.
 */
export interface CanaryRun {
  readonly leaseId: string;
  readonly fencingToken: number;
  readonly taskRef: string;
  readonly kind: string;
  readonly expected: JsonValue;
  readonly startedAt: number;
  /** After this (ms) the canary is dropped and its slot freed (the worker never answered). */
  readonly deadline: number;
}

/** A task running on a worker under a lease. */
export interface ActiveLease {
  readonly leaseId: string;
  readonly fencingToken: number;
  readonly lockToken: string;
  readonly kind: string;
  readonly queue: TaskQueue;
  readonly taskRef: string;
  readonly job: BullJob<TaskData>;
  readonly attempt: number;
  readonly startedAt: number;
  /** When the task became ready to run (added to its queue, or its last input ended), ms. */
  readonly readySince: number;
  readonly durationMs: number;
  /** GPU memory the task reserved on the worker, and on which of its GPUs (-1: none). */
  readonly vramBytes: number;
  readonly gpuIndex: number;
}

export interface SlotCount {
  /** Slots the worker offers for the kind. */
  slots: number;
  busy: number;
  models: readonly string[];
}

/** One worker's Connect stream, as seen by the replica it is connected to. */
export class WorkerSession implements WorkerCapability {
  readonly connectedAt: number;
  lastHeartbeatAt: number;
  draining = false;
  closed = false;
  warmModels: string[];
  gpuStats: GpuStats[] = [];
  readonly slots = new Map<string, SlotCount>();
  readonly leases = new Map<string, ActiveLease>();
  /** The canary it runs (at most one at a time), if any. */
  canary: CanaryRun | undefined = undefined;
  /** The queue of the latest real task of each kind it was given (a canary's task ref looks like one). */
  readonly recentQueues = new Map<string, string>();
  /** Its result-verification record, as last read or updated on this replica. */
  trust: TrustRecord = NEW_TRUST;
  /** 'quarantined': placement gives it no tasks. */
  standing: TrustStanding = 'trusted';

  constructor(
    readonly sessionId: string,
    readonly hello: Hello,
    private readonly call: ServerDuplexStream<WorkerMessage, CoordinatorMessage>,
    now: number,
    /**
     * Ends the stream with an error the worker sees: UNAVAILABLE (it reconnects), or
     * UNAUTHENTICATED when its token was revoked.
     */
    readonly kick: (reason: string, code?: 'UNAVAILABLE' | 'UNAUTHENTICATED') => void,
    /** The id of the token the worker connected with ("" on an open grid). */
    readonly tokenId = '',
  ) {
    this.connectedAt = now;
    this.lastHeartbeatAt = now;
    this.warmModels = [...hello.warmModels];
    for (const offer of hello.kinds) this.slots.set(offer.kind, { slots: offer.slots, busy: 0, models: [...offer.models] });
  }

  get workerId(): string {
    return this.hello.workerId;
  }

  /** Who runs the worker, for keeping replicas of a task apart: its token, or itself on an open grid. */
  get owner(): string {
    return this.tokenId === '' ? this.workerId : `token:${this.tokenId}`;
  }

  get quarantined(): boolean {
    return this.standing === 'quarantined';
  }

  get name(): string {
    return this.hello.name || this.hello.workerId;
  }

  /** The kinds this worker offers, with their slots: a live view (placement reads it for every task). */
  get kinds(): ReadonlyMap<string, Readonly<SlotCount>> {
    return this.slots;
  }

  /** GPUs with their free memory as of the last heartbeat (or the hello), and what grid tasks hold. */
  get gpus(): { memoryFreeBytes: number; computeCapability: string; reservedBytes: number }[] {
    return this.hello.gpus.map((gpu, index) => {
      const stats = this.gpuStats.find((s) => s.uuid === gpu.uuid);
      const free = stats ? Math.max(0, stats.memoryTotalBytes - stats.memoryUsedBytes) : gpu.memoryFreeBytes;
      let reserved = 0;
      for (const lease of this.leases.values()) if (lease.gpuIndex === index) reserved += lease.vramBytes;
      return { memoryFreeBytes: free, computeCapability: gpu.computeCapability, reservedBytes: reserved };
    });
  }

  get vramBudgetBytes(): number {
    return this.hello.vramBudgetBytes;
  }

  get vramReservedBytes(): number {
    let reserved = 0;
    for (const lease of this.leases.values()) reserved += lease.vramBytes;
    return reserved;
  }

  /** Tasks of a job running here (so a job's shards spread over workers). */
  tasksOfJob(jobId: string): number {
    let n = 0;
    for (const lease of this.leases.values()) if (lease.job.data.jobId === jobId) n += 1;
    return n;
  }

  busySlots(): number {
    let busy = 0;
    for (const s of this.slots.values()) busy += s.busy;
    return busy;
  }

  send(message: CoordinatorMessage): boolean {
    if (this.closed) return false;
    try {
      this.call.write(message);
      return true;
    } catch {
      return false;
    }
  }
}
