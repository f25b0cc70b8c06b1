#!/usr/bin/env node
import { hostname } from 'node:os';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { FLAG_SETTING_NAMES, hideTlsServerNameIpWarning, loadClientTlsFiles, MmgridClientError, resolveTransport } from '@mmgrid/client';
import { booleanEnv, formatBytes, InvalidOptionError, isLoopbackHost, parseCoordinatorAddress } from '@mmgrid/core';
import type { Backend, TaskHandler } from './backends/backend.js';
import { TranscribeBackend } from './backends/builtin/audio-transcribe.js';
import { removeStaleTaskFolders } from './backends/exec/exec-backend.js';
import { checkBackends, createBackends } from './backends/registry.js';
import { loadWorkerConfig, WorkerConfigError, type WorkerConfig } from './worker-config.js';
import { builtinHandlers } from './backends/builtin/index.js';
import { MetricsListenError } from './errors.js';
import { createLogger, type Logger } from './logger.js';
import { WorkerMetrics } from './metrics.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';
import { WorkerDaemon } from './worker-daemon.js';
import { DEFAULT_METRICS_LISTEN, defaultStateDir, parseBytes, resolveWorkerOptions, type ResolvedWorkerOptions } from './worker-options.js';

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
hideTlsServerNameIpWarning();

const program = new Command('mmgrid worker')
  .description('Run a worker daemon: connect to a coordinator and run tasks on this machine.')
  .addOption(new Option('--config <worker.yaml>', 'a config file: these options, and the model servers to connect (see docs/worker.md)').env('MMGRID_WORKER_CONFIG'))
  .addOption(
    new Option('--coordinator <host:port,…>', 'coordinator to connect to; several, comma-separated, are tried in turn (default: 127.0.0.1:7070)').env('MMGRID_COORDINATOR'),
  )
  .addOption(new Option('--token <token>', 'worker token from the grid operator').env('MMGRID_TOKEN'))
  // Not .env(): commander would take MMGRID_TLS=false as true; both are read below instead.
  .option('--tls', 'connect with TLS even to a loopback address (env: MMGRID_TLS=true); TLS is the default for any other address')
  .option('--insecure', 'connect in plaintext even to another machine (env: MMGRID_INSECURE=true)')
  .addOption(new Option('--ca <file>', "PEM CA certificates to trust for the coordinator's certificate (default: the system's)").env('MMGRID_CA'))
  .addOption(new Option('--cert <file>', "PEM client certificate of this worker, for a coordinator that requires mutual TLS").env('MMGRID_CERT'))
  .addOption(new Option('--key <file>', 'PEM private key of --cert').env('MMGRID_CERT_KEY'))
  .addOption(new Option('--tls-server-name <name>', "name the coordinator's certificate carries, when the address's host is another").env('MMGRID_TLS_SERVER_NAME'))
  .addOption(new Option('--name <name>', `name shown in fleet views (default: ${hostname()})`))
  .addOption(new Option('--state-dir <dir>', 'where the worker id and blob cache live').env('MMGRID_WORKER_STATE_DIR'))
  .addOption(new Option('--kinds <list>', `task kinds to run, comma-separated (default: ${cpuKinds.join(', ')}, and those of the backends that pass their check)`).argParser(parseList))
  .addOption(new Option('--slots <list>', 'tasks run at once per kind, e.g. image.ocr=2,audio.analyze=1').argParser(parseSlots))
  .addOption(new Option('--drain-grace-ms <ms>', 'on SIGTERM, how long running tasks may finish').argParser((v) => Number(v)))
  .addOption(
    new Option('--vram-budget <size>', 'GPU memory the grid may use, e.g. 12GiB (default: all of it)').argParser((v) => {
      const bytes = parseBytes(v);
      if (bytes === undefined) throw new InvalidArgumentError(`"${v}" is not a size (for example 12GiB or 512MiB)`);
      return bytes;
    }),
  )
  .option('--cpu-only', 'offer no GPU, even when one is present')
  .addOption(new Option('--nvidia-smi <path>', 'the nvidia-smi to ask about GPUs (default: nvidia-smi)').env('MMGRID_NVIDIA_SMI'))
  .addOption(
    new Option('--metrics-listen <host:port>', `where to serve /metrics (Prometheus) and /healthz, or "off" (default: ${DEFAULT_METRICS_LISTEN}, this machine only)`).env(
      'MMGRID_WORKER_METRICS_LISTEN',
    ),
  )
  .addOption(
    new Option('--transcribe-url <url>', 'a speech-to-text server speaking the OpenAI transcription API (whisper.cpp, faster-whisper…): runs audio.transcribe').env(
      'MMGRID_TRANSCRIBE_URL',
    ),
  )
  .addOption(new Option('--transcribe-model <name>', 'model to ask the speech-to-text server for (default: whisper-1)').env('MMGRID_TRANSCRIBE_MODEL'))
  .addOption(new Option('--transcribe-api-key <key>', 'bearer token for the speech-to-text server').env('MMGRID_TRANSCRIBE_API_KEY'))
  .showHelpAfterError();

