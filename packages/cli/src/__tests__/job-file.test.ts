import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';
import { loadJobFile } from '../job-file.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-job-file-'));
  await writeFile(path.join(dir, 'sign.png'), 'not really a png');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, yaml: string): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, yaml);
  return file;
}

/** The CliError a job file is refused with. */
async function refusal(file: string): Promise<CliError> {
  try {
    await loadJobFile(file);
  } catch (err) {
    if (err instanceof CliError) return err;
    throw err;
  }
  throw new Error(`expected ${file} to be refused`);
}

describe('loadJobFile: labels and params', () => {
  it('takes numbers and booleans as label values, as strings, as params are', async () => {
    const file = await write(
      'labels.yaml',
      `inputs:
  sign: sign.png
labels:
  ticket: 4471
  urgent: true
  ratio: 0.5
  team: search
params:
  windowSec: 20
  strict: false
`,
    );
    const job = await loadJobFile(file);
    expect(job.options.labels).toEqual({ ticket: '4471', urgent: 'true', ratio: '0.5', team: 'search' });
    expect(job.options.params).toEqual({ windowSec: '20', strict: 'false' });
  });

  it.each([
    ['a list', 'labels:\n  ticket: [1, 2]\n'],
    ['a map', 'labels:\n  ticket: { id: 1 }\n'],
    ['nothing', 'labels:\n  ticket:\n'],
  ])('refuses %s as a label value, at its line', async (_name, yaml) => {
    const err = await refusal(await write('bad-label.yaml', yaml));
    expect(err.exitCode).toBe(ExitCode.USAGE);
    expect(err.message).toMatch(/^.*bad-label\.yaml:2:3: labels\.ticket: /);
  });
});

describe('loadJobFile: unknown fields point at the field', () => {
  it('at the top level', async () => {
    const file = await write('top.yaml', 'inputs:\n  sign: sign.png\nprompt: hi\nlable:\n  team: search\n');
    const err = await refusal(file);
    expect(err.exitCode).toBe(ExitCode.USAGE);
    expect(err.message).toBe(`${file}:4:1: unknown field "lable"; a job file takes inputs, prompt, pipeline, params, priority, labels, steps`);
  });

  it('at the top level, the first of several', async () => {
    const file = await write('top-two.yaml', 'inputs:\n  sign: sign.png\nretries: 3\ntimeout: 10\n');
    expect((await refusal(file)).message).toBe(`${file}:3:1: unknown field "retries", "timeout"; a job file takes inputs, prompt, pipeline, params, priority, labels, steps`);
  });

  it('a top-level key with a dot in it', async () => {
    const file = await write('top-dot.yaml', 'inputs:\n  sign: sign.png\nsteps.read: 1\n');
    expect((await refusal(file)).message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:1: unknown field "steps\\.read"`));
  });

  it('inside an input', async () => {
    const file = await write('input-key.yaml', 'inputs:\n  sign:\n    file: sign.png\n    mode: fast\n');
    const err = await refusal(file);
    expect(err.exitCode).toBe(ExitCode.USAGE);
    expect(err.message).toBe(`${file}:4:5: inputs.sign: unknown field "mode"; an input takes file or text (one of them)`);
  });

  it('inside an input whose name has a dot', async () => {
    const file = await write('input-dot.yaml', 'inputs:\n  sign.png:\n    file: sign.png\n    mode: fast\n');
    expect((await refusal(file)).message).toMatch(/input-dot\.yaml:4:5: inputs\.sign\.png: unknown field "mode"/);
  });

  it('a missing file of an input whose name has a dot, at its line', async () => {
    const file = await write('missing-dot.yaml', 'prompt: hi\ninputs:\n  scan.png: nowhere.png\n');
    expect((await refusal(file)).message).toBe(`${file}:3:3: input "scan.png": no such file nowhere.png (paths are relative to the job file)`);
  });

  it.each([
    ['both file and text', '{ file: sign.png, text: hi }'],
    ['an empty map', '{}'],
    ['a number', '3'],
  ])('an input written as %s: what an input is', async (_name, value) => {
    const file = await write('input-form.yaml', `inputs:\n  sign: ${value}\n`);
    expect((await refusal(file)).message).toBe(`${file}:2:3: inputs.sign: an input is a file path, { file: PATH } or { text: TEXT }`);
  });

  it('an input whose name has a dot, written wrongly: at its line', async () => {
    const file = await write('input-form-dot.yaml', 'prompt: hi\ninputs:\n  scan.png: { file: scan.png, text: hi }\n  other.txt:\n    text: ""\n');
    expect((await refusal(file)).message).toBe(`${file}:3:3: inputs.scan.png: an input is a file path, { file: PATH } or { text: TEXT }`);
    const empty = await write('input-empty-dot.yaml', 'prompt: hi\ninputs:\n  other.txt:\n    text: ""\n');
    expect((await refusal(empty)).message).toBe(`${empty}:4:5: inputs.other.txt.text: must not be empty`);
  });
});
