import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '@mmgrid/core';
import { TlsConfigError } from '../errors.js';
import { resolveCoordinatorOptions, withDefaults, type CoordinatorOptions, type ResolvedCoordinatorOptions } from '../coordinator-options.js';

/**
 * The options with insecure set, so that the default listen address (0.0.0.0, reachable from
 * other machines) may serve plaintext; the TLS rules have their own tests below.
 */
function resolvePlain(options: CoordinatorOptions, defaultId: string): ResolvedCoordinatorOptions {
  return resolveCoordinatorOptions({ insecure: true, ...options }, defaultId);
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const DEFAULTS: ResolvedCoordinatorOptions = {
  redisUrl: 'redis://127.0.0.1:6379',
  keyPrefix: 'mmgrid',
  listenHost: '0.0.0.0',
  listenPort: 7070,
  blobDir: '.mmgrid/blobs',
  blobStoreUrl: '',
  maxBlobBytes: 2 * GiB,
  maxMessageBytes: 8 * MiB,
  leaseMs: 30_000,
  heartbeatIntervalMs: 5_000,
  stalledCheckIntervalMs: 10_000,
  maxStalledCount: 2,
  jobRetentionMs: 7 * 24 * 3600_000,
  assemblyConcurrency: 4,
  maxShards: 20_000,
  maxInputsPerJob: 1_000,
  maxPromptChars: 32_768,
  maxTextInputChars: 1_000_000,
  maxLiveJobsPerTenant: 1_000,
  submitRatePerTenant: 50,
  submitBurstPerTenant: 500,
  tenantLimits: new Map(),
  coordinatorId: 'host-123',
  metricsListen: { host: '0.0.0.0', port: 9464 },
  auth: 'open',
  adminToken: '',
  tls: undefined,
  insecure: true,
  verification: undefined,
};

function refusal(fn: () => unknown): InvalidOptionError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidOptionError);
    if (err instanceof InvalidOptionError) return err;
  }
  throw new Error('expected an InvalidOptionError');
}

