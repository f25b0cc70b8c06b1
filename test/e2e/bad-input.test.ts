import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '@mmgrid/client';
import type { AudioAnalyzeOutput } from '@mmgrid/core';
import { runCli } from '../helpers/cli.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeCorruptPng, writeTextPng, writeUnknownBinary, writeWav } from '../helpers/media.js';
import { refusal } from '../helpers/refusal.js';


describe('bad input', () => {
  let tg: TestGrid;
  let media: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    media = await mkdtemp(path.join(tmpdir(), 'mmgrid-media-'));
    tg = await startTestGrid({ workers: 2 });
    env = { MMGRID_COORDINATOR: tg.grid.address };
  });

  afterAll(async () => {
    await tg?.stop();
    await rm(media, { recursive: true, force: true });
  });

  it('refuses an unknown file type at submit, naming what is supported (INVALID_ARGUMENT, exit 2)', async () => {
    const junk = await writeUnknownBinary(media, 'mystery.bin');
    const err = await refusal(tg.client.submit([{ path: junk }], { prompt: 'what is this?' }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('mystery.bin');
    expect(err.message).toContain('not a recognised file type');
    expect(err.message).toMatch(/supported: images \(PNG/);

    const cli = await runCli(['submit', junk, '--prompt', 'what is this?'], env);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/^mmgrid: .*mystery\.bin.*not a recognised file type/m);
    expect(cli.stderr).not.toMatch(/\n\s+at /);
    expect(cli.stdout).toBe('');
  });

  it('refuses a file type it recognises but does not take', async () => {
    const pdf = path.join(media, 'report.pdf');
    await import('node:fs/promises').then((fs) => fs.writeFile(pdf, '%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n'));
    const err = await refusal(tg.client.submit([{ path: pdf }]));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('application/pdf');
  });

  it('refuses an empty job, on the server and in the CLI', async () => {
    const err = await refusal(tg.client.submit([], {}));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toMatch(/the job is empty/);

    const cli = await runCli(['submit'], env);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('nothing to submit');
  });

  it('refuses a file that does not exist before contacting anyone (exit 2)', async () => {
    const cli = await runCli(['submit', path.join(media, 'missing.png')], env);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('no such file');
  });

  it('fails only the image tasks of a corrupt PNG and still reports the other modalities', async () => {
    const broken = await writeCorruptPng(media, 'broken.png');
    const wav = await writeWav(media, 'note.wav', 2, [{ startSec: 0.5, endSec: 1.5 }]);
    const job = await tg.client.submit([{ path: broken }, { path: wav }], { prompt: 'describe both' });
    const done: JobView = await tg.client.waitForJob(job.id);

    expect(done.state).toBe('completed');
    const result = done.result;
    if (!result) throw new Error('no result');
    expect(result.partial).toBe(true);
    expect(result.coverage).toBeCloseTo(2 / 4, 5);
    const failed = done.tasks.filter((t) => t.state === 'failed');
    expect(failed.map((t) => t.kind).sort()).toEqual(['image.inspect', 'image.ocr']);
    for (const task of failed) {
      expect(task.error?.code).toBe('INPUT_DECODE_FAILED');
      expect(task.error?.message).toMatch(/the image cannot be decoded/);
      // A file that cannot be decoded is not retried: it would fail the same way again.
      expect(task.attempts).toBe(1);
    }
    expect(result.doc.failures.map((f) => f.input)).toEqual(['broken.png', 'broken.png']);
    const audio = result.doc.inputs.find((i) => i.name === 'note.wav')?.outputs['audio.analyze'] as AudioAnalyzeOutput | undefined;
    expect(audio?.durationSec).toBeCloseTo(2, 2);
    expect(result.summary).toContain('note.wav');
    expect(result.summary).toMatch(/Missing \(50% coverage\): image\.ocr of broken\.png/);

    const cli = await runCli(['result', job.id], env);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('partial: 50% coverage');
    expect(cli.stdout).toContain('INPUT_DECODE_FAILED');
  });

  it('a resubmission with the same idempotency key returns the same job, which still completes', async () => {
    const broken = await writeCorruptPng(media, 'again.png');
    const wav = await writeWav(media, 'again.wav', 1, [{ startSec: 0.2, endSec: 0.8 }]);
    const key = 'resubmit-after-a-fast-failure';
    const first = await tg.client.submit([{ path: broken }, { path: wav }], { idempotencyKey: key });
    // Wait until a task has failed: re-adding the job's tasks now must not revive it.
    for await (const e of tg.client.watch(first.id)) if (e.type === 'task' && e.state === 'failed') break;
    const second = await tg.client.submit([{ path: broken }, { path: wav }], { idempotencyKey: key });
    expect(second.id).toBe(first.id);
    const done = await tg.client.waitForJob(first.id);
    expect(done.state).toBe('completed');
    expect(done.result?.partial).toBe(true);
  });

  it('retrying a partial job runs only the failed tasks again and keeps what succeeded', async () => {
    const broken = await writeCorruptPng(media, 'retry.png');
    const wav = await writeWav(media, 'retry.wav', 1.5, [{ startSec: 0.2, endSec: 1.0 }]);
    const job = await tg.client.submit([{ path: broken }, { path: wav }], { prompt: 'retry me' });
    const first = await tg.client.waitForJob(job.id);
    expect(first.result?.partial).toBe(true);
    const audioBefore = first.tasks.find((t) => t.kind === 'audio.analyze');

    const retried = await tg.client.retry(job.id);
    expect(retried.generation).toBe(1);
    expect(retried.tasks.filter((t) => t.state === 'queued' || t.state === 'blocked').map((t) => t.kind).sort()).toEqual(
      ['fusion.report', 'image.inspect', 'image.ocr', 'job.assemble'].sort(),
    );
    const done = await tg.client.waitForJob(job.id);
    expect(done.state).toBe('completed');
    // The image is still corrupt; the audio result is the one from the first run.
    expect(done.result?.partial).toBe(true);
    const audioAfter = done.tasks.find((t) => t.kind === 'audio.analyze');
    expect(audioAfter?.attempts).toBe(1);
    expect(audioAfter?.finishedAt).toBe(audioBefore?.finishedAt);
    expect(done.result?.doc.inputs.find((i) => i.name === 'retry.wav')?.outputs['audio.analyze']).toBeTruthy();
    expect(done.tasks.find((t) => t.kind === 'image.ocr')?.attempts).toBe(2);
    expect(done.result?.summary).toContain('retry.wav');
  });

  it('names an unknown job as not found (exit 3)', async () => {
    const err = await refusal(tg.client.getJob('01NOTAREALJOB0000000000000'));
    expect(err.code).toBe('NOT_FOUND');
    const cli = await runCli(['status', '01NOTAREALJOB0000000000000'], env);
    expect(cli.code).toBe(3);
    expect(cli.stderr).toContain('not found');
  });

  it('says how to reach a coordinator when none answers (exit 5)', async () => {
    const cli = await runCli(['status', 'anything'], { MMGRID_COORDINATOR: '127.0.0.1:1' });
    expect(cli.code).toBe(5);
    expect(cli.stderr).toContain('cannot reach coordinator at 127.0.0.1:1');
    expect(cli.stderr).toContain('MMGRID_COORDINATOR');
  });

  it('keeps working for good jobs after all of that', async () => {
    const png = await writeTextPng(media, 'ok.png', ['STILL WORKING']);
    const job = await tg.client.submit([{ path: png }], {});
    const done = await tg.client.waitForJob(job.id);
    expect(done.state).toBe('completed');
    expect(done.result?.partial).toBe(false);
  });
});
