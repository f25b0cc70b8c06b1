import { describe, expect, it } from 'vitest';
import { InvalidJobSpecError, PlanError } from '../errors.js';
import { PROMPT_INPUT_NAME, validateJobSpec } from '../job-spec.js';
import { builtinPipelines, pipelineInfo, pipelineNames } from '../pipelines.js';
import { plan, type PlanInput, type PlanRequest } from '../planner.js';
import { ASSEMBLE_KIND, taskKindInfo } from '../task-kinds.js';
import { NO_REQUIREMENTS, validateTaskGraph, type TaskGraph } from '../task-graph.js';

const image = (name: string): PlanInput => ({ name, modality: 'image', mediaType: 'image/png' });
const audio = (name: string, durationSec?: number): PlanInput => ({ name, modality: 'audio', mediaType: 'audio/wav', ...(durationSec !== undefined ? { durationSec } : {}) });
const text = (name: string): PlanInput => ({ name, modality: 'text', mediaType: 'text/plain' });
const video = (name: string, durationSec?: number): PlanInput => ({ name, modality: 'video', mediaType: 'video/mp4', ...(durationSec !== undefined ? { durationSec } : {}) });

/** [id, kind, input, dependsOn] of every task: the graph's shape at a glance. */
function shape(graph: TaskGraph): [string, string, string | null, string[]][] {
  return graph.tasks.map((t) => [t.id, t.kind, t.inputNames[0] ?? null, [...t.dependsOn]]);
}

function planError(request: PlanRequest): PlanError {
  try {
    plan(request);
  } catch (err) {
    expect(err).toBeInstanceOf(PlanError);
    if (err instanceof PlanError) return err;
  }
  throw new Error('expected a PlanError, nothing was thrown');
}

describe('built-in pipelines', () => {
  it('are listed in a stable order', () => {
    expect(pipelineNames()).toEqual(['describe', 'transcribe', 'ocr', 'video-summary', 'declared', 'selftest']);
    expect(builtinPipelines().map((p) => p.name)).toEqual(pipelineNames());
  });

  it.each([
    { name: 'describe', modalities: ['image', 'audio', 'video', 'text'], params: ['windowSec', 'overlapSec', 'fps', 'maxFrames', 'chunkChars'] },
    { name: 'transcribe', modalities: ['audio'], params: ['windowSec', 'overlapSec'] },
    { name: 'ocr', modalities: ['image', 'video'], params: ['fps', 'maxFrames'] },
    { name: 'video-summary', modalities: ['video'], params: ['windowSec', 'overlapSec', 'fps', 'maxFrames'] },
    { name: 'declared', modalities: ['image', 'audio', 'video', 'text'], params: [] },
  ])('$name takes $modalities', ({ name, modalities, params }) => {
    const info = pipelineInfo(name);
    expect(info?.modalities).toEqual(modalities);
    expect(info?.params.map((p) => p.name)).toEqual(params);
    expect(info?.steps.length).toBeGreaterThan(0);
  });

  it('every kind a pipeline plans is a known kind', () => {
    const requests: PlanRequest[] = [
      { pipeline: 'describe', inputs: [image('i'), audio('a'), text('t'), video('v')], prompt: 'p' },
      { pipeline: 'transcribe', inputs: [audio('a')], prompt: '' },
      { pipeline: 'ocr', inputs: [image('i'), video('v')], prompt: '' },
      { pipeline: 'video-summary', inputs: [video('v')], prompt: 'p' },
    ];
    for (const request of requests) {
      for (const t of plan(request).tasks) expect(taskKindInfo(t.kind), t.kind).toBeDefined();
    }
  });
});

