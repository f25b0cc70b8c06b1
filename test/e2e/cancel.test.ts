import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { removeDir, tempDir, writeIn } from '../helpers/files.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeTextPng } from '../helpers/media.js';

describe('a job waiting for workers', () => {
  let tg: TestGrid;
  let media: string;

  beforeAll(async () => {
    media = await tempDir('mmgrid-media-');
    // No workers yet: submitted tasks stay queued.
    tg = await startTestGrid({ workers: 0 });
  });

  afterAll(async () => {
    await tg?.stop();
    await removeDir(media);
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
    const cli = await runCli(['cancel', job.id, '--reason', 'changed my mind', '--json'], tg.cliEnv);
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
    const watched = await runCli(['watch', job.id], tg.cliEnv);
    expect(watched.code).toBe(1);
    expect(watched.stdout).toContain('job cancelled: changed my mind');
  });
});

describe('a cancelled job with many queued shards', () => {
  let tg: TestGrid;
  let media: string;

  beforeAll(async () => {
    media = await tempDir('mmgrid-media-');
    // One worker that counts one chunk at a time: most shards wait in their queue.
    tg = await startTestGrid({ workers: 1, workerArgs: ['--slots', 'text.stats=1'] });
  });

  afterAll(async () => {
    await tg?.stop();
    await removeDir(media);
  });

  async function textStatsQueue(): Promise<{ waiting: number; active: number; delayed: number }> {
    const q = (await tg.client.queueStats()).queues.find((s) => s.kind === 'text.stats');
    return { waiting: q?.waiting ?? 0, active: q?.active ?? 0, delayed: q?.delayed ?? 0 };
  }

  it('removes the shards still queued while one runs, and stops the running one', async () => {
    const worker = tg.grid.workers[0];
    if (!worker) throw new Error('no worker');
    // Some 2,000 chunks of at most 100 characters.
    const text = Array.from({ length: 8000 }, (_, i) => `Sentence ${i} is here. `).join('');
    const file = await writeIn(media, 'long.txt', text);
    const job = await tg.client.submit([{ path: file }], { params: { chunkChars: '100' } });

    // Once the stitch step has fanned out (its shards are running one at a time), the worker
    // freezes holding a shard: that shard stays locked while the job is cancelled.
    const deadline = Date.now() + 60_000;
    let shards = 0;
    while (shards === 0) {
      if (Date.now() > deadline) throw new Error('the text was never cut into shards');
      await delay(20);
      shards = (await tg.client.getJob(job.id)).tasks.filter((t) => t.shard !== null).length;
    }
    worker.kill('SIGSTOP');
    try {
      // The coordinator hands the frozen worker its next shard if it had none.
      await delay(300);
      expect((await textStatsQueue()).active).toBe(1);
      expect((await textStatsQueue()).waiting).toBeGreaterThan(100);

      const cancelled = await tg.client.cancel(job.id, 'too long');
      expect(cancelled.state).toBe('cancelled');
      // Nothing of the job waits to be fetched only to be failed; the locked shard is left to
      // the cancel sent to its worker.
      expect(await textStatsQueue()).toEqual({ waiting: 0, active: 1, delayed: 0 });
      const view = await tg.client.getJob(job.id);
      const all = view.tasks.filter((t) => t.shard !== null);
      expect(all.length).toBeGreaterThan(100);
      expect(all.filter((t) => t.state === 'queued')).toEqual([]);
    } finally {
      worker.kill('SIGCONT');
    }

    // The worker wakes to the cancel: nothing of the job is left in the queue, and every task
    // (the stitch step too, once its last shard has ended) has ended.
    const until = Date.now() + 30_000;
    const live = async (): Promise<unknown[]> => (await tg.client.getJob(job.id)).tasks.filter((t) => t.state === 'queued' || t.state === 'running' || t.state === 'blocked');
    let stats = await textStatsQueue();
    let left = await live();
    while ((stats.waiting > 0 || stats.active > 0 || left.length > 0) && Date.now() < until) {
      await delay(100);
      stats = await textStatsQueue();
      left = await live();
    }
    expect(stats).toEqual({ waiting: 0, active: 0, delayed: 0 });
    expect(left).toEqual([]);
    expect((await tg.client.getJob(job.id)).state).toBe('cancelled');
  });
});
