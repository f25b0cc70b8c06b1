import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeTextPng } from '../helpers/media.js';

describe('a job waiting for workers', () => {
  let tg: TestGrid;
  let media: string;

  beforeAll(async () => {
    media = await mkdtemp(path.join(tmpdir(), 'mmgrid-media-'));
    // No workers yet: submitted tasks stay queued.
    tg = await startTestGrid({ workers: 0 });
  });

  afterAll(async () => {
    await tg?.stop();
    await rm(media, { recursive: true, force: true });
  });

  it('stays queued until a worker joins, then runs', async () => {
    const png = await writeTextPng(media, 'late.png', ['WAITED']);
    const job = await tg.client.submit([{ path: png }], {});
    const queued = await tg.client.getJob(job.id);
    expect(queued.state).toBe('queued');
    expect((await tg.client.queueStats()).queues.find((q) => q.kind === 'image.ocr')?.waiting).toBe(1);

    await tg.grid.addWorker();
    const done = await tg.client.waitForJob(job.id);
    expect(done.state).toBe('completed');
    expect(done.result?.summary).toContain('WAITED');
  });

  it('can be cancelled: its tasks are removed and never run', async () => {
    // Stop the only worker so the next job has nobody to run it.
    const worker = tg.grid.workers[0];
    if (!worker) throw new Error('no worker');
    const gone = new Promise((resolve) => worker.once('exit', resolve));
    worker.kill('SIGTERM');
    await gone;

    const png = await writeTextPng(media, 'never.png', ['NEVER RUN']);
    const job = await tg.client.submit([{ path: png }], { prompt: 'should not run' });
    const cli = await runCli(['cancel', job.id, '--reason', 'changed my mind', '--json'], { MMGRID_COORDINATOR: tg.grid.address });
    expect(cli.code).toBe(0);
    const cancelled = JSON.parse(cli.stdout) as { state: string; error: { code: string; message: string } };
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.error).toEqual({ code: 'CANCELLED', message: 'changed my mind' });

    const view = await tg.client.getJob(job.id);
    expect(view.tasks.every((t) => t.state === 'cancelled')).toBe(true);
    const stats = await tg.client.queueStats();
    for (const q of stats.queues) expect(q.waiting + q.waitingChildren).toBe(0);

    // A new worker finds nothing of it to run; a later job still runs.
    await tg.grid.addWorker();
    const next = await tg.client.submit([{ path: png }], {});
    expect((await tg.client.waitForJob(next.id)).state).toBe('completed');
    const after = await tg.client.getJob(job.id);
    expect(after.state).toBe('cancelled');
    expect(after.tasks.every((t) => t.state === 'cancelled' && t.worker === null)).toBe(true);

    // Cancelling again changes nothing; `submit --wait` style exit code for a cancelled job is 1.
    expect((await tg.client.cancel(job.id)).state).toBe('cancelled');
    const watched = await runCli(['watch', job.id], { MMGRID_COORDINATOR: tg.grid.address });
    expect(watched.code).toBe(1);
    expect(watched.stdout).toContain('job cancelled: changed my mind');
  });
});
