import { describe, expect, it } from 'vitest';
import { PlanError } from '../errors.js';
import type { TaskStateName } from '../job-state.js';
import { plan, type PlanInput } from '../planner.js';
import { retryPlan } from '../retry-plan.js';
import { NO_REQUIREMENTS, validateTaskGraph, type TaskGraph, type TaskNode } from '../task-graph.js';

function node(id: string, dependsOn: string[] = []): TaskNode {
  return { id, kind: 'selftest.sleep', inputNames: [], params: {}, dependsOn, optional: dependsOn.length === 0, requirements: NO_REQUIREMENTS, timeoutMs: 60_000 };
}

/**
 * A tree three levels deep:
 *
 *   a ─┐
 *   b ─┴─ m1 ─┐
 *   c ─── m2 ─┴─ root
 *   d ────────┘
 */
const tree: TaskGraph = {
  pipeline: 'test',
  rootId: 'root',
  tasks: [node('a'), node('b'), node('c'), node('d'), node('m1', ['a', 'b']), node('m2', ['c']), node('root', ['m1', 'm2', 'd'])],
};

/** Every task succeeded, except those given. */
function states(graph: TaskGraph, changed: Record<string, TaskStateName> = {}): Map<string, TaskStateName> {
  return new Map(graph.tasks.map((t) => [t.id, changed[t.id] ?? 'succeeded']));
}

const sorted = (ids: Iterable<string>): string[] => [...ids].sort();

describe('retryPlan on a hand-built tree', () => {
  it('the tree is a valid task graph', () => {
    expect(() => validateTaskGraph(tree)).not.toThrow();
  });

  it.each([
    { name: 'a failed leaf: it, its ancestors and the root', changed: { a: 'failed', m1: 'failed', root: 'failed' }, rerun: ['a', 'm1', 'root'] },
    { name: 'a failed leaf whose consumers are marked cancelled', changed: { c: 'failed', m2: 'cancelled', root: 'cancelled' }, rerun: ['c', 'm2', 'root'] },
    { name: 'a failed leaf while its consumers succeeded (optional input)', changed: { b: 'failed' }, rerun: ['b', 'm1', 'root'] },
    { name: 'a leaf feeding the root directly', changed: { d: 'failed' }, rerun: ['d', 'root'] },
    { name: 'a cancelled leaf counts as failed', changed: { a: 'cancelled' }, rerun: ['a', 'm1', 'root'] },
    { name: 'a failed middle task whose inputs succeeded', changed: { m1: 'failed' }, rerun: ['m1', 'root'] },
    { name: 'two failed leaves under one parent', changed: { a: 'failed', b: 'failed' }, rerun: ['a', 'b', 'm1', 'root'] },
    { name: 'failures in separate branches', changed: { a: 'failed', c: 'cancelled', d: 'failed' }, rerun: ['a', 'c', 'd', 'm1', 'm2', 'root'] },
    { name: 'everything failed', changed: { a: 'failed', b: 'failed', c: 'failed', d: 'failed', m1: 'failed', m2: 'failed', root: 'failed' }, rerun: ['a', 'b', 'c', 'd', 'm1', 'm2', 'root'] },
  ] satisfies { name: string; changed: Record<string, TaskStateName>; rerun: string[] }[])('$name', ({ changed, rerun }) => {
    expect(sorted(retryPlan(tree, states(tree, changed)))).toEqual(sorted(rerun));
  });

  it('does not rerun succeeded siblings or unrelated branches', () => {
    const rerun = retryPlan(tree, states(tree, { a: 'failed' }));
    for (const id of ['b', 'c', 'd', 'm2']) expect(rerun.has(id)).toBe(false);
  });

  it.each([
    { name: 'everything succeeded', changed: {} },
    { name: 'only the root was cancelled', changed: { root: 'cancelled' } },
    { name: 'tasks still blocked, queued or running', changed: { a: 'running', b: 'queued', m1: 'blocked' } },
  ] satisfies { name: string; changed: Record<string, TaskStateName> }[])('nothing to retry: $name', ({ changed }) => {
    expect(() => retryPlan(tree, states(tree, changed))).toThrow(PlanError);
    expect(() => retryPlan(tree, states(tree, changed))).toThrow(/nothing to retry/);
  });

  it('reruns the root alone when only the assembly failed (its inputs are all there)', () => {
    expect(sorted(retryPlan(tree, states(tree, { root: 'failed' })))).toEqual(['root']);
  });

  it('tasks with no recorded state are not rerun', () => {
    const partial = new Map<string, TaskStateName>([['c', 'failed']]);
    expect(sorted(retryPlan(tree, partial))).toEqual(['c', 'm2', 'root']);
    expect(() => retryPlan(tree, new Map())).toThrow(PlanError);
  });
});

