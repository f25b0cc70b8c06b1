import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findBlobRefs, resultFiles, safeFileName } from '../result-files.js';

const A = `3fa2b1c0${'a'.repeat(56)}`;
const B = `0b1c2d3e${'b'.repeat(56)}`;
const C = `77665544${'c'.repeat(56)}`;

function ref(sha256: string, name: string): { sha256: string; size: number; mediaType: string; name: string } {
  return { sha256, size: 1, mediaType: 'application/octet-stream', name };
}

describe('resultFiles', () => {
  it('writes each blob under its name', () => {
    expect(resultFiles([ref(A, 'clip.frames.vtt'), ref(B, 'clip.f0000.png')])).toEqual([
      { sha256: A, fileName: 'clip.frames.vtt' },
      { sha256: B, fileName: 'clip.f0000.png' },
    ]);
  });

  it('writes the same bytes under every name they are given', () => {
    expect(resultFiles([ref(A, 'first.png'), ref(A, 'second.png')])).toEqual([
      { sha256: A, fileName: 'first.png' },
      { sha256: A, fileName: 'second.png' },
    ]);
  });

  it('writes a (blob, name) seen twice once', () => {
    expect(resultFiles([ref(A, 'a.png'), ref(B, 'b.png'), ref(A, 'a.png'), ref(A, 'sub/a.png')])).toEqual([
      { sha256: A, fileName: 'a.png' },
      { sha256: B, fileName: 'b.png' },
    ]);
  });

  it('gives a later, different blob of the same name its hash before the extension', () => {
    expect(resultFiles([ref(A, 'clip.frames.vtt'), ref(B, 'clip.frames.vtt'), ref(B, 'clip.frames.vtt'), ref(C, 'clip.frames.vtt')])).toEqual([
      { sha256: A, fileName: 'clip.frames.vtt' },
      { sha256: B, fileName: 'clip.frames.0b1c2d3e.vtt' },
      { sha256: C, fileName: 'clip.frames.77665544.vtt' },
    ]);
  });

  it('puts the hash at the end of a name without an extension', () => {
    expect(resultFiles([ref(A, 'notes'), ref(B, 'notes')]).map((f) => f.fileName)).toEqual(['notes', 'notes.0b1c2d3e']);
  });

  it('treats names differing only in case as the same file, for case-insensitive file systems', () => {
    expect(resultFiles([ref(A, 'Scan.png'), ref(B, 'scan.png')]).map((f) => f.fileName)).toEqual(['Scan.png', 'scan.0b1c2d3e.png']);
  });

  it('never takes result.json or summary.txt', () => {
    expect(resultFiles([ref(A, 'result.json'), ref(B, 'SUMMARY.txt')]).map((f) => f.fileName)).toEqual(['result.3fa2b1c0.json', 'SUMMARY.0b1c2d3e.txt']);
  });

  it('falls back to the full hash, then a count, when the short-hash name is taken too', () => {
    expect(resultFiles([ref(A, 'x.png'), ref(C, 'x.0b1c2d3e.png'), ref(B, 'x.png')]).map((f) => f.fileName)).toEqual(['x.png', 'x.0b1c2d3e.png', `x.${B}.png`]);
    expect(resultFiles([ref(A, 'y'), ref(B, 'y.77665544'), ref(B, `y.${C}`), ref(C, 'y')]).map((f) => f.fileName)).toEqual(['y', 'y.77665544', `y.${C}`, `y.${C}-2`]);
  });

  it('is pure: the same references give the same files', () => {
    const refs = [ref(A, 'a.png'), ref(B, 'a.png'), ref(A, 'b.png')];
    expect(resultFiles(refs)).toEqual(resultFiles(refs));
  });

  it('never names a file outside the output folder', () => {
    const hostile = ['../../etc/passwd', '..', '.', '', '/abs/path.txt', '..\\..\\win.txt', 'a/../../b.txt', 'sub/dir/', 'nul\u0000byte', '../'];
    const files = resultFiles(hostile.map((name, i) => ref(i % 2 === 0 ? A : B, name)));
    const out = path.resolve('/tmp/out');
    for (const f of files) {
      expect(f.fileName).not.toMatch(/[/\\]/);
      expect(f.fileName).not.toMatch(/^\.+$/);
      expect(path.dirname(path.resolve(out, f.fileName))).toBe(out);
    }
  });
});

describe('safeFileName', () => {
  it.each([
    ['clip.frames.vtt', 'clip.frames.vtt'],
    ['frames/clip.f0001.png', 'clip.f0001.png'],
    ['../../etc/passwd', 'passwd'],
    ['..\\..\\boot.ini', 'boot.ini'],
    ['my notes (final).txt', 'my_notes_final_.txt'],
    ['', A],
    ['.', A],
    ['..', A],
    ['dir/..', A],
  ])('%j → %j', (name, expected) => {
    expect(safeFileName(name, A)).toBe(expected);
  });

  it('shortens a very long name, keeping its extension', () => {
    const name = safeFileName(`${'x'.repeat(1000)}.png`, A);
    expect(name.length).toBeLessThanOrEqual(180);
    expect(name.endsWith('.png')).toBe(true);
  });
});

describe('findBlobRefs', () => {
  it('finds every blob reference in a result document, in order, repeats included', () => {
    const doc = {
      inputs: [
        { name: 'clip', outputs: { 'video.stitch': { frames: [{ index: 0, blob: ref(A, 'clip.f0000.png') }], subtitles: ref(B, 'clip.frames.vtt') } } },
        { name: 'again', outputs: { 'image.inspect': { thumbnail: ref(A, 'again.thumbnail.webp') } } },
      ],
      // Not references: no size, or not a SHA-256.
      other: { sha256: A, name: 'x' },
      bad: { sha256: 'nope', size: 1, mediaType: '', name: 'y' },
    };
    expect(findBlobRefs(doc).map((r) => [r.sha256, r.name])).toEqual([
      [A, 'clip.f0000.png'],
      [B, 'clip.frames.vtt'],
      [A, 'again.thumbnail.webp'],
    ]);
  });
});
