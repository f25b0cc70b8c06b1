import { bestWorker, canRun, canTakeNow, type TaskRequirements } from '@mmgrid/core';
import type { WorkerSession } from './worker-session.js';

/** Workers (and owners) that already answered a task: its next replica goes elsewhere. */
export interface Exclusion {
  readonly workerIds: ReadonlySet<string>;
  readonly owners: ReadonlySet<string>;
}

/**
 * The workers connected to this replica and their free slots. Dispatch loops wait here for a
 * slot instead of polling, and take the best worker for each task.
 */
export class WorkerRegistry {
  private readonly sessions = new Map<string, WorkerSession>();
  private readonly waiters = new Map<string, Set<() => void>>();

  /** @param onSlotsChanged called when a worker's busy slots change (to refresh fleet views). */
  constructor(private readonly onSlotsChanged: (session: WorkerSession) => void = () => undefined) {}

  add(session: WorkerSession): void {
    this.sessions.set(session.sessionId, session);
    for (const kind of session.slots.keys()) this.notify(kind);
  }

  remove(session: WorkerSession): void {
    this.sessions.delete(session.sessionId);
  }

  byWorkerId(workerId: string): WorkerSession[] {
    return [...this.sessions.values()].filter((s) => s.workerId === workerId);
  }

  all(): WorkerSession[] {
    return [...this.sessions.values()];
  }

  /**
   * The sessions that may get tasks (not closed, not quarantined), without copying them
   * (placement walks them for every task).
   */
  private *live(): Generator<WorkerSession> {
    for (const s of this.sessions.values()) if (!s.closed && !s.quarantined) yield s;
  }

  /** Live sessions outside `exclude`: other workers, of other owners where one can run the kind. */
  private *eligible(kind: string, requirements: TaskRequirements, exclude: Exclusion): Generator<WorkerSession> {
    const otherOwners = [...this.live()].some((s) => !exclude.owners.has(s.owner) && !exclude.workerIds.has(s.workerId) && canRun(s, kind, requirements).ok);
    for (const s of this.live()) {
      if (exclude.workerIds.has(s.workerId)) continue;
      // Replicas go to other owners when any is connected; a grid with one owner (one shared
      // worker token) still checks results on other machines.
      if (otherOwners && exclude.owners.has(s.owner)) continue;
      yield s;
    }
  }

  /** Whether some connected worker could take a task of this kind and requirements now. */
  hasFreeSlot(kind: string, requirements: TaskRequirements): boolean {
    for (const s of this.live()) if (canTakeNow(s, kind, requirements)) return true;
    return false;
  }

  /**
   * Free slots that could take a task of this kind and requirements now, counted up to `atLeast`
   * (the walk over the fleet stops there: callers only need to know whether there are that
   * many). A task that needs GPU memory counts one per worker: whether a second one fits is
   * known only once the first holds its share.
   */
  freeSlots(kind: string, requirements: TaskRequirements, atLeast = Number.POSITIVE_INFINITY): number {
    const onePerWorker = requirements.minVramBytes > 0;
    let free = 0;
    for (const s of this.live()) {
      if (!canTakeNow(s, kind, requirements)) continue;
      const offer = s.slots.get(kind);
      free += onePerWorker ? 1 : Math.max(0, (offer?.slots ?? 0) - (offer?.busy ?? 0));
      if (free >= atLeast) break;
    }
    return free;
  }

  /**
   * Takes a slot on the best worker for the task (see rankWorkers: warm model, fewest tasks
   * of the same job, least loaded), or returns undefined when none can take it now. Workers in
   * `exclude` (those that already answered the task, under verification) are passed over.
   */
  reserve(kind: string, requirements: TaskRequirements, jobId: string, exclude?: Exclusion): WorkerSession | undefined {
    const candidates = exclude ? this.eligible(kind, requirements, exclude) : this.live();
    const best = bestWorker(candidates, kind, requirements, (s) => s.tasksOfJob(jobId));
    const slot = best?.slots.get(kind);
    if (!best || !slot) return undefined;
    slot.busy += 1;
    this.onSlotsChanged(best);
    return best;
  }

  /** Takes a free slot of `kind` on this very worker (a canary for it), or returns false. */
  take(session: WorkerSession, kind: string): boolean {
    const slot = session.slots.get(kind);
    if (session.closed || session.draining || !slot || slot.busy >= slot.slots) return false;
    slot.busy += 1;
    this.onSlotsChanged(session);
    return true;
  }

  /** Gives back a slot taken by reserve() and wakes a loop waiting for one. */
  release(session: WorkerSession, kind: string): void {
    const slot = session.slots.get(kind);
    if (slot && slot.busy > 0) slot.busy -= 1;
    this.onSlotsChanged(session);
    this.notify(kind);
  }

  /** Whether a dispatch loop waits for a slot of `kind` (real work is pending). */
  hasWaiters(kind: string): boolean {
    return (this.waiters.get(kind)?.size ?? 0) > 0;
  }

  /** Resolves when a slot of `kind` may have become free (or `signal` aborts). */
  waitForSlot(kind: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      let set = this.waiters.get(kind);
      if (!set) {
        set = new Set();
        this.waiters.set(kind, set);
      }
      const waiters = set;
      const done = (): void => {
        waiters.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Wakes every loop waiting on `kind` (a slot freed, a worker joined or changed). */
  notify(kind: string): void {
    const set = this.waiters.get(kind);
    if (!set) return;
    for (const wake of [...set]) wake();
  }

  /** Wakes every loop (GPU memory changed on a heartbeat, a worker left…). */
  notifyAll(): void {
    for (const kind of [...this.waiters.keys()]) this.notify(kind);
  }
}
