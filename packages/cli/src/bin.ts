#!/usr/bin/env node
import { createRequire } from 'node:module';
import { Argument, Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_COORDINATOR, hideTlsServerNameIpWarning, MmgridClientError } from '@mmgrid/client';
import { builtinPipelines, InvalidOptionError, ROLES } from '@mmgrid/core';
import { cancel, explain, result, retry, status, submit, watch, type WatchFlags } from './commands/jobs.js';
import { DEFAULT_LIST_LIMIT, JOB_STATES, listJobs, listQueues, type ListFlags } from './commands/fleet.js';
import { demo, dev, launch } from './commands/grid.js';
import { createToken, listTokens, revokeToken } from './commands/tokens.js';
import { listWorkers, releaseWorker } from './commands/workers.js';
import { configPath, configProfiles, configSet, configShow, configUse, type ConfigCommandContext } from './commands/config.js';
import { completionScript, SHELLS, type Shell } from './completion.js';
import { PROFILE_KEYS } from './config.js';
import { globalOptions } from './global-settings.js';
import { CommandContext, type GlobalOptions } from './context.js';
import { CliError } from './errors.js';
import { formatPipelines } from './format.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';

const require = createRequire(import.meta.url);
hideTlsServerNameIpWarning();
// `mmgrid list | head -1`: the reader has gone, and there is nobody left to tell. Stop quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}

// Run as `pnpm mmgrid …`, file arguments are relative to where the user typed the command.
if (process.env['npm_lifecycle_event'] === 'mmgrid' && process.env['INIT_CWD']) process.chdir(process.env['INIT_CWD']);
const VERSION = (require('../package.json') as { version: string }).version;

function integer(name: string, min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
    return n;
  };
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const program = new Command('mmgrid')
  .description('mmgrid: an open compute grid for multimodal AI work')
  .version(VERSION, '-V, --version', 'print the version')
  .addOption(new Option('--coordinator <host:port>', 'coordinator to talk to').env('MMGRID_COORDINATOR').default(DEFAULT_COORDINATOR))
  .addOption(new Option('--token <token>', 'bearer token').env('MMGRID_TOKEN'))
  .addOption(new Option('--tenant <tenant>', 'tenant to act for, on a grid without tokens (or as an admin); the tenant of a new submitter token').env('MMGRID_TENANT'))
  // --tls and --insecure read MMGRID_TLS and MMGRID_INSECURE in CommandContext (commander would take "false" as true).
  .option('--tls', 'use TLS even to a loopback address (env: MMGRID_TLS=true); TLS is the default for any other address')
  .option('--insecure', 'use plaintext even to another machine (env: MMGRID_INSECURE=true)')
  .addOption(new Option('--ca <file>', "PEM CA certificates to trust for the coordinator's certificate (default: the system's)").env('MMGRID_CA'))
  .addOption(new Option('--cert <file>', 'PEM client certificate, for a coordinator that requires mutual TLS').env('MMGRID_CERT'))
  .addOption(new Option('--key <file>', 'PEM private key of --cert').env('MMGRID_CERT_KEY'))
  .addOption(new Option('--tls-server-name <name>', "name the coordinator's certificate carries, when the address's host is another").env('MMGRID_TLS_SERVER_NAME'))
  .addOption(new Option('--profile <name>', 'profile of the config file to use (default: its current-profile, else "default")').env('MMGRID_PROFILE'))
  .addOption(new Option('--config <file>', 'config file (default: $XDG_CONFIG_HOME/mmgrid/config.yaml or ~/.config/mmgrid/config.yaml)').env('MMGRID_CONFIG'))
  .option('--json', 'print data as JSON (stable shapes, see docs/cli.md)')
  .option('-q, --quiet', 'print no progress notes on stderr')
  .option('--debug', 'print stack traces for errors')
  // A usage error is one line and a pointer to --help, not the whole help.
  .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'mmgrid: ')) })
  .showHelpAfterError('(add --help for usage)')
  // A command's help lists the options every command takes too (--json, --coordinator…).
  .configureHelp({ showGlobalOptions: true })
  .addHelpText(
    'after',
    `
Examples:
  mmgrid dev                                             a local grid (redis, coordinator, 2 workers)
  mmgrid submit photo.png talk.wav -p "What is wrong?" --watch
  mmgrid submit -f job.yaml --wait --json                 for scripts: the job as JSON, exit 0 when it completed
  mmgrid list --state running,queued
  mmgrid result JOB -o out/

Settings come from flags, then MMGRID_* variables, then the config file's profile
(mmgrid config show). Exit codes: 0 ok, 1 job failed, 2 usage, 3 not found,
4 unauthenticated, 5 unavailable, 6 limit, 7 not ready, 70 internal error,
130 detached (docs/cli.md).`,
  )
  .exitOverride();

