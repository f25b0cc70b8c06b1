import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MmgridClient, type JobView } from '@mmgrid/client';
import type { FusionLlmOutput, ImageCaptionOutput, TextGenerateOutput } from '@mmgrid/core';
import type { WorkerView } from '@mmgrid/proto';
import { runCli, type CliResult } from '../helpers/cli.js';
import { fakeTextAnswer, startFakeOpenAiChat, type ChatCompletionRequest, type FakeOpenAiChat } from '../helpers/fake-openai-chat.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeTextPng } from '../helpers/media.js';
import { freePort } from '@mmgrid/cli';

const API_KEY = 'sekrit';
const CHAT_KINDS = ['text.generate', 'image.caption', 'fusion.llm'];

function jobOf(cli: CliResult): JobView {
  return JSON.parse(cli.stdout) as JobView;
}


/** An image of one colour. */
async function writeSolidImage(dir: string, name: string, width: number, height: number, colour: string): Promise<string> {
  const file = path.join(dir, name);
  await sharp({ create: { width, height, channels: 3, background: colour } }).toFile(file);
  return file;
}

/** The chat kinds a worker offers, with the models it announces for each. */
function chatOffers(worker: WorkerView | undefined): Record<string, string[]> {
  return Object.fromEntries((worker?.slots ?? []).filter((s) => CHAT_KINDS.includes(s.kind)).map((s) => [s.kind, s.models]));
}

