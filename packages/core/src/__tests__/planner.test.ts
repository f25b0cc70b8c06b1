import { describe, expect, it } from 'vitest';
import { InvalidJobSpecError, PlanError } from '../errors.js';
import { PROMPT_INPUT_NAME } from '../job-spec.js';
import { plan, type PlanInput, type PlanRequest } from '../planner.js';
import { DEFAULT_SHARDING } from '../sharding.js';
import { ASSEMBLE_KIND } from '../task-kinds.js';
import { NO_REQUIREMENTS, validateTaskGraph, type TaskGraph, type TaskNode } from '../task-graph.js';

const image = (name: string): PlanInput => ({ name, modality: 'image', mediaType: 'image/png' });
/** A recording; with a duration of at most one window (30 s) it is analysed in one task. */
const audio = (name: string, durationSec?: number): PlanInput => ({ name, modality: 'audio', mediaType: 'audio/wav', ...(durationSec !== undefined ? { durationSec } : {}) });
const text = (name: string, bytes?: number): PlanInput => ({ name, modality: 'text', mediaType: 'text/plain', ...(bytes !== undefined ? { bytes } : {}) });
const video = (name: string, durationSec?: number): PlanInput => ({ name, modality: 'video', mediaType: 'video/mp4', ...(durationSec !== undefined ? { durationSec } : {}) });

/** Kinds of the input-reading tasks, grouped by the input they read, in task order. */
function kindsByInput(graph: TaskGraph): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const task of graph.tasks) {
    for (const name of task.inputNames) (out[name] ??= []).push(task.kind);
  }
  return out;
}

const cases: { name: string; inputs: PlanInput[]; prompt: string; kinds: Record<string, string[]> }[] = [
  { name: 'one image', inputs: [image('cat')], prompt: '', kinds: { cat: ['image.ocr', 'image.inspect'] } },
  { name: 'one short recording', inputs: [audio('memo', 12)], prompt: '', kinds: { memo: ['audio.analyze'] } },
  { name: 'a recording of exactly one window', inputs: [audio('memo', 30)], prompt: '', kinds: { memo: ['audio.analyze'] } },
  { name: 'one text', inputs: [text('notes')], prompt: '', kinds: { notes: ['text.stats'] } },
  { name: 'one text of exactly chunkChars bytes', inputs: [text('notes', 4000)], prompt: '', kinds: { notes: ['text.stats'] } },
  { name: 'prompt only', inputs: [], prompt: 'What is in the picture?', kinds: { [PROMPT_INPUT_NAME]: ['text.stats'] } },
  { name: 'blank prompt is not analysed', inputs: [image('cat')], prompt: '  \n', kinds: { cat: ['image.ocr', 'image.inspect'] } },
  {
    name: 'image, recording, text and prompt',
    inputs: [image('cat'), audio('memo', 3), text('notes', 18)],
    prompt: 'Is there a cat?',
    kinds: { cat: ['image.ocr', 'image.inspect'], memo: ['audio.analyze'], notes: ['text.stats'], [PROMPT_INPUT_NAME]: ['text.stats'] },
  },
  {
    name: 'two images and a prompt',
    inputs: [image('front'), image('back')],
    prompt: 'compare',
    kinds: { front: ['image.ocr', 'image.inspect'], back: ['image.ocr', 'image.inspect'], [PROMPT_INPUT_NAME]: ['text.stats'] },
  },
];

