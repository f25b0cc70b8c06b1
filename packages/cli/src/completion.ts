import { Help, type Argument, type Command, type Option } from 'commander';

/** The shells `mmgrid completion` writes scripts for. */
export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** What completes a value: words to choose from, a file, a folder, or anything (no suggestion). */
type ValueKind = { readonly kind: 'choices'; readonly words: readonly string[] } | { readonly kind: 'file' } | { readonly kind: 'dir' } | { readonly kind: 'any' };

interface OptionSpec {
  readonly short?: string;
  readonly long?: string;
  readonly description: string;
  /** undefined: a flag, which takes no value. */
  readonly value?: ValueKind;
}

interface CommandSpec {
  /** The subcommand names from the program down ("token create"); "" for the program. */
  readonly path: string;
  readonly subcommands: readonly { readonly name: string; readonly description: string }[];
  /** This command's own options (the program's are global: they are taken anywhere). */
  readonly options: readonly OptionSpec[];
  /** What its positional arguments complete to. */
  readonly args: ValueKind;
}

/** The value an option or argument takes, from its choices or its value's name ("<file>", "<dir>", "<job.yaml>"). */
function valueKind(choices: readonly string[] | undefined, valueName: string): ValueKind {
  if (choices && choices.length > 0) return { kind: 'choices', words: choices };
  if (/\bdir\b|folder/i.test(valueName)) return { kind: 'dir' };
  if (/file|\.ya?ml|\.json|\.pem/i.test(valueName)) return { kind: 'file' };
  return { kind: 'any' };
}

function optionSpec(option: Option): OptionSpec {
  const valueName = /[<[]([^>\]]+)[>\]]/.exec(option.flags)?.[1] ?? '';
  const takesValue = option.required || option.optional;
  return {
    ...(option.short !== undefined ? { short: option.short } : {}),
    ...(option.long !== undefined ? { long: option.long } : {}),
    description: option.description,
    ...(takesValue ? { value: valueKind(option.argChoices, valueName) } : {}),
  };
}

function argumentKind(args: readonly Argument[]): ValueKind {
  for (const arg of args) {
    const kind = valueKind(arg.argChoices, arg.name());
    if (kind.kind !== 'any') return kind;
  }
  return { kind: 'any' };
}

/** Every visible command of the tree, parents before their subcommands. */
function collect(program: Command): { readonly global: readonly OptionSpec[]; readonly commands: readonly CommandSpec[] } {
  const help = new Help();
  const commands: CommandSpec[] = [];
  const visit = (cmd: Command, path: string): void => {
    const subs = help.visibleCommands(cmd).filter((c) => c.name() !== 'help');
    commands.push({
      path,
      subcommands: subs.map((c) => ({ name: c.name(), description: c.description() })),
      options: path === '' ? [] : help.visibleOptions(cmd).map(optionSpec),
      args: argumentKind(cmd.registeredArguments),
    });
    for (const sub of subs) visit(sub, path === '' ? sub.name() : `${path} ${sub.name()}`);
  };
  visit(program, '');
  return { global: help.visibleOptions(program).map(optionSpec), commands };
}

/** A word for a shell script, single-quoted. */
function quote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function names(option: OptionSpec): string[] {
  return [option.short, option.long].filter((n): n is string => n !== undefined);
}

function kindWord(value: ValueKind): string {
  return value.kind === 'choices' ? `choices:${value.words.join(' ')}` : value.kind;
}

/** The shell function body (bash and zsh share the syntax) that says what value an option takes. */
function valueCases(global: readonly OptionSpec[], commands: readonly CommandSpec[], fn: string): string {
  const lines: string[] = [];
  // A command's own option first: it shadows a global one of the same name.
  for (const cmd of commands) {
    for (const option of cmd.options) {
      if (option.value === undefined) continue;
      lines.push(`    ${names(option).map((n) => quote(`${cmd.path}|${n}`)).join('|')}) echo ${quote(kindWord(option.value))} ;;`);
    }
  }
  for (const option of global) {
    if (option.value === undefined) continue;
    lines.push(`    ${names(option).map((n) => `*${quote(`|${n}`)}`).join('|')}) echo ${quote(kindWord(option.value))} ;;`);
  }
  return `${fn}() {\n  # The value an option takes (any, file, dir, choices:WORDS); nothing for a flag.\n  case "$1|$2" in\n${lines.join('\n')}\n  esac\n}`;
}

function listCases(commands: readonly CommandSpec[], fn: string, comment: string, words: (cmd: CommandSpec) => readonly string[]): string {
  const lines = commands.map((cmd) => `    ${quote(cmd.path)}) echo ${quote(words(cmd).join(' '))} ;;`);
  return `${fn}() {\n  # ${comment}\n  case "$1" in\n${lines.join('\n')}\n  esac\n}`;
}

