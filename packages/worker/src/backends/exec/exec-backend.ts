import { constants } from 'node:fs';
import { access, chmod, copyFile, lstat, mkdir, mkdtemp, open, readdir, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BlobRef, JsonObject } from '@mmgrid/core';
import { TaskFailedError, ToolMissingError } from '../../errors.js';
import { WorkerConfigError, type ExecBackendConfig } from '../../worker-config.js';
import { BackendUnavailableError, type Backend, type BackendCheck, type BackendContext, type TaskContext, type TaskHandler } from '../backend.js';
import { CommandTemplateError, MissingValueError, OptionLikeValueError, parseCommandTemplate, renderCommand, type CommandTemplate } from './command-template.js';
import { extensionOf, mediaTypeOf } from './media-types.js';
import { runCommand, signalGroup, type CommandEnd } from './run-command.js';

/**
 * The exec backend: a command the worker's owner set up, run once per task for an
 * `exec.NAME` kind. This is how any script (PyTorch, a CLI tool) joins the grid.
 *
 * How a task runs:
 *
 * - A private folder (mode 0700) is made for the task under the worker's work folder
 *   (`<stateDir>/work`; the OS temp folder when none is given) and is the command's working
 *   directory. It is removed when the task ends, whatever happened, unless the section says
 *   `keepTaskDir: on-failure` (a debugging aid: a failed task's folder is kept and its path
 *   logged). The input is copied into it (`in/input.EXT`, an inline text written to
 *   `in/input.txt`), so a command that writes to its input cannot harm the worker's blob
 *   cache. `{outdir}` is its `out/` folder; `TMPDIR` is its `tmp/`. A section with `cwd`
 *   runs the command there instead (the owner's choice: relative paths then leave the task
 *   folder); the folder is made and removed all the same.
 * - The arguments are the config's `command` with placeholders filled in (see
 *   command-template.ts; a job's value may not begin an argument with "-"), started without
 *   a shell (argv only: `shell: false`, no string command), in a process group of its own,
 *   with stdin empty.
 * - Its environment is small and clean, NOT the worker's (which may hold its token): PATH,
 *   HOME, USER, LOGNAME, LANG, LC_ALL, LC_CTYPE, TZ, LD_LIBRARY_PATH, CUDA_VISIBLE_DEVICES and
 *   NVIDIA_VISIBLE_DEVICES from the worker's when set; TMPDIR; the config's `env` (which may
 *   override those); and MMGRID_PARAMS (the task's parameters as a JSON object),
 *   MMGRID_TASK_ID, MMGRID_JOB_ID, MMGRID_KIND, MMGRID_ATTEMPT, MMGRID_OUTDIR and, with an
 *   input, MMGRID_INPUT, MMGRID_INPUT_NAME, MMGRID_INPUT_TYPE.
 * - Its result is ONE JSON object on stdout: the whole of stdout when that is one JSON
 *   object, else its last non-empty line (so earlier lines may be logging). More than
 *   `maxOutputBytes` on stdout stops it: OUTPUT_TOO_LARGE, not retried.
 * - Files it writes under `{outdir}` (subfolders too; plain files only, at most 1,000, each
 *   at most `maxFileBytes`, all together at most `maxTotalFileBytes`) are uploaded. `{outdir}`
 *   is measured every second while the command runs: a file or a total over its cap stops the
 *   command at once (OUTPUT_TOO_LARGE, not retried), so it cannot fill the disk there. Also, a symbolic link (to a file or a folder, inside or
 *   outside), a device or a pipe there fails the task (INVALID_OUTPUT), and each file is
 *   opened without following links and read no further than its cap, so nothing outside
 *   `{outdir}` is ever read for upload. They are typed from their bytes or else their extension,
 *   and listed in the output as `files: [BlobRef…]` (sorted by path; `[]` when none). `files`
 *   is therefore the worker's key: a command that prints its own fails INVALID_OUTPUT.
 * - stderr is for people: its last 4 KB go into a failure's message. A stderr line
 *   `progress 0.42 some message` (or `progress 42% …`) reports progress instead.
 * - Exit code 0 is success. Exit code 75 (EX_TEMPFAIL: "try again later", e.g. out of GPU
 *   memory) fails the attempt retryably; any other code fails the task for good (the same
 *   input would fail again). Death by a signal nobody here sent (the OOM killer) is retried.
 * - It is stopped after `timeoutSec` (TIMEOUT, retried), and when the task is cancelled or
 *   the worker drains: SIGTERM to its process group, SIGKILL 5 s later. When it exits by
 *   itself, anything it left running in its group is killed.
 */

