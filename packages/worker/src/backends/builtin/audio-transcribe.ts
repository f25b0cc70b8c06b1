import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { InvalidOptionError, type AudioTranscribeOutput } from '@mmgrid/core';
import { TaskFailedError } from '../../errors.js';
import { type Backend, type BackendCheck, type TaskContext, type TaskHandler } from '../backend.js';
import { baseUrl, bearer, causeOf, checkRequest, taskRequest } from '../http.js';

/** Where the speech-to-text server is and which of its models to ask for. */
export interface TranscribeBackendOptions {
  /**
   * Base URL of a server that speaks the OpenAI audio transcription API
   * (`POST {url}/v1/audio/transcriptions`, multipart, `response_format=verbose_json` with word
   * timestamps): whisper.cpp's server, faster-whisper servers, vLLM, OpenAI itself.
   */
  readonly url: string;
  /** Model name sent when a task names none. @default "whisper-1" */
  readonly model?: string;
  /** Sent as a bearer token, when the server wants one. */
  readonly apiKey?: string | undefined;
}

const seconds = z.number().finite().nonnegative();

/** The parts of a `verbose_json` response the grid uses. */
const verboseJsonSchema = z.object({
  text: z.string(),
  language: z.string().optional(),
  words: z.array(z.object({ word: z.string(), start: seconds, end: seconds })).optional(),
  segments: z.array(z.object({ text: z.string(), start: seconds, end: seconds })).optional(),
});

const ms = (sec: number): number => Math.round(sec * 1000) / 1000;

/** Checks the URL a worker is started with; returns it without a trailing slash. */
export function checkTranscribeUrl(url: string): string {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (parsed?.protocol !== 'http:' && parsed?.protocol !== 'https:') {
    throw new InvalidOptionError('transcribeUrl', 'an http:// or https:// URL (for example http://127.0.0.1:8080)', url);
  }
  return url.replace(/\/+$/, '');
}

/**
 * `audio.transcribe`: sends a recording (one window of a long one, as audio.split cut it) to
 * the worker's speech-to-text server (on this machine or wherever its URL points) and returns the words with their times. The grid
 * stitches the windows' words (see stitchWords in core), so the server must time words
 * (`timestamp_granularities[]=word`).
 */
export class AudioTranscribeHandler implements TaskHandler {
  readonly kind = 'audio.transcribe';
  readonly description: string;
  readonly models: readonly string[];
  private readonly url: string;

  constructor(private readonly options: TranscribeBackendOptions) {
    this.url = checkTranscribeUrl(options.url);
    this.models = [options.model ?? 'whisper-1'];
    this.description = `speech to text with word times (${this.url}, model ${options.model ?? 'whisper-1'})`;
  }

  async run(ctx: TaskContext): Promise<AudioTranscribeOutput> {
    const [name, file] = [...ctx.files][0] ?? [];
    if (!name || !file) throw new TaskFailedError('INPUT_MISSING', 'audio.transcribe needs one audio input', false);
    const language = ctx.params['language'];
    const model = ctx.params['model'] ?? this.options.model ?? 'whisper-1';
    if (language !== undefined && typeof language !== 'string') throw new TaskFailedError('INVALID_PARAMS', 'audio.transcribe parameter language must be a string such as "en"', false);
    if (typeof model !== 'string') throw new TaskFailedError('INVALID_PARAMS', 'audio.transcribe parameter model must be a string', false);

    const form = new FormData();
    const bytes = await readFile(file);
    form.set('file', new Blob([bytes], { type: ctx.mediaTypes.get(name) ?? 'audio/wav' }), path.basename(name) || 'audio.wav');
    form.set('model', model);
    form.set('response_format', 'verbose_json');
    form.append('timestamp_granularities[]', 'word');
    form.append('timestamp_granularities[]', 'segment');
    if (language) form.set('language', language);

    const body = await taskRequest('the speech-to-text server', `${this.url}/v1/audio/transcriptions`, {
      method: 'POST',
      body: form,
      signal: ctx.signal,
      headers: bearer(this.options.apiKey),
    });
    let parsed: z.infer<typeof verboseJsonSchema>;
    try {
      parsed = verboseJsonSchema.parse(JSON.parse(body));
    } catch (err) {
      throw new TaskFailedError('INVALID_OUTPUT', `the speech-to-text server's answer is not verbose_json with word times: ${causeOf(err).slice(0, 300)}`, true);
    }
    if (parsed.words === undefined && parsed.text.trim() !== '') {
      throw new TaskFailedError('BACKEND_REFUSED', 'the speech-to-text server gave no word times (it must support timestamp_granularities[]=word)', false);
    }
    ctx.progress(1, 'transcribed');
    const words = (parsed.words ?? [])
      .map((w) => ({ text: w.word.trim(), startSec: ms(w.start), endSec: ms(Math.max(w.start, w.end)) }))
      .filter((w) => w.text !== '');
    return {
      text: parsed.text.trim(),
      language: parsed.language ?? language ?? '',
      words,
      segments: (parsed.segments ?? []).map((s) => ({ text: s.text.trim(), startSec: ms(s.start), endSec: ms(Math.max(s.start, s.end)) })),
    };
  }
}

/** The speech-to-text server of a worker, as a backend: checked at start, serves audio.transcribe. */
export class TranscribeBackend implements Backend {
  readonly type = 'openai-transcribe';
  readonly kinds = ['audio.transcribe'];
  readonly name: string;

  constructor(private readonly options: TranscribeBackendOptions & { readonly name?: string }) {
    this.name = options.name ?? 'transcribe';
    checkTranscribeUrl(options.url);
  }

  async check(signal: AbortSignal): Promise<BackendCheck> {
    // Any answer shows the server is there: whisper.cpp's server has no /v1/models (404).
    const url = `${baseUrl(this.options.url)}/v1/models`;
    const { status } = await checkRequest('the speech-to-text server', url, { signal, headers: bearer(this.options.apiKey) });
    const model = this.options.model ?? 'whisper-1';
    return { models: [model], note: `speech to text at ${baseUrl(this.options.url)} (model ${model}${status === 401 || status === 403 ? `; it answered ${status}: check the API key` : ''})` };
  }

  handlers(): TaskHandler[] {
    return [new AudioTranscribeHandler(this.options)];
  }
}
