import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';

/** Characters of stderr kept for a failure message (its end: where the error usually is). */
export const STDERR_TAIL_CHARS = 4096;

/** The longest stderr line looked at as a whole; a longer one is kept in pieces. */
const MAX_LINE_CHARS = 64 * 1024;

export interface RunCommandOptions {
  /** The program's path. */
  readonly file: string;
  /** What the program sees as its own name (`argv[0]`). */
  readonly argv0: string;
  readonly args: readonly string[];
  readonly cwd: string;
  /** The command's whole environment (nothing of the worker's is added). */
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  /** More bytes than this on stdout stop the command. */
  readonly maxOutputBytes: number;
  /** Aborting it stops the command. */
  readonly signal: AbortSignal;
  /** Called for each progress line on stderr (`progress 0.42 message`). */
  readonly onProgress: (fraction: number, message: string) => void;
  /** Between SIGTERM and SIGKILL when the command is stopped. @default 5000 */
  readonly killGraceMs?: number;
  /** Told the process group's id once the program has started, and again (`ended`) once the group is gone. */
  readonly onGroup?: (pgid: number, state: 'started' | 'ended') => void;
}

/** How a command ended. Whatever it started in its process group is gone by then. */
export type CommandEnd =
  | { readonly how: 'exited'; readonly code: number; readonly stdout: Buffer; readonly stderrTail: string }
  /** Killed by a signal nobody here sent (the OOM killer, a crash). */
  | { readonly how: 'signalled'; readonly signal: string; readonly stderrTail: string }
  /** Stopped here: it ran too long, printed too much, or the task was called off. */
  | { readonly how: 'timeout' | 'too-large' | 'aborted'; readonly stderrTail: string }
  | { readonly how: 'spawn-failed'; readonly error: NodeJS.ErrnoException };

type StopReason = 'timeout' | 'too-large' | 'aborted';

/**
 * `progress FRACTION [MESSAGE]` on a line of its own, FRACTION from 0 to 1 or a percentage
 * (`progress 0.42 loading model`, `progress 42% loading model`).
 */
export function parseProgressLine(line: string): { fraction: number; message: string } | undefined {
  const match = /^progress\s+(\d+(?:\.\d*)?|\.\d+)(%?)(?:\s+(.*))?$/.exec(line.trim());
  if (!match?.[1]) return undefined;
  const value = Number(match[1]) / (match[2] === '%' ? 100 : 1);
  if (!Number.isFinite(value)) return undefined;
  return { fraction: Math.min(1, Math.max(0, value)), message: (match[3] ?? '').trim().slice(0, 200) };
}

/** Splits stderr into lines: progress lines become progress, the rest is kept as a tail. */
class StderrLines {
  private partial = '';
  private kept = '';

  constructor(private readonly onProgress: (fraction: number, message: string) => void) {}

  push(chunk: string): void {
    // "\r" ends a line too: progress bars redraw themselves with it.
    const lines = (this.partial + chunk).split(/\r\n|\n|\r/);
    this.partial = lines.pop() ?? '';
    if (this.partial.length > MAX_LINE_CHARS) {
      this.keep(this.partial);
      this.partial = '';
    }
    for (const line of lines) this.line(line);
  }

  get tail(): string {
    return (this.kept + this.partial).slice(-STDERR_TAIL_CHARS).trim();
  }

  private line(line: string): void {
    const progress = parseProgressLine(line);
    if (progress) this.onProgress(progress.fraction, progress.message);
    else this.keep(`${line}\n`);
  }

  private keep(text: string): void {
    this.kept = (this.kept + text).slice(-STDERR_TAIL_CHARS);
  }
}

