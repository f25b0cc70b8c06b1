import { describe, expect, it } from 'vitest';
import { specError } from './fixtures.js';
import { InvalidJobSpecError } from '../errors.js';
import { validateJobSpec } from '../job-spec.js';
import { plan, type PlanInput, type PlanRequest } from '../planner.js';
import { ASSEMBLE_KIND } from '../task-kinds.js';
import { NO_REQUIREMENTS, validateTaskGraph, type TaskGraph, type TaskNode } from '../task-graph.js';

const GiB = 1024 ** 3;
const PROMPT = 'What does the sign say?';

const INPUTS: PlanInput[] = [
  { name: 'scan', modality: 'image', mediaType: 'image/png' },
  { name: 'memo', modality: 'audio', mediaType: 'audio/wav', durationSec: 5 },
  { name: 'notes', modality: 'text', mediaType: 'text/plain', bytes: 40 },
];

const declared = (steps: unknown, inputs: PlanInput[] = INPUTS, prompt = PROMPT): PlanRequest => ({ pipeline: 'declared', inputs, prompt, steps });

function task(graph: TaskGraph, label: string): TaskNode {
  const found = graph.tasks.find((t) => t.label === label);
  if (!found) throw new Error(`no task labelled ${label}`);
  return found;
}

function root(graph: TaskGraph): TaskNode {
  const found = graph.tasks.find((t) => t.id === graph.rootId);
  if (!found) throw new Error('no root');
  return found;
}

describe('plan: declared pipeline, shape', () => {
  // Declared with the report first: the planner puts every step after the steps it reads.
  const steps = {
    report: { kind: 'fusion.report', from: ['read', 'look'] },
    read: { kind: 'image.ocr', input: 'scan', requires: { model: 'tesseract-5' } },
    look: { kind: 'image.inspect', input: 'scan', params: { colours: 3 }, optional: true },
    listen: { kind: 'audio.analyze', input: 'memo', optional: true, requires: { gpu: true } },
    count: { kind: 'text.stats', input: 'notes' },
  };
  const graph = plan(declared(steps));

  it('is a valid graph of the declared pipeline', () => {
    expect(() => validateTaskGraph(graph)).not.toThrow();
    expect(graph.pipeline).toBe('declared');
  });

  it('labels the tasks with their step names, in dependency order', () => {
    expect(graph.tasks.map((t) => [t.id, t.kind, t.label])).toEqual([
      ['t1', 'image.ocr', 'read'],
      ['t2', 'image.inspect', 'look'],
      ['t3', 'fusion.report', 'report'],
      ['t4', 'audio.analyze', 'listen'],
      ['t5', 'text.stats', 'count'],
      ['t6', ASSEMBLE_KIND, undefined],
    ]);
    expect(task(graph, 'report').dependsOn).toEqual(['t1', 't2']);
  });

  it('feeds the sinks (steps no step reads) to the assembly', () => {
    const r = root(graph);
    expect(r.kind).toBe(ASSEMBLE_KIND);
    expect(r.id).toBe(graph.rootId);
    expect(r.optional).toBe(false);
    expect(r.dependsOn).toEqual(['t3', 't4', 't5']);
    expect(r.requirements).toEqual(NO_REQUIREMENTS);
  });

  it('keeps inputs, params, optional flags and requirements', () => {
    expect(task(graph, 'read')).toMatchObject({ inputNames: ['scan'], params: {}, optional: false, requirements: { ...NO_REQUIREMENTS, model: 'tesseract-5' } });
    expect(task(graph, 'look')).toMatchObject({ inputNames: ['scan'], params: { colours: 3 }, optional: true, requirements: NO_REQUIREMENTS });
    expect(task(graph, 'listen')).toMatchObject({ inputNames: ['memo'], optional: true, requirements: { ...NO_REQUIREMENTS, cpuAllowed: false } });
    expect(task(graph, 'count')).toMatchObject({ inputNames: ['notes'], optional: false });
    expect(task(graph, 'report')).toMatchObject({ inputNames: [], optional: false });
  });

  it('gives each task its kind timeout', () => {
    expect(task(graph, 'read').timeoutMs).toBe(120_000);
    expect(task(graph, 'listen').timeoutMs).toBe(300_000);
  });

  it('gives fusion.report the prompt and every input', () => {
    expect(task(graph, 'report').params).toEqual({
      prompt: PROMPT,
      inputs: [
        { name: 'scan', modality: 'image' },
        { name: 'memo', modality: 'audio' },
        { name: 'notes', modality: 'text' },
      ],
    });
  });

  it('does not split what it was not asked to split (even with no duration known)', () => {
    const g = plan(declared({ listen: { kind: 'audio.analyze', input: 'long' } }, [{ name: 'long', modality: 'audio', mediaType: 'audio/wav' }]));
    expect(g.tasks.map((t) => t.kind)).toEqual(['audio.analyze', ASSEMBLE_KIND]);
  });

  it('is deterministic', () => {
    expect(plan(declared(steps))).toEqual(graph);
  });

  it('plans a chain of combining steps', () => {
    const g = plan(
      declared({
        outer: { kind: 'fusion.report', from: ['inner'] },
        inner: { kind: 'fusion.report', from: ['read'] },
        read: { kind: 'image.ocr', input: 'scan' },
      }),
    );
    expect(g.tasks.map((t) => [t.id, t.label, t.dependsOn])).toEqual([
      ['t1', 'read', []],
      ['t2', 'inner', ['t1']],
      ['t3', 'outer', ['t2']],
      ['t4', undefined, ['t3']],
    ]);
  });

  it('plans steps that read nothing, with a timeout from their wait', () => {
    const g = plan(declared({ pause: { kind: 'selftest.sleep', params: { ms: 250 }, requires: { vramGiB: 2 } } }, [], ''));
    expect(g.tasks.map((t) => t.kind)).toEqual(['selftest.sleep', ASSEMBLE_KIND]);
    expect(task(g, 'pause')).toMatchObject({ inputNames: [], params: { ms: 250 }, timeoutMs: 60_250, requirements: { ...NO_REQUIREMENTS, minVramBytes: 2 * GiB, cpuAllowed: false } });
  });

  it('leaves inputs no step reads alone, whatever their type', () => {
    const inputs: PlanInput[] = [...INPUTS, { name: 'clip', modality: 'video', mediaType: 'video/mp4' }];
    const g = plan(declared({ read: { kind: 'image.ocr', input: 'scan' } }, inputs));
    expect(g.tasks.flatMap((t) => t.inputNames)).toEqual(['scan']);
  });
});

