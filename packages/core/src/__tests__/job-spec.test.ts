import { describe, expect, it } from 'vitest';
import { InvalidJobSpecError } from '../errors.js';
import { DEFAULT_JOB_LIMITS, validateJobSpec, type JobLimits } from '../job-spec.js';

const SHA = '0123456789abcdef'.repeat(4);
const blob = (name: string) => ({ name, source: { type: 'blob', blob: { sha256: SHA, size: 10, mediaType: 'image/png', name: `${name}.png` } } });
const text = (name: string, t = 'some text') => ({ name, source: { type: 'text', text: t } });

function refusal(raw: unknown, limits?: JobLimits): InvalidJobSpecError {
  try {
    validateJobSpec(raw, limits);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidJobSpecError);
    if (err instanceof InvalidJobSpecError) return err;
  }
  throw new Error(`expected ${JSON.stringify(raw)} to be refused`);
}

describe('validateJobSpec: accepted specs', () => {
  const cases: { name: string; raw: unknown; expected: { pipeline: string; priority: number; prompt: string; inputs: number; labels: Record<string, string> } }[] = [
    { name: 'prompt only, defaults filled', raw: { inputs: [], prompt: 'What is this?' }, expected: { pipeline: 'describe', priority: 0, prompt: 'What is this?', inputs: 0, labels: {} } },
    { name: 'one blob input, no prompt', raw: { inputs: [blob('cat')] }, expected: { pipeline: 'describe', priority: 0, prompt: '', inputs: 1, labels: {} } },
    { name: 'empty pipeline means the default', raw: { inputs: [text('notes')], pipeline: '' }, expected: { pipeline: 'describe', priority: 0, prompt: '', inputs: 1, labels: {} } },
    {
      name: 'everything given',
      raw: { inputs: [blob('cat'), text('notes')], prompt: 'p', pipeline: 'describe', priority: -10, labels: { team: 'vision' } },
      expected: { pipeline: 'describe', priority: -10, prompt: 'p', inputs: 2, labels: { team: 'vision' } },
    },
    { name: 'highest priority', raw: { inputs: [text('a')], priority: 10 }, expected: { pipeline: 'describe', priority: 10, prompt: '', inputs: 1, labels: {} } },
    { name: 'unicode input name', raw: { inputs: [text('фото кота.png')] }, expected: { pipeline: 'describe', priority: 0, prompt: '', inputs: 1, labels: {} } },
  ];
  it.each(cases)('$name', ({ raw, expected }) => {
    const spec = validateJobSpec(raw);
    expect(spec.pipeline).toBe(expected.pipeline);
    expect(spec.priority).toBe(expected.priority);
    expect(spec.prompt).toBe(expected.prompt);
    expect(spec.inputs).toHaveLength(expected.inputs);
    expect(spec.labels).toEqual(expected.labels);
  });

  it('keeps inputs in order with their sources', () => {
    const spec = validateJobSpec({ inputs: [blob('cat'), text('notes', 'hello')] });
    expect(spec.inputs).toEqual([
      { name: 'cat', source: { type: 'blob', blob: { sha256: SHA, size: 10, mediaType: 'image/png', name: 'cat.png' } } },
      { name: 'notes', source: { type: 'text', text: 'hello' } },
    ]);
  });
});

