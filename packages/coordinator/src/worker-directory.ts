import type { Redis } from 'ioredis';
import { trustScore, type WorkerCapability } from '@mmgrid/core';
import type { WorkerView } from '@mmgrid/proto';
import type { Keys } from './keys.js';
import type { WorkerSession } from './worker-session.js';

/**
 * Fleet view shared by all replicas: each replica writes the workers connected to it, so
 * AdminService.ListWorkers on any replica sees the whole grid. Entries of workers that went
 * silent (a replica died without cleaning up) are dropped when read.
 */
export class WorkerDirectory {
  private readonly pending = new Map<string, NodeJS.Timeout>();
  private offered: { readonly at: number; readonly kinds: ReadonlySet<string> } | undefined;
  /** Bumped by forgetOffered, so a read that began before a worker connected is not cached. */
  private offeredGeneration = 0;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly coordinatorId: string,
    private readonly staleAfterMs: number,
    private readonly now: () => number,
    /** Result verification is on: views carry trust scores. */
    private readonly verified = false,
  ) {}

  viewOf(session: WorkerSession): WorkerView {
    return {
      workerId: session.workerId,
      name: session.name,
      sessionId: session.sessionId,
      coordinatorId: this.coordinatorId,
      host: session.hello.host,
      gpus: session.hello.gpus,
      slots: [...session.slots].map(([kind, s]) => ({ kind, total: s.slots, busy: s.busy, models: [...s.models] })),
      warmModels: session.warmModels,
      connectedAtMs: session.connectedAt,
      lastHeartbeatMs: session.lastHeartbeatAt,
      draining: session.draining,
      version: session.hello.version,
      gpuStats: session.gpuStats,
      vramBudgetBytes: session.vramBudgetBytes,
      vramReservedBytes: session.vramReservedBytes,
      verified: this.verified,
      trustScore: this.verified ? trustScore(session.trust) : 0,
      resultsAgreed: session.trust.agreed,
      resultsDisagreed: session.trust.disagreed,
      quarantined: session.quarantined,
    };
  }

  /**
   * Publishes the session's view soon: changes within PUBLISH_DELAY_MS (a burst of tasks
   * starting and ending) are written once.
   */
  touch(session: WorkerSession): void {
    if (this.pending.has(session.sessionId) || session.closed) return;
    const timer = setTimeout(() => {
      this.pending.delete(session.sessionId);
      if (!session.closed) void this.publish(session).catch(() => undefined);
    }, PUBLISH_DELAY_MS);
    timer.unref();
    this.pending.set(session.sessionId, timer);
  }

  async publish(session: WorkerSession): Promise<void> {
    await this.redis.hset(this.keys.workers(), session.workerId, JSON.stringify(this.viewOf(session)));
  }

  async remove(session: WorkerSession): Promise<void> {
    const raw = await this.redis.hget(this.keys.workers(), session.workerId);
    // Only remove the entry if it still describes this session (the worker may have reconnected elsewhere).
    if (raw && (JSON.parse(raw) as WorkerView).sessionId === session.sessionId) {
      await this.redis.hdel(this.keys.workers(), session.workerId);
    }
  }

  /**
   * The kinds some connected worker (of any replica) offers, for planning a job. Read from the
   * fleet view at most every OFFERED_CACHE_MS, and afresh after a worker connects anywhere
   * (forgetOffered), so a submit does not read the whole fleet.
   */
  async offeredKinds(): Promise<ReadonlySet<string>> {
    const at = this.now();
    if (this.offered && at - this.offered.at < OFFERED_CACHE_MS) return this.offered.kinds;
    const generation = this.offeredGeneration;
    const kinds = new Set((await this.capabilities()).flatMap((w) => [...w.kinds.keys()]));
    if (generation === this.offeredGeneration) this.offered = { at, kinds };
    return kinds;
  }

  /** A worker connected (here or on another replica): its kinds may be new. */
  forgetOffered(): void {
    this.offered = undefined;
    this.offeredGeneration += 1;
  }

  /** The fleet as placement sees it, for explaining why tasks wait. */
  async capabilities(): Promise<WorkerCapability[]> {
    return (await this.list()).map(capabilityOf);
  }

  async list(): Promise<WorkerView[]> {
    const raw = await this.redis.hgetall(this.keys.workers());
    const views: WorkerView[] = [];
    const stale: string[] = [];
    for (const [id, json] of Object.entries(raw)) {
      const view = JSON.parse(json) as WorkerView;
      if (this.now() - view.lastHeartbeatMs > this.staleAfterMs) stale.push(id);
      else views.push(view);
    }
    if (stale.length > 0) await this.redis.hdel(this.keys.workers(), ...stale);
    return views.sort((a, b) => a.name.localeCompare(b.name));
  }
}

const PUBLISH_DELAY_MS = 100;
/** How long the kinds the fleet offers are taken as known (see offeredKinds). */
const OFFERED_CACHE_MS = 2_000;

/** A worker view (possibly from another replica) as a placement capability. */
export function capabilityOf(view: WorkerView): WorkerCapability {
  return {
    workerId: view.workerId,
    name: view.name,
    kinds: new Map(view.slots.map((s) => [s.kind, { slots: s.total, busy: s.busy, models: s.models }])),
    gpus: view.gpus.map((gpu) => {
      const stats = view.gpuStats.find((g) => g.uuid === gpu.uuid);
      return {
        memoryFreeBytes: stats ? Math.max(0, stats.memoryTotalBytes - stats.memoryUsedBytes) : gpu.memoryFreeBytes,
        computeCapability: gpu.computeCapability,
      };
    }),
    vramBudgetBytes: view.vramBudgetBytes,
    vramReservedBytes: view.vramReservedBytes,
    warmModels: view.warmModels,
    draining: view.draining,
  };
}
