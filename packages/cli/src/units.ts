/** Amounts and times for people: "3m12s", "10.2 GiB". Pure, for the human output of format*.ts. */

const GiB = 1024 ** 3;

/**
 * A span of time, short: "850ms", "4.2s", "3m12s", "2h05m", "3d04h". Negative spans (clocks
 * apart) read as 0.
 */
export function span(ms: number): string {
  const t = Math.max(0, ms);
  if (t < 1000) return `${Math.round(t)}ms`;
  if (t < 10_000) return `${(t / 1000).toFixed(1)}s`;
  const s = Math.floor(t / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** How long ago a moment (ms since the epoch) was: "2s ago"; "-" for 0 (never). */
export function ago(atMs: number, nowMs: number): string {
  if (atMs <= 0) return '-';
  const t = Math.max(0, nowMs - atMs);
  if (t < 1000) return 'just now';
  // Whole seconds: a heartbeat's age in tenths would only flicker.
  return t < 60_000 ? `${Math.floor(t / 1000)}s ago` : `${span(t)} ago`;
}

/** Bytes in GiB with one decimal, without the unit: "10.2". */
export function gib(bytes: number): string {
  return (bytes / GiB).toFixed(1);
}

/** Text cut to `max` characters, with an ellipsis where it was cut. */
export function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(1, max - 1))}…`;
}