describe('plan: describe pipeline', () => {
  it.each(cases)('$name', ({ inputs, prompt, kinds }) => {
    const request: PlanRequest = { pipeline: 'describe', inputs, prompt };
    const graph = plan(request);
    expect(() => validateTaskGraph(graph)).not.toThrow();
    expect(graph.pipeline).toBe('describe');
    expect(kindsByInput(graph)).toEqual(kinds);

    const readers = graph.tasks.filter((t) => t.inputNames.length > 0);
    const fusion = graph.tasks.filter((t) => t.kind === 'fusion.report');
    const root = graph.tasks[graph.tasks.length - 1];
    expect(fusion).toHaveLength(1);
    expect(graph.tasks).toHaveLength(readers.length + 2);

    // Every modality task reads one input, is optional and feeds the fusion.
    for (const task of readers) {
      expect(task.inputNames).toHaveLength(1);
      expect(task.optional).toBe(true);
      expect(task.dependsOn).toEqual([]);
    }
    expect(fusion[0]?.dependsOn).toEqual(readers.map((t) => t.id));
    expect(fusion[0]?.optional).toBe(false);
    expect(fusion[0]?.params).toEqual({ prompt, inputs: inputs.map((i) => ({ name: i.name, modality: i.modality })) });

    // The root assembles, comes last, and depends on the fusion alone.
    expect(root?.kind).toBe(ASSEMBLE_KIND);
    expect(root?.id).toBe(graph.rootId);
    expect(root?.optional).toBe(false);
    expect(root?.dependsOn).toEqual([fusion[0]?.id]);

    // Task ids are unique.
    expect(new Set(graph.tasks.map((t) => t.id)).size).toBe(graph.tasks.length);
  });

  it('tells text.stats whether it reads an input or the prompt', () => {
    const graph = plan({ pipeline: 'describe', inputs: [text('notes')], prompt: 'why?' });
    const stats = graph.tasks.filter((t) => t.kind === 'text.stats').map((t) => [t.inputNames[0], t.params['source']]);
    expect(stats).toEqual([
      ['notes', 'input'],
      [PROMPT_INPUT_NAME, 'prompt'],
    ]);
  });

  it('is deterministic: the same request gives the same graph', () => {
    const request = (): PlanRequest => ({ pipeline: 'describe', inputs: [audio('memo'), image('cat'), text('notes', 9000), video('clip')], prompt: 'hello' });
    const a = plan(request());
    const b = plan(request());
    expect(b).toEqual(a);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });

  it('keeps the order of the inputs', () => {
    const graph = plan({ pipeline: 'describe', inputs: [text('z'), image('a'), audio('m', 5)], prompt: '' });
    expect(graph.tasks.flatMap((t) => t.inputNames)).toEqual(['z', 'a', 'a', 'm']);
    const split = plan({ pipeline: 'describe', inputs: [video('v'), text('z'), audio('m')], prompt: '' });
    expect(split.tasks.flatMap((t) => t.inputNames)).toEqual(['v', 'v', 'z', 'm', 'm']);
  });
});

describe('plan: refusals', () => {
  const refusals: { name: string; request: PlanRequest; message: RegExp }[] = [
    { name: 'unknown pipeline', request: { pipeline: 'translate', inputs: [audio('memo')], prompt: '' }, message: /unknown pipeline "translate"/ },
    { name: 'empty pipeline name', request: { pipeline: '', inputs: [audio('memo')], prompt: '' }, message: /unknown pipeline ""/ },
    { name: 'nothing to analyse', request: { pipeline: 'describe', inputs: [], prompt: ' ' }, message: /nothing to analyse/ },
  ];
  it.each(refusals)('$name', ({ request, message }) => {
    expect(() => plan(request)).toThrow(PlanError);
    expect(() => plan(request)).toThrow(message);
  });

  it('refuses with the PLAN_FAILED code', () => {
    try {
      plan({ pipeline: 'transcribe', inputs: [image('cat')], prompt: '' });
      expect.unreachable('plan should refuse an image for transcribe');
    } catch (err) {
      expect(err).toBeInstanceOf(PlanError);
      if (err instanceof PlanError) expect(err.code).toBe('PLAN_FAILED');
    }
  });
});

/** The task with this kind; fails the test when there is none. */
function only(graph: TaskGraph, kind: string): TaskNode {
  const found = graph.tasks.filter((t) => t.kind === kind);
  expect(found, `tasks of kind ${kind}`).toHaveLength(1);
  const task = found[0];
  if (!task) throw new Error(`no ${kind} task`);
  return task;
}