function optionWords(global: readonly OptionSpec[], cmd: CommandSpec): string[] {
  // -V/--version is the program's alone; --help is every command's (once).
  const globals = cmd.path === '' ? global : global.filter((o) => o.long !== '--version');
  return [...new Set([...cmd.options, ...globals].map((o) => o.long ?? o.short ?? '').filter((n) => n !== ''))];
}

/** The functions both bash and zsh scripts use: the command tree as data, and the walk over the words typed. */
function sharedFunctions(program: Command, prefix: string): string {
  const { global, commands } = collect(program);
  return [
    listCases(commands, `${prefix}_commands`, 'The subcommands of a command path.', (cmd) => cmd.subcommands.map((s) => s.name)),
    listCases(commands, `${prefix}_options`, 'The options a command path takes (its own, then the global ones).', (cmd) => optionWords(global, cmd)),
    listCases(commands, `${prefix}_args`, 'What positional arguments complete to (any, file, dir, choices:WORDS).', (cmd) => [kindWord(cmd.args)]),
    valueCases(global, commands, `${prefix}_value`),
    `${prefix}_path() {
  # The command path ("token create") of the words before the cursor, skipping options and their values.
  # (Not "path": zsh ties that name to PATH.)
  local cmdpath="" skip=0 w subs
  for w in "$@"; do
    if ((skip)); then skip=0; continue; fi
    case "$w" in
      --*=*) ;;
      -*) [[ -n "$(${prefix}_value "$cmdpath" "$w")" ]] && skip=1 ;;
      *)
        subs=" $(${prefix}_commands "$cmdpath") "
        [[ "$subs" == *" $w "* ]] && cmdpath="\${cmdpath:+$cmdpath }$w"
        ;;
    esac
  done
  echo "$cmdpath"
}`,
  ].join('\n\n');
}

function bashScript(program: Command): string {
  const name = program.name();
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  return `# bash completion for ${name} (generated by \`${name} completion bash\`)
# Load it now:     source <(${name} completion bash)
# Or for good:     ${name} completion bash > ~/.local/share/bash-completion/completions/${name}

${sharedFunctions(program, fn)}

${fn}_files() {
  local IFS=$'\\n'
  type compopt &>/dev/null && compopt -o filenames 2>/dev/null
  COMPREPLY+=($(compgen $1 -- "$2"))
}

${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="" cmdpath kind
  ((COMP_CWORD > 1)) && prev="\${COMP_WORDS[COMP_CWORD-1]}"
  cmdpath="$(${fn}_path "\${COMP_WORDS[@]:1:COMP_CWORD-1}")"
  COMPREPLY=()
  if [[ "$prev" == -* && "$prev" != *=* ]]; then
    kind="$(${fn}_value "$cmdpath" "$prev")"
    if [[ -n "$kind" ]]; then
      case "$kind" in
        choices:*) COMPREPLY=($(compgen -W "\${kind#choices:}" -- "$cur")) ;;
        file) ${fn}_files -f "$cur" ;;
        dir) ${fn}_files -d "$cur" ;;
      esac
      return 0
    fi
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(${fn}_options "$cmdpath")" -- "$cur"))
    return 0
  fi
  COMPREPLY=($(compgen -W "$(${fn}_commands "$cmdpath")" -- "$cur"))
  kind="$(${fn}_args "$cmdpath")"
  case "$kind" in
    choices:*) COMPREPLY+=($(compgen -W "\${kind#choices:}" -- "$cur")) ;;
    file) ${fn}_files -f "$cur" ;;
    dir) ${fn}_files -d "$cur" ;;
  esac
  return 0
}

complete -F ${fn} ${name}
`;
}

/** "name:description" for zsh's _describe (colons in the name escaped). */
function described(name: string, description: string): string {
  return quote(`${name.replace(/:/g, '\\:')}:${description}`);
}

function zshScript(program: Command): string {
  const name = program.name();
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const { global, commands } = collect(program);
  const describedCases = (what: 'commands' | 'options'): string =>
    commands
      .map((cmd) => {
        const items =
          what === 'commands'
            ? cmd.subcommands.map((s) => described(s.name, s.description))
            : [...cmd.options, ...global].flatMap((o) => names(o).filter((n) => n.startsWith('--')).map((n) => described(n, o.description)));
        return `    ${quote(cmd.path)}) items=(${items.join(' ')}) ;;`;
      })
      .join('\n');
  return `#compdef ${name}
# zsh completion for ${name} (generated by \`${name} completion zsh\`)
# Install: ${name} completion zsh > "\${fpath[1]}/_${name}", then start a new shell.

${sharedFunctions(program, `${fn}_`)}

${fn}__complete_kind() {
  case "$1" in
    choices:*) local -a choices; choices=(\${(s: :)\${1#choices:}}); compadd -a choices ;;
    file) _files ;;
    dir) _files -/ ;;
  esac
}

${fn}() {
  local cur="\${words[CURRENT]}" prev="\${words[CURRENT-1]}" cmdpath kind
  local -a items
  cmdpath="$(${fn}__path "\${(@)words[2,CURRENT-1]}")"
  if [[ "$prev" == -* && "$prev" != *=* && CURRENT -gt 2 ]]; then
    kind="$(${fn}__value "$cmdpath" "$prev")"
    if [[ -n "$kind" ]]; then
      ${fn}__complete_kind "$kind"
      return
    fi
  fi
  if [[ "$cur" == -* ]]; then
    case "$cmdpath" in
${describedCases('options')}
    esac
    _describe -t options 'option' items
    return
  fi
  case "$cmdpath" in
${describedCases('commands')}
  esac
  (( \${#items} )) && _describe -t commands 'command' items
  ${fn}__complete_kind "$(${fn}__args "$cmdpath")"
}

if [[ "\${zsh_eval_context[-1]}" == loadautoload ]]; then
  ${fn} "$@"
else
  compdef ${fn} ${name}
fi
`;
}

