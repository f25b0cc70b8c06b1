import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExplanationView, JobEventView, JobView, TokenView } from '@mmgrid/client';
import { jobOf, mmgridBin, runCli, type CliResult } from '../helpers/cli.js';
import { removeDir, tempDir, writeIn } from '../helpers/files.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeTextPng, writeWav } from '../helpers/media.js';

/**
 * The job commands of `mmgrid`, driven as a submitter drives them (a subprocess against a
 * local grid that requires tokens), in their human and --json forms, and every documented
 * exit code produced by the situation docs/cli.md names for it.
 */

const ADMIN_TOKEN = randomBytes(32).toString('base64url');
const MAX_INPUTS = 3;
/** A line of a stack trace: shown only with --debug. */
const STACK_LINE = /^\s+at .+\(.+:\d+:\d+\)$/m;

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** No stack trace, one "mmgrid: …" sentence. */
function expectPlainError(cli: CliResult): void {
  expect(cli.stderr).toMatch(/^mmgrid: /m);
  expect(cli.stderr).not.toMatch(STACK_LINE);
  expect(cli.stdout).toBe('');
}

describe('the mmgrid job commands, as a submitter uses them', () => {
  let tg: TestGrid;
  let dir: string;
  let env: Record<string, string>;
  let png: string;
  let wav: string;

  const cli = (args: readonly string[], extra: Readonly<Record<string, string | undefined>> = {}): Promise<CliResult> => runCli(args, { ...env, ...extra });

  beforeAll(async () => {
    dir = await tempDir('mmgrid-cli-');
    tg = await startTestGrid({
      workers: 0,
      coordinatorArgs: ['--lease-ms', '4000', '--heartbeat-ms', '500', '--stalled-check-ms', '1000', '--auth', 'tokens', '--max-inputs-per-job', String(MAX_INPUTS)],
      env: { MMGRID_ADMIN_TOKEN: ADMIN_TOKEN },
    });
    // The admin issues the workers' and the submitter's tokens with the CLI: the token alone on stdout.
    const workerToken = await runCli(['token', 'create', '--role', 'worker', '--name', 'test box'], { ...tg.cliEnv, MMGRID_TOKEN: ADMIN_TOKEN });
    expect(workerToken.code).toBe(0);
    for (let i = 0; i < 2; i++) await tg.grid.addWorker(['--token', workerToken.stdout.trim(), '--slots', 'selftest.sleep=4']);
    const created = await runCli(['token', 'create', '--role', 'submitter', '--tenant', 'acme', '--name', 'cli test'], { ...tg.cliEnv, MMGRID_TOKEN: ADMIN_TOKEN });
    expect(created.code).toBe(0);
    expect(created.stdout.trim()).toMatch(/^mmg_\S+$/);
    env = { ...tg.cliEnv, MMGRID_TOKEN: created.stdout.trim() };
    png = await writeTextPng(dir, 'receipt.png', ['TOTAL 42.00']);
    wav = await writeWav(dir, 'complaint.wav', 1.5, [{ startSec: 0.2, endSec: 1.1 }]);
  });

  afterAll(async () => {
    await tg?.stop();
    await removeDir(dir);
  });

  it('submit, status, result (-o DIR) and explain: the human forms and the --json forms of one real job', async () => {
    const submitted = await cli(['submit', png, wav, '--prompt', 'what is the total?', '--label', 'team=support']);
    expect(submitted.code).toBe(0);
    const id = submitted.stdout.trim();
    expect(id).toMatch(/^[0-9A-Z]{26}$/);
    expect(submitted.stderr).toContain(`submitted job ${id}`);
    expect(submitted.stderr).toContain(`mmgrid status ${id}`);

    const waited = await cli(['result', id, '--wait', '--json', '-q']);
    expect(waited.code).toBe(0);
    const done = jobOf(waited);
    expect(done.state).toBe('completed');
    expect(done.tenant).toBe('acme');

    const human = await cli(['status', id]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(`job       ${id}`);
    expect(human.stdout).toContain('state     completed');
    expect(human.stdout).toMatch(/receipt\.png\s+image\s+image\/png/);
    expect(human.stdout).toMatch(/TASK\s+KIND\s+INPUT\s+STATE\s+TRIES\s+WORKER/);
    for (const task of done.tasks) expect(human.stdout).toContain(task.kind);

    const json = await cli(['status', id, '--json']);
    const viewed = jobOf(json);
    expect(viewed.id).toBe(id);
    expect(viewed.tasks.map((t) => t.id)).toEqual(done.tasks.map((t) => t.id));
    expect(viewed.result?.summary).toBe(done.result?.summary);

    const result = await cli(['result', id]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`job ${id} completed`);
    expect(result.stdout).toContain('receipt.png (image, image/png)');
    expect(result.stdout).toMatch(/image\.ocr: text ".*TOTAL 42\.00/);
    expect(result.stdout).toContain('complaint.wav (audio, audio/wav)');

    const out = path.join(dir, 'out');
    const saved = await cli(['result', id, '-o', out]);
    expect(saved.code).toBe(0);
    const files = await readdir(out);
    expect(files).toEqual(expect.arrayContaining(['result.json', 'summary.txt', 'receipt.thumbnail.webp']));
    expect(JSON.parse(await readFile(path.join(out, 'result.json'), 'utf8'))).toEqual(done.result?.doc);
    expect((await readFile(path.join(out, 'summary.txt'), 'utf8')).trim()).toBe(done.result?.summary);
    expect(saved.stderr).toContain(`wrote ${path.join(out, 'receipt.thumbnail.webp')}`);

    // watch of an ended job: its events from the start, as lines (or JSON lines), then exit 0.
    const watched = await cli(['watch', id]);
    expect(watched.code).toBe(0);
    expect(watched.stdout.trim().split('\n').at(-1)).toMatch(/^\d\d:\d\d:\d\d\.\d{3} {2}job completed$/);
    expect(watched.stdout).toMatch(/ image\.ocr succeeded on /);
    const events = (await cli(['watch', id, '--json'])).stdout.trim().split('\n').map((line) => JSON.parse(line) as JobEventView);
    expect(events.at(-1)).toMatchObject({ type: 'job', state: 'completed' });
    const succeeded = events.flatMap((e) => (e.type === 'task' && e.state === 'succeeded' ? [e.taskId] : []));
    expect(succeeded).toEqual(expect.arrayContaining(done.tasks.filter((t) => t.kind !== 'job.assemble').map((t) => t.id)));

    const explained = await cli(['explain', id]);
    expect(explained.code).toBe(0);
    expect(explained.stdout).toMatch(/^TASK\s+KIND\s+STATE\s+NEEDS\s+CAPABLE\s+WHY/);
    const explanations = JSON.parse((await cli(['explain', id, '--json'])).stdout) as ExplanationView[];
    expect(explanations.map((e) => e.taskId).sort()).toEqual(done.tasks.map((t) => t.id).sort());
    for (const e of explanations) expect(explained.stdout).toContain(e.taskId);
  });

  it('a slow job: result says it is not ready (exit 7), cancel ends it (human and --json), and its result then exits 1', async () => {
    const submitted = await cli(['submit', '--pipeline', 'selftest', '--param', 'taskMs=60000', '--json']);
    expect(submitted.code).toBe(0);
    const job = jobOf(submitted);
    expect(job.state).toBe('queued');

    const early = await cli(['result', job.id]);
    expect(early.code).toBe(7);
    expectPlainError(early);
    expect(early.stderr).toContain(`wait for it with: mmgrid result ${job.id} --wait`);

    const cancelled = await cli(['cancel', job.id, '--reason', 'changed my mind']);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout.trim()).toBe(`job ${job.id} is cancelled`);
    const again = jobOf(await cli(['cancel', job.id, '--json']));
    expect(again.state).toBe('cancelled');

    const after = await cli(['result', job.id]);
    expect(after.code).toBe(1);
    expect(after.stdout).toContain(`job ${job.id} is cancelled`);
  });

  it('a failed job exits 1 with its reason; retry runs it again (human and --json) and exits 1 again when it fails again', async () => {
    // Each task fails on its first 100 attempts: more than the grid tries.
    const failed = await cli(['submit', '--pipeline', 'selftest', '--param', 'taskMs=0', '--param', 'failAttempts=100', '--wait']);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/^job \S+ is failed: /);
    const id = /^job (\S+) is failed/.exec(failed.stdout)?.[1] ?? '';

    const retried = await cli(['retry', id]);
    expect(retried.code).toBe(0);
    // The failed task, and the assembly that waits for it.
    expect(retried.stdout.trim()).toBe(`job ${id} is queued again (retry 1): 2 tasks to run`);
    const waited = await cli(['result', id, '--wait', '--json', '-q']);
    expect(waited.code).toBe(1);
    expect(jobOf(waited).generation).toBe(1);

    const json = await cli(['retry', id, '--json', '--wait', '-q']);
    expect(json.code).toBe(1);
    const job: JobView = jobOf(json);
    expect(job.generation).toBe(2);
    expect(job.state).toBe('failed');
  });

  it('pipelines and version, human and --json', async () => {
    const human = await cli(['pipelines']);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^describe: /);
    const pipelines = JSON.parse((await cli(['pipelines', '--json'])).stdout) as { name: string; steps: string[] }[];
    for (const p of pipelines) expect(human.stdout).toContain(`${p.name}: `);
    expect(pipelines.map((p) => p.name)).toEqual(expect.arrayContaining(['describe', 'transcribe', 'ocr', 'selftest']));

    // A reader that leaves before the output comes (`mmgrid pipelines | head -1` on a long
    // output): no stack trace for the broken pipe, exit 0.
    const piped = await promisify(execFile)('bash', ['-c', 'node "$1" pipelines | true; echo "exit ${PIPESTATUS[0]}"', 'bash', mmgridBin()]);
    expect(piped.stdout).toBe('exit 0\n');
    expect(piped.stderr).toBe('');

    const version = await cli(['version']);
    expect(version.stdout).toMatch(/^mmgrid \d+\.\d+\.\d+ \(node v\d+/);
    const v = JSON.parse((await cli(['version', '--json'])).stdout) as { version: string; node: string };
    expect(version.stdout).toContain(v.version);
    expect(v.node).toBe(process.version);
  });

  it('token list and revoke, human and --json; a revoked token is refused with exit 4', async () => {
    const admin = { MMGRID_TOKEN: ADMIN_TOKEN };
    const created = JSON.parse((await cli(['token', 'create', '--role', 'submitter', '--tenant', 'acme', '--name', 'to revoke', '--json'], admin)).stdout) as TokenView & { token: string };
    const listed = await cli(['token', 'list'], admin);
    expect(listed.stdout).toMatch(/ID\s+ROLE\s+TENANT\s+CREATED\s+EXPIRES\s+STATE\s+NAME/);
    expect(listed.stdout).toMatch(new RegExp(`${created.id}\\s+submitter\\s+acme\\s+.*active\\s+to revoke`));
    expect(listed.stdout).not.toContain(created.token);
    const other = JSON.parse((await cli(['token', 'create', '--role', 'worker', '--json'], admin)).stdout) as TokenView;
    const revokedHuman = await cli(['token', 'revoke', other.id], admin);
    expect(revokedHuman.stdout).toMatch(new RegExp(`^revoked token ${other.id} \\(worker\\) at \\d{4}-`));
    const revoked = JSON.parse((await cli(['token', 'revoke', created.id, '--json'], admin)).stdout) as TokenView;
    expect(revoked.revokedAt).not.toBeNull();
    const all = JSON.parse((await cli(['token', 'list', '--all', '--json'], admin)).stdout) as TokenView[];
    expect(all.find((t) => t.id === created.id)?.revokedAt).toBe(revoked.revokedAt);

    const refused = await cli(['status', '01M8CP1K74QPAZMDMTNMBA2SZG'], { MMGRID_TOKEN: created.token });
    expect(refused.code).toBe(4);
    expectPlainError(refused);
    expect(refused.stderr).toContain('was revoked');
    // …and says where a token goes and who makes one.
    expect(refused.stderr).toContain('Give a token with --token, MMGRID_TOKEN or a profile (mmgrid config set token TOKEN); an admin makes one with: mmgrid token create --role submitter');
  });

  it('workers release on a grid without result verification says so (exit 2)', async () => {
    const admin = { MMGRID_TOKEN: ADMIN_TOKEN };
    const workers = JSON.parse((await cli(['workers', '--json'], admin)).stdout) as { workerId: string }[];
    expect(workers).toHaveLength(2);
    const refused = await cli(['workers', 'release', workers[0]?.workerId ?? ''], admin);
    expect(refused.code).toBe(2);
    expectPlainError(refused);
    expect(refused.stderr).toContain('result verification is off on this grid (see --verify and --canary-rate)');
  });

  it('each documented exit code comes from the situation docs/cli.md names, with one sentence and no stack trace', async () => {
    const port = await deadPort();
    const texts = await Promise.all(Array.from({ length: MAX_INPUTS + 1 }, (_, i) => writeIn(dir, `note-${i}.txt`, `note ${i}\n`)));
    const cases: { name: string; args: string[]; env?: Record<string, string | undefined>; code: number; says: string | RegExp }[] = [
      { name: 'an unknown option', args: ['submit', '--no-such-flag'], code: 2, says: "unknown option '--no-such-flag'" },
      { name: 'a priority out of range', args: ['submit', png, '--priority', '11'], code: 2, says: '--priority must be a whole number from -10 to 10' },
      { name: 'a missing file', args: ['submit', path.join(dir, 'nope.png')], code: 2, says: `no such file: ${path.join(dir, 'nope.png')}` },
      { name: 'nothing to submit', args: ['submit'], code: 2, says: 'nothing to submit' },
      { name: 'an unknown pipeline', args: ['submit', png, '--pipeline', 'nope'], code: 2, says: 'unknown pipeline "nope": the built-in pipelines are describe, transcribe, ocr, video-summary, declared, selftest (see: mmgrid pipelines)' },
      { name: 'an unknown job', args: ['status', '01M8CP1K74QPAZMDMTNMBA2SZG'], code: 3, says: 'job 01M8CP1K74QPAZMDMTNMBA2SZG not found (your jobs: mmgrid list)' },
      { name: 'a malformed address', args: ['status', 'X'], env: { MMGRID_COORDINATOR: 'not an address' }, code: 2, says: '--coordinator (or MMGRID_COORDINATOR, or a profile\'s coordinator) must be HOST:PORT' },
      { name: 'no token', args: ['status', '01M8CP1K74QPAZMDMTNMBA2SZG'], env: { MMGRID_TOKEN: undefined }, code: 4, says: 'requires a token' },
      { name: 'a wrong token', args: ['status', '01M8CP1K74QPAZMDMTNMBA2SZG'], env: { MMGRID_TOKEN: 'mmg_wrong' }, code: 4, says: 'not one this grid issued' },
      { name: 'a submitter at an admin command', args: ['token', 'list'], code: 4, says: /admin/ },
      {
        name: 'no coordinator at the address',
        args: ['status', '01M8CP1K74QPAZMDMTNMBA2SZG'],
        env: { MMGRID_COORDINATOR: `127.0.0.1:${port}` },
        code: 5,
        says: `cannot reach coordinator at 127.0.0.1:${port} (connection refused). Is it running? Set --coordinator or MMGRID_COORDINATOR.`,
      },
      // More inputs than the coordinator's --max-inputs-per-job.
      { name: 'too many inputs', args: ['submit', ...texts], code: 6, says: /--max-inputs-per-job/ },
    ];

    for (const c of cases) {
      const result = await cli(c.args, c.env ?? {});
      expect(result.code, `${c.name}: ${result.stderr}`).toBe(c.code);
      if (typeof c.says === 'string') expect(result.stderr, c.name).toContain(c.says);
      else expect(result.stderr, c.name).toMatch(c.says);
      expect(result.stderr, c.name).not.toMatch(STACK_LINE);
      expect(result.stdout, c.name).toBe('');
    }

    // --debug adds the stack trace to the same sentence.
    const debug = await cli(['--debug', 'status', '01M8CP1K74QPAZMDMTNMBA2SZG'], { MMGRID_COORDINATOR: `127.0.0.1:${port}` });
    expect(debug.code).toBe(5);
    expect(debug.stderr).toContain('cannot reach coordinator');
    expect(debug.stderr).toMatch(STACK_LINE);
  });
});