describe('validateJobSpec: refused specs', () => {
  const cases: { name: string; raw: unknown; limits?: JobLimits; path: string; message: RegExp }[] = [
    { name: 'no inputs and no prompt', raw: { inputs: [] }, path: '', message: /empty.*give at least one input.*or a prompt/ },
    { name: 'no inputs and a blank prompt', raw: { inputs: [], prompt: '  \n ' }, path: '', message: /give at least one input/ },
    { name: 'not an object', raw: 'hello', path: '', message: /./ },
    { name: 'inputs missing', raw: { prompt: 'x' }, path: 'inputs', message: /./ },
    { name: 'duplicate input names', raw: { inputs: [text('a'), text('b'), text('a')] }, path: 'inputs[2].name', message: /"a" is already the name of inputs\[0\].*unique/ },
    { name: 'name starting with @', raw: { inputs: [text('@prompt')] }, path: 'inputs[0].name', message: /must not start with "@"/ },
    { name: 'name with a newline', raw: { inputs: [text('ok'), text('a\nb')] }, path: 'inputs[1].name', message: /control characters/ },
    { name: 'name with DEL', raw: { inputs: [text('a\u007f')] }, path: 'inputs[0].name', message: /control characters/ },
    { name: 'empty name', raw: { inputs: [text('')] }, path: 'inputs[0].name', message: /must not be empty/ },
    { name: 'name too long', raw: { inputs: [text('x'.repeat(256))] }, path: 'inputs[0].name', message: /at most 255 characters/ },
    { name: 'empty inline text', raw: { inputs: [text('a', '')] }, path: 'inputs[0].source.text', message: /must not be empty/ },
    { name: 'priority above range', raw: { inputs: [text('a')], priority: 11 }, path: 'priority', message: /from -10 to 10/ },
    { name: 'priority below range', raw: { inputs: [text('a')], priority: -11 }, path: 'priority', message: /from -10 to 10/ },
    { name: 'fractional priority', raw: { inputs: [text('a')], priority: 1.5 }, path: 'priority', message: /whole number/ },
    { name: 'unknown pipeline', raw: { inputs: [text('a')], pipeline: 'summarize' }, path: 'pipeline', message: /must be one of: describe/ },
    {
      name: 'too many inputs',
      raw: { inputs: [text('a'), text('b'), text('c')] },
      limits: { ...DEFAULT_JOB_LIMITS, maxInputs: 2 },
      path: 'inputs',
      message: /at most 2 inputs/,
    },
    {
      name: 'too many inputs (default limit)',
      raw: { inputs: Array.from({ length: DEFAULT_JOB_LIMITS.maxInputs + 1 }, (_, i) => text(`in${i}`)) },
      path: 'inputs',
      message: new RegExp(`at most ${DEFAULT_JOB_LIMITS.maxInputs} inputs`),
    },
    {
      name: 'prompt too long',
      raw: { inputs: [], prompt: 'x'.repeat(11) },
      limits: { ...DEFAULT_JOB_LIMITS, maxPromptChars: 10 },
      path: 'prompt',
      message: /at most 10 characters/,
    },
    {
      name: 'sha256 too short',
      raw: { inputs: [{ name: 'a', source: { type: 'blob', blob: { sha256: 'abc', size: 1, mediaType: 'image/png', name: 'a' } } }] },
      path: 'inputs[0].source.blob.sha256',
      message: /64 lower-case hex characters/,
    },
    {
      name: 'sha256 upper-case',
      raw: { inputs: [{ name: 'a', source: { type: 'blob', blob: { sha256: SHA.toUpperCase(), size: 1, mediaType: 'image/png', name: 'a' } } }] },
      path: 'inputs[0].source.blob.sha256',
      message: /64 lower-case hex characters/,
    },
    {
      name: 'too many labels',
      raw: { inputs: [text('a')], labels: { a: '1', b: '2', c: '3' } },
      limits: { ...DEFAULT_JOB_LIMITS, maxLabels: 2 },
      path: 'labels',
      message: /at most 2 labels/,
    },
    { name: 'label value too long', raw: { inputs: [text('a')], labels: { team: 'x'.repeat(257) } }, path: 'labels.team', message: /at most 256 characters/ },
  ];
  it.each(cases)('$name', ({ raw, limits, path, message }) => {
    const err = refusal(raw, limits);
    expect(err.code).toBe('INVALID_JOB_SPEC');
    expect(err.path).toBe(path);
    expect(err.message).toMatch(message);
    if (path !== '') expect(err.message.startsWith(`${path}: `)).toBe(true);
  });
});