let exitCode: number = ExitCode.OK;
/** --json, --quiet and --debug (absent: off). */
const outputFlags = (): { json: boolean; quiet: boolean; debug: boolean } => {
  const o = program.opts<{ json?: boolean; quiet?: boolean; debug?: boolean }>();
  return { json: o.json === true, quiet: o.quiet === true, debug: o.debug === true };
};
// Flags, then the environment, then the config file's profile (see config.ts).
const context = (): CommandContext => new CommandContext(globalOptions(program, process.env, (message) => void process.stderr.write(`${message}\n`)));
const run = (fn: (ctx: CommandContext) => Promise<number>) => async (): Promise<void> => {
  const ctx = context();
  try {
    exitCode = await fn(ctx);
  } finally {
    ctx.close();
  }
};

program
  .command('submit')
  .helpGroup('Jobs:')
  .description('upload files and submit a job (modality is detected from each file\'s bytes)')
  .argument('[files...]', 'images, recordings, videos, text files')
  .option('-f, --file <job.yaml>', 'a job file: inputs, prompt, and a pipeline or declared steps (see docs/job-files.md)')
  .option('-p, --prompt <text>', 'what you want to know about the inputs')
  .option('--pipeline <name>', 'built-in pipeline (see: mmgrid pipelines)')
  .option('--priority <n>', 'from -10 to 10; higher runs sooner', integer('--priority', -10, 10))
  .option('--label <key=value>', 'a label for your own bookkeeping (repeatable)', collect)
  .option('--param <name=value>', 'a pipeline parameter (repeatable; see: mmgrid pipelines)', collect)
  .option('--idempotency-key <key>', 'retrying with the same key returns the same job')
  .option('-w, --wait', 'wait for the job to end and print its result')
  .option('--watch', 'follow the job with progress bars (on a terminal), then print its result')
  .option('--cancel-on-interrupt', 'with --watch, Ctrl-C cancels the job (without it, Ctrl-C only detaches)')
  .action(async (files: string[], flags: Parameters<typeof submit>[2]) => run((ctx) => submit(ctx, files, flags))());

program
  .command('list')
  .helpGroup('Jobs:')
  .description('list your jobs, newest first, a page at a time (an admin lists another tenant\'s with --tenant)')
  .addOption(
    // The states are its choices (for help and completion), but it also takes "running,queued":
    // its own parser collects, and listJobs checks each state.
    new Option('--state <state>', 'only jobs in this state (repeatable or comma-separated)').choices(JOB_STATES).argParser(collect),
  )
  .option('--pipeline <name>', 'only jobs of this pipeline')
  .option('--limit <n>', `jobs a page (default: ${DEFAULT_LIST_LIMIT})`, integer('--limit', 1, 500))
  .option('--page-token <token>', 'list the page after the one that printed this token')
  .option('--all', 'follow the pages to the end')
  .action(async (flags: ListFlags) => run((ctx) => listJobs(ctx, flags))());

program
  .command('status')
  .helpGroup('Jobs:')
  .description("show a job's state and its tasks")
  .argument('<job>', 'job id')
  .action(async (job: string) => run((ctx) => status(ctx, job))());

program
  .command('result')
  .helpGroup('Jobs:')
  .description("print a finished job's result")
  .argument('<job>', 'job id')
  .option('-o, --output <dir>', 'also write result.json, summary.txt and the result\'s blobs into DIR')
  .option('-w, --wait', 'wait for the job to end first')
  .action(async (job: string, flags: { output?: string; wait?: boolean }) => run((ctx) => result(ctx, job, flags))());