describe('plan: transcribe pipeline', () => {
  it('splits and stitches every recording, even a short one, with no fusion', () => {
    const graph = plan({ pipeline: 'transcribe', inputs: [audio('call'), audio('memo', 4)], prompt: '' });
    expect(() => validateTaskGraph(graph)).not.toThrow();
    expect(graph.pipeline).toBe('transcribe');
    expect(shape(graph)).toEqual([
      ['t1', 'audio.split', 'call', []],
      ['t2', 'audio.stitch', 'call', ['t1']],
      ['t3', 'audio.split', 'memo', []],
      ['t4', 'audio.stitch', 'memo', ['t3']],
      ['t5', ASSEMBLE_KIND, null, ['t2', 't4']],
    ]);
    expect(graph.rootId).toBe('t5');
  });

  it('runs audio.transcribe on every window and files the transcript under that kind', () => {
    const graph = plan({ pipeline: 'transcribe', inputs: [audio('call')], prompt: '' });
    const [split, stitch] = graph.tasks;
    expect(split).toMatchObject({ intermediate: true, optional: true, params: { windowSec: 30, overlapSec: 2, sampleRate: 16_000 } });
    expect(stitch).toMatchObject({ optional: true, requirements: NO_REQUIREMENTS });
    expect(stitch?.intermediate).toBeUndefined();
    expect(stitch?.params).toEqual({
      shardKind: 'audio.transcribe',
      outputAs: 'audio.transcribe',
      shardParams: {},
      shardRequirements: { model: '', minVramBytes: 0, minComputeCapability: '', cpuAllowed: true },
      windowSec: 30,
      overlapSec: 2,
    });
  });

  it('takes windowSec and overlapSec', () => {
    const graph = plan({ pipeline: 'transcribe', inputs: [audio('call')], prompt: '', params: { windowSec: '15', overlapSec: '1.5' } });
    expect(graph.tasks[0]?.params).toEqual({ windowSec: 15, overlapSec: 1.5, sampleRate: 16_000 });
    expect(graph.tasks[1]?.params).toMatchObject({ windowSec: 15, overlapSec: 1.5 });
  });

  it('does not analyse the prompt', () => {
    const graph = plan({ pipeline: 'transcribe', inputs: [audio('call')], prompt: 'who speaks?' });
    expect(graph.tasks.some((t) => t.inputNames.includes(PROMPT_INPUT_NAME))).toBe(false);
    expect(graph.tasks.some((t) => t.kind === 'fusion.report')).toBe(false);
  });

  it.each([
    { name: 'an image', input: image('cat'), message: 'input "cat" is image (image/png); the transcribe pipeline takes audio' },
    { name: 'a video', input: video('clip'), message: 'input "clip" is video (video/mp4); the transcribe pipeline takes audio' },
    { name: 'a text', input: text('notes'), message: 'input "notes" is text (text/plain); the transcribe pipeline takes audio' },
  ])('refuses $name, naming what it takes', ({ input, message }) => {
    const err = planError({ pipeline: 'transcribe', inputs: [audio('call'), input], prompt: '' });
    expect(err.message).toBe(message);
    expect(err.code).toBe('PLAN_FAILED');
  });

  it('refuses a job without recordings', () => {
    expect(planError({ pipeline: 'transcribe', inputs: [], prompt: 'hello' }).message).toMatch(/needs at least one recording/);
  });

  it('refuses an overlap as long as the window', () => {
    expect(() => plan({ pipeline: 'transcribe', inputs: [audio('call')], prompt: '', params: { windowSec: '5', overlapSec: '5' } })).toThrow(InvalidJobSpecError);
  });
});

describe('plan: ocr pipeline', () => {
  it('reads images in one task and videos frame by frame, without their sound', () => {
    const graph = plan({ pipeline: 'ocr', inputs: [image('sign'), video('clip'), image('menu')], prompt: 'what is written?' });
    expect(() => validateTaskGraph(graph)).not.toThrow();
    expect(graph.pipeline).toBe('ocr');
    expect(shape(graph)).toEqual([
      ['t1', 'image.ocr', 'sign', []],
      ['t2', 'video.split', 'clip', []],
      ['t3', 'video.stitch', 'clip', ['t2']],
      ['t4', 'image.ocr', 'menu', []],
      ['t5', ASSEMBLE_KIND, null, ['t1', 't3', 't4']],
    ]);
    const [ocr, split, stitch] = graph.tasks;
    expect(ocr).toMatchObject({ params: { language: 'eng' }, optional: true });
    expect(split).toMatchObject({ intermediate: true, optional: true });
    expect(split?.params).toEqual({ fps: 1, maxFrames: 600, frameMaxPx: 768, audio: false, windowSec: 30, overlapSec: 2, sampleRate: 16_000 });
    expect(stitch?.params).toEqual({ frameKind: 'image.ocr', audioKind: null, fps: 1, windowSec: 30, overlapSec: 2, outputAs: 'video.stitch' });
    expect(stitch?.optional).toBe(true);
  });

  it('has no fusion and does not analyse the prompt', () => {
    const graph = plan({ pipeline: 'ocr', inputs: [image('sign')], prompt: 'what is written?' });
    expect(graph.tasks.map((t) => t.kind)).toEqual(['image.ocr', ASSEMBLE_KIND]);
  });

  it('takes fps and maxFrames', () => {
    const graph = plan({ pipeline: 'ocr', inputs: [video('clip')], prompt: '', params: { fps: '4', maxFrames: '100' } });
    expect(graph.tasks[0]?.params).toMatchObject({ fps: 4, maxFrames: 100, audio: false });
    expect(graph.tasks[1]?.params).toMatchObject({ fps: 4 });
  });

  it.each([
    { name: 'a recording', input: audio('memo', 3), message: 'input "memo" is audio (audio/wav); the ocr pipeline takes image, video' },
    { name: 'a text', input: text('notes'), message: 'input "notes" is text (text/plain); the ocr pipeline takes image, video' },
  ])('refuses $name, naming what it takes', ({ input, message }) => {
    expect(planError({ pipeline: 'ocr', inputs: [image('sign'), input], prompt: '' }).message).toBe(message);
  });

  it('refuses a job without images or videos', () => {
    expect(planError({ pipeline: 'ocr', inputs: [], prompt: 'hello' }).message).toMatch(/needs at least one image or video/);
  });
});

