import type { Job as BullJob } from 'bullmq';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import type { CoordinatorMessage, GpuStats, Hello, WorkerMessage } from '@mmgrid/proto';
import type { TaskData } from './task-queues.js';

/** A task running on a worker under a lease. */
export interface ActiveLease {
  readonly leaseId: string;
  readonly fencingToken: number;
  readonly lockToken: string;
  readonly kind: string;
  readonly taskRef: string;
  readonly job: BullJob<TaskData>;
  readonly attempt: number;
  readonly startedAt: number;
  readonly durationMs: number;
}

export interface SlotCount {
  total: number;
  busy: number;
}

/** One worker's Connect stream, as seen by the replica it is connected to. */
export class WorkerSession {
  readonly connectedAt: number;
  lastHeartbeatAt: number;
  draining = false;
  closed = false;
  warmModels: string[];
  gpuStats: GpuStats[] = [];
  readonly slots = new Map<string, SlotCount>();
  readonly leases = new Map<string, ActiveLease>();

  constructor(
    readonly sessionId: string,
    readonly hello: Hello,
    private readonly call: ServerDuplexStream<WorkerMessage, CoordinatorMessage>,
    now: number,
    /** Ends the stream with an error the worker sees (it will reconnect). */
    readonly kick: (reason: string) => void,
  ) {
    this.connectedAt = now;
    this.lastHeartbeatAt = now;
    this.warmModels = [...hello.warmModels];
    for (const offer of hello.kinds) this.slots.set(offer.kind, { total: offer.slots, busy: 0 });
  }

  get workerId(): string {
    return this.hello.workerId;
  }

  get name(): string {
    return this.hello.name || this.hello.workerId;
  }

  freeSlots(kind: string): number {
    if (this.closed || this.draining) return 0;
    const slot = this.slots.get(kind);
    return slot ? Math.max(0, slot.total - slot.busy) : 0;
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
