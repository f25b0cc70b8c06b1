import type { JsonObject } from '@mmgrid/core';
import type { TaskContext } from '../backends/backend.js';

/**
 * The context of one image.classify task (job-1, task-1) on a PNG given as the input "photo":
 * a first attempt, never cancelled, that stores no blobs.
 */
export function classifyTask(file: string, params: JsonObject = {}): TaskContext {
  return {
    jobId: 'job-1',
    taskId: 'task-1',
    kind: 'image.classify',
    attempt: 1,
    params,
    files: new Map([['photo', file]]),
    mediaTypes: new Map([['photo', 'image/png']]),
    texts: new Map(),
    upstream: [],
    signal: new AbortController().signal,
    progress: () => undefined,
    putBlob: () => Promise.reject(new Error('image.classify stores no blobs')),
  };
}
