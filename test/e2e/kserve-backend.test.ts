import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageClassifyOutput } from '@mmgrid/core';
import { jobOf, runCli } from '../helpers/cli.js';
import { COLOUR_LABELS, COLOUR_MODEL, deadUrl, logitsOf, startFakeKserve, type FakeKserve } from '../helpers/fake-kserve.js';
import { removeDir, tempDir, writeIn } from '../helpers/files.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';

/** A PNG of one solid colour: every channel's mean is exact, whatever the resize does. */
async function writeSolidPng(dir: string, name: string, rgb: readonly [number, number, number]): Promise<string> {
  const file = path.join(dir, name);
  await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .png()
    .toFile(file);
  return file;
}

/** A worker config with one kserve backend: 32×32 NCHW, pixels scaled to -1..1. */
async function writeWorkerConfig(dir: string, url: string): Promise<string> {
  await writeIn(dir, 'colours.txt', `${COLOUR_LABELS.join('\n')}\n`);
  return writeIn(
    dir,
    'worker.yaml',
    `backends:
  kserve:
    - name: colours
      url: ${url}/
      model: colours
      version: "1"
      input:
        width: 32
        height: 32
        layout: NCHW
        mean: [0.5, 0.5, 0.5]
        std: [0.5, 0.5, 0.5]
      labels: colours.txt
`,
  );
}

/**
 * What the worker should report for an image whose channels are `mean` after normalising:
 * the fake's logits, softmaxed and ranked as a classifier's answer is (ties by index), scores
 * to 6 places.
 */
