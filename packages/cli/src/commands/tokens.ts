import { isRole, ROLES } from '@mmgrid/core';
import type { CommandContext } from '../context.js';
import { CliError } from '../errors.js';
import { ExitCode, type ExitCodeValue } from '../exit-codes.js';
import { formatTokens } from '../format.js';

export interface TokenCreateFlags {
  readonly role: string;
  readonly name?: string;
  readonly expires?: string;
}

const UNIT_MS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
/** Ten years, the most the coordinator accepts. */
const MAX_EXPIRY_MS = 10 * 365 * 86_400_000;

/** "30d", "12h", "90m", "3600s", "2w" → milliseconds; "never" → 0. */
export function parseExpiry(text: string): number {
  const value = text.trim().toLowerCase();
  if (value === 'never') return 0;
  const match = /^(\d+)([smhdw])$/.exec(value);
  const unit = match?.[2] === undefined ? undefined : UNIT_MS[match[2]];
  const ms = match?.[1] === undefined || unit === undefined ? Number.NaN : Number(match[1]) * unit;
  if (!Number.isSafeInteger(ms) || ms <= 0 || ms > MAX_EXPIRY_MS) {
    throw new CliError(`--expires must be a duration such as 30d, 12h, 90m, 3600s or 2w (at most ten years), or "never" (got "${text}")`, ExitCode.USAGE);
  }
  return ms;
}

/**
 * `mmgrid token create`: prints the token once (stdout, alone on its line, so it can be
 * captured), and what it is on stderr. `tenant` is the global --tenant, given on the command line.
 */
export async function createToken(ctx: CommandContext, flags: TokenCreateFlags, tenant: string | undefined): Promise<ExitCodeValue> {
  if (!isRole(flags.role)) throw new CliError(`--role must be one of ${ROLES.join(', ')} (got "${flags.role}")`, ExitCode.USAGE);
  if (tenant !== undefined && flags.role !== 'submitter') {
    throw new CliError(`--tenant applies to submitter tokens only; a ${flags.role} token belongs to no tenant`, ExitCode.USAGE);
  }
  const expiresInMs = flags.expires === undefined ? 0 : parseExpiry(flags.expires);
  const { token, info } = await ctx.connect().createToken({
    role: flags.role,
    ...(tenant !== undefined ? { tenant } : {}),
    ...(flags.name !== undefined ? { name: flags.name } : {}),
    expiresInMs,
  });
  if (ctx.json) {
    ctx.printJson({ ...info, token });
    return ExitCode.OK;
  }
  ctx.print(token);
  const what = [info.role, info.tenant === null ? '' : `tenant ${info.tenant}`, info.name === '' ? '' : `name "${info.name}"`, info.expiresAt === null ? 'never expires' : `expires ${info.expiresAt}`]
    .filter((s) => s !== '')
    .join(', ');
  ctx.note(`created token ${info.id} (${what}).`);
  ctx.note('It is shown only this once: store it now. Revoke it with: mmgrid token revoke ' + info.id);
  return ExitCode.OK;
}

export async function listTokens(ctx: CommandContext, flags: { all?: boolean }): Promise<ExitCodeValue> {
  const tokens = await ctx.connect().listTokens({ includeRevoked: flags.all === true });
  if (ctx.json) ctx.printJson(tokens);
  else ctx.print(formatTokens(tokens));
  return ExitCode.OK;
}

export async function revokeToken(ctx: CommandContext, id: string): Promise<ExitCodeValue> {
  const info = await ctx.connect().revokeToken(id);
  if (ctx.json) ctx.printJson(info);
  else ctx.print(`revoked token ${info.id} (${info.role}${info.tenant === null ? '' : `, tenant ${info.tenant}`}${info.name === '' ? '' : `, name "${info.name}"`}) at ${info.revokedAt ?? ''}`);
  return ExitCode.OK;
}
