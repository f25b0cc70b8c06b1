import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '@mmgrid/client';
import type { AudioAnalyzeOutput, ImageOcrOutput } from '@mmgrid/core';
import { mmgridBin, runCli } from '../helpers/cli.js';
import { writeTextPng, writeWav } from '../helpers/media.js';
import { exited } from '../helpers/process.js';

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('mmgrid dev and mmgrid demo', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-dev-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('dev runs a whole grid in the foreground, serves `submit --wait --json`, and Ctrl-C stops everything', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env['REDIS_URL'];
    const dev = spawn(process.execPath, [mmgridBin(), 'dev', '--port', '0', '--workers', '1', '--data-dir', path.join(dir, 'grid')], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    dev.stderr.resume();
    const lines = createInterface({ input: dev.stdout });
    let ready = '';
    for await (const line of lines) {
      ready = line;
      break;
    }
    const match = /coordinator listening on (127\.0\.0\.1:(\d+)) with 1 worker, private redis redis:\/\/127\.0\.0\.1:(\d+)/.exec(ready);
    if (!match?.[1] || !match[2] || !match[3]) throw new Error(`unexpected ready line: ${ready}`);
    const [address, coordinatorPort, redisPort] = [match[1], Number(match[2]), Number(match[3])];

    const png = await writeTextPng(dir, 'photo.png', ['GRID READY']);
    const wav = await writeWav(dir, 'talk.wav', 1.5, [{ startSec: 0.2, endSec: 1.2 }]);
    const submitted = await runCli(['submit', png, wav, '--prompt', 'is the grid ready?', '--wait', '--json'], { MMGRID_COORDINATOR: address });
    expect(submitted.code).toBe(0);
    const job = JSON.parse(submitted.stdout) as JobView;
    expect(job.state).toBe('completed');
    const ocr = job.result?.doc.inputs.find((i) => i.name === 'photo.png')?.outputs['image.ocr'] as ImageOcrOutput | undefined;
    expect(ocr?.text).toContain('GRID READY');

    dev.kill('SIGINT');
    expect(await exited(dev)).toBe(0);
    expect(await portOpen(coordinatorPort)).toBe(false);
    expect(await portOpen(redisPort)).toBe(false);
  });

  it('dev --json prints one JSON line with the address, for scripts', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env['REDIS_URL'];
    const dataDir = path.join(dir, 'json-grid');
    const dev = spawn(process.execPath, [mmgridBin(), 'dev', '--json', '--port', '0', '--workers', '0', '--data-dir', dataDir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    dev.stderr.resume();
    let first = '';
    for await (const line of createInterface({ input: dev.stdout })) {
      first = line;
      break;
    }
    const ready = JSON.parse(first) as { address: string; redisUrl: string; privateRedis: boolean; workers: number; dataDir: string };
    expect(ready).toMatchObject({ privateRedis: true, workers: 0, dataDir });
    expect(ready.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(ready.redisUrl).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
    // The address answers: a job id it does not know is "not found" (exit 3), not "unavailable".
    const status = await runCli(['status', '01M8CP1K74QPAZMDMTNMBA2SZG'], { MMGRID_COORDINATOR: ready.address });
    expect(status.code).toBe(3);
    dev.kill('SIGINT');
    expect(await exited(dev)).toBe(0);
  });

  it('dev says exactly how to get Redis when redis-server is not installed (exit 5)', async () => {
    // The CLI runs under this node by its full path; an empty PATH hides redis-server.
    const emptyBin = path.join(dir, 'empty-bin');
    await mkdir(emptyBin, { recursive: true });
    const cli = await runCli(['dev', '--port', '0', '--data-dir', path.join(dir, 'no-redis')], { PATH: emptyBin, REDIS_URL: '' });
    expect(cli.code).toBe(5);
    expect(cli.stderr).toContain('redis-server is not installed');
    expect(cli.stderr).toContain('sudo apt-get install -y redis-server');
    expect(cli.stderr).toContain('REDIS_URL');
  });

  it('demo runs the sample job on a temporary grid and prints its result', async () => {
    const demo = await runCli(['demo', '--json']);
    expect(demo.code).toBe(0);
    const job = JSON.parse(demo.stdout) as JobView;
    expect(job.state).toBe('completed');
    const receipt = job.result?.doc.inputs.find((i) => i.name === 'receipt.png')?.outputs['image.ocr'] as ImageOcrOutput | undefined;
    expect(receipt?.text).toContain('TOTAL 126.74');
    const complaint = job.result?.doc.inputs.find((i) => i.name === 'complaint.wav')?.outputs['audio.analyze'] as AudioAnalyzeOutput | undefined;
    expect(complaint?.durationSec).toBeCloseTo(15.49, 1);
    expect(demo.stderr).toContain('job completed');

    // The same for people: the result as text.
    const human = await runCli(['demo']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^job \w+ completed$/m);
    expect(human.stdout).toMatch(/image\.ocr: text ".*TOTAL 126\.74/);
    expect(human.stdout).toContain('complaint.wav (audio, audio/wav)');
  });
});