describe('resolveCoordinatorOptions defaults', () => {
  it('fills every default', () => {
    expect(resolvePlain({}, 'host-123')).toEqual(DEFAULTS);
  });

  it('leaves defaults unvalidated in withDefaults, for --help', () => {
    expect(withDefaults({}, 'host-123')).toEqual({
      redisUrl: 'redis://127.0.0.1:6379',
      keyPrefix: 'mmgrid',
      listen: '0.0.0.0:7070',
      blobDir: '.mmgrid/blobs',
      blobStoreUrl: '',
      maxBlobBytes: 2 * GiB,
      maxMessageBytes: 8 * MiB,
      leaseMs: 30_000,
      heartbeatIntervalMs: 5_000,
      stalledCheckIntervalMs: 10_000,
      maxStalledCount: 2,
      jobRetentionMs: 7 * 24 * 3600_000,
      assemblyConcurrency: 4,
      maxShards: 20_000,
      maxInputsPerJob: 1_000,
      maxPromptChars: 32_768,
      maxTextInputChars: 1_000_000,
      maxLiveJobsPerTenant: 1_000,
      submitRatePerTenant: 50,
      submitBurstPerTenant: 500,
      tenantLimits: {},
      coordinatorId: 'host-123',
      metricsListen: '0.0.0.0:9464',
      auth: 'open',
      adminToken: '',
      insecure: false,
      verifyReplicas: {},
      verifyValidators: {},
      verifyMaxReplicas: 5,
      canaryRate: 0,
      trustMinVerdicts: 10,
      trustReplicateBelow: 0.95,
      trustQuarantineBelow: 0.8,
    });
    expect(withDefaults({ keyPrefix: '' }, 'x').keyPrefix).toBe('');
  });

  it('keeps given values over defaults', () => {
    const options: CoordinatorOptions = {
      redisUrl: 'rediss://redis.example.com:6380/2',
      keyPrefix: 'grid_2.test-a',
      listen: 'grid.example.com:0',
      blobDir: '/var/lib/mmgrid',
      blobStoreUrl: 's3://bucket/prefix/?endpoint=http://127.0.0.1:9000&region=us-east-1',
      maxBlobBytes: 1,
      maxMessageBytes: 2 * MiB,
      leaseMs: 1_000,
      heartbeatIntervalMs: 500,
      stalledCheckIntervalMs: 100,
      maxStalledCount: 100,
      jobRetentionMs: 60_000,
      assemblyConcurrency: 256,
      maxShards: 1,
      maxInputsPerJob: 1,
      maxPromptChars: 1,
      maxTextInputChars: 1,
      maxLiveJobsPerTenant: 1,
      submitRatePerTenant: 0.001,
      submitBurstPerTenant: 1,
      tenantLimits: { acme: { maxLiveJobs: 7 } },
      coordinatorId: 'replica-a',
      metricsListen: '127.0.0.1:0',
      auth: 'tokens',
      adminToken: 'a'.repeat(24),
    };
    expect(resolvePlain(options, 'unused')).toEqual({
      redisUrl: 'rediss://redis.example.com:6380/2',
      keyPrefix: 'grid_2.test-a',
      listenHost: 'grid.example.com',
      listenPort: 0,
      blobDir: '/var/lib/mmgrid',
      blobStoreUrl: 's3://bucket/prefix/?endpoint=http://127.0.0.1:9000&region=us-east-1',
      maxBlobBytes: 1,
      maxMessageBytes: 2 * MiB,
      leaseMs: 1_000,
      heartbeatIntervalMs: 500,
      stalledCheckIntervalMs: 100,
      maxStalledCount: 100,
      jobRetentionMs: 60_000,
      assemblyConcurrency: 256,
      maxShards: 1,
      maxInputsPerJob: 1,
      maxPromptChars: 1,
      maxTextInputChars: 1,
      maxLiveJobsPerTenant: 1,
      submitRatePerTenant: 0.001,
      submitBurstPerTenant: 1,
      tenantLimits: new Map([['acme', { maxLiveJobs: 7, submitRate: 0.001, submitBurst: 1 }]]),
      coordinatorId: 'replica-a',
      metricsListen: { host: '127.0.0.1', port: 0 },
      auth: 'tokens',
      adminToken: 'a'.repeat(24),
      tls: undefined,
      insecure: true,
    });
  });

  it('accepts the upper bounds', () => {
    const resolved = resolvePlain(
      {
        maxBlobBytes: Number.MAX_SAFE_INTEGER,
        maxMessageBytes: 512 * MiB,
        leaseMs: 3_600_000,
        heartbeatIntervalMs: 600_000,
        stalledCheckIntervalMs: 600_000,
        jobRetentionMs: 365 * 24 * 3600_000,
        keyPrefix: 'p'.repeat(64),
        maxShards: 1_000_000,
        maxInputsPerJob: 100_000,
        maxPromptChars: 10_000_000,
        maxTextInputChars: 100_000_000,
        maxLiveJobsPerTenant: 10_000_000,
        submitRatePerTenant: 100_000,
        submitBurstPerTenant: 1_000_000,
      },
      'id',
    );
    expect(resolved.maxShards).toBe(1_000_000);
    expect(resolved.submitRatePerTenant).toBe(100_000);
    expect(resolved.leaseMs).toBe(3_600_000);
    expect(resolved.heartbeatIntervalMs).toBe(600_000);
    expect(resolved.keyPrefix).toHaveLength(64);
  });

  it('rounds durations to whole milliseconds', () => {
    const resolved = resolvePlain({ leaseMs: 20_000.6, heartbeatIntervalMs: 2_500.4, stalledCheckIntervalMs: 1_000.5 }, 'id');
    expect(resolved.leaseMs).toBe(20_001);
    expect(resolved.heartbeatIntervalMs).toBe(2_500);
    expect(resolved.stalledCheckIntervalMs).toBe(1_001);
  });
});

