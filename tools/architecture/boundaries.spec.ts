/**
 * Proves that the layering of the workspace is enforced by lint, not just described:
 * each import below is linted as if it were written in a file of the given project, with
 * the workspace's own ESLint config. Allowed edges lint clean; every upward or sideways
 * edge, and every framework or I/O import into a pure library, is an error.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(__dirname, '../..');

function withoutJestVariables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const clean = { ...env };
  delete clean['JEST_WORKER_ID'];
  delete clean['NODE_ENV'];
  return clean;
}

/**
 * Lints every probe in one child process with the ESLint API and the workspace's own
 * config (ESLint loads its config with a dynamic import, which Jest's VM does not allow).
 */
function lintAll(probes: Array<[string, string]>): string[][] {
  const script = `
    const { ESLint } = require('eslint');
    const path = require('node:path');
    let input = '';
    process.stdin.on('data', (d) => (input += d));
    process.stdin.on('end', async () => {
      // The Nx rule reads the cached project graph and silently skips itself without one.
      await require('@nx/devkit').createProjectGraphAsync({ exitOnError: true });
      const eslint = new ESLint({ cwd: process.cwd() });
      const out = [];
      for (const [file, line] of JSON.parse(input)) {
        const code = line + '\\nexport const probe = typeof x;\\n';
        const [result] = await eslint.lintText(code, { filePath: path.join(process.cwd(), file) });
        out.push(result.messages
          .filter((m) => m.ruleId !== '@typescript-eslint/no-unused-vars')
          .map((m) => m.ruleId + ': ' + m.message));
      }
      process.stdout.write('\\n@@RESULTS@@' + JSON.stringify(out));
    });`;
  const child = spawnSync(process.execPath, ['-e', script], {
    cwd: root,
    input: JSON.stringify(probes),
    // The Nx lint rule stays silent when it believes it runs inside Jest.
    env: withoutJestVariables(process.env),
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  if (child.status !== 0) throw new Error(`eslint probe failed: ${child.stderr}`);
  const [before, results] = child.stdout.split('\n@@RESULTS@@');
  if (results === undefined || /skipped/.test(before ?? '')) {
    throw new Error(`eslint probe printed no results or skipped a rule:\n${child.stdout}`);
  }
  return JSON.parse(results) as string[][];
}

const allowed: Array<[string, string]> = [
  ['libs/state-machine/src/probe.ts', "import { x } from '@dmq/api-contracts';"],
  ['libs/metadata-client/src/probe.ts', "import { x } from '@dmq/api-contracts';"],
  ['libs/persistence-prisma/src/probe.ts', "import { x } from '@dmq/state-machine';"],
  ['libs/persistence-prisma/src/probe.ts', "import { x } from '@dmq/api-contracts';"],
  ['libs/persistence-prisma/src/probe.ts', "import { x } from 'bullmq';"],
  ['apps/metadata-service/src/probe.ts', "import { x } from '@dmq/raft-core';"],
  ['apps/metadata-service/src/probe.ts', "import { x } from '@dmq/persistence-prisma';"],
  ['apps/metadata-service/src/probe.ts', "import { x } from 'express';"],
  ['libs/raft-core/src/storage/probe.ts', "import { x } from 'node:fs';"],
];

const forbidden: Array<[string, string, RegExp]> = [
  // Upward or sideways edges between our projects.
  [
    'libs/raft-core/src/probe.ts',
    "import { x } from '@dmq/state-machine';",
    /enforce-module-boundaries/,
  ],
  [
    'libs/raft-core/src/probe.ts',
    "import { x } from '@dmq/api-contracts';",
    /enforce-module-boundaries/,
  ],
  [
    'libs/api-contracts/src/probe.ts',
    "import { x } from '@dmq/state-machine';",
    /enforce-module-boundaries/,
  ],
  [
    'libs/api-contracts/src/probe.ts',
    "import { x } from '@dmq/raft-core';",
    /enforce-module-boundaries/,
  ],
  [
    'libs/state-machine/src/probe.ts',
    "import { x } from '@dmq/persistence-prisma';",
    /enforce-module-boundaries/,
  ],
  [
    'libs/state-machine/src/probe.ts',
    "import { x } from '@dmq/raft-core';",
    /enforce-module-boundaries/,
  ],
  [
    'libs/metadata-client/src/probe.ts',
    "import { x } from '@dmq/state-machine';",
    /enforce-module-boundaries/,
  ],
  [
    'libs/persistence-prisma/src/probe.ts',
    "import { x } from '@dmq/raft-core';",
    /enforce-module-boundaries/,
  ],
  [
    'libs/persistence-prisma/src/probe.ts',
    "import { x } from '@dmq/metadata-service';",
    /enforce-module-boundaries/,
  ],
  // Frameworks kept out of pure libraries.
  ['libs/raft-core/src/probe.ts', "import { x } from 'express';", /enforce-module-boundaries/],
  [
    'libs/state-machine/src/probe.ts',
    "import { x } from '@prisma/client';",
    /enforce-module-boundaries/,
  ],
  ['libs/api-contracts/src/probe.ts', "import { x } from 'ioredis';", /enforce-module-boundaries/],
  // I/O and time kept out of pure code.
  ['libs/raft-core/src/core/probe.ts', "import { x } from 'node:fs';", /no-restricted-imports/],
  ['libs/raft-core/src/core/probe.ts', "import { x } from 'node:timers';", /no-restricted-imports/],
  ['libs/state-machine/src/probe.ts', "import { x } from 'node:net';", /no-restricted-imports/],
  ['libs/state-machine/src/probe.ts', 'const x = Date.now();', /no-restricted-properties/],
  ['libs/raft-core/src/core/probe.ts', 'const x = Math.random();', /no-restricted-properties/],
  ['libs/raft-core/src/core/probe.ts', 'const x = setTimeout;', /no-restricted-globals/],
  [
    'libs/persistence-prisma/src/probe.ts',
    "const x = process.env['DATABASE_URL'];",
    /no-restricted-properties/,
  ],
];

describe('architecture boundaries', () => {
  let allowedResults: string[][] = [];
  let forbiddenResults: string[][] = [];

  beforeAll(() => {
    const results = lintAll([...allowed, ...forbidden.map(([f, l]) => [f, l] as [string, string])]);
    allowedResults = results.slice(0, allowed.length);
    forbiddenResults = results.slice(allowed.length);
  }, 180_000);

  it.each(allowed.map((probe, i) => [...probe, i] as const))(
    'allows %s to write %s',
    (_file, _line, i) => {
      expect(allowedResults[i]).toEqual([]);
    },
  );

  it.each(forbidden.map((probe, i) => [...probe, i] as const))(
    'refuses in %s: %s',
    (_file, _line, rule, i) => {
      const messages = forbiddenResults[i] ?? [];
      expect(messages.some((m) => rule.test(m))).toBe(true);
    },
  );
});