describe('plan: video-summary pipeline', () => {
  it('splits every video, reads frames and analyses sound, and fuses with the prompt', () => {
    const graph = plan({ pipeline: 'video-summary', inputs: [video('a', 12), video('b')], prompt: 'what happens?' });
    expect(() => validateTaskGraph(graph)).not.toThrow();
    expect(graph.pipeline).toBe('video-summary');
    expect(shape(graph)).toEqual([
      ['t1', 'video.split', 'a', []],
      ['t2', 'video.stitch', 'a', ['t1']],
      ['t3', 'video.split', 'b', []],
      ['t4', 'video.stitch', 'b', ['t3']],
      ['t5', 'text.stats', PROMPT_INPUT_NAME, []],
      ['t6', 'fusion.report', null, ['t2', 't4', 't5']],
      ['t7', ASSEMBLE_KIND, null, ['t6']],
    ]);
    expect(graph.tasks[0]?.params).toEqual({ fps: 1, maxFrames: 600, frameMaxPx: 768, audio: true, windowSec: 30, overlapSec: 2, sampleRate: 16_000 });
    expect(graph.tasks[1]?.params).toEqual({ frameKind: 'image.ocr', audioKind: 'audio.analyze', fps: 1, windowSec: 30, overlapSec: 2, outputAs: 'video.stitch' });
    expect(graph.tasks[4]).toMatchObject({ params: { source: 'prompt' }, optional: true });
    const fusion = graph.tasks[5];
    expect(fusion?.optional).toBe(false);
    expect(fusion?.params).toEqual({
      prompt: 'what happens?',
      inputs: [
        { name: 'a', modality: 'video' },
        { name: 'b', modality: 'video' },
      ],
    });
  });

  it('fuses without a prompt task when the prompt is blank', () => {
    const graph = plan({ pipeline: 'video-summary', inputs: [video('a')], prompt: ' ' });
    expect(graph.tasks.map((t) => t.kind)).toEqual(['video.split', 'video.stitch', 'fusion.report', ASSEMBLE_KIND]);
  });

  it('takes the shard and frame params', () => {
    const graph = plan({ pipeline: 'video-summary', inputs: [video('a')], prompt: '', params: { windowSec: '10', overlapSec: '0', fps: '2', maxFrames: '20' } });
    expect(graph.tasks[0]?.params).toEqual({ fps: 2, maxFrames: 20, frameMaxPx: 768, audio: true, windowSec: 10, overlapSec: 0, sampleRate: 16_000 });
  });

  it.each([
    { name: 'an image', input: image('still'), message: 'input "still" is image (image/png); the video-summary pipeline takes video' },
    { name: 'a recording', input: audio('memo', 3), message: 'input "memo" is audio (audio/wav); the video-summary pipeline takes video' },
  ])('refuses $name, naming what it takes', ({ input, message }) => {
    expect(planError({ pipeline: 'video-summary', inputs: [video('a'), input], prompt: '' }).message).toBe(message);
  });

  it('refuses a job without videos, even with a prompt', () => {
    expect(planError({ pipeline: 'video-summary', inputs: [], prompt: 'what happens?' }).message).toMatch(/needs at least one video/);
  });
});

describe('validateJobSpec: pipeline names and params', () => {
  it.each(['transcribe', 'ocr', 'video-summary'])('accepts the %s pipeline', (pipeline) => {
    const spec = validateJobSpec({ pipeline, inputs: [{ name: 'x', source: { type: 'text', text: 'hello' } }] });
    expect(spec.pipeline).toBe(pipeline);
  });

  it('refuses an unknown pipeline, listing the known ones', () => {
    try {
      validateJobSpec({ pipeline: 'translate', inputs: [] });
      expect.unreachable('an unknown pipeline should be refused');
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidJobSpecError);
      if (err instanceof InvalidJobSpecError) {
        expect(err.path).toBe('pipeline');
        expect(err.message).toBe('pipeline: must be one of: describe, transcribe, ocr, video-summary, declared, selftest');
      }
    }
  });

  it('refuses a parameter the pipeline does not take', () => {
    try {
      validateJobSpec({ pipeline: 'transcribe', inputs: [{ name: 'x', source: { type: 'text', text: 'hello' } }], params: { fps: '2' } });
      expect.unreachable('fps should be refused for transcribe');
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidJobSpecError);
      if (err instanceof InvalidJobSpecError) expect(err.message).toBe('params.fps: the transcribe pipeline has no such parameter; it takes windowSec, overlapSec');
    }
  });
});
