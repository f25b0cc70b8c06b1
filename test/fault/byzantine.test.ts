import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import type { JobView } from '@mmgrid/client';
import { audit, submitSelftests, waitForAll } from '../helpers/audit.js';
import { runCli } from '../helpers/cli.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { eventually, exited } from '../helpers/process.js';
import type { LiarStats } from '../helpers/liar-worker.js';
import { startLiarProcess } from '../helpers/liar-process.js';
import { report } from './faults.js';

const LIAR_ID = 'liar-1';

/** Starts a Byzantine worker process; resolves once the coordinator welcomed it. */
function startLiar(address: string, lieRate: number, id = LIAR_ID, offset = 1): Promise<ChildProcess> {
  return startLiarProcess(['--coordinator', address, '--id', id, '--lie-rate', String(lieRate), '--slots', '2', '--seed', '7', '--offset', String(offset)]);
}

/** Sums a coordinator metric's samples (all label sets) whose labels include `match`. */
async function metricSum(metricsAddress: string, name: string, match: Readonly<Record<string, string>> = {}): Promise<number> {
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

function liarStats(child: ChildProcess): Promise<LiarStats> {
  return new Promise((resolve) => {
    child.once('message', (m: LiarStats) => resolve(m));
    child.send({ type: 'stats' });
  });
}

/**
 * The committed output of every selftest.sleep task, with the index it should have (the
 * task's own parameter): read from BullMQ's job hashes, where commits put the return value.
 */
async function committedOutputs(redisUrl: string): Promise<{ expected: number; got: number | undefined }[]> {
  const redis = new Redis(redisUrl);
  try {
    const out: { expected: number; got: number | undefined }[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', 'mmgrid:selftest.sleep*', 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        if ((await redis.type(key)) !== 'hash') continue;
        const [data, returnvalue] = await redis.hmget(key, 'data', 'returnvalue');
        if (!data || !returnvalue || returnvalue === 'null') continue;
        // Stored packed (task-data.ts: `p` holds the parameters) or, from older code, whole.
        const stored = JSON.parse(data) as { p?: { index?: number }; params?: { index?: number } };
        const expected = (stored.p ?? stored.params)?.index ?? 0;
        const got = (JSON.parse(returnvalue) as { index?: number }).index;
        out.push({ expected, got });
      }
    } while (cursor !== '0');
    return out;
  } finally {
    redis.disconnect();
  }
}