/** Variables passed on from the worker's environment, when set. */
const PASSED_ENV = ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'LD_LIBRARY_PATH', 'CUDA_VISIBLE_DEVICES', 'NVIDIA_VISIBLE_DEVICES'];
const DEFAULT_PATH = '/usr/local/bin:/usr/bin:/bin';
/** Exit code meaning "a temporary failure; try again" (sysexits.h EX_TEMPFAIL). */
export const EXIT_RETRY = 75;
/** Task folders are `<workDir>/mmgrid-exec-XXXXXX`; kept ones (keepTaskDir) `kept-mmgrid-exec-XXXXXX`. */
const TASK_PREFIX = 'mmgrid-exec-';
const KEPT_PREFIX = 'kept-';

/**
 * Removes the task folders a previous run of this worker left in its work folder (it was
 * killed, or the machine went down, mid-task: they may hold large input copies). Call it once
 * at start, before any task runs, and only on a work folder this worker owns (its state
 * folder's): folders kept with keepTaskDir are left alone. Returns how many were removed.
 */
export async function removeStaleTaskFolders(workDir: string): Promise<number> {
  const names = await readdir(workDir).catch(() => [] as string[]);
  const stale = names.filter((n) => n.startsWith(TASK_PREFIX));
  const removed = await Promise.all(
    stale.map((n) =>
      rm(path.join(workDir, n), { recursive: true, force: true }).then(
        () => true,
        () => false,
      ),
    ),
  );
  return removed.filter(Boolean).length;
}

/** Most output files uploaded for one task. */
export const MAX_OUTPUT_FILES = 1000;

export interface ExecBackendOptions {
  /** Between SIGTERM and SIGKILL when a command is stopped. @default 5000 */
  readonly killGraceMs?: number;
  /** Where task folders are made. @default the BackendContext's workDir, else the OS temp folder */
  readonly workDir?: string;
  /** How often `{outdir}` is measured while the command runs. @default 1000 */
  readonly outdirCheckMs?: number;
  /** The environment the clean one is drawn from. @default process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

function sizeText(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${Number((bytes / 1024 ** 3).toFixed(1))} GiB`;
  if (bytes >= 1024 ** 2) return `${Number((bytes / 1024 ** 2).toFixed(1))} MiB`;
  if (bytes >= 1024) return `${Number((bytes / 1024).toFixed(1))} KiB`;
  return `${bytes} bytes`;
}

async function isExecutableFile(file: string): Promise<boolean> {
  try {
    if (!(await stat(file)).isFile()) return false;
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The program's path: a name with a "/" is relative to `cwd`; a bare name is looked up in
 * `searchPath`, as a shell would.
 *
 * @throws BackendUnavailableError naming the program and where it was looked for
 */
export async function resolveProgram(program: string, cwd: string, searchPath: string): Promise<string> {
  if (program.includes('/')) {
    const file = path.resolve(cwd, program);
    if (await isExecutableFile(file)) return file;
    const exists = await stat(file).then(
      (s) => s.isFile(),
      () => false,
    );
    throw new BackendUnavailableError(exists ? `${file} is not executable (chmod +x it)` : `the program ${file} does not exist`);
  }
  for (const dir of searchPath.split(path.delimiter).filter(Boolean)) {
    const file = path.resolve(cwd, dir, program);
    if (await isExecutableFile(file)) return file;
  }
  throw new BackendUnavailableError(`the program "${program}" is not on PATH (${searchPath}); install it, give its full path, or set PATH in the backend's env`);
}

/** Parameters as the text that fills `{params.NAME}`: strings as they are, numbers and booleans as JSON writes them. */
function paramTexts(kind: string, params: JsonObject): Record<string, string> {
  const texts: Record<string, string> = {};
  for (const [name, value] of Object.entries(params)) {
    if (typeof value === 'string') {
      if (value.includes('\0')) throw new TaskFailedError('INVALID_PARAMS', `${kind}: parameter "${name}" holds a NUL character, which no program argument can`, false);
      texts[name] = value;
    } else if (typeof value === 'number' || typeof value === 'boolean') {
      texts[name] = JSON.stringify(value);
    } else {
      throw new TaskFailedError('INVALID_PARAMS', `${kind}: parameter "${name}" is ${value === null ? 'null' : Array.isArray(value) ? 'a list' : 'an object'}; exec parameters are strings, numbers or booleans`, false);
    }
  }
  return texts;
}

interface StagedInput {
  readonly path: string;
  readonly name: string;
  readonly type: string;
}

/** Copies the task's input (its first, for exec kinds read one) into the scratch folder. */
async function stageInput(task: TaskContext, dir: string): Promise<StagedInput | undefined> {
  const [file] = task.files;
  if (file) {
    const [name, source] = file;
    const type = task.mediaTypes.get(name) ?? 'application/octet-stream';
    await mkdir(dir);
    const target = path.join(dir, `input${extensionOf(type)}`);
    // A reflink where the file system has them, else a copy.
    await copyFile(source, target, constants.COPYFILE_FICLONE);
    // The cache's files are read-only; the command's copy is its own.
    await chmod(target, 0o600);
    return { path: target, name, type };
  }
  const [text] = task.texts;
  if (text) {
    const [name, value] = text;
    await mkdir(dir);
    const target = path.join(dir, 'input.txt');
    await writeFile(target, value);
    return { path: target, name, type: 'text/plain' };
  }
  return undefined;
}

/** Plain files under `dir`, as paths relative to it with "/", sorted. */
async function outputFiles(kind: string, dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const relPath = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) await walk(relPath);
      else if (entry.isFile()) found.push(relPath);
      else throw new TaskFailedError('INVALID_OUTPUT', `${kind} left ${relPath} in {outdir}, which is not a plain file (links and devices are not uploaded)`, false);
      if (found.length > MAX_OUTPUT_FILES) throw new TaskFailedError('INVALID_OUTPUT', `${kind} wrote more than ${MAX_OUTPUT_FILES} files in {outdir}`, false);
    }
  };
  await walk('');
  return found;
}

