import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '@mmgrid/client';
import type { QueueStats, WorkerView } from '@mmgrid/proto';
import { jobOf, runCli, type CliResult } from '../helpers/cli.js';
import { removeDir, tempDir, writeIn } from '../helpers/files.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';

const FAST_LEASES = ['--lease-ms', '4000', '--heartbeat-ms', '500', '--stalled-check-ms', '1000'];
const ADMIN_TOKEN = randomBytes(32).toString('base64url');
const TENANT = 'fleet-tenant';
/** More VRAM than any worker of the test grid has (none has a GPU): the task waits. */
const UNRUNNABLE = ['--pipeline', 'selftest', '--param', 'tasks=1', '--param', 'minVramMiB=24576'];

interface JobPage {
  readonly jobs: JobView[];
  readonly nextPageToken: string | null;
}

function pageOf(cli: CliResult): JobPage {
  expect(cli.code, cli.stderr).toBe(0);
  return JSON.parse(cli.stdout) as JobPage;
}

/** The order in which these ids appear in a text (ids it lacks are left out). */
function orderIn(text: string, ids: readonly string[]): string[] {
  return ids
    .filter((id) => text.includes(id))
    .sort((a, b) => text.indexOf(a) - text.indexOf(b));
}

describe('mmgrid list, workers and queues', () => {
  let tg: TestGrid;
  let dir: string;
  let asAdmin: Record<string, string>;
  let asSubmitter: Record<string, string>;
  /** The submitter's jobs, oldest first: a text job, a selftest that completed, one that failed, one that waits. */
  let text: JobView;
  let completed: JobView;
  let failed: JobView;
  let waiting: JobView;
  const cancelAtEnd: string[] = [];

  const submit = async (args: readonly string[], env: Record<string, string>, code = 0): Promise<JobView> => {
    const cli = await runCli(['submit', ...args, '--json', '-q'], env);
    expect(cli.code, cli.stderr).toBe(code);
    return jobOf(cli);
  };

  beforeAll(async () => {
    dir = await tempDir('mmgrid-cli-fleet-');
    // Tokens on: the bootstrap admin token lists the fleet, and is the workers' token too.
    tg = await startTestGrid(
      { workers: 2, coordinatorArgs: [...FAST_LEASES, '--auth', 'tokens'], env: { MMGRID_ADMIN_TOKEN: ADMIN_TOKEN, MMGRID_TOKEN: ADMIN_TOKEN } },
      { token: ADMIN_TOKEN },
    );
    const submitter = await tg.client.createToken({ role: 'submitter', tenant: TENANT, name: 'fleet test' });
    asAdmin = { ...tg.cliEnv, MMGRID_TOKEN: ADMIN_TOKEN };
    asSubmitter = { ...tg.cliEnv, MMGRID_TOKEN: submitter.token };

    const notes = await writeIn(dir, 'notes.txt', 'The grid lists the jobs of a tenant, newest first. Each page follows the last.');
    text = await submit([notes, '--wait'], asSubmitter);
    completed = await submit(['--pipeline', 'selftest', '--param', 'taskMs=0', '--wait'], asSubmitter);
    failed = await submit(['--pipeline', 'selftest', '--param', 'taskMs=0', '--param', 'failAttempts=100', '--wait'], asSubmitter, 1);
    waiting = await submit(UNRUNNABLE, asSubmitter);
    cancelAtEnd.push(waiting.id);
    expect([text.state, completed.state, failed.state, waiting.state]).toEqual(['completed', 'completed', 'failed', 'queued']);
  });

  afterAll(async () => {
    for (const id of cancelAtEnd) await tg?.client.cancel(id).catch(() => undefined);
    await tg?.stop();
    await removeDir(dir);
  });

  it('lists the caller\'s jobs newest first, as a table and as JSON', async () => {
    const newestFirst = [waiting.id, failed.id, completed.id, text.id];
    const human = await runCli(['list'], asSubmitter);
    expect(human.code, human.stderr).toBe(0);
    const lines = human.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+STATE\s+PIPELINE\s+INPUTS\s+CREATED\s+AGE\/DURATION$/);
    expect(orderIn(human.stdout, newestFirst)).toEqual(newestFirst);
    expect(human.stdout).toMatch(new RegExp(`^${text.id}\\s+completed\\s+describe\\s+notes\\.txt\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ\\s+took \\S+$`, 'm'));
    expect(human.stdout).toMatch(new RegExp(`^${failed.id}\\s+failed\\s+selftest\\s+-\\s+`, 'm'));
    expect(human.stdout).toMatch(new RegExp(`^${waiting.id}\\s+queued\\s+selftest\\s+-\\s+\\S+ \\S+\\s+(\\d+(\\.\\d)?(ms|s)|\\d+m\\d\\ds)$`, 'm'));
    expect(human.stderr).not.toContain('more:');

    const json = pageOf(await runCli(['list', '--json'], asSubmitter));
    expect(json.jobs.map((j) => j.id)).toEqual(newestFirst);
    expect(json.nextPageToken).toBeNull();
    const listedText = json.jobs.find((j) => j.id === text.id);
    expect(listedText).toMatchObject({ state: 'completed', tenant: TENANT, pipeline: 'describe', createdAt: text.createdAt });
    expect(listedText?.inputs.map((i) => [i.name, i.modality])).toEqual([['notes.txt', 'text']]);
    expect(json.jobs.find((j) => j.id === failed.id)?.error?.message).toBeTruthy();
  });

  it('filters by state (repeated or comma-separated) and by pipeline', async () => {
    expect(pageOf(await runCli(['list', '--state', 'failed', '--json'], asSubmitter)).jobs.map((j) => j.id)).toEqual([failed.id]);
    expect(pageOf(await runCli(['list', '--state', 'failed,queued', '--json'], asSubmitter)).jobs.map((j) => j.id)).toEqual([waiting.id, failed.id]);
    expect(pageOf(await runCli(['list', '--state', 'completed', '--state', 'queued', '--json'], asSubmitter)).jobs.map((j) => j.id)).toEqual([waiting.id, completed.id, text.id]);
    expect(pageOf(await runCli(['list', '--pipeline', 'selftest', '--json'], asSubmitter)).jobs.map((j) => j.id)).toEqual([waiting.id, failed.id, completed.id]);
    expect(pageOf(await runCli(['list', '--pipeline', 'describe', '--state', 'completed', '--json'], asSubmitter)).jobs.map((j) => j.id)).toEqual([text.id]);
    const human = await runCli(['list', '--state', 'failed'], asSubmitter);
    expect(human.stdout).toContain(failed.id);
    expect(human.stdout).not.toContain(completed.id);
    const none = await runCli(['list', '--state', 'running'], asSubmitter);
    expect(none.code).toBe(0);
    expect(none.stdout.trim()).toBe('no jobs');
  });

  it('pages with --limit and --page-token, each job exactly once even when a job is submitted between pages', async () => {
    const seen: string[] = [];
    let token: string | null = null;
    let late: JobView | undefined;
    for (let page = 0; page < 10; page += 1) {
      const cli = await runCli(['list', '--limit', '1', '--json', ...(token === null ? [] : ['--page-token', token])], asSubmitter);
      const { jobs, nextPageToken } = pageOf(cli);
      expect(jobs.length).toBeLessThanOrEqual(1);
      seen.push(...jobs.map((j) => j.id));
      token = nextPageToken;
      if (page === 1) {
        late = await submit(UNRUNNABLE, asSubmitter);
        cancelAtEnd.push(late.id);
      }
      if (token === null) break;
    }
    expect(token).toBeNull();
    // The job created while paging is newer than the first page: it is not listed, and none is listed twice.
    expect(seen).toEqual([waiting.id, failed.id, completed.id, text.id]);

    // People get the next page's command on stderr, with the filters.
    const human = await runCli(['list', '--state', 'completed', '--limit', '1'], asSubmitter);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain(completed.id);
    const hint = /^more: (mmgrid list --state completed --limit 1 --page-token (\S+))$/m.exec(human.stderr);
    expect(hint, human.stderr).not.toBeNull();
    const next = await runCli(['list', '--state', 'completed', '--limit', '1', '--page-token', hint?.[2] ?? ''], asSubmitter);
    expect(next.stdout).toContain(text.id);
    expect(next.stdout).not.toContain(completed.id);
    expect(next.stderr).not.toContain('more:');

    // --all follows every page (the late job included now).
    const all = pageOf(await runCli(['list', '--all', '--limit', '1', '--json'], asSubmitter));
    expect(all.jobs.map((j) => j.id)).toEqual([late?.id, waiting.id, failed.id, completed.id, text.id]);
    expect(all.nextPageToken).toBeNull();
    const allHuman = await runCli(['list', '--all', '--limit', '2'], asSubmitter);
    expect(orderIn(allHuman.stdout, [late?.id ?? '', text.id])).toEqual([late?.id, text.id]);
    expect(allHuman.stderr).not.toContain('more:');
  });

  it('refuses a bad --state, --limit or --page-token with a usage error naming what is allowed, exit 2', async () => {
    const state = await runCli(['list', '--state', 'done'], asSubmitter);
    expect(state.code).toBe(2);
    expect(state.stderr).toContain('--state "done" is not a job state; the states are queued, running, completed, failed, cancelled');
    expect(state.stderr).not.toMatch(/^\s+at /m);
    expect(state.stdout).toBe('');
    const mixed = await runCli(['list', '--state', 'failed,finished'], asSubmitter);
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain('--state "finished" is not a job state');
    const limit = await runCli(['list', '--limit', '0'], asSubmitter);
    expect(limit.code).toBe(2);
    expect(limit.stderr).toContain('--limit must be a whole number from 1 to 500');
    const token = await runCli(['list', '--page-token', 'not-a-token'], asSubmitter);
    expect(token.code).toBe(2);
    expect(token.stderr).toContain('page_token is not one this server issued');
  });

  it('lets an admin list a tenant\'s jobs with --tenant, showing the tenant', async () => {
    const own = await runCli(['list'], asAdmin);
    expect(own.code, own.stderr).toBe(0);
    expect(own.stdout.trim()).toBe('no jobs');
    const theirs = await runCli(['--tenant', TENANT, 'list', '--state', 'failed'], asAdmin);
    expect(theirs.code, theirs.stderr).toBe(0);
    expect(theirs.stdout).toMatch(/^ID\s+STATE\s+PIPELINE\s+TENANT\s+INPUTS\s+CREATED\s+AGE\/DURATION$/m);
    expect(theirs.stdout).toMatch(new RegExp(`^${failed.id}\\s+failed\\s+selftest\\s+${TENANT}\\s+`, 'm'));
  });

  it('lists the workers with their GPUs, VRAM, kinds, slots, state and last heartbeat', async () => {
    const json = await runCli(['workers', '--json'], asAdmin);
    expect(json.code, json.stderr).toBe(0);
    const workers = JSON.parse(json.stdout) as WorkerView[];
    expect(workers).toHaveLength(2);
    expect(new Set(workers.map((w) => w.workerId))).toEqual(new Set(await tg.workerIds()));

    const human = await runCli(['workers'], asAdmin);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^NAME\s+ID\s+GPUS\s+VRAM FREE\/TOTAL\s+SLOTS\s+STATE\s+LAST HEARTBEAT\s+KINDS$/m);
    for (const w of workers) {
      const row = human.stdout.split('\n').find((line) => line.includes(w.workerId)) ?? '';
      expect(row.startsWith(w.name)).toBe(true);
      expect(row).toMatch(/\scpu\s+-\s+\d+\/\d+\s+ready\s+(just now|\d+s ago)\s+\S*selftest\.sleep\S*$/);
    }
  });

  it('shows the queues per kind and per queue while a task waits, with the oldest wait', async () => {
    const json = await runCli(['queues', '--json'], asAdmin);
    expect(json.code, json.stderr).toBe(0);
    const queues = JSON.parse(json.stdout) as QueueStats[];
    const held = queues.filter((q) => q.kind === 'selftest.sleep' && q.tenant === TENANT && q.waiting > 0);
    expect(held.length).toBeGreaterThan(0);
    expect(held.reduce((n, q) => n + q.waiting, 0)).toBeGreaterThanOrEqual(1);
    expect(Math.max(...held.map((q) => q.oldestWaitingAgeMs))).toBeGreaterThan(0);
    expect(typeof held[0]?.queue).toBe('string');

    const human = await runCli(['queues'], asAdmin);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^KIND\s+WAITING\s+ACTIVE\s+DELAYED\s+FAILED\s+OLDEST$/m);
    const row = /^selftest\.sleep\s+(\d+)\s+\d+\s+\d+\s+\d+\s+(\S+)$/m.exec(human.stdout);
    expect(row, human.stdout).not.toBeNull();
    expect(Number(row?.[1])).toBeGreaterThanOrEqual(1);
    expect(row?.[2]).toMatch(/^(\d+ms|\d+\.\ds|\d+s|\d+m\d\ds)$/);

    const byQueue = await runCli(['queues', '--by-queue'], asAdmin);
    expect(byQueue.code, byQueue.stderr).toBe(0);
    expect(byQueue.stdout).toMatch(/^QUEUE\s+KIND\s+CLASS\s+TENANT\s+WAITING\s+ACTIVE\s+DELAYED\s+FAILED\s+OLDEST$/m);
    const queueRow = byQueue.stdout.split('\n').find((line) => line.startsWith(held[0]?.queue ?? '?')) ?? '';
    expect(queueRow).toMatch(new RegExp(`^\\S+\\s+selftest\\.sleep\\s+\\S+\\s+${TENANT}\\s+[1-9]\\d*\\s+\\d+\\s+\\d+\\s+\\d+\\s+\\S*\\d\\S*$`));
  });

  it('refuses the fleet views to a submitter token, exit 4, naming the role they need', async () => {
    for (const command of ['queues', 'workers']) {
      const cli = await runCli([command], asSubmitter);
      expect(cli.code, command).toBe(4);
      expect(cli.stderr, command).toMatch(/has the submitter role; this call needs the admin role/);
      expect(cli.stderr, command).not.toMatch(/^\s+at /m);
      expect(cli.stdout, command).toBe('');
    }
  });
});
