import { describe, expect, it } from 'vitest';
import { specError } from './fixtures.js';
import { checkDeclaredSteps, STEP_ID_PATTERN, type CheckedStep } from '../declared-pipeline.js';
import type { Modality } from '../modality.js';
import { NO_REQUIREMENTS } from '../task-graph.js';

const GiB = 1024 ** 3;

/** The job's inputs by name: a picture, a recording and a text. */
const INPUTS: ReadonlyMap<string, Modality | undefined> = new Map<string, Modality | undefined>([
  ['scan', 'image'],
  ['memo', 'audio'],
  ['notes', 'text'],
]);

function byId(steps: readonly CheckedStep[]): Record<string, CheckedStep> {
  return Object.fromEntries(steps.map((s) => [s.id, s]));
}

describe('checkDeclaredSteps: a valid graph', () => {
  const steps = checkDeclaredSteps(
    {
      read: { kind: 'image.ocr', input: 'scan' },
      look: { kind: 'image.inspect', input: 'scan', params: { colours: 3 }, optional: true },
      listen: { kind: 'audio.analyze', input: 'memo', shard: true, requires: { gpu: true } },
      said: { kind: 'audio.transcribe', input: 'memo', shard: { windowSec: 20, overlapSec: 1 }, params: { language: 'en' }, requires: { model: 'whisper-large-v3', vramGiB: 6 } },
      count: { kind: 'text.stats', input: 'notes', shard: { chunkChars: 1000 } },
      report: { kind: 'fusion.report', from: ['read', 'look', 'listen', 'said', 'count'] },
    },
    INPUTS,
  );

  it('keeps every step, in declaration order', () => {
    expect(steps.map((s) => s.id)).toEqual(['read', 'look', 'listen', 'said', 'count', 'report']);
  });

  it('fills the defaults', () => {
    expect(byId(steps)['read']).toEqual({
      id: 'read',
      kind: 'image.ocr',
      input: 'scan',
      from: [],
      params: {},
      requirements: NO_REQUIREMENTS,
      optional: false,
      shard: undefined,
    });
  });

  it('keeps params, optional, input and from', () => {
    const s = byId(steps);
    expect(s['look']).toMatchObject({ params: { colours: 3 }, optional: true, input: 'scan' });
    expect(s['report']).toMatchObject({ kind: 'fusion.report', input: undefined, from: ['read', 'look', 'listen', 'said', 'count'] });
  });

  it('turns shard: true into default shard options, and keeps given ones', () => {
    const s = byId(steps);
    expect(s['listen']?.shard).toEqual({});
    expect(s['said']?.shard).toEqual({ windowSec: 20, overlapSec: 1 });
    expect(s['count']?.shard).toEqual({ chunkChars: 1000 });
    expect(s['read']?.shard).toBeUndefined();
  });

  it('accepts shard: false on any kind, as no sharding', () => {
    const [step] = checkDeclaredSteps({ look: { kind: 'image.inspect', input: 'scan', shard: false } }, INPUTS);
    expect(step?.shard).toBeUndefined();
  });

  it('accepts steps declared after the steps that read them', () => {
    const out = checkDeclaredSteps({ report: { kind: 'fusion.report', from: ['read'] }, read: { kind: 'image.ocr', input: 'scan' } }, INPUTS);
    expect(out.map((s) => s.id)).toEqual(['report', 'read']);
  });

  it('accepts a chain of combining steps', () => {
    const out = checkDeclaredSteps(
      {
        read: { kind: 'image.ocr', input: 'scan' },
        inner: { kind: 'fusion.report', from: ['read'] },
        outer: { kind: 'fusion.report', from: ['inner'] },
      },
      INPUTS,
    );
    expect(out.map((s) => [s.id, s.from])).toEqual([
      ['read', []],
      ['inner', ['read']],
      ['outer', ['inner']],
    ]);
  });

  it('accepts a step that reads nothing, with no inputs at all', () => {
    const [step] = checkDeclaredSteps({ pause: { kind: 'selftest.sleep', params: { ms: 10 } } }, new Map());
    expect(step).toMatchObject({ id: 'pause', kind: 'selftest.sleep', input: undefined, from: [], params: { ms: 10 } });
  });

  it('skips the type check for inputs whose modality is not known yet', () => {
    const unknown = new Map<string, Modality | undefined>([['anything', undefined]]);
    expect(() => checkDeclaredSteps({ read: { kind: 'image.ocr', input: 'anything' }, listen: { kind: 'audio.analyze', input: 'anything' } }, unknown)).not.toThrow();
  });

  it('accepts step names of the documented shape', () => {
    for (const id of ['a', 'ocr_2', 'x'.repeat(64)]) expect(STEP_ID_PATTERN.test(id)).toBe(true);
    for (const id of ['A', '2ocr', '_a', 'a-b', 'a.b', 'x'.repeat(65), '']) expect(STEP_ID_PATTERN.test(id)).toBe(false);
  });
});

