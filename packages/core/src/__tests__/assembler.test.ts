import { describe, expect, it } from 'vitest';
import { assembleJobResult, type AssembledJob, type JobResultDoc, type TaskOutcome } from '../assembler.js';
import { buildFusionReport, type UpstreamItem } from '../fusion-report.js';
import { PROMPT_INPUT_NAME } from '../job-spec.js';
import { plan, type FusionParams, type PlanInput } from '../planner.js';
import type { TaskGraph, TaskNode } from '../task-graph.js';
import { fusionReportOutputSchema } from '../task-outputs.js';
import {
  audioOutput,
  audioSplitOutput,
  audioStitchOutput,
  inspectOutput,
  ocrOutput,
  shardRef,
  textSplitOutput,
  textStatsOutput,
  textStitchOutput,
  thumbnailRef,
  transcriptStitchOutput,
  videoSplitOutput,
  videoStitchOutput,
} from './fixtures.js';

const PROMPT = 'Is there a cat?';
const LONG_TEXT = 'The cat sat on the mat. '.repeat(300);
const INPUTS: PlanInput[] = [
  { name: 'cat', modality: 'image', mediaType: 'image/png' },
  // Known to fit in one window: analysed in one task.
  { name: 'memo', modality: 'audio', mediaType: 'audio/wav', durationSec: 3 },
  { name: 'notes', modality: 'text', mediaType: 'text/plain', bytes: 18 },
];
// t1 image.ocr cat, t2 image.inspect cat, t3 audio.analyze memo, t4 text.stats notes,
// t5 text.stats @prompt, t6 fusion.report, t7 job.assemble
const GRAPH = plan({ pipeline: 'describe', inputs: INPUTS, prompt: PROMPT });

/** A realistic output for a task (an object that JSON.stringify takes as it is). */
function outputFor(t: TaskNode): object {
  const input = t.inputNames[0] ?? '';
  switch (t.kind) {
    case 'image.ocr':
      return ocrOutput('A CAT SLEEPS HERE');
    case 'image.inspect':
      return inspectOutput(thumbnailRef(input === 'cat' ? 'c' : 'd', `${input}.thumb.webp`));
    case 'audio.analyze':
      return audioOutput();
    case 'text.stats':
      return input === PROMPT_INPUT_NAME ? textStatsOutput('prompt', PROMPT) : textStatsOutput('input', 'my cat likes boxes');
    case 'audio.split':
      return audioSplitOutput();
    case 'audio.stitch':
      return t.params['shardKind'] === 'audio.transcribe' ? transcriptStitchOutput('the cat sat on the mat') : audioStitchOutput();
    case 'text.split':
      return textSplitOutput(LONG_TEXT);
    case 'text.stitch':
      return textStitchOutput(LONG_TEXT);
    case 'video.split':
      return videoSplitOutput();
    case 'video.stitch':
      return videoStitchOutput('CAT FOOD');
    default:
      throw new Error(`no fixture for ${t.kind}`);
  }
}

const failure = (code: string, message: string): TaskOutcome => ({ status: 'failed', error: { code, message } });

/**
 * Outcomes as a run would commit them: modality tasks succeed unless overridden, and the
 * fusion is built from what its upstream actually produced. `undefined` leaves a task without an outcome.
 */
function outcomesFor(graph: TaskGraph, overrides: Record<string, TaskOutcome | undefined> = {}): Map<string, TaskOutcome> {
  const outcomes = new Map<string, TaskOutcome>();
  for (const t of graph.tasks) {
    if (t.id === graph.rootId) continue;
    if (t.id in overrides) {
      const o = overrides[t.id];
      if (o) outcomes.set(t.id, o);
    } else if (t.kind === 'fusion.report') {
      const upstream: UpstreamItem[] = t.dependsOn.map((dep) => {
        const d = graph.tasks.find((x) => x.id === dep);
        const o = outcomes.get(dep);
        // As the coordinator does: a stitched output is given under the kind it stands for.
        const outputAs = d?.params['outputAs'];
        return {
          taskId: dep,
          kind: typeof outputAs === 'string' ? outputAs : (d?.kind ?? ''),
          inputNames: d?.inputNames ?? [],
          outputJson: o?.status === 'succeeded' ? o.outputJson : undefined,
          error: o?.status === 'failed' ? o.error : undefined,
        };
      });
      const params = t.params as FusionParams;
      outcomes.set(t.id, { status: 'succeeded', outputJson: JSON.stringify(buildFusionReport(params, upstream)) });
    } else {
      outcomes.set(t.id, { status: 'succeeded', outputJson: JSON.stringify(outputFor(t)) });
    }
  }
  return outcomes;
}

