import { describe, expect, it } from 'vitest';
import { InvalidOptionError } from '../errors.js';
import { audioWindows, batches, frameTimes, textChunks, type AudioWindowOptions, type WindowPlan } from '../sharding.js';
import { ownedInterval } from '../stitching.js';

const spans = (windows: readonly WindowPlan[]): [number, number][] => windows.map((w) => [w.startSec, w.endSec]);

describe('audioWindows', () => {
  it.each<[string, number, AudioWindowOptions, [number, number][]]>([
    ['empty recording', 0, { windowSec: 30, overlapSec: 5 }, []],
    ['shorter than a window', 10, { windowSec: 30, overlapSec: 5 }, [[0, 10]]],
    ['exactly one window', 30, { windowSec: 30, overlapSec: 5 }, [[0, 30]]],
    ['last window cut to the end', 100, { windowSec: 30, overlapSec: 5 }, [[0, 30], [25, 55], [50, 80], [75, 100]]],
    ['last window adding exactly the overlap is kept', 35, { windowSec: 30, overlapSec: 5 }, [[0, 30], [25, 35]]],
    ['last window adding less than the overlap: previous stretched', 34, { windowSec: 30, overlapSec: 5 }, [[0, 34]]],
    ['stretch after several windows', 82, { windowSec: 30, overlapSec: 5 }, [[0, 30], [25, 55], [50, 82]]],
    ['no overlap', 60, { windowSec: 30, overlapSec: 0 }, [[0, 30], [30, 60]]],
    ['no overlap keeps a short tail', 61, { windowSec: 30, overlapSec: 0 }, [[0, 30], [30, 60], [60, 61]]],
    ['times in ms', 1.2345, { windowSec: 0.5, overlapSec: 0.1 }, [[0, 0.5], [0.4, 0.9], [0.8, 1.235]]],
  ])('%s', (_name, duration, options, expected) => {
    const windows = audioWindows(duration, options);
    expect(spans(windows)).toEqual(expected);
    expect(windows.map((w) => w.index)).toEqual(expected.map((_, i) => i));
  });

  const cases: [number, AudioWindowOptions][] = [];
  for (const duration of [0.5, 29.999, 30, 31, 54.9, 55, 57, 100, 299.7, 300, 3601.25]) {
    for (const options of [
      { windowSec: 30, overlapSec: 0 },
      { windowSec: 30, overlapSec: 5 },
      { windowSec: 30, overlapSec: 20 },
      { windowSec: 7.5, overlapSec: 2.5 },
    ]) {
      cases.push([duration, options]);
    }
  }

  it.each(cases)('covers %s s with %o: windows windowSec long, each overlapping the next by overlapSec', (duration, options) => {
    const windows = audioWindows(duration, options);
    expect(windows[0]?.startSec).toBe(0);
    expect(windows.at(-1)?.endSec).toBe(duration);
    windows.forEach((w, i) => {
      const next = windows[i + 1];
      if (next === undefined) {
        // The last one: no longer than a window plus the overlap it may have absorbed.
        expect(w.endSec - w.startSec).toBeLessThan(options.windowSec + options.overlapSec + 1e-9);
        return;
      }
      expect(w.endSec - w.startSec).toBeCloseTo(options.windowSec, 9);
      expect(w.endSec - next.startSec).toBeCloseTo(options.overlapSec, 9);
    });
    const last = windows.at(-1);
    const previous = windows.at(-2);
    if (last !== undefined && previous !== undefined) {
      if (last.endSec - last.startSec <= options.windowSec + 1e-9) {
        // Cut to the end: no sliver, it adds at least the overlap's worth of audio.
        expect(last.endSec - previous.endSec).toBeGreaterThanOrEqual(options.overlapSec - 1e-9);
      } else {
        // Stretched instead: what a cut window would have added was less than the overlap.
        expect(last.endSec - last.startSec - options.windowSec).toBeLessThan(options.overlapSec);
      }
    }
  });

  it.each(cases)('every instant of %s s is owned by exactly one window (%o)', (duration, options) => {
    const windows = audioWindows(duration, options);
    const owned = windows.map((_, i) => ownedInterval(windows, i));
    expect(owned[0]?.fromSec).toBe(0);
    expect(owned.at(-1)?.toSec).toBe(duration);
    owned.forEach((o, i) => {
      const w = windows[i];
      expect(w).toBeDefined();
      if (w === undefined) return;
      expect(o.fromSec).toBeGreaterThanOrEqual(w.startSec);
      expect(o.toSec).toBeLessThanOrEqual(w.endSec);
      expect(o.toSec).toBeGreaterThan(o.fromSec);
      const next = owned[i + 1];
      if (next !== undefined) expect(next.fromSec).toBe(o.toSec);
    });
    for (let t = 0; t <= duration; t += duration / 997) {
      const owners = owned.filter((o, i) => t >= o.fromSec && (t < o.toSec || (i === owned.length - 1 && t <= o.toSec)));
      expect(owners).toHaveLength(1);
    }
  });

  it.each<[string, number, AudioWindowOptions, string]>([
    ['zero window', 10, { windowSec: 0, overlapSec: 0 }, 'windowSec'],
    ['negative window', 10, { windowSec: -1, overlapSec: 0 }, 'windowSec'],
    ['sub-millisecond window', 10, { windowSec: 0.0001, overlapSec: 0 }, 'windowSec'],
    ['negative overlap', 10, { windowSec: 5, overlapSec: -1 }, 'overlapSec'],
    ['overlap equal to the window', 10, { windowSec: 5, overlapSec: 5 }, 'overlapSec'],
    ['overlap longer than the window', 10, { windowSec: 5, overlapSec: 6 }, 'overlapSec'],
    ['infinite duration', Number.POSITIVE_INFINITY, { windowSec: 5, overlapSec: 1 }, 'durationSec'],
    ['NaN duration', Number.NaN, { windowSec: 5, overlapSec: 1 }, 'durationSec'],
    ['negative duration', -3, { windowSec: 5, overlapSec: 1 }, 'durationSec'],
  ])('rejects %s', (_name, duration, options, option) => {
    expect(() => audioWindows(duration, options)).toThrow(InvalidOptionError);
    expect(() => audioWindows(duration, options)).toThrow(`option ${option}`);
  });
});

