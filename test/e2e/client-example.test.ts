// @mmgrid/client used as another project would: the example program in test/examples run as a
// subprocess against a real grid (and against an address where nothing listens), and the
// client's calls for progress, stopping a watch and results, straight from the test.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '@mmgrid/cli';
import { isMmgridError, type JobEventView } from '@mmgrid/client';
import { mmgridBin, runCli, runNode, type CliResult } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/files.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeTextPng, writeWav } from '../helpers/media.js';
import { refusal } from '../helpers/refusal.js';

const testDir = path.resolve(import.meta.dirname, '..');
const example = path.join(testDir, 'examples', 'submit-and-watch.ts');

type Run = CliResult;

/** Runs the example program with tsx (a dependency of the test package), as its README says. */
function runExample(args: readonly string[]): Promise<Run> {
  return runNode(['--import', 'tsx', example, ...args], { cwd: testDir });
}

/** Runs `mmgrid watch JOB`, presses Ctrl-C once it has printed an event, and collects the rest. */
function interruptWatch(jobId: string, env: Readonly<Record<string, string>>): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [mmgridBin(), 'watch', jobId], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      if (stdout === '') child.kill('SIGINT');
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function sha256Of(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

describe('the client example program', () => {
  let tg: TestGrid;
  let media: string;
  let png: string;
  let wav: string;

  beforeAll(async () => {
    media = await tempDir('mmgrid-client-example-');
    png = await writeTextPng(media, 'label.png', ['PART 7731', 'LOT 42']);
    wav = await writeWav(media, 'memo.wav', 2, [{ startSec: 0.2, endSec: 1.2 }]);
    tg = await startTestGrid({ workers: 2 });
  });

  afterAll(async () => {
    await tg?.stop();
    await removeDir(media);
  });

  it('uploads the files, follows the job, prints its summary and saves its result', async () => {
    const out = path.join(media, 'out');
    const run = await runExample([tg.grid.address, png, wav, '--prompt', 'What is the part number?', '--out', out]);
    expect(run.stderr).not.toMatch(/^\s+at /m);
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(`uploaded label.png (${(await stat(png)).size} bytes)`);
    expect(run.stderr).toContain(`uploaded memo.wav (${(await stat(wav)).size} bytes)`);
    const jobId = /submitted job (\S+) \(\d+ tasks\)/.exec(run.stderr)?.[1];
    if (!jobId) throw new Error(`no job id in:\n${run.stderr}`);
    expect(run.stderr).toContain('job running');
    expect(run.stderr).toMatch(/task \S+ succeeded/);
    expect(run.stderr.trimEnd().split('\n')).toContain('job completed');

    const job = await tg.client.getJob(jobId);
    expect(job.state).toBe('completed');
    const result = job.result;
    if (!result) throw new Error('completed job without a result');
    expect(run.stdout).toBe(`${result.summary}\n`);
    expect(result.summary).toContain('label.png');
    expect(result.summary).toContain('memo.wav');

    // The folder holds the document, the summary and every blob, each with its own bytes.
    const files = await readdir(out);
    expect(files).toEqual(expect.arrayContaining(['result.json', 'summary.txt', 'label.thumbnail.webp']));
    expect(JSON.parse(await readFile(path.join(out, 'result.json'), 'utf8'))).toEqual(result.doc);
    expect(await readFile(path.join(out, 'summary.txt'), 'utf8')).toBe(`${result.summary}\n`);
    const thumbnail = result.blobs.find((b) => b.name === 'label.thumbnail.webp');
    expect(thumbnail).toBeDefined();
    expect(await sha256Of(path.join(out, 'label.thumbnail.webp'))).toBe(thumbnail?.sha256);
    expect(run.stderr).toContain(`saved ${files.length} files in ${out}`);

    // `mmgrid result -o` writes the same files (it calls the same saveResult).
    const cliOut = path.join(media, 'cli-out');
    const cli = await runCli(['result', jobId, '-o', cliOut], tg.cliEnv);
    expect(cli.code).toBe(0);
    expect((await readdir(cliOut)).sort()).toEqual([...files].sort());
    for (const name of files) expect(cli.stderr).toContain(`wrote ${path.join(cliOut, name)}`);
  });

  it('exits 1 naming the error code when no coordinator listens at the address', async () => {
    const port = await freePort();
    const run = await runExample([`127.0.0.1:${port}`, png]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^UNAVAILABLE: cannot reach coordinator at 127\\.0\\.0\\.1:${port} \\(connection refused\\)`, 'm'));
    // A program's user sets the client's options, not the CLI's flags: the hint names the option.
    expect(run.stderr).toContain('Is it running? Set the address option.');
    expect(run.stderr).not.toContain('--coordinator');
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });

  it('exits 2 with its usage line when no file is given', async () => {
    const run = await runExample([tg.grid.address]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^usage: submit-and-watch ADDRESS FILE\.\.\./);
  });
});

describe('the client API', () => {
  let tg: TestGrid;
  let media: string;

  beforeAll(async () => {
    media = await tempDir('mmgrid-client-api-');
    tg = await startTestGrid({ workers: 1 });
  });

  afterAll(async () => {
    await tg?.stop();
    await removeDir(media);
  });

  it('reports upload and download progress up to the blob size', async () => {
    // Several chunks' worth of bytes, so progress is reported more than once.
    const bytes = createHash('sha512').update('mmgrid').digest();
    const big = Buffer.concat(Array.from({ length: 20_000 }, (_, i) => Buffer.concat([bytes, Buffer.from([i & 255, i >> 8])])));
    const file = path.join(media, 'big.bin');
    await writeFile(file, big);

    const up: [number, number][] = [];
    const { blob } = await tg.client.blobs.uploadFile(file, { onProgress: (done, total) => up.push([done, total]) });
    expect(blob.size).toBe(big.length);
    expect(up.length).toBeGreaterThan(1);
    expect(up.at(-1)).toEqual([big.length, big.length]);

    const down: [number, number][] = [];
    const copy = path.join(media, 'copy.bin');
    await tg.client.blobs.download(blob.sha256, copy, { onProgress: (done, total) => down.push([done, total]) });
    expect(down.length).toBeGreaterThan(1);
    expect(down.at(-1)).toEqual([big.length, big.length]);
    // Progress only grows, and never past the total.
    for (let i = 1; i < down.length; i++) expect(down[i]?.[0]).toBeGreaterThan(down[i - 1]?.[0] ?? 0);
    expect(down.every(([done, total]) => total === big.length && done <= total)).toBe(true);
    expect(await sha256Of(copy)).toBe(blob.sha256);

    const inMemory: [number, number][] = [];
    const held = await tg.client.blobs.downloadBytes(blob.sha256, { onProgress: (done, total) => inMemory.push([done, total]) });
    expect(held.equals(big)).toBe(true);
    expect(inMemory.at(-1)).toEqual([big.length, big.length]);
  });

  it('stops following a job when the signal is aborted, leaving the job running', async () => {
    const job = await tg.client.submit([], { pipeline: 'selftest', params: { tasks: '1', taskMs: '600000' } });

    // watch: the loop ends after the event that aborted it, without an error.
    const controller = new AbortController();
    const seen: JobEventView[] = [];
    for await (const event of tg.client.watch(job.id, { signal: controller.signal })) {
      seen.push(event);
      controller.abort();
    }
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ type: 'job', state: 'queued' });

    // waitForJob: rejects with ABORTED, naming the job.
    const stop = new AbortController();
    const aborted = await refusal(tg.client.waitForJob(job.id, { signal: stop.signal, onEvent: () => stop.abort() }));
    expect(aborted.code).toBe('ABORTED');
    expect(aborted.message).toBe(`stopped waiting for job ${job.id}: aborted; the job goes on`);
    expect(['queued', 'running']).toContain((await tg.client.getJob(job.id)).state);

    // The CLI does the same on Ctrl-C: it detaches, says how to re-attach and exits 130.
    const watched = await interruptWatch(job.id, tg.cliEnv);
    expect(watched.stdout).toMatch(/job queued/);
    expect(watched.stderr).toContain(`detached from job ${job.id}; it keeps running. Re-attach with: mmgrid watch ${job.id}`);
    expect(watched.code).toBe(130);
    expect(['queued', 'running']).toContain((await tg.client.getJob(job.id)).state);

    // result: the job has none yet.
    const notReady = await refusal(tg.client.result(job.id));
    expect(isMmgridError(notReady, 'NOT_READY')).toBe(true);
    expect(notReady.message).toMatch(new RegExp(`^job ${job.id} is (queued|running) and has no result yet; wait for it`));
    expect(notReady.job?.id).toBe(job.id);
    const notSaved = await refusal(tg.client.saveResult(job.id, path.join(media, 'never')));
    expect(notSaved.code).toBe('NOT_READY');
    await expect(stat(path.join(media, 'never'))).rejects.toThrow(/ENOENT/);
    const cli = await runCli(['result', job.id], tg.cliEnv);
    expect(cli.code).toBe(7);

    // Cancelled without a result: JOB_FAILED, with the reason given.
    await tg.client.cancel(job.id, 'long enough');
    const cancelled = await refusal(tg.client.result(job.id, { wait: true }));
    expect(cancelled.code).toBe('JOB_FAILED');
    expect(cancelled.message).toBe(`job ${job.id} was cancelled without a result: long enough`);
  });

  it('throws JOB_FAILED with the job error for a job that failed without a result', async () => {
    const job = await tg.client.submit([], { pipeline: 'selftest', params: { tasks: '1', taskMs: '0', failAttempts: '100' } });
    const failed = await refusal(tg.client.result(job.id, { wait: true }));
    expect(failed.code).toBe('JOB_FAILED');
    expect(failed.job?.state).toBe('failed');
    const reason = failed.job?.error?.message ?? '';
    expect(reason).not.toBe('');
    expect(failed.message).toBe(`job ${job.id} failed without a result: ${reason}`);
    expect((await tg.client.getJob(job.id)).error?.message).toBe(reason);
    // Not the same as not finished: a program can tell them apart by code alone.
    expect(isMmgridError(failed, 'NOT_READY')).toBe(false);
    expect(isMmgridError(failed, 'JOB_FAILED')).toBe(true);
    const cli = await runCli(['result', job.id], tg.cliEnv);
    expect(cli.code).toBe(1);
  });
});
