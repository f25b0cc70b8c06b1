import type { TaskRequirements } from './task-graph.js';

/** What a connected worker can do right now, as the dispatcher sees it. */
export interface WorkerCapability {
  readonly workerId: string;
  readonly name: string;
  /** Offered kinds: slots, busy slots, and models served. */
  readonly kinds: ReadonlyMap<string, { readonly slots: number; readonly busy: number; readonly models: readonly string[] }>;
  /**
   * Each GPU's free memory as last reported, its compute capability, and the memory grid
   * tasks were given on it since (reserved while they run).
   */
  readonly gpus: readonly { readonly memoryFreeBytes: number; readonly computeCapability: string; readonly reservedBytes?: number }[];
  /** GPU memory the owner lets the grid use. */
  readonly vramBudgetBytes: number;
  /** GPU memory reserved by tasks running there now. */
  readonly vramReservedBytes: number;
  readonly warmModels: readonly string[];
  readonly draining: boolean;
}

export type Fit = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const GiB = 1024 ** 3;

export function formatBytes(bytes: number): string {
  if (bytes >= GiB) return `${Number((bytes / GiB).toFixed(1))} GiB`;
  return `${Math.round(bytes / 1024 ** 2)} MiB`;
}

function compareCapability(a: string, b: string): number {
  const [am = 0, an = 0] = a.split('.').map(Number);
  const [bm = 0, bn = 0] = b.split('.').map(Number);
  return am === bm ? an - bn : am - bm;
}

function gpuFree(g: WorkerCapability['gpus'][number]): number {
  // The reservation may already show in the reported use; counting it twice errs on the
  // side of not over-committing a card.
  return Math.max(0, g.memoryFreeBytes - (g.reservedBytes ?? 0));
}

function gpuFits(g: WorkerCapability['gpus'][number], minCapability: string): boolean {
  return minCapability === '' || compareCapability(g.computeCapability, minCapability) >= 0;
}

/**
 * GPU memory a worker can still give one task, on one GPU new enough for `minCapability`:
 * the roomiest such GPU, within what is left of the owner's budget.
 */
export function freeVram(worker: WorkerCapability, minCapability = ''): number {
  const best = Math.max(0, ...worker.gpus.filter((g) => gpuFits(g, minCapability)).map(gpuFree));
  return Math.max(0, Math.min(best, worker.vramBudgetBytes - worker.vramReservedBytes));
}

/**
 * The GPU (index into worker.gpus) a task should use: new enough, with room for it, the
 * roomiest. Undefined when the task needs no GPU memory or none fits.
 */
export function pickGpu(worker: WorkerCapability, r: TaskRequirements): number | undefined {
  if (r.minVramBytes === 0 && r.cpuAllowed && r.minComputeCapability === '') return undefined;
  let best: number | undefined;
  worker.gpus.forEach((g, i) => {
    if (!gpuFits(g, r.minComputeCapability) || gpuFree(g) < r.minVramBytes) return;
    const current = best === undefined ? undefined : worker.gpus[best];
    if (!current || gpuFree(g) > gpuFree(current)) best = i;
  });
  return best;
}

/** Whether the worker could run the task at all (ignoring whether its slots are busy). */
export function canRun(worker: WorkerCapability, kind: string, r: TaskRequirements): Fit {
  const offer = worker.kinds.get(kind);
  if (!offer) return { ok: false, reason: `does not offer ${kind}` };
  if (r.model !== '' && !offer.models.includes(r.model)) return { ok: false, reason: `does not serve model ${r.model}` };
  const needsGpu = !r.cpuAllowed || r.minVramBytes > 0 || r.minComputeCapability !== '';
  if (needsGpu && worker.gpus.length === 0) return { ok: false, reason: 'has no GPU' };
  if (r.minComputeCapability !== '' && !worker.gpus.some((g) => compareCapability(g.computeCapability, r.minComputeCapability) >= 0)) {
    return { ok: false, reason: `has no GPU of compute capability ${r.minComputeCapability} or newer` };
  }
  if (r.minVramBytes > 0 && freeVram(worker, r.minComputeCapability) < r.minVramBytes) {
    return { ok: false, reason: `has ${formatBytes(freeVram(worker, r.minComputeCapability))} of GPU memory free for the grid` };
  }
  return { ok: true };
}

/** Whether the worker can take the task now: capable, not draining, with a free slot. */
export function canTakeNow(worker: WorkerCapability, kind: string, r: TaskRequirements): boolean {
  const offer = worker.kinds.get(kind);
  return !worker.draining && offer !== undefined && offer.busy < offer.slots && canRun(worker, kind, r).ok;
}

/**
 * Ranks workers that can take the task now, best first: one that has the task's model
 * loaded, then one running fewer tasks of the same job (so a job's shards spread), then the
 * least loaded.
 */
export function rankWorkers<W extends WorkerCapability>(
  workers: readonly W[],
  kind: string,
  r: TaskRequirements,
  tasksOfJobOn: (worker: W) => number,
): W[] {
  return workers
    .filter((w) => canTakeNow(w, kind, r))
    .map((w) => rankKey(w, r, tasksOfJobOn))
    .sort(compareRank)
    .map((x) => x.w);
}

