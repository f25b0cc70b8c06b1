import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobRef, JsonObject } from '@mmgrid/core';
import { BackendUnavailableError, type Backend, type TaskContext } from '../backends/backend.js';
import { createExecBackend, removeStaleTaskFolders, type ExecBackendOptions } from '../backends/exec/exec-backend.js';
import { TaskFailedError } from '../errors.js';
import { execBackendSchema, loadWorkerConfig, WorkerConfigError } from '../worker-config.js';

const logger = pino({ level: 'silent' });
const node = process.execPath;

interface FakeTask {
  readonly ctx: TaskContext;
  /** What the task stored with putBlob, by sha256 (a stand-in for the coordinator's blob service). */
  readonly blobs: Map<string, { bytes: Buffer; ref: BlobRef }>;
  readonly progress: { fraction: number; message: string }[];
}

function fakeTask(
  options: {
    params?: JsonObject;
    files?: Record<string, string>;
    mediaTypes?: Record<string, string>;
    texts?: Record<string, string>;
    signal?: AbortSignal;
    onProgress?: (fraction: number) => void;
  } = {},
): FakeTask {
  const blobs = new Map<string, { bytes: Buffer; ref: BlobRef }>();
  const progress: { fraction: number; message: string }[] = [];
  const ctx: TaskContext = {
    jobId: 'job-7',
    taskId: 't3',
    kind: 'exec.test',
    attempt: 1,
    params: options.params ?? {},
    files: new Map(Object.entries(options.files ?? {})),
    mediaTypes: new Map(Object.entries(options.mediaTypes ?? {})),
    texts: new Map(Object.entries(options.texts ?? {})),
    upstream: [],
    signal: options.signal ?? new AbortController().signal,
    progress: (fraction, message = '') => {
      progress.push({ fraction, message });
      options.onProgress?.(fraction);
    },
    putBlob: (bytes, name, mediaType) => {
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      const ref: BlobRef = { sha256, size: bytes.byteLength, mediaType, name };
      blobs.set(sha256, { bytes: Buffer.from(bytes), ref });
      return Promise.resolve(ref);
    },
  };
  return { ctx, blobs, progress };
}

/** Whether a process is still running (a zombie waiting to be reaped is not). */
function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

async function failureOf(work: Promise<unknown>): Promise<TaskFailedError> {
  try {
    await work;
  } catch (err) {
    if (err instanceof TaskFailedError) return err;
    throw err;
  }
  throw new Error('the task did not fail');
}

