import { setTimeout as delay } from 'node:timers/promises';
import type { SelftestSleepOutput } from '@mmgrid/core';
import { TaskFailedError } from '../../errors.js';
import type { TaskContext, TaskHandler } from '../backend.js';

function intParam(ctx: TaskContext, name: string, max: number): number {
  const value = ctx.params[name] ?? 0;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new TaskFailedError('INVALID_PARAMS', `selftest.sleep parameter ${name} must be an integer from 0 to ${max}`, false);
  }
  return value;
}

/**
 * `selftest.sleep`: waits `ms`, then succeeds; on its first `failAttempts` attempts it fails
 * instead (retryably). For checking a grid end to end and measuring its overhead.
 */
export class SelftestSleepHandler implements TaskHandler {
  readonly kind = 'selftest.sleep';
  readonly description = 'waits and succeeds, for checking a grid (selftest pipeline)';

  async run(ctx: TaskContext): Promise<SelftestSleepOutput> {
    const ms = intParam(ctx, 'ms', 600_000);
    const failAttempts = intParam(ctx, 'failAttempts', 100);
    const index = intParam(ctx, 'index', 1_000_000);
    const started = Date.now();
    if (ms > 0) await delay(ms, undefined, { signal: ctx.signal });
    if (ctx.attempt <= failAttempts) {
      throw new TaskFailedError('TASK_FAILED', `failing on purpose on attempt ${ctx.attempt} of the first ${failAttempts}`, true);
    }
    return { sleptMs: Date.now() - started, attempt: ctx.attempt, index };
  }
}