function expectOk(result: AssembledJob): JobResultDoc {
  if (!result.ok) throw new Error(`expected ok, got ${result.error.code}: ${result.error.message}`);
  return result.doc;
}

function outputsByInput(doc: JobResultDoc): Record<string, string[]> {
  return Object.fromEntries(doc.inputs.map((i) => [i.name, Object.keys(i.outputs)]));
}

describe('assembleJobResult: every task succeeded', () => {
  const outcomes = outcomesFor(GRAPH);
  const result = assembleJobResult(GRAPH, INPUTS, PROMPT, outcomes);
  const doc = expectOk(result);

  it('is complete', () => {
    expect(doc.coverage).toBe(1);
    expect(doc.partial).toBe(false);
    expect(doc.failures).toEqual([]);
    expect(doc.pipeline).toBe('describe');
    expect(doc.prompt).toBe(PROMPT);
  });

  it('attaches each output to the input it read, by kind, the prompt last', () => {
    expect(outputsByInput(doc)).toEqual({
      cat: ['image.ocr', 'image.inspect'],
      memo: ['audio.analyze'],
      notes: ['text.stats'],
      prompt: ['text.stats'],
    });
    expect(doc.inputs.map((i) => [i.name, i.modality, i.mediaType])).toEqual([
      ['cat', 'image', 'image/png'],
      ['memo', 'audio', 'audio/wav'],
      ['notes', 'text', 'text/plain'],
      ['prompt', 'text', 'text/plain'],
    ]);
    expect(doc.inputs[0]?.outputs['image.ocr']).toEqual(ocrOutput('A CAT SLEEPS HERE'));
    expect(doc.inputs[2]?.outputs['text.stats']).toEqual(textStatsOutput('input', 'my cat likes boxes'));
    expect(doc.inputs[3]?.outputs['text.stats']).toEqual(textStatsOutput('prompt', PROMPT));
  });

  it('carries the fusion report and its summary', () => {
    const fusionOutcome = outcomes.get('t6');
    expect(fusionOutcome?.status).toBe('succeeded');
    const fusion = fusionReportOutputSchema.parse(JSON.parse(fusionOutcome?.status === 'succeeded' ? fusionOutcome.outputJson : 'null'));
    expect(doc.fusion).toEqual(fusion);
    expect(doc.summary).toBe(fusion.summary);
    expect(doc.summary).toContain('"cat" in cat, notes');
  });

  it('lists the blobs the outputs refer to', () => {
    if (!result.ok) throw new Error('not ok');
    expect(result.blobs).toEqual([thumbnailRef('c', 'cat.thumb.webp')]);
  });
});

describe('assembleJobResult: blobs', () => {
  it('collects one entry per distinct blob, from every image', () => {
    const inputs: PlanInput[] = [
      { name: 'front', modality: 'image', mediaType: 'image/png' },
      { name: 'back', modality: 'image', mediaType: 'image/jpeg' },
    ];
    const graph = plan({ pipeline: 'describe', inputs, prompt: '' });
    const outcomes = outcomesFor(graph, {
      t2: { status: 'succeeded', outputJson: JSON.stringify(inspectOutput(thumbnailRef('e', 'front.webp'))) },
      t4: { status: 'succeeded', outputJson: JSON.stringify(inspectOutput(thumbnailRef('f', 'back.webp'))) },
    });
    const result = assembleJobResult(graph, inputs, '', outcomes);
    if (!result.ok) throw new Error('not ok');
    expect(result.blobs.map((b) => b.name)).toEqual(['front.webp', 'back.webp']);
  });

  it('ignores objects that only look like blob references', () => {
    const graph = plan({ pipeline: 'describe', inputs: [{ name: 'scan', modality: 'image', mediaType: 'image/png' }], prompt: '' });
    const bad = { ...inspectOutput(), thumbnail: { sha256: 'not-a-hash', size: 1, mediaType: 'image/webp', name: 'x' } };
    // The fusion is built over a valid output (it would refuse the bad one); the assembler sees the bad one.
    const fusion = outcomesFor(graph).get('t3');
    const overrides: Record<string, TaskOutcome | undefined> = { t2: { status: 'succeeded', outputJson: JSON.stringify(bad) } };
    if (fusion) overrides['t3'] = fusion;
    const result = assembleJobResult(graph, [{ name: 'scan', modality: 'image', mediaType: 'image/png' }], '', outcomesFor(graph, overrides));
    if (!result.ok) throw new Error('not ok');
    expect(result.blobs).toEqual([]);
  });
});

