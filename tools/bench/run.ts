/**
 * `npm run bench -- [name ...]`: runs the benchmarks of the workspace.
 *
 * A benchmark is a file `libs/<lib>/bench/<name>.bench.ts` or `apps/<app>/bench/<name>.bench.ts`
 * that prints a Markdown section with its results. With no name every benchmark runs;
 * `--list` lists them. Each runs in its own Node process (with `--expose-gc`, so memory
 * figures can be taken after a full collection). Results are copied by hand into
 * docs/benchmarks.md together with the machine they were measured on.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, existsSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(__dirname, '../..');

function findBenchmarks(): Map<string, string> {
  const found = new Map<string, string>();
  for (const group of ['libs', 'apps']) {
    const groupDir = path.join(root, group);
    if (!existsSync(groupDir)) continue;
    for (const project of readdirSync(groupDir)) {
      const benchDir = path.join(groupDir, project, 'bench');
      if (!existsSync(benchDir)) continue;
      for (const file of readdirSync(benchDir)) {
        if (file.endsWith('.bench.ts'))
          found.set(file.slice(0, -'.bench.ts'.length), path.join(benchDir, file));
      }
    }
  }
  return found;
}

function main(argv: string[]): number {
  const benchmarks = findBenchmarks();
  if (argv.includes('--list')) {
    for (const [name, file] of benchmarks) console.log(`${name}\t${path.relative(root, file)}`);
    return 0;
  }
  const names = argv.filter((a) => !a.startsWith('--'));
  const passThrough = argv.filter((a) => a.startsWith('--'));
  const selected = names.length === 0 ? [...benchmarks.keys()] : names;
  for (const name of selected) {
    const file = benchmarks.get(name);
    if (file === undefined) {
      console.error(`unknown benchmark "${name}"; known: ${[...benchmarks.keys()].join(', ')}`);
      return 2;
    }
    console.error(`\n# ${name} (${path.relative(root, file)})`);
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', file, ...passThrough],
      {
        cwd: root,
        stdio: 'inherit',
      },
    );
    if (child.status !== 0) return child.status ?? 1;
  }
  return 0;
}

process.exit(main(process.argv.slice(2)));
