import { describe, expect, it } from 'vitest';
import { InvalidJobSpecError, PlanError } from '../errors.js';
import { validateJobSpec } from '../job-spec.js';
import { pipelineInfo } from '../pipelines.js';
import { plan, type PlanRequest } from '../planner.js';
import { ASSEMBLE_KIND } from '../task-kinds.js';
import { NO_REQUIREMENTS, validateTaskGraph, type TaskGraph, type TaskRequirements } from '../task-graph.js';

const MiB = 1024 * 1024;

const selftest = (params?: Record<string, string>): PlanRequest => ({ pipeline: 'selftest', inputs: [], prompt: '', ...(params ? { params } : {}) });

function sleeps(graph: TaskGraph) {
  return graph.tasks.filter((t) => t.kind === 'selftest.sleep');
}

/** The error `fn` throws, which must be an InvalidJobSpecError. */
function specError(fn: () => unknown): InvalidJobSpecError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidJobSpecError);
    return err as InvalidJobSpecError;
  }
  throw new Error('expected an InvalidJobSpecError, nothing was thrown');
}

describe('plan: selftest pipeline, shape', () => {
  it.each([
    { name: 'no params at all', params: undefined, count: 1, ms: 100, failAttempts: 0 },
    { name: 'empty params', params: {}, count: 1, ms: 100, failAttempts: 0 },
    { name: 'empty strings fall back to the defaults', params: { tasks: '', taskMs: '', failAttempts: '' }, count: 1, ms: 100, failAttempts: 0 },
    { name: 'three tasks', params: { tasks: '3' }, count: 3, ms: 100, failAttempts: 0 },
    { name: 'tasks that take no time', params: { tasks: '2', taskMs: '0' }, count: 2, ms: 0, failAttempts: 0 },
    { name: 'tasks that fail on purpose', params: { tasks: '4', taskMs: '250', failAttempts: '2' }, count: 4, ms: 250, failAttempts: 2 },
    { name: 'the largest values', params: { tasks: '10000', taskMs: '600000', failAttempts: '100' }, count: 10_000, ms: 600_000, failAttempts: 100 },
  ])('$name', ({ params, count, ms, failAttempts }) => {
    const graph = plan(selftest(params));
    expect(() => validateTaskGraph(graph)).not.toThrow();
    expect(graph.pipeline).toBe('selftest');
    expect(graph.tasks).toHaveLength(count + 1);

    const tasks = sleeps(graph);
    expect(tasks).toHaveLength(count);
    tasks.forEach((task, index) => {
      expect(task.params).toEqual({ ms, failAttempts, index });
      expect(task.timeoutMs).toBe(ms + 60_000);
      expect(task.inputNames).toEqual([]);
      expect(task.dependsOn).toEqual([]);
      expect(task.optional).toBe(true);
      expect(task.requirements).toEqual(NO_REQUIREMENTS);
    });

    const root = graph.tasks[graph.tasks.length - 1];
    expect(root?.id).toBe(graph.rootId);
    expect(root?.kind).toBe(ASSEMBLE_KIND);
    expect(root?.optional).toBe(false);
    expect(root?.dependsOn).toEqual(tasks.map((t) => t.id));
  });

  it('is pure: the same request gives the same graph', () => {
    const request = selftest({ tasks: '3', taskMs: '10', gpu: 'true' });
    expect(plan(request)).toEqual(plan(request));
  });

  it('takes no inputs', () => {
    const request: PlanRequest = { pipeline: 'selftest', inputs: [{ name: 'notes', modality: 'text', mediaType: 'text/plain' }], prompt: '' };
    expect(() => plan(request)).toThrow(PlanError);
    expect(() => plan(request)).toThrow('input "notes" is text (text/plain); the selftest pipeline takes no inputs');
  });
});