describe('assembleJobResult: optional tasks that failed', () => {
  const cases: {
    name: string;
    overrides: Record<string, TaskOutcome | undefined>;
    coverage: number;
    failures: { taskId: string; kind: string; input: string | null; code: string }[];
    outputs: Record<string, string[]>;
  }[] = [
    {
      name: 'OCR failed',
      overrides: { t1: failure('TIMEOUT', 'ran past 120000 ms') },
      coverage: 4 / 5,
      failures: [{ taskId: 't1', kind: 'image.ocr', input: 'cat', code: 'TIMEOUT' }],
      outputs: { cat: ['image.inspect'], memo: ['audio.analyze'], notes: ['text.stats'], prompt: ['text.stats'] },
    },
    {
      name: 'prompt analysis failed',
      overrides: { t5: failure('WORKER_LOST', 'the worker went away') },
      coverage: 4 / 5,
      failures: [{ taskId: 't5', kind: 'text.stats', input: 'prompt', code: 'WORKER_LOST' }],
      outputs: { cat: ['image.ocr', 'image.inspect'], memo: ['audio.analyze'], notes: ['text.stats'], prompt: [] },
    },
    {
      name: 'audio has no recorded outcome',
      overrides: { t3: undefined },
      coverage: 4 / 5,
      failures: [{ taskId: 't3', kind: 'audio.analyze', input: 'memo', code: 'NO_OUTCOME' }],
      outputs: { cat: ['image.ocr', 'image.inspect'], memo: [], notes: ['text.stats'], prompt: ['text.stats'] },
    },
  ];
  it.each(cases)('$name: partial, never silently shorter', ({ overrides, coverage, failures, outputs }) => {
    const result = assembleJobResult(GRAPH, INPUTS, PROMPT, outcomesFor(GRAPH, overrides));
    const doc = expectOk(result);
    expect(doc.partial).toBe(true);
    expect(doc.coverage).toBeCloseTo(coverage, 10);
    expect(doc.coverage).toBeLessThan(1);
    expect(doc.failures.map(({ taskId, kind, input, code }) => ({ taskId, kind, input, code }))).toEqual(failures);
    expect(outputsByInput(doc)).toEqual(outputs);
    expect(doc.fusion?.missing).toHaveLength(failures.length);
  });

  it('fails the job when every optional task failed, naming the first failure', () => {
    const all = { t1: failure('E', 'x'), t2: failure('E', 'x'), t3: failure('E', 'x'), t4: failure('E', 'x'), t5: failure('E', 'x') };
    const result = assembleJobResult(GRAPH, INPUTS, PROMPT, outcomesFor(GRAPH, all));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.message).toBe('every task failed; the first: image.ocr (t1): x');
    expect(result.failures.map((f) => f.taskId)).toEqual(['t1', 't2', 't3', 't4', 't5']);
  });

  it('keeps the failure message', () => {
    const doc = expectOk(assembleJobResult(GRAPH, INPUTS, PROMPT, outcomesFor(GRAPH, { t1: failure('TIMEOUT', 'ran past 120000 ms') })));
    expect(doc.failures[0]?.message).toBe('ran past 120000 ms');
    expect(doc.summary).toContain('image.ocr of cat (ran past 120000 ms)');
  });
});

