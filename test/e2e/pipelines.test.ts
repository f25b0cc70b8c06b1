import { readFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import wavefile from 'wavefile';
import type { JobView } from '@mmgrid/client';
import type { AudioStitchOutput, VideoStitchOutput, ImageOcrOutput, TextStitchOutput, TranscriptStitchOutput } from '@mmgrid/core';
import { AudioAnalyzer } from '@mmgrid/worker';
import { runCli } from '../helpers/cli.js';
import { startFakeWhisper, toneWords, type FakeWhisper } from '../helpers/fake-whisper.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';
import { writeSpeech, writeTalkingVideo, writeTextPng, writeWav } from '../helpers/media.js';

/** The analysis of a whole WAV in one piece: what stitching windows must reproduce. */
async function analyseWhole(file: string): Promise<ReturnType<AudioAnalyzer['finish']>> {
  const wav = new wavefile.WaveFile(await readFile(file));
  const rate = (wav.fmt as { sampleRate: number }).sampleRate;
  const samples = wav.getSamples(false, Float64Array);
  const analyzer = new AudioAnalyzer(rate);
  analyzer.push(samples.map((s) => s / 32768));
  return analyzer.finish();
}

describe('pipelines that split, fan out and stitch', () => {
  let tg: TestGrid;
  let media: string;
  let whisper: FakeWhisper;

  beforeAll(async () => {
    media = await mkdtemp(path.join(tmpdir(), 'mmgrid-media-'));
    whisper = await startFakeWhisper();
    tg = await startTestGrid({
      workers: 2,
      workerArgs: ['--slots', 'audio.analyze=2,text.stats=8,selftest.sleep=2,audio.transcribe=2', '--transcribe-url', whisper.url],
    });
  });

  afterAll(async () => {
    await tg?.stop();
    await whisper?.stop();
    await rm(media, { recursive: true, force: true });
  });

  it('a 5-minute recording transcribed in overlapping windows: every word once, in order, where it was said', async () => {
    // 460 words of 0.4 s, 0.25 s apart: about 5 minutes, so the words at every seam are cut
    // at one window's edge and whole in the other.
    const { bursts, words, durationSec } = toneWords(460);
    const heardBefore = whisper.wordsHeard;
    expect(durationSec).toBeGreaterThan(299);
    const file = await writeWav(media, 'dictation.wav', durationSec, bursts);
    const job = await tg.client.submit([{ path: file }], { pipeline: 'transcribe' });
    const done = await tg.client.waitForJob(job.id);
    expect(done.state).toBe('completed');
    const windows = done.tasks.filter((t) => t.kind === 'audio.transcribe');
    expect(windows.length).toBeGreaterThanOrEqual(10);
    const out = done.result?.doc.inputs[0]?.outputs['audio.transcribe'] as TranscriptStitchOutput | undefined;
    if (!out) throw new Error('no transcript');
    expect(out.coverage).toBe(1);
    expect(out.shards).toBe(windows.length);
    // Each window heard the words cut at its edges too (as a recogniser does); none of them
    // may show up in the stitched transcript, and no whole word may be lost.
    expect(out.words.map((w) => w.text)).toEqual(words.map((w) => w.text));
    // The windows heard the words in their overlaps twice: stitching kept each once.
    expect(whisper.wordsHeard - heardBefore).toBeGreaterThan(words.length + 2 * (windows.length - 1));
    out.words.forEach((w, i) => {
      expect(Math.abs(w.startSec - (words[i]?.startSec ?? 0))).toBeLessThan(0.02);
      expect(Math.abs(w.endSec - (words[i]?.endSec ?? 0))).toBeLessThan(0.02);
    });
    expect(out.text).toBe(words.map((w) => w.text).join(' '));
    const srt = (await tg.client.blobs.downloadBytes(out.subtitles?.srt.sha256 ?? '')).toString('utf8');
    const vtt = (await tg.client.blobs.downloadBytes(out.subtitles?.vtt.sha256 ?? '')).toString('utf8');
    expect(srt).toMatch(/^1\r?\n00:00:00,500 --> /);
    expect(vtt.startsWith('WEBVTT')).toBe(true);
    expect(srt.split(/\s+/).filter((t) => /^[a-z]+$/.test(t))).toEqual(words.map((w) => w.text));
  });

  it('a 5-minute speech recording in overlapping windows stitches into the same answer as one piece', async () => {
    const speech = await writeSpeech(media, 'talk.wav', 60);
    const truth = await analyseWhole(speech);
    expect(truth.durationSec).toBeGreaterThan(240);
    const job = await tg.client.submit([{ path: speech }], { prompt: 'how much is speech?' });
    const done = await tg.client.waitForJob(job.id);
    expect(done.state).toBe('completed');
    const windows = done.tasks.filter((t) => t.kind === 'audio.analyze');
    expect(windows.length).toBeGreaterThanOrEqual(9);
    expect(windows.every((t) => t.label === 't2' && t.shard !== null && t.state === 'succeeded')).toBe(true);
    const stitched = done.result?.doc.inputs[0]?.outputs['audio.analyze'] as AudioStitchOutput | undefined;
    if (!stitched) throw new Error('no stitched analysis');
    expect(stitched.coverage).toBe(1);
    expect(stitched.shards).toBe(windows.length);
    const speechOf = (segments: readonly { kind: string; startSec: number; endSec: number }[]) => segments.filter((s) => s.kind === 'speech');
    // Every phrase once: no phrase doubled or lost at a seam, in order, where it was said.
    expect(speechOf(stitched.segments)).toHaveLength(speechOf(truth.segments).length);
    speechOf(stitched.segments).forEach((s, i) => {
      const t = speechOf(truth.segments)[i];
      expect(Math.abs(s.startSec - (t?.startSec ?? 0))).toBeLessThan(0.05);
      expect(Math.abs(s.endSec - (t?.endSec ?? 0))).toBeLessThan(0.05);
    });
    expect(Math.abs(stitched.durationSec - truth.durationSec)).toBeLessThan(0.05);
    expect(Math.abs(stitched.speechSec - truth.speechSec) / truth.speechSec).toBeLessThan(0.02);
  });

  it('a video with a speech track gives frame results and the sound on one timeline', async () => {
    const video = await writeTalkingVideo(media, 'clip.mp4', 8);
    const job = await tg.client.submit([{ path: video }], { pipeline: 'video-summary', prompt: 'what is shown?' });
    const done = await tg.client.waitForJob(job.id);
    expect(done.state).toBe('completed');
    const out = done.result?.doc.inputs[0]?.outputs['video.stitch'] as VideoStitchOutput | undefined;
    if (!out) throw new Error('no video result');
    expect(out.frames).toHaveLength(8);
    out.frames.forEach((f, i) => {
      expect(f.timeSec).toBeCloseTo(i, 3);
      expect(f.text).toContain(`FRAME ${21 + i}`);
    });
    expect(out.speech?.segments.some((s) => s.kind === 'speech')).toBe(true);
    const starts = out.timeline.map((e) => e.startSec);
    expect(starts).toEqual([...starts].sort((a, b) => a - b));
    expect(new Set(out.timeline.map((e) => e.source))).toEqual(new Set(['frame', 'speech']));
    expect(out.subtitles?.mediaType).toBe('text/vtt');
    const vtt = (await tg.client.blobs.downloadBytes(out.subtitles?.sha256 ?? '')).toString('utf8');
    expect(vtt.startsWith('WEBVTT')).toBe(true);
    expect(vtt).toContain('FRAME 24');
    expect(done.result?.summary).toContain('FRAME');
  });

  it('100 images in one job', async () => {
    const images = [];
    for (let i = 0; i < 100; i++) images.push({ path: await writeTextPng(media, `img-${i}.png`, [`CARD ${i}`]) });
    const job = await tg.client.submit(images, { pipeline: 'ocr' });
    const done = await tg.client.waitForJob(job.id);
    expect(done.state).toBe('completed');
    expect(done.result?.coverage).toBe(1);
    const inputs = done.result?.doc.inputs ?? [];
    expect(inputs).toHaveLength(100);
    inputs.forEach((input, i) => expect((input.outputs['image.ocr'] as ImageOcrOutput).text).toContain(`CARD ${i}`));
  });

  it('a 10,000-shard job completes', async () => {
    // About 90 characters a sentence and chunks of at most 100: one sentence a shard.
    const sentences = Array.from({ length: 10_000 }, (_, i) => `Sentence ${i} is one of ten thousand, and each of them ends right here with a full stop. `).join('');
    const file = path.join(media, 'long.txt');
    await writeFile(file, sentences);
    const job = await tg.client.submit([{ path: file }], { params: { chunkChars: '100' } });
    const done = await tg.client.waitForJob(job.id);
    if (done.state !== 'completed') {
      const bad = done.tasks.filter((t) => t.state !== 'succeeded').slice(0, 5);
      throw new Error(`job ${done.state}: ${JSON.stringify(done.error)}; ${JSON.stringify(bad)}`);
    }
    const shards = done.tasks.filter((t) => t.shard !== null);
    expect(shards.length).toBeGreaterThanOrEqual(10_000);
    const stats = done.result?.doc.inputs[0]?.outputs['text.stats'] as TextStitchOutput | undefined;
    expect(stats?.coverage).toBe(1);
    expect(stats?.shards).toBe(shards.length);
    expect(stats?.words).toBe(180_000);
  });

  it('stores the same bytes once, however often they are uploaded', async () => {
    const bytes = Buffer.from('the very same bytes, twice');
    const first = await tg.client.blobs.uploadBytes(bytes, { name: 'a.txt', mediaType: 'text/plain' });
    const second = await tg.client.blobs.uploadBytes(bytes, { name: 'b.txt', mediaType: 'text/plain' });
    expect(first.blob.sha256).toBe(second.blob.sha256);
    expect(second.deduplicated).toBe(true);
    const shard = path.join(tg.dataDir, 'blobs', first.blob.sha256.slice(0, 2));
    expect((await readdir(shard)).filter((f) => f === first.blob.sha256)).toHaveLength(1);
  });

  it('result -o writes the outputs and their blobs', async () => {
    const video = await writeTalkingVideo(media, 'short.mp4', 3);
    const job = await tg.client.submit([{ path: video }], { pipeline: 'ocr' });
    const done: JobView = await tg.client.waitForJob(job.id);
    const out = await mkdtemp(path.join(tmpdir(), 'mmgrid-out-'));
    const cli = await runCli(['result', done.id, '-o', out], { MMGRID_COORDINATOR: tg.grid.address });
    expect(cli.code).toBe(0);
    const files = await readdir(out);
    expect(files).toEqual(expect.arrayContaining(['result.json', 'summary.txt', 'short.frames.vtt', 'short.f0000.png']));
    await rm(out, { recursive: true, force: true });
  });
});
