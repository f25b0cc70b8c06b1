import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliResult } from '../helpers/cli.js';
import { startTestGrid, type TestGrid } from '../helpers/grid.js';

const run = promisify(execFile);

/** Every variable that would choose a setting, so that the machine's own do not leak in. */
const SETTING_ENV = [
  'MMGRID_CONFIG',
  'MMGRID_PROFILE',
  'MMGRID_COORDINATOR',
  'MMGRID_TOKEN',
  'MMGRID_TENANT',
  'MMGRID_TLS',
  'MMGRID_INSECURE',
  'MMGRID_CA',
  'MMGRID_CERT',
  'MMGRID_CERT_KEY',
  'MMGRID_TLS_SERVER_NAME',
  'XDG_CONFIG_HOME',
];

const ADMIN_TOKEN = `mmg_${randomBytes(24).toString('base64url')}`;

/** A loopback address where nothing listens (a port taken, then let go). */
async function deadAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `127.0.0.1:${address.port}`;
}

/** Whether a program is on the PATH. */
describe('mmgrid config: profiles, precedence and errors', () => {
  let tg: TestGrid;
  let home: string;
  let dead: string;
  let configFile: string;
  /** The environment of a user whose home is `home` and who sets no MMGRID_* variable. */
  let env: (extra?: Readonly<Record<string, string>>) => Record<string, string | undefined>;

  beforeAll(async () => {
    tg = await startTestGrid({ workers: 0, coordinatorArgs: ['--auth', 'tokens'], env: { MMGRID_ADMIN_TOKEN: ADMIN_TOKEN } });
    home = await mkdtemp(path.join(tmpdir(), 'mmgrid-home-'));
    dead = await deadAddress();
    env = (extra = {}) => ({ ...Object.fromEntries(SETTING_ENV.map((name) => [name, undefined])), HOME: home, ...extra });
    configFile = path.join(home, '.config', 'mmgrid', 'config.yaml');
    await mkdir(path.dirname(configFile), { recursive: true });
    await writeFile(configFile, `# grids I use\nprofiles:\n  default:\n    coordinator: ${dead}\n  live:\n    coordinator: ${tg.grid.address}\n    token: ${ADMIN_TOKEN}\n`, { mode: 0o600 });
  });

  afterAll(async () => {
    await tg?.stop();
    await rm(home, { recursive: true, force: true });
  });

  it("reaches the coordinator of the profile it is told to use, and the default profile's otherwise", async () => {
    const live = await runCli(['--profile', 'live', 'status', 'job-that-is-not-there'], env());
    expect(live.code, live.stderr).toBe(3);
    expect(live.stderr).toMatch(/not found/);

    const byEnv = await runCli(['status', 'job-that-is-not-there'], env({ MMGRID_PROFILE: 'live' }));
    expect(byEnv.code, byEnv.stderr).toBe(3);

    const fallback = await runCli(['status', 'job-that-is-not-there'], env());
    expect(fallback.code, fallback.stderr).toBe(5);
    expect(fallback.stderr).not.toMatch(/\n\s+at /);
  });

  it("sends the profile's token (an admin call succeeds with it, and is refused without it)", async () => {
    const withToken = await runCli(['--profile', 'live', '--json', 'workers'], env());
    expect(withToken.code, withToken.stderr).toBe(0);
    expect(JSON.parse(withToken.stdout)).toEqual([]);

    const without = await runCli(['--coordinator', tg.grid.address, 'workers'], env());
    expect(without.code).toBe(4);
  });

  it('takes the environment over the profile, and a flag over the environment', async () => {
    const envWins = await runCli(['--profile', 'live', 'status', 'job-that-is-not-there'], env({ MMGRID_COORDINATOR: dead }));
    expect(envWins.code, envWins.stderr).toBe(5);

    const flagWins = await runCli(['--profile', 'live', '--coordinator', tg.grid.address, 'status', 'job-that-is-not-there'], env({ MMGRID_COORDINATOR: dead }));
    expect(flagWins.code, flagWins.stderr).toBe(3);

    const shown = await runCli(['--profile', 'live', '--tenant', 'acme', '--json', 'config', 'show'], env({ MMGRID_COORDINATOR: dead }));
    expect(shown.code, shown.stderr).toBe(0);
    const { settings } = JSON.parse(shown.stdout) as { settings: Record<string, { value: unknown; source: string }> };
    expect(settings['coordinator']).toEqual({ value: dead, source: 'env' });
    expect(settings['tenant']).toEqual({ value: 'acme', source: 'flag' });
    expect(settings['token']).toEqual({ value: `mmg_…${ADMIN_TOKEN.slice(-4)}`, source: 'profile live' });
    expect(settings['ca']).toEqual({ value: null, source: 'default' });
    expect(shown.stdout).not.toContain(ADMIN_TOKEN);
  });

  it('lists the profiles, the one in use marked', async () => {
    const text = await runCli(['config', 'profiles'], env({ MMGRID_PROFILE: 'live' }));
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^\*\s+live\s/m);
    expect(text.stdout).toMatch(/^\s+default\s+127\.0\.0\.1:\d+$/m);
    const json = await runCli(['--json', 'config', 'profiles'], env());
    expect(JSON.parse(json.stdout)).toEqual({
      file: configFile,
      current: 'default',
      profiles: [
        { name: 'default', current: true, coordinator: dead },
        { name: 'live', current: false, coordinator: tg.grid.address },
      ],
    });
    const where = await runCli(['config', 'path'], env());
    expect(where.stdout).toBe(`${configFile}\n`);
  });

  it('writes what `config set` and `config use` are told, keeping comments, and `config show` reads it back', async () => {
    const xdg = await mkdtemp(path.join(tmpdir(), 'mmgrid-xdg-'));
    try {
      const file = path.join(xdg, 'mmgrid', 'config.yaml');
      const set = await runCli(['config', 'set', 'coordinator', tg.grid.address, '--profile', 'staging'], env({ XDG_CONFIG_HOME: xdg }));
      expect(set.code, set.stderr).toBe(0);
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      await writeFile(file, `# staging grid\n${await readFile(file, 'utf8')}`);

      expect((await runCli(['config', 'set', 'token', ADMIN_TOKEN, '--profile', 'staging'], env({ XDG_CONFIG_HOME: xdg }))).code).toBe(0);
      expect((await runCli(['config', 'set', 'tls', 'false', '--profile', 'staging'], env({ XDG_CONFIG_HOME: xdg }))).code).toBe(0);
      const use = await runCli(['config', 'use', 'staging'], env({ XDG_CONFIG_HOME: xdg }));
      expect(use.code, use.stderr).toBe(0);

      const shown = await runCli(['--json', 'config', 'show'], env({ XDG_CONFIG_HOME: xdg }));
      expect(shown.code, shown.stderr).toBe(0);
      const view = JSON.parse(shown.stdout) as { profile: string; file: string; settings: Record<string, { value: unknown; source: string }> };
      expect(view.profile).toBe('staging');
      expect(view.file).toBe(file);
      expect(view.settings['coordinator']).toEqual({ value: tg.grid.address, source: 'profile staging' });
      expect(view.settings['tls']).toEqual({ value: false, source: 'profile staging' });
      expect(view.settings['token']?.value).toBe(`mmg_…${ADMIN_TOKEN.slice(-4)}`);
      expect(await readFile(file, 'utf8')).toContain('# staging grid');

      // The written profile works: the admin call goes through with its token.
      const workers = await runCli(['workers'], env({ XDG_CONFIG_HOME: xdg }));
      expect(workers.code, workers.stderr).toBe(0);

      const badKey = await runCli(['config', 'set', 'coordinater', 'x:1'], env({ XDG_CONFIG_HOME: xdg }));
      expect(badKey.code).toBe(2);
      expect(badKey.stderr).toMatch(/coordinater.*Allowed choices are coordinator, token, token-file/);
      const badValue = await runCli(['config', 'set', 'tls', 'maybe'], env({ XDG_CONFIG_HOME: xdg }));
      expect(badValue.code).toBe(2);
      expect(badValue.stderr).toMatch(/tls takes true or false/);
      const unknownUse = await runCli(['config', 'use', 'prod'], env({ XDG_CONFIG_HOME: xdg }));
      expect(unknownUse.code).toBe(2);
      expect(unknownUse.stderr).toContain(`no profile "prod"; ${file} has staging`);
    } finally {
      await rm(xdg, { recursive: true, force: true });
    }
  });

  it('refuses a config file that is not valid YAML, or has a wrong value, at its line and column', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-bad-config-'));
    try {
      const broken = path.join(dir, 'broken.yaml');
      await writeFile(broken, 'profiles:\n  prod: [\n    coordinator: a:1\n');
      const syntax = await runCli(['status', 'x'], env({ MMGRID_CONFIG: broken }));
      expect(syntax.code).toBe(2);
      expect(syntax.stderr).toMatch(new RegExp(`^mmgrid: ${broken.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: not valid YAML: `, 'm'));
      expect(syntax.stderr).not.toMatch(/\n\s+at /);
      // The path is still told, to mend the file by.
      const where = await runCli(['config', 'path'], env({ MMGRID_CONFIG: broken }));
      expect(where.code, where.stderr).toBe(0);
      expect(where.stdout).toBe(`${broken}\n`);

      const wrong = path.join(dir, 'wrong.yaml');
      await writeFile(wrong, 'profiles:\n  prod:\n    tls: maybe\n');
      const typed = await runCli(['--config', wrong, 'config', 'show'], env());
      expect(typed.code).toBe(2);
      expect(typed.stderr).toContain(`mmgrid: ${wrong}:3:5: profiles.prod.tls: expected true or false`);

      const absent = await runCli(['--config', path.join(dir, 'absent.yaml'), 'status', 'x'], env());
      expect(absent.code).toBe(2);
      expect(absent.stderr).toContain(`no such config file: ${path.join(dir, 'absent.yaml')}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("hands `worker --config FILE` to the worker (its worker.yaml), not to mmgrid's own config", async () => {
    const absent = path.join(home, 'no-worker.yaml');
    const cli = await runCli(['worker', '--config', absent, '--coordinator', dead], env());
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain(`mmgrid worker: no such config file: ${absent}`);
  });

  it('refuses an unknown profile, naming the profiles there are and the file', async () => {
    const cli = await runCli(['--profile', 'nope', 'status', 'x'], env());
    expect(cli.code).toBe(2);
    expect(cli.stderr).toBe(`mmgrid: no profile "nope" (named by --profile); ${configFile} has default, live\n`);
  });

  it('warns, like ssh, when the file holding a token can be read by others, and goes on', async () => {
    await chmod(configFile, 0o644);
    try {
      const cli = await runCli(['--profile', 'live', '--json', 'workers'], env());
      expect(cli.code, cli.stderr).toBe(0);
      expect(cli.stderr).toContain(`warning: ${configFile} holds a token and can be read by other users (mode 644); run: chmod 600 ${configFile}`);
    } finally {
      await chmod(configFile, 0o600);
    }
  });
});

describe('mmgrid completion', () => {
  let dir: string;
  let bashScript: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-completion-'));
    const cli = await runCli(['completion', 'bash']);
    expect(cli.code, cli.stderr).toBe(0);
    bashScript = path.join(dir, 'mmgrid.bash');
    await writeFile(bashScript, cli.stdout);
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** What bash completes for the words typed (the last one is where the cursor is). */
  async function complete(...words: string[]): Promise<string[]> {
    const quoted = words.map((w) => `'${w.replace(/'/g, `'\\''`)}'`).join(' ');
    const script = `source "$1" && complete -p mmgrid >/dev/null && COMP_WORDS=(${quoted}) && COMP_CWORD=${words.length - 1} && _mmgrid && printf '%s\\n' "\${COMPREPLY[@]}"`;
    const { stdout } = await run('bash', ['--norc', '--noprofile', '-c', script, 'bash', bashScript], { cwd: dir });
    return stdout.split('\n').filter((line) => line !== '');
  }

  it('completes commands, subcommands, options and their choices in bash', async () => {
    expect(await complete('mmgrid', 'su')).toContain('submit');
    expect(await complete('mmgrid', 'token', 'create', '--role', '')).toEqual(['submitter', 'worker', 'admin']);
    expect(await complete('mmgrid', 'submit', '--pri')).toEqual(['--priority']);
    expect(await complete('mmgrid', 'token', '')).toEqual(['create', 'list', 'revoke']);
    expect(await complete('mmgrid', 'config', '')).toEqual(['show', 'profiles', 'path', 'set', 'use']);
    // Global options before the command, with their values, are skipped over.
    expect(await complete('mmgrid', '--profile', 'live', 'token', 'create', '--ro')).toEqual(['--role']);
    expect(await complete('mmgrid', 'completion', '')).toEqual(['bash', 'zsh', 'fish']);
    expect(await complete('mmgrid', 'status', '--js')).toEqual(['--json']);
    expect(await complete('mmgrid', 'list', '--state', '')).toEqual(['queued', 'running', 'completed', 'failed', 'cancelled']);
  });

  it('completes file names where a command takes files', async () => {
    await writeFile(path.join(dir, 'receipt.png'), 'x');
    await writeFile(path.join(dir, 'job.yaml'), 'x');
    expect(await complete('mmgrid', 'submit', 'rec')).toEqual(['receipt.png']);
    expect(await complete('mmgrid', 'submit', '-f', 'jo')).toEqual(['job.yaml']);
    expect(await complete('mmgrid', '--config', 'jo')).toEqual(['job.yaml']);
    // A job id is not a file name.
    expect(await complete('mmgrid', 'status', 'rec')).toEqual([]);
  });

  it('writes zsh and fish scripts from the same commands', async () => {
    const zsh = await runCli(['completion', 'zsh']);
    expect(zsh.code).toBe(0);
    expect(zsh.stdout).toMatch(/^#compdef mmgrid\n/);
    expect(zsh.stdout).toContain("'submit:upload files and submit a job");
    expect(zsh.stdout).toContain("'token create|--role') echo 'choices:submitter worker admin'");
    const fish = await runCli(['completion', 'fish']);
    expect(fish.code).toBe(0);
    expect(fish.stdout).toContain(`complete -c mmgrid -n "__mmgrid_at 'token create'" -l role -x -a 'submitter worker admin'`);
    expect(fish.stdout).toContain(`complete -c mmgrid -n "__mmgrid_at ''" -a 'submit'`);
    for (const [shell, text] of [
      ['zsh', zsh.stdout],
      ['fish', fish.stdout],
    ] as const) {
      const file = path.join(dir, `mmgrid.${shell}`);
      await writeFile(file, text);
      await run(shell, ['-n', file]);
    }
  });

  it('completes in fish, as fish itself asks (complete -C)', async () => {
    const file = path.join(dir, 'mmgrid.fish');
    await writeFile(file, (await runCli(['completion', 'fish'])).stdout);
    const complete = async (line: string): Promise<string[]> => {
      const { stdout } = await run('fish', ['--no-config', '-c', `source $argv[1]; complete -C $argv[2]`, file, line], { cwd: dir });
      return stdout.split('\n').filter((l) => l !== '').map((l) => l.split('\t')[0] ?? '');
    };
    expect(await complete('mmgrid su')).toEqual(['submit']);
    expect(await complete('mmgrid token create --role ')).toEqual(['admin', 'submitter', 'worker']);
    expect(await complete('mmgrid submit --pri')).toEqual(['--priority']);
    expect(await complete('mmgrid --json token c')).toEqual(['create']);
    expect(await complete('mmgrid list --state ')).toEqual(['cancelled', 'completed', 'failed', 'queued', 'running']);
  });

  it('completes in zsh: the script registers itself and reads command paths and option values', async () => {
    const file = path.join(dir, '_mmgrid');
    await writeFile(file, (await runCli(['completion', 'zsh'])).stdout);
    const script = [
      'autoload -Uz compinit && compinit -u -D',
      'source $1',
      'print -r -- ${_comps[mmgrid]}',
      '_mmgrid__path --profile live token create --role',
      '_mmgrid__value "token create" --role',
      '_mmgrid__value list --state',
      '_mmgrid__commands config',
    ].join('\n');
    const { stdout } = await run('zsh', ['-f', '-c', script, 'zsh', file], { cwd: dir });
    expect(stdout.split('\n').filter((l) => l !== '')).toEqual([
      '_mmgrid',
      'token create',
      'choices:submitter worker admin',
      'choices:queued running completed failed cancelled',
      'show profiles path set use',
    ]);
  });

  it('refuses an unknown shell, naming the ones it knows', async () => {
    const cli: CliResult = await runCli(['completion', 'powershell']);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toContain('Allowed choices are bash, zsh, fish');
    expect(cli.stdout).toBe('');
  });
});
