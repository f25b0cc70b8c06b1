import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  chooseProfile,
  configLocation,
  editConfig,
  loadConfig,
  maskToken,
  parseConfig,
  resolveSettings,
  type FlagValues,
  type LoadedConfig,
} from '../config.js';
import { CliError } from '../errors.js';
import { ExitCode } from '../exit-codes.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mmgrid-config-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The CliError `fn` is refused with. */
function refusal(fn: () => unknown): CliError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CliError) return err;
    throw err;
  }
  throw new Error('expected a refusal');
}

const FILE = '/home/ada/.config/mmgrid/config.yaml';

describe('configLocation', () => {
  it.each([
    ['the default place under HOME', undefined, { HOME: '/home/ada' }, { file: FILE, explicit: false }],
    ['XDG_CONFIG_HOME', undefined, { HOME: '/home/ada', XDG_CONFIG_HOME: '/xdg' }, { file: '/xdg/mmgrid/config.yaml', explicit: false }],
    ['a relative XDG_CONFIG_HOME is ignored', undefined, { HOME: '/home/ada', XDG_CONFIG_HOME: 'rel' }, { file: FILE, explicit: false }],
    ['MMGRID_CONFIG', undefined, { HOME: '/home/ada', MMGRID_CONFIG: '/etc/mm.yaml' }, { file: '/etc/mm.yaml', explicit: true }],
    ['--config over MMGRID_CONFIG, ~ expanded', '~/mm.yaml', { HOME: '/home/ada', MMGRID_CONFIG: '/etc/mm.yaml' }, { file: '/home/ada/mm.yaml', explicit: true }],
  ])('%s', (_, flag, env, expected) => {
    expect(configLocation(flag, env)).toEqual(expected);
  });
});

describe('parseConfig: errors name the file, line, column and what is allowed', () => {
  it.each([
    ['a wrong type', 'profiles:\n  prod:\n    coordinator: a:1\n    tls: yes please\n', /^\/c\.yaml:4:5: profiles\.prod\.tls: expected true or false$/],
    ['an unknown profile key', 'profiles:\n  prod:\n    coordinatr: a:1\n', /^\/c\.yaml:3:5: profiles\.prod: unknown key "coordinatr"; a profile takes coordinator, token, token-file/],
    ['an unknown top-level key', 'current-profile: a\nprofile:\n  a: {}\n', /^\/c\.yaml:2:1: unknown key "profile"; the file takes current-profile and profiles$/],
    ['not YAML', 'profiles:\n  prod: [\n', /^\/c\.yaml:\d+:\d+: not valid YAML: /],
    ['a number for a string', 'profiles:\n  prod:\n    tenant: 42\n', /^\/c\.yaml:3:5: profiles\.prod\.tenant: expected text$/],
    ['a list for the file', '- a\n- b\n', /^\/c\.yaml: expected a map with current-profile and profiles$/],
    ['tls and insecure both on', 'profiles:\n  p:\n    tls: true\n    insecure: true\n', /^\/c\.yaml:4:5: profiles\.p: tls and insecure contradict each other; give one$/],
    ['a token and a token file', 'profiles:\n  p:\n    token: mmg_x\n    token-file: t\n', /^\/c\.yaml:4:5: profiles\.p: give token or token-file, not both$/],
  ])('%s', (_, text, message) => {
    const err = refusal(() => parseConfig(text, '/c.yaml'));
    expect(err.exitCode).toBe(ExitCode.USAGE);
    expect(err.message).toMatch(message);
  });

  it('takes an empty file, and an empty profile', () => {
    expect(parseConfig('', '/c.yaml').profiles.size).toBe(0);
    expect(parseConfig('profiles:\n  empty:\n', '/c.yaml').profiles.get('empty')).toEqual({});
  });
});

describe('loadConfig', () => {
  it('treats a missing file at the default place as empty, but refuses a missing file the user named', () => {
    const file = path.join(dir, 'absent.yaml');
    expect(loadConfig({ file, explicit: false }).exists).toBe(false);
    const err = refusal(() => loadConfig({ file, explicit: true }));
    expect(err.exitCode).toBe(ExitCode.USAGE);
    expect(err.message).toContain(`no such config file: ${file}`);
  });
});

describe('chooseProfile', () => {
  const config = parseConfig('current-profile: prod\nprofiles:\n  prod: {}\n  staging: {}\n', FILE);

  it.each([
    ['--profile first', 'staging', { MMGRID_PROFILE: 'prod' }, { name: 'staging', source: 'flag' }],
    ['then MMGRID_PROFILE', undefined, { MMGRID_PROFILE: 'staging' }, { name: 'staging', source: 'env' }],
    ['then current-profile', undefined, {}, { name: 'prod', source: 'file' }],
  ])('%s', (_, flag, env, expected) => {
    expect(chooseProfile(config, flag, env)).toEqual(expected);
  });

  it('uses "default" without a file', () => {
    expect(chooseProfile(parseConfig('', FILE), undefined, {})).toEqual({ name: 'default', source: 'default' });
  });

  it('refuses an unknown profile, naming the profiles there are and the file', () => {
    const err = refusal(() => chooseProfile(config, 'nope', {}));
    expect(err.exitCode).toBe(ExitCode.USAGE);
    expect(err.message).toBe(`no profile "nope" (named by --profile); ${FILE} has prod, staging`);
  });
});

