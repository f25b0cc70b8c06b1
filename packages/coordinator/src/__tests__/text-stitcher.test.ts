import { describe, expect, it } from 'vitest';
import { NO_REQUIREMENTS, textChunks, textStitchOutputSchema, type BlobRef, type TextSplitOutput, type TextStatsOutput } from '@mmgrid/core';
import type { ChildOutcome } from '../outcomes.js';
import { STITCHERS, type Stitcher } from '../stitchers.js';
import type { TaskData, TaskInput } from '../task-queues.js';

const stitcher = STITCHERS.find((s) => s.kind === 'text.stitch') as Stitcher;
const TEXT = 'The grid cuts long texts. Every chunk is a span! 😀 Are spans small? They are.\nThe end.';
const BLOB: BlobRef = { sha256: 'a'.repeat(64), size: Buffer.byteLength(TEXT), mediaType: 'text/plain', name: 'notes.txt' };

function split(text: string, maxChars: number): TextSplitOutput {
  return { characters: [...text].length, maxChars, chunks: textChunks(text, maxChars).map(({ index, start, end }) => ({ index, start, end })) };
}

function step(input: TaskInput | undefined, source = 'input'): TaskData {
  return {
    jobId: 'j1',
    taskId: 't2',
    kind: 'text.stitch',
    tenant: 'default',
    queue: 'text.stitch',
    parentQueue: 'job.assemble',
    generation: 0,
    inputs: input ? [input] : [],
    params: { shardKind: 'text.stats', outputAs: 'text.stats', source },
    requirements: NO_REQUIREMENTS,
    optional: false,
    upstream: [{ taskId: 't1', kind: 'text.split', inputNames: ['notes.txt'], optional: false }],
    timeoutMs: 60_000,
  };
}

/** Stats good enough for stitching: the stitcher only adds them up. */
function statsOf(text: string): TextStatsOutput {
  const words = text.split(/\s+/).filter((w) => w !== '').length;
  return { source: 'input', characters: [...text].length, graphemes: [...text].length, words, sentences: 1, lines: 1, scripts: [], topTerms: [], excerpt: text, truncated: false };
}

describe('text.stitch', () => {
  it('gives every shard the input blob and its span, never the chunk text', () => {
    const out = split(TEXT, 30);
    expect(out.chunks.length).toBeGreaterThan(2);
    const shards = stitcher.plan(JSON.stringify(out), step({ name: 'notes.txt', blob: BLOB }));
    expect(shards).toHaveLength(out.chunks.length);
    for (const [i, shard] of shards.entries()) {
      const chunk = out.chunks[i];
      expect(shard.kind).toBe('text.stats');
      expect(shard.inputs).toEqual([{ name: 'notes.txt', blob: BLOB }]);
      expect(shard.params).toEqual({ source: 'input', start: chunk?.start, end: chunk?.end });
    }
    // The spans cover the text, in order, without overlap.
    expect(shards.map((s) => TEXT.slice(Number(s.params['start']), Number(s.params['end']))).join('')).toBe(TEXT);
  });

  it('cuts an inline text itself and sends the chunks inline', () => {
    const out = split(TEXT, 30);
    const shards = stitcher.plan(JSON.stringify(out), step({ name: '@prompt', text: TEXT }, 'prompt'));
    for (const shard of shards) {
      expect(shard.params).toEqual({ source: 'prompt' });
      expect(shard.inputs[0]?.blob).toBeUndefined();
    }
    expect(shards.map((s) => s.inputs[0]?.text ?? '').join('')).toBe(TEXT);
  });

  it('refuses spans outside an inline text, and a step without an input', () => {
    const out: TextSplitOutput = { characters: 5, maxChars: 100, chunks: [{ index: 0, start: 0, end: 50 }] };
    expect(() => stitcher.plan(JSON.stringify(out), step({ name: 'short', text: 'short' }))).toThrow(/not within the text "short" \(5 UTF-16 code units\)/);
    expect(() => stitcher.plan(JSON.stringify(split(TEXT, 30)), step(undefined))).toThrow(/no text input/);
  });

  it('reads an older split output that still carries chunk texts', () => {
    const old = { characters: 4, maxChars: 100, chunks: [{ index: 0, start: 0, end: 4, text: 'abcd' }] };
    const [shard] = stitcher.plan(JSON.stringify(old), step({ name: 'notes.txt', blob: BLOB }));
    expect(shard?.params).toEqual({ source: 'input', start: 0, end: 4 });
  });

  it('stitches the shards back from the spans alone', async () => {
    const out = split(TEXT, 30);
    const outcomes = new Map<number, ChildOutcome>(
      out.chunks.map((c) => [c.index, { status: 'succeeded', outputJson: JSON.stringify(statsOf(TEXT.slice(c.start, c.end))) }] as const),
    );
    const stitched = textStitchOutputSchema.parse(
      await stitcher.stitch(JSON.stringify(out), outcomes, step({ name: 'notes.txt', blob: BLOB }), { putBlob: () => Promise.reject(new Error('no blobs')) }),
    );
    expect(stitched.coverage).toBe(1);
    expect(stitched.shards).toBe(out.chunks.length);
    expect(stitched.characters).toBe([...TEXT].length);
    expect(stitched.words).toBe(TEXT.split(/\s+/).filter((w) => w !== '').length);
  });
});