function expectedLabels(mean: readonly [number, number, number], top: number): ImageClassifyOutput['labels'] {
  const logits = logitsOf(COLOUR_MODEL, mean);
  const max = Math.max(...logits);
  const exps = logits.map((l) => Math.exp(l - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps
    .map((e, index) => ({ label: COLOUR_LABELS[index] ?? '', index, score: Math.round((e / sum) * 1e6) / 1e6 }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, top);
}

describe('a KServe v2 model server as a worker backend', () => {
  let tg: TestGrid;
  let kserve: FakeKserve;
  let dir: string;

  beforeAll(async () => {
    dir = await tempDir('mmgrid-kserve-');
    kserve = await startFakeKserve();
    const config = await writeWorkerConfig(dir, kserve.url);
    tg = await startTestGrid({ workers: 1, workerArgs: ['--config', config, '--slots', 'image.classify=2'] });
    await writeSolidPng(dir, 'red.png', [255, 0, 0]);
    await writeSolidPng(dir, 'blue.png', [0, 0, 255]);
  });

  afterAll(async () => {
    await tg?.stop();
    await kserve?.stop();
    await removeDir(dir);
  });

  it('checks the server and the model at start, and announces the model', async () => {
    const { workers } = await tg.client.listWorkers();
    expect(workers).toHaveLength(1);
    expect(workers[0]?.slots.find((s) => s.kind === 'image.classify')).toMatchObject({ total: 2, models: ['colours'] });
    expect(workers[0]?.warmModels).toContain('colours');
    expect(kserve.requests.slice(0, 3).map((r) => `${r.method} ${r.path}`)).toEqual([
      'GET /v2/health/ready',
      'GET /v2/models/colours/versions/1/ready',
      'GET /v2/models/colours/versions/1',
    ]);
    const log = await tg.log('worker-1');
    expect(log).toContain(`colours: KServe v2 model colours (version 1) at ${kserve.url}, input 'pixels' [1,3,32,32] FP32, output 'logits' (the first FP32 of 2 outputs), 4 labels`);
  });

  it('classifies images on the server: exact labels and scores from the model', async () => {
    const before = kserve.inferRequests().length;
    const file = await writeIn(
      dir,
      'classify.yaml',
      `inputs:
  red: red.png
  blue: blue.png
steps:
  first: { kind: image.classify, input: red, params: { top: 3 }, requires: { model: colours } }
  second: { kind: image.classify, input: blue }
`,
    );
    const cli = await runCli(['submit', '-f', file, '--wait', '--json', '-q'], tg.cliEnv);
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    const job = jobOf(cli);
    const outputs = new Map(job.result?.doc.inputs.map((i) => [i.name, i.outputs]));
    // Pixels scaled to 0..1, then (v - 0.5) / 0.5: a full channel is 1, an empty one -1.
    expect(outputs.get('red')?.['first']).toEqual({ model: 'colours', runtime: `kserve v2 (${kserve.url})`, labels: expectedLabels([1, -1, -1], 3) });
    expect(outputs.get('blue')?.['second']).toEqual({ model: 'colours', runtime: `kserve v2 (${kserve.url})`, labels: expectedLabels([-1, -1, 1], 5) });
    expect((outputs.get('red')?.['first'] as ImageClassifyOutput).labels.map((l) => l.label)).toEqual(['red', 'grey', 'green']);

    // What went over the wire: one flat FP32 tensor per image, and only the logits asked for.
    const sent = kserve.inferRequests().slice(before);
    expect(sent).toHaveLength(2);
    for (const body of sent) {
      expect(body.id).toEqual(expect.any(String));
      expect(body.outputs).toEqual([{ name: 'logits' }]);
      expect(body.inputs).toHaveLength(1);
      expect(body.inputs[0]).toMatchObject({ name: 'pixels', shape: [1, 3, 32, 32], datatype: 'FP32' });
      expect(body.inputs[0]?.data).toHaveLength(3 * 32 * 32);
    }
    const redData = sent.map((b) => b.inputs[0]?.data ?? []).find((d) => d[0] === 1) ?? [];
    expect([...new Set(redData.slice(0, 1024))]).toEqual([1]);
    expect([...new Set(redData.slice(1024))]).toEqual([-1]);
  });

  it('retries an inference the server answers 503', async () => {
    const file = await writeIn(dir, 'busy.yaml', 'inputs:\n  red: red.png\nsteps:\n  look: { kind: image.classify, input: red, params: { top: 1 } }\n');
    kserve.failNext(503, 1, 'the model is being loaded');
    const cli = await runCli(['submit', '-f', file, '--wait', '--json', '-q'], tg.cliEnv);
    expect(cli.code).toBe(0);
    const job = jobOf(cli);
    expect(job.tasks.find((t) => t.label === 'look')?.attempts).toBe(2);
    const red = job.result?.doc.inputs.find((i) => i.name === 'red');
    expect(red?.outputs['look']).toEqual({ model: 'colours', runtime: `kserve v2 (${kserve.url})`, labels: expectedLabels([1, -1, -1], 1) });
  });

  it('fails the step at once when the server refuses the request (400), with its message', async () => {
    const file = await writeIn(dir, 'refused.yaml', 'inputs:\n  blue: blue.png\nsteps:\n  look: { kind: image.classify, input: blue }\n');
    kserve.failNext(400, 1, "inference input 'pixels' is out of range");
    const cli = await runCli(['submit', '-f', file, '--wait', '--json', '-q'], tg.cliEnv);
    expect(cli.code).toBe(1);
    const job = jobOf(cli);
    expect(job.state).toBe('failed');
    expect(job.error?.message).toBe("step look (image.classify) failed: the KServe server answered 400: inference input 'pixels' is out of range");
    // A refusal is not retried: the same request would be refused again.
    expect(job.tasks.find((t) => t.label === 'look')?.attempts).toBe(1);
  });
});

describe('a KServe server that is down when the worker starts', () => {
  let tg: TestGrid;
  let dir: string;
  let url: string;

  beforeAll(async () => {
    dir = await tempDir('mmgrid-kserve-down-');
    url = await deadUrl();
    tg = await startTestGrid({ workers: 1, workerArgs: ['--config', await writeWorkerConfig(dir, url)] });
  });

  afterAll(async () => {
    await tg?.stop();
    await removeDir(dir);
  });

  it('leaves the backend out with a clear log line, and the worker offers the rest without image.classify', async () => {
    const log = await tg.log('worker-1');
    const line = log.split('\n').find((l) => l.includes('backend colours (kserve) is left out')) ?? '';
    expect(line).toMatch(new RegExp(`left out: the KServe server at ${url}/v2/health/ready cannot be reached \\([^)]*ECONNREFUSED[^)]*\\); is it running, and is the URL right\\?`));
    expect(line).toContain('its kinds (image.classify) are not offered');
    const { workers } = await tg.client.listWorkers();
    const kinds = workers[0]?.slots.map((s) => s.kind) ?? [];
    expect(kinds).toContain('image.inspect');
    expect(kinds).not.toContain('image.classify');
    expect(workers[0]?.warmModels).toEqual([]);
  });
});
