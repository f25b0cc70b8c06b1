import type { JsonValue } from './json.js';
import { wordsOf } from './words.js';

/**
 * Result verification for untrusted workers, the pure part: how two outputs of the same task
 * are compared (validators), when enough of them agree (quorum), and what a worker's record
 * of agreements and disagreements says about it (trust). The coordinator keeps the records in
 * Redis and applies these rules at commit time.
 *
 * @example
 * ```ts
 * const spec = validatorFor('audio.analyze');
 * const quorum = findQuorum([{ id: 'w1', output: a }, { id: 'w2', output: b }], spec, 2);
 * if (quorum) commit(quorum.output);
 * ```
 */

/**
 * How two outputs of one task are compared.
 *
 * - `exact`: equal as canonical JSON (object keys sorted), after leaving out the top-level
 *   fields in `ignore` (those that differ between honest runs: timings, attempt numbers, blob
 *   references of regenerated files).
 * - `numeric`: the same shape, strings and booleans equal, numbers within
 *   `max(absTolerance, relTolerance × larger magnitude)`.
 * - `text`: the string at `field` (or the whole output when it is a string) has word-multiset
 *   F1 of at least `minSimilarity` (0..1); for free text where honest runs differ slightly.
 * - `boxes`: the arrays of `{x0,y0,x1,y1}` boxes at `field` pair up one to one (in order) with
 *   intersection over union of at least `minIou` each; for detection-like outputs.
 */
export type ValidatorSpec =
  | { readonly type: 'exact'; readonly ignore?: readonly string[] }
  | { readonly type: 'numeric'; readonly relTolerance: number; readonly absTolerance: number; readonly ignore?: readonly string[] }
  | { readonly type: 'text'; readonly field?: string; readonly minSimilarity: number }
  | { readonly type: 'boxes'; readonly field: string; readonly minIou: number };

/**
 * Validators of the built-in kinds, chosen by their outputs (task-outputs.ts). Kinds not named
 * here (custom kinds included) are compared exactly.
 */
export const DEFAULT_VALIDATORS: Readonly<Record<string, ValidatorSpec>> = {
  // The index is the task's answer; the time slept and the attempt differ between runs.
  'selftest.sleep': { type: 'exact', ignore: ['sleptMs', 'attempt'] },
  'text.stats': { type: 'exact' },
  'text.split': { type: 'exact' },
  'fusion.report': { type: 'exact' },
  // Decoders round differently; the thumbnail is a new blob on every worker.
  'image.inspect': { type: 'numeric', relTolerance: 0.02, absTolerance: 0.01, ignore: ['thumbnail'] },
  'audio.analyze': { type: 'numeric', relTolerance: 0.02, absTolerance: 0.05 },
  'image.ocr': { type: 'text', field: 'text', minSimilarity: 0.9 },
  'audio.transcribe': { type: 'text', field: 'text', minSimilarity: 0.85 },
  'image.caption': { type: 'text', field: 'caption', minSimilarity: 0.5 },
  'text.generate': { type: 'text', field: 'text', minSimilarity: 0.5 },
  'fusion.llm': { type: 'text', field: 'text', minSimilarity: 0.5 },
};

/** The validator of a kind: an override, else the built-in default, else exact. */
export function validatorFor(kind: string, overrides: Readonly<Record<string, ValidatorSpec>> = {}): ValidatorSpec {
  return overrides[kind] ?? DEFAULT_VALIDATORS[kind] ?? { type: 'exact' };
}

