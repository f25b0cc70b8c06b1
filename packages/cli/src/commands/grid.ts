import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MmgridClient } from '@mmgrid/client';
import type { CommandContext } from '../context.js';
import { ExitCode, type ExitCodeValue } from '../exit-codes.js';
import { formatEvent, formatResult } from '../format.js';
import { binOf, LocalGrid } from '../local-grid.js';
import { exitCodeOf } from './jobs.js';

/** Runs `mmgrid coordinator …` / `mmgrid worker …`: the sibling package's own executable. */
export function launch(pkg: '@mmgrid/coordinator' | '@mmgrid/worker', args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binOf(pkg), ...args], { stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals): void => {
      child.kill(signal);
    };
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      // Killed by a signal: 128 + its number, as a shell reports it.
      resolve(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1));
    });
  });
}

export interface DevFlags {
  readonly workers: number;
  readonly port: number;
  readonly dataDir: string;
}

/** `mmgrid dev`: a whole grid in the foreground until Ctrl-C. */
export async function dev(ctx: CommandContext, flags: DevFlags): Promise<ExitCodeValue> {
  const redisUrl = process.env['REDIS_URL'];
  const grid = await LocalGrid.start({
    dataDir: path.resolve(flags.dataDir),
    workers: flags.workers,
    listen: `127.0.0.1:${flags.port}`,
    logs: 'inherit',
    env: process.stderr.isTTY ? { MMGRID_LOG_FORMAT: 'pretty' } : {},
    ...(redisUrl ? { redisUrl } : {}),
  });
  const redisNote = grid.redis ? `private redis ${grid.redisUrl} (data in ${grid.redis.dir})` : `redis ${grid.redisUrl}`;
  if (ctx.json) {
    // One line a script can read the address from, then nothing more on stdout until it stops.
    process.stdout.write(`${JSON.stringify({ address: grid.address, redisUrl: grid.redisUrl, privateRedis: grid.redis !== undefined, workers: flags.workers, dataDir: path.resolve(flags.dataDir) })}\n`);
  } else {
    ctx.print(`mmgrid dev: coordinator listening on ${grid.address} with ${flags.workers} worker${flags.workers === 1 ? '' : 's'}, ${redisNote}. Ctrl-C stops it.`);
  }
  await new Promise<void>((resolve) => {
    const done = (): void => resolve();
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
    grid.coordinator.once('exit', done);
  });
  ctx.note('mmgrid dev: stopping');
  const coordinatorDied = grid.coordinator.exitCode !== null && grid.coordinator.exitCode !== 0;
  await grid.stop();
  return coordinatorDied ? ExitCode.UNAVAILABLE : ExitCode.OK;
}

export const DEMO_PROMPT =
  'The customer says the receipt total is wrong. What does the receipt say, and what does the recording of their complaint contain?';

export function demoAssets(): string[] {
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'assets', 'demo');
  return [path.join(dir, 'receipt.png'), path.join(dir, 'complaint.wav')];
}

/** `mmgrid demo`: starts a local grid, runs the sample job through it, prints the result. */
export async function demo(ctx: CommandContext, flags: { workers: number }): Promise<ExitCodeValue> {
  const dataDir = await mkdtemp(path.join(tmpdir(), 'mmgrid-demo-'));
  ctx.note(`starting a local grid (redis, a coordinator, ${flags.workers} workers) in ${dataDir}`);
  const redisUrl = process.env['REDIS_URL'];
  const grid = await LocalGrid.start({ dataDir, workers: flags.workers, ...(redisUrl ? { redisUrl, coordinatorArgs: ['--key-prefix', `mmgrid-demo-${process.pid}`] } : {}) });
  const client = new MmgridClient({ address: grid.address });
  try {
    const files = demoAssets();
    ctx.note(`submitting ${files.map((f) => path.basename(f)).join(', ')} with the prompt: ${DEMO_PROMPT}`);
    const job = await client.submit(files.map((f) => ({ path: f })), { prompt: DEMO_PROMPT });
    const done = await client.waitForJob(job.id, (event) => ctx.note(formatEvent(event)));
    if (ctx.json) ctx.printJson(done);
    else ctx.print(`\n${formatResult(done)}`);
    return exitCodeOf(done);
  } finally {
    client.close();
    await grid.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
