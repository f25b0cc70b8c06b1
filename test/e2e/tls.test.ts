// TLS and mutual TLS on the coordinator's gRPC listener, end to end: certificates made here with
// openssl, a real coordinator and real worker processes, the `mmgrid` CLI as a user runs it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binOf } from '@mmgrid/cli';
import type { JobView } from '@mmgrid/client';
import type { ImageOcrOutput } from '@mmgrid/core';
import { makeTestCertificates, type TestCertificates } from '../helpers/certs.js';
import { mmgridBin, runCli } from '../helpers/cli.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeTextPng } from '../helpers/media.js';
import { eventually, exited } from '../helpers/process.js';

const GRID_ARGS = ['--lease-ms', '4000', '--heartbeat-ms', '500', '--stalled-check-ms', '1000'];
const WORKER_ARGS = ['--slots', 'selftest.sleep=2'];

const TRANSPORT_ENV = ['MMGRID_TLS', 'MMGRID_INSECURE', 'MMGRID_CA', 'MMGRID_CERT', 'MMGRID_CERT_KEY', 'MMGRID_TLS_SERVER_NAME', 'MMGRID_TLS_CERT', 'MMGRID_TLS_KEY', 'MMGRID_TLS_CLIENT_CA', 'MMGRID_COORDINATOR'];

/** Changes to the environment: no TLS or plaintext setting a developer's shell may carry, JSON logs, and `extra`. */
function cleanEnv(extra: Readonly<Record<string, string>> = {}): Record<string, string | undefined> {
  return { ...Object.fromEntries(TRANSPORT_ENV.map((name) => [name, undefined])), MMGRID_LOG_FORMAT: 'json', ...extra };
}

/** This process's environment with `cleanEnv`'s changes, for a process spawned here. */
function childEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...cleanEnv(extra) };
  for (const name of TRANSPORT_ENV) if (!(name in extra)) delete env[name];
  return env;
}

/** Resolves with everything a process printed once its output matches `pattern`; fails if it exits first. */
function outputMatching(child: ChildProcess, pattern: RegExp): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (d: Buffer): void => {
      output += d.toString();
      if (pattern.test(output)) {
        cleanup();
        resolve(output);
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`exited (code ${code}) before printing ${String(pattern)}:\n${output}`));
    };
    const cleanup = (): void => {
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', onExit);
  });
}

/** A worker process pointed at `address` with these extra arguments, its output piped. */
function spawnWorker(address: string, stateDir: string, args: readonly string[]): ChildProcess {
  return spawn(process.execPath, [binOf('@mmgrid/worker'), '--coordinator', address, '--state-dir', stateDir, '--metrics-listen', 'off', '--cpu-only', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: childEnv(),
    cwd: tmpdir(),
  });
}