/** The command's JSON object: the whole of stdout, or its last non-empty line. */
function parseResult(kind: string, stdout: string): JsonObject {
  const isObject = (v: unknown): v is JsonObject => v !== null && typeof v === 'object' && !Array.isArray(v);
  const whole = stdout.trim();
  if (whole === '') throw new TaskFailedError('INVALID_OUTPUT', `${kind} printed nothing on stdout; it must print its result as one JSON object`, false);
  const attempt = (text: string): unknown => {
    try {
      return JSON.parse(text);
    } catch {
      return undefined;
    }
  };
  const parsed = attempt(whole);
  if (isObject(parsed)) return parsed;
  const last = whole.split(/\r?\n/).filter((l) => l.trim() !== '').pop() ?? '';
  const fromLast = attempt(last);
  if (isObject(fromLast)) return fromLast;
  const shown = last.length > 200 ? `${last.slice(0, 200)}…` : last;
  throw new TaskFailedError('INVALID_OUTPUT', `${kind} did not print a JSON object as its result (its last line: ${JSON.stringify(shown)})`, false);
}

function withTail(message: string, tail: string): string {
  return tail === '' ? `${message} (nothing on stderr)` : `${message}: ${tail}`;
}

/** Why a command that did not exit with 0 failed the task. */
function failureOf(kind: string, end: CommandEnd, config: ExecBackendConfig, program: string): TaskFailedError {
  switch (end.how) {
    case 'exited':
      return new TaskFailedError('TASK_FAILED', withTail(`${kind} exited with code ${end.code}`, end.stderrTail), end.code === EXIT_RETRY);
    case 'signalled':
      return new TaskFailedError('TASK_FAILED', withTail(`${kind} was killed by ${end.signal}`, end.stderrTail), true);
    case 'timeout':
      return new TaskFailedError('TIMEOUT', withTail(`${kind} ran longer than its ${config.timeoutSec} s limit (timeoutSec) and was stopped`, end.stderrTail), true);
    case 'too-large':
      return new TaskFailedError(
        'OUTPUT_TOO_LARGE',
        `${kind} printed more than ${sizeText(config.maxOutputBytes)} on stdout (maxOutputBytes); print a small JSON object and write large results to files in {outdir}`,
        false,
      );
    case 'aborted':
      return new TaskFailedError('CANCELLED', `${kind} was stopped`, false);
    case 'spawn-failed':
      if (end.error.code === 'E2BIG') return new TaskFailedError('INVALID_PARAMS', `${kind}: the arguments and parameters are too long for a command line`, false, { cause: end.error });
      if (end.error.code === 'ENOENT' || end.error.code === 'EACCES') return new ToolMissingError(program, `${kind}: cannot start ${program}: ${end.error.message}`);
      return new TaskFailedError('TASK_FAILED', `${kind}: cannot start ${program}: ${end.error.message}`, true, { cause: end.error });
  }
}