describe('assembleJobResult: required tasks that failed', () => {
  const cases: { name: string; overrides: Record<string, TaskOutcome | undefined>; code: string; message: string; failures: string[] }[] = [
    {
      name: 'fusion failed',
      overrides: { t6: failure('INVALID_TASK_OUTPUT', 'output of fusion.report is malformed') },
      code: 'INVALID_TASK_OUTPUT',
      message: 'fusion.report (t6) failed: output of fusion.report is malformed',
      failures: ['t6'],
    },
    {
      name: 'fusion never reported',
      overrides: { t6: undefined },
      code: 'NO_OUTCOME',
      message: 'fusion.report (t6) failed: the task ended without a recorded outcome',
      failures: ['t6'],
    },
    {
      name: 'fusion and an optional task failed',
      overrides: { t3: failure('DECODE', 'not a WAV file'), t6: failure('TIMEOUT', 'ran past 30000 ms') },
      code: 'TIMEOUT',
      message: 'fusion.report (t6) failed: ran past 30000 ms',
      failures: ['t3', 't6'],
    },
  ];
  it.each(cases)('$name: the job fails, naming the task', ({ overrides, code, message, failures }) => {
    const result = assembleJobResult(GRAPH, INPUTS, PROMPT, outcomesFor(GRAPH, overrides));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toEqual({ code, message });
    expect(result.failures.map((f) => f.taskId)).toEqual(failures);
    const fusionFailure = result.failures.find((f) => f.taskId === 't6');
    expect(fusionFailure?.input).toBeNull();
    expect(fusionFailure?.kind).toBe('fusion.report');
  });
});

describe('assembleJobResult: jobs without a prompt', () => {
  it('has no prompt entry among the inputs', () => {
    const inputs: PlanInput[] = [{ name: 'memo', modality: 'audio', mediaType: 'audio/wav', durationSec: 3 }];
    const graph = plan({ pipeline: 'describe', inputs, prompt: '' });
    const doc = expectOk(assembleJobResult(graph, inputs, '', outcomesFor(graph)));
    expect(outputsByInput(doc)).toEqual({ memo: ['audio.analyze'] });
    expect(doc.coverage).toBe(1);
    expect(doc.summary).toMatch(/^memo \(audio\): 3\.00 s/);
  });
});

