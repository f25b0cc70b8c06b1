import { describe, expect, it } from 'vitest';
import type { WorkerView } from '@mmgrid/proto';
import { formatWorkers } from '../fleet-format.js';

const NOW = Date.parse('2026-01-02T03:04:05Z');
const GiB = 1024 ** 3;

function view(overrides: Partial<WorkerView>): WorkerView {
  return {
    workerId: 'w-1',
    name: 'box-1',
    sessionId: 's',
    coordinatorId: 'c',
    host: undefined,
    gpus: [],
    slots: [{ kind: 'selftest.sleep', total: 2, busy: 1, models: [] }],
    warmModels: [],
    connectedAtMs: 0,
    lastHeartbeatMs: NOW - 2_000,
    draining: false,
    version: '0.1.0',
    gpuStats: [],
    vramBudgetBytes: 0,
    vramReservedBytes: 0,
    verified: false,
    trustScore: 0,
    resultsAgreed: 0,
    resultsDisagreed: 0,
    quarantined: false,
    ...overrides,
  };
}

describe('formatWorkers (mmgrid workers)', () => {
  it('leaves trust out where result verification is off', () => {
    const text = formatWorkers([view({})], NOW);
    expect(text).toMatch(/^NAME\s+ID\s+GPUS\s+VRAM FREE\/TOTAL\s+SLOTS\s+STATE\s+LAST HEARTBEAT\s+KINDS$/m);
    expect(text).toMatch(/^box-1\s+w-1\s+cpu\s+-\s+1\/2\s+ready\s+2s ago\s+selftest\.sleep$/m);
  });

  it('shows trust scores, verdicts and quarantine where it is on', () => {
    const text = formatWorkers(
      [
        view({ verified: true, trustScore: 0.99, resultsAgreed: 98 }),
        view({ workerId: 'liar', name: 'liar', verified: true, trustScore: 0.61, resultsAgreed: 10, resultsDisagreed: 6, quarantined: true }),
      ],
      NOW,
    );
    expect(text).toMatch(/^NAME\s+ID\s+GPUS\s+VRAM FREE\/TOTAL\s+SLOTS\s+TRUST\s+AGREED\s+DISAGREED\s+STATE\s+LAST HEARTBEAT\s+KINDS$/m);
    expect(text).toMatch(/^box-1\s+w-1\s+cpu\s+-\s+1\/2\s+0\.99\s+98\s+0\s+ready\s+2s ago\s+selftest\.sleep$/m);
    expect(text).toMatch(/^liar\s+liar\s+cpu\s+-\s+1\/2\s+0\.61\s+10\s+6\s+quarantined\s+2s ago\s+selftest\.sleep$/m);
  });

  it('names GPUs by model, counts alike ones, and shows the VRAM the grid can still use of the total', () => {
    const gpu = (uuid: string, name: string, totalGiB: number) => ({
      uuid,
      name,
      memoryTotalBytes: totalGiB * GiB,
      memoryFreeBytes: totalGiB * GiB,
      computeCapability: '8.9',
      driverVersion: '550',
      cudaVersion: '12.4',
    });
    const stats = (uuid: string, usedGiB: number, totalGiB: number) => ({ uuid, utilizationPercent: 10, memoryUsedBytes: usedGiB * GiB, memoryTotalBytes: totalGiB * GiB, temperatureCelsius: 50, powerWatts: 100 });
    const twin = view({
      name: 'twin',
      gpus: [gpu('a', 'NVIDIA GeForce RTX 4090', 24), gpu('b', 'NVIDIA GeForce RTX 4090', 24)],
      gpuStats: [stats('a', 4, 24), stats('b', 0, 24)],
      vramBudgetBytes: 48 * GiB,
      vramReservedBytes: 0,
    });
    // The owner lets the grid use 20 GiB, 8 of them reserved by running tasks: 12 left.
    const budgeted = view({ name: 'budgeted', gpus: [gpu('c', 'NVIDIA A100-SXM4-80GB', 80)], gpuStats: [stats('c', 10, 80)], vramBudgetBytes: 20 * GiB, vramReservedBytes: 8 * GiB });
    const draining = view({ name: 'leaving', draining: true, lastHeartbeatMs: NOW - 192_000 });
    const text = formatWorkers([twin, budgeted, draining], NOW);
    expect(text).toMatch(/^twin\s+w-1\s+2x RTX 4090\s+44\.0\/48\.0 GiB\s+/m);
    expect(text).toMatch(/^budgeted\s+w-1\s+A100-SXM4-80GB\s+12\.0\/80\.0 GiB\s+/m);
    expect(text).toMatch(/^leaving\s+w-1\s+cpu\s+-\s+1\/2\s+draining\s+3m12s ago\s+selftest\.sleep$/m);
  });

  it('says when no worker is connected', () => {
    expect(formatWorkers([], NOW)).toBe('no workers connected');
  });
});
