import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import wavefile from 'wavefile';
import { decodeAudio, type DecodedAudio } from '../audio/audio-decode.js';
import { InputDecodeError, TaskFailedError, ToolMissingError } from '../errors.js';

const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0 && spawnSync('ffprobe', ['-version']).status === 0;

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mmgrid-audio-decode-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Decoded {
  readonly format: DecodedAudio;
  /** Every format the sink factory was given. */
  readonly announced: DecodedAudio[];
  readonly samples: Float64Array;
}

async function decode(file: string, mediaType: string, signal: AbortSignal = new AbortController().signal): Promise<Decoded> {
  const announced: DecodedAudio[] = [];
  const samples: number[] = [];
  const format = await decodeAudio(
    file,
    mediaType,
    (f) => {
      announced.push(f);
      return (mono) => {
        for (const s of mono) samples.push(s);
      };
    },
    signal,
  );
  return { format, announced, samples: Float64Array.from(samples) };
}

/** Writes a WAV made with wavefile and returns its path. */
async function writeWav(name: string, channels: number, sampleRate: number, bitDepth: string, samples: number[] | number[][]): Promise<string> {
  const wav = new wavefile.WaveFile();
  wav.fromScratch(channels, sampleRate, bitDepth, samples);
  const file = join(dir, name);
  await writeFile(file, wav.toBuffer());
  return file;
}

/** A 16-bit sine: `sec` seconds at `hz`, amplitude 0.5. */
function sine16(sec: number, sampleRate: number, hz = 440): number[] {
  return Array.from({ length: Math.round(sec * sampleRate) }, (_, n) => Math.round(16_384 * Math.sin((2 * Math.PI * hz * n) / sampleRate)));
}

function expectSamples(actual: Float64Array, expected: readonly number[]): void {
  expect(actual).toHaveLength(expected.length);
  expected.forEach((value, i) => expect(actual[i]).toBeCloseTo(value, 6));
}

async function refusal(promise: Promise<unknown>): Promise<TaskFailedError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(TaskFailedError);
    if (err instanceof TaskFailedError) return err;
  }
  throw new Error('expected a TaskFailedError');
}

