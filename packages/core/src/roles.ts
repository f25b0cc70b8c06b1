/**
 * What a caller may do on a grid with tokens: submit and follow its tenant's jobs
 * (submitter), run tasks (worker), or manage the grid and see every tenant (admin).
 */
export const ROLES = ['submitter', 'worker', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}

/** The visible start of every token the coordinator issues, so a leaked one is easy to spot. */
export const TOKEN_PREFIX = 'mmg_';
