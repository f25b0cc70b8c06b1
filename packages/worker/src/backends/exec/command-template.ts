/**
 * An exec backend's `command`: an argument list whose arguments may hold placeholders,
 * parsed once when the config is read and filled in for each task. A value replaces its
 * placeholder inside one argument, as text: no shell ever reads the result, so a parameter
 * such as `"; rm -rf / #"` or `$(id)` reaches the program as those very characters.
 *
 * | placeholder | replaced by |
 * |---|---|
 * | `{input}` | the path of the task's input file (an inline text is written to a file first) |
 * | `{input.name}` | the job input's name |
 * | `{input.type}` | the input's media type (`image/png`, `text/plain`…) |
 * | `{outdir}` | an empty folder for output files, uploaded when the command ends |
 * | `{params.NAME}` | the task parameter NAME (a string as it is, a number or boolean as JSON writes it) |
 * | `{task.id}`, `{job.id}` | the task's and the job's ids |
 * | `{{`, `}}` | a literal `{`, `}` |
 *
 * A value from the job (`{params.NAME}`, `{input.name}`, `{input.type}`) that begins an
 * argument must not begin with "-": the program would read it as an option (`--output=/x`,
 * `-rf`), which is how a value that stays one argument can still change what a program does.
 * Such a task is refused (OptionLikeValueError) unless the value is a negative number
 * (`-3`, `-0.5e2`) or a literal `--` argument comes before it (the usual end of options). A
 * value glued after literal text (`--size={params.size}`) may be anything.
 */

/** One piece of an argument: literal text or a value filled in per task. */
export type TemplatePart =
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'input' | 'input.name' | 'input.type' | 'outdir' | 'task.id' | 'job.id' }
  | { readonly type: 'param'; readonly name: string };

export interface CommandTemplate {
  /** The program (the command's first element), literal. */
  readonly program: string;
  /** Every argument after the program, as parts. */
  readonly args: readonly (readonly TemplatePart[])[];
  /** Whether some argument holds `{input}`, `{input.name}` or `{input.type}`. */
  readonly usesInput: boolean;
  /** Parameter names the arguments use, in order of first use. */
  readonly params: readonly string[];
}

/** What a task fills the placeholders with. */
export interface TemplateValues {
  /** The task's input, when it has one. */
  readonly input?: { readonly path: string; readonly name: string; readonly type: string };
  readonly outdir: string;
  readonly params: Readonly<Record<string, string>>;
  readonly taskId: string;
  readonly jobId: string;
}

/** A command that cannot be used: `index` is the element of `command` at fault. */
export class CommandTemplateError extends Error {
  constructor(
    readonly index: number,
    message: string,
  ) {
    super(message);
    this.name = 'CommandTemplateError';
  }
}

/** A value the template needs that the task does not have (see `renderCommand`). */
export class MissingValueError extends Error {
  constructor(
    readonly what: 'input' | 'param',
    message: string,
  ) {
    super(message);
    this.name = 'MissingValueError';
  }
}

/**
 * A job's value that would begin an argument with "-" (see the rule above): `name` is the
 * placeholder, `argument` the 1-based position after the program.
 */
export class OptionLikeValueError extends Error {
  constructor(
    readonly placeholder: string,
    readonly argument: number,
    readonly value: string,
  ) {
    const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
    super(
      `{${placeholder}} is ${JSON.stringify(shown)}, which starts with "-" and would begin argument ${argument}, where the program could read it as an option; ` +
        `values there may not start with "-" (negative numbers may). The worker's owner can write the argument as --opt={${placeholder}}, or put "--" before it in the command`,
    );
    this.name = 'OptionLikeValueError';
  }
}

