import { isTerminal, type JobView } from '@mmgrid/client';
import { parseTaskQueueName } from '@mmgrid/core';
import type { GpuInfo, GpuStats, QueueStats, WorkerView } from '@mmgrid/proto';
import { table, when } from './table.js';
import { ago, gib, shorten, span } from './units.js';

/** Human output of the listing commands: `mmgrid list`, `mmgrid workers`, `mmgrid queues`. */

/** Input names shown in full up to this many inputs; more are counted. */
const NAMED_INPUTS = 2;

export interface JobListFormat {
  /** Show the TENANT column (an admin listing another tenant); it is shown anyway when the jobs' tenants differ. */
  readonly tenant: boolean;
  readonly nowMs: number;
}

/** `mmgrid list`: one row a job, as the coordinator sent them (newest first). */
export function formatJobList(jobs: readonly JobView[], options: JobListFormat): string {
  if (jobs.length === 0) return 'no jobs';
  const tenant = options.tenant || new Set(jobs.map((j) => j.tenant)).size > 1;
  return table([
    ['ID', 'STATE', 'PIPELINE', ...(tenant ? ['TENANT'] : []), 'INPUTS', 'CREATED', 'AGE/DURATION'],
    ...jobs.map((j) => [j.id, j.state, j.pipeline, ...(tenant ? [j.tenant] : []), describeInputs(j), when(j.createdAt), ageOrDuration(j, options.nowMs)]),
  ]);
}

function describeInputs(job: JobView): string {
  const names = job.inputs.map((i) => i.name);
  if (names.length === 0) return '-';
  if (names.length > NAMED_INPUTS) return `${names.length} inputs`;
  return names.map((n) => shorten(n, 24)).join(', ');
}

/** An ended job: how long it took ("took 4.2s"); a live one: its age ("3m12s"). */
function ageOrDuration(job: JobView, nowMs: number): string {
  const created = Date.parse(job.createdAt);
  if (Number.isNaN(created)) return '-';
  if (isTerminal(job.state) && job.finishedAt !== null) return `took ${span(Date.parse(job.finishedAt) - created)}`;
  return span(nowMs - created);
}

/** `mmgrid workers`: the fleet, with trust and quarantine where result verification is on. */
export function formatWorkers(workers: readonly WorkerView[], nowMs: number): string {
  if (workers.length === 0) return 'no workers connected';
  const verified = workers.some((w) => w.verified);
  return table([
    // KINDS last: the one column whose width grows with what a worker offers.
    ['NAME', 'ID', 'GPUS', 'VRAM FREE/TOTAL', 'SLOTS', ...(verified ? ['TRUST', 'AGREED', 'DISAGREED'] : []), 'STATE', 'LAST HEARTBEAT', 'KINDS'],
    ...workers.map((w) => [
      w.name || '-',
      w.workerId,
      describeGpus(w.gpus),
      describeVram(w),
      `${w.slots.reduce((n, s) => n + s.busy, 0)}/${w.slots.reduce((n, s) => n + s.total, 0)}`,
      ...(verified ? [w.verified ? w.trustScore.toFixed(2) : '-', String(w.resultsAgreed), String(w.resultsDisagreed)] : []),
      w.quarantined ? 'quarantined' : w.draining ? 'draining' : 'ready',
      ago(w.lastHeartbeatMs, nowMs),
      w.slots.map((s) => s.kind).join(',') || '-',
    ]),
  ]);
}

/** "cpu", or the GPUs by model: "2x RTX 4090", "A100-SXM4-80GB, L4". */
function describeGpus(gpus: readonly GpuInfo[]): string {
  if (gpus.length === 0) return 'cpu';
  const counts = new Map<string, number>();
  for (const g of gpus) {
    const model = shortGpuName(g.name);
    counts.set(model, (counts.get(model) ?? 0) + 1);
  }
  return [...counts].map(([model, n]) => (n > 1 ? `${n}x ${model}` : model)).join(', ');
}