describe('plan: describe pipeline, long or unprobed recordings', () => {
  it.each([
    { name: 'duration unknown', input: audio('memo') },
    { name: 'just over one window', input: audio('memo', 30.001) },
    { name: 'an hour long', input: audio('memo', 3600) },
  ])('$name: split into windows and stitched', ({ input }) => {
    const graph = plan({ pipeline: 'describe', inputs: [input], prompt: 'what is said?' });
    expect(() => validateTaskGraph(graph)).not.toThrow();
    expect(graph.tasks.map((t) => t.kind)).toEqual(['audio.split', 'audio.stitch', 'text.stats', 'fusion.report', ASSEMBLE_KIND]);
    expect(kindsByInput(graph)).toEqual({ memo: ['audio.split', 'audio.stitch'], [PROMPT_INPUT_NAME]: ['text.stats'] });

    const split = only(graph, 'audio.split');
    const stitch = only(graph, 'audio.stitch');
    const fusion = only(graph, 'fusion.report');
    expect(split).toMatchObject({ inputNames: ['memo'], dependsOn: [], optional: true, intermediate: true, requirements: NO_REQUIREMENTS });
    expect(split.params).toEqual({ windowSec: 30, overlapSec: 2, sampleRate: 16_000 });
    expect(stitch).toMatchObject({ inputNames: ['memo'], dependsOn: [split.id], optional: true });
    expect(stitch.intermediate).toBeUndefined();
    expect(stitch.params).toEqual({
      shardKind: 'audio.analyze',
      outputAs: 'audio.analyze',
      shardParams: { frameMs: 20 },
      shardRequirements: { model: '', minVramBytes: 0, minComputeCapability: '', cpuAllowed: true },
      windowSec: 30,
      overlapSec: 2,
    });
    // The stitch, not the split, stands for the recording in the fusion.
    expect(fusion.dependsOn).toEqual([stitch.id, only(graph, 'text.stats').id]);
    expect(fusion.params).toEqual({ prompt: 'what is said?', inputs: [{ name: 'memo', modality: 'audio' }] });
  });

  it('a short recording is one audio.analyze task with the default frame length', () => {
    const graph = plan({ pipeline: 'describe', inputs: [audio('memo', 3)], prompt: '' });
    expect(only(graph, 'audio.analyze')).toMatchObject({ inputNames: ['memo'], params: { frameMs: 20 }, optional: true, dependsOn: [] });
    expect(only(graph, 'audio.analyze').intermediate).toBeUndefined();
  });

  it.each([
    { name: 'a wider window takes a 45 s recording in one task', params: { windowSec: '60' }, durationSec: 45, kinds: ['audio.analyze'] },
    { name: 'a narrower window splits a 20 s recording', params: { windowSec: '10', overlapSec: '1' }, durationSec: 20, kinds: ['audio.split', 'audio.stitch'] },
    { name: 'a window equal to the duration is one task', params: { windowSec: '20' }, durationSec: 20, kinds: ['audio.analyze'] },
  ])('windowSec decides: $name', ({ params, durationSec, kinds }) => {
    const graph = plan({ pipeline: 'describe', inputs: [audio('memo', durationSec)], prompt: '', params });
    expect(kindsByInput(graph)).toEqual({ memo: kinds });
  });

  it('passes windowSec and overlapSec to the split and the stitch', () => {
    const graph = plan({ pipeline: 'describe', inputs: [audio('memo')], prompt: '', params: { windowSec: '12.5', overlapSec: '0.5' } });
    expect(only(graph, 'audio.split').params).toEqual({ windowSec: 12.5, overlapSec: 0.5, sampleRate: DEFAULT_SHARDING.sampleRate });
    expect(only(graph, 'audio.stitch').params).toMatchObject({ windowSec: 12.5, overlapSec: 0.5 });
  });

  it('splits each long recording on its own', () => {
    const graph = plan({ pipeline: 'describe', inputs: [audio('a'), audio('b', 2), audio('c', 90)], prompt: '' });
    expect(() => validateTaskGraph(graph)).not.toThrow();
    expect(kindsByInput(graph)).toEqual({ a: ['audio.split', 'audio.stitch'], b: ['audio.analyze'], c: ['audio.split', 'audio.stitch'] });
    const stitches = graph.tasks.filter((t) => t.kind === 'audio.stitch');
    for (const stitch of stitches) {
      const split = graph.tasks.find((t) => t.id === stitch.dependsOn[0]);
      expect(split?.kind).toBe('audio.split');
      expect(split?.inputNames).toEqual(stitch.inputNames);
    }
  });
});

