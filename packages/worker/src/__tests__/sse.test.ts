import { describe, expect, it } from 'vitest';
import { SseFormatError, SseParser, sseEvents, type SseEvent } from '../backends/openai-chat/sse.js';

/** Feeds the pieces one by one and returns every event, the end included. */
function parse(pieces: readonly string[], maxEventChars?: number): SseEvent[] {
  const parser = new SseParser(maxEventChars);
  return [...pieces.flatMap((p) => parser.push(p)), ...parser.end()];
}

/** Every way to cut `text` in two. */
function everySplit(text: string): string[][] {
  return Array.from({ length: text.length + 1 }, (_, i) => [text.slice(0, i), text.slice(i)]);
}

const message = (data: string): SseEvent => ({ event: 'message', data });

describe('SseParser', () => {
  const cases: [string, string, SseEvent[]][] = [
    ['one data line', 'data: {"a":1}\n\n', [message('{"a":1}')]],
    ['two events', 'data: one\n\ndata: two\n\n', [message('one'), message('two')]],
    ['data lines joined by LF', 'data: a\ndata: b\n\n', [message('a\nb')]],
    ['only one leading space is dropped', 'data:  two spaces\ndata:none\n\n', [message(' two spaces\nnone')]],
    ['a field with no colon is an empty value', 'data\ndata\n\n', [message('\n')]],
    ['CRLF line ends', 'data: x\r\n\r\ndata: y\r\n\r\n', [message('x'), message('y')]],
    ['CR line ends', 'data: x\r\rdata: y\r\r', [message('x'), message('y')]],
    ['comments and unknown fields are skipped', ': keep-alive\nid: 7\nretry: 100\nfoo: bar\ndata: z\n\n', [message('z')]],
    ['an event without data is dropped', 'event: ping\n\ndata: z\n\n', [message('z')]],
    ['the event type is kept, then reset', 'event: delta\ndata: 1\n\ndata: 2\n\n', [{ event: 'delta', data: '1' }, message('2')]],
    ["llama.cpp's error line is an error event", 'error: {"code":400,"message":"too long"}\n\n', [{ event: 'error', data: '{"code":400,"message":"too long"}' }]],
    ['blank lines between events do nothing', '\n\n\ndata: q\n\n\n\n', [message('q')]],
    ['an event the stream ends inside is dropped', 'data: whole\n\ndata: cut', [message('whole')]],
    ['an event without its blank line is dropped', 'data: [DONE]\n', []],
    ['data that is only a colon', 'data: :\n\n', [message(':')]],
    ['non-ASCII text', 'data: {"c":"naïve 😀 Привет"}\n\n', [message('{"c":"naïve 😀 Привет"}')]],
  ];

  it.each(cases)('%s', (_name, text, expected) => {
    expect(parse([text])).toEqual(expected);
  });

  it.each(cases)('%s, cut anywhere into two pieces', (_name, text, expected) => {
    for (const pieces of everySplit(text)) expect(parse(pieces)).toEqual(expected);
  });

  it('takes one character at a time, a CRLF split across pieces included', () => {
    const text = 'data: a\r\n\r\ndata: b\r\n\r\n';
    expect(parse([...text])).toEqual([message('a'), message('b')]);
    // An empty piece between CR and LF does not make the LF a second line end.
    expect(parse(['data: a\r', '', '\n\r', '', '\n'])).toEqual([message('a')]);
  });

  it('refuses an event longer than the limit, in one line or in many', () => {
    expect(() => parse([`data: ${'x'.repeat(100)}`], 50)).toThrow(SseFormatError);
    expect(() => parse(['data: 1234567890\n'.repeat(10)], 50)).toThrow(SseFormatError);
    expect(parse([`data: ${'x'.repeat(40)}\n\n`.repeat(10)], 50)).toHaveLength(10);
  });
});

describe('sseEvents', () => {
  async function collect(chunks: readonly Uint8Array[]): Promise<SseEvent[]> {
    const events: SseEvent[] = [];
    async function* body(): AsyncGenerator<Uint8Array> {
      for (const chunk of chunks) yield await Promise.resolve(chunk);
    }
    for await (const event of sseEvents(body())) events.push(event);
    return events;
  }

  it('decodes UTF-8 split inside a character, and skips a byte-order mark', async () => {
    const bytes = new TextEncoder().encode('\uFEFFdata: café 😀\n\n');
    const events = await collect(Array.from(bytes, (b) => Uint8Array.of(b)));
    expect(events).toEqual([message('café 😀')]);
  });
});
