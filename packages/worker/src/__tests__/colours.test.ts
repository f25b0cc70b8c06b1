import { describe, expect, it } from 'vitest';
import { colourName, dominantColours } from '../backends/builtin/colours.js';

type Rgb = readonly [number, number, number];

/** Packed RGB pixels: each colour repeated its number of times, in order. */
function pixels(...runs: readonly (readonly [Rgb, number])[]): Uint8Array {
  const out: number[] = [];
  for (const [[r, g, b], n] of runs) for (let i = 0; i < n; i++) out.push(r, g, b);
  return Uint8Array.from(out);
}

const RED: Rgb = [255, 0, 0];
const BLUE: Rgb = [0, 0, 255];
const GREEN: Rgb = [0, 128, 0];
const WHITE: Rgb = [255, 255, 255];
const BLACK: Rgb = [0, 0, 0];

describe('colourName', () => {
  const cases: { rgb: Rgb; name: string }[] = [
    { rgb: [0, 0, 0], name: 'black' },
    { rgb: [10, 10, 10], name: 'black' },
    { rgb: [255, 255, 255], name: 'white' },
    { rgb: [250, 250, 250], name: 'white' },
    { rgb: [128, 128, 128], name: 'grey' },
    { rgb: [192, 192, 192], name: 'silver' },
    { rgb: [64, 64, 64], name: 'dark grey' },
    { rgb: [255, 0, 0], name: 'red' },
    { rgb: [200, 30, 30], name: 'red' },
    { rgb: [128, 0, 0], name: 'maroon' },
    { rgb: [255, 140, 0], name: 'orange' },
    { rgb: [255, 255, 0], name: 'yellow' },
    { rgb: [0, 255, 0], name: 'lime' },
    { rgb: [0, 128, 0], name: 'green' },
    { rgb: [0, 128, 128], name: 'teal' },
    { rgb: [0, 255, 255], name: 'cyan' },
    { rgb: [135, 206, 235], name: 'sky blue' },
    { rgb: [0, 0, 255], name: 'blue' },
    { rgb: [0, 0, 128], name: 'navy' },
    { rgb: [128, 0, 128], name: 'purple' },
    { rgb: [255, 0, 255], name: 'magenta' },
    { rgb: [255, 192, 203], name: 'pink' },
    { rgb: [139, 69, 19], name: 'brown' },
    { rgb: [230, 215, 180], name: 'beige' },
  ];
  it.each(cases)('names $rgb $name', ({ rgb: [r, g, b], name }) => {
    expect(colourName(r, g, b)).toBe(name);
  });
});

describe('dominantColours', () => {
  it('ranks 75 % red over 25 % blue', () => {
    expect(dominantColours(pixels([RED, 75], [BLUE, 25]), 5)).toEqual([
      { hex: '#ff0000', name: 'red', fraction: 0.75 },
      { hex: '#0000ff', name: 'blue', fraction: 0.25 },
    ]);
  });

  it('ranks by share, not by order of appearance', () => {
    expect(dominantColours(pixels([BLUE, 10], [RED, 30], [BLUE, 10]), 5)).toEqual([
      { hex: '#ff0000', name: 'red', fraction: 0.6 },
      { hex: '#0000ff', name: 'blue', fraction: 0.4 },
    ]);
  });

  it('reports a single colour as the whole image', () => {
    expect(dominantColours(pixels([GREEN, 9]), 3)).toEqual([{ hex: '#008000', name: 'green', fraction: 1 }]);
  });

  it('reports a bucket as the mean colour of its pixels', () => {
    // 250 and 240 fall in the same bucket (240..255); their mean is 245 = 0xf5.
    expect(dominantColours(pixels([[250, 0, 0], 1], [[240, 0, 0], 1]), 3)).toEqual([{ hex: '#f50000', name: 'red', fraction: 1 }]);
  });

  it('merges buckets with the same name, keeping the colour of the largest', () => {
    // (255,0,0) and (200,30,30) fall in different buckets but are both "red".
    const rgb = pixels([[200, 30, 30], 20], [RED, 50], [BLUE, 30]);
    expect(dominantColours(rgb, 5)).toEqual([
      { hex: '#ff0000', name: 'red', fraction: 0.7 },
      { hex: '#0000ff', name: 'blue', fraction: 0.3 },
    ]);
  });

  it('ranks merged colours by their total share', () => {
    // White is the largest bucket (40 %), but two reds together (45 %) outrank it.
    const rgb = pixels([WHITE, 40], [RED, 25], [[200, 30, 30], 20], [BLACK, 15]);
    expect(dominantColours(rgb, 5)).toEqual([
      { hex: '#ff0000', name: 'red', fraction: 0.45 },
      { hex: '#ffffff', name: 'white', fraction: 0.4 },
      { hex: '#000000', name: 'black', fraction: 0.15 },
    ]);
  });

  const four = pixels([RED, 40], [BLUE, 30], [GREEN, 20], [WHITE, 10]);
  const counts: { count: number; names: string[] }[] = [
    { count: 0, names: [] },
    { count: 1, names: ['red'] },
    { count: 2, names: ['red', 'blue'] },
    { count: 3, names: ['red', 'blue', 'green'] },
    { count: 4, names: ['red', 'blue', 'green', 'white'] },
    { count: 10, names: ['red', 'blue', 'green', 'white'] },
  ];
  it.each(counts)('keeps at most $count colours', ({ count, names }) => {
    const colours = dominantColours(four, count);
    expect(colours.map((c) => c.name)).toEqual(names);
    // Fractions are of all pixels, whatever the limit.
    expect(colours.map((c) => c.fraction)).toEqual([0.4, 0.3, 0.2, 0.1].slice(0, names.length));
  });

  it('rounds fractions to three decimals', () => {
    const colours = dominantColours(pixels([RED, 2], [BLUE, 1]), 5);
    expect(colours.map((c) => c.fraction)).toEqual([0.667, 0.333]);
  });

  it('gives no colours for no pixels', () => {
    expect(dominantColours(new Uint8Array(0), 5)).toEqual([]);
    // Fewer than three bytes are not a pixel.
    expect(dominantColours(Uint8Array.from([255, 0]), 5)).toEqual([]);
  });

  it('ignores a trailing partial pixel', () => {
    const rgb = Uint8Array.from([...pixels([RED, 3]), 0, 0]);
    expect(dominantColours(rgb, 5)).toEqual([{ hex: '#ff0000', name: 'red', fraction: 1 }]);
  });

  it('writes hex with two lower-case digits per channel', () => {
    const [colour] = dominantColours(pixels([[10, 11, 12], 4]), 1);
    expect(colour?.hex).toBe('#0a0b0c');
  });
});