describe('plan: selftest pipeline, requirements from params', () => {
  it.each([
    { name: 'none', params: {}, r: NO_REQUIREMENTS },
    { name: 'gpu=false', params: { gpu: 'false' }, r: NO_REQUIREMENTS },
    { name: 'a model alone still allows the CPU', params: { model: 'llama-3-8b' }, r: { ...NO_REQUIREMENTS, model: 'llama-3-8b' } },
    { name: 'gpu=true', params: { gpu: 'true' }, r: { ...NO_REQUIREMENTS, cpuAllowed: false } },
    { name: 'VRAM in MiB becomes bytes and needs a GPU', params: { minVramMiB: '24576' }, r: { ...NO_REQUIREMENTS, minVramBytes: 24_576 * MiB, cpuAllowed: false } },
    { name: 'minVramMiB=0 is no requirement', params: { minVramMiB: '0' }, r: NO_REQUIREMENTS },
    { name: 'compute capability needs a GPU', params: { minComputeCapability: '8.0' }, r: { ...NO_REQUIREMENTS, minComputeCapability: '8.0', cpuAllowed: false } },
    { name: 'two-digit major capability', params: { minComputeCapability: '10.0' }, r: { ...NO_REQUIREMENTS, minComputeCapability: '10.0', cpuAllowed: false } },
    {
      name: 'everything',
      params: { tasks: '2', model: 'sdxl', minVramMiB: '12288', minComputeCapability: '8.6', gpu: 'true' },
      r: { model: 'sdxl', minVramBytes: 12_288 * MiB, minComputeCapability: '8.6', cpuAllowed: false },
    },
    {
      name: 'gpu=false does not override VRAM',
      params: { minVramMiB: '1024', gpu: 'false' },
      r: { ...NO_REQUIREMENTS, minVramBytes: 1024 * MiB, cpuAllowed: false },
    },
  ] satisfies { name: string; params: Record<string, string>; r: TaskRequirements }[])('$name', ({ params, r }) => {
    const tasks = sleeps(plan(selftest(params)));
    expect(tasks.length).toBeGreaterThan(0);
    for (const task of tasks) expect(task.requirements).toEqual(r);
  });

  it('the assembly step has no requirements', () => {
    const graph = plan(selftest({ gpu: 'true', minVramMiB: '1024' }));
    expect(graph.tasks.find((t) => t.id === graph.rootId)?.requirements).toEqual(NO_REQUIREMENTS);
  });
});

describe('plan: selftest pipeline, bad params', () => {
  it.each([
    { param: 'tasks', value: '0' },
    { param: 'tasks', value: '10001' },
    { param: 'tasks', value: '-1' },
    { param: 'tasks', value: '1.5' },
    { param: 'tasks', value: 'many' },
    { param: 'taskMs', value: '-1' },
    { param: 'taskMs', value: '600001' },
    { param: 'taskMs', value: '0.5' },
    { param: 'failAttempts', value: '101' },
    { param: 'failAttempts', value: 'x' },
    { param: 'minVramMiB', value: '-1' },
    { param: 'minVramMiB', value: 'lots' },
    { param: 'minVramMiB', value: String(16 * 1024 * 1024 + 1) },
    { param: 'minComputeCapability', value: '8' },
    { param: 'minComputeCapability', value: '8.10' },
    { param: 'minComputeCapability', value: '100.0' },
    { param: 'minComputeCapability', value: 'v8.0' },
    { param: 'minComputeCapability', value: 'sm_80' },
    { param: 'gpu', value: 'yes' },
    { param: 'gpu', value: 'TRUE' },
    { param: 'gpu', value: '1' },
    { param: 'gpu', value: '' },
  ])('$param=$value', ({ param, value }) => {
    const err = specError(() => plan(selftest({ [param]: value })));
    expect(err.path).toBe(`params.${param}`);
    expect(err.code).toBe('INVALID_JOB_SPEC');
    expect(err.message).toContain(`params.${param}: `);
    expect(err.message).toContain(JSON.stringify(value));
  });

  it('says the allowed range of a whole-number parameter', () => {
    expect(specError(() => plan(selftest({ tasks: '0' }))).message).toBe('params.tasks: must be a whole number from 1 to 10000 (got "0")');
  });
});

