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