describe('resolveCoordinatorOptions tenant limits', () => {
  it('takes none given as none (an empty file)', () => {
    expect(resolvePlain({ tenantLimits: null as unknown as NonNullable<CoordinatorOptions['tenantLimits']> }, 'id').tenantLimits).toEqual(new Map());
  });

  it('fills what a tenant leaves out from the grid\'s limits', () => {
    const resolved = resolvePlain(
      // A number written as a string (helm --set) is taken as the number.
      { maxLiveJobsPerTenant: 10, submitRatePerTenant: 2, submitBurstPerTenant: 4, tenantLimits: { acme: { maxLiveJobs: 500, submitRate: '0.5' as unknown as number }, 'trial-1': { submitBurst: 1 } } },
      'id',
    );
    expect(resolved.tenantLimits).toEqual(
      new Map([
        ['acme', { maxLiveJobs: 500, submitRate: 0.5, submitBurst: 4 }],
        ['trial-1', { maxLiveJobs: 10, submitRate: 2, submitBurst: 1 }],
      ]),
    );
  });

  const refusals: { option: string; tenantLimits: unknown }[] = [
    { option: 'tenantLimits', tenantLimits: ['acme'] },
    { option: 'tenantLimits', tenantLimits: { 'Not A Tenant': { maxLiveJobs: 1 } } },
    { option: 'tenantLimits.acme', tenantLimits: { acme: 5 } },
    { option: 'tenantLimits.acme.maxJobs', tenantLimits: { acme: { maxJobs: 5 } } },
    { option: 'tenantLimits.acme.maxLiveJobs', tenantLimits: { acme: { maxLiveJobs: 0 } } },
    { option: 'tenantLimits.acme.maxLiveJobs', tenantLimits: { acme: { maxLiveJobs: 'five' } } },
    { option: 'tenantLimits.acme.maxLiveJobs', tenantLimits: { acme: { maxLiveJobs: true } } },
    { option: 'tenantLimits.acme.submitRate', tenantLimits: { acme: { submitRate: 0 } } },
    { option: 'tenantLimits.acme.submitBurst', tenantLimits: { acme: { submitBurst: 1.5 } } },
  ];
  it.each(refusals)('refuses $tenantLimits, naming $option', ({ option, tenantLimits }) => {
    const err = refusal(() => resolvePlain({ tenantLimits: tenantLimits as NonNullable<CoordinatorOptions['tenantLimits']> }, 'id'));
    expect(err.option).toBe(option);
  });
});

describe('resolveCoordinatorOptions listen address', () => {
  const cases: { listen: string; host: string; port: number }[] = [
    { listen: '127.0.0.1:7070', host: '127.0.0.1', port: 7070 },
    { listen: 'localhost:0', host: 'localhost', port: 0 },
    { listen: '[::]:7070', host: '::', port: 7070 },
    { listen: '[::1]:8080', host: '::1', port: 8080 },
    { listen: '[2001:db8::1]:65535', host: '2001:db8::1', port: 65535 },
    { listen: '[::ffff:127.0.0.1]:7070', host: '::ffff:127.0.0.1', port: 7070 },
  ];
  it.each(cases)('listens on $listen as host $host, port $port', ({ listen, host, port }) => {
    const resolved = resolvePlain({ listen }, 'id');
    expect(resolved.listenHost).toBe(host);
    expect(resolved.listenPort).toBe(port);
  });
});

describe('resolveCoordinatorOptions metrics address', () => {
  const cases: { metricsListen: string; expected: { host: string; port: number } | undefined }[] = [
    { metricsListen: '0.0.0.0:9464', expected: { host: '0.0.0.0', port: 9464 } },
    { metricsListen: '127.0.0.1:0', expected: { host: '127.0.0.1', port: 0 } },
    { metricsListen: '[::1]:9100', expected: { host: '::1', port: 9100 } },
    { metricsListen: 'off', expected: undefined },
    { metricsListen: ' OFF ', expected: undefined },
  ];
  it.each(cases)('serves metrics on $metricsListen', ({ metricsListen, expected }) => {
    expect(resolvePlain({ metricsListen }, 'id').metricsListen).toEqual(expected);
  });
});

