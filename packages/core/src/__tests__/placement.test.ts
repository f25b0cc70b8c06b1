import { describe, expect, it } from 'vitest';
import {
  canRun,
  canTakeNow,
  describeRequirements,
  explainWaiting,
  formatBytes,
  freeVram,
  rankWorkers,
  bestWorker,
  type Fit,
  type WorkerCapability,
} from '../placement.js';
import { NO_REQUIREMENTS, type TaskRequirements } from '../task-graph.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

interface Offer {
  slots: number;
  busy: number;
  models: string[];
}

interface WorkerShape {
  kinds?: Record<string, Partial<Offer>>;
  gpus?: { free: number; cc: string }[];
  vramBudgetBytes?: number;
  vramReservedBytes?: number;
  warmModels?: string[];
  draining?: boolean;
}

/** A worker; by default it offers selftest.sleep with 2 free slots, no GPU. */
function worker(workerId: string, shape: WorkerShape = {}): WorkerCapability {
  const kinds = new Map<string, Offer>();
  for (const [kind, offer] of Object.entries(shape.kinds ?? { 'selftest.sleep': {} })) {
    kinds.set(kind, { slots: offer.slots ?? 2, busy: offer.busy ?? 0, models: offer.models ?? [] });
  }
  const gpus = (shape.gpus ?? []).map((g) => ({ memoryFreeBytes: g.free, computeCapability: g.cc }));
  return {
    workerId,
    name: `host-${workerId}`,
    kinds,
    gpus,
    vramBudgetBytes: shape.vramBudgetBytes ?? gpus.reduce((n, g) => n + g.memoryFreeBytes, 0),
    vramReservedBytes: shape.vramReservedBytes ?? 0,
    warmModels: shape.warmModels ?? [],
    draining: shape.draining ?? false,
  };
}

const req = (r: Partial<TaskRequirements>): TaskRequirements => ({ ...NO_REQUIREMENTS, ...r });

const KIND = 'selftest.sleep';

describe('formatBytes', () => {
  it.each([
    { bytes: 0, text: '0 MiB' },
    { bytes: 512 * MiB, text: '512 MiB' },
    { bytes: 1023 * MiB, text: '1023 MiB' },
    { bytes: 1.4 * MiB, text: '1 MiB' },
    { bytes: GiB, text: '1 GiB' },
    { bytes: 1.5 * GiB, text: '1.5 GiB' },
    { bytes: 12 * GiB, text: '12 GiB' },
    { bytes: 12.34 * GiB, text: '12.3 GiB' },
    { bytes: 24_564 * MiB, text: '24 GiB' },
    { bytes: 81_920 * MiB, text: '80 GiB' },
  ])('$bytes bytes → $text', ({ bytes, text }) => {
    expect(formatBytes(bytes)).toBe(text);
  });
});

describe('describeRequirements', () => {
  it.each([
    { name: 'none', r: NO_REQUIREMENTS, text: '' },
    { name: 'a model only', r: req({ model: 'llama-3-8b' }), text: 'model llama-3-8b' },
    { name: 'a GPU only', r: req({ cpuAllowed: false }), text: 'a GPU' },
    { name: 'VRAM (implies a GPU, not repeated)', r: req({ minVramBytes: 24 * GiB, cpuAllowed: false }), text: '24 GiB free VRAM' },
    { name: 'compute capability', r: req({ minComputeCapability: '8.0', cpuAllowed: false }), text: 'compute capability 8.0+' },
    {
      name: 'everything',
      r: req({ model: 'sdxl', minVramBytes: 12 * GiB, minComputeCapability: '8.6', cpuAllowed: false }),
      text: 'model sdxl, 12 GiB free VRAM, compute capability 8.6+',
    },
    { name: 'a model on a GPU', r: req({ model: 'whisper-large', cpuAllowed: false }), text: 'model whisper-large, a GPU' },
  ])('$name', ({ r, text }) => {
    expect(describeRequirements(r)).toBe(text);
  });
});