class ExecHandler implements TaskHandler {
  readonly kind: string;
  readonly description: string;
  /** Process groups of the commands running now. */
  private readonly groups = new Set<number>();

  constructor(
    private readonly config: ExecBackendConfig,
    private readonly template: CommandTemplate,
    /** Where the command runs: undefined for its task folder. */
    private readonly cwd: string | undefined,
    private readonly workDir: string,
    private readonly program: () => Promise<string>,
    private readonly ctx: BackendContext,
    private readonly options: ExecBackendOptions,
  ) {
    this.kind = config.kind;
    this.description = config.description ?? `runs ${template.program} once per task`;
  }

  async run(task: TaskContext): Promise<JsonObject> {
    const kind = this.kind;
    if (task.signal.aborted) throw new TaskFailedError('CANCELLED', `${kind} was stopped before it started`, false);
    const params = paramTexts(kind, task.params);
    let file: string;
    try {
      file = await this.program();
    } catch (err) {
      // Removed since the worker started: another worker may still have it.
      if (err instanceof BackendUnavailableError) throw new ToolMissingError(this.template.program, `${kind}: ${err.message}`);
      throw err;
    }
    await mkdir(this.workDir, { recursive: true, mode: 0o700 });
    // mkdtemp makes the folder readable by this user only (0700).
    const scratch = await mkdtemp(path.join(this.workDir, TASK_PREFIX));
    let succeeded = false;
    try {
      const outdir = path.join(scratch, 'out');
      const tmp = path.join(scratch, 'tmp');
      await mkdir(outdir);
      await mkdir(tmp);
      const input = await stageInput(task, path.join(scratch, 'in'));
      let args: string[];
      try {
        args = renderCommand(this.template, { ...(input ? { input } : {}), outdir, params, taskId: task.taskId, jobId: task.jobId });
      } catch (err) {
        if (err instanceof MissingValueError) throw new TaskFailedError(err.what === 'input' ? 'INPUT_MISSING' : 'INVALID_PARAMS', `${kind}: ${err.message}`, false);
        if (err instanceof OptionLikeValueError) throw new TaskFailedError('INVALID_PARAMS', `${kind}: ${err.message}`, false);
        throw err;
      }
      const env = this.environment(task, tmp, outdir, input);
      const watch = this.watchOutdir(outdir, task.signal);
      this.ctx.logger.debug({ kind, taskId: task.taskId, program: file, args }, 'exec: starting the command');
      const end = await runCommand({
        file,
        argv0: this.template.program,
        args,
        cwd: this.cwd ?? scratch,
        env,
        timeoutMs: this.config.timeoutSec * 1000,
        maxOutputBytes: this.config.maxOutputBytes,
        signal: watch.signal,
        onProgress: (fraction, message) => task.progress(fraction, message),
        ...(this.options.killGraceMs !== undefined ? { killGraceMs: this.options.killGraceMs } : {}),
        onGroup: (pgid, state) => (state === 'started' ? this.groups.add(pgid) : this.groups.delete(pgid)),
      }).finally(() => watch.stop());
      const overflow = watch.overflow();
      if (overflow) throw overflow;
      if (end.how !== 'exited' || end.code !== 0) throw failureOf(kind, end, this.config, file);
      const result = parseResult(kind, end.stdout.toString('utf8'));
      if ('files' in result) throw new TaskFailedError('INVALID_OUTPUT', `${kind} printed a "files" key; that key is the worker's (the files written to {outdir}): rename it`, false);
      const output = { ...result, files: await this.upload(task, outdir) };
      succeeded = true;
      return output;
    } finally {
      if (!succeeded && this.config.keepTaskDir === 'on-failure') {
        // Renamed, so that a restarted worker's clean-up (removeStaleTaskFolders) leaves it.
        const kept = path.join(this.workDir, `${KEPT_PREFIX}${path.basename(scratch)}`);
        const where = await rename(scratch, kept).then(
          () => kept,
          () => scratch,
        );
        this.ctx.logger.warn({ kind, taskId: task.taskId, dir: where }, `exec: kept the failed task's folder ${where} (keepTaskDir: on-failure); remove it when done`);
      } else {
        await rm(scratch, { recursive: true, force: true });
      }
    }
  }

