import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mmgridBin, runCli } from '../helpers/cli.js';
import { exited } from '../helpers/process.js';
import { freePort } from '@mmgrid/cli';


describe('starting a worker', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-worker-start-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps trying a coordinator it cannot reach, saying so, instead of crashing', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [mmgridBin(), 'worker', '--coordinator', `127.0.0.1:${port}`, '--state-dir', path.join(dir, 'state'), '--cpu-only'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MMGRID_LOG_FORMAT: 'json' },
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const code = exited(child);
    // Two failed attempts at least: the first is retried within a second.
    const deadline = Date.now() + 15_000;
    while ((output.match(/retrying in/g) ?? []).length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(child.exitCode).toBeNull();
    expect(output).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}[^"]*; retrying in \\d+\\.\\d s`));
    // The worker's own flags and variables, which its owner would change.
    expect(output).toContain('Set --coordinator or MMGRID_COORDINATOR.');
    expect(output).toMatch(/no model servers configured; offering image\.ocr×/);
    child.kill('SIGTERM');
    expect(await code).toBe(0);
  });

  it.each<[string, string, RegExp]>([
    ['an unknown field', 'coordinator: 127.0.0.1:7070\nslot: { image.ocr: 2 }\n', /bad\.yaml:2:1: unknown field "slot"; it takes coordinator, token, name/],
    [
      'a backend field that does not exist',
      'backends:\n  chat:\n    - url: http://127.0.0.1:1\n      model: m\n      temprature: 0.5\n',
      /bad\.yaml:5:7: backends\.chat\[0\]: unknown field "temprature"; a chat backend takes name, url, model, apiKey, vision, kinds, maxTokens, temperature/,
    ],
    ['a URL that is not one', 'backends:\n  transcribe:\n    - url: localhost:8080\n', /bad\.yaml:3:7: backends\.transcribe\[0\]\.url: must be an http:\/\/ or https:\/\/ URL/],
    ['an exec kind without its prefix', 'backends:\n  exec:\n    - kind: torch\n      command: [python3, run.py]\n', /bad\.yaml:3:7: backends\.exec\[0\]\.kind: must be exec\.NAME/],
    ['a size that is not one', 'vramBudget: lots\n', /bad\.yaml:1:1: vramBudget: "lots" is not a size/],
    ['not YAML', 'backends: [\n', /bad\.yaml:\d+:\d+: not valid YAML/],
    ['TLS and plaintext together', 'tls: true\ninsecure: true\n', /bad\.yaml:2:\d+: insecure: true \(plaintext\) does not go with tls: true/],
    ['a TLS setting that is not one', 'tls: sometimes\n', /bad\.yaml:1:\d+: tls: /],
  ])('refuses a config file with %s, at its line (exit 2)', async (_name, yaml, expected) => {
    const file = path.join(dir, 'bad.yaml');
    await writeFile(file, yaml);
    const cli = await runCli(['worker', '--config', file]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(expected);
    expect(cli.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses a config file that does not exist (exit 2)', async () => {
    const cli = await runCli(['worker', '--config', path.join(dir, 'nowhere.yaml')]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('no such config file');
  });
});