describe('freeVram', () => {
  it.each([
    { name: 'no GPU', w: worker('a'), free: 0 },
    { name: 'roomiest GPU within a larger budget', w: worker('a', { gpus: [{ free: 10 * GiB, cc: '8.6' }, { free: 20 * GiB, cc: '8.6' }], vramBudgetBytes: 64 * GiB }), free: 20 * GiB },
    {
      name: 'budget minus reserved is smaller than the roomiest GPU',
      w: worker('a', { gpus: [{ free: 10 * GiB, cc: '8.6' }, { free: 20 * GiB, cc: '8.6' }], vramBudgetBytes: 16 * GiB, vramReservedBytes: 4 * GiB }),
      free: 12 * GiB,
    },
    { name: 'reserved beyond the budget is 0, not negative', w: worker('a', { gpus: [{ free: 20 * GiB, cc: '8.6' }], vramBudgetBytes: 8 * GiB, vramReservedBytes: 10 * GiB }), free: 0 },
    { name: 'zero budget', w: worker('a', { gpus: [{ free: 20 * GiB, cc: '8.6' }], vramBudgetBytes: 0 }), free: 0 },
  ])('$name', ({ w, free }) => {
    expect(freeVram(w)).toBe(free);
  });
});

describe('canRun', () => {
  const gpu = (cc: string, free = 24 * GiB): { free: number; cc: string } => ({ free, cc });
  const cases: { name: string; w: WorkerCapability; kind?: string; r: TaskRequirements; fit: Fit }[] = [
    { name: 'no requirements on a CPU worker', w: worker('a'), r: NO_REQUIREMENTS, fit: { ok: true } },
    { name: 'kind not offered', w: worker('a'), kind: 'image.ocr', r: NO_REQUIREMENTS, fit: { ok: false, reason: 'does not offer image.ocr' } },
    {
      name: 'model not served',
      w: worker('a', { kinds: { [KIND]: { models: ['mistral-7b'] } } }),
      r: req({ model: 'llama-3-8b' }),
      fit: { ok: false, reason: 'does not serve model llama-3-8b' },
    },
    { name: 'model served', w: worker('a', { kinds: { [KIND]: { models: ['mistral-7b', 'llama-3-8b'] } } }), r: req({ model: 'llama-3-8b' }), fit: { ok: true } },
    {
      name: 'model served by another kind only',
      w: worker('a', { kinds: { [KIND]: {}, 'text.generate': { models: ['llama-3-8b'] } } }),
      r: req({ model: 'llama-3-8b' }),
      fit: { ok: false, reason: 'does not serve model llama-3-8b' },
    },
    { name: 'needs a GPU, CPU-only worker', w: worker('a'), r: req({ cpuAllowed: false }), fit: { ok: false, reason: 'has no GPU' } },
    { name: 'VRAM implies a GPU', w: worker('a'), r: req({ minVramBytes: GiB }), fit: { ok: false, reason: 'has no GPU' } },
    { name: 'compute capability implies a GPU', w: worker('a'), r: req({ minComputeCapability: '7.0' }), fit: { ok: false, reason: 'has no GPU' } },
    { name: 'needs a GPU, has one', w: worker('a', { gpus: [gpu('7.5')] }), r: req({ cpuAllowed: false }), fit: { ok: true } },
    { name: 'CPU-allowed task on a GPU worker', w: worker('a', { gpus: [gpu('7.5')] }), r: NO_REQUIREMENTS, fit: { ok: true } },
    { name: 'capability equal', w: worker('a', { gpus: [gpu('8.0')] }), r: req({ minComputeCapability: '8.0' }), fit: { ok: true } },
    {
      name: 'capability too low',
      w: worker('a', { gpus: [gpu('7.5')] }),
      r: req({ minComputeCapability: '8.0' }),
      fit: { ok: false, reason: 'has no GPU of compute capability 8.0 or newer' },
    },
    { name: '9.0 is newer than 8.9', w: worker('a', { gpus: [gpu('9.0')] }), r: req({ minComputeCapability: '8.9' }), fit: { ok: true } },
    {
      name: '8.9 is older than 9.0',
      w: worker('a', { gpus: [gpu('8.9')] }),
      r: req({ minComputeCapability: '9.0' }),
      fit: { ok: false, reason: 'has no GPU of compute capability 9.0 or newer' },
    },
    { name: 'minor versions compare as numbers: 8.10 ≥ 8.6', w: worker('a', { gpus: [gpu('8.10')] }), r: req({ minComputeCapability: '8.6' }), fit: { ok: true } },
    {
      name: 'minor versions compare as numbers: 8.6 < 8.10',
      w: worker('a', { gpus: [gpu('8.6')] }),
      r: req({ minComputeCapability: '8.10' }),
      fit: { ok: false, reason: 'has no GPU of compute capability 8.10 or newer' },
    },
    { name: '10.0 is newer than 9.0', w: worker('a', { gpus: [gpu('10.0')] }), r: req({ minComputeCapability: '9.0' }), fit: { ok: true } },
    { name: 'any one GPU new enough will do', w: worker('a', { gpus: [gpu('7.0'), gpu('8.9')] }), r: req({ minComputeCapability: '8.6' }), fit: { ok: true } },
    { name: 'VRAM fits exactly', w: worker('a', { gpus: [gpu('8.9', 24 * GiB)] }), r: req({ minVramBytes: 24 * GiB }), fit: { ok: true } },
    {
      name: 'VRAM: roomiest GPU too small',
      w: worker('a', { gpus: [gpu('8.9', 8 * GiB), gpu('8.9', 12 * GiB)] }),
      r: req({ minVramBytes: 16 * GiB }),
      fit: { ok: false, reason: 'has 12 GiB of GPU memory free for the grid' },
    },
    {
      name: 'VRAM: GPU has room but the budget minus reserved does not',
      w: worker('a', { gpus: [gpu('8.9', 24 * GiB)], vramBudgetBytes: 16 * GiB, vramReservedBytes: 6 * GiB }),
      r: req({ minVramBytes: 12 * GiB }),
      fit: { ok: false, reason: 'has 10 GiB of GPU memory free for the grid' },
    },
    {
      name: 'VRAM: free memory is not summed across GPUs',
      w: worker('a', { gpus: [gpu('8.0', 10 * GiB), gpu('8.0', 10 * GiB)], vramBudgetBytes: 80 * GiB }),
      r: req({ minVramBytes: 16 * GiB }),
      fit: { ok: false, reason: 'has 10 GiB of GPU memory free for the grid' },
    },
    {
      name: 'VRAM: budget exhausted by reservations',
      w: worker('a', { gpus: [gpu('8.0', 40 * GiB)], vramBudgetBytes: 20 * GiB, vramReservedBytes: 20 * GiB }),
      r: req({ minVramBytes: 512 * MiB }),
      fit: { ok: false, reason: 'has 0 MiB of GPU memory free for the grid' },
    },
    {
      name: 'every requirement met',
      w: worker('a', { kinds: { [KIND]: { models: ['sdxl'] } }, gpus: [gpu('8.9', 24 * GiB)] }),
      r: req({ model: 'sdxl', minVramBytes: 20 * GiB, minComputeCapability: '8.6', cpuAllowed: false }),
      fit: { ok: true },
    },
    {
      name: 'busy slots do not matter to canRun',
      w: worker('a', { kinds: { [KIND]: { slots: 1, busy: 1 } } }),
      r: NO_REQUIREMENTS,
      fit: { ok: true },
    },
    { name: 'draining does not matter to canRun', w: worker('a', { draining: true }), r: NO_REQUIREMENTS, fit: { ok: true } },
  ];
  it.each(cases)('$name', ({ w, kind, r, fit }) => {
    expect(canRun(w, kind ?? KIND, r)).toEqual(fit);
  });
});

