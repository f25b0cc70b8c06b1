import { describe, expect, it } from 'vitest';
import {
  canonicalJson,
  checkKnownAnswer,
  findQuorum,
  iou,
  NEW_TRUST,
  outputsAgree,
  trustScore,
  trustStanding,
  validatorFor,
  wordSimilarity,
  type Candidate,
  type JsonValue,
  type TrustPolicy,
  type ValidatorSpec,
} from '../index.js';

describe('canonicalJson', () => {
  it('sorts object keys at every depth and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: null } })).toBe('{"a":{"c":null,"d":[2,1]},"b":1}');
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
  });
});

describe('outputsAgree', () => {
  const cases: { name: string; spec: ValidatorSpec; a: JsonValue; b: JsonValue; agree: boolean }[] = [
    { name: 'exact: same value, keys in another order', spec: { type: 'exact' }, a: { x: 1, y: [1, 2] }, b: { y: [1, 2], x: 1 }, agree: true },
    { name: 'exact: one number differs', spec: { type: 'exact' }, a: { x: 1 }, b: { x: 2 }, agree: false },
    { name: 'exact: ignored fields may differ', spec: { type: 'exact', ignore: ['sleptMs'] }, a: { index: 3, sleptMs: 10 }, b: { index: 3, sleptMs: 12 }, agree: true },
    { name: 'exact: ignored fields do not hide the rest', spec: { type: 'exact', ignore: ['sleptMs'] }, a: { index: 3, sleptMs: 10 }, b: { index: 4, sleptMs: 10 }, agree: false },
    { name: 'numeric: within the relative tolerance', spec: { type: 'numeric', relTolerance: 0.01, absTolerance: 0 }, a: { rms: -20.0 }, b: { rms: -20.1 }, agree: true },
    { name: 'numeric: beyond it', spec: { type: 'numeric', relTolerance: 0.01, absTolerance: 0 }, a: { rms: -20.0 }, b: { rms: -21 }, agree: false },
    { name: 'numeric: absolute tolerance near zero', spec: { type: 'numeric', relTolerance: 0.01, absTolerance: 0.05 }, a: [0, 0.01], b: [0.04, 0], agree: true },
    { name: 'numeric: strings still exact', spec: { type: 'numeric', relTolerance: 1, absTolerance: 1 }, a: { format: 'wav' }, b: { format: 'mp3' }, agree: false },
    { name: 'numeric: arrays of other lengths', spec: { type: 'numeric', relTolerance: 1, absTolerance: 1 }, a: [1, 2], b: [1], agree: false },
    { name: 'text: a word differs', spec: { type: 'text', field: 'text', minSimilarity: 0.8 }, a: { text: 'the quick brown fox jumps over the lazy dog' }, b: { text: 'The quick brown fox jumped over the lazy dog.' }, agree: true },
    { name: 'text: other words', spec: { type: 'text', field: 'text', minSimilarity: 0.8 }, a: { text: 'the quick brown fox' }, b: { text: 'a slow green turtle' }, agree: false },
    { name: 'text: missing field on one side', spec: { type: 'text', field: 'text', minSimilarity: 0.5 }, a: { text: 'x' }, b: {}, agree: false },
    {
      name: 'boxes: shifted a little',
      spec: { type: 'boxes', field: 'words', minIou: 0.7 },
      a: { words: [{ text: 'a', bbox: { x0: 0, y0: 0, x1: 10, y1: 10 } }] },
      b: { words: [{ text: 'a', bbox: { x0: 1, y0: 0, x1: 11, y1: 10 } }] },
      agree: true,
    },
    { name: 'boxes: elsewhere', spec: { type: 'boxes', field: 'boxes', minIou: 0.5 }, a: { boxes: [{ x0: 0, y0: 0, x1: 10, y1: 10 }] }, b: { boxes: [{ x0: 20, y0: 20, x1: 30, y1: 30 }] }, agree: false },
    { name: 'boxes: another count', spec: { type: 'boxes', field: 'boxes', minIou: 0.5 }, a: { boxes: [] }, b: { boxes: [{ x0: 0, y0: 0, x1: 1, y1: 1 }] }, agree: false },
  ];
  it.each(cases)('$name', ({ spec, a, b, agree }) => {
    expect(outputsAgree(spec, a, b)).toBe(agree);
    expect(outputsAgree(spec, b, a)).toBe(agree);
  });
});

