import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InvalidJobSpecError } from '../errors.js';
import { validateJobSpec } from '../job-spec.js';

/** Fixed, so a failure is reproduced by running the test again (fast-check prints the path). */
const SEED = 20_261_127;

const KINDS = ['image.ocr', 'image.inspect', 'image.caption', 'audio.transcribe', 'audio.analyze', 'text.stats', 'fusion.report', 'fusion.llm', 'exec.echo', 'no.such', ''];

/** A step that is often nearly right: the shapes the declared-pipeline checks look at. */
const step = fc.record(
  {
    kind: fc.oneof(fc.constantFrom(...KINDS), fc.string()),
    input: fc.oneof(fc.constantFrom('photo', 'note', '@prompt', ''), fc.string()),
    from: fc.oneof(fc.array(fc.constantFrom('a', 'b', 'caption', 'x'), { maxLength: 3 }), fc.anything()),
    params: fc.oneof(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }), fc.anything({ maxDepth: 1 })),
    requires: fc.oneof(
      fc.record({ model: fc.string(), vramGiB: fc.double(), computeCapability: fc.string({ maxLength: 6 }), gpu: fc.boolean() }, { requiredKeys: [] }),
      fc.anything({ maxDepth: 1 }),
    ),
    optional: fc.oneof(fc.boolean(), fc.anything({ maxDepth: 0 })),
    shard: fc.oneof(fc.boolean(), fc.record({ windowSec: fc.double(), overlapSec: fc.double(), chunkChars: fc.integer() }, { requiredKeys: [] }), fc.anything({ maxDepth: 1 })),
  },
  { requiredKeys: [] },
);

const input = fc.record(
  {
    name: fc.oneof(fc.constantFrom('photo', 'note', 'clip.wav', '@prompt', '', 'a\u0000b', 'x'.repeat(300)), fc.string()),
    source: fc.oneof(
      fc.record({ type: fc.constant('text'), text: fc.oneof(fc.string(), fc.constant('')) }),
      fc.record({
        type: fc.constant('blob'),
        blob: fc.record({ sha256: fc.oneof(fc.stringMatching(/^[0-9a-f]{64}$/), fc.string()), size: fc.oneof(fc.nat(), fc.integer(), fc.double()), mediaType: fc.string(), name: fc.string() }, { requiredKeys: [] }),
      }),
      fc.anything({ maxDepth: 2 }),
    ),
  },
  { requiredKeys: [] },
);

/** Job specs as a client could send them: mostly well-shaped, with every field sometimes wrong. */
const spec = fc.record(
  {
    inputs: fc.oneof(fc.array(input, { maxLength: 4 }), fc.anything({ maxDepth: 2 })),
    prompt: fc.oneof(fc.string(), fc.anything({ maxDepth: 0 })),
    pipeline: fc.oneof(fc.constantFrom('', 'describe', 'declared', 'transcribe', 'nope'), fc.string(), fc.anything({ maxDepth: 0 })),
    priority: fc.oneof(fc.integer({ min: -12, max: 12 }), fc.double(), fc.anything({ maxDepth: 0 })),
    labels: fc.oneof(fc.dictionary(fc.string(), fc.string(), { maxKeys: 4 }), fc.anything({ maxDepth: 1 })),
    params: fc.oneof(fc.dictionary(fc.string({ maxLength: 10 }), fc.string(), { maxKeys: 3 }), fc.anything({ maxDepth: 1 })),
    steps: fc.oneof(fc.dictionary(fc.oneof(fc.constantFrom('a', 'b', 'caption', 'x'), fc.string({ maxLength: 6 })), step, { maxKeys: 4 }), fc.anything({ maxDepth: 2 })),
  },
  { requiredKeys: [] },
);

/** Specs that are mostly right (so the later checks, unique names, steps, are reached too). */
const wellFormed = fc.record(
  {
    inputs: fc.uniqueArray(
      fc.record({ name: fc.constantFrom('photo', 'note', 'clip'), source: fc.record({ type: fc.constant('text'), text: fc.string({ minLength: 1, maxLength: 40 }) }) }),
      { maxLength: 3, selector: (i) => i.name },
    ),
    prompt: fc.string({ maxLength: 40 }),
    pipeline: fc.constantFrom('', 'describe', 'declared'),
    priority: fc.integer({ min: -10, max: 10 }),
    labels: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }),
    steps: fc.dictionary(
      fc.constantFrom('a', 'b', 'stats', 'Bad'),
      fc.record({ kind: fc.constantFrom('text.stats', 'fusion.report', 'exec.echo', 'image.ocr'), input: fc.constantFrom('note', 'photo'), from: fc.array(fc.constantFrom('a', 'b'), { minLength: 1, maxLength: 2 }) }, { requiredKeys: ['kind'] }),
      { minKeys: 1, maxKeys: 3 },
    ),
  },
  { requiredKeys: ['inputs', 'prompt'] },
);

describe('validateJobSpec under fuzzing', () => {
  it('accepts or refuses with InvalidJobSpecError (a path and a reason), never anything else', () => {
    let accepted = 0;
    let refused = 0;
    const check = (raw: unknown): void => {
      try {
        validateJobSpec(raw);
        accepted += 1;
      } catch (err) {
        if (!(err instanceof InvalidJobSpecError)) throw err;
        expect(err.message).not.toBe('');
        refused += 1;
      }
    };
    fc.assert(fc.property(fc.oneof({ arbitrary: wellFormed, weight: 2 }, { arbitrary: spec, weight: 1 }), check), { seed: SEED, numRuns: 2000 });
    // Anything at all, not only spec-shaped objects.
    fc.assert(fc.property(fc.anything({ maxDepth: 3, withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true }), check), { seed: SEED, numRuns: 1000 });
    console.log(`validateJobSpec fuzz: ${accepted + refused} specs checked, ${accepted} accepted, ${refused} refused with InvalidJobSpecError`);
    expect(accepted + refused).toBe(3000);
    expect(refused).toBeGreaterThan(0);
    expect(accepted).toBeGreaterThan(0);
  });
});
