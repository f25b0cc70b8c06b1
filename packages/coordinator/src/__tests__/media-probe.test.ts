import { crc32, deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { UnsupportedMediaError, type Modality } from '@mmgrid/core';
import { detectMedia, PROBE_HEAD_BYTES } from '../media-probe.js';

const ascii = (text: string): number[] => [...Buffer.from(text, 'latin1')];
const u16 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff];
const u32le = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const u32be = (n: number): number[] => [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const bytes = (...parts: (number[] | Uint8Array)[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => [...p]));
const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A complete, valid PNG of one red pixel. */
function png(): Uint8Array {
  const chunk = (type: string, data: number[] | Uint8Array): number[] => {
    const body = bytes(ascii(type), data);
    return [...u32be(data.length), ...body, ...u32be(crc32(body))];
  };
  const ihdr = [...u32be(1), ...u32be(1), 8, 2, 0, 0, 0]; // 1×1, 8-bit RGB
  const idat = deflateSync(Uint8Array.from([0, 255, 0, 0])); // filter byte, then one pixel
  return bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', []));
}

/** A 44-byte PCM WAV header and a few samples. */
function wav(): Uint8Array {
  const data = [0, 0, 0xff, 0x3f, 0x01, 0xc0, 0, 0];
  return bytes(
    ascii('RIFF'),
    u32le(36 + data.length),
    ascii('WAVE'),
    ascii('fmt '),
    u32le(16),
    u16(1), // PCM
    u16(1), // mono
    u32le(16_000),
    u32le(32_000),
    u16(2),
    u16(16),
    ascii('data'),
    u32le(data.length),
    data,
  );
}

/** A BMP header of a 1×1 24-bit image. */
function bmp(): Uint8Array {
  return bytes(ascii('BM'), u32le(58), u32le(0), u32le(54), u32le(40), u32le(1), u32le(1), u16(1), u16(24), u32le(0), u32le(4), u32le(2835), u32le(2835), u32le(0), u32le(0), [0, 0, 255, 0]);
}

/** The first Ogg page header (one segment), then the codec's identification packet. */
function ogg(packet: number[]): Uint8Array {
  return bytes(ascii('OggS'), [0, 0x02], new Array<number>(8).fill(0), u32le(0x1234), u32le(0), u32le(0), [1, packet.length], packet);
}

/** One MPEG-1 Layer III frame header (128 kbit/s, 44.1 kHz) and silence. */
const mp3Frame = [0xff, 0xfb, 0x90, 0x64, ...new Array<number>(413).fill(0)];

/** Deterministic bytes that match no signature: a made-up header, then noise with NUL bytes. */
function binary(length: number): Uint8Array {
  const out = new Uint8Array(length);
  let state = 12345;
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    out[i] = i % 7 === 0 ? 0 : state >>> 24;
  }
  out.set([0x13, 0x37, 0x00, 0x42], 0);
  return out;
}

async function refusal(name: string, head: Uint8Array): Promise<UnsupportedMediaError> {
  try {
    await detectMedia(name, head);
  } catch (err) {
    expect(err).toBeInstanceOf(UnsupportedMediaError);
    if (err instanceof UnsupportedMediaError) return err;
  }
  throw new Error('expected an UnsupportedMediaError');
}

describe('detectMedia, recognised media', () => {
  const cases: { name: string; head: Uint8Array; mediaType: string; modality: Modality }[] = [
    { name: 'a PNG', head: png(), mediaType: 'image/png', modality: 'image' },
    { name: 'JPEG magic (JFIF)', head: bytes([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10], ascii('JFIF\0'), [1, 1, 0, 0, 1, 0, 1, 0, 0]), mediaType: 'image/jpeg', modality: 'image' },
    { name: 'JPEG magic (Exif)', head: bytes([0xff, 0xd8, 0xff, 0xe1, 0x00, 0x10], ascii('Exif\0\0'), new Array<number>(16).fill(0)), mediaType: 'image/jpeg', modality: 'image' },
    { name: 'a GIF header', head: bytes(ascii('GIF89a'), [1, 0, 1, 0, 0, 0, 0]), mediaType: 'image/gif', modality: 'image' },
    { name: 'a WebP header', head: bytes(ascii('RIFF'), u32le(30), ascii('WEBPVP8 '), u32le(18), new Array<number>(18).fill(0)), mediaType: 'image/webp', modality: 'image' },
    { name: 'a BMP header', head: bmp(), mediaType: 'image/bmp', modality: 'image' },
    { name: 'a WAV header', head: wav(), mediaType: 'audio/wav', modality: 'audio' },
    { name: 'an MP3 frame', head: Uint8Array.from(mp3Frame), mediaType: 'audio/mpeg', modality: 'audio' },
    { name: 'an MP3 with an ID3v2 tag', head: bytes(ascii('ID3'), [4, 0, 0, 0, 0, 0, 0], mp3Frame), mediaType: 'audio/mpeg', modality: 'audio' },
    { name: 'FLAC magic', head: bytes(ascii('fLaC'), [0x80, 0, 0, 0x22], new Array<number>(34).fill(0)), mediaType: 'audio/flac', modality: 'audio' },
    { name: 'Ogg Vorbis', head: ogg([1, ...ascii('vorbis'), 0, 0, 0, 0, 1]), mediaType: 'audio/ogg', modality: 'audio' },
    // file-type reports "audio/ogg; codecs=opus": the parameter must not make it unsupported.
    { name: 'Ogg Opus', head: ogg([...ascii('OpusHead'), 1, 1, 0x38, 0x01, 0x80, 0xbb, 0, 0, 0, 0, 0]), mediaType: 'audio/ogg', modality: 'audio' },
    { name: 'an MP4 header', head: bytes(u32be(24), ascii('ftypisom'), u32be(0x200), ascii('isomiso2'), u32be(8), ascii('free')), mediaType: 'video/mp4', modality: 'video' },
  ];

  it.each(cases)('detects $name', async ({ name, head, mediaType, modality }) => {
    await expect(detectMedia(name, head)).resolves.toEqual({ mediaType, modality });
  });
});

