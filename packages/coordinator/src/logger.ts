import { pino, type Logger } from 'pino';
import { logSettings } from '@mmgrid/core';

export type { Logger };

/**
 * The process's logger, writing to stderr: JSON lines (for log collectors) or readable lines
 * (for a person at a terminal), as MMGRID_LOG_FORMAT says (default: readable on a terminal,
 * JSON otherwise); level from MMGRID_LOG_LEVEL (default info). A bad value of either throws an
 * InvalidOptionError naming the variable and what it may be.
 */
export function createLogger(name: string, bindings: Record<string, string> = {}): Logger {
  const { level, format } = logSettings(process.env, process.stderr.isTTY);
  const logger =
    format === 'pretty'
      ? pino({ name, level, transport: { target: 'pino-pretty', options: { destination: 2, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' } } })
      : pino({ name, level }, pino.destination(2));
  return Object.keys(bindings).length > 0 ? logger.child(bindings) : logger;
}
