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
  /** @default 440 */
  readonly hz?: number;
}

/**
 * A 16-bit mono WAV of exactly `durationSec`, silent except for tone bursts (a stand-in for
 * speech whose timing, and with fake-whisper.ts whose words, the test knows).
 */
export async function writeWav(dir: string, name: string, durationSec: number, bursts: readonly ToneBurst[], sampleRate = 16_000): Promise<string> {
  const samples = new Int16Array(Math.round(durationSec * sampleRate));
  for (const burst of bursts) {
    for (let i = Math.round(burst.startSec * sampleRate); i < Math.min(samples.length, Math.round(burst.endSec * sampleRate)); i++) {
      samples[i] = Math.round(0.4 * 32767 * Math.sin((2 * Math.PI * (burst.hz ?? 440) * i) / sampleRate));
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

/** Runs a media tool (ffmpeg, espeak-ng) and fails the test with its stderr if it fails. */
export async function tool(cmd: string, args: readonly string[]): Promise<void> {
  const { spawn } = await import('node:child_process');
  await new Promise<void>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited ${code}: ${stderr.slice(-500)}`))));
  });
}

/**
 * Speech made by espeak-ng: numbered sentences with pauses between them, so a recording of a
 * known length has a known number of spoken phrases.
 */
export async function writeSpeech(dir: string, name: string, phrases: number): Promise<string> {
  const text = Array.from({ length: phrases }, (_, i) => `Phrase number ${i + 1} is here.`).join(' ');
  const raw = path.join(dir, `${name}.raw.wav`);
  await tool('espeak-ng', ['-s', '150', '-g', '60', '-w', raw, text]);
  const file = path.join(dir, name);
  await tool('ffmpeg', ['-v', 'error', '-y', '-i', raw, '-ar', '16000', '-ac', '1', '-c:a', 'pcm_s16le', file]);
  return file;
}

/**
 * A video whose frames show "FRAME n" over a speech track, made by ffmpeg; n is 21 plus the
 * second (digits OCR cannot mistake for letters).
 */
export async function writeTalkingVideo(dir: string, name: string, seconds: number): Promise<string> {
  const speech = await writeSpeech(dir, `${name}.speech.wav`, Math.max(1, Math.floor(seconds / 3)));
  const file = path.join(dir, name);
  const font = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';
  await tool('ffmpeg', [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', `color=c=white:s=640x240:d=${seconds}:r=10`,
    '-i', speech,
    '-vf', `drawtext=fontfile=${font}:text='FRAME %{eif\\:floor(t)+21\\:d}':fontsize=64:fontcolor=black:x=40:y=80`,
    '-map', '0:v', '-map', '1:a', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-t', String(seconds), '-shortest',
    file,
  ]);
  return file;
}