describe('resolveSettings: flag > env > profile > default', () => {
  const config = parseConfig(
    `profiles:
  prod:
    coordinator: grid.example.com:7070
    tenant: acme
    tls: true
    ca: certs/ca.pem
    cert: ~/client.pem
`,
    FILE,
  );
  const resolve = (flags: FlagValues, env: Record<string, string>, cfg: LoadedConfig = config, warnings: string[] = []) =>
    resolveSettings({ flags, env: { HOME: '/home/ada', ...env }, config: cfg, profile: { name: 'prod', source: 'flag' }, warn: (m) => warnings.push(m) }).settings;

  it('takes the profile over the defaults, with file paths resolved against the file and ~ expanded', () => {
    const s = resolve({}, {});
    expect(s.coordinator).toEqual({ value: 'grid.example.com:7070', source: 'profile prod' });
    expect(s.tenant).toEqual({ value: 'acme', source: 'profile prod' });
    expect(s.ca).toEqual({ value: '/home/ada/.config/mmgrid/certs/ca.pem', source: 'profile prod' });
    expect(s.cert).toEqual({ value: '/home/ada/client.pem', source: 'profile prod' });
    expect(s.token).toEqual({ value: undefined, source: 'default' });
  });

  it('takes the environment over the profile, and a flag over the environment', () => {
    expect(resolve({}, { MMGRID_COORDINATOR: 'env:1' }).coordinator).toEqual({ value: 'env:1', source: 'env' });
    expect(resolve({ coordinator: 'flag:1' }, { MMGRID_COORDINATOR: 'env:1' }).coordinator).toEqual({ value: 'flag:1', source: 'flag' });
    expect(resolve({}, { MMGRID_CERT_KEY: '/k.pem' }).key).toEqual({ value: '/k.pem', source: 'env' });
  });

  it('uses the built-in coordinator when nothing names one', () => {
    expect(resolve({}, {}, parseConfig('', FILE)).coordinator).toEqual({ value: '127.0.0.1:7070', source: 'default' });
  });

  it("lets MMGRID_INSECURE win over the profile's tls: true, and MMGRID_TLS=false turn it off", () => {
    const s = resolve({}, { MMGRID_INSECURE: 'true' });
    expect(s.insecure).toEqual({ value: true, source: 'env' });
    expect(s.tls.value).toBeUndefined();
    expect(resolve({}, { MMGRID_TLS: 'false' }).tls).toEqual({ value: false, source: 'env' });
  });

  it('reads a token file, and warns when the config file holding a token can be read by others', async () => {
    const file = path.join(dir, 'config.yaml');
    await writeFile(path.join(dir, 'prod.token'), 'mmg_fromfile0000abcd\n', { mode: 0o600 });
    const withFile = parseConfig('profiles:\n  prod:\n    token-file: prod.token\n', file, 0o600);
    const warnings: string[] = [];
    expect(resolve({}, {}, withFile, warnings).token).toEqual({ value: 'mmg_fromfile0000abcd', source: 'profile prod' });
    expect(warnings).toEqual([]);

    await chmod(path.join(dir, 'prod.token'), 0o640);
    resolve({}, {}, withFile, warnings);
    expect(warnings).toEqual([`mmgrid: warning: the token file ${path.join(dir, 'prod.token')} can be read by other users (mode 640); run: chmod 600 ${path.join(dir, 'prod.token')}`]);
    warnings.length = 0;

    const open = parseConfig('profiles:\n  prod:\n    token: mmg_inline00001234\n', file, 0o644);
    expect(resolve({}, {}, open, warnings).token.value).toBe('mmg_inline00001234');
    expect(warnings).toEqual([`mmgrid: warning: ${file} holds a token and can be read by other users (mode 644); run: chmod 600 ${file}`]);
  });

  it('refuses a token file that is not there, at its line', () => {
    const withFile = parseConfig('profiles:\n  prod:\n    token-file: nothere.token\n', path.join(dir, 'config.yaml'));
    const err = refusal(() => resolve({}, {}, withFile));
    expect(err.message).toMatch(/config\.yaml:3:5: profiles\.prod\.token-file: cannot read .*nothere\.token$/);
  });
});

describe('maskToken', () => {
  it.each([
    ['mmg_abcdefgh12345678', 'mmg_…5678'],
    ['plainsecretvalue', '…alue'],
    ['mmg_abc', 'mmg_…'],
  ])('%s → %s', (token, masked) => {
    expect(maskToken(token)).toBe(masked);
  });
});

describe('editConfig', () => {
  it('keeps comments and other keys, and creates a new file readable by its owner only', async () => {
    const file = path.join(dir, 'sub', 'edit.yaml');
    await editConfig(file, (doc) => doc.setIn(['profiles', 'prod', 'tenant'], 'acme'));
    expect((await stat(file)).mode & 0o777).toBe(0o600);

    await writeFile(file, '# my grids\ncurrent-profile: prod\nprofiles:\n  prod:\n    tenant: acme # the team\n');
    await chmod(file, 0o600);
    await editConfig(file, (doc) => doc.setIn(['profiles', 'prod', 'coordinator'], 'grid:7070'));
    const text = await readFile(file, 'utf8');
    expect(text).toContain('# my grids');
    expect(text).toContain('tenant: acme # the team');
    expect(text).toContain('coordinator: grid:7070');
  });

  it('refuses an edit that would leave the file invalid, and leaves it as it was', async () => {
    const file = path.join(dir, 'keep.yaml');
    await writeFile(file, 'profiles:\n  prod: {}\n');
    await expect(editConfig(file, (doc) => doc.setIn(['profiles', 'prod', 'bogus'], 1))).rejects.toThrow(/unknown key "bogus"/);
    expect(await readFile(file, 'utf8')).toBe('profiles:\n  prod: {}\n');
  });
});