describe('result verification against a Byzantine worker', () => {
  let tg: TestGrid | undefined;
  let liar: ChildProcess | undefined;
  let liars: ChildProcess[] = [];

  afterEach(async () => {
    for (const child of [...(liar ? [liar] : []), ...liars]) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const gone = exited(child);
      child.send({ type: 'stop' });
      await gone;
    }
    liar = undefined;
    liars = [];
    await tg?.stop();
    tg = undefined;
  });

  it('a worker that lies 30 % of the time among honest ones: ≥ 99 % of results right, the liar quarantined', async () => {
    tg = await startTestGrid({
      workers: 4,
      coordinatorArgs: ['--lease-ms', '4000', '--heartbeat-ms', '500', '--stalled-check-ms', '1000', '--verify', 'selftest.sleep=2', '--canary-rate', '0.1'],
      workerArgs: ['--slots', 'selftest.sleep=2'],
    });
    liar = await startLiar(tg.grid.address, 0.3);
    const jobs = await submitSelftests(tg.client, 3, { tasks: '100', taskMs: '20' });
    const finished: JobView[] = await waitForAll(tg.client, jobs);

    const outputs = await committedOutputs(tg.grid.redisUrl);
    const right = outputs.filter((o) => o.got === o.expected).length;
    const result = await audit(tg.grid.redisUrl, finished);
    const stats = await liarStats(liar);
    await eventually(async () => (await tg?.client.listWorkers())?.workers.some((w) => w.workerId === LIAR_ID && w.quarantined) ?? false, 'the liar is listed as quarantined');
    const { workers } = await tg.client.listWorkers();
    const liarView = workers.find((w) => w.workerId === LIAR_ID);
    const honest = workers.filter((w) => w.workerId !== LIAR_ID);
    const metrics = tg.grid.metricsAddresses[0] ?? '';
    const replicas = await metricSum(metrics, 'mmgrid_verification_replicas_total', { kind: 'selftest.sleep' });
    const disagreed = await metricSum(metrics, 'mmgrid_verification_verdicts_total', { verdict: 'disagreed' });
    const quarantines = await metricSum(metrics, 'mmgrid_workers_quarantined_total');
    const canaries = await metricSum(metrics, 'mmgrid_canary_checks_total');
    const listed = await runCli(['workers'], tg.cliEnv);
    report('Byzantine worker lying 30 % of the time', {
      tasks: outputs.length,
      right,
      rightPercent: ((100 * right) / Math.max(1, outputs.length)).toFixed(2),
      liarAnswered: stats.tasks,
      liarLied: stats.lies,
      liarTrust: liarView?.trustScore.toFixed(2) ?? '?',
      liarAgreed: liarView?.resultsAgreed ?? 0,
      liarDisagreed: liarView?.resultsDisagreed ?? 0,
      liarQuarantined: String(liarView?.quarantined ?? false),
      honestTrustMin: Math.min(...honest.map((w) => w.trustScore)).toFixed(2),
      honestQuarantined: honest.filter((w) => w.quarantined).length,
      replicasMetric: replicas,
      disagreedMetric: disagreed,
      canaryChecks: canaries,
      duplicates: result.duplicates,
      lost: result.lost,
    });

    expect(result.lost).toBe(0);
    expect(result.duplicates).toBe(0);
    expect(outputs).toHaveLength(300);
    expect(right / outputs.length).toBeGreaterThanOrEqual(0.99);
    expect(stats.lies).toBeGreaterThan(0);
    expect(liarView?.quarantined).toBe(true);
    expect(honest.filter((w) => w.quarantined)).toHaveLength(0);
    expect(honest.every((w) => w.verified)).toBe(true);
    // Visible in the metrics and in `mmgrid workers`.
    expect(replicas).toBeGreaterThanOrEqual(300);
    expect(disagreed).toBeGreaterThan(0);
    expect(quarantines).toBe(1);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^NAME\s+ID\s+GPUS\s+VRAM FREE\/TOTAL\s+SLOTS\s+TRUST\s+AGREED\s+DISAGREED\s+STATE\s+LAST HEARTBEAT\s+KINDS$/m);
    // Its trust, its results that agreed and disagreed, then its state.
    expect(listed.stdout).toMatch(new RegExp(`^${LIAR_ID}\\s+${LIAR_ID}\\s.*\\s[01]\\.\\d\\d\\s+\\d+\\s+[1-9]\\d*\\s+quarantined\\s`, 'm'));

    // An operator lets it back in (mmgrid workers release): a fresh record, tasks again.
    const released = await runCli(['workers', 'release', LIAR_ID], tg.cliEnv);
    expect(released.code).toBe(0);
    expect(released.stdout).toContain(`released worker ${LIAR_ID}`);
    // Released again (--json): it was no longer quarantined.
    const twice = await runCli(['workers', 'release', LIAR_ID, '--json'], tg.cliEnv);
    expect(JSON.parse(twice.stdout)).toEqual({ workerId: LIAR_ID, wasQuarantined: false });
    await eventually(async () => (await tg?.client.listWorkers())?.workers.some((w) => w.workerId === LIAR_ID && !w.quarantined && w.resultsDisagreed === 0) ?? false, 'the liar is listed as released');
    const before = (await liarStats(liar)).tasks;
    const [again] = await submitSelftests(tg.client, 1, { tasks: '40', taskMs: '20' });
    const view = await tg.client.waitForJob(again?.id ?? '');
    expect(view.state).toBe('completed');
    expect((await liarStats(liar)).tasks).toBeGreaterThan(before);
  });

  it('results that never reach a quorum fail the task with VERIFICATION_FAILED', async () => {
    tg = await startTestGrid({ workers: 0, coordinatorArgs: ['--verify', 'selftest.sleep=2', '--verify-max-replicas', '3'] });
    const address = tg.grid.address;
    // Three workers that always lie, each differently: no two results ever agree.
    liars = await Promise.all([1, 2, 3].map((offset) => startLiar(address, 1, `liar-${offset}`, offset)));
    const [job] = await submitSelftests(tg.client, 1, { tasks: '2', taskMs: '10' });
    const done = await tg.client.waitForJob(job?.id ?? '');
    const tasks = done.tasks.filter((t) => t.kind === 'selftest.sleep');
    const answered = (await Promise.all(liars.map(liarStats))).reduce((n, s) => n + s.tasks, 0);
    report('results that never agree', { state: done.state, tasks: tasks.length, codes: tasks.map((t) => t.error?.code ?? '-').join(','), resultsGathered: answered });
    expect(done.state).toBe('failed');
    expect(tasks.map((t) => t.error?.code)).toEqual(['VERIFICATION_FAILED', 'VERIFICATION_FAILED']);
    expect(tasks[0]?.error?.message).toMatch(/did not reach a quorum of 2/);
    // Each task ran on all three workers, and no more.
    expect(answered).toBe(6);
  });
});
