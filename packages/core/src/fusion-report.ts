import { PROMPT_INPUT_NAME } from './job-spec.js';
import type { FusionParams } from './planner.js';
import { isBuiltinWorkerKind, parseTaskOutput, videoStitchOutputSchema, type FusionReportOutput } from './task-outputs.js';
import { wordsOf } from './words.js';

/** One upstream task's outcome, as the fusion step receives it. */
export interface UpstreamItem {
  readonly taskId: string;
  readonly kind: string;
  readonly inputNames: readonly string[];
  /** JSON output; undefined when the task failed. */
  readonly outputJson?: string | undefined;
  readonly error?: { readonly code: string; readonly message: string } | undefined;
}

type Section = FusionReportOutput['sections'][number];

const MIN_TERM_LENGTH = 3;

/**
 * The deterministic fusion: a report that puts every modality's findings next to the prompt,
 * notes which prompt terms appear in the inputs' content, and lists what is missing.
 */
export function buildFusionReport(params: FusionParams, upstream: readonly UpstreamItem[]): FusionReportOutput {
  const sections = new Map<string, Section>();
  const modalityOf = new Map<string, string>(params.inputs.map((i) => [i.name, i.modality]));
  modalityOf.set(PROMPT_INPUT_NAME, 'text');
  const contentByInput = new Map<string, string[]>();
  /** Lines of outputs that succeeded, by input (failures are kept apart, not told apart by their text). */
  const okLines = new Map<string, string[]>();
  const missing: FusionReportOutput['missing'] = [];
  let succeeded = 0;

  const sectionFor = (input: string): Section => {
    let section = sections.get(input);
    if (!section) {
      section = { input: displayName(input), modality: modalityOf.get(input) ?? 'unknown', kinds: [], lines: [] };
      sections.set(input, section);
    }
    return section;
  };

  const ordered = [...upstream].sort((a, b) => compareTaskIds(a.taskId, b.taskId));
  for (const item of ordered) {
    const input = item.inputNames[0] ?? '';
    const section = sectionFor(input);
    section.kinds.push(item.kind);
    if (item.outputJson === undefined) {
      const reason = item.error ? item.error.message : 'no output';
      missing.push({ input: displayName(input), kind: item.kind, reason });
      section.lines.push(`${item.kind} failed: ${reason}`);
      continue;
    }
    succeeded += 1;
    const { line, content } = describeOutput(item.kind, item.outputJson);
    section.lines.push(line);
    okLines.set(input, [...(okLines.get(input) ?? []), line]);
    if (content !== undefined && input !== PROMPT_INPUT_NAME) {
      const list = contentByInput.get(input) ?? [];
      list.push(content);
      contentByInput.set(input, list);
    }
  }

  const matchedTerms = matchPromptTerms(params.prompt, contentByInput);
  const coverage = upstream.length === 0 ? 0 : succeeded / upstream.length;
  const orderedInputs = orderInputs([...sections.keys()], params);
  const orderedSections = orderedInputs.flatMap((input) => sections.get(input) ?? []);
  const described = orderedInputs
    .filter((input) => input !== PROMPT_INPUT_NAME)
    .flatMap((input) => {
      const section = sections.get(input);
      return section ? [{ section, okLines: okLines.get(input) ?? [] }] : [];
    });
  return {
    prompt: params.prompt,
    summary: summarise(params.prompt, described, matchedTerms, missing, coverage),
    sections: orderedSections,
    matchedTerms,
    missing,
    coverage,
  };
}

function displayName(input: string): string {
  return input === PROMPT_INPUT_NAME ? 'prompt' : input;
}

function compareTaskIds(a: string, b: string): number {
  const na = Number(a.replace(/^\D+/, ''));
  const nb = Number(b.replace(/^\D+/, ''));
  return Number.isFinite(na) && Number.isFinite(nb) && na !== nb ? na - nb : a.localeCompare(b);
}

/** Input names (as tasks know them) in the job's order, the prompt after them, unknown names last. */
function orderInputs(inputs: string[], params: FusionParams): string[] {
  const rank = new Map<string, number>(params.inputs.map((input, i) => [input.name, i]));
  rank.set(PROMPT_INPUT_NAME, params.inputs.length);
  return inputs.sort((a, b) => (rank.get(a) ?? Number.MAX_SAFE_INTEGER) - (rank.get(b) ?? Number.MAX_SAFE_INTEGER));
}

function fmt(n: number, digits = 2): string {
  return n.toFixed(digits);
}

function quote(text: string, max = 160): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return `"${flat.length > max ? `${flat.slice(0, max - 1)}…` : flat}"`;
}

