import { isMmgridError } from '@mmgrid/client';
import { CliError } from './errors.js';
import { ExitCode } from './exit-codes.js';
import { detachedMessage } from './follow.js';

/**
 * Waits for a job (`--wait`) with a signal that Ctrl-C (SIGINT) aborts, so the command
 * detaches (exit 130) and says how to re-attach instead of dying mid-output; the job goes on
 * on the grid. A second Ctrl-C ends the process as usual.
 */
export async function untilInterrupted<T>(jobId: string, wait: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onInterrupt = (): void => controller.abort();
  process.once('SIGINT', onInterrupt);
  try {
    return await wait(controller.signal);
  } catch (err) {
    if (isMmgridError(err, 'ABORTED') && controller.signal.aborted) {
      throw new CliError(detachedMessage(jobId), ExitCode.DETACHED, { cause: err });
    }
    throw err;
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}
