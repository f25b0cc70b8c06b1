import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstRunningTask } from '../helpers/audit.js';
import { mmgridBin } from '../helpers/cli.js';
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

  it('after a graceful restart (SIGTERM), watchers resume where they were: the client and `mmgrid watch` see the job end, each event once', async () => {
    const job = await tg.client.submit([], { pipeline: 'selftest', params: { tasks: '2', taskMs: '4000' } });
    const seen: string[] = [];
    const waiting = tg.client.waitForJob(job.id, (e) => seen.push(e.id));
    const cli = spawn(process.execPath, [mmgridBin(), 'watch', job.id, '--json'], { env: { ...process.env, ...tg.cliEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
    let cliOut = '';
    let cliErr = '';
    let cliFollows: () => void = () => undefined;
    const cliFollowing = new Promise<void>((resolve) => (cliFollows = resolve));
    cli.stdout.on('data', (d: Buffer) => {
      cliOut += d.toString();
      if (cliOut.includes('"running"')) cliFollows();
    });
    cli.stderr.on('data', (d: Buffer) => (cliErr += d.toString()));
    const cliExit = exited(cli);
    // Both are following the job when its replica goes (a CLI that ended early fails below).
    await firstRunningTask(tg.client, job.id);
    await Promise.race([cliFollowing, cliExit]);

    // A rolling restart: the replica ends its watches with UNAVAILABLE (resume elsewhere)
    // instead of waiting for them, so it stops at once and cleanly.
    const reconnections = tg.grid.workers.map((w) => nextConnection(w));
    tg.grid.coordinator.kill('SIGTERM');
    expect(await exited(tg.grid.coordinator)).toBe(0);
    await tg.grid.restartCoordinator();
    await Promise.all(reconnections);

    const done = await waiting;
    expect(done.state).toBe('completed');
    expect(await cliExit, cliErr).toBe(0);
    // Every event of the job, once each and in order, for both.
    const all: string[] = [];
    for await (const event of tg.client.watch(job.id)) all.push(event.id);
    expect(seen).toEqual(all);
    const cliIds = cliOut
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { id: string }).id);
    expect(cliIds).toEqual(all);
  });
});
