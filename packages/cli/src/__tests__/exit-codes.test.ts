import { describe, expect, it } from 'vitest';
import { CLIENT_ERROR_CODES, type ClientErrorCode } from '@mmgrid/client';
import { ExitCode, exitCodeFor } from '../exit-codes.js';

describe('exit codes', () => {
  it('gives every client error code one of the documented exit codes', () => {
    const documented = new Set<number>(Object.values(ExitCode));
    for (const code of CLIENT_ERROR_CODES) expect(documented.has(exitCodeFor(code)), code).toBe(true);
  });

  it('gives 5 (worth trying again) to a coordinator out of reach, too slow, or a call cut on the way', () => {
    const transient: ClientErrorCode[] = ['UNAVAILABLE', 'DEADLINE_EXCEEDED', 'CANCELLED'];
    expect(transient.map(exitCodeFor)).toEqual([5, 5, 5]);
    // A bug or damaged bytes are not worth a retry by a script.
    expect(exitCodeFor('INTERNAL')).toBe(70);
    expect(exitCodeFor('INTEGRITY')).toBe(70);
  });
});