describe('frameTimes', () => {
  it.each<[string, number, number, number, number[]]>([
    ['one a second', 10, 1, 100, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]],
    ['all before the end', 2.5, 2, 100, [0, 0.5, 1, 1.5, 2]],
    ['exactly maxFrames', 3, 2, 6, [0, 0.5, 1, 1.5, 2, 2.5]],
    ['more than maxFrames: spread evenly', 3, 2, 4, [0, 0.75, 1.5, 2.25]],
    ['spread, rounded to ms', 10, 1, 3, [0, 3.333, 6.667]],
    ['rounded to ms', 1, 3, 10, [0, 0.333, 0.667]],
    ['empty video', 0, 1, 5, []],
    ['shorter than one interval', 0.2, 1, 5, [0]],
  ])('%s', (_name, duration, fps, maxFrames, expected) => {
    expect(frameTimes(duration, fps, maxFrames)).toEqual(expected);
  });

  it.each([
    [60, 0.5, 10],
    [61.7, 2, 500],
    [3600, 1, 120],
    [12.345, 29.97, 24],
  ])('%s s at %s fps, at most %s: starts at 0, increasing, before the end, capped', (duration, fps, maxFrames) => {
    const times = frameTimes(duration, fps, maxFrames);
    expect(times[0]).toBe(0);
    expect(times.length).toBeLessThanOrEqual(maxFrames);
    expect(times.length).toBe(Math.min(maxFrames, Math.ceil(duration * fps)));
    times.forEach((t, i) => {
      expect(t).toBeLessThan(duration);
      if (i > 0) expect(t).toBeGreaterThan(times[i - 1] ?? Number.NaN);
    });
  });

  it.each<[string, number, number, number, string]>([
    ['zero fps', 10, 0, 5, 'fps'],
    ['negative duration', -1, 1, 5, 'durationSec'],
    ['zero maxFrames', 10, 1, 0, 'maxFrames'],
    ['fractional maxFrames', 10, 1, 2.5, 'maxFrames'],
  ])('rejects %s', (_name, duration, fps, maxFrames, option) => {
    expect(() => frameTimes(duration, fps, maxFrames)).toThrow(`option ${option}`);
  });
});