describe('checkDeclaredSteps: requires → requirements', () => {
  it.each([
    { name: 'nothing', requires: {}, r: NO_REQUIREMENTS },
    { name: 'a model alone still allows the CPU', requires: { model: 'tesseract-5' }, r: { ...NO_REQUIREMENTS, model: 'tesseract-5' } },
    { name: 'gpu: true needs a GPU', requires: { gpu: true }, r: { ...NO_REQUIREMENTS, cpuAllowed: false } },
    { name: 'gpu: false is no requirement', requires: { gpu: false }, r: NO_REQUIREMENTS },
    { name: 'VRAM in GiB becomes bytes and needs a GPU', requires: { vramGiB: 24 }, r: { ...NO_REQUIREMENTS, minVramBytes: 24 * GiB, cpuAllowed: false } },
    { name: 'fractional GiB rounds to whole bytes', requires: { vramGiB: 0.5 }, r: { ...NO_REQUIREMENTS, minVramBytes: GiB / 2, cpuAllowed: false } },
    { name: 'gpu: false does not override VRAM', requires: { vramGiB: 1, gpu: false }, r: { ...NO_REQUIREMENTS, minVramBytes: GiB, cpuAllowed: false } },
    { name: 'compute capability needs a GPU', requires: { computeCapability: '8.6' }, r: { ...NO_REQUIREMENTS, minComputeCapability: '8.6', cpuAllowed: false } },
    {
      name: 'everything',
      requires: { model: 'whisper-large-v3', vramGiB: 10, computeCapability: '10.0', gpu: true },
      r: { model: 'whisper-large-v3', minVramBytes: 10 * GiB, minComputeCapability: '10.0', cpuAllowed: false },
    },
  ])('$name', ({ requires, r }) => {
    const [step] = checkDeclaredSteps({ said: { kind: 'audio.transcribe', input: 'memo', requires } }, INPUTS);
    expect(step?.requirements).toEqual(r);
  });
});