describe('retryPlan on planned graphs', () => {
  const image = (name: string): PlanInput => ({ name, modality: 'image', mediaType: 'image/png' });
  const audio = (name: string, durationSec?: number): PlanInput => ({ name, modality: 'audio', mediaType: 'audio/wav', ...(durationSec !== undefined ? { durationSec } : {}) });

  // t1 image.ocr(cat), t2 image.inspect(cat), t3 audio.analyze(memo), t4 text.stats(prompt), t5 fusion.report, t6 job.assemble
  const describeGraph = plan({ pipeline: 'describe', inputs: [image('cat'), audio('memo', 4)], prompt: 'Is there a cat?' });

  it('describe: the graph has the expected shape', () => {
    expect(describeGraph.tasks.map((t) => t.kind)).toEqual(['image.ocr', 'image.inspect', 'audio.analyze', 'text.stats', 'fusion.report', 'job.assemble']);
    expect(describeGraph.rootId).toBe('t6');
  });

  it.each([
    { name: 'failed OCR reruns OCR, fusion and assembly', changed: { t1: 'failed' }, rerun: ['t1', 't5', 't6'] },
    { name: 'cancelled audio analysis', changed: { t3: 'cancelled' }, rerun: ['t3', 't5', 't6'] },
    { name: 'two failed analyses', changed: { t2: 'failed', t4: 'failed' }, rerun: ['t2', 't4', 't5', 't6'] },
    { name: 'failed fusion alone', changed: { t5: 'failed', t6: 'failed' }, rerun: ['t5', 't6'] },
  ] satisfies { name: string; changed: Record<string, TaskStateName>; rerun: string[] }[])('describe: $name', ({ changed, rerun }) => {
    expect(sorted(retryPlan(describeGraph, states(describeGraph, changed)))).toEqual(sorted(rerun));
  });

  it('describe: nothing failed', () => {
    expect(() => retryPlan(describeGraph, states(describeGraph))).toThrow(PlanError);
  });

  it('describe: only the assembly failed reruns the assembly alone', () => {
    expect(sorted(retryPlan(describeGraph, states(describeGraph, { t6: 'failed' })))).toEqual(['t6']);
  });

  // A recording of unknown length is split and stitched:
  // t1 audio.split(memo), t2 audio.stitch(memo), t3 text.stats(prompt), t4 fusion.report, t5 job.assemble
  const longGraph = plan({ pipeline: 'describe', inputs: [audio('memo')], prompt: 'what is said?' });

  it('describe, long recording: the graph has the expected shape', () => {
    expect(longGraph.tasks.map((t) => t.kind)).toEqual(['audio.split', 'audio.stitch', 'text.stats', 'fusion.report', 'job.assemble']);
    expect(longGraph.rootId).toBe('t5');
  });

  it.each([
    { name: 'failed split reruns the split, its stitch and on up', changed: { t1: 'failed', t2: 'cancelled' }, rerun: ['t1', 't2', 't4', 't5'] },
    { name: 'failed split whose stitch was not marked', changed: { t1: 'failed' }, rerun: ['t1', 't2', 't4', 't5'] },
    { name: 'failed stitch keeps the split', changed: { t2: 'failed' }, rerun: ['t2', 't4', 't5'] },
    { name: 'failed prompt analysis leaves the recording alone', changed: { t3: 'failed' }, rerun: ['t3', 't4', 't5'] },
    { name: 'only the assembly failed', changed: { t5: 'failed' }, rerun: ['t5'] },
  ] satisfies { name: string; changed: Record<string, TaskStateName>; rerun: string[] }[])('describe, long recording: $name', ({ changed, rerun }) => {
    expect(sorted(retryPlan(longGraph, states(longGraph, changed)))).toEqual(sorted(rerun));
  });

  const transcribeGraph = plan({ pipeline: 'transcribe', inputs: [audio('a', 5), audio('b', 5)], prompt: '' });

  it('transcribe: a failed window stitch reruns that recording only', () => {
    // t1 split(a), t2 stitch(a), t3 split(b), t4 stitch(b), t5 job.assemble
    expect(transcribeGraph.tasks.map((t) => t.kind)).toEqual(['audio.split', 'audio.stitch', 'audio.split', 'audio.stitch', 'job.assemble']);
    expect(sorted(retryPlan(transcribeGraph, states(transcribeGraph, { t4: 'failed' })))).toEqual(['t4', 't5']);
    expect(sorted(retryPlan(transcribeGraph, states(transcribeGraph, { t1: 'failed', t2: 'cancelled' })))).toEqual(['t1', 't2', 't5']);
  });

  const selftest = plan({ pipeline: 'selftest', inputs: [], prompt: '', params: { tasks: '5' } });

  it.each([
    { name: 'one failed sleep', changed: { t3: 'failed' }, rerun: ['t3', 't6'] },
    { name: 'failed and cancelled sleeps', changed: { t1: 'failed', t5: 'cancelled' }, rerun: ['t1', 't5', 't6'] },
    { name: 'every sleep failed', changed: { t1: 'failed', t2: 'failed', t3: 'failed', t4: 'failed', t5: 'failed' }, rerun: ['t1', 't2', 't3', 't4', 't5', 't6'] },
  ] satisfies { name: string; changed: Record<string, TaskStateName>; rerun: string[] }[])('selftest: $name', ({ changed, rerun }) => {
    expect(selftest.rootId).toBe('t6');
    expect(sorted(retryPlan(selftest, states(selftest, changed)))).toEqual(sorted(rerun));
  });

  it('selftest: nothing failed', () => {
    expect(() => retryPlan(selftest, states(selftest))).toThrow(PlanError);
  });
});
