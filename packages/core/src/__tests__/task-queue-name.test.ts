import { describe, expect, it } from 'vitest';
import { NO_REQUIREMENTS, type TaskRequirements } from '../task-graph.js';
import { DEFAULT_TENANT, parseTaskQueueName, requirementsSignature, TENANT_PATTERN, taskQueueName } from '../task-queue-name.js';

const GiB = 1024 ** 3;
const req = (r: Partial<TaskRequirements>): TaskRequirements => ({ ...NO_REQUIREMENTS, ...r });

describe('taskQueueName', () => {
  it.each([
    { name: 'no requirements', kind: 'image.ocr', r: NO_REQUIREMENTS, tenant: DEFAULT_TENANT, queue: 'image.ocr@default' },
    { name: 'no requirements, another tenant', kind: 'selftest.sleep', r: NO_REQUIREMENTS, tenant: 'acme_labs-2', queue: 'selftest.sleep@acme_labs-2' },
    // Signatures are pinned: queue names live in Redis across coordinator upgrades.
    { name: 'a GPU only', kind: 'selftest.sleep', r: req({ cpuAllowed: false }), tenant: 'acme', queue: 'selftest.sleep#83f715e0e8394a6d@acme' },
    {
      name: 'every requirement',
      kind: 'text.generate',
      r: req({ model: 'llama-3-8b', minVramBytes: 24 * GiB, minComputeCapability: '8.0', cpuAllowed: false }),
      tenant: DEFAULT_TENANT,
      queue: 'text.generate#445043348168a91f@default',
    },
  ])('$name → $queue', ({ kind, r, tenant, queue }) => {
    expect(taskQueueName(kind, r, tenant)).toBe(queue);
  });

  it('has the shape <kind>#<16 hex digits>@<tenant> when there are requirements', () => {
    expect(taskQueueName('image.ocr', req({ model: 'tesseract-best' }), 't1')).toMatch(/^image\.ocr#[0-9a-f]{16}@t1$/);
  });
});

describe('requirementsSignature', () => {
  it('is empty without requirements', () => {
    expect(requirementsSignature(NO_REQUIREMENTS)).toBe('');
    expect(requirementsSignature(req({}))).toBe('');
  });

  it('is stable: equal requirement sets, built separately, sign the same', () => {
    const a = req({ model: 'sdxl', minVramBytes: 12 * GiB, minComputeCapability: '8.6', cpuAllowed: false });
    const b: TaskRequirements = { cpuAllowed: false, minComputeCapability: '8.6', minVramBytes: 12 * GiB, model: 'sdxl' };
    expect(requirementsSignature(a)).toBe(requirementsSignature(b));
    expect(requirementsSignature(a)).toBe(requirementsSignature(a));
  });

  const base = req({ model: 'sdxl', minVramBytes: 12 * GiB, minComputeCapability: '8.6', cpuAllowed: false });
  const variants: { name: string; r: TaskRequirements }[] = [
    { name: 'another model', r: { ...base, model: 'sdxl-turbo' } },
    { name: 'no model', r: { ...base, model: '' } },
    { name: 'more VRAM', r: { ...base, minVramBytes: 12 * GiB + 1 } },
    { name: 'no VRAM', r: { ...base, minVramBytes: 0 } },
    { name: 'another capability', r: { ...base, minComputeCapability: '8.9' } },
    { name: 'no capability', r: { ...base, minComputeCapability: '' } },
    { name: 'CPU allowed', r: { ...base, cpuAllowed: true } },
  ];
  it.each(variants)('differs for $name', ({ r }) => {
    const signature = requirementsSignature(r);
    expect(signature).toMatch(/^[0-9a-f]{16}$/);
    expect(signature).not.toBe(requirementsSignature(base));
  });

  it('gives each variant its own signature', () => {
    const all = [base, ...variants.map((v) => v.r)].map(requirementsSignature);
    expect(new Set(all).size).toBe(all.length);
  });

  it.each([
    { name: 'a model', r: req({ model: 'm' }) },
    { name: 'VRAM', r: req({ minVramBytes: 1 }) },
    { name: 'a capability', r: req({ minComputeCapability: '7.0' }) },
    { name: 'a GPU', r: req({ cpuAllowed: false }) },
  ])('any single requirement gives a signature: $name', ({ r }) => {
    expect(requirementsSignature(r)).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('parseTaskQueueName', () => {
  it.each([
    { kind: 'image.ocr', r: NO_REQUIREMENTS, tenant: DEFAULT_TENANT },
    { kind: 'audio.analyze', r: NO_REQUIREMENTS, tenant: '0' },
    { kind: 'selftest.sleep', r: req({ cpuAllowed: false }), tenant: 'acme' },
    { kind: 'text.generate', r: req({ model: 'llama-3-8b', minVramBytes: 24 * GiB }), tenant: 'team_a-1' },
    { kind: 'job.assemble', r: NO_REQUIREMENTS, tenant: 'x'.repeat(64) },
    { kind: 'a-b.c-d.e0', r: req({ minComputeCapability: '9.0' }), tenant: 'lab' },
  ])('round trip: $kind@$tenant', ({ kind, r, tenant }) => {
    const name = taskQueueName(kind, r, tenant);
    expect(parseTaskQueueName(name)).toEqual({ kind, signature: requirementsSignature(r), tenant });
  });

  it.each([
    { name: 'empty', queue: '' },
    { name: 'no tenant', queue: 'image.ocr' },
    { name: 'empty tenant', queue: 'image.ocr@' },
    { name: 'no kind', queue: '@default' },
    { name: 'upper-case kind', queue: 'Image.ocr@default' },
    { name: 'kind starting with a digit', queue: '1image.ocr@default' },
    { name: 'space in the kind', queue: 'image ocr@default' },
    { name: 'upper-case tenant', queue: 'image.ocr@Default' },
    { name: 'tenant starting with "-"', queue: 'image.ocr@-acme' },
    { name: 'tenant starting with "_"', queue: 'image.ocr@_acme' },
    { name: 'dot in the tenant', queue: 'image.ocr@acme.labs' },
    { name: 'tenant of 65 characters', queue: `image.ocr@${'x'.repeat(65)}` },
    { name: 'two tenants', queue: 'image.ocr@a@b' },
    { name: 'empty signature', queue: 'image.ocr#@default' },
    { name: 'short signature', queue: 'image.ocr#1234567@default' },
    { name: 'long signature', queue: 'image.ocr#123456789@default' },
    { name: 'upper-case signature', queue: 'image.ocr#ABCDEF12@default' },
    { name: 'non-hex signature', queue: 'image.ocr#1234567g@default' },
    { name: 'two signatures', queue: 'image.ocr#12345678#12345678@default' },
    { name: 'trailing newline', queue: 'image.ocr@default\n' },
    { name: 'BullMQ key prefix', queue: 'bull:image.ocr@default' },
  ])('rejects $name', ({ queue }) => {
    expect(parseTaskQueueName(queue)).toBeUndefined();
  });
});

describe('TENANT_PATTERN', () => {
  it.each(['default', 'acme', 'a', '0', '0team', 'team_a-1', 'a-', 'x'.repeat(64)])('accepts %j', (tenant) => {
    expect(TENANT_PATTERN.test(tenant)).toBe(true);
  });

  it.each(['', 'Acme', '-team', '_team', 'team.a', 'team a', 'tëam', 'team/a', 'team@a', 'team#a', 'x'.repeat(65), 'team\n'])('refuses %j', (tenant) => {
    expect(TENANT_PATTERN.test(tenant)).toBe(false);
  });

  it('accepts the default tenant', () => {
    expect(TENANT_PATTERN.test(DEFAULT_TENANT)).toBe(true);
  });
});