describe('wordSimilarity and iou', () => {
  it('scores word multisets by F1, ignoring case and punctuation', () => {
    expect(wordSimilarity('a b c', 'C, b; a!')).toBe(1);
    expect(wordSimilarity('a a b', 'a b b')).toBeCloseTo(2 / 3);
    expect(wordSimilarity('', '')).toBe(1);
    expect(wordSimilarity('a', '')).toBe(0);
  });
  it('measures boxes by intersection over union, corners in any order', () => {
    expect(iou({ x0: 0, y0: 0, x1: 2, y1: 2 }, { x0: 1, y0: 0, x1: 3, y1: 2 })).toBeCloseTo(1 / 3);
    expect(iou({ x0: 2, y0: 2, x1: 0, y1: 0 }, { x0: 0, y0: 0, x1: 2, y1: 2 })).toBe(1);
    expect(iou({ x0: 0, y0: 0, x1: 1, y1: 1 }, { x0: 5, y0: 5, x1: 6, y1: 6 })).toBe(0);
  });
});

describe('validatorFor', () => {
  it('uses overrides, then the built-in defaults, then exact', () => {
    expect(validatorFor('selftest.sleep')).toEqual({ type: 'exact', ignore: ['sleptMs', 'attempt'] });
    expect(validatorFor('audio.analyze').type).toBe('numeric');
    expect(validatorFor('image.ocr').type).toBe('text');
    expect(validatorFor('my.kind')).toEqual({ type: 'exact' });
    expect(validatorFor('image.ocr', { 'image.ocr': { type: 'boxes', field: 'words', minIou: 0.5 } }).type).toBe('boxes');
  });
});

describe('findQuorum', () => {
  const spec: ValidatorSpec = { type: 'exact', ignore: ['sleptMs'] };
  const c = (workerId: string, index: number, owner = workerId): Candidate => ({ workerId, owner, output: { index, sleptMs: workerId.length } });

  it('needs as many agreeing results as the quorum', () => {
    expect(findQuorum([c('a', 1)], spec, 2)).toBeUndefined();
    const q = findQuorum([c('a', 1), c('bb', 1)], spec, 2);
    expect(q?.agreed.map((x) => x.workerId)).toEqual(['a', 'bb']);
    expect(q?.disagreed).toEqual([]);
  });
  it('settles a disagreement by the larger group, naming the dissenter', () => {
    expect(findQuorum([c('liar', 9), c('a', 1)], spec, 2)).toBeUndefined();
    const q = findQuorum([c('liar', 9), c('a', 1), c('b', 1)], spec, 2);
    expect(q?.output).toMatchObject({ index: 1 });
    expect(q?.disagreed.map((x) => x.workerId)).toEqual(['liar']);
  });
  it('counts owners, not workers: two machines of one owner are one vote', () => {
    expect(findQuorum([c('a', 1, 'alice'), c('b', 1, 'alice')], spec, 2)).toBeUndefined();
    expect(findQuorum([c('a', 1, 'alice'), c('b', 1, 'alice'), c('c', 1, 'bob')], spec, 2)).toBeDefined();
  });
});

describe('trust', () => {
  const policy: TrustPolicy = { minVerdicts: 10, replicateBelow: 0.95, quarantineBelow: 0.8 };
  it('starts at 0.5 and moves with agreements and disagreements', () => {
    expect(trustScore(NEW_TRUST)).toBe(0.5);
    expect(trustScore({ agreed: 98, disagreed: 0 })).toBeCloseTo(0.99);
    expect(trustScore({ agreed: 7, disagreed: 3 })).toBeCloseTo(8 / 12);
  });
  it.each([
    { record: NEW_TRUST, standing: 'trusted' },
    { record: { agreed: 0, disagreed: 9, quarantinedAt: 0 }, standing: 'trusted' },
    { record: { agreed: 100, disagreed: 0, quarantinedAt: 0 }, standing: 'trusted' },
    { record: { agreed: 90, disagreed: 10, quarantinedAt: 0 }, standing: 'replicated' },
    { record: { agreed: 7, disagreed: 3, quarantinedAt: 0 }, standing: 'quarantined' },
    { record: { agreed: 100, disagreed: 0, quarantinedAt: 1 }, standing: 'quarantined' },
  ])('$record → $standing', ({ record, standing }) => {
    expect(trustStanding(record, policy)).toBe(standing);
  });
});

describe('checkKnownAnswer', () => {
  it('knows the answer of selftest.sleep (its index) and no other kind', () => {
    expect(checkKnownAnswer('selftest.sleep', { ms: 0, index: 4 }, { index: 4, sleptMs: 1, attempt: 1 })).toBe(true);
    expect(checkKnownAnswer('selftest.sleep', { ms: 0, index: 4 }, { index: 5, sleptMs: 1, attempt: 1 })).toBe(false);
    expect(checkKnownAnswer('selftest.sleep', {}, { index: 0, sleptMs: 1, attempt: 1 })).toBe(true);
    expect(checkKnownAnswer('text.stats', {}, {})).toBeUndefined();
  });
});
