/** Named reference colours (CSS basic and a few extended names) for describing dominant colours. */
const NAMED: ReadonlyArray<readonly [string, number, number, number]> = [
  ['black', 0, 0, 0],
  ['white', 255, 255, 255],
  ['grey', 128, 128, 128],
  ['silver', 192, 192, 192],
  ['dark grey', 64, 64, 64],
  ['red', 220, 20, 20],
  ['maroon', 128, 0, 0],
  ['orange', 255, 140, 0],
  ['yellow', 255, 220, 0],
  ['olive', 128, 128, 0],
  ['lime', 50, 205, 50],
  ['green', 0, 128, 0],
  ['teal', 0, 128, 128],
  ['cyan', 0, 200, 220],
  ['sky blue', 135, 206, 235],
  ['blue', 30, 60, 220],
  ['navy', 0, 0, 128],
  ['purple', 128, 0, 128],
  ['magenta', 220, 0, 220],
  ['pink', 255, 160, 190],
  ['brown', 140, 80, 30],
  ['beige', 235, 220, 185],
];

/** The nearest named colour (by distance in RGB, weighted for the eye). */
export function colourName(r: number, g: number, b: number): string {
  let best = 'black';
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const [name, nr, ng, nb] of NAMED) {
    const d = 2 * (r - nr) ** 2 + 4 * (g - ng) ** 2 + 3 * (b - nb) ** 2;
    if (d < bestDistance) {
      bestDistance = d;
      best = name;
    }
  }
  return best;
}

export interface DominantColour {
  readonly hex: string;
  readonly name: string;
  readonly fraction: number;
}

/**
 * The most common colours of packed RGB pixels: each pixel falls in a bucket of 16 levels per
 * channel, and each bucket's colour is the mean of its pixels.
 */
export function dominantColours(rgb: Uint8Array, count: number): DominantColour[] {
  const pixels = Math.floor(rgb.length / 3);
  if (pixels === 0) return [];
  const buckets = new Map<number, { n: number; r: number; g: number; b: number }>();
  for (let i = 0; i < pixels; i++) {
    const r = rgb[3 * i] ?? 0;
    const g = rgb[3 * i + 1] ?? 0;
    const b = rgb[3 * i + 2] ?? 0;
    const key = ((r >> 4) << 8) | ((g >> 4) << 4) | (b >> 4);
    const bucket = buckets.get(key);
    if (bucket) {
      bucket.n += 1;
      bucket.r += r;
      bucket.g += g;
      bucket.b += b;
    } else {
      buckets.set(key, { n: 1, r, g, b });
    }
  }
  // Buckets that look the same to a person (same name) are reported once, with the colour of
  // the largest and the pixels of all.
  const byName = new Map<string, { hex: string; n: number }>();
  for (const bucket of [...buckets.values()].sort((a, b) => b.n - a.n)) {
    const r = Math.round(bucket.r / bucket.n);
    const g = Math.round(bucket.g / bucket.n);
    const b = Math.round(bucket.b / bucket.n);
    const name = colourName(r, g, b);
    const seen = byName.get(name);
    if (seen) seen.n += bucket.n;
    else byName.set(name, { hex: `#${[r, g, b].map((c) => c.toString(16).padStart(2, '0')).join('')}`, n: bucket.n });
  }
  return [...byName]
    .sort((a, b) => b[1].n - a[1].n)
    .slice(0, count)
    .map(([name, { hex, n }]) => ({ hex, name, fraction: Math.round((n / pixels) * 1000) / 1000 }));
}