describe('plan: declared pipeline, sharded steps', () => {
  it('shard: true on audio.analyze splits and stitches, with the step requirements for the windows', () => {
    const graph = plan(declared({ listen: { kind: 'audio.analyze', input: 'memo', shard: true, optional: true, requires: { model: 'vad-1', vramGiB: 4, computeCapability: '8.0' } } }));
    expect(() => validateTaskGraph(graph)).not.toThrow();
    // The recording is short, but the step asked for windows.
    expect(graph.tasks.map((t) => t.kind)).toEqual(['audio.split', 'audio.stitch', ASSEMBLE_KIND]);
    const [split, stitch] = graph.tasks;
    expect(split).toMatchObject({ inputNames: ['memo'], intermediate: true, optional: true, params: { windowSec: 30, overlapSec: 2, sampleRate: 16_000 } });
    expect(split?.requirements).toEqual(NO_REQUIREMENTS);
    expect(stitch).toMatchObject({ inputNames: ['memo'], label: 'listen', optional: true, dependsOn: [split?.id] });
    expect(stitch?.intermediate).toBeUndefined();
    expect(stitch?.params).toEqual({
      shardKind: 'audio.analyze',
      outputAs: 'audio.analyze',
      shardParams: { frameMs: 20 },
      shardRequirements: { model: 'vad-1', minVramBytes: 4 * GiB, minComputeCapability: '8.0', cpuAllowed: false },
      windowSec: 30,
      overlapSec: 2,
    });
    // The stitch runs in the coordinator: it needs nothing from a worker itself.
    expect(stitch?.requirements).toEqual(NO_REQUIREMENTS);
    expect(root(graph).dependsOn).toEqual([stitch?.id]);
  });

  it('takes the window from the step, the overlap defaulting to at most half of it', () => {
    const wide = plan(declared({ said: { kind: 'audio.transcribe', input: 'memo', shard: { windowSec: 20, overlapSec: 1 } } }));
    expect(wide.tasks[0]?.params).toEqual({ windowSec: 20, overlapSec: 1, sampleRate: 16_000 });
    expect(wide.tasks[1]?.params).toMatchObject({ shardKind: 'audio.transcribe', outputAs: 'audio.transcribe', shardParams: {}, windowSec: 20, overlapSec: 1 });
    const narrow = plan(declared({ said: { kind: 'audio.transcribe', input: 'memo', shard: { windowSec: 3 } } }));
    expect(narrow.tasks[0]?.params).toEqual({ windowSec: 3, overlapSec: 1.5, sampleRate: 16_000 });
  });

  it('a sharded step feeds the step that reads it', () => {
    const graph = plan(declared({ listen: { kind: 'audio.analyze', input: 'memo', shard: true }, report: { kind: 'fusion.report', from: ['listen'] } }));
    expect(graph.tasks.map((t) => [t.id, t.kind, t.label ?? null, t.dependsOn])).toEqual([
      ['t1', 'audio.split', null, []],
      ['t2', 'audio.stitch', 'listen', ['t1']],
      ['t3', 'fusion.report', 'report', ['t2']],
      ['t4', ASSEMBLE_KIND, null, ['t3']],
    ]);
  });

  it('shard on text.stats cuts the text into chunks of chunkChars', () => {
    const graph = plan(declared({ count: { kind: 'text.stats', input: 'notes', shard: { chunkChars: 500 }, optional: true } }));
    expect(graph.tasks.map((t) => t.kind)).toEqual(['text.split', 'text.stitch', ASSEMBLE_KIND]);
    expect(graph.tasks[0]).toMatchObject({ params: { maxChars: 500 }, intermediate: true, optional: true });
    expect(graph.tasks[1]).toMatchObject({ params: { shardKind: 'text.stats', outputAs: 'text.stats', source: 'input' }, optional: true });
  });

  // Source bug (planner.ts, planDeclared: `textTasks(...)` is called without the step's label).
  it('labels the stitch of a sharded text.stats step with the step name', () => {
    const graph = plan(declared({ count: { kind: 'text.stats', input: 'notes', shard: true } }));
    expect(graph.tasks.find((t) => t.kind === 'text.stitch')?.label).toBe('count');
  });

  // Source bug (planner.ts, audioTasks: shardParams are fixed per kind, the step's params are dropped).
  it("passes a sharded step's params to its windows", () => {
    const graph = plan(declared({ said: { kind: 'audio.transcribe', input: 'memo', shard: true, params: { language: 'de' } } }));
    expect(graph.tasks.find((t) => t.kind === 'audio.stitch')?.params['shardParams']).toEqual({ language: 'de' });
  });

  // Source bug (planner.ts, stepSharding: the error path lacks the step, and checkDeclaredSteps lets it through).
  it('refuses an overlap as long as the window, naming the step', () => {
    const steps = { listen: { kind: 'audio.analyze', input: 'memo', shard: { windowSec: 5, overlapSec: 5 } } };
    expect(specError(() => plan(declared(steps))).path).toBe('steps.listen.shard.overlapSec');
    expect(specError(() => validateJobSpec({ inputs: [], prompt: 'x', steps })).path).toBe('steps.listen.shard.overlapSec');
  });
});