function shortGpuName(name: string): string {
  const short = name.replace(/^NVIDIA\s+/i, '').replace(/^(GeForce|Tesla|Quadro)\s+/i, '').trim();
  return shorten(short || 'gpu', 20);
}

/**
 * GPU memory the grid can still use, of the worker's total: the free memory the latest
 * heartbeat reported (the hello's, before one), capped by the owner's budget less what
 * running tasks reserved. "-" for a worker without GPUs.
 */
function describeVram(w: WorkerView): string {
  const stats: readonly GpuStats[] = w.gpuStats;
  let total: number;
  let free: number;
  if (stats.length > 0) {
    total = stats.reduce((n, s) => n + s.memoryTotalBytes, 0);
    free = stats.reduce((n, s) => n + Math.max(0, s.memoryTotalBytes - s.memoryUsedBytes), 0);
  } else {
    total = w.gpus.reduce((n, g) => n + g.memoryTotalBytes, 0);
    free = w.gpus.reduce((n, g) => n + g.memoryFreeBytes, 0);
  }
  if (total === 0 && w.vramBudgetBytes === 0) return '-';
  if (total === 0) total = w.vramBudgetBytes;
  if (w.vramBudgetBytes > 0) free = Math.min(free, Math.max(0, w.vramBudgetBytes - w.vramReservedBytes));
  return `${gib(free)}/${gib(total)} GiB`;
}

export interface QueueFormat {
  /** One row a BullMQ queue (kind, requirement class and tenant) instead of one a task kind. */
  readonly byQueue: boolean;
}

/** `mmgrid queues`: task counts per kind (or per queue) and the age of the oldest waiting task. */
export function formatQueues(queues: readonly QueueStats[], options: QueueFormat): string {
  if (queues.length === 0) return 'no queues';
  const counts = (q: Pick<QueueStats, 'waiting' | 'active' | 'delayed' | 'failed' | 'oldestWaitingAgeMs'>): string[] => [
    String(q.waiting),
    String(q.active),
    String(q.delayed),
    String(q.failed),
    q.waiting > 0 && q.oldestWaitingAgeMs > 0 ? span(q.oldestWaitingAgeMs) : '-',
  ];
  const header = ['WAITING', 'ACTIVE', 'DELAYED', 'FAILED', 'OLDEST'];
  if (options.byQueue) {
    const sorted = [...queues].sort((a, b) => a.queue.localeCompare(b.queue));
    return table([['QUEUE', 'KIND', 'CLASS', 'TENANT', ...header], ...sorted.map((q) => [q.queue, q.kind, parseTaskQueueName(q.queue)?.signature || '-', q.tenant || '-', ...counts(q)])]);
  }
  return table([['KIND', ...header], ...aggregateByKind(queues).map((k) => [k.kind, ...counts(k)])]);
}

export interface KindStats {
  readonly kind: string;
  readonly waiting: number;
  readonly active: number;
  readonly delayed: number;
  readonly failed: number;
  /** The oldest waiting task's age over the kind's queues; 0 when none wait. */
  readonly oldestWaitingAgeMs: number;
}

/** The queues of each task kind (every requirement class and tenant) added up, by kind name. */
export function aggregateByKind(queues: readonly QueueStats[]): KindStats[] {
  const byKind = new Map<string, KindStats>();
  for (const q of queues) {
    const k = byKind.get(q.kind) ?? { kind: q.kind, waiting: 0, active: 0, delayed: 0, failed: 0, oldestWaitingAgeMs: 0 };
    byKind.set(q.kind, {
      kind: q.kind,
      waiting: k.waiting + q.waiting,
      active: k.active + q.active,
      delayed: k.delayed + q.delayed,
      failed: k.failed + q.failed,
      oldestWaitingAgeMs: Math.max(k.oldestWaitingAgeMs, q.waiting > 0 ? q.oldestWaitingAgeMs : 0),
    });
  }
  return [...byKind.values()].sort((a, b) => a.kind.localeCompare(b.kind));
}
