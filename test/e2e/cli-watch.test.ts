import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '@mmgrid/client';
import { mmgridBin, runCli, type CliResult } from '../helpers/cli.js';
import { removeDir, tempDir } from '../helpers/files.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeTextPng, writeWav } from '../helpers/media.js';
import { eventually } from '../helpers/process.js';

const ESC = '\x1b[';

/** A command line for `sh -c`, each argument quoted. */
function shellLine(args: readonly string[]): string {
  return args.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
}

interface Running {
  readonly child: ChildProcess;
  readonly output: () => CliResult;
  readonly done: Promise<CliResult>;
}

/** Starts a process and collects what it prints, for a test that acts while it runs. */
function start(command: string, args: readonly string[], env: Readonly<Record<string, string>>): Running {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const output = (): CliResult => ({ code: child.exitCode, stdout, stderr });
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
  return { child, output, done };
}

/** `mmgrid ARGS…` in a pseudo-terminal (util-linux script): stdout and stderr are a TTY. */
function startInPty(args: readonly string[], env: Readonly<Record<string, string>>): Running {
  const line = shellLine([process.execPath, mmgridBin(), ...args]);
  return start('script', ['-qefc', line, '/dev/null'], { ...env, TERM: 'xterm-256color', COLUMNS: '160', LINES: '40' });
}

