import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { TextStatsOutput } from '@mmgrid/core';
import type { SplitSpans, TextJob } from './text-work.js';

/** Runs text jobs off the calling thread. */
export interface TextThreads {
  split(text: string, maxChars: number, signal: AbortSignal): Promise<SplitSpans>;
  stats(text: string, source: 'input' | 'prompt', signal: AbortSignal): Promise<TextStatsOutput>;
  close(): Promise<void>;
}

/**
 * The thread script: text-thread.js beside this module once built. Run from the sources (a
 * test runner loading src/…/text-threads.ts), it is the built one under lib/, since a thread
 * cannot load TypeScript.
 */
export function textThreadScript(here: string = import.meta.url): string {
  const beside = fileURLToPath(new URL('./text-thread.js', here));
  if (here.endsWith('.js') || existsSync(beside)) return beside;
  const built = beside.replace(/([\\/])src([\\/])(?!.*[\\/]src[\\/])/, '$1lib$2');
  if (!existsSync(built)) throw new Error(`the text thread script is not built: ${built} is missing (run pnpm build)`);
  return built;
}

export interface TextThreadOptions {
  /** At most this many texts are worked on at once (default: the machine's CPU count). */
  readonly maxThreads?: number;
  /** An idle thread ends after this long (default 30 s); the next job starts a new one. */
  readonly idleTimeoutMs?: number;
}

/**
 * A pool of threads for the text kinds, started on first use. A job whose `signal` aborts (its
 * task was cancelled, timed out, or the worker is stopping) ends at once: its thread is
 * stopped, so the CPU it was using is free again.
 */
export function textThreads(options: TextThreadOptions = {}): TextThreads {
  let pool: Piscina<TextJob, SplitSpans | TextStatsOutput> | undefined;
  let closed = false;
  const run = async (job: TextJob, signal: AbortSignal): Promise<SplitSpans | TextStatsOutput> => {
    if (closed) throw new Error('the text threads are closed (the worker is stopping)');
    pool ??= new Piscina({
      filename: textThreadScript(),
      minThreads: 0,
      maxThreads: options.maxThreads ?? availableParallelism(),
      idleTimeout: options.idleTimeoutMs ?? 30_000,
    });
    return pool.run(job, { signal });
  };
  return {
    split: async (text, maxChars, signal) => (await run({ op: 'split', text, maxChars }, signal)) as SplitSpans,
    stats: async (text, source, signal) => (await run({ op: 'stats', text, source }, signal)) as TextStatsOutput,
    async close() {
      closed = true;
      const p = pool;
      pool = undefined;
      await p?.destroy();
    },
  };
}
