import { PlanError } from './errors.js';
import type { TaskStateName } from './job-state.js';
import type { TaskGraph } from './task-graph.js';

/**
 * Which tasks a retry runs again: every task that failed (or was cancelled because an input
 * failed) and every task that consumes them, up to the root. Tasks that succeeded keep their
 * outputs. When only the assembly failed, it alone runs again. Throws PlanError when nothing
 * failed.
 */
export function retryPlan(graph: TaskGraph, states: ReadonlyMap<string, TaskStateName>): Set<string> {
  const consumerOf = new Map<string, string>();
  for (const task of graph.tasks) for (const dep of task.dependsOn) consumerOf.set(dep, task.id);
  const rerun = new Set<string>();
  for (const task of graph.tasks) {
    if (task.id === graph.rootId) continue;
    const state = states.get(task.id);
    if (state !== 'failed' && state !== 'cancelled') continue;
    for (let id: string | undefined = task.id; id !== undefined && !rerun.has(id); id = consumerOf.get(id)) rerun.add(id);
  }
  if (rerun.size === 0) {
    // Only the assembly failed (every task's output is there): assemble again.
    if (states.get(graph.rootId) === 'failed') return new Set([graph.rootId]);
    throw new PlanError('nothing to retry: no task of this job failed');
  }
  rerun.add(graph.rootId);
  return rerun;
}