describe('canTakeNow', () => {
  it.each([
    { name: 'free slot', w: worker('a', { kinds: { [KIND]: { slots: 2, busy: 1 } } }), r: NO_REQUIREMENTS, now: true },
    { name: 'all slots busy', w: worker('a', { kinds: { [KIND]: { slots: 2, busy: 2 } } }), r: NO_REQUIREMENTS, now: false },
    { name: 'no slots at all', w: worker('a', { kinds: { [KIND]: { slots: 0, busy: 0 } } }), r: NO_REQUIREMENTS, now: false },
    { name: 'busy with another kind only', w: worker('a', { kinds: { [KIND]: { slots: 1, busy: 0 }, 'image.ocr': { slots: 1, busy: 1 } } }), r: NO_REQUIREMENTS, now: true },
    { name: 'draining', w: worker('a', { draining: true }), r: NO_REQUIREMENTS, now: false },
    { name: 'kind not offered', w: worker('a', { kinds: { 'image.ocr': {} } }), r: NO_REQUIREMENTS, now: false },
    { name: 'free slot but cannot run it', w: worker('a'), r: req({ cpuAllowed: false }), now: false },
  ])('$name → $now', ({ w, r, now }) => {
    expect(canTakeNow(w, KIND, r)).toBe(now);
  });
});

