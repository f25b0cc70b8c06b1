import type { IncomingMessage, ServerResponse } from 'node:http';
import wavefile from 'wavefile';
import { startHttpServer } from './http-server.js';
import type { ToneBurst } from './media.js';

/**
 * A speech-to-text server for tests: it speaks the OpenAI audio transcription API
 * (`POST /v1/audio/transcriptions`, multipart form, `response_format=verbose_json`, word
 * timestamps) as whisper.cpp's and faster-whisper's servers do, but its "speech" is tone
 * bursts: each burst is one word, and the word is told by the tone's pitch (see toneWords).
 * So a test knows exactly which words, in which order and at which times, a recording holds,
 * and what a correct transcript of any window of it is, including words cut at the edges,
 * which it hears (wrongly timed, maybe misheard) as a real recogniser would.
 */
export const VOCABULARY = [
  'alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliett', 'kilo', 'lima',
  'mike', 'november', 'oscar', 'papa', 'quebec', 'romeo', 'sierra', 'tango', 'uniform', 'victor', 'whiskey', 'xray',
] as const; // prettier-ignore

const BASE_HZ = 400;
const STEP_HZ = 60;

/** The pitch that stands for word `index` of VOCABULARY. */
export function toneOf(index: number): number {
  return BASE_HZ + STEP_HZ * index;
}

export interface SpokenWord {
  readonly text: string;
  readonly startSec: number;
  readonly endSec: number;
}

/**
 * `count` words, each `wordSec` long with `gapSec` of silence after it, starting at
 * `leadSec`: the bursts to write (writeWav) and the words they stand for.
 */
export function toneWords(count: number, options: { leadSec?: number; wordSec?: number; gapSec?: number } = {}): { bursts: ToneBurst[]; words: SpokenWord[]; durationSec: number } {
  const { leadSec = 0.5, wordSec = 0.4, gapSec = 0.25 } = options;
  const bursts: ToneBurst[] = [];
  const words: SpokenWord[] = [];
  for (let i = 0; i < count; i++) {
    const index = (i * 7 + 3) % VOCABULARY.length;
    const startSec = Math.round((leadSec + i * (wordSec + gapSec)) * 1000) / 1000;
    const endSec = Math.round((startSec + wordSec) * 1000) / 1000;
    bursts.push({ startSec, endSec, hz: toneOf(index) });
    words.push({ text: VOCABULARY[index] ?? '', startSec, endSec });
  }
  return { bursts, words, durationSec: leadSec + count * (wordSec + gapSec) + leadSec };
}

/** Hears the words of a 16-bit PCM WAV: bursts above a level, named by their pitch. */
function hear(wav: Buffer): { durationSec: number; words: SpokenWord[] } {
  const file = new wavefile.WaveFile(wav);
  const rate = (file.fmt as { sampleRate: number }).sampleRate;
  const raw = file.getSamples(false, Float64Array);
  const samples = raw instanceof Float64Array ? raw : new Float64Array(0);
  const frame = Math.round(rate / 100); // 10 ms
  const words: SpokenWord[] = [];
  let burstStart = -1;
  const close = (end: number): void => {
    if (burstStart < 0) return;
    let crossings = 0;
    for (let i = burstStart + 1; i < end; i++) if ((samples[i - 1] ?? 0) < 0 !== (samples[i] ?? 0) < 0) crossings += 1;
    const hz = crossings / 2 / ((end - burstStart) / rate);
    const index = Math.max(0, Math.min(VOCABULARY.length - 1, Math.round((hz - BASE_HZ) / STEP_HZ)));
    words.push({ text: VOCABULARY[index] ?? '', startSec: Math.round((burstStart / rate) * 1000) / 1000, endSec: Math.round((end / rate) * 1000) / 1000 });
    burstStart = -1;
  };
  for (let at = 0; at < samples.length; at += frame) {
    let sum = 0;
    const end = Math.min(samples.length, at + frame);
    for (let i = at; i < end; i++) sum += ((samples[i] ?? 0) / 32768) ** 2;
    const loud = Math.sqrt(sum / Math.max(1, end - at)) > 0.05;
    if (loud && burstStart < 0) burstStart = at;
    if (!loud) close(at);
  }
  close(samples.length);
  return { durationSec: samples.length / rate, words };
}

