import { InvalidOptionError } from './errors.js';

/** Checks an integer option lies in [min, max]; names the option when it does not. */
export function intOption(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(name, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

/** Checks a duration option (milliseconds) lies in [minMs, maxMs]. */
export function durationOption(name: string, value: number, minMs: number, maxMs: number): number {
  if (!Number.isFinite(value) || value < minMs || value > maxMs) {
    throw new InvalidOptionError(name, `a duration from ${minMs} ms to ${maxMs} ms`, value);
  }
  return Math.round(value);
}

/** Checks a string option is not empty. */
export function nonEmptyOption(name: string, value: string): string {
  if (value.trim() === '') throw new InvalidOptionError(name, 'a non-empty string', value);
  return value;
}

/**
 * Parses "HOST:PORT" (IPv6 hosts in brackets). Port 0 asks the system for a free port.
 */
export function parseHostPort(name: string, value: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || !match[1] || port > 65535) {
    throw new InvalidOptionError(name, 'HOST:PORT (for example 127.0.0.1:7070)', value);
  }
  return { host: match[1], port };
}

/**
 * Whether a host is this machine's loopback (127.0.0.0/8, ::1, "localhost"): traffic to it never
 * leaves the machine, so plaintext gRPC there needs no explicit consent.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  return /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/** How to reach a coordinator, from an address with or without a scheme. */
export interface CoordinatorAddress {
  /** "HOST:PORT", without the scheme. */
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** true for grpcs:// and https://, false for grpc:// and http://, undefined without a scheme. */
  readonly tls: boolean | undefined;
}

const SCHEMES: Readonly<Record<string, boolean>> = { 'grpcs://': true, 'https://': true, 'grpc://': false, 'http://': false };

/**
 * Parses a coordinator address: "HOST:PORT", or with a scheme that says whether to use TLS
 * ("grpcs://HOST:PORT" or "https://…": TLS; "grpc://…" or "http://…": plaintext).
 */
export function parseCoordinatorAddress(name: string, value: string): CoordinatorAddress {
  const trimmed = value.trim();
  const scheme = Object.keys(SCHEMES).find((s) => trimmed.toLowerCase().startsWith(s));
  const rest = (scheme ? trimmed.slice(scheme.length) : trimmed).replace(/\/$/, '');
  try {
    const { host, port } = parseHostPort(name, rest);
    return { address: `${host}:${port}`, host, port, tls: scheme ? SCHEMES[scheme] : undefined };
  } catch (err) {
    if (err instanceof InvalidOptionError) {
      throw new InvalidOptionError(name, 'HOST:PORT, optionally after grpcs:// (TLS) or grpc:// (plaintext), for example grpcs://grid.example.org:7070', value);
    }
    throw err;
  }
}

/**
 * Reads a yes/no environment variable ("true", "1", "yes", "on" or "false", "0", "no", "off",
 * "" in any case); undefined when it is not set.
 */
export function booleanEnv(name: string, value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off', ''].includes(v)) return false;
  throw new InvalidOptionError(name, 'true or false (also 1/0, yes/no, on/off)', value);
}

/** Log levels, most verbose first (pino's names). */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** json: one JSON object per line; pretty: readable lines; auto: pretty on a terminal, else json. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

/**
 * How a process logs, from MMGRID_LOG_LEVEL (default info) and MMGRID_LOG_FORMAT (default
 * auto: readable lines when stderr is a terminal, JSON lines otherwise, so a container or a
 * service manager gets JSON and a person at a terminal gets text).
 */
export function logSettings(
  env: Readonly<Record<string, string | undefined>>,
  stderrIsTerminal: boolean,
): { level: LogLevel; format: 'json' | 'pretty' } {
  const level = (env['MMGRID_LOG_LEVEL'] ?? '').trim().toLowerCase() || 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new InvalidOptionError('MMGRID_LOG_LEVEL', `one of ${LOG_LEVELS.join(', ')}`, env['MMGRID_LOG_LEVEL']);
  const format = (env['MMGRID_LOG_FORMAT'] ?? '').trim().toLowerCase() || 'auto';
  if (!(LOG_FORMATS as readonly string[]).includes(format)) throw new InvalidOptionError('MMGRID_LOG_FORMAT', `one of ${LOG_FORMATS.join(', ')}`, env['MMGRID_LOG_FORMAT']);
  return { level: level as LogLevel, format: format === 'auto' ? (stderrIsTerminal ? 'pretty' : 'json') : (format as 'json' | 'pretty') };
}

/** Why a file named by an option could not be read, in words (from the error Node gave). */
export function unreadableFileReason(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'a folder, not a file';
  return err instanceof Error ? err.message : String(err);
}