describe('textChunks', () => {
  const prose = 'One. Two two. Three three three. Four is a much longer sentence that goes on and on. Supercalifragilisticexpialidocious!';

  it.each<[string, string, number, string[]]>([
    ['empty text', '', 10, []],
    ['fits whole', 'Hello there. General Kenobi.', 100, ['Hello there. General Kenobi.']],
    ['packs whole sentences', 'One. Two two. Three three three.', 14, ['One. Two two. ', 'Three three ', 'three.']],
    [
      'long sentences on word boundaries, whitespace with the word before',
      prose,
      20,
      ['One. Two two. ', 'Three three three. ', 'Four is a much ', 'longer sentence ', 'that goes on and ', 'on. ', 'Supercalifragilistic', 'expialidocious!'],
    ],
    [
      'a long word is cut hard from its start',
      prose,
      12,
      [
        'One. ',
        'Two two. ',
        'Three three ',
        'three. Four ',
        'is a much ',
        'longer ',
        'sentence ',
        'that goes ',
        'on and on. ',
        'Supercalifra',
        'gilisticexpi',
        'alidocious!',
      ],
    ],
    ['scripts without spaces split on words', '我是学生。我们是好朋友。', 3, ['我是', '学生。', '我们是', '好朋友', '。']],
    ['blank lines stay with the sentence before', 'First line.\nSecond line.\n\nNew paragraph.', 14, ['First line.\n', 'Second line.\n\n', 'New paragraph.']],
    ['even when that sentence must be split', 'First line.\nSecond line.\n\nNew paragraph.', 13, ['First line.\n', 'Second ', 'line.\n\nNew ', 'paragraph.']],
  ])('%s', (_name, text, maxChars, expected) => {
    expect(textChunks(text, maxChars).map((c) => c.text)).toEqual(expected);
  });

  const texts: [string, string][] = [
    ['prose', prose],
    [
      'paragraphs',
      'The grid cuts long media into shards.  Each shard runs on its own worker!\n\nThen the results are stitched back together; ' +
        'overlaps are split at their midpoints. Does it work? It does.\r\nNumbers like 3.14 and e.g. abbreviations stay whole.\n',
    ],
    ['CJK', '東京は日本の首都です。大阪は大きな都市です。京都には古い寺がたくさんあります。'],
    ['emoji and combining marks', 'Family: 👨‍👩‍👧‍👦 and flags 🇫🇷🇩🇪. Cafe\u0301 au lait, nai\u0308ve. 😀😀😀😀😀😀 end.'],
    ['whitespace runs', '   leading spaces.\t\tTabs   and    runs.   \n\n\n  trailing   '],
    ['no spaces at all', 'a'.repeat(57)],
  ];
  const limits = [1, 2, 3, 7, 16, 40, 200];

  it.each(texts.flatMap(([name, text]) => limits.map((max) => [name, max, text] as const)))(
    '%s at maxChars %s: reproduces the text, contiguous, non-empty, within the limit, no broken characters',
    (_name, maxChars, text) => {
      const chunks = textChunks(text, maxChars);
      expect(chunks.map((c) => c.text).join('')).toBe(text);
      let at = 0;
      chunks.forEach((c, i) => {
        expect(c.index).toBe(i);
        expect(c.start).toBe(at);
        expect(c.text).toBe(text.slice(c.start, c.end));
        expect(c.text.length).toBeGreaterThan(0);
        expect(c.text.length).toBeLessThanOrEqual(maxChars);
        if (maxChars >= 2) expect(c.text).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
        at = c.end;
      });
      expect(at).toBe(text.length);
    },
  );

  it('cuts only at sentence boundaries when every sentence fits', () => {
    const text = texts[1]?.[1] ?? '';
    const segmenter = new Intl.Segmenter(undefined, { granularity: 'sentence' });
    const sentenceEnds = new Set([...segmenter.segment(text)].map((s) => s.index + s.segment.length));
    const chunks = textChunks(text, 90);
    expect(chunks.length).toBeGreaterThan(2);
    for (const c of chunks) expect(sentenceEnds.has(c.end)).toBe(true);
  });

  it('keeps whitespace with the chunk before it', () => {
    const text = texts[1]?.[1] ?? '';
    for (const maxChars of [12, 20, 40]) {
      for (const c of textChunks(text, maxChars).slice(1)) expect(c.text).not.toMatch(/^[ \t]/);
    }
  });

  describe('texts longer than one segmenting block', () => {
    // Segmenting is done a block (16 Ki code units) at a time; the result must be the same as
    // segmenting the whole text at once.
    const paragraph = texts[1]?.[1] ?? '';
    const long = Array.from({ length: 400 }, (_, i) => `${i}. ${paragraph}`).join('\n');

    it('cuts at exactly the sentence boundaries of the whole text', () => {
      const segmenter = new Intl.Segmenter(undefined, { granularity: 'sentence' });
      const sentenceEnds = new Set([...segmenter.segment(long)].map((s) => s.index + s.segment.length));
      const chunks = textChunks(long, 150);
      expect(chunks.map((c) => c.text).join('')).toBe(long);
      for (const c of chunks) expect(sentenceEnds.has(c.end)).toBe(true);
      // Greedy packing of the same sentences: as many chunks as packing them one by one gives.
      let expected = 0;
      let used = Number.POSITIVE_INFINITY;
      let at = 0;
      for (const s of segmenter.segment(long)) {
        const len = s.index + s.segment.length - at;
        const whitespace = /^\s+$/u.test(s.segment);
        if (!whitespace && used + len > 150) {
          expected += 1;
          used = 0;
        }
        used += len;
        at += len;
      }
      expect(chunks).toHaveLength(expected);
    });

    it('a single sentence longer than a block is cut on words', () => {
      const sentence = Array.from({ length: 9000 }, (_, i) => `word${i}`).join(' ');
      const chunks = textChunks(sentence, 100);
      expect(chunks.map((c) => c.text).join('')).toBe(sentence);
      for (const c of chunks.slice(0, -1)) expect(c.text).toMatch(/ $/);
    });

    it('a word longer than a block is cut hard', () => {
      const word = 'x'.repeat(40_000);
      const chunks = textChunks(`${word} tail`, 1000);
      expect(chunks.map((c) => c.text.length).slice(0, 40)).toEqual(Array<number>(40).fill(1000));
      expect(chunks[40]?.text).toBe(' tail');
    });
  });

  it.each([0, -1, 1.5, Number.NaN])('rejects maxChars %s', (maxChars) => {
    expect(() => textChunks('text', maxChars)).toThrow('option maxChars');
  });
});

describe('batches', () => {
  it.each<[number[], number, number[][]]>([
    [[], 3, []],
    [[1, 2, 3], 3, [[1, 2, 3]]],
    [[1, 2, 3, 4, 5, 6, 7], 3, [[1, 2, 3], [4, 5, 6], [7]]],
    [[1, 2], 1, [[1], [2]]],
    [[1, 2], 10, [[1, 2]]],
  ])('%o in batches of %s', (items, size, expected) => {
    expect(batches(items, size)).toEqual(expected);
  });

  it.each([0, -2, 2.5])('rejects size %s', (size) => {
    expect(() => batches([1], size)).toThrow(InvalidOptionError);
  });
});