describe('checkDeclaredSteps: refusals', () => {
  const cases: { name: string; steps: unknown; path: string; message: RegExp; inputs?: ReadonlyMap<string, Modality | undefined> }[] = [
    { name: 'steps that are not a map (a list)', steps: [{ kind: 'image.ocr' }], path: 'steps', message: /expected record/ },
    { name: 'steps that are not a map (a string)', steps: 'image.ocr', path: 'steps', message: /expected record/ },
    { name: 'no steps', steps: {}, path: 'steps', message: /needs at least one step/ },
    { name: 'a bad step name', steps: { OCR: { kind: 'image.ocr', input: 'scan' } }, path: 'steps.OCR', message: /lower-case letters, digits and "_"/ },
    { name: 'a step that is not an object', steps: { read: 'image.ocr' }, path: 'steps.read', message: /expected object/ },
    { name: 'a step without a kind', steps: { read: { input: 'scan' } }, path: 'steps.read.kind', message: /./ },
    { name: 'an empty kind', steps: { read: { kind: '', input: 'scan' } }, path: 'steps.read.kind', message: /must name a task kind/ },
    {
      name: 'an unknown kind, listing the kinds',
      steps: { read: { kind: 'image.describe', input: 'scan' } },
      path: 'steps.read.kind',
      message:
        /unknown kind "image\.describe"; kinds: image\.ocr, image\.inspect, audio\.analyze, text\.stats, fusion\.report, selftest\.sleep, audio\.transcribe, text\.generate, image\.caption, image\.classify, fusion\.llm, or exec\.NAME for a command a worker's owner set up$/,
    },
    { name: 'a kind that cannot be declared (a split)', steps: { cut: { kind: 'audio.split', input: 'memo' } }, path: 'steps.cut.kind', message: /unknown kind "audio\.split"; kinds: .*image\.ocr/ },
    { name: 'a kind that cannot be declared (a stitch)', steps: { join: { kind: 'audio.stitch', from: ['x'] } }, path: 'steps.join.kind', message: /unknown kind "audio\.stitch"/ },
    { name: 'the assembly', steps: { done: { kind: 'job.assemble', from: ['x'] } }, path: 'steps.done.kind', message: /unknown kind "job\.assemble"/ },
    { name: 'a missing input', steps: { read: { kind: 'image.ocr' } }, path: 'steps.read.input', message: /image\.ocr reads an image: name the job input in input:/ },
    {
      name: 'an input that does not exist',
      steps: { read: { kind: 'image.ocr', input: 'photo' } },
      path: 'steps.read.input',
      message: /no job input is named "photo"; inputs: scan, memo, notes/,
    },
    { name: 'an input reference when the job has none', steps: { read: { kind: 'image.ocr', input: 'photo' } }, path: 'steps.read.input', message: /inputs: none/, inputs: new Map() },
    { name: 'an empty input name', steps: { read: { kind: 'image.ocr', input: '' } }, path: 'steps.read.input', message: /./ },
    {
      name: 'an input of the wrong type (image.ocr given a recording)',
      steps: { read: { kind: 'image.ocr', input: 'memo' } },
      path: 'steps.read.input',
      message: /image\.ocr reads an image, but "memo" is a recording$/,
    },
    { name: 'an input of the wrong type (audio.analyze given a text)', steps: { listen: { kind: 'audio.analyze', input: 'notes' } }, path: 'steps.listen.input', message: /audio\.analyze reads a recording, but "notes" is text$/ },
    {
      name: 'an input of the wrong type (image.ocr given a video)',
      steps: { read: { kind: 'image.ocr', input: 'clip' } },
      path: 'steps.read.input',
      message: /image\.ocr reads an image, but "clip" is a video$/,
      inputs: new Map<string, Modality | undefined>([['clip', 'video']]),
    },
    { name: 'a missing input on a kind that reads a recording', steps: { listen: { kind: 'audio.analyze' } }, path: 'steps.listen.input', message: /audio\.analyze reads a recording: name the job input in input:/ },
    { name: 'a missing input on a kind that reads text', steps: { count: { kind: 'text.stats' } }, path: 'steps.count.input', message: /text\.stats reads text: name the job input in input:/ },
    { name: 'from on a kind that reads an input', steps: { read: { kind: 'image.ocr', input: 'scan', from: ['other'] }, other: { kind: 'image.inspect', input: 'scan' } }, path: 'steps.read.from', message: /reads a job input \(use input:\)/ },
    { name: 'from without input on a kind that reads an input', steps: { read: { kind: 'image.ocr', from: ['other'] }, other: { kind: 'image.inspect', input: 'scan' } }, path: 'steps.read.from', message: /use input:/ },
    { name: 'input on fusion.report', steps: { report: { kind: 'fusion.report', input: 'scan', from: ['read'] }, read: { kind: 'image.ocr', input: 'scan' } }, path: 'steps.report.input', message: /reads the outputs of other steps \(use from:\), not a job input/ },
    { name: 'fusion.report without from', steps: { report: { kind: 'fusion.report' } }, path: 'steps.report.from', message: /name them in from:/ },
    { name: 'an empty from', steps: { report: { kind: 'fusion.report', from: [] } }, path: 'steps.report.from', message: /must name at least one step/ },
    { name: 'input on a kind that reads nothing', steps: { pause: { kind: 'selftest.sleep', input: 'scan' } }, path: 'steps.pause', message: /selftest\.sleep reads nothing/ },
    { name: 'from on a kind that reads nothing', steps: { pause: { kind: 'selftest.sleep', from: ['read'] }, read: { kind: 'image.ocr', input: 'scan' } }, path: 'steps.pause', message: /reads nothing/ },
    {
      name: 'a dangling from reference',
      steps: { read: { kind: 'image.ocr', input: 'scan' }, report: { kind: 'fusion.report', from: ['read', 'summary'] } },
      path: 'steps.report.from[1]',
      message: /no step is named "summary"; steps: read, report/,
    },
    { name: 'a dangling first from reference', steps: { report: { kind: 'fusion.report', from: ['nothing'] } }, path: 'steps.report.from[0]', message: /no step is named "nothing"/ },
    { name: 'a step reading itself', steps: { report: { kind: 'fusion.report', from: ['report'] } }, path: 'steps.report.from[0]', message: /cannot read its own output/ },
    {
      name: 'a step feeding two steps',
      steps: { read: { kind: 'image.ocr', input: 'scan' }, a: { kind: 'fusion.report', from: ['read'] }, b: { kind: 'fusion.report', from: ['read'] } },
      path: 'steps.b.from[0]',
      message: /step "read" already feeds "a"; a step's output goes to one step/,
    },
    {
      name: 'a cycle of two',
      steps: { a: { kind: 'fusion.report', from: ['b'] }, b: { kind: 'fusion.report', from: ['a'] } },
      path: 'steps.a.from',
      message: /steps a → b → a form a cycle/,
    },
    {
      name: 'a cycle of three, fed from outside',
      steps: {
        read: { kind: 'image.ocr', input: 'scan' },
        x: { kind: 'fusion.report', from: ['read', 'z'] },
        y: { kind: 'fusion.report', from: ['x'] },
        z: { kind: 'fusion.report', from: ['y'] },
      },
      path: 'steps.x.from',
      message: /steps x → z → y → x form a cycle/,
    },
    { name: 'an unknown field in a step', steps: { read: { kind: 'image.ocr', input: 'scan', inputs: ['scan'] } }, path: 'steps.read', message: /has no field "inputs"; a step takes kind, input, from, params, requires, optional, shard/ },
    { name: 'an unknown field in requires', steps: { read: { kind: 'image.ocr', input: 'scan', requires: { gpus: 2 } } }, path: 'steps.read.requires', message: /has no field "gpus"/ },
    { name: 'an unknown field in shard', steps: { listen: { kind: 'audio.analyze', input: 'memo', shard: { windows: 3 } } }, path: 'steps.listen.shard', message: /./ },
    { name: 'a bad parameter value (colours: 99)', steps: { look: { kind: 'image.inspect', input: 'scan', params: { colours: 99 } } }, path: 'steps.look.params', message: /^steps\.look\.params: image\.inspect colours: .*32/ },
    { name: 'a parameter of the wrong type', steps: { look: { kind: 'image.inspect', input: 'scan', params: { thumbnailMaxPx: 'big' } } }, path: 'steps.look.params', message: /image\.inspect thumbnailMaxPx: / },
    { name: 'an unknown parameter', steps: { read: { kind: 'image.ocr', input: 'scan', params: { lang: 'deu' } } }, path: 'steps.read.params', message: /image\.ocr has no parameter "lang"/ },
    { name: 'a language OCR does not have', steps: { read: { kind: 'image.ocr', input: 'scan', params: { language: 'deu' } } }, path: 'steps.read.params', message: /image\.ocr language: / },
    { name: 'a parameter on text.stats, which takes none', steps: { count: { kind: 'text.stats', input: 'notes', params: { top: 5 } } }, path: 'steps.count.params', message: /text\.stats has no parameter "top"/ },
    { name: 'params that are not a map', steps: { read: { kind: 'image.ocr', input: 'scan', params: ['eng'] } }, path: 'steps.read.params', message: /./ },
    { name: 'shard on a kind that cannot be sharded', steps: { read: { kind: 'image.ocr', input: 'scan', shard: true } }, path: 'steps.read.shard', message: /image\.ocr cannot be sharded; audio\.analyze, audio\.transcribe and text\.stats can/ },
    { name: 'shard options on fusion.report', steps: { read: { kind: 'image.ocr', input: 'scan' }, report: { kind: 'fusion.report', from: ['read'], shard: { windowSec: 10 } } }, path: 'steps.report.shard', message: /fusion\.report cannot be sharded/ },
    { name: 'a zero window', steps: { listen: { kind: 'audio.analyze', input: 'memo', shard: { windowSec: 0 } } }, path: 'steps.listen.shard.windowSec', message: /./ },
    { name: 'a fractional chunk size', steps: { count: { kind: 'text.stats', input: 'notes', shard: { chunkChars: 100.5 } } }, path: 'steps.count.shard', message: /./ },
    { name: 'shard that is neither a boolean nor options', steps: { count: { kind: 'text.stats', input: 'notes', shard: 'yes' } }, path: 'steps.count.shard', message: /./ },
    { name: 'an optional that is not a boolean', steps: { read: { kind: 'image.ocr', input: 'scan', optional: 'yes' } }, path: 'steps.read.optional', message: /./ },
    { name: 'a negative VRAM', steps: { read: { kind: 'image.ocr', input: 'scan', requires: { vramGiB: -1 } } }, path: 'steps.read.requires.vramGiB', message: /./ },
    { name: 'a bad compute capability', steps: { read: { kind: 'image.ocr', input: 'scan', requires: { computeCapability: 'sm_80' } } }, path: 'steps.read.requires.computeCapability', message: /must look like 8\.0/ },
  ];

  it.each(cases)('$name → $path', ({ steps, path, message, inputs }) => {
    const err = specError(() => checkDeclaredSteps(steps, inputs ?? INPUTS));
    expect(err.path).toBe(path);
    expect(err.code).toBe('INVALID_JOB_SPEC');
    expect(err.message.startsWith(`${path}: `)).toBe(true);
    expect(err.message).toMatch(message);
  });

  it('names the first bad step in declaration order', () => {
    const err = specError(() =>
      checkDeclaredSteps({ ok: { kind: 'image.ocr', input: 'scan' }, first: { kind: 'nope' }, second: { kind: 'image.ocr', input: 'missing' } }, INPUTS),
    );
    expect(err.path).toBe('steps.first.kind');
  });
});