describe('plan: describe pipeline, long texts', () => {
  it.each([
    { name: 'over chunkChars', bytes: 4001 },
    { name: 'a megabyte', bytes: 1_000_000 },
  ])('$name: split into chunks and stitched', ({ bytes }) => {
    const graph = plan({ pipeline: 'describe', inputs: [text('book', bytes)], prompt: '' });
    expect(() => validateTaskGraph(graph)).not.toThrow();
    expect(graph.tasks.map((t) => t.kind)).toEqual(['text.split', 'text.stitch', 'fusion.report', ASSEMBLE_KIND]);
    const split = only(graph, 'text.split');
    const stitch = only(graph, 'text.stitch');
    expect(split).toMatchObject({ inputNames: ['book'], params: { maxChars: 4000 }, dependsOn: [], optional: true, intermediate: true });
    expect(stitch).toMatchObject({ inputNames: ['book'], dependsOn: [split.id], optional: true });
    expect(stitch.params).toEqual({ shardKind: 'text.stats', outputAs: 'text.stats', source: 'input', shardRequirements: { model: '', minVramBytes: 0, minComputeCapability: '', cpuAllowed: true } });
    expect(only(graph, 'fusion.report').dependsOn).toEqual([stitch.id]);
  });

  it('a text of unknown size is one text.stats task', () => {
    expect(kindsByInput(plan({ pipeline: 'describe', inputs: [text('notes')], prompt: '' }))).toEqual({ notes: ['text.stats'] });
  });

  it('chunkChars moves the boundary and sets the chunk size', () => {
    const small = plan({ pipeline: 'describe', inputs: [text('notes', 5000)], prompt: '', params: { chunkChars: '8000' } });
    expect(kindsByInput(small)).toEqual({ notes: ['text.stats'] });
    const cut = plan({ pipeline: 'describe', inputs: [text('notes', 5000)], prompt: '', params: { chunkChars: '1000' } });
    expect(only(cut, 'text.split').params).toEqual({ maxChars: 1000 });
  });

  it('always analyses the prompt in one text.stats task, however long', () => {
    const prompt = 'word '.repeat(5000);
    const graph = plan({ pipeline: 'describe', inputs: [], prompt, params: { chunkChars: '100' } });
    expect(graph.tasks.map((t) => t.kind)).toEqual(['text.stats', 'fusion.report', ASSEMBLE_KIND]);
    expect(only(graph, 'text.stats')).toMatchObject({ inputNames: [PROMPT_INPUT_NAME], params: { source: 'prompt' } });
  });
});

describe('plan: describe pipeline, videos', () => {
  it.each([
    { name: 'duration unknown', input: video('clip') },
    { name: 'a short clip is still split', input: video('clip', 2) },
  ])('$name: video.split and video.stitch, frames read and sound analysed', ({ input }) => {
    const graph = plan({ pipeline: 'describe', inputs: [image('cat'), input], prompt: '' });
    expect(() => validateTaskGraph(graph)).not.toThrow();
    expect(kindsByInput(graph)).toEqual({ cat: ['image.ocr', 'image.inspect'], clip: ['video.split', 'video.stitch'] });
    const split = only(graph, 'video.split');
    const stitch = only(graph, 'video.stitch');
    expect(split).toMatchObject({ dependsOn: [], optional: true, intermediate: true });
    expect(split.params).toEqual({ fps: 1, maxFrames: 600, frameMaxPx: 768, audio: true, windowSec: 30, overlapSec: 2, sampleRate: 16_000 });
    expect(stitch).toMatchObject({ dependsOn: [split.id], optional: true });
    expect(stitch.params).toEqual({ frameKind: 'image.ocr', audioKind: 'audio.analyze', fps: 1, windowSec: 30, overlapSec: 2, outputAs: 'video.stitch' });
    const fusion = only(graph, 'fusion.report');
    expect(fusion.dependsOn).toContain(stitch.id);
    expect(fusion.dependsOn).not.toContain(split.id);
    expect(fusion.params['inputs']).toEqual([
      { name: 'cat', modality: 'image' },
      { name: 'clip', modality: 'video' },
    ]);
  });

  it('takes fps and maxFrames from the params', () => {
    const graph = plan({ pipeline: 'describe', inputs: [video('clip')], prompt: '', params: { fps: '0.5', maxFrames: '10' } });
    expect(only(graph, 'video.split').params).toMatchObject({ fps: 0.5, maxFrames: 10 });
    expect(only(graph, 'video.stitch').params).toMatchObject({ fps: 0.5 });
  });
});