describe('decodeAudio, native WAV', () => {
  const cases: {
    name: string;
    channels: number;
    sampleRate: number;
    bitDepth: string;
    samples: number[] | number[][];
    format: string;
    mono: number[];
  }[] = [
    {
      name: '16-bit mono',
      channels: 1,
      sampleRate: 16_000,
      bitDepth: '16',
      samples: [0, 16_384, -16_384, 32_767, -32_768],
      format: 'wav/pcm_s16le',
      mono: [0, 0.5, -0.5, 32_767 / 32_768, -1],
    },
    {
      name: '16-bit stereo, mixed to mono',
      channels: 2,
      sampleRate: 44_100,
      bitDepth: '16',
      samples: [
        [16_384, -32_768, 0, 8_192],
        [-16_384, 0, 32_767, 8_192],
      ],
      format: 'wav/pcm_s16le',
      mono: [0, -0.5, 32_767 / 65_536, 0.25],
    },
    {
      // 8-bit WAV is unsigned: 128 is zero.
      name: '8-bit unsigned',
      channels: 1,
      sampleRate: 8_000,
      bitDepth: '8',
      samples: [128, 255, 0, 192, 64],
      format: 'wav/pcm_u8',
      mono: [0, 127 / 128, -1, 0.5, -0.5],
    },
    {
      name: '24-bit',
      channels: 1,
      sampleRate: 48_000,
      bitDepth: '24',
      samples: [0, 4_194_304, -8_388_608, -2_097_152],
      format: 'wav/pcm_s24le',
      mono: [0, 0.5, -1, -0.25],
    },
    {
      name: '32-bit integer',
      channels: 1,
      sampleRate: 22_050,
      bitDepth: '32',
      samples: [0, 1_073_741_824, -2_147_483_648],
      format: 'wav/pcm_s32le',
      mono: [0, 0.5, -1],
    },
    {
      name: '32-bit float',
      channels: 1,
      sampleRate: 16_000,
      bitDepth: '32f',
      samples: [0, 0.5, -0.25, 1, -1],
      format: 'wav/pcm_f32le',
      mono: [0, 0.5, -0.25, 1, -1],
    },
    {
      name: '32-bit float stereo',
      channels: 2,
      sampleRate: 16_000,
      bitDepth: '32f',
      samples: [
        [0.5, 1, -1],
        [0.5, 0, -0.5],
      ],
      format: 'wav/pcm_f32le',
      mono: [0.5, 0.5, -0.75],
    },
    {
      name: '64-bit float',
      channels: 1,
      sampleRate: 16_000,
      bitDepth: '64',
      samples: [0.125, -0.75],
      format: 'wav/pcm_f64le',
      mono: [0.125, -0.75],
    },
  ];

  it.each(cases)('decodes $name', async ({ name, channels, sampleRate, bitDepth, samples, format, mono }) => {
    const file = await writeWav(`${name.replace(/\W+/g, '-')}.wav`, channels, sampleRate, bitDepth, samples);
    const decoded = await decode(file, 'audio/wav');
    const expected: DecodedAudio = { format, decoder: 'native', sampleRate, channels };
    expect(decoded.format).toEqual(expected);
    expect(decoded.announced).toEqual([expected]);
    expectSamples(decoded.samples, mono);
  });

  it('decodes a longer recording sample for sample', async () => {
    const samples = sine16(1.5, 16_000);
    const decoded = await decode(await writeWav('sine.wav', 1, 16_000, '16', samples), 'audio/wav');
    expect(decoded.samples).toHaveLength(24_000);
    expectSamples(decoded.samples, samples.map((s) => s / 32_768));
  });

  it('decodes a WAV with no samples', async () => {
    const decoded = await decode(await writeWav('empty.wav', 1, 16_000, '16', []), 'audio/wav');
    expect(decoded.format).toEqual({ format: 'wav/pcm_s16le', decoder: 'native', sampleRate: 16_000, channels: 1 });
    expect(decoded.samples).toHaveLength(0);
  });
});

describe('decodeAudio, unreadable WAV', () => {
  const header = (() => {
    const wav = new wavefile.WaveFile();
    wav.fromScratch(1, 16_000, '16', sine16(0.1, 16_000));
    return Buffer.from(wav.toBuffer());
  })();

  const cases: { name: string; bytes: Buffer }[] = [
    { name: 'an empty file', bytes: Buffer.alloc(0) },
    { name: 'a header cut after 20 bytes', bytes: header.subarray(0, 20) },
    { name: 'a header cut after 36 bytes', bytes: header.subarray(0, 36) },
    { name: 'a RIFF that is not WAVE', bytes: Buffer.concat([Buffer.from('RIFF'), header.subarray(4, 8), Buffer.from('AVI '), header.subarray(12)]) },
    { name: 'text', bytes: Buffer.from('this is not a wav file, only some text that is long enough') },
    { name: 'random bytes', bytes: Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 37 + 11) % 256)) },
  ];

  it.each(cases)('refuses $name with InputDecodeError', async ({ name, bytes }) => {
    const file = join(dir, `bad-${name.replace(/\W+/g, '-')}.wav`);
    await writeFile(file, bytes);
    const err = await refusal(decode(file, 'audio/wav'));
    expect(err).toBeInstanceOf(InputDecodeError);
    expect(err.code).toBe('INPUT_DECODE_FAILED');
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/WAV/);
  });

  it('refuses a WAV whose header declares no channels', async () => {
    const bytes = Buffer.from(header);
    bytes.writeUInt16LE(0, 22); // fmt numChannels
    const file = join(dir, 'no-channels.wav');
    await writeFile(file, bytes);
    const err = await refusal(decode(file, 'audio/wav'));
    expect(err).toBeInstanceOf(InputDecodeError);
  });
});

