import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MmgridClient, type MmgridClientError } from '@mmgrid/client';
import { JobServiceClient, WorkerServiceClient, type CoordinatorMessage, type SubmitJobResponse, type WorkerMessage } from '@mmgrid/proto';
import { firstRunningTask } from '../helpers/audit.js';
import { mmgridBin, runCli } from '../helpers/cli.js';
import { removeDir, tempDir, writeIn } from '../helpers/files.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeTextPng } from '../helpers/media.js';
import { eventually, exited } from '../helpers/process.js';
import { refusal } from '../helpers/refusal.js';

const FAST_LEASES = ['--lease-ms', '4000', '--heartbeat-ms', '500', '--stalled-check-ms', '1000'];
const ADMIN_TOKEN = randomBytes(32).toString('base64url');

/** Opens a Connect stream with this token (or none) and says how the coordinator answered the hello. */
function connectWith(address: string, token: string | undefined): Promise<{ code: status; details: string }> {
  const client = new WorkerServiceClient(address, credentials.createInsecure());
  const md = new Metadata();
  if (token !== undefined) md.set('authorization', `Bearer ${token}`);
  const call = client.connect(md);
  return new Promise((resolve) => {
    const done = (code: status, details: string): void => {
      call.removeAllListeners();
      call.on('error', () => undefined);
      call.cancel();
      client.close();
      resolve({ code, details });
    };
    call.on('data', (message: CoordinatorMessage) => {
      if (message.msg?.$case === 'welcome') done(status.OK, 'welcomed');
    });
    call.on('error', (err: ServiceError) => done(err.code, err.details));
    const hello: WorkerMessage = {
      msg: {
        $case: 'hello',
        hello: {
          workerId: `probe-${randomBytes(4).toString('hex')}`,
          name: 'probe',
          version: 'test',
          host: undefined,
          gpus: [],
          kinds: [{ kind: 'selftest.sleep', slots: 1, models: [] }],
          warmModels: [],
          vramBudgetBytes: 0,
          running: [],
        },
      },
    };
    call.write(hello);
  });
}

/** SubmitJob naming a blob by its hash only (no upload), as a client that never held the bytes would. */
function submitBlobRef(address: string, token: string, sha256: string, size: number): Promise<SubmitJobResponse> {
  const client = new JobServiceClient(address, credentials.createInsecure());
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  const spec = { inputs: [{ name: 'notes.txt', source: { $case: 'blob' as const, blob: { sha256, size, mediaType: '', name: 'notes.txt' } } }], prompt: '', pipeline: '', priority: 0, labels: {}, params: {}, stepsJson: '' };
  return new Promise((resolve, reject) => {
    client.submitJob({ spec, idempotencyKey: '' }, md, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res);
    });
  });
}

