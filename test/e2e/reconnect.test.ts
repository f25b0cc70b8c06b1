import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeTextPng, writeWav } from '../helpers/media.js';
import { exited, nextConnection } from '../helpers/process.js';

describe('when the coordinator goes away', () => {
  let tg: TestGrid;
  let media: string;
  let png: string;
  let wav: string;

  beforeAll(async () => {
    media = await mkdtemp(path.join(tmpdir(), 'mmgrid-media-'));
    png = await writeTextPng(media, 'sign.png', ['OPEN 24 HOURS']);
    wav = await writeWav(media, 'hum.wav', 4, [{ startSec: 1, endSec: 3 }]);
    tg = await startTestGrid({ workers: 2 });
  });

  afterAll(async () => {
    await tg?.stop();
    await rm(media, { recursive: true, force: true });
  });

  it('workers reconnect by themselves, and a job accepted before a kill -9 still completes', async () => {
    const before = await tg.client.listWorkers();
    expect(before.workers).toHaveLength(2);

    // Accepted: its tasks are in Redis. Then the coordinator dies without any cleanup.
    const job = await tg.client.submit([{ path: png }, { path: wav }], { prompt: 'is the shop open?' });
    const reconnections = tg.grid.workers.map((w) => nextConnection(w));
    tg.grid.coordinator.kill('SIGKILL');
    await exited(tg.grid.coordinator);

    await tg.grid.restartCoordinator();
    await Promise.all(reconnections);

    const after = await tg.client.listWorkers();
    expect(after.workers.map((w) => w.workerId).sort()).toEqual(before.workers.map((w) => w.workerId).sort());

    const done = await tg.client.waitForJob(job.id);
    expect(done.state).toBe('completed');
    expect(done.result?.partial).toBe(false);
    expect(done.result?.summary).toContain('OPEN 24 HOURS');
  });

  it('runs new jobs on the reconnected workers', async () => {
    const job = await tg.client.submit([{ path: png }], {});
    const done = await tg.client.waitForJob(job.id);
    expect(done.state).toBe('completed');
    const ids = await tg.workerIds();
    for (const task of done.tasks.filter((t) => t.kind !== 'job.assemble')) expect(ids).toContain(task.worker);
  });
});
