import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobRef } from '@mmgrid/core';
import { jobOf, runCli } from '../helpers/cli.js';
import { removeDir, tempDir, writeIn } from '../helpers/files.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeTextPng } from '../helpers/media.js';

/** The output the echo command prints (see echo.mjs below). */
interface EchoOutput {
  argv: string[];
  inputSha256: string;
  params: Record<string, unknown>;
  tokenSeen: boolean;
  /** Variables of the worker's own (MMGRID_*, not the task's) that the command saw. */
  workerEnvSeen: string[];
  cwd: string;
  files: BlobRef[];
}

// A command as a GPU owner would write one: it reads its input, prints one JSON object, and
// writes a file to {outdir}.
const ECHO_SCRIPT = `import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
const [input, type, message, outdir] = process.argv.slice(2);
const TASK_VARIABLES = ['MMGRID_PARAMS', 'MMGRID_TASK_ID', 'MMGRID_JOB_ID', 'MMGRID_KIND', 'MMGRID_ATTEMPT', 'MMGRID_OUTDIR', 'MMGRID_INPUT', 'MMGRID_INPUT_NAME', 'MMGRID_INPUT_TYPE'];
console.error('progress 0.5 hashing');
const inputSha256 = createHash('sha256').update(readFileSync(input)).digest('hex');
writeFileSync(outdir + '/echo.txt', message);
console.log('echo: done');
console.log(JSON.stringify({
  argv: process.argv.slice(2),
  inputSha256,
  params: JSON.parse(process.env.MMGRID_PARAMS),
  tokenSeen: process.env.MMGRID_TOKEN !== undefined,
  workerEnvSeen: Object.keys(process.env).filter((k) => k.startsWith('MMGRID_') && !TASK_VARIABLES.includes(k)),
  cwd: process.cwd(),
}));
`;

describe('an exec backend on a worker (mmgrid worker --config)', () => {
  let tg: TestGrid;
  let dir: string;

  beforeAll(async () => {
    dir = await tempDir('mmgrid-exec-e2e-');
    await writeIn(dir, 'echo.mjs', ECHO_SCRIPT);
    // JSON is YAML: each argument quoted as JSON writes it.
    // The command runs in its task's own folder: the script is named by its full path.
    const command = [process.execPath, path.join(dir, 'echo.mjs'), '{input}', '{input.type}', '{params.message}', '{outdir}'].map((a) => JSON.stringify(a)).join(', ');
    const config = await writeIn(dir, 'worker.yaml', `backends:\n  exec:\n    - kind: exec.echo\n      command: [${command}]\n      timeoutSec: 60\n      description: echoes its input\n`);
    await writeTextPng(dir, 'photo.png', ['EXEC']);
    // The worker holds a token in its environment; the command must not see it.
    tg = await startTestGrid({ workers: 1, workerArgs: ['--config', config], env: { MMGRID_TOKEN: 'worker-secret-token' } });
  });

  afterAll(async () => {
    await tg?.stop();
    await removeDir(dir);
  });

  it('the worker announces exec.echo', async () => {
    const { workers } = await tg.client.listWorkers();
    expect(workers).toHaveLength(1);
    expect(workers[0]?.slots.map((s) => s.kind)).toContain('exec.echo');
    expect(await tg.log('worker-1')).toMatch(/exec\.echo: .*node.* \(.*timeout 60s\)/);
  });

  it('runs a declared exec.echo step on an image; a parameter with shell syntax reaches the command literally', async () => {
    const marker = path.join(tmpdir(), `mmgrid-pwned-${randomBytes(6).toString('hex')}`);
    const message = `$(touch ${marker}) ; echo hi`;
    const file = await writeIn(
      dir,
      'echo.yaml',
      `inputs:
  photo: photo.png
steps:
  echo:
    kind: exec.echo
    input: photo
    params:
      message: ${JSON.stringify(message)}
      n: 3
`,
    );
    const cli = await runCli(['submit', '-f', file, '--wait', '--json', '-q'], tg.cliEnv);
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    const job = jobOf(cli);
    expect(job.state).toBe('completed');
    const out = job.result?.doc.inputs.find((i) => i.name === 'photo')?.outputs['echo'] as unknown as EchoOutput;
    const [inputPath, type, argMessage] = out.argv;
    expect(path.basename(inputPath ?? '')).toBe('input.png');
    expect(type).toBe('image/png');
    expect(argMessage).toBe(message);
    expect(out.params).toEqual({ message, n: 3 });
    expect(out.inputSha256).toBe(createHash('sha256').update(await readFile(path.join(dir, 'photo.png'))).digest('hex'));
    expect(out.tokenSeen).toBe(false);
    expect(out.workerEnvSeen).toEqual([]);
    // It ran in a task folder of its own, beside its input copy, removed once it was done.
    expect(out.cwd).toBe(path.dirname(path.dirname(inputPath ?? '')));
    expect(path.basename(out.cwd)).toMatch(/^mmgrid-exec-/);
    expect(path.basename(path.dirname(out.cwd))).toBe('work');
    expect(existsSync(out.cwd)).toBe(false);
    expect(existsSync(marker)).toBe(false);
    // The file written to {outdir} was uploaded to the grid's blob store.
    expect(out.files).toEqual([expect.objectContaining({ name: 'echo.txt', mediaType: 'text/plain', size: Buffer.byteLength(message) })]);
    expect((await tg.client.blobs.downloadBytes(out.files[0]?.sha256 ?? '')).toString('utf8')).toBe(message);
  });

  it("uses no damaged cached input: a file changed in the worker's blob cache is fetched again, and the command sees the true bytes", async () => {
    const photo = await readFile(path.join(dir, 'photo.png'));
    const sha = createHash('sha256').update(photo).digest('hex');
    // The worker kept the photo from the job before; damage it in place, same size.
    const cached = path.join(tg.dataDir, 'worker-1', 'blobs', sha.slice(0, 2), sha);
    await chmod(cached, 0o644);
    await writeFile(cached, Buffer.alloc(photo.length, 0x55));
    const file = await writeIn(dir, 'again.yaml', 'inputs:\n  photo: photo.png\nsteps:\n  echo:\n    kind: exec.echo\n    input: photo\n    params:\n      message: again\n');
    const cli = await runCli(['submit', '-f', file, '--wait', '--json', '-q'], tg.cliEnv);
    expect(cli.code).toBe(0);
    const job = jobOf(cli);
    expect(job.state).toBe('completed');
    const out = job.result?.doc.inputs.find((i) => i.name === 'photo')?.outputs['echo'] as unknown as EchoOutput;
    expect(out.inputSha256).toBe(sha);
    expect(await tg.log('worker-1')).toContain(`blob ${sha} in the cache is damaged`);
    expect((await readFile(cached)).equals(photo)).toBe(true);
    // Every task folder is gone.
    expect(await readdir(path.join(tg.dataDir, 'worker-1', 'work'))).toEqual([]);
  });
});
