import { execFile, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnsupportedMediaError } from '@mmgrid/core';
import { detectMedia, PROBE_HEAD_BYTES, probeAv } from '../media-probe.js';

/**
 * Corrupt media headers through the coordinator's media probe: real small files made here by
 * ffmpeg (PNG, JPEG, WAV, MP4), with bytes of their headers flipped, overwritten or cut off by
 * fast-check. Detection (magic numbers, then UTF-8 text) must give a type or refuse with
 * UnsupportedMediaError; ffprobe, for what is detected as audio or video, must give a probe,
 * nothing (no verdict) or UnsupportedMediaError, within its timeout. Fixed seed, counts printed.
 */

const SEED = 20_261_127;
const HAS_FFMPEG = spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0 && spawnSync('ffprobe', ['-version'], { stdio: 'ignore' }).status === 0;
const run = promisify(execFile);

/** How one file is damaged: bytes flipped or overwritten in its first 64 bytes, and maybe cut short. */
interface Damage {
  readonly flips: readonly { readonly at: number; readonly xor: number }[];
  readonly overwrite?: { readonly at: number; readonly bytes: Uint8Array };
  readonly truncateTo?: number;
}

const damage: fc.Arbitrary<Damage> = fc.record(
  {
    flips: fc.array(fc.record({ at: fc.nat({ max: 63 }), xor: fc.integer({ min: 1, max: 255 }) }), { maxLength: 6 }),
    overwrite: fc.record({ at: fc.nat({ max: 63 }), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    truncateTo: fc.nat({ max: 256 }),
  },
  { requiredKeys: ['flips'] },
);

function apply(original: Buffer, d: Damage): Buffer {
  const out = Buffer.from(original);
  for (const { at, xor } of d.flips) if (at < out.length) out[at] = (out[at] ?? 0) ^ xor;
  if (d.overwrite) out.set(d.overwrite.bytes.subarray(0, Math.max(0, out.length - d.overwrite.at)), Math.min(d.overwrite.at, out.length));
  return d.truncateTo !== undefined ? out.subarray(0, d.truncateTo) : out;
}

describe.skipIf(!HAS_FFMPEG)('the media probe on corrupt media headers', () => {
  let dir: string;
  const originals = new Map<string, Buffer>();

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-media-fuzz-'));
    const make = async (name: string, args: string[]): Promise<void> => {
      const file = path.join(dir, name);
      await run('ffmpeg', ['-v', 'error', '-y', ...args, file], { timeout: 60_000 });
      originals.set(name, await readFile(file));
    };
    await make('red.png', ['-f', 'lavfi', '-i', 'color=c=red:s=16x16', '-frames:v', '1']);
    await make('red.jpg', ['-f', 'lavfi', '-i', 'color=c=red:s=16x16', '-frames:v', '1']);
    await make('tone.wav', ['-f', 'lavfi', '-i', 'sine=frequency=440:duration=0.3', '-ac', '1', '-ar', '16000']);
    await make('clip.mp4', ['-f', 'lavfi', '-i', 'testsrc=size=32x32:rate=5:duration=0.4', '-pix_fmt', 'yuv420p', '-c:v', 'mpeg4']);
  }, 120_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('detects the untouched files as what they are', async () => {
    const types = await Promise.all([...originals].map(async ([name, bytes]) => [name, (await detectMedia(name, bytes.subarray(0, PROBE_HEAD_BYTES))).mediaType]));
    expect(Object.fromEntries(types)).toEqual({ 'red.png': 'image/png', 'red.jpg': 'image/jpeg', 'tone.wav': 'audio/wav', 'clip.mp4': 'video/mp4' });
  });

  it('gives a type or a clear refusal for every damaged header, never a crash', async () => {
    const counts = { checked: 0, detected: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...originals.keys()), damage, async (name, d) => {
        const bytes = apply(originals.get(name) ?? Buffer.alloc(0), d);
        counts.checked += 1;
        try {
          const found = await detectMedia(name, bytes.subarray(0, PROBE_HEAD_BYTES));
          expect(found.mediaType).toMatch(/^[a-z]+\/[\w.+-]+$/);
          counts.detected += 1;
        } catch (err) {
          if (!(err instanceof UnsupportedMediaError)) throw err;
          expect(err.message).toContain(`input "${name}"`);
          counts.refused += 1;
        }
      }),
      { seed: SEED, numRuns: 2000 },
    );
    console.log(`media detection fuzz: ${counts.checked} damaged files, ${counts.detected} detected, ${counts.refused} refused with UnsupportedMediaError`);
  }, 60_000);

  it('ffprobe on damaged recordings and videos: a probe, no verdict, or a clear refusal, within its timeout', async () => {
    const counts = { checked: 0, probed: 0, noVerdict: 0, refused: 0, notAv: 0 };
    const file = path.join(dir, 'damaged');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('tone.wav', 'clip.mp4'), damage, async (name, d) => {
        const bytes = apply(originals.get(name) ?? Buffer.alloc(0), d);
        counts.checked += 1;
        let mediaType: string;
        try {
          mediaType = (await detectMedia(name, bytes.subarray(0, PROBE_HEAD_BYTES))).mediaType;
        } catch (err) {
          if (!(err instanceof UnsupportedMediaError)) throw err;
          counts.notAv += 1;
          return;
        }
        await writeFile(file, bytes);
        try {
          const probe = await probeAv(name, mediaType, file, { timeoutMs: 20_000 });
          if (probe === undefined) counts.noVerdict += 1;
          else {
            counts.probed += 1;
            if (probe.durationSec !== undefined) expect(probe.durationSec).toBeGreaterThanOrEqual(0);
          }
        } catch (err) {
          if (!(err instanceof UnsupportedMediaError)) throw err;
          // The refusal names the input, never the store's path.
          expect(err.message).toContain(`input "${name}"`);
          expect(err.message).not.toContain(file);
          counts.refused += 1;
        }
      }),
      { seed: SEED, numRuns: 60 },
    );
    console.log(
      `ffprobe fuzz: ${counts.checked} damaged recordings/videos, ${counts.probed} probed, ${counts.refused} refused, ${counts.noVerdict} without a verdict, ${counts.notAv} refused at detection`,
    );
  }, 120_000);
});