describe('OpenAI-compatible chat backend', () => {
  let tg: TestGrid;
  let chat: FakeOpenAiChat;
  let dir: string;
  let env: Record<string, string>;
  let downUrl: string;
  let textConfig: string;

  async function jobFile(name: string, yaml: string): Promise<string> {
    const file = path.join(dir, name);
    await writeFile(file, yaml);
    return file;
  }

  async function submit(name: string, yaml: string): Promise<{ cli: CliResult; job: JobView }> {
    const cli = await runCli(['submit', '-f', await jobFile(name, yaml), '--wait', '--json', '-q'], env);
    expect(cli.stderr).toBe('');
    return { cli, job: jobOf(cli) };
  }

  /** The outputs of a job by input, then by step. */
  function outputs(job: JobView): Map<string, Record<string, unknown>> {
    return new Map(job.result?.doc.inputs.map((i) => [i.name, i.outputs]));
  }

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-chat-'));
    chat = await startFakeOpenAiChat({ apiKey: API_KEY });
    downUrl = `http://127.0.0.1:${await freePort()}`;
    // worker-1: a vision model (its URL written as OpenAI clients take it, ending in /v1).
    const visionConfig = await jobFile(
      'vision-worker.yaml',
      `backends:
  chat:
    - name: vision
      url: ${chat.url}/v1
      model: fake-vision
      apiKey: ${API_KEY}
      vision: true
      maxTokens: 64
`,
    );
    // worker-2: a text model, and three backends that fail their checks.
    textConfig = await jobFile(
      'text-worker.yaml',
      `backends:
  chat:
    - name: text
      url: ${chat.url}
      model: fake-text
      apiKey: ${API_KEY}
    - name: down
      url: ${downUrl}
      model: fake-vision
      vision: true
    - name: locked
      url: ${chat.url}
      model: fake-text
      apiKey: wrong
      kinds: [text.generate]
    - name: missing
      url: ${chat.url}
      model: llama-9000
      apiKey: ${API_KEY}
`,
    );
    tg = await startTestGrid({ workers: 1, workerArgs: ['--config', visionConfig, '--slots', 'image.ocr=1'] });
    // The last --config wins.
    await tg.grid.addWorker(['--config', textConfig]);
    env = { MMGRID_COORDINATOR: tg.grid.address };
    await writeSolidImage(dir, 'red.png', 64, 48, '#d01010');
    await writeSolidImage(dir, 'blue.tiff', 32, 24, '#1010d0');
    await writeFile(path.join(dir, 'notes.txt'), 'The grid splits long recordings into overlapping windows.\n');
    await writeTextPng(dir, 'sign.png', ['OPEN 24 HOURS']);
  });

  afterEach(() => {
    chat.failNext(0, 0);
    chat.faultNext({ type: 'break' }, 0);
    chat.setChunkDelay(0);
  });

  afterAll(async () => {
    await tg?.stop();
    await chat?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("announces each backend's model for its kinds, and names the backend in the start-up line", async () => {
    const { workers } = await tg.client.listWorkers();
    const byName = new Map(workers.map((w) => [w.name, w]));
    expect(chatOffers(byName.get('worker-1'))).toEqual({ 'text.generate': ['fake-vision'], 'image.caption': ['fake-vision'], 'fusion.llm': ['fake-vision'] });
    expect(byName.get('worker-1')?.warmModels).toEqual(['fake-vision']);
    expect(chatOffers(byName.get('worker-2'))).toEqual({ 'text.generate': ['fake-text'], 'fusion.llm': ['fake-text'] });
    expect(await tg.log('worker-1')).toContain(`vision: chat at ${chat.url}, model fake-vision (vision)`);
    // The check asked for the model list with the key.
    expect(chat.requests).toContainEqual({ method: 'GET', path: '/v1/models', authorization: `Bearer ${API_KEY}`, body: undefined });
  });

  it('leaves out a backend whose server is down, refuses the key or lacks the model, saying why, and does not offer its kinds', async () => {
    const log = await tg.log('worker-2');
    const down = log.split('\n').find((line) => line.includes('backend down (openai-chat) is left out'));
    expect(down).toContain(`the chat server at ${downUrl}/v1/models cannot be reached (fetch failed: connect ECONNREFUSED 127.0.0.1:${downUrl.split(':').pop()}); is it running, and is the URL right?`);
    expect(down).toContain('its kinds (text.generate, fusion.llm, image.caption) are not offered');
    expect(log).toContain(`backend locked (openai-chat) is left out: the chat server at ${chat.url} refused the API key; check apiKey (401: Incorrect API key provided)`);
    expect(log).toContain(
      `backend missing (openai-chat) is left out: the chat server at ${chat.url} has no model \\"llama-9000\\"; it has \\"fake-vision\\", \\"fake-text\\" (set model to one of them, or load \\"llama-9000\\" there)`,
    );
    expect(log).toMatch(/backends: text: chat at http:\/\/127\.0\.0\.1:\d+, model fake-text; down: left out \(see above\); locked: left out \(see above\); missing: left out \(see above\)/);
    const { workers } = await tg.client.listWorkers();
    const worker2 = workers.find((w) => w.name === 'worker-2');
    expect(worker2?.slots.map((s) => s.kind)).not.toContain('image.caption');
  });

  it('a declared job with text.generate and image.caption steps gives the exact answers', async () => {
    const before = chat.completions.length;
    const { cli, job } = await submit(
      'ask.yaml',
      `inputs:
  notes: notes.txt
  memo:
    text: Bring the red umbrella tomorrow.
  red: red.png
  photo: blue.tiff
steps:
  summary: { kind: text.generate, input: notes, requires: { model: fake-vision } }
  short:
    kind: text.generate
    input: memo
    requires: { model: fake-text }
    params: { instruction: List the objects., system: Answer in one line., maxTokens: 2, temperature: 0 }
  look: { kind: image.caption, input: red }
  ask: { kind: image.caption, input: photo, params: { question: What colour is it? } }
`,
    );
    expect(cli.code).toBe(0);
    expect(job.result?.partial).toBe(false);
    const out = outputs(job);
    expect(out.get('notes')?.['summary']).toEqual({
      text: 'Read 11 words; the longest is "overlapping".',
      model: 'fake-vision',
      finishReason: 'stop',
      usage: { promptTokens: 11, completionTokens: 7 },
    } satisfies TextGenerateOutput);
    // maxTokens 2: the answer is cut after two tokens.
    expect(out.get('memo')?.['short']).toEqual({ text: 'Read 8', model: 'fake-text', finishReason: 'length', usage: { promptTokens: 12, completionTokens: 2 } } satisfies TextGenerateOutput);
    expect(out.get('red')?.['look']).toEqual({
      text: 'You asked: "Describe this image in one or two sentences.". It is a 64×48 image, mostly red.',
      model: 'fake-vision',
      finishReason: 'stop',
      usage: { promptTokens: 8, completionTokens: 17 },
      question: null,
    } satisfies ImageCaptionOutput);
    expect((out.get('photo')?.['ask'] as ImageCaptionOutput).text).toBe('You asked: "What colour is it?". It is a 32×24 image, mostly blue.');
    expect((out.get('photo')?.['ask'] as ImageCaptionOutput).question).toBe('What colour is it?');

    const sent = chat.completions.slice(before);
    expect(sent.find((r) => r.messages[0]?.role === 'system')).toEqual({
      model: 'fake-text',
      messages: [
        { role: 'system', content: 'Answer in one line.' },
        { role: 'user', content: 'List the objects.\n\nBring the red umbrella tomorrow.' },
      ],
      max_tokens: 2,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    } satisfies ChatCompletionRequest);
    // The worker's maxTokens and default temperature when the step sets none.
    expect(sent.find((r) => r.model === 'fake-vision' && typeof r.messages[0]?.content === 'string')).toMatchObject({ max_tokens: 64, temperature: 0.2 });
    // A TIFF is sent as PNG; a PNG as it is.
    const imageUrls = sent.flatMap((r) => r.messages.flatMap((m) => (typeof m.content === 'string' ? [] : m.content.flatMap((p) => (p.type === 'image_url' ? [p.image_url.url] : [])))));
    expect(imageUrls).toHaveLength(2);
    expect(imageUrls.every((u) => u.startsWith('data:image/png;base64,'))).toBe(true);
  });

  it('places a step that requires a model on the worker that serves it', async () => {
    const { cli, job } = await submit(
      'placement.yaml',
      `inputs:
  memo: { text: One two three. }
steps:
${[1, 2, 3].map((i) => `  v${i}: { kind: text.generate, input: memo, requires: { model: fake-vision } }\n  t${i}: { kind: text.generate, input: memo, requires: { model: fake-text } }`).join('\n')}
`,
    );
    expect(cli.code).toBe(0);
    const tasks = job.tasks.filter((t) => t.kind === 'text.generate');
    expect(tasks).toHaveLength(6);
    for (const task of tasks) expect([task.label, task.workerName]).toEqual([task.label, task.label?.startsWith('v') ? 'worker-1' : 'worker-2']);
    const memo = outputs(job).get('memo') ?? {};
    for (const [step, output] of Object.entries(memo)) {
      expect((output as TextGenerateOutput).model).toBe(step.startsWith('v') ? 'fake-vision' : 'fake-text');
      expect((output as TextGenerateOutput).text).toBe(fakeTextAnswer('Summarise this text.\n\nOne two three.'));
    }
  });

  it('answers the prompt with fusion.llm over the fusion report: read → report → answer', async () => {
    const before = chat.completions.length;
    const { cli, job } = await submit(
      'fusion.yaml',
      `prompt: Is the shop open at night?
inputs:
  sign: sign.png
steps:
  read: { kind: image.ocr, input: sign }
  report: { kind: fusion.report, from: [read] }
  answer: { kind: fusion.llm, from: [report], requires: { model: fake-vision } }
`,
    );
    expect(cli.code).toBe(0);
    const [request] = chat.completions.slice(before);
    const question = request?.messages.find((m) => m.role === 'user')?.content;
    if (typeof question !== 'string') throw new Error('fusion.llm sent no user message');
    expect(request?.messages[0]?.role).toBe('system');
    expect(question).toMatch(/^Question: Is the shop open at night\?\n\nFindings:\n- sign \(image\):\n {2}- text reads "OPEN 24 HOURS" \(3 words, \d+% confidence\)\n/);
    expect(question).toContain('Words of the question found in the inputs: "open" in sign.');
    expect(question).toMatch(/If they do not answer it, say so plainly\.$/);

    const fusion = job.result?.doc.fusion as FusionLlmOutput;
    expect(fusion.summary).toBe(fakeTextAnswer(question));
    expect(job.result?.doc.summary).toBe(fusion.summary);
    expect(fusion.model).toBe('fake-vision');
    expect(fusion.prompt).toBe('Is the shop open at night?');
    expect(fusion.reportSummary).toMatch(/^Prompt: "Is the shop open at night\?"\.\nsign \(image\): text reads "OPEN 24 HOURS"/);
    expect(fusion.sections).toEqual([expect.objectContaining({ input: 'sign', modality: 'image', kinds: ['image.ocr'] })]);
    expect(fusion.matchedTerms).toEqual([{ term: 'open', foundIn: ['sign'] }]);
  });

  it('retries a step when the server is busy (503) or its stream breaks off, and fails it for good when it refuses (400)', async () => {
    const yaml = 'inputs:\n  memo: { text: Bring the red umbrella tomorrow. }\nsteps:\n  gen: { kind: text.generate, input: memo, requires: { model: fake-vision } }\n';
    const expected = fakeTextAnswer('Summarise this text.\n\nBring the red umbrella tomorrow.');

    chat.failNext(503, 1);
    const busy = await submit('busy.yaml', yaml);
    expect(busy.cli.code).toBe(0);
    expect(busy.job.tasks.find((t) => t.label === 'gen')?.attempts).toBe(2);
    expect((outputs(busy.job).get('memo')?.['gen'] as TextGenerateOutput).text).toBe(expected);

    chat.faultNext({ type: 'break' }, 1);
    const broken = await submit('broken.yaml', yaml);
    expect(broken.cli.code).toBe(0);
    expect(broken.job.tasks.find((t) => t.label === 'gen')?.attempts).toBe(2);
    expect((outputs(broken.job).get('memo')?.['gen'] as TextGenerateOutput).text).toBe(expected);

    chat.failNext(400, 1, "This model's maximum context length is 8192 tokens");
    const refused = await submit('refused.yaml', yaml);
    expect(refused.cli.code).toBe(1);
    expect(refused.job.error).toEqual({ code: 'BACKEND_REFUSED', message: "step gen (text.generate) failed: the chat server answered 400: This model's maximum context length is 8192 tokens" });
    expect(refused.job.tasks.find((t) => t.label === 'gen')?.attempts).toBe(1);

    // An error the server reports inside the stream, with a 400 code: refused too.
    chat.faultNext({ type: 'error', message: 'prompt too long', code: 400 }, 1);
    const inStream = await submit('in-stream.yaml', yaml);
    expect(inStream.cli.code).toBe(1);
    expect(inStream.job.error?.message).toBe('step gen (text.generate) failed: the chat server reported an error: prompt too long');
    expect(inStream.job.tasks.find((t) => t.label === 'gen')?.attempts).toBe(1);
  });

  it('refuses an image over 20 MiB without sending it', async () => {
    // Stored without compression: about 23 MB of PNG.
    const [width, height] = [3200, 2400];
    await sharp(randomBytes(width * height * 3), { raw: { width, height, channels: 3 } }).png({ compressionLevel: 0 }).toFile(path.join(dir, 'huge.png'));
    const before = chat.completions.length;
    const { cli, job } = await submit('huge.yaml', 'inputs:\n  huge: huge.png\nsteps:\n  look: { kind: image.caption, input: huge }\n');
    expect(cli.code).toBe(1);
    expect(job.error?.code).toBe('INPUT_TOO_LARGE');
    expect(job.error?.message).toMatch(/^step look \(image\.caption\) failed: "huge" is \d+ bytes; image\.caption sends images of at most 20 MiB \(20971520 bytes\) to the model$/);
    expect(job.tasks.find((t) => t.label === 'look')?.attempts).toBe(1);
    expect(chat.completions.length).toBe(before);
  });

  it('shows tokens arriving as progress, and a cancelled job stops the generation on the server', async () => {
    chat.setChunkDelay(1000);
    const started = once(chat.events, 'stream-started');
    const job = await tg.client.submit([{ name: 'memo', text: 'Bring the red umbrella tomorrow.' }], {
      steps: { gen: { kind: 'text.generate', input: 'memo', requires: { model: 'fake-vision' } } },
    });
    await started;
    for await (const event of tg.client.watch(job.id)) {
      if (event.type === 'progress' && event.message === '1 token') break;
    }
    const abandoned = once(chat.events, 'abandoned');
    await tg.client.cancel(job.id);
    await abandoned;
    const ended = await tg.client.waitForJob(job.id);
    expect(ended.state).toBe('cancelled');
  });

  it('a worker refuses to start with image.caption for a model without vision, saying how to fix it (exit 2)', async () => {
    const config = await jobFile('no-vision.yaml', `backends:\n  chat:\n    - name: plain\n      url: ${chat.url}\n      model: fake-text\n      kinds: [text.generate, image.caption]\n`);
    const cli = await runCli(['worker', '--config', config, '--coordinator', tg.grid.address, '--state-dir', path.join(dir, 'no-vision-state')]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain(
      'option backends.chat "plain" kinds must be text.generate and fusion.llm only: image.caption needs a model that takes images; if this one does, add "vision: true" (got',
    );
    expect(cli.stderr).not.toMatch(/\n\s+at /);
  });
  it('plans LLM fusion on every replica as soon as a worker offering fusion.llm joins any of them', async () => {
    // Replica 2 has planned a job (and so learnt what the fleet offers) before the worker came.
    const two = await startTestGrid({ workers: 0, replicas: 2 });
    const onReplica2 = new MmgridClient({ address: two.grid.addresses[1] ?? '' });
    try {
      const kindsOf = (job: JobView): string[] => job.tasks.map((t) => t.kind);
      const before = await onReplica2.submit([{ name: 'memo', text: 'The shop opens at nine.' }], { prompt: 'When does it open?' });
      expect(kindsOf(before)).toContain('fusion.report');
      expect(kindsOf(before)).not.toContain('fusion.llm');
      // The worker connects to replica 1 (the first address it is given).
      await two.grid.addWorker(['--config', textConfig]);
      const after = await onReplica2.submit([{ name: 'memo', text: 'The shop opens at nine.' }], { prompt: 'When does it open?' });
      expect(kindsOf(after)).toContain('fusion.llm');
      await onReplica2.cancel(before.id);
      await onReplica2.cancel(after.id);
    } finally {
      onReplica2.close();
      await two.stop();
    }
  });
});