  /**
   * Kills every command still running, at once: the worker is exiting, and a command in a
   * process group of its own would outlive it. (Synchronous up to its first await, so it also
   * works from a process 'exit' handler.)
   */
  close(): Promise<void> {
    for (const pgid of this.groups) signalGroup(pgid, 'SIGKILL');
    this.groups.clear();
    return Promise.resolve();
  }

  private environment(task: TaskContext, tmp: string, outdir: string, input: StagedInput | undefined): Record<string, string> {
    const from = this.options.env ?? process.env;
    const env: Record<string, string> = {};
    for (const name of PASSED_ENV) {
      const value = from[name];
      if (value !== undefined) env[name] = value;
    }
    env['PATH'] ??= DEFAULT_PATH;
    env['TMPDIR'] = tmp;
    Object.assign(env, this.config.env);
    env['MMGRID_PARAMS'] = JSON.stringify(task.params);
    env['MMGRID_TASK_ID'] = task.taskId;
    env['MMGRID_JOB_ID'] = task.jobId;
    env['MMGRID_KIND'] = this.kind;
    env['MMGRID_ATTEMPT'] = String(task.attempt);
    env['MMGRID_OUTDIR'] = outdir;
    if (input) {
      env['MMGRID_INPUT'] = input.path;
      env['MMGRID_INPUT_NAME'] = input.name;
      env['MMGRID_INPUT_TYPE'] = input.type;
    }
    return env;
  }

