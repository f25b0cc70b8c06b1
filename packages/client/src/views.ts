import type { BlobRef, JobResultDoc, JobStateName, TaskStateName } from '@mmgrid/core';
import { JobState, Modality, TaskState, type Job, type JobEvent, type TaskExplanation, type TaskRequirements, type TokenInfo } from '@mmgrid/proto';

/**
 * The stable JSON shapes the client returns and `mmgrid … --json` prints. Times are ISO 8601
 * strings; absent values are null. See docs/cli.md.
 */
export interface JobView {
  readonly id: string;
  readonly state: JobStateName;
  readonly tenant: string;
  readonly pipeline: string;
  readonly createdAt: string;
  readonly finishedAt: string | null;
  readonly prompt: string;
  readonly inputs: readonly InputView[];
  readonly tasks: readonly TaskView[];
  readonly result: ResultView | null;
  readonly error: ErrorView | null;
  /** How many times the job was retried. */
  readonly generation: number;
}

export interface InputView {
  readonly name: string;
  readonly modality: string | null;
  readonly mediaType: string | null;
  readonly sha256: string | null;
  readonly size: number | null;
}

export interface TaskView {
  readonly id: string;
  readonly kind: string;
  /** The step's name in a declared pipeline; for a shard, its step. */
  readonly label: string | null;
  /** For a shard (a window, a frame, a chunk): its position. */
  readonly shard: number | null;
  readonly state: TaskStateName;
  readonly inputs: readonly string[];
  readonly optional: boolean;
  readonly attempts: number;
  /** Id of the worker that ran the latest attempt. */
  readonly worker: string | null;
  readonly workerName: string | null;
  readonly startedAt: string | null;
  readonly finishedAt: string | null;
  readonly error: ErrorView | null;
}

/** Why a task waits, or where it runs (`mmgrid explain`). */
export interface ExplanationView {
  readonly taskId: string;
  readonly kind: string;
  readonly state: TaskStateName;
  readonly reason: string;
  readonly requirements: RequirementsView;
  readonly capableWorkers: number;
  readonly freeCapableWorkers: number;
  readonly queuePosition: number;
}

export interface RequirementsView {
  readonly model: string | null;
  readonly minVramBytes: number;
  readonly minComputeCapability: string | null;
  readonly cpuAllowed: boolean;
}

export interface ResultView {
  readonly summary: string;
  readonly coverage: number;
  readonly partial: boolean;
  readonly blobs: readonly BlobRef[];
  readonly doc: JobResultDoc;
}

export interface ErrorView {
  readonly code: string;
  readonly message: string;
}

export type JobEventView =
  | { readonly id: string; readonly at: string; readonly type: 'job'; readonly state: JobStateName; readonly error: ErrorView | null }
  | {
      readonly id: string;
      readonly at: string;
      readonly type: 'task';
      readonly taskId: string;
      readonly kind: string;
      readonly state: TaskStateName;
      readonly worker: string | null;
      readonly workerName: string | null;
      readonly attempt: number;
      readonly error: ErrorView | null;
    }
  | { readonly id: string; readonly at: string; readonly type: 'progress'; readonly taskId: string; readonly fraction: number; readonly message: string };

const jobStates: Record<number, JobStateName> = {
  [JobState.JOB_STATE_QUEUED]: 'queued',
  [JobState.JOB_STATE_RUNNING]: 'running',
  [JobState.JOB_STATE_COMPLETED]: 'completed',
  [JobState.JOB_STATE_FAILED]: 'failed',
  [JobState.JOB_STATE_CANCELLED]: 'cancelled',
};

const taskStates: Record<number, TaskStateName> = {
  [TaskState.TASK_STATE_BLOCKED]: 'blocked',
  [TaskState.TASK_STATE_QUEUED]: 'queued',
  [TaskState.TASK_STATE_RUNNING]: 'running',
  [TaskState.TASK_STATE_SUCCEEDED]: 'succeeded',
  [TaskState.TASK_STATE_FAILED]: 'failed',
  [TaskState.TASK_STATE_CANCELLED]: 'cancelled',
};

const modalities: Record<number, string> = {
  [Modality.MODALITY_IMAGE]: 'image',
  [Modality.MODALITY_AUDIO]: 'audio',
  [Modality.MODALITY_VIDEO]: 'video',
  [Modality.MODALITY_TEXT]: 'text',
};

export function jobStateName(state: JobState): JobStateName {
  return jobStates[state] ?? 'queued';
}

export function jobStateValue(name: JobStateName): JobState {
  const entry = Object.entries(jobStates).find(([, n]) => n === name);
  return entry ? Number(entry[0]) : JobState.JOB_STATE_UNSPECIFIED;
}

function iso(ms: number): string | null {
  return ms > 0 ? new Date(ms).toISOString() : null;
}