program
  .command('watch')
  .helpGroup('Jobs:')
  .description("follow a job's events until it ends")
  .argument('<job>', 'job id')
  .option('--cancel-on-interrupt', 'Ctrl-C cancels the job (without it, Ctrl-C only detaches)')
  .action(async (job: string, flags: WatchFlags) => run((ctx) => watch(ctx, job, flags))());

program
  .command('cancel')
  .helpGroup('Jobs:')
  .description('cancel a job: queued tasks are removed, running ones stopped')
  .argument('<job>', 'job id')
  .option('--reason <text>', 'why (recorded with the job)')
  .action(async (job: string, flags: { reason?: string }) => run((ctx) => cancel(ctx, job, flags.reason))());

program
  .command('retry')
  .helpGroup('Jobs:')
  .description('run the failed tasks of an ended job again (and the steps that use them), keeping what succeeded')
  .argument('<job>', 'job id')
  .option('-w, --wait', 'wait for the job to end and print its result')
  .option('--watch', 'follow the job with progress bars (on a terminal), then print its result')
  .option('--cancel-on-interrupt', 'with --watch, Ctrl-C cancels the job (without it, Ctrl-C only detaches)')
  .action(async (job: string, flags: { wait?: boolean } & WatchFlags) => run((ctx) => retry(ctx, job, flags.wait === true, flags))());

program
  .command('explain')
  .helpGroup('Jobs:')
  .description('say, per task, why it waits (or where it runs)')
  .argument('<job>', 'job id')
  .action(async (job: string) => run((ctx) => explain(ctx, job))());

program
  .command('queues')
  .helpGroup('The grid (admin):')
  .description('show the task queues: waiting, active, delayed and failed tasks per kind, and the oldest wait (needs an admin token)')
  .option('--by-queue', 'one row a queue (kind, requirement class and tenant) instead of one a kind')
  .action(async (flags: { byQueue?: boolean }) => run((ctx) => listQueues(ctx, flags))());

const token = program.command('token').helpGroup('The grid (admin):').description('manage the grid\'s tokens (needs an admin token; see docs/security.md)');

token
  .command('create')
  .description('issue a token and print it (once: only its hash is kept); a submitter token acts for --tenant')
  .addOption(new Option('--role <role>', 'what the token may do').choices(ROLES).makeOptionMandatory())
  .option('--name <name>', 'a label for people (the worker\'s host, the CI job…)')
  .option('--expires <duration>', 'how long it is valid: 30d, 12h, 90m, 3600s, 2w or "never"', 'never')
  .addHelpText('after', '\nThe global --tenant <tenant> option names the tenant of a submitter token (default: the default tenant).')
  .action(async (flags: { role: string; name?: string; expires?: string }) =>
    run((ctx) => createToken(ctx, flags, program.getOptionValueSource('tenant') === 'cli' ? program.opts<GlobalOptions>().tenant : undefined))(),
  );

token
  .command('list')
  .description('list the grid\'s tokens (never the tokens themselves)')
  .option('--all', 'include revoked tokens')
  .action(async (flags: { all?: boolean }) => run((ctx) => listTokens(ctx, flags))());

token
  .command('revoke')
  .description('revoke a token at once: its calls are refused and workers using it are disconnected (their tasks run elsewhere)')
  .argument('<id>', 'token id (tok_…, see: mmgrid token list)')
  .action(async (id: string) => run((ctx) => revokeToken(ctx, id))());

const workers = program
  .command('workers')
  .helpGroup('The grid (admin):')
  .description('list the connected workers: GPUs, free VRAM, kinds, busy slots, state, last heartbeat, and trust under result verification (needs an admin token)')
  .action(async () => run((ctx) => listWorkers(ctx))());

workers
  .command('release')
  .description("lift a worker's quarantine (result verification): it gets tasks again, with a fresh trust record")
  .argument('<id>', 'worker id (see: mmgrid workers)')
  .action(async (id: string) => run((ctx) => releaseWorker(ctx, id))());

