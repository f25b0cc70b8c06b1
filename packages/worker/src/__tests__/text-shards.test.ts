import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stitchTextStats, textSplitOutputSchema, type JsonObject, type TextSplitOutput, type TextStatsOutput } from '@mmgrid/core';
import type { TaskContext } from '../backends/backend.js';
import { TextSplitHandler } from '../backends/builtin/splitters.js';
import { TextStatsHandler, textStats } from '../backends/builtin/text-stats.js';
import { TaskFailedError } from '../errors.js';

const PARAGRAPH =
  'The grid cuts media into shards. Every shard runs on a worker 😀.\nThe worker sends the shard back.\n\n' +
  'Then the grid stitches the shards together. Nothing is lost, nothing is doubled! Is the grid fast? ' +
  'The grid is fast.\r\nNaïve café owners like the grid. Привет, мир!\n';
const TEXT = PARAGRAPH.repeat(40);

function context(kind: string, params: JsonObject, input: { file?: string; text?: string }): TaskContext {
  return {
    jobId: 'j1',
    taskId: 't1',
    kind,
    attempt: 1,
    params,
    files: new Map(input.file !== undefined ? [['notes.txt', input.file]] : []),
    mediaTypes: new Map(input.file !== undefined ? [['notes.txt', 'text/plain']] : []),
    texts: new Map(input.text !== undefined ? [['notes.txt', input.text]] : []),
    upstream: [],
    signal: new AbortController().signal,
    progress: () => undefined,
    putBlob: () => Promise.reject(new Error('text tasks store no blobs')),
  };
}

describe('text.split and text.stats shards', () => {
  let dir: string;
  /** The text as the blob cache holds it: a file named by its SHA-256. */
  let blobFile: string;
  let plainFile: string;
  const stats = new TextStatsHandler();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-text-shards-'));
    const bytes = Buffer.from(TEXT, 'utf8');
    blobFile = path.join(dir, createHash('sha256').update(bytes).digest('hex'));
    plainFile = path.join(dir, 'notes.txt');
    await writeFile(blobFile, bytes);
    await writeFile(plainFile, bytes);
  });

  afterAll(async () => {
    await stats.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function split(maxChars: number): Promise<TextSplitOutput> {
    return textSplitOutputSchema.parse(await new TextSplitHandler().run(context('text.split', { maxChars }, { file: blobFile })));
  }

  it('text.split gives spans only: a few bytes a chunk, covering the text in order', async () => {
    const out = await split(300);
    expect(out.characters).toBe([...TEXT].length);
    expect(out.chunks.length).toBeGreaterThan(10);
    for (const c of out.chunks) expect(Object.keys(c).sort()).toEqual(['end', 'index', 'start']);
    expect(out.chunks[0]?.start).toBe(0);
    expect(out.chunks.at(-1)?.end).toBe(TEXT.length);
    out.chunks.forEach((c, i) => {
      expect(c.index).toBe(i);
      if (i > 0) expect(c.start).toBe(out.chunks[i - 1]?.end);
    });
    expect(JSON.stringify(out).length).toBeLessThan(out.chunks.length * 60);
  });

  it.each([
    ['a blob file', () => ({ file: blobFile })],
    ['a file not named by its hash', () => ({ file: plainFile })],
    ['an inline text', () => ({ text: TEXT })],
  ])('text.stats of each span of %s stitches to the stats of the whole', async (_name, input) => {
    const out = await split(300);
    const shards = [];
    for (const c of out.chunks) {
      const output = await stats.run(context('text.stats', { source: 'input', start: c.start, end: c.end }, input()));
      expect(output).toEqual(textStats(TEXT.slice(c.start, c.end), 'input'));
      shards.push({ window: { index: c.index, startSec: c.start, endSec: c.end }, output });
    }
    const stitched = stitchTextStats(shards, 'input');
    const whole: TextStatsOutput = textStats(TEXT, 'input');
    expect(stitched.coverage).toBe(1);
    expect(stitched.output.characters).toBe(whole.characters);
    expect(stitched.output.words).toBe(whole.words);
    expect(stitched.output.lines).toBe(whole.lines);
  });

  it('text.stats without a span counts the whole text', async () => {
    expect(await stats.run(context('text.stats', { source: 'input' }, { file: blobFile }))).toEqual(textStats(TEXT, 'input'));
    expect(await stats.run(context('text.stats', { source: 'prompt' }, { text: 'Is there a cat?' }))).toEqual(textStats('Is there a cat?', 'prompt'));
  });

  it('text.stats takes start alone (to the end) and end alone (from the start)', async () => {
    expect(await stats.run(context('text.stats', { start: 10 }, { file: blobFile }))).toEqual(textStats(TEXT.slice(10), 'input'));
    expect(await stats.run(context('text.stats', { end: 10 }, { text: TEXT }))).toEqual(textStats(TEXT.slice(0, 10), 'input'));
  });

  it.each<[string, JsonObject]>([
    ['start after end', { start: 20, end: 10 }],
    ['an empty span', { start: 10, end: 10 }],
    ['a negative start', { start: -1, end: 10 }],
    ['an end past the text', { start: 0, end: TEXT.length + 1 }],
    ['a fractional start', { start: 1.5, end: 10 }],
    ['a string end', { start: 0, end: '10' }],
  ])('text.stats refuses %s, naming what is allowed', async (_name, span) => {
    for (const input of [{ file: blobFile }, { text: TEXT }]) {
      const err: unknown = await stats.run(context('text.stats', { source: 'input', ...span }, input)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TaskFailedError);
      expect(err).toMatchObject({ code: 'INVALID_PARAMS', retryable: false });
      expect((err as Error).message).toContain(`0 <= start < end <= ${TEXT.length}`);
    }
  });

  it('text.stats of a file that is not UTF-8 fails as undecodable', async () => {
    const bad = Buffer.from([0x61, 0xff, 0xfe, 0x62]);
    const file = path.join(dir, createHash('sha256').update(bad).digest('hex'));
    await writeFile(file, bad);
    await expect(stats.run(context('text.stats', { start: 0, end: 1 }, { file }))).rejects.toMatchObject({ code: 'INPUT_DECODE_FAILED' });
    // A failed decoding is not kept.
    await expect(stats.run(context('text.stats', { start: 0, end: 1 }, { file }))).rejects.toMatchObject({ code: 'INPUT_DECODE_FAILED' });
  });
});
