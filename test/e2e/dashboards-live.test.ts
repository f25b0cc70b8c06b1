// The shipped dashboards and alerting rules against a real Prometheus scraping a real grid: two
// coordinator replicas and two workers with (fake) GPUs, under the scrape job names the
// dashboards use, every second, while a mix of jobs runs (completed, retried, failed, fanned
// out, partial, cancelled, and one whose worker froze past its lease). Every panel's query and
// every variable's query must then return data: a query that names a series the grid does not
// export, or a label it does not have, returns nothing, and so does one that parses but can
// never match. Every alerting rule must load and evaluate without error.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '@mmgrid/client';
import { COORDINATOR_METRICS, WORKER_METRICS } from '@mmgrid/core';
import { SCRAPE_JOBS } from '../../deploy/grafana/src/catalog.js';
import { firstRunningTask, submitSelftests } from '../helpers/audit.js';
import { writeFakeNvidiaSmi } from '../helpers/fake-nvidia-smi.js';
import { removeDir, tempDir, writeIn } from '../helpers/files.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeCorruptPng, writeWav } from '../helpers/media.js';
import { alertExprs, concreteExpr, dashboardQueries, labelValuesQuery, PROMETHEUS_DIR, variableQueries, type PlacedExpr } from '../helpers/observability.js';
import { eventually, nextConnection } from '../helpers/process.js';
import { startPrometheus, type LocalPrometheus } from '../helpers/prometheus.js';

/** Leases lapse within about two seconds, so the frozen worker's lease expires quickly. */
const FAST_LEASES = ['--lease-ms', '2000', '--heartbeat-ms', '300', '--stalled-check-ms', '500'];

/** What a query answered: how many series, or why Prometheus refused it. */
interface Answer {
  readonly q: PlacedExpr;
  readonly series: number;
  readonly error?: string;
}

async function ask(prom: LocalPrometheus, q: PlacedExpr): Promise<Answer> {
  try {
    const labelValues = labelValuesQuery(q.expr);
    const series = labelValues ? (await prom.labelValues(labelValues.label, concreteExpr(labelValues.selector))).length : (await prom.query(concreteExpr(q.expr))).length;
    return { q, series };
  } catch (err) {
    return { q, series: 0, error: err instanceof Error ? err.message : String(err) };
  }
}

function describeAnswers(answers: readonly Answer[]): string {
  return answers.map((a) => `  ${a.q.where}: ${a.error ?? 'no data'}\n    ${concreteExpr(a.q.expr)}`).join('\n');
}

