import { describe, expect, it } from 'vitest';
import { PlanError } from '../errors.js';
import { findTask, leafTasks, NO_REQUIREMENTS, validateTaskGraph, type TaskGraph, type TaskNode } from '../task-graph.js';

function node(id: string, dependsOn: string[] = [], inputNames: string[] = []): TaskNode {
  return { id, kind: 'x.y', inputNames, params: {}, dependsOn, optional: inputNames.length > 0, requirements: NO_REQUIREMENTS, timeoutMs: 60_000 };
}

function graph(rootId: string, tasks: TaskNode[]): TaskGraph {
  return { pipeline: 'describe', rootId, tasks };
}

/** a, b → fuse → root */
const good = graph('root', [node('a', [], ['in1']), node('b', [], ['in2']), node('fuse', ['a', 'b']), node('root', ['fuse'])]);

describe('validateTaskGraph', () => {
  const valid: { name: string; graph: TaskGraph }[] = [
    { name: 'tree of two leaves', graph: good },
    { name: 'root alone', graph: graph('r', [node('r')]) },
    { name: 'chain', graph: graph('c', [node('a'), node('b', ['a']), node('c', ['b'])]) },
  ];
  it.each(valid)('accepts $name', ({ graph: g }) => {
    expect(() => validateTaskGraph(g)).not.toThrow();
  });

  const invalid: { name: string; graph: TaskGraph; message: RegExp }[] = [
    { name: 'a duplicate id', graph: graph('root', [node('a'), node('a'), node('root', ['a'])]), message: /task id "a" is used twice/ },
    { name: 'a root that is not in the graph', graph: graph('nope', [node('a'), node('root', ['a'])]), message: /root task "nope" is not in the graph/ },
    { name: 'an empty graph', graph: graph('root', []), message: /root task "root" is not in the graph/ },
    { name: 'a root that is not last', graph: graph('root', [node('a'), node('root', ['a']), node('b')]), message: /root task "root" must come last/ },
    { name: 'a missing dependency', graph: graph('root', [node('a', ['ghost']), node('root', ['a'])]), message: /"a" depends on "ghost", which is not in the graph/ },
    {
      name: 'a cycle',
      graph: graph('root', [node('a', ['b']), node('b', ['a']), node('root', ['b'])]),
      message: /"a" depends on "b", which does not come before it \(a cycle or a bad order\)/,
    },
    { name: 'a task depending on itself', graph: graph('root', [node('a', ['a']), node('root', ['a'])]), message: /"a" depends on "a", which does not come before it/ },
    {
      name: 'a bad order',
      graph: graph('root', [node('fuse', ['a']), node('a'), node('root', ['fuse'])]),
      message: /"fuse" depends on "a", which does not come before it/,
    },
    {
      name: 'a node feeding two nodes',
      graph: graph('root', [node('a'), node('b', ['a']), node('c', ['a']), node('root', ['b', 'c'])]),
      message: /task "a" feeds both "b" and "c"; each task feeds one other/,
    },
    {
      name: 'a dangling node',
      graph: graph('root', [node('a'), node('lost'), node('root', ['a'])]),
      message: /task "lost" feeds no other task, so its output would be lost/,
    },
  ];
  it.each(invalid)('rejects $name', ({ graph: g, message }) => {
    expect(() => validateTaskGraph(g)).toThrow(PlanError);
    expect(() => validateTaskGraph(g)).toThrow(message);
  });
});

describe('leafTasks and findTask', () => {
  it('lists the tasks that depend on nothing, in order', () => {
    expect(leafTasks(good).map((t) => t.id)).toEqual(['a', 'b']);
  });

  it('finds a task by id, or undefined', () => {
    expect(findTask(good, 'fuse')?.dependsOn).toEqual(['a', 'b']);
    expect(findTask(good, 'ghost')).toBeUndefined();
  });
});