/** One line describing an output, and the text content it carries (for term matching). */
function describeOutput(kind: string, json: string): { line: string; content?: string } {
  if (kind === 'video.stitch') {
    const o = videoStitchOutputSchema.parse(JSON.parse(json));
    const read = o.frames.map((f) => f.text.trim()).filter((t) => t !== '');
    const distinct = [...new Set(read)];
    const speech = o.speech ? `; speech ${fmt(o.speech.speechSec)} s in ${o.speech.segments.filter((x) => x.kind === 'speech').length} segments` : '; no sound track';
    return {
      line:
        `${fmt(o.durationSec)} s video, ${o.width}×${o.height}; ${o.frames.length} frames sampled` +
        (distinct.length > 0 ? `, text seen: ${distinct.slice(0, 5).map((t) => quote(t, 60)).join(', ')}` : ', no text seen') +
        speech +
        (o.coverage < 1 ? ` (${Math.round(o.coverage * 100)}% covered)` : ''),
      content: distinct.join(' '),
    };
  }
  if (!isBuiltinWorkerKind(kind)) return { line: `${kind}: ${json.length} bytes of output` };
  switch (kind) {
    case 'image.ocr': {
      const o = parseTaskOutput(kind, json);
      const text = o.text.trim();
      if (text === '') return { line: 'no text found in the image', content: '' };
      return {
        line: `text reads ${quote(text)} (${o.words.length} words, ${Math.round(o.confidence)}% confidence)`,
        content: text,
      };
    }
    case 'image.inspect': {
      const o = parseTaskOutput(kind, json);
      const colours = o.colours
        .slice(0, 3)
        .map((c) => `${c.name} ${Math.round(c.fraction * 100)}%`)
        .join(', ');
      return { line: `${o.width}×${o.height} ${o.format.toUpperCase()}, ${o.channels} channels${colours ? `; colours: ${colours}` : ''}` };
    }
    case 'audio.analyze': {
      const o = parseTaskOutput(kind, json);
      const speechSegments = o.segments.filter((s) => s.kind === 'speech').length;
      return {
        line:
          `${fmt(o.durationSec)} s, ${o.sampleRate} Hz, ${o.channels} channel${o.channels === 1 ? '' : 's'} (${o.format}); ` +
          `level ${fmt(o.rmsDbfs, 1)} dBFS RMS, peak ${fmt(o.peakDbfs, 1)} dBFS; ` +
          `speech ${fmt(o.speechSec)} s in ${speechSegments} segment${speechSegments === 1 ? '' : 's'}, silence ${fmt(o.silenceSec)} s`,
      };
    }
    case 'text.stats': {
      const o = parseTaskOutput(kind, json);
      const script = o.scripts[0]?.script;
      const terms = o.topTerms
        .slice(0, 5)
        .map((t) => `${t.term} (${t.count})`)
        .join(', ');
      return {
        line: `${o.words} words, ${o.sentences} sentence${o.sentences === 1 ? '' : 's'}${script ? `, ${script} script` : ''}${terms ? `; frequent: ${terms}` : ''}`,
        content: o.excerpt,
      };
    }
    case 'fusion.report': {
      const o = parseTaskOutput(kind, json);
      return { line: o.summary };
    }
    case 'selftest.sleep': {
      const o = parseTaskOutput(kind, json);
      return { line: `waited ${o.sleptMs} ms (attempt ${o.attempt})` };
    }
    case 'audio.split': {
      const o = parseTaskOutput(kind, json);
      return { line: `${fmt(o.durationSec)} s cut into ${o.windows.length} windows` };
    }
    case 'video.split': {
      const o = parseTaskOutput(kind, json);
      return { line: `${fmt(o.durationSec)} s video, ${o.frames.length} frames sampled` };
    }
    case 'text.split': {
      const o = parseTaskOutput(kind, json);
      return { line: `${o.characters} characters in ${o.chunks.length} chunks` };
    }
    case 'audio.transcribe': {
      const o = parseTaskOutput(kind, json);
      return { line: o.text.trim() === '' ? 'no speech transcribed' : `said: ${quote(o.text)}`, content: o.text };
    }
    case 'text.generate': {
      const o = parseTaskOutput(kind, json);
      return { line: `${o.model} wrote: ${quote(o.text)}`, content: o.text };
    }
    case 'image.caption': {
      const o = parseTaskOutput(kind, json);
      return { line: `${o.model}${o.question ? ` answered ${quote(o.question, 60)}` : ' sees'}: ${quote(o.text)}`, content: o.text };
    }
    case 'image.classify': {
      const o = parseTaskOutput(kind, json);
      const top = o.labels.slice(0, 3).map((l) => `${l.label} ${Math.round(l.score * 100)}%`);
      return { line: top.length > 0 ? `looks like ${top.join(', ')} (${o.model})` : `no label (${o.model})`, content: o.labels[0]?.label ?? '' };
    }
    case 'fusion.llm': {
      const o = parseTaskOutput(kind, json);
      return { line: o.summary };
    }
  }
}

function matchPromptTerms(prompt: string, contentByInput: ReadonlyMap<string, string[]>): FusionReportOutput['matchedTerms'] {
  const terms = [...new Set(wordsOf(prompt).filter((w) => w.length >= MIN_TERM_LENGTH))];
  const wordsByInput = new Map<string, Set<string>>();
  for (const [input, contents] of contentByInput) {
    wordsByInput.set(input, new Set(contents.flatMap((c) => wordsOf(c))));
  }
  const matched: FusionReportOutput['matchedTerms'] = [];
  for (const term of terms) {
    const foundIn = [...wordsByInput].filter(([, words]) => words.has(term)).map(([input]) => input);
    if (foundIn.length > 0) matched.push({ term, foundIn });
  }
  return matched;
}

function summarise(
  prompt: string,
  described: readonly { readonly section: Section; readonly okLines: readonly string[] }[],
  matched: FusionReportOutput['matchedTerms'],
  missing: FusionReportOutput['missing'],
  coverage: number,
): string {
  const parts: string[] = [];
  if (prompt.trim() !== '') parts.push(`Prompt: ${quote(prompt, 240)}.`);
  for (const { section, okLines } of described) {
    if (okLines.length > 0) parts.push(`${section.input} (${section.modality}): ${okLines.join('; ')}.`);
  }
  if (matched.length > 0) {
    parts.push(`Prompt terms found in the inputs: ${matched.map((m) => `"${m.term}" in ${m.foundIn.join(', ')}`).join('; ')}.`);
  } else if (prompt.trim() !== '') {
    parts.push('None of the prompt terms appear in the inputs.');
  }
  if (missing.length > 0) {
    parts.push(
      `Missing (${Math.round(coverage * 100)}% coverage): ${missing.map((m) => `${m.kind} of ${m.input} (${m.reason})`).join('; ')}.`,
    );
  }
  return parts.join('\n');
}
