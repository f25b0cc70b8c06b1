import { describe, expect, it } from 'vitest';
import { describeSupportedMedia, MODALITIES, modalityOf, normaliseMediaType, SUPPORTED_MEDIA_TYPES, type Modality } from '../modality.js';

describe('modalityOf', () => {
  const cases: { mediaType: string; modality: Modality | undefined }[] = [
    { mediaType: 'image/png', modality: 'image' },
    { mediaType: 'image/jpeg', modality: 'image' },
    { mediaType: 'image/x-ms-bmp', modality: 'image' },
    { mediaType: 'audio/wav', modality: 'audio' },
    { mediaType: 'audio/vnd.wave', modality: 'audio' },
    { mediaType: 'audio/wave', modality: 'audio' },
    { mediaType: 'audio/x-wav', modality: 'audio' },
    { mediaType: 'audio/x-flac', modality: 'audio' },
    { mediaType: 'audio/x-aiff', modality: 'audio' },
    { mediaType: 'audio/m4a', modality: 'audio' },
    { mediaType: 'audio/mpeg', modality: 'audio' },
    { mediaType: 'video/mp4', modality: 'video' },
    { mediaType: 'video/matroska', modality: 'video' },
    { mediaType: 'text/plain', modality: 'text' },
    { mediaType: ' Audio/X-WAV ', modality: 'audio' },
    { mediaType: 'IMAGE/PNG', modality: 'image' },
    { mediaType: 'application/pdf', modality: undefined },
    { mediaType: 'image/svg+xml', modality: undefined },
    { mediaType: 'text/html', modality: undefined },
    { mediaType: 'application/octet-stream', modality: undefined },
    { mediaType: '', modality: undefined },
  ];
  it.each(cases)('$mediaType → $modality', ({ mediaType, modality }) => {
    expect(modalityOf(mediaType)).toBe(modality);
  });

  it('knows the modality of every supported type', () => {
    for (const m of MODALITIES) {
      for (const t of SUPPORTED_MEDIA_TYPES[m]) expect(modalityOf(t)).toBe(m);
    }
  });
});

describe('normaliseMediaType', () => {
  const cases: [string, string][] = [
    ['audio/vnd.wave', 'audio/wav'],
    ['audio/x-wav', 'audio/wav'],
    ['  IMAGE/X-MS-BMP ', 'image/bmp'],
    ['image/png', 'image/png'],
    ['Application/Unknown', 'application/unknown'],
  ];
  it.each(cases)('%s → %s', (input, expected) => {
    expect(normaliseMediaType(input)).toBe(expected);
  });
});

describe('describeSupportedMedia', () => {
  it('lists every modality by default and only those asked for otherwise', () => {
    expect(describeSupportedMedia()).toMatch(/^images \(PNG.*\), audio \(WAV.*\), video \(MP4.*\), UTF-8 text$/);
    expect(describeSupportedMedia(['audio', 'text'])).toBe('audio (WAV, MP3, FLAC, Ogg/Opus, AAC/M4A, WebM, AIFF), UTF-8 text');
  });
});
