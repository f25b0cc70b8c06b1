import { describe, expect, it } from 'vitest';
import { assembleJobResult, type AssembledJob, type JobResultDoc, type TaskOutcome } from '../assembler.js';
import { buildFusionReport, type UpstreamItem } from '../fusion-report.js';
import { PROMPT_INPUT_NAME } from '../job-spec.js';
import type { JsonValue } from '../json.js';
import { plan, type FusionParams, type PlanInput } from '../planner.js';
import type { TaskGraph, TaskNode } from '../task-graph.js';
import { fusionReportOutputSchema } from '../task-outputs.js';
import { audioOutput, inspectOutput, ocrOutput, textStatsOutput, thumbnailRef } from './fixtures.js';

const PROMPT = 'Is there a cat?';
const INPUTS: PlanInput[] = [
  { name: 'cat', modality: 'image', mediaType: 'image/png' },
  { name: 'memo', modality: 'audio', mediaType: 'audio/wav' },
  { name: 'notes', modality: 'text', mediaType: 'text/plain' },
];
// t1 image.ocr cat, t2 image.inspect cat, t3 audio.analyze memo, t4 text.stats notes,
// t5 text.stats @prompt, t6 fusion.report, t7 job.assemble
const GRAPH = plan({ pipeline: 'describe', inputs: INPUTS, prompt: PROMPT });

/** A realistic output for a modality task. */
function outputFor(t: TaskNode): JsonValue {
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
        return {
          taskId: dep,
          kind: d?.kind ?? '',
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
    const inputs: PlanInput[] = [{ name: 'memo', modality: 'audio', mediaType: 'audio/wav' }];
    const graph = plan({ pipeline: 'describe', inputs, prompt: '' });
    const doc = expectOk(assembleJobResult(graph, inputs, '', outcomesFor(graph)));
    expect(outputsByInput(doc)).toEqual({ memo: ['audio.analyze'] });
    expect(doc.coverage).toBe(1);
    expect(doc.summary).toMatch(/^memo \(audio\): 3\.00 s/);
  });
});
