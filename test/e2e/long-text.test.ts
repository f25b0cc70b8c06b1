import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobView } from '@mmgrid/client';
import type { TextStitchOutput } from '@mmgrid/core';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';

/** gRPC's message limit on both sides of the grid (the default of both). */
const MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

function failedTasks(done: JobView): string {
  return JSON.stringify(done.tasks.filter((t) => t.state !== 'succeeded').slice(0, 5));
}

describe('texts larger than a gRPC message', () => {
  let tg: TestGrid;
  let media: string;

  beforeAll(async () => {
    media = await mkdtemp(path.join(tmpdir(), 'mmgrid-long-text-'));
    tg = await startTestGrid({ workers: 2, workerArgs: ['--slots', 'text.stats=4'] });
  });

  afterAll(async () => {
    await tg?.stop();
    await rm(media, { recursive: true, force: true });
  });

  it('a 9 MiB text is split into spans and counted in shards that read the input blob', async () => {
    // Each line: 8 words, a sentence, and a divider of box-drawing characters (3 UTF-8 bytes
    // each, no words). The dividers make the file large in bytes for few characters, which
    // keeps the counting (Intl.Segmenter) quick; the split's output used to carry every chunk's
    // text and so was as large as the file.
    const divider = '─'.repeat(300);
    const lines: string[] = [];
    let bytes = 0;
    while (bytes < 9 * 1024 * 1024) {
      const line = `Line ${lines.length} of the long text ends here. ${divider}\n`;
      lines.push(line);
      bytes += Buffer.byteLength(line);
    }
    expect(bytes).toBeGreaterThan(MAX_MESSAGE_BYTES);
    const text = lines.join('');
    const file = path.join(media, 'long.txt');
    await writeFile(file, text);

    const job = await tg.client.submit([{ path: file }], { params: { chunkChars: '8000' } });
    const done = await tg.client.waitForJob(job.id);
    if (done.state !== 'completed') throw new Error(`job ${done.state}: ${JSON.stringify(done.error)}; ${failedTasks(done)}`);
    const shards = done.tasks.filter((t) => t.kind === 'text.stats' && t.shard !== null);
    expect(shards.length).toBeGreaterThan(1);
    expect(shards.every((t) => t.state === 'succeeded')).toBe(true);
    // No lease lapsed while a thread segmented: every task ran once.
    expect(done.tasks.map((t) => t.attempts)).toEqual(done.tasks.map(() => 1));
    const stats = done.result?.doc.inputs[0]?.outputs['text.stats'] as TextStitchOutput | undefined;
    expect(stats?.coverage).toBe(1);
    expect(stats?.gaps).toEqual([]);
    expect(stats?.shards).toBe(shards.length);
    expect(stats?.words).toBe(lines.length * 8);
    expect(stats?.characters).toBe([...text].length);
    // The stitched excerpt is the start of the text itself: the shards read their own spans.
    expect(stats?.excerpt).toBe([...text].slice(0, 2000).join(''));
  });

  it('a task whose output is too large to send fails as OUTPUT_TOO_LARGE instead of being resent', async () => {
    // About 95 characters a sentence and chunks of at most 100: one chunk a sentence, some
    // 48 bytes of spans each, over 8 MiB of output for the whole text (19 MB).
    const sentences = Array.from({ length: 200_000 }, (_, i) => `Sentence ${i} is one of two hundred thousand, and each of them ends right here with a stop. `).join('');
    const file = path.join(media, 'many-sentences.txt');
    await writeFile(file, sentences);
    const job = await tg.client.submit([{ path: file }], { params: { chunkChars: '100' } });
    const done = await tg.client.waitForJob(job.id);
    // The job ends (failed: its only input could not be read), and says why.
    expect(done.state).toBe('failed');
    const split = done.tasks.find((t) => t.kind === 'text.split');
    expect(split?.state).toBe('failed');
    expect(split?.attempts).toBe(1);
    expect(split?.error?.code).toBe('OUTPUT_TOO_LARGE');
    expect(split?.error?.message).toContain(`(${MAX_MESSAGE_BYTES} bytes)`);
    expect(split?.error?.message).toMatch(/blobs/);
    // The worker did not loop: its stream to the coordinator stayed up.
    for (const name of ['worker-1', 'worker-2']) expect(await tg.log(name)).not.toMatch(/size larger than/);
  });
});

describe('segmenting on a text thread', () => {
  let tg: TestGrid;
  let media: string;

  beforeAll(async () => {
    media = await mkdtemp(path.join(tmpdir(), 'mmgrid-text-thread-'));
    // Leases of 1 s (the shortest allowed), renewed every 250 ms: a worker that segmented a
    // long text on its own thread would miss its heartbeats for seconds and lose the task.
    tg = await startTestGrid({
      workers: 1,
      workerArgs: ['--slots', 'text.stats=2'],
      coordinatorArgs: ['--lease-ms', '1000', '--heartbeat-ms', '250', '--stalled-check-ms', '500'],
    });
  });

  afterAll(async () => {
    await tg?.stop();
    await rm(media, { recursive: true, force: true });
  });

  it('keeps the lease while a 38 MB text is split, and a cancel stops the counting that follows', async () => {
    // 400,000 sentences: segmenting them takes about 2 s of one core, in 38 chunks of 1 MB.
    const text = Array.from({ length: 400_000 }, (_, i) => `Sentence ${i} is one of four hundred thousand, and each of them ends right here with a stop. `).join('');
    const file = path.join(media, 'sentences.txt');
    await writeFile(file, text);
    const job = await tg.client.submit([{ path: file }], { params: { chunkChars: '1000000' } });

    let cancelled = false;
    const seen: string[] = [];
    for await (const event of tg.client.watch(job.id)) {
      if (event.type === 'task') seen.push(`${event.kind} ${event.state} #${event.attempt}`);
      // Counting a 1 MB chunk takes its thread for a while: cancel while the first one runs.
      if (!cancelled && event.type === 'task' && event.kind === 'text.stats' && event.state === 'running') {
        cancelled = true;
        await tg.client.cancel(job.id);
      }
      if (event.type === 'job' && ['completed', 'failed', 'cancelled'].includes(event.state)) break;
    }
    const done = await tg.client.getJob(job.id);
    expect(done.state, seen.join('\n')).toBe('cancelled');
    const split = done.tasks.find((t) => t.kind === 'text.split');
    expect(split?.state).toBe('succeeded');
    expect(split?.attempts, seen.join('\n')).toBe(1);
    expect(done.tasks.filter((t) => t.kind === 'text.stats' && t.shard !== null)).toHaveLength(38);

    // The worker is free again at once: the counting threads of the cancelled job were stopped,
    // not left to run on. A new text job completes on it.
    const small = await tg.client.submit([{ text: 'One sentence. And another one.', name: 'note.txt' }]);
    const after = await tg.client.waitForJob(small.id);
    expect(after.state).toBe('completed');
    expect(after.tasks.every((t) => t.attempts === 1)).toBe(true);
  });
});