/**
 * The first worker of rankWorkers, found in one pass without sorting or copying the fleet:
 * the dispatcher asks this for every task, so it must stay cheap with thousands of workers.
 */
export function bestWorker<W extends WorkerCapability>(
  workers: Iterable<W>,
  kind: string,
  r: TaskRequirements,
  tasksOfJobOn: (worker: W) => number,
): W | undefined {
  let best: RankKey<W> | undefined;
  for (const w of workers) {
    if (!canTakeNow(w, kind, r)) continue;
    const key = rankKey(w, r, tasksOfJobOn);
    if (!best || compareRank(key, best) < 0) best = key;
  }
  return best?.w;
}

interface RankKey<W> {
  readonly w: W;
  /** 0 when the worker has the task's model loaded. */
  readonly warm: number;
  /** Tasks of the same job the worker already runs. */
  readonly mine: number;
  /** Busy slots ÷ slots, over all its kinds. */
  readonly load: number;
}

function rankKey<W extends WorkerCapability>(w: W, r: TaskRequirements, tasksOfJobOn: (worker: W) => number): RankKey<W> {
  let busy = 0;
  let slots = 0;
  for (const k of w.kinds.values()) {
    busy += k.busy;
    slots += k.slots;
  }
  return { w, warm: r.model !== '' && w.warmModels.includes(r.model) ? 0 : 1, mine: tasksOfJobOn(w), load: slots === 0 ? 1 : busy / slots };
}

function compareRank<W extends WorkerCapability>(a: RankKey<W>, b: RankKey<W>): number {
  return a.warm - b.warm || a.mine - b.mine || a.load - b.load || (a.w.workerId < b.w.workerId ? -1 : a.w.workerId > b.w.workerId ? 1 : 0);
}

export function describeRequirements(r: TaskRequirements): string {
  const parts: string[] = [];
  if (r.model !== '') parts.push(`model ${r.model}`);
  if (r.minVramBytes > 0) parts.push(`${formatBytes(r.minVramBytes)} free VRAM`);
  if (r.minComputeCapability !== '') parts.push(`compute capability ${r.minComputeCapability}+`);
  if (!r.cpuAllowed && r.minVramBytes === 0 && r.minComputeCapability === '') parts.push('a GPU');
  return parts.join(', ');
}

/**
 * Why a queued task is not running, from the fleet's point of view (HTCondor's
 * better-analyze, in one sentence).
 */
export function explainWaiting(kind: string, r: TaskRequirements, fleet: readonly WorkerCapability[]): string {
  const live = fleet.filter((w) => !w.draining);
  if (live.length === 0) return 'no worker is connected';
  const offering = live.filter((w) => w.kinds.has(kind));
  if (offering.length === 0) return `no connected worker offers ${kind} (${live.length} connected)`;
  const capable = offering.filter((w) => canRun(w, kind, r).ok);
  if (capable.length === 0) {
    if (r.model !== '' && !offering.some((w) => w.kinds.get(kind)?.models.includes(r.model))) {
      const served = [...new Set(offering.flatMap((w) => [...(w.kinds.get(kind)?.models ?? [])]))].sort();
      return `needs model ${r.model}; connected workers serve ${served.length > 0 ? served.join(', ') : 'no models'} for ${kind}`;
    }
    if (r.minVramBytes > 0 || !r.cpuAllowed || r.minComputeCapability !== '') {
      // Only the workers that serve the model, and then only those with a GPU new enough, could run it.
      const serving = r.model === '' ? offering : offering.filter((w) => w.kinds.get(kind)?.models.includes(r.model));
      const withGpu = serving.filter((w) => w.gpus.length > 0);
      if (withGpu.length === 0) return `needs ${describeRequirements(r)}; none of the ${serving.length} workers offering ${kind} has a GPU`;
      const newEnough = withGpu.filter((w) => r.minComputeCapability === '' || w.gpus.some((g) => compareCapability(g.computeCapability, r.minComputeCapability) >= 0));
      if (newEnough.length === 0) {
        const best = withGpu.flatMap((w) => w.gpus.map((g) => g.computeCapability)).sort(compareCapability).pop() ?? '?';
        return `needs compute capability ${r.minComputeCapability}; best connected: ${best}`;
      }
      const room = (w: WorkerCapability): number => freeVram(w, r.minComputeCapability);
      const largest = Math.max(...newEnough.map(room));
      const onCount = newEnough.filter((w) => room(w) === largest).length;
      return `needs ${formatBytes(r.minVramBytes)} VRAM; largest connected: ${formatBytes(largest)} on ${onCount} worker${onCount === 1 ? '' : 's'}`;
    }
    return `no connected worker can run it (${offering.map((w) => canRun(w, kind, r)).map((f) => (f.ok ? '' : f.reason)).filter(Boolean)[0] ?? 'unknown'})`;
  }
  const free = capable.filter((w) => canTakeNow(w, kind, r));
  if (free.length === 0) {
    const slots = capable.reduce((n, w) => n + (w.kinds.get(kind)?.slots ?? 0), 0);
    return `all ${slots} ${kind} slots on the ${capable.length} capable worker${capable.length === 1 ? '' : 's'} are busy`;
  }
  return `${free.length} capable worker${free.length === 1 ? ' has' : 's have'} a free slot; it runs at its turn`;
}