program.parse();
const flags = program.opts<{
  config?: string;
  coordinator?: string;
  token?: string;
  tls?: boolean;
  insecure?: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  tlsServerName?: string;
  name?: string;
  stateDir?: string;
  kinds?: string[];
  slots?: Record<string, number>;
  drainGraceMs?: number;
  vramBudget?: number;
  cpuOnly?: boolean;
  nvidiaSmi?: string;
  metricsListen?: string;
  transcribeUrl?: string;
  transcribeModel?: string;
  transcribeApiKey?: string;
}>();

function usage(message: string): never {
  process.stderr.write(`mmgrid worker: ${message}\n`);
  process.exit(2);
}

let config: WorkerConfig | undefined;
if (flags.config !== undefined) {
  try {
    config = await loadWorkerConfig(flags.config);
  } catch (err) {
    if (err instanceof WorkerConfigError) usage(err.message);
    throw err;
  }
}

let logger: Logger;
try {
  logger = createLogger('worker', { worker: flags.name ?? config?.name ?? hostname() });
} catch (err) {
  if (err instanceof InvalidOptionError) usage(err.message);
  throw err;
}

// Command-line options win over the config file.
let backends: Backend[];
try {
  const sections = config?.backends ?? { transcribe: [], chat: [], onnx: [], kserve: [], exec: [] };
  // --transcribe-url replaces the config's speech-to-text servers (the command line wins).
  // Exec commands run in task folders under the state folder (same disk as the blob cache, so
  // inputs are copied cheaply, reflinked where the file system can).
  const workDir = path.join(path.resolve(flags.stateDir ?? config?.stateDir ?? defaultStateDir()), 'work');
  // Task folders a killed run left behind (kept ones, keepTaskDir, stay).
  const stale = await removeStaleTaskFolders(workDir);
  if (stale > 0) logger.info({ workDir, removed: stale }, `removed ${stale} task folder(s) a previous run left in ${workDir}`);
  backends = createBackends(flags.transcribeUrl !== undefined ? { ...sections, transcribe: [] } : sections, { baseDir: config?.baseDir ?? process.cwd(), logger, workDir });
  if (flags.transcribeUrl !== undefined) {
    backends.unshift(new TranscribeBackend({ name: 'transcribe-url', url: flags.transcribeUrl, model: flags.transcribeModel ?? 'whisper-1', apiKey: flags.transcribeApiKey }));
  }
} catch (err) {
  if (err instanceof InvalidOptionError || err instanceof WorkerConfigError) usage(err.message);
  throw err;
}
const checked = await checkBackends(backends);
const metrics = new WorkerMetrics();
for (const { backend } of checked.ready) metrics.backendChecked(backend, true);
for (const { backend, reason } of checked.failed) {
  metrics.backendChecked(backend, false);
  logger.warn({ backend: backend.name, type: backend.type }, `backend ${backend.name} (${backend.type}) is left out: ${reason}; its kinds (${backend.kinds.join(', ') || 'none'}) are not offered`);
}
const handlers: TaskHandler[] = [...builtinHandlers(), ...checked.ready.flatMap(({ backend }) => backend.handlers())];

