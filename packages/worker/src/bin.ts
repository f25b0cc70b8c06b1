#!/usr/bin/env node
import { hostname } from 'node:os';
import { Command, InvalidArgumentError, Option } from 'commander';
import { formatBytes, InvalidOptionError } from '@mmgrid/core';
import type { TaskHandler } from './backends/backend.js';
import { builtinHandlers } from './backends/builtin/index.js';
import { createLogger } from './logger.js';
import { WorkerDaemon } from './worker-daemon.js';
import { parseBytes, resolveWorkerOptions, type ResolvedWorkerOptions } from './worker-options.js';

function parseSlots(value: string): Record<string, number> {
  const slots: Record<string, number> = {};
  for (const part of value.split(',').map((p) => p.trim()).filter(Boolean)) {
    const match = /^([a-z0-9.-]+)=(\d+)$/.exec(part);
    if (!match?.[1] || !match[2]) throw new InvalidArgumentError(`"${part}" is not KIND=N (for example image.ocr=2)`);
    slots[match[1]] = Number(match[2]);
  }
  return slots;
}

function parseList(value: string): string[] {
  return value.split(',').map((p) => p.trim()).filter(Boolean);
}

const cpuKinds = builtinHandlers().map((h) => h.kind);

const program = new Command('mmgrid worker')
  .description('Run a worker daemon: connect to a coordinator and run tasks on this machine.')
  .addOption(
    new Option('--coordinator <host:port,…>', 'coordinator to connect to; several, comma-separated, are tried in turn').env('MMGRID_COORDINATOR').default('127.0.0.1:7070'),
  )
  .addOption(new Option('--token <token>', 'worker token from the grid operator').env('MMGRID_TOKEN'))
  .addOption(new Option('--name <name>', 'name shown in fleet views').default(hostname()))
  .addOption(new Option('--state-dir <dir>', 'where the worker id and blob cache live').env('MMGRID_WORKER_STATE_DIR'))
  .addOption(new Option('--kinds <list>', `task kinds to run, comma-separated (default: all of ${cpuKinds.join(', ')}, and audio.transcribe with --transcribe-url)`).argParser(parseList))
  .addOption(new Option('--slots <list>', 'tasks run at once per kind, e.g. image.ocr=2,audio.analyze=1').argParser(parseSlots))
  .addOption(new Option('--drain-grace-ms <ms>', 'on SIGTERM, how long running tasks may finish').argParser((v) => Number(v)))
  .addOption(
    new Option('--vram-budget <size>', 'GPU memory the grid may use, e.g. 12GiB (default: all of it)').argParser((v) => {
      const bytes = parseBytes(v);
      if (bytes === undefined) throw new InvalidArgumentError(`"${v}" is not a size (for example 12GiB or 512MiB)`);
      return bytes;
    }),
  )
  .option('--cpu-only', 'offer no GPU, even when one is present', false)
  .addOption(new Option('--nvidia-smi <path>', 'the nvidia-smi to ask about GPUs').env('MMGRID_NVIDIA_SMI').default('nvidia-smi'))
  .addOption(
    new Option('--transcribe-url <url>', 'a speech-to-text server speaking the OpenAI transcription API (whisper.cpp, faster-whisper…): runs audio.transcribe').env(
      'MMGRID_TRANSCRIBE_URL',
    ),
  )
  .addOption(new Option('--transcribe-model <name>', 'model to ask the speech-to-text server for').env('MMGRID_TRANSCRIBE_MODEL').default('whisper-1'))
  .addOption(new Option('--transcribe-api-key <key>', 'bearer token for the speech-to-text server').env('MMGRID_TRANSCRIBE_API_KEY'))
  .showHelpAfterError();

program.parse();
const flags = program.opts<{
  coordinator: string;
  token?: string;
  name: string;
  stateDir?: string;
  kinds?: string[];
  slots?: Record<string, number>;
  drainGraceMs?: number;
  vramBudget?: number;
  cpuOnly: boolean;
  nvidiaSmi: string;
  transcribeUrl?: string;
  transcribeModel: string;
  transcribeApiKey?: string;
}>();

let options: ResolvedWorkerOptions;
let handlers: TaskHandler[];
try {
  handlers = builtinHandlers({
    transcribe:
      flags.transcribeUrl !== undefined
        ? { url: flags.transcribeUrl, model: flags.transcribeModel, ...(flags.transcribeApiKey !== undefined ? { apiKey: flags.transcribeApiKey } : {}) }
        : undefined,
  });
  options = resolveWorkerOptions(
    {
      coordinator: flags.coordinator,
      name: flags.name,
      ...(flags.token !== undefined ? { token: flags.token } : {}),
      ...(flags.stateDir !== undefined ? { stateDir: flags.stateDir } : {}),
      ...(flags.kinds !== undefined ? { kinds: flags.kinds } : {}),
      ...(flags.slots !== undefined ? { slots: flags.slots } : {}),
      ...(flags.drainGraceMs !== undefined ? { drainGraceMs: flags.drainGraceMs } : {}),
      ...(flags.vramBudget !== undefined ? { vramBudgetBytes: flags.vramBudget } : {}),
      cpuOnly: flags.cpuOnly,
      nvidiaSmi: flags.nvidiaSmi,
    },
    handlers.map((h) => h.kind),
    hostname(),
  );
} catch (err) {
  if (err instanceof InvalidOptionError) {
    process.stderr.write(`mmgrid worker: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}

const logger = createLogger('worker', { worker: options.name });
const daemon = new WorkerDaemon(options, handlers, logger);
await daemon.start();
const summary = options.kinds
  .map((kind) => `${kind}×${options.slots[kind] ?? 1} (${handlers.find((h) => h.kind === kind)?.description ?? ''})`)
  .join('; ');
const { gpus, note, vramBudgetBytes } = daemon.gpuSummary;
const gpuText =
  gpus.length === 0
    ? `no GPU (${note}); CPU kinds only`
    : `${gpus.map((g) => `${g.name} (${formatBytes(g.memoryTotalBytes)}, compute ${g.computeCapability || '?'})`).join(', ')}; grid may use ${formatBytes(vramBudgetBytes)} of GPU memory`;
logger.info(
  { workerId: daemon.id, coordinators: options.coordinators, stateDir: options.stateDir },
  `mmgrid worker ${options.name}: ${gpuText}; offering ${summary}; connecting to ${options.coordinators.join(' or ')}`,
);
daemon.on('connected', () => process.send?.({ type: 'connected', workerId: daemon.id }));

let signals = 0;
const onSignal = (signal: NodeJS.Signals): void => {
  signals += 1;
  if (signals > 1) {
    logger.warn({ signal }, 'second signal: stopping now; running tasks will run elsewhere');
    process.exit(130);
  }
  daemon.drain().then(
    () => process.exit(0),
    (err: unknown) => {
      logger.error({ err: String(err) }, 'drain failed');
      process.exit(1);
    },
  );
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
process.on('disconnect', () => onSignal('SIGTERM'));
