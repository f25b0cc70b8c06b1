import type { BlobRef, JsonObject } from '@mmgrid/core';
import type { UpstreamOutput } from '@mmgrid/proto';

/** Everything a task handler gets to do one task. */
export interface TaskContext {
  readonly jobId: string;
  readonly taskId: string;
  readonly kind: string;
  /** 1 for the first try. */
  readonly attempt: number;
  readonly params: JsonObject;
  /** Blob inputs, downloaded and hash-checked: input name → local file. */
  readonly files: ReadonlyMap<string, string>;
  /** Media type of each blob input, as the coordinator detected it from the bytes. */
  readonly mediaTypes: ReadonlyMap<string, string>;
  /** Inline text inputs by name. */
  readonly texts: ReadonlyMap<string, string>;
  readonly upstream: readonly UpstreamOutput[];
  /** Aborted when the task is cancelled, times out, or the worker stops. */
  readonly signal: AbortSignal;
  progress(fraction: number, message?: string): void;
  /** Stores an output blob with the coordinator and returns its reference. */
  putBlob(bytes: Uint8Array, name: string, mediaType: string): Promise<BlobRef>;
}

/**
 * Runs one task kind. Returns the kind's output (checked against its schema before it is
 * sent); throws TaskFailedError (or anything) to fail the attempt.
 */
export interface TaskHandler {
  readonly kind: string;
  /** A short description for the start-up summary. */
  readonly description: string;
  /** Models this handler serves, announced so that tasks requiring one (`requires.model`) can come here. */
  readonly models?: readonly string[];
  run(ctx: TaskContext): Promise<unknown>;
  close?(): Promise<void>;
}
