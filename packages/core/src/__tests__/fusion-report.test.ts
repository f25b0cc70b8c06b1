import { describe, expect, it } from 'vitest';
import { buildFusionReport, type UpstreamItem } from '../fusion-report.js';
import { PROMPT_INPUT_NAME } from '../job-spec.js';
import type { FusionParams } from '../planner.js';
import { fusionReportOutputSchema } from '../task-outputs.js';
import { audioOutput, inspectOutput, ocrOutput, textStatsOutput } from './fixtures.js';

const ok = (taskId: string, kind: string, input: string, output: unknown): UpstreamItem => ({
  taskId,
  kind,
  inputNames: [input],
  outputJson: JSON.stringify(output),
});
const failed = (taskId: string, kind: string, input: string, message: string): UpstreamItem => ({
  taskId,
  kind,
  inputNames: [input],
  error: { code: 'TASK_FAILED', message },
});

const PROMPT = 'Find the INVOICE total';
const params: FusionParams = {
  prompt: PROMPT,
  inputs: [
    { name: 'scan', modality: 'image' },
    { name: 'memo', modality: 'audio' },
    { name: 'notes', modality: 'text' },
  ],
};

/** What the planner would run for `params`, all succeeded. */
function allSucceeded(): UpstreamItem[] {
  return [
    ok('t1', 'image.ocr', 'scan', ocrOutput('Invoice No. 17\nTOTAL: 42 EUR')),
    ok('t2', 'image.inspect', 'scan', inspectOutput()),
    ok('t3', 'audio.analyze', 'memo', audioOutput()),
    ok('t4', 'text.stats', 'notes', textStatsOutput('input', 'The total was paid in cash.')),
    ok('t5', 'text.stats', PROMPT_INPUT_NAME, textStatsOutput('prompt', PROMPT)),
  ];
}

describe('buildFusionReport: sections', () => {
  it('has one section per input, in input order, with the prompt last, whatever order the upstream came in', () => {
    const upstream = allSucceeded();
    const shuffled = [upstream[4], upstream[2], upstream[0], upstream[3], upstream[1]].filter((u) => u !== undefined);
    const report = buildFusionReport(params, shuffled);
    expect(report.sections.map((s) => [s.input, s.modality, s.kinds])).toEqual([
      ['scan', 'image', ['image.ocr', 'image.inspect']],
      ['memo', 'audio', ['audio.analyze']],
      ['notes', 'text', ['text.stats']],
      ['prompt', 'text', ['text.stats']],
    ]);
    expect(report).toEqual(buildFusionReport(params, upstream));
  });

  it('describes each output in a line', () => {
    const report = buildFusionReport(params, allSucceeded());
    const lines = Object.fromEntries(report.sections.map((s) => [s.input, s.lines]));
    expect(lines['scan']).toEqual([
      'text reads "Invoice No. 17 TOTAL: 42 EUR" (6 words, 91% confidence)',
      '640×480 PNG, 3 channels; colours: white 61%, black 30%, red 5%',
    ]);
    expect(lines['memo']).toEqual([
      '3.00 s, 16000 Hz, 1 channel (wav/pcm_s16le); level -20.0 dBFS RMS, peak -3.0 dBFS; speech 2.00 s in 1 segment, silence 1.00 s',
    ]);
    expect(lines['notes']?.[0]).toMatch(/^6 words, 1 sentence, Latin script; frequent: the \(1\), total \(1\)/);
  });

  it('orders tasks by number, not as strings (t10 after t9)', () => {
    const upstream = [
      ok('t10', 'image.inspect', 'scan', inspectOutput()),
      ok('t9', 'image.ocr', 'scan', ocrOutput('hello')),
    ];
    const report = buildFusionReport({ prompt: '', inputs: [{ name: 'scan', modality: 'image' }] }, upstream);
    expect(report.sections[0]?.kinds).toEqual(['image.ocr', 'image.inspect']);
  });

  it('produces output that satisfies the fusion.report schema', () => {
    const report = buildFusionReport(params, allSucceeded());
    expect(fusionReportOutputSchema.parse(report)).toEqual(report);
  });

  it('is deterministic', () => {
    expect(JSON.stringify(buildFusionReport(params, allSucceeded()))).toBe(JSON.stringify(buildFusionReport(params, allSucceeded())));
  });
});

