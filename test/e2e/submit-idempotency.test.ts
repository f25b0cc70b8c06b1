import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '../helpers/files.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeUnknownBinary, writeWav } from '../helpers/media.js';
import { refusal } from '../helpers/refusal.js';

describe('a resubmission with a known idempotency key', () => {
  let tg: TestGrid;
  let media: string;

  beforeAll(async () => {
    media = await tempDir('mmgrid-media-');
    // No workers: the job stays queued, as one whose submission is being retried.
    tg = await startTestGrid({ workers: 0 });
  });

  afterAll(async () => {
    await tg?.stop();
    await removeDir(media);
  });

  it('is answered with the job the key names, before its inputs are stat-ed and probed again', async () => {
    const wav = await writeWav(media, 'first.wav', 1, [{ startSec: 0.2, endSec: 0.8 }]);
    const key = 'retried-after-unavailable';
    const first = await tg.client.submit([{ path: wav }], { idempotencyKey: key });
    expect(first.state).toBe('queued');

    // The retry's inputs are not even looked at: bytes that would be refused at submit (an
    // unknown file type) do not matter, because the key already names a job.
    const junk = await writeUnknownBinary(media, 'mystery.bin');
    const again = await tg.client.submit([{ path: junk }], { idempotencyKey: key });
    expect(again.id).toBe(first.id);
    expect(again.inputs.map((i) => i.name)).toEqual(['first.wav']);
    expect((await tg.client.list()).jobs.map((j) => j.id)).toEqual([first.id]);

    // Another key still has its inputs checked.
    const err = await refusal(tg.client.submit([{ path: junk }], { idempotencyKey: 'another-key' }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('not a recognised file type');
  });
});
