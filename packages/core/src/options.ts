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