describe('assembleJobResult: a long recording, split and stitched', () => {
  const inputs: PlanInput[] = [
    { name: 'cat', modality: 'image', mediaType: 'image/png' },
    { name: 'memo', modality: 'audio', mediaType: 'audio/wav' },
  ];
  // t1 image.ocr cat, t2 image.inspect cat, t3 audio.split memo (intermediate), t4 audio.stitch memo,
  // t5 text.stats @prompt, t6 fusion.report, t7 job.assemble
  const graph = plan({ pipeline: 'describe', inputs, prompt: PROMPT });

  it('the graph has the expected shape', () => {
    expect(graph.tasks.map((t) => t.kind)).toEqual(['image.ocr', 'image.inspect', 'audio.split', 'audio.stitch', 'text.stats', 'fusion.report', 'job.assemble']);
    expect(graph.tasks[2]?.intermediate).toBe(true);
  });

  it('files the stitched analysis under audio.analyze, and leaves the split out', () => {
    const result = assembleJobResult(graph, inputs, PROMPT, outcomesFor(graph));
    const doc = expectOk(result);
    expect(outputsByInput(doc)).toEqual({ cat: ['image.ocr', 'image.inspect'], memo: ['audio.analyze'], prompt: ['text.stats'] });
    expect(doc.inputs[1]?.outputs['audio.analyze']).toEqual(audioStitchOutput());
    expect(doc.coverage).toBe(1);
    expect(doc.partial).toBe(false);
    expect(doc.summary).toContain('memo (audio): 75.00 s');
    // The windows' blobs belong to the split, not to the result.
    if (!result.ok) throw new Error('not ok');
    expect(result.blobs.map((b) => b.name)).toEqual(['cat.thumb.webp']);
  });

  it('does not count the split in the coverage', () => {
    const doc = expectOk(assembleJobResult(graph, inputs, PROMPT, outcomesFor(graph, { t1: failure('TIMEOUT', 'ran past 120000 ms') })));
    // Readers: ocr, inspect, stitch, prompt stats (the split is not one).
    expect(doc.coverage).toBeCloseTo(3 / 4, 10);
    expect(doc.failures.map((f) => f.taskId)).toEqual(['t1']);
  });

  it('a failed stitch makes the result partial, naming the recording', () => {
    const doc = expectOk(assembleJobResult(graph, inputs, PROMPT, outcomesFor(graph, { t4: failure('TOO_MANY_SHARDS', 'the input would be cut into 30001 shards') })));
    expect(doc.partial).toBe(true);
    expect(doc.coverage).toBeCloseTo(3 / 4, 10);
    expect(doc.failures).toEqual([{ taskId: 't4', kind: 'audio.stitch', input: 'memo', code: 'TOO_MANY_SHARDS', message: 'the input would be cut into 30001 shards' }]);
    expect(outputsByInput(doc)['memo']).toEqual([]);
  });

  it('a failed split is not listed itself; the stitch it starved is', () => {
    const doc = expectOk(assembleJobResult(graph, inputs, PROMPT, outcomesFor(graph, { t3: failure('DECODE', 'not audio'), t4: undefined })));
    expect(doc.failures.map(({ taskId, kind, code }) => ({ taskId, kind, code }))).toEqual([{ taskId: 't4', kind: 'audio.stitch', code: 'NO_OUTCOME' }]);
    expect(doc.coverage).toBeCloseTo(3 / 4, 10);
  });

  it('a split that succeeded does not stand in for a stitch that never ran', () => {
    const doc = expectOk(assembleJobResult(graph, inputs, PROMPT, outcomesFor(graph, { t4: undefined })));
    expect(outputsByInput(doc)['memo']).toEqual([]);
    expect(doc.partial).toBe(true);
  });

  it('a stitch with failed windows is kept, counted for what it covers, and its gaps listed', () => {
    const partialStitch = {
      ...audioStitchOutput(),
      coverage: 2 / 3,
      gaps: [{ startSec: 28, endSec: 57, reason: 'window 1: the worker ran out of memory' }],
    };
    const doc = expectOk(assembleJobResult(graph, inputs, PROMPT, outcomesFor(graph, { t4: { status: 'succeeded', outputJson: JSON.stringify(partialStitch) } })));
    expect(doc.partial).toBe(true);
    // Readers: ocr, inspect, the stitch (two thirds), prompt stats.
    expect(doc.coverage).toBeCloseTo((3 + 2 / 3) / 4, 10);
    expect(doc.failures).toEqual([
      { taskId: 't4', kind: 'audio.stitch', input: 'memo', code: 'SHARDS_FAILED', message: 'shards failed, leaving 1 gap (67% of the input covered, 3 shards); the first: window 1: the worker ran out of memory' },
    ]);
    expect(doc.inputs[1]?.outputs['audio.analyze']).toEqual(partialStitch);
  });

  it('a stitch none of whose windows succeeded counts as failed', () => {
    const empty = { ...audioStitchOutput(), coverage: 0, gaps: [{ startSec: 0, endSec: 75, reason: 'window 0: no whisper server' }] };
    const doc = expectOk(assembleJobResult(graph, inputs, PROMPT, outcomesFor(graph, { t4: { status: 'succeeded', outputJson: JSON.stringify(empty) } })));
    expect(doc.failures).toEqual([{ taskId: 't4', kind: 'audio.stitch', input: 'memo', code: 'SHARDS_FAILED', message: 'all 3 shards failed; the first: window 0: no whisper server' }]);
    expect(outputsByInput(doc)['memo']).toEqual([]);
    expect(doc.coverage).toBeCloseTo(3 / 4, 10);
  });

  it('a required sharded step whose shards all failed fails a declared job', () => {
    const declaredInputs: PlanInput[] = [{ name: 'memo', modality: 'audio', mediaType: 'audio/wav' }];
    const declared = plan({ pipeline: 'declared', inputs: declaredInputs, prompt: '', steps: { hear: { kind: 'audio.transcribe', input: 'memo', shard: true } } });
    const stitch = declared.tasks.find((t) => t.kind === 'audio.stitch');
    if (!stitch) throw new Error('no stitch');
    const empty = { ...transcriptStitchOutput(''), coverage: 0, shards: 2, gaps: [{ startSec: 0, endSec: 30, reason: 'window 0: refused' }] };
    const result = assembleJobResult(declared, declaredInputs, '', outcomesFor(declared, { [stitch.id]: { status: 'succeeded', outputJson: JSON.stringify(empty) } }));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toEqual({ code: 'SHARDS_FAILED', message: 'step hear (audio.stitch) failed: all 2 shards failed; the first: window 0: refused' });
  });

  it('fails the job when every optional task failed, even with the split done', () => {
    const all = { t1: failure('E', 'x'), t2: failure('E', 'y'), t4: failure('E', 'z'), t5: failure('E', 'w') };
    const result = assembleJobResult(graph, inputs, PROMPT, outcomesFor(graph, all));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.message).toBe('every task failed; the first: image.ocr (t1): x');
    expect(result.failures.map((f) => f.taskId)).toEqual(['t1', 't2', 't4', 't5']);
  });
});

