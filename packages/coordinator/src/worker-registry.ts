import type { WorkerSession } from './worker-session.js';

/**
 * The workers connected to this replica, and the free slots per task kind. Dispatch loops
 * wait here for a slot instead of polling.
 */
export class WorkerRegistry {
  private readonly sessions = new Map<string, WorkerSession>();
  private readonly waiters = new Map<string, Set<() => void>>();

  add(session: WorkerSession): void {
    this.sessions.set(session.sessionId, session);
    for (const kind of session.slots.keys()) this.notify(kind);
  }

  remove(session: WorkerSession): void {
    this.sessions.delete(session.sessionId);
  }

  get(sessionId: string): WorkerSession | undefined {
    return this.sessions.get(sessionId);
  }

  byWorkerId(workerId: string): WorkerSession[] {
    return [...this.sessions.values()].filter((s) => s.workerId === workerId);
  }

  all(): WorkerSession[] {
    return [...this.sessions.values()];
  }

  /** Kinds offered by at least one connected worker. */
  kinds(): Set<string> {
    const kinds = new Set<string>();
    for (const s of this.sessions.values()) for (const k of s.slots.keys()) kinds.add(k);
    return kinds;
  }

  hasFreeSlot(kind: string): boolean {
    for (const s of this.sessions.values()) if (s.freeSlots(kind) > 0) return true;
    return false;
  }

  /**
   * Takes a slot of `kind` on the least loaded worker that has one free (most free slots of
   * that kind, then fewest busy in all), or returns undefined.
   */
  reserve(kind: string): WorkerSession | undefined {
    let best: WorkerSession | undefined;
    for (const s of this.sessions.values()) {
      const free = s.freeSlots(kind);
      if (free === 0) continue;
      if (!best) {
        best = s;
        continue;
      }
      const bestFree = best.freeSlots(kind);
      if (free > bestFree || (free === bestFree && s.busySlots() < best.busySlots())) best = s;
    }
    const slot = best?.slots.get(kind);
    if (!best || !slot) return undefined;
    slot.busy += 1;
    return best;
  }

  /** Gives back a slot taken by reserve() and wakes a loop waiting for one. */
  release(session: WorkerSession, kind: string): void {
    const slot = session.slots.get(kind);
    if (slot && slot.busy > 0) slot.busy -= 1;
    this.notify(kind);
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

  /** Wakes every loop waiting on `kind` (a slot freed, a worker joined or changed its slots). */
  notify(kind: string): void {
    const set = this.waiters.get(kind);
    if (!set) return;
    for (const wake of [...set]) wake();
  }
}
