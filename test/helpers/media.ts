import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import wavefile from 'wavefile';

/** A PNG with `lines` of black text rendered on white (sharp renders the SVG). */
export async function writeTextPng(dir: string, name: string, lines: readonly string[]): Promise<string> {
  const height = 60 + lines.length * 70;
  const text = lines
    .map((line, i) => `<text x="30" y="${80 + i * 70}" font-size="52" font-family="DejaVu Sans" fill="black">${line}</text>`)
    .join('');
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="900" height="${height}"><rect width="100%" height="100%" fill="white"/>${text}</svg>`;
  const file = path.join(dir, name);
  await sharp(Buffer.from(svg)).png().toFile(file);
  return file;
}

export interface ToneBurst {
  readonly startSec: number;
  readonly endSec: number;
}

/**
 * A 16-bit mono WAV of exactly `durationSec`, silent except for 440 Hz tone bursts (a stand-in
 * for speech whose timing the test knows).
 */
export async function writeWav(dir: string, name: string, durationSec: number, bursts: readonly ToneBurst[], sampleRate = 16_000): Promise<string> {
  const samples = new Int16Array(Math.round(durationSec * sampleRate));
  for (const burst of bursts) {
    for (let i = Math.round(burst.startSec * sampleRate); i < Math.min(samples.length, Math.round(burst.endSec * sampleRate)); i++) {
      samples[i] = Math.round(0.4 * 32767 * Math.sin((2 * Math.PI * 440 * i) / sampleRate));
    }
  }
  const wav = new wavefile.WaveFile();
  wav.fromScratch(1, sampleRate, '16', samples);
  const file = path.join(dir, name);
  await writeFile(file, wav.toBuffer());
  return file;
}

/**
 * A real PNG whose compressed pixel data was overwritten with noise (like bit rot): its chunk
 * structure is intact, so it is a PNG by its bytes, but its pixels cannot be decoded.
 */
export async function writeCorruptPng(dir: string, name: string): Promise<string> {
  const file = await writeTextPng(dir, name, ['SOON TO BE BROKEN']);
  const bytes = await readFile(file);
  const idat = bytes.indexOf('IDAT', 8, 'latin1');
  if (idat < 4) throw new Error('no IDAT chunk in the generated PNG');
  const length = bytes.readUInt32BE(idat - 4);
  randomBytes(length).copy(bytes, idat + 4);
  await writeFile(file, bytes);
  return file;
}

/** Bytes no detector recognises (binary, with NUL bytes). */
export async function writeUnknownBinary(dir: string, name: string): Promise<string> {
  const file = path.join(dir, name);
  const bytes = randomBytes(4096);
  bytes[0] = 0;
  bytes[1] = 0xfe;
  await writeFile(file, bytes);
  return file;
}