describe('validateJobSpec: params', () => {
  it('accepts a selftest job with no inputs and no prompt', () => {
    const spec = validateJobSpec({ pipeline: 'selftest', inputs: [] });
    expect(spec).toMatchObject({ pipeline: 'selftest', inputs: [], prompt: '', params: {} });
  });

  it('keeps the selftest parameters, which then plan', () => {
    const params = { tasks: '3', taskMs: '5', failAttempts: '1', model: 'm', minVramMiB: '512', minComputeCapability: '7.5', gpu: 'true' };
    const spec = validateJobSpec({ pipeline: 'selftest', inputs: [], params });
    expect(spec.params).toEqual(params);
    const graph = plan({ pipeline: spec.pipeline, inputs: [], prompt: spec.prompt, params: spec.params });
    expect(sleeps(graph)).toHaveLength(3);
  });

  it('still refuses an empty describe job', () => {
    expect(specError(() => validateJobSpec({ inputs: [] })).path).toBe('');
    expect(specError(() => validateJobSpec({ inputs: [], pipeline: 'describe', prompt: '  ' })).message).toMatch(/the job is empty/);
  });

  it('refuses an unknown selftest parameter, naming the ones it takes', () => {
    const err = specError(() => validateJobSpec({ pipeline: 'selftest', inputs: [], params: { tasks: '2', count: '5' } }));
    expect(err.path).toBe('params.count');
    const names = pipelineInfo('selftest')?.params.map((p) => p.name) ?? [];
    expect(names).toEqual(['tasks', 'taskMs', 'failAttempts', 'model', 'minVramMiB', 'minComputeCapability', 'gpu']);
    expect(err.message).toBe(`params.count: the selftest pipeline has no such parameter; it takes ${names.join(', ')}`);
  });

  it('refuses an unknown parameter on describe, naming the ones it takes', () => {
    const err = specError(() => validateJobSpec({ inputs: [], prompt: 'hello', params: { tasks: '1' } }));
    expect(err.path).toBe('params.tasks');
    expect(err.message).toBe('params.tasks: the describe pipeline has no such parameter; it takes windowSec, overlapSec, fps, maxFrames, chunkChars');
    expect(pipelineInfo('describe')?.params.map((p) => p.name)).toEqual(['windowSec', 'overlapSec', 'fps', 'maxFrames', 'chunkChars']);
  });

  it('keeps the describe parameters, which then plan', () => {
    const params = { windowSec: '10', overlapSec: '1', fps: '2', maxFrames: '50', chunkChars: '500' };
    const spec = validateJobSpec({ inputs: [], prompt: 'hello', params });
    expect(spec.pipeline).toBe('describe');
    expect(spec.params).toEqual(params);
    const graph = plan({ pipeline: spec.pipeline, inputs: [{ name: 'memo', modality: 'audio', mediaType: 'audio/wav' }], prompt: spec.prompt, params: spec.params });
    expect(graph.tasks.find((t) => t.kind === 'audio.split')?.params).toEqual({ windowSec: 10, overlapSec: 1, sampleRate: 16_000 });
  });

  it('refuses a parameter of another pipeline, naming the ones this one takes', () => {
    const err = specError(() => validateJobSpec({ pipeline: 'ocr', inputs: [], prompt: 'hello', params: { windowSec: '10' } }));
    expect(err.path).toBe('params.windowSec');
    expect(err.message).toBe('params.windowSec: the ocr pipeline has no such parameter; it takes fps, maxFrames');
  });

  it('refuses any parameter on a pipeline that takes none', () => {
    const steps = { pause: { kind: 'selftest.sleep' } };
    const err = specError(() => validateJobSpec({ inputs: [], steps, params: { windowSec: '10' } }));
    expect(err.path).toBe('params.windowSec');
    expect(err.message).toBe('params.windowSec: the declared pipeline has no such parameter; it takes none');
  });

  it.each([
    { name: 'a name starting with a digit', params: { '1tasks': '1' } },
    { name: 'a name with a space', params: { 'two words': '1' } },
    { name: 'a value that is not a string', params: { tasks: 3 } },
    { name: 'a value that is too long', params: { model: 'x'.repeat(257) } },
  ])('refuses $name', ({ params }) => {
    const err = specError(() => validateJobSpec({ pipeline: 'selftest', inputs: [], params }));
    expect(err.path.startsWith('params')).toBe(true);
  });

  it('refuses more parameters than labels allow', () => {
    const params = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`p${i}`, 'x']));
    expect(specError(() => validateJobSpec({ pipeline: 'selftest', inputs: [], params })).path).toBe('params');
  });
});
