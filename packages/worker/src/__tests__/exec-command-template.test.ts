import { describe, expect, it } from 'vitest';
import { CommandTemplateError, MissingValueError, OptionLikeValueError, parseCommandTemplate, renderCommand, type TemplateValues } from '../backends/exec/command-template.js';
import { parseProgressLine } from '../backends/exec/run-command.js';

const values: TemplateValues = {
  input: { path: '/scratch/in/input.png', name: 'photo', type: 'image/png' },
  outdir: '/scratch/out',
  params: { size: '512', mode: 'fast', evil: '"; rm -rf / #' },
  taskId: 't1',
  jobId: 'job-1',
};

describe('exec command templates', () => {
  const cases: { name: string; command: string[]; args: string[] }[] = [
    { name: 'no placeholders', command: ['prog', '-v', 'x'], args: ['-v', 'x'] },
    { name: 'the input file', command: ['prog', '{input}'], args: ['/scratch/in/input.png'] },
    { name: 'input name and type', command: ['prog', '{input.name}:{input.type}'], args: ['photo:image/png'] },
    { name: 'outdir inside an argument', command: ['prog', '--out={outdir}/result.png'], args: ['--out=/scratch/out/result.png'] },
    { name: 'a parameter', command: ['prog', '--size', '{params.size}'], args: ['--size', '512'] },
    { name: 'two parameters in one argument', command: ['prog', '{params.mode}-{params.size}'], args: ['fast-512'] },
    { name: 'task and job ids', command: ['prog', '{job.id}/{task.id}'], args: ['job-1/t1'] },
    { name: 'escaped braces', command: ['prog', '{{"size": {params.size}}}'], args: ['{"size": 512}'] },
    { name: 'a value with shell syntax stays one argument', command: ['prog', '{params.evil}'], args: ['"; rm -rf / #'] },
    { name: 'an empty argument', command: ['prog', ''], args: [''] },
  ];
  for (const c of cases) {
    it(`renders ${c.name}`, () => {
      const template = parseCommandTemplate(c.command);
      expect(template.program).toBe('prog');
      expect(renderCommand(template, values)).toEqual(c.args);
    });
  }

  it('lists the parameters and whether the input is used', () => {
    const template = parseCommandTemplate(['prog', '{params.a}', '{params.b}{params.a}', '{input.type}']);
    expect(template.params).toEqual(['a', 'b']);
    expect(template.usesInput).toBe(true);
    expect(parseCommandTemplate(['prog', '{outdir}']).usesInput).toBe(false);
  });

  const bad: { name: string; command: string[]; index: number; message: RegExp }[] = [
    { name: 'an unknown placeholder', command: ['prog', '{inptu}'], index: 1, message: /unknown placeholder \{inptu\}; the placeholders are \{input\}/ },
    { name: 'an empty placeholder', command: ['prog', 'a', '{}'], index: 2, message: /unknown placeholder \{\}/ },
    { name: 'a parameter name with a dot', command: ['prog', '{params.a.b}'], index: 1, message: /unknown placeholder/ },
    { name: 'params without a name', command: ['prog', '{params.}'], index: 1, message: /unknown placeholder/ },
    { name: 'an unclosed brace', command: ['prog', '{input'], index: 1, message: /"\{" is not closed/ },
    { name: 'a lone closing brace', command: ['prog', 'a}b'], index: 1, message: /a lone "\}"/ },
    { name: 'a placeholder in the program', command: ['{params.prog}', 'x'], index: 0, message: /the program takes no placeholder/ },
    { name: 'an empty command', command: [], index: 0, message: /the command is empty/ },
  ];
  for (const c of bad) {
    it(`refuses ${c.name}`, () => {
      let caught: unknown;
      try {
        parseCommandTemplate(c.command);
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(CommandTemplateError);
      expect((caught as CommandTemplateError).index).toBe(c.index);
      expect((caught as CommandTemplateError).message).toMatch(c.message);
    });
  }

  it('refuses a job value that would begin an argument with "-", unless it is a negative number, glued, or after "--"', () => {
    const withParams = (params: Record<string, string>): TemplateValues => ({ ...values, params });
    const refused: { command: string[]; params: Record<string, string>; placeholder: string; argument: number }[] = [
      { command: ['prog', '{params.a}'], params: { a: '-rf' }, placeholder: 'params.a', argument: 1 },
      { command: ['prog', 'x', '{params.a}.png'], params: { a: '--out=/etc/x' }, placeholder: 'params.a', argument: 2 },
      { command: ['prog', '{params.a}{params.b}'], params: { a: '', b: '-v' }, placeholder: 'params.a', argument: 1 },
      { command: ['prog', '{params.a}'], params: { a: '-1x' }, placeholder: 'params.a', argument: 1 },
      { command: ['prog', '--x', '{params.a}'], params: { a: '-' }, placeholder: 'params.a', argument: 2 },
    ];
    for (const c of refused) {
      const err = (() => {
        try {
          renderCommand(parseCommandTemplate(c.command), withParams(c.params));
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err, c.command.join(' ')).toBeInstanceOf(OptionLikeValueError);
      expect((err as OptionLikeValueError).placeholder).toBe(c.placeholder);
      expect((err as OptionLikeValueError).argument).toBe(c.argument);
    }
    expect(() => renderCommand(parseCommandTemplate(['prog', '{input.name}']), { ...values, input: { path: '/s/in', name: '-n', type: 'text/plain' } })).toThrow(/\{input\.name\} is "-n"/);
    const allowed: { command: string[]; params: Record<string, string>; args: string[] }[] = [
      { command: ['prog', '--size={params.a}'], params: { a: '-rf' }, args: ['--size=-rf'] },
      { command: ['prog', '{params.a}', '{params.b}', '{params.c}'], params: { a: '-3', b: '-0.5', c: '-1e-3' }, args: ['-3', '-0.5', '-1e-3'] },
      { command: ['prog', '--', '{params.a}', '{params.b}'], params: { a: '-rf', b: '--help' }, args: ['--', '-rf', '--help'] },
      { command: ['prog', 'a{params.a}'], params: { a: '-rf' }, args: ['a-rf'] },
      { command: ['prog', '-v', '{outdir}', '{input}'], params: {}, args: ['-v', '/scratch/out', '/scratch/in/input.png'] },
    ];
    for (const c of allowed) expect(renderCommand(parseCommandTemplate(c.command), withParams(c.params))).toEqual(c.args);
  });

  it('says which value a task lacks', () => {
    const { input: _input, ...noInput } = values;
    expect(() => renderCommand(parseCommandTemplate(['prog', '{input}']), noInput)).toThrow(MissingValueError);
    expect(() => renderCommand(parseCommandTemplate(['prog', '{input.name}']), noInput)).toThrow(/uses \{input.name\} but the task has no input/);
    expect(() => renderCommand(parseCommandTemplate(['prog', '{params.nope}']), values)).toThrow(/uses \{params.nope\} but the task has no parameter "nope"/);
  });
});

describe('exec progress lines', () => {
  const cases: { line: string; expected: { fraction: number; message: string } | undefined }[] = [
    { line: 'progress 0.42 loading model', expected: { fraction: 0.42, message: 'loading model' } },
    { line: 'progress 42% loading model', expected: { fraction: 0.42, message: 'loading model' } },
    { line: 'progress 1', expected: { fraction: 1, message: '' } },
    { line: 'progress .5 half', expected: { fraction: 0.5, message: 'half' } },
    { line: '  progress 0.1 padded  ', expected: { fraction: 0.1, message: 'padded' } },
    { line: 'progress 7 clamped', expected: { fraction: 1, message: 'clamped' } },
    { line: 'progress 250% clamped', expected: { fraction: 1, message: 'clamped' } },
    { line: 'progress half', expected: undefined },
    { line: 'progress -0.5', expected: undefined },
    { line: 'Progress 0.5', expected: undefined },
    { line: 'loading: progress 0.5', expected: undefined },
    { line: 'progress0.5', expected: undefined },
  ];
  for (const c of cases) {
    it(`reads ${JSON.stringify(c.line)}`, () => {
      expect(parseProgressLine(c.line)).toEqual(c.expected);
    });
  }
});
