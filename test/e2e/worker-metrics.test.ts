import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@mmgrid/cli';
import { WORKER_METRICS } from '@mmgrid/core';
import { removeDir, tempDir, writeIn } from '../helpers/files.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeTextPng } from '../helpers/media.js';
import { eventually, exited } from '../helpers/process.js';

/** The value of one sample of a Prometheus text exposition, by name and exact labels. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const have = (match[2] ?? '').split(/,(?=[a-zA-Z_][a-zA-Z0-9_]*=")/).filter(Boolean).sort().join(',');
    if (have === wanted) return Number(match[3]);
  }
  return undefined;
}

async function get(url: string): Promise<{ status: number; body: string; contentType: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text(), contentType: res.headers.get('content-type') ?? '' };
}

/** Resolves with the metrics address a worker reports with its next connection to a coordinator. */
function nextMetricsAddress(worker: ChildProcess): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { type?: string; metricsAddress?: string }): void => {
      if (message.type !== 'connected') return;
      cleanup();
      resolve(message.metricsAddress);
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`worker exited (code ${code}) before it connected`));
    };
    const cleanup = (): void => {
      worker.off('message', onMessage);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('exit', onExit);
  });
}

describe("a worker's /metrics and /healthz", () => {
  let tg: TestGrid;
  let media: string;
  let port: number;
  let metricsUrl: string;

  beforeAll(async () => {
    media = await tempDir('mmgrid-worker-metrics-');
    port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}`;
    tg = await startTestGrid({ workers: 1, workerArgs: ['--metrics-listen', `127.0.0.1:${port}`] });
  });

  afterAll(async () => {
    await tg?.stop();
    await removeDir(media);
  });

  it('names its metrics address in the start-up line', async () => {
    expect(await tg.log('worker-1')).toContain(`metrics on http://127.0.0.1:${port}/metrics`);
  });

  it('counts the tasks it ran and its blob cache hits and misses', async () => {
    const png = await writeTextPng(media, 'sign.png', ['OPEN 24 HOURS']);
    // The same image twice: the second job's tasks find its blob already on this worker.
    for (let i = 0; i < 2; i++) {
      const job = await tg.client.submit([{ path: png }], {});
      const done = await tg.client.waitForJob(job.id);
      expect(done.state).toBe('completed');
    }

    const { status, body, contentType } = await get(`${metricsUrl}/metrics`);
    expect(status).toBe(200);
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sample(body, WORKER_METRICS.tasks.name, { kind: 'image.ocr', outcome: 'succeeded' })).toBeGreaterThanOrEqual(2);
    expect(sample(body, WORKER_METRICS.tasks.name, { kind: 'image.ocr', outcome: 'failed' })).toBe(0);
    expect(sample(body, `${WORKER_METRICS.taskRun.name}_count`, { kind: 'image.ocr' })).toBeGreaterThanOrEqual(2);
    expect(sample(body, WORKER_METRICS.blobCache.name, { result: 'hit' })).toBeGreaterThanOrEqual(1);
    expect(sample(body, WORKER_METRICS.blobCache.name, { result: 'miss' })).toBeGreaterThanOrEqual(1);
    expect(sample(body, WORKER_METRICS.blobCacheBytes.name)).toBeGreaterThan(0);
    expect(sample(body, WORKER_METRICS.blobDownloaded.name)).toBeGreaterThan(0);
    expect(sample(body, WORKER_METRICS.slots.name, { kind: 'image.ocr', state: 'total' })).toBeGreaterThanOrEqual(1);
    expect(sample(body, WORKER_METRICS.slots.name, { kind: 'image.ocr', state: 'busy' })).toBe(0);
    expect(sample(body, WORKER_METRICS.connected.name)).toBe(1);
    expect(body).toMatch(/^process_resident_memory_bytes \d+/m);

    const health = await get(`${metricsUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(health.body).toBe(`connected to the coordinator at ${tg.grid.address}\n`);
  });

  it('shows a backend that failed its check as down', async () => {
    const closed = await freePort();
    const config = await writeIn(media, 'down-backend.yaml', `backends:\n  chat:\n    - name: down\n      url: http://127.0.0.1:${closed}\n      model: m\n`);
    const metricsPort = await freePort();
    // The last --metrics-listen wins over the grid's.
    const worker = await tg.grid.addWorker(['--config', config, '--metrics-listen', `127.0.0.1:${metricsPort}`]);
    try {
      const { body } = await get(`http://127.0.0.1:${metricsPort}/metrics`);
      expect(sample(body, WORKER_METRICS.backendUp.name, { backend: 'down', type: 'openai-chat' })).toBe(0);
      expect(sample(body, WORKER_METRICS.connected.name)).toBe(1);
    } finally {
      worker.kill('SIGTERM');
      expect(await exited(worker)).toBe(0);
    }
  });

  it('runs on without metrics when their port is taken, saying so', async () => {
    // worker-1 holds `port`.
    const worker = await tg.grid.addWorker(['--metrics-listen', `127.0.0.1:${port}`]);
    try {
      const log = await tg.log('worker-3');
      expect(log).toContain(`cannot serve metrics on 127.0.0.1:${port} (EADDRINUSE)`);
      expect(log).toContain('no metrics (see above)');
    } finally {
      worker.kill('SIGTERM');
      expect(await exited(worker)).toBe(0);
    }
  });

  it('answers 503 while the coordinator is away, and counts the lost connection', async () => {
    const worker = tg.grid.workers[0];
    if (!worker) throw new Error('no worker-1');
    const reconnected = nextMetricsAddress(worker);
    tg.grid.coordinator.kill('SIGKILL');
    await exited(tg.grid.coordinator);

    await eventually(async () => (await get(`${metricsUrl}/healthz`)).status === 503, '/healthz answers 503');
    const away = await get(`${metricsUrl}/healthz`);
    expect(away.body).toMatch(/^not connected to a coordinator: .+\n$/);
    const { body } = await get(`${metricsUrl}/metrics`);
    expect(sample(body, WORKER_METRICS.connected.name)).toBe(0);
    expect(sample(body, WORKER_METRICS.reconnects.name)).toBe(1);

    await tg.grid.restartCoordinator();
    // The harness learns the metrics address from the worker's 'connected' message.
    expect(await reconnected).toBe(`127.0.0.1:${port}`);
    expect((await get(`${metricsUrl}/healthz`)).status).toBe(200);
    expect(sample((await get(`${metricsUrl}/metrics`)).body, WORKER_METRICS.connected.name)).toBe(1);
  });
});