describe('assembleJobResult: long texts and videos', () => {
  const inputs: PlanInput[] = [
    { name: 'book', modality: 'text', mediaType: 'text/plain', bytes: LONG_TEXT.length },
    { name: 'clip', modality: 'video', mediaType: 'video/mp4', durationSec: 4 },
  ];
  // t1 text.split, t2 text.stitch, t3 video.split, t4 video.stitch, t5 fusion.report, t6 job.assemble
  const graph = plan({ pipeline: 'describe', inputs, prompt: '' });

  it('files a long text under text.stats and a video under video.stitch', () => {
    expect(graph.tasks.map((t) => t.kind)).toEqual(['text.split', 'text.stitch', 'video.split', 'video.stitch', 'fusion.report', 'job.assemble']);
    const result = assembleJobResult(graph, inputs, '', outcomesFor(graph));
    const doc = expectOk(result);
    expect(outputsByInput(doc)).toEqual({ book: ['text.stats'], clip: ['video.stitch'] });
    expect(doc.inputs[0]?.outputs['text.stats']).toEqual(textStitchOutput(LONG_TEXT));
    expect(doc.inputs[1]?.outputs['video.stitch']).toEqual(videoStitchOutput('CAT FOOD'));
    expect(doc.coverage).toBe(1);
    // The stitched video's frames and subtitles are in the result; the split's sound window is not.
    if (!result.ok) throw new Error('not ok');
    expect(result.blobs.map((b) => b.name).sort()).toEqual(['clip.vtt', 'f0.jpg', 'f1.jpg']);
    expect(result.blobs).not.toContainEqual(shardRef('9', 'a0.wav'));
  });

  it('counts two readers: the stitches', () => {
    const doc = expectOk(assembleJobResult(graph, inputs, '', outcomesFor(graph, { t4: failure('E', 'no frames') })));
    expect(doc.coverage).toBeCloseTo(1 / 2, 10);
    expect(doc.failures.map((f) => [f.taskId, f.kind, f.input])).toEqual([['t4', 'video.stitch', 'clip']]);
  });
});

describe('assembleJobResult: transcribe', () => {
  const inputs: PlanInput[] = [
    { name: 'a', modality: 'audio', mediaType: 'audio/wav', durationSec: 5 },
    { name: 'b', modality: 'audio', mediaType: 'audio/mpeg' },
  ];
  // t1 audio.split a, t2 audio.stitch a, t3 audio.split b, t4 audio.stitch b, t5 job.assemble
  const graph = plan({ pipeline: 'transcribe', inputs, prompt: '' });

  it('files each transcript under audio.transcribe, with its subtitles', () => {
    const result = assembleJobResult(graph, inputs, '', outcomesFor(graph));
    const doc = expectOk(result);
    expect(doc.pipeline).toBe('transcribe');
    expect(outputsByInput(doc)).toEqual({ a: ['audio.transcribe'], b: ['audio.transcribe'] });
    expect(doc.fusion).toBeNull();
    expect(doc.summary).toBe('2 of 2 tasks succeeded.');
    if (!result.ok) throw new Error('not ok');
    expect(result.blobs.map((b) => b.name)).toEqual(['memo.srt', 'memo.vtt']);
  });

  it('one recording failed: partial', () => {
    const doc = expectOk(assembleJobResult(graph, inputs, '', outcomesFor(graph, { t4: failure('BACKEND', 'no whisper server') })));
    expect(doc.coverage).toBeCloseTo(1 / 2, 10);
    expect(doc.summary).toBe('1 of 2 tasks succeeded; 1 failed.');
  });

  it('every recording failed: the job fails', () => {
    const result = assembleJobResult(graph, inputs, '', outcomesFor(graph, { t2: failure('BACKEND', 'no whisper server'), t4: failure('BACKEND', 'no whisper server') }));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toEqual({ code: 'BACKEND', message: 'every task failed; the first: audio.stitch (t2): no whisper server' });
  });
});

