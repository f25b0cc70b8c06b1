import { describe, expect, it } from 'vitest';
import type { JobEventView, JobView, TaskView } from '@mmgrid/client';
import { applyEvent, describeStage, estimateEtaMs, formatDuration, jobStats, namesUnknownTask, stageStats, trackJob, type TrackedTask } from '../progress.js';

const T0 = Date.parse('2026-01-01T10:00:00.000Z');

function task(overrides: Partial<TrackedTask> & Pick<TrackedTask, 'id' | 'kind'>): TrackedTask {
  return { shard: false, state: 'queued', attempts: 0, workers: [], startedAtMs: null, finishedAtMs: null, fraction: 0, ...overrides };
}

function taskView(overrides: Partial<TaskView> & Pick<TaskView, 'id' | 'kind'>): TaskView {
  return {
    label: null,
    shard: null,
    state: 'queued',
    inputs: [],
    optional: false,
    attempts: 0,
    worker: null,
    workerName: null,
    startedAt: null,
    finishedAt: null,
    error: null,
    ...overrides,
  };
}

function jobView(tasks: TaskView[]): JobView {
  return {
    id: 'J1',
    state: 'running',
    tenant: 'default',
    pipeline: 'describe',
    createdAt: new Date(T0).toISOString(),
    finishedAt: null,
    prompt: '',
    inputs: [],
    tasks,
    result: null,
    error: null,
    generation: 0,
  };
}

describe('stageStats', () => {
  it('groups tasks by kind, shards with their kind, in the order kinds first appear', () => {
    const stages = stageStats(
      [
        task({ id: 't1', kind: 'image.ocr', state: 'succeeded', attempts: 1, workers: ['w1'], startedAtMs: T0, finishedAtMs: T0 + 2000 }),
        task({ id: 't2', kind: 'audio.analyze', state: 'running', attempts: 1, workers: ['w2'], startedAtMs: T0 + 1000, fraction: 0.5 }),
        task({ id: 't3', kind: 'image.ocr', state: 'succeeded', attempts: 3, workers: ['w1', 'w2'], startedAtMs: T0 + 500, finishedAtMs: T0 + 4000 }),
        task({ id: 't4', kind: 'audio.analyze', state: 'succeeded', attempts: 1, workers: ['w1'], startedAtMs: T0 + 1000, finishedAtMs: T0 + 3000 }),
        task({ id: 't5', kind: 'audio.analyze', state: 'failed', attempts: 2, workers: ['w1'], startedAtMs: T0 + 1000, finishedAtMs: T0 + 3000 }),
        task({ id: 't6', kind: 'fusion.report' }),
      ],
      T0 + 5000,
    );
    expect(stages.map((s) => s.name)).toEqual(['image.ocr', 'audio.analyze', 'fusion.report']);
    const [ocr, audio, fusion] = stages;
    // All ended: elapsed runs from the first start to the last end, and nothing is left.
    expect(ocr).toMatchObject({ total: 2, succeeded: 2, failed: 0, running: 0, retries: 2, workers: 2, progress: 2, elapsedMs: 4000, etaMs: 0 });
    // Still running: elapsed runs to now, the running shard counts by its fraction.
    expect(audio).toMatchObject({ total: 3, succeeded: 1, failed: 1, running: 1, retries: 1, workers: 2, progress: 2.5, elapsedMs: 4000, etaMs: 2000 });
    // Not started: no time, no estimate.
    expect(fusion).toMatchObject({ total: 1, succeeded: 0, workers: 0, progress: 0, elapsedMs: 0, etaMs: null });
  });

  it('draws shards before the step they are listed after (the one that gathers them)', () => {
    const stages = stageStats(
      [
        task({ id: 't1', kind: 'audio.split' }),
        task({ id: 't2', kind: 'audio.stitch' }),
        task({ id: 't2.0', kind: 'audio.analyze', shard: true }),
        task({ id: 't2.1', kind: 'audio.analyze', shard: true }),
        task({ id: 't3', kind: 'fusion.report' }),
      ],
      T0,
    );
    expect(stages.map((s) => [s.name, s.total])).toEqual([
      ['audio.split', 1],
      ['audio.analyze', 2],
      ['audio.stitch', 1],
      ['fusion.report', 1],
    ]);
  });

  it('is empty for a job with no tasks', () => {
    expect(stageStats([], T0)).toEqual([]);
  });
});

describe('estimateEtaMs', () => {
  it.each([
    { elapsed: 0, done: 0, total: 4, eta: null },
    { elapsed: 3000, done: 1, total: 4, eta: 9000 },
    { elapsed: 3000, done: 3, total: 4, eta: 1000 },
    { elapsed: 3000, done: 4, total: 4, eta: 0 },
    { elapsed: 0, done: 0, total: 0, eta: 0 },
  ])('$done of $total done in $elapsed ms: $eta ms left', ({ elapsed, done, total, eta }) => {
    expect(estimateEtaMs(elapsed, done, total)).toBe(eta);
  });
});

