/**
 * Runs `follow` with a signal that Ctrl-C (SIGINT) aborts, so a command following a job
 * (`watch`, `--wait`) stops following and says so instead of dying mid-output; the job goes on
 * on the grid. A second Ctrl-C ends the process as usual.
 */
export async function untilInterrupted<T>(follow: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onInterrupt = (): void => controller.abort();
  process.once('SIGINT', onInterrupt);
  try {
    return await follow(controller.signal);
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}