function fishScript(program: Command): string {
  const name = program.name();
  const fn = `__${name.replace(/[^A-Za-z0-9_]/g, '_')}`;
  const { global, commands } = collect(program);
  const valueCase = (option: OptionSpec, path: string | undefined): string | undefined =>
    option.value === undefined ? undefined : `        case ${names(option).map((n) => quote(path === undefined ? `*|${n}` : `${path}|${n}`)).join(' ')}\n            return 0`;
  const valueCases = [
    ...commands.flatMap((cmd) => cmd.options.map((o) => valueCase(o, cmd.path))),
    ...global.map((o) => valueCase(o, undefined)),
  ].filter((c): c is string => c !== undefined);
  const commandCases = commands.map((cmd) => `        case ${quote(cmd.path)}\n            set subs ${cmd.subcommands.map((s) => quote(s.name)).join(' ')}`);
  const completeOption = (option: OptionSpec, condition: string | undefined): string => {
    const parts = [`complete -c ${name}`];
    if (condition !== undefined) parts.push(`-n "${condition}"`);
    if (option.short !== undefined) parts.push(`-s ${option.short.replace(/^-/, '')}`);
    if (option.long !== undefined) parts.push(`-l ${option.long.replace(/^--/, '')}`);
    const v = option.value;
    if (v?.kind === 'choices') parts.push(`-x -a ${quote(v.words.join(' '))}`);
    else if (v?.kind === 'file') parts.push('-r -F');
    else if (v?.kind === 'dir') parts.push(`-x -a '(__fish_complete_directories)'`);
    else if (v?.kind === 'any') parts.push('-x');
    parts.push(`-d ${quote(option.description)}`);
    return parts.join(' ');
  };
  const lines: string[] = [`complete -c ${name} -f`];
  for (const option of global) lines.push(completeOption(option, undefined));
  for (const cmd of commands) {
    const at = `${fn}_at ${quote(cmd.path)}`;
    for (const sub of cmd.subcommands) lines.push(`complete -c ${name} -n "${at}" -a ${quote(sub.name)} -d ${quote(sub.description)}`);
    for (const option of cmd.options) lines.push(completeOption(option, at));
    if (cmd.args.kind === 'choices') lines.push(`complete -c ${name} -n "${at}" -a ${quote(cmd.args.words.join(' '))}`);
    else if (cmd.args.kind === 'file') lines.push(`complete -c ${name} -n "${at}" -F`);
    else if (cmd.args.kind === 'dir') lines.push(`complete -c ${name} -n "${at}" -a '(__fish_complete_directories)'`);
  }
  return `# fish completion for ${name} (generated by \`${name} completion fish\`)
# Install: ${name} completion fish > ~/.config/fish/completions/${name}.fish

function ${fn}_takes_value
    # Whether option $argv[2] takes a value under command path $argv[1].
    switch "$argv[1]|$argv[2]"
${valueCases.join('\n')}
    end
    return 1
end

function ${fn}_path
    # The command path ("token create") of the words typed before the cursor.
    set -l path ''
    set -l skip 0
    for w in (commandline -opc)[2..-1]
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $w
            case '--*=*'
            case '-*'
                ${fn}_takes_value "$path" $w; and set skip 1
            case '*'
                set -l subs
                switch "$path"
${commandCases.join('\n')}
                end
                if contains -- $w $subs
                    if test -z "$path"
                        set path $w
                    else
                        set path "$path $w"
                    end
                end
        end
    end
    echo $path
end

function ${fn}_at
    set -l current (${fn}_path)
    test "$current" = "$argv[1]"
end

${lines.join('\n')}
`;
}

/** A completion script for `shell`, generated from the program's commands, options and their choices. */
export function completionScript(program: Command, shell: Shell): string {
  switch (shell) {
    case 'bash':
      return bashScript(program);
    case 'zsh':
      return zshScript(program);
    case 'fish':
      return fishScript(program);
  }
}
