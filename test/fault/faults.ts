/** Coordinator timings for fault tests: leases lapse within about two seconds. */
export const FAST_LEASES = ['--lease-ms', '2000', '--heartbeat-ms', '300', '--stalled-check-ms', '500'];

/** Prints a fault test's counts (they are part of what the suite reports). */
export function report(name: string, counts: Record<string, number | string>): void {
  const line = Object.entries(counts)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  process.stdout.write(`[fault] ${name}: ${line}\n`);
}