describe('assembleJobResult: declared pipelines', () => {
  const inputs: PlanInput[] = [
    { name: 'scan', modality: 'image', mediaType: 'image/png' },
    { name: 'memo', modality: 'audio', mediaType: 'audio/wav', durationSec: 3 },
  ];
  // t1 image.ocr "read" (required), t2 image.inspect "look" (optional), t3 audio.analyze "listen" (optional), t4 job.assemble
  const graph = plan({
    pipeline: 'declared',
    inputs,
    prompt: '',
    steps: {
      read: { kind: 'image.ocr', input: 'scan' },
      look: { kind: 'image.inspect', input: 'scan', optional: true },
      listen: { kind: 'audio.analyze', input: 'memo', optional: true },
    },
  });

  it('files outputs under the step names', () => {
    expect(graph.tasks.map((t) => [t.kind, t.label])).toEqual([
      ['image.ocr', 'read'],
      ['image.inspect', 'look'],
      ['audio.analyze', 'listen'],
      ['job.assemble', undefined],
    ]);
    const doc = expectOk(assembleJobResult(graph, inputs, '', outcomesFor(graph)));
    expect(outputsByInput(doc)).toEqual({ scan: ['read', 'look'], memo: ['listen'] });
    expect(doc.coverage).toBe(1);
  });

  it('names the step of a failed optional task', () => {
    const doc = expectOk(assembleJobResult(graph, inputs, '', outcomesFor(graph, { t2: failure('TIMEOUT', 'ran past 60000 ms') })));
    expect(doc.failures).toEqual([{ taskId: 't2', step: 'look', kind: 'image.inspect', input: 'scan', code: 'TIMEOUT', message: 'ran past 60000 ms' }]);
    // Coverage is over the optional steps only (the required one is not counted).
    expect(doc.coverage).toBeCloseTo(1 / 2, 10);
  });

  it('fails the job when a required step failed, naming the step', () => {
    const result = assembleJobResult(graph, inputs, '', outcomesFor(graph, { t1: failure('OCR', 'tesseract crashed') }));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error).toEqual({ code: 'OCR', message: 'step read (image.ocr) failed: tesseract crashed' });
    expect(result.failures).toEqual([{ taskId: 't1', step: 'read', kind: 'image.ocr', input: 'scan', code: 'OCR', message: 'tesseract crashed' }]);
  });

  it('files sharded steps under their step names too, so two of them on one input do not collide', () => {
    const sharded = plan({
      pipeline: 'declared',
      inputs,
      prompt: '',
      steps: {
        coarse: { kind: 'audio.analyze', input: 'memo', shard: { windowSec: 10, overlapSec: 1 }, params: { frameMs: 50 } },
        fine: { kind: 'audio.analyze', input: 'memo', shard: true, optional: true },
      },
    });
    const stitches = sharded.tasks.filter((t) => t.kind === 'audio.stitch');
    expect(stitches.map((t) => [t.label, t.params['shardParams']])).toEqual([
      ['coarse', { frameMs: 50 }],
      ['fine', { frameMs: 20 }],
    ]);
    const doc = expectOk(assembleJobResult(sharded, inputs, '', outcomesFor(sharded)));
    expect(outputsByInput(doc)).toEqual({ scan: [], memo: ['coarse', 'fine'] });
  });

  it('completes, partial with coverage 0, when the required steps succeeded and every optional one failed', () => {
    const doc = expectOk(assembleJobResult(graph, inputs, '', outcomesFor(graph, { t2: failure('X', 'inspect broke'), t3: failure('Y', 'decoder broke') })));
    expect(doc.partial).toBe(true);
    expect(doc.coverage).toBe(0);
    expect(outputsByInput(doc)).toEqual({ scan: ['read'], memo: [] });
    expect(doc.failures.map((f) => f.step)).toEqual(['look', 'listen']);
  });

  it('has no step in the failures of a built-in pipeline', () => {
    const doc = expectOk(assembleJobResult(GRAPH, INPUTS, PROMPT, outcomesFor(GRAPH, { t1: failure('TIMEOUT', 'x') })));
    expect(doc.failures[0]).not.toHaveProperty('step');
  });
});