describe('the dashboards against a Prometheus scraping a grid at work', () => {
  let tg: TestGrid;
  let prom: LocalPrometheus;
  let dir: string;
  let finished: JobView[];

  beforeAll(async () => {
    dir = await tempDir('mmgrid-dashboards-live-');
    const rtx = await writeFakeNvidiaSmi(path.join(dir, 'rtx'), [{ name: 'NVIDIA GeForce RTX 4090', memoryMiB: 24_564, computeCapability: '8.9' }]);
    const a100 = await writeFakeNvidiaSmi(path.join(dir, 'a100'), [
      { name: 'NVIDIA A100-SXM4-80GB', memoryMiB: 81_920, computeCapability: '8.0' },
      { name: 'NVIDIA A100-SXM4-80GB', memoryMiB: 81_920, computeCapability: '8.0' },
    ]);
    tg = await startTestGrid({ replicas: 2, workers: 0, coordinatorArgs: FAST_LEASES, workerArgs: ['--slots', 'selftest.sleep=3,text.stats=2'] });
    await tg.grid.addWorker(['--nvidia-smi', rtx, '--vram-budget', '20GiB']);
    await tg.grid.addWorker(['--nvidia-smi', a100]);
    expect(tg.grid.metricsAddresses.every((a) => a !== '')).toBe(true);
    expect(tg.grid.workerMetricsAddresses.every((a) => a !== '')).toBe(true);
    prom = await startPrometheus({
      scrape: { [SCRAPE_JOBS.coordinator]: tg.grid.metricsAddresses, [SCRAPE_JOBS.worker]: tg.grid.workerMetricsAddresses },
      scrapeIntervalMs: 1000,
      ruleFiles: [path.join(PROMETHEUS_DIR, 'alerts.yml')],
    });
    await prom.waitUntilScraped();

    // The mix of jobs, at once.
    const corrupt = await writeCorruptPng(dir, 'broken.png');
    const wav = await writeWav(dir, 'note.wav', 1.5, [{ startSec: 0.2, endSec: 1 }]);
    const text = await writeIn(dir, 'essay.txt', Array.from({ length: 400 }, (_, i) => `Sentence ${i} of the essay says little. `).join(''));
    const submitted = [
      ...(await submitSelftests(tg.client, 2, { tasks: '4', taskMs: '300' })),
      ...(await submitSelftests(tg.client, 1, { tasks: '2', taskMs: '200', gpu: 'true', minVramMiB: '1024' })),
      // Fails once, then succeeds: retried.
      ...(await submitSelftests(tg.client, 1, { tasks: '2', taskMs: '50', failAttempts: '1' })),
      // Fails on every attempt: the job fails.
      ...(await submitSelftests(tg.client, 1, { tasks: '1', taskMs: '50', failAttempts: '10' })),
      // Cut into about 8 chunks, counted in shards: a fan-out.
      await tg.client.submit([{ path: text }], { params: { chunkChars: '2000' } }),
      // The image tasks fail, the audio ones succeed: partial.
      await tg.client.submit([{ path: corrupt }, { path: wav }], {}),
    ];
    const [long] = await submitSelftests(tg.client, 1, { tasks: '1', taskMs: '60000' });
    if (!long) throw new Error('no job');
    await firstRunningTask(tg.client, long.id);
    await tg.client.cancel(long.id, 'cancelled by the dashboards test');
    finished = await Promise.all(submitted.map((j) => tg.client.waitForJob(j.id)));

    // A worker that freezes past its lease: the lease lapses and the task runs elsewhere;
    // its late result, after SIGCONT, is refused as stale.
    const [frozenJob] = await submitSelftests(tg.client, 1, { tasks: '1', taskMs: '2500' });
    if (!frozenJob) throw new Error('no job');
    const { worker } = await firstRunningTask(tg.client, frozenJob.id);
    const frozen = await tg.workerProcess(worker);
    frozen.kill('SIGSTOP');
    finished.push(await tg.client.waitForJob(frozenJob.id));
    const resumed = nextConnection(frozen);
    frozen.kill('SIGCONT');
    await resumed;
    finished.push(await tg.client.getJob(long.id));
  });

  afterAll(async () => {
    await prom?.stop();
    await tg?.stop();
    await removeDir(dir);
  });

  it('ran the mix it meant to: completed, partial, failed and cancelled jobs, a fan-out, retries and a lapsed lease', async () => {
    const outcome = (j: JobView): string => (j.state === 'completed' && j.result?.partial ? 'partial' : j.state);
    expect(new Set(finished.map(outcome))).toEqual(new Set(['completed', 'partial', 'failed', 'cancelled']));
    const tasks = finished.flatMap((j) => j.tasks);
    expect(tasks.some((t) => t.shard !== null)).toBe(true);
    expect(tasks.some((t) => t.kind === 'selftest.sleep' && t.state === 'succeeded' && t.attempts > 1)).toBe(true);
    // Prometheus has seen every job end, and the lease lapse.
    await eventually(async () => ((await prom.query(`sum(${COORDINATOR_METRICS.jobsFinished.name})`))[0]?.value ?? 0) >= finished.length, 'Prometheus counts every job', 15_000);
    await eventually(async () => (await prom.query(COORDINATOR_METRICS.leaseExpiries.name)).length > 0, 'Prometheus saw a lease lapse', 15_000);

    // Not every metric of the catalog gets data in every run (a deduplicated upload needs the
    // same bytes twice): printed for whoever reads the output, not asserted.
    const silent: string[] = [];
    for (const m of [...Object.values(COORDINATOR_METRICS), ...Object.values(WORKER_METRICS)]) {
      const series = m.type === 'histogram' ? `${m.name}_count` : m.name;
      if ((await prom.query(`count(${series})`)).length === 0) silent.push(m.name);
    }
    process.stdout.write(`[dashboards] catalog metrics without a series in this run: ${silent.length === 0 ? 'none' : silent.join(', ')}\n`);
  });

  it('answers every panel query and every variable query of every dashboard with data', async () => {
    const queries = [...(await dashboardQueries()), ...(await variableQueries())];
    expect(queries.length).toBeGreaterThan(40);
    // A rate needs two samples of a series inside its window, and a series that appeared with
    // the last jobs has one at first: ask until every query has data, or a generous while.
    let empty: Answer[];
    const deadline = Date.now() + 20_000;
    for (;;) {
      const answers = await Promise.all(queries.map((q) => ask(prom, q)));
      empty = answers.filter((a) => a.series === 0);
      if (empty.length === 0 || answers.some((a) => a.error !== undefined) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    process.stdout.write(`[dashboards] ${queries.length} queries run, ${queries.length - empty.length} returned data\n`);
    if (empty.length > 0) process.stdout.write(`[dashboards] returned nothing:\n${describeAnswers(empty)}\n`);
    expect(describeAnswers(empty)).toBe('');
  });

  it('parses and evaluates every alerting rule', async () => {
    for (const rule of await alertExprs()) {
      const answer = await ask(prom, rule);
      expect(answer.error, rule.where).toBeUndefined();
    }
    const expected = (await alertExprs()).map((r) => r.where.replace(/^alerts\.yml /, '')).sort();
    await eventually(async () => (await prom.rules()).every((r) => r.health !== 'unknown'), 'every rule has been evaluated', 10_000);
    const rules = await prom.rules();
    expect(rules.map((r) => r.name).sort()).toEqual(expected);
    for (const r of rules) expect({ rule: r.name, health: r.health, lastError: r.lastError }).toEqual({ rule: r.name, health: 'ok', lastError: '' });
  });
});
