import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MmgridClient, type JobView, type MmgridClientError } from '@mmgrid/client';
import { runCli } from '../helpers/cli.js';
import { removeDir, tempDir, writeIn } from '../helpers/files.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { refusal } from '../helpers/refusal.js';

const MiB = 1024 * 1024;
/** The CLI's exit code for a limit or quota (packages/cli/src/exit-codes.ts). */
const EXIT_LIMIT = 6;
const TERMINAL = ['completed', 'failed', 'cancelled'];

/** Small limits, so that each is easy to exceed once. */
const LIMIT_ARGS = [
  ['--max-inputs-per-job', '3'],
  ['--max-prompt-chars', '100'],
  ['--max-text-input-chars', '200'],
  ['--max-blob-bytes', '4096'],
  ['--max-message-bytes', String(2 * MiB)],
  ['--max-shards', '5'],
  ['--max-live-jobs-per-tenant', '2'],
  // A token every 10 s, 5 at once: a test's few submissions in a row never refill one.
  ['--submit-rate-per-tenant', '0.1'],
  ['--submit-burst-per-tenant', '5'],
].flat();

const selftest = (taskMs: number, tasks = 1) => ({ pipeline: 'selftest', params: { tasks: String(tasks), taskMs: String(taskMs) } });

describe('limits', () => {
  let tg: TestGrid;
  let media: string;
  const clients: MmgridClient[] = [];
  /** A client acting for `tenant` (an open grid: the tenant is named, not proven). */
  const as = (tenant: string, maxMessageBytes?: number): MmgridClient => {
    const c = new MmgridClient({ address: tg.grid.address, tenant, ...(maxMessageBytes !== undefined ? { maxMessageBytes } : {}) });
    clients.push(c);
    return c;
  };
  /** A job of another tenant, submitted before any limit is exceeded, that must not notice them. */
  let steady: JobView;

  beforeAll(async () => {
    media = await tempDir('mmgrid-limits-');
    // One tenant with a quota of its own.
    const tenants = await writeIn(media, 'tenants.yaml', 'vip:\n  maxLiveJobs: 3\n');
    tg = await startTestGrid({
      workers: 2,
      coordinatorArgs: ['--lease-ms', '4000', '--heartbeat-ms', '500', '--stalled-check-ms', '1000', ...LIMIT_ARGS, '--tenant-limits', tenants],
      workerArgs: ['--slots', 'selftest.sleep=4,text.stats=2'],
    });
    steady = await as('steady').submit([], selftest(8_000, 2));
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await tg?.stop();
    await removeDir(media);
  });

  it('refuses a job over each of its size limits with RESOURCE_EXHAUSTED naming the limit, its maximum and its flag', async () => {
    const a = as('sizes');
    const cases: { name: string; submit: () => Promise<unknown>; limit: string; message: string }[] = [
      {
        name: 'inputs per job',
        submit: () => a.submit(['a', 'b', 'c', 'd'].map((name) => ({ name, text: `text ${name}` }))),
        limit: 'maxInputsPerJob',
        message: 'the job has 4 inputs; this grid allows at most 3 (--max-inputs-per-job)',
      },
      {
        name: 'prompt size',
        submit: () => a.submit([], { prompt: 'p'.repeat(101) }),
        limit: 'maxPromptChars',
        message: 'the prompt has 101 characters; this grid allows at most 100 characters (--max-prompt-chars)',
      },
      {
        name: 'text input size',
        submit: () => a.submit([{ name: 'notes', text: 't'.repeat(201) }]),
        limit: 'maxTextInputChars',
        message: 'inputs[0] "notes" is a text of 201 characters; this grid allows at most 200 characters (--max-text-input-chars)',
      },
      {
        name: 'blob size',
        submit: async () => a.submit([{ path: await writeIn(media, 'big.bin', Buffer.alloc(5000, 7)) }]),
        limit: 'maxBlobBytes',
        message: '"big.bin" has 5000 bytes; this grid allows at most 4096 bytes (--max-blob-bytes)',
      },
    ];
    for (const c of cases) {
      const err: MmgridClientError = await refusal(c.submit());
      expect(err.code, c.name).toBe('RESOURCE_EXHAUSTED');
      expect(err.limit, c.name).toBe(c.limit);
      expect(err.message, c.name).toBe(c.message);
    }
    // A message over the gRPC limit is refused by gRPC itself, before any handler reads it.
    const big = as('sizes', 64 * MiB);
    const err = await refusal(big.submit([{ name: 'huge', text: 'h'.repeat(3 * MiB) }]));
    expect(err.code).toBe('RESOURCE_EXHAUSTED');
    expect(err.limit).toBe('maxMessageBytes');
    expect(err.message).toMatch(/larger than max \(\d+ vs\.? 2097152\)/);
    expect(err.message).toContain('--max-message-bytes');
    // Nothing of the refused jobs was stored, and the other tenant's job is still under way.
    expect((await a.list()).jobs).toEqual([]);
    expect(TERMINAL).not.toContain((await as('steady').getJob(steady.id)).state);
  });

  it('makes the CLI say which limit refused it and exit with the limit code', async () => {
    const env = { ...tg.cliEnv, MMGRID_TENANT: 'cli' };
    const files = await Promise.all(['a', 'b', 'c', 'd'].map((n) => writeIn(media, `${n}.txt`, `text ${n}`)));
    const tooMany = await runCli(['submit', ...files], env);
    expect(tooMany.code).toBe(EXIT_LIMIT);
    // After the notes of its uploads, one sentence, and no stack trace.
    expect(tooMany.stderr).toMatch(/\nmmgrid: the job has 4 inputs; this grid allows at most 3 \(--max-inputs-per-job\)\n$/);
    expect(tooMany.stderr).not.toMatch(/\n\s+at /);
    expect(tooMany.stdout).toBe('');

    // A job file over the CLI's own limit is refused before it is read or parsed.
    const yaml = `prompt: "${'x'.repeat(300)}"\n`;
    const jobFile = await writeIn(media, 'job.yaml', yaml);
    const tooLarge = await runCli(['submit', '-f', jobFile], { ...env, MMGRID_MAX_JOB_FILE_BYTES: '200' });
    expect(tooLarge.code).toBe(EXIT_LIMIT);
    expect(tooLarge.stderr).toBe(`mmgrid: ${jobFile} has ${Buffer.byteLength(yaml)} bytes; job files are at most 200 bytes (MMGRID_MAX_JOB_FILE_BYTES sets it)\n`);
    // Under that limit the same file reaches the coordinator, whose prompt limit refuses it.
    const prompt = await runCli(['submit', '-f', jobFile], env);
    expect(prompt.code).toBe(EXIT_LIMIT);
    expect(prompt.stderr).toContain('the prompt has 300 characters; this grid allows at most 100 characters (--max-prompt-chars)');
  });

  it('fails a job whose input would be cut into more shards than allowed, saying so', async () => {
    // Some 40 sentences of about 75 characters, in chunks of at most 100: far over 5 shards.
    const text = Array.from({ length: 40 }, (_, i) => `Sentence ${i} is here, and it goes on for a while so that it is not short. `).join('');
    const file = await writeIn(media, 'long.txt', text);
    const client = as('long');
    const job = await client.submit([{ path: file }], { params: { chunkChars: '100' } });
    const done = await client.waitForJob(job.id);
    expect(TERMINAL).toContain(done.state);
    const refused = done.tasks.find((t) => t.error?.code === 'TOO_MANY_SHARDS');
    expect(refused?.error?.message).toMatch(/^the input would be cut into \d+ shards; this grid allows at most 5 per input \(--max-shards\)$/);
    expect(done.tasks.filter((t) => t.shard !== null)).toEqual([]);
  });

  it('holds a tenant to its quota of live jobs, and takes its jobs again as they end', async () => {
    const q = as('quota');
    const short = await q.submit([], selftest(300));
    const long = await q.submit([], selftest(120_000));
    const full = await refusal(q.submit([], selftest(0)));
    expect(full.code).toBe('RESOURCE_EXHAUSTED');
    expect(full.limit).toBe('maxLiveJobsPerTenant');
    expect(full.message).toBe('tenant quota has 2 jobs queued or running; this grid allows at most 2 per tenant (--max-live-jobs-per-tenant); submit again once one of them has ended');
    // Another tenant is not held back by this one.
    const neighbour = await as('neighbour').submit([], selftest(0));

    // One completes: room for one more, and no more.
    expect((await q.waitForJob(short.id)).state).toBe('completed');
    const third = await q.submit([], selftest(0));
    expect((await refusal(q.submit([], selftest(0)))).limit).toBe('maxLiveJobsPerTenant');
    // One is cancelled: room again.
    await q.cancel(long.id, 'making room');
    expect((await q.waitForJob(third.id)).state).toBe('completed');
    const fourth = await q.submit([], selftest(0));
    expect((await q.waitForJob(fourth.id)).state).toBe('completed');
    // Refused submissions left no job behind.
    expect((await q.list()).jobs.map((j) => j.id).sort()).toEqual([short.id, long.id, third.id, fourth.id].sort());
    expect((await as('neighbour').waitForJob(neighbour.id)).state).toBe('completed');

    // A tenant with a quota of its own (--tenant-limits) has that one.
    const vip = as('vip');
    const held = [await vip.submit([], selftest(120_000)), await vip.submit([], selftest(120_000)), await vip.submit([], selftest(120_000))];
    const vipFull = await refusal(vip.submit([], selftest(0)));
    expect(vipFull.limit).toBe('maxLiveJobsPerTenant');
    expect(vipFull.message).toContain('tenant vip has 3 jobs queued or running; this grid allows tenant vip at most 3 (--tenant-limits)');
    for (const job of held) await vip.cancel(job.id, 'done');
  });

  it('counts a retried job against the quota again, refusing the retry while the quota is full', async () => {
    const r = as('retrier');
    const failing = await r.submit([], { pipeline: 'selftest', params: { tasks: '1', taskMs: '0', failAttempts: '100' } });
    expect((await r.waitForJob(failing.id)).state).toBe('failed');
    const holds = [await r.submit([], selftest(120_000)), await r.submit([], selftest(120_000))];
    const full = await refusal(r.retry(failing.id));
    expect(full.code).toBe('RESOURCE_EXHAUSTED');
    expect(full.limit).toBe('maxLiveJobsPerTenant');
    expect(full.message).toMatch(/^tenant retrier has 2 jobs queued or running; .*\(--max-live-jobs-per-tenant\); retry the job once one of them has ended$/);
    // The refused retry changed nothing.
    expect((await r.getJob(failing.id)).state).toBe('failed');
    await r.cancel(holds[0]?.id ?? '', 'making room');
    expect((await r.retry(failing.id)).state).toBe('queued');
    for (const id of [failing.id, holds[1]?.id ?? '']) await r.cancel(id, 'done');
  });

  it('paces a tenant\'s submissions, says when to try again, and takes the submission then', async () => {
    const hasty = as('hasty');
    // The burst of five, two at a time (its quota of live jobs is two).
    for (let i = 0; i < 5; i += 1) await hasty.waitForJob((await hasty.submit([], selftest(0))).id);
    const paced = await refusal(hasty.submit([], selftest(0)));
    expect(paced.code).toBe('RESOURCE_EXHAUSTED');
    expect(paced.limit).toBe('submitRatePerTenant');
    expect(paced.message).toMatch(/^tenant hasty is submitting jobs faster than this grid allows: 0\.1 a second, 5 at once \(--submit-rate-per-tenant, --submit-burst-per-tenant\); try again in [\d.]+ m?s$/);
    expect(paced.retryAfterMs).toBeGreaterThan(0);

    // The CLI prints the same sentence and the limit's exit code.
    const cli = await runCli(['submit', '--pipeline', 'selftest'], { ...tg.cliEnv, MMGRID_TENANT: 'hasty' });
    expect(cli.code).toBe(EXIT_LIMIT);
    expect(cli.stderr).toMatch(/^mmgrid: tenant hasty is submitting jobs faster than this grid allows: .*try again in/);

    // After the wait it names, the submission goes through (asked again if a little early: no
    // timing is asserted).
    let wait = paced.retryAfterMs ?? 1_000;
    let accepted: JobView | undefined;
    for (let i = 0; i < 10 && !accepted; i++) {
      await delay(wait);
      try {
        accepted = await hasty.submit([], selftest(0));
      } catch (err) {
        const again = err as MmgridClientError;
        if (again.limit !== 'submitRatePerTenant') throw err;
        wait = again.retryAfterMs ?? 1_000;
      }
    }
    expect(accepted).toBeDefined();
    expect((await hasty.list()).jobs).toHaveLength(6);
  });

  it('left the job submitted before every refusal to run to its end', async () => {
    const done = await as('steady').waitForJob(steady.id);
    expect(done.state).toBe('completed');
    expect(done.tasks.every((t) => t.state === 'succeeded')).toBe(true);
  });
});