describe('the exec backend', () => {
  let dir: string;
  let echo: string;

  /** Writes an executable script into the test folder. */
  async function script(name: string, body: string): Promise<string> {
    const file = path.join(dir, name);
    await writeFile(file, body);
    await chmod(file, 0o755);
    return file;
  }

  let workDir: string;
  const warnings: string[] = [];
  const warnLogger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });

  function backend(config: { command: string[] } & Record<string, unknown>, options: ExecBackendOptions = {}): Backend {
    return createExecBackend(execBackendSchema.parse({ kind: 'exec.test', ...config }), { baseDir: dir, logger: warnLogger, workDir }, options);
  }

  async function run(b: Backend, task: FakeTask): Promise<JsonObject> {
    await b.check(AbortSignal.timeout(5000));
    const [handler] = b.handlers();
    if (!handler) throw new Error('no handler');
    return (await handler.run(task.ctx)) as JsonObject;
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-exec-test-'));
    workDir = path.join(dir, 'work');
    // Prints a log line, then its arguments, environment and input as JSON.
    echo = await script(
      'echo.mjs',
      `import { readFileSync } from 'node:fs';
const input = process.env.MMGRID_INPUT;
console.log('a log line before the result');
console.log(JSON.stringify({ argv: process.argv.slice(2), env: process.env, cwd: process.cwd(), input: input ? readFileSync(input).toString('base64') : null }));
`,
    );
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('fills in the placeholders, each as one argument, and removes the scratch folder after', async () => {
    const image = path.join(dir, 'cached-blob');
    const png = await sharp({ create: { width: 2, height: 2, channels: 3, background: '#ff0000' } }).png().toBuffer();
    await writeFile(image, png);
    const b = backend({
      command: [node, echo, '{input}', '{input.name}', '{input.type}', '{outdir}', '--size={params.size}', '{params.big}', '{params.on}', '{job.id}/{task.id}', '{{literal}}'],
    });
    const task = fakeTask({ params: { size: '512', big: 12.5, on: true }, files: { photo: image }, mediaTypes: { photo: 'image/png' } });
    const out = await run(b, task);
    const argv = out['argv'] as string[];
    const [inputPath = '', name, type, outdir = '', ...rest] = argv;
    expect([name, type]).toEqual(['photo', 'image/png']);
    expect(rest).toEqual(['--size=512', '12.5', 'true', 'job-7/t3', '{literal}']);
    // The input is a copy (named for its type) in the task's private scratch folder, next to {outdir}.
    expect(path.basename(inputPath)).toBe('input.png');
    expect(path.dirname(path.dirname(inputPath))).toBe(path.dirname(outdir));
    expect(path.basename(path.dirname(outdir))).toMatch(/^mmgrid-exec-/);
    expect(Buffer.from(out['input'] as string, 'base64').equals(png)).toBe(true);
    // It runs in that folder, made under the worker's work folder, and removed after.
    expect(out['cwd']).toBe(path.dirname(outdir));
    expect(path.dirname(path.dirname(outdir))).toBe(workDir);
    expect(out['files']).toEqual([]);
    expect(existsSync(path.dirname(outdir))).toBe(false);
    expect(await readdir(workDir)).toEqual([]);
  });

  it('runs in the configured cwd when the section names one, and finds a relative program from the config folder otherwise', async () => {
    await writeFile(path.join(dir, 'rel.sh'), '#!/bin/sh\nprintf \'{"cwd": "%s"}\' "$(pwd)"\n');
    await chmod(path.join(dir, 'rel.sh'), 0o755);
    const inTask = await run(backend({ command: ['./rel.sh'] }), fakeTask());
    expect(path.dirname(inTask['cwd'] as string)).toBe(workDir);
    const inDir = await run(backend({ command: ['./rel.sh'], cwd: '.' }), fakeTask());
    expect(inDir['cwd']).toBe(dir);
    expect(await readdir(workDir)).toEqual([]);
  });

  it('keeps a failed task folder only with keepTaskDir: on-failure, and says where', async () => {
    const failing = await script('fail-keep.sh', '#!/bin/sh\necho "left here" > "$1/note.txt"\nexit 3\n');
    expect((await failureOf(run(backend({ command: [failing, '{outdir}'] }), fakeTask()))).code).toBe('TASK_FAILED');
    expect(await readdir(workDir)).toEqual([]);
    warnings.length = 0;
    expect((await failureOf(run(backend({ command: [failing, '{outdir}'], keepTaskDir: 'on-failure' }), fakeTask()))).code).toBe('TASK_FAILED');
    const kept = await readdir(workDir);
    expect(kept).toEqual([expect.stringMatching(/^kept-mmgrid-exec-/)]);
    const keptDir = path.join(workDir, kept[0] ?? '');
    expect(await readFile(path.join(keptDir, 'out', 'note.txt'), 'utf8')).toBe('left here\n');
    expect(warnings.join('')).toContain(`kept the failed task's folder ${keptDir} (keepTaskDir: on-failure)`);
    // A restarted worker removes the folders a killed run left, not the kept ones.
    await mkdir(path.join(workDir, 'mmgrid-exec-stale1', 'in'), { recursive: true });
    await writeFile(path.join(workDir, 'mmgrid-exec-stale1', 'in', 'input.wav'), 'x');
    expect(await removeStaleTaskFolders(workDir)).toBe(1);
    expect(await readdir(workDir)).toEqual([kept[0]]);
    await rm(keptDir, { recursive: true });
    // A task that succeeds leaves nothing, whatever keepTaskDir says.
    await run(backend({ command: [node, echo], keepTaskDir: 'on-failure' }), fakeTask());
    expect(await readdir(workDir)).toEqual([]);
  });

  it('refuses a job value that would begin an argument with "-" (an option), before anything runs', async () => {
    const marker = path.join(dir, 'option-ran');
    const touch = await script('touch.sh', `#!/bin/sh\ntouch ${marker}\necho '{}'\n`);
    for (const value of ['-rf', '--output=/etc/passwd', '-']) {
      const failure = await failureOf(run(backend({ command: [touch, 'fixed', '{params.v}'] }), fakeTask({ params: { v: value } })));
      expect([failure.code, failure.retryable]).toEqual(['INVALID_PARAMS', false]);
      expect(failure.message).toContain(`{params.v} is ${JSON.stringify(value)}, which starts with "-" and would begin argument 2`);
    }
    const name = await failureOf(run(backend({ command: [touch, '{input.name}'] }), fakeTask({ texts: { '--help': 'x' } })));
    expect(name.message).toMatch(/\{input\.name\} is "--help"/);
    expect(existsSync(marker)).toBe(false);
    // Glued after literal text, after a literal "--", or a negative number: passed on as is.
    const out = await run(backend({ command: [node, echo, '--v={params.v}', '{params.n}', '--', '{params.v}'] }), fakeTask({ params: { v: '-rf', n: -2.5 } }));
    expect(out['argv']).toEqual(['--v=-rf', '-2.5', '--', '-rf']);
  });

  it('refuses links in {outdir}, to a file or a folder outside it, and reads nothing outside', async () => {
    const secret = path.join(dir, 'owner-secret.txt');
    await writeFile(secret, 'the owner\'s secret');
    const linker = await script(
      'linker.mjs',
      `import { symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
const [out, how, secret] = process.argv.slice(2);
if (how === 'file') symlinkSync(secret, out + '/secret.txt');
if (how === 'dir') symlinkSync('..', out + '/up');
if (how === 'nested') { mkdirSync(out + '/sub'); symlinkSync('../../..', out + '/sub/root'); }
if (how === 'dotdot') writeFileSync(out + '/../escaped.txt', 'outside {outdir}');
console.log('{}');
`,
    );
    for (const [how, shown] of [['file', 'secret.txt'], ['dir', 'up'], ['nested', 'sub/root']] as const) {
      const task = fakeTask({ params: { how, secret } });
      const failure = await failureOf(run(backend({ command: [node, linker, '{outdir}', '{params.how}', '{params.secret}'] }), task));
      expect([failure.code, failure.retryable, failure.message]).toEqual(['INVALID_OUTPUT', false, `exec.test left ${shown} in {outdir}, which is not a plain file (links and devices are not uploaded)`]);
      expect(task.blobs.size).toBe(0);
    }
    // A file written next to {outdir} ("../") is not an output: only {outdir} is read.
    const task = fakeTask({ params: { how: 'dotdot', secret } });
    expect(await run(backend({ command: [node, linker, '{outdir}', '{params.how}', '{params.secret}'] }), task)).toEqual({ files: [] });
    expect(task.blobs.size).toBe(0);
    expect(await readdir(workDir)).toEqual([]);
  });

  it('passes parameters with shell syntax literally: no shell ever reads them', async () => {
    const b = backend({ command: [node, echo, '{params.a}', '{params.b}', 'x{params.c}y', '{params.d}'] });
    const params = { a: '"; rm -rf / #', b: `$(touch ${path.join(dir, 'pwned')})`, c: '`id` && echo hi | cat > /tmp/x', d: "it's\n$HOME * ?" };
    const out = await run(b, fakeTask({ params }));
    expect(out['argv']).toEqual([params.a, params.b, `x${params.c}y`, params.d]);
    expect(JSON.parse((out['env'] as Record<string, string>)['MMGRID_PARAMS'] ?? '')).toEqual(params);
    expect(existsSync(path.join(dir, 'pwned'))).toBe(false);
  });

  it('passes a newline, backticks, globs and $(…) in one argument to a shell script as data', async () => {
    // The program is itself a shell script: it gets the value as "$1" and quotes it; the worker adds no shell of its own.
    const argc = await script('argc.sh', '#!/bin/sh\nprintf \'{"argc": %d}\' "$#"\n');
    const marker = path.join(dir, 'pwned-2');
    const value = `a\nb; touch ${marker} \`touch ${marker}\` $(touch ${marker}) * | & > ${marker}`;
    expect(await run(backend({ command: [argc, '{params.v}'] }), fakeTask({ params: { v: value } }))).toEqual({ argc: 1, files: [] });
    expect(existsSync(marker)).toBe(false);
  });

  it("gives the command a clean environment, not the worker's", async () => {
    const b = backend(
      { command: [node, echo], env: { FOO: 'bar', HOME: '/srv/models' } },
      { env: { PATH: process.env['PATH'], HOME: '/home/owner', LANG: 'C.UTF-8', MMGRID_TOKEN: 'worker-secret', AWS_SECRET_ACCESS_KEY: 'aws-secret' } },
    );
    const env = (await run(b, fakeTask({ params: { n: 1 } })))['env'] as Record<string, string>;
    expect(env['MMGRID_TOKEN']).toBeUndefined();
    expect(env['AWS_SECRET_ACCESS_KEY']).toBeUndefined();
    expect(env['FOO']).toBe('bar');
    expect(env['HOME']).toBe('/srv/models');
    expect(env['LANG']).toBe('C.UTF-8');
    expect(env).toMatchObject({ MMGRID_TASK_ID: 't3', MMGRID_JOB_ID: 'job-7', MMGRID_KIND: 'exec.test', MMGRID_ATTEMPT: '1', MMGRID_PARAMS: '{"n":1}' });
    expect(path.basename(env['TMPDIR'] ?? '')).toBe('tmp');
    expect(env['MMGRID_INPUT']).toBeUndefined();
  });

  it('writes an inline text input to a file', async () => {
    const b = backend({ command: [node, echo, '{input}', '{input.name}', '{input.type}'] });
    const out = await run(b, fakeTask({ texts: { note: 'hello, grid' } }));
    const [inputPath = '', name, type] = out['argv'] as string[];
    expect([path.basename(inputPath), name, type]).toEqual(['input.txt', 'note', 'text/plain']);
    expect(Buffer.from(out['input'] as string, 'base64').toString()).toBe('hello, grid');
  });

  it('refuses, without retrying, a task without the input or a parameter the command uses', async () => {
    const noInput = await failureOf(run(backend({ command: [node, echo, '{input}'] }), fakeTask()));
    expect([noInput.code, noInput.retryable]).toEqual(['INPUT_MISSING', false]);
    expect(noInput.message).toMatch(/uses \{input\} but the task has no input/);
    const noParam = await failureOf(run(backend({ command: [node, echo, '--size={params.size}'] }), fakeTask({ params: { other: 1 } })));
    expect([noParam.code, noParam.retryable]).toEqual(['INVALID_PARAMS', false]);
    expect(noParam.message).toMatch(/has no parameter "size"/);
    const nested = await failureOf(run(backend({ command: [node, echo] }), fakeTask({ params: { x: { y: 1 } } })));
    expect(nested.code).toBe('INVALID_PARAMS');
  });

  it('uploads the files written to {outdir} and lists them under files', async () => {
    const png = await sharp({ create: { width: 3, height: 1, channels: 3, background: '#00ff00' } }).png().toBuffer();
    const writer = await script(
      'writer.mjs',
      `import { mkdirSync, writeFileSync } from 'node:fs';
const [out, png] = process.argv.slice(2);
writeFileSync(out + '/picture', Buffer.from(png, 'base64'));
mkdirSync(out + '/sub');
writeFileSync(out + '/sub/scores.json', '{"cat": 0.9}');
writeFileSync(out + '/raw.bin', Buffer.from([1, 2, 3]));
console.log(JSON.stringify({ wrote: 3 }));
`,
    );
    const task = fakeTask({ params: { png: png.toString('base64') } });
    const out = await run(backend({ command: [node, writer, '{outdir}', '{params.png}'] }), task);
    expect(out['wrote']).toBe(3);
    const files = out['files'] as BlobRef[];
    // Typed from the bytes when they tell (a PNG without extension), else from the extension.
    expect(files.map((f) => [f.name, f.mediaType, f.size])).toEqual([
      ['picture', 'image/png', png.length],
      ['raw.bin', 'application/octet-stream', 3],
      ['sub/scores.json', 'application/json', 12],
    ]);
    for (const f of files) expect(task.blobs.get(f.sha256)?.ref).toEqual(f);
    expect(task.blobs.get(files[0]?.sha256 ?? '')?.bytes.equals(png)).toBe(true);
  });

  it('fails a task whose output file is larger than maxFileBytes', async () => {
    const writer = await script('big-file.mjs', `import { writeFileSync } from 'node:fs';\nwriteFileSync(process.argv[2] + '/big.bin', Buffer.alloc(5000));\nconsole.log('{}');\n`);
    const task = fakeTask();
    const failure = await failureOf(run(backend({ command: [node, writer, '{outdir}'], maxFileBytes: 4096 }), task));
    expect([failure.code, failure.retryable]).toEqual(['OUTPUT_TOO_LARGE', false]);
    expect(failure.message).toMatch(/wrote big\.bin of 4\.9 KiB; files in \{outdir\} may be 4 KiB at most \(maxFileBytes\)/);
    expect(task.blobs.size).toBe(0);
  });

  it('stops a command whose files in {outdir} pass their caps while it runs, children included', async () => {
    const pidFile = path.join(dir, 'filler-child.pid');
    // Writes forever: one file, or many small ones; a child of its own sleeps meanwhile.
    const filler = await script(
      'filler.mjs',
      `import { spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
const [out, how, pidFile] = process.argv.slice(2);
writeFileSync(pidFile, String(spawn('sleep', ['1000'], { stdio: 'ignore' }).pid));
const chunk = Buffer.alloc(16 * 1024, 1);
let i = 0;
const step = () => { if (how === 'one') appendFileSync(out + '/big.bin', chunk); else writeFileSync(out + '/part-' + i++ + '.bin', chunk); setImmediate(step); };
step();
`,
    );
    const one = await failureOf(
      run(backend({ command: [node, filler, '{outdir}', 'one', '{params.pidFile}'], maxFileBytes: 200_000 }, { outdirCheckMs: 50, killGraceMs: 200 }), fakeTask({ params: { pidFile } })),
    );
    expect([one.code, one.retryable]).toEqual(['OUTPUT_TOO_LARGE', false]);
    expect(one.message).toMatch(/^exec\.test wrote big\.bin of [\d.]+ [KM]iB; files in \{outdir\} may be 195\.3 KiB at most \(maxFileBytes\)$/);
    expect(isRunning(Number(await readFile(pidFile, 'utf8')))).toBe(false);
    const many = await failureOf(
      run(backend({ command: [node, filler, '{outdir}', 'many', '{params.pidFile}'], maxTotalFileBytes: 300_000 }, { outdirCheckMs: 50, killGraceMs: 200 }), fakeTask({ params: { pidFile } })),
    );
    expect([many.code, many.retryable]).toEqual(['OUTPUT_TOO_LARGE', false]);
    expect(many.message).toMatch(/^exec\.test wrote more than 293 KiB in \{outdir\} \([\d.]+ [KM]iB so far\); its files may be 293 KiB at most together \(maxTotalFileBytes\)$/);
    expect(isRunning(Number(await readFile(pidFile, 'utf8')))).toBe(false);
    expect(await readdir(workDir)).toEqual([]);
  });

  it('stops a command that prints more than maxOutputBytes: OUTPUT_TOO_LARGE, not retried', async () => {
    const flood = await script(
      'flood.mjs',
      `const chunk = 'x'.repeat(65536);
const write = () => { while (process.stdout.write(chunk)); process.stdout.once('drain', write); };
write();
`,
    );
    const failure = await failureOf(run(backend({ command: [node, flood], maxOutputBytes: 100_000 }), fakeTask()));
    expect([failure.code, failure.retryable]).toEqual(['OUTPUT_TOO_LARGE', false]);
    expect(failure.message).toMatch(/printed more than 97\.7 KiB on stdout \(maxOutputBytes\)/);
  });

  it('takes the whole of stdout or its last line as the result, and refuses anything else', async () => {
    const printer = await script('print.mjs', 'process.stdout.write(process.argv[2]);\n');
    const b = backend({ command: [node, printer, '{params.out}'] });
    expect(await run(b, fakeTask({ params: { out: '{\n  "a": 1,\n  "b": [2]\n}\n' } }))).toEqual({ a: 1, b: [2], files: [] });
    expect(await run(b, fakeTask({ params: { out: 'loading…\n{"a": 1}\n\n' } }))).toEqual({ a: 1, files: [] });
    const cases: { out: string; message: RegExp }[] = [
      { out: '', message: /printed nothing on stdout/ },
      { out: 'done\n', message: /did not print a JSON object as its result \(its last line: "done"\)/ },
      { out: '[1, 2]', message: /did not print a JSON object/ },
      { out: '{"files": 1}', message: /printed a "files" key/ },
    ];
    for (const c of cases) {
      const failure = await failureOf(run(b, fakeTask({ params: { out: c.out } })));
      expect([failure.code, failure.retryable, failure.message]).toEqual(['INVALID_OUTPUT', false, expect.stringMatching(c.message)]);
    }
  });

  it('fails on a non-zero exit with the end of stderr; exit code 75 is retried, others are not', async () => {
    const failing = await script('fail.sh', '#!/bin/sh\necho "progress 0.5 halfway" >&2\necho "loading model" >&2\necho "RuntimeError: boom" >&2\nexit "$1"\n');
    const b = backend({ command: [failing, '{params.code}'] });
    const task = fakeTask({ params: { code: 3 } });
    const hard = await failureOf(run(b, task));
    expect([hard.code, hard.retryable]).toEqual(['TASK_FAILED', false]);
    expect(hard.message).toBe('exec.test exited with code 3: loading model\nRuntimeError: boom');
    expect(task.progress).toEqual([{ fraction: 0.5, message: 'halfway' }]);
    const soft = await failureOf(run(b, fakeTask({ params: { code: 75 } })));
    expect([soft.code, soft.retryable]).toEqual(['TASK_FAILED', true]);
    const quiet = await script('quiet.sh', '#!/bin/sh\nexit 1\n');
    expect((await failureOf(run(backend({ command: [quiet] }), fakeTask()))).message).toBe('exec.test exited with code 1 (nothing on stderr)');
  });

  it('keeps only the last 4 KB of stderr for the message', async () => {
    const noisy = await script('noisy.mjs', "for (let i = 0; i < 2000; i++) console.error('line ' + i);\nprocess.exitCode = 2;\n");
    const failure = await failureOf(run(backend({ command: [node, noisy] }), fakeTask()));
    expect(failure.message.length).toBeLessThan(4200);
    expect(failure.message).toMatch(/line 1999$/);
    expect(failure.message).not.toMatch(/line 100\n/);
  });

  it('reports progress lines from stderr', async () => {
    const steps = await script(
      'steps.mjs',
      `console.error('progress 0.25 loading');
console.error('not progress 0.3');
console.error('progress 50% half way');
console.error('progress 1');
console.log('{"done": true}');
`,
    );
    const task = fakeTask();
    expect(await run(backend({ command: [node, steps] }), task)).toEqual({ done: true, files: [] });
    expect(task.progress).toEqual([
      { fraction: 0.25, message: 'loading' },
      { fraction: 0.5, message: 'half way' },
      { fraction: 1, message: '' },
    ]);
  });

  it('on timeout kills the whole process group, children included', async () => {
    const pidFile = path.join(dir, 'timeout-child.pid');
    const parent = await script('parent.sh', '#!/bin/sh\nsleep 1000 &\necho $! > "$1"\necho "progress 0 started" >&2\nwait\n');
    const failure = await failureOf(run(backend({ command: [parent, '{params.pidFile}'], timeoutSec: 0.5 }), fakeTask({ params: { pidFile } })));
    expect([failure.code, failure.retryable]).toEqual(['TIMEOUT', true]);
    expect(failure.message).toMatch(/ran longer than its 0\.5 s limit \(timeoutSec\)/);
    const child = Number(await readFile(pidFile, 'utf8'));
    expect(child).toBeGreaterThan(0);
    expect(isRunning(child)).toBe(false);
    expect(await readdir(workDir)).toEqual([]);
  });

  it('kills with SIGKILL what ignores SIGTERM, after the grace period', async () => {
    const pidFile = path.join(dir, 'stubborn-child.pid');
    const stubborn = await script('stubborn.sh', "#!/bin/sh\ntrap '' TERM\n(trap '' TERM; exec sleep 1000) &\necho $! > \"$1\"\nwait\nwait\n");
    const started = Date.now();
    const failure = await failureOf(run(backend({ command: [stubborn, '{params.pidFile}'], timeoutSec: 0.3 }, { killGraceMs: 300 }), fakeTask({ params: { pidFile } })));
    expect(failure.code).toBe('TIMEOUT');
    expect(Date.now() - started).toBeLessThan(5000);
    expect(isRunning(Number(await readFile(pidFile, 'utf8')))).toBe(false);
  });

  it('when the task is cancelled, stops the command and its children', async () => {
    const pidFile = path.join(dir, 'cancel-child.pid');
    const parent = await script('cancel.sh', '#!/bin/sh\nsleep 1000 &\necho $! > "$1"\necho "progress 0 started" >&2\nwait\n');
    const stop = new AbortController();
    const task = fakeTask({ params: { pidFile }, signal: stop.signal, onProgress: () => stop.abort('cancelled') });
    const failure = await failureOf(run(backend({ command: [parent, '{params.pidFile}'] }), task));
    expect([failure.code, failure.retryable]).toEqual(['CANCELLED', false]);
    expect(isRunning(Number(await readFile(pidFile, 'utf8')))).toBe(false);
  });

  it('closing the backend (the worker exits) kills the running commands and their children', async () => {
    const pidFile = path.join(dir, 'close-child.pid');
    const parent = await script('close.sh', '#!/bin/sh\nsleep 1000 &\necho $! > "$1"\necho "progress 0 started" >&2\nwait\n');
    const b = backend({ command: [parent, '{params.pidFile}'] });
    let started: () => void = () => undefined;
    const running = new Promise<void>((resolve) => (started = resolve));
    const work = run(b, fakeTask({ params: { pidFile }, onProgress: () => started() }));
    await running;
    await b.close?.();
    const failure = await failureOf(work);
    expect(failure.message).toMatch(/was killed by SIGKILL/);
    expect(isRunning(Number(await readFile(pidFile, 'utf8')))).toBe(false);
  });

  it('kills what a command left running when it exits', async () => {
    const pidFile = path.join(dir, 'left-child.pid');
    const leaver = await script('leaver.sh', '#!/bin/sh\nsleep 1000 &\necho $! > "$1"\necho \'{"ok": true}\'\n');
    expect(await run(backend({ command: [leaver, '{params.pidFile}'] }), fakeTask({ params: { pidFile } }))).toEqual({ ok: true, files: [] });
    expect(isRunning(Number(await readFile(pidFile, 'utf8')))).toBe(false);
  });

  it('a command that dies by a signal is retried', async () => {
    const suicidal = await script('suicidal.sh', '#!/bin/sh\necho "out of memory" >&2\nkill -KILL $$\n');
    const failure = await failureOf(run(backend({ command: [suicidal] }), fakeTask()));
    expect([failure.code, failure.retryable, failure.message]).toEqual(['TASK_FAILED', true, 'exec.test was killed by SIGKILL: out of memory']);
  });
});

