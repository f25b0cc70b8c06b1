import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { eventually, exited } from '../helpers/process.js';
import type { LiarStats } from '../helpers/liar-worker.js';
import { startLiarProcess } from '../helpers/liar-process.js';
import { report } from './faults.js';

const LIAR_ID = 'canary-liar';

/** A Byzantine worker that offers only text.stats and always lies on it. */
function startTextLiar(address: string): Promise<ChildProcess> {
  return startLiarProcess(['--coordinator', address, '--id', LIAR_ID, '--lie-rate', '1', '--slots', '1', '--seed', '3', '--kind', 'text.stats']);
}

function liarStats(child: ChildProcess): Promise<LiarStats> {
  return new Promise((resolve) => {
    child.once('message', (m: LiarStats) => resolve(m));
    child.send({ type: 'stats' });
  });
}

async function metricSum(metricsAddress: string, name: string, match: Readonly<Record<string, string>>): Promise<number> {
  const text = await (await fetch(`http://${metricsAddress}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(?:\\{([^}]*)\\})? (\\S+)$`).exec(line);
    if (!m) continue;
    const labels = m[1] ?? '';
    if (Object.entries(match).every(([k, v]) => labels.includes(`${k}="${v}"`))) sum += Number(m[2]);
  }
  return sum;
}

describe('canary tasks', () => {
  let tg: TestGrid | undefined;
  let liar: ChildProcess | undefined;

  afterEach(async () => {
    if (liar && liar.exitCode === null && liar.signalCode === null) {
      const gone = exited(liar);
      liar.send({ type: 'stop' });
      await gone;
    }
    liar = undefined;
    await tg?.stop();
    tg = undefined;
  });

  it('a worker lying on text.stats is quarantined by canaries alone (no replication, no jobs); the honest one stays trusted', async () => {
    tg = await startTestGrid({
      workers: 1,
      // No --verify: nothing is replicated. Tenant limits of one job: canaries must not count.
      coordinatorArgs: [
        '--lease-ms', '4000', '--heartbeat-ms', '300', '--stalled-check-ms', '1000', '--canary-rate', '1',
        '--max-live-jobs-per-tenant', '1', '--submit-burst-per-tenant', '1', '--submit-rate-per-tenant', '0.01',
        // A worker with 10 agreements (score 11/12) is trusted, not replicated: a real job needs no second worker.
        '--trust-replicate-below', '0.9',
      ],
      workerArgs: ['--slots', 'selftest.sleep=1,text.stats=1'],
    });
    liar = await startTextLiar(tg.grid.address);

    await eventually(async () => (await tg?.client.listWorkers())?.workers.some((w) => w.workerId === LIAR_ID && w.quarantined) ?? false, 'the liar is quarantined', 30_000);
    await eventually(async () => (await tg?.client.listWorkers())?.workers.some((w) => w.workerId !== LIAR_ID && w.resultsAgreed >= 10) ?? false, 'the honest worker passed canaries', 30_000);
    const { workers } = await tg.client.listWorkers();
    const liarView = workers.find((w) => w.workerId === LIAR_ID);
    const honest = workers.filter((w) => w.workerId !== LIAR_ID);
    const stats = await liarStats(liar);
    const metrics = tg.grid.metricsAddresses[0] ?? '';
    const failed = await metricSum(metrics, 'mmgrid_canary_checks_total', { outcome: 'failed' });
    const passed = await metricSum(metrics, 'mmgrid_canary_checks_total', { outcome: 'passed' });
    const passedText = await metricSum(metrics, 'mmgrid_canary_checks_total', { kind: 'text.stats', outcome: 'passed' });

    // No tenant sees a canary: no job was ever submitted, and none is listed.
    const listed = await tg.client.list();
    // Nor does one count toward a tenant's limits: one job is still allowed (and runs).
    const job = await tg.client.submit([], { pipeline: 'selftest', params: { tasks: '2', taskMs: '10' } });
    const done = await tg.client.waitForJob(job.id);
    const listedAfter = await tg.client.list();

    report('canaries', {
      liarAnswered: stats.tasks,
      liarLied: stats.lies,
      liarTrust: liarView?.trustScore.toFixed(2) ?? '?',
      liarDisagreed: liarView?.resultsDisagreed ?? 0,
      liarQuarantined: String(liarView?.quarantined ?? false),
      honestAgreed: honest.map((w) => w.resultsAgreed).join(','),
      honestDisagreed: honest.map((w) => w.resultsDisagreed).join(','),
      honestTrust: honest.map((w) => w.trustScore.toFixed(2)).join(','),
      checksFailed: failed,
      checksPassed: passed,
      checksPassedTextStats: passedText,
      jobsListedBefore: listed.jobs.length,
      jobsListedAfter: listedAfter.jobs.length,
      realJob: done.state,
    });

    expect(liarView?.quarantined).toBe(true);
    expect(liarView?.resultsDisagreed).toBeGreaterThan(0);
    expect(liarView?.resultsAgreed).toBe(0);
    expect(stats.lies).toBe(stats.tasks);
    expect(honest.length).toBe(1);
    expect(honest.every((w) => !w.quarantined && w.resultsDisagreed === 0 && w.resultsAgreed > 0)).toBe(true);
    expect(failed).toBeGreaterThan(0);
    expect(passed).toBeGreaterThan(0);
    expect(listed.jobs).toEqual([]);
    expect(done.state).toBe('completed');
    expect(listedAfter.jobs.map((j) => j.id)).toEqual([job.id]);
  });
});
