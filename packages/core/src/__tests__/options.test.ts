import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../errors.js';
import { booleanEnv, durationOption, intOption, isLoopbackHost, logSettings, nonEmptyOption, parseCoordinatorAddress, parseHostPort } from '../options.js';

function refusal(fn: () => unknown): InvalidOptionError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidOptionError);
    if (err instanceof InvalidOptionError) return err;
  }
  throw new Error('expected an InvalidOptionError');
}

describe('parseHostPort', () => {
  const accepted: { value: string; host: string; port: number }[] = [
    { value: '127.0.0.1:7070', host: '127.0.0.1', port: 7070 },
    { value: '[::1]:7070', host: '[::1]', port: 7070 },
    { value: '[2001:db8::1]:443', host: '[2001:db8::1]', port: 443 },
    { value: 'localhost:0', host: 'localhost', port: 0 },
    { value: 'grid.example.com:65535', host: 'grid.example.com', port: 65535 },
    { value: ' 0.0.0.0:8080 ', host: '0.0.0.0', port: 8080 },
  ];
  it.each(accepted)('accepts $value', ({ value, host, port }) => {
    expect(parseHostPort('--listen', value)).toEqual({ host, port });
  });

  const refused: string[] = ['nohost', 'host:99999', 'host:65536', '', ':7070', 'host:', '::1:7070', 'host:port', 'my host:80', 'host:-1', 'host:123456'];
  it.each(refused)('refuses %j, naming the option and the form', (value) => {
    const err = refusal(() => parseHostPort('--listen', value));
    expect(err.code).toBe('INVALID_OPTION');
    expect(err.option).toBe('--listen');
    expect(err.value).toBe(value);
    expect(err.message).toBe(`option --listen must be HOST:PORT (for example 127.0.0.1:7070) (got ${JSON.stringify(value)})`);
  });
});

describe('intOption', () => {
  const cases: { value: number; ok: boolean }[] = [
    { value: 1, ok: true },
    { value: 10, ok: true },
    { value: 0, ok: false },
    { value: 11, ok: false },
    { value: 2.5, ok: false },
    { value: Number.NaN, ok: false },
  ];
  it.each(cases)('$value in 1..10 → $ok', ({ value, ok }) => {
    if (ok) expect(intOption('--concurrency', value, 1, 10)).toBe(value);
    else expect(refusal(() => intOption('--concurrency', value, 1, 10)).message).toMatch(/^option --concurrency must be an integer from 1 to 10 \(got /);
  });
});

describe('durationOption', () => {
  it('rounds an accepted duration to whole milliseconds', () => {
    expect(durationOption('--timeout', 1500.4, 0, 60_000)).toBe(1500);
  });

  it.each([-1, 60_001, Number.POSITIVE_INFINITY, Number.NaN])('refuses %d', (value) => {
    const err = refusal(() => durationOption('--timeout', value, 0, 60_000));
    expect(err.option).toBe('--timeout');
    expect(err.allowed).toBe('a duration from 0 ms to 60000 ms');
  });
});

describe('nonEmptyOption', () => {
  it('accepts text and refuses blanks', () => {
    expect(nonEmptyOption('--redis', 'redis://localhost')).toBe('redis://localhost');
    expect(refusal(() => nonEmptyOption('--redis', '   ')).message).toBe('option --redis must be a non-empty string (got "   ")');
  });
});

describe('logSettings', () => {
  it('logs info as JSON off a terminal and as readable lines on one, by default', () => {
    expect(logSettings({}, false)).toEqual({ level: 'info', format: 'json' });
    expect(logSettings({}, true)).toEqual({ level: 'info', format: 'pretty' });
  });

  it('takes the level and the format from the environment, in any case', () => {
    expect(logSettings({ MMGRID_LOG_LEVEL: 'DEBUG', MMGRID_LOG_FORMAT: 'json' }, true)).toEqual({ level: 'debug', format: 'json' });
    expect(logSettings({ MMGRID_LOG_LEVEL: ' warn ', MMGRID_LOG_FORMAT: 'pretty' }, false)).toEqual({ level: 'warn', format: 'pretty' });
    expect(logSettings({ MMGRID_LOG_FORMAT: 'auto' }, false)).toEqual({ level: 'info', format: 'json' });
    expect(logSettings({ MMGRID_LOG_LEVEL: '' }, false)).toEqual({ level: 'info', format: 'json' });
  });

  it('refuses an unknown level or format, naming the variable and the choices', () => {
    expect(refusal(() => logSettings({ MMGRID_LOG_LEVEL: 'loud' }, false)).message).toBe(
      'option MMGRID_LOG_LEVEL must be one of trace, debug, info, warn, error, fatal, silent (got "loud")',
    );
    expect(refusal(() => logSettings({ MMGRID_LOG_FORMAT: 'xml' }, false)).message).toBe('option MMGRID_LOG_FORMAT must be one of auto, json, pretty (got "xml")');
  });
});

describe('isLoopbackHost', () => {
  it.each(['127.0.0.1', '127.255.0.9', 'localhost', 'LOCALHOST', 'grid.localhost', '::1', '[::1]', '::ffff:127.0.0.1', '[::ffff:127.0.0.1]'])('%s is loopback', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });
  it.each(['0.0.0.0', '::', '[::]', '10.0.0.1', '128.0.0.1', '127.0.0.1.example.com', 'grid.example.com', 'localhost.example.com', '::2'])('%s is not', (host) => {
    expect(isLoopbackHost(host)).toBe(false);
  });
});

describe('parseCoordinatorAddress', () => {
  const cases: { value: string; address: string; host: string; tls: boolean | undefined }[] = [
    { value: '127.0.0.1:7070', address: '127.0.0.1:7070', host: '127.0.0.1', tls: undefined },
    { value: 'grpcs://grid.example.com:443', address: 'grid.example.com:443', host: 'grid.example.com', tls: true },
    { value: 'HTTPS://grid.example.com:443/', address: 'grid.example.com:443', host: 'grid.example.com', tls: true },
    { value: 'grpc://10.0.0.1:7070', address: '10.0.0.1:7070', host: '10.0.0.1', tls: false },
    { value: 'http://[::1]:7070', address: '[::1]:7070', host: '[::1]', tls: false },
  ];
  it.each(cases)('reads $value', ({ value, address, host, tls }) => {
    expect(parseCoordinatorAddress('coordinator', value)).toEqual({ address, host, port: Number(address.split(':').pop()), tls });
  });
  it.each(['grpcs://', 'ftp://host:21', 'grpcs://host', 'host'])('refuses %j, naming the schemes', (value) => {
    const err = refusal(() => parseCoordinatorAddress('coordinator', value));
    expect(err.option).toBe('coordinator');
    expect(err.message).toContain('grpcs:// (TLS) or grpc:// (plaintext)');
  });
});

describe('booleanEnv', () => {
  it.each<[string | undefined, boolean | undefined]>([
    [undefined, undefined],
    ['true', true],
    [' YES ', true],
    ['1', true],
    ['on', true],
    ['false', false],
    ['0', false],
    ['no', false],
    ['', false],
  ])('%j → %s', (value, expected) => {
    expect(booleanEnv('MMGRID_INSECURE', value)).toBe(expected);
  });
  it('refuses anything else, naming the variable', () => {
    expect(refusal(() => booleanEnv('MMGRID_INSECURE', 'maybe')).message).toBe('option MMGRID_INSECURE must be true or false (also 1/0, yes/no, on/off) (got "maybe")');
  });
});
