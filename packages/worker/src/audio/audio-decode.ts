import { readFile, stat } from 'node:fs/promises';
import wavefile from 'wavefile';
import { InputDecodeError } from '../errors.js';
import { runTool } from '../media/ffmpeg.js';

/** What a recording is; its samples follow as mono values in [-1, 1]. */
export interface DecodedAudio {
  readonly format: string;
  readonly decoder: 'native' | 'ffmpeg';
  readonly sampleRate: number;
  readonly channels: number;
}

/** WAV files up to this size are decoded in process; larger ones stream through ffmpeg. */
const NATIVE_WAV_MAX_BYTES = 64 * 1024 * 1024;

const PCM = 1;
const IEEE_FLOAT = 3;
const EXTENSIBLE = 0xfffe;

/** Receives a recording's format once, and returns where its samples go. */
export type SampleSinkFactory = (format: DecodedAudio) => (mono: Float32Array | Float64Array) => void;

/**
 * Decodes an audio file: PCM and float WAV natively, anything else (and very large WAV)
 * through ffmpeg when it is installed. Samples stream to the sink; nothing holds the whole
 * recording but the native WAV path (bounded by NATIVE_WAV_MAX_BYTES).
 */
export async function decodeAudio(file: string, mediaType: string, sink: SampleSinkFactory, signal: AbortSignal): Promise<DecodedAudio> {
  const size = (await stat(file)).size;
  if (mediaType === 'audio/wav' && size <= NATIVE_WAV_MAX_BYTES) {
    const native = await decodeWav(file, sink);
    if (native) return native;
  }
  return decodeWithFfmpeg(file, mediaType, sink, signal);
}

async function decodeWav(file: string, sink: SampleSinkFactory): Promise<DecodedAudio | undefined> {
  const wav = new wavefile.WaveFile();
  try {
    wav.fromBuffer(await readFile(file));
  } catch (err) {
    throw new InputDecodeError(`the WAV file cannot be read: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const fmt = wav.fmt as { audioFormat: number; numChannels: number; sampleRate: number; bitsPerSample: number; subformat?: number[] };
  if (fmt.audioFormat !== PCM && fmt.audioFormat !== IEEE_FLOAT && fmt.audioFormat !== EXTENSIBLE) return undefined;
  // wavefile reads every WAVE_FORMAT_EXTENSIBLE file as integer PCM; other sub-formats
  // (float, A-law, ...) would come out as noise, so ffmpeg decodes them.
  if (fmt.audioFormat === EXTENSIBLE && fmt.subformat?.[0] !== PCM) return undefined;
  if (fmt.numChannels < 1 || fmt.sampleRate < 1) throw new InputDecodeError('the WAV header declares no channels or a zero sample rate');
  const bitDepth = wav.bitDepth;
  const isFloat = bitDepth === '32f' || bitDepth === '64';
  const bits = Number.parseInt(bitDepth, 10);
  const raw = wav.getSamples(false, Float64Array) as unknown as Float64Array | Float64Array[];
  const channels: Float64Array[] = fmt.numChannels === 1 ? [raw as Float64Array] : (raw as Float64Array[]);
  const length = channels[0]?.length ?? 0;
  const mono = new Float64Array(length);
  const scale = isFloat ? 1 : bits === 8 ? 128 : 2 ** (bits - 1);
  const offset = !isFloat && bits === 8 ? 128 : 0;
  for (const ch of channels) {
    for (let i = 0; i < length; i++) mono[i] = (mono[i] ?? 0) + ((ch[i] ?? 0) - offset) / scale / channels.length;
  }
  const format: DecodedAudio = {
    format: `wav/${isFloat ? `pcm_f${bits}le` : bits === 8 ? 'pcm_u8' : `pcm_s${bits}le`}`,
    decoder: 'native',
    sampleRate: fmt.sampleRate,
    channels: fmt.numChannels,
  };
  sink(format)(mono);
  return format;
}

interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  sample_rate?: string;
  channels?: number;
}

async function decodeWithFfmpeg(file: string, mediaType: string, sink: SampleSinkFactory, signal: AbortSignal): Promise<DecodedAudio> {
  const probe = await runTool('ffprobe', ['-v', 'error', '-show_streams', '-select_streams', 'a:0', '-of', 'json', file], signal, 'the audio');
  const streams = (JSON.parse(probe.stdout) as { streams?: ProbeStream[] }).streams ?? [];
  const audio = streams.find((s) => s.codec_type === 'audio');
  if (!audio) throw new InputDecodeError(`no audio stream found in the ${mediaType} file`);
  const sampleRate = Number(audio.sample_rate ?? 0);
  const channels = audio.channels ?? 0;
  if (!(sampleRate > 0) || channels < 1) throw new InputDecodeError('the audio stream declares no sample rate or channels');
  const container = mediaType.split('/')[1] ?? 'audio';
  const format: DecodedAudio = { format: `${container}/${audio.codec_name ?? 'unknown'}`, decoder: 'ffmpeg', sampleRate, channels };
  const onSamples = sink(format);
  let carry = Buffer.alloc(0);
  // Average the channels, as the native WAV path does: ffmpeg's own "-ac 1" downmix adds them
  // at -3 dB each, which reads 3 dB louder for correlated channels and can exceed [-1, 1].
  const mix = channels > 1 ? ['-af', `pan=mono|c0=${Array.from({ length: channels }, (_, i) => `${1 / channels}*c${i}`).join('+')}`] : [];
  const args = ['-v', 'error', '-nostdin', '-i', file, '-map', '0:a:0', ...mix, '-ac', '1', '-f', 'f32le', '-acodec', 'pcm_f32le', 'pipe:1'];
  await runTool('ffmpeg', args, signal, 'the audio', (chunk) => {
    const data = carry.length > 0 ? Buffer.concat([carry, chunk]) : chunk;
    const whole = data.length - (data.length % 4);
    if (whole > 0) {
      const copy = Buffer.from(data.subarray(0, whole));
      onSamples(new Float32Array(copy.buffer, copy.byteOffset, whole / 4));
    }
    carry = Buffer.from(data.subarray(whole));
  });
  return format;
}
