import cliProgress from 'cli-progress';
import type { JobEventView, JobView } from '@mmgrid/client';
import type { JobStateName, TaskStateName } from '@mmgrid/core';

/**
 * Live progress of one job, one bar per stage (the tasks of one task kind, shards included),
 * for `mmgrid submit --watch`, `retry --watch` and `watch`. The numbers come from pure
 * functions over what is known of each task; the class keeps that knowledge up to date from
 * the job's events and from fresh copies of the job.
 */

/** What the progress display knows of one task. */
export interface TrackedTask {
  readonly id: string;
  readonly kind: string;
  /** A shard a split made at run time (listed after the step that gathers the shards). */
  readonly shard: boolean;
  readonly state: TaskStateName;
  /** Attempts started so far (0 before the first). */
  readonly attempts: number;
  /** Every worker that ran an attempt of it, as far as the events and the job tell. */
  readonly workers: readonly string[];
  /** Epoch ms; null before it started. */
  readonly startedAtMs: number | null;
  /** Epoch ms; null until it ended. */
  readonly finishedAtMs: number | null;
  /** Last reported fraction of the running attempt, 0 to 1. */
  readonly fraction: number;
}

export interface StageStats {
  /** The task kind. */
  readonly name: string;
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly cancelled: number;
  readonly running: number;
  /** Attempts beyond the first, over the stage's tasks. */
  readonly retries: number;
  /** Distinct workers that ran an attempt of one of the stage's tasks. */
  readonly workers: number;
  /** Ended tasks plus the reported fractions of running ones (what the bar fills to). */
  readonly progress: number;
  /** From the stage's first start to its last end (or to now); 0 before it started. */
  readonly elapsedMs: number;
  /** Estimated time left; null while nothing ended to estimate from; 0 when all ended. */
  readonly etaMs: number | null;
}

const ENDED: readonly TaskStateName[] = ['succeeded', 'failed', 'cancelled'];

export function isEnded(state: TaskStateName): boolean {
  return ENDED.includes(state);
}

/**
 * Time left at the pace so far: `elapsed / done * (total - done)`. Null while nothing is done
 * (no pace yet); 0 when everything is.
 */
export function estimateEtaMs(elapsedMs: number, done: number, total: number): number | null {
  if (done >= total) return 0;
  if (done <= 0) return null;
  return Math.round((elapsedMs / done) * (total - done));
}

/**
 * The stages of a job, in the order their first task appears in the job; a stage that first
 * appears as shards comes before the step the shards are listed after (the one that gathers
 * them), so a split, its shards and their stitch read top to bottom.
 */
export function stageStats(tasks: readonly TrackedTask[], nowMs: number): StageStats[] {
  const byKind = new Map<string, TrackedTask[]>();
  const order = new Map<string, number>();
  let planned = 0;
  tasks.forEach((task, i) => {
    if (!task.shard) planned = i;
    const key = task.shard ? planned - 0.5 : i;
    order.set(task.kind, Math.min(order.get(task.kind) ?? Infinity, key));
    const list = byKind.get(task.kind);
    if (list) list.push(task);
    else byKind.set(task.kind, [task]);
  });
  const kinds = [...byKind].sort(([a], [b]) => (order.get(a) ?? 0) - (order.get(b) ?? 0));
  return kinds.map(([name, list]) => {
    const count = (state: TaskStateName): number => list.filter((t) => t.state === state).length;
    const ended = list.filter((t) => isEnded(t.state)).length;
    const starts = list.map((t) => t.startedAtMs).filter((ms): ms is number => ms !== null);
    const first = starts.length > 0 ? Math.min(...starts) : null;
    const ends = list.map((t) => t.finishedAtMs).filter((ms): ms is number => ms !== null);
    const last = ended === list.length && ends.length > 0 ? Math.max(...ends) : nowMs;
    const elapsedMs = first === null ? 0 : Math.max(0, last - first);
    const running = list.filter((t) => t.state === 'running');
    return {
      name,
      total: list.length,
      succeeded: count('succeeded'),
      failed: count('failed'),
      cancelled: count('cancelled'),
      running: running.length,
      retries: list.reduce((n, t) => n + Math.max(0, t.attempts - 1), 0),
      workers: new Set(list.flatMap((t) => t.workers)).size,
      progress: ended + running.reduce((n, t) => n + Math.min(1, Math.max(0, t.fraction)), 0),
      elapsedMs,
      etaMs: estimateEtaMs(elapsedMs, ended, list.length),
    };
  });
}

