import {
  InvalidJobSpecError,
  PROMPT_INPUT_NAME,
  type BlobRef as CoreBlobRef,
  type JobSpec as CoreJobSpec,
  type Modality as CoreModality,
  type TaskNode,
} from '@mmgrid/core';
import { Modality, type Job, type JobInput, type JobSpec, type TaskStatus } from '@mmgrid/proto';
import type { JobRecord, JobSummary, TaskRecord } from './job-store.js';
import { blobRefToProto, jobStateToProto, taskStateToProto } from './proto-mapping.js';

const modalities: Record<CoreModality, Modality> = {
  image: Modality.MODALITY_IMAGE,
  audio: Modality.MODALITY_AUDIO,
  video: Modality.MODALITY_VIDEO,
  text: Modality.MODALITY_TEXT,
};

/** The raw spec handed to validateJobSpec: proto shapes turned into plain data. */
export function specFromProto(spec: JobSpec | undefined): unknown {
  if (!spec) return { inputs: [] };
  return {
    inputs: spec.inputs.map((input: JobInput) => ({
      name: input.name,
      source:
        input.source?.$case === 'blob'
          ? {
              type: 'blob',
              blob: {
                sha256: input.source.blob.sha256,
                size: input.source.blob.size,
                mediaType: input.source.blob.mediaType,
                name: input.source.blob.name,
              },
            }
          : input.source?.$case === 'text'
            ? { type: 'text', text: input.source.text }
            : undefined,
    })),
    prompt: spec.prompt,
    pipeline: spec.pipeline,
    priority: spec.priority,
    labels: spec.labels,
    params: spec.params,
    ...(spec.stepsJson !== '' ? { steps: parseSteps(spec.stepsJson) } : {}),
  };
}

function parseSteps(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch (err) {
    throw new InvalidJobSpecError('steps', `is not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
}

export function specToProto(spec: CoreJobSpec): JobSpec {
  return {
    inputs: spec.inputs.map(
      (input): JobInput =>
        input.source.type === 'blob'
          ? { name: input.name, source: { $case: 'blob', blob: blobRefToProto(input.source.blob) } }
          : { name: input.name, source: { $case: 'text', text: input.source.text } },
    ),
    prompt: spec.prompt,
    pipeline: spec.pipeline,
    priority: spec.priority,
    labels: { ...spec.labels },
    params: { ...spec.params },
    stepsJson: spec.steps === undefined ? '' : JSON.stringify(spec.steps),
  };
}

function displayInputName(name: string): string {
  return name === PROMPT_INPUT_NAME ? 'prompt' : name;
}

/**
 * Every task of a job: the planned ones in plan order, each followed by the shards a split
 * added at run time (their records carry `shardOf`).
 */
export function taskStatusesOf(record: JobRecord, tasks: ReadonlyMap<string, TaskRecord>): TaskStatus[] {
  const shardsOf = new Map<string, [string, TaskRecord][]>();
  for (const [id, r] of tasks) {
    if (!r.shardOf) continue;
    const list = shardsOf.get(r.shardOf) ?? [];
    list.push([id, r]);
    shardsOf.set(r.shardOf, list);
  }
  const out: TaskStatus[] = [];
  for (const task of record.graph.tasks) {
    const shards = (shardsOf.get(task.id) ?? []).sort((a, b) => (a[1].shardIndex ?? 0) - (b[1].shardIndex ?? 0));
    out.push(planned(task, tasks.get(task.id)));
    for (const [id, r] of shards) out.push(shardStatus(id, r, task.label ?? task.id));
  }
  return out;
}

function shardStatus(id: string, r: TaskRecord, label: string): TaskStatus {
  return {
    taskId: id,
    kind: r.kind,
    state: taskStateToProto(r.state),
    inputNames: (r.inputNames ?? []).map(displayInputName),
    attempts: r.attempts,
    workerId: r.workerId,
    workerName: r.workerName,
    error: r.error && r.state !== 'succeeded' ? { code: r.error.code, message: r.error.message, retryable: r.error.retryable } : undefined,
    queuedAtMs: r.queuedAt,
    startedAtMs: r.startedAt,
    finishedAtMs: r.finishedAt,
    optional: true,
    requirements: undefined,
    nextAttemptAtMs: r.state === 'queued' ? (r.nextAttemptAt ?? 0) : 0,
    label,
    shardIndex: r.shardIndex ?? 0,
  };
}

function planned(task: TaskNode, r: TaskRecord | undefined): TaskStatus {
  return {
    taskId: task.id,
    kind: task.kind,
    state: taskStateToProto(r?.state ?? 'queued'),
    inputNames: task.inputNames.map(displayInputName),
    attempts: r?.attempts ?? 0,
    workerId: r?.workerId ?? '',
    workerName: r?.workerName ?? '',
    error: r?.error && r.state !== 'succeeded' ? { code: r.error.code, message: r.error.message, retryable: r.error.retryable } : undefined,
    queuedAtMs: r?.queuedAt ?? 0,
    startedAtMs: r?.startedAt ?? 0,
    finishedAtMs: r?.finishedAt ?? 0,
    optional: task.optional,
    requirements: { ...task.requirements },
    nextAttemptAtMs: r?.state === 'queued' ? (r.nextAttemptAt ?? 0) : 0,
    label: task.label ?? '',
    shardIndex: -1,
  };
}

/** A full Job message: spec, tasks and result. */
export function jobToProto(record: JobRecord, tasks: ReadonlyMap<string, TaskRecord>): Job {
  const result = record.result;
  return {
    ...summaryFields(record),
    generation: record.generation,
    spec: specToProto(record.spec),
    tasks: taskStatusesOf(record, tasks),
    result: result
      ? {
          resultJson: JSON.stringify(result.doc),
          blobs: result.blobs.map((b: CoreBlobRef) => blobRefToProto(b)),
          coverage: result.doc.coverage,
          partial: result.doc.partial,
          summary: result.doc.summary,
        }
      : undefined,
    modalities: Object.fromEntries(record.inputs.map((i) => [i.name, modalities[i.modality]])),
  };
}

/** A Job message with the summary fields only (ListJobs). */
export function jobSummaryToProto(summary: JobSummary): Job {
  // The inputs by name and modality only: their sources (texts inline) stay with GetJob.
  const inputs = summary.inputs.filter((i) => i.name !== PROMPT_INPUT_NAME);
  return {
    ...summaryFields(summary),
    spec: { inputs: inputs.map((i) => ({ name: i.name, source: undefined })), prompt: '', pipeline: summary.pipeline, priority: summary.priority, labels: {}, params: {}, stepsJson: '' },
    tasks: [],
    result: undefined,
    modalities: Object.fromEntries(inputs.map((i) => [i.name, modalities[i.modality]])),
    generation: 0,
  };
}

function summaryFields(s: JobSummary): Omit<Job, 'spec' | 'tasks' | 'result' | 'modalities' | 'generation'> {
  return {
    id: s.id,
    state: jobStateToProto(s.state),
    tenant: s.tenant,
    pipeline: s.pipeline,
    createdAtMs: s.createdAt,
    finishedAtMs: s.finishedAt,
    error: s.error ? { code: s.error.code, message: s.error.message, retryable: false } : undefined,
  };
}