describe('decodeAudio without ffmpeg', () => {
  it('names ffmpeg as missing, retryably, when it is not on PATH', async () => {
    const file = join(dir, 'not-on-path.mp3');
    await writeFile(file, Buffer.from([0xff, 0xfb, 0x90, 0x64, 0, 0, 0, 0]));
    const path = process.env['PATH'];
    process.env['PATH'] = join(dir, 'no-such-folder');
    try {
      const err = await refusal(decode(file, 'audio/mpeg'));
      expect(err).toBeInstanceOf(ToolMissingError);
      expect(err.code).toBe('TOOL_MISSING');
      expect(err.retryable).toBe(true);
      expect(err.message).toMatch(/not installed/);
    } finally {
      process.env['PATH'] = path;
    }
  });
});

describe.skipIf(!hasFfmpeg)('decodeAudio through ffmpeg', () => {
  function ffmpeg(...args: string[]): void {
    const result = spawnSync('ffmpeg', ['-v', 'error', '-nostdin', '-y', ...args], { encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`ffmpeg ${args.join(' ')} failed: ${result.stderr}`);
  }

  const SECONDS = 2;
  const RATE = 16_000;
  let source = '';
  let original: number[] = [];
  beforeAll(async () => {
    original = sine16(SECONDS, RATE);
    source = await writeWav('source.wav', 1, RATE, '16', original);
  });

  const encodings: { name: string; ext: string; args: string[]; mediaType: string; format: string }[] = [
    { name: 'FLAC', ext: 'flac', args: ['-c:a', 'flac'], mediaType: 'audio/flac', format: 'flac/flac' },
    { name: 'MP3', ext: 'mp3', args: ['-c:a', 'libmp3lame', '-b:a', '64k'], mediaType: 'audio/mpeg', format: 'mpeg/mp3' },
    { name: 'Ogg Vorbis', ext: 'ogg', args: ['-c:a', 'libvorbis'], mediaType: 'audio/ogg', format: 'ogg/vorbis' },
  ];

  it.each(encodings)('decodes $name', async ({ ext, args, mediaType, format }) => {
    const file = join(dir, `encoded.${ext}`);
    ffmpeg('-i', source, ...args, file);
    const decoded = await decode(file, mediaType);
    const expected: DecodedAudio = { format, decoder: 'ffmpeg', sampleRate: RATE, channels: 1 };
    expect(decoded.format).toEqual(expected);
    expect(decoded.announced).toEqual([expected]);
    const durationSec = decoded.samples.length / RATE;
    expect(Math.abs(durationSec - SECONDS) / SECONDS).toBeLessThan(0.01);
    let peak = 0;
    for (const s of decoded.samples) peak = Math.max(peak, Math.abs(s));
    expect(peak).toBeGreaterThan(0.45);
    expect(peak).toBeLessThan(0.6);
  });

  it('decodes FLAC losslessly', async () => {
    const file = join(dir, 'lossless.flac');
    ffmpeg('-i', source, '-c:a', 'flac', file);
    const decoded = await decode(file, 'audio/flac');
    expectSamples(decoded.samples, original.map((s) => s / 32_768));
  });

  it('mixes stereo to mono by averaging, as the native path does', async () => {
    const left = sine16(1, RATE);
    const wav = await writeWav('stereo-source.wav', 2, RATE, '16', [left, left.map(() => 0)]);
    const file = join(dir, 'stereo.flac');
    ffmpeg('-i', wav, '-c:a', 'flac', file);
    const decoded = await decode(file, 'audio/flac');
    expect(decoded.format).toEqual({ format: 'flac/flac', decoder: 'ffmpeg', sampleRate: RATE, channels: 2 });
    const native = await decode(wav, 'audio/wav');
    expect(native.format.decoder).toBe('native');
    // ffmpeg mixes 16-bit input in 16 bits: within half a step (1/65,536) of the native mix.
    expect(decoded.samples).toHaveLength(native.samples.length);
    decoded.samples.forEach((value, i) => expect(Math.abs(value - (native.samples[i] ?? NaN))).toBeLessThanOrEqual(1 / 65_536));
    expect(decoded.samples[100]).toBeCloseTo((left[100] ?? 0) / 32_768 / 2, 4);
  });

  it('keeps a full-scale signal on both channels within [-1, 1]', async () => {
    const file = join(dir, 'full-scale-stereo.flac');
    ffmpeg('-f', 'lavfi', '-i', `sine=frequency=500:sample_rate=${RATE}:duration=1`, '-af', 'volume=7.9,pan=stereo|c0=c0|c1=c0', '-c:a', 'flac', file);
    const decoded = await decode(file, 'audio/flac');
    let peak = 0;
    for (const s of decoded.samples) peak = Math.max(peak, Math.abs(s));
    expect(peak).toBeGreaterThan(0.95);
    expect(peak).toBeLessThanOrEqual(1);
  });

  it('hands a non-PCM WAV (A-law) to ffmpeg', async () => {
    const wav = new wavefile.WaveFile();
    wav.fromScratch(1, 8_000, '16', sine16(1, 8_000));
    wav.toALaw();
    const file = join(dir, 'alaw.wav');
    await writeFile(file, wav.toBuffer());
    const decoded = await decode(file, 'audio/wav');
    expect(decoded.format).toEqual({ format: 'wav/pcm_alaw', decoder: 'ffmpeg', sampleRate: 8_000, channels: 1 });
    expect(decoded.samples).toHaveLength(8_000);
  });

  it('decodes an extensible float WAV as float, not integers', async () => {
    // ffmpeg writes WAVE_FORMAT_EXTENSIBLE for more than two channels; its sine is at 1/8.
    const file = join(dir, 'extensible-float.wav');
    ffmpeg('-f', 'lavfi', '-i', `sine=frequency=500:sample_rate=${RATE}:duration=1`, '-filter_complex', 'asplit=3[a][b][c];[a][b][c]amerge=inputs=3', '-c:a', 'pcm_f32le', file);
    const decoded = await decode(file, 'audio/wav');
    expect(decoded.format).toEqual({ format: 'wav/pcm_f32le', decoder: 'ffmpeg', sampleRate: RATE, channels: 3 });
    let peak = 0;
    for (const s of decoded.samples) peak = Math.max(peak, Math.abs(s));
    expect(peak).toBeCloseTo(0.125, 2);
  });

  it('decodes an extensible integer WAV natively', async () => {
    const file = join(dir, 'extensible-s24.wav');
    ffmpeg('-f', 'lavfi', '-i', `sine=frequency=500:sample_rate=${RATE}:duration=1`, '-c:a', 'pcm_s24le', file);
    const decoded = await decode(file, 'audio/wav');
    expect(decoded.format).toEqual({ format: 'wav/pcm_s24le', decoder: 'native', sampleRate: RATE, channels: 1 });
    expect(decoded.samples).toHaveLength(RATE);
    let peak = 0;
    for (const s of decoded.samples) peak = Math.max(peak, Math.abs(s));
    expect(peak).toBeCloseTo(0.125, 2);
  });

  it('refuses bytes ffmpeg cannot read with InputDecodeError', async () => {
    const file = join(dir, 'garbage.mp3');
    await writeFile(file, Buffer.from(Array.from({ length: 2048 }, (_, i) => (i * 131 + 7) % 256)));
    const err = await refusal(decode(file, 'audio/mpeg'));
    expect(err).toBeInstanceOf(InputDecodeError);
    expect(err.retryable).toBe(false);
  });

  it('stops when the task is cancelled', async () => {
    const file = join(dir, 'cancelled.flac');
    ffmpeg('-i', source, '-c:a', 'flac', file);
    const err = await refusal(decode(file, 'audio/flac', AbortSignal.abort()));
    expect(err.code).toBe('CANCELLED');
  });
});
