import type { BlobRef, JsonObject } from '@mmgrid/core';
import type { Logger } from '../logger.js';
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

/** What a backend's start-up check found. */
export interface BackendCheck {
  /** Models the server has ready (announced as warm with every heartbeat). */
  readonly models: readonly string[];
  /** One line for the start-up summary: "vLLM at http://127.0.0.1:8000, 2 models". */
  readonly note: string;
}

/**
 * A model server or runtime connected to the grid (a chat server, a speech-to-text server,
 * ONNX Runtime, a KServe server, a command): it serves some task kinds. Each is checked when
 * the worker starts; one that fails its check is left out, with a clear message, and the
 * worker offers the rest.
 */
export interface Backend {
  /** Its name in the worker's config, for logs and the summary. */
  readonly name: string;
  /** What it is: "openai-chat", "openai-transcribe", "onnx", "kserve", "exec". */
  readonly type: string;
  /** The kinds it serves when its check passes. */
  readonly kinds: readonly string[];
  /**
   * Checks the server answers and serves what the config names (within `signal`).
   * @throws BackendUnavailableError saying what is wrong and how to fix it.
   */
  check(signal: AbortSignal): Promise<BackendCheck>;
  /** Its task handlers (asked for once, after a passing check). */
  handlers(): TaskHandler[];
  close?(): Promise<void>;
}

/** A backend failed its check: the message says what was tried and what went wrong. */
export class BackendUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackendUnavailableError';
  }
}

/** What a backend is made with besides its config section. */
export interface BackendContext {
  /** The folder of the worker's config file: relative paths in a section are relative to it. */
  readonly baseDir: string;
  readonly logger: Logger;
  /**
   * Where backends make per-task folders (the exec backend's). The worker passes
   * `<stateDir>/work`. @default the OS temp folder
   */
  readonly workDir?: string;
}