describe('resolveCoordinatorOptions refusals', () => {
  const cases: { option: keyof CoordinatorOptions; options: CoordinatorOptions }[] = [
    { option: 'redisUrl', options: { redisUrl: 'http://127.0.0.1:6379' } },
    { option: 'redisUrl', options: { redisUrl: '127.0.0.1:6379' } },
    { option: 'redisUrl', options: { redisUrl: '' } },
    { option: 'keyPrefix', options: { keyPrefix: '' } },
    { option: 'keyPrefix', options: { keyPrefix: 'has space' } },
    { option: 'keyPrefix', options: { keyPrefix: 'a:b' } },
    { option: 'keyPrefix', options: { keyPrefix: 'p'.repeat(65) } },
    { option: 'keyPrefix', options: { keyPrefix: '{hash}' } },
    { option: 'listen', options: { listen: '' } },
    { option: 'listen', options: { listen: 'nohost' } },
    { option: 'listen', options: { listen: 'host:65536' } },
    { option: 'listen', options: { listen: '::1:7070' } },
    { option: 'listen', options: { listen: ':7070' } },
    { option: 'blobDir', options: { blobDir: '' } },
    { option: 'blobDir', options: { blobDir: '   ' } },
    { option: 'maxBlobBytes', options: { maxBlobBytes: 0 } },
    { option: 'maxBlobBytes', options: { maxBlobBytes: -1 } },
    { option: 'maxBlobBytes', options: { maxBlobBytes: 1.5 } },
    { option: 'maxBlobBytes', options: { maxBlobBytes: Number.POSITIVE_INFINITY } },
    { option: 'maxMessageBytes', options: { maxMessageBytes: 2 * MiB - 1 } },
    { option: 'maxMessageBytes', options: { maxMessageBytes: 512 * MiB + 1 } },
    { option: 'leaseMs', options: { leaseMs: 999, heartbeatIntervalMs: 100 } },
    { option: 'leaseMs', options: { leaseMs: 3_600_001 } },
    { option: 'leaseMs', options: { leaseMs: Number.NaN } },
    { option: 'leaseMs', options: { leaseMs: Number.POSITIVE_INFINITY } },
    { option: 'heartbeatIntervalMs', options: { heartbeatIntervalMs: 99 } },
    { option: 'heartbeatIntervalMs', options: { heartbeatIntervalMs: 600_001, leaseMs: 3_600_000 } },
    { option: 'heartbeatIntervalMs', options: { heartbeatIntervalMs: Number.NaN } },
    { option: 'stalledCheckIntervalMs', options: { stalledCheckIntervalMs: 99 } },
    { option: 'stalledCheckIntervalMs', options: { stalledCheckIntervalMs: 600_001 } },
    { option: 'maxStalledCount', options: { maxStalledCount: 0 } },
    { option: 'maxStalledCount', options: { maxStalledCount: 101 } },
    { option: 'maxStalledCount', options: { maxStalledCount: 1.5 } },
    { option: 'jobRetentionMs', options: { jobRetentionMs: 59_999 } },
    { option: 'jobRetentionMs', options: { jobRetentionMs: 365 * 24 * 3600_000 + 1 } },
    { option: 'assemblyConcurrency', options: { assemblyConcurrency: 0 } },
    { option: 'assemblyConcurrency', options: { assemblyConcurrency: 257 } },
    { option: 'assemblyConcurrency', options: { assemblyConcurrency: 2.5 } },
    { option: 'maxShards', options: { maxShards: 0 } },
    { option: 'maxShards', options: { maxShards: 1_000_001 } },
    { option: 'maxShards', options: { maxShards: 2.5 } },
    { option: 'maxShards', options: { maxShards: Number.NaN } },
    { option: 'maxInputsPerJob', options: { maxInputsPerJob: 0 } },
    { option: 'maxInputsPerJob', options: { maxInputsPerJob: 100_001 } },
    { option: 'maxInputsPerJob', options: { maxInputsPerJob: 1.5 } },
    { option: 'maxPromptChars', options: { maxPromptChars: 0 } },
    { option: 'maxPromptChars', options: { maxPromptChars: 10_000_001 } },
    { option: 'maxTextInputChars', options: { maxTextInputChars: 0 } },
    { option: 'maxTextInputChars', options: { maxTextInputChars: 100_000_001 } },
    { option: 'maxLiveJobsPerTenant', options: { maxLiveJobsPerTenant: 0 } },
    { option: 'maxLiveJobsPerTenant', options: { maxLiveJobsPerTenant: -1 } },
    { option: 'maxLiveJobsPerTenant', options: { maxLiveJobsPerTenant: 2.5 } },
    { option: 'submitRatePerTenant', options: { submitRatePerTenant: 0 } },
    { option: 'submitRatePerTenant', options: { submitRatePerTenant: 0.0009 } },
    { option: 'submitRatePerTenant', options: { submitRatePerTenant: 100_001 } },
    { option: 'submitRatePerTenant', options: { submitRatePerTenant: Number.NaN } },
    { option: 'submitRatePerTenant', options: { submitRatePerTenant: Number.POSITIVE_INFINITY } },
    { option: 'submitBurstPerTenant', options: { submitBurstPerTenant: 0 } },
    { option: 'submitBurstPerTenant', options: { submitBurstPerTenant: 1_000_001 } },
    { option: 'submitBurstPerTenant', options: { submitBurstPerTenant: 1.5 } },
    { option: 'coordinatorId', options: { coordinatorId: '' } },
    { option: 'coordinatorId', options: { coordinatorId: ' ' } },
    { option: 'metricsListen', options: { metricsListen: '' } },
    { option: 'metricsListen', options: { metricsListen: '9464' } },
    { option: 'metricsListen', options: { metricsListen: 'host:65536' } },
    { option: 'metricsListen', options: { metricsListen: 'no' } },
  ];

  it.each(cases)('refuses $option in $options', ({ option, options }) => {
    const err = refusal(() => resolvePlain(options, 'host-123'));
    expect(err.option).toBe(option);
    expect(err.message).toContain(option);
    expect(err.code).toBe('INVALID_OPTION');
  });

  it('refuses an empty default coordinator id', () => {
    expect(refusal(() => resolvePlain({}, '')).option).toBe('coordinatorId');
  });

  it('refuses a heartbeat longer than half the lease', () => {
    const err = refusal(() => resolvePlain({ leaseMs: 10_000, heartbeatIntervalMs: 5_001 }, 'id'));
    expect(err.option).toBe('heartbeatIntervalMs');
    expect(err.value).toBe(5_001);
    expect(err.message).toContain('leaseMs');
  });

  it('refuses the default heartbeat with a short lease', () => {
    expect(refusal(() => resolvePlain({ leaseMs: 9_999 }, 'id')).option).toBe('heartbeatIntervalMs');
  });

  it('accepts a heartbeat of exactly half the lease', () => {
    const resolved = resolvePlain({ leaseMs: 10_000, heartbeatIntervalMs: 5_000 }, 'id');
    expect(resolved.heartbeatIntervalMs).toBe(5_000);
  });
});