describe('buildFusionReport: prompt terms', () => {
  const cases: { name: string; prompt: string; ocr: string; notes: string; matched: { term: string; foundIn: string[] }[] }[] = [
    {
      name: 'case-insensitive match in OCR text and a text input',
      prompt: PROMPT,
      ocr: 'Invoice No. 17\nTOTAL: 42 EUR',
      notes: 'The total was paid in cash.',
      matched: [
        { term: 'the', foundIn: ['notes'] },
        { term: 'invoice', foundIn: ['scan'] },
        { term: 'total', foundIn: ['scan', 'notes'] },
      ],
    },
    { name: 'terms shorter than three letters are ignored', prompt: 'is it an ox or a cat', ocr: 'IS IT AN OX', notes: 'or a CAT', matched: [{ term: 'cat', foundIn: ['notes'] }] },
    { name: 'non-Latin scripts', prompt: 'Где кот?', ocr: 'КОТ СПИТ', notes: 'nothing here', matched: [{ term: 'кот', foundIn: ['scan'] }] },
    { name: 'no match', prompt: 'zebra', ocr: 'Invoice', notes: 'cash', matched: [] },
    { name: 'whole words only', prompt: 'cat', ocr: 'concatenate category', notes: 'cats', matched: [] },
  ];
  it.each(cases)('$name', ({ prompt, ocr, notes, matched }) => {
    const upstream = [
      ok('t1', 'image.ocr', 'scan', ocrOutput(ocr)),
      ok('t2', 'audio.analyze', 'memo', audioOutput()),
      ok('t3', 'text.stats', 'notes', textStatsOutput('input', notes)),
      ok('t4', 'text.stats', PROMPT_INPUT_NAME, textStatsOutput('prompt', prompt)),
    ];
    const report = buildFusionReport({ ...params, prompt }, upstream);
    expect(report.matchedTerms).toEqual(matched);
  });

  it('does not count the prompt as matching itself', () => {
    const report = buildFusionReport({ prompt: 'hello world', inputs: [] }, [ok('t1', 'text.stats', PROMPT_INPUT_NAME, textStatsOutput('prompt', 'hello world'))]);
    expect(report.matchedTerms).toEqual([]);
    expect(report.summary).toBe('Prompt: "hello world".\nNone of the prompt terms appear in the inputs.');
  });
});

describe('buildFusionReport: missing parts', () => {
  const cases: { name: string; upstream: () => UpstreamItem[]; missing: { input: string; kind: string; reason: string }[]; coverage: number; summary: RegExp }[] = [
    { name: 'nothing missing', upstream: allSucceeded, missing: [], coverage: 1, summary: /^(?![\s\S]*Missing)/ },
    {
      name: 'OCR failed',
      upstream: () => allSucceeded().map((u) => (u.taskId === 't1' ? failed('t1', 'image.ocr', 'scan', 'tesseract crashed') : u)),
      missing: [{ input: 'scan', kind: 'image.ocr', reason: 'tesseract crashed' }],
      coverage: 0.8,
      summary: /Missing \(80% coverage\): image\.ocr of scan \(tesseract crashed\)\.$/,
    },
    {
      name: 'prompt analysis and audio failed, one without an error',
      upstream: () =>
        allSucceeded().map((u) =>
          u.taskId === 't5' ? failed('t5', 'text.stats', PROMPT_INPUT_NAME, 'worker lost') : u.taskId === 't3' ? { taskId: 't3', kind: 'audio.analyze', inputNames: ['memo'] } : u,
        ),
      missing: [
        { input: 'memo', kind: 'audio.analyze', reason: 'no output' },
        { input: 'prompt', kind: 'text.stats', reason: 'worker lost' },
      ],
      coverage: 0.6,
      summary: /Missing \(60% coverage\): audio\.analyze of memo \(no output\); text\.stats of prompt \(worker lost\)\.$/,
    },
  ];
  it.each(cases)('$name', ({ upstream, missing, coverage, summary }) => {
    const report = buildFusionReport(params, upstream());
    expect(report.missing).toEqual(missing);
    expect(report.coverage).toBeCloseTo(coverage, 10);
    expect(report.summary).toMatch(summary);
    for (const m of missing) {
      const section = report.sections.find((s) => s.input === m.input);
      expect(section?.lines).toContain(`${m.kind} failed: ${m.reason}`);
    }
  });

  it('leaves a failed part out of its input\'s line in the summary', () => {
    const upstream = allSucceeded().map((u) => (u.taskId === 't1' ? failed('t1', 'image.ocr', 'scan', 'tesseract crashed') : u));
    const report = buildFusionReport(params, upstream);
    expect(report.summary).toContain('scan (image): 640×480 PNG, 3 channels; colours: white 61%, black 30%, red 5%.');
  });

  it('has zero coverage with no upstream at all', () => {
    const report = buildFusionReport({ prompt: 'x', inputs: [] }, []);
    expect(report.coverage).toBe(0);
    expect(report.sections).toEqual([]);
  });
});