describe('assembleJobResult: fusion with a language model', () => {
  const graph = plan({ pipeline: 'describe', inputs: INPUTS, prompt: PROMPT, offered: new Set(['fusion.llm']) });
  const llm = graph.tasks.find((t) => t.kind === 'fusion.llm');
  const reportTask = graph.tasks.find((t) => t.kind === 'fusion.report');
  if (!llm || !reportTask) throw new Error('no fusion.llm planned');

  function withLlm(outcome: TaskOutcome): Map<string, TaskOutcome> {
    const outcomes = outcomesFor(graph, { [llm?.id ?? '']: undefined });
    outcomes.set(llm?.id ?? '', outcome);
    return outcomes;
  }

  it("uses the model's answer as the summary, over the report", () => {
    const base = outcomesFor(graph, { [llm.id]: undefined });
    const reportOutcome = base.get(reportTask.id);
    if (reportOutcome?.status !== 'succeeded') throw new Error('no report');
    const report = fusionReportOutputSchema.parse(JSON.parse(reportOutcome.outputJson));
    const answer = { ...report, summary: 'Yes: the sign says a cat sleeps here.', model: 'qwen2.5-vl', reportSummary: report.summary };
    const doc = expectOk(assembleJobResult(graph, INPUTS, PROMPT, withLlm({ status: 'succeeded', outputJson: JSON.stringify(answer) })));
    expect(doc.summary).toBe('Yes: the sign says a cat sleeps here.');
    expect(doc.fusion).toMatchObject({ model: 'qwen2.5-vl', reportSummary: report.summary, sections: report.sections });
    expect(doc.partial).toBe(false);
    expect(doc.coverage).toBe(1);
  });

  it('falls back to the report when the model fails: listed, but no input is less covered', () => {
    const doc = expectOk(assembleJobResult(graph, INPUTS, PROMPT, withLlm(failure('BACKEND_UNAVAILABLE', 'the chat server answered 503'))));
    expect(doc.summary).toContain('memo (audio)');
    expect(doc.fusion).not.toHaveProperty('model');
    expect(doc.partial).toBe(true);
    expect(doc.coverage).toBe(1);
    expect(doc.failures).toEqual([{ taskId: llm.id, kind: 'fusion.llm', input: null, code: 'BACKEND_UNAVAILABLE', message: 'the chat server answered 503' }]);
  });
});

describe('assembleJobResult: jobs with no task reading an input (selftest)', () => {
  const graph = plan({ pipeline: 'selftest', inputs: [], prompt: '', params: { tasks: '4' } });
  const sleeps = graph.tasks.filter((t) => t.kind === 'selftest.sleep');
  const ok = { status: 'succeeded', outputJson: JSON.stringify({ sleptMs: 1, attempt: 1, index: 0 }) } as const;

  it('counts coverage over the optional tasks', () => {
    const outcomes = new Map<string, TaskOutcome>(sleeps.map((t, i) => [t.id, i === 0 ? failure('TIMEOUT', 'slept too long') : ok]));
    const doc = expectOk(assembleJobResult(graph, [], '', outcomes));
    expect(doc.coverage).toBe(3 / 4);
    expect(doc.partial).toBe(true);
    expect(doc.summary).toBe('3 of 4 tasks succeeded; 1 failed.');
  });

  it('fails the job when every one failed', () => {
    const outcomes = new Map<string, TaskOutcome>(sleeps.map((t) => [t.id, failure('TIMEOUT', 'slept too long')]));
    const result = assembleJobResult(graph, [], '', outcomes);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.message).toMatch(/^every task failed; the first: selftest\.sleep/);
  });
});

describe('assembleJobResult: declared steps that read no input', () => {
  it('files their outputs under steps, by name', () => {
    const inputs: PlanInput[] = [{ name: 'scan', modality: 'image', mediaType: 'image/png' }];
    const graph = plan({
      pipeline: 'declared',
      inputs,
      prompt: 'what does it say?',
      steps: {
        render: { kind: 'exec.render', params: { seed: 7 } },
        read: { kind: 'image.ocr', input: 'scan' },
        report: { kind: 'fusion.report', from: ['read'] },
      },
    });
    const render = graph.tasks.find((t) => t.label === 'render');
    if (!render) throw new Error('no render step');
    const outcomes = outcomesFor(graph, { [render.id]: { status: 'succeeded', outputJson: JSON.stringify({ frames: 12, files: [] }) } });
    const doc = expectOk(assembleJobResult(graph, inputs, 'what does it say?', outcomes));
    expect(Object.keys(doc.steps).sort()).toEqual(['render', 'report']);
    expect(doc.steps['render']).toEqual({ frames: 12, files: [] });
    expect(doc.steps['report']).toEqual(doc.fusion);
    expect(outputsByInput(doc)).toEqual({ scan: ['read'], prompt: [] });
  });
});