let dir: string;
let certs: TestCertificates;
let png: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-tls-'));
  certs = await makeTestCertificates(dir);
  png = await writeTextPng(dir, 'sign.png', ['TLS WORKS']);
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('a coordinator serving TLS', () => {
  let tg: TestGrid;

  beforeAll(async () => {
    tg = await startTestGrid(
      {
        workers: 1,
        coordinatorArgs: [...GRID_ARGS, '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey],
        workerArgs: [...WORKER_ARGS, '--ca', certs.ca],
        env: { MMGRID_LOG_FORMAT: 'json' },
      },
      { caFile: certs.ca },
    );
  });

  afterAll(async () => {
    await tg?.stop();
  });

  it('runs a job end to end: the CLI uploads and submits over TLS, the worker fetches the input and reports over TLS', async () => {
    const cli = await runCli(['--ca', certs.ca, 'submit', png, '--wait', '--json'], cleanEnv({ MMGRID_COORDINATOR: tg.grid.address }));
    expect(cli.code, cli.stderr).toBe(0);
    // grpc-js names the IP address as the TLS server name; Node's warning about that is not for users.
    expect(cli.stderr).not.toMatch(/DeprecationWarning/);
    const job = JSON.parse(cli.stdout) as JobView;
    expect(job.state).toBe('completed');
    const ocr = job.result?.doc.inputs.find((i) => i.name === 'sign.png')?.outputs['image.ocr'] as ImageOcrOutput | undefined;
    expect(ocr?.text).toContain('TLS WORKS');
    // The same through the library; and with the scheme, checking the certificate's other name.
    expect((await tg.client.listWorkers()).workers).toHaveLength(1);
    const byScheme = await runCli(['--ca', certs.ca, '--tls-server-name', 'localhost', '--coordinator', `grpcs://${tg.grid.address}`, 'status', job.id, '--json'], cleanEnv());
    expect(byScheme.code, byScheme.stderr).toBe(0);
    expect(await tg.log('coordinator')).toMatch(/"transport":"TLS"/);
  });

  it('tells a plaintext client that the coordinator may serve TLS', async () => {
    const cli = await runCli(['status', 'nope'], cleanEnv({ MMGRID_COORDINATOR: tg.grid.address }));
    expect(cli.code).toBe(5);
    expect(cli.stderr).toMatch(/If it serves TLS, connect with --tls/);
    expect(cli.stderr).not.toMatch(/\n\s+at /);
  });

  it('tells a TLS client that does not trust the CA to give --ca', async () => {
    const cli = await runCli(['--tls', 'status', 'nope'], cleanEnv({ MMGRID_COORDINATOR: tg.grid.address }));
    expect(cli.code).toBe(5);
    expect(cli.stderr).toMatch(/cannot verify the TLS certificate of the coordinator at 127\.0\.0\.1:\d+ .*--ca/);
    const otherCa = await runCli(['--ca', certs.otherCa, 'status', 'nope'], cleanEnv({ MMGRID_COORDINATOR: tg.grid.address }));
    expect(otherCa.code).toBe(5);
    expect(otherCa.stderr).toMatch(/cannot verify the TLS certificate/);
  });

  it('refuses a CA file that is not PEM before calling (exit 2, naming the file)', async () => {
    const junk = path.join(dir, 'junk.pem');
    await writeFile(junk, 'not a certificate\n');
    const cli = await runCli(['--ca', junk, 'status', 'nope'], cleanEnv({ MMGRID_COORDINATOR: tg.grid.address }));
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain(`--ca ${junk}: not a PEM certificate`);
  });
});

describe('a coordinator requiring mutual TLS', () => {
  let tg: TestGrid;

  beforeAll(async () => {
    tg = await startTestGrid(
      {
        workers: 1,
        coordinatorArgs: [...GRID_ARGS, '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--tls-client-ca', certs.ca],
        workerArgs: [...WORKER_ARGS, '--ca', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey],
        env: { MMGRID_LOG_FORMAT: 'json' },
      },
      { caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey },
    );
  });

  afterAll(async () => {
    await tg?.stop();
  });

  it('lets a worker with a certificate from its CA connect and run tasks', async () => {
    expect((await tg.client.listWorkers()).workers).toHaveLength(1);
    const job = await tg.client.submit([], { pipeline: 'selftest', params: { tasks: '2', taskMs: '20' } });
    expect((await tg.client.waitForJob(job.id)).state).toBe('completed');
    expect(await tg.log('coordinator')).toMatch(/"transport":"mutual TLS"/);
  });

  it.each<[string, (c: TestCertificates) => string[]]>([
    ['no certificate', (c) => ['--ca', c.ca]],
    ['a certificate from another CA', (c) => ['--ca', c.ca, '--cert', c.otherClientCert, '--key', c.otherClientKey]],
  ])('refuses a worker with %s, and the worker says why', async (name, args) => {
    const worker = spawnWorker(tg.grid.address, path.join(dir, `state-${name.replaceAll(' ', '-')}`), args(certs));
    try {
      const output = await outputMatching(worker, /retrying in/);
      expect(output).toMatch(/refused the TLS connection because of this client's certificate|requires mutual TLS, give a client certificate signed by its CA with --cert and --key/);
      expect(output).not.toMatch(/"connected to coordinator"/);
    } finally {
      worker.kill('SIGTERM');
      await exited(worker);
    }
    expect((await tg.client.listWorkers()).workers).toHaveLength(1);
  });

  it('refuses a submitter without a client certificate, saying to give one', async () => {
    const cli = await runCli(['--ca', certs.ca, 'status', 'nope'], cleanEnv({ MMGRID_COORDINATOR: tg.grid.address }));
    expect(cli.code).toBe(5);
    expect(cli.stderr).toMatch(/--cert and --key/);
    const withCert = await runCli(['--ca', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey, 'status', 'nope'], cleanEnv({ MMGRID_COORDINATOR: tg.grid.address }));
    expect(withCert.code).toBe(3); // reached the coordinator: no such job
  });

  it('takes the TLS files from a worker config file, relative to that file', async () => {
    const config = path.join(path.dirname(certs.ca), 'worker.yaml');
    await writeFile(config, `ca: ${path.basename(certs.ca)}\ncert: ${path.basename(certs.clientCert)}\nkey: ${path.basename(certs.clientKey)}\n`);
    // Started in another folder, so only the config file's own folder makes the paths work.
    const worker = spawnWorker(tg.grid.address, path.join(dir, 'state-config'), ['--config', config]);
    try {
      await outputMatching(worker, /"connected to coordinator"/);
      await eventually(async () => (await tg.client.listWorkers()).workers.length === 2, 'the second worker is listed');
    } finally {
      worker.kill('SIGTERM');
      await exited(worker);
    }
  });
});

describe('a coordinator asked to serve plaintext on every interface', () => {
  let tg: TestGrid;

  beforeAll(async () => {
    tg = await startTestGrid({ workers: 1, listen: '0.0.0.0:0', coordinatorArgs: [...GRID_ARGS, '--insecure'], workerArgs: WORKER_ARGS, env: { MMGRID_LOG_FORMAT: 'json' } });
  });

  afterAll(async () => {
    await tg?.stop();
  });

  it('serves, and warns that it does so in plaintext', async () => {
    const job = await tg.client.submit([], { pipeline: 'selftest', params: { tasks: '1', taskMs: '10' } });
    expect((await tg.client.waitForJob(job.id)).state).toBe('completed');
    const log = await tg.log('coordinator');
    expect(log).toMatch(/"level":40[^\n]*serving plaintext gRPC on 0\.0\.0\.0:\d+ \(--insecure\)/);
    expect(log).toMatch(/"transport":"plaintext"/);
  });
});

describe('starting without usable TLS settings', () => {
  /** Runs the coordinator program; it must stop before reaching for Redis (nothing listens there). */
  function coordinator(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [mmgridBin(), 'coordinator', '--redis', 'redis://127.0.0.1:1', '--metrics-listen', 'off', ...args], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: childEnv(env),
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stderr }));
    });
  }

  it('refuses to serve plaintext on an address other machines reach, unless --insecure (exit 2)', async () => {
    const refused = await coordinator(['--listen', '0.0.0.0:0']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/refusing to serve plaintext gRPC on 0\.0\.0\.0:0.*--tls-cert and --tls-key.*--insecure/);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
  });

  it.each<[string, (c: TestCertificates, junk: string) => string[], RegExp]>([
    ['a missing certificate file', (c) => ['--tls-cert', path.join(path.dirname(c.ca), 'missing.pem'), '--tls-key', c.serverKey], /--tls-cert \S+missing\.pem: no such file/],
    ['a certificate file that is not PEM', (c, junk) => ['--tls-cert', junk, '--tls-key', c.serverKey], /--tls-cert \S+junk\.txt: not a PEM certificate/],
    ['a key that is not the certificate\'s', (c) => ['--tls-cert', c.serverCert, '--tls-key', c.clientKey], /--tls-key \S+client\.key: is not the private key of the certificate in \S+server\.pem/],
    ['a certificate without its key', (c) => ['--tls-cert', c.serverCert], /--tls-cert needs --tls-key/],
    ['a client CA without a certificate', (c) => ['--tls-client-ca', c.ca], /--tls-client-ca \(mutual TLS\) needs --tls-cert and --tls-key/],
    ['TLS files and --insecure', (c) => ['--tls-cert', c.serverCert, '--tls-key', c.serverKey, '--insecure'], /--insecure \(plaintext\) does not go with --tls-cert/],
  ])('refuses %s (exit 2, naming it)', async (_name, args, expected) => {
    const junk = path.join(dir, 'junk.txt');
    await writeFile(junk, 'hello\n');
    const result = await coordinator(['--listen', '127.0.0.1:0', ...args(certs, junk)]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toMatch(expected);
  });

  it('refuses a worker whose client certificate has no key, or contradictory flags (exit 2)', async () => {
    const noKey = await runCli(['worker', '--coordinator', '127.0.0.1:1', '--cert', certs.clientCert], cleanEnv());
    expect(noKey.code).toBe(2);
    expect(noKey.stderr).toMatch(/--cert needs --key too/);
    const both = await runCli(['worker', '--coordinator', '127.0.0.1:1', '--tls', '--insecure'], cleanEnv());
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--tls and --insecure .* contradict each other/);
  });
});
