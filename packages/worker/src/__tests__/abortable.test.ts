import { setImmediate as tick } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { abortable } from '../task-runner.js';

describe('abortable', () => {
  const unhandled: unknown[] = [];
  const record = (reason: unknown): void => void unhandled.push(reason);
  beforeEach(() => {
    unhandled.length = 0;
    process.on('unhandledRejection', record);
  });
  afterEach(() => void process.off('unhandledRejection', record));

  /**
   * Work that fails once `signal` aborts, as a handler that honours it does, a step later
   * than the abort; `failed` settles when it has.
   */
  function honouring(signal: AbortSignal): { work: Promise<string>; failed: Promise<void> } {
    let failed!: () => void;
    const done = new Promise<void>((resolve) => (failed = resolve));
    const work = new Promise<string>((_resolve, reject) => {
      const stop = (): void =>
        void tick().then(() => {
          reject(new Error('stopped by its signal'));
          failed();
        });
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
    });
    return { work, failed: done };
  }

  /** Past the turn in which Node reports a rejection nobody handled. */
  async function afterRejectionsAreReported(failed: Promise<void>): Promise<void> {
    await failed;
    await tick();
    await tick();
  }

  it('gives up work whose task was stopped before it began, and drops its later failure', async () => {
    // A cancel that arrives while the inputs download: the handler starts with the signal aborted.
    const controller = new AbortController();
    controller.abort('cancelled');
    const { work, failed } = honouring(controller.signal);
    await expect(abortable(work, controller.signal)).rejects.toThrow('aborted');
    await afterRejectionsAreReported(failed);
    expect(unhandled).toEqual([]);
  });

  it('gives up work stopped while it runs, and drops its later failure', async () => {
    const controller = new AbortController();
    const { work, failed } = honouring(controller.signal);
    const running = abortable(work, controller.signal);
    controller.abort('cancelled');
    await expect(running).rejects.toThrow('aborted');
    await afterRejectionsAreReported(failed);
    expect(unhandled).toEqual([]);
  });

  it("passes the work's own result and failure through", async () => {
    const signal = new AbortController().signal;
    await expect(abortable(Promise.resolve(7), signal)).resolves.toBe(7);
    await expect(abortable(Promise.reject(new Error('bad input')), signal)).rejects.toThrow('bad input');
  });
});
