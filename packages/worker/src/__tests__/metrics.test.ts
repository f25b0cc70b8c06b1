import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WORKER_METRICS, type BlobRef, type MetricSpec } from '@mmgrid/core';
import { BlobCache } from '../blob-cache.js';
import { WorkerMetrics } from '../metrics.js';

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The samples of a Prometheus text exposition (comments skipped). */
function samples(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match?.[1] || !match[3]) throw new Error(`not a sample line: ${line}`);
      const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']));
      return { name: match[1], labels, value: Number(match[3]) };
    });
}

/** The samples that belong to `spec` (a histogram's _bucket, _sum and _count too). */
function samplesOf(all: readonly Sample[], spec: MetricSpec): Sample[] {
  const names = spec.type === 'histogram' ? [`${spec.name}_bucket`, `${spec.name}_sum`, `${spec.name}_count`] : [spec.name];
  return all.filter((s) => names.includes(s.name));
}

function valueOf(all: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return all.find((s) => s.name === name && Object.keys(labels).length === Object.keys(s.labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

describe('WorkerMetrics', () => {
  it('exports every catalogued worker metric, with its type and help', async () => {
    const text = await new WorkerMetrics().text();
    for (const spec of Object.values(WORKER_METRICS)) {
      expect(text).toContain(`# HELP ${spec.name} ${spec.help}`);
      expect(text).toContain(`# TYPE ${spec.name} ${spec.type}`);
    }
  });

  it("labels each metric's samples exactly as the catalog says", async () => {
    const metrics = new WorkerMetrics({ processMetrics: false });
    metrics.setSlots({ 'image.ocr': 2, 'text.stats': 8 });
    metrics.setBusySlots('image.ocr', 1);
    metrics.taskFinished('image.ocr', 'succeeded', 0.3);
    metrics.taskFinished('image.ocr', 'failed', 2);
    metrics.taskFinished('text.stats', 'cancelled', 0.01);
    metrics.setConnected(true);
    metrics.connectionLost();
    metrics.backendChecked({ name: 'vision', type: 'chat' }, true);
    metrics.backendChecked({ name: 'down', type: 'kserve' }, false);
    metrics.blobLookup('hit');
    metrics.blobLookup('miss');
    metrics.setBlobCacheBytes(1234);
    metrics.blobDownloaded(1000);
    metrics.blobUploaded(200);
    const all = samples(await metrics.text());

    for (const spec of Object.values(WORKER_METRICS)) {
      const own = samplesOf(all, spec);
      expect(own.length, spec.name).toBeGreaterThan(0);
      for (const sample of own) {
        const labels = Object.keys(sample.labels).filter((l) => !(sample.name.endsWith('_bucket') && l === 'le'));
        expect(labels.sort(), `${sample.name} ${JSON.stringify(sample.labels)}`).toEqual([...spec.labels].sort());
      }
    }
    const { tasks, taskRun, slots, connected, reconnects, backendUp, blobCache, blobCacheBytes, blobDownloaded, blobUploaded } = WORKER_METRICS;
    expect(valueOf(all, tasks.name, { kind: 'image.ocr', outcome: 'succeeded' })).toBe(1);
    expect(valueOf(all, tasks.name, { kind: 'image.ocr', outcome: 'failed' })).toBe(1);
    expect(valueOf(all, tasks.name, { kind: 'image.ocr', outcome: 'cancelled' })).toBe(0);
    expect(valueOf(all, tasks.name, { kind: 'text.stats', outcome: 'cancelled' })).toBe(1);
    expect(valueOf(all, `${taskRun.name}_count`, { kind: 'image.ocr' })).toBe(2);
    expect(valueOf(all, `${taskRun.name}_sum`, { kind: 'image.ocr' })).toBeCloseTo(2.3);
    expect(valueOf(all, `${taskRun.name}_bucket`, { kind: 'image.ocr', le: '0.5' })).toBe(1);
    expect(valueOf(all, `${taskRun.name}_bucket`, { kind: 'image.ocr', le: '+Inf' })).toBe(2);
    expect(valueOf(all, slots.name, { kind: 'image.ocr', state: 'total' })).toBe(2);
    expect(valueOf(all, slots.name, { kind: 'image.ocr', state: 'busy' })).toBe(1);
    expect(valueOf(all, slots.name, { kind: 'text.stats', state: 'busy' })).toBe(0);
    expect(valueOf(all, connected.name)).toBe(1);
    expect(valueOf(all, reconnects.name)).toBe(1);
    expect(valueOf(all, backendUp.name, { backend: 'vision', type: 'chat' })).toBe(1);
    expect(valueOf(all, backendUp.name, { backend: 'down', type: 'kserve' })).toBe(0);
    expect(valueOf(all, blobCache.name, { result: 'hit' })).toBe(1);
    expect(valueOf(all, blobCache.name, { result: 'miss' })).toBe(1);
    expect(valueOf(all, blobCacheBytes.name)).toBe(1234);
    expect(valueOf(all, blobDownloaded.name)).toBe(1000);
    expect(valueOf(all, blobUploaded.name)).toBe(200);
  });

  it('starts with the unlabelled series at 0 and disconnected', async () => {
    const all = samples(await new WorkerMetrics({ processMetrics: false }).text());
    expect(valueOf(all, WORKER_METRICS.connected.name)).toBe(0);
    expect(valueOf(all, WORKER_METRICS.reconnects.name)).toBe(0);
    expect(valueOf(all, WORKER_METRICS.blobCache.name, { result: 'hit' })).toBe(0);
    expect(valueOf(all, WORKER_METRICS.blobCache.name, { result: 'miss' })).toBe(0);
    expect(valueOf(all, WORKER_METRICS.blobDownloaded.name)).toBe(0);
  });

  it("adds Node's process metrics unless asked not to", async () => {
    expect(await new WorkerMetrics().text()).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(await new WorkerMetrics().text()).toContain('nodejs_eventloop_lag_seconds');
    expect(await new WorkerMetrics({ processMetrics: false }).text()).not.toContain('process_');
  });

  it('keeps the counts of each instance apart (a registry of its own, not the global one)', async () => {
    const one = new WorkerMetrics({ processMetrics: false });
    const two = new WorkerMetrics({ processMetrics: false });
    one.setSlots({ 'image.ocr': 1 });
    two.setSlots({ 'image.ocr': 1 });
    one.taskFinished('image.ocr', 'succeeded', 1);
    expect(valueOf(samples(await one.text()), WORKER_METRICS.tasks.name, { kind: 'image.ocr', outcome: 'succeeded' })).toBe(1);
    expect(valueOf(samples(await two.text()), WORKER_METRICS.tasks.name, { kind: 'image.ocr', outcome: 'succeeded' })).toBe(0);
  });
});

describe('BlobCache metrics', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-cache-metrics-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function blob(fill: string, size: number): { ref: BlobRef; bytes: Buffer } {
    const bytes = Buffer.alloc(size, fill);
    return { ref: { sha256: createHash('sha256').update(bytes).digest('hex'), size, mediaType: 'application/octet-stream', name: fill }, bytes };
  }

  it('counts a blob already held as a hit, a fetched one as a miss, and follows the bytes held', async () => {
    const a = blob('a', 100);
    const b = blob('b', 150);
    const known = new Map([a, b].map((x) => [x.ref.sha256, x.bytes]));
    const net = {
      download: async (sha256: string, file: string): Promise<{ size: number }> => {
        const bytes = known.get(sha256);
        if (!bytes) throw new Error('not found');
        await writeFile(file, bytes);
        return { size: bytes.length };
      },
    };
    const metrics = new WorkerMetrics({ processMetrics: false });
    const cache = new BlobCache(dir, net, { maxBytes: 200, metrics });
    const count = async (result: string): Promise<number | undefined> => valueOf(samples(await metrics.text()), WORKER_METRICS.blobCache.name, { result });
    const held = async (): Promise<number | undefined> => valueOf(samples(await metrics.text()), WORKER_METRICS.blobCacheBytes.name);

    await cache.get(a.ref);
    expect([await count('hit'), await count('miss'), await held()]).toEqual([0, 1, 100]);
    await cache.get(a.ref);
    (await cache.acquire(a.ref)).release();
    expect([await count('hit'), await count('miss'), await held()]).toEqual([2, 1, 100]);
    // b does not fit beside a: a is evicted.
    await cache.get(b.ref);
    expect([await count('hit'), await count('miss'), await held()]).toEqual([2, 2, 150]);
    await expect(cache.get(blob('c', 10).ref)).rejects.toThrow(/could not fetch/);
    expect(await count('miss')).toBe(3);
  });
});
