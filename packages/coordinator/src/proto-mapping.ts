import type { BlobRef as CoreBlobRef, JobStateName, TaskStateName } from '@mmgrid/core';
import { BlobRef, JobState, TaskState } from '@mmgrid/proto';

const jobStates: Record<JobStateName, JobState> = {
  queued: JobState.JOB_STATE_QUEUED,
  running: JobState.JOB_STATE_RUNNING,
  completed: JobState.JOB_STATE_COMPLETED,
  failed: JobState.JOB_STATE_FAILED,
  cancelled: JobState.JOB_STATE_CANCELLED,
};

const taskStates: Record<TaskStateName, TaskState> = {
  blocked: TaskState.TASK_STATE_BLOCKED,
  queued: TaskState.TASK_STATE_QUEUED,
  running: TaskState.TASK_STATE_RUNNING,
  succeeded: TaskState.TASK_STATE_SUCCEEDED,
  failed: TaskState.TASK_STATE_FAILED,
  cancelled: TaskState.TASK_STATE_CANCELLED,
};

export function jobStateToProto(state: JobStateName): JobState {
  return jobStates[state];
}

export function jobStateFromProto(state: JobState): JobStateName | undefined {
  return (Object.keys(jobStates) as JobStateName[]).find((k) => jobStates[k] === state);
}

export function taskStateToProto(state: TaskStateName): TaskState {
  return taskStates[state];
}

export function blobRefToProto(ref: CoreBlobRef): BlobRef {
  return BlobRef.fromPartial(ref);
}

export function blobRefFromProto(ref: BlobRef): CoreBlobRef {
  return { sha256: ref.sha256, size: ref.size, mediaType: ref.mediaType, name: ref.name };
}