program
  .command('pipelines')
  .helpGroup('Jobs:')
  .description('list the built-in pipelines, their steps and parameters')
  .action(() => {
    if (outputFlags().json) process.stdout.write(`${JSON.stringify(builtinPipelines(), null, 2)}\n`);
    else process.stdout.write(`${formatPipelines(builtinPipelines())}\n`);
  });

program
  .command('dev')
  .helpGroup('Run a grid:')
  .description('run a local grid in the foreground: redis (private unless REDIS_URL is set), a coordinator and workers')
  .option('--workers <n>', 'worker processes', integer('--workers', 0, 64), 2)
  .option('--port <port>', 'coordinator port (0: any free port)', integer('--port', 0, 65535), 7070)
  .option('--data-dir <dir>', 'where redis data, blobs and worker state live', '.mmgrid/dev')
  .action(async (flags: { workers: number; port: number; dataDir: string }) => run((ctx) => dev(ctx, flags))());

program
  .command('demo')
  .helpGroup('Run a grid:')
  .description('run the sample job (a receipt photo, a spoken complaint, a prompt) on a temporary local grid')
  .option('--workers <n>', 'worker processes', integer('--workers', 1, 16), 2)
  .action(async (flags: { workers: number }) => run((ctx) => demo(ctx, flags))());

program
  .command('coordinator')
  .helpGroup('Run a grid:')
  .description('run a coordinator replica (see: mmgrid coordinator --help)')
  .helpOption(false)
  .allowUnknownOption()
  .allowExcessArguments()
  .argument('[args...]')
  .action(async (args: string[]) => {
    // --insecure is also mmgrid's own option (commander hands it to the parent): give it back.
    exitCode = await launch('@mmgrid/coordinator', [...forwardedTransport(['insecure']), ...args]);
  });

program
  .command('worker')
  .helpGroup('Run a grid:')
  .description('run a worker daemon on this machine (see: mmgrid worker --help)')
  .helpOption(false)
  .allowUnknownOption()
  .allowExcessArguments()
  .argument('[args...]')
  .action(async (args: string[]) => {
    // --coordinator, --token and --config are also mmgrid's own options, so commander hands them to the
    // parent command: give them back to the worker.
    const forwarded: string[] = [];
    const globals = program.opts<GlobalOptions>();
    if (program.getOptionValueSource('coordinator') === 'cli') forwarded.push('--coordinator', globals.coordinator);
    if (program.getOptionValueSource('token') === 'cli' && globals.token !== undefined) forwarded.push('--token', globals.token);
    // The worker's --config (its worker.yaml) has the name of mmgrid's own.
    const configFile = program.opts<{ config?: string }>().config;
    if (program.getOptionValueSource('config') === 'cli' && configFile !== undefined) forwarded.push('--config', configFile);
    forwarded.push(...forwardedTransport(['tls', 'insecure', 'ca', 'cert', 'key', 'tlsServerName']));
    exitCode = await launch('@mmgrid/worker', [...forwarded, ...args]);
  });

const configContext = (): ConfigCommandContext => {
  const { json, quiet } = outputFlags();
  return { program, env: process.env, json, quiet };
};

const config = program
  .command('config')
  .helpGroup('Setup:')
  .description('show and change the settings of the config file (profiles: coordinator, token, TLS files)');

config
  .command('show')
  .description('the settings in effect and where each came from (flag, env, profile, default); the token masked')
  .action(() => void (exitCode = configShow(configContext())));

config
  .command('profiles')
  .description('list the profiles of the config file, the one in use marked *')
  .action(() => void (exitCode = configProfiles(configContext())));

config
  .command('path')
  .description('print the path of the config file in use')
  .action(() => void (exitCode = configPath(configContext())));

config
  .command('set')
  .description('set a key of a profile (the one in use, or the global --profile NAME, created if new)')
  .addArgument(new Argument('<key>', 'what to set').choices(PROFILE_KEYS))
  .argument('<value>', 'its value (true or false for tls and insecure; file paths are stored absolute)')
  .action(async (key: string, value: string) => void (exitCode = await configSet(configContext(), key, value)));