describe('the exec backend check', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-exec-check-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function backend(config: { command: string[] } & Record<string, unknown>, env: Record<string, string> = { PATH: process.env['PATH'] ?? '' }): Backend {
    return createExecBackend(execBackendSchema.parse({ kind: 'exec.check', ...config }), { baseDir: dir, logger }, { env });
  }

  it('finds a program on PATH or relative to the config folder, without running it', async () => {
    const marker = path.join(dir, 'ran');
    await writeFile(path.join(dir, 'tool.sh'), `#!/bin/sh\ntouch ${marker}\n`);
    await chmod(path.join(dir, 'tool.sh'), 0o755);
    const relative = backend({ command: ['./tool.sh', '{input}'], timeoutSec: 30 });
    expect(relative.kinds).toEqual(['exec.check']);
    expect(relative.type).toBe('exec');
    expect((await relative.check(AbortSignal.timeout(5000))).note).toBe(`./tool.sh (${path.join(dir, 'tool.sh')}, timeout 30s)`);
    expect(existsSync(marker)).toBe(false);
    const onPath = backend({ command: ['tool.sh'] }, { PATH: `/nonexistent:${dir}` });
    expect((await onPath.check(AbortSignal.timeout(5000))).note).toBe(`tool.sh (${path.join(dir, 'tool.sh')}, timeout 600s)`);
    const absolute = backend({ command: [process.execPath] });
    expect((await absolute.check(AbortSignal.timeout(5000))).note).toBe(`${process.execPath} (timeout 600s)`);
  });

  it('says what is missing and where it looked', async () => {
    await expect(backend({ command: ['no-such-program-zz'] }, { PATH: '/opt/a:/opt/b' }).check(AbortSignal.timeout(5000))).rejects.toThrow(
      new BackendUnavailableError('the program "no-such-program-zz" is not on PATH (/opt/a:/opt/b); install it, give its full path, or set PATH in the backend\'s env'),
    );
    await expect(backend({ command: ['./missing.py'] }).check(AbortSignal.timeout(5000))).rejects.toThrow(`the program ${path.join(dir, 'missing.py')} does not exist`);
    await writeFile(path.join(dir, 'plain.py'), 'print(1)\n');
    await expect(backend({ command: ['./plain.py'] }).check(AbortSignal.timeout(5000))).rejects.toThrow(`${path.join(dir, 'plain.py')} is not executable (chmod +x it)`);
    await expect(backend({ command: [process.execPath], cwd: 'no-such-dir' }).check(AbortSignal.timeout(5000))).rejects.toThrow(/the working directory .*no-such-dir \(cwd\) does not exist/);
    // The config's PATH is where the program is looked for.
    await expect(backend({ command: ['tool.sh'], env: { PATH: '/opt/c' } }).check(AbortSignal.timeout(5000))).rejects.toThrow(/not on PATH \(\/opt\/c\)/);
  });

  it('refuses a command with an unknown placeholder when the config is read', async () => {
    expect(() => createExecBackend({ ...execBackendSchema.parse({ kind: 'exec.x', command: ['prog'] }), command: ['prog', '{imput}'] }, { baseDir: dir, logger })).toThrow(WorkerConfigError);
    const file = path.join(dir, 'worker.yaml');
    await writeFile(file, 'backends:\n  exec:\n    - kind: exec.x\n      command: [python3, run.py, "{params.size}", "{imput}"]\n');
    await expect(loadWorkerConfig(file)).rejects.toThrow(/worker\.yaml:4:\d+: .*unknown placeholder \{imput\}/);
    await writeFile(file, 'backends:\n  exec:\n    - kind: exec.x\n      command: ["{params.prog}"]\n');
    await expect(loadWorkerConfig(file)).rejects.toThrow(/the program takes no placeholder/);
  });
});
