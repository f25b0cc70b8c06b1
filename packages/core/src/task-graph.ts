import { PlanError } from './errors.js';
import type { JsonObject } from './json.js';

/** What a task needs from the worker that runs it. Zero/empty means no requirement. */
export interface TaskRequirements {
  readonly model: string;
  readonly minVramBytes: number;
  /** "major.minor", or "" for none. */
  readonly minComputeCapability: string;
  readonly cpuAllowed: boolean;
}

export const NO_REQUIREMENTS: TaskRequirements = { model: '', minVramBytes: 0, minComputeCapability: '', cpuAllowed: true };

export interface TaskNode {
  /** Unique within the job. */
  readonly id: string;
  readonly kind: string;
  /** The job inputs the task reads, by name. */
  readonly inputNames: readonly string[];
  readonly params: JsonObject;
  /** Tasks whose outputs this one consumes; it runs after all of them end. */
  readonly dependsOn: readonly string[];
  /** The job can succeed without this task (its failure makes the result partial). */
  readonly optional: boolean;
  readonly requirements: TaskRequirements;
  /** A run longer than this is given up (counts as a failed attempt). */
  readonly timeoutMs: number;
  /** Its output only feeds the next step (a split): not part of the result, not counted in coverage. */
  readonly intermediate?: boolean;
  /** The step's name in a declared pipeline. */
  readonly label?: string;
}

/**
 * A job's tasks. Tasks are listed so that every task comes after those it depends on; the
 * root (the last task) assembles the result. The graph is a tree: each task but the root
 * feeds exactly one other, which is what a BullMQ flow can hold.
 */
export interface TaskGraph {
  readonly pipeline: string;
  readonly rootId: string;
  readonly tasks: readonly TaskNode[];
}

/** Checks the invariants above; throws PlanError naming the first one broken. */
export function validateTaskGraph(graph: TaskGraph): void {
  const index = new Map<string, number>();
  graph.tasks.forEach((task, i) => {
    if (index.has(task.id)) throw new PlanError(`task id "${task.id}" is used twice`);
    index.set(task.id, i);
  });
  const root = index.get(graph.rootId);
  if (root === undefined) throw new PlanError(`root task "${graph.rootId}" is not in the graph`);
  if (root !== graph.tasks.length - 1) throw new PlanError(`root task "${graph.rootId}" must come last`);
  const consumers = new Map<string, string>();
  graph.tasks.forEach((task, i) => {
    for (const dep of task.dependsOn) {
      const at = index.get(dep);
      if (at === undefined) throw new PlanError(`task "${task.id}" depends on "${dep}", which is not in the graph`);
      if (at >= i) throw new PlanError(`task "${task.id}" depends on "${dep}", which does not come before it (a cycle or a bad order)`);
      const other = consumers.get(dep);
      if (other !== undefined) throw new PlanError(`task "${dep}" feeds both "${other}" and "${task.id}"; each task feeds one other`);
      consumers.set(dep, task.id);
    }
  });
  for (const task of graph.tasks) {
    if (task.id !== graph.rootId && !consumers.has(task.id)) {
      throw new PlanError(`task "${task.id}" feeds no other task, so its output would be lost`);
    }
  }
  if (consumers.has(graph.rootId)) throw new PlanError(`root task "${graph.rootId}" must not feed another task`);
}

/** The tasks that depend directly on nothing. */
export function leafTasks(graph: TaskGraph): TaskNode[] {
  return graph.tasks.filter((t) => t.dependsOn.length === 0);
}

export function findTask(graph: TaskGraph, id: string): TaskNode | undefined {
  return graph.tasks.find((t) => t.id === id);
}