/** The whole job: elapsed since it was created, and the time left at the pace of its tasks. */
export function jobStats(createdAtMs: number, finishedAtMs: number | null, tasks: readonly TrackedTask[], nowMs: number): { elapsedMs: number; etaMs: number | null } {
  const elapsedMs = Math.max(0, (finishedAtMs ?? nowMs) - createdAtMs);
  const ended = tasks.filter((t) => isEnded(t.state)).length;
  return { elapsedMs, etaMs: finishedAtMs !== null ? 0 : estimateEtaMs(elapsedMs, ended, tasks.length) };
}

/** 4s, 1m05s, 1h02m. */
export function formatDuration(ms: number | null): string {
  if (ms === null) return '?';
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** One bar's text after the bar itself: counts, failures, retries, workers, times. */
export function describeStage(stage: StageStats): string {
  const parts = [`${stage.succeeded}/${stage.total}`];
  if (stage.failed > 0) parts.push(`${stage.failed} failed`);
  if (stage.cancelled > 0) parts.push(`${stage.cancelled} cancelled`);
  parts.push(`${stage.retries} retr${stage.retries === 1 ? 'y' : 'ies'}`);
  // The assembly runs in the coordinator, on no worker.
  parts.push(stage.name === 'job.assemble' ? 'in the coordinator' : `${stage.workers} worker${stage.workers === 1 ? '' : 's'}`);
  parts.push(formatDuration(stage.elapsedMs));
  parts.push(`ETA ${formatDuration(stage.etaMs)}`);
  return parts.join('  ');
}

function ms(iso: string | null): number | null {
  if (iso === null || iso === '') return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

/** The tasks as a fresh copy of the job shows them, keeping workers the events named before. */
export function trackJob(job: JobView, known: ReadonlyMap<string, TrackedTask>): Map<string, TrackedTask> {
  const out = new Map<string, TrackedTask>();
  for (const t of job.tasks) {
    const before = known.get(t.id);
    const workers = new Set(before?.workers ?? []);
    if (t.worker !== null) workers.add(t.worker);
    out.set(t.id, {
      id: t.id,
      kind: t.kind,
      shard: t.shard !== null,
      state: t.state,
      attempts: Math.max(t.attempts, before?.attempts ?? 0),
      workers: [...workers],
      startedAtMs: ms(t.startedAt) ?? before?.startedAtMs ?? null,
      finishedAtMs: isEnded(t.state) ? (ms(t.finishedAt) ?? before?.finishedAtMs ?? null) : null,
      fraction: t.state === 'running' ? (before?.fraction ?? 0) : 0,
    });
  }
  return out;
}

/** A task after one of its events; undefined when the event names no task or one not known. */
export function applyEvent(task: TrackedTask | undefined, event: JobEventView): TrackedTask | undefined {
  if (!task || event.type === 'job') return task;
  if (event.type === 'progress') return { ...task, fraction: event.fraction };
  const at = ms(event.at);
  const workers = event.worker !== null && !task.workers.includes(event.worker) ? [...task.workers, event.worker] : task.workers;
  return {
    ...task,
    kind: event.kind || task.kind,
    state: event.state,
    attempts: Math.max(task.attempts, event.attempt),
    workers,
    startedAtMs: event.state === 'running' && task.startedAtMs === null ? at : task.startedAtMs,
    finishedAtMs: isEnded(event.state) ? (at ?? task.finishedAtMs) : null,
    fraction: event.state === 'running' && task.state !== 'running' ? 0 : task.fraction,
  };
}

/** Whether an event names a task this display does not know yet (a new shard): refetch the job. */
export function namesUnknownTask(event: JobEventView, known: ReadonlyMap<string, TrackedTask>): boolean {
  return event.type !== 'job' && !known.has(event.taskId);
}

const RENDER_EVERY_MS = 250;

interface BarPayload {
  readonly label: string;
  readonly text: string;
}

/**
 * The bars on a terminal (stderr): a header line (job, state, elapsed, ETA), then one bar per
 * stage. Stages appear as their first task does; totals grow as split tasks add shards.
 */
export class JobProgress {
  private readonly multibar: cliProgress.MultiBar;
  private readonly header: cliProgress.SingleBar;
  /** Bar i shows stage i: a stage that appears between others (shards) moves the ones below down. */
  private readonly bars: cliProgress.SingleBar[] = [];
  private tasks = new Map<string, TrackedTask>();
  private jobState: JobStateName;
  private readonly createdAtMs: number;
  private finishedAtMs: number | null;
  private readonly ticker: NodeJS.Timeout;
  private stopped = false;
  private closed = false;

  constructor(
    private readonly jobId: string,
    job: JobView,
    stream: NodeJS.WriteStream = process.stderr,
    private readonly now: () => number = Date.now,
  ) {
    this.jobState = job.state;
    this.createdAtMs = ms(job.createdAt) ?? now();
    this.finishedAtMs = ms(job.finishedAt);
    this.multibar = new cliProgress.MultiBar(
      {
        stream,
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        barsize: 24,
        format: '{label} {bar} {text}',
        barCompleteChar: '\u2588',
        barIncompleteChar: '\u2591',
      },
      cliProgress.Presets.shades_classic,
    );
    this.header = this.multibar.create(1, 0, { label: '', text: '' } satisfies BarPayload, { format: '{text}' });
    this.refresh(job);
    this.render();
    // Drawn a few times a second rather than per event (a job may have thousands of shards);
    // elapsed and ETA move even when no event comes.
    this.ticker = setInterval(() => this.render(), RENDER_EVERY_MS);
    this.ticker.unref();
  }

  /** A fresh copy of the job (the truth about every task, shards included). */
  refresh(job: JobView): void {
    this.tasks = trackJob(job, this.tasks);
    this.jobState = job.state;
    this.finishedAtMs = ms(job.finishedAt);
  }

  /** Applies an event; returns true when the job should be fetched again (a task not known yet). */
  onEvent(event: JobEventView): boolean {
    if (event.type === 'job') {
      this.jobState = event.state;
      return true;
    }
    if (namesUnknownTask(event, this.tasks)) return true;
    const next = applyEvent(this.tasks.get(event.taskId), event);
    if (next) this.tasks.set(next.id, next);
    return false;
  }

  /** Draws the final state and gives the terminal back (cursor shown again). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.ticker);
    this.render();
    this.closed = true;
    this.multibar.stop();
  }

  private render(): void {
    if (this.closed) return;
    const now = this.now();
    const tasks = [...this.tasks.values()];
    const stages = stageStats(tasks, now);
    const width = Math.max(12, ...stages.map((s) => s.name.length));
    const job = jobStats(this.createdAtMs, this.finishedAtMs, tasks, now);
    const header = `job ${this.jobId}  ${this.jobState}  ${formatDuration(job.elapsedMs)}  ETA ${formatDuration(job.etaMs)}`;
    this.header.update(0, { label: '', text: header } satisfies BarPayload);
    stages.forEach((stage, i) => {
      const payload: BarPayload = { label: stage.name.padEnd(width), text: describeStage(stage) };
      const total = Math.max(1, stage.total);
      const bar = this.bars[i];
      if (bar) {
        bar.setTotal(total);
        bar.update(stage.progress, payload);
      } else {
        this.bars.push(this.multibar.create(total, stage.progress, payload));
      }
    });
  }
}
