import type { AudioAnalyzeOutput } from '@mmgrid/core';
import { AudioAnalyzer, DEFAULT_AUDIO_ANALYSIS } from '../../audio/audio-analysis.js';
import { decodeAudio } from '../../audio/audio-decode.js';
import { TaskFailedError } from '../../errors.js';
import type { TaskContext, TaskHandler } from '../backend.js';

/** `audio.analyze`: decodes a recording and measures duration, loudness and where the speech is. */
export class AudioAnalyzeHandler implements TaskHandler {
  readonly kind = 'audio.analyze';
  readonly description = 'duration, loudness, speech/silence (WAV natively, other formats via ffmpeg)';

  async run(ctx: TaskContext): Promise<AudioAnalyzeOutput> {
    const [name, file] = [...ctx.files][0] ?? [];
    if (!name || !file) throw new TaskFailedError('INPUT_MISSING', 'audio.analyze needs one audio input', false);
    const frameMs = ctx.params['frameMs'] ?? DEFAULT_AUDIO_ANALYSIS.frameMs;
    if (typeof frameMs !== 'number' || frameMs < 5 || frameMs > 200) {
      throw new TaskFailedError('INVALID_PARAMS', 'audio.analyze parameter frameMs must be a number from 5 to 200', false);
    }
    const mediaType = ctx.mediaTypes.get(name) ?? 'audio/wav';
    // The analyzer needs the sample rate, which the decoder knows before the first sample.
    const made: { analyzer?: AudioAnalyzer } = {};
    const decoded = await decodeAudio(
      file,
      mediaType,
      (format) => {
        const analyzer = new AudioAnalyzer(format.sampleRate, { ...DEFAULT_AUDIO_ANALYSIS, frameMs });
        made.analyzer = analyzer;
        return (samples) => analyzer.push(samples);
      },
      ctx.signal,
    );
    if (!made.analyzer) throw new TaskFailedError('INPUT_DECODE_FAILED', 'the recording produced no audio', false);
    ctx.progress(0.9, 'decoded');
    const stats = made.analyzer.finish();
    return {
      format: decoded.format,
      decoder: decoded.decoder,
      sampleRate: decoded.sampleRate,
      channels: decoded.channels,
      durationSec: Math.round(stats.durationSec * 1e6) / 1e6,
      rmsDbfs: stats.rmsDbfs,
      peakDbfs: stats.peakDbfs,
      speechSec: stats.speechSec,
      silenceSec: stats.silenceSec,
      segments: stats.segments,
    };
  }
}
