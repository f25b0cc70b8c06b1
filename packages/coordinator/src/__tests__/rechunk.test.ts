import { describe, expect, it } from 'vitest';
import { rechunk } from '../services/blob-service.js';

async function collect(pieces: readonly number[], size: number): Promise<{ sizes: number[]; bytes: Buffer }> {
  let at = 0;
  const source = Buffer.from(Array.from({ length: pieces.reduce((a, b) => a + b, 0) }, (_, i) => i % 251));
  async function* gen(): AsyncGenerator<Uint8Array> {
    for (const n of pieces) {
      yield await Promise.resolve(source.subarray(at, at + n));
      at += n;
    }
  }
  const out: Buffer[] = [];
  for await (const c of rechunk(gen(), size)) out.push(c);
  const bytes = Buffer.concat(out);
  expect(bytes.equals(source)).toBe(true);
  return { sizes: out.map((c) => c.byteLength), bytes };
}

describe('rechunk', () => {
  it.each<[string, number[], number, number[]]>([
    ['cuts big pieces', [10], 4, [4, 4, 2]],
    ['joins small pieces', [1, 1, 1, 1, 1], 2, [2, 2, 1]],
    ['mixed', [3, 5, 1, 7], 4, [4, 4, 4, 4]],
    ['exact multiples', [4, 4], 4, [4, 4]],
    ['nothing', [], 4, []],
    ['empty pieces', [0, 2, 0, 2], 4, [4]],
  ])('%s', async (_name, pieces, size, expected) => {
    expect((await collect(pieces, size)).sizes).toEqual(expected);
  });
});
