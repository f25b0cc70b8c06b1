import type { TaskRequirements } from './task-graph.js';

/** Tenant ids: lower-case letters, digits, "_" and "-", up to 64 characters. */
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

export const DEFAULT_TENANT = 'default';

function hasRequirements(r: TaskRequirements): boolean {
  return r.model !== '' || r.minVramBytes > 0 || r.minComputeCapability !== '' || !r.cpuAllowed;
}

/** FNV-1a, 32 bits: a short stable signature (not a security hash). */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}

/** A stable signature of a requirement set; "" when there are none. */
export function requirementsSignature(r: TaskRequirements): string {
  if (!hasRequirements(r)) return '';
  return fnv1a(JSON.stringify([r.model, r.minVramBytes, r.minComputeCapability, r.cpuAllowed]));
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
  const match = /^([a-z][a-z0-9.-]*)(?:#([0-9a-f]{8}))?@([a-z0-9][a-z0-9_-]{0,63})$/.exec(name);
  if (!match?.[1] || !match[3]) return undefined;
  return { kind: match[1], signature: match[2] ?? '', tenant: match[3] };
}
