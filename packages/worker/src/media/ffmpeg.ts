import { spawn } from 'node:child_process';
import { InputDecodeError, TaskFailedError, ToolMissingError } from '../errors.js';

/**
 * Runs ffmpeg or ffprobe. Output goes to `onStdout` when given (streaming), otherwise it is
 * collected. A missing tool is a ToolMissingError (another worker may have it); a file the
 * tool cannot read is an InputDecodeError naming `what`; an aborted run is CANCELLED.
 */
export function runTool(
  cmd: 'ffmpeg' | 'ffprobe',
  args: readonly string[],
  signal: AbortSignal,
  what: string,
  onStdout?: (chunk: Buffer) => void,
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], signal });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (onStdout) onStdout(chunk);
      else stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') reject(new ToolMissingError(cmd, `${cmd} is not installed on this worker (install it with: sudo apt-get install -y ffmpeg)`));
      else if (err.name === 'AbortError') reject(new TaskFailedError('CANCELLED', 'stopped', false));
      else reject(err);
    });
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr });
      else if (!signal.aborted) reject(new InputDecodeError(`${cmd} could not read ${what}: ${lastLine(stderr)}`));
    });
  });
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return lines[lines.length - 1]?.trim() || 'no details';
}

export interface ProbedStream {
  readonly codec_type?: string;
  readonly codec_name?: string;
  readonly sample_rate?: string;
  readonly channels?: number;
  readonly width?: number;
  readonly height?: number;
  readonly duration?: string;
}

export interface Probed {
  readonly durationSec: number;
  readonly audio: ProbedStream | undefined;
  readonly video: ProbedStream | undefined;
}

/** ffprobe's view of a media file: its duration and first audio and video streams. */
export async function probeMedia(file: string, signal: AbortSignal, what: string): Promise<Probed> {
  const { stdout } = await runTool('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', file], signal, what);
  const json = JSON.parse(stdout) as { streams?: ProbedStream[]; format?: { duration?: string } };
  const streams = json.streams ?? [];
  const duration = Number(json.format?.duration ?? streams.find((s) => s.duration)?.duration ?? NaN);
  if (!Number.isFinite(duration) || duration < 0) throw new InputDecodeError(`${what} has no duration ffprobe can read`);
  return {
    durationSec: duration,
    audio: streams.find((s) => s.codec_type === 'audio'),
    video: streams.find((s) => s.codec_type === 'video'),
  };
}