describe('jobStats', () => {
  it('runs from creation to now (or to the end), at the pace of all its tasks', () => {
    const tasks = [task({ id: 'a', kind: 'k', state: 'succeeded' }), task({ id: 'b', kind: 'k', state: 'running' })];
    expect(jobStats(T0, null, tasks, T0 + 6000)).toEqual({ elapsedMs: 6000, etaMs: 6000 });
    expect(jobStats(T0, T0 + 7000, tasks, T0 + 60_000)).toEqual({ elapsedMs: 7000, etaMs: 0 });
  });
});

describe('formatDuration and describeStage', () => {
  it.each([
    { ms: null, text: '?' },
    { ms: 0, text: '0s' },
    { ms: 4_400, text: '4s' },
    { ms: 65_000, text: '1m05s' },
    { ms: 3_720_000, text: '1h02m' },
  ])('$ms ms reads $text', ({ ms, text }) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('names counts, failures, retries, workers and times', () => {
    const [stage] = stageStats(
      [
        task({ id: 'a', kind: 'k', state: 'succeeded', attempts: 2, workers: ['w1'], startedAtMs: T0, finishedAtMs: T0 + 2000 }),
        task({ id: 'b', kind: 'k', state: 'failed', attempts: 1, workers: ['w1'], startedAtMs: T0, finishedAtMs: T0 + 3000 }),
      ],
      T0 + 9000,
    );
    if (!stage) throw new Error('no stage');
    expect(describeStage(stage)).toBe('1/2  1 failed  1 retry  1 worker  3s  ETA 0s');
    expect(describeStage({ ...stage, name: 'job.assemble', workers: 0 })).toBe('1/2  1 failed  1 retry  in the coordinator  3s  ETA 0s');
  });
});

describe('following events', () => {
  const at = (ms: number): string => new Date(T0 + ms).toISOString();

  it('moves a task through its attempts, collecting its workers', () => {
    let t: TrackedTask | undefined = task({ id: 't1', kind: 'image.ocr' });
    const event = (state: TaskView['state'], worker: string, attempt: number, ms: number): JobEventView => ({
      id: String(ms),
      at: at(ms),
      type: 'task',
      taskId: 't1',
      kind: 'image.ocr',
      state,
      worker,
      workerName: worker,
      attempt,
      error: null,
    });
    t = applyEvent(t, event('running', 'w1', 1, 100));
    t = applyEvent(t, { id: 'p', at: at(200), type: 'progress', taskId: 't1', fraction: 0.4, message: '' });
    expect(t).toMatchObject({ state: 'running', attempts: 1, workers: ['w1'], startedAtMs: T0 + 100, fraction: 0.4 });
    t = applyEvent(t, event('queued', 'w1', 1, 300));
    t = applyEvent(t, event('running', 'w2', 2, 400));
    expect(t).toMatchObject({ state: 'running', attempts: 2, workers: ['w1', 'w2'], startedAtMs: T0 + 100, fraction: 0 });
    t = applyEvent(t, event('succeeded', 'w2', 2, 900));
    expect(t).toMatchObject({ state: 'succeeded', finishedAtMs: T0 + 900 });
  });

  it('asks for the job again when an event names a task it does not know (a new shard)', () => {
    const known = trackJob(jobView([taskView({ id: 't1', kind: 'audio.split' })]), new Map());
    const progress = (taskId: string): JobEventView => ({ id: '1', at: at(0), type: 'progress', taskId, fraction: 0.1, message: '' });
    expect(namesUnknownTask(progress('t1'), known)).toBe(false);
    expect(namesUnknownTask(progress('t1.s0'), known)).toBe(true);
    expect(namesUnknownTask({ id: '2', at: at(0), type: 'job', state: 'running', error: null }, known)).toBe(false);
  });

  it('keeps the workers events named when a fresh copy of the job shows only the latest', () => {
    const before = new Map([['t1', task({ id: 't1', kind: 'image.ocr', state: 'running', attempts: 2, workers: ['w1', 'w2'], fraction: 0.5 })]]);
    const fresh = trackJob(jobView([taskView({ id: 't1', kind: 'image.ocr', state: 'running', attempts: 2, worker: 'w2', startedAt: at(100) })]), before);
    expect(fresh.get('t1')).toMatchObject({ workers: ['w1', 'w2'], attempts: 2, startedAtMs: T0 + 100, fraction: 0.5 });
  });
});