config
  .command('use')
  .description('make a profile the current one (current-profile in the file)')
  .argument('<profile>', 'profile name (see: mmgrid config profiles)')
  .action(async (name: string) => void (exitCode = await configUse(configContext(), name)));

program
  .command('completion')
  .helpGroup('Setup:')
  .description('print a shell completion script (bash, zsh or fish)')
  .addArgument(new Argument('<shell>', 'bash, zsh or fish').choices(SHELLS))
  .addHelpText(
    'after',
    `
Install:
  bash:  source <(mmgrid completion bash)              (add it to ~/.bashrc to keep it)
  zsh:   mmgrid completion zsh > "\${fpath[1]}/_mmgrid"  (then start a new shell)
  fish:  mmgrid completion fish > ~/.config/fish/completions/mmgrid.fish`,
  )
  .action((shell: Shell) => void process.stdout.write(completionScript(program, shell)));

program
  .command('version')
  .helpGroup('Setup:')
  .description('print the version')
  .action(() => {
    if (outputFlags().json) process.stdout.write(`${JSON.stringify({ version: VERSION, node: process.version })}\n`);
    else process.stdout.write(`mmgrid ${VERSION} (node ${process.version})\n`);
  });

program.commandsGroup('Setup:').helpCommand('help [command]', 'help for a command');

try {
  await program.parseAsync();
} catch (err) {
  exitCode = report(err);
}
process.exitCode = exitCode;

/** The transport options given on the command line (not from the environment), as flags again. */
function forwardedTransport(names: readonly ('tls' | 'insecure' | 'ca' | 'cert' | 'key' | 'tlsServerName')[]): string[] {
  const flags: Record<string, string> = { tls: '--tls', insecure: '--insecure', ca: '--ca', cert: '--cert', key: '--key', tlsServerName: '--tls-server-name' };
  const values = program.opts<Record<string, string | boolean | undefined>>();
  const out: string[] = [];
  for (const name of names) {
    const value = values[name];
    if (program.getOptionValueSource(name) !== 'cli' || value === undefined || value === false) continue;
    out.push(flags[name] ?? '', ...(typeof value === 'string' ? [value] : []));
  }
  return out;
}

/** What to do next, after the coordinator's own words, where the CLI knows better. */
function hintFor(err: MmgridClientError): string {
  // An unknown job: say where the known ones are.
  if (err.code === 'NOT_FOUND' && /^job \S+ not found/.test(err.message)) return ' (your jobs: mmgrid list)';
  // No token, or one the grid refuses: where a token goes, and who makes one.
  if (err.code === 'UNAUTHENTICATED') {
    const make = 'an admin makes one with: mmgrid token create --role submitter';
    return /MMGRID_TOKEN/.test(err.message) ? `, or a profile (mmgrid config set token TOKEN); ${make}` : `. Give a token with --token, MMGRID_TOKEN or a profile (mmgrid config set token TOKEN); ${make}`;
  }
  return '';
}

/** The one place where errors become a sentence and an exit code. */
function report(err: unknown): number {
  const { debug } = outputFlags();
  if (err instanceof CommanderError) {
    // Commander has already printed the usage error (or help/version output).
    return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
  }
  if (err instanceof InvalidOptionError) {
    // Named as the user gives it: the flag, its variable, or the profile's key.
    const flag = `--${err.option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
    const env = `MMGRID_${err.option.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
    process.stderr.write(`mmgrid: ${flag} (or ${env}, or a profile's ${flag.slice(2)}) must be ${err.allowed} (got ${JSON.stringify(err.value)})\n`);
    return ExitCode.USAGE;
  }
  if (err instanceof CliError || err instanceof MmgridClientError) {
    // An unknown job: say where the known ones are.
    const hint = err instanceof MmgridClientError ? hintFor(err) : '';
    process.stderr.write(`mmgrid: ${err.message}${hint}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    return err instanceof CliError ? err.exitCode : exitCodeFor(err.code);
  }
  process.stderr.write(`mmgrid: unexpected error: ${err instanceof Error ? err.message : String(err)}\n`);
  if (debug && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  else process.stderr.write('mmgrid: run again with --debug for details\n');
  return ExitCode.INTERNAL;
}
