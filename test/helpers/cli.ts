import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { JobView } from '@mmgrid/client';

const require = createRequire(import.meta.url);

/** The built `mmgrid` executable, as an installed package exposes it. */
export function mmgridBin(): string {
  const manifest = require.resolve('@mmgrid/cli/package.json');
  return path.join(path.dirname(manifest), 'lib', 'bin.js');
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `mmgrid ARGS…` as a user would, in a subprocess, and collects what it prints. `env` is
 * added to this process's environment; a variable set to undefined there is left out.
 */
export function runCli(args: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): Promise<CliResult> {
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete merged[name];
  return runNode([mmgridBin(), ...args], { env: merged });
}

/** Runs `node ARGS…` (this Node) in a subprocess until it exits, and collects what it prints. */
export function runNode(args: readonly string[], options: { readonly cwd?: string; readonly env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The job `mmgrid submit --wait --json` (or another command's `--json`) printed. */
export function jobOf(cli: CliResult): JobView {
  return JSON.parse(cli.stdout) as JobView;
}
