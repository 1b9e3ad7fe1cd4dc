/* eslint-disable no-console -- a command-line tool: stdout is its interface. */
import { reproCommand, runSimulation } from './simulation';

/**
 * Runs the deterministic simulation from the command line:
 *
 *   npm run sim -- --seeds 100000            # seeds 1..100000, alternating 3 and 5 nodes
 *   npm run sim -- --seed 12345 --nodes 5    # replay one seed
 *   npm run sim -- --seeds 1000 --first 5000 --steps 3000 --nodes 3
 *
 * Prints progress and throughput; on the first failing seed prints the failure and a
 * one-line repro command, and exits with status 1.
 */
function parseArgs(argv: readonly string[]): Map<string, string> {
  const args = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    if (key === undefined || !key.startsWith('--'))
      throw new Error(`unexpected argument ${String(key)}`);
    const value = argv[i + 1];
    if (value === undefined || value.startsWith('--')) args.set(key.slice(2), 'true');
    else {
      args.set(key.slice(2), value);
      i++;
    }
  }
  return args;
}

function intArg(
  args: Map<string, string>,
  name: string,
  fallback: number | undefined,
): number | undefined {
  const raw = args.get(name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`--${name} must be a non-negative integer, got ${raw}`);
  return value;
}

function main(): number {
  const args = parseArgs(process.argv.slice(2));
  const single = intArg(args, 'seed', undefined);
  const count = single !== undefined ? 1 : (intArg(args, 'seeds', 1000) ?? 1000);
  const first = single ?? intArg(args, 'first', 1) ?? 1;
  const fixedNodes = intArg(args, 'nodes', undefined);
  const steps = intArg(args, 'steps', 1500) ?? 1500;
  const started = Date.now();
  let lastReport = started;
  let totalSteps = 0;
  let acknowledged = 0;
  for (let i = 0; i < count; i++) {
    const seed = first + i;
    const nodes = fixedNodes ?? (seed % 2 === 0 ? 5 : 3);
    const result = runSimulation({ seed, nodes, steps });
    totalSteps += result.stats.steps;
    acknowledged += result.stats.acknowledged;
    if (!result.ok) {
      console.log(`FAILED seed ${seed} (${nodes} nodes): ${result.failure ?? 'unknown'}`);
      console.log(`repro: ${reproCommand(seed, nodes, steps)}`);
      return 1;
    }
    if (single !== undefined) console.log(JSON.stringify(result.stats));
    const now = Date.now();
    if (now - lastReport >= 2000 || i === count - 1) {
      lastReport = now;
      const seconds = (now - started) / 1000;
      console.log(
        `${i + 1}/${count} seeds ok · ${(((i + 1) / seconds) | 0).toString()} seeds/s · ` +
          `${((totalSteps / seconds) | 0).toString()} steps/s · ${acknowledged} proposals acknowledged · ${seconds.toFixed(1)}s`,
      );
    }
  }
  return 0;
}

process.exitCode = main();