export function toJobView(job: Job): JobView {
  const spec = job.spec;
  return {
    id: job.id,
    state: jobStateName(job.state),
    tenant: job.tenant,
    pipeline: job.pipeline,
    createdAt: iso(job.createdAtMs) ?? '',
    finishedAt: iso(job.finishedAtMs),
    prompt: spec?.prompt ?? '',
    inputs: (spec?.inputs ?? []).map((input) => {
      const blob = input.source?.$case === 'blob' ? input.source.blob : undefined;
      const modality = job.modalities[input.name];
      return {
        name: input.name,
        modality: modality === undefined ? null : (modalities[modality] ?? null),
        mediaType: blob ? blob.mediaType : input.source?.$case === 'text' ? 'text/plain' : null,
        sha256: blob ? blob.sha256 : null,
        size: blob ? blob.size : input.source?.$case === 'text' ? Buffer.byteLength(input.source.text) : null,
      };
    }),
    tasks: job.tasks.map((t) => ({
      id: t.taskId,
      kind: t.kind,
      label: t.label || null,
      shard: t.shardIndex >= 0 ? t.shardIndex : null,
      state: taskStates[t.state] ?? 'queued',
      inputs: t.inputNames,
      optional: t.optional,
      attempts: t.attempts,
      worker: t.workerId || null,
      workerName: t.workerName || null,
      startedAt: iso(t.startedAtMs),
      finishedAt: iso(t.finishedAtMs),
      error: t.error ? { code: t.error.code, message: t.error.message } : null,
      nextAttemptAt: iso(t.nextAttemptAtMs),
      requirements: toRequirementsView(t.requirements),
    })),
    result: job.result
      ? {
          summary: job.result.summary,
          coverage: job.result.coverage,
          partial: job.result.partial,
          blobs: job.result.blobs.map((b) => ({ sha256: b.sha256, size: b.size, mediaType: b.mediaType, name: b.name })),
          doc: JSON.parse(job.result.resultJson) as JobResultDoc,
        }
      : null,
    error: job.error ? { code: job.error.code, message: job.error.message } : null,
    generation: job.generation,
  };
}

function toRequirementsView(r: TaskRequirements | undefined): RequirementsView {
  return {
    model: r?.model || null,
    minVramBytes: r?.minVramBytes ?? 0,
    minComputeCapability: r?.minComputeCapability || null,
    cpuAllowed: r?.cpuAllowed ?? true,
  };
}

export function toExplanationView(t: TaskExplanation): ExplanationView {
  return {
    taskId: t.taskId,
    kind: t.kind,
    state: taskStates[t.state] ?? 'queued',
    reason: t.reason,
    requirements: toRequirementsView(t.requirements),
    capableWorkers: t.capableWorkers,
    freeCapableWorkers: t.freeCapableWorkers,
    queuePosition: t.queuePosition,
  };
}

export function toEventView(event: JobEvent): JobEventView | undefined {
  const at = iso(event.atMs) ?? '';
  const body = event.event;
  if (!body) return undefined;
  switch (body.$case) {
    case 'jobState':
      return {
        id: event.id,
        at,
        type: 'job',
        state: jobStateName(body.jobState.state),
        error: body.jobState.error ? { code: body.jobState.error.code, message: body.jobState.error.message } : null,
      };
    case 'taskState':
      return {
        id: event.id,
        at,
        type: 'task',
        taskId: body.taskState.taskId,
        kind: body.taskState.kind,
        state: taskStates[body.taskState.state] ?? 'queued',
        worker: body.taskState.workerId || null,
        workerName: body.taskState.workerName || null,
        attempt: body.taskState.attempt,
        error: body.taskState.error ? { code: body.taskState.error.code, message: body.taskState.error.message } : null,
      };
    case 'taskProgress':
      return { id: event.id, at, type: 'progress', taskId: body.taskProgress.taskId, fraction: body.taskProgress.fraction, message: body.taskProgress.message };
  }
}

export function isTerminal(state: JobStateName): boolean {
  return state === 'completed' || state === 'failed' || state === 'cancelled';
}

/** A token as the coordinator records it (the token itself is shown only when it is made). */
export interface TokenView {
  readonly id: string;
  readonly role: string;
  /** The tenant a submitter token acts for; null for other roles. */
  readonly tenant: string | null;
  readonly name: string;
  readonly createdAt: string;
  /** null: never expires. */
  readonly expiresAt: string | null;
  /** null: not revoked. */
  readonly revokedAt: string | null;
}

export function toTokenView(info: TokenInfo): TokenView {
  return {
    id: info.id,
    role: info.role,
    tenant: info.tenant === '' ? null : info.tenant,
    name: info.name,
    createdAt: iso(info.createdAtMs) ?? '',
    expiresAt: iso(info.expiresAtMs),
    revokedAt: iso(info.revokedAtMs),
  };
}
