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

  /** Work that fails a moment later because of `signal`, as a handler that honours it does. */
  function honouring(signal: AbortSignal): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve('done'), 10_000);
      const stop = (): void => {
        clearTimeout(timer);
        setTimeout(() => reject(new Error('stopped by its signal')), 5);
      };
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
    });
  }

  it('gives up work whose task was stopped before it began, and drops its later failure', async () => {
    // A cancel that arrives while the inputs download: the handler starts with the signal aborted.
    const controller = new AbortController();
    controller.abort('cancelled');
    await expect(abortable(honouring(controller.signal), controller.signal)).rejects.toThrow('aborted');
    await new Promise((resolve) => setTimeout(resolve, 20));
    await tick();
    expect(unhandled).toEqual([]);
  });

  it('gives up work stopped while it runs, and drops its later failure', async () => {
    const controller = new AbortController();
    const running = abortable(honouring(controller.signal), controller.signal);
    controller.abort('cancelled');
    await expect(running).rejects.toThrow('aborted');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(unhandled).toEqual([]);
  });

  it("passes the work's own result and failure through", async () => {
    const signal = new AbortController().signal;
    await expect(abortable(Promise.resolve(7), signal)).resolves.toBe(7);
    await expect(abortable(Promise.reject(new Error('bad input')), signal)).rejects.toThrow('bad input');
  });
});