/** A negative number as text: no program reads that as an option that names a file. */
const NEGATIVE_NUMBER = /^-(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/;

const FIXED = new Set(['input', 'input.name', 'input.type', 'outdir', 'task.id', 'job.id']);
const PARAM = /^params\.([A-Za-z_][A-Za-z0-9_]*)$/;
export const PLACEHOLDERS_TEXT = '{input}, {input.name}, {input.type}, {outdir}, {params.NAME}, {task.id}, {job.id} (and {{ or }} for a literal brace)';

function parseArgument(arg: string, index: number): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let text = '';
  let i = 0;
  while (i < arg.length) {
    const c = arg[i];
    if ((c === '{' || c === '}') && arg[i + 1] === c) {
      text += c;
      i += 2;
    } else if (c === '}') {
      throw new CommandTemplateError(index, `"${arg}": a lone "}" (write "}}" for a literal brace)`);
    } else if (c === '{') {
      const end = arg.indexOf('}', i + 1);
      if (end < 0) throw new CommandTemplateError(index, `"${arg}": "{" is not closed (write "{{" for a literal brace)`);
      const name = arg.slice(i + 1, end);
      const param = PARAM.exec(name);
      if (param?.[1] !== undefined) {
        if (text !== '') parts.push({ type: 'text', text });
        parts.push({ type: 'param', name: param[1] });
      } else if (FIXED.has(name)) {
        if (text !== '') parts.push({ type: 'text', text });
        parts.push({ type: name as 'input' });
      } else {
        throw new CommandTemplateError(index, `"${arg}": unknown placeholder {${name}}; the placeholders are ${PLACEHOLDERS_TEXT}`);
      }
      text = '';
      i = end + 1;
    } else {
      text += c;
      i += 1;
    }
  }
  if (text !== '' || parts.length === 0) parts.push({ type: 'text', text });
  return parts;
}

/**
 * Parses an exec backend's `command`. The program itself takes no placeholder: a task must
 * never choose what runs.
 *
 * @throws CommandTemplateError naming the element at fault and what is allowed
 */
export function parseCommandTemplate(command: readonly string[]): CommandTemplate {
  const [program, ...rest] = command;
  if (program === undefined || program === '') throw new CommandTemplateError(0, 'the command is empty: name a program, then its arguments');
  const literal = parseArgument(program, 0);
  if (literal.length !== 1 || literal[0]?.type !== 'text') {
    throw new CommandTemplateError(0, `"${program}": the program takes no placeholder (a task must not choose what runs); put placeholders in the arguments`);
  }
  const args = rest.map((arg, i) => parseArgument(arg, i + 1));
  const all = args.flat();
  const params = [...new Set(all.flatMap((p) => (p.type === 'param' ? [p.name] : [])))];
  const usesInput = all.some((p) => p.type === 'input' || p.type === 'input.name' || p.type === 'input.type');
  return { program: literal[0].text, args, usesInput, params };
}

/**
 * The arguments (after the program) for one task.
 *
 * @throws MissingValueError when an argument uses the input and the task has none, or a
 *   parameter the task does not have
 * @throws OptionLikeValueError when a job's value would begin an argument with "-"
 */
export function renderCommand(template: CommandTemplate, values: TemplateValues): string[] {
  let endOfOptions = false;
  return template.args.map((parts, index) => {
    const argument = parts
      .map((part) => {
        switch (part.type) {
          case 'text':
            return part.text;
          case 'param': {
            const value = values.params[part.name];
            if (value === undefined) throw new MissingValueError('param', `the command uses {params.${part.name}} but the task has no parameter "${part.name}"`);
            return value;
          }
          case 'input':
          case 'input.name':
          case 'input.type': {
            const input = values.input;
            if (!input) throw new MissingValueError('input', `the command uses {${part.type}} but the task has no input (give the step an input)`);
            return part.type === 'input' ? input.path : part.type === 'input.name' ? input.name : input.type;
          }
          case 'outdir':
            return values.outdir;
          case 'task.id':
            return values.taskId;
          case 'job.id':
            return values.jobId;
        }
      })
      .join('');
    const [first] = parts;
    if (!endOfOptions && argument.startsWith('-') && first && isJobValue(first) && !NEGATIVE_NUMBER.test(argument)) {
      throw new OptionLikeValueError(first.type === 'param' ? `params.${first.name}` : first.type, index + 1, argument);
    }
    if (parts.length === 1 && first?.type === 'text' && first.text === '--') endOfOptions = true;
    return argument;
  });
}

/** Parts a job's submitter chooses (ids and paths are the grid's own, never starting with "-"). */
function isJobValue(part: TemplatePart): boolean {
  return part.type === 'param' || part.type === 'input.name' || part.type === 'input.type';
}
