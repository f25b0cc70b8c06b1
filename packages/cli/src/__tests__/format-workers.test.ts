import { describe, expect, it } from 'vitest';
import type { WorkerView } from '@mmgrid/proto';
import { formatWorkers } from '../format.js';

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
    lastHeartbeatMs: 0,
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
    const text = formatWorkers([view({})]);
    expect(text).toMatch(/^ID\s+NAME\s+SLOTS\s+STATE\s+KINDS$/m);
    expect(text).toMatch(/^w-1\s+box-1\s+1\/2\s+ready\s+selftest\.sleep$/m);
  });

  it('shows trust scores, verdicts and quarantine where it is on', () => {
    const text = formatWorkers([
      view({ verified: true, trustScore: 0.99, resultsAgreed: 98 }),
      view({ workerId: 'liar', name: 'liar', verified: true, trustScore: 0.61, resultsAgreed: 10, resultsDisagreed: 6, quarantined: true }),
    ]);
    expect(text).toMatch(/^ID\s+NAME\s+SLOTS\s+STATE\s+TRUST\s+AGREED\s+DISAGREED\s+KINDS$/m);
    expect(text).toMatch(/^w-1\s+box-1\s+1\/2\s+ready\s+0\.99\s+98\s+0\s+selftest\.sleep$/m);
    expect(text).toMatch(/^liar\s+liar\s+1\/2\s+quarantined\s+0\.61\s+10\s+6\s+selftest\.sleep$/m);
  });

  it('says when no worker is connected', () => {
    expect(formatWorkers([])).toBe('no workers connected');
  });
});
