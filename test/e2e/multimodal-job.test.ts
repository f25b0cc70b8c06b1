import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '@mmgrid/client';
import type { AudioAnalyzeOutput, ImageOcrOutput } from '@mmgrid/core';
import { runCli } from '../helpers/cli.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeTextPng, writeWav } from '../helpers/media.js';

// One multimodal job through the whole product: CLI/client → coordinator → BullMQ in a
// private redis-server → two worker processes over gRPC → reassembled result.
describe('a job with an image, a recording and a prompt', () => {
  let tg: TestGrid;
  let media: string;
  let png: string;
  let wav: string;
  const durationSec = 3.2;
  const prompt = 'What is the invoice total, and how long is the voice memo?';

  beforeAll(async () => {
    media = await mkdtemp(path.join(tmpdir(), 'mmgrid-media-'));
    png = await writeTextPng(media, 'invoice.png', ['INVOICE 4471', 'TOTAL 126 EUR']);
    wav = await writeWav(media, 'memo.wav', durationSec, [
      { startSec: 0.3, endSec: 1.1 },
      { startSec: 1.6, endSec: 2.8 },
    ]);
    tg = await startTestGrid({ workers: 2 });
  });

  afterAll(async () => {
    await tg?.stop();
    await rm(media, { recursive: true, force: true });
  });

  it('is split into modality tasks that run on the worker processes and reassembled into one result', async () => {
    const submitted = await tg.client.submit([{ path: png }, { path: wav }], { prompt });
    expect(submitted.state).toBe('queued');
    expect(submitted.tasks.map((t) => t.kind).sort()).toEqual(
      ['audio.analyze', 'fusion.report', 'image.inspect', 'image.ocr', 'job.assemble', 'text.stats'].sort(),
    );
    const events: string[] = [];
    const job = await tg.client.waitForJob(submitted.id, (e) => events.push(e.type === 'task' ? `${e.taskId}:${e.state}` : `${e.type}:${'state' in e ? e.state : ''}`));
    expect(job.state).toBe('completed');
    expect(events[0]).toBe('job:queued');
    expect(events).toContain('job:running');
    expect(events[events.length - 1]).toBe('job:completed');

    const result = job.result;
    if (!result) throw new Error('completed job without a result');
    expect(result.partial).toBe(false);
    expect(result.coverage).toBe(1);

    const image = result.doc.inputs.find((i) => i.name === 'invoice.png');
    const audio = result.doc.inputs.find((i) => i.name === 'memo.wav');
    expect(image?.modality).toBe('image');
    expect(audio?.modality).toBe('audio');
    const ocr = image?.outputs['image.ocr'] as ImageOcrOutput | undefined;
    expect(ocr?.text).toMatch(/INVOICE/);
    expect(ocr?.text).toMatch(/4471/);
    expect(ocr?.text).toMatch(/TOTAL 126/);
    const analysis = audio?.outputs['audio.analyze'] as AudioAnalyzeOutput | undefined;
    expect(Math.abs((analysis?.durationSec ?? 0) - durationSec) / durationSec).toBeLessThan(0.01);
    expect(analysis?.sampleRate).toBe(16_000);
    expect(analysis?.segments.filter((s) => s.kind === 'speech')).toHaveLength(2);

    // The fusion report names both inputs and links the prompt to what the image says.
    expect(result.summary).toContain('invoice.png');
    expect(result.summary).toContain('memo.wav');
    expect(result.doc.fusion?.matchedTerms.map((m) => m.term)).toEqual(expect.arrayContaining(['invoice', 'total']));
    // The thumbnail is a blob the result refers to.
    expect(result.blobs.some((b) => b.mediaType === 'image/webp')).toBe(true);

    // Every worker task ran in one of the two worker processes (by the ids they keep on
    // disk), not in the coordinator; only the assembly ran in the coordinator.
    const workerIds = await tg.workerIds();
    for (const task of job.tasks) {
      if (task.kind === 'job.assemble') {
        expect(task.worker).toBeNull();
      } else {
        expect(workerIds).toContain(task.worker);
        expect(task.state).toBe('succeeded');
      }
    }
  });

  it('is what `mmgrid submit … --wait --json` prints, and `status` and `result -o` show it', async () => {
    const env = { MMGRID_COORDINATOR: tg.grid.address };
    const submitted = await runCli(['submit', png, wav, '--prompt', prompt, '--wait', '--json'], env);
    expect(submitted.stderr).toContain('uploaded');
    expect(submitted.code).toBe(0);
    const job = JSON.parse(submitted.stdout) as JobView;
    expect(job.state).toBe('completed');
    expect(job.result?.summary).toContain('invoice.png');

    const status = await runCli(['status', job.id], env);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`job       ${job.id}`);
    expect(status.stdout).toMatch(/image\.ocr\s+invoice\.png\s+succeeded/);

    const out = await mkdtemp(path.join(tmpdir(), 'mmgrid-result-'));
    const result = await runCli(['result', job.id, '-o', out], env);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('TOTAL 126');
    const files = await readdir(out);
    expect(files).toEqual(expect.arrayContaining(['result.json', 'summary.txt', 'invoice.thumbnail.webp']));
    const doc = JSON.parse(await readFile(path.join(out, 'result.json'), 'utf8')) as { coverage: number };
    expect(doc.coverage).toBe(1);
    await rm(out, { recursive: true, force: true });
  });

  it('lists jobs newest first, replays events from any point, and shows the queues and workers', async () => {
    const job = await tg.client.submit([{ path: png }], { prompt: 'total?' });
    const events = [];
    for await (const e of tg.client.watch(job.id)) events.push(e);
    expect(events.length).toBeGreaterThan(3);
    // Resuming after the third event yields exactly the rest, in order.
    const resumed = [];
    for await (const e of tg.client.watch(job.id, { afterEventId: events[2]?.id ?? '' })) resumed.push(e);
    expect(resumed.map((e) => e.id)).toEqual(events.slice(3).map((e) => e.id));

    const listed = await tg.client.list({ pageSize: 2 });
    expect(listed.jobs[0]?.id).toBe(job.id);
    expect(listed.jobs).toHaveLength(2);
    expect(listed.nextPageToken).not.toBe('');
    const completed = await tg.client.list({ states: ['completed'] });
    expect(completed.jobs.every((j) => j.state === 'completed')).toBe(true);

    const stats = await tg.client.queueStats();
    const ocr = stats.queues.find((q) => q.kind === 'image.ocr');
    expect(ocr?.completed).toBeGreaterThanOrEqual(3);
    expect(ocr?.waiting).toBe(0);
    const { workers } = await tg.client.listWorkers();
    expect(workers.map((w) => w.name).sort()).toEqual(['worker-1', 'worker-2']);
    expect(workers[0]?.slots.map((s) => s.kind).sort()).toEqual(['audio.analyze', 'audio.split', 'fusion.report', 'image.inspect', 'image.ocr', 'selftest.sleep', 'text.split', 'text.stats', 'video.split']);
  });

  it('uploads the same bytes once', async () => {
    const first = await tg.client.blobs.uploadFile(png);
    expect(first.skipped).toBe(true);
  });
});
