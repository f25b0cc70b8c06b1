import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobRef, ImageInspectOutput, ImageOcrOutput, TranscriptStitchOutput } from '@mmgrid/core';
import { jobOf, runCli } from '../helpers/cli.js';
import { startFakeWhisper, toneWords, type FakeWhisper } from '../helpers/fake-whisper.js';
import { removeDir, tempDir, writeIn } from '../helpers/files.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { tool, writeTextPng, writeWav } from '../helpers/media.js';
import { refusal } from '../helpers/refusal.js';

describe('job files and declared pipelines', () => {
  let tg: TestGrid;
  let whisper: FakeWhisper;
  let dir: string;

  beforeAll(async () => {
    dir = await tempDir('mmgrid-jobs-');
    whisper = await startFakeWhisper();
    tg = await startTestGrid({ workers: 1, workerArgs: ['--slots', 'image.ocr=1,audio.transcribe=2', '--transcribe-url', whisper.url] });
    await writeTextPng(dir, 'sign.png', ['OPEN 24 HOURS']);
    const { bursts, durationSec } = toneWords(6);
    await writeWav(dir, 'memo.wav', durationSec, bursts);
  });

  afterAll(async () => {
    await tg?.stop();
    await whisper?.stop();
    await removeDir(dir);
  });

  it('runs a declared pipeline: outputs under the step names, every step done', async () => {
    const file = await writeIn(
      dir,
      'ok.yaml',
      `# A sign and a voice memo.
inputs:
  sign: sign.png
  memo: memo.wav
prompt: What does the sign say?
steps:
  read:
    kind: image.ocr
    input: sign
  hear:
    kind: audio.transcribe
    input: memo
    params: { language: en }
    optional: true
  look:
    kind: image.inspect
    input: sign
    optional: true
`,
    );
    const cli = await runCli(['submit', '-f', file, '--wait', '--json', '-q'], tg.cliEnv);
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    const job = jobOf(cli);
    expect(job.pipeline).toBe('declared');
    expect(job.result?.partial).toBe(false);
    const byName = new Map(job.result?.doc.inputs.map((i) => [i.name, i.outputs]));
    expect((byName.get('sign')?.['read'] as ImageOcrOutput).text).toContain('OPEN 24 HOURS');
    expect(Object.keys(byName.get('sign') ?? {})).toEqual(['read', 'look']);
    expect((byName.get('memo')?.['hear'] as TranscriptStitchOutput).text).toBe(toneWords(6).words.map((w) => w.text).join(' '));
    expect(job.tasks.map((t) => t.label).filter(Boolean)).toEqual(expect.arrayContaining(['read', 'hear', 'look']));
  });

  it('fails the job when a required step fails, with the step and the reason', async () => {
    const file = await writeIn(
      dir,
      'required.yaml',
      `inputs:
  sign: sign.png
  memo: memo.wav
steps:
  read: { kind: image.ocr, input: sign }
  hear: { kind: audio.transcribe, input: memo, params: { model: no-such-model } }
`,
    );
    const cli = await runCli(['submit', '-f', file, '--wait', '--json', '-q'], tg.cliEnv);
    expect(cli.code).toBe(1);
    const job = jobOf(cli);
    expect(job.state).toBe('failed');
    expect(job.error?.message).toMatch(/^step hear \(audio\.transcribe\) failed: the speech-to-text server answered 400: .*model "no-such-model" does not exist/);
    // A refusal is not retried: the same request would be refused again.
    expect(job.tasks.find((t) => t.label === 'hear')?.attempts).toBe(1);
  });

  it('completes a job whose optional step fails, partial, with coverage and the reason', async () => {
    const file = await writeIn(
      dir,
      'optional.yaml',
      `inputs:
  sign: sign.png
  memo: memo.wav
steps:
  read: { kind: image.ocr, input: sign }
  hear: { kind: audio.transcribe, input: memo, optional: true, params: { model: no-such-model } }
  look: { kind: image.inspect, input: sign, optional: true }
`,
    );
    const cli = await runCli(['submit', '-f', file, '--wait', '--json', '-q'], tg.cliEnv);
    expect(cli.code).toBe(0);
    const job = jobOf(cli);
    expect(job.state).toBe('completed');
    expect(job.result?.partial).toBe(true);
    expect(job.result?.coverage).toBe(0.5);
    expect(job.result?.doc.failures).toEqual([
      expect.objectContaining({ step: 'hear', kind: 'audio.transcribe', input: 'memo', code: 'BACKEND_REFUSED', message: expect.stringContaining('answered 400') as string }),
    ]);
    const memo = job.result?.doc.inputs.find((i) => i.name === 'memo');
    expect(memo?.outputs).toEqual({});
  });

  it('retries a step whose server is briefly overloaded', async () => {
    const file = await writeIn(dir, 'busy.yaml', 'inputs:\n  memo: memo.wav\nsteps:\n  hear: { kind: audio.transcribe, input: memo }\n');
    whisper.failNext(503, 1);
    const cli = await runCli(['submit', '-f', file, '--wait', '--json', '-q'], tg.cliEnv);
    expect(cli.code).toBe(0);
    const job = jobOf(cli);
    expect(job.tasks.find((t) => t.label === 'hear')?.attempts).toBe(2);
  });

  it('a required sharded step whose every window failed fails the job, and mmgrid retry runs the windows again', async () => {
    const file = await writeIn(
      dir,
      'windows.yaml',
      'inputs:\n  memo: memo.wav\nsteps:\n  hear: { kind: audio.transcribe, input: memo, shard: { windowSec: 2, overlapSec: 0.5 } }\n',
    );
    // The server refuses every window (400: not worth retrying), then recovers.
    whisper.failNext(400, 50);
    const cli = await runCli(['submit', '-f', file, '--wait', '--json', '-q'], tg.cliEnv);
    expect(cli.code).toBe(1);
    const failed = jobOf(cli);
    const windows = failed.tasks.filter((t) => t.kind === 'audio.transcribe');
    expect(windows.length).toBeGreaterThanOrEqual(3);
    expect(windows.every((t) => t.state === 'failed')).toBe(true);
    expect(failed.error?.code).toBe('SHARDS_FAILED');
    expect(failed.error?.message).toMatch(new RegExp(`^step hear \\(audio\\.stitch\\) failed: all ${windows.length} shards failed; the first: the speech-to-text server answered 400`));
    whisper.failNext(400, 0);
    const retried = await runCli(['retry', failed.id, '--wait', '--json', '-q'], tg.cliEnv);
    expect(retried.code).toBe(0);
    const done = jobOf(retried);
    expect(done.state).toBe('completed');
    const memo = done.result?.doc.inputs.find((i) => i.name === 'memo');
    expect((memo?.outputs['hear'] as TranscriptStitchOutput).text).toBe(toneWords(6).words.map((w) => w.text).join(' '));
    expect(done.result?.partial).toBe(false);
  });

  it('refuses --pipeline next to -f (the file names its pipeline or steps), exit 2, before anything is uploaded', async () => {
    const withSteps = await writeIn(dir, 'steps-and-flag.yaml', 'inputs:\n  sign: sign.png\nsteps:\n  read: { kind: image.ocr, input: sign }\n');
    const withPipeline = await writeIn(dir, 'pipeline-and-flag.yaml', 'inputs:\n  sign: sign.png\npipeline: ocr\n');
    for (const file of [withSteps, withPipeline]) {
      const cli = await runCli(['submit', '-f', file, '--pipeline', 'describe', '--wait'], tg.cliEnv);
      expect(cli.code).toBe(2);
      expect(cli.stderr).toMatch(/--pipeline cannot be combined with -f: the job file names its pipeline \(pipeline:\) or its steps \(steps:\)/);
      expect(cli.stderr).not.toContain('uploaded');
      expect(cli.stdout).toBe('');
    }
  });

  it('result -o writes a blob under every name it has, and different blobs of one name side by side', async () => {
    // "sign" and "copy" are the same bytes: their 16 px thumbnails are one blob under two
    // names. "large" is a different blob with the same name as "small"'s.
    const file = await writeIn(
      dir,
      'thumbnails.yaml',
      `inputs:
  sign: sign.png
  copy: sign.png
prompt: from the file
steps:
  small: { kind: image.inspect, input: sign, params: { thumbnailMaxPx: 16 } }
  large: { kind: image.inspect, input: sign, params: { thumbnailMaxPx: 64 } }
  again: { kind: image.inspect, input: copy, params: { thumbnailMaxPx: 16 } }
`,
    );
    // -p still replaces the file's prompt.
    const cli = await runCli(['submit', '-f', file, '-p', 'from the flag', '--wait', '--json', '-q'], tg.cliEnv);
    expect(cli.code).toBe(0);
    const job = jobOf(cli);
    expect(job.prompt).toBe('from the flag');
    const outputs = new Map(job.result?.doc.inputs.map((i) => [i.name, i.outputs]));
    const thumb = (input: string, step: string): BlobRef => (outputs.get(input)?.[step] as ImageInspectOutput).thumbnail;
    const [small, large, again] = [thumb('sign', 'small'), thumb('sign', 'large'), thumb('copy', 'again')];
    expect(small.name).toBe('sign.thumbnail.webp');
    expect(large.name).toBe('sign.thumbnail.webp');
    expect(large.sha256).not.toBe(small.sha256);
    expect(again).toMatchObject({ sha256: small.sha256, name: 'copy.thumbnail.webp' });

    const out = await tempDir('mmgrid-result-names-');
    try {
      const result = await runCli(['result', job.id, '-o', out], tg.cliEnv);
      expect(result.code).toBe(0);
      const expected: Record<string, string> = {
        'sign.thumbnail.webp': small.sha256,
        [`sign.thumbnail.${large.sha256.slice(0, 8)}.webp`]: large.sha256,
        'copy.thumbnail.webp': small.sha256,
      };
      expect((await readdir(out)).sort()).toEqual([...Object.keys(expected), 'result.json', 'summary.txt'].sort());
      for (const [name, sha256] of Object.entries(expected)) {
        expect(createHash('sha256').update(await readFile(path.join(out, name))).digest('hex')).toBe(sha256);
      }
    } finally {
      await removeDir(out);
    }
  });

  describe('bad job files are refused before anything runs, pointing at the line (exit 2)', () => {
    const cases: [string, string, RegExp][] = [
      [
        'a cycle',
        `inputs:
  sign: sign.png
steps:
  read: { kind: image.ocr, input: sign }
  first:
    kind: fusion.report
    from: [read, second]
  second:
    kind: fusion.report
    from: [first]
`,
        /cycle\.yaml:\d+:\d+: steps\.(first|second)\.from: steps (first → second → first|second → first → second) form a cycle/,
      ],
      [
        'an unknown kind',
        `inputs:
  sign: sign.png
steps:
  read:
    kind: image.describe
    input: sign
`,
        /unknown-kind\.yaml:5:5: steps\.read\.kind: unknown kind "image\.describe"; kinds: .*image\.ocr/,
      ],
      [
        'a step reading a missing input',
        `inputs:
  sign: sign.png
steps:
  read:
    kind: image.ocr
    input: photo
`,
        /missing-input\.yaml:6:5: steps\.read\.input: no job input is named "photo"; inputs: sign/,
      ],
      [
        'a step reading from a missing step',
        `inputs:
  sign: sign.png
steps:
  read: { kind: image.ocr, input: sign }
  report:
    kind: fusion.report
    from: [read, summary]
`,
        /missing-step\.yaml:7:18: steps\.report\.from\[1\]: no step is named "summary"; steps: read, report/,
      ],
      [
        'an input file that does not exist',
        `inputs:
  sign: nowhere.png
steps:
  read: { kind: image.ocr, input: sign }
`,
        /missing-file\.yaml:2:3: input "sign": no such file nowhere\.png \(paths are relative to the job file\)/,
      ],
      [
        'a field the format does not have',
        `inputs:
  sign: sign.png
steps:
  read: { kind: image.ocr, input: sign, retries: 3 }
`,
        /unknown-field\.yaml:4:\d+: steps\.read: has no field "retries"; a step takes kind, input, from, params, requires, optional, shard/,
      ],
      [
        'a top-level field the format does not have',
        `inputs:
  sign: sign.png
retries: 3
steps:
  read: { kind: image.ocr, input: sign }
`,
        /unknown-top-field\.yaml:3:1: unknown field "retries"; a job file takes inputs, prompt, pipeline, params, priority, labels, steps/,
      ],
      ['not YAML at all', 'inputs: [sign.png\nsteps: {', /not-yaml\.yaml:\d+:\d+: not valid YAML/],
    ];
    const names = ['cycle', 'unknown-kind', 'missing-input', 'missing-step', 'missing-file', 'unknown-field', 'unknown-top-field', 'not-yaml'];

    it.each(cases.map((c, i) => [...c, names[i] ?? ''] as const))('%s', async (_name, yaml, expected, fileName) => {
      const file = await writeIn(dir, `${fileName}.yaml`, yaml);
      const cli = await runCli(['submit', '-f', file], tg.cliEnv);
      expect(cli.code).toBe(2);
      expect(cli.stderr).toMatch(expected);
      expect(cli.stderr).not.toMatch(/\n\s+at /);
      expect(cli.stdout).toBe('');
    });

    it('a step reading the wrong type of input: refused once the input type is known, at its line', async () => {
      const file = await writeIn(
        dir,
        'wrong-type.yaml',
        `inputs:
  sign: sign.png
  memo: memo.wav
steps:
  hear:
    kind: audio.transcribe
    input: sign
`,
      );
      const cli = await runCli(['submit', '-f', file], tg.cliEnv);
      expect(cli.code).toBe(2);
      expect(cli.stderr).toMatch(/wrong-type\.yaml:7:5: steps\.hear\.input: audio\.transcribe reads a recording, but "sign" is an image/);
    });
  });

  describe('corrupt media is refused at submit, naming the input', () => {

    it('a WAV whose samples were cut off mid-header', async () => {
      const whole = await writeWav(dir, 'whole.wav', 2, [{ startSec: 0.2, endSec: 1 }]);
      const bytes = await import('node:fs/promises').then((fs) => fs.readFile(whole));
      const broken = path.join(dir, 'broken.wav');
      // The RIFF and fmt headers survive (it is a WAV by its bytes); the rest is noise.
      await writeFile(broken, Buffer.concat([bytes.subarray(0, 20), Buffer.alloc(2000, 0xff)]));
      const err = await refusal(tg.client.submit([{ path: broken }]));
      expect(err.code).toBe('INVALID_ARGUMENT');
      expect(err.message).toMatch(/input "broken\.wav" looks like audio\/[\w.-]+ but cannot be read \(.+\)/);
      const cli = await runCli(['submit', broken], tg.cliEnv);
      expect(cli.code).toBe(2);
      expect(cli.stderr).toContain('broken.wav');
    });

    it('an MP4 cut short, with its index missing', async () => {
      const clip = path.join(dir, 'clip.mp4');
      await tool('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=d=2:s=160x120:r=10', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', clip]);
      const bytes = await import('node:fs/promises').then((fs) => fs.readFile(clip));
      const broken = path.join(dir, 'broken.mp4');
      await writeFile(broken, bytes.subarray(0, Math.floor(bytes.length / 3)));
      const err = await refusal(tg.client.submit([{ path: broken }], { pipeline: 'video-summary' }));
      expect(err.code).toBe('INVALID_ARGUMENT');
      expect(err.message).toMatch(/input "broken\.mp4" looks like video\/mp4 but cannot be read \((Invalid data found when processing input|.*moov atom not found.*)\)/);
    });
  });
});