describe('plan: declared pipeline, refusals', () => {
  it('checks the input types once they are known', () => {
    const err = specError(() => plan(declared({ read: { kind: 'image.ocr', input: 'memo' } })));
    expect(err.path).toBe('steps.read.input');
    expect(err.message).toMatch(/image\.ocr reads an image, but "memo" is a recording/);
  });

  it('refuses a job without steps', () => {
    expect(specError(() => plan({ pipeline: 'declared', inputs: INPUTS, prompt: '' })).path).toBe('steps');
  });

  it.each([
    { name: 'an unknown kind', steps: { x: { kind: 'video.split', input: 'scan' } }, path: 'steps.x.kind' },
    { name: 'a dangling reference', steps: { report: { kind: 'fusion.report', from: ['gone'] } }, path: 'steps.report.from[0]' },
    { name: 'a cycle', steps: { a: { kind: 'fusion.report', from: ['b'] }, b: { kind: 'fusion.report', from: ['a'] } }, path: 'steps.a.from' },
  ])('refuses $name as the checker does', ({ steps, path }) => {
    expect(specError(() => plan(declared(steps))).path).toBe(path);
  });

  // Source bug (declared-pipeline.ts: a step naming the same step twice in from: passes the check; the planner then throws PlanError).
  it('refuses a step that names the same step twice in from, as a job spec error', () => {
    const steps = { read: { kind: 'image.ocr', input: 'scan' }, report: { kind: 'fusion.report', from: ['read', 'read'] } };
    expect(specError(() => plan(declared(steps))).path).toBe('steps.report.from[1]');
  });
});