describe('rankWorkers', () => {
  const cases: {
    name: string;
    workers: WorkerCapability[];
    r: TaskRequirements;
    /** Tasks of the same job on each worker; 0 when not listed. */
    mine?: Record<string, number>;
    order: string[];
  }[] = [
    {
      name: 'a warm model beats fewer tasks of the job and a lighter load',
      workers: [
        worker('cold', { kinds: { [KIND]: { slots: 4, busy: 0, models: ['m'] } } }),
        worker('warm', { kinds: { [KIND]: { slots: 4, busy: 3, models: ['m'] } }, warmModels: ['m'] }),
      ],
      r: req({ model: 'm' }),
      mine: { warm: 3 },
      order: ['warm', 'cold'],
    },
    {
      name: 'warm models do not matter when the task needs no model',
      workers: [
        worker('a', { kinds: { [KIND]: { slots: 4, busy: 3 } }, warmModels: ['m'] }),
        worker('b', { kinds: { [KIND]: { slots: 4, busy: 0 } } }),
      ],
      r: NO_REQUIREMENTS,
      order: ['b', 'a'],
    },
    {
      name: 'a warm model other than the one needed does not count',
      workers: [
        worker('a', { kinds: { [KIND]: { slots: 4, busy: 3, models: ['m', 'n'] } }, warmModels: ['n'] }),
        worker('b', { kinds: { [KIND]: { slots: 4, busy: 0, models: ['m', 'n'] } } }),
      ],
      r: req({ model: 'm' }),
      order: ['b', 'a'],
    },
    {
      name: 'fewer tasks of the same job beat a lighter load',
      workers: [
        worker('light', { kinds: { [KIND]: { slots: 8, busy: 0 } } }),
        worker('spread', { kinds: { [KIND]: { slots: 8, busy: 6 } } }),
      ],
      r: NO_REQUIREMENTS,
      mine: { light: 2, spread: 1 },
      order: ['spread', 'light'],
    },
    {
      name: 'least loaded, counting every kind the worker offers',
      workers: [
        worker('half', { kinds: { [KIND]: { slots: 2, busy: 0 }, 'image.ocr': { slots: 2, busy: 2 } } }),
        worker('quarter', { kinds: { [KIND]: { slots: 2, busy: 1 }, 'image.ocr': { slots: 2, busy: 0 } } }),
        worker('idle', { kinds: { [KIND]: { slots: 1, busy: 0 } } }),
      ],
      r: NO_REQUIREMENTS,
      order: ['idle', 'quarter', 'half'],
    },
    {
      name: 'ties broken by worker id',
      workers: [worker('w3'), worker('w1'), worker('w2')],
      r: NO_REQUIREMENTS,
      order: ['w1', 'w2', 'w3'],
    },
    {
      name: 'workers that cannot take the task now are left out',
      workers: [
        worker('busy', { kinds: { [KIND]: { slots: 1, busy: 1 } } }),
        worker('draining', { draining: true }),
        worker('other-kind', { kinds: { 'image.ocr': {} } }),
        worker('cpu-only'),
        worker('gpu', { gpus: [{ free: 8 * GiB, cc: '8.6' }] }),
      ],
      r: req({ cpuAllowed: false }),
      order: ['gpu'],
    },
    { name: 'nobody can', workers: [worker('busy', { kinds: { [KIND]: { slots: 1, busy: 1 } } })], r: NO_REQUIREMENTS, order: [] },
    {
      name: 'every key at once',
      workers: [
        worker('e', { kinds: { [KIND]: { slots: 4, busy: 0, models: ['m'] } } }),
        worker('d', { kinds: { [KIND]: { slots: 4, busy: 2, models: ['m'] } } }),
        worker('c', { kinds: { [KIND]: { slots: 4, busy: 2, models: ['m'] } } }),
        worker('b', { kinds: { [KIND]: { slots: 4, busy: 3, models: ['m'] } }, warmModels: ['m'] }),
        worker('a', { kinds: { [KIND]: { slots: 4, busy: 1, models: ['m'] } }, warmModels: ['m'] }),
      ],
      r: req({ model: 'm' }),
      mine: { a: 1, e: 1 },
      // warm: a, b (b has none of the job, a has one); cold, none of the job: c, d (tied load → id); then e.
      order: ['b', 'a', 'c', 'd', 'e'],
    },
  ];
  it.each(cases)('$name', ({ workers, r, mine, order }) => {
    const ranked = rankWorkers(workers, KIND, r, (w) => mine?.[w.workerId] ?? 0);
    expect(ranked.map((w) => w.workerId)).toEqual(order);
  });

  it.each(cases)('bestWorker picks the first of rankWorkers, in one pass: $name', ({ workers, r, mine, order }) => {
    const best = bestWorker(new Set(workers), KIND, r, (w) => mine?.[w.workerId] ?? 0);
    expect(best?.workerId).toBe(order[0]);
  });

  it('bestWorker finds none when no worker can take the task', () => {
    expect(bestWorker([], KIND, NO_REQUIREMENTS, () => 0)).toBeUndefined();
    expect(bestWorker([worker('a', { draining: true })], KIND, NO_REQUIREMENTS, () => 0)).toBeUndefined();
  });

  it('keeps the caller’s worker type and does not reorder its input', () => {
    const workers = [{ ...worker('b'), extra: 2 }, { ...worker('a'), extra: 1 }];
    const ranked = rankWorkers(workers, KIND, NO_REQUIREMENTS, () => 0);
    expect(ranked.map((w) => w.extra)).toEqual([1, 2]);
    expect(workers.map((w) => w.workerId)).toEqual(['b', 'a']);
  });
});

