import type { TaskRequirements } from './task-graph.js';

/** Tenant ids: lower-case letters, digits, "_" and "-", up to 64 characters. */
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export const DEFAULT_TENANT = 'default';

function hasRequirements(r: TaskRequirements): boolean {
  return r.model !== '' || r.minVramBytes > 0 || r.minComputeCapability !== '' || !r.cpuAllowed;
}

/** FNV-1a, 32 bits, from a given offset basis. */
function fnv1a(text: string, basis: number): string {
  let hash = basis;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/**
 * A stable 64-bit signature of a requirement set; "" when there are none. Not a security
 * hash: the dispatcher checks every task's own requirements against the worker it picks, so
 * two sets that collided would share a queue but never run where they cannot.
 */
export function requirementsSignature(r: TaskRequirements): string {
  if (!hasRequirements(r)) return '';
  const text = JSON.stringify([r.model, r.minVramBytes, r.minComputeCapability, r.cpuAllowed]);
  return fnv1a(text, 0x811c9dc5) + fnv1a(text, 0x01000193 ^ 0x5bd1e995);
}

/**
 * The BullMQ queue a task waits in: one per task kind, requirement set and tenant
 * ("<kind>[#<signature>]@<tenant>"). Tasks in one queue can run on the same workers, so a
 * dispatcher fetches from a queue only when a worker that can run its tasks has a free slot;
 * one queue per tenant lets it take turns between tenants.
 */
export function taskQueueName(kind: string, requirements: TaskRequirements, tenant: string): string {
  const signature = requirementsSignature(requirements);
  return `${kind}${signature ? `#${signature}` : ''}@${tenant}`;
}

/** The parts of a queue name; undefined when it is not one taskQueueName makes. */
export function parseTaskQueueName(name: string): { kind: string; signature: string; tenant: string } | undefined {
  const match = /^([a-z][a-z0-9.-]*)(?:#([0-9a-f]{16}))?@([a-z0-9][a-z0-9_-]{0,63})$/.exec(name);
  if (!match?.[1] || !match[3]) return undefined;
  return { kind: match[1], signature: match[2] ?? '', tenant: match[3] };
}

/**
 * The Redis setting `hash-max-listpack-value` the grid wants: hash values up to this many
 * bytes keep a hash in Redis's compact encoding (listpack). A queued task's BullMQ hash has
 * values (its options, its parent) a little over Redis's default of 64; at 512 it stays
 * compact, about 400 bytes less per queued task (docs/benchmarks.md, backlog).
 */
export const RECOMMENDED_HASH_MAX_LISTPACK_VALUE = 512;