describe('mmgrid coordinator limit options', () => {
  it('refuses a limit out of its range before starting, naming its flag, variable and range', async () => {
    const dir = await tempDir('mmgrid-tenant-limits-');
    const badTenants = await writeIn(dir, 'tenants.yaml', 'acme:\n  maxLiveJobs: 0\n');
    const base = ['coordinator', '--redis', 'redis://127.0.0.1:1', '--listen', '127.0.0.1:0', '--metrics-listen', 'off'];
    const cases: { args: string[]; env: Record<string, string>; code: number; says: string }[] = [
      {
        args: [...base, '--max-live-jobs-per-tenant', '0'],
        env: {},
        code: 2,
        says: 'mmgrid coordinator: --max-live-jobs-per-tenant (MMGRID_MAX_LIVE_JOBS_PER_TENANT) must be an integer from 1 to 10000000 (got 0)',
      },
      {
        args: base,
        env: { MMGRID_SUBMIT_RATE_PER_TENANT: '0' },
        code: 2,
        says: 'mmgrid coordinator: --submit-rate-per-tenant (MMGRID_SUBMIT_RATE_PER_TENANT) must be a number of submissions per second from 0.001 to 100000 (got 0)',
      },
      { args: [...base, '--max-message-bytes', '1024'], env: {}, code: 2, says: '--max-message-bytes (MMGRID_MAX_MESSAGE_BYTES) must be an integer from 2097152 to 536870912' },
      { args: base, env: { MMGRID_MAX_INPUTS_PER_JOB: 'many' }, code: 1, says: '--max-inputs-per-job must be a whole number' },
      { args: [...base, '--tenant-limits', badTenants], env: {}, code: 2, says: `--tenant-limits ${badTenants}: acme.maxLiveJobs must be an integer from 1 to 10000000 (got 0)` },
      { args: base, env: { MMGRID_TENANT_LIMITS: path.join(dir, 'missing.yaml') }, code: 2, says: `--tenant-limits ${path.join(dir, 'missing.yaml')}: no such file` },
    ];
    for (const c of cases) {
      const res = await runCli(c.args, c.env);
      expect(res.code, c.says).toBe(c.code);
      expect(res.stderr, c.says).toContain(c.says);
    }
    await removeDir(dir);
  });
});