  /**
   * Measures `{outdir}` every `outdirCheckMs` while the command runs; a file or a total over
   * its cap aborts the returned signal (which stops the command), and `overflow()` says why.
   * The returned signal also follows the task's own.
   */
  private watchOutdir(outdir: string, taskSignal: AbortSignal): { signal: AbortSignal; stop: () => void; overflow: () => TaskFailedError | undefined } {
    const over = new AbortController();
    let found: TaskFailedError | undefined;
    let busy = false;
    const check = async (): Promise<void> => {
      if (busy || found) return;
      busy = true;
      try {
        found = await this.measure(outdir);
        if (found) over.abort(found);
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(() => void check().catch(() => undefined), this.options.outdirCheckMs ?? 1000);
    return { signal: AbortSignal.any([taskSignal, over.signal]), stop: () => clearInterval(timer), overflow: () => found };
  }

  /** OUTPUT_TOO_LARGE when a file under `dir`, or all of them, pass their caps; links are not followed. */
  private async measure(dir: string): Promise<TaskFailedError | undefined> {
    let total = 0;
    const walk = async (rel: string): Promise<TaskFailedError | undefined> => {
      const entries = await readdir(path.join(dir, rel), { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        const relPath = rel === '' ? entry.name : `${rel}/${entry.name}`;
        if (entry.isDirectory()) {
          const inner = await walk(relPath);
          if (inner) return inner;
        } else if (entry.isFile()) {
          const size = (await lstat(path.join(dir, relPath)).catch(() => undefined))?.size ?? 0;
          if (size > this.config.maxFileBytes) return this.tooLarge(relPath, size);
          total += size;
          if (total > this.config.maxTotalFileBytes) return this.tooLargeTotal(total);
        }
      }
      return undefined;
    };
    return walk('');
  }

  private tooLarge(rel: string, size: number | string): TaskFailedError {
    const shown = typeof size === 'number' ? sizeText(size) : size;
    return new TaskFailedError('OUTPUT_TOO_LARGE', `${this.kind} wrote ${rel} of ${shown}; files in {outdir} may be ${sizeText(this.config.maxFileBytes)} at most (maxFileBytes)`, false);
  }

  private tooLargeTotal(total: number): TaskFailedError {
    return new TaskFailedError(
      'OUTPUT_TOO_LARGE',
      `${this.kind} wrote more than ${sizeText(this.config.maxTotalFileBytes)} in {outdir} (${sizeText(total)} so far); its files may be ${sizeText(this.config.maxTotalFileBytes)} at most together (maxTotalFileBytes)`,
      false,
    );
  }

  /**
   * One output file's bytes. Opened without following a link (O_NOFOLLOW) and checked on the
   * open handle, so a file swapped for a link, or one that grows, after the folder was listed
   * (by a process that left the command's group) is refused or read no further than the cap.
   */
  private async readOutput(outdir: string, rel: string): Promise<Buffer> {
    const cap = this.config.maxFileBytes;
    let handle: FileHandle;
    try {
      handle = await open(path.join(outdir, rel), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Changed after the folder was listed (by a process that left the command's group).
      if (code === 'ELOOP' || code === 'ENOTDIR') {
        throw new TaskFailedError('INVALID_OUTPUT', `${this.kind} replaced ${rel} in {outdir} with a link (links are not uploaded)`, false, { cause: err });
      }
      if (code === 'ENOENT') throw new TaskFailedError('INVALID_OUTPUT', `${this.kind} removed ${rel} from {outdir} while it was being uploaded`, false, { cause: err });
      throw err;
    }
    try {
      const info = await handle.stat();
      if (!info.isFile()) throw new TaskFailedError('INVALID_OUTPUT', `${this.kind} left ${rel} in {outdir}, which is not a plain file (links and devices are not uploaded)`, false);
      if (info.size > cap) throw this.tooLarge(rel, info.size);
      const bytes = Buffer.alloc(info.size);
      let at = 0;
      while (at < bytes.length) {
        const { bytesRead } = await handle.read(bytes, at, bytes.length - at, at);
        if (bytesRead === 0) break;
        at += bytesRead;
      }
      return bytes.subarray(0, at);
    } finally {
      await handle.close();
    }
  }

  private async upload(task: TaskContext, outdir: string): Promise<BlobRef[]> {
    const files = await outputFiles(this.kind, outdir);
    // The sizes as they are now (the running check may have missed the last second's writes).
    const overflow = await this.measure(outdir);
    if (overflow) throw overflow;
    const refs: BlobRef[] = [];
    for (const rel of files) {
      const bytes = await this.readOutput(outdir, rel);
      refs.push(await task.putBlob(bytes, rel, await mediaTypeOf(bytes, rel)));
    }
    return refs;
  }
}

/**
 * The backend serving one `backends.exec` entry of a worker config.
 *
 * @throws WorkerConfigError when the command has a placeholder it cannot fill
 */
export function createExecBackend(config: ExecBackendConfig, ctx: BackendContext, options: ExecBackendOptions = {}): Backend {
  let template: CommandTemplate;
  try {
    template = parseCommandTemplate(config.command);
  } catch (err) {
    if (err instanceof CommandTemplateError) throw new WorkerConfigError(`backends.exec (${config.kind}): command[${err.index}]: ${err.message}`);
    throw err;
  }
  // Without `cwd` the command runs in its task folder; a program named with a "/" is then
  // found relative to the config file's folder.
  const cwd = config.cwd !== undefined ? path.resolve(ctx.baseDir, config.cwd) : undefined;
  const lookupDir = cwd ?? ctx.baseDir;
  const workDir = options.workDir ?? ctx.workDir ?? tmpdir();
  const searchPath = config.env['PATH'] ?? (options.env ?? process.env)['PATH'] ?? DEFAULT_PATH;
  let resolved: Promise<string> | undefined;
  const program = (): Promise<string> => {
    resolved ??= resolveProgram(template.program, lookupDir, searchPath);
    // A failed look-up is tried again next time (the owner may install the program meanwhile).
    resolved.catch(() => (resolved = undefined));
    return resolved;
  };
  const handler = new ExecHandler(config, template, cwd, workDir, program, ctx, options);
  return {
    name: config.kind,
    type: 'exec',
    kinds: [config.kind],
    async check(): Promise<BackendCheck> {
      if (cwd !== undefined) {
        const dir = await stat(cwd).catch(() => undefined);
        if (!dir?.isDirectory()) throw new BackendUnavailableError(`the working directory ${cwd} (cwd) does not exist`);
      }
      try {
        await mkdir(workDir, { recursive: true, mode: 0o700 });
      } catch (err) {
        throw new BackendUnavailableError(`cannot make the work folder ${workDir} for task folders: ${(err as Error).message}`, { cause: err });
      }
      const file = await program();
      const where = file === template.program ? '' : `${file}, `;
      return { models: [], note: `${template.program} (${where}timeout ${config.timeoutSec}s)` };
    },
    handlers: () => [handler],
    close: () => handler.close(),
  };
}