describe('plan: describe pipeline, bad params', () => {
  it.each([
    { param: 'windowSec', value: '0' },
    { param: 'windowSec', value: '3601' },
    { param: 'windowSec', value: 'long' },
    { param: 'overlapSec', value: '-1' },
    { param: 'overlapSec', value: '601' },
    { param: 'fps', value: '0' },
    { param: 'fps', value: '31' },
    { param: 'maxFrames', value: '0' },
    { param: 'maxFrames', value: '1.5' },
    { param: 'maxFrames', value: '10001' },
    { param: 'chunkChars', value: '99' },
    { param: 'chunkChars', value: '1000001' },
    { param: 'chunkChars', value: '4000.5' },
  ])('$param=$value', ({ param, value }) => {
    try {
      plan({ pipeline: 'describe', inputs: [audio('memo')], prompt: '', params: { [param]: value } });
      expect.unreachable('plan should refuse the parameter');
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidJobSpecError);
      if (!(err instanceof InvalidJobSpecError)) return;
      expect(err.path).toBe(`params.${param}`);
      expect(err.message).toContain(JSON.stringify(value));
    }
  });

  it.each([
    { name: 'equal to the window', params: { windowSec: '10', overlapSec: '10' } },
    { name: 'longer than the default window', params: { overlapSec: '31' } },
  ])('refuses an overlap $name', ({ params }) => {
    try {
      plan({ pipeline: 'describe', inputs: [audio('memo')], prompt: '', params });
      expect.unreachable('plan should refuse the overlap');
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidJobSpecError);
      if (err instanceof InvalidJobSpecError) {
        expect(err.path).toBe('params.overlapSec');
        expect(err.message).toMatch(/must be shorter than windowSec/);
      }
    }
  });

  it('checks the params even when no input would be split', () => {
    expect(() => plan({ pipeline: 'describe', inputs: [image('cat')], prompt: '', params: { windowSec: '0' } })).toThrow(InvalidJobSpecError);
  });
});

describe('plan: fusion with a language model', () => {
  const inputs: PlanInput[] = [{ name: 'cat', modality: 'image', mediaType: 'image/png' }];

  it('adds fusion.llm over the report when a worker offers it', () => {
    const graph = plan({ pipeline: 'describe', inputs, prompt: 'Is there a cat?', offered: new Set(['image.ocr', 'fusion.llm']) });
    const report = only(graph, 'fusion.report');
    const llm = only(graph, 'fusion.llm');
    expect(llm.dependsOn).toEqual([report.id]);
    expect(llm.optional).toBe(true);
    expect(report.optional).toBe(false);
    expect(graph.tasks.find((t) => t.id === graph.rootId)?.dependsOn).toEqual([llm.id]);
  });

  it('keeps the deterministic report alone when no worker offers it', () => {
    for (const offered of [undefined, new Set(['image.ocr', 'text.generate'])]) {
      const graph = plan({ pipeline: 'describe', inputs, prompt: 'Is there a cat?', ...(offered ? { offered } : {}) });
      expect(graph.tasks.map((t) => t.kind)).not.toContain('fusion.llm');
      expect(graph.tasks.find((t) => t.id === graph.rootId)?.dependsOn).toEqual([only(graph, 'fusion.report').id]);
    }
  });

  it('video-summary fuses with it too; transcribe and ocr have no fusion', () => {
    const offered = new Set(['fusion.llm']);
    const video: PlanInput[] = [{ name: 'clip', modality: 'video', mediaType: 'video/mp4', durationSec: 4 }];
    expect(plan({ pipeline: 'video-summary', inputs: video, prompt: 'x', offered }).tasks.map((t) => t.kind)).toContain('fusion.llm');
    expect(plan({ pipeline: 'ocr', inputs: video, prompt: '', offered }).tasks.map((t) => t.kind)).not.toContain('fusion.llm');
  });
});
