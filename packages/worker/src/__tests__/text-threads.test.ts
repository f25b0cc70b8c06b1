import { afterAll, describe, expect, it } from 'vitest';
import { textChunks, textStats } from '@mmgrid/core';
import { textThreadScript, textThreads } from '../backends/builtin/text-threads.js';
import { codePoints, splitSpans } from '../backends/builtin/text-work.js';

const never = new AbortController().signal;

describe('text threads', () => {
  const threads = textThreads({ maxThreads: 1 });
  afterAll(() => threads.close());

  it('split gives the chunks textChunks gives, as contiguous ends, and counts code points', async () => {
    const text = 'First sentence here. Second one, with 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 outside the BMP! Third?\n\nA new paragraph. '.repeat(50);
    const { characters, ends } = await threads.split(text, 120, never);
    const expected = textChunks(text, 120);
    expect([...ends]).toEqual(expected.map((c) => c.end));
    expect(expected.every((c, i) => c.start === (i === 0 ? 0 : ends[i - 1]))).toBe(true);
    expect(characters).toBe([...text].length);
    expect(splitSpans(text, 120).ends).toEqual(ends);
  });

  it('stats gives what textStats gives on the calling thread', async () => {
    const text = 'Ünïcödé words, and more words. 日本語のテキストも。 A third sentence!';
    expect(await threads.stats(text, 'prompt', never)).toEqual(textStats(text, 'prompt'));
  });

  it('a job whose signal aborts ends at once, and the next job runs on a new thread', async () => {
    // About 2 s of segmenting on one core.
    const long = 'A sentence that ends with a stop. '.repeat(600_000);
    const controller = new AbortController();
    const running = threads.split(long, 1000, controller.signal);
    setTimeout(() => controller.abort(new Error('cancelled')), 50);
    await expect(running).rejects.toMatchObject({ name: 'AbortError' });
    // The one thread there is was stopped: a new one takes the next job.
    expect((await threads.split('One. Two.', 100, never)).ends).toEqual(new Uint32Array([9]));
  });

  it('refuses a job whose signal has already aborted', async () => {
    const controller = new AbortController();
    controller.abort(new Error('gone'));
    await expect(threads.stats('text', 'input', controller.signal)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('refuses work once closed, saying why', async () => {
    const other = textThreads();
    await other.close();
    await expect(other.split('One.', 100, never)).rejects.toThrow(/closed \(the worker is stopping\)/);
    // Closing twice is harmless (the text kinds share one pool and each closes it).
    await other.close();
  });

  it('counts surrogate pairs as one code point and a lone surrogate as one', () => {
    expect(codePoints('a𝔘b')).toBe(3);
    expect(codePoints('a\ud835b')).toBe(3);
    expect(codePoints('')).toBe(0);
  });

  it('runs the built thread script, beside the module once built or under lib/ from the sources', () => {
    expect(textThreadScript('file:///opt/mmgrid/packages/worker/lib/backends/builtin/text-threads.js')).toBe('/opt/mmgrid/packages/worker/lib/backends/builtin/text-thread.js');
    expect(textThreadScript()).toMatch(/[\\/]packages[\\/]worker[\\/]lib[\\/]backends[\\/]builtin[\\/]text-thread\.js$/);
    expect(() => textThreadScript('file:///nowhere/src/backends/builtin/text-threads.ts')).toThrow(/not built: .*nowhere[\\/]lib[\\/]backends[\\/]builtin[\\/]text-thread\.js is missing \(run pnpm build\)/);
  });
});