let options: ResolvedWorkerOptions;
try {
  const vramBudgetBytes = flags.vramBudget ?? config?.vramBudget;
  const drainGraceMs = flags.drainGraceMs ?? (config?.drainGraceSec !== undefined ? config.drainGraceSec * 1000 : undefined);
  const token = flags.token ?? config?.token;
  const stateDir = flags.stateDir ?? config?.stateDir;
  const kinds = flags.kinds ?? config?.kinds;
  const slots = flags.slots ?? config?.slots;
  const metricsListen = flags.metricsListen ?? config?.metricsListen;
  // Files named in the config file are relative to it.
  const fromConfig = (file: string | undefined): string | undefined => (file !== undefined && config ? path.resolve(config.baseDir, file) : file);
  const caFile = flags.ca ?? fromConfig(config?.ca);
  const certFile = flags.cert ?? fromConfig(config?.cert);
  const keyFile = flags.key ?? fromConfig(config?.key);
  const tlsServerName = flags.tlsServerName ?? config?.tlsServerName;
  const tls = transportFlag(flags.tls ?? booleanEnv('MMGRID_TLS', process.env['MMGRID_TLS']), flags.insecure ?? booleanEnv('MMGRID_INSECURE', process.env['MMGRID_INSECURE'])) ??
    transportFlag(config?.tls, config?.insecure);
  options = resolveWorkerOptions(
    {
      coordinator: flags.coordinator ?? config?.coordinator ?? '127.0.0.1:7070',
      ...(tls !== undefined ? { tls } : {}),
      ...(caFile !== undefined ? { caFile } : {}),
      ...(certFile !== undefined ? { certFile } : {}),
      ...(keyFile !== undefined ? { keyFile } : {}),
      ...(tlsServerName !== undefined ? { tlsServerName } : {}),
      name: flags.name ?? config?.name ?? hostname(),
      ...(token !== undefined ? { token } : {}),
      ...(stateDir !== undefined ? { stateDir } : {}),
      ...(kinds !== undefined ? { kinds } : {}),
      ...(slots !== undefined ? { slots } : {}),
      ...(metricsListen !== undefined ? { metricsListen } : {}),
      ...(drainGraceMs !== undefined ? { drainGraceMs } : {}),
      ...(vramBudgetBytes !== undefined ? { vramBudgetBytes } : {}),
      cpuOnly: flags.cpuOnly ?? config?.cpuOnly ?? false,
      nvidiaSmi: flags.nvidiaSmi ?? config?.nvidiaSmi ?? 'nvidia-smi',
    },
    handlers.map((h) => h.kind),
    hostname(),
  );
  // Messages about the connection name this command's flags.
  options = { ...options, connection: { ...options.connection, settingNames: FLAG_SETTING_NAMES } };
  // Each address's transport, and the TLS files, checked now so a mistake stops the worker at start.
  for (const address of options.coordinators) {
    const { transport } = resolveTransport({ address, ...options.connection });
    if (transport === 'tls') loadClientTlsFiles(options.connection, new Date(), FLAG_SETTING_NAMES);
    else if (!isLoopbackAddress(address)) {
      logger.warn({ coordinator: address }, `connecting to ${address} in plaintext (--insecure): the token, inputs and results cross the network unencrypted`);
    }
  }
} catch (err) {
  if (err instanceof InvalidOptionError || err instanceof MmgridClientError) usage(err.message);
  throw err;
}

/** --tls and --insecure (or tls and insecure in the config) as one setting; both is a mistake. */
function transportFlag(tls: boolean | undefined, insecure: boolean | undefined): boolean | undefined {
  if (tls === true && insecure === true) usage('--tls and --insecure (or MMGRID_TLS and MMGRID_INSECURE) contradict each other; give one');
  if (insecure === true) return false;
  if (tls === true) return true;
  return undefined;
}

function isLoopbackAddress(address: string): boolean {
  return isLoopbackHost(parseCoordinatorAddress('coordinator', address).host);
}

const daemon = new WorkerDaemon(options, handlers, logger, metrics);
// Metrics are for the owner; a worker that cannot serve them still serves the grid.
let metricsServer: MetricsServer | undefined;
if (options.metricsListen) {
  try {
    metricsServer = await startMetricsServer(options.metricsListen, metrics, () => daemon.health);
  } catch (err) {
    if (!(err instanceof MetricsListenError)) throw err;
    logger.warn({ metricsListen: err.address }, `${err.message}; running without /metrics (choose another with --metrics-listen, or "off")`);
  }
}
const metricsText = metricsServer ? `metrics on http://${metricsServer.address}/metrics` : options.metricsListen ? 'no metrics (see above)' : 'metrics off';
await daemon.start();
const summary = options.kinds
  .map((kind) => `${kind}×${options.slots[kind] ?? 1} (${handlers.find((h) => h.kind === kind)?.description ?? ''})`)
  .join('; ');
const { gpus, note, vramBudgetBytes } = daemon.gpuSummary;
const gpuText =
  gpus.length === 0
    ? `no GPU (${note}); CPU kinds only`
    : `${gpus.map((g) => `${g.name} (${formatBytes(g.memoryTotalBytes)}, compute ${g.computeCapability || '?'})`).join(', ')}; grid may use ${formatBytes(vramBudgetBytes)} of GPU memory`;
const backendText =
  backends.length === 0
    ? 'no model servers configured'
    : [
        ...checked.ready.map(({ backend, check }) => `${backend.name}: ${check.note}`),
        ...checked.failed.map(({ backend }) => `${backend.name}: left out (see above)`),
      ].join('; ');
logger.info(
  {
    workerId: daemon.id,
    coordinators: options.coordinators,
    stateDir: options.stateDir,
    backends: checked.ready.map(({ backend }) => backend.name),
    ...(metricsServer ? { metricsAddress: metricsServer.address } : {}),
  },
  `mmgrid worker ${options.name}: ${gpuText}; backends: ${backendText}; offering ${summary}; ${metricsText}; connecting to ${options.coordinators.join(' or ')}`,
);
daemon.on('connected', () => process.send?.({ type: 'connected', workerId: daemon.id, ...(metricsServer ? { metricsAddress: metricsServer.address } : {}) }));

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
process.on('exit', () => {
  for (const backend of backends) void backend.close?.();
});