describe('resolveCoordinatorOptions auth', () => {
  const cases: { name: string; options: CoordinatorOptions; option: string; allowed: string }[] = [
    { name: 'an unknown mode', options: { auth: 'ldap' as 'open' }, option: 'auth', allowed: 'one of open, tokens' },
    { name: 'an admin token on an open grid', options: { adminToken: 'x'.repeat(32) }, option: 'adminToken', allowed: 'only applies with auth "tokens"' },
    { name: 'a short admin token', options: { auth: 'tokens', adminToken: 'short' }, option: 'adminToken', allowed: 'at least 24 characters' },
    { name: 'an admin token with spaces', options: { auth: 'tokens', adminToken: `${'x'.repeat(20)} ${'y'.repeat(20)}` }, option: 'adminToken', allowed: 'without spaces' },
  ];
  for (const c of cases) {
    it(`refuses ${c.name}, naming the option`, () => {
      const err = refusal(() => resolveCoordinatorOptions(c.options, 'id'));
      expect(err.option).toBe(c.option);
      expect(err.message).toContain(c.allowed);
    });
  }

  it('never puts the admin token in an error', () => {
    const secret = 'SECRET-not-long';
    const err = refusal(() => resolveCoordinatorOptions({ auth: 'tokens', adminToken: secret }, 'id'));
    expect(err.message).not.toContain(secret);
  });

  it('takes tokens mode with or without a bootstrap token', () => {
    expect(resolveCoordinatorOptions({ auth: 'tokens', insecure: true }, 'id')).toMatchObject({ auth: 'tokens', adminToken: '' });
    expect(resolveCoordinatorOptions({ auth: 'tokens', adminToken: 'z'.repeat(44), insecure: true }, 'id').adminToken).toBe('z'.repeat(44));
  });
});

