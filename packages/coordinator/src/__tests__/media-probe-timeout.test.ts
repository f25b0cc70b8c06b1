import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedMediaError } from '@mmgrid/core';
import { probeAv } from '../media-probe.js';

const HAS_FFPROBE = spawnSync('ffprobe', ['-version'], { stdio: 'ignore' }).status === 0;

/** A mono 16-bit PCM WAV of `seconds` of silence. */
function wav(seconds: number, rate = 8000): Buffer {
  const data = Buffer.alloc(Math.round(seconds * rate) * 2);
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + data.length, 4);
  header.write('WAVE', 8, 'latin1');
  header.write('fmt ', 12, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

describe.skipIf(!HAS_FFPROBE)('probeAv when ffprobe gives no answer', () => {
  let dir: string;
  let good: string;
  let broken: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-probe-test-'));
    good = path.join(dir, 'good.wav');
    await writeFile(good, wav(2));
    broken = path.join(dir, 'broken.wav');
    await writeFile(broken, Buffer.concat([wav(1).subarray(0, 20), Buffer.alloc(2000, 0xff)]));
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a probe killed by its timeout knows nothing: undefined, and a warning naming the input', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    // No ffprobe answers within a millisecond: it is killed before it can.
    await expect(probeAv('talk.wav', 'audio/wav', good, { timeoutMs: 1, logger })).resolves.toBeUndefined();
    expect(lines).toHaveLength(1);
    const logged = JSON.parse(lines[0] ?? '{}') as { level: number; msg: string; input: string; timeoutMs: number };
    expect(logged).toMatchObject({ level: 40, input: 'talk.wav', timeoutMs: 1 });
    expect(logged.msg).toContain('ffprobe said nothing about input "talk.wav" (no answer within 1 ms)');
  });

  it('with time to answer: the duration of a good file, and a damaged one is still refused', async () => {
    const probe = await probeAv('talk.wav', 'audio/wav', good);
    expect(probe?.durationSec).toBeCloseTo(2, 2);
    expect(probe?.hasAudio).toBe(true);
    const err = await probeAv('broken.wav', 'audio/wav', broken).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedMediaError);
    expect(String(err)).toContain('input "broken.wav" looks like audio/wav but cannot be read');
  });
});
