import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON lines by default; readable lines when MMGRID_LOG_FORMAT=pretty. Level from MMGRID_LOG_LEVEL. */
export function createLogger(name: string, bindings: Record<string, string> = {}): Logger {
  const level = process.env['MMGRID_LOG_LEVEL'] ?? 'info';
  const pretty = process.env['MMGRID_LOG_FORMAT'] === 'pretty';
  const logger = pretty
    ? pino({ name, level, transport: { target: 'pino-pretty', options: { destination: 2, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' } } })
    : pino({ name, level }, pino.destination(2));
  return Object.keys(bindings).length > 0 ? logger.child(bindings) : logger;
}
