import { describe, expect, it } from 'vitest';
import { PlanError } from '../errors.js';
import { PROMPT_INPUT_NAME } from '../job-spec.js';
import { plan, type PlanInput, type PlanRequest } from '../planner.js';
import { ASSEMBLE_KIND } from '../task-kinds.js';
import { validateTaskGraph, type TaskGraph } from '../task-graph.js';

const image = (name: string): PlanInput => ({ name, modality: 'image', mediaType: 'image/png' });
const audio = (name: string): PlanInput => ({ name, modality: 'audio', mediaType: 'audio/wav' });
const text = (name: string): PlanInput => ({ name, modality: 'text', mediaType: 'text/plain' });
const video = (name: string): PlanInput => ({ name, modality: 'video', mediaType: 'video/mp4' });

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
  { name: 'one recording', inputs: [audio('memo')], prompt: '', kinds: { memo: ['audio.analyze'] } },
  { name: 'one text', inputs: [text('notes')], prompt: '', kinds: { notes: ['text.stats'] } },
  { name: 'prompt only', inputs: [], prompt: 'What is in the picture?', kinds: { [PROMPT_INPUT_NAME]: ['text.stats'] } },
  { name: 'blank prompt is not analysed', inputs: [image('cat')], prompt: '  \n', kinds: { cat: ['image.ocr', 'image.inspect'] } },
  {
    name: 'image, recording, text and prompt',
    inputs: [image('cat'), audio('memo'), text('notes')],
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
    const request = (): PlanRequest => ({ pipeline: 'describe', inputs: [audio('memo'), image('cat'), text('notes')], prompt: 'hello' });
    const a = plan(request());
    const b = plan(request());
    expect(b).toEqual(a);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });

  it('keeps the order of the inputs', () => {
    const graph = plan({ pipeline: 'describe', inputs: [text('z'), image('a'), audio('m')], prompt: '' });
    expect(graph.tasks.flatMap((t) => t.inputNames)).toEqual(['z', 'a', 'a', 'm']);
  });
});

describe('plan: refusals', () => {
  const refusals: { name: string; request: PlanRequest; message: RegExp }[] = [
    { name: 'video input', request: { pipeline: 'describe', inputs: [image('cat'), video('clip')], prompt: '' }, message: /"clip" is video \(video\/mp4\).*takes image, audio, text/ },
    { name: 'unknown pipeline', request: { pipeline: 'transcribe', inputs: [audio('memo')], prompt: '' }, message: /unknown pipeline "transcribe"/ },
    { name: 'empty pipeline name', request: { pipeline: '', inputs: [audio('memo')], prompt: '' }, message: /unknown pipeline ""/ },
    { name: 'nothing to analyse', request: { pipeline: 'describe', inputs: [], prompt: ' ' }, message: /nothing to analyse/ },
  ];
  it.each(refusals)('$name', ({ request, message }) => {
    expect(() => plan(request)).toThrow(PlanError);
    expect(() => plan(request)).toThrow(message);
  });

  it('refuses with the PLAN_FAILED code', () => {
    try {
      plan({ pipeline: 'describe', inputs: [video('clip')], prompt: '' });
      expect.unreachable('plan should refuse video');
    } catch (err) {
      expect(err).toBeInstanceOf(PlanError);
      if (err instanceof PlanError) expect(err.code).toBe('PLAN_FAILED');
    }
  });
});