describe('resolveCoordinatorOptions TLS and plaintext', () => {
  function tlsRefusal(fn: () => unknown): TlsConfigError {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(TlsConfigError);
      if (err instanceof TlsConfigError) return err;
    }
    throw new Error('expected a TlsConfigError');
  }

  const plaintext: { listen: string; insecure?: boolean }[] = [
    { listen: '127.0.0.1:7070' },
    { listen: '127.1.2.3:0' },
    { listen: 'localhost:7070' },
    { listen: '[::1]:7070' },
    { listen: '[::ffff:127.0.0.1]:7070' },
    { listen: '0.0.0.0:7070', insecure: true },
    { listen: '[::]:7070', insecure: true },
    { listen: 'grid.example.com:7070', insecure: true },
  ];
  it.each(plaintext)('serves plaintext on $listen (insecure: $insecure)', ({ listen, insecure }) => {
    const resolved = resolveCoordinatorOptions({ listen, ...(insecure !== undefined ? { insecure } : {}) }, 'id');
    expect(resolved.tls).toBeUndefined();
    expect(resolved.insecure).toBe(insecure ?? false);
  });

  it.each(['0.0.0.0:7070', '[::]:7070', '10.0.0.5:7070', 'grid.example.com:7070'])('refuses plaintext on %s without insecure, naming the options', (listen) => {
    const err = tlsRefusal(() => resolveCoordinatorOptions({ listen }, 'id'));
    expect(err.option).toBe('--listen');
    expect(err.message).toContain(`refusing to serve plaintext gRPC on ${listen}`);
    expect(err.message).toMatch(/--tls-cert and --tls-key.*--insecure/);
  });

  it('takes TLS files on any address, with or without a client CA', () => {
    expect(resolveCoordinatorOptions({ listen: '0.0.0.0:7070', tlsCertFile: 'c.pem', tlsKeyFile: 'k.pem' }, 'id').tls).toEqual({ certFile: 'c.pem', keyFile: 'k.pem', clientCaFile: undefined });
    expect(resolveCoordinatorOptions({ tlsCertFile: 'c.pem', tlsKeyFile: 'k.pem', tlsClientCaFile: 'ca.pem' }, 'id').tls).toEqual({ certFile: 'c.pem', keyFile: 'k.pem', clientCaFile: 'ca.pem' });
  });

  const refused: { options: CoordinatorOptions; option: string; message: RegExp }[] = [
    { options: { tlsCertFile: 'c.pem' }, option: '--tls-key', message: /--tls-cert needs --tls-key/ },
    { options: { tlsKeyFile: 'k.pem', listen: '127.0.0.1:0' }, option: '--tls-cert', message: /--tls-key needs --tls-cert/ },
    { options: { tlsClientCaFile: 'ca.pem', listen: '127.0.0.1:0' }, option: '--tls-client-ca', message: /needs --tls-cert and --tls-key/ },
    { options: { tlsCertFile: 'c.pem', tlsKeyFile: 'k.pem', insecure: true }, option: '--insecure', message: /does not go with --tls-cert/ },
  ];
  it.each(refused)('refuses $options', ({ options, option, message }) => {
    const err = tlsRefusal(() => resolveCoordinatorOptions(options, 'id'));
    expect(err.option).toBe(option);
    expect(err.message).toMatch(message);
  });
});

describe('resolveCoordinatorOptions result verification', () => {
  it('is off unless a kind is replicated or canaries are checked', () => {
    expect(resolvePlain({}, 'x').verification).toBeUndefined();
    expect(resolvePlain({ verifyMaxReplicas: 7, trustMinVerdicts: 3 }, 'x').verification).toBeUndefined();
    expect(resolvePlain({ canaryRate: 0.01 }, 'x').verification?.canaryRate).toBe(0.01);
  });

  it('takes replication factors, validators and the trust policy', () => {
    const v = resolvePlain(
      {
        verifyReplicas: { 'text.stats': 2, 'image.ocr': 3 },
        verifyValidators: { 'image.ocr': { type: 'boxes', field: 'words', minIou: 0.5 } },
        trustReplicateBelow: 0.9,
        trustQuarantineBelow: 0.7,
      },
      'x',
    ).verification;
    expect(v?.replicas).toEqual(new Map([['text.stats', 2], ['image.ocr', 3]]));
    expect(v?.validators['image.ocr']?.type).toBe('boxes');
    expect(v).toMatchObject({ maxReplicas: 5, canaryRate: 0, policy: { minVerdicts: 10, replicateBelow: 0.9, quarantineBelow: 0.7 } });
  });

  it.each([
    { name: 'a replication factor of 0', options: { verifyReplicas: { 'text.stats': 0 } }, option: 'verifyReplicas.text.stats' },
    { name: 'a replication factor at the most results gathered', options: { verifyReplicas: { 'text.stats': 5 } }, option: 'verifyReplicas.text.stats' },
    { name: 'a canary rate above 1', options: { canaryRate: 1.5 }, option: 'canaryRate' },
    { name: 'a quarantine threshold above the replication one', options: { canaryRate: 0.1, trustReplicateBelow: 0.5, trustQuarantineBelow: 0.6 }, option: 'trustQuarantineBelow' },
    { name: 'too few results gathered', options: { verifyMaxReplicas: 2 }, option: 'verifyMaxReplicas' },
  ])('refuses $name, naming the option', ({ options, option }) => {
    expect(refusal(() => resolvePlain(options, 'x')).option).toBe(option);
  });
});
