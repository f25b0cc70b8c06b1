/** Job lifecycle. QUEUED → RUNNING → one of the terminal states; cancel may end it from any live state. */
export type JobStateName = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

export const TERMINAL_JOB_STATES: readonly JobStateName[] = ['completed', 'failed', 'cancelled'];

export function isTerminalJobState(state: JobStateName): boolean {
  return TERMINAL_JOB_STATES.includes(state);
}

const allowed: Readonly<Record<JobStateName, readonly JobStateName[]>> = {
  queued: ['running', 'completed', 'failed', 'cancelled'],
  running: ['completed', 'failed', 'cancelled'],
  completed: [],
  failed: [],
  cancelled: [],
};

export function canTransition(from: JobStateName, to: JobStateName): boolean {
  return allowed[from].includes(to);
}

/** Task lifecycle as the job record shows it. */
export type TaskStateName = 'blocked' | 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