describe('validateJobSpec: steps', () => {
  const steps = { read: { kind: 'image.ocr', input: 'scan' }, report: { kind: 'fusion.report', from: ['read'] } };
  const scan = { name: 'scan', source: { type: 'text', text: 'not really an image' } };

  it('makes a job with steps a declared pipeline', () => {
    const spec = validateJobSpec({ inputs: [scan], prompt: PROMPT, steps });
    expect(spec.pipeline).toBe('declared');
    expect(spec.steps).toEqual(steps);
  });

  it('accepts pipeline "declared" with steps', () => {
    expect(validateJobSpec({ pipeline: 'declared', inputs: [scan], steps }).pipeline).toBe('declared');
  });

  it('accepts a declared job with no inputs and no prompt (steps that read nothing)', () => {
    const spec = validateJobSpec({ inputs: [], steps: { pause: { kind: 'selftest.sleep' } } });
    expect(spec).toMatchObject({ pipeline: 'declared', inputs: [], prompt: '' });
  });

  it.each(['ocr', 'transcribe', 'selftest', 'video-summary'])('refuses steps with pipeline %s', (pipeline) => {
    const err = specError(() => validateJobSpec({ pipeline, inputs: [scan], steps }));
    expect(err.path).toBe('pipeline');
    expect(err.message).toBe(`pipeline: a job with steps is a declared pipeline; leave pipeline out (got "${pipeline}")`);
  });

  it('refuses the declared pipeline without steps', () => {
    const err = specError(() => validateJobSpec({ pipeline: 'declared', inputs: [scan] }));
    expect(err.path).toBe('steps');
    expect(err.message).toBe('steps: the declared pipeline needs steps');
  });

  it('checks the steps against the input names, leaving the types to the planner', () => {
    expect(specError(() => validateJobSpec({ inputs: [scan], steps: { read: { kind: 'image.ocr', input: 'photo' } } })).path).toBe('steps.read.input');
    expect(specError(() => validateJobSpec({ inputs: [scan], steps: { read: { kind: 'image.ocr', input: 'scan', params: { colours: 3 } } } })).path).toBe('steps.read.params');
    expect(specError(() => validateJobSpec({ inputs: [scan], steps: {} })).path).toBe('steps');
    // The input's type is not known yet: an audio step on it passes here.
    expect(validateJobSpec({ inputs: [scan], steps: { listen: { kind: 'audio.analyze', input: 'scan' } } }).pipeline).toBe('declared');
  });

  it('then plans, refusing a type mismatch once the modality is known', () => {
    const spec = validateJobSpec({ inputs: [scan], prompt: PROMPT, steps });
    const graph = plan({ pipeline: spec.pipeline, inputs: [{ name: 'scan', modality: 'image', mediaType: 'image/png' }], prompt: spec.prompt, steps: spec.steps });
    expect(graph.tasks.map((t) => t.label ?? t.kind)).toEqual(['read', 'report', ASSEMBLE_KIND]);
    expect(() => plan({ pipeline: spec.pipeline, inputs: [{ name: 'scan', modality: 'text', mediaType: 'text/plain' }], prompt: spec.prompt, steps: spec.steps })).toThrow(InvalidJobSpecError);
  });
});