describe('following a job with --watch', () => {
  let tg: TestGrid;
  let media: string;
  let inputs: string[];

  beforeAll(async () => {
    media = await tempDir('mmgrid-media-');
    inputs = [
      await writeTextPng(media, 'front.png', ['RECEIPT 1']),
      await writeTextPng(media, 'back.png', ['TOTAL 9 EUR']),
      // 12 s cut into 5 s windows: a split task whose shards appear while the job runs.
      await writeWav(media, 'memo.wav', 12, [{ startSec: 1, endSec: 3 }, { startSec: 7, endSec: 9 }]),
    ];
    tg = await startTestGrid({ workers: 2, workerArgs: ['--slots', 'selftest.sleep=2'] });
  });

  afterAll(async () => {
    await tg?.stop();
    await removeDir(media);
  });

  const submitArgs = (): string[] => ['submit', ...inputs, '-p', 'what do they say?', '--param', 'windowSec=5', '--param', 'overlapSec=1', '--watch'];

  /** A job whose sleep tasks leave time to interrupt whoever follows it. */
  const slowJob = (): Promise<JobView> => tg.client.submit([], { pipeline: 'selftest', params: { tasks: '2', taskMs: '4000' } });
  /** A job that runs far longer than any test: whoever detached from it must have left before it ends. */
  const longJob = (): Promise<JobView> => tg.client.submit([], { pipeline: 'selftest', params: { tasks: '2', taskMs: '600000' } });
  const expectLive = async (job: JobView): Promise<void> => {
    expect(['queued', 'running']).toContain((await tg.client.getJob(job.id)).state);
    await tg.client.cancel(job.id, 'test over');
  };
  const detached = (job: JobView): string => `mmgrid: detached from job ${job.id}; it keeps running. Re-attach with: mmgrid watch ${job.id}`;

  it('shows one bar per stage on a terminal, then the result, and exits 0', async () => {
    const run = startInPty(submitArgs(), tg.cliEnv);
    const { code, stdout } = await run.done;
    expect(code).toBe(0);
    // The final frame: every stage complete, shards counted as tasks of their kind.
    expect(stdout).toMatch(/image\.ocr\s+\S+ 2\/2 {2}0 retries {2}[12] workers? /);
    expect(stdout).toMatch(/audio\.analyze\s+\S+ 3\/3 /);
    expect(stdout).toMatch(/fusion\.report\s+\S+ 1\/1 /);
    expect(stdout).toMatch(/job \w+ {2}completed {2}\S+ {2}ETA 0s/);
    expect(stdout).toContain(ESC);
    // The cursor the bars hid is shown again.
    expect(stdout).toContain(`${ESC}?25h`);
    expect(stdout).toMatch(/job \w+ completed/);
    expect(stdout).toContain('RECEIPT 1');
  });

  it('prints plain event lines on stderr when stderr is not a terminal, and the result on stdout', async () => {
    const plain = await runCli(submitArgs(), tg.cliEnv);
    expect(plain.code).toBe(0);
    expect(plain.stderr).not.toContain(ESC);
    expect(plain.stderr).toMatch(/image\.ocr succeeded on /);
    expect(plain.stderr).toMatch(/job completed/);
    expect(plain.stdout).toMatch(/^job \w+ completed/);
    expect(plain.stdout).toContain('TOTAL 9 EUR');

    const json = await runCli(['--json', ...submitArgs()], tg.cliEnv);
    expect(json.code).toBe(0);
    expect(json.stderr).not.toContain(ESC);
    expect(json.stderr).toMatch(/job completed/);
    const job = JSON.parse(json.stdout) as JobView;
    expect(job.state).toBe('completed');
    expect(job.tasks.filter((t) => t.kind === 'audio.analyze')).toHaveLength(3);

    const quiet = await runCli(['--quiet', ...submitArgs()], tg.cliEnv);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe('');
    expect(quiet.stdout).toMatch(/^job \w+ completed/);
  });

  it('refuses --cancel-on-interrupt without --watch', async () => {
    const cli = await runCli(['submit', ...inputs, '--cancel-on-interrupt'], tg.cliEnv);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toBe('mmgrid: --cancel-on-interrupt works only with --watch (Ctrl-C while following the job)\n');
  });

  it('detaches on Ctrl-C: exit 130 at once, a hint to re-attach, and the job keeps running', async () => {
    const job = await longJob();
    const run = start(process.execPath, [mmgridBin(), 'watch', job.id], tg.cliEnv);
    await eventually(() => Promise.resolve(/ selftest\.sleep running/.test(run.output().stdout)), 'the watch shows a running task');
    run.child.kill('SIGINT');
    const { code, stderr } = await run.done;
    expect(code).toBe(130);
    expect(stderr).toBe(`${detached(job)}\n`);
    // It left while the job still runs (the job takes ten minutes).
    await expectLive(job);
  });

  it('detaches on Ctrl-C in a terminal, giving the cursor back', async () => {
    const job = await longJob();
    const run = startInPty(['watch', job.id], tg.cliEnv);
    await eventually(() => Promise.resolve(/selftest\.sleep +\S+ 0\/2 /.test(run.output().stdout)), 'the bars show the stage');
    // Ctrl-C typed at the terminal: the line discipline turns it into SIGINT.
    run.child.stdin?.write('\x03');
    const { code, stdout } = await run.done;
    expect(code).toBe(130);
    expect(stdout).toContain(detached(job));
    expect(stdout).toContain(`${ESC}?25h`);
    await expectLive(job);
  });

  it('detaches on Ctrl-C during --wait too, with the same words', async () => {
    const run = start(process.execPath, [mmgridBin(), 'submit', '--pipeline', 'selftest', '--param', 'tasks=2', '--param', 'taskMs=600000', '--wait', '--json'], tg.cliEnv);
    await eventually(() => Promise.resolve(/selftest\.sleep running/.test(run.output().stderr)), 'the wait shows a running task');
    const id = /submitted job (\w+)/.exec(run.output().stderr)?.[1] ?? '';
    run.child.kill('SIGINT');
    const { code, stdout, stderr } = await run.done;
    expect(code).toBe(130);
    expect(stdout).toBe('');
    const job = await tg.client.getJob(id);
    expect(stderr).toContain(`${detached(job)}\n`);
    await expectLive(job);
  });

  it('refuses --wait and --watch together', async () => {
    const cli = await runCli(['submit', ...inputs, '--wait', '--watch'], tg.cliEnv);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('not both');
  });

  it('cancels the job on Ctrl-C with --cancel-on-interrupt, and exits 1', async () => {
    const job = await slowJob();
    const run = start(process.execPath, [mmgridBin(), 'watch', job.id, '--cancel-on-interrupt'], tg.cliEnv);
    await eventually(() => Promise.resolve(/ selftest\.sleep running/.test(run.output().stdout)), 'the watch shows a running task');
    run.child.kill('SIGINT');
    const { code, stderr } = await run.done;
    expect(code).toBe(1);
    expect(stderr).toBe(`mmgrid: cancelled job ${job.id} (interrupted by the submitter)\n`);
    const after = await tg.client.getJob(job.id);
    expect(after.state).toBe('cancelled');
    expect(after.error).toEqual({ code: 'CANCELLED', message: 'interrupted by the submitter' });
  });

  it('counts retries, and follows a retried job with retry --watch', async () => {
    // Each task fails its first attempt and succeeds on the next.
    const flaky = startInPty(['submit', '--pipeline', 'selftest', '--param', 'tasks=2', '--param', 'taskMs=50', '--param', 'failAttempts=1', '--watch'], tg.cliEnv);
    const shown = await flaky.done;
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/selftest\.sleep\s+\S+ 2\/2 {2}2 retries /);

    // A task that always fails: the job fails, and a retry of it fails again.
    const failing = await tg.client.submit([], { pipeline: 'selftest', params: { tasks: '1', taskMs: '0', failAttempts: '100' } });
    expect((await tg.client.waitForJob(failing.id)).state).toBe('failed');
    const retried = await runCli(['retry', failing.id, '--watch'], tg.cliEnv);
    expect(retried.code).toBe(1);
    expect(retried.stderr).toContain(`job ${failing.id} retried (2 tasks to run)`);
    expect(retried.stderr).toMatch(/selftest\.sleep failed/);
    expect(retried.stdout).toMatch(new RegExp(`^job ${failing.id} is failed`));
  });
});
