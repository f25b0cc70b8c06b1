import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '@mmgrid/core';
import { parseBytes, resolveWorkerOptions, type WorkerOptions } from '../worker-options.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

describe('parseBytes', () => {
  it.each([
    { text: '12GiB', bytes: 12 * GiB },
    { text: '512 MiB', bytes: 512 * MiB },
    { text: '1.5GB', bytes: 1_500_000_000 },
    { text: '800', bytes: 800 },
    { text: '0', bytes: 0 },
    { text: '8000000000', bytes: 8_000_000_000 },
    { text: '800 B', bytes: 800 },
    { text: '800b', bytes: 800 },
    { text: '4KiB', bytes: 4 * KiB },
    { text: '4 kb', bytes: 4000 },
    { text: '2 gib', bytes: 2 * GiB },
    { text: '  24 GiB  ', bytes: 24 * GiB },
    { text: '1.5 GiB', bytes: 1.5 * GiB },
    { text: '0.5MiB', bytes: 512 * KiB },
    { text: '100 MB', bytes: 100_000_000 },
    { text: '1.0000001 B', bytes: 1 },
  ])('$text → $bytes', ({ text, bytes }) => {
    expect(parseBytes(text)).toBe(bytes);
  });

  it.each(['', '   ', 'GiB', 'twelve', '-5', '-1GiB', '+5', '12 TiB', '12 TB', '12 G', '12 Gi', '12 GiBs', '12 GiB free', '1,5GB', '1e9', '.5GB', '5.', '0x10', '12 GiB 4', 'Infinity', 'NaN'])(
    '%j → undefined',
    (text) => {
      expect(parseBytes(text)).toBeUndefined();
    },
  );
});