export interface FakeWhisper {
  /** Base URL for `mmgrid worker --transcribe-url`. */
  readonly url: string;
  /** Transcriptions answered (successfully) so far. */
  readonly answered: number;
  /** Words heard in all of them (a word in an overlap is heard twice). */
  readonly wordsHeard: number;
  /** Answers the next `times` requests with `status` (a busy or broken server). */
  failNext(status: number, times: number): void;
  stop(): Promise<void>;
}

/** Models the fake knows; any other gets 400, like a real server asked for a model it lacks. */
export const FAKE_WHISPER_MODELS = ['whisper-1', 'tiny.en'];

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export async function startFakeWhisper(): Promise<FakeWhisper> {
  let answered = 0;
  let wordsHeard = 0;
  let failing: { status: number; times: number } = { status: 0, times: 0 };
  const reply = (res: ServerResponse, status: number, json: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(json));
  };
  const { url, stop } = await startHttpServer((req, res) => {
    void (async () => {
      if (req.method !== 'POST' || req.url !== '/v1/audio/transcriptions') {
        reply(res, 404, { error: { message: `no route ${req.method} ${req.url}` } });
        return;
      }
      const bytes = await body(req);
      if (failing.times > 0) {
        failing = { ...failing, times: failing.times - 1 };
        reply(res, failing.status, { error: { message: 'the server is overloaded' } });
        return;
      }
      // The multipart form, parsed by the platform's own Request (undici).
      const form = await new Request('http://fake/v1/audio/transcriptions', { method: 'POST', headers: req.headers as Record<string, string>, body: bytes }).formData();
      const model = form.get('model');
      const file = form.get('file');
      if (typeof model !== 'string' || !FAKE_WHISPER_MODELS.includes(model)) {
        reply(res, 400, { error: { message: `model "${typeof model === 'string' ? model : '(none)'}" does not exist`, type: 'invalid_request_error' } });
        return;
      }
      if (form.get('response_format') !== 'verbose_json' || !form.getAll('timestamp_granularities[]').includes('word')) {
        reply(res, 400, { error: { message: 'word timestamps need response_format=verbose_json', type: 'invalid_request_error' } });
        return;
      }
      if (!(file instanceof Blob)) {
        reply(res, 400, { error: { message: 'no file', type: 'invalid_request_error' } });
        return;
      }
      let heard: ReturnType<typeof hear>;
      try {
        heard = hear(Buffer.from(await file.arrayBuffer()));
      } catch (err) {
        reply(res, 400, { error: { message: `cannot decode the audio: ${String(err)}`, type: 'invalid_request_error' } });
        return;
      }
      answered += 1;
      wordsHeard += heard.words.length;
      const segments = [];
      for (let i = 0; i < heard.words.length; i += 8) {
        const part = heard.words.slice(i, i + 8);
        segments.push({ id: segments.length, start: part[0]?.startSec ?? 0, end: part[part.length - 1]?.endSec ?? 0, text: ` ${part.map((w) => w.text).join(' ')}` });
      }
      reply(res, 200, {
        task: 'transcribe',
        language: 'english',
        duration: heard.durationSec,
        text: heard.words.map((w) => w.text).join(' '),
        words: heard.words.map((w) => ({ word: ` ${w.text}`, start: w.startSec, end: w.endSec })),
        segments,
      });
    })().catch((err: unknown) => reply(res, 500, { error: { message: String(err) } }));
  });
  return {
    url,
    get answered() {
      return answered;
    },
    get wordsHeard() {
      return wordsHeard;
    },
    failNext(status, times) {
      failing = { status, times };
    },
    stop,
  };
}
