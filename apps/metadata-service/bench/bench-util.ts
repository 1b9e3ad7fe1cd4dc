/** Helpers shared by the metadata-service benchmarks (not a benchmark itself). */
import { readFileSync } from 'node:fs';

/** The `q`-quantile (0..1) of `values` by nearest rank; NaN when empty. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

/** `--name=value` from the command line, as a number, or `fallback`. */
export function numberFlag(name: string, fallback: number): number {
  const prefix = `--${name}=`;
  const given = process.argv.find((a) => a.startsWith(prefix));
  if (given === undefined) return fallback;
  const value = Number(given.slice(prefix.length));
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} must be a number`);
  return value;
}

/** A Markdown table. */
export function table(header: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const line = (cells: readonly unknown[]) => `| ${cells.map(String).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

export const ms = (value: number, digits = 0): string =>
  Number.isNaN(value) ? 'n/a' : value.toFixed(digits);

export const sleep = (millis: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, millis));

// ---- CPU time from /proc (Linux) ----

/** User + system CPU ticks used so far by process `pid` (0 once it is gone, or unknown). */
export function processTicks(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11] ?? 0) + Number(fields[12] ?? 0);
  } catch {
    return 0; // gone
  }
}

/** Busy ticks of the whole machine (all CPUs), from the first line of /proc/stat. */
export function machineBusyTicks(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  return v.reduce((a, b) => a + b, 0) - (v[3] ?? 0) - (v[4] ?? 0); // minus idle and iowait
}