describe('detectMedia, text', () => {
  const text = (value: string) => ({ value, head: utf8(value) });
  const cases: { name: string; head: Uint8Array }[] = [
    { name: 'English', head: text('The quick brown fox jumps over the lazy dog.\n').head },
    { name: 'one character', head: text('x').head },
    { name: 'tabs, CR LF and form feeds', head: text('a\tb\r\nc\fd\n').head },
    { name: 'multilingual text', head: text('Grüße, Привет, こんにちは, 你好, مرحبا, שלום, नमस्ते 👋🏽\n').head },
    { name: 'a UTF-8 BOM', head: bytes([0xef, 0xbb, 0xbf], utf8('hello')) },
    // "BM" is also the BMP signature.
    { name: 'text starting with "BM"', head: text('BMW and BMX are not bitmaps.\n').head },
    { name: 'text that starts like an ID3 tag', head: text('ID3 tags are described here.\n').head },
    { name: 'a head cut after the first byte of a 2-byte character', head: utf8('Grüße').subarray(0, 3) },
    { name: 'a head cut inside a 3-byte character', head: utf8('日本語').subarray(0, 5) },
    { name: 'a head cut inside a 4-byte emoji', head: utf8('ok 😀').subarray(0, 6) },
    { name: 'one control character in a short text', head: text('bell\u0007 here').head },
  ];

  it.each(cases)('detects $name as UTF-8 text', async ({ name, head }) => {
    await expect(detectMedia(name, head)).resolves.toEqual({ mediaType: 'text/plain', modality: 'text' });
  });

  it('detects a full probe head of Cyrillic cut in the middle of a character', async () => {
    const all = utf8(`a${'ж'.repeat(40_000)}`);
    const head = all.subarray(0, PROBE_HEAD_BYTES);
    // The head ends with the first byte of a two-byte character.
    expect(head[head.length - 1]).toBe(all[PROBE_HEAD_BYTES - 1]);
    expect(() => new TextDecoder('utf-8', { fatal: true }).decode(head)).toThrow();
    await expect(detectMedia('cyrillic.txt', head)).resolves.toEqual({ mediaType: 'text/plain', modality: 'text' });
  });

  it('detects text right after refusing invalid UTF-8 (the decoder keeps no state)', async () => {
    await refusal('latin1.txt', Uint8Array.from([...ascii('caf'), 0xe9, ...ascii(' au lait')]));
    await expect(detectMedia('ascii.txt', utf8('plain'))).resolves.toEqual({ mediaType: 'text/plain', modality: 'text' });
    await expect(detectMedia('cut.txt', utf8('é').subarray(0, 1))).resolves.toEqual({ mediaType: 'text/plain', modality: 'text' });
    await expect(detectMedia('after-cut.txt', utf8('plain again'))).resolves.toEqual({ mediaType: 'text/plain', modality: 'text' });
  });
});

describe('detectMedia, refusals', () => {
  const cases: { name: string; head: Uint8Array; detected: string }[] = [
    { name: 'empty.bin', head: new Uint8Array(0), detected: 'empty' },
    { name: 'noise.bin', head: binary(4_096), detected: 'application/octet-stream' },
    { name: 'nul.txt', head: utf8('looks like text\0but has a NUL'), detected: 'application/octet-stream' },
    { name: 'latin1.txt', head: Uint8Array.from([...ascii('caf'), 0xe9, ...ascii(' au lait')]), detected: 'application/octet-stream' },
    { name: 'controls.txt', head: Uint8Array.from([0x41, 0x01, 0x42, 0x02, 0x43, 0x03]), detected: 'application/octet-stream' },
    { name: 'report.pdf', head: bytes(ascii('%PDF-1.4\n%'), [0xe2, 0xe3, 0xcf, 0xd3], ascii('\n1 0 obj\n<< /Type /Catalog >>\nendobj\n')), detected: 'application/pdf' },
    { name: 'archive.zip', head: bytes(ascii('PK'), [3, 4, 20, 0, 0, 0, 0, 0], new Array<number>(20).fill(0), ascii('a.txt')), detected: 'application/zip' },
  ];

  it.each(cases)('refuses $name as $detected, naming the input and what is supported', async ({ name, head, detected }) => {
    const err = await refusal(name, head);
    expect(err.inputName).toBe(name);
    expect(err.detected).toBe(detected);
    expect(err.code).toBe('UNSUPPORTED_MEDIA');
    expect(err.message).toContain(`"${name}"`);
    expect(err.message).toContain('supported');
    if (detected.includes('/') && detected !== 'application/octet-stream') expect(err.message).toContain(detected);
  });

  it('lists every modality in a refusal', async () => {
    const err = await refusal('report.pdf', utf8('%PDF-1.4\n'));
    expect(err.message).toContain('application/pdf');
    for (const word of ['PNG', 'WAV', 'MP4', 'UTF-8 text']) expect(err.message).toContain(word);
  });
});