describe('a grid with tokens', () => {
  let tg: TestGrid;
  let admin: MmgridClient;
  let media: string;
  const clients: MmgridClient[] = [];
  const clientWith = (token: string | undefined): MmgridClient => {
    const c = new MmgridClient({ address: tg.grid.address, ...(token !== undefined ? { token } : {}) });
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    media = await tempDir('mmgrid-auth-');
    // Two replicas: a revocation made on one must reach workers connected to the other.
    tg = await startTestGrid({ replicas: 2, workers: 0, coordinatorArgs: [...FAST_LEASES, '--auth', 'tokens'], env: { MMGRID_ADMIN_TOKEN: ADMIN_TOKEN } });
    admin = clientWith(ADMIN_TOKEN);
  });

  afterAll(async () => {
    for (const c of clients) c.close();
    await tg?.stop();
    await removeDir(media);
  });

  it('refuses a job and a worker without a valid token: none, a wrong one, a revoked one, an expired one', async () => {
    const revoked = await admin.createToken({ role: 'submitter', tenant: 'acme', name: 'to revoke' });
    await admin.revokeToken(revoked.info.id);
    const expired = await admin.createToken({ role: 'submitter', tenant: 'acme', expiresInMs: 1 });
    const revokedWorker = await admin.createToken({ role: 'worker' });
    await admin.revokeToken(revokedWorker.info.id);
    const expiredWorker = await admin.createToken({ role: 'worker', expiresInMs: 1 });
    // Past their one millisecond of life.
    await delay(20);

    const cases: { name: string; submitter: string | undefined; worker: string | undefined; says: string }[] = [
      { name: 'no token', submitter: undefined, worker: undefined, says: 'requires a token' },
      { name: 'a wrong token', submitter: 'mmg_not-a-token-of-this-grid', worker: 'mmg_not-a-token-of-this-grid', says: 'not one this grid issued' },
      { name: 'a revoked token', submitter: revoked.token, worker: revokedWorker.token, says: 'was revoked' },
      { name: 'an expired token', submitter: expired.token, worker: expiredWorker.token, says: 'expired at' },
    ];
    for (const c of cases) {
      const err: MmgridClientError = await refusal(clientWith(c.submitter).submit([], { pipeline: 'selftest' }));
      expect(err.code, c.name).toBe('UNAUTHENTICATED');
      expect(err.message, c.name).toContain(c.says);
      const connect = await connectWith(tg.grid.address, c.worker);
      expect(connect.code, c.name).toBe(status.UNAUTHENTICATED);
      expect(connect.details, c.name).toContain(c.says);
      // The token is never echoed back.
      if (c.submitter) expect(err.message).not.toContain(c.submitter);
    }
    const log = await tg.log('coordinator');
    expect(log).toContain('worker refused');
    for (const secret of [revoked.token, expired.token, revokedWorker.token, expiredWorker.token, ADMIN_TOKEN]) expect(log).not.toContain(secret);
  });

  it('refuses a submitter key at Connect, and a worker key at SubmitJob and the admin calls', async () => {
    const submitter = await admin.createToken({ role: 'submitter', tenant: 'acme' });
    const worker = await admin.createToken({ role: 'worker', name: 'box' });
    const connect = await connectWith(tg.grid.address, submitter.token);
    expect(connect.code).toBe(status.PERMISSION_DENIED);
    expect(connect.details).toContain('has the submitter role; this call needs the worker role');

    const asWorker = clientWith(worker.token);
    expect((await refusal(asWorker.submit([], { pipeline: 'selftest' }))).code).toBe('PERMISSION_DENIED');
    expect((await refusal(asWorker.listTokens())).code).toBe('PERMISSION_DENIED');
    expect((await refusal(clientWith(submitter.token).listWorkers())).code).toBe('PERMISSION_DENIED');
    expect((await refusal(clientWith(submitter.token).createToken({ role: 'admin' }))).code).toBe('PERMISSION_DENIED');

    // The worker token itself works at Connect.
    expect((await connectWith(tg.grid.address, worker.token)).code).toBe(status.OK);
  });

  it('keeps tenants apart: B cannot read, watch, cancel, retry, explain or download what A made', async () => {
    const a = clientWith((await admin.createToken({ role: 'submitter', tenant: 'tenant-a' })).token);
    const b = clientWith((await admin.createToken({ role: 'submitter', tenant: 'tenant-b' })).token);
    const notes = await writeIn(media, 'notes.txt', `tenant A's private notes ${randomBytes(8).toString('hex')}\n`);
    // No worker is connected: A's job stays queued.
    const job = await a.submit([{ path: notes }], {});
    expect(job.tenant).toBe('tenant-a');
    const sha = job.inputs[0]?.sha256 ?? '';
    expect(sha).toMatch(/^[0-9a-f]{64}$/);

    const notFound = async (what: string, call: Promise<unknown>): Promise<void> => {
      const err = await refusal(call);
      expect(err.code, what).toBe('NOT_FOUND');
      // The same answer as for something that never existed: nothing about A's tenant.
      expect(err.message, what).not.toMatch(/tenant-a|another tenant|not yours/);
    };
    await notFound('get', b.getJob(job.id));
    await notFound('cancel', b.cancel(job.id));
    await notFound('retry', b.retry(job.id));
    await notFound('explain', b.explain(job.id));
    await notFound('watch', (async () => {
      for await (const event of b.watch(job.id)) void event;
    })());
    const listed = await refusal(b.list({ tenant: 'tenant-a' }));
    expect(listed.code).toBe('NOT_FOUND');
    expect(listed.message).toBe((await refusal(b.list({ tenant: 'no-such-tenant' }))).message.replace('no-such-tenant', 'tenant-a'));
    expect((await b.list()).jobs).toEqual([]);
    await notFound('download', b.blobs.downloadBytes(sha));
    expect([...(await b.blobs.has([sha]))]).toEqual([]);
    // Naming A's blob in a job is as if it was never uploaded.
    const refused = await submitBlobRef(tg.grid.address, (await admin.createToken({ role: 'submitter', tenant: 'tenant-b' })).token, sha, 0).then(
      () => undefined,
      (err: ServiceError) => err,
    );
    expect(refused?.code).toBe(status.FAILED_PRECONDITION);
    expect(refused?.details).toContain('is not uploaded');

    // B's cancel changed nothing; A and an admin still see the job and the blob.
    expect((await a.getJob(job.id)).state).toBe('queued');
    expect((await admin.getJob(job.id)).tenant).toBe('tenant-a');
    expect((await a.blobs.downloadBytes(sha)).toString()).toContain("tenant A's private notes");
    expect([...(await a.blobs.has([sha]))]).toEqual([sha]);

    // B may upload the same bytes itself (it has them), is not told A has them too, and may then read them.
    const own = await b.blobs.uploadFile(notes);
    expect(own.deduplicated).toBe(false);
    expect([...(await b.blobs.has([sha]))]).toEqual([sha]);
    expect((await a.cancel(job.id)).state).toBe('cancelled');
  });

  it('revoking a worker token on one replica disconnects its worker on another, and its running task runs on another worker at once', async () => {
    const [replica1, replica2] = tg.grid.addresses;
    if (!replica1 || !replica2) throw new Error('the grid has fewer than two replicas');
    const first = await admin.createToken({ role: 'worker', name: 'first' });
    const second = await admin.createToken({ role: 'worker', name: 'second' });
    const submitter = clientWith((await admin.createToken({ role: 'submitter', tenant: 'acme' })).token);
    // The first worker alone, on replica 2, takes the task.
    const firstWorker = await tg.grid.addWorker(['--token', first.token, '--coordinator', replica2, '--slots', 'selftest.sleep=1']);
    const [firstId] = await tg.workerIds();
    const job = await submitter.submit([], { pipeline: 'selftest', params: { tasks: '1', taskMs: '8000' } });
    const running = await firstRunningTask(submitter, job.id);
    expect(running.worker).toBe(firstId);
    await tg.grid.addWorker(['--token', second.token, '--coordinator', replica1, '--slots', 'selftest.sleep=1']);

    // Revoked through replica 1.
    const revoked = await runCli(['token', 'revoke', first.info.id], { MMGRID_COORDINATOR: replica1, MMGRID_TOKEN: ADMIN_TOKEN });
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toContain(`revoked token ${first.info.id}`);

    const done = await submitter.waitForJob(job.id);
    expect(done.state).toBe('completed');
    const task = done.tasks.find((t) => t.kind === 'selftest.sleep');
    expect(task?.workerName).toBe('worker-2');
    // Handed back, not lost: no lapsed lease, no attempt used up.
    expect(task?.attempts).toBe(1);
    expect(task?.error).toBeNull();

    // The revoked worker is refused when it comes back, and says why; it keeps running (to retry later).
    await eventually(async () => (await tg.log('worker-1')).includes("refused this worker's token"), 'the revoked worker logs its refusal', 20_000);
    expect(await tg.log('worker-1')).toContain(`token ${first.info.id} was revoked`);
    expect(await tg.log('coordinator-2')).toContain('disconnecting the worker and re-queueing its tasks');
    expect(firstWorker.exitCode).toBeNull();
    const names = (await admin.listWorkers()).workers.map((w) => w.name);
    expect(names).toContain('worker-2');
    expect(names).not.toContain('worker-1');
  });

  it("gives a job's result blobs to its tenant only", async () => {
    const worker = await admin.createToken({ role: 'worker', name: 'images' });
    await tg.grid.addWorker(['--token', worker.token, '--slots', 'image.ocr=1,image.inspect=1,fusion.report=1']);
    const a = clientWith((await admin.createToken({ role: 'submitter', tenant: 'pictures-a' })).token);
    const b = clientWith((await admin.createToken({ role: 'submitter', tenant: 'pictures-b' })).token);
    const png = await writeTextPng(media, 'label.png', ['TENANT A']);
    const done = await a.waitForJob((await a.submit([{ path: png }], {})).id);
    expect(done.state).toBe('completed');
    const blobs = done.result?.blobs ?? [];
    // image.inspect's thumbnail, uploaded by the worker.
    expect(blobs.length).toBeGreaterThan(0);
    for (const blob of blobs) {
      expect((await a.blobs.downloadBytes(blob.sha256)).byteLength).toBe(blob.size);
      expect((await refusal(b.blobs.downloadBytes(blob.sha256))).code).toBe('NOT_FOUND');
    }
  });

  it('a worker started with a bad token logs a clear refusal', async () => {
    const stateDir = path.join(tg.dataDir, 'bad-worker');
    const child = spawn(process.execPath, [mmgridBin(), 'worker', '--coordinator', tg.grid.address, '--token', 'mmg_wrong', '--state-dir', stateDir, '--metrics-listen', 'off'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    try {
      await eventually(() => Promise.resolve(output.includes("refused this worker's token")), 'the worker logs the refusal', 20_000);
      expect(output).toContain('not one this grid issued');
      expect(output).toContain('mmgrid token create --role worker');
      expect(output).not.toContain('mmg_wrong');
    } finally {
      child.kill('SIGTERM');
      await exited(child);
    }
  });
});

describe('mmgrid token', () => {
  let tg: TestGrid;

  beforeAll(async () => {
    tg = await startTestGrid({ workers: 0, coordinatorArgs: [...FAST_LEASES, '--auth', 'tokens'], env: { MMGRID_ADMIN_TOKEN: ADMIN_TOKEN } });
  });

  afterAll(async () => {
    await tg?.stop();
  });

  it('creates, lists and revokes tokens; the token is printed once and works', async () => {
    const env = { ...tg.cliEnv, MMGRID_TOKEN: ADMIN_TOKEN };
    const created = await runCli(['token', 'create', '--role', 'submitter', '--tenant', 'acme', '--name', 'ci', '--expires', '30d', '--json'], env);
    expect(created.code).toBe(0);
    const info = JSON.parse(created.stdout) as { id: string; role: string; tenant: string; name: string; token: string; expiresAt: string; revokedAt: null };
    expect(info).toMatchObject({ role: 'submitter', tenant: 'acme', name: 'ci', revokedAt: null });
    expect(info.token).toMatch(/^mmg_[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(info.expiresAt) - Date.now()).toBeGreaterThan(29 * 86_400_000);

    // Human output: the token alone on stdout, what it is on stderr.
    const plain = await runCli(['token', 'create', '--role', 'worker', '--name', 'gpu-box'], env);
    expect(plain.code).toBe(0);
    expect(plain.stdout.trim()).toMatch(/^mmg_[A-Za-z0-9_-]{43}$/);
    expect(plain.stderr).toContain('shown only this once');

    // The new submitter token acts for its tenant, whatever tenant the caller names.
    const submitted = await runCli(['submit', '--pipeline', 'selftest', '--json'], { ...tg.cliEnv, MMGRID_TOKEN: info.token, MMGRID_TENANT: 'someone-else' });
    expect(submitted.code).toBe(0);
    expect((JSON.parse(submitted.stdout) as { tenant: string }).tenant).toBe('acme');

    const listed = await runCli(['token', 'list', '--json'], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).not.toContain(info.token);
    const tokens = JSON.parse(listed.stdout) as { id: string; name: string }[];
    expect(tokens.map((t) => t.name)).toEqual(['ci', 'gpu-box']);

    const table = await runCli(['token', 'list'], env);
    expect(table.stdout).toMatch(new RegExp(`${info.id}\\s+submitter\\s+acme`));

    const revoked = await runCli(['token', 'revoke', info.id], env);
    expect(revoked.code).toBe(0);
    const after = await runCli(['status', '01J0000000000000000000000'], { ...tg.cliEnv, MMGRID_TOKEN: info.token });
    expect(after.code).toBe(4);
    expect(after.stderr).toContain(`token ${info.id} was revoked`);
    expect(JSON.parse((await runCli(['token', 'list', '--json'], env)).stdout)).toHaveLength(1);
    const all = JSON.parse((await runCli(['token', 'list', '--all', '--json'], env)).stdout) as { id: string; revokedAt: string | null }[];
    expect(all.find((t) => t.id === info.id)?.revokedAt).not.toBeNull();
  });

  it('refuses bad input and callers that are not admins, saying what is allowed', async () => {
    const env = { ...tg.cliEnv, MMGRID_TOKEN: ADMIN_TOKEN };
    const cases: { args: string[]; env: Record<string, string>; code: number; says: string }[] = [
      { args: ['token', 'create', '--role', 'root'], env, code: 2, says: 'submitter, worker, admin' },
      { args: ['token', 'create'], env, code: 2, says: "'--role <role>' not specified" },
      { args: ['token', 'create', '--role', 'worker', '--tenant', 'acme'], env, code: 2, says: '--tenant applies to submitter tokens only' },
      { args: ['token', 'create', '--role', 'worker', '--expires', '3 days'], env, code: 2, says: '--expires must be a duration such as 30d' },
      { args: ['token', 'create', '--role', 'submitter', '--tenant', 'Not A Tenant'], env, code: 2, says: 'is not a tenant name' },
      { args: ['token', 'revoke', 'tok_0000000000000000'], env, code: 3, says: 'token tok_0000000000000000 not found' },
      { args: ['token', 'revoke', 'nope'], env, code: 2, says: 'is not a token id' },
      { args: ['token', 'list'], env: { ...tg.cliEnv, MMGRID_TOKEN: '' }, code: 4, says: 'requires a token' },
      { args: ['token', 'list'], env: { ...tg.cliEnv, MMGRID_TOKEN: 'mmg_wrong' }, code: 4, says: 'not one this grid issued' },
    ];
    for (const c of cases) {
      const res = await runCli(c.args, c.env);
      expect(res.code, c.args.join(' ')).toBe(c.code);
      expect(res.stderr, c.args.join(' ')).toContain(c.says);
    }
    const submitter = JSON.parse((await runCli(['token', 'create', '--role', 'submitter', '--json'], env)).stdout) as { token: string; tenant: string };
    expect(submitter.tenant).toBe('default');
    const denied = await runCli(['token', 'create', '--role', 'admin'], { ...tg.cliEnv, MMGRID_TOKEN: submitter.token });
    expect(denied.code).toBe(4);
    expect(denied.stderr).toContain('this call needs the admin role');
  });
});

describe('mmgrid coordinator --auth', () => {
  it('refuses a bad mode or bootstrap admin token before starting, without printing the token', async () => {
    const base = ['coordinator', '--redis', 'redis://127.0.0.1:1', '--listen', '127.0.0.1:0', '--metrics-listen', 'off'];
    const short = 'too-short-secret';
    const long = randomBytes(32).toString('base64url');
    const cases: { args: string[]; env: Record<string, string>; code: number; says: string; secret?: string }[] = [
      { args: [...base, '--auth', 'tokens'], env: { MMGRID_ADMIN_TOKEN: short }, code: 2, says: 'MMGRID_ADMIN_TOKEN must be at least 24 characters', secret: short },
      { args: [...base, '--auth', 'open'], env: { MMGRID_ADMIN_TOKEN: long }, code: 2, says: 'MMGRID_ADMIN_TOKEN must be unset on an open grid', secret: long },
      { args: [...base, '--auth', 'ldap'], env: {}, code: 1, says: 'Allowed choices are open, tokens' },
      { args: base, env: { MMGRID_AUTH: 'none' }, code: 1, says: 'Allowed choices are open, tokens' },
    ];
    for (const c of cases) {
      const res = await runCli(c.args, c.env);
      expect(res.code, c.says).toBe(c.code);
      expect(res.stderr, c.says).toContain(c.says);
      if (c.secret) expect(res.stderr + res.stdout).not.toContain(c.secret);
    }
  });
});