describe('resolveWorkerOptions', () => {
  const available = ['image.ocr', 'image.inspect', 'text.stats', 'selftest.sleep'];
  const resolve = (options: WorkerOptions) => resolveWorkerOptions({ stateDir: '/var/lib/mmgrid/worker', ...options }, available, 'gpu-box-1');

  /** The InvalidOptionError that `fn` throws. */
  function optionError(fn: () => unknown): InvalidOptionError {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(InvalidOptionError);
      return err as InvalidOptionError;
    }
    throw new Error('expected an InvalidOptionError, nothing was thrown');
  }

  it('fills the defaults', () => {
    const resolved = resolve({});
    expect(resolved.coordinators).toEqual(['127.0.0.1:7070']);
    expect(resolved.name).toBe('gpu-box-1');
    expect(resolved.kinds).toEqual(available);
    expect(Object.keys(resolved.slots)).toEqual(available);
    expect(resolved.vramBudgetBytes).toBeUndefined();
    expect(resolved.cpuOnly).toBe(false);
    expect(resolved.nvidiaSmi).toBe('nvidia-smi');
  });

  it.each([
    { name: 'one', coordinator: 'coord.example:7070', coordinators: ['coord.example:7070'] },
    { name: 'two, comma-separated', coordinator: 'a.example:7070,b.example:7071', coordinators: ['a.example:7070', 'b.example:7071'] },
    { name: 'spaces and empty entries ignored', coordinator: ' a.example:7070 , ,b.example:7071, ', coordinators: ['a.example:7070', 'b.example:7071'] },
    { name: 'IPv6 and IPv4', coordinator: '[::1]:7070,10.0.0.2:7070', coordinators: ['[::1]:7070', '10.0.0.2:7070'] },
  ])('coordinators: $name', ({ coordinator, coordinators }) => {
    expect(resolve({ coordinator }).coordinators).toEqual(coordinators);
  });

  it.each([
    { name: 'empty', coordinator: '', value: '' },
    { name: 'only commas', coordinator: ' , ,', value: ' , ,' },
    { name: 'no port', coordinator: 'coord.example', value: 'coord.example' },
    { name: 'port out of range', coordinator: 'coord.example:70000', value: 'coord.example:70000' },
    { name: 'port not a number', coordinator: 'coord.example:grpc', value: 'coord.example:grpc' },
    { name: 'one good, one bad', coordinator: 'a.example:7070,b.example', value: 'b.example' },
    { name: 'a URL of another scheme', coordinator: 'ftp://coord.example:7070', value: 'ftp://coord.example:7070' },
  ])('refuses coordinator $name', ({ coordinator, value }) => {
    const err = optionError(() => resolve({ coordinator }));
    expect(err.option).toBe('coordinator');
    expect(err.value).toBe(value);
    expect(err.message).toMatch(/^option coordinator must be HOST:PORT/);
  });

  it('keeps a scheme that says TLS or plaintext, and the TLS settings for the connection', () => {
    const resolved = resolve({ coordinator: 'grpcs://a.example:443,grpc://10.0.0.2:7070', caFile: 'ca.pem', certFile: 'w.pem', keyFile: 'w.key', tlsServerName: 'grid' });
    expect(resolved.coordinators).toEqual(['grpcs://a.example:443', 'grpc://10.0.0.2:7070']);
    expect(resolved.connection).toEqual({ caFile: 'ca.pem', certFile: 'w.pem', keyFile: 'w.key', serverName: 'grid' });
    expect(resolve({ tls: false }).connection).toEqual({ tls: false });
    expect(resolve({}).connection).toEqual({});
  });

  it('takes a subset of the available kinds', () => {
    const resolved = resolve({ kinds: ['text.stats', 'selftest.sleep'], slots: { 'text.stats': 3 } });
    expect(resolved.kinds).toEqual(['text.stats', 'selftest.sleep']);
    expect(resolved.slots['text.stats']).toBe(3);
    expect(resolved.slots['selftest.sleep']).toBeGreaterThanOrEqual(2);
  });

  it.each([
    { name: 'a kind this worker cannot run', kinds: ['image.ocr', 'video.transcode'], value: 'video.transcode' },
    { name: 'a malformed kind', kinds: ['OCR'], value: 'OCR' },
    { name: 'the coordinator’s own kind', kinds: ['job.assemble'], value: 'job.assemble' },
  ])('refuses $name', ({ kinds, value }) => {
    const err = optionError(() => resolve({ kinds }));
    expect(err.option).toBe('kinds');
    expect(err.value).toBe(value);
    expect(err.message).toContain('image.ocr, image.inspect, text.stats, selftest.sleep');
  });

  it('refuses no kinds at all', () => {
    expect(optionError(() => resolve({ kinds: [] })).option).toBe('kinds');
  });

  it('refuses slots for a kind it does not run', () => {
    expect(optionError(() => resolve({ kinds: ['text.stats'], slots: { 'image.ocr': 2 } })).option).toBe('slots.image.ocr');
  });

  it.each([
    { name: 'negative', vramBudgetBytes: -1 },
    { name: 'not finite', vramBudgetBytes: Number.POSITIVE_INFINITY },
    { name: 'NaN', vramBudgetBytes: Number.NaN },
  ])('refuses a VRAM budget that is $name', ({ vramBudgetBytes }) => {
    expect(optionError(() => resolve({ vramBudgetBytes })).option).toBe('vramBudgetBytes');
  });

  it('keeps a VRAM budget, the CPU-only switch and the nvidia-smi path', () => {
    const resolved = resolve({ vramBudgetBytes: 12 * GiB, cpuOnly: true, nvidiaSmi: '/usr/bin/nvidia-smi' });
    expect(resolved).toMatchObject({ vramBudgetBytes: 12 * GiB, cpuOnly: true, nvidiaSmi: '/usr/bin/nvidia-smi' });
  });

  it.each([
    { name: 'the default (this machine only)', metricsListen: undefined, expected: { host: '127.0.0.1', port: 9465 } },
    { name: 'every interface', metricsListen: '0.0.0.0:9465', expected: { host: '0.0.0.0', port: 9465 } },
    { name: 'a port the system chooses', metricsListen: '127.0.0.1:0', expected: { host: '127.0.0.1', port: 0 } },
    { name: 'IPv6', metricsListen: '[::1]:9100', expected: { host: '[::1]', port: 9100 } },
    { name: 'off', metricsListen: 'off', expected: undefined },
    { name: 'OFF', metricsListen: 'OFF', expected: undefined },
  ])('metrics listen address: $name', ({ metricsListen, expected }) => {
    expect(resolve(metricsListen === undefined ? {} : { metricsListen }).metricsListen).toEqual(expected);
  });

  it.each(['', '9465', 'localhost', '127.0.0.1:99999', 'http://127.0.0.1:9465', 'no'])('refuses metrics listen address %j', (metricsListen) => {
    const err = optionError(() => resolve({ metricsListen }));
    expect(err.option).toBe('metricsListen');
    expect(err.value).toBe(metricsListen);
    expect(err.message).toMatch(/^option metricsListen must be HOST:PORT \(for example 127\.0\.0\.1:9465\), or "off"/);
  });
});