describe('buildFusionReport: summary', () => {
  it('quotes the prompt, describes every input, and names the matched terms', () => {
    const summary = buildFusionReport(params, allSucceeded()).summary.split('\n');
    expect(summary[0]).toBe('Prompt: "Find the INVOICE total".');
    expect(summary[1]).toMatch(/^scan \(image\): text reads "Invoice No\. 17 TOTAL: 42 EUR".*; 640×480 PNG/);
    expect(summary[2]).toMatch(/^memo \(audio\): 3\.00 s, 16000 Hz/);
    expect(summary[3]).toMatch(/^notes \(text\): 6 words/);
    expect(summary[4]).toBe('Prompt terms found in the inputs: "the" in notes; "invoice" in scan; "total" in scan, notes.');
    expect(summary).toHaveLength(5);
  });

  it('has no prompt lines when there is no prompt', () => {
    const report = buildFusionReport({ prompt: '', inputs: [{ name: 'memo', modality: 'audio' }] }, [ok('t1', 'audio.analyze', 'memo', audioOutput())]);
    expect(report.summary).toMatch(/^memo \(audio\): [^\n]+\.$/);
  });

  it('shortens long OCR text in quotes', () => {
    const long = 'word '.repeat(100);
    const report = buildFusionReport({ prompt: '', inputs: [{ name: 'scan', modality: 'image' }] }, [ok('t1', 'image.ocr', 'scan', ocrOutput(long))]);
    const line = report.sections[0]?.lines[0] ?? '';
    const quoted = /"([^"]*)"/.exec(line)?.[1] ?? '';
    expect(quoted).toHaveLength(160);
    expect(quoted.endsWith('…')).toBe(true);
  });

  it('keeps OCR text that happens to contain "failed:" in the summary', () => {
    const report = buildFusionReport({ prompt: '', inputs: [{ name: 'screenshot', modality: 'image' }] }, [
      ok('t1', 'image.ocr', 'screenshot', ocrOutput('Build failed: exit code 2')),
    ]);
    expect(report.summary).toBe('screenshot (image): text reads "Build failed: exit code 2" (5 words, 91% confidence).');
  });

  it('treats a user input named "prompt" as an input, apart from the prompt', () => {
    const report = buildFusionReport({ prompt: 'check the prompt', inputs: [{ name: 'prompt', modality: 'text' }, { name: 'memo', modality: 'audio' }] }, [
      ok('t1', 'text.stats', 'prompt', textStatsOutput('input', 'a saved prompt')),
      ok('t2', 'audio.analyze', 'memo', audioOutput()),
      ok('t3', 'text.stats', PROMPT_INPUT_NAME, textStatsOutput('prompt', 'check the prompt')),
    ]);
    expect(report.sections.map((s) => [s.input, s.kinds[0]])).toEqual([
      ['prompt', 'text.stats'],
      ['memo', 'audio.analyze'],
      ['prompt', 'text.stats'],
    ]);
    expect(report.sections[0]?.lines[0]).toMatch(/^3 words/);
    expect(report.summary).toContain('prompt (text): 3 words');
  });
});
