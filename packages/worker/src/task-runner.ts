import { isBuiltinWorkerKind, parseTaskOutput, type BlobRef, type JsonObject } from '@mmgrid/core';
import type { ErrorDetail, TaskAssignment, TaskRunStats } from '@mmgrid/proto';

import type { TaskContext, TaskHandler } from './backends/backend.js';
import type { BlobCache, BlobClientLike } from './blob-cache.js';
import { TaskFailedError, toTaskFailure, type TaskFailureCode } from './errors.js';
import type { WorkerMetrics, WorkerTaskOutcome } from './metrics.js';

export type TaskOutcome =
  | { readonly ok: true; readonly outputJson: string; readonly blobs: BlobRef[]; readonly stats: TaskRunStats }
  | { readonly ok: false; readonly error: ErrorDetail; readonly stats: TaskRunStats };

/** Why a running task was stopped from outside. */
export type StopReason = 'cancelled' | 'draining' | 'lost';

/**
 * Runs one assignment: fetches its blobs (hash-checked), runs the kind's handler under the
 * task's timeout and cancellation, and checks the output against the kind's schema before it
 * leaves the machine.
 */
export class TaskRunner {
  private readonly handlers: ReadonlyMap<string, TaskHandler>;

  constructor(
    handlers: readonly TaskHandler[],
    private readonly cache: BlobCache,
    private readonly blobs: BlobClientLike,
    private readonly metrics?: Pick<WorkerMetrics, 'taskFinished'>,
  ) {
    this.handlers = new Map(handlers.map((h) => [h.kind, h]));
  }

  async run(assignment: TaskAssignment, stop: AbortSignal, onProgress: (fraction: number, message: string) => void): Promise<TaskOutcome> {
    const started = performance.now();
    const outcome = await this.attempt(assignment, stop, onProgress);
    this.metrics?.taskFinished(assignment.kind, outcomeLabel(outcome), (performance.now() - started) / 1000);
    return outcome;
  }

  private async attempt(assignment: TaskAssignment, stop: AbortSignal, onProgress: (fraction: number, message: string) => void): Promise<TaskOutcome> {
    const startedAtMs = Date.now();
    const stats = (): TaskRunStats => ({ startedAtMs, finishedAtMs: Date.now(), device: 'cpu', model: '' });
    const timeout = AbortSignal.timeout(Math.max(1, assignment.timeoutMs || 60_000));
    const signal = AbortSignal.any([stop, timeout]);
    const produced: BlobRef[] = [];
    // Inputs are held in the cache while the task runs, so eviction cannot take them.
    const held: (() => void)[] = [];
    try {
      const handler = this.handlers.get(assignment.kind);
      if (!handler) throw new TaskFailedError('UNSUPPORTED_KIND', `this worker does not run ${assignment.kind}`, true);
      const files = new Map<string, string>();
      const mediaTypes = new Map<string, string>();
      for (const { name, blob } of assignment.blobs) {
        if (!blob) continue;
        const { path, release } = await this.cache.acquire({ sha256: blob.sha256, size: blob.size, mediaType: blob.mediaType, name: blob.name });
        held.push(release);
        files.set(name, path);
        mediaTypes.set(name, blob.mediaType);
      }
      const ctx: TaskContext = {
        jobId: assignment.jobId,
        taskId: assignment.taskId,
        kind: assignment.kind,
        attempt: Math.max(1, assignment.attempt),
        params: parseParams(assignment.paramsJson),
        files,
        mediaTypes,
        texts: new Map(Object.entries(assignment.texts)),
        upstream: assignment.upstream,
        signal,
        progress: (fraction, message = '') => onProgress(fraction, message),
        putBlob: async (bytes, name, mediaType) => {
          const { blob } = await this.blobs.uploadBytes(bytes, { name, mediaType });
          produced.push(blob);
          return blob;
        },
      };
      const output = await abortable(handler.run(ctx), signal);
      const outputJson = JSON.stringify(output);
      if (isBuiltinWorkerKind(assignment.kind)) {
        try {
          parseTaskOutput(assignment.kind, outputJson);
        } catch (err) {
          throw new TaskFailedError('INVALID_OUTPUT', err instanceof Error ? err.message : String(err), true);
        }
      }
      return { ok: true, outputJson, blobs: produced, stats: stats() };
    } catch (err) {
      const failure = signal.aborted ? stopFailure(stop, timeout, assignment.timeoutMs) : toTaskFailure(err);
      return { ok: false, error: { code: failure.code, message: failure.message, retryable: failure.retryable }, stats: stats() };
    } finally {
      for (const release of held) release();
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.handlers.values()].map((h) => (h.close ? h.close() : Promise.resolve())));
  }
}

/** Stopped from outside (cancelled, handed back on drain, lease lost) is not the task's own failure. */
function outcomeLabel(outcome: TaskOutcome): WorkerTaskOutcome {
  if (outcome.ok) return 'succeeded';
  return outcome.error.code === ('CANCELLED' satisfies TaskFailureCode) || outcome.error.code === ('WORKER_DRAINING' satisfies TaskFailureCode) ? 'cancelled' : 'failed';
}

function parseParams(json: string): JsonObject {
  if (json === '') return {};
  try {
    const value: unknown = JSON.parse(json);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) return value as JsonObject;
  } catch {
    // fall through
  }
  throw new TaskFailedError('INVALID_PARAMS', 'task parameters are not a JSON object', false);
}

function stopFailure(stop: AbortSignal, timeout: AbortSignal, timeoutMs: number): TaskFailedError {
  if (timeout.aborted && !stop.aborted) return new TaskFailedError('TIMEOUT', `the task ran longer than its ${timeoutMs} ms limit`, true);
  const reason = stop.reason as StopReason | undefined;
  if (reason === 'draining') return new TaskFailedError('WORKER_DRAINING', 'the worker is shutting down; the task is handed back', true);
  return new TaskFailedError('CANCELLED', reason === 'lost' ? 'the lease was lost' : 'cancelled', false);
}

/**
 * Settles as soon as `signal` aborts, even if the work itself cannot be interrupted. The work
 * is given up then: if it fails later (a handler that honours the signal rejects because of
 * it), that failure is dropped, not left unhandled, which would end the worker process.
 */
export function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  work.catch(() => undefined);
  if (signal.aborted) return Promise.reject(new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