describe('explainWaiting', () => {
  const gpuWorker = (id: string, free: number, cc = '8.6', shape: WorkerShape = {}): WorkerCapability =>
    worker(id, { gpus: [{ free, cc }], ...shape });
  const cases: { name: string; kind?: string; r: TaskRequirements; fleet: WorkerCapability[]; text: string }[] = [
    { name: 'an empty fleet', r: NO_REQUIREMENTS, fleet: [], text: 'no worker is connected' },
    { name: 'only draining workers', r: NO_REQUIREMENTS, fleet: [worker('a', { draining: true })], text: 'no worker is connected' },
    {
      name: 'kind not offered',
      kind: 'image.ocr',
      r: NO_REQUIREMENTS,
      fleet: [worker('a'), worker('b'), worker('c', { draining: true })],
      text: 'no connected worker offers image.ocr (2 connected)',
    },
    {
      name: 'model missing: lists the models served for the kind, sorted and once each',
      r: req({ model: 'llama-3-8b' }),
      fleet: [
        worker('a', { kinds: { [KIND]: { models: ['qwen2-7b', 'mistral-7b'] }, 'text.generate': { models: ['llama-3-8b'] } } }),
        worker('b', { kinds: { [KIND]: { models: ['mistral-7b'] } } }),
      ],
      text: 'needs model llama-3-8b; connected workers serve mistral-7b, qwen2-7b for selftest.sleep',
    },
    {
      name: 'model missing: no models served at all',
      r: req({ model: 'llama-3-8b' }),
      fleet: [worker('a'), worker('b')],
      text: 'needs model llama-3-8b; connected workers serve no models for selftest.sleep',
    },
    {
      name: 'needs a GPU, none has one',
      r: req({ cpuAllowed: false }),
      fleet: [worker('a'), worker('b'), worker('c', { kinds: { 'image.ocr': {} }, gpus: [{ free: 8 * GiB, cc: '8.6' }] })],
      text: 'needs a GPU; none of the 2 workers offering selftest.sleep has a GPU',
    },
    {
      name: 'needs VRAM, none has a GPU',
      r: req({ minVramBytes: 24 * GiB, cpuAllowed: false }),
      fleet: [worker('a')],
      text: 'needs 24 GiB free VRAM; none of the 1 workers offering selftest.sleep has a GPU',
    },
    {
      name: 'compute capability too low everywhere',
      r: req({ minComputeCapability: '9.0', cpuAllowed: false }),
      fleet: [gpuWorker('a', 24 * GiB, '8.9'), worker('b', { gpus: [{ free: GiB, cc: '7.5' }, { free: GiB, cc: '8.6' }] }), worker('c')],
      text: 'needs compute capability 9.0; best connected: 8.9',
    },
    {
      name: 'compute capability: best is chosen by number, 8.10 over 8.9',
      r: req({ minComputeCapability: '9.0', cpuAllowed: false }),
      fleet: [gpuWorker('a', 24 * GiB, '8.9'), gpuWorker('b', 24 * GiB, '8.10'), gpuWorker('c', 24 * GiB, '8.6')],
      text: 'needs compute capability 9.0; best connected: 8.10',
    },
    {
      name: 'not enough VRAM anywhere',
      r: req({ minVramBytes: 24 * GiB, cpuAllowed: false }),
      fleet: [gpuWorker('a', 12 * GiB), gpuWorker('b', 12 * GiB), gpuWorker('c', 12 * GiB), gpuWorker('d', 8 * GiB), worker('cpu')],
      text: 'needs 24 GiB VRAM; largest connected: 12 GiB on 3 workers',
    },
    {
      name: 'not enough VRAM: the budget counts, and one worker has the most',
      r: req({ minVramBytes: 24 * GiB, cpuAllowed: false }),
      fleet: [gpuWorker('a', 80 * GiB, '8.0', { vramBudgetBytes: 16 * GiB }), gpuWorker('b', 20 * GiB, '8.0', { vramReservedBytes: 4 * GiB })],
      text: 'needs 24 GiB VRAM; largest connected: 16 GiB on 2 workers',
    },
    {
      name: 'not enough VRAM on the one worker with it',
      r: req({ minVramBytes: 24 * GiB, cpuAllowed: false }),
      fleet: [gpuWorker('a', 12 * GiB), gpuWorker('b', 8 * GiB)],
      text: 'needs 24 GiB VRAM; largest connected: 12 GiB on 1 worker',
    },
    {
      name: 'not enough VRAM on the workers whose GPUs are new enough',
      r: req({ minVramBytes: 24 * GiB, minComputeCapability: '8.0', cpuAllowed: false }),
      fleet: [gpuWorker('old-but-roomy', 40 * GiB, '7.5'), gpuWorker('new', 12 * GiB, '8.9')],
      text: 'needs 24 GiB VRAM; largest connected: 12 GiB on 1 worker',
    },
    {
      name: 'a GPU and a model: only the workers serving the model count',
      r: req({ model: 'sdxl', cpuAllowed: false }),
      fleet: [worker('cpu', { kinds: { [KIND]: { models: ['sdxl'] } } }), gpuWorker('gpu', 24 * GiB, '8.9')],
      text: 'needs model sdxl, a GPU; none of the 1 workers offering selftest.sleep has a GPU',
    },
    {
      name: 'all slots busy on one capable worker',
      r: NO_REQUIREMENTS,
      fleet: [worker('a', { kinds: { [KIND]: { slots: 3, busy: 3 } } })],
      text: 'all 3 selftest.sleep slots on the 1 capable worker are busy',
    },
    {
      name: 'all slots busy on several capable workers (incapable ones not counted)',
      r: req({ cpuAllowed: false }),
      fleet: [
        gpuWorker('a', 8 * GiB, '8.6', { kinds: { [KIND]: { slots: 2, busy: 2 } } }),
        gpuWorker('b', 8 * GiB, '8.6', { kinds: { [KIND]: { slots: 4, busy: 4 } } }),
        worker('cpu', { kinds: { [KIND]: { slots: 16, busy: 0 } } }),
      ],
      text: 'all 6 selftest.sleep slots on the 2 capable workers are busy',
    },
    {
      name: 'one free slot',
      r: NO_REQUIREMENTS,
      fleet: [worker('a', { kinds: { [KIND]: { slots: 1, busy: 1 } } }), worker('b')],
      text: '1 capable worker has a free slot; it runs at its turn',
    },
    {
      name: 'several free slots',
      r: NO_REQUIREMENTS,
      fleet: [worker('a'), worker('b'), worker('c', { draining: true })],
      text: '2 capable workers have a free slot; it runs at its turn',
    },
  ];
  it.each(cases)('$name', ({ kind, r, fleet, text }) => {
    expect(explainWaiting(kind ?? KIND, r, fleet)).toBe(text);
  });
});