/** JSON with object keys sorted, so equal values have equal text. */
export function canonicalJson(value: JsonValue | undefined): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(',')}}`;
}

function without(value: JsonValue, ignore: readonly string[] | undefined): JsonValue {
  if (!ignore || ignore.length === 0 || value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const copy: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(value)) if (!ignore.includes(k) && v !== undefined) copy[k] = v;
  return copy;
}

function numbersClose(a: number, b: number, rel: number, abs: number): boolean {
  return Math.abs(a - b) <= Math.max(abs, rel * Math.max(Math.abs(a), Math.abs(b)));
}

/** Same shape, leaves equal, numbers within tolerance. */
export function numericallyEqual(a: JsonValue | undefined, b: JsonValue | undefined, relTolerance: number, absTolerance: number): boolean {
  if (typeof a === 'number' && typeof b === 'number') return numbersClose(a, b, relTolerance, absTolerance);
  if (a === null || b === null || a === undefined || b === undefined || typeof a !== 'object' || typeof b !== 'object') return a === b;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => numericallyEqual(x, b[i], relTolerance, absTolerance));
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (!numericallyEqual(a[k], b[k], relTolerance, absTolerance)) return false;
  return true;
}

/**
 * F1 of the two texts' word multisets (case-folded words, punctuation left out): 1 for the
 * same words in any order, 0 for no word in common. Two empty texts are alike (1).
 */
export function wordSimilarity(a: string, b: string): number {
  const wa = wordsOf(a);
  const wb = wordsOf(b);
  if (wa.length === 0 && wb.length === 0) return 1;
  if (wa.length === 0 || wb.length === 0) return 0;
  const counts = new Map<string, number>();
  for (const w of wa) counts.set(w, (counts.get(w) ?? 0) + 1);
  let common = 0;
  for (const w of wb) {
    const n = counts.get(w) ?? 0;
    if (n > 0) {
      common += 1;
      counts.set(w, n - 1);
    }
  }
  return (2 * common) / (wa.length + wb.length);
}

export interface Box {
  readonly x0: number;
  readonly y0: number;
  readonly x1: number;
  readonly y1: number;
}

/** Intersection over union of two boxes (corners in any order); 1 for two empty boxes at one point. */
export function iou(a: Box, b: Box): number {
  const [ax0, ax1] = [Math.min(a.x0, a.x1), Math.max(a.x0, a.x1)];
  const [ay0, ay1] = [Math.min(a.y0, a.y1), Math.max(a.y0, a.y1)];
  const [bx0, bx1] = [Math.min(b.x0, b.x1), Math.max(b.x0, b.x1)];
  const [by0, by1] = [Math.min(b.y0, b.y1), Math.max(b.y0, b.y1)];
  const iw = Math.max(0, Math.min(ax1, bx1) - Math.max(ax0, bx0));
  const ih = Math.max(0, Math.min(ay1, by1) - Math.max(ay0, by0));
  const inter = iw * ih;
  const union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter;
  if (union <= 0) return ax0 === bx0 && ay0 === by0 && ax1 === bx1 && ay1 === by1 ? 1 : 0;
  return inter / union;
}

function field(value: JsonValue, name: string | undefined): JsonValue | undefined {
  if (name === undefined) return value;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  return value[name];
}

function asBox(value: JsonValue | undefined): Box | undefined {
  if (value === null || value === undefined || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const { x0, y0, x1, y1 } = value;
  if (typeof x0 !== 'number' || typeof y0 !== 'number' || typeof x1 !== 'number' || typeof y1 !== 'number') return undefined;
  return { x0, y0, x1, y1 };
}

/** Finds a box in an item: the item itself, or its `bbox` (as OCR spans carry them). */
function boxOf(item: JsonValue | undefined): Box | undefined {
  return asBox(item) ?? (item !== null && item !== undefined && typeof item === 'object' && !Array.isArray(item) ? asBox(item.bbox) : undefined);
}

/** Whether two outputs of one task agree by the validator. */
export function outputsAgree(spec: ValidatorSpec, a: JsonValue, b: JsonValue): boolean {
  switch (spec.type) {
    case 'exact':
      return canonicalJson(without(a, spec.ignore)) === canonicalJson(without(b, spec.ignore));
    case 'numeric':
      return numericallyEqual(without(a, spec.ignore), without(b, spec.ignore), spec.relTolerance, spec.absTolerance);
    case 'text': {
      const ta = field(a, spec.field);
      const tb = field(b, spec.field);
      if (typeof ta !== 'string' || typeof tb !== 'string') return canonicalJson(ta) === canonicalJson(tb);
      return wordSimilarity(ta, tb) >= spec.minSimilarity;
    }
    case 'boxes': {
      const la = field(a, spec.field);
      const lb = field(b, spec.field);
      if (!Array.isArray(la) || !Array.isArray(lb) || la.length !== lb.length) return false;
      return la.every((item, i) => {
        const ba = boxOf(item);
        const bb = boxOf(lb[i]);
        return ba !== undefined && bb !== undefined && iou(ba, bb) >= spec.minIou;
      });
    }
  }
}

/** One worker's output for a task, kept until the task's verdict. */
export interface Candidate {
  readonly workerId: string;
  /** Who runs the worker (its token), or its id on an open grid: replicas go to other owners. */
  readonly owner: string;
  readonly output: JsonValue;
}

export interface Quorum {
  /** The agreed output (that of the first candidate of the agreeing group). */
  readonly output: JsonValue;
  readonly agreed: readonly Candidate[];
  readonly disagreed: readonly Candidate[];
}

/**
 * The largest group of candidates that agree with its first member, when it has at least
 * `quorum` members from as many distinct owners; undefined otherwise. Candidates are compared
 * with the group's first member (validators with tolerances are not transitive).
 */
export function findQuorum(candidates: readonly Candidate[], spec: ValidatorSpec, quorum: number): Quorum | undefined {
  let best: Candidate[] = [];
  for (const first of candidates) {
    const group = candidates.filter((c) => c === first || outputsAgree(spec, first.output, c.output));
    if (group.length > best.length) best = group;
  }
  const [first] = best;
  if (!first || new Set(best.map((c) => c.owner)).size < quorum) return undefined;
  return { output: first.output, agreed: best, disagreed: candidates.filter((c) => !best.includes(c)) };
}

/** A worker's verification record. */
export interface TrustRecord {
  readonly agreed: number;
  readonly disagreed: number;
  /** Set when it was quarantined (ms since the epoch); 0: not quarantined. */
  readonly quarantinedAt: number;
}

export const NEW_TRUST: TrustRecord = { agreed: 0, disagreed: 0, quarantinedAt: 0 };

/** The mean of Beta(agreed + 1, disagreed + 1): 0.5 with no record, towards 1 as agreements pile up. */
export function trustScore(r: Pick<TrustRecord, 'agreed' | 'disagreed'>): number {
  return (r.agreed + 1) / (r.agreed + r.disagreed + 2);
}

export interface TrustPolicy {
  /** Verdicts a worker needs before its score counts (a new worker is neither replicated for it nor quarantined). */
  readonly minVerdicts: number;
  /** Below this score every result of the worker is checked by a second worker. */
  readonly replicateBelow: number;
  /** Below this score the worker gets no tasks until an operator releases it. */
  readonly quarantineBelow: number;
}

export type TrustStanding = 'trusted' | 'replicated' | 'quarantined';

export function trustStanding(r: TrustRecord, policy: TrustPolicy): TrustStanding {
  if (r.quarantinedAt > 0) return 'quarantined';
  if (r.agreed + r.disagreed < policy.minVerdicts) return 'trusted';
  const score = trustScore(r);
  if (score < policy.quarantineBelow) return 'quarantined';
  if (score < policy.replicateBelow) return 'replicated';
  return 'trusted';
}

/**
 * The answer a task is known to have, checked against a worker's output: true (right), false
 * (wrong), or undefined when this kind's answer is not known in advance. Only deterministic
 * kinds whose answer follows from their parameters alone are known.
 */
export function checkKnownAnswer(kind: string, params: Readonly<Record<string, JsonValue>>, output: JsonValue): boolean | undefined {
  if (kind === 'selftest.sleep') {
    const index = params.index ?? 0;
    return output !== null && typeof output === 'object' && !Array.isArray(output) && output.index === index;
  }
  return undefined;
}