/** Sends a signal to every process of a group; one that is gone already is no error. */
export function signalGroup(pid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether a process of the group still runs. kill(2) counts zombies, which are dead: an init
 * that does not reap orphans (PID 1 in some containers) leaves them, so on Linux the group's
 * members are looked up in /proc.
 */
async function groupRuns(pgid: number): Promise<boolean> {
  if (!signalGroup(pgid, 0)) return false;
  if (process.platform !== 'linux') return true;
  try {
    for (const entry of await readdir('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
      // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses.
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z') return true;
    }
    return false;
  } catch {
    return true;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs a program once, without a shell, in a process group of its own, so that stopping it
 * stops whatever it started too. Stopping (timeout, too much output, `signal`) sends SIGTERM
 * to the group and SIGKILL `killGraceMs` later. When the program exits by itself, anything
 * it left running in its group is killed at once. Resolves once the group is gone (or, for
 * processes that never die, shortly after SIGKILL).
 */
export function runCommand(options: RunCommandOptions): Promise<CommandEnd> {
  const graceMs = options.killGraceMs ?? 5000;
  return new Promise<CommandEnd>((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(options.file, options.args, {
        argv0: options.argv0,
        cwd: options.cwd,
        env: options.env,
        stdio: ['ignore', 'pipe', 'pipe'],
        // Its own process group (pgid = its pid): signalGroup(-pid) reaches its children.
        detached: true,
        shell: false,
        windowsHide: true,
      });
    } catch (err) {
      resolve({ how: 'spawn-failed', error: err as NodeJS.ErrnoException });
      return;
    }
    if (child.pid !== undefined) options.onGroup?.(child.pid, 'started');
    const stdout: Buffer[] = [];
    let stdoutBytes = 0;
    const stderr = new StderrLines(options.onProgress);
    let stopped: StopReason | undefined;
    let exited = false;
    let killTimer: NodeJS.Timeout | undefined;
    let streamsTimer: NodeJS.Timeout | undefined;

    const stop = (why: StopReason): void => {
      if (stopped) return;
      stopped = why;
      const pid = child.pid;
      if (pid === undefined || exited) return;
      signalGroup(pid, 'SIGTERM');
      killTimer = setTimeout(() => signalGroup(pid, 'SIGKILL'), graceMs);
    };
    const timeout = setTimeout(() => stop('timeout'), options.timeoutMs);
    const onAbort = (): void => stop('aborted');
    options.signal.addEventListener('abort', onAbort, { once: true });
    if (options.signal.aborted) onAbort();

    child.stdout?.on('data', (chunk: Buffer) => {
      if (stopped === 'too-large') return;
      stdoutBytes += chunk.length;
      if (stdoutBytes > options.maxOutputBytes) stop('too-large');
      else stdout.push(chunk);
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => stderr.push(chunk));

    child.once('error', (error: NodeJS.ErrnoException) => {
      // Only a failed start leaves no pid; later errors (a kill that failed) end in 'close'.
      if (child.pid !== undefined) return;
      clearTimeout(timeout);
      options.signal.removeEventListener('abort', onAbort);
      resolve({ how: 'spawn-failed', error });
    });
    child.once('exit', () => {
      exited = true;
      // It ended in time; what remains is collecting its output.
      clearTimeout(timeout);
      const pid = child.pid;
      if (pid === undefined) return;
      // Stopped: its children keep their grace. Done: nothing of it may stay behind.
      if (!stopped) signalGroup(pid, 'SIGKILL');
      // A process that left the group may still hold the pipes open: do not wait on it.
      streamsTimer = setTimeout(
        () => {
          child.stdout?.destroy();
          child.stderr?.destroy();
        },
        (stopped ? graceMs : 0) + 2000,
      );
    });
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      clearTimeout(timeout);
      clearTimeout(streamsTimer);
      options.signal.removeEventListener('abort', onAbort);
      const pid = child.pid;
      void (async () => {
        if (pid !== undefined) {
          const deadline = Date.now() + (stopped && killTimer ? graceMs : 0) + 1000;
          let runs = await groupRuns(pid);
          while (runs && Date.now() < deadline) {
            await sleep(20);
            runs = await groupRuns(pid);
          }
          // Past the deadline (a process in uninterruptible sleep): one last try.
          if (runs) signalGroup(pid, 'SIGKILL');
          options.onGroup?.(pid, 'ended');
        }
        clearTimeout(killTimer);
        const stderrTail = stderr.tail;
        if (stopped) resolve({ how: stopped, stderrTail });
        else if (code === null) resolve({ how: 'signalled', signal: signal ?? 'an unknown signal', stderrTail });
        else resolve({ how: 'exited', code, stdout: Buffer.concat(stdout), stderrTail });
      })();
    });
  });
}
